#!/usr/bin/env bash
# End-to-end over the Agent Client Protocol: hotplex.Engine(provider="acp") (as installed by
# tests/run-python.sh into target/py-venv, and the Node addon tests/run-node.sh builds)
# driving the real OpenCode and Gemini CLI, pinned and installed from npm into
# target/acp-agents/ by tests/e2e/install-acp.sh, against tests/e2e/fake_openai.py on
# 127.0.0.1. Run tests/run-python.sh first (run-all.sh does).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/target/py-venv/bin/python"
[ -x "$PY" ] || { echo "run-e2e-acp.sh: run tests/run-python.sh first" >&2; exit 1; }
bash "$ROOT/tests/e2e/install-acp.sh" | while read -r name bin; do
    echo "== $name: $bin"
done
cd "$ROOT/tests/e2e"
"$PY" -m pytest -q -s -p no:cacheprovider test_acp.py "$@"
