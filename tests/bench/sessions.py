#!/usr/bin/env python3
"""Benchmark (not a test): many concurrent sessions of the reference agent
from Python (issue 10, item 4, the Python half; the Rust half is
`cargo bench -p hotplex-core --bench proc_model`).

For each size (10, 100 and 1,000 sessions by default) and each supervisor
mode, a fresh worker process (this script re-run with
HOTPLEX_SUPERVISOR=exec|fork, so each measurement starts from a clean
interpreter) builds one hotplex.Engine and measures:

* bring-up: 8 Python threads run every session's first turn (a cold start:
  spawn to first answer), the engine starting at most 8 processes at once;
  the wall time until every session has answered (target for 1,000
  sessions: <= 10 s);
* burst: one turn queued on every session at once (Engine.stream), read by
  8 threads; turns/s over the burst, and p50/p99 of each turn's time from
  the burst's start to its end;
* sweep: one turn on each session after the other, from one thread;
  turns/s and p50/p99 per turn;
* memory, with every session idle and alive after the sweep: the host's RSS
  growth since before the engine, per session; and total PSS per session,
  from /proc/<pid>/smaps_rollup: the host's PSS growth plus the PSS of every
  process in the sessions' trees (supervisors, agents), and the trees alone.

Then the engine is closed and the worker checks that nothing is left (but the
exec mode's launcher: one per host process, for as long as it lives).

Figures are meant for a release build of both the extension and the agent:

    cargo build --release -p hotplex-reference-agent
    bash tests/run-python.sh        # pip install ./bindings/python: a release build
    target/py-venv/bin/python tests/bench/sessions.py [--sizes 10,100,1000] [--modes exec,fork]

Linux only (it reads /proc). --agent picks another agent binary
(default: $HOTPLEX_BENCH_AGENT, else target/release/hotplex-reference-agent).
The open-files limit must allow about 5 descriptors per session (the engine
raises its soft limit to the hard one; see hotplex.session_ceiling()).
"""

import argparse
import json
import os
import pathlib
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
THREADS = 8


def _kib(path, key):
    """The value in KiB of field `key` ("Pss:") of a /proc file, or 0."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:  # the process is gone
        pass
    return 0


def _children(pid):
    """Children of `pid`, through every one of its threads."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


