'use strict'

// Loads the native addon built for this platform and re-exports its API.
// The addon is, in this order:
// * HOTPLEX_NODE_ADDON=/path/to/file.node, when set;
// * `hotplex.<triple>.node` next to this file: from `npm run build` (napi
//   build --platform) or from `scripts/install.js`, which builds it with
//   cargo when this package is installed from the source tree;
// * the platform package `@hotplex/hotplex-<triple>`, an optional dependency
//   of the published package (napi-rs's layout: npm installs only the one
//   whose os/cpu/libc match this machine).

const fs = require('node:fs')
const path = require('node:path')
const { addonFileName, platformTriple, platformPackageName } = require('./platform.js')

function load() {
  if (process.env.HOTPLEX_NODE_ADDON) return require(process.env.HOTPLEX_NODE_ADDON)
  const local = path.join(__dirname, addonFileName())
  if (fs.existsSync(local)) return require(local)
  const pkg = platformPackageName()
  try {
    return require(pkg)
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(pkg)) {
      const e = new Error(
        `hotplex: no native addon for ${platformTriple()}: neither ${local} nor the package ${pkg} ` +
          '(published for linux-x64-gnu; elsewhere, or when optional dependencies were skipped, it is missing). ' +
          'Build it from source: `npm install /path/to/hotplex/bindings/node` from a checkout of the ' +
          'hotplex repository runs scripts/install.js, which builds the addon with cargo (needs the Rust toolchain).',
      )
      e.code = 'HOTPLEX_ADDON_NOT_FOUND'
      e.cause = err
      throw e
    }
    throw err
  }
}

const { __errorCodes, __metricFamilies, ...binding } = load()

module.exports = binding
// Every error's `code` by name, from the core's table:
// `ErrorCode.INVALID_CONFIG === 'HOTPLEX_INVALID_CONFIG'`.
module.exports.ErrorCode = Object.freeze(
  Object.fromEntries(__errorCodes().map((code) => [code.slice('HOTPLEX_'.length), code])),
)

/**
 * Registers every metric family of `engine` into a `prom-client` registry,
 * as objects of the shape prom-client's `Registry` reads from its own
 * metrics (`name`, `help`, `type`, `aggregator`, `get()`, `reset()`):
 * `get()` reads the family's samples from `engine.metricsSnapshot()` when
 * the registry is scraped, so the values are the engine's own, never
 * copied. The families are the core's list (all of them, also those that
 * have no sample yet), so a registry scraped before the first turn already
 * has every family.
 *
 * @param {import('./index').Engine} engine
 * @param {{ registerMetric(metric: object): void }} register a prom-client `Registry`
 * @returns {string[]} the names registered
 */
function registerPromClient(engine, register) {
  if (!engine || typeof engine.metricsSnapshot !== 'function') {
    throw new TypeError('registerPromClient: engine must be a hotplex Engine')
  }
  if (!register || typeof register.registerMetric !== 'function') {
    throw new TypeError('registerPromClient: register must be a prom-client Registry')
  }
  // One snapshot per scrape: `Registry.metrics()` calls every metric's
  // `get()` in one synchronous pass, so families read one consistent
  // snapshot, taken once; it is dropped before anything else runs.
  let snapshot = null
  const families = () => {
    if (snapshot === null) {
      snapshot = new Map(engine.metricsSnapshot().map((f) => [f.name, f]))
      queueMicrotask(() => {
        snapshot = null
      })
    }
    return snapshot
  }
  const docs = __metricFamilies()
  // All or nothing: a name already taken (a second engine in the same
  // registry) is refused before anything is registered.
  if (typeof register.getSingleMetric === 'function') {
    const taken = docs.find((doc) => register.getSingleMetric(doc.name))
    if (taken) {
      throw new Error(
        `registerPromClient: a metric named ${taken.name} is already registered ` +
          '(register each engine into a registry of its own; Registry.merge combines them)',
      )
    }
  }
  const names = []
  for (const doc of docs) {
    const metric = promMetric(doc, families, register)
    register.registerMetric(metric)
    names.push(doc.name)
  }
  return names
}

// The start of the content type of an OpenMetrics prom-client registry
// (`Registry.OPENMETRICS_CONTENT_TYPE`; prom-client is not a dependency).
const OPENMETRICS = 'application/openmetrics-text'

/** A prom-client metric object for one documented family, in `register`. */
function promMetric(doc, families, register) {
  return {
    // An OpenMetrics registry renames counters in place before each scrape
    // (`hotplex_turns_total` -> `hotplex_turns`, then appends `_total` to
    // each sample), and never back: `get()` names the family after
    // `doc.name` and the registry's content type at scrape time instead.
    name: doc.name,
    help: doc.help,
    type: doc.type,
    // Across cluster workers: counts and sizes add up; the build is one.
    aggregator: doc.name.endsWith('_info') ? 'first' : 'sum',
    get() {
      const family = families().get(doc.name)
      let samples = family ? family.samples : []
      if (doc.type === 'histogram') {
        // prom-client's (and Prometheus') own order: buckets, then `_sum`
        // and `_count` (the OpenMetrics text has them first).
        const rank = (s) => (s.name.endsWith('_bucket') ? 0 : s.name.endsWith('_sum') ? 1 : 2)
        samples = [...samples].sort((a, b) => rank(a) - rank(b))
      }
      const om = String(register.contentType || '').startsWith(OPENMETRICS)
      return {
        name: om && doc.type === 'counter' ? doc.name.replace(/_total$/, '') : doc.name,
        help: this.help,
        type: this.type,
        aggregator: this.aggregator,
        values: samples.map((s) =>
          doc.type === 'histogram'
            ? // `_bucket` (label `le`), `_sum`, `_count`: each its own sample name.
              { labels: { ...s.labels }, value: s.value, metricName: s.name }
            : // prom-client names the sample (adding `_total` in OpenMetrics).
              { labels: { ...s.labels }, value: s.value },
        ),
      }
    },
    // The values are the engine's: `register.resetMetrics()` leaves them be.
    reset() {},
  }
}

module.exports.registerPromClient = registerPromClient
