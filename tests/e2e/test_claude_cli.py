"""hotplex.Engine driving the real Claude Code CLI (pinned, from npm)
against a fake Anthropic Messages API on 127.0.0.1.

Prompts are directives the fake model understands (see fake_anthropic.py):
plain text is echoed, ``bash: <cmd>`` asks to run a Bash command, ``sleep: N``
answers after N seconds, ``recall`` lists the conversation's earlier prompts.
"""

import hashlib
import json
import os
import pathlib
import signal
import subprocess
import threading
import time

import pytest

import hotplex
from conftest import agent_env


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def engine(claude, api, tmp_path):
    eng = hotplex.Engine(
        binary=claude,
        env=agent_env(api, tmp_path / "home"),
        state_dir=str(tmp_path / "state"),
        turn_timeout=60.0,
        startup_timeout=60.0,
    )
    yield eng
    eng.close()


def test_five_turns_on_one_process_one_cold_start_four_hot(engine, workdir):
    turns = [engine.execute("chat", f"turn {i}", workdir=str(workdir)) for i in range(5)]
    assert [t.text for t in turns] == [f"echo: turn {i}" for i in range(5)]
    assert [t.cold_start for t in turns] == [True, False, False, False, False]
    assert len({t.pid for t in turns}) == 1
    stats = engine.session_stats("chat")
    assert stats["turns"] == 5 and stats["cold_starts"] == 1
    # The fake model reports 10 input / 5 output tokens per request; cost
    # is per turn even though the CLI reports a running total.
    assert stats["input_tokens"] == 50 and stats["output_tokens"] == 25
    assert turns[1].cost_usd == pytest.approx(turns[2].cost_usd)
    assert turns[0].model
    cold, hot = turns[0].duration_ms, sorted(t.duration_ms for t in turns[1:])[1]
    print(f"\ncold {cold:.0f} ms, hot median {hot:.0f} ms, ratio {cold / hot:.1f}x")


def test_the_waf_denies_rm_rf_of_a_protected_directory_while_an_allowed_tool_runs(
    engine, workdir, tmp_path
):
    home = tmp_path / "home"
    keep = home / "precious.txt"
    keep.write_text("do not delete")
    seen = []
    # waf_approved: the prompt itself would be blocked; this test is about
    # the tool call the model then asks for.
    turn = engine.execute(
        "tools", "bash: rm -rf ~", workdir=str(workdir), on_event=seen.append, waf_approved=True
    )
    assert keep.read_text() == "do not delete", "the home directory survived"
    names = [e.type for e in seen]
    assert "danger_block" in names
    block = next(e for e in seen if e.type == "danger_block")
    assert block.data["verdict"]["level"] == "critical"
    result = next(e for e in seen if e.type == "tool_result")
    assert result.data["is_error"] is True and "hotplex WAF blocked" in result.data["content"]
    assert turn.text.startswith("tool said: hotplex WAF blocked")

    allowed = engine.execute("tools", "bash: touch allowed.txt", workdir=str(workdir))
    assert (workdir / "allowed.txt").exists(), "the allowed tool ran"
    assert not any(e.type == "danger_block" for e in allowed.events)
    assert any(e.type == "permission_request" for e in allowed.events)
    assert engine.session_stats("tools")["tools_denied"] == 1


def test_commands_the_cli_runs_without_asking_are_still_screened(engine, workdir):
    # Without a hook the CLI runs `cat .env` inside the project with no
    # can_use_tool request at all (verified: the secret reaches the model).
    # hotplex's PreToolUse hook puts every such command in front of the WAF.
    (workdir / ".env").write_text("API_KEY=FAKE-SECRET")
    turn = engine.execute("ro", "bash: cat .env", workdir=str(workdir), waf_approved=True)
    assert "FAKE-SECRET" not in turn.text
    assert any(e.type == "danger_block" for e in turn.events)
    assert not any(e.type == "permission_request" for e in turn.events)
    listed = engine.execute("ro", "bash: ls", workdir=str(workdir))
    assert not any(e.type in ("danger_block", "permission_request") for e in listed.events)
    result = next(e for e in listed.events if e.type == "tool_result")
    assert result.data["is_error"] is False


