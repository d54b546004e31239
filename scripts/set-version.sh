#!/usr/bin/env bash
# Sets the hotplex version everywhere it is written: the workspace version in
# Cargo.toml (the single source: every crate and the Python package read it),
# and the copies the other ecosystems need in their own files: the npm
# packages (bindings/node/package.json, its lock file, bindings/node/npm/*),
# the Go module's ModuleVersion, the C header's HOTPLEX_VERSION (cbindgen.toml
# and include/hotplex.h), Cargo.lock, and a CHANGELOG.md section.
# hotplex-ffi/tests/version.rs fails when any of them disagrees.
#
# Usage: scripts/set-version.sh X.Y.Z     (no argument: print the version)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

current() { sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml; }
if [[ $# -eq 0 ]]; then current; exit 0; fi
new=$1
[[ $new =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "not a version: $new" >&2; exit 2; }

python3 - "$new" <<'PY'
import datetime, pathlib, re, sys
new = sys.argv[1]

def sub(path, pattern, repl, count=1):
    p = pathlib.Path(path)
    text = p.read_text(encoding="utf-8")
    out, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    if n == 0:
        sys.exit(f"set-version: no match for {pattern!r} in {path}")
    p.write_text(out, encoding="utf-8")

sub("Cargo.toml", r'(\[workspace\.package\]\nversion = ")[^"]*(")', rf"\g<1>{new}\g<2>")
sub("bindings/node/package.json", r'^(  "version": ")[^"]*(")', rf"\g<1>{new}\g<2>")
sub("bindings/node/package-lock.json", r'^(  "version": ")[^"]*(")', rf"\g<1>{new}\g<2>")
sub("bindings/node/package-lock.json", r'^(      "name": "hotplex",\n      "version": ")[^"]*(")', rf"\g<1>{new}\g<2>")
for pkg in sorted(pathlib.Path("bindings/node/npm").glob("*/package.json")):
    sub(pkg, r'^(  "version": ")[^"]*(")', rf"\g<1>{new}\g<2>")
sub("bindings/go/version.go", r'^(const ModuleVersion = ")[^"]*(")', rf"\g<1>{new}\g<2>")
sub("hotplex-ffi/cbindgen.toml", r'^(#define HOTPLEX_VERSION ")[^"\\]*(\\?")', rf"\g<1>{new}\g<2>")
sub("include/hotplex.h", r'^(#define HOTPLEX_VERSION ")[^"]*(")', rf"\g<1>{new}\g<2>")

log = pathlib.Path("CHANGELOG.md")
text = log.read_text(encoding="utf-8")
if not re.search(rf"^## \[{re.escape(new)}\]", text, flags=re.M):
    today = datetime.date.today().isoformat()
    sub(log, r"^## \[Unreleased\]\n", f"## [Unreleased]\n\n## [{new}] - {today}\n")
PY
cargo update -q --workspace --offline 2>/dev/null || cargo update -q --workspace
echo "version $new written; check with: cargo test -p hotplex-ffi --test version --test header"
