'use strict'

// hotplex in an async host (issue 13): the event loop stays free while turns
// run, an AbortSignal cancels a turn, an idle or closed engine lets the
// process exit, and the package loads as an ES module too.

const test = require('node:test')
const assert = require('node:assert/strict')
const { getEventListeners } = require('node:events')
const fs = require('node:fs')
const path = require('node:path')

const { PKG, tmpDir, options, withEngine, linkedProject, runNode } = require('./support')

/** Awaits `promise`, which must reject with an AbortError; returns it. */
async function rejectsWithAbort(promise) {
  let error = null
  try {
    await promise
  } catch (e) {
    error = e
  }
  assertAbortError(error)
  return error
}

function assertAbortError(error) {
  assert.ok(error instanceof Error, `expected an AbortError, got ${error}`)
  assert.equal(error.name, 'AbortError', error.stack)
  assert.equal(error.code, 'ABORT_ERR')
  assert.equal(error.message, 'The operation was aborted')
}

const abortListeners = (signal) => getEventListeners(signal, 'abort').length

test('a setInterval keeps firing while 8 turns run concurrently', () =>
  withEngine({ maxSessions: 8 }, async (engine) => {
    let ticks = 0
    const timer = setInterval(() => ticks++, 10)
    const started = performance.now()
    let elapsed
    try {
      const turns = await Promise.all(
        Array.from({ length: 8 }, (_, i) => engine.execute(`s${i}`, 'stall:1500')),
      )
      elapsed = performance.now() - started
      assert.equal(turns.length, 8)
    } finally {
      clearInterval(timer)
    }
    // A 10 ms interval fires at most once per 10 ms; a blocked loop would
    // fire far less.
    const expected = Math.floor(elapsed / 10)
    assert.ok(ticks >= 0.8 * expected, `${ticks} ticks of ${expected} expected in ${Math.round(elapsed)} ms`)
  }))

test('aborting the signal interrupts a running turn; the session stays hot', () =>
  withEngine(async (engine) => {
    const first = await engine.execute('s', 'hello')
    const controller = new AbortController()
    const reason = new Error('user went away')
    const started = Date.now()
    const turn = engine.execute('s', 'stall:5000', {
      signal: controller.signal,
      // Abort from a callback, once the turn is surely running.
      onEvent: (e) => {
        if (e.type === 'session_start') setTimeout(() => controller.abort(reason), 100)
      },
    })
    const error = await rejectsWithAbort(turn)
    const took = Date.now() - started
    assert.equal(error.cause, reason)
    assert.ok(took < 4000, `the aborted turn took ${took} ms`)
    assert.equal(abortListeners(controller.signal), 0)

    const next = await engine.execute('s', 'after abort')
    assert.equal(next.text, 'echo: after abort')
    assert.equal(next.coldStart, false, 'not a cold start')
    assert.equal(next.pid, first.pid)
  }))

test('an already aborted signal rejects at once and the turn never runs', () =>
  withEngine(async (engine) => {
    const reason = new Error('too late')
    const signal = AbortSignal.abort(reason)
    const error = await rejectsWithAbort(engine.execute('s', 'hello', { signal }))
    assert.equal(error.cause, reason)
    // The default reason (a DOMException named AbortError) is the cause too.
    const plain = AbortSignal.abort()
    assert.equal((await rejectsWithAbort(engine.execute('s', 'hello', { signal: plain }))).cause, plain.reason)

    const stream = engine.stream('s', 'hello', { signal })
    assert.equal((await rejectsWithAbort(stream[Symbol.asyncIterator]().next())).cause, reason)
    assert.deepEqual(engine.sessions(), [], 'no session was started')
    assert.equal(abortListeners(signal), 0)
  }))

