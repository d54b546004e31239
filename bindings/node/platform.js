'use strict'

// Shared by index.js (to load the addon) and scripts/install.js (to name the
// one it builds); scripts/dist.sh names the platform package with it. The names follow @napi-rs/cli's `--platform` convention, so
// `napi build --platform` and `node scripts/install.js` produce the same file:
// `hotplex.<platform>-<arch>[-<abi>].node`, e.g. `hotplex.linux-x64-gnu.node`.

const fs = require('node:fs')

/** Whether this Linux runs musl libc rather than glibc. */
function isMusl() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    // No readable ldd: ask the runtime (glibcVersionRuntime is glibc-only).
  }
  try {
    const report = process.report && process.report.getReport()
    const header = report && (typeof report === 'string' ? JSON.parse(report) : report).header
    return !(header && header.glibcVersionRuntime)
  } catch {
    return false
  }
}

/** The platform triple of this process, e.g. `linux-x64-gnu`, `darwin-arm64`. */
function platformTriple(platform = process.platform, arch = process.arch) {
  switch (platform) {
    case 'linux':
      if (arch === 'arm') return `linux-arm-${isMusl() ? 'musleabihf' : 'gnueabihf'}`
      return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
    case 'win32':
      return `win32-${arch}-msvc`
    default:
      // darwin, freebsd, android, ...
      return `${platform}-${arch}`
  }
}

/** The addon's file name for this process, e.g. `hotplex.linux-x64-gnu.node`. */
function addonFileName() {
  return `hotplex.${platformTriple()}.node`
}

/**
 * The npm package that ships the prebuilt addon for this process, e.g.
 * `@hotplex/hotplex-linux-x64-gnu` (bindings/node/npm/<triple>/package.json;
 * `@hotplex` is a placeholder scope until the project has its npm scope).
 */
function platformPackageName() {
  return `@hotplex/hotplex-${platformTriple()}`
}

module.exports = { platformTriple, addonFileName, platformPackageName, isMusl }
