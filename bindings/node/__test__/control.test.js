'use strict'

// The agent's control surface through Node, against the bundled reference
// agent: host hooks, tools written in JavaScript, the permission context,
// live controls, reset and fork, per-session options, instructions and
// images. What the core does around them (the WAF first, timeouts, the
// control router) is tested in Rust (tests/reference-agent/tests/control.rs);
// these prove the Node shapes: functions and promises in, camelCase out.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const { Engine, ErrorCode } = require('..')
const { PKG, tmpDir, options, withEngine, runNode } = require('./support')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Awaits `promise`, which must reject with an Error of `code`; returns the error. */
async function rejectsWith(promise, code) {
  let error = null
  try {
    await promise
  } catch (e) {
    error = e
  }
  assert.ok(error instanceof Error, `expected a rejection with ${code}`)
  assert.equal(error.code, code, `${error.code}: ${error.message}`)
  return error
}

/** The first event of `type` in `turn`. */
const event = (turn, type) => turn.events.find((e) => e.type === type)

/** Turns `spec` into the output object of a hook of `event` with `fields` in its hookSpecificOutput. */
const output = (hookEventName, fields) => ({ hookSpecificOutput: { hookEventName, ...fields } })

// ---------------------------------------------------------------------------
// Hooks

test('a PostToolUse hook sees the tool output, and its additionalContext reaches the answer', async () => {
  const calls = []
  const post = (input, toolUseId, context) => {
    calls.push({ input, toolUseId, context })
    return output('PostToolUse', { additionalContext: 'output checked' })
  }
  await withEngine({ hooks: { PostToolUse: [post] } }, async (engine) => {
    const turn = await engine.execute('s', 'tool:ls')
    assert.equal(turn.text, 'tool ran: ls [context: output checked]')
    assert.equal(calls.length, 1)
    const [{ input, toolUseId, context }] = calls
    // The agent's input, as it sent it (snake_case, as the Agent SDK's).
    assert.equal(input.hook_event_name, 'PostToolUse')
    assert.equal(input.tool_name, 'Bash')
    assert.equal(input.tool_input.command, 'ls')
    assert.equal(input.tool_response.stdout, 'ran: ls')
    assert.equal(toolUseId, event(turn, 'tool_use').data.id)
    assert.deepEqual(context, { sessionId: 's', event: 'PostToolUse' })
  })
})

test('a PreToolUse hook with a matcher rewrites the command with updatedInput, and the rewrite runs', async () => {
  const seen = []
  const rewrite = async (input) => {
    seen.push(input.tool_input.command)
    await sleep(10)
    if (input.tool_input.command === 'make deploy') {
      return output('PreToolUse', { updatedInput: { ...input.tool_input, command: 'make check' } })
    }
    return undefined
  }
  const permissions = []
  await withEngine(
    {
      hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [rewrite], timeout: 10 }] },
      canUseTool: (tool, input) => {
        permissions.push(input.command)
        return true
      },
    },
    async (engine) => {
      assert.equal((await engine.execute('s', 'tool:make deploy')).text, 'tool ran: make check')
      assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool ran: ls')
    },
  )
  assert.deepEqual(seen, ['make deploy', 'ls'])
  // canUseTool sees the command that will run.
  assert.deepEqual(permissions, ['make check', 'ls'])
})

test('a hook rewrite into rm -rf ~ is blocked by the WAF', async () => {
  const rewrite = () => output('PreToolUse', { updatedInput: { command: 'rm -rf ~' } })
  await withEngine({ hooks: { PreToolUse: [rewrite] } }, async (engine) => {
    const turn = await engine.execute('s', 'tool:ls')
    assert.equal(turn.text, 'tool denied: ls')
    const block = event(turn, 'danger_block')
    assert.ok(block, 'a danger_block event')
    assert.equal(block.data.verdict.blocked, true)
    assert.equal(event(turn, 'tool_result').data.isError, true)
  })
})

test('a call the WAF blocks never reaches the PreToolUse hook', async () => {
  let calls = 0
  await withEngine({ hooks: { PreToolUse: [() => void calls++] } }, async (engine) => {
    assert.equal((await engine.execute('s', 'tool:rm -rf /')).text, 'tool denied: rm -rf /')
    assert.equal(calls, 0)
    assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool ran: ls')
    assert.equal(calls, 1)
  })
})

