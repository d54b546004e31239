'use strict'

// Engine({ provider: 'acp' }) against the reference ACP agent
// (hotplex-reference-acp, tests/reference-agent/src/acp.rs): the options
// reach the core, turns run on one hot process, the WAF screens what the
// agent asks to run, errors carry their codes. The ACP session itself is
// tested in Rust (tests/reference-agent/tests/acp_engine.rs); real ACP
// agents in tests/e2e (test_acp.py, node_acp.js).

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const { Engine, ErrorCode } = require('..')
const { ROOT, AGENT, tmpDir, options } = require('./support')

/** The reference ACP agent: built with the reference agent (one crate, two binaries). */
function acpAgent() {
  if (process.env.HOTPLEX_REFERENCE_ACP) return process.env.HOTPLEX_REFERENCE_ACP
  const found = path.join(path.dirname(AGENT), 'hotplex-reference-acp')
  if (!fs.existsSync(found)) {
    execFileSync('cargo', ['build', '-q', '-p', 'hotplex-reference-agent'], { cwd: ROOT, stdio: 'inherit' })
  }
  return found
}

const ACP = acpAgent()

/** Engine options for the reference ACP agent: its state and a private HOME in `dir`, plus `extra`. */
function acpOptions(dir, extra = {}) {
  fs.mkdirSync(path.join(dir, 'home'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'work'), { recursive: true })
  return {
    provider: 'acp',
    binary: ACP,
    args: ['--state-dir', path.join(dir, 'acp-state')],
    env: { HOME: path.join(dir, 'home') },
    defaultWorkdir: path.join(dir, 'work'),
    turnTimeout: 20,
    startupTimeout: 20,
    interruptGrace: 2,
    ...extra,
  }
}