def test_a_turn_over_turn_timeout_raises_and_the_next_turn_succeeds(engine, workdir):
    first = engine.execute("slow", "hello", workdir=str(workdir))
    started = time.monotonic()
    with pytest.raises(hotplex.TurnTimeout):
        engine.execute("slow", "sleep: 30", workdir=str(workdir), timeout=2.0)
    assert time.monotonic() - started < 15
    after = engine.execute("slow", "after the timeout", workdir=str(workdir))
    assert after.text == "echo: after the timeout"
    assert after.pid == first.pid, "the interrupt stopped the turn; the process lived on"


def test_killing_the_agent_mid_turn_is_session_dead_and_the_next_turn_resumes(
    engine, workdir
):
    engine.execute("crashy", "remember the alamo", workdir=str(workdir))
    pid = engine.sessions()[0].pid
    stream = engine.stream("crashy", "sleep: 30", workdir=str(workdir))
    assert next(stream).type == "session_start"
    # Mid-turn: the model is "thinking" for 30 s. (The CLI writes its
    # transcript 50-90 ms after each result; a kill inside that window loses
    # the previous turn from the CLI's own history, and resume falls back.)
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(hotplex.SessionDead):
        for _ in stream:
            pass
    turn = engine.execute("crashy", "recall", workdir=str(workdir))
    assert turn.cold_start and turn.resumed
    assert "remember the alamo" in turn.text
    assert turn.pid != pid


def test_eight_sessions_run_turns_concurrently(engine, workdir):
    results, errors = {}, []

    def run(i):
        try:
            results[i] = engine.execute(f"c{i}", f"hello {i}", workdir=str(workdir)).text
            results[i] += "|" + engine.execute(f"c{i}", f"again {i}", workdir=str(workdir)).text
        except Exception as e:  # collected, asserted below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {i: f"echo: hello {i}|echo: again {i}" for i in range(8)}
    infos = engine.sessions()
    assert len(infos) == 8 and len({i.pid for i in infos}) == 8
    assert all(i.status == "ready" and i.turns == 2 for i in infos)


HOST = r"""
import json, sys, time
import hotplex
env = json.loads(sys.argv[2])
engine = hotplex.Engine(binary=sys.argv[1], env=env)
pids = [engine.execute(f"h{i}", "hello", workdir=sys.argv[3]).pid for i in range(2)]
print(json.dumps(pids), flush=True)
stream = engine.stream("h0", "sleep: 60", workdir=sys.argv[3])  # busy when killed
next(stream)
time.sleep(600)
"""


def test_killing_the_host_process_kills_every_agent(claude, api, tmp_path, workdir):
    import json
    import subprocess
    import sys

    env = agent_env(api, tmp_path / "home")
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, claude, json.dumps(env), str(workdir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = json.loads(host.stdout.readline())
        assert all(os.path.exists(f"/proc/{p}") for p in pids)
        time.sleep(0.5)
        host.kill()  # SIGKILL: no cleanup code runs in the host
        host.wait()
        deadline = time.monotonic() + 20  # a hang guard, not a benchmark
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.05)
        assert not any(os.path.exists(f"/proc/{p}") for p in pids), "agents outlived the host"
    finally:
        if host.poll() is None:
            host.kill()


def test_partial_messages_stream_answer_deltas_that_add_up_to_the_answer(
    claude, api, tmp_path, workdir
):
    # The fake API streams its reply in several SSE chunks, as a real model
    # does; the CLI (--include-partial-messages) prints each as a
    # stream_event line before the complete message.
    with hotplex.Engine(
        binary=claude,
        env=agent_env(api, tmp_path / "home"),
        turn_timeout=60.0,
        startup_timeout=60.0,
        partial_messages=True,
    ) as eng:
        seen = []
        turn = eng.execute(
            "live", "a streamed reply in several pieces", workdir=str(workdir), on_event=seen.append
        )
        deltas = [e.data["text"] for e in seen if e.type == "answer_delta"]
        answers = [e.data["text"] for e in seen if e.type == "answer"]
        assert len(deltas) >= 3, deltas
        assert "".join(deltas) == answers[-1] == turn.text
        names = [e.type for e in seen]
        assert names.index("answer_delta") < names.index("answer")
        assert turn.first_delta_ms is not None and turn.first_delta_ms > 0


