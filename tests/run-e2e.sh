#!/usr/bin/env bash
# End-to-end: hotplex.Engine (as installed by tests/run-python.sh into
# target/py-venv) driving the real Claude Code CLI, pinned and installed from
# npm by tests/e2e/install-claude.sh (and the newest, 2.1.332, for the tests
# that run on both), against tests/e2e/fake_anthropic.py on
# 127.0.0.1. Run tests/run-python.sh first (run-all.sh does).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/target/py-venv/bin/python"
[ -x "$PY" ] || { echo "run-e2e.sh: run tests/run-python.sh first" >&2; exit 1; }
CLAUDE_BIN="$(bash "$ROOT/tests/e2e/install-claude.sh" | tail -n1)"
export CLAUDE_BIN
echo "== claude: $CLAUDE_BIN ($("$CLAUDE_BIN" --version))"
# The newest CLI on the registry here, for the tests that run on both.
CLAUDE_BIN_NEWEST="$(CLAUDE_CLI_VERSION=2.1.332 bash "$ROOT/tests/e2e/install-claude.sh" | tail -n1)"
export CLAUDE_BIN_NEWEST
echo "== claude (newest): $CLAUDE_BIN_NEWEST ($("$CLAUDE_BIN_NEWEST" --version))"
cd "$ROOT/tests/e2e"
"$PY" -m pytest -q -s -p no:cacheprovider test_claude_cli.py test_control_surface.py test_spares.py test_interactive.py test_placement.py "$@"
