"""Typical typed use of hotplex, checked with mypy --strict by
test_contract.py (never run): the stubs must accept it as written."""

import asyncio
import logging
import pathlib
from typing import Any, Dict, List, Optional, cast

from prometheus_client import CollectorRegistry

import hotplex
from hotplex._records import AnswerData


def answer(binary: str, prompt: str) -> str:
    # `with` then `return`: needs Engine.__exit__ -> None, not bool.
    with hotplex.Engine(binary=binary) as e:
        return e.execute("s", prompt).text


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
