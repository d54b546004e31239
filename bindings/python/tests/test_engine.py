"""hotplex.Engine against the bundled reference agent: the Python contract
(types, errors, callbacks, GIL release). The pool's own behaviour is tested
in Rust (tests/reference-agent/tests/pool.rs); the real Claude Code CLI in
tests/e2e."""

import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import pytest

import hotplex

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _agent():
    path = os.environ.get("HOTPLEX_REFERENCE_AGENT")
    if path:
        return path
    found = ROOT / "target" / "debug" / "hotplex-reference-agent"
    if not found.exists():
        subprocess.run(
            ["cargo", "build", "-q", "-p", "hotplex-reference-agent"], cwd=ROOT, check=True
        )
    return str(found)


AGENT = _agent()


@pytest.fixture
def engine(tmp_path):
    eng = hotplex.Engine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": str(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        interrupt_grace=2.0,
    )
    yield eng
    eng.close()


def test_execute_returns_a_turn_with_text_stats_and_events(engine):
    seen = []
    turn = engine.execute("s", "hello", on_event=seen.append)
    assert isinstance(turn, hotplex.Turn)
    assert turn.text == "echo: hello"
    assert turn.cold_start is True and turn.resumed is False and turn.is_error is False
    assert turn.duration_ms > 0
    assert turn.usage["output_tokens"] == len("echo: hello")
    assert turn.cost_usd == pytest.approx(0.001)
    assert turn.model == "reference-model"
    assert [e.type for e in turn.events] == ["session_start", "answer", "session_stats"]
    assert [e.type for e in seen] == [e.type for e in turn.events]
    assert seen[1].data == {"text": "echo: hello"}
    hot = engine.execute("s", "again")
    assert hot.cold_start is False and hot.pid == turn.pid


def test_sessions_and_session_stats(engine, tmp_path):
    engine.execute("b", "x")
    engine.execute("a", "tool:rm -rf /")
    infos = engine.sessions()
    assert [i.id for i in infos] == ["a", "b"]
    assert infos[0].status == "ready" and infos[0].turns == 1 and infos[0].pid > 0
    assert infos[0].workdir == (tmp_path / "work").resolve()
    stats = engine.session_stats("a")
    assert stats["turns"] == 1 and stats["tools_denied"] == 1 and stats["tool_calls"] == 1
    assert engine.session_stats("nope") is None


def test_stream_yields_events_as_they_arrive_then_the_turn(engine):
    stream = engine.stream("s", "flood:3")
    types = [e.type for e in stream]
    assert types == ["session_start", "answer", "answer", "answer", "answer", "session_stats"]
    assert stream.turn.text == "echo: flood:3"


def test_stream_raises_the_turn_error(engine):
    with pytest.raises(hotplex.TurnFailed) as info:
        for _ in engine.stream("s", "fail"):
            pass
    assert info.value.subtype == "error_during_execution"


def test_a_tool_call_blocked_by_the_waf_is_a_danger_block_event(engine):
    turn = engine.execute("s", "tool:rm -rf /")
    assert turn.text == "tool denied: rm -rf /"
    block = next(e for e in turn.events if e.type == "danger_block")
    assert block.data["verdict"]["level"] == "critical"


def test_every_error_type(engine, tmp_path):
    seen = []
    with pytest.raises(hotplex.DangerBlocked) as info:
        engine.execute("s", "rm -rf /", on_event=seen.append)
    assert info.value.verdict.blocked and info.value.verdict.level == "critical"
    assert [e.type for e in seen] == ["danger_block"]
    assert engine.execute("s", "rm -rf /", waf_approved=True).text == "echo: rm -rf /"

    with pytest.raises(hotplex.TurnTimeout):
        engine.execute("s", "stall:5000", timeout=0.3)
    assert engine.execute("s", "after timeout").text == "echo: after timeout"

    with pytest.raises(hotplex.SessionDead):
        engine.execute("s", "crash")
    assert engine.execute("s", "recall").resumed is True

    with pytest.raises(hotplex.TurnFailed):
        engine.execute("s", "fail")

    with pytest.raises(hotplex.InvalidConfig):
        engine.execute("", "x")
    with pytest.raises(hotplex.InvalidConfig):
        hotplex.Engine(binary=AGENT, max_sessions=0)
    with pytest.raises(ValueError):
        hotplex.Engine(binary=AGENT, turn_timeout=-1)

    # A missing binary is InvalidConfig at construction now (see
    # test_a_missing_binary_fails_when_the_engine_is_built); StartFailed is
    # an agent that exits at start.
    with hotplex.Engine(binary=AGENT, args=["--exit-at-start"]) as broken:
        with pytest.raises(hotplex.StartFailed):
            broken.execute("s", "x", workdir=str(tmp_path))

    with hotplex.Engine(binary=AGENT, max_sessions=1, default_workdir=str(tmp_path)) as small:
        busy = small.stream("a", "stall:1000")
        time.sleep(0.2)
        with pytest.raises(hotplex.CapacityExceeded):
            small.execute("b", "x")
        assert [e.type for e in busy][-1] == "session_stats"

    engine.close()
    engine.close()
    assert engine.closed
    with pytest.raises(hotplex.Closed):
        engine.execute("s", "x")
    for cls in (
        hotplex.DangerBlocked,
        hotplex.TurnTimeout,
        hotplex.SessionDead,
        hotplex.TurnFailed,
        hotplex.CapacityExceeded,
        hotplex.StartFailed,
        hotplex.InvalidConfig,
        hotplex.Closed,
    ):
        assert issubclass(cls, hotplex.HotplexError)


