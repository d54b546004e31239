'use strict'

// Interactive turns through Node (issue 19), against the bundled reference
// agent: the agent asks a question (AskUserQuestion) or proposes a plan
// (ExitPlanMode) and waits; the host answers with answerQuestion /
// approvePlan (after the turn's timeout would have run out) or through
// canUseTool. The core's rules are tested in Rust
// (tests/reference-agent/tests/interactive.rs); these prove the Node shapes:
// camelCase events in, promises and HOTPLEX_ codes out.

const test = require('node:test')
const assert = require('node:assert/strict')

const { ErrorCode } = require('..')
const { withEngine } = require('./support')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const ASK = 'ask:Which color? Red | Blue'

async function rejectsWith(promise, code) {
  let error = null
  try {
    await promise
  } catch (e) {
    error = e
  }
  assert.ok(error, `expected a rejection with ${code}`)
  assert.equal(error.code, code, error.message)
  return error
}

test('a question event carries its options and an answer given after the turn timeout reaches the agent', () =>
  withEngine(async (engine) => {
    const stream = engine.stream('s', ASK, { timeout: 0.3 })
    for await (const event of stream) {
      if (event.type !== 'ask_user_question') continue
      const [q] = event.data.questions
      assert.equal(q.question, 'Which color?')
      assert.equal(q.header, 'Q1')
      assert.equal(q.multiSelect, false)
      assert.deepEqual(q.options.map((o) => o.label), ['Red', 'Blue'])
      assert.equal(q.options[0].description, 'about Red')
      assert.equal(event.data.questionId, event.data.toolUseId)
      await sleep(1000) // past the turn's timeout
      await engine.answerQuestion('s', event.data.questionId, { 'Which color?': 'Blue' })
    }
    assert.match(stream.turn.text, /"Which color\?"="Blue"/)
  }))

test('bad answers reject with their codes and the question still waits', () =>
  withEngine(async (engine) => {
    await rejectsWith(engine.answerQuestion('s', 'toolu_x', ['Red']), ErrorCode.QUESTION_NOT_FOUND)
    const stream = engine.stream('s', 'askmulti:Which sizes? S | M | L')
    for await (const event of stream) {
      if (event.type !== 'ask_user_question') continue
      const id = event.data.questionId
      await rejectsWith(engine.answerQuestion('s', id, { 'Which shape?': 'x' }), ErrorCode.INVALID_ANSWER)
      await rejectsWith(engine.approvePlan('s', true), ErrorCode.QUESTION_NOT_FOUND)
      await engine.answerQuestion('s', id, [['S', 'L']])
    }
    assert.match(stream.turn.text, /"Which sizes\?"="S, L"/)
  }))

test('an unanswered question rejects with HOTPLEX_QUESTION_TIMEOUT and the session stays hot', () =>
  withEngine(async (engine) => {
    const { pid } = await engine.execute('s', 'hello')
    await rejectsWith(engine.execute('s', ASK, { questionTimeout: 0.3 }), 'HOTPLEX_QUESTION_TIMEOUT')
    assert.equal((await engine.execute('s', 'hi')).pid, pid)
  }))

test('the engine option questionTimeoutAnswer is what the agent reads when nobody answers', () =>
  withEngine({ questionTimeout: 0.3, questionTimeoutAnswer: 'nobody is here' }, async (engine) => {
    assert.equal((await engine.execute('s', ASK)).text, 'tool said: nobody is here')
  }))

test('an interrupt cancels the waiting question', () =>
  withEngine(async (engine) => {
    const { pid } = await engine.execute('s', 'hello')
    let id = null
    const turn = engine.execute('s', ASK, {
      onEvent: (e) => {
        if (e.type === 'ask_user_question') id = e.data.questionId
      },
    })
    while (id === null) await sleep(20)
    assert.equal(await engine.interrupt('s'), true)
    await rejectsWith(turn, ErrorCode.TURN_TIMEOUT)
    await rejectsWith(engine.answerQuestion('s', id, ['Red']), ErrorCode.QUESTION_NOT_FOUND)
    assert.equal((await engine.execute('s', 'hi')).pid, pid)
  }))

test('a plan is rejected with feedback, revised, then approved into acceptEdits', () =>
  withEngine({ permissionMode: 'plan' }, async (engine) => {
    const stream = engine.stream('s', 'plan:# Plan A')
    const plans = []
    const modes = []
    for await (const event of stream) {
      if (event.type === 'plan_mode') modes.push(event.data)
      if (event.type !== 'exit_plan_mode') continue
      plans.push(event.data.plan)
      if (plans.length === 1) {
        await engine.approvePlan('s', false, { feedback: 'add a test step' })
      } else {
        await rejectsWith(engine.approvePlan('s', false, { mode: 'acceptEdits' }), ErrorCode.INVALID_ANSWER)
        await engine.approvePlan('s', true, { mode: 'acceptEdits' })
      }
    }
    assert.deepEqual(plans, ['# Plan A', '# Plan A\nRevised after: add a test step'])
    assert.deepEqual(modes, [
      { active: true, permissionMode: 'plan' },
      { active: false, permissionMode: 'acceptEdits' },
    ])
    assert.equal(stream.turn.text, 'plan approved after 1 rejections; mode: acceptEdits')
    assert.equal((await engine.execute('s', 'mode?')).text, 'mode: acceptEdits')
  }))

test('canUseTool may answer a question itself', () => {
  const canUseTool = (tool, input) => {
    if (tool !== 'AskUserQuestion') return true
    const text = input.questions[0].question
    return { behavior: 'allow', updatedInput: { ...input, answers: { [text]: 'Red' } } }
  }
  return withEngine({ canUseTool }, async (engine) => {
    const turn = await engine.execute('s', ASK)
    assert.match(turn.text, /"Which color\?"="Red"/)
    assert.ok(!turn.events.some((e) => e.type === 'ask_user_question'))
  })
})
