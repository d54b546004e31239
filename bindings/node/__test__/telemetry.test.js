'use strict'

// Telemetry of the Node binding against the bundled reference agent: the
// metrics texts read by real parsers (parse-prometheus-text-format for the
// Prometheus text format; the OpenMetrics text by a small strict reader and
// by the core's own, `metricsSnapshot()`), the lifecycle observer, the log
// bridge (`setLogger`) and `registerPromClient` with a real prom-client
// registry. The scenario and its numbers are the core's
// (tests/reference-agent/tests/telemetry.rs).

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const parsePrometheus = require('parse-prometheus-text-format')
const client = require('prom-client')

const { Engine, setLogger, registerPromClient } = require('..')
const { ROOT, AGENT, tmpDir, options, withEngine } = require('./support')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits (without blocking the JS thread) until `cond()` holds, or fails after `ms`. */
async function until(cond, what, ms = 5000) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => e instanceof Error && e.code === code)
}

/** A bucket bound as a number (the two formats write `1e-06` and `0.000001`). */
const bound = (le) => (le === '+Inf' ? le : String(Number(le)))

/** `name{k=v,...}` with the labels sorted (and `le` as a number), as a map key. */
function key(name, labels = {}) {
  const ls = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${k === 'le' ? bound(labels[k]) : labels[k]}`)
  return ls.length ? `${name}{${ls.join(',')}}` : name
}

/** Every sample of the Prometheus text format, read by parse-prometheus-text-format. */
function promSamples(text) {
  const out = new Map()
  for (const f of parsePrometheus(text)) {
    for (const m of f.metrics) {
      if (f.type === 'HISTOGRAM') {
        for (const [le, v] of Object.entries(m.buckets)) {
          out.set(key(`${f.name}_bucket`, { ...m.labels, le }), Number(v))
        }
        out.set(key(`${f.name}_sum`, m.labels), Number(m.sum))
        out.set(key(`${f.name}_count`, m.labels), Number(m.count))
      } else {
        out.set(key(f.name, m.labels), Number(m.value))
      }
    }
  }
  return out
}

/** Every sample of `metricsSnapshot()`. */
function snapshotSamples(families) {
  const out = new Map()
  for (const f of families) {
    for (const s of f.samples) out.set(key(s.name, s.labels), s.value)
  }
  return out
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = `${NAME}="(?:[^"\\\\\\n]|\\\\.)*"`
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (\\S+)$`)

/**
 * The OpenMetrics text read strictly: `# HELP`/`# TYPE`/`# UNIT` headers,
 * a family's samples after its `# TYPE` and named after it, valid sample
 * lines, one `# EOF` at the end. Returns its samples.
 */
