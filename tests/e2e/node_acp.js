'use strict'

// A real ACP agent (OpenCode) through Node: five turns on one process, the WAF denying a
// `rm -rf ~` the model asks for, a turn over its timeout cancelled with the next one hot, a
// killed agent (HOTPLEX_SESSION_DEAD) whose conversation the next turn loads. Run by
// tests/e2e/test_acp.py, which starts the fake model API and passes SPEC (binary, args, env,
// stateDir, workdir); this prints what the host saw as one JSON line, for the test to check.

const { Engine } = require('hotplex')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main() {
  const spec = JSON.parse(process.env.SPEC)
  const out = {}
  const engine = new Engine({
    provider: 'acp',
    binary: spec.binary,
    args: spec.args,
    env: spec.env,
    envAllow: [],
    stateDir: spec.stateDir,
    defaultWorkdir: spec.workdir,
    turnTimeout: 120,
    startupTimeout: 180,
    interruptGrace: 5,
  })
  try {
    const turns = []
    for (let i = 0; i < 5; i++) turns.push(await engine.execute('n', `node turn ${i}`))
    out.texts = turns.map((t) => t.text)
    out.cold = turns.map((t) => t.coldStart)
    out.pids = [...new Set(turns.map((t) => t.pid))]
    out.coldMs = turns[0].durationMs
    out.hotMs = turns.slice(1).map((t) => t.durationMs)

    const denied = await engine.execute('n', 'RUNTOOL rm -rf ~', { wafApproved: true })
    out.deniedEvents = denied.events.map((e) => e.type)
    out.deniedLevel = (denied.events.find((e) => e.type === 'danger_block') || { data: {} }).data
      .verdict?.level

    try {
      await engine.execute('n', 'SLOW 60\nstall', { timeout: 3 })
      out.timedOut = 'resolved'
    } catch (e) {
      out.timedOut = e.code
    }
    const after = await engine.execute('n', 'after the timeout')
    out.afterText = after.text
    out.afterPid = after.pid

    const slow = engine.execute('n', 'SLOW 60\nslow answer')
    await sleep(2000)
    process.kill(after.pid, 'SIGKILL')
    try {
      await slow
      out.killed = 'resolved'
    } catch (e) {
      out.killed = e.code
    }
    const next = await engine.execute('n', 'RECALL')
    out.nextResumed = next.resumed
    out.nextText = next.text
  } finally {
    await engine.close()
  }
  console.log(JSON.stringify(out))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
