"""Interactive turns (issue 19) through hotplex.Engine on the real Claude Code CLI, both the
pinned version and the newest (CLAUDE_BIN_NEWEST), against fake_anthropic.py: the model asks a
question (AskUserQuestion) or proposes a plan (ExitPlanMode) through can_use_tool, the host
answers with answer_question / approve_plan. What the CLI does with each answer is recorded in
FACTS.md (sections w and x); the fake API's ``ask:`` and ``plan:`` directives drive the model.

The issue's "Done when": a question answered 30 s later (longer than turn_timeout) reaches the
model; a plan rejected with feedback is revised, then approved into acceptEdits, and the next
tool call runs in that mode without being asked; an interrupt while a question waits ends the
turn and the session stays hot. The last test does the same through Node
(node_interactive.js).
"""

import json
import os
import pathlib
import subprocess
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


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def engine(binary, api, tmp_path, **kw):
    options = {"turn_timeout": 60.0, "startup_timeout": 60.0, **kw}
    return hotplex.Engine(binary=binary, env=agent_env(api, tmp_path / "home"),
                          state_dir=str(tmp_path / "state"), **options)


def marker() -> str:
    return "m" + uuid.uuid4().hex[:10]


def first(stream, name):
    """Iterates stream up to the first event called name (which must come)."""
    for event in stream:
        if event.type == name:
            return event
    raise AssertionError(f"the turn ended without a {name} event")


def rest(stream):
    """Iterates stream to its end; returns its Turn."""
    events = [e for e in stream]
    return stream.turn, events


def results_with(api, tool, mark):
    """What the model was told about its `tool` calls whose input holds `mark`."""
    return [r for r in api.tool_results(tool) if mark in json.dumps(r["input"])]


def test_a_question_answered_30_s_later_than_the_turn_timeout_reaches_the_model(
        binary, api, tmp_path, workdir):
    mark = marker()
    with engine(binary, api, tmp_path, turn_timeout=10.0) as eng:
        stream = eng.stream("s", f"ask: Which color {mark}? Red | Blue", workdir=str(workdir))
        event = first(stream, "ask_user_question")
        (question,) = event.data["questions"]
        assert question["question"] == f"Which color {mark}?"
        assert [o["label"] for o in question["options"]] == ["Red", "Blue"]
        assert question["options"][1]["description"] == "about Blue"
        assert question["multi_select"] is False
        time.sleep(30)  # three times the turn's timeout
        eng.answer_question("s", event.data["question_id"], {question["question"]: "Blue"})
        turn, _ = rest(stream)
    (result,) = results_with(api, "AskUserQuestion", mark)
    assert f'"Which color {mark}?"="Blue"' in result["text"], result
    assert not result["is_error"]
    assert turn.text.startswith("tool said:"), turn.text


def test_a_multi_select_answer_reaches_the_model_joined(binary, api, tmp_path, workdir):
    mark = marker()
    with engine(binary, api, tmp_path) as eng:
        stream = eng.stream("s", f"ask: Which color {mark}? Red | Blue\n"
                                 f"askmulti: Which sizes {mark}? S | M | L", workdir=str(workdir))
        event = first(stream, "ask_user_question")
        assert [q["multi_select"] for q in event.data["questions"]] == [False, True]
        eng.answer_question("s", event.data["question_id"], {"Q1": "Red", "Q2": ["S", "L"]})
        rest(stream)
    (result,) = results_with(api, "AskUserQuestion", mark)
    assert f'"Which color {mark}?"="Red", "Which sizes {mark}?"="S, L"' in result["text"], result


