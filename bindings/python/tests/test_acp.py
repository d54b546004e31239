"""hotplex.Engine(provider="acp") against the reference ACP agent
(hotplex-reference-acp, tests/reference-agent/src/acp.rs): the options reach
the core, turns run on one hot process, the WAF screens what the agent asks
to run, errors map onto the Python exceptions. The ACP session itself is
tested in Rust (tests/reference-agent/tests/acp_engine.rs); real ACP agents
(OpenCode, Gemini CLI) in tests/e2e/test_acp.py."""

import asyncio
import os
import pathlib
import subprocess
import threading

import pytest

import hotplex

from test_engine import AGENT

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _acp_agent():
    path = os.environ.get("HOTPLEX_REFERENCE_ACP")
    if path:
        return path
    # Built with the reference agent (one crate, two binaries).
    found = pathlib.Path(AGENT).with_name("hotplex-reference-acp")
    if not found.exists():
        subprocess.run(
            ["cargo", "build", "-q", "-p", "hotplex-reference-agent"], cwd=ROOT, check=True
        )
    return str(found)


ACP = _acp_agent()


def _options(tmp_path, **extra):
    """An engine on the reference ACP agent: its state under tmp_path, and
    a private HOME (where the canary of the WAF test lives)."""
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "work").mkdir(exist_ok=True)
    options = dict(
        binary=ACP,
        args=["--state-dir", str(tmp_path / "acp-state")],
        env={"HOME": str(tmp_path / "home")},
        provider="acp",
        default_workdir=str(tmp_path / "work"),
        turn_timeout=20.0,
        startup_timeout=20.0,
        interrupt_grace=2.0,
    )
    options.update(extra)
    return options


@pytest.fixture
def engine(tmp_path):
    eng = hotplex.Engine(**_options(tmp_path))
    yield eng
    eng.close()


def test_five_turns_share_one_acp_process_with_one_cold_start(engine):
    turns = [engine.execute("s", f"hello {i}") for i in range(5)]
    assert [t.text for t in turns] == [f"echo: hello {i}" for i in range(5)]
    assert [t.cold_start for t in turns] == [True, False, False, False, False]
    assert len({t.pid for t in turns}) == 1, "one process"
    assert all(not t.resumed and not t.is_error for t in turns)
    assert turns[0].events[0].type == "session_start"
    assert turns[1].events[0].type == "answer"
    assert all(t.events[-1].type == "session_stats" for t in turns)
    stats = engine.session_stats("s")
    assert (stats["turns"], stats["cold_starts"]) == (5, 1)
    assert stats["cost_usd"] == pytest.approx(0.005)
    assert [i.id for i in engine.sessions()] == ["s"]


def test_the_waf_denies_rm_rf_home_and_the_canary_survives(engine, tmp_path):
    canary = tmp_path / "home" / "canary"
    canary.write_text("alive")
    seen = []
    turn = engine.execute("s", "run:rm -rf ~", on_event=seen.append)
    assert turn.text == "denied: rm -rf ~"
    block = next(e for e in turn.events if e.type == "danger_block")
    assert block.data["verdict"]["blocked"] and block.data["verdict"]["level"] == "critical"
    assert "permission_request" in [e.type for e in turn.events]
    assert [e.type for e in seen] == [e.type for e in turn.events]
    assert canary.read_text() == "alive"
    assert engine.session_stats("s")["tools_denied"] == 1
    # A harmless command runs, in a terminal hotplex serves.
    ok = engine.execute("s", "run:echo hi")
    assert ok.text == "ran: echo hi\nexit: 0\nhi\n"
    types = [e.type for e in ok.events]
    assert "tool_use" in types and "tool_result" in types
    assert ok.pid == turn.pid


def test_a_turn_over_its_timeout_raises_and_the_next_turn_succeeds(engine):
    first = engine.execute("s", "hello")
    with pytest.raises(hotplex.TurnTimeout):
        engine.execute("s", "sleep:5000", timeout=0.3)
    after = engine.execute("s", "after timeout")
    assert after.text == "echo: after timeout"
    # The agent honoured the cancel: the session stayed hot.
    assert after.cold_start is False and after.pid == first.pid


def test_claude_only_options_raise_invalid_config_naming_them(engine, tmp_path):
    # The message names the option: "invalid configuration: model: a
    # claude-code option; the acp provider does not take it ...".
    with pytest.raises(hotplex.InvalidConfig, match=r": model: a claude-code option"):
        hotplex.Engine(**_options(tmp_path, model="m"))
    with pytest.raises(hotplex.InvalidConfig, match=r": permission_mode: "):
        hotplex.Engine(**_options(tmp_path, permission_mode="plan"))
    with pytest.raises(hotplex.InvalidConfig, match=r": session\.max_turns: "):
        engine.execute("s", "x", session={"max_turns": 2})
    with pytest.raises(hotplex.InvalidConfig, match="provider"):
        hotplex.Engine(**_options(tmp_path, provider="opencode"))
    # The refused turns started nothing.
    assert engine.sessions() == []
    assert engine.execute("s", "hi").text == "echo: hi"


def test_a_session_picks_the_acp_provider_and_its_command_line(tmp_path):
    # A claude-code engine (the stream-json reference agent) with one ACP session.
    (tmp_path / "work").mkdir()
    with hotplex.Engine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": str(tmp_path)},
        default_workdir=str(tmp_path / "work"),
    ) as eng:
        acp: hotplex.SessionOptions = {"provider": "acp", "binary": ACP, "args": []}
        claude = eng.execute("claude", "hi")
        first = eng.execute("acp", "hi", session=acp)
        assert (claude.text, first.text) == ("echo: hi", "echo: hi")
        assert claude.pid != first.pid
        # Later turns need not repeat the session's options.
        caps = eng.execute("acp", "caps?")
        assert caps.text == "caps: read=true write=true terminal=true"
        assert caps.pid == first.pid
        with pytest.raises(hotplex.InvalidConfig) as info:
            eng.execute("acp", "x", session={"provider": "claude-code"})
        assert "session.provider" in str(info.value)


def test_four_sessions_run_turns_at_once(engine):
    results, errors = {}, []

    def run(i):
        try:
            results[i] = [engine.execute(f"s{i}", f"turn {n} of {i}") for n in range(3)]
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == [0, 1, 2, 3]
    for i, turns in results.items():
        assert [t.text for t in turns] == [f"echo: turn {n} of {i}" for n in range(3)]
        assert len({t.pid for t in turns}) == 1
    assert len({turns[0].pid for turns in results.values()}) == 4, "a process per session"
    assert [s.id for s in engine.sessions()] == ["s0", "s1", "s2", "s3"]


def test_the_async_engine_runs_an_acp_turn(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(**_options(tmp_path)) as eng:
            first = await eng.execute("s", "hello")
            types = [e.type async for e in eng.stream("s", "again")]
            return first, types

    first, types = asyncio.run(asyncio.wait_for(main(), 60))
    assert first.text == "echo: hello" and first.cold_start is True
    assert types[0] == "answer" and types[-1] == "session_stats"