function openMetricsSamples(text) {
  assert.ok(text.endsWith('# EOF\n'), 'OpenMetrics text ends with # EOF')
  const lines = text.slice(0, -'# EOF\n'.length).split('\n').slice(0, -1)
  const out = new Map()
  let family = null
  for (const line of lines) {
    const header = /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/.exec(line)
    if (header) {
      if (header[1] === 'TYPE') {
        assert.match(header[3], /^(counter|gauge|histogram)$/, line)
        family = { name: header[2], type: header[3] }
      }
      continue
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`)
    const m = SAMPLE.exec(line)
    assert.ok(m, `not a sample line: ${line}`)
    assert.ok(family, `sample before any # TYPE: ${line}`)
    const suffixes = { counter: ['_total'], gauge: [''], histogram: ['_bucket', '_sum', '_count'] }[family.type]
    assert.ok(
      suffixes.some((s) => m[1] === family.name + s),
      `${m[1]} is not a sample of ${family.type} ${family.name}`,
    )
    const labels = {}
    for (const [, k, v] of (m[2] || '').matchAll(new RegExp(`(${NAME})="((?:[^"\\\\]|\\\\.)*)"`, 'g'))) {
      labels[k] = v
    }
    const value = m[3] === '+Inf' ? Infinity : Number(m[3])
    assert.ok(!Number.isNaN(value), line)
    out.set(key(m[1], labels), value)
  }
  return out
}

/** The counter and histogram samples (what cannot move between two reads). */
function stable(samples) {
  return new Map([...samples].filter(([k]) => !k.startsWith('hotplex_agent_memory_bytes')))
}

test('the scripted scenario moves every counter exactly, in all three readings, and the observer sees it in order', async () => {
  const records = []
  const dir = tmpDir()
  const engine = new Engine(options(dir, { maxSessions: 1, observer: (r) => records.push(r) }))
  try {
    await engine.execute('a', 'hello') // a starts fresh
    await engine.execute('a', 'hello')
    await engine.execute('a', 'hello')
    await rejectsWith(engine.execute('a', 'run this: rm -rf /'), 'HOTPLEX_DANGER_BLOCKED')
    await rejectsWith(engine.execute('a', 'stall:5000', { timeout: 0.3 }), 'HOTPLEX_TURN_TIMEOUT')
    await rejectsWith(engine.execute('a', 'crash'), 'HOTPLEX_SESSION_DEAD')
    await engine.execute('a', 'hello') // a resumes
    await engine.execute('b', 'hello') // b starts fresh and evicts a (maxSessions 1)

    const prom = promSamples(engine.metricsTextPrometheus())
    const get = (name, labels) => {
      const k = key(name, labels)
      assert.ok(prom.has(k), `${k} is exposed`)
      return prom.get(k)
    }
    assert.equal(get('hotplex_turns_total', { outcome: 'ok' }), 5)
    assert.equal(get('hotplex_turns_total', { outcome: 'blocked' }), 1)
    assert.equal(get('hotplex_turns_total', { outcome: 'timeout' }), 1)
    assert.equal(get('hotplex_turns_total', { outcome: 'dead' }), 1)
    assert.equal(get('hotplex_turns_total', { outcome: 'failed' }), 0)
    assert.equal(get('hotplex_session_starts_total', { mode: 'fresh' }), 2)
    assert.equal(get('hotplex_session_starts_total', { mode: 'resume' }), 1)
    assert.equal(get('hotplex_session_exits_total', { reason: 'crashed' }), 1)
    assert.equal(get('hotplex_session_exits_total', { reason: 'evicted' }), 1)
    assert.equal(get('hotplex_session_exits_total', { reason: 'closed' }), 0)
    assert.equal(get('hotplex_capacity_rejections_total'), 0)
    assert.equal(get('hotplex_waf_checks_total', { source: 'prompt' }), 8)
    assert.equal(get('hotplex_waf_blocks_total', { source: 'prompt', category: 'file_delete', level: 'critical' }), 1)
    // Turns that ran: 5 ok + the timeout + the crash.
    assert.equal(get('hotplex_turn_duration_seconds_count'), 7)
    assert.equal(get('hotplex_turn_duration_seconds_bucket', { le: '+Inf' }), 7)
    assert.equal(get('hotplex_cold_start_seconds_count'), 3)
    assert.ok(Math.abs(get('hotplex_cost_usd_total') - 0.005) < 1e-9, String(get('hotplex_cost_usd_total')))
    assert.equal(get('hotplex_sessions', { status: 'ready' }), 1)
    assert.equal(get('hotplex_sessions', { status: 'busy' }), 0)
    assert.ok(get('hotplex_agent_memory_bytes') > 0)
    assert.ok(get('hotplex_tokens_total', { kind: 'input' }) > 0)
    assert.equal(get('hotplex_observer_dropped_total'), 0)
    assert.ok([...prom.keys()].some((k) => k.startsWith('hotplex_build_info{')))

    // The OpenMetrics text and the snapshot hold the very same samples.
    const om = openMetricsSamples(engine.metricsText())
    const snapshot = engine.metricsSnapshot()
    assert.deepEqual(stable(om), stable(prom))
    assert.deepEqual(stable(snapshotSamples(snapshot)), stable(prom))
    const turns = snapshot.find((f) => f.name === 'hotplex_turns_total')
    assert.equal(turns.type, 'counter')
    assert.match(turns.help, /^Turns ended/)
    assert.deepEqual(
      turns.samples.find((s) => s.labels.outcome === 'ok'),
      { name: 'hotplex_turns_total', labels: { outcome: 'ok' }, value: 5 },
    )
    const duration = snapshot.find((f) => f.name === 'hotplex_turn_duration_seconds')
    assert.equal(duration.type, 'histogram')
    assert.deepEqual(
      duration.samples.find((s) => s.name === 'hotplex_turn_duration_seconds_bucket' && s.labels.le === '+Inf'),
      { name: 'hotplex_turn_duration_seconds_bucket', labels: { le: '+Inf' }, value: 7 },
    )

    await engine.close()
    const closed = promSamples(engine.metricsTextPrometheus())
    assert.equal(closed.get(key('hotplex_session_exits_total', { reason: 'closed' })), 1)
    assert.equal(closed.get(key('hotplex_sessions', { status: 'ready' })), 0)

    // The observer saw the same story, in order, on the JS thread.
    const exits = () => records.filter((r) => r.type === 'session_exited')
    await until(() => exits().length === 3, 'the three session_exited records')
    const outcomes = records.filter((r) => r.type === 'turn_finished').map((r) => r.outcome)
    assert.deepEqual(outcomes, ['ok', 'ok', 'ok', 'blocked', 'timeout', 'dead', 'ok', 'ok'])
    assert.deepEqual(
      exits().map((r) => [r.reason, r.sessionId]),
      [
        ['crashed', 'a'],
        ['evicted', 'a'],
        ['closed', 'b'],
      ],
    )
    // The prompt is judged before the agent starts.
    assert.deepEqual(records[0], {
      type: 'waf_verdict',
      sessionId: 'a',
      source: 'prompt',
      level: 'safe',
      category: null,
      ruleId: null,
      blocked: false,
    })
    assert.equal(records[1].type, 'session_started')
    assert.equal(records[1].mode, 'fresh')
    assert.ok(records[1].pid > 0)
    const blocked = records.find((r) => r.type === 'waf_verdict' && r.blocked)
    assert.equal(blocked.category, 'file_delete')
    assert.equal(blocked.level, 'critical')
    const turn = records.find((r) => r.type === 'turn_finished')
    assert.equal(turn.costUsd, 0.001)
    for (const k of ['durationMs', 'queuedMs', 'inputTokens', 'outputTokens']) {
      assert.equal(typeof turn[k], 'number', k)
    }
    assert.deepEqual(
      records.filter((r) => r.type === 'session_started').map((r) => [r.sessionId, r.mode]),
      [
        ['a', 'fresh'],
        ['a', 'resume'],
        ['b', 'fresh'],
      ],
    )
  } finally {
    await engine.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a throwing observer loses its record only: turns go on and later records still arrive', async () => {
  let calls = 0
  const seen = []
  const observer = (r) => {
    calls++
    if (calls % 2 === 1) throw new Error(`observer failure ${calls}`)
    seen.push(r)
  }
  const uncaught = []
  const onUncaught = (e) => uncaught.push(e)
  process.on('uncaughtException', onUncaught)
  try {
    await withEngine({ observer }, async (engine) => {
      for (let i = 0; i < 3; i++) {
        const turn = await engine.execute('s', 'hello')
        assert.ok(turn.text.length > 0)
      }
      // 3 verdicts, 1 start, 3 turns: 7 records, every other one thrown away.
      await until(() => calls >= 7, 'seven observer calls')
      assert.equal(seen.length, 3)
      assert.ok(seen.every((r) => typeof r.type === 'string' && r.sessionId === 's'))
      const m = engine.metricsText()
      assert.match(m, /^hotplex_turns_total\{outcome="ok"\} 3$/m)
      assert.match(m, /^hotplex_observer_dropped_total 0$/m)
    })
  } finally {
    process.off('uncaughtException', onUncaught)
  }
  assert.deepEqual(uncaught, [], 'no exception of the observer escapes')
})

test('records the JS thread cannot keep up with are dropped, never waited for, and counted in hotplex_observer_dropped_total', () => {
  let seen = 0
  return withEngine({ observer: () => seen++ }, async (engine) => {
    // Blocked prompts record synchronously (a verdict and a turn each), all
    // while this loop holds the JS thread: more than the queues hold.
    const n = 1500
    const turns = []
    for (let i = 0; i < n; i++) turns.push(engine.execute('s', 'run this: rm -rf /').catch((e) => e.code))
    assert.deepEqual(new Set(await Promise.all(turns)), new Set(['HOTPLEX_DANGER_BLOCKED']))
    const dropped = () =>
      Number(/^hotplex_observer_dropped_total (\S+)$/m.exec(engine.metricsTextPrometheus())[1])
    await until(() => seen + dropped() === 2 * n, 'every record delivered or counted')
    assert.ok(dropped() > 0, 'some records were dropped')
    assert.ok(seen >= 1024, `the queue delivered what it held (${seen})`)
    const snapshot = engine.metricsSnapshot().find((f) => f.name === 'hotplex_observer_dropped_total')
    assert.equal(snapshot.samples[0].value, dropped())
    assert.match(engine.metricsText(), new RegExp(`^hotplex_observer_dropped_total ${dropped()}$`, 'm'))
  })
})

test('a non-function observer is refused as a bad option', () => {
  assert.throws(
    () => new Engine({ binary: AGENT, observer: 42 }),
    (e) => e.code === 'HOTPLEX_INVALID_CONFIG' && /observer: must be a function/.test(e.message),
  )
})

test('registerPromClient fills a fresh prom-client Registry whose values are read at scrape time', () =>
  withEngine({}, async (engine) => {
    const registry = new client.Registry()
    const names = registerPromClient(engine, registry)
    assert.ok(names.includes('hotplex_turns_total'))
    assert.ok(names.includes('hotplex_turn_duration_seconds'))
    // Every family is there before any turn (as in the schema's table).
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema', 'hotplex.schema.json'), 'utf8'))
    assert.deepEqual(
      [...names].sort(),
      schema['x-hotplex-metrics'].map((m) => m.name).sort(),
    )
    let text = await registry.metrics()
    assert.match(text, /^hotplex_turns_total\{outcome="ok"\} 0$/m)

    for (let i = 0; i < 5; i++) await engine.execute('s', 'hello')
    text = await registry.metrics()
    assert.match(text, /^# TYPE hotplex_turns_total counter$/m)
    assert.match(text, /^hotplex_turns_total\{outcome="ok"\} 5$/m)
    assert.match(text, /^# TYPE hotplex_turn_duration_seconds histogram$/m)
    assert.match(text, /^hotplex_turn_duration_seconds_bucket\{le="\+Inf"\} 5$/m)
    assert.match(text, /^hotplex_turn_duration_seconds_count 5$/m)
    assert.match(text, /^hotplex_turn_duration_seconds_sum [0-9.e-]+$/m)
    assert.match(text, /^hotplex_sessions\{status="ready"\} 1$/m)
    assert.match(text, /^hotplex_build_info\{[^}]*version="[^"]+"[^}]*\} 1$/m)
    // What prom-client renders, a real parser reads back with the engine's values.
    const parsed = promSamples(text)
    const own = promSamples(engine.metricsTextPrometheus())
    for (const k of ['hotplex_turns_total{outcome=ok}', 'hotplex_cost_usd_total', 'hotplex_turn_duration_seconds_count']) {
      assert.equal(parsed.get(k), own.get(k), k)
    }
    // prom-client's JSON view too.
    const json = await registry.getMetricsAsJSON()
    const turns = json.find((m) => m.name === 'hotplex_turns_total')
    assert.deepEqual(
      turns.values.find((v) => v.labels.outcome === 'ok'),
      { labels: { outcome: 'ok' }, value: 5 },
    )

    // OpenMetrics: prom-client renames counter families; samples keep `_total`.
    registry.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE)
    const om = await registry.metrics()
    assert.match(om, /^# TYPE hotplex_turns counter$/m)
    assert.match(om, /^hotplex_turns_total\{outcome="ok"\} 5$/m)
    assert.ok(om.endsWith('# EOF\n'))
    registry.setContentType(client.Registry.PROMETHEUS_CONTENT_TYPE)
    assert.match(await registry.metrics(), /^hotplex_turns_total\{outcome="ok"\} 5$/m)

    // The values are the engine's: a registry reset leaves them alone, and
    // registering a second engine under the same names is refused.
    registry.resetMetrics()
    assert.match(await registry.metrics(), /^hotplex_turns_total\{outcome="ok"\} 5$/m)
    const other = new client.Registry()
    new client.Counter({ name: 'hotplex_cost_usd_total', help: 'taken', registers: [other] })
    assert.throws(() => registerPromClient(engine, other), /hotplex_cost_usd_total is already registered/)
    assert.equal(other.getMetricsAsArray().length, 1, 'nothing was registered')
    assert.throws(() => registerPromClient(engine, registry), /already registered/)
    assert.throws(() => registerPromClient({}, new client.Registry()), TypeError)
  }))

test('setLogger receives info records with a sessionId, filters by level, and setLogger(null) stops it', async () => {
  const logs = []
  setLogger((r) => logs.push(r), 'info')
  try {
    await withEngine({}, async (engine) => {
      await engine.execute('logged', 'hello')
      await until(() => logs.some((r) => r.sessionId === 'logged' && /turn ended/.test(r.message)), 'the turn log')
    })
    const started = logs.find((r) => r.sessionId === 'logged' && /agent started/.test(r.message))
    assert.ok(started, JSON.stringify(logs))
    assert.equal(started.level, 'info')
    assert.equal(typeof started.target, 'string')
    assert.deepEqual(Object.keys(started).sort(), ['level', 'message', 'sessionId', 'target'])
    assert.ok(logs.every((r) => ['info', 'warn', 'error'].includes(r.level)), 'nothing below info')

    // A throwing logger loses its records only; `null` turns logging off.
    setLogger(() => {
      throw new Error('logger failure')
    }, 'debug')
    await withEngine({}, (engine) => engine.execute('thrown', 'hello'))
    const before = logs.length
    setLogger(null)
    await withEngine({}, (engine) => engine.execute('silent', 'hello'))
    await sleep(100)
    assert.equal(logs.length, before)
    assert.ok(!logs.some((r) => r.sessionId === 'silent' || r.sessionId === 'thrown'))
  } finally {
    setLogger(null)
  }
  assert.throws(() => setLogger(() => {}, 'loud'), (e) => e.code === 'HOTPLEX_INVALID_ARGUMENT')
  assert.throws(() => setLogger(42), (e) => e.code === 'HOTPLEX_INVALID_ARGUMENT')
})

test('neither the observer nor the logger keeps Node running', () => {
  const dir = tmpDir()
  try {
    const script = `
      const { Engine, setLogger } = require(${JSON.stringify(path.join(__dirname, '..'))})
      setLogger(() => {}, 'debug')
      const engine = new Engine(${JSON.stringify(options(dir))})
      const withObserver = new Engine({ ...${JSON.stringify(options(dir))}, observer: () => {} })
      withObserver.execute('s', 'hello').then(() => console.log('turn done'))
    `
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 })
    assert.equal(r.error, undefined, 'the process exits on its own')
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /turn done/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('index.d.ts types the telemetry API: records narrow by type, metric families, the logger', (t) => {
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
  Engine, LifecycleRecord, LogRecord, MetricFamily, MetricName, setLogger, registerPromClient,
} from ${JSON.stringify(index)}
const engine = new Engine({
  observer: (r: LifecycleRecord) => {
    if (r.type === 'turn_finished') { const n: number = r.durationMs + r.costUsd; void n; const o: 'ok' | string = r.outcome; void o }
    if (r.type === 'session_exited') { const why: 'crashed' | 'evicted' | string = r.reason; void why }
    if (r.type === 'waf_verdict') { const c: string | null = r.category; void c }
    const id: string = r.sessionId; void id
  },
})
const text: string = engine.metricsText() + engine.metricsTextPrometheus()
const families: MetricFamily[] = engine.metricsSnapshot()
const name: MetricName = families[0].name
const v: number = families[0].samples[0].value + Number(families[0].samples[0].labels.le)
setLogger((r: LogRecord) => { const s: string | null = r.sessionId; void s }, 'debug')
setLogger(null)
const names: MetricName[] = registerPromClient(engine, { registerMetric: () => {} })
void text; void name; void v; void names
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