def test_a_plan_rejected_with_feedback_is_revised_then_approved_into_accept_edits(
        binary, api, tmp_path, workdir):
    mark = marker()
    touched = f"x_{mark}.txt"
    with engine(binary, api, tmp_path, permission_mode="plan") as eng:
        stream = eng.stream("s", f"plan: # Plan {mark}\\n1. touch {touched}\nbash: touch {touched}",
                            workdir=str(workdir))
        assert first(stream, "plan_mode").data == {"active": True, "permission_mode": "plan"}
        proposed = first(stream, "exit_plan_mode")
        assert f"# Plan {mark}" in proposed.data["plan"], proposed.data
        eng.approve_plan("s", False, feedback=f"add a test step {mark}")
        revised = first(stream, "exit_plan_mode")
        assert f"Revised after: add a test step {mark}" in revised.data["plan"], revised.data
        assert revised.data["plan_id"] != proposed.data["plan_id"]
        eng.approve_plan("s", True, mode="acceptEdits")
        turn, events = rest(stream)
        # The approval left plan mode for acceptEdits, in which `touch` runs unasked.
        modes = [e.data for e in events if e.type == "plan_mode"]
        assert {"active": False, "permission_mode": "acceptEdits"} in modes, modes
        assert (workdir / touched).exists(), turn.text
        asked = [e.data["tool_name"] for e in events if e.type == "permission_request"]
        assert "Bash" not in asked, asked
        # The next turn is in acceptEdits too, on the same process.
        assert eng.execute("s", f"hello {mark}").pid == turn.pid
    rejected = [r for r in api.tool_results("ExitPlanMode") if r["is_error"]
                and f"add a test step {mark}" in r["text"]]
    assert rejected, api.tool_results("ExitPlanMode")


def test_an_interrupt_while_a_question_waits_ends_the_turn_and_the_session_stays_hot(
        binary, api, tmp_path, workdir):
    mark = marker()
    with engine(binary, api, tmp_path) as eng:
        pid = eng.execute("s", f"hello {mark}", workdir=str(workdir)).pid
        stream = eng.stream("s", f"ask: Which size {mark}? S | M")
        event = first(stream, "ask_user_question")
        assert eng.interrupt("s") is True
        with pytest.raises(hotplex.TurnTimeout):
            rest(stream)
        with pytest.raises(hotplex.QuestionNotFound):
            eng.answer_question("s", event.data["question_id"], ["S"])
        turn = eng.execute("s", f"again {mark}")
        assert turn.pid == pid
        assert turn.text == f"echo: again {mark}", turn.text


def test_node_answers_a_question_late_and_approves_a_revised_plan(binary, api, tmp_path, workdir):
    root = pathlib.Path(__file__).resolve().parents[2]
    node_pkg = root / "bindings" / "node"
    if not list(node_pkg.glob("hotplex.*.node")):
        pytest.skip("the Node addon is not built (tests/run-node.sh builds it)")
    modules = tmp_path / "node_modules"
    modules.mkdir()
    (modules / "hotplex").symlink_to(node_pkg)
    mark = marker()
    env = agent_env(api, tmp_path / "home")
    out = subprocess.run(
        ["node", str(root / "tests" / "e2e" / "node_interactive.js")], cwd=tmp_path,
        env=dict(os.environ, CLAUDE_BIN=binary, AGENT_ENV=json.dumps(env), WORKDIR=str(workdir),
                 MARK=mark, NODE_PATH=str(modules)),
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert [o["label"] for o in seen["question"]["options"]] == ["Red", "Blue"], seen
    (result,) = results_with(api, "AskUserQuestion", f"Which color {mark}?")
    assert f'"Which color {mark}?"="Blue"' in result["text"], result
    assert len(seen["plans"]) == 2, seen
    assert f"Revised after: add a test step {mark}" in seen["plans"][1], seen
    assert {"active": False, "permissionMode": "acceptEdits"} in seen["modes"], seen
    assert seen["touched"] and "Bash" not in seen["permissionRequests"], seen
    assert seen["interrupted"] is True and seen["interruptedTurn"] == "HOTPLEX_TURN_TIMEOUT", seen
    assert seen["lateAnswer"] == "HOTPLEX_QUESTION_NOT_FOUND", seen
    assert seen["afterText"] == f"echo: after {mark}" and seen["afterPid"] == seen["planPid"], seen
