const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { Engine } = require('hotplex');

async function main() {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'hotplex-')); // e.g. /var/lib/app/hotplex
  const engine = new Engine({
    binary: process.env.HOTPLEX_AGENT ?? 'claude', // the Claude Code CLI by default
    maxSessions: 16,
    turnTimeout: 300,
    stateDir: state,
  });
  try {
    const turn = await engine.execute('chat-42', 'fix the failing test', {
      workdir: path.join(state, 'app'),
      onEvent: (e) => console.log(e.type, e.data), // in order, before the promise settles
    });
    console.log(turn.text, turn.coldStart, turn.durationMs, turn.usage.inputTokens, turn.costUsd);
    for await (const event of engine.stream('chat-42', 'now run it')) {
      console.log(event.type);
    }
  } finally {
    await engine.close();
  }
}

main().catch((err) => {
  console.error(err.code, err.message);
  process.exitCode = 1;
});
