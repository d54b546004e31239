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
// the callbacks (`canUseTool`, `onEvent`, hooks, host tools), the
// `{ type, data }` shape of an event, `Verdict` (napi's, with UTF-16 spans),
// and the `HOTPLEX_` codes.
//
//   node scripts/gen-types.js   # write contract.d.ts (npm run build and
//                               # scripts/check-dts.js run it first)

const fs = require('node:fs')
const path = require('node:path')

const pkgDir = path.join(__dirname, '..')
const SCHEMA = path.join(pkgDir, '..', '..', 'schema', 'hotplex.schema.json')
const OUT = path.join(pkgDir, 'contract.d.ts')

/**
 * Definitions rendered otherwise: napi declares `Verdict` (with its own span
 * type); Node's hooks and host tools are functions in the options
 * (`HookMatcher`, `HostToolServer` below), not the core's specs.
 */
const SKIP = new Set(['Verdict', 'Range_of_uint', 'ErrorCode', 'HookSpec', 'ToolServer', 'ToolSpec'])
/** Tagged unions whose variants are flat objects (`{ type, sessionId, ... }`), not `{ type, data }`. */
const FLAT = new Set(['LifecycleRecord'])
/** Options: every key optional, but those the schema requires. */
const INPUTS = new Set(['EngineOptions', 'TurnOptions', 'SessionOptions', 'SessionLimits', 'PrewarmProfile', 'PlacementOptions'])
/** Node's names for schema definitions. */
const RENAME = { Event: 'TurnEvent' }
/** What an error carries besides `code` and `message` (from the core's `Error::detail`). */
const ERROR_EXTRAS = {
  danger_blocked: { verdict: ['Verdict', "The WAF's verdict; its `span` indexes the prompt."] },
  turn_failed: { subtype: ['string', "The agent's result subtype, e.g. `'error_max_turns'`."] },
  invalid_rule: { line: ['number', 'The 1-based line of the bad rule.'] },
  owned_elsewhere: {
    session: ['string', 'The session asked for.'],
    owner: ['string', "The host holding the session's lease: where its turns belong."],
  },
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

/**
 * Members Node declares otherwise than the schema, by definition and key:
 * `[doc, type]`. The engine's `hooks` and `tools` hold the host's functions.
 */
const MEMBERS = {
  EngineOptions: {
    hooks: [
      `Host hooks by event (\`PreToolUse\`, \`PostToolUse\`, \`PostToolUseFailure\`,
\`UserPromptSubmit\`, \`Stop\`, \`SubagentStop\`, \`PreCompact\`, \`Notification\`, ...),
as the Agent SDK's: each a function (every call of the event) or
\`{ matcher, hooks, timeout }\` (the calls of the tools \`matcher\` names).
The WAF answers first: a \`PreToolUse\` call it blocks never reaches a
host hook, and an \`updatedInput\` a hook returns is screened again. A
hook that throws, rejects or outlives its timeout denies the call for
\`PreToolUse\`; for the other events the agent goes on as if it returned
nothing, and the turn gets an \`error\` event saying so.`,
      'Partial<Record<HookEvent, Array<HookCallback | HookMatcher>>>',
    ],
    tools: [
      `Tools written in JavaScript, served to every agent as in-process MCP
servers: the model sees each as \`mcp__<server>__<tool>\`, and its calls go
through the WAF, the hooks and \`canUseTool\` like any tool's, and appear
as \`tool_use\`/\`tool_result\` events. A handler's string is the result's
text; an object with \`content\` is the MCP result itself; another value
is sent as its JSON text. Throwing, rejecting or not answering within the
turn timeout is an error result the model sees (\`isError\`); the turn
goes on.`,
      'Array<HostToolServer>',
    ],
  },
}

/**
 * The members of an object schema: records list every key (a `null` is
 * sent), options only those the schema requires.
 */
function members(def, optional, name) {
  const own = MEMBERS[name] || {}
  const required = new Set(def.required || [])
  return Object.entries(def.properties || {})
    .filter(([k]) => k !== 'type' || !def.properties.type.const)
    .map(([k, p]) => {
      const [d, t] = own[k] || [p.description, ts(p)]
      return `${doc(d, '  ')}  ${camel(k)}${optional && !required.has(k) ? '?' : ''}: ${t}\n`
    })
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
  return `${doc(def.description)}export interface ${name}${ext} {\n${head}${members(def, optional, name)}${extra}}\n`
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
   * \`null\` allow, \`{ behavior: 'allow', updatedInput?,
   * updatedPermissions? }\` allows (with that input, screened again; the
   * agent keeps the permission updates), \`false\`, a string (the
   * message) and \`{ behavior: 'deny', message?, interrupt? }\` deny (and
   * with \`interrupt: true\` end the turn), and so does anything else.
   * Throwing, rejecting or not answering within the turn timeout denies.
   * The verdict is the WAF's (not blocking); \`context\` is what the
   * agent said about the call (its \`permissionSuggestions\`, ...).
   */
  canUseTool?: (toolName: string, input: Record<string, any>, verdict: Verdict, sessionId: string, context: PermissionContext) => PermissionAnswer | Promise<PermissionAnswer>
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
  | { behavior: 'allow'; updatedInput?: Record<string, any>; updatedPermissions?: Array<PermissionUpdate> }
  | { behavior: 'deny'; message?: string; interrupt?: boolean }

/**
 * A permission update for the agent to keep, in the agent's shape (e.g.
 * \`{ type: 'addRules', rules: [{ toolName: 'Bash' }], behavior: 'allow',
 * destination: 'session' }\`): what \`permissionSuggestions\` offers and
 * \`updatedPermissions\` grants.
 */
export type PermissionUpdate = Record<string, any>

/**
 * What the agent said about a tool call, for \`canUseTool\` (its last
 * argument): the agent's fields with camelCase names; their values are as
 * it sent them. Empty for agents that send none.
 */
export interface PermissionContext {
  /** Permission updates the host may grant with \`updatedPermissions\`. */
  permissionSuggestions?: Array<PermissionUpdate>
  /** Why the agent asks (its own words or object). */
  decisionReason?: any
  /** The id of the tool call (as in its \`tool_use\` event). */
  toolUseId?: string
  /** The path outside the allowed directories, for file tools. */
  blockedPath?: string
  [key: string]: any
}

/** A hook event, as the agent names it (any other name the agent knows is accepted too). */
export type HookEvent =
  | 'PreToolUse'
  | 'PostToolUse'
  | 'PostToolUseFailure'
  | 'UserPromptSubmit'
  | 'Stop'
  | 'SubagentStart'
  | 'SubagentStop'
  | 'PreCompact'
  | 'Notification'
  | 'PermissionRequest'
  | 'SessionStart'
  | 'SessionEnd'
  | (string & {})

/**
 * A hook's input, as the agent sent it (snake_case, as the Agent SDK's
 * \`HookInput\`): \`hook_event_name\`, \`session_id\` (the agent's), and per
 * event \`tool_name\`, \`tool_input\`, \`tool_use_id\`, \`tool_response\`,
 * \`prompt\`, ...
 */
export interface HookInput {
  hook_event_name: string
  session_id?: string
  tool_name?: string
  tool_input?: Record<string, any>
  tool_use_id?: string
  tool_response?: any
  prompt?: string
  [key: string]: any
}

/**
 * What a hook may return, as the Agent SDK's hooks do (\`undefined\` is
 * \`{}\`): \`continue\`, \`stopReason\`, \`systemMessage\`, \`decision\`,
 * \`reason\`, and \`hookSpecificOutput\` with \`hookEventName\` and, per event,
 * \`permissionDecision\` (\`'allow' | 'deny' | 'ask'\`),
 * \`permissionDecisionReason\`, \`updatedInput\`, \`additionalContext\`,
 * \`updatedToolOutput\`, ...
 */
export interface HookOutput {
  continue?: boolean
  stopReason?: string
  suppressOutput?: boolean
  systemMessage?: string
  decision?: 'approve' | 'block'
  reason?: string
  hookSpecificOutput?: {
    hookEventName?: string
    permissionDecision?: 'allow' | 'deny' | 'ask'
    permissionDecisionReason?: string
    updatedInput?: Record<string, any>
    additionalContext?: string
    [key: string]: any
  }
  [key: string]: any
}

/** The third argument of a hook: whose call it is. */
export interface HookContext {
  /** The host's session id (\`engine.execute\`'s first argument). */
  sessionId: string
  /** The hook event. */
  event: string
}

/**
 * A host hook: called on the JS thread with the agent's input, the id of
 * the tool call it is about (\`undefined\` for events about none) and its
 * context; a promise is awaited. Returns its output (or nothing).
 */
export type HookCallback = (
  input: HookInput,
  toolUseId: string | undefined,
  context: HookContext,
) => HookOutput | undefined | void | Promise<HookOutput | undefined | void>

/** Hooks for the calls of some tools, with a timeout. */
export interface HookMatcher {
  /** The tools: a name or \`'A|B'\` alternatives (the agent matches it); unset: every call. */
  matcher?: string | null
  /** The hooks, called in order. */
  hooks: Array<HookCallback>
  /** Seconds each hook may take (default 60). */
  timeout?: number
}

/** The second argument of a host tool's handler: whose call it is. */
export interface ToolContext {
  /** The host's session id. */
  sessionId: string
  /** The tool's server. */
  server: string
  /** The tool's name within it. */
  tool: string
}

/**
 * What a host tool's handler may return: a string (one text block), an MCP
 * result (\`{ content: [...], isError? }\`), or another value (sent as its
 * JSON text).
 */
export type ToolAnswer = string | { content: Array<Record<string, any>>; isError?: boolean } | Record<string, any> | null | undefined

/** One tool written in JavaScript. */
export interface HostTool {
  /** Its name within its server (letters, digits, \`_\`, \`-\`). */
  name: string
  /** What it does, for the model. */
  description?: string
  /** A JSON Schema of its arguments (an object schema; default: none). */
  inputSchema?: Record<string, any>
  /**
   * Runs the tool on the JS thread with the model's arguments; a promise is
   * awaited. Throwing or rejecting is an error result with the message.
   */
  handler: (args: Record<string, any>, context: ToolContext) => ToolAnswer | Promise<ToolAnswer>
}

/** An in-process MCP server of JavaScript tools. */
export interface HostToolServer {
  /** Its name: the model sees its tools as \`mcp__<name>__<tool>\`. */
  name: string
  /** The version it reports (default \`'1.0.0'\`). */
  version?: string
  /** Its tools. */
  tools: Array<HostTool>
}

/**
 * How full a session's context window is, from \`Engine.contextUsage()\`:
 * the agent's object, keys as it sent them.
 */
export interface ContextUsage {
  totalTokens?: number
  maxTokens?: number
  percentage?: number
  categories?: Array<{ name: string; tokens: number; [key: string]: any }>
  [key: string]: any
}

/** A session's MCP servers, from \`Engine.mcpStatus()\`: the agent's object. */
export interface McpStatus {
  mcpServers?: Array<{ name: string; status: string; [key: string]: any }>
  [key: string]: any
}
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
