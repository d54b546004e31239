"""Interactive turns through Python (issue 19), against the bundled reference
agent: the agent asks a question (AskUserQuestion) or proposes a plan
(ExitPlanMode) and waits; the host answers with answer_question /
approve_plan (sync and asyncio, from any thread, after the turn's timeout
would have run out) or through can_use_tool. The core's rules are tested in
Rust; these tests prove the Python shapes reach it and come back."""

import asyncio
import threading
import time

import pytest

import hotplex
from test_control import _async_engine, _engine

ASK = "ask:Which color? Red | Blue"


def _first(stream, name):
    """Iterates stream up to the first event called name (which must come)."""
    for event in stream:
        if event.type == name:
            return event
    raise AssertionError(f"the turn ended without a {name} event")


def _rest(stream):
    """Iterates stream to its end; returns its Turn."""
    for _ in stream:
        pass
    return stream.turn


def test_a_question_event_carries_its_options_and_the_answer_reaches_the_agent(tmp_path):
    with _engine(tmp_path) as eng:
        stream = eng.stream("s", ASK)
        event = _first(stream, "ask_user_question")
        (question,) = event.data["questions"]
        assert question["question"] == "Which color?" and question["header"] == "Q1"
        assert [o["label"] for o in question["options"]] == ["Red", "Blue"]
        assert question["options"][0]["description"] == "about Red"
        assert question["multi_select"] is False
        assert event.data["question_id"] == event.data["tool_use_id"]
        eng.answer_question("s", event.data["question_id"], {"Which color?": "Blue"})
        turn = _rest(stream)
    assert '"Which color?"="Blue"' in turn.text, turn.text


def test_an_answer_from_another_thread_after_the_turn_timeout_is_used(tmp_path):
    answered = []

    def on_event(event):
        if event.type != "ask_user_question":
            return

        def later():
            time.sleep(1.0)  # longer than the turn's timeout
            eng.answer_question("s", event.data["question_id"], [["S", "L"]])
            answered.append(True)

        threading.Thread(target=later).start()

    with _engine(tmp_path) as eng:
        turn = eng.execute("s", "askmulti:Which sizes? S | M | L", on_event=on_event,
                           timeout=0.3)
    assert answered
    assert '"Which sizes?"="S, L"' in turn.text, turn.text


def test_on_event_may_answer_in_the_callers_own_thread(tmp_path):
    with _engine(tmp_path) as eng:
        def on_event(event):
            if event.type == "ask_user_question":
                eng.answer_question("s", event.data["question_id"], ["Blue"])

        turn = eng.execute("s", ASK, on_event=on_event)
    assert '"Which color?"="Blue"' in turn.text, turn.text


def test_bad_answers_raise_and_leave_the_question_waiting(tmp_path):
    with _engine(tmp_path) as eng:
        with pytest.raises(hotplex.QuestionNotFound):
            eng.answer_question("s", "toolu_x", {"Which color?": "Red"})
        stream = eng.stream("s", ASK)
        qid = _first(stream, "ask_user_question").data["question_id"]
        with pytest.raises(hotplex.InvalidAnswer) as err:
            eng.answer_question("s", qid, {"Which shape?": "Round"})
        assert isinstance(err.value, ValueError)
        assert "Which shape?" in str(err.value)
        with pytest.raises(hotplex.InvalidAnswer):
            eng.answer_question("s", qid, {"Which color?": object()})
        with pytest.raises(hotplex.QuestionNotFound):
            eng.answer_question("s", "toolu_nope", ["Red"])
        with pytest.raises(hotplex.QuestionNotFound):
            eng.approve_plan("s", True)
        eng.answer_question("s", qid, {"0": "Red"})
        assert '"Which color?"="Red"' in _rest(stream).text
        with pytest.raises(hotplex.QuestionNotFound):
            eng.answer_question("s", qid, ["Blue"])


