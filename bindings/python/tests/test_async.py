"""hotplex.AsyncEngine against the bundled reference agent (issue 13): the
event loop never blocks, cancelling an awaiting task interrupts its turn
and keeps the session hot, callbacks may be async and run on the loop,
turn streams cancel from any thread, and the interpreter exits cleanly
with turns in flight."""

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import hotplex

from test_engine import AGENT

GRACE = 2.0


def _options(tmp_path, **extra):
    return dict(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": str(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        interrupt_grace=GRACE,
        **extra,
    )


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def _denial(turn):
    return next(e.data["content"] for e in turn.events if e.type == "tool_result")


def test_the_loop_keeps_ticking_while_eight_sessions_run_turns(tmp_path):
    period = 0.01

    async def main():
        loop = asyncio.get_running_loop()
        fired = 0
        stop = asyncio.Event()

        async def ticker():
            # Sleeps to a 10 ms grid; a slot missed because the loop was
            # blocked is lost, so fired/expected measures blocking, not
            # the small lateness of each sleep.
            nonlocal fired
            deadline = loop.time() + period
            while not stop.is_set():
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                fired += 1
                deadline += period
                if loop.time() - deadline > period:
                    deadline = loop.time() + period

        async def session(eng, i):
            turns = []
            for prompt in ("stall:300", "flood:20", "stall:300"):
                turns.append(await eng.execute(f"s{i}", prompt, on_event=lambda e: None))
            return turns

        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            started = loop.time()
            tick = asyncio.create_task(ticker())
            results = await asyncio.gather(*(session(eng, i) for i in range(8)))
            elapsed = loop.time() - started
            stop.set()
            await tick
        return results, fired, elapsed / period

    results, fired, expected = _run(main())
    assert all(
        [t.text for t in turns] == ["stalled 300 ms", "echo: flood:20", "stalled 300 ms"]
        for turns in results
    )
    assert all(turns[0].cold_start and not turns[2].cold_start for turns in results)
    assert fired >= 0.8 * expected, f"{fired} of {expected:.0f} ticks"