/** Runs `fn(engine, dir)` with a fresh engine on the reference ACP agent, then closes it. */
async function withAcp(fn) {
  const dir = tmpDir()
  const engine = new Engine(acpOptions(dir))
  try {
    return await fn(engine, dir)
  } finally {
    await engine.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** `fn()` must throw an Error with `code`; returns it. */
function thrown(fn, code) {
  let error = null
  try {
    fn()
  } catch (e) {
    error = e
  }
  assert.ok(error instanceof Error, `expected an Error with ${code}`)
  assert.equal(error.code, code, `${error.code}: ${error.message}`)
  return error
}

test('five acp turns share one process with one cold start', () =>
  withAcp(async (engine) => {
    const turns = []
    for (let i = 0; i < 5; i++) turns.push(await engine.execute('s', `hello ${i}`))
    assert.deepEqual(
      turns.map((t) => t.text),
      [0, 1, 2, 3, 4].map((i) => `echo: hello ${i}`),
    )
    assert.deepEqual(
      turns.map((t) => t.coldStart),
      [true, false, false, false, false],
    )
    assert.equal(new Set(turns.map((t) => t.pid)).size, 1, 'one process')
    assert.ok(turns.every((t) => !t.resumed && !t.isError))
    assert.equal(turns[0].events[0].type, 'session_start')
    assert.equal(turns[1].events[0].type, 'answer')
    assert.ok(turns.every((t) => t.events.at(-1).type === 'session_stats'))
    const stats = engine.sessionStats('s')
    assert.equal(stats.turns, 5)
    assert.equal(stats.coldStarts, 1)
    assert.ok(Math.abs(stats.costUsd - 0.005) < 1e-9, `${stats.costUsd}`)
    // The stream form too.
    const types = []
    for await (const e of engine.stream('s', 'streamed')) types.push(e.type)
    assert.deepEqual(types.slice(-1), ['session_stats'])
    assert.ok(types.includes('answer'))
  }))

test('the WAF denies run:rm -rf ~ and the home canary survives; a harmless command runs', () =>
  withAcp(async (engine, dir) => {
    const canary = path.join(dir, 'home', 'canary')
    fs.writeFileSync(canary, 'alive')
    const seen = []
    const turn = await engine.execute('s', 'run:rm -rf ~', { onEvent: (e) => seen.push(e.type) })
    assert.equal(turn.text, 'denied: rm -rf ~')
    const block = turn.events.find((e) => e.type === 'danger_block')
    assert.ok(block, JSON.stringify(turn.events.map((e) => e.type)))
    assert.equal(block.data.verdict.blocked, true)
    assert.equal(block.data.verdict.level, 'critical')
    assert.ok(seen.includes('permission_request'))
    assert.deepEqual(
      seen,
      turn.events.map((e) => e.type),
    )
    assert.equal(fs.readFileSync(canary, 'utf8'), 'alive')
    assert.equal(engine.sessionStats('s').toolsDenied, 1)
    const ok = await engine.execute('s', 'run:echo hi')
    assert.equal(ok.text, 'ran: echo hi\nexit: 0\nhi\n')
    assert.equal(ok.pid, turn.pid)
  }))

test('a turn over its timeout rejects and the next turn succeeds on the same process', () =>
  withAcp(async (engine) => {
    const first = await engine.execute('s', 'hello')
    await assert.rejects(engine.execute('s', 'sleep:5000', { timeout: 0.3 }), (e) => e.code === ErrorCode.TURN_TIMEOUT)
    const after = await engine.execute('s', 'after timeout')
    assert.equal(after.text, 'echo: after timeout')
    assert.equal(after.coldStart, false)
    assert.equal(after.pid, first.pid)
  }))

test('claude-only options are refused for acp with HOTPLEX_INVALID_CONFIG naming them', () =>
  withAcp(async (engine, dir) => {
    assert.equal(ErrorCode.INVALID_CONFIG, 'HOTPLEX_INVALID_CONFIG')
    let e = thrown(() => new Engine(acpOptions(dir, { model: 'm' })), ErrorCode.INVALID_CONFIG)
    assert.match(e.message, /\bmodel: a claude-code option/)
    // Named as JavaScript spells it.
    e = thrown(() => new Engine(acpOptions(dir, { permissionMode: 'plan' })), ErrorCode.INVALID_CONFIG)
    assert.match(e.message, /\bpermissionMode: /)
    e = thrown(() => new Engine(acpOptions(dir, { provider: 'opencode' })), ErrorCode.INVALID_CONFIG)
    assert.match(e.message, /provider/)
    await assert.rejects(engine.execute('s', 'x', { session: { maxTurns: 2 } }), (err) => {
      assert.equal(err.code, ErrorCode.INVALID_CONFIG)
      assert.match(err.message, /\bsession\.maxTurns: /)
      return true
    })
    // The stream form: its first step rejects, naming the option alike.
    await assert.rejects(
      (async () => {
        for await (const _ of engine.stream('s', 'x', { session: { maxTurns: 2 } }));
      })(),
      (err) => err.code === ErrorCode.INVALID_CONFIG && /\bsession\.maxTurns: /.test(err.message),
    )
    assert.deepEqual(engine.sessions(), [])
    assert.equal((await engine.execute('s', 'hi')).text, 'echo: hi')
  }))

test('a session picks the acp provider and its command line on a claude-code engine', async () => {
  const dir = tmpDir()
  fs.mkdirSync(path.join(dir, 'work'))
  const engine = new Engine(options(dir))
  try {
    const session = { provider: 'acp', binary: ACP, args: [] }
    const claude = await engine.execute('claude', 'hi')
    const acp = await engine.execute('acp', 'hi', { session })
    assert.equal(claude.text, 'echo: hi')
    assert.equal(acp.text, 'echo: hi')
    assert.notEqual(claude.pid, acp.pid)
    const caps = await engine.execute('acp', 'caps?')
    assert.equal(caps.text, 'caps: read=true write=true terminal=true')
    assert.equal(caps.pid, acp.pid)
    await assert.rejects(
      engine.execute('acp', 'x', { session: { provider: 'claude-code' } }),
      (e) => e.code === ErrorCode.INVALID_CONFIG && /session\.provider/.test(e.message),
    )
  } finally {
    await engine.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('four acp sessions run turns at once', () =>
  withAcp(async (engine) => {
    const runs = [0, 1, 2, 3].map(async (i) => {
      const turns = []
      for (let n = 0; n < 3; n++) turns.push(await engine.execute(`s${i}`, `turn ${n} of ${i}`))
      return turns
    })
    const all = await Promise.all(runs)
    all.forEach((turns, i) => {
      assert.deepEqual(
        turns.map((t) => t.text),
        [0, 1, 2].map((n) => `echo: turn ${n} of ${i}`),
      )
      assert.equal(new Set(turns.map((t) => t.pid)).size, 1)
    })
    assert.equal(new Set(all.map((turns) => turns[0].pid)).size, 4, 'a process per session')
  }))
