'use strict'

// What the engine tests share: the bundled reference agent (built on
// demand), private temporary directories, and an engine on the agent that
// is always closed. Not a test file itself (node --test runs *.test.js).

const { execFileSync, spawn } = require('node:child_process')
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

/** The package directory (bindings/node). */
const PKG = path.resolve(__dirname, '..')

/**
 * A fresh directory whose node_modules/hotplex links to this package, so a
 * child node process started there resolves `'hotplex'` as a user's would
 * (through package.json `exports`). Returns the directory.
 */
function linkedProject() {
  const dir = tmpDir()
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'hotplex'), 'dir')
  return dir
}

/**
 * Runs `node ...args` in `cwd` and resolves with `{ code, signal, stdout,
 * stderr, exitedAt }` (`exitedAt`: `Date.now()` at exit). Killed after
 * `timeoutMs` (then `signal` is `'SIGKILL'`), so a child that never exits
 * fails its test instead of hanging it. `onLine(line, at)` sees each stdout
 * line as it arrives.
 */
function runNode(args, { cwd, env, timeoutMs = 60000, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let pending = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk
      pending += chunk
      let nl
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl)
        pending = pending.slice(nl + 1)
        if (onLine) onLine(line, Date.now())
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('exit', (code, signal) => {
      const exitedAt = Date.now()
      clearTimeout(timer)
      const done = () => resolve({ code, signal, stdout, stderr, exitedAt })
      // 'close' follows once the pipes are drained, unless a process the
      // child left behind still holds them: then do not wait for it.
      child.on('close', done)
      setTimeout(done, 2000).unref()
    })
  })
}

module.exports = { ROOT, PKG, AGENT, tmpDir, options, withEngine, linkedProject, runNode }