def test_an_unanswered_question_raises_question_timeout_and_the_session_stays_hot(tmp_path):
    with _engine(tmp_path) as eng:
        pid = eng.execute("s", "hello").pid
        with pytest.raises(hotplex.QuestionTimeout) as err:
            eng.execute("s", ASK, question_timeout=0.3)
        assert isinstance(err.value, TimeoutError)
        assert eng.execute("s", "hi").pid == pid


def test_the_engines_question_timeout_answer_is_what_the_agent_reads(tmp_path):
    with _engine(tmp_path, question_timeout=0.3,
                 question_timeout_answer="nobody is here") as eng:
        assert eng.execute("s", ASK).text == "tool said: nobody is here"


def test_an_interrupt_cancels_the_waiting_question(tmp_path):
    with _engine(tmp_path) as eng:
        pid = eng.execute("s", "hello").pid
        stream = eng.stream("s", ASK)
        qid = _first(stream, "ask_user_question").data["question_id"]
        assert eng.interrupt("s") is True
        with pytest.raises(hotplex.TurnTimeout):
            _rest(stream)
        with pytest.raises(hotplex.QuestionNotFound):
            eng.answer_question("s", qid, ["Red"])
        assert eng.execute("s", "hi").pid == pid


def test_a_plan_is_rejected_with_feedback_revised_and_approved_into_accept_edits(tmp_path):
    with _engine(tmp_path, permission_mode="plan") as eng:
        stream = eng.stream("s", "plan:# Plan A")
        mode = _first(stream, "plan_mode")
        assert mode.data == {"active": True, "permission_mode": "plan"}
        first = _first(stream, "exit_plan_mode")
        assert first.data["plan"] == "# Plan A"
        eng.approve_plan("s", False, feedback="add a test step")
        second = _first(stream, "exit_plan_mode")
        assert second.data["plan"] == "# Plan A\nRevised after: add a test step"
        with pytest.raises(hotplex.InvalidAnswer):
            eng.approve_plan("s", False, mode="acceptEdits")
        eng.approve_plan("s", True, mode="acceptEdits")
        left = _first(stream, "plan_mode")
        assert left.data == {"active": False, "permission_mode": "acceptEdits"}
        turn = _rest(stream)
        assert turn.text == "plan approved after 1 rejections; mode: acceptEdits"
        assert eng.execute("s", "mode?").text == "mode: acceptEdits"


def test_can_use_tool_may_answer_a_question_itself(tmp_path):
    def decide(tool, tool_input, verdict):
        if tool == "AskUserQuestion":
            text = tool_input["questions"][0]["question"]
            return {"behavior": "allow", "updatedInput": {**tool_input, "answers": {text: "Red"}}}
        return True

    with _engine(tmp_path, can_use_tool=decide) as eng:
        turn = eng.execute("s", ASK)
    assert '"Which color?"="Red"' in turn.text, turn.text
    assert not [e for e in turn.events if e.type == "ask_user_question"]


def test_questions_and_plans_are_answered_by_awaiting_on_the_async_engine(tmp_path):
    async def main():
        async with _async_engine(tmp_path, permission_mode="plan") as eng:
            texts = []
            for prompt in (ASK, "plan:# Plan B"):
                stream = eng.stream("s", prompt, timeout=0.3)
                async for event in stream:
                    if event.type == "ask_user_question":
                        await asyncio.sleep(0.6)  # past the turn's timeout
                        await eng.answer_question("s", event.data["question_id"],
                                                  {"Q1": "Blue"})
                    elif event.type == "exit_plan_mode":
                        await eng.approve_plan("s", True, mode="acceptEdits")
                texts.append(stream.turn.text)
            with pytest.raises(hotplex.QuestionNotFound):
                await eng.approve_plan("s", True)
            with pytest.raises(hotplex.InvalidAnswer):
                await eng.answer_question("s", "x", {"a": {1, 2}})
            return texts

    texts = asyncio.run(main())
    assert '"Which color?"="Blue"' in texts[0], texts
    assert texts[1] == "plan approved after 0 rejections; mode: acceptEdits"
