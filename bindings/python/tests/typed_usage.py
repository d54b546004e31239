"""Typical typed use of hotplex, checked with mypy --strict by
test_contract.py (never run): the stubs must accept it as written."""

import asyncio
import logging
import pathlib
from typing import Any, Dict, List, Optional, cast

from prometheus_client import CollectorRegistry

import hotplex
from hotplex._records import AnswerData, AskUserQuestionData


def limited(binary: str) -> str:
    # Limits are a TypedDict of ints; the mode and ceiling are plain values.
    limits: hotplex.SessionLimits = {"max_processes": 64, "memory_bytes": 512 << 20}
    with hotplex.Engine(binary=binary, limits=limits) as e:
        ceiling: int = hotplex.session_ceiling()
        return f"{hotplex.supervisor_mode()} {ceiling} {e.execute('s', 'x').text}"


def answer(binary: str, prompt: str) -> str:
    # `with` then `return`: needs Engine.__exit__ -> None, not bool.
    with hotplex.Engine(binary=binary) as e:
        return e.execute("s", prompt).text


def acp(binary: str) -> str:
    # An ACP agent's engine; a session may name its own provider and command line.
    with hotplex.Engine(binary, ["acp"], provider="acp") as e:
        gemini: hotplex.SessionOptions = {"provider": "acp", "binary": "gemini", "args": ["--acp"]}
        return e.execute("s", "hi").text + e.execute("g", "hi", session=gemini).text


def workdir(engine: hotplex.Engine) -> Optional[pathlib.Path]:
    infos = engine.sessions()
    return infos[0].workdir if infos else None


def answers(turn: hotplex.Turn) -> List[str]:
    return [cast(AnswerData, e.data)["text"] for e in turn.events if e.type == "answer"]


def blocked_rule(err: hotplex.DangerBlocked) -> Optional[str]:
    return err.verdict.rule_id if err.verdict is not None else None


def cost(engine: hotplex.Engine) -> float:
    stats = engine.session_stats("s")
    return stats["cost_usd"] if stats is not None else 0.0


async def decide(tool: str, tool_input: Dict[str, Any], verdict: hotplex.Verdict) -> Dict[str, str]:
    await asyncio.sleep(0)
    return {"behavior": "deny", "message": "no"}


async def run(binary: str) -> str:
    engine = hotplex.Engine(binary, env={"A": "b"}, turn_timeout=30.0, can_use_tool=decide)
    with engine:
        turn = await asyncio.to_thread(engine.execute, "s", "hi", pathlib.Path("/tmp"))
        for event in engine.stream("s", "again", timeout=5.0):
            print(event.type)
        return turn.text


def observe(record: hotplex.LifecycleRecord) -> Optional[float]:
    # `type` narrows the union, as isinstance does.
    if record.type == "turn_finished":
        return record.cost_usd
    if isinstance(record, hotplex.SessionExited) and record.reason == "crashed":
        print(record.session_id)
    return None


def telemetry(binary: str) -> str:
    hotplex.enable_logging(logging.DEBUG)
    engine = hotplex.Engine(binary, observer=observe)
    registry = CollectorRegistry()
    registry.register(hotplex.PrometheusCollector(engine))
    counted = sum(
        s["value"] for f in engine.metrics_snapshot() if f["type"] == "counter" for s in f["samples"]
    )
    hotplex.disable_logging()
    return engine.metrics_text() + str(counted)


async def on_event(event: hotplex.Event) -> None:
    await asyncio.sleep(0)


async def serve(binary: str) -> Optional[str]:
    async with hotplex.AsyncEngine(binary, turn_timeout=30.0, can_use_tool=decide) as engine:
        turn: hotplex.Turn = await engine.execute("s", "hi", pathlib.Path("/tmp"), on_event)
        task = asyncio.create_task(engine.execute("s", "long", timeout=5.0))
        task.cancel()
        stream: hotplex.AsyncTurnStream = engine.stream("s", "again")
        async for event in stream:
            print(event.type)
        async with engine.stream("s", "more") as more:
            first: hotplex.Event = await more.__anext__()
            print(first.type)
        existed: bool = await engine.stop_session("s")
        print(turn.text, existed, engine.closed, engine.sessions())
        return stream.turn.text if stream.turn is not None else None


def cancel_elsewhere(stream: hotplex.TurnStream) -> None:
    stream.cancel()
    stream.close()


# --- the control surface (issue 14) ----------------------------------------


