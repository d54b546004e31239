'use strict'

// The binding's copies of the core's contract: the generated TypeScript
// types and the exported error codes, checked against schema/hotplex.schema.json.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')

const { ErrorCode } = require('..')
const { render, SCHEMA } = require('../scripts/gen-types.js')

const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf8'))

test('index.d.ts starts with the types scripts/gen-types.js generates from the schema', () => {
  const index = fs.readFileSync(`${__dirname}/../index.d.ts`, 'utf8')
  assert.ok(index.startsWith(render(schema)), 'run `npm run build` and commit index.d.ts')
})

test('every error of the schema table has its code exported', () => {
  const table = schema['x-hotplex-errors']
  assert.ok(table.length >= 16)
  for (const e of table) {
    const code = `HOTPLEX_${e.name.toUpperCase()}`
    assert.equal(ErrorCode[e.name.toUpperCase()], code, e.name)
  }
  assert.deepEqual(Object.values(ErrorCode), table.map((e) => `HOTPLEX_${e.name.toUpperCase()}`), 'no other codes')
  assert.ok(Object.isFrozen(ErrorCode))
  for (const code of ['HOTPLEX_INVALID_CONFIG', 'HOTPLEX_SPAWN', 'HOTPLEX_IO', 'HOTPLEX_CONTAINMENT']) {
    assert.ok(Object.values(ErrorCode).includes(code), code)
  }
  const dts = fs.readFileSync(`${__dirname}/../index.d.ts`, 'utf8')
  for (const e of table) {
    assert.ok(dts.includes(`'HOTPLEX_${e.name.toUpperCase()}'`), `HotplexErrorCode has ${e.name}`)
  }
  assert.equal(require('..').__errorCodes, undefined, 'the raw table is not part of the API')
})
