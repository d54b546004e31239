#!/usr/bin/env python3
"""Benchmark (not a test): what a spare process saves. Through one hotplex.Engine on the
real Claude Code CLI against the fake model on 127.0.0.1, side by side in one run and
interleaved (so that all three see the same machine load), the wall time of execute() for

- cold:  the first turn of a new session with no spare for it (its workdir has no profile):
         the agent's cold start, then the turn;
- spare: the first turn of a new session that takes a ready spare (prewarm profile of its
         workdir; the wait for the spare to be ready is not counted);
- hot:   a later turn of a session whose process is running;

then p50/p90 of each and the spare/hot and cold/hot ratios. Issue 10's target: spare/hot <= 2.

    target/py-venv/bin/python tests/bench/spares.py [--samples 10] [--claude PATH]

Needs hotplex installed (tests/run-python.sh) and the CLI (tests/e2e/install-claude.sh, run
on demand for the pinned version; CLAUDE_BIN or --claude for another, e.g.
tests/e2e/.claude-cli-2.1.332/node_modules/.bin/claude).
"""

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import hotplex  # noqa: E402
from conftest import agent_env, claude_binary  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402


def ready_spares(eng) -> float:
    return next(s["value"] for f in eng.metrics_snapshot() if f["name"] == "hotplex_spares"
                for s in f["samples"] if s["labels"] == {"status": "ready"})


def wait_ready(eng, within=120.0):
    deadline = time.monotonic() + within
    while ready_spares(eng) < 1:
        if time.monotonic() > deadline:
            sys.exit("no spare became ready in %ss" % within)
        time.sleep(0.02)


def timed(eng, sid, prompt, workdir=None):
    t0 = time.perf_counter()
    turn = eng.execute(sid, prompt, workdir)
    return time.perf_counter() - t0, turn


def pct(xs, p):
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--claude", default=None, help="the CLI (default: CLAUDE_BIN, else the pinned)")
    args = ap.parse_args(argv)
    claude = args.claude or claude_binary()
    version = subprocess.run([claude, "--version"], capture_output=True, text=True).stdout.strip()
    times = {"cold": [], "spare": [], "hot": []}
    claimed = 0
    with FakeAnthropic() as api, tempfile.TemporaryDirectory(prefix="hotplex-bench-spares-") as tmp:
        tmp = pathlib.Path(tmp)
        warm, cold = tmp / "warm", tmp / "cold"
        warm.mkdir()
        cold.mkdir()
        env = agent_env(api, tmp / "home")
        with hotplex.Engine(binary=claude, env=env, state_dir=str(tmp / "state"),
                            default_workdir=str(warm), turn_timeout=120.0, startup_timeout=120.0,
                            prewarm=[{"spares": 1, "workdir": str(warm)}]) as eng:
            for i in range(args.samples):
                dt, t = timed(eng, f"cold-{i}", "cold", str(cold))
                assert t.cold_start
                times["cold"].append(dt)
                # Each measurement with no other agent busy: a CLI goes on
                # working for a while after its first turn.
                eng.stop_session(f"cold-{i}")
                wait_ready(eng)
                dt, t = timed(eng, f"spare-{i}", "spare", str(warm))
                claimed += not t.cold_start
                times["spare"].append(dt)
                dt, t = timed(eng, f"spare-{i}", "hot")
                assert not t.cold_start
                times["hot"].append(dt)
                eng.stop_session(f"spare-{i}")
    p50 = {k: pct(v, 0.5) for k, v in times.items()}
    print("claude %s, %d samples each, interleaved; execute() wall time" % (version, args.samples))
    print("%-6s %9s %9s %9s" % ("", "p50 ms", "p90 ms", "max ms"))
    for k, v in times.items():
        print("%-6s %9.1f %9.1f %9.1f" % (k, p50[k] * 1e3, pct(v, 0.9) * 1e3, max(v) * 1e3))
    print("first turns that took a spare: %d of %d" % (claimed, args.samples))
    print("spare/hot %.2f (target <= 2)   cold/hot %.2f   cold/spare %.2f"
          % (p50["spare"] / p50["hot"], p50["cold"] / p50["hot"], p50["cold"] / p50["spare"]))
    return 0 if claimed == args.samples else 1


if __name__ == "__main__":
    sys.exit(main())
