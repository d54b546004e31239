'use strict'

// Interactive turns through Node on the real Claude Code CLI: a question answered after the
// turn's timeout would have run out, a plan rejected, revised and approved into acceptEdits,
// an interrupt while a question waits. tests/e2e/test_interactive.py runs it (it starts the
// fake Messages API and passes CLAUDE_BIN, AGENT_ENV, WORKDIR and MARK) and checks what the
// model saw; this prints what the host saw as one JSON line.

const fs = require('node:fs')
const path = require('node:path')
const { Engine } = require('hotplex')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main() {
  const mark = process.env.MARK
  const workdir = process.env.WORKDIR
  const out = {}
  const engine = new Engine({
    binary: process.env.CLAUDE_BIN,
    env: JSON.parse(process.env.AGENT_ENV),
    permissionMode: 'plan',
    turnTimeout: 5,
    startupTimeout: 60,
  })
  try {
    // A question, answered 8 s later: longer than the turn's timeout.
    const asked = engine.stream('n', `ask: Which color ${mark}? Red | Blue`, { workdir })
    for await (const e of asked) {
      if (e.type !== 'ask_user_question') continue
      out.question = e.data.questions[0]
      await sleep(8000)
      await engine.answerQuestion('n', e.data.questionId, { [out.question.question]: 'Blue' })
    }
    out.answered = asked.turn.text

    // A plan: rejected with feedback, revised, approved into acceptEdits; then the Bash
    // touch runs without a permission request.
    const touched = `n_${mark}.txt`
    const planned = engine.stream('n', `plan: # Plan ${mark}\\n1. touch ${touched}\nbash: touch ${touched}`)
    out.plans = []
    out.permissionRequests = []
    out.modes = []
    for await (const e of planned) {
      if (e.type === 'plan_mode') out.modes.push(e.data)
      if (e.type === 'permission_request') out.permissionRequests.push(e.data.toolName)
      if (e.type !== 'exit_plan_mode') continue
      out.plans.push(e.data.plan)
      if (out.plans.length === 1) {
        await engine.approvePlan('n', false, { feedback: `add a test step ${mark}` })
      } else {
        await engine.approvePlan('n', true, { mode: 'acceptEdits' })
      }
    }
    out.touched = fs.existsSync(path.join(workdir, touched))
    out.planPid = planned.turn.pid

    // An interrupt while a question waits: the turn ends, the session stays hot.
    let questionId = null
    const waiting = engine.execute('n', `ask: Which size ${mark}? S | M`, {
      onEvent: (e) => {
        if (e.type === 'ask_user_question') questionId = e.data.questionId
      },
    })
    while (questionId === null) await sleep(50)
    out.interrupted = await engine.interrupt('n')
    try {
      await waiting
      out.interruptedTurn = 'resolved'
    } catch (e) {
      out.interruptedTurn = e.code
    }
    try {
      await engine.answerQuestion('n', questionId, ['S'])
      out.lateAnswer = 'accepted'
    } catch (e) {
      out.lateAnswer = e.code
    }
    const after = await engine.execute('n', `after ${mark}`)
    out.afterText = after.text
    out.afterPid = after.pid
  } finally {
    await engine.close()
  }
  console.log(JSON.stringify(out))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
