#!/usr/bin/env bash
# Builds and tests the Node binding (bindings/node), then proves the user
# install path: `npm install <folder>` into a fresh project, both with the
# prebuilt addon and with the cargo fallback of scripts/install.js.
#
# Runnable from any directory. Needs node >= 18, npm, cargo, and the npm
# registry (for @napi-rs/cli, a devDependency).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/bindings/node"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

step() { printf '\n==> %s\n' "$*"; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/hotplex-node.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

cd "$PKG"

step "install devDependencies from package-lock.json (the package's own install script is skipped: napi build follows)"
# `npm ci` is the right tool, but it insists that the lock list every platform
# package of @napi-rs/cli's optional native deps (lzma, tar, wasm-tools). A
# registry that does not serve those versions (as on some mirrors) cannot
# produce such a lock, and then `npm ci` refuses it. `npm install --no-save`
# still installs exactly the locked versions and never rewrites the lock.
if ! npm ci --ignore-scripts --no-audit --no-fund >"$TMP/npm-ci.log" 2>&1; then
  grep -m3 -E 'npm error (`npm ci`|Missing)' "$TMP/npm-ci.log" >&2 || tail -n 5 "$TMP/npm-ci.log" >&2
  echo "npm ci refused the lock file; installing the locked versions with npm install --no-save" >&2
  npm install --ignore-scripts --no-save --no-audit --no-fund
fi

# Before `npm run build`: napi build rewrites index.d.ts in place, so checking
# afterwards would compare the generated file with itself.
step "index.d.ts drift check (regenerates into a temp dir, compares with the committed file)"
node scripts/check-dts.js

step "napi build --platform --release"
npm run build

step "node --test"
node --test

SMOKE="const {Detector}=require('hotplex'); const d=new Detector(); const v=d.checkCommand('rm -rf /'); if(!v.blocked||v.level!=='critical') process.exit(1); if(d.checkCommand('ls -la').level!=='safe') process.exit(1); console.log('node install ok')"
# The same through the ES module entry (package.json "exports" -> index.mjs).
ESM_SMOKE="import { Detector, Engine } from 'hotplex'; import hotplex from 'hotplex'; if (hotplex.Engine !== Engine) process.exit(1); if (!new Detector().checkCommand('rm -rf /').blocked) process.exit(1); console.log('node ESM install ok')"

step "npm pack --dry-run: the package ships both entry points, its types and the install script"
node -e '
const files = new Set(JSON.parse(require("node:child_process").execSync("npm pack --dry-run --json --ignore-scripts", { encoding: "utf8" }))[0].files.map((f) => f.path))
const missing = ["package.json", "index.js", "index.mjs", "index.d.ts", "platform.js", "scripts/install.js"].filter((f) => !files.has(f))
if (missing.length) { console.error("not packed: " + missing.join(", ")); process.exit(1) }
console.log("packed: " + [...files].sort().join(" "))
'

step "user install: npm install $PKG into a fresh project"
mkdir "$TMP/app"
cd "$TMP/app"
npm init -y >/dev/null
# --foreground-scripts shows the install script's output. A folder install is
# a symlink to $PKG; npm still runs the package's install script, which finds
# the prebuilt addon from the step above and does nothing.
npm install --foreground-scripts "$PKG"
node -e "$SMOKE"
node --input-type=module -e "$ESM_SMOKE"

step "user install without a prebuilt addon: scripts/install.js builds it with cargo"
# A copy of the package inside the source tree (so install.js finds the
# workspace by walking up) and without any .node file, as in a fresh clone.
# The folder install links it, runs its install script there, and that
# script builds the addon with cargo into the copy.
FRESH="$PKG/.install-test-$$"
trap 'rm -rf "$TMP" "$FRESH"' EXIT
mkdir "$FRESH"
cp -R "$PKG/package.json" "$PKG/index.js" "$PKG/index.mjs" "$PKG/index.d.ts" "$PKG/platform.js" "$PKG/scripts" "$FRESH/"
mkdir "$TMP/app2"
cd "$TMP/app2"
npm init -y >/dev/null
npm install --foreground-scripts "$FRESH"
ls "$FRESH"/hotplex.*.node >/dev/null
node -e "$SMOKE"
node --input-type=module -e "$ESM_SMOKE"

step "install.js fails clearly outside the source tree"
mkdir "$TMP/orphan"
cp -R "$PKG/package.json" "$PKG/index.js" "$PKG/index.mjs" "$PKG/platform.js" "$PKG/scripts" "$TMP/orphan/"
if out="$(node "$TMP/orphan/scripts/install.js" 2>&1)"; then
  echo "install.js succeeded without a workspace or addon" >&2
  exit 1
fi
grep -q "no Cargo workspace" <<<"$out"
if out="$(cd "$PKG" && HOTPLEX_NODE_FORCE_BUILD=1 CARGO=/nonexistent/cargo node scripts/install.js 2>&1)"; then
  echo "install.js succeeded without cargo" >&2
  exit 1
fi
grep -q "could not be run" <<<"$out"

echo
echo "node bindings: all checks passed"
