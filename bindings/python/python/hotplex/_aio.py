"""hotplex.AsyncEngine: the session pool for asyncio hosts.

The waiting is done natively (``hotplex._native._AsyncEngine``, see
bindings/python/src/aio.rs): each call hands the loop an asyncio future that
a thread of the engine's own runtime settles through
``loop.call_soon_threadsafe``; this module adds the coroutines on top.
"""

import asyncio
import inspect
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

from ._contract import Event, ImageInput, SessionOptions, Turn
from ._native import _ENGINE_DEFAULTS, _AsyncEngine, _write_unraisable

__all__ = ["AsyncEngine"]

_T = TypeVar("_T")
_Path = Union[str, "os.PathLike[str]"]
_Label = Union[str, List[str], Tuple[str, ...]]
# answer_question's answers: question text, header or index -> label(s), or
# the labels in question order.
_Answers = Union[Mapping[str, _Label], List[_Label], Tuple[_Label, ...]]


def _settle(future: "asyncio.Future[Any]", ok: bool, value: Any) -> None:
    """Runs on the loop (call_soon_threadsafe): completes future unless the
    awaiting task was cancelled meanwhile."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


async def _value(value: _T) -> _T:
    """An awaitable that is not a future (for aclose and __aenter__)."""
    return value


class AsyncEngine(_AsyncEngine):
    """The session pool for asyncio hosts: one hot agent process per session id.

    The options are exactly those of hotplex.Engine (see there; defaults
    below), read by the same code. Nothing here blocks the event loop: the
    agents are driven on the engine's own threads, and each awaiting call
    resumes through ``loop.call_soon_threadsafe``. Any running loop works
    (asyncio's, uvloop). Use it from one loop at a time::

        async with hotplex.AsyncEngine(default_workdir="/srv/work") as engine:
            turn = await engine.execute("chat-1", "hello")
            async for event in engine.stream("chat-1", "and now?"):
                print(event.type)

    Cancellation: cancelling the task awaiting execute() or an event of
    stream() (asyncio.wait_for, asyncio.timeout, a disconnecting client, ...)
    cancels the turn: the agent is interrupted and, if it has not stopped
    after interrupt_grace, its process tree is killed. After a clean
    interrupt the session stays hot, so the next turn on it is no cold start.
    The turn still queued behind it waits for the interrupt to finish.

    Callbacks: on_event, can_use_tool, hooks and tools may be plain
    functions or ``async def``. on_event runs on the loop, in event order (an
    async one is awaited before the next event is taken). An async
    can_use_tool, hook or tool runs on the loop of the engine's latest call
    (the engine's threads wait for it, up to turn_timeout or the hook's
    timeout, without holding the GIL); a plain one runs on an engine thread.
    A failing callback is reported through sys.unraisablehook: on_event's
    never breaks the turn, can_use_tool's denies the tool call, a
    PreToolUse hook's denies it too (other hooks' are noted in the turn); a
    tool's exception is its error result, which the model sees. observer
    runs on hotplex's observer thread, as for Engine.

    Live controls (interrupt, set_model, set_permission_mode, context_usage,
    mcp_status), answers to the agent's questions and plans (answer_question,
    approve_plan) and reset_session are awaitable, like every waiting call.

    At interpreter exit, callbacks are no longer called and results no
    longer delivered; the agents are killed when the process ends.
    """

    async def execute(
        self,
        session_id: str,
        prompt: str,
        workdir: Optional[_Path] = None,
        on_event: Optional[Callable[[Event], object]] = None,
        *,
        timeout: Optional[float] = None,
        waf_approved: Optional[bool] = None,
        partial_messages: Optional[bool] = None,
        session: Optional[SessionOptions] = None,
        instructions: Optional[str] = None,
        images: Optional[List[ImageInput]] = None,
        question_timeout: Optional[float] = None,
    ) -> Turn:
        """Runs one turn on session_id (started or resumed on first use) and
        returns the finished Turn; arguments (session, instructions and
        images too), result and errors as for Engine.execute. on_event(event)
        is called (and awaited, if it returns an awaitable) on the loop for
        each event, in order. Cancelling the awaiting task cancels the turn
        (see the class documentation).
        """
        if on_event is not None and not callable(on_event):
            raise TypeError("on_event must be callable")
        stream = self._start(
            session_id,
            prompt,
            workdir,
            timeout,
            waf_approved,
            partial_messages,
            session,
            instructions,
            images,
            question_timeout,
        )
        try:
            async for event in stream:
                if on_event is None:
                    continue
                try:
                    answer = on_event(event)
                    if inspect.isawaitable(answer):
                        await answer
                except Exception as exc:  # noqa: BLE001 - reported, as Engine does
                    _write_unraisable(exc, on_event)
        finally:
            # Left early (cancelled, or a BaseException in on_event): the
            # turn is cancelled. After the end this does nothing.
            stream.cancel()
        turn = stream.turn
        if turn is None:  # pragma: no cover - the stream ended without a turn
            raise RuntimeError("the turn ended without an outcome")
        return turn

    async def stop_session(self, session_id: str) -> bool:
        """Stops a session: its running and queued turns raise SessionDead and
        its process tree is killed (returns once confirmed gone). The
        conversation resumes if the id is used again. Returns whether the
        session existed.
        """
        existed: bool = await self._stop_session(session_id)
        return existed

    async def release(self, session_id: str) -> bool:
        """Lets session_id go (placement only); see Engine.release. Returns
        whether this engine held it.
        """
        held: bool = await self._release(session_id)
        return held

    async def drain(self, deadline: float) -> List[str]:
        """Drains the engine (placement only); see Engine.drain. Returns the
        released session ids.
        """
        released: List[str] = await self._drain(deadline)
        return released

    async def interrupt(self, session_id: str) -> bool:
        """Interrupts session_id's running turn (it raises TurnTimeout
        "interrupted by the host"; the process stays hot). Returns whether a
        turn was running. Raises SessionNotFound for a session not in the
        pool.
        """
        running: bool = await self._interrupt(session_id)
        return running

    async def set_model(self, session_id: str, model: Optional[str]) -> None:
        """Switches session_id's model (None: the agent's default) on its
        running process, between turns or during one; see Engine.set_model.
        Raises SessionNotFound, Unsupported or ControlFailed.
        """
        await self._set_model(session_id, model)

    async def set_permission_mode(self, session_id: str, mode: str) -> None:
        """Switches session_id's permission mode ("default", "acceptEdits",
        "plan", "bypassPermissions", ...), like set_model.
        """
        await self._set_permission_mode(session_id, mode)

    async def answer_question(self, session_id: str, question_id: str, answers: _Answers) -> None:
        """Answers question question_id (an ask_user_question event's
        data["question_id"]) that session_id's agent waits on, however long
        after the event; answers and errors as for Engine.answer_question.
        """
        await self._answer_question(session_id, question_id, answers)

    async def approve_plan(
        self,
        session_id: str,
        approved: bool,
        feedback: Optional[str] = None,
        mode: Optional[str] = None,
    ) -> None:
        """Approves (with the permission mode to carry it out in, e.g.
        "acceptEdits") or rejects (with feedback) the plan session_id's agent
        proposed (an exit_plan_mode event); see Engine.approve_plan.
        """
        await self._approve_plan(session_id, approved, feedback, mode)

    async def context_usage(self, session_id: str) -> Dict[str, Any]:
        """How full session_id's context window is, as its agent reports it
        (a dict: totalTokens, maxTokens, percentage, categories, ...); see
        Engine.context_usage.
        """
        usage: Dict[str, Any] = await self._context_usage(session_id)
        return usage

    async def mcp_status(self, session_id: str) -> Dict[str, Any]:
        """The state of session_id's MCP servers, as its agent reports it (a
        dict: {"mcpServers": [{"name": ..., "status": ...}, ...]}).
        """
        status: Dict[str, Any] = await self._mcp_status(session_id)
        return status

    async def reset_session(self, session_id: str, *, forget_transcript: bool = False) -> None:
        """Makes session_id forget its conversation: its next turn starts a
        new one; see Engine.reset_session.
        """
        await self._reset_session(session_id, forget_transcript)

    async def fork_session(
        self, session_id: str, new_id: str, *, at_message: Optional[str] = None
    ) -> None:
        """Starts session new_id as a copy of session_id's conversation (the
        two then continue separately; with at_message only up to that
        message); see Engine.fork_session.
        """
        self._fork_session(session_id, new_id, at_message)

    async def prewarm(
        self,
        spares: int,
        workdir: Optional[_Path] = None,
        *,
        session: Optional[SessionOptions] = None,
    ) -> None:
        """Keeps `spares` agent processes started for new conversations in
        workdir with the session options `session` (replacing the profile of
        the same workdir and options; spares=0 removes it); see
        Engine.prewarm.
        """
        self._prewarm(spares, workdir, session)

    async def close(self) -> None:
        """Stops every session and kills every process tree; afterwards every
        call raises Closed. Idempotent.
        """
        await self._close()

    async def __aenter__(self) -> "AsyncEngine":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


AsyncEngine.__doc__ = f"{AsyncEngine.__doc__}\n{_ENGINE_DEFAULTS}"
