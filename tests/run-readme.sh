#!/usr/bin/env bash
# README snippets: checks that every code block in README.md is a verbatim
# copy of a file that this script runs, or is marked as a fragment
# (tests/check_readme.py), then runs those files in every language against the
# bundled reference agent. Needs what the other suites build first: the Python
# venv (tests/run-python.sh), the Node addon (tests/run-node.sh) and
# libhotplex (tests/run-c-go.sh); tests/run-all.sh runs it after them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="$ROOT/target"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hotplex-readme.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
step() { printf '\n==> %s\n' "$*"; }

step "README blocks are included files or fragments"
python3 tests/check_readme.py

cargo build -q -p hotplex-reference-agent
export HOTPLEX_AGENT="$ROOT/target/debug/hotplex-reference-agent"

step "the demo (README's first command)"
cargo run -q -p hotplex-core --example demo >"$TMP/demo.log" 2>&1 || { cat "$TMP/demo.log"; exit 1; }
tail -n 3 "$TMP/demo.log"

step "Rust examples"
cargo run -q -p hotplex-core --example readme_waf
cargo run -q -p hotplex-core --example readme_containment
cargo run -q -p hotplex-core --example readme_telemetry

step "Python examples"
for f in examples/python/*.py; do
    echo "-- $f"
    (cd "$TMP" && "$ROOT/target/py-venv/bin/python" "$ROOT/$f")
done

step "Node examples"
mkdir -p "$TMP/node_modules"
ln -s "$ROOT/bindings/node" "$TMP/node_modules/hotplex"
for f in examples/node/*.js; do
    echo "-- $f"
    NODE_PATH="$TMP/node_modules" node "$f"
done

step "C example"
cc -Wall -Wextra -Werror examples/c/detector.c -Iinclude -Ltarget/release -lhotplex -o "$TMP/detector"
LD_LIBRARY_PATH="$ROOT/target/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$TMP/detector"

step "Go example"
HEADER_SUM="$(sha256sum "$ROOT/include/hotplex.h" | cut -c1-16)"
export CGO_ENABLED=1 CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DHOTPLEX_HEADER_SHA256_PREFIX=0x$HEADER_SUM"
(cd examples/go && go vet . && go run .)

echo
echo "README examples: all ran"
