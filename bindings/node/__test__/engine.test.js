'use strict'

// hotplex.Engine against the bundled reference agent: the Node contract
// (types, errors, callbacks, promises, the async iterator). The pool's own
// behaviour is tested in Rust (tests/reference-agent/tests/pool.rs); the
// real Claude Code CLI in tests/e2e.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { Engine, TurnStream, Detector, supervisorMode, sessionCeiling } = require('..')
const { ROOT, AGENT, tmpDir, withEngine } = require('./support')

/** Awaits `promise`, which must reject with an Error of `code`; returns the error. */
async function rejectsWith(promise, code) {
  let error = null
  try {
    await promise
  } catch (e) {
    error = e
  }
  assert.ok(error, `expected a rejection with ${code}`)
  assert.ok(error instanceof Error, 'rejections are Errors')
  assert.equal(error.code, code, `${error.code}: ${error.message}`)
  return error
}

function throwsWith(fn, code) {
  assert.throws(fn, (e) => e instanceof Error && e.code === code)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('execute resolves a turn with text, stats and its events in order', () =>
  withEngine(async (engine) => {
    const seen = []
    const turn = await engine.execute('s', 'hello', { onEvent: (e) => seen.push(e) })
    assert.equal(turn.text, 'echo: hello')
    assert.equal(turn.coldStart, true)
    assert.equal(turn.resumed, false)
    assert.equal(turn.isError, false)
    assert.ok(turn.durationMs > 0)
    assert.ok(turn.queuedMs >= 0)
    assert.equal(turn.usage.outputTokens, 'echo: hello'.length)
    assert.ok(Math.abs(turn.costUsd - 0.001) < 1e-9)
    assert.equal(turn.model, 'reference-model')
    assert.deepEqual(turn.tools, [])
    assert.equal(typeof turn.providerSessionId, 'string')
    assert.ok(turn.pid > 0)
    assert.deepEqual(
      turn.events.map((e) => e.type),
      ['session_start', 'answer', 'session_stats'],
    )
    // Every callback ran, in order, before the promise resolved.
    assert.deepEqual(seen, turn.events)
    assert.deepEqual(seen[1].data, { text: 'echo: hello' })
    assert.equal(seen[0].data.model, 'reference-model')
    // The turn's usage is the session_stats event's, key for key.
    assert.deepEqual({ ...turn.usage }, seen[2].data.usage)

    const hot = await engine.execute('s', 'again')
    assert.equal(hot.text, 'echo: again')
    assert.equal(hot.coldStart, false)
    assert.equal(hot.pid, turn.pid)
  }))

test('sessions() and sessionStats()', () =>
  withEngine(async (engine, dir) => {
    await engine.execute('b', 'x')
    await engine.execute('a', 'tool:rm -rf /')
    const infos = engine.sessions()
    assert.deepEqual(
      infos.map((i) => i.id),
      ['a', 'b'],
    )
    const a = infos[0]
    assert.equal(a.status, 'ready')
    assert.equal(a.turns, 1)
    assert.equal(a.pending, 0)
    assert.ok(a.pid > 0)
    assert.equal(a.workdir, fs.realpathSync(path.join(dir, 'work')))
    assert.equal(typeof a.idleMs, 'number')
    assert.equal(typeof a.providerSessionId, 'string')
    const stats = engine.sessionStats('a')
    assert.equal(stats.turns, 1)
    assert.equal(stats.toolCalls, 1)
    assert.equal(stats.toolsDenied, 1)
    assert.equal(stats.coldStarts, 1)
    assert.equal(stats.model, 'reference-model')
    assert.equal(engine.sessionStats('nope'), null)
  }))

test('a tool call blocked by the WAF is a danger_block event', () =>
  withEngine(async (engine) => {
    const turn = await engine.execute('s', 'tool:rm -rf /')
    assert.equal(turn.text, 'tool denied: rm -rf /')
    const types = turn.events.map((e) => e.type)
    assert.ok(types.indexOf('tool_use') < types.indexOf('danger_block'))
    assert.ok(types.indexOf('danger_block') < types.indexOf('tool_result'))
    const block = turn.events.find((e) => e.type === 'danger_block')
    assert.equal(block.data.verdict.level, 'critical')
    assert.equal(turn.tools.length, 1)
    assert.equal(turn.tools[0].name, 'Bash')
    assert.equal(turn.tools[0].isError, true)
    const stats = turn.events.find((e) => e.type === 'session_stats')
    assert.deepEqual(turn.tools.map((t) => ({ ...t })), stats.data.tools)
  }))

test('every error code', async () => {
  await withEngine(async (engine) => {
    const seen = []
    const blocked = await rejectsWith(
      engine.execute('s', 'rm -rf /', { onEvent: (e) => seen.push(e) }),
      'HOTPLEX_DANGER_BLOCKED',
    )
    assert.deepEqual(
      seen.map((e) => e.type),
      ['danger_block'],
    )
    assert.equal(seen[0].data.verdict.level, 'critical')
    assert.equal(blocked.verdict.blocked, true)
    assert.equal(blocked.verdict.level, 'critical')
    assert.equal('rm -rf /'.slice(...blocked.verdict.span), 'rm -rf /')
    const approved = await engine.execute('s', 'rm -rf /', { wafApproved: true })
    assert.equal(approved.text, 'echo: rm -rf /')

    await rejectsWith(engine.execute('s', 'stall:5000', { timeout: 0.3 }), 'HOTPLEX_TURN_TIMEOUT')
    assert.equal((await engine.execute('s', 'after timeout')).text, 'echo: after timeout')

    await rejectsWith(engine.execute('s', 'crash'), 'HOTPLEX_SESSION_DEAD')
    const resumed = await engine.execute('s', 'recall')
    assert.equal(resumed.resumed, true)
    assert.equal(resumed.coldStart, true)

    const failed = await rejectsWith(engine.execute('s', 'fail'), 'HOTPLEX_TURN_FAILED')
    assert.equal(failed.subtype, 'error_during_execution')

    await rejectsWith(engine.execute('', 'x'), 'HOTPLEX_INVALID_CONFIG')
    await rejectsWith(engine.execute('s', 'x', { timeout: -1 }), 'HOTPLEX_INVALID_CONFIG')
  })

  throwsWith(() => new Engine({ binary: AGENT, maxSessions: 0 }), 'HOTPLEX_INVALID_CONFIG')
  throwsWith(() => new Engine({ binary: AGENT, maxSessions: -1 }), 'HOTPLEX_INVALID_CONFIG')
  throwsWith(() => new Engine({ binary: AGENT, turnTimeout: -1 }), 'HOTPLEX_INVALID_CONFIG')
  throwsWith(() => new Engine({ binary: AGENT, idleTimeout: 0 }), 'HOTPLEX_INVALID_CONFIG')
  throwsWith(() => new Engine({ binary: '' }), 'HOTPLEX_INVALID_CONFIG')

  const dir = tmpDir()
  try {
    const broken = new Engine({ binary: AGENT, args: ['--exit-at-start'] })
    await rejectsWith(broken.execute('s', 'x', { workdir: dir }), 'HOTPLEX_START_FAILED')
    await broken.close()

    const small = new Engine({ binary: AGENT, maxSessions: 1, defaultWorkdir: dir })
    const busy = small.stream('a', 'stall:1000')
    await sleep(200)
    await rejectsWith(small.execute('b', 'x'), 'HOTPLEX_CAPACITY_EXCEEDED')
    const types = []
    for await (const e of busy) types.push(e.type)
    assert.equal(types.at(-1), 'session_stats')
    assert.equal(busy.turn.text, 'stalled 1000 ms')
    await small.close()

    const engine = new Engine({ binary: AGENT, defaultWorkdir: dir })
    await engine.execute('s', 'x')
    assert.equal(engine.closed, false)
    await engine.close()
    await engine.close()
    assert.equal(engine.closed, true)
    await rejectsWith(engine.execute('s', 'x'), 'HOTPLEX_CLOSED')
    await rejectsWith(engine.stopSession('s'), 'HOTPLEX_CLOSED')
    await rejectsWith(engine.stream('s', 'x')[Symbol.asyncIterator]().next(), 'HOTPLEX_CLOSED')
    await rejectsWith(
      (async () => {
        for await (const _ of engine.stream('s', 'x'));
      })(),
      'HOTPLEX_CLOSED',
    )
    assert.deepEqual(engine.sessions(), [])
    assert.equal(engine.sessionStats('s'), null)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a turn in flight when the engine closes rejects with HOTPLEX_CLOSED', () =>
  withEngine(async (engine) => {
    const running = rejectsWith(engine.execute('s', 'stall:10000'), 'HOTPLEX_CLOSED')
    await sleep(200)
    await engine.close()
    await running
  }))

test('stream() yields events as they arrive, then holds the turn', () =>
  withEngine(async (engine) => {
    const stream = engine.stream('s', 'flood:3')
    assert.ok(stream instanceof TurnStream)
    assert.equal(stream.turn, null)
    const types = []
    for await (const e of stream) {
      types.push(e.type)
      assert.equal(typeof e.data, 'object')
    }
    assert.deepEqual(types, ['session_start', 'answer', 'answer', 'answer', 'answer', 'session_stats'])
    assert.equal(stream.turn.text, 'echo: flood:3')
    assert.equal(stream.turn.events.length, types.length)
    // Exhausted: more next() calls are done.
    assert.deepEqual(await stream[Symbol.asyncIterator]().next(), { value: undefined, done: true })
  }))

test('stream() rejects with the turn error, and with a submit error on first next()', () =>
  withEngine(async (engine) => {
    const failed = await rejectsWith(
      (async () => {
        for await (const _ of engine.stream('s', 'fail'));
      })(),
      'HOTPLEX_TURN_FAILED',
    )
    assert.equal(failed.subtype, 'error_during_execution')
    const stream = engine.stream('s', 'please rm -rf /')
    const blocked = await rejectsWith(stream[Symbol.asyncIterator]().next(), 'HOTPLEX_DANGER_BLOCKED')
    assert.equal(blocked.verdict.level, 'critical')
    assert.equal(stream.turn, null)
  }))

test('leaving a stream early cancels the turn', () =>
  withEngine(async (engine) => {
    for await (const e of engine.stream('s', 'stall:10000')) {
      assert.equal(e.type, 'session_start')
      break
    }
    const started = Date.now()
    const turn = await engine.execute('s', 'next')
    assert.equal(turn.text, 'echo: next')
    assert.equal(turn.coldStart, false)
    assert.ok(Date.now() - started < 5000)

    const stream = engine.stream('s', 'stall:10000')
    const it = stream[Symbol.asyncIterator]()
    assert.equal((await it.next()).value.type, 'session_start')
    const pending = it.next()
    stream.cancel()
    assert.deepEqual(await pending, { value: undefined, done: true })
    assert.equal((await engine.execute('s', 'after cancel')).text, 'echo: after cancel')
  }))

test('the event loop keeps running while a turn runs', () =>
  withEngine(async (engine) => {
    let ticks = 0
    const timer = setInterval(() => ticks++, 5)
    try {
      await engine.execute('s', 'stall:500')
    } finally {
      clearInterval(timer)
    }
    assert.ok(ticks > 20, `only ${ticks} ticks`)
  }))

test('concurrent executes on one session get their own answers', () =>
  withEngine(async (engine) => {
    const texts = await Promise.all(
      Array.from({ length: 8 }, (_, i) => engine.execute('s', `turn ${i}`).then((t) => t.text)),
    )
    assert.deepEqual(
      texts,
      Array.from({ length: 8 }, (_, i) => `echo: turn ${i}`),
    )
    assert.equal(engine.sessionStats('s').coldStarts, 1)
    assert.equal(engine.sessionStats('s').turns, 8)
  }))

test('a throwing onEvent callback does not break the turn', () =>
  withEngine(async (engine) => {
    let calls = 0
    const turn = await engine.execute('s', 'hello', {
      onEvent: () => {
        calls++
        throw new Error('callback bug')
      },
    })
    assert.equal(turn.text, 'echo: hello')
    assert.equal(calls, 3)
    assert.equal((await engine.execute('s', 'again')).text, 'echo: again')
  }))

test('canUseTool decides what the WAF lets through', async () => {
  const calls = []
  const decide = (tool, input, verdict, sessionId) => {
    calls.push([tool, input.command, verdict.level, sessionId])
    if (input.command.includes('deploy')) return 'deploys need a human'
    if (input.command.includes('explode')) throw new Error('bug in the host')
    if (input.command.includes('later')) return Promise.resolve(false)
    if (input.command.includes('reject')) return Promise.reject(new Error('no'))
    if (input.command.includes('async')) return sleep(50).then(() => true)
    if (input.command.includes('sdk-deny')) return { behavior: 'deny', message: 'not this one' }
    if (input.command.includes('sdk-allow')) return Promise.resolve({ behavior: 'allow' })
    if (input.command.includes('object')) return { ok: true }
    if (input.command.includes('number')) return 1
    return true
  }
  await withEngine({ canUseTool: decide }, async (engine) => {
    assert.equal((await engine.execute('s', 'tool:make deploy')).text, 'tool denied: make deploy')
    assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool ran: ls')
    assert.equal((await engine.execute('s', 'tool:explode')).text, 'tool denied: explode')
    assert.equal((await engine.execute('s', 'tool:later')).text, 'tool denied: later')
    assert.equal((await engine.execute('s', 'tool:reject')).text, 'tool denied: reject')
    assert.equal((await engine.execute('s', 'tool:async ok')).text, 'tool ran: async ok')
    const sdkDeny = await engine.execute('s', 'tool:sdk-deny')
    assert.equal(sdkDeny.text, 'tool denied: sdk-deny')
    const result = sdkDeny.events.find((e) => e.type === 'tool_result')
    assert.match(result.data.content, /not this one/)
    assert.equal((await engine.execute('s', 'tool:sdk-allow')).text, 'tool ran: sdk-allow')
    // Unexpected answers never allow.
    assert.equal((await engine.execute('s', 'tool:object')).text, 'tool denied: object')
    assert.equal((await engine.execute('s', 'tool:number')).text, 'tool denied: number')
    assert.equal((await engine.execute('s', 'tool:rm -rf /')).text, 'tool denied: rm -rf /')
  })
  assert.deepEqual(
    calls.map((c) => c[1]),
    ['make deploy', 'ls', 'explode', 'later', 'reject', 'async ok', 'sdk-deny', 'sdk-allow', 'object', 'number'],
    'the WAF decided rm -rf /',
  )
  assert.ok(calls.every((c) => c[0] === 'Bash' && typeof c[2] === 'string' && c[3] === 's'))
})

test('close() kills the agent processes', async () => {
  const dir = tmpDir()
  try {
    const engine = new Engine({ binary: AGENT, defaultWorkdir: dir })
    const { pid } = await engine.execute('s', 'x')
    assert.ok(fs.existsSync(`/proc/${pid}`))
    await engine.close()
    assert.ok(!fs.existsSync(`/proc/${pid}`), `agent ${pid} still exists`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('stopSession() resolves with whether the session existed', () =>
  withEngine(async (engine) => {
    const { pid } = await engine.execute('s', 'x')
    assert.equal(await engine.stopSession('s'), true)
    assert.ok(!fs.existsSync(`/proc/${pid}`))
    assert.equal(await engine.stopSession('s'), false)
    assert.deepEqual(engine.sessions(), [])
    const again = await engine.execute('s', 'recall')
    assert.equal(again.coldStart, true)
    assert.equal(again.resumed, true)
  }))

test('a workdir outside allowedRoots is HOTPLEX_INVALID_CONFIG', async () => {
  const dir = tmpDir()
  const root = path.join(dir, 'root')
  fs.mkdirSync(root)
  const engine = new Engine({ binary: AGENT, allowedRoots: [root] })
  try {
    assert.equal((await engine.execute('s', 'x', { workdir: path.join(root, 'a') })).text, 'echo: x')
    await rejectsWith(engine.execute('s', 'x', { workdir: path.join(dir, 'elsewhere') }), 'HOTPLEX_INVALID_CONFIG')
  } finally {
    await engine.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('engine.detector is the engine WAF', () =>
  withEngine(async (engine) => {
    assert.ok(engine.detector instanceof Detector)
    assert.equal(engine.detector.checkCommand('rm -rf /').blocked, true)
  }))

test('index.d.ts type-checks a typical use of the engine', (t) => {
  let tsc
  try {
    tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
  } catch {
    t.skip('typescript is not installed')
    return
  }
  const dir = tmpDir()
  try {
    const index = path.join(__dirname, '..', 'index')
    const file = path.join(dir, 'use.ts')
    fs.writeFileSync(
      file,
      `import {
  Engine, TurnStream, TurnEvent, Turn, SessionInfo, SessionStats, Verdict, ErrorCode,
  AnyHotplexError, HotplexErrorCode, TurnFailedError, DangerBlockedError, SessionLimits,
  supervisorMode, sessionCeiling,
} from ${JSON.stringify(index)}
async function main(): Promise<void> {
  const limits: SessionLimits = { maxProcesses: 64, memoryBytes: 512 * 2 ** 20 }
  const mode: 'exec' | 'fork' = supervisorMode()
  const ceiling: number = sessionCeiling()
  void mode; void ceiling
  const engine = new Engine({
    binary: 'claude', env: { KEY: 'v' }, maxSessions: 2, idleTimeout: 60, limits,
    canUseTool: (tool, input, verdict, sessionId) =>
      verdict.level === 'safe' || \`\${sessionId}: no \${tool} \${String(input.command)}\`,
  })
  const turn: Turn = await engine.execute('s', 'p', {
    timeout: 1, workdir: '/tmp', onEvent: (e: TurnEvent) => { const t: string = e.type; void t },
  })
  const n: number = turn.usage.outputTokens + turn.durationMs + turn.tools.length + turn.costUsd
  const stream: TurnStream = engine.stream('s', 'p', { wafApproved: true })
  for await (const e of stream) {
    if (e.type === 'answer') { const t: string = e.data.text; void t }
    if (e.type === 'session_stats') { const c: number = e.data.costUsd + e.data.usage.inputTokens; void c }
    if (e.type === 'danger_block') { const v: Verdict = e.data.verdict; void v.levelValue }
    if (e.type === 'tool_result') { const id: string = e.data.toolUseId; void id }
  }
  try {
    await engine.execute('s', 'rm -rf /')
  } catch (err) {
    const e = err as AnyHotplexError
    if (e.code === ErrorCode.DANGER_BLOCKED) { const v: Verdict = e.verdict; void v }
    if (e.code === 'HOTPLEX_TURN_FAILED') { const s: string = e.subtype; void s }
    const code: HotplexErrorCode = e.code
    const failed: TurnFailedError | DangerBlockedError | null = null
    void code; void failed
  }
  const last: Turn | null = stream.turn
  stream.cancel()
  const infos: SessionInfo[] = engine.sessions()
  const idle: number = infos[0].idleMs
  const stats: SessionStats | null = engine.sessionStats('s')
  const cost: number | undefined = stats?.costUsd
  const existed: boolean = await engine.stopSession('s')
  await engine.close()
  const closed: boolean = engine.closed
  void n; void last; void infos; void idle; void stats; void cost; void existed; void closed
}
void main
`,
    )
    const r = spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--lib', 'es2022', file],
      { encoding: 'utf8' },
    )
    assert.equal(r.status, 0, r.stdout + r.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('concurrent next() calls get the events in call order', () =>
  withEngine(async (engine) => {
    const it = engine.stream('s', 'flood:20')[Symbol.asyncIterator]()
    const results = await Promise.all(Array.from({ length: 30 }, () => it.next()))
    const types = results.filter((r) => !r.done).map((r) => r.value.type)
    assert.equal(types.length, 23)
    assert.equal(types[0], 'session_start')
    assert.equal(types.at(-1), 'session_stats')
    assert.ok(results.slice(types.length).every((r) => r.done))
  }))

// ---- Regression tests for the thin binding (issue 9) ----

/** The tool_result event's content of a turn. */
const toolResult = (turn) => turn.events.find((e) => e.type === 'tool_result').data

test('canUseTool: an SDK-style deny object denies', () =>
  withEngine({ canUseTool: () => ({ behavior: 'deny' }) }, async (engine) => {
    const turn = await engine.execute('s', 'tool:ls')
    assert.equal(turn.text, 'tool denied: ls')
    assert.equal(toolResult(turn).isError, true)
  }))

test('canUseTool: an async callback is awaited (deny with its message, or allow)', async () => {
  const decide = async (tool, input) => {
    await sleep(20)
    return input.command === 'ls' ? true : { behavior: 'deny', message: 'no' }
  }
  await withEngine({ canUseTool: decide }, async (engine) => {
    const denied = await engine.execute('s', 'tool:make deploy')
    assert.equal(denied.text, 'tool denied: make deploy')
    assert.match(toolResult(denied).content, /no/)
    assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool ran: ls')
  })
})

test('canUseTool: an unexpected answer (42, [], {}, a function) denies', async () => {
  const answers = { n: 42, list: [], obj: {}, fn: () => true, maybe: { behavior: 'maybe' } }
  await withEngine({ canUseTool: (tool, input) => answers[input.command] }, async (engine) => {
    for (const key of Object.keys(answers)) {
      const turn = await engine.execute('s', `tool:${key}`)
      assert.equal(turn.text, `tool denied: ${key}`, key)
      assert.match(toolResult(turn).content, /unexpected/, key)
    }
    // undefined is null: allow.
    assert.equal((await engine.execute('s', 'tool:missing')).text, 'tool ran: missing')
  })
})

test('canUseTool: allow with updatedInput runs the rewritten command', () =>
  withEngine(
    { canUseTool: () => ({ behavior: 'allow', updatedInput: { command: 'make check' } }) },
    async (engine) => {
      const turn = await engine.execute('s', 'tool:make deploy')
      assert.equal(turn.text, 'tool ran: make check')
      // Events show the agent's input as it sent it.
      const use = turn.events.find((e) => e.type === 'tool_use')
      assert.deepEqual(use.data.input, { command: 'make deploy', description: 'reference agent tool call' })
    },
  ))

test('canUseTool: a rewritten input the WAF blocks is denied', () =>
  withEngine({ canUseTool: () => ({ behavior: 'allow', updatedInput: { command: 'rm -rf /' } }) }, async (engine) => {
    assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool denied: ls')
  }))

test('a follow-up turn without workdir continues in the session workdir', () =>
  withEngine(async (engine, dir) => {
    const elsewhere = path.join(dir, 'elsewhere')
    const first = await engine.execute('s', 'first', { workdir: elsewhere })
    assert.equal(first.coldStart, true)
    const second = await engine.execute('s', 'recall')
    assert.equal(second.coldStart, false, 'not a cold start')
    assert.equal(second.pid, first.pid)
    assert.equal(second.text, 'history: first')
    assert.equal(engine.sessions()[0].workdir, fs.realpathSync(elsewhere))
  }))

test('the session_stats event cost equals the turn cost on every turn', () =>
  withEngine(async (engine) => {
    for (let i = 0; i < 3; i++) {
      const turn = await engine.execute('s', `turn ${i}`)
      const stats = turn.events.find((e) => e.type === 'session_stats').data
      assert.equal(stats.costUsd, turn.costUsd, `turn ${i}`)
      assert.ok(Math.abs(turn.costUsd - 0.001) < 1e-9, `turn ${i} costs one turn, not the running total`)
      assert.deepEqual(stats.usage, turn.usage)
    }
    assert.ok(Math.abs(engine.sessionStats('s').costUsd - 0.003) < 1e-9)
  }))

/** The error `fn` throws, which must have `code`. */
function thrown(fn, code) {
  let error = null
  try {
    fn()
  } catch (e) {
    error = e
  }
  assert.ok(error, `expected ${code}`)
  assert.equal(error.code, code, `${error.code}: ${error.message}`)
  return error
}

test('bad engine options throw HOTPLEX_INVALID_CONFIG naming the option in camelCase', () => {
  const cases = [
    [{ turnTimeout: -1 }, /: turnTimeout: /],
    [{ maxSessions: -1 }, /: maxSessions: /],
    [{ maxSessions: 0 }, /: maxSessions: /],
    [{ idleTimeout: 'soon' }, /: idleTimeout: /],
    [{ env: { A: 1 } }, /: env\.A: /],
    [{ envAllow: 'PATH' }, /: envAllow: /],
    [{ maxSesions: 3 }, /`maxSesions`.*`maxSessions`/],
    [{ max_sessions: 3 }, /`max_sessions`/],
    [{ canUseTool: 'yes' }, /: canUseTool: /],
  ]
  for (const [opts, pattern] of cases) {
    const e = thrown(() => new Engine({ binary: AGENT, ...opts }), 'HOTPLEX_INVALID_CONFIG')
    assert.match(e.message, pattern, JSON.stringify(opts))
    assert.doesNotMatch(e.message, /turn_timeout|max_sessions: |env_allow|idle_timeout/, e.message)
  }
  thrown(() => new Engine('claude'), 'HOTPLEX_INVALID_CONFIG')
  // Keys inside env are variable names: never converted.
  const keep = new Engine({ binary: AGENT, env: { MY_VAR: 'x', camelVar: 'y' }, canUseTool: null, model: undefined })
  void keep.close()
})

test('bad turn options reject with HOTPLEX_INVALID_CONFIG naming the option', () =>
  withEngine(async (engine) => {
    const typo = await rejectsWith(engine.execute('s', 'x', { timout: 1 }), 'HOTPLEX_INVALID_CONFIG')
    assert.match(typo.message, /`timout`.*`wafApproved`/)
    const bad = await rejectsWith(engine.execute('s', 'x', { wafApproved: 'yes' }), 'HOTPLEX_INVALID_CONFIG')
    assert.match(bad.message, /: wafApproved: /)
    await rejectsWith(engine.stream('s', 'x', { timeout: -1 })[Symbol.asyncIterator]().next(), 'HOTPLEX_INVALID_CONFIG')
    const onEvent = await rejectsWith(engine.execute('s', 'x', { onEvent: 1 }), 'HOTPLEX_INVALID_CONFIG')
    assert.match(onEvent.message, /: onEvent: /)
  }))

/** The soft value of a row of /proc/<pid>/limits ('Max open files'). */
function procLimit(pid, row) {
  const line = fs
    .readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(row))
  assert.ok(line, `no ${row} in /proc/${pid}/limits`)
  return line.slice(row.length).trim().split(/\s+/)[0]
}

test('a session with limits runs a turn under them', { skip: process.platform !== 'linux' && 'reads /proc' }, () =>
  withEngine(
    { limits: { maxProcesses: 64, memoryBytes: 512 * 1024 * 1024, cpuSeconds: 600, openFiles: 200 } },
    async (engine) => {
      const turn = await engine.execute('s', 'hello')
      assert.equal(turn.text, 'echo: hello')
      // Per process in every containment mode.
      assert.equal(procLimit(turn.pid, 'Max open files'), '200')
      assert.equal(procLimit(turn.pid, 'Max cpu time'), '600')
      // Memory: the session's cgroup where there is one, else the agent's address space.
      if (!engine.metricsText().includes('containment="cgroup"')) {
        assert.equal(procLimit(turn.pid, 'Max address space'), String(512 * 1024 * 1024))
      }
      assert.equal((await engine.execute('s', 'again')).pid, turn.pid)
    },
  ))

test('a bad limit throws HOTPLEX_INVALID_CONFIG naming it in camelCase', () => {
  const cases = [
    [{ maxProcesses: 0 }, /: limits\.maxProcesses: /],
    [{ memoryBytes: -1 }, /: limits\.memoryBytes: /],
    [{ cpuSeconds: 1.5 }, /: limits\.cpuSeconds: /],
    [{ openFiles: 'many' }, /: limits\.openFiles: /],
    [{ memory: 1 }, /`memory`.*`memoryBytes`/],
    [{ max_processes: 64 }, /limits: unknown field `max_processes`/],
  ]
  for (const [limits, pattern] of cases) {
    const e = thrown(() => new Engine({ binary: AGENT, limits }), 'HOTPLEX_INVALID_CONFIG')
    assert.match(e.message, pattern, JSON.stringify(limits))
    assert.doesNotMatch(e.message, /max_processes: |memory_bytes|cpu_seconds|open_files/, e.message)
  }
  thrown(() => new Engine({ binary: AGENT, limits: 64 }), 'HOTPLEX_INVALID_CONFIG')
  // Past 2^32 a whole number still reaches the core as an integer.
  void new Engine({ binary: AGENT, limits: { memoryBytes: 8 * 2 ** 30 } }).close()
})

test('supervisorMode() and sessionCeiling() report the process model', () => {
  const forced = (process.env.HOTPLEX_SUPERVISOR || '').toLowerCase() === 'fork'
  // The embedded supervisor program runs on Linux unless fork is asked for.
  assert.equal(supervisorMode(), process.platform === 'linux' && !forced ? 'exec' : 'fork')
  const ceiling = sessionCeiling()
  assert.ok(Number.isInteger(ceiling) && ceiling > 0, String(ceiling))
})

test('a missing binary throws HOTPLEX_INVALID_CONFIG from the constructor, naming the path', () => {
  const missing = path.join(os.tmpdir(), 'hotplex-no-such-dir', 'agent')
  const e = thrown(() => new Engine({ binary: missing }), 'HOTPLEX_INVALID_CONFIG')
  assert.ok(e.message.includes(missing), e.message)
  const name = thrown(() => new Engine({ binary: 'hotplex-no-such-agent-cli' }), 'HOTPLEX_INVALID_CONFIG')
  assert.ok(name.message.includes('hotplex-no-such-agent-cli'), name.message)
})

test('a danger_block event carries the Detector verdict shape', () =>
  withEngine(async (engine) => {
    const seen = []
    const prompt = 'é then rm -rf /'
    const err = await rejectsWith(engine.execute('s', prompt, { onEvent: (e) => seen.push(e) }), 'HOTPLEX_DANGER_BLOCKED')
    assert.deepEqual(seen[0].data.verdict, { ...err.verdict })
    assert.deepEqual(Object.keys(seen[0].data.verdict).sort(), Object.keys(new Detector().checkCommand('ls')).sort())
    // The span indexes the prompt in UTF-16 offsets, as checkPrompt's does.
    assert.deepEqual(seen[0].data.verdict, { ...engine.detector.checkPrompt(prompt) })
    assert.match(prompt.slice(...seen[0].data.verdict.span), /rm -rf \/$/)

    const turn = await engine.execute('s', 'tool:rm -rf /')
    const block = turn.events.find((e) => e.type === 'danger_block').data.verdict
    const direct = engine.detector.checkCommand('rm -rf /')
    assert.deepEqual(block, { ...direct })
  }))

/** Every property of `$defs[name]`, camelCased. */
function schemaKeys(name) {
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema', 'hotplex.schema.json'), 'utf8'))
  const camel = (k) => k.replace(/_(.)/g, (_, c) => c.toUpperCase())
  return Object.keys(schema.$defs[name].properties).map(camel)
}

/** The member names of `interface name` in the generated declarations. */
function tsMembers(name) {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  const body = dts.match(new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`))
  assert.ok(body, `interface ${name} is generated`)
  return [...body[1].matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
}

test('every schema field of Turn, SessionInfo and SessionStats reaches JS and the TS types', () =>
  withEngine(async (engine) => {
    const turn = await engine.execute('s', 'tool:ls')
    const objects = { Turn: turn, SessionInfo: engine.sessions()[0], SessionStats: engine.sessionStats('s') }
    for (const [name, obj] of Object.entries(objects)) {
      const members = tsMembers(name)
      for (const key of schemaKeys(name)) {
        assert.ok(key in obj, `${name}.${key} is missing from the JS object`)
        assert.ok(members.includes(key), `${name}.${key} is missing from the TS types`)
      }
      assert.deepEqual(Object.keys(obj).sort(), schemaKeys(name).sort(), `${name} has no other keys`)
    }
    for (const key of schemaKeys('Usage')) assert.ok(key in turn.usage, `usage.${key}`)
    for (const key of schemaKeys('ToolCall')) assert.ok(key in turn.tools[0], `tools[0].${key}`)
    const result = turn.events.find((e) => e.type === 'tool_result').data
    assert.equal(typeof result.toolUseId, 'string')
    assert.equal(result.isError, false)
  }))

test('partialMessages streams answerDelta events that add up to the answer', async () => {
  await withEngine({ partialMessages: true }, async (engine) => {
    const seen = []
    const turn = await engine.execute('s', 'a reply worth streaming', { onEvent: (e) => seen.push(e) })
    const deltas = seen.filter((e) => e.type === 'answer_delta').map((e) => e.data.text)
    assert.ok(deltas.length >= 3, `${deltas.length} deltas`)
    assert.equal(deltas.join(''), turn.text)
    assert.ok(turn.firstDeltaMs > 0)
    const quiet = await engine.execute('s', 'hi', { partialMessages: false })
    assert.ok(!quiet.events.some((e) => e.type === 'answer_delta'))
  })
  await withEngine(async (engine) => {
    await rejectsWith(engine.execute('p', 'hi', { partialMessages: true }), 'HOTPLEX_INVALID_CONFIG')
  })
})