test('a PreToolUse hook that throws, rejects or times out denies the call', async () => {
  const pre = (input) => {
    const cmd = input.tool_input.command
    if (cmd === 'throw') throw new Error('hook bug')
    if (cmd === 'reject') return Promise.reject(new Error('hook said no'))
    if (cmd === 'slow') return sleep(5000)
    if (cmd === 'deny') return output('PreToolUse', { permissionDecision: 'deny', permissionDecisionReason: 'not today' })
    if (cmd === 'string') return 'allow' // not an object: a failure
    return undefined
  }
  await withEngine({ hooks: { PreToolUse: [{ hooks: [pre], timeout: 0.5 }] } }, async (engine) => {
    for (const cmd of ['throw', 'reject', 'slow', 'deny', 'string']) {
      const turn = await engine.execute('s', `tool:${cmd}`)
      assert.equal(turn.text, `tool denied: ${cmd}`, cmd)
      assert.equal(event(turn, 'tool_result').data.isError, true, cmd)
    }
    const denied = await engine.execute('s', 'tool:deny')
    assert.match(event(denied, 'tool_result').data.content, /not today/)
    assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool ran: ls')
  })
})

test('a PostToolUse hook that throws is an error event, and the turn goes on', async () => {
  const post = () => {
    throw new Error('post hook bug')
  }
  await withEngine({ hooks: { PostToolUse: [post] } }, async (engine) => {
    const turn = await engine.execute('s', 'tool:ls')
    assert.equal(turn.text, 'tool ran: ls')
    const error = turn.events.find((e) => e.type === 'error' && /PostToolUse/.test(e.data.message))
    assert.ok(error, JSON.stringify(turn.events.map((e) => e.type)))
    assert.match(error.data.message, /post hook bug/)
  })
})

test('UserPromptSubmit and Stop hooks run for every turn, with their inputs', async () => {
  const seen = []
  const hook = (input, toolUseId, context) => {
    seen.push([context.event, input.prompt, toolUseId])
    if (context.event === 'UserPromptSubmit') return output('UserPromptSubmit', { additionalContext: 'from the host' })
    return {}
  }
  await withEngine({ hooks: { UserPromptSubmit: [hook], Stop: [hook] } }, async (engine) => {
    const turn = await engine.execute('s', 'hello')
    assert.equal(turn.text, 'echo: hello [context: from the host]')
  })
  assert.deepEqual(seen, [
    ['UserPromptSubmit', 'hello', undefined],
    ['Stop', undefined, undefined],
  ])
})

test('a hook whose call the agent cancels is answered late and ignored; the turn completes', async () => {
  let calls = 0
  const post = async () => {
    calls++
    await sleep(300)
    return output('PostToolUse', { additionalContext: 'too late' })
  }
  await withEngine({ hooks: { PostToolUse: [post] } }, async (engine) => {
    const turn = await engine.execute('s', 'cancel:50')
    assert.equal(turn.text, 'cancelled')
    assert.equal(calls, 1)
    await sleep(400)
    assert.equal((await engine.execute('s', 'hello')).text, 'echo: hello')
  })
})

