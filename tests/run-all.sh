#!/usr/bin/env bash
# Builds everything from scratch and runs every test in every language:
# Rust (fmt, clippy, unit + integration tests; the containment suites
# again with forked supervisors), the C ABI (header drift, a C
# program), Go, Python (pip install + pytest; then sessions across hosts on
# a local Ray cluster with Redis) and Node (npm install + node --test), then
# the session pool end to end with the real Claude Code CLI (from Python,
# and for live text from Node and Go too), and last every README snippet
# (each is a file under examples/ that README includes verbatim, or is
# marked a fragment) and the demo.
# Installs what it needs (rustup components, promtool and redis-server from
# apt when possible, maturin, pytest and Ray Serve in a venv under target/,
# @napi-rs/cli and the pinned @anthropic-ai/claude-code from npm). `.ci/run`
# calls exactly this.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=never

for tool in cargo go node npm python3 cc; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
# fmt and clippy come with rustup's default profile; add them if absent.
if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

# promtool (Debian's prometheus package) lints the engine's metrics in the
# telemetry tests; without apt-get or root that one test is skipped.
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then
  echo "installing promtool (Debian package prometheus)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends prometheus; } >/dev/null 2>&1 \
    || echo "promtool could not be installed: its test is skipped" >&2
fi

# redis-server backs the Redis placement store's tests, which start their
# own server on a free port; without apt-get or root they are skipped. The
# package may start a daemon of its own on 6379: stopped, as nothing uses it.
if ! command -v redis-server >/dev/null && command -v apt-get >/dev/null; then
  echo "installing redis-server (Debian package redis-server)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends redis-server; } >/dev/null 2>&1 \
    || echo "redis-server could not be installed: the Redis store tests are skipped" >&2
  service redis-server stop >/dev/null 2>&1 || true
fi

passed=0
failed=0
failures=()
step() {
  local name=$1
  shift
  echo
  echo "=================== $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=================== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=================== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

step "rust fmt" cargo fmt --all -- --check
step "rust clippy" cargo clippy --workspace --all-targets -- -D warnings
step "rust docs" env RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p hotplex-core -p hotplex-ffi
step "rust tests" cargo test --no-fail-fast
# The containment suites once more with forked supervisors, the fallback
# where the embedded supervisor program cannot run (`cargo test` above runs
# them with the program, and the proc suites run both launches in one
# process). The same test binaries: only the environment differs.
step "containment suites, forked supervisors" env HOTPLEX_SUPERVISOR=fork cargo test \
  --test proc_api --test proc_fixtures --test proc_limits --test proc_churn \
  --test contained_limits --test contained_turns
step "WAF corpus scores" cargo test -q -p hotplex-core --test corpus -- --nocapture
step "C ABI, C program and Go" bash tests/run-c-go.sh
step "Python" bash tests/run-python.sh
step "Across hosts: Ray Serve cluster, Redis store" bash tests/run-cluster.sh
step "Node" bash tests/run-node.sh
# After C/Go and Node: the end-to-end suite also drives the real CLI from
# the Node addon and the Go package.
step "Claude Code CLI end-to-end" bash tests/run-e2e.sh
step "ACP agents end-to-end (OpenCode, Gemini CLI)" bash tests/run-e2e-acp.sh
step "Release artifacts" bash tests/run-dist.sh
step "README snippets and the demo" bash tests/run-readme.sh

echo
if [ ${#failures[@]} -gt 0 ]; then
  printf 'failed suite: %s\n' "${failures[@]}"
fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
