#!/usr/bin/env python3
"""Benchmark (not a test): hot-turn latency of the real Claude Code CLI
through hotplex.Engine versus a plain Python subprocess loop driving the
same CLI the same way (same flags, same stream-json lines, reading to the
`result` line), measured side by side in one run against the fake model on
127.0.0.1; plus the cold/hot ratio.

    target/py-venv/bin/python tests/bench/hot_turn.py [--turns 40] [--colds 3]

Needs hotplex installed (tests/run-python.sh) and the pinned CLI
(tests/e2e/install-claude.sh, run on demand).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import hotplex  # noqa: E402
from conftest import agent_env, claude_binary  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402

ARGS = [
    "--print", "--input-format", "stream-json", "--output-format", "stream-json",
    "--verbose", "--permission-prompt-tool", "stdio",
]


class PlainLoop:
    """What a host would write without hotplex: one Popen, a line per turn."""

    def __init__(self, claude, env, workdir):
        full = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "USER", "TERM")}
        full.update(env)
        self.p = subprocess.Popen(
            [claude, *ARGS, "--session-id", str(uuid.uuid4())],
            cwd=workdir, env=full, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )

    def turn(self, prompt):
        msg = {"type": "user", "message": {"role": "user",
               "content": [{"type": "text", "text": prompt}]}}
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()
        for line in self.p.stdout:
            v = json.loads(line)
            if v.get("type") == "result":
                return v.get("result")
        raise RuntimeError("the CLI exited")

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--colds", type=int, default=3)
    a = ap.parse_args()
    claude = claude_binary()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="hotplex-bench-"))
    work = tmp / "work"
    work.mkdir()
    with FakeAnthropic() as api:
        env = agent_env(api, tmp / "home")
        plain = PlainLoop(claude, env, work)
        engine = hotplex.Engine(binary=claude, env=env)
        plain.turn("warm up")
        first = engine.execute("bench", "warm up", workdir=str(work))
        hp, pl = [], []
        for i in range(a.turns):
            # Interleaved, so both see the same machine state.
            t0 = time.perf_counter()
            assert engine.execute("bench", f"turn {i}", workdir=str(work)).text == f"echo: turn {i}"
            hp.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            assert plain.turn(f"turn {i}") == f"echo: turn {i}"
            pl.append((time.perf_counter() - t0) * 1000)
        colds = [first.duration_ms]
        for i in range(a.colds - 1):
            t0 = time.perf_counter()
            t = engine.execute(f"cold-{i}", "hello", workdir=str(work))
            assert t.cold_start
            colds.append((time.perf_counter() - t0) * 1000)
        engine.close()
        plain.close()
    med_h, med_p = statistics.median(hp), statistics.median(pl)
    print(f"claude {subprocess.run([claude, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{a.turns} hot turns each, interleaved, one run")
    print(f"{'':24}{'median':>9}{'p90':>9}{'mean':>9}  (ms)")
    print(f"{'hotplex.Engine':24}{med_h:9.2f}{pct(hp, .9):9.2f}{statistics.mean(hp):9.2f}")
    print(f"{'plain subprocess loop':24}{med_p:9.2f}{pct(pl, .9):9.2f}{statistics.mean(pl):9.2f}")
    print(f"hotplex / plain (median): {med_h / med_p:.3f}  (overhead {100 * (med_h / med_p - 1):+.1f}%)")
    print(f"cold start through hotplex: median {statistics.median(colds):.0f} ms over {len(colds)}; "
          f"cold / hot = {statistics.median(colds) / med_h:.1f}x")


if __name__ == "__main__":
    main()
