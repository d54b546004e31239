'use strict'
// Smoke check of the installed npm packages (tests/run-dist.sh runs it in a
// fresh project made from the `hotplex` tarball and its platform package's
// tarball, with no cargo on PATH): the addon comes from the platform
// package and runs its embedded supervisor program (mode 'exec'), the
// Detector blocks `rm -rf /`, the Engine runs two turns on the reference
// agent (with a session limit), and the ES module entry exports the same
// classes.
// Usage: node smoke.js <expected version> <reference-agent> <tmpdir>

const assert = require('node:assert/strict')
const path = require('node:path')

async function main() {
  const [want, agent, tmp] = process.argv.slice(2)
  const hotplex = require('hotplex')
  const pkg = require('hotplex/package.json')
  assert.equal(pkg.version, want)
  assert.equal(hotplex.version(), want)
  assert.equal(pkg.scripts && pkg.scripts.install, undefined, 'the published package runs no install script')
  // The addon is the platform package's, not one next to index.js.
  const addon = Object.keys(require.cache).find((f) => f.endsWith('.node'))
  assert.ok(addon && addon.includes(`${path.sep}@hotplex${path.sep}`), `addon loaded from ${addon}`)
  // The addon carries its supervisor program and can run it.
  assert.equal(hotplex.supervisorMode(), 'exec')

  const d = new hotplex.Detector()
  const v = d.checkCommand('rm -rf /')
  assert.ok(v.blocked && v.level === 'critical')
  assert.equal(d.checkCommand('ls -la').level, 'safe')

  const engine = new hotplex.Engine({
    binary: agent,
    env: { HOTPLEX_REF_STATE: tmp },
    defaultWorkdir: `${tmp}/work`,
    limits: { maxProcesses: 64 },
  })
  try {
    const turn = await engine.execute('smoke', 'hello')
    assert.equal(turn.text, 'echo: hello')
    assert.equal(turn.coldStart, true)
    assert.equal((await engine.execute('smoke', 'again')).coldStart, false)
  } finally {
    await engine.close()
  }

  const esm = await import('hotplex')
  assert.equal(esm.Engine, hotplex.Engine)
  assert.equal(esm.default.Detector, hotplex.Detector)
  console.log(`Node smoke (hotplex ${want}, addon ${addon}): ok`)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
