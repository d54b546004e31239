"""Running an async host function (can_use_tool, a hook, a host tool) on
the host's asyncio event loop.

The engine calls host functions on its own threads. When one returns a
coroutine (an ``async def``), it must run on the loop the host's async code
lives on: for an Engine, the one that was running when it was created; for
an AsyncEngine, the one its latest call ran on. ``schedule`` starts it
there; the engine thread waits for the answer without holding the GIL (see
host.rs). An answer that cannot be scheduled raises here, so the call fails
closed (a tool call is denied, never allowed; a tool answers with an error)
and the error is reported through sys.unraisablehook where the function's
failures are.
"""

import asyncio
import concurrent.futures
import inspect
from typing import Any, Awaitable, Optional

NO_LOOP = (
    "{what} returned a coroutine but no running event loop was captured "
    "when the Engine was created; use hotplex.AsyncEngine, create the Engine "
    "inside the event loop (in async code), or make {what} a plain "
    "function. The call failed (a tool call is denied)."
)
LOOP_GONE = (
    "{what} returned a coroutine but its event loop is no longer running. "
    "The call failed (a tool call is denied)."
)


def schedule(
    answer: Awaitable[Any], loop: Optional[asyncio.AbstractEventLoop], what: str = "can_use_tool"
) -> "concurrent.futures.Future[Any]":
    """Runs the awaitable answer of the host function `what` on loop; the
    future resolves to its result."""
    if loop is None or loop.is_closed() or not loop.is_running():
        if inspect.iscoroutine(answer):
            answer.close()  # it will never run: no "never awaited" warning
        raise RuntimeError((NO_LOOP if loop is None else LOOP_GONE).format(what=what))

    async def wait() -> Any:
        return await answer

    return asyncio.run_coroutine_threadsafe(wait(), loop)
