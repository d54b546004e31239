'use strict'

// One turn with partial messages on the real Claude Code CLI, from Node.
// tests/e2e/test_claude_cli.py runs it (it starts the fake Messages API and
// passes CLAUDE_BIN, AGENT_ENV and WORKDIR) and checks the printed deltas.

const { Engine } = require('hotplex')

async function main() {
  const engine = new Engine({
    binary: process.env.CLAUDE_BIN,
    env: JSON.parse(process.env.AGENT_ENV),
    turnTimeout: 60,
    startupTimeout: 60,
    partialMessages: true,
  })
  try {
    const deltas = []
    const turn = await engine.execute('live', 'a streamed reply in several pieces', {
      workdir: process.env.WORKDIR,
      onEvent: (e) => {
        if (e.type === 'answer_delta') deltas.push(e.data.text)
      },
    })
    console.log(JSON.stringify({ deltas, text: turn.text }))
  } finally {
    await engine.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
