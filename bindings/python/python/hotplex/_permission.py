"""Awaiting an async can_use_tool on the host's asyncio event loop.

The engine calls can_use_tool on one of its own threads. When the callback
returns a coroutine (an ``async def``), it must run on the loop the host's
async code lives on: the one that was running when the Engine was created.
An answer that cannot be awaited raises here, so the tool call is denied
(never allowed) and the error is reported through sys.unraisablehook.
"""

import asyncio
import concurrent.futures
import inspect
from typing import Any, Optional

NO_LOOP = (
    "can_use_tool returned a coroutine but no running event loop was captured "
    "when the Engine was created; create the Engine inside the event loop "
    "(in async code) or make can_use_tool a plain function. The tool call was denied."
)
LOOP_GONE = (
    "can_use_tool returned a coroutine but the event loop that was running when "
    "the Engine was created is no longer running. The tool call was denied."
)


def resolve(answer: Any, loop: Optional[asyncio.AbstractEventLoop], timeout: float) -> Any:
    """answer itself, or what it resolves to when it is awaitable: it runs
    on loop while this (engine) thread waits up to timeout seconds."""
    if not inspect.isawaitable(answer):
        return answer
    if loop is None or loop.is_closed() or not loop.is_running():
        if inspect.iscoroutine(answer):
            answer.close()  # it will never run: no "never awaited" warning
        raise RuntimeError(NO_LOOP if loop is None else LOOP_GONE)

    async def wait() -> Any:
        return await answer

    future = asyncio.run_coroutine_threadsafe(wait(), loop)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(
            f"can_use_tool did not answer within {timeout} s; is its event loop "
            "blocked (e.g. by Engine.execute called on the loop's thread instead "
            "of through asyncio.to_thread)?"
        ) from None