@hotplex.tool("get_weather", "The weather in a city", {"city": str})
def get_weather(args: Dict[str, Any]) -> str:
    return f"sunny in {args['city']}"


@hotplex.tool("forecast", "Tomorrow's weather", {"type": "object", "properties": {}})
async def forecast(args: Dict[str, Any]) -> Dict[str, Any]:
    await asyncio.sleep(0)
    return {"content": [{"type": "text", "text": "rain"}]}


def audit(
    hook_input: Dict[str, Any], tool_use_id: Optional[str], context: hotplex.HookContext
) -> Optional[Dict[str, Any]]:
    if context.event == "PostToolUse":
        return {"hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "ok"}}
    return None


async def guard(
    hook_input: Dict[str, Any], tool_use_id: Optional[str], context: hotplex.HookContext
) -> Dict[str, Any]:
    await asyncio.sleep(0)
    return {"continue_": True}


def decide_with_context(
    tool: str, tool_input: Dict[str, Any], verdict: hotplex.Verdict, context: Dict[str, Any]
) -> Dict[str, Any]:
    rules = context.get("permission_suggestions") or []
    return {"behavior": "allow", "updatedPermissions": rules}


def control(binary: str) -> Optional[Any]:
    weather: hotplex.Tool = get_weather
    server = hotplex.ToolServer("weather", [weather, forecast], version="2.0.0")
    with hotplex.Engine(
        binary,
        can_use_tool=decide_with_context,
        hooks={
            "PostToolUse": [audit, hotplex.HookMatcher(matcher="Bash", hooks=[guard], timeout=5.0)],
            "Stop": [audit],
        },
        tools=[server],
        control_timeout=5.0,
    ) as engine:
        options: hotplex.SessionOptions = {"max_turns": 3, "json_schema": {"type": "object"}}
        image: hotplex.ImageInput = {"media_type": "image/png", "data": "iVBORw0KGgo="}
        turn = engine.execute(
            "s", "hi", session=options, instructions="be brief", images=[image]
        )
        engine.set_model("s", None)
        engine.set_permission_mode("s", "plan")
        usage: Dict[str, Any] = engine.context_usage("s")
        print(usage.get("totalTokens"), engine.mcp_status("s"), engine.interrupt("s"))
        engine.fork_session("s", "s2")
        engine.reset_session("s", forget_transcript=True)
        try:
            engine.set_model("gone", "m")
        except (hotplex.SessionNotFound, hotplex.Unsupported, hotplex.ControlFailed) as err:
            print(err)
        return turn.structured_output


async def control_async(binary: str) -> bool:
    async with hotplex.AsyncEngine(binary, tools=[get_weather], hooks={"Stop": [guard]}) as engine:
        await engine.execute("s", "hi", session={"model": "m"})
        await engine.set_model("s", "m2")
        await engine.set_permission_mode("s", "default")
        usage: Dict[str, Any] = await engine.context_usage("s")
        status: Dict[str, Any] = await engine.mcp_status("s")
        await engine.fork_session("s", "s2")
        await engine.reset_session("s")
        print(usage, status)
        return await engine.interrupt("s")


def interactive(binary: str) -> str:
    with hotplex.Engine(binary, permission_mode="plan", question_timeout=600.0,
                        question_timeout_answer="no answer; decide yourself") as engine:
        stream = engine.stream("s", "plan it", question_timeout=60.0)
        for event in stream:
            if event.type == "ask_user_question":
                data = cast(AskUserQuestionData, event.data)
                first: hotplex.Question = data["questions"][0]
                option: hotplex.QuestionOption = first["options"][0]
                engine.answer_question("s", data["question_id"], {first["question"]: option["label"]})
                engine.answer_question("s", data["question_id"], [["S", "L"], "Red"])
            elif event.type == "exit_plan_mode":
                engine.approve_plan("s", False, feedback="add a test step")
                engine.approve_plan("s", True, mode="acceptEdits")
        try:
            engine.answer_question("s", "gone", {"Q1": "Red"})
        except (hotplex.QuestionNotFound, hotplex.InvalidAnswer, hotplex.QuestionTimeout) as err:
            print(err)
        turn = stream.turn
        return turn.text if turn else ""


async def interactive_async(binary: str) -> None:
    async with hotplex.AsyncEngine(binary) as engine:
        await engine.execute("s", "hi", question_timeout=30.0)
        await engine.answer_question("s", "toolu_1", {"Which color?": "Blue"})
        await engine.approve_plan("s", True, mode="acceptEdits")
