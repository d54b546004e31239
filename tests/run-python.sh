#!/usr/bin/env bash
# Builds and tests the Python binding the way users install it:
#   pip install ./bindings/python
# in a venv under target/py-venv (created once, then reused), runs pytest on
# bindings/python/tests, a 10-session smoke run of tests/bench/sessions.py,
# mypy's stubtest (the type stubs must match the installed package), then a
# smoke import from an unrelated directory.
#
# Usage: tests/run-python.sh [extra pytest args]   (from any directory)
# Env:   PYTHON=python3.X to pick the interpreter for a new venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/target/py-venv"

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "== creating venv $VENV"
    rm -rf "$VENV"
    mkdir -p "$ROOT/target"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

echo "== pip install ./bindings/python pytest mypy prometheus_client ray[serve]"
# Exactly what the README tells users; pip fetches maturin as the build
# backend and builds the extension from source. --force-reinstall of hotplex
# only, so an unchanged version number never leaves a stale build installed.
# pip >= 21.3 builds local directories in place, which the workspace path
# dependency (hotplex-core) needs; the pip bundled with an old 3.9 is older.
"$PY" -m pip install --disable-pip-version-check --quiet --upgrade 'pip>=21.3'
# prometheus_client is a test dependency only (test_telemetry.py parses the
# metrics with it); hotplex imports it only when PrometheusCollector is used.
"$PY" -m pip install --disable-pip-version-check --quiet pytest mypy prometheus_client
# Ray Serve: hotplex.ray_serve imports it (stubtest checks that module
# against it); tests/run-cluster.sh runs it on a local cluster. The version
# hotplex[ray] is tested with.
"$PY" -m pip install --disable-pip-version-check --quiet "ray[serve]==2.40.0"
# AsyncEngine is tested on uvloop too where uvloop installs (it has no wheel
# for every platform); its test is skipped, saying so, where it does not.
"$PY" -m pip install --disable-pip-version-check --quiet uvloop \
    || echo "uvloop did not install: the AsyncEngine-on-uvloop test is skipped"
"$PY" -m pip install --disable-pip-version-check --force-reinstall --no-deps ./bindings/python

echo "== pytest bindings/python/tests"
set +e
"$PY" -m pytest "$ROOT/bindings/python/tests" -q "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
    echo "run-python.sh: pytest collected no tests" >&2
    exit 1
elif [[ $status -ne 0 ]]; then
    exit "$status"
fi

echo "== tests/bench/sessions.py --sizes 10 (a smoke run of the sessions benchmark)"
# The benchmark's figures come from 1,000 sessions and release builds; here
# only that it runs (both supervisor modes, nothing left behind).
"$PY" "$ROOT/tests/bench/sessions.py" --sizes 10 \
    --agent "${HOTPLEX_REFERENCE_AGENT:-$ROOT/target/debug/hotplex-reference-agent}"

echo "== mypy.stubtest hotplex"
# Every stub must match the runtime; the allowlist holds the few documented
# differences stubtest cannot see through.
# Run from target/ so mypy's cache lands there, not in the source tree.
(cd "$ROOT/target" && "$PY" -m mypy.stubtest hotplex \
    --allowlist "$ROOT/bindings/python/stubtest-allowlist.txt")

echo "== smoke test from another directory"
SMOKE_DIR="$(mktemp -d)"
trap 'rm -rf "$SMOKE_DIR"' EXIT
(
    cd "$SMOKE_DIR"
    "$PY" -c "import hotplex; v=hotplex.Detector().check_command('rm -rf /'); assert v.blocked and v.level=='critical'; assert hotplex.Detector().check_command('ls -la').level=='safe'"
)
echo "python binding: ok"
