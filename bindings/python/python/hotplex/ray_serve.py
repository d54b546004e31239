"""hotplex on Ray Serve: conversations spread over many hosts (``pip install hotplex[ray]``).

Each replica of the deployment holds one :class:`hotplex.AsyncEngine` under
placement (``EngineOptions.placement``): its sessions' leases and transcripts
live in a store every replica reaches (``redis://...``, or a shared
directory). Routing is Ray Serve's model multiplexing with the session id as
the multiplexed model id, so every turn of a session goes to the replica that
holds its hot agent process::

    from ray import serve
    from hotplex.ray_serve import deployment

    app = deployment(num_replicas=3).bind(
        {"binary": "claude", "default_workdir": "/srv/work"},
        store="redis://10.0.0.5:6379",
    )
    handle = serve.run(app)
    turn = await handle.options(multiplexed_model_id="chat-1").execute.remote("hello")

* The multiplexed loader adopts the session (``Engine.adopt``: its lease, and
  its conversation from the store when another replica ran it), so a
  session's first turn on a replica resumes the conversation (``resumed``).
* Ray's eviction of a session from a replica (``max_sessions_per_replica``,
  least recently used first) releases it (``Engine.release``: transcript
  saved, lease dropped), so another replica can take it up at once.
* A replica that is stopped (scale-down, redeploy) drains its engine
  (``Engine.drain``): running turns finish, every session is released.
* A replica that dies (its node lost) keeps its leases until they lapse
  (``lease_ttl``); a turn for one of its sessions then waits on another
  replica (up to ``takeover_wait``) and continues the conversation there. A
  replica that froze and wakes up has lost those sessions: its late answers
  and transcript writes fail as :class:`hotplex.Fenced` and its agents are
  killed, so a conversation never runs on two replicas at once.

Errors reach the caller as the hotplex exceptions (Ray wraps them in a
``RayTaskError`` that is also an instance of the original class).
"""

import asyncio
import logging
import os
import time
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Union

from ray import serve

from . import AsyncEngine, Event, Fenced, OwnedElsewhere, Turn

__all__ = ["HotplexReplica", "deployment"]

# Ray Serve sends a replica's "ray.serve" logs to its replica log file.
_log = logging.getLogger("ray.serve")

_Options = Union[Mapping[str, Any], Callable[[str], Mapping[str, Any]]]
_Path = Union[str, "os.PathLike[str]"]


class _Held:
    """A session as Ray's multiplexer caches it on a replica: evicting it
    (Ray calls ``__del__``, in an executor thread) releases the session."""

    def __init__(self, replica: "HotplexReplica", session_id: str) -> None:
        self._replica = replica
        self._session_id = session_id
        self._loop = asyncio.get_running_loop()
        self.done = False

    def __del__(self) -> None:
        if self.done:
            return
        self.done = True
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        # Garbage collection on the loop's own thread (Ray never evicted
        # it): waiting here would block that loop, so the engine's drain or
        # close lets the session go instead.
        if loop.is_closed() or running is loop:
            return
        future = asyncio.run_coroutine_threadsafe(
            self._replica._release(self._session_id), loop
        )
        future.result()


