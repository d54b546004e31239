'use strict'

// Loads the native addon built for this platform and re-exports its API.
// The addon is `hotplex.<triple>.node` next to this file; it comes from
// `npm run build` (napi build --platform) or from `scripts/install.js`, which
// runs on `npm install` and builds it with cargo when no prebuilt one is here.
// HOTPLEX_NODE_ADDON=/path/to/file.node overrides the lookup.

const path = require('node:path')
const { addonFileName, platformTriple } = require('./platform.js')

function load() {
  const file = process.env.HOTPLEX_NODE_ADDON || path.join(__dirname, addonFileName())
  try {
    return require(file)
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(file)) {
      const e = new Error(
        `hotplex: no native addon for ${platformTriple()} (looked for ${file}). ` +
          'Build it with `npm run build` (needs @napi-rs/cli) or `node scripts/install.js` ' +
          '(needs cargo and the hotplex source tree).',
      )
      e.code = 'HOTPLEX_ADDON_NOT_FOUND'
      e.cause = err
      throw e
    }
    throw err
  }
}

const { __errorCodes, ...binding } = load()

module.exports = binding
// Every error's `code` by name, from the core's table:
// `ErrorCode.INVALID_CONFIG === 'HOTPLEX_INVALID_CONFIG'`.
module.exports.ErrorCode = Object.freeze(
  Object.fromEntries(__errorCodes().map((code) => [code.slice('HOTPLEX_'.length), code])),
)
