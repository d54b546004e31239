'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const hotplex = require('..')
const { Detector } = hotplex

const LEVELS = { critical: 1, high: 2, moderate: 3, safe: -1 }

function assertVerdictShape(v) {
  assert.equal(typeof v.blocked, 'boolean')
  assert.ok(Object.hasOwn(LEVELS, v.level), `unknown level ${v.level}`)
  assert.equal(v.levelValue, LEVELS[v.level])
  assert.equal(typeof v.reason, 'string')
  assert.ok(Array.isArray(v.suggestions))
  for (const k of ['ruleId', 'category', 'span', 'canonical']) {
    assert.ok(Object.hasOwn(v, k), `verdict has no ${k}`)
  }
}

test('version() is the core version', () => {
  assert.match(hotplex.version(), /^\d+\.\d+\.\d+/)
})

test('rm -rf / is blocked as critical', () => {
  const v = new Detector().checkCommand('rm -rf /')
  assertVerdictShape(v)
  assert.equal(v.blocked, true)
  assert.equal(v.level, 'critical')
  assert.equal(v.levelValue, 1)
  assert.equal(v.category, 'file_delete')
  assert.equal(typeof v.ruleId, 'string')
  assert.ok(v.reason.length > 0)
  assert.ok(v.suggestions.length > 0)
  assert.deepEqual(v.span, [0, 8])
})

test('ls -la is safe, with nulls for the absent fields', () => {
  const v = new Detector().checkCommand('ls -la')
  assertVerdictShape(v)
  assert.equal(v.blocked, false)
  assert.equal(v.level, 'safe')
  assert.equal(v.levelValue, -1)
  assert.equal(v.ruleId, null)
  assert.equal(v.category, null)
  assert.equal(v.span, null)
  assert.equal(v.canonical, null)
  assert.deepEqual(v.suggestions, [])
})

test('a dangerous command after a harmless one is blocked', () => {
  const cmd = 'git status; rm -rf /'
  const v = new Detector().checkCommand(cmd)
  assert.equal(v.blocked, true)
  assert.equal(v.level, 'critical')
  assert.equal(cmd.slice(...v.span), 'rm -rf /')
})

test('a quoted dangerous string is not blocked', () => {
  const v = new Detector().checkCommand("echo 'rm -rf /'")
  assert.equal(v.blocked, false)
})

test('checkPrompt: prose passes, commands in code are judged', () => {
  const d = new Detector()
  assert.equal(d.checkPrompt('Please tidy up the README and fix the typos.').blocked, false)
  const text = 'Run this for me:\n```sh\nrm -rf /\n```\n'
  const v = d.checkPrompt(text)
  assert.equal(v.blocked, true)
  assert.equal(v.level, 'critical')
  // Prompt spans cover what the reporting rule matched, which may include
  // the surrounding code fence or whitespace.
  assert.equal(text.slice(...v.span).trim(), 'rm -rf /')
})

test('checkTool accepts an object or a JSON string', () => {
  const d = new Detector()
  const obj = d.checkTool('Bash', { command: 'rm -rf /' })
  assert.equal(obj.blocked, true)
  assert.equal(obj.level, 'critical')
  const str = d.checkTool('Bash', JSON.stringify({ command: 'rm -rf /' }))
  assert.deepEqual(str, obj)
  assert.equal(d.checkTool('Bash', { command: 'ls -la' }).level, 'safe')
  assert.equal(d.checkTool('WebFetch', '{"url":"https://example.com"}').blocked, false)
})

test('bad tool input throws HOTPLEX_INVALID_ARGUMENT', () => {
  const d = new Detector()
  for (const bad of ['{not json', '[1, 2]', '"just a string"', 42, null, undefined]) {
    assert.throws(
      () => d.checkTool('Bash', bad),
      (err) => err instanceof Error && err.code === 'HOTPLEX_INVALID_ARGUMENT',
      `input ${JSON.stringify(bad)}`,
    )
  }
  const cyclic = {}
  cyclic.self = cyclic
  assert.throws(() => d.checkTool('Bash', cyclic), { code: 'HOTPLEX_INVALID_ARGUMENT' })
  // The detector still works afterwards.
  assert.equal(d.checkCommand('ls').level, 'safe')
})