test('for await over a stream with a signal ends with an AbortError', () =>
  withEngine(async (engine) => {
    const controller = new AbortController()
    const seen = []
    const started = Date.now()
    let error = null
    try {
      for await (const e of engine.stream('s', 'stall:5000', { signal: controller.signal })) {
        seen.push(e.type)
        if (e.type === 'session_start') controller.abort('stop')
      }
    } catch (e) {
      error = e
    }
    assertAbortError(error)
    assert.equal(error.cause, 'stop')
    assert.deepEqual(seen, ['session_start'])
    assert.ok(Date.now() - started < 4000)
    assert.equal(abortListeners(controller.signal), 0)

    // Aborted while a next() is pending: that next() rejects.
    const other = new AbortController()
    const it = engine.stream('s', 'stall:5000', { signal: other.signal })[Symbol.asyncIterator]()
    assert.equal((await it.next()).value.type, 'session_start')
    const pending = it.next()
    other.abort()
    await rejectsWithAbort(pending)
    assert.deepEqual(await it.next(), { value: undefined, done: true })

    const next = await engine.execute('s', 'after abort')
    assert.equal(next.coldStart, false)
  }))

test('bad signal values are HOTPLEX_INVALID_CONFIG; null is no signal', () =>
  withEngine(async (engine) => {
    for (const signal of [42, 'abort', {}, { aborted: false }]) {
      await assert.rejects(engine.execute('s', 'x', { signal }), (e) => {
        assert.equal(e.code, 'HOTPLEX_INVALID_CONFIG')
        assert.match(e.message, /signal/)
        return true
      })
    }
    assert.equal((await engine.execute('s', 'x', { signal: null })).text, 'echo: x')
    assert.equal((await engine.execute('s', 'y', { signal: undefined })).text, 'echo: y')
  }))

test('a signal shared by many turns keeps no listeners', () =>
  withEngine(async (engine) => {
    const controller = new AbortController()
    const { signal } = controller
    for (let i = 0; i < 20; i++) {
      const turn = engine.execute(`s${i % 2}`, `t${i}`, { signal })
      assert.equal(abortListeners(signal), 1, 'one listener while the turn runs')
      assert.equal((await turn).text, `echo: t${i}`)
      assert.equal(abortListeners(signal), 0, `turn ${i} left its listener`)
    }
    // Turns that fail remove theirs too.
    await assert.rejects(engine.execute('s', 'rm -rf /', { signal }), { code: 'HOTPLEX_DANGER_BLOCKED' })
    assert.equal(abortListeners(signal), 0)
    for (let i = 0; i < 5; i++) {
      const stream = engine.stream('s', `u${i}`, { signal })
      const types = []
      for await (const e of stream) types.push(e.type)
      assert.equal(stream.turn.text, `echo: u${i}`)
      assert.equal(abortListeners(signal), 0, `stream ${i} left its listener`)
    }
    // Left early, cancelled, failed.
    for await (const e of engine.stream('s', 'stall:5000', { signal })) {
      assert.equal(e.type, 'session_start')
      break
    }
    assert.equal(abortListeners(signal), 0, 'break left the listener')
    engine.stream('s', 'stall:5000', { signal }).cancel()
    assert.equal(abortListeners(signal), 0, 'cancel() left the listener')
    const blocked = engine.stream('s', 'rm -rf /', { signal })
    await assert.rejects(blocked[Symbol.asyncIterator]().next(), { code: 'HOTPLEX_DANGER_BLOCKED' })
    assert.equal(abortListeners(signal), 0, 'a failed stream left the listener')
    assert.equal(signal.aborted, false)
  }))

test('stream().cancel() is callable any time, from any callback, and never throws', () =>
  withEngine(async (engine) => {
    // Before iterating, twice.
    const early = engine.stream('s', 'hello')
    early.cancel()
    early.cancel()
    assert.deepEqual(await early[Symbol.asyncIterator]().next(), { value: undefined, done: true })

    // From inside the loop body, a timer, a microtask and an abort listener.
    const controller = new AbortController()
    const stream = engine.stream('s', 'stall:5000', { signal: controller.signal })
    controller.signal.addEventListener('abort', () => stream.cancel())
    let n = 0
    for await (const e of stream) {
      n++
      assert.equal(e.type, 'session_start')
      stream.cancel()
      queueMicrotask(() => stream.cancel())
      setImmediate(() => stream.cancel())
      controller.abort()
    }
    assert.equal(n, 1)
    await new Promise((resolve) => setImmediate(resolve))

    // After the end, and on a stream that failed.
    const done = engine.stream('s', 'hello')
    for await (const e of done) assert.ok(e.type)
    done.cancel()
    assert.equal(done.turn.text, 'echo: hello')
    const failed = engine.stream('s', 'rm -rf /')
    failed.cancel()
    failed.cancel()

    // The session is still usable and hot.
    assert.equal((await engine.execute('s', 'still here')).coldStart, false)
  }))

