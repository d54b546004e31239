"""Spare processes (Engine(prewarm=...)) through hotplex.Engine on the real Claude Code CLI,
the pinned version and the newest (CLAUDE_BIN_NEWEST), against fake_anthropic.py.

What the CLI does with a spare (a fresh --session-id, initialize, get_context_usage, a warm-up
message its own UserPromptSubmit hook blocks) is recorded in FACTS.md, section y.
"""

import os
import time
import uuid

import pytest

import hotplex
from conftest import agent_env

VERSIONS = ["pinned", "newest"]


@pytest.fixture(params=VERSIONS)
def binary(request, claude):
    if request.param == "pinned":
        return claude
    newest = os.environ.get("CLAUDE_BIN_NEWEST")
    if not newest:
        pytest.skip("CLAUDE_BIN_NEWEST is not set (tests/run-e2e.sh installs 2.1.332)")
    return newest


def ready_spares(eng) -> float:
    return next(s["value"] for f in eng.metrics_snapshot() if f["name"] == "hotplex_spares"
                for s in f["samples"] if s["labels"] == {"status": "ready"})


def wait_ready(eng, n, within=60.0):
    deadline = time.monotonic() + within
    while ready_spares(eng) != n:
        assert time.monotonic() < deadline, f"wanted {n} ready spares, have {ready_spares(eng)}"
        time.sleep(0.05)


def test_a_new_conversation_takes_a_spare_answers_on_it_and_resumes_later(binary, api, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    home = tmp_path / "home"
    env = agent_env(api, home)
    records = []
    mark = "m" + uuid.uuid4().hex[:10]
    opts = dict(binary=binary, env=env, state_dir=str(tmp_path / "state"),
                default_workdir=str(workdir), turn_timeout=60.0, startup_timeout=60.0)
    with hotplex.Engine(**opts, prewarm=[{"spares": 1}], observer=records.append) as eng:
        wait_ready(eng, 1)
        turn = eng.execute("s", f"first {mark}")
        assert turn.text == f"echo: first {mark}", turn.text
        assert turn.cold_start is False
        deadline = time.monotonic() + 5  # records arrive off the turn's path
        while not any(isinstance(r, hotplex.SpareClaimed) for r in records):
            assert time.monotonic() < deadline, "no spare_claimed record"
            time.sleep(0.02)
        claims = [r for r in records if isinstance(r, hotplex.SpareClaimed)]
        assert [(r.session_id, r.pid) for r in claims] == [("s", turn.pid)]
        assert not any(isinstance(r, hotplex.SessionStarted) and r.session_id == "s"
                       for r in records), "no process was started for the session"
        # The model never saw the spare's warm-up message.
        assert not api.saw("hotplex warm-up")
        # Stopped, the session resumes its conversation on a new process.
        assert eng.stop_session("s")
        back = eng.execute("s", "recall")
        assert back.cold_start and back.resumed
        assert back.text == f"recall: first {mark}", back.text
        assert back.provider_session_id == turn.provider_session_id
        wait_ready(eng, 1)
    # Only the claimed conversation has a transcript: the spare left unclaimed
    # at close took its warm-up's with it.
    transcripts = list((home / ".claude" / "projects").glob("*/*.jsonl"))
    assert [p.stem for p in transcripts] == [turn.provider_session_id], transcripts
    # A later engine on the same state directory resumes it too.
    with hotplex.Engine(**opts) as eng:
        later = eng.execute("s", "recall")
        assert later.resumed and later.text == f"recall: first {mark} | recall", later.text