ROOT = pathlib.Path(__file__).resolve().parents[2]


def _live_text_in(cmd, cwd, extra_env, claude, api, tmp_path, workdir):
    """Runs a program that prints {"deltas", "text"} for one partial-messages
    turn on the real CLI, and checks the deltas add up to the answer."""
    env = dict(
        os.environ,
        CLAUDE_BIN=claude,
        AGENT_ENV=json.dumps(agent_env(api, tmp_path / "home")),
        WORKDIR=str(workdir),
        **extra_env,
    )
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["deltas"]) >= 3, result
    assert "".join(result["deltas"]) == result["text"] == "echo: a streamed reply in several pieces"


def test_partial_messages_from_node_add_up_to_the_answer(claude, api, tmp_path, workdir):
    node_pkg = ROOT / "bindings" / "node"
    if not list(node_pkg.glob("hotplex.*.node")):
        pytest.skip("the Node addon is not built (tests/run-node.sh builds it)")
    modules = tmp_path / "node_modules"
    modules.mkdir()
    (modules / "hotplex").symlink_to(node_pkg)
    _live_text_in(
        ["node", str(ROOT / "tests" / "e2e" / "live_text.js")],
        tmp_path,
        {"NODE_PATH": str(modules)},
        claude, api, tmp_path, workdir,
    )


def test_partial_messages_from_go_add_up_to_the_answer(claude, api, tmp_path, workdir):
    header = ROOT / "include" / "hotplex.h"
    if not (ROOT / "target" / "release" / "libhotplex.a").exists():
        pytest.skip("libhotplex is not built (tests/run-c-go.sh builds it)")
    digest = hashlib.sha256(header.read_bytes()).hexdigest()[:16]
    _live_text_in(
        ["go", "run", "./internal/livetext"],
        ROOT / "bindings" / "go",
        {"CGO_ENABLED": "1", "CGO_CFLAGS": f"-O2 -g -DHOTPLEX_HEADER_SHA256_PREFIX=0x{digest}"},
        claude, api, tmp_path, workdir,
    )


@pytest.mark.parametrize("version", ["pinned", "newest"])
def test_every_answer_reaches_its_turn_and_nothing_is_stray(version, claude, api, tmp_path, workdir):
    """Turn correlation (--replay-user-messages, FACTS.md l) on both CLIs: queued turns
    from four threads, an interrupted one, and the turn after it each get their own answer,
    and the CLI prints nothing outside a turn."""
    binary = claude if version == "pinned" else os.environ.get("CLAUDE_BIN_NEWEST")
    if not binary:
        pytest.skip("CLAUDE_BIN_NEWEST is not set (tests/run-e2e.sh installs 2.1.332)")
    with hotplex.Engine(binary=binary, env=agent_env(api, tmp_path / "home"),
                        state_dir=str(tmp_path / "state"), turn_timeout=60.0,
                        startup_timeout=60.0) as eng:
        answers = {}

        def worker(t):
            for k in range(3):
                prompt = f"message {t}-{k}"
                answers[prompt] = eng.execute("corr", prompt, workdir=str(workdir)).text

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert answers == {p: f"echo: {p}" for p in answers} and len(answers) == 12
        with pytest.raises(hotplex.TurnTimeout):
            eng.execute("corr", "sleep: 30", timeout=2.0)
        assert eng.execute("corr", "after the interrupt").text == "echo: after the interrupt"
        time.sleep(0.5)  # anything the CLI still prints now would be stray
        stats = eng.session_stats("corr")
        assert stats["cold_starts"] == 1, stats
        assert stats["stray_lines"] == 0 and stats["bad_lines"] == 0, stats