test('the ES module entry exports what the CommonJS one does', async () => {
  const dir = linkedProject()
  try {
    const opts = JSON.stringify(options(dir))
    const code = `
      import { Engine, Detector, ErrorCode, TurnStream, registerPromClient, setLogger, version } from 'hotplex'
      import hotplex from 'hotplex'
      import * as ns from 'hotplex'
      import { createRequire } from 'node:module'
      const cjs = createRequire(import.meta.url)('hotplex')
      const names = (o) => Object.keys(o).filter((k) => k !== 'default').sort()
      if (JSON.stringify(names(ns)) !== JSON.stringify(names(cjs))) throw new Error('ESM ' + names(ns) + ' != CJS ' + names(cjs))
      if (hotplex !== cjs || Engine !== cjs.Engine) throw new Error('not the same objects')
      if (!new Detector().checkCommand('rm -rf /').blocked) throw new Error('detector')
      void ErrorCode; void TurnStream; void registerPromClient; void setLogger; void version
      const engine = new Engine(${opts})
      const turn = await engine.execute('s', 'hello', { signal: new AbortController().signal })
      await engine.close()
      console.log(turn.text)
    `
    const r = await runNode(['--input-type=module', '-e', code], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'echo: hello')

    // The CommonJS entry through the same package name.
    const c = await runNode(['-e', "console.log(typeof require('hotplex').Engine)"], { cwd: dir })
    assert.equal(c.stdout.trim(), 'function', c.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('package.json maps import, require and types, and packs the ESM entry', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'))
  const root = pkg.exports['.']
  assert.equal(root.import, './index.mjs')
  assert.equal(root.require, './index.js')
  assert.equal(root.types, './index.d.ts')
  assert.equal(Object.keys(root)[0], 'types', 'types must come first')
  for (const file of ['index.js', 'index.mjs', 'index.d.ts']) {
    assert.ok(pkg.files.includes(file), `${file} is not packed`)
  }
})

/**
 * A child node process that loads hotplex by path, builds an engine on the
 * reference agent, runs `body` (which may use `engine`) and prints `marker`
 * at its end. It never calls process.exit.
 */
function childScript(dir, body) {
  return `
    const { Engine } = require(${JSON.stringify(PKG)})
    const engine = new Engine(${JSON.stringify(options(dir))})
    ;(async () => {
      ${body}
      console.log('end of script')
    })().catch((e) => { console.error(e); process.exitCode = 1 })
  `
}

/** Runs `childScript(body)`; returns the result and how long the child took to exit after its script ended. */
async function exitAfterScript(body) {
  const dir = tmpDir()
  try {
    let endedAt = null
    const r = await runNode(['-e', childScript(dir, body)], {
      timeoutMs: 30000,
      onLine: (line, at) => {
        if (line === 'end of script') endedAt = at
      },
    })
    assert.equal(r.signal, null, `the child did not exit by itself: ${r.stderr}`)
    assert.equal(r.code, 0, r.stderr)
    assert.ok(endedAt !== null, r.stdout)
    return { ...r, lingered: r.exitedAt - endedAt }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

test('the process exits by itself after close()', async () => {
  const r = await exitAfterScript(`
    const turn = await engine.execute('s', 'hello')
    await engine.close()
    console.log(turn.pid)
  `)
  assert.ok(r.lingered < 3000, `the process lingered ${r.lingered} ms after close()`)
  const pid = Number(r.stdout.split('\n')[0])
  assert.ok(pid > 0)
  assert.ok(!fs.existsSync(`/proc/${pid}`), `agent ${pid} outlived its host`)
})

test('an idle engine does not keep the process alive', async () => {
  // Never used.
  const fresh = await exitAfterScript('')
  assert.ok(fresh.lingered < 3000, `lingered ${fresh.lingered} ms`)
  // A hot, idle session and no close(): the process still ends, and the
  // environment's cleanup takes the agent with it.
  const hot = await exitAfterScript(`
    const turn = await engine.execute('s', 'hello')
    console.log(turn.pid)
  `)
  assert.ok(hot.lingered < 3000, `lingered ${hot.lingered} ms`)
  const pid = Number(hot.stdout.split('\n')[0])
  const deadline = Date.now() + 5000
  while (fs.existsSync(`/proc/${pid}`) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.ok(!fs.existsSync(`/proc/${pid}`), `agent ${pid} outlived its host`)
})

test('execute and stream accept a signal in their TypeScript types', (t) => {
  let tsc
  try {
    tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
  } catch {
    t.skip('typescript is not installed')
    return
  }
  const dir = tmpDir()
  try {
    const index = path.join(PKG, 'index')
    const file = path.join(dir, 'signal.ts')
    fs.writeFileSync(
      file,
      `import { Engine, AbortError, StreamOptions } from ${JSON.stringify(index)}
async function main(engine: Engine): Promise<void> {
  const controller = new AbortController()
  await engine.execute('s', 'p', { signal: controller.signal, onEvent: () => {} })
  await engine.execute('s', 'p', { signal: AbortSignal.timeout(1000) })
  const opts: StreamOptions = { signal: controller.signal, timeout: 5 }
  for await (const e of engine.stream('s', 'p', opts)) void e
  try {
    await engine.execute('s', 'p', { signal: null })
  } catch (err) {
    const e = err as AbortError
    if (e.name === 'AbortError') { const c: 'ABORT_ERR' = e.code; void c; void e.cause }
  }
}
void main
`,
    )
    // With the DOM lib's AbortSignal (a Node user has @types/node's, of the same shape).
    const r = require('node:child_process').spawnSync(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--lib', 'es2022,dom', file],
      { encoding: 'utf8' },
    )
    assert.equal(r.status, 0, r.stdout + r.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('process.exit() with turns in flight exits cleanly and takes the agents with it', async () => {
  // Ten hosts, each exiting while a turn runs: from the main script, from
  // an event callback, and from a timer while a stream is being read.
  const variants = [
    `engine.execute('s', 'stall:5000').catch(() => {})
     while (!engine.sessions().some((s) => s.pid)) await new Promise((r) => setTimeout(r, 5))
     console.log(engine.sessions()[0].pid)
     process.exit(0)`,
    `engine.execute('s', 'stall:5000', { onEvent: () => { console.log(engine.sessions()[0].pid); process.exit(0) } }).catch(() => {})
     await new Promise((r) => setTimeout(r, 10000))`,
    `setTimeout(() => { console.log(engine.sessions()[0].pid); process.exit(0) }, 100)
     for await (const _ of engine.stream('s', 'stall:5000')) { /* reading */ }`,
  ]
  const pids = []
  for (let i = 0; i < 9; i++) {
    const dir = tmpDir()
    try {
      const r = await runNode(['-e', childScript(dir, variants[i % 3])], { timeoutMs: 30000 })
      assert.equal(r.signal, null, `variant ${i % 3}: killed by ${r.signal}: ${r.stderr}`)
      assert.equal(r.code, 0, `variant ${i % 3}: ${r.stderr}`)
      assert.doesNotMatch(r.stderr, /FATAL|panicked|Abort/, r.stderr)
      pids.push(Number(r.stdout.split('\n')[0]))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  const deadline = Date.now() + 10000
  while (pids.some((p) => fs.existsSync(`/proc/${p}`)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.deepEqual(pids.filter((p) => fs.existsSync(`/proc/${p}`)), [], 'agents outlived their host')
})
