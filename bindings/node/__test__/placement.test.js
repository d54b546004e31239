'use strict'

// Placement across hosts (the `placement` option): two engines stand in for
// two hosts sharing one store directory, each with its own configuration
// directory (where the reference agent keeps CLI-style transcripts) and
// workdir, as separate machines would have. The semantics are tested in
// Rust (tests/reference-agent/tests/placement.rs); this is the Node surface.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const { Engine } = require('..')
const { AGENT, tmpDir, withEngine } = require('./support')

/** Awaits `promise`, which must reject with an Error of `code`; returns the error. */
async function rejectsWith(promise, code) {
  let error = null
  try {
    await promise
  } catch (e) {
    error = e
  }
  assert.ok(error instanceof Error, `expected a rejection with ${code}`)
  assert.equal(error.code, code, `${error.code}: ${error.message}`)
  return error
}

/** One "host" sharing the store under `root`. */
function host(root, name) {
  const config = path.join(root, name, 'config')
  const work = path.join(root, name, 'work dir')
  fs.mkdirSync(config, { recursive: true })
  fs.mkdirSync(work, { recursive: true })
  return new Engine({
    binary: AGENT,
    env: { CLAUDE_CONFIG_DIR: config },
    defaultWorkdir: work,
    stateDir: path.join(root, name, 'state'),
    turnTimeout: 20,
    startupTimeout: 20,
    interruptGrace: 2,
    placement: { owner: name, store: path.join(root, 'store'), leaseTtl: 10 },
  })
}

test('a released session continues on another host with its history', async () => {
  const root = tmpDir()
  const a = host(root, 'host-a')
  const b = host(root, 'host-b')
  try {
    await a.execute('s1', 'apples')
    await a.execute('s1', 'pears')
    assert.equal(a.owns('s1'), true)
    assert.equal(b.owns('s1'), false)

    const err = await rejectsWith(b.execute('s1', 'steal'), 'HOTPLEX_OWNED_ELSEWHERE')
    assert.equal(err.owner, 'host-a')
    assert.equal(err.session, 's1')
    const adoptErr = await rejectsWith(b.adopt('s1'), 'HOTPLEX_OWNED_ELSEWHERE')
    assert.equal(adoptErr.owner, 'host-a')

    assert.equal(await a.release('s1'), true)
    assert.equal(await a.release('s1'), false, 'held no more')
    assert.equal(a.owns('s1'), false)
    assert.deepEqual(a.sessions(), [], 'its process is gone')

    const moved = await b.execute('s1', 'recall')
    assert.equal(moved.resumed, true, 'the conversation was taken up, not started anew')
    assert.equal(moved.text, 'history: apples | pears')
    assert.equal(b.owns('s1'), true)
    const back = await rejectsWith(a.execute('s1', 'back'), 'HOTPLEX_OWNED_ELSEWHERE')
    assert.equal(back.owner, 'host-b')

    // host-b drains: its sessions go back to the store, sorted; it takes no
    // new session; host-a adopts s1 with all of its history.
    await b.execute('s2', 'plums')
    const before = b.load()
    assert.deepEqual(Object.keys(before).sort(), [
      'agentMemoryBytes',
      'busy',
      'draining',
      'freeSlots',
      'queued',
      'sessions',
      'spares',
    ])
    assert.equal(before.sessions, 2)
    assert.equal(before.busy, 0)
    assert.equal(before.draining, false)
    assert.ok(before.agentMemoryBytes > 0)
    assert.deepEqual(await b.drain(5), ['s1', 's2'])
    const after = b.load()
    assert.equal(after.draining, true)
    assert.equal(after.sessions, 0)
    await rejectsWith(b.execute('s3', 'hi'), 'HOTPLEX_CAPACITY_EXCEEDED')

    assert.equal(await a.adopt('s1', path.join(root, 'host-a', 'work dir')), undefined)
    assert.equal(a.owns('s1'), true)
    const again = await a.execute('s1', 'recall')
    assert.equal(again.resumed, true)
    assert.equal(again.text, 'history: apples | pears | recall')
  } finally {
    await a.close()
    await b.close()
    fs.rmSync(root, { recursive: true, force: true })
  }
})

test('placement calls need the placement option; load works without it', () =>
  withEngine(async (engine) => {
    assert.equal(engine.owns('anything'), true, 'without placement every session is local')
    await rejectsWith(engine.adopt('s'), 'HOTPLEX_INVALID_CONFIG')
    await rejectsWith(engine.adopt('s', null), 'HOTPLEX_INVALID_CONFIG')
    await rejectsWith(engine.release('s'), 'HOTPLEX_INVALID_CONFIG')
    await rejectsWith(engine.drain(1), 'HOTPLEX_INVALID_CONFIG')
    for (const bad of [-1, NaN, Infinity]) {
      await rejectsWith(engine.drain(bad), 'HOTPLEX_INVALID_ARGUMENT')
    }
    const load = engine.load()
    assert.equal(load.sessions, 0)
    assert.equal(load.draining, false)
    assert.ok(load.freeSlots > 0)
    assert.equal(typeof load.agentMemoryBytes, 'number')
  }))

test('placement options are camelCase and checked by the core', () => {
  const root = tmpDir()
  try {
    const bad = (placement) => {
      let error = null
      try {
        new Engine({ binary: AGENT, placement })
      } catch (e) {
        error = e
      }
      assert.ok(error, `accepted ${JSON.stringify(placement)}`)
      assert.equal(error.code, 'HOTPLEX_INVALID_CONFIG')
      return error.message
    }
    const store = path.join(root, 'store')
    assert.match(bad({ owner: 'two words', store }), /owner/)
    assert.match(bad({ owner: 'a', store, lease_ttl: 3 }), /placement: unknown field `lease_ttl`/)
    assert.match(bad({ owner: 'a', store, leaseTtl: -1 }), /leaseTtl/)
    assert.match(bad({ owner: 'a' }), /store/)
    // A valid one, with the default lease TTL.
    const e = new Engine({ binary: AGENT, placement: { owner: 'host-a', store } })
    assert.equal(e.owns('never-used'), false)
    return e.close()
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
})
