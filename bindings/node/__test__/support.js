'use strict'

// What the engine tests share: the bundled reference agent (built on
// demand), private temporary directories, and an engine on the agent that
// is always closed. Not a test file itself (node --test runs *.test.js).

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { Engine } = require('..')

// bindings/node/__test__ -> the repository root.
const ROOT = path.resolve(__dirname, '..', '..', '..')

function agent() {
  if (process.env.HOTPLEX_REFERENCE_AGENT) return process.env.HOTPLEX_REFERENCE_AGENT
  const found = path.join(ROOT, 'target', 'debug', 'hotplex-reference-agent')
  if (!fs.existsSync(found)) {
    execFileSync('cargo', ['build', '-q', '-p', 'hotplex-reference-agent'], { cwd: ROOT, stdio: 'inherit' })
  }
  return found
}

const AGENT = agent()

/** A fresh private directory. */
function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hotplex-node-test-'))
}

/** Engine options for the reference agent with its state in `dir`, plus `extra`. */
function options(dir, extra = {}) {
  return {
    binary: AGENT,
    env: { HOTPLEX_REF_STATE: dir },
    defaultWorkdir: path.join(dir, 'work'),
    // Generous: a loaded machine must not turn a clean interrupt into a kill.
    interruptGrace: 2,
    ...extra,
  }
}

/** Runs `fn(engine, dir)` with a fresh engine on the reference agent (options `extra`), then closes it. */
async function withEngine(extra, fn) {
  if (typeof extra === 'function') {
    fn = extra
    extra = {}
  }
  const dir = tmpDir()
  const engine = new Engine(options(dir, extra))
  try {
    return await fn(engine, dir)
  } finally {
    await engine.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { ROOT, AGENT, tmpDir, options, withEngine }