class HotplexReplica:
    """A replica's body: one engine, the sessions Ray routes to it.

    Use :func:`deployment` to build the Ray Serve deployment; this class
    holds what every replica does. Arguments (``.bind(...)``):

    engine_options: hotplex.AsyncEngine's keyword arguments, or a function
        of the replica's owner name returning them (so each replica may have
        its own workdir or configuration directory). ``placement`` is set
        here, not there.
    store: where leases and transcripts live: ``redis://host:port/db``, or a
        directory every replica reaches.
    lease_ttl: seconds a lease lasts unless renewed (placement.lease_ttl):
        how long sessions of a dead replica wait before another takes them.
    takeover_wait: how long a turn for a session another replica holds
        waits for its lease (default: twice lease_ttl plus 5 s); then it
        raises OwnedElsewhere.
    drain_timeout: how long a stopping replica lets running turns finish
        before it releases its sessions.
    owner: this replica's owner name (default: app, deployment and Ray's
        replica id).
    """

    def __init__(
        self,
        engine_options: _Options,
        *,
        store: _Path,
        lease_ttl: float = 15.0,
        takeover_wait: Optional[float] = None,
        drain_timeout: float = 30.0,
        owner: Optional[str] = None,
    ) -> None:
        if owner is None:
            ctx = serve.get_replica_context()
            owner = f"{ctx.app_name}.{ctx.deployment}.{ctx.replica_id.unique_id}"
        self.owner = "".join("_" if c.isspace() else c for c in owner)
        options = dict(engine_options(self.owner) if callable(engine_options) else engine_options)
        if "placement" in options:
            raise ValueError("engine_options: placement is set by the deployment (store=, lease_ttl=)")
        options["placement"] = {"owner": self.owner, "store": os.fspath(store), "lease_ttl": lease_ttl}
        self.engine = AsyncEngine(**options)
        self._takeover_wait = 2 * lease_ttl + 5.0 if takeover_wait is None else takeover_wait
        self._drain_timeout = drain_timeout
        self._held: Dict[str, _Held] = {}
        self._closing = False

    # -- the session a request is for ------------------------------------

    async def _session(self, session_id: str) -> _Held:
        """Ray's multiplexed loader (decorated by :func:`deployment`)."""
        raise NotImplementedError("use hotplex.ray_serve.deployment()")

    async def _adopt(self, session_id: str) -> _Held:
        await asyncio.to_thread(self.engine.adopt, session_id)
        held = _Held(self, session_id)
        self._held[session_id] = held
        return held

    def _drop(self, session_id: str) -> None:
        """Stops tracking the session here (its _Held releases nothing)."""
        held = self._held.pop(session_id, None)
        if held is not None:
            held.done = True

    async def _release(self, session_id: str) -> None:
        self._drop(session_id)
        if not self._closing:
            await self.engine.release(session_id)

    @staticmethod
    def _session_id() -> str:
        sid = str(serve.get_multiplexed_model_id() or "")
        if not sid:
            raise ValueError(
                "no session id: call through handle.options(multiplexed_model_id=<session id>) "
                "or send the serve_multiplexed_model_id header"
            )
        return sid

    def _forget(self, session_id: str) -> None:
        """This replica lost the session to another (it froze past its
        lease, or the session moved while Ray still routed here): Ray must
        stop routing it here, so it leaves Ray's cache without a release."""
        self._drop(session_id)
        # Ray's multiplexer has no public way to drop one model; its cache
        # and the flag that re-announces this replica's models are these.
        wrapper = getattr(self, "__serve_multiplex_wrapper", None)
        models = getattr(wrapper, "models", None)
        if models is not None and session_id in models:
            del models[session_id]
            wrapper._push_multiplexed_replica_info = True  # type: ignore[union-attr]

    async def _enter(self, session_id: str, workdir: Optional[_Path]) -> None:
        """Makes this replica the session's owner. A session new here waits
        while another replica's lease lasts (a dead or frozen replica's
        lapses within lease_ttl). One this replica has is not checked here:
        if it moved meanwhile, its turn raises OwnedElsewhere or Fenced, and
        the caller (execute, stream) makes Ray stop routing it here."""
        deadline = time.monotonic() + self._takeover_wait
        pause = 0.05
        while True:
            try:
                if workdir is not None and session_id not in self._held:
                    # Restored in the workdir the turn names.
                    await asyncio.to_thread(self.engine.adopt, session_id, workdir)
                await self._session(session_id)
                return
            except OwnedElsewhere:
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                # Each try is one store round trip; a short pause takes the
                # session up soon after the lease lapses.
                pause = min(pause * 2, 0.2)

    # -- what callers call -------------------------------------------------

    async def execute(self, prompt: str, workdir: Optional[_Path] = None, **turn_options: Any) -> Turn:
        """Runs one turn on the request's session (its multiplexed model id)
        and returns the finished hotplex.Turn; ``turn_options`` are
        AsyncEngine.execute's keyword arguments (timeout, session, ...)."""
        sid = self._session_id()
        await self._enter(sid, workdir)
        try:
            return await self.engine.execute(sid, prompt, workdir, **turn_options)
        except (OwnedElsewhere, Fenced) as e:
            # Lost to another replica before or during the turn.
            self._forget(sid)
            raise e

    async def stream(
        self, prompt: str, workdir: Optional[_Path] = None, **turn_options: Any
    ) -> AsyncIterator[Union[Event, Turn]]:
        """Runs one turn and yields its events as they come, then the
        finished Turn (``handle.options(stream=True,
        multiplexed_model_id=...)``). Arguments as for execute."""
        sid = self._session_id()
        await self._enter(sid, workdir)
        events = self.engine.stream(sid, prompt, workdir, **turn_options)
        try:
            async for event in events:
                yield event
        except (OwnedElsewhere, Fenced) as e:
            self._forget(sid)
            raise e
        if events.turn is not None:
            yield events.turn

    async def interrupt(self) -> bool:
        """Interrupts the request's session's running turn on this replica."""
        return await self.engine.interrupt(self._session_id())

    async def owns(self) -> bool:
        """Whether this replica holds the request's session's lease."""
        return await asyncio.to_thread(self.engine.owns, self._session_id())

    async def load(self) -> Dict[str, Any]:
        """This replica's engine load (Engine.load) with its ``owner``."""
        return {**self.engine.load(), "owner": self.owner}

    async def sessions(self) -> List[str]:
        """The session ids this replica holds."""
        return sorted(self._held)

    def check_health(self) -> None:
        """Ray Serve's health check: a closed engine is an unhealthy replica."""
        if self.engine.closed and not self._closing:
            raise RuntimeError(f"{self.owner}: the engine is closed")

    # -- shutdown ------------------------------------------------------------

    def __del__(self) -> Any:
        # Ray awaits what this returns when it stops the replica; garbage
        # collection (no running loop) gets nothing to await.
        if getattr(self, "_closing", True):
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        self._closing = True
        return self._shutdown()

    async def _shutdown(self) -> None:
        for held in self._held.values():
            held.done = True  # the drain releases them
        self._held.clear()
        started = time.monotonic()
        try:
            released = await self.engine.drain(self._drain_timeout)
            _log.info(
                "hotplex replica %s drained: released %d sessions in %.2f s",
                self.owner,
                len(released),
                time.monotonic() - started,
            )
        finally:
            await self.engine.close()


