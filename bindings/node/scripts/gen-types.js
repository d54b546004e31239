#!/usr/bin/env node
'use strict'

// Generates contract.d.ts, the TypeScript types of what the engine takes and
// gives (options, turns, events, session records, error codes), from the
// core's committed JSON Schema (schema/hotplex.schema.json). `napi build`
// puts the file at the top of index.d.ts (package.json: napi.dtsHeaderFile),
// so the package ships one declaration file; the napi classes there name
// these types through `ts_type` / `ts_arg_type` / `ts_return_type`.
//
// What is Node's own (not in the schema) is written here: camelCase keys,
// the callbacks (`canUseTool`, `onEvent`), the `{ type, data }` shape of an
// event, `Verdict` (napi's, with UTF-16 spans), and the `HOTPLEX_` codes.
//
//   node scripts/gen-types.js   # write contract.d.ts (npm run build and
//                               # scripts/check-dts.js run it first)

const fs = require('node:fs')
const path = require('node:path')

const pkgDir = path.join(__dirname, '..')
const SCHEMA = path.join(pkgDir, '..', '..', 'schema', 'hotplex.schema.json')
const OUT = path.join(pkgDir, 'contract.d.ts')

/** Definitions rendered otherwise: napi declares `Verdict` (with its own span type). */
const SKIP = new Set(['Verdict', 'Range_of_uint', 'ErrorCode'])
/** Tagged unions whose variants are flat objects (`{ type, sessionId, ... }`), not `{ type, data }`. */
const FLAT = new Set(['LifecycleRecord'])
/** Options: every key optional. */
const INPUTS = new Set(['EngineOptions', 'TurnOptions'])
/** Node's names for schema definitions. */
const RENAME = { Event: 'TurnEvent' }
/** What an error carries besides `code` and `message` (from the core's `Error::detail`). */
const ERROR_EXTRAS = {
  danger_blocked: { verdict: ['Verdict', "The WAF's verdict; its `span` indexes the prompt."] },
  turn_failed: { subtype: ['string', "The agent's result subtype, e.g. `'error_max_turns'`."] },
  invalid_rule: { line: ['number', 'The 1-based line of the bad rule.'] },
}

/** `cost_usd` -> `costUsd` (as the addon converts keys). */
const camel = (k) => k.replace(/_(.)/g, (_, c) => c.toUpperCase())
const pascal = (k) => camel(`_${k}`)
const errorInterface = (cls) => (cls.endsWith('Error') ? cls : `${cls}Error`)

/** Names that stay snake_case in docs: event names and metric names are values, not keys. */
let EVENT_NAMES = new Set()

/** A schema description as JSDoc, in Node's words. */
function doc(text, indent = '') {
  if (!text) return ''
  const lines = text
    .replace(/\[`(?:crate::)?([^`\]]+)`\](\([^)]*\))?/g, '`$1`')
    .replace(/`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`/g, (m, k) => (EVENT_NAMES.has(k) ? m : `\`${camel(k)}\``))
    .replace(/`None`/g, '`null`')
    .split('\n')
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`
  return `${indent}/**\n${lines.map((l) => `${indent} *${l ? ` ${l}` : ''}`).join('\n')}\n${indent} */\n`
}

/** The TypeScript type of a schema. */
function ts(s) {
  if (s.$ref) {
    const name = s.$ref.split('/').pop()
    return RENAME[name] || name
  }
  if (s.const !== undefined) return `'${s.const}'`
  if (s.enum) return s.enum.map((v) => (v === null ? 'null' : `'${v}'`)).join(' | ')
  const alts = s.anyOf || s.oneOf
  if (alts) return [...new Set(alts.map(ts))].join(' | ')
  if (s.type === undefined) return 'any'
  const types = Array.isArray(s.type) ? s.type : [s.type]
  return types
    .map((t) => {
      switch (t) {
        case 'string':
          return 'string'
        case 'integer':
        case 'number':
          return 'number'
        case 'boolean':
          return 'boolean'
        case 'null':
          return 'null'
        case 'array':
          return `Array<${s.items ? ts(s.items) : 'any'}>`
        case 'object':
          return s.additionalProperties && typeof s.additionalProperties === 'object'
            ? `Record<string, ${ts(s.additionalProperties)}>`
            : 'Record<string, any>'
        default:
          throw new Error(`gen-types: unknown schema type ${t}`)
      }
    })
    .join(' | ')
}

/** The members of an object schema: records list every key (a `null` is sent), options none. */
function members(def, optional) {
  return Object.entries(def.properties || {})
    .filter(([k]) => k !== 'type' || !def.properties.type.const)
    .map(([k, p]) => `${doc(p.description, '  ')}  ${camel(k)}${optional ? '?' : ''}: ${ts(p)}\n`)
    .join('')
}

/** A flat tagged union: one interface per variant, keyed by its `type`. */
function flatUnion(def, name) {
  const out = []
  const kinds = def.oneOf.map((v) => {
    const type = v.properties.type.const
    const variant = `${pascal(type)}Record`
    out.push(iface(variant, v, false, '', '', `  type: '${type}'\n`))
    return `  | ${variant}\n`
  })
  out.push(`${doc(def.description)}export type ${name} =\n${kinds.join('')}`)
  out.push(`/** The \`type\` of a \`${name}\`. */\nexport type ${name}Type = ${name}['type']\n`)
  return out.join('\n')
}

function iface(name, def, optional, extra = '', base = '', head = '') {
  const ext = base ? ` extends ${base}` : ''
  return `${doc(def.description)}export interface ${name}${ext} {\n${head}${members(def, optional)}${extra}}\n`
}

/** The tagged union of events: `{ type, data }` with a typed `data` per kind. */
function events(def, name) {
  const out = []
  const kinds = def.oneOf.map((v) => {
    const type = v.properties.type.const
    let data = `${pascal(type)}Data`
    if (v.$ref) data = ts(v)
    else out.push(iface(data, { ...v, description: `The \`data\` of a \`${type}\` event.` }, false))
    return `${doc(v.description, '  ')}  | { type: '${type}'; data: ${data} }\n`
  })
  out.push(`${doc(def.description)}export type ${name} =\n${kinds.join('')}`)
  out.push(`/** The name of an event (\`TurnEvent['type']\`). */\nexport type TurnEventType = ${name}['type']\n`)
  return out.join('\n')
}