def _is_launcher(pid):
    """The exec mode's per-host launcher (`hotplex-supervisor launcher`): one
    process that lives as long as the host, not a session's."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:2] == [b"hotplex-supervisor", b"launcher"]
    except OSError:
        return False


def _sessions_left():
    """Children of this process other than the launcher."""
    return [p for p in _children(os.getpid()) if not _is_launcher(p)]


def _tree_pss_kib():
    """Total PSS (KiB) of every descendant of this process, and their number."""
    stack = _children(os.getpid())
    pss = n = 0
    while stack:
        pid = stack.pop()
        pss += _kib(f"/proc/{pid}/smaps_rollup", "Pss:")
        n += 1
        stack.extend(_children(pid))
    return pss, n


def _quantile(values, q):
    v = sorted(values)
    return v[round((len(v) - 1) * q)] if v else 0.0


def _in_threads(n_threads, items, work):
    """Runs work(item) for every item on n_threads threads; the first
    exception is raised here, after every thread stopped."""
    todo = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    errors = []

    def run():
        while not errors:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                work(item)
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def worker(n, agent):
    """One measurement with n sessions in this process; prints one JSON line."""
    import hotplex

    state = tempfile.mkdtemp(prefix="hotplex-bench-sessions-")
    ids = [f"s{i}" for i in range(n)]
    rss0 = _kib("/proc/self/status", "VmRSS:")
    pss0 = _kib("/proc/self/smaps_rollup", "Pss:")
    engine = hotplex.Engine(
        binary=agent,
        env={"HOTPLEX_REF_STATE": state},
        default_workdir=os.path.join(state, "work"),
        max_sessions=n + 8,
        max_concurrent_starts=THREADS,
    )
    try:
        def first(sid):
            turn = engine.execute(sid, "hello")
            assert turn.text == "echo: hello" and turn.cold_start, turn

        t0 = time.perf_counter()
        _in_threads(THREADS, ids, first)
        bring_up = time.perf_counter() - t0

        # Every turn is queued before any is read: all n are in flight.
        t0 = time.perf_counter()
        streams = [(sid, engine.stream(sid, "burst")) for sid in ids]
        burst = []
        lock = threading.Lock()

        def drain(item):
            sid, stream = item
            for _ in stream:
                pass
            done = time.perf_counter() - t0
            assert stream.turn is not None and stream.turn.text == "echo: burst", sid
            with lock:
                burst.append(done)

        _in_threads(THREADS, streams, drain)
        burst_time = time.perf_counter() - t0
        del streams

        sweep = []
        t0 = time.perf_counter()
        for sid in ids:
            t = time.perf_counter()
            turn = engine.execute(sid, "sweep")
            sweep.append(time.perf_counter() - t)
            assert turn.text == "echo: sweep" and not turn.cold_start, turn
        sweep_time = time.perf_counter() - t0

        rss = _kib("/proc/self/status", "VmRSS:") - rss0
        host_pss = _kib("/proc/self/smaps_rollup", "Pss:") - pss0
        tree_pss, procs = _tree_pss_kib()
        live = len(engine.sessions())
        mode = hotplex.supervisor_mode()
    finally:
        engine.close()
    shutil.rmtree(state, ignore_errors=True)
    # Supervisors end with their sessions; give the last ones a moment.
    deadline = time.monotonic() + 5
    while _sessions_left() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({
        "sessions": n,
        "mode": mode,
        "live": live,
        "bring_up_s": bring_up,
        "burst_turns_per_s": n / burst_time,
        "burst_p50_ms": _quantile(burst, 0.5) * 1e3,
        "burst_p99_ms": _quantile(burst, 0.99) * 1e3,
        "sweep_turns_per_s": n / sweep_time,
        "sweep_p50_ms": _quantile(sweep, 0.5) * 1e3,
        "sweep_p99_ms": _quantile(sweep, 0.99) * 1e3,
        "host_rss_kib_per_session": rss / n,
        "total_pss_kib_per_session": (host_pss + tree_pss) / n,
        "tree_pss_kib_per_session": tree_pss / n,
        "procs": procs,
        "left_after_close": len(_sessions_left()),
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="session counts (comma-separated)")
    parser.add_argument("--modes", default="exec,fork",
                        help="supervisor modes to measure, each in its own worker (exec,fork)")
    parser.add_argument("--agent", default=os.environ.get(
        "HOTPLEX_BENCH_AGENT", str(ROOT / "target" / "release" / "hotplex-reference-agent")))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("sessions.py reads /proc: Linux only")
    if not os.path.exists(args.agent):
        sys.exit(f"{args.agent} is missing: cargo build --release -p hotplex-reference-agent")
    if args.worker is not None:
        worker(args.worker, args.agent)
        return

    import hotplex

    print(f"hotplex {hotplex.__version__} ({hotplex.__file__}), agent {args.agent}")
    print(f"session ceiling (open files): {hotplex.session_ceiling()}; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{THREADS} starting threads (max_concurrent_starts={THREADS}); burst read by "
          f"{THREADS} threads; sweep from one thread")
    failed = False
    for n in (int(s) for s in args.sizes.split(",")):
        for mode in args.modes.split(","):
            env = dict(os.environ, HOTPLEX_SUPERVISOR=mode)
            r = subprocess.run(
                [sys.executable, __file__, "--worker", str(n), "--agent", args.agent],
                env=env, capture_output=True, text=True,
            )
            if r.returncode != 0:
                print(f"{n:>5} {mode}: worker failed ({r.returncode})\n{r.stderr}", file=sys.stderr)
                failed = True
                continue
            v = json.loads(r.stdout.strip().splitlines()[-1])
            if v["mode"] != mode or v["live"] != n or v["left_after_close"]:
                failed = True
            print(
                f"{n:>5} {v['mode']}: bring-up {v['bring_up_s']:.2f} s; "
                f"burst {v['burst_turns_per_s']:.0f} turns/s p50 {v['burst_p50_ms']:.1f} "
                f"p99 {v['burst_p99_ms']:.1f} ms; sweep {v['sweep_turns_per_s']:.0f} turns/s "
                f"p50 {v['sweep_p50_ms']:.2f} p99 {v['sweep_p99_ms']:.2f} ms; "
                f"host RSS {v['host_rss_kib_per_session']:.0f} KiB/session; total PSS "
                f"{v['total_pss_kib_per_session']:.0f} KiB/session (trees "
                f"{v['tree_pss_kib_per_session']:.0f}); {v['procs']} processes; "
                f"left {v['left_after_close']}"
                + ("" if v["mode"] == mode else f" (asked for {mode})")
            )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