def test_the_gil_is_released_while_a_turn_runs(engine):
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.005)

    t = threading.Thread(target=count)
    t.start()
    engine.execute("s", "stall:500")
    stop.set()
    t.join()
    assert len(ticks) > 20


def test_concurrent_python_threads_on_one_session_get_their_own_answers(engine):
    answers = {}

    def run(i):
        answers[i] = engine.execute("s", f"turn {i}").text

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {i: f"echo: turn {i}" for i in range(8)}
    assert engine.session_stats("s")["cold_starts"] == 1


def test_a_failing_on_event_callback_is_reported_and_the_turn_completes(engine):
    reported = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: reported.append(u.exc_value)
    try:

        def boom(event):
            raise RuntimeError("callback bug")

        turn = engine.execute("s", "hello", on_event=boom)
    finally:
        sys.unraisablehook = old
    assert turn.text == "echo: hello"
    assert len(reported) == 3 and all(isinstance(e, RuntimeError) for e in reported)


def test_can_use_tool_decides_what_the_waf_lets_through(tmp_path):
    calls = []

    def decide(tool, tool_input, verdict):
        calls.append((tool, tool_input["command"], verdict.level))
        if "deploy" in tool_input["command"]:
            return "deploys need a human"
        if "explode" in tool_input["command"]:
            raise RuntimeError("bug in the host")
        return True

    reported = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: reported.append(u.exc_value)
    try:
        with hotplex.Engine(
            binary=AGENT, default_workdir=str(tmp_path), can_use_tool=decide
        ) as eng:
            assert eng.execute("s", "tool:make deploy").text == "tool denied: make deploy"
            assert eng.execute("s", "tool:ls").text == "tool ran: ls"
            assert eng.execute("s", "tool:explode").text == "tool denied: explode"
            assert eng.execute("s", "tool:rm -rf /").text == "tool denied: rm -rf /"
    finally:
        sys.unraisablehook = old_hook
    assert [c[1] for c in calls] == ["make deploy", "ls", "explode"], "the WAF decided rm -rf /"
    assert [str(e) for e in reported] == ["bug in the host"], "a failing callback denies"


def test_leaving_a_stream_early_cancels_the_turn(engine):
    with engine.stream("s", "stall:10000") as stream:
        first = next(stream)
        assert first.type == "session_start"
    started = time.monotonic()
    turn = engine.execute("s", "next")
    assert turn.text == "echo: next" and not turn.cold_start
    assert time.monotonic() - started < 5


def test_engine_as_a_context_manager_kills_its_processes(tmp_path):
    with hotplex.Engine(binary=AGENT, default_workdir=str(tmp_path)) as eng:
        pid = eng.execute("s", "x").pid
        assert os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(f"/proc/{pid}")


def test_custom_detector_is_used_for_prompts_and_tools(tmp_path):
    det = hotplex.Detector(rules="deploy-prod|No production deploys|critical|system")
    with hotplex.Engine(binary=AGENT, default_workdir=str(tmp_path), detector=det) as eng:
        with pytest.raises(hotplex.DangerBlocked):
            eng.execute("s", "please deploy-prod now")
        turn = eng.execute("s", "tool:./deploy-prod", waf_approved=True)
        assert turn.text == "tool denied: ./deploy-prod"
        assert eng.detector.check_command("deploy-prod").blocked