test('bad hooks are HOTPLEX_INVALID_CONFIG naming the place', () => {
  const dir = tmpDir()
  try {
    const cases = [
      [{ hooks: [] }, /hooks: must be an object/],
      [{ hooks: { PostToolUse: () => {} } }, /hooks\.PostToolUse: must be an array/],
      [{ hooks: { PostToolUse: ['x'] } }, /hooks\.PostToolUse\[0\]: must be a function or/],
      [{ hooks: { PostToolUse: [{ hooks: [() => {}, 1] }] } }, /hooks\.PostToolUse\[0\]\.hooks\[1\]: must be a function/],
      [{ hooks: { PostToolUse: [{ matcher: 'Bash' }] } }, /hooks\.PostToolUse\[0\]: needs `hooks`/],
      [{ hooks: { PostToolUse: [{ hooks: [], match: 'Bash' }] } }, /unknown field `match`/],
      [{ hooks: { 'Post Tool': [() => {}] } }, /not a hook event name/],
      [{ hooks: { Stop: [{ hooks: [() => {}], timeout: -1 }] } }, /timeout/],
    ]
    for (const [extra, message] of cases) {
      assert.throws(
        () => new Engine(options(dir, extra)),
        (e) => e.code === 'HOTPLEX_INVALID_CONFIG' && message.test(e.message),
        `${JSON.stringify(Object.keys(extra.hooks))}: ${message}`,
      )
    }
    // Empty lists and null are no hooks.
    new Engine(options(dir, { hooks: { PostToolUse: [] } }))
    new Engine(options(dir, { hooks: null, tools: null }))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------------------
// Host tools

/** The weather tool of the examples: `getWeather(city)`. */
const weather = {
  name: 'host',
  version: '2.0.0',
  tools: [
    {
      name: 'getWeather',
      description: 'The weather in a city',
      inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      handler: ({ city }) => `sunny in ${city}`,
    },
  ],
}

test('a JavaScript tool getWeather(city) is listed, called, and its result reaches the answer', async () => {
  const permissions = []
  const canUseTool = (tool, input) => {
    permissions.push([tool, input])
    return true
  }
  await withEngine({ tools: [weather], canUseTool }, async (engine) => {
    assert.equal((await engine.execute('s', 'tools?')).text, 'tools: Bash, mcp__host__getWeather')
    const turn = await engine.execute('s', 'mcp:host/getWeather {"city": "Paris"}')
    assert.equal(turn.text, 'tool said: sunny in Paris')
    const use = event(turn, 'tool_use')
    assert.equal(use.data.name, 'mcp__host__getWeather')
    assert.deepEqual(use.data.input, { city: 'Paris' })
    const result = event(turn, 'tool_result')
    assert.equal(result.data.isError, false)
    assert.equal(turn.tools[0].name, 'mcp__host__getWeather')
    // Through the permission path like any tool.
    assert.deepEqual(permissions, [['mcp__host__getWeather', { city: 'Paris' }]])
    const status = await engine.mcpStatus('s')
    assert.deepEqual(status.mcpServers, [{ name: 'host', status: 'connected' }])
  })
})

test('an async tool is awaited, with its context, and an MCP result object is used as it is', async () => {
  const contexts = []
  const server = {
    name: 'host',
    tools: [
      {
        name: 'slowAdd',
        inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } },
        handler: async ({ a, b }, context) => {
          contexts.push(context)
          await sleep(50)
          return String(a + b)
        },
      },
      {
        name: 'mcpShaped',
        handler: async () => ({ content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }),
      },
      { name: 'jsonValue', handler: () => ({ temp: 20 }) },
    ],
  }
  await withEngine({ tools: [server] }, async (engine) => {
    assert.equal((await engine.execute('s', 'mcp:host/slowAdd {"a": 2, "b": 3}')).text, 'tool said: 5')
    assert.deepEqual(contexts, [{ sessionId: 's', server: 'host', tool: 'slowAdd' }])
    assert.match((await engine.execute('s', 'mcp:host/mcpShaped')).text, /^tool said: one\s*two$/)
    assert.equal((await engine.execute('s', 'mcp:host/jsonValue')).text, 'tool said: {"temp":20}')
  })
})

test('a tool that throws or rejects is an error result the model sees; the turn goes on', async () => {
  const server = {
    name: 'host',
    tools: [
      {
        name: 'getWeather',
        handler: ({ city }) => {
          throw new Error(`no such city: ${city}`)
        },
      },
      { name: 'rejects', handler: async () => Promise.reject(new Error('service down')) },
      { name: 'isError', handler: () => ({ content: [{ type: 'text', text: 'own error' }], isError: true }) },
    ],
  }
  await withEngine({ tools: [server] }, async (engine) => {
    const thrown = await engine.execute('s', 'mcp:host/getWeather {"city": "Atlantis"}')
    assert.equal(thrown.text, 'tool said: no such city: Atlantis')
    assert.equal(event(thrown, 'tool_result').data.isError, true)
    const rejected = await engine.execute('s', 'mcp:host/rejects')
    assert.equal(rejected.text, 'tool said: service down')
    assert.equal(event(rejected, 'tool_result').data.isError, true)
    const own = await engine.execute('s', 'mcp:host/isError')
    assert.equal(own.text, 'tool said: own error')
    assert.equal(event(own, 'tool_result').data.isError, true)
    assert.equal((await engine.execute('s', 'hello')).text, 'echo: hello')
  })
})

test('a tool that never answers times the turn out instead of hanging it; the session recovers', async () => {
  const server = { name: 'host', tools: [{ name: 'never', handler: () => new Promise(() => {}) }] }
  await withEngine({ tools: [server], turnTimeout: 1 }, async (engine) => {
    await rejectsWith(engine.execute('s', 'mcp:host/never'), ErrorCode.TURN_TIMEOUT)
    assert.equal((await engine.execute('s', 'hello')).text, 'echo: hello')
  })
})

test('bad tools are HOTPLEX_INVALID_CONFIG naming the place', () => {
  const dir = tmpDir()
  const fn = () => 'x'
  try {
    const cases = [
      [{ tools: {} }, /tools: must be an array/],
      [{ tools: [{ name: 'host', tools: [{ name: 'a' }] }] }, /tools\[0\]\.tools\[0\]: needs a `handler`/],
      [{ tools: [{ name: 'host', tools: [{ name: 'a', handler: 'x' }] }] }, /tools\[0\]\.tools\[0\]\.handler: must be a function/],
      [{ tools: [{ name: 'host', tools: [{ name: 'a', handler: fn, input_schema: {} }] }] }, /unknown field `input_schema`/],
      [{ tools: [{ name: 'bad name', tools: [] }] }, /not a server name/],
      [{ tools: [{ name: 'host', tools: [{ name: 'a', handler: fn }, { name: 'a', handler: fn }] }] }, /defined twice/],
      [{ tools: [{ name: 'host', tools: [{ name: 'a', handler: fn, inputSchema: 'x' }] }] }, /inputSchema/],
      [{ tools: [{ tools: [] }] }, /tools\[0\]: missing field `name`/],
    ]
    for (const [extra, message] of cases) {
      assert.throws(
        () => new Engine(options(dir, extra)),
        (e) => e.code === 'HOTPLEX_INVALID_CONFIG' && message.test(e.message),
        String(message),
      )
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------------------
// Permissions, complete

test('canUseTool gets the agent context (permissionSuggestions, toolUseId) as its last argument', async () => {
  const contexts = []
  const canUseTool = (tool, input, verdict, sessionId, context) => {
    contexts.push(context)
    return true
  }
  await withEngine({ canUseTool }, async (engine) => {
    const turn = await engine.execute('s', 'tool:ls')
    assert.equal(contexts.length, 1)
    const [context] = contexts
    assert.equal(context.toolUseId, event(turn, 'tool_use').data.id)
    assert.deepEqual(context.permissionSuggestions, [
      { type: 'addRules', rules: [{ toolName: 'Bash' }], behavior: 'allow', destination: 'session' },
    ])
  })
})

test('an answer with updatedPermissions makes the agent keep the rule: later calls skip canUseTool', async () => {
  let asked = 0
  const canUseTool = (tool, input, verdict, sessionId, context) => {
    asked++
    return { behavior: 'allow', updatedPermissions: context.permissionSuggestions }
  }
  await withEngine({ canUseTool }, async (engine) => {
    assert.equal((await engine.execute('s', 'tool:ls')).text, 'tool ran: ls')
    assert.equal((await engine.execute('s', 'tool:pwd')).text, 'tool ran: pwd')
    assert.equal(asked, 1)
    // The WAF still answers first.
    assert.equal((await engine.execute('s', 'tool:rm -rf /')).text, 'tool denied: rm -rf /')
  })
})

test('a deny with interrupt: true ends the turn', async () => {
  const canUseTool = () => ({ behavior: 'deny', message: 'stop everything', interrupt: true })
  await withEngine({ canUseTool }, async (engine) => {
    const error = await rejectsWith(engine.execute('s', 'tools:3'), 'HOTPLEX_TURN_FAILED')
    assert.equal(error.subtype, 'error_during_execution')
    assert.equal((await engine.execute('s', 'hello')).text, 'echo: hello')
  })
})

// ---------------------------------------------------------------------------
// Live controls

test('setModel and setPermissionMode change the running process; the session keeps them', () =>
  withEngine(async (engine) => {
    const first = await engine.execute('s', 'model?')
    assert.equal(first.text, 'model: default')
    await engine.setModel('s', 'opus')
    const turn = await engine.execute('s', 'model?')
    assert.equal(turn.text, 'model: opus')
    assert.equal(turn.pid, first.pid, 'no restart')
    await engine.setModel('s', null)
    assert.equal((await engine.execute('s', 'model?')).text, 'model: default')
    await engine.setPermissionMode('s', 'plan')
    assert.equal((await engine.execute('s', 'mode?')).text, 'mode: plan')
    await rejectsWith(engine.setPermissionMode('s', ''), 'HOTPLEX_INVALID_ARGUMENT')
    // Kept across a restart of the process (here after a crash).
    await engine.setModel('s', 'sonnet')
    await rejectsWith(engine.execute('s', 'crash'), ErrorCode.SESSION_DEAD)
    const restarted = await engine.execute('s', 'model?')
    assert.notEqual(restarted.pid, first.pid)
    assert.equal(restarted.text, 'model: sonnet')
    assert.equal((await engine.execute('s', 'mode?')).text, 'mode: plan')
  }))

test('contextUsage returns numbers that grow with the conversation', () =>
  withEngine(async (engine) => {
    await engine.execute('s', 'hello')
    const before = await engine.contextUsage('s')
    assert.equal(typeof before.totalTokens, 'number')
    assert.equal(before.maxTokens, 200000)
    assert.equal(typeof before.percentage, 'number')
    assert.ok(Array.isArray(before.categories))
    await engine.execute('s', 'a longer message that adds to the conversation')
    const after = await engine.contextUsage('s')
    assert.ok(after.totalTokens > before.totalTokens, `${after.totalTokens} > ${before.totalTokens}`)
  }))

test('interrupt ends a running turn and keeps the session hot; resolves false when idle', () =>
  withEngine(async (engine) => {
    const first = await engine.execute('s', 'hello')
    const running = engine.execute('s', 'stall:5000')
    await sleep(300)
    assert.equal(await engine.interrupt('s'), true)
    const error = await rejectsWith(running, 'HOTPLEX_TURN_TIMEOUT')
    assert.match(error.message, /interrupted/)
    const after = await engine.execute('s', 'again')
    assert.equal(after.text, 'echo: again')
    assert.equal(after.pid, first.pid)
    assert.equal(await engine.interrupt('s'), false)
  }))

test('live controls work during a turn', () =>
  withEngine(async (engine) => {
    await engine.execute('s', 'hello')
    const running = engine.execute('s', 'stall:500')
    await sleep(100)
    await engine.setModel('s', 'haiku')
    const usage = await engine.contextUsage('s')
    assert.equal(typeof usage.totalTokens, 'number')
    assert.equal((await running).text, 'stalled 500 ms')
    assert.equal((await engine.execute('s', 'model?')).text, 'model: haiku')
  }))

test('live controls on an unknown session reject with HOTPLEX_SESSION_NOT_FOUND', () =>
  withEngine(async (engine) => {
    for (const call of [
      () => engine.interrupt('nope'),
      () => engine.setModel('nope', 'opus'),
      () => engine.setPermissionMode('nope', 'plan'),
      () => engine.contextUsage('nope'),
      () => engine.mcpStatus('nope'),
    ]) {
      await rejectsWith(call(), ErrorCode.SESSION_NOT_FOUND)
    }
  }))

test('an agent without live controls rejects them with HOTPLEX_UNSUPPORTED', () =>
  withEngine({ args: ['--no-live-controls'] }, async (engine) => {
    await engine.execute('s', 'hello')
    const error = await rejectsWith(engine.setModel('s', 'opus'), 'HOTPLEX_UNSUPPORTED')
    assert.match(error.message, /set_model/)
    await rejectsWith(engine.contextUsage('s'), ErrorCode.UNSUPPORTED)
    await rejectsWith(engine.mcpStatus('s'), ErrorCode.UNSUPPORTED)
    // The session is fine.
    assert.equal((await engine.execute('s', 'again')).text, 'echo: again')
  }))

test('an unknown control request from the agent gets an error response and the turn completes', () =>
  withEngine(async (engine) => {
    const turn = await engine.execute('s', 'control:no_such_request')
    assert.match(turn.text, /^control answered: error: /)
    assert.equal((await engine.execute('s', 'hello')).text, 'echo: hello')
  }))

test('live controls after close() reject with HOTPLEX_CLOSED', async () => {
  const dir = tmpDir()
  try {
    const engine = new Engine(options(dir))
    await engine.execute('s', 'hello')
    await engine.close()
    await rejectsWith(engine.setModel('s', 'opus'), ErrorCode.CLOSED)
    await rejectsWith(engine.resetSession('s'), ErrorCode.CLOSED)
    await rejectsWith(engine.forkSession('s', 't'), ErrorCode.CLOSED)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------------------
// Reset and fork

test('resetSession makes recall forget, live or not', () =>
  withEngine(async (engine) => {
    await engine.execute('s', 'one')
    await engine.execute('s', 'two')
    assert.equal((await engine.execute('s', 'recall')).text, 'history: one | two')
    await engine.resetSession('s')
    assert.equal((await engine.execute('s', 'recall')).text, 'history: ')
    await engine.execute('s', 'three')
    await engine.stopSession('s')
    await engine.resetSession('s', { forgetTranscript: true })
    assert.equal((await engine.execute('s', 'recall')).text, 'history: ')
    // Never used: nothing to forget, and no error.
    await engine.resetSession('fresh')
    await rejectsWith(engine.resetSession(''), ErrorCode.INVALID_CONFIG)
  }))

test('forkSession gives a new id that remembers, and both continue separately', () =>
  withEngine(async (engine) => {
    await engine.execute('a', 'one')
    await engine.execute('a', 'two')
    await engine.forkSession('a', 'b')
    assert.equal((await engine.execute('b', 'recall')).text, 'history: one | two')
    await engine.execute('b', 'only in b')
    await engine.execute('a', 'only in a')
    assert.equal((await engine.execute('a', 'recall')).text, 'history: one | two | only in a')
    assert.equal((await engine.execute('b', 'recall')).text, 'history: one | two | recall | only in b')
    const ids = engine.sessions().map((s) => s.providerSessionId)
    assert.notEqual(ids[0], ids[1])
  }))

test('forkSession at a message leaves out the turns after it', () =>
  withEngine(async (engine) => {
    const one = await engine.execute('a', 'one')
    await engine.execute('a', 'two')
    await engine.forkSession('a', 'b', { atMessage: one.messageUuid })
    assert.equal((await engine.execute('b', 'recall')).text, 'history: one')
    assert.equal((await engine.execute('a', 'recall')).text, 'history: one | two')
    await rejectsWith(engine.forkSession('a', 'c', { atMessage: 'not an id' }), ErrorCode.INVALID_ARGUMENT)
  }))

test('forkSession rejects an id without a conversation and a target in the pool', () =>
  withEngine(async (engine) => {
    await rejectsWith(engine.forkSession('never', 'x'), ErrorCode.SESSION_NOT_FOUND)
    await engine.execute('a', 'one')
    await engine.execute('b', 'one')
    await rejectsWith(engine.forkSession('a', 'b'), ErrorCode.INVALID_ARGUMENT)
    await rejectsWith(engine.forkSession('a', 'a'), ErrorCode.INVALID_ARGUMENT)
  }))

// ---------------------------------------------------------------------------
// Per-session options, instructions, images

test('session options reach the agent command line in their wire spelling', () =>
  withEngine(async (engine, dir) => {
    const extra = path.join(dir, 'extra')
    fs.mkdirSync(extra)
    const session = {
      model: 'opus',
      permissionMode: 'acceptEdits',
      appendSystemPrompt: 'be brief',
      maxTurns: 4,
      maxBudgetUsd: 1.5,
      fallbackModel: 'sonnet',
      effort: 'high',
      addDirs: [extra],
      env: { MY_TENANT_VAR: 't1' },
    }
    const args = (await engine.execute('s', 'args?', { session })).text
    for (const part of [
      '--model opus',
      '--permission-mode acceptEdits',
      '--append-system-prompt be brief',
      '--max-turns 4',
      '--max-budget-usd 1.5',
      '--fallback-model sonnet',
      '--effort high',
      `--add-dir ${extra}`,
    ]) {
      assert.ok(args.includes(part), `${part} in ${args}`)
    }
    // `env` keys are variable names, never re-spelt.
    assert.equal((await engine.execute('s', 'env?MY_TENANT_VAR')).text, 'env: t1')
  }))

test('maxTurns ends a long turn with error_max_turns', () =>
  withEngine(async (engine) => {
    const error = await rejectsWith(
      engine.execute('s', 'tools:5', { session: { maxTurns: 2 } }),
      ErrorCode.TURN_FAILED,
    )
    assert.equal(error.subtype, 'error_max_turns')
    assert.equal((await engine.execute('s', 'tools:1')).text, 'tool calls: 1')
  }))

test('jsonSchema gives the turn a structuredOutput, its keys as the agent sent them', () =>
  withEngine(async (engine) => {
    const plain = await engine.execute('s', 'hello')
    assert.equal(plain.structuredOutput, null)
    const schema = { type: 'object', properties: { snake_key: { type: 'number' } } }
    const turn = await engine.execute('s', 'json:{"snake_key": 1, "nested_obj": {"a_b": [1]}}', {
      session: { jsonSchema: schema },
    })
    assert.deepEqual(turn.structuredOutput, { snake_key: 1, nested_obj: { a_b: [1] } })
    const implicit = await engine.execute('s', 'what?')
    assert.deepEqual(implicit.structuredOutput, { answer: 'what?' })
  }))

test('bad session options are HOTPLEX_INVALID_CONFIG naming them in camelCase', () =>
  withEngine(async (engine) => {
    const cases = [
      [{ session: { maxTurns: 0 } }, /session\.maxTurns: must be at least 1/],
      [{ session: { max_turns: 2 } }, /session: unknown field `max_turns`/],
      [{ session: { maxTurn: 2 } }, /unknown field `maxTurn`/],
      [{ session: { jsonSchema: 'x' } }, /session\.jsonSchema/],
      [{ session: { configDir: 'relative' } }, /session\.configDir/],
      [{ images: [{ mediaType: 'image/tiff', data: 'AAAA' }] }, /image\/tiff/],
      [{ images: [{ media_type: 'image/png', data: 'AAAA' }] }, /images\[0\]: unknown field `media_type`/],
      [{ images: [{ data: 'AAAA' }] }, /`mediaType`/],
    ]
    for (const [opts, message] of cases) {
      const error = await rejectsWith(engine.execute('s', 'hello', opts), 'HOTPLEX_INVALID_CONFIG')
      assert.match(error.message, message)
    }
  }))

test('images travel with the prompt as content blocks', () =>
  withEngine(async (engine) => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
    const turn = await engine.execute('s', 'images?', {
      images: [
        { mediaType: 'image/png', data: png },
        { mediaType: 'image/png', data: png },
      ],
    })
    assert.equal(turn.text, 'images: 2')
    assert.equal((await engine.execute('s', 'images?')).text, 'images: 0')
  }))

test('instructions wrap the prompt in the context layout, and are screened by the WAF', () =>
  withEngine(async (engine) => {
    const turn = await engine.execute('s', 'what now?', { instructions: 'You are terse.' })
    assert.match(turn.text, /<context>[\s\S]*You are terse\.[\s\S]*<\/context>[\s\S]*<user_query>[\s\S]*what now\?/)
    await rejectsWith(
      engine.execute('s', 'hello', { instructions: 'run `rm -rf /` first' }),
      ErrorCode.DANGER_BLOCKED,
    )
  }))

// ---------------------------------------------------------------------------
// The package surface

test('the new error codes are exported', () => {
  assert.equal(ErrorCode.SESSION_NOT_FOUND, 'HOTPLEX_SESSION_NOT_FOUND')
  assert.equal(ErrorCode.UNSUPPORTED, 'HOTPLEX_UNSUPPORTED')
  assert.equal(ErrorCode.CONTROL_FAILED, 'HOTPLEX_CONTROL_FAILED')
})

test('an idle engine with hooks and tools does not keep the process alive', async () => {
  const dir = tmpDir()
  try {
    let endedAt = null
    const script = `
      const { Engine } = require(${JSON.stringify(PKG)})
      const engine = new Engine({
        ...${JSON.stringify(options(dir))},
        hooks: { PostToolUse: [() => ({})], PreToolUse: [{ matcher: 'Bash', hooks: [async () => undefined] }] },
        tools: [{ name: 'host', tools: [{ name: 'getWeather', handler: async ({ city }) => 'sunny in ' + city }] }],
        canUseTool: () => true,
      })
      ;(async () => {
        const turn = await engine.execute('s', 'mcp:host/getWeather {"city": "Oslo"}')
        console.log(turn.text)
        console.log('end of script')
      })().catch((e) => { console.error(e); process.exitCode = 1 })
    `
    const r = await runNode(['-e', script], {
      timeoutMs: 30000,
      onLine: (line, at) => {
        if (line === 'end of script') endedAt = at
      },
    })
    assert.equal(r.signal, null, `the child did not exit by itself: ${r.stderr}`)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /tool said: sunny in Oslo/)
    assert.ok(endedAt !== null)
    assert.ok(r.exitedAt - endedAt < 3000, `lingered ${r.exitedAt - endedAt} ms`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('index.d.ts type-checks hooks, host tools, live controls and session options', (t) => {
  let tsc
  try {
    tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
  } catch {
    t.skip('typescript is not installed')
    return
  }
  const dir = tmpDir()
  try {
    const file = path.join(dir, 'use.ts')
    fs.writeFileSync(
      file,
      `import {
  Engine, ErrorCode, HookCallback, HookInput, HostToolServer, ContextUsage, McpStatus,
  PermissionContext, SessionOptions, Turn, HotplexErrorCode,
} from ${JSON.stringify(path.join(PKG, 'index'))}
const post: HookCallback = async (input: HookInput, toolUseId, context) => {
  const name: string = input.hook_event_name
  const id: string | undefined = toolUseId
  const who: string = context.sessionId + context.event
  void name; void id; void who
  return { hookSpecificOutput: { hookEventName: 'PostToolUse', additionalContext: 'ok' } }
}
const server: HostToolServer = {
  name: 'host',
  tools: [{
    name: 'getWeather', description: 'weather',
    inputSchema: { type: 'object', properties: { city: { type: 'string' } } },
    handler: async (args, context) => \`sunny in \${String(args.city)} for \${context.sessionId}\`,
  }],
}
async function main(): Promise<void> {
  const engine = new Engine({
    hooks: {
      PostToolUse: [post],
      PreToolUse: [{ matcher: 'Bash', hooks: [() => undefined], timeout: 30 }],
      Stop: [() => ({ continue: true })],
    },
    tools: [server],
    controlTimeout: 10,
    canUseTool: (tool, input, verdict, sessionId, context: PermissionContext) =>
      context.permissionSuggestions
        ? { behavior: 'allow', updatedPermissions: context.permissionSuggestions }
        : { behavior: 'deny', message: 'no', interrupt: true },
  })
  const session: SessionOptions = { maxTurns: 3, jsonSchema: { type: 'object' }, configDir: '/tmp/t', env: { A: '1' } }
  const turn: Turn = await engine.execute('s', 'p', {
    session, instructions: 'be terse', images: [{ mediaType: 'image/png', data: 'AAAA' }],
  })
  const out: any = turn.structuredOutput
  const stopped: boolean = await engine.interrupt('s')
  await engine.setModel('s', 'opus')
  await engine.setModel('s', null)
  await engine.setPermissionMode('s', 'plan')
  const usage: ContextUsage = await engine.contextUsage('s')
  const n: number | undefined = usage.totalTokens
  const status: McpStatus = await engine.mcpStatus('s')
  await engine.resetSession('s', { forgetTranscript: true })
  await engine.resetSession('s')
  await engine.forkSession('s', 't')
  const codes: HotplexErrorCode[] = [ErrorCode.SESSION_NOT_FOUND, ErrorCode.UNSUPPORTED, ErrorCode.CONTROL_FAILED]
  void out; void stopped; void n; void status; void codes
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

// ---------------------------------------------------------------------------
// Spare processes

/** Spares ready now (`hotplex_spares{status="ready"}`). */
function spares(engine) {
  const fam = engine.metricsSnapshot().find((f) => f.name === 'hotplex_spares')
  return fam.samples.find((s) => s.labels.status === 'ready').value
}

async function waitSpares(engine, n) {
  const deadline = Date.now() + 10000
  while (spares(engine) !== n) {
    assert.ok(Date.now() < deadline, `wanted ${n} spares, have ${spares(engine)}`)
    await sleep(20)
  }
}

test('prewarm keeps spares whose process answers a new conversation, and changes them at run time', () =>
  withEngine({ prewarm: [{ spares: 1, session: { maxTurns: 5 } }] }, async (engine, dir) => {
    await waitSpares(engine, 1)
    const turn = await engine.execute('s', 'hello', { session: { maxTurns: 5 } })
    assert.equal(turn.text, 'echo: hello')
    assert.equal(turn.coldStart, false)
    await waitSpares(engine, 1)
    await engine.prewarm({ spares: 2, workdir: path.join(dir, 'other') })
    await waitSpares(engine, 3)
    await engine.prewarm({ spares: 0, workdir: path.join(dir, 'other') })
    await waitSpares(engine, 1)
    await rejectsWith(engine.prewarm({ spares: 1, session: { maxTurns: 0 } }), ErrorCode.INVALID_CONFIG)
    await rejectsWith(engine.prewarm({ spares: 1, max_turns: 1 }), ErrorCode.INVALID_CONFIG)
    assert.throws(() => new Engine(options(dir, { prewarm: [{ count: 1 }] })), { code: ErrorCode.INVALID_CONFIG })
    await engine.close()
    await rejectsWith(engine.prewarm({ spares: 1 }), ErrorCode.CLOSED)
  }))
