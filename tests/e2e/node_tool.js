'use strict'

// A Node host tool and a PostToolUse hook on the real Claude Code CLI.
// tests/e2e/test_control_surface.py runs it (it starts the fake Messages API and
// passes CLAUDE_BIN, AGENT_ENV, WORKDIR and MARK) and checks what the model saw.

const { Engine } = require('hotplex')

async function main() {
  const mark = process.env.MARK
  const calls = []
  const hooked = []
  const engine = new Engine({
    binary: process.env.CLAUDE_BIN,
    env: JSON.parse(process.env.AGENT_ENV),
    turnTimeout: 60,
    startupTimeout: 60,
    tools: [{
      name: 'host',
      tools: [{
        name: 'get_weather',
        description: 'The weather in a city',
        inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        handler: async (args) => { calls.push(args); return `rainy in ${args.city} ${mark}` },
      }],
    }],
    hooks: {
      PostToolUse: [(input) => {
        hooked.push(input.tool_name)
        return { hookSpecificOutput: { hookEventName: 'PostToolUse', additionalContext: `node saw ${mark}` } }
      }],
    },
  })
  try {
    const turn = await engine.execute('n', 'tool: mcp__host__get_weather {"city": "Bergen"}', {
      workdir: process.env.WORKDIR,
    })
    console.log(JSON.stringify({ text: turn.text, calls, hooked }))
  } finally {
    await engine.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
