#!/usr/bin/env node
'use strict'

// Drift check for the committed index.d.ts.
//
// index.d.ts is generated: while `napi build` compiles the crate, the
// `#[napi]` proc macros (napi-derive's `type-def` feature) append each item's
// TypeScript declaration, with its doc comment, to a file in the folder named
// by NAPI_TYPE_DEF_TMP_FOLDER; the CLI then sorts and renders those into
// index.d.ts. Normally the CLI keeps that folder cached under target/ and only
// forces the crate to recompile when the folder is missing. Here we pass
// `--no-dts-cache`, which makes a fresh folder and forces the recompile, so the
// output depends on the sources alone. It is written to a temp directory and
// compared byte for byte with the committed copy.
//
//   node scripts/check-dts.js            # fail (exit 1) on any difference
//   node scripts/check-dts.js --update   # overwrite index.d.ts instead
//   node scripts/check-dts.js --debug    # use the dev profile (default: --release,
//                                        # which reuses `npm run build`'s artifacts)
//
// Needs the devDependencies (@napi-rs/cli) installed and cargo on PATH.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const pkgDir = path.join(__dirname, '..')
const committed = path.join(pkgDir, 'index.d.ts')
const args = process.argv.slice(2)
const update = args.includes('--update')
const profile = args.includes('--debug') ? [] : ['--release']

function napiBin() {
  const pj = require.resolve('@napi-rs/cli/package.json', { paths: [pkgDir] })
  const { bin } = JSON.parse(fs.readFileSync(pj, 'utf8'))
  return path.join(path.dirname(pj), typeof bin === 'string' ? bin : bin.napi)
}

function lineDiff(a, b) {
  const x = a.split('\n')
  const y = b.split('\n')
  const out = []
  for (let i = 0; i < Math.max(x.length, y.length) && out.length < 40; i++) {
    if (x[i] !== y[i]) {
      if (x[i] !== undefined) out.push(`${i + 1}: - ${x[i]}`)
      if (y[i] !== undefined) out.push(`${i + 1}: + ${y[i]}`)
    }
  }
  return out.join('\n')
}

function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hotplex-dts-'))
  // The contract types (from the core's schema) head index.d.ts.
  require('./gen-types.js').write()
  try {
    const r = spawnSync(
      process.execPath,
      [napiBin(), 'build', '--platform', '--no-js', '--no-dts-cache', ...profile, '--output-dir', tmp, '--dts', 'index.d.ts'],
      { cwd: pkgDir, stdio: ['ignore', 'inherit', 'inherit'] },
    )
    if (r.error || r.status !== 0) {
      console.error(`check-dts: napi build failed (${r.error ? r.error.message : `exit ${r.status}`})`)
      return 2
    }
    const generated = fs.readFileSync(path.join(tmp, 'index.d.ts'), 'utf8')
    const current = fs.existsSync(committed) ? fs.readFileSync(committed, 'utf8') : ''
    if (generated === current) {
      console.log('check-dts: index.d.ts is up to date')
      return 0
    }
    if (update) {
      fs.writeFileSync(committed, generated)
      console.log('check-dts: index.d.ts updated')
      return 0
    }
    console.error('check-dts: index.d.ts differs from what the Rust sources generate (- committed, + generated):')
    console.error(lineDiff(current, generated))
    console.error('Run `npm run check-dts -- --update` (or `npm run build`) and commit index.d.ts.')
    return 1
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

process.exitCode = main()