const CALLBACKS = {
  EngineOptions: `  /**
   * Decides tool calls the WAF let through. It runs on the JS thread
   * while the session waits; a promise is awaited. The answer is read by
   * the core's one rule, which fails closed: \`true\`, \`undefined\` or
   * \`null\` allow, \`{ behavior: 'allow', updatedInput? }\` allows (with
   * that input, screened again), \`false\`, a string (the message) and
   * \`{ behavior: 'deny', message? }\` deny, and so does anything else.
   * Throwing, rejecting or not answering within the turn timeout denies.
   * The verdict is the WAF's (not blocking).
   */
  canUseTool?: (toolName: string, input: Record<string, any>, verdict: Verdict, sessionId: string) => PermissionAnswer | Promise<PermissionAnswer>
  /**
   * Receives the engine's lifecycle records, in order, on the JS thread,
   * off the hot path: records wait in bounded queues, and when the JS
   * thread cannot keep up they are dropped (counted in
   * \`hotplex_observer_dropped_total\`), so turns never wait for it. An
   * exception it throws loses that record only. It does not keep Node
   * running.
   */
  observer?: (record: LifecycleRecord) => void
`,
}

function render(schema) {
  EVENT_NAMES = new Set([...schema['x-hotplex-events'], ...schema['x-hotplex-metrics'].map((m) => m.name)])
  const defs = schema.$defs
  const out = [
    `/* auto-generated by NAPI-RS */
/* eslint-disable */
// The contract types below are generated by scripts/gen-types.js from
// schema/hotplex.schema.json (do not edit them: run \`node scripts/gen-types.js\`).
// Node spells every key in camelCase; a tool call's \`input\` is the agent's.
`,
  ]
  for (const [name, def] of Object.entries(defs)) {
    if (SKIP.has(name)) continue
    const tsName = RENAME[name] || name
    if (FLAT.has(name)) {
      out.push(flatUnion(def, tsName))
    } else if (def.oneOf && def.oneOf.every((v) => v.properties && v.properties.type && v.properties.type.const)) {
      out.push(events(def, tsName))
    } else if (def.properties) {
      out.push(iface(tsName, def, INPUTS.has(name), CALLBACKS[name] || ''))
    } else {
      out.push(`${doc(def.description)}export type ${tsName} = ${ts(def)}\n`)
    }
  }
  out.push(`/**
 * The part of an \`AbortSignal\` hotplex uses: a DOM or Node \`AbortSignal\`
 * (\`new AbortController().signal\`, \`AbortSignal.timeout(ms)\`, ...) is one.
 * Declared here so that the types need neither the DOM lib nor @types/node.
 */
export interface AbortSignalLike {
  readonly aborted: boolean
  readonly reason?: any
  addEventListener(type: 'abort', listener: (...args: any[]) => any, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: (...args: any[]) => any): void
}

/**
 * What a turn rejects with when its \`signal\` aborts: an \`Error\` shaped as
 * Node's own \`AbortError\` (as \`fetch\` or \`timers/promises\` reject with).
 */
export interface AbortError extends Error {
  name: 'AbortError'
  code: 'ABORT_ERR'
  /** The signal's \`reason\` (\`controller.abort(reason)\`). */
  cause?: any
}

/** Options of \`Engine.stream()\`: the turn's options and its abort signal. */
export interface StreamOptions extends TurnOptions {
  /**
   * Aborting it cancels the turn (the agent is interrupted, killed if it
   * does not stop within \`interruptGrace\`; a clean interrupt keeps the
   * session hot) and the turn rejects with an \`AbortError\` whose \`cause\`
   * is the signal's reason. A signal aborted already rejects at once, and
   * the turn never runs. The turn's listener is removed when it ends.
   */
  signal?: AbortSignalLike | null
}

/** Options of \`Engine.execute()\`: the turn's options, abort signal and event callback. */
export interface ExecuteOptions extends StreamOptions {
  /**
   * Called on the JS thread with each event, in order, all before the
   * promise settles. Exceptions it throws are ignored.
   */
  onEvent?: (event: TurnEvent) => void
}
`)
  out.push(`/** What \`canUseTool\` may answer (see \`EngineOptions.canUseTool\`). */
export type PermissionAnswer =
  | boolean
  | string
  | null
  | undefined
  | { behavior: 'allow'; updatedInput?: Record<string, any> }
  | { behavior: 'deny'; message?: string }
`)
  const metrics = schema['x-hotplex-metrics']
  out.push(`/** The name of a metric family hotplex exposes (as in \`MetricFamily.name\`). */
export type MetricName =
${metrics.map((m) => `  | '${m.name}'\n`).join('')}
/** One sample of a metric family: a counter's or gauge's value, a histogram's \`_bucket\`, \`_sum\` or \`_count\`. */
export interface MetricSample {
  /** The sample's name (\`hotplex_turns_total\`, \`hotplex_turn_duration_seconds_bucket\`, ...). */
  name: string
  /** Its labels, by their Prometheus names (\`le\` for a bucket's bound). */
  labels: Record<string, string>
  /** Its value. */
  value: number
}

/** A metric family of \`Engine.metricsSnapshot()\`, as in \`metricsText()\`. */
export interface MetricFamily {
  /** The family's name as exposed (a counter's ends in \`_total\`). */
  name: MetricName
  /** Its type. */
  type: ${[...new Set(metrics.map((m) => `'${m.type}'`))].join(' | ')}
  /** What it measures. */
  help: string
  /** Its samples (none yet for a family whose labels appear with their first event). */
  samples: Array<MetricSample>
}

/** What \`registerPromClient\` needs of a \`prom-client\` \`Registry\` (the package is not a dependency of hotplex). */
export interface PromClientRegistry {
  registerMetric(metric: any): void
  /** Read at scrape time: an OpenMetrics registry names counter families without \`_total\`. */
  readonly contentType?: string
}

/**
 * Registers every metric family of \`engine\` into a \`prom-client\` registry
 * (\`register\`, or \`new client.Registry()\`): their values are read from
 * \`engine.metricsSnapshot()\` when the registry is scraped
 * (\`await register.metrics()\`), in either of its text formats. Counters,
 * gauges and histograms keep their types and labels. Throws if the
 * registry already has a metric of one of those names (register each engine
 * into a registry of its own, and merge them with \`Registry.merge\` if need
 * be). Returns the names registered.
 */
export declare function registerPromClient(engine: Engine, register: PromClientRegistry): Array<MetricName>
`)
  const errors = schema['x-hotplex-errors']
  const code = (e) => `HOTPLEX_${e.name.toUpperCase()}`
  out.push(`/** The \`code\` of every error hotplex throws: \`'HOTPLEX_'\` + the core's error name, upper-cased. */
export type HotplexErrorCode =
${errors.map((e) => `  | '${code(e)}'\n`).join('')}
/** Every \`HotplexErrorCode\` by name (frozen): \`ErrorCode.INVALID_CONFIG === 'HOTPLEX_INVALID_CONFIG'\`. */
export declare const ErrorCode: Readonly<{
${errors.map((e) => `${doc(`${e.description} (${e.code})`, '  ')}  ${e.name.toUpperCase()}: '${code(e)}'\n`).join('')}}>

/** An \`Error\` hotplex threw or rejected with; \`code\` says which kind. */
export interface HotplexError extends Error {
  code: HotplexErrorCode
}
`)
  for (const e of errors) {
    const extras = Object.entries(ERROR_EXTRAS[e.name] || {})
      .map(([k, [t, d]]) => `${doc(d, '  ')}  ${k}: ${t}\n`)
      .join('')
    out.push(
      `${doc(`\`${code(e)}\`: ${e.description}.`)}export interface ${errorInterface(e.class)} extends HotplexError {\n  code: '${code(e)}'\n${extras}}\n`,
    )
  }
  out.push(`/** Any hotplex error, narrowed by \`code\`. */
export type AnyHotplexError =
${errors.map((e) => `  | ${errorInterface(e.class)}\n`).join('')}`)
  return out.join('\n')
}

/**
 * Writes contract.d.ts, a build intermediate (not committed): `napi build`
 * puts it at the top of index.d.ts (package.json: napi.dtsHeaderFile), and
 * index.d.ts is the committed, drift-checked file.
 */
function write() {
  fs.writeFileSync(OUT, render(JSON.parse(fs.readFileSync(SCHEMA, 'utf8'))))
}

function main() {
  write()
  console.log('gen-types: contract.d.ts written')
  return 0
}

module.exports = { render, camel, write, SCHEMA, OUT }

if (require.main === module) process.exitCode = main()
