#!/usr/bin/env node
'use strict'

// `npm install` hook of the `hotplex` package in the source tree (the
// cargo fallback). The published package has no install script: its addon
// comes from the platform package `@hotplex/hotplex-<triple>`, an optional
// dependency (see index.js), and this script is the way to build one where
// no such package exists, from a checkout of the repository.
//
// * If a prebuilt addon for this machine (`hotplex.<triple>.node`) sits next
//   to index.js, or its platform package is installed, there is nothing to do.
// * Otherwise build it from source: find the Cargo workspace by walking up
//   from this package's directory, run
//   `cargo build --release -p hotplex-node --manifest-path <workspace>/Cargo.toml`
//   and copy the cdylib to `hotplex.<triple>.node`.
//
// Uses only Node's standard library: devDependencies (@napi-rs/cli) are not
// installed for users. HOTPLEX_NODE_FORCE_BUILD=1 rebuilds even when a
// prebuilt addon is present; CARGO selects the cargo binary.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { addonFileName, platformPackageName } = require('../platform.js')

const CRATE = 'hotplex-node'

function fail(message) {
  process.stderr.write(`\nhotplex install: ${message}\n\n`)
  process.exit(1)
}

function log(message) {
  process.stderr.write(`hotplex install: ${message}\n`)
}

/** The nearest ancestor of `start` (inclusive) whose Cargo.toml is a workspace holding CRATE. */
function findWorkspace(start) {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'Cargo.toml')
    let text = null
    try {
      text = fs.readFileSync(manifest, 'utf8')
    } catch {
      // no manifest here
    }
    if (text !== null && /^\s*\[workspace\]/m.test(text)) return manifest
    if (path.dirname(dir) === dir) return null
  }
}

/** The cdylib file name cargo produces for this OS. */
function cdylibName() {
  const base = CRATE.replace(/-/g, '_')
  if (process.platform === 'win32') return `${base}.dll`
  if (process.platform === 'darwin') return `lib${base}.dylib`
  return `lib${base}.so`
}

/** Whether the platform package for this machine resolves from `pkgDir`. */
function platformPackageInstalled(pkgDir) {
  try {
    require.resolve(`${platformPackageName()}/package.json`, { paths: [pkgDir] })
    return true
  } catch {
    return false
  }
}

function main() {
  const pkgDir = fs.realpathSync(path.join(__dirname, '..'))
  const dest = path.join(pkgDir, addonFileName())
  const force = /^(1|true|yes)$/i.test(process.env.HOTPLEX_NODE_FORCE_BUILD || '')

  if (fs.existsSync(dest) && !force) {
    log(`using prebuilt ${path.basename(dest)}`)
    return
  }
  if (!force && platformPackageInstalled(pkgDir)) {
    log(`using the prebuilt addon of ${platformPackageName()}`)
    return
  }

  const why = force
    ? 'HOTPLEX_NODE_FORCE_BUILD is set'
    : `no prebuilt ${path.basename(dest)} for this platform`
  const manifest = findWorkspace(pkgDir)
  if (!manifest) {
    fail(
      `${why}, and no Cargo workspace ` +
        `found above ${pkgDir} to build it from.\n` +
        `No prebuilt package (${platformPackageName()}) exists for this platform: install hotplex from a ` +
        'checkout of its source tree (npm install /path/to/hotplex/bindings/node), which builds the addon ' +
        'with cargo.',
    )
  }

  const cargo = process.env.CARGO || 'cargo'
  const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' })
  if (probe.error || probe.status !== 0) {
    fail(
      `${why}, and \`${cargo}\` could not be run ` +
        `(${probe.error ? probe.error.message : `exit ${probe.status}`}).\n` +
        'Install the Rust toolchain (https://rustup.rs) and run npm install again.',
    )
  }

  const meta = spawnSync(
    cargo,
    ['metadata', '--format-version', '1', '--no-deps', '--manifest-path', manifest],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  )
  if (meta.error || meta.status !== 0) {
    fail(`\`cargo metadata\` failed for ${manifest}:\n${meta.stderr || meta.error}`)
  }
  const { target_directory: targetDir, packages } = JSON.parse(meta.stdout)
  if (!packages.some((p) => p.name === CRATE)) {
    fail(`the workspace ${manifest} has no ${CRATE} crate to build`)
  }

  log(`building ${CRATE} with ${probe.stdout.trim()} (workspace ${manifest})`)
  const build = spawnSync(cargo, ['build', '--release', '-p', CRATE, '--manifest-path', manifest], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  if (build.error || build.status !== 0) {
    fail(`\`cargo build --release -p ${CRATE}\` failed (${build.error ? build.error.message : `exit ${build.status}`})`)
  }

  const built = path.join(targetDir, 'release', cdylibName())
  if (!fs.existsSync(built)) fail(`cargo succeeded but ${built} does not exist`)
  // Copy then rename, so a concurrent `require` never sees a half-written file.
  const tmp = `${dest}.tmp-${process.pid}`
  fs.copyFileSync(built, tmp)
  fs.renameSync(tmp, dest)
  log(`built ${path.basename(dest)}`)
}

main()