test('a bad custom rule throws HOTPLEX_INVALID_RULE with its line', () => {
  assert.throws(
    () => new Detector({ rules: 'ok|fine|high|system\n(unclosed|bad|high|system' }),
    (err) => {
      assert.ok(err instanceof Error)
      assert.equal(err.code, 'HOTPLEX_INVALID_RULE')
      assert.equal(err.line, 2)
      assert.match(err.message, /line 2/)
      return true
    },
  )
  assert.throws(() => new Detector({ rules: 'x|desc|extreme|system' }), {
    code: 'HOTPLEX_INVALID_RULE',
    line: 1,
  })
})

test('a custom rule applies', () => {
  const d = new Detector({ rules: 'acme-cli\\s+wipe|Wipes the ACME account|high|system' })
  const v = d.checkCommand('acme-cli wipe --yes')
  assert.equal(v.blocked, true)
  assert.equal(v.level, 'high')
  assert.equal(v.category, 'system')
  assert.equal(v.reason, 'Wipes the ACME account')
  assert.equal(new Detector().checkCommand('acme-cli wipe --yes').blocked, false)
})

test('builtinRules: false turns the built-in rules off', () => {
  const d = new Detector({ builtinRules: false })
  assert.equal(d.checkCommand('rm -rf /').level, 'safe')
})

test('allowPaths exempts file tools under the path', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotplex-node-allow-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const input = { file_path: path.join(dir, '.env') }
  assert.equal(new Detector().checkTool('Read', input).blocked, true)
  assert.equal(new Detector({ allowPaths: [dir] }).checkTool('Read', input).level, 'safe')
  assert.throws(() => new Detector({ allowPaths: ['relative/path'] }), {
    code: 'HOTPLEX_INVALID_ARGUMENT',
  })
})

test('onAudit receives non-safe verdicts in call order', async () => {
  const events = []
  const d = new Detector({ onAudit: (e) => events.push(e) })
  const a = d.checkCommand('rm -rf /')
  d.checkCommand('ls -la') // safe: not audited
  const b = d.checkTool('Bash', { command: 'git reset --hard' })
  const c = d.checkPrompt('```\nrm -rf /\n```')
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(
    events.map((e) => e.kind),
    ['command', 'tool', 'prompt'],
  )
  assert.equal(events[0].input, 'rm -rf /')
  assert.deepEqual(events[0].verdict, a)
  assert.deepEqual(JSON.parse(events[1].input), { command: 'git reset --hard' })
  assert.deepEqual(events[1].verdict, b)
  assert.deepEqual(events[2].verdict, c)
})

test('onAudit events are delivered before the check returns', () => {
  let seen = 0
  const d = new Detector({ onAudit: () => seen++ })
  d.checkCommand('rm -rf /')
  assert.equal(seen, 1)
})

test('a throwing onAudit callback does not break checks', async () => {
  let calls = 0
  const d = new Detector({
    onAudit: () => {
      calls++
      throw new Error('callback failure')
    },
  })
  for (let i = 0; i < 3; i++) {
    const v = d.checkCommand('rm -rf /')
    assert.equal(v.blocked, true)
  }
  assert.equal(d.checkCommand('ls').level, 'safe')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(calls, 3)
})

test('onAudit may call back into the detector', () => {
  const order = []
  const d = new Detector({
    onAudit: (e) => {
      order.push(e.input)
      if (e.input === 'rm -rf /') d.checkCommand('rm -rf ~')
    },
  })
  d.checkCommand('rm -rf /')
  assert.deepEqual(order, ['rm -rf /', 'rm -rf ~'])
})