def test_workdir_outside_allowed_roots_is_invalid_config(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with hotplex.Engine(binary=AGENT, allowed_roots=[str(root)]) as eng:
        assert eng.execute("s", "x", workdir=str(root / "a")).text == "echo: x"
        with pytest.raises(hotplex.InvalidConfig):
            eng.execute("s", "x", workdir=str(tmp_path / "elsewhere"))


@pytest.mark.skipif(shutil.which("true") is None, reason="needs coreutils")
def test_stop_session_returns_whether_it_existed(engine):
    engine.execute("s", "x")
    assert engine.stop_session("s") is True
    assert engine.stop_session("s") is False
    assert engine.sessions() == []


# --- regressions of the contract (issue 9) ------------------------------------


def _engine_with(tmp_path, decide):
    return hotplex.Engine(binary=AGENT, default_workdir=str(tmp_path), can_use_tool=decide)


def _denial(turn):
    return next(e.data["content"] for e in turn.events if e.type == "tool_result")


def test_a_deny_dict_denies_with_its_message(tmp_path):
    with _engine_with(tmp_path, lambda t, i, v: {"behavior": "deny", "message": "no"}) as eng:
        turn = eng.execute("s", "tool:ls")
        assert turn.text == "tool denied: ls"
        assert "no" in _denial(turn)
    with _engine_with(tmp_path, lambda t, i, v: {"behavior": "deny"}) as eng:
        assert eng.execute("s", "tool:ls").text == "tool denied: ls"


@pytest.mark.parametrize("answer", [1, 0.5, [True], {"behavior": "maybe"}, {}, object()])
def test_an_unexpected_answer_denies(tmp_path, answer):
    with _engine_with(tmp_path, lambda t, i, v: answer) as eng:
        turn = eng.execute("s", "tool:ls")
    assert turn.text == "tool denied: ls"
    assert "unexpected value" in _denial(turn)


def test_allow_with_updated_input_runs_the_rewritten_command(tmp_path):
    def decide(tool, tool_input, verdict):
        return {"behavior": "allow", "updatedInput": {"command": "make check"}}

    with _engine_with(tmp_path, decide) as eng:
        assert eng.execute("s", "tool:make deploy").text == "tool ran: make check"


def test_an_updated_input_is_screened_by_the_waf_again(tmp_path):
    def decide(tool, tool_input, verdict):
        return {"behavior": "allow", "updatedInput": {"command": "rm -rf /"}}

    with _engine_with(tmp_path, decide) as eng:
        assert eng.execute("s", "tool:ls").text == "tool denied: ls"


def test_an_async_callback_is_awaited_on_the_loop_the_engine_was_created_in(tmp_path):
    import asyncio

    async def decide(tool, tool_input, verdict):
        await asyncio.sleep(0.01)
        if "deploy" in tool_input["command"]:
            return {"behavior": "deny", "message": "no"}
        return True

    async def main():
        with _engine_with(tmp_path, decide) as eng:
            denied = await asyncio.to_thread(eng.execute, "s", "tool:make deploy")
            allowed = await asyncio.to_thread(eng.execute, "s", "tool:ls")
        return denied, allowed

    denied, allowed = asyncio.run(main())
    assert denied.text == "tool denied: make deploy" and "no" in _denial(denied)
    assert allowed.text == "tool ran: ls"


def test_an_async_callback_without_a_running_loop_denies_and_is_reported(tmp_path):
    awaited = []

    async def decide(tool, tool_input, verdict):
        awaited.append(tool)
        return True

    reported = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: reported.append(u.exc_value)
    try:
        with _engine_with(tmp_path, decide) as eng:
            turn = eng.execute("s", "tool:ls")
    finally:
        sys.unraisablehook = old
    assert turn.text == "tool denied: ls", "an unawaited coroutine must never allow"
    assert awaited == [], "the coroutine was closed, not run"
    assert len(reported) == 1 and "no running event loop was captured" in str(reported[0])


def test_an_async_callback_whose_loop_has_stopped_denies(tmp_path):
    import asyncio

    async def decide(tool, tool_input, verdict):
        return True

    async def build():
        return _engine_with(tmp_path, decide)

    eng = asyncio.run(build())  # the loop is gone once run() returns
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: None
    try:
        with eng:
            assert eng.execute("s", "tool:ls").text == "tool denied: ls"
    finally:
        sys.unraisablehook = old


def test_a_follow_up_turn_without_workdir_continues_in_the_sessions_workdir(engine, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    first = engine.execute("s", "a", workdir=str(elsewhere))
    second = engine.execute("s", "recall")
    assert second.text == "history: a"
    assert second.cold_start is False and second.pid == first.pid
    assert engine.sessions()[0].workdir == elsewhere.resolve()


def test_the_session_stats_event_cost_equals_the_turn_cost_on_every_turn(engine):
    for i in range(3):
        turn = engine.execute("s", f"turn {i}")
        stats = next(e for e in turn.events if e.type == "session_stats")
        assert stats.data["cost_usd"] == turn.cost_usd
        assert turn.cost_usd == pytest.approx(0.001)


@pytest.mark.parametrize(
    "option, value",
    [
        ("turn_timeout", -1),
        ("max_sessions", -1),
        ("env", {"A": 1}),
        ("idle_timeout", "soon"),
        ("args", object()),
        ("nonsense", 1),
        ("max_line_bytes", 10),
        ("max_turn_events", 0),
    ],
)
def test_a_bad_option_is_invalid_config_naming_it(option, value):
    with pytest.raises(hotplex.InvalidConfig) as info:
        hotplex.Engine(binary=AGENT, **{option: value})
    assert option in str(info.value)


def _limit(pid, row):
    """The soft value of a row of /proc/<pid>/limits ("Max open files")."""
    with open(f"/proc/{pid}/limits", encoding="ascii") as f:
        for line in f:
            if line.startswith(row):
                return line[len(row):].split()[0]
    raise AssertionError(f"no {row!r} in /proc/{pid}/limits")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_session_with_limits_runs_a_turn_under_them(tmp_path):
    limits = hotplex.SessionLimits(
        max_processes=64, memory_bytes=512 << 20, cpu_seconds=600, open_files=200
    )
    with hotplex.Engine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": str(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        limits=limits,
    ) as eng:
        turn = eng.execute("s", "hello")
        assert turn.text == "echo: hello"
        # Per process in every containment mode.
        assert _limit(turn.pid, "Max open files") == "200"
        assert _limit(turn.pid, "Max cpu time") == "600"
        # Memory: the session's cgroup where there is one, else the agent's
        # address space.
        if 'containment="cgroup"' not in eng.metrics_text():
            assert _limit(turn.pid, "Max address space") == str(512 << 20)
        assert eng.execute("s", "again").pid == turn.pid


@pytest.mark.parametrize(
    "limits, named",
    [
        ({"max_processes": 0}, "limits.max_processes"),
        ({"memory_bytes": -1}, "limits.memory_bytes"),
        ({"cpu_seconds": 1.5}, "limits.cpu_seconds"),
        ({"open_files": "many"}, "limits.open_files"),
        ({"memory": 1 << 30}, "memory"),
        (64, "limits"),
    ],
)
def test_a_bad_limit_is_invalid_config_naming_it(limits, named):
    for cls in (hotplex.Engine, hotplex.AsyncEngine):
        with pytest.raises(hotplex.InvalidConfig) as info:
            cls(binary=AGENT, limits=limits)
        assert named in str(info.value)


def test_the_supervisor_mode_and_session_ceiling_are_reported():
    forced = os.environ.get("HOTPLEX_SUPERVISOR", "").lower() == "fork"
    # The embedded supervisor program runs on Linux unless fork is asked for.
    want = "exec" if sys.platform.startswith("linux") and not forced else "fork"
    assert hotplex.supervisor_mode() == want
    ceiling = hotplex.session_ceiling()
    assert isinstance(ceiling, int) and ceiling > 0


def test_a_bad_turn_option_is_invalid_config_naming_it(engine):
    with pytest.raises(hotplex.InvalidConfig, match="timeout"):
        engine.execute("s", "x", timeout=-1)
    with pytest.raises(hotplex.InvalidConfig, match="workdir"):
        engine.stream("s", "x", workdir=3)


def test_options_left_out_or_none_take_the_core_defaults(tmp_path):
    # None is "not given": no default is copied into the binding.
    with hotplex.Engine(
        AGENT, None, None, None, None, None, None, None, None, None, None, None,
        default_workdir=tmp_path, model=None,
    ) as eng:
        assert eng.execute("s", "x", timeout=None, waf_approved=None).text == "echo: x"
    assert "max_sessions=64" in hotplex.Engine.__doc__, "the doc lists the core's defaults"
    with pytest.raises(TypeError):
        hotplex.Engine(AGENT, binary=AGENT)


def test_a_missing_binary_fails_when_the_engine_is_built(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(hotplex.InvalidConfig, match=str(missing)):
        hotplex.Engine(binary=missing)
    with pytest.raises(hotplex.InvalidConfig, match="no-such-agent-xyz"):
        hotplex.Engine(binary="no-such-agent-xyz")


def test_a_blocked_prompt_reports_a_danger_block_event_from_the_core(engine):
    seen = []
    with pytest.raises(hotplex.DangerBlocked) as info:
        engine.execute("s", "rm -rf /", on_event=seen.append)
    assert [e.type for e in seen] == ["danger_block"]
    assert seen[0].data["verdict"]["rule_id"] == info.value.verdict.rule_id
    with pytest.raises(hotplex.DangerBlocked):
        engine.stream("s", "rm -rf /")  # stream raises at once


def test_partial_messages_yield_answer_deltas_that_add_up_to_the_answer(tmp_path):
    with hotplex.Engine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": str(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        partial_messages=True,
    ) as eng:
        seen = []
        turn = eng.execute("s", "a reply worth streaming", on_event=seen.append)
        deltas = [e.data["text"] for e in seen if e.type == "answer_delta"]
        assert len(deltas) >= 3
        assert "".join(deltas) == turn.text
        assert turn.first_delta_ms is not None and turn.first_delta_ms > 0
        quiet = eng.execute("s", "hi", partial_messages=False)
        assert not any(e.type == "answer_delta" for e in quiet.events)
    with hotplex.Engine(binary=AGENT, default_workdir=str(tmp_path / "w2")) as plain:
        with pytest.raises(hotplex.InvalidConfig, match="partial_messages"):
            plain.execute("p", "hi", partial_messages=True)


def test_stray_output_never_reaches_a_turn_and_is_counted(engine):
    for i in range(30):
        prompt = ("after:", "double:", "late:2:")[i % 3] + f"ok-{i}"
        assert engine.execute("s", prompt).text == f"ok-{i}"
    time.sleep(0.1)
    assert engine.session_stats("s")["stray_lines"] >= 30


def test_a_flood_is_cut_at_the_turn_event_budget(tmp_path):
    with hotplex.Engine(binary=AGENT, env={"HOTPLEX_REF_STATE": str(tmp_path)},
                        default_workdir=str(tmp_path), max_turn_events=50) as eng:
        turn = eng.execute("s", "flood:1000")
        assert turn.text == "echo: flood:1000"
        assert len(turn.events) == 52
        assert turn.events_dropped == 1002 - 50
        assert turn.events[50].type == "error"
        assert "event budget" in turn.events[50].data["message"]


def test_an_unreadable_result_is_turn_failed_at_once(engine):
    engine.execute("s", "warm up")
    start = time.monotonic()
    with pytest.raises(hotplex.TurnFailed) as info:
        engine.execute("s", "badresult")
    assert time.monotonic() - start < 1.0
    assert info.value.subtype == "unparsable_result"


def _spares(eng):
    """Spares ready now (hotplex_spares{status="ready"})."""
    return next(s["value"] for f in eng.metrics_snapshot() if f["name"] == "hotplex_spares"
                for s in f["samples"] if s["labels"] == {"status": "ready"})


def _wait_spares(eng, n):
    """Waits (at most 10 s) until exactly n spares are ready."""
    deadline = time.monotonic() + 10
    while _spares(eng) != n:
        assert time.monotonic() < deadline, f"wanted {n} spares, have {_spares(eng)}"
        time.sleep(0.02)


def test_prewarm_keeps_spares_whose_process_answers_a_new_conversations_first_turn(tmp_path):
    with hotplex.Engine(binary=AGENT, env={"HOTPLEX_REF_STATE": str(tmp_path)},
                        default_workdir=str(tmp_path / "work"),
                        prewarm=[hotplex.PrewarmProfile(spares=1)]) as eng:
        _wait_spares(eng, 1)
        turn = eng.execute("s", "hello")
        assert turn.text == "echo: hello" and turn.cold_start is False
        _wait_spares(eng, 1)  # refilled
        eng.prewarm(2, tmp_path / "other", session={"model": "m"})
        _wait_spares(eng, 3)
        eng.prewarm(0, tmp_path / "other", session={"model": "m"})
        _wait_spares(eng, 1)
        with pytest.raises(hotplex.InvalidConfig, match="prewarm.session.max_turns"):
            eng.prewarm(1, session={"max_turns": 0})
        with pytest.raises(hotplex.InvalidConfig, match="prewarm"):
            hotplex.Engine(binary=AGENT, prewarm=[{"spares": 1, "count": 2}])
    with pytest.raises(hotplex.Closed):
        eng.prewarm(1)
