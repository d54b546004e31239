"""Running an async can_use_tool on the host's asyncio event loop.

The engine calls can_use_tool on one of its own threads. When the callback
returns a coroutine (an ``async def``), it must run on the loop the host's
async code lives on: for an Engine, the one that was running when it was
created; for an AsyncEngine, the one its latest call ran on. ``schedule``
starts it there; the engine thread waits for the answer without holding the
GIL (see engine.rs). An answer that cannot be scheduled raises here, so the
tool call is denied (never allowed) and the error is reported through
sys.unraisablehook.
"""

import asyncio
import concurrent.futures
import inspect
from typing import Any, Awaitable, Optional

NO_LOOP = (
    "can_use_tool returned a coroutine but no running event loop was captured "
    "when the Engine was created; use hotplex.AsyncEngine, create the Engine "
    "inside the event loop (in async code), or make can_use_tool a plain "
    "function. The tool call was denied."
)
LOOP_GONE = (
    "can_use_tool returned a coroutine but its event loop is no longer running. "
    "The tool call was denied."
)


def schedule(
    answer: Awaitable[Any], loop: Optional[asyncio.AbstractEventLoop]
) -> "concurrent.futures.Future[Any]":
    """Runs the awaitable answer on loop; the future resolves to its result."""
    if loop is None or loop.is_closed() or not loop.is_running():
        if inspect.iscoroutine(answer):
            answer.close()  # it will never run: no "never awaited" warning
        raise RuntimeError(NO_LOOP if loop is None else LOOP_GONE)

    async def wait() -> Any:
        return await answer

    return asyncio.run_coroutine_threadsafe(wait(), loop)