def deployment(
    *,
    name: str = "hotplex",
    max_sessions_per_replica: int = 64,
    **deployment_options: Any,
) -> Any:
    """The Ray Serve deployment of :class:`HotplexReplica`: ``.bind()`` it
    with HotplexReplica's arguments, ``serve.run`` the application.

    max_sessions_per_replica: how many sessions Ray keeps on a replica; the
        least recently used one beyond it is released to the store.
    deployment_options: ``serve.deployment``'s (num_replicas,
        ray_actor_options, max_ongoing_requests, ...). Defaults fit long
        turns: max_ongoing_requests 100, graceful_shutdown_timeout_s 60 (a
        stopping replica drains its engine first).
    """
    if max_sessions_per_replica <= 0:
        raise ValueError("max_sessions_per_replica must be positive")
    options: Dict[str, Any] = {"max_ongoing_requests": 100, "graceful_shutdown_timeout_s": 60.0}
    options.update(deployment_options)

    async def _session(self: HotplexReplica, session_id: str) -> _Held:
        return await self._adopt(session_id)

    # A subclass per call: Ray's multiplexer takes its size when it decorates.
    replica = type(
        "HotplexReplica",
        (HotplexReplica,),
        {
            "__module__": __name__,
            "__qualname__": "HotplexReplica",
            "_session": serve.multiplexed(max_num_models_per_replica=max_sessions_per_replica)(_session),
        },
    )
    return serve.deployment(name=name, **options)(replica)

