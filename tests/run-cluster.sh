#!/usr/bin/env bash
# Sessions across hosts: hotplex.ray_serve on a local Ray cluster (a head and
# 3 worker nodes on this machine), the leases and transcripts in a Redis
# server the test starts on 127.0.0.1 (tests/cluster/test_ray_serve.py):
# spread, a lost node, a frozen owner fenced, a scale-down and a roll-out
# with no turn lost. The Redis store's own Rust tests run in `cargo test`.
#
# Uses the Python venv of tests/run-python.sh (target/py-venv; hotplex is
# built into it when missing) and adds Ray Serve from PyPI, the version
# hotplex[ray] is tested with. Needs redis-server on PATH (tests/run-all.sh
# installs Debian's) and the reference agent (built here).
#
# Usage: tests/run-cluster.sh [extra pytest args]   (from any directory)
# Env:   HOTPLEX_CLUSTER_STORE=dir  a shared directory instead of Redis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/target/py-venv"
RAY_VERSION=2.40.0

if [[ "${HOTPLEX_CLUSTER_STORE:-redis}" == redis ]] && ! command -v redis-server >/dev/null; then
    echo "run-cluster.sh: redis-server not found (apt-get install redis-server, or HOTPLEX_CLUSTER_STORE=dir)" >&2
    exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import hotplex' 2>/dev/null; then
    echo "== pip install ./bindings/python"
    "$PY" -m pip install --disable-pip-version-check --quiet --upgrade 'pip>=21.3'
    "$PY" -m pip install --disable-pip-version-check --quiet ./bindings/python
fi
if [[ "$("$PY" -c 'import ray; print(ray.__version__)' 2>/dev/null)" != "$RAY_VERSION" ]]; then
    echo "== pip install ray[serve]==$RAY_VERSION pytest"
    "$PY" -m pip install --disable-pip-version-check --quiet "ray[serve]==$RAY_VERSION" pytest
fi
cargo build -q -p hotplex-reference-agent

echo "== pytest tests/cluster"
# Ray's raylets print their state dumps when a test removes a node: dropped.
set +e
"$PY" -m pytest "$ROOT/tests/cluster" -q -s -p no:cacheprovider -p no:logging "$@" 2>&1 |
    grep --line-buffered -v -E '^\s*\[state-dump\]|^\s*\[20[0-9-]+ [0-9:,]+ I '
status=${PIPESTATUS[0]}
set -e
exit "$status"