test('spans are JavaScript string offsets for non-ASCII input', () => {
  const d = new Detector()
  // 'é' is 2 UTF-8 bytes / 1 UTF-16 unit; '😀' is 4 bytes / 2 units.
  for (const prefix of ['echo héllo; ', 'echo 😀😀; ', 'echo "ünïcödé 🚀"; ']) {
    const cmd = `${prefix}rm -rf /`
    const v = d.checkCommand(cmd)
    assert.equal(v.blocked, true, cmd)
    assert.equal(v.span[0], prefix.length, cmd)
    assert.equal(cmd.slice(...v.span), 'rm -rf /', cmd)
  }
  const text = 'Café ☕ time. Now run `rm -rf /` please'
  const v = d.checkPrompt(text)
  assert.equal(v.blocked, true)
  assert.match(text.slice(...v.span), /^`?rm -rf \/`?$/)
  // A control character after astral characters: span is exactly that char.
  const ctl = '😀é\u0007x'
  const c = d.checkCommand(ctl)
  assert.equal(c.blocked, true)
  assert.deepEqual(c.span, [3, 4])
})

test('TypeScript definitions exist and describe the API', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  for (const name of [
    'class Detector',
    'checkCommand(command: string): Verdict',
    'checkPrompt',
    'checkTool',
    'interface Verdict',
    'interface DetectorOptions',
    'explain(command: string): Explanation',
    'interface Explanation',
    'interface Hit',
    'control: Verdict | null',
    'onAudit',
    "'critical' | 'high' | 'moderate' | 'safe'",
    'version(): string',
  ]) {
    assert.ok(dts.includes(name), `index.d.ts does not mention ${name}`)
  }
})

test('explain shows every stage of judging a command', () => {
  const events = []
  const d = new Detector({ onAudit: (e) => events.push(e) })
  const cmd = 'echo hi | sudo rm -rf / > /dev/null'
  const e = d.explain(cmd)
  assert.deepEqual(Object.keys(e).sort(), [
    'code', 'commands', 'control', 'effects', 'hits', 'incomplete', 'input', 'pipelines', 'redirects', 'verdict',
  ])
  // What the effect model derived: the recursive delete of the root.
  assert.ok(e.effects.some((x) => x.includes('critical') && x.includes('delete')), e.effects)
  assert.equal(e.input, cmd)
  assert.equal(e.control, null)
  assert.equal(e.incomplete, false)
  assert.ok(e.commands.includes('sudo rm -rf /') && e.commands.includes('rm -rf /'), e.commands)
  assert.ok(e.pipelines.length > 0 && e.redirects.length > 0)
  assert.deepEqual(e.code, [])
  // The verdict is checkCommand's; explaining is not audited.
  assertVerdictShape(e.verdict)
  assert.equal(events.length, 0)
  assert.deepEqual(e.verdict, d.checkCommand(cmd))
  assert.equal(events.length, 1)
  assert.ok(e.hits.length >= 2)
  for (const h of e.hits) {
    assert.deepEqual(Object.keys(h).sort(), ['category', 'level', 'levelValue', 'ruleId', 'scope', 'text'])
    assert.equal(h.levelValue, LEVELS[h.level])
    assert.ok(['text', 'script', 'command', 'redirect', 'pipeline', 'code'].includes(h.scope), h.scope)
  }
  assert.ok(e.hits.some((h) => h.ruleId === e.verdict.ruleId && h.text === 'rm -rf /'))
  assert.ok(e.hits.some((h) => h.category === 'privilege'))

  const safe = d.explain('ls -la')
  assert.deepEqual(safe.hits, [])
  assert.equal(safe.verdict.level, 'safe')
  assert.equal(safe.verdict.span, null)

  // Spans are JavaScript string offsets, as in verdicts.
  const uni = 'echo 😀é; rm -rf /'
  assert.equal(uni.slice(...d.explain(uni).verdict.span), 'rm -rf /')

  // The control-byte pre-check decides alone.
  const ctl = d.explain('ls\u001b[2J; rm -rf /')
  assert.notEqual(ctl.control, null)
  assertVerdictShape(ctl.control)
  assert.deepEqual(ctl.control, ctl.verdict)
  assert.deepEqual(ctl.hits, [])
  assert.deepEqual(ctl.control.span, [2, 3])
})