def test_cancelling_the_awaiting_task_interrupts_the_turn_and_the_session_stays_hot(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            first = await eng.execute("s", "hello")
            task = asyncio.create_task(eng.execute("s", "stall:10000"))
            await asyncio.sleep(0.3)
            cancelled_at = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            after = await eng.execute("s", "next")
            waited = time.monotonic() - cancelled_at
            # A timeout (asyncio.wait_for) cancels the same way.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(eng.execute("s", "stall:10000"), 0.3)
            again = await eng.execute("s", "again")
            stats = eng.session_stats("s")
        return first, after, waited, again, stats

    first, after, waited, again, stats = _run(main())
    assert after.text == "echo: next"
    assert waited < GRACE, f"the interrupted turn took {waited:.2f} s to give way"
    assert not after.cold_start and after.pid == first.pid, "the session stays hot"
    assert not again.cold_start and again.pid == first.pid
    assert stats["cold_starts"] == 1


def test_async_for_yields_events_in_order_then_the_turn(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            stream = eng.stream("s", "flood:3")
            assert isinstance(stream, hotplex.AsyncTurnStream)
            assert stream.turn is None
            events = [e async for e in stream]
            # Iterating past the end just ends again.
            assert [e async for e in stream] == []
            return events, stream.turn

    events, turn = _run(main())
    assert all(isinstance(e, hotplex.Event) for e in events)
    types = ["session_start", "answer", "answer", "answer", "answer", "session_stats"]
    assert [e.type for e in events] == types
    assert isinstance(turn, hotplex.Turn) and turn.text == "echo: flood:3"
    assert [e.type for e in turn.events] == types


def test_errors_come_from_the_iteration_or_at_once_for_a_blocked_prompt(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            with pytest.raises(hotplex.TurnFailed) as info:
                async for _ in eng.stream("s", "fail"):
                    pass
            assert info.value.subtype == "error_during_execution"
            with pytest.raises(hotplex.DangerBlocked):
                eng.stream("s", "rm -rf /")
            seen = []
            with pytest.raises(hotplex.DangerBlocked):
                await eng.execute("s", "rm -rf /", on_event=seen.append)
            assert [e.type for e in seen] == ["danger_block"]
            with pytest.raises(hotplex.TurnTimeout):
                await eng.execute("s", "stall:5000", timeout=0.3)
            assert (await eng.execute("s", "after")).text == "echo: after"
            with pytest.raises(hotplex.InvalidConfig, match="timeout"):
                await eng.execute("s", "x", timeout=-1)
            with pytest.raises(TypeError):
                await eng.execute("s", "x", on_event=3)  # type: ignore[arg-type]
        with pytest.raises(hotplex.Closed):
            await eng.execute("s", "x")
        assert eng.closed
        await eng.close()  # idempotent

    _run(main())


def test_on_event_may_be_async_and_runs_on_the_loop_in_order(tmp_path):
    async def main():
        loop_thread = threading.get_ident()
        seen = []

        async def on_event(event):
            await asyncio.sleep(0)
            seen.append((event.type, threading.get_ident()))

        plain = []
        reported = []
        old = sys.unraisablehook
        sys.unraisablehook = lambda u: reported.append(u.exc_value)
        try:
            async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
                turn = await eng.execute("s", "flood:3", on_event=on_event)
                await eng.execute("s", "hello", on_event=lambda e: plain.append(threading.get_ident()))

                def boom(event):
                    raise RuntimeError("callback bug")

                survived = await eng.execute("s", "hello", on_event=boom)
        finally:
            sys.unraisablehook = old
        return loop_thread, seen, turn, plain, reported, survived

    loop_thread, seen, turn, plain, reported, survived = _run(main())
    assert [t for t, _ in seen] == [e.type for e in turn.events]
    assert {ident for _, ident in seen} == {loop_thread}
    assert plain and set(plain) == {loop_thread}
    assert survived.text == "echo: hello"
    assert len(reported) == 3 and all(isinstance(e, RuntimeError) for e in reported)


def test_an_async_can_use_tool_runs_on_the_loop_and_its_answer_decides(tmp_path):
    async def main():
        loop_thread = threading.get_ident()
        threads = []

        async def decide(tool, tool_input, verdict):
            threads.append(threading.get_ident())
            await asyncio.sleep(0.01)
            if "deploy" in tool_input["command"]:
                return {"behavior": "deny", "message": "no"}
            return True

        async with hotplex.AsyncEngine(**_options(tmp_path), can_use_tool=decide) as eng:
            denied = await eng.execute("s", "tool:make deploy")
            allowed = await eng.execute("s", "tool:ls")
        return loop_thread, threads, denied, allowed

    loop_thread, threads, denied, allowed = _run(main())
    assert denied.text == "tool denied: make deploy" and "no" in _denial(denied)
    assert allowed.text == "tool ran: ls"
    assert threads and set(threads) == {loop_thread}


def test_an_async_engine_built_outside_the_loop_uses_the_loop_of_its_calls(tmp_path):
    async def decide(tool, tool_input, verdict):
        return "tool_input" if "deploy" in tool_input["command"] else None

    eng = hotplex.AsyncEngine(**_options(tmp_path), can_use_tool=decide)

    async def main():
        async with eng:
            return await eng.execute("s", "tool:make deploy"), await eng.execute("s", "tool:ls")

    denied, allowed = _run(main())
    assert denied.text == "tool denied: make deploy"
    assert allowed.text == "tool ran: ls"


def test_a_plain_can_use_tool_works_with_the_async_engine(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(
            **_options(tmp_path), can_use_tool=lambda t, i, v: "ls" in i["command"]
        ) as eng:
            return await eng.execute("s", "tool:ls"), await eng.execute("s", "tool:make")

    allowed, denied = _run(main())
    assert allowed.text == "tool ran: ls" and denied.text == "tool denied: make"


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_a_sync_stream_cancelled_from_another_thread_ends_its_iteration(tmp_path, how):
    with hotplex.Engine(**_options(tmp_path)) as eng:
        first = eng.execute("s", "hello")
        stream = eng.stream("s", "stall:10000")
        got, errors = [], []
        started = threading.Event()

        def iterate():
            try:
                for event in stream:
                    got.append(event.type)
                    started.set()
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        reader = threading.Thread(target=iterate)
        reader.start()
        assert started.wait(10)
        # Several threads at once, while the reader is inside __next__.
        hammer = [threading.Thread(target=getattr(stream, how)) for _ in range(4)]
        for t in hammer:
            t.start()
        for t in hammer:
            t.join()
        reader.join(10)
        assert not reader.is_alive(), "the iteration ended"
        assert errors == [] and got == ["session_start"]
        assert stream.turn is None
        getattr(stream, how)()  # again, after the end: nothing happens
        assert list(stream) == []
        started_at = time.monotonic()
        after = eng.execute("s", "next")
        assert time.monotonic() - started_at < GRACE
        assert not after.cold_start and after.pid == first.pid


def test_an_async_stream_cancels_from_another_thread_and_with_aclose(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            first = await eng.execute("s", "hello")
            stream = eng.stream("s", "stall:10000")
            got = []
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, lambda: threading.Thread(target=stream.cancel).start())
            async for event in stream:
                got.append(event.type)
            assert got == ["session_start"] and stream.turn is None

            async with eng.stream("s", "stall:10000") as inner:
                assert (await inner.__anext__()).type == "session_start"
            await inner.aclose()  # again: nothing happens
            with pytest.raises(StopAsyncIteration):
                await inner.__anext__()
            after = await eng.execute("s", "next")
        return first, after

    first, after = _run(main())
    assert not after.cold_start and after.pid == first.pid


def test_the_async_engine_takes_the_engine_options(tmp_path):
    with pytest.raises(hotplex.InvalidConfig, match="max_sessions"):
        hotplex.AsyncEngine(binary=AGENT, max_sessions=-1)
    with pytest.raises(hotplex.InvalidConfig, match="nonsense"):
        hotplex.AsyncEngine(binary=AGENT, nonsense=1)
    with pytest.raises(TypeError, match=r"AsyncEngine\(\) got multiple values"):
        hotplex.AsyncEngine(AGENT, binary=AGENT)
    with pytest.raises(TypeError, match="can_use_tool must be callable"):
        hotplex.AsyncEngine(binary=AGENT, can_use_tool=3)
    assert "max_sessions=64" in hotplex.AsyncEngine.__doc__
    assert "cancels the turn" in hotplex.AsyncEngine.__doc__
    eng = hotplex.AsyncEngine(AGENT, None, None, 2, default_workdir=tmp_path)
    assert repr(eng).startswith("AsyncEngine(")
    assert eng.detector.check_command("rm -rf /").blocked
    assert "# EOF" in eng.metrics_text() and eng.metrics_snapshot()

    async def main():
        async with eng:
            await eng.execute("a", "x")
            assert [s.id for s in eng.sessions()] == ["a"]
            assert eng.session_stats("a")["turns"] == 1
            assert await eng.stop_session("a") is True
            assert await eng.stop_session("a") is False
        assert eng.closed

    _run(main())


def test_the_async_engine_runs_on_uvloop(tmp_path):
    uvloop = pytest.importorskip("uvloop")

    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            task = asyncio.create_task(eng.execute("s", "stall:10000"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await eng.execute("s", "hello")

    turn = uvloop.run(main())
    assert turn.text == "echo: hello" and not turn.cold_start


# --- interpreter exit with turns in flight ------------------------------------

EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    import hotplex

    agent, state, variant, linger = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    opts = dict(binary=agent, env={"HOTPLEX_REF_STATE": state}, default_workdir=state)

    def announce(eng):
        while not any(s.pid for s in eng.sessions()):
            time.sleep(0.005)
        print(eng.sessions()[0].pid, flush=True)
        time.sleep(linger)

    if variant == "execute-thread":
        eng = hotplex.Engine(**opts)
        threading.Thread(
            target=eng.execute, args=("s", "stall:5000"),
            kwargs={"on_event": lambda e: None}, daemon=True,
        ).start()
        announce(eng)
    elif variant == "stream-thread":
        eng = hotplex.Engine(**opts)
        def iterate():
            for _ in eng.stream("s", "stall:5000"):
                pass
        threading.Thread(target=iterate, daemon=True).start()
        announce(eng)
    elif variant == "asyncio-task":
        async def main():
            eng = hotplex.AsyncEngine(**opts)
            asyncio.create_task(eng.execute("s", "stall:5000", on_event=lambda e: None))
            while not any(s.pid for s in eng.sessions()):
                await asyncio.sleep(0.005)
            print(eng.sessions()[0].pid, flush=True)
            await asyncio.sleep(linger)
        asyncio.run(main())
    elif variant == "loop-thread":
        # The loop lives on in a daemon thread: the engine is still
        # delivering to it when the interpreter exits.
        box = {}
        ready = threading.Event()
        async def main():
            box["eng"] = hotplex.AsyncEngine(**opts)
            asyncio.create_task(box["eng"].execute("s", "stall:5000", on_event=lambda e: None))
            ready.set()
            await asyncio.sleep(3600)
        threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
        ready.wait()
        announce(box["eng"])
    """
)

VARIANTS = ["execute-thread", "stream-thread", "asyncio-task", "loop-thread"]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _exit_once(script, tmp_path, i):
    state = tmp_path / f"run{i}"
    state.mkdir()
    variant = VARIANTS[i % len(VARIANTS)]
    linger = (i // len(VARIANTS)) % 4 * 0.04  # exit at different points of the turn
    proc = subprocess.run(
        [sys.executable, str(script), AGENT, str(state), variant, str(linger)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return variant, proc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_fifty_interpreter_exits_with_turns_in_flight_never_abort(tmp_path):
    script = tmp_path / "exit_with_turn.py"
    script.write_text(EXIT_SCRIPT)
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        runs = list(pool.map(lambda i: _exit_once(script, tmp_path, i), range(50)))
    pids = []
    for variant, proc in runs:
        where = f"{variant}: rc={proc.returncode} stderr={proc.stderr[-2000:]!r}"
        assert proc.returncode == 0, where
        for bad in ("FATAL", "Fatal Python error", "panicked", "Abort"):
            assert bad not in proc.stderr, where
        pids.append(int(proc.stdout.split()[0]))
    # The agents die with their host (their supervisors kill them).
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if _alive(p)] == []


SIGINT_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import hotplex

    agent, state, where = sys.argv[1], sys.argv[2], sys.argv[3]
    eng = hotplex.Engine(binary=agent, env={"HOTPLEX_REF_STATE": state}, default_workdir=state)

    def announce():
        while not any(s.pid for s in eng.sessions()):
            time.sleep(0.005)
        print(eng.sessions()[0].pid, flush=True)

    if where == "main":
        # Ctrl-C while the main thread itself waits in execute.
        threading.Thread(target=announce, daemon=True).start()
        eng.execute("s", "stall:5000")
    else:
        # Ctrl-C while a daemon thread waits in execute and main sleeps.
        threading.Thread(target=eng.execute, args=("s", "stall:5000"), daemon=True).start()
        announce()
        time.sleep(30)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("where", ["main", "daemon-thread"])
def test_ctrl_c_with_a_turn_in_flight_raises_keyboard_interrupt_never_aborts(tmp_path, where):
    import signal

    script = tmp_path / "sigint.py"
    script.write_text(SIGINT_SCRIPT)
    pids = []
    for i in range(5):
        state = tmp_path / f"run{i}"
        state.mkdir()
        proc = subprocess.Popen(
            [sys.executable, str(script), AGENT, str(state), where],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        pids.append(int(proc.stdout.readline()))
        time.sleep(0.05 * i)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        where_ = f"{where} run {i}: rc={proc.returncode} stderr={err[-2000:]!r}"
        # KeyboardInterrupt ends the interpreter (status 1, or killed by
        # SIGINT as CPython re-raises it); never SIGABRT (-6).
        assert proc.returncode in (1, -signal.SIGINT, 130), where_
        assert "KeyboardInterrupt" in err, where_
        for bad in ("FATAL", "Fatal Python error", "panicked"):
            assert bad not in err, where_
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if _alive(p)] == []


def test_prewarm_changes_the_spares_of_an_async_engine(tmp_path):
    from test_engine import _wait_spares

    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            await eng.prewarm(1, session={"model": "m"})
            _wait_spares(eng, 1)
            turn = await eng.execute("s", "model?", session={"model": "m"})
            assert turn.text == "model: m" and turn.cold_start is False
            await eng.prewarm(0, session={"model": "m"})
            _wait_spares(eng, 0)

    _run(main())
