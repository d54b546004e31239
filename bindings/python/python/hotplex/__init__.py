"""hotplex: keeps AI coding agents hot, with a shell-aware command WAF.

The work is done by a Rust core (``hotplex._native``); this package
re-exports its public API::

    import hotplex

    d = hotplex.Detector()
    v = d.check_command("rm -rf /")
    assert v.blocked and v.level == "critical"

    with hotplex.Engine() as engine:          # runs `claude` from PATH
        turn = engine.execute("chat-1", "hello", workdir="/tmp/chat-1")
        print(turn.text, turn.cold_start, turn.duration_ms)

In asyncio code use ``hotplex.AsyncEngine`` (same options; nothing blocks
the loop, and cancelling an awaiting task interrupts its turn)::

    async with hotplex.AsyncEngine() as engine:
        turn = await engine.execute("chat-1", "hello")
        async for event in engine.stream("chat-1", "more"):
            print(event.type)

The agent's control surface: host hooks (``hooks={"PostToolUse": [fn]}``),
tools written in Python (``@hotplex.tool`` and ``tools=[...]``), live
controls (``engine.set_model(id, "m")``, ``interrupt``, ``context_usage``,
...), ``reset_session``/``fork_session``, and per-session options
(``execute(..., session={"max_turns": 3})``)::

    @hotplex.tool("get_weather", "The weather in a city", {"city": str})
    def get_weather(args):
        return f"sunny in {args['city']}"

    def audit(input, tool_use_id, context):
        return {"hookSpecificOutput": {"hookEventName": "PostToolUse",
                                       "additionalContext": "checked"}}

    with hotplex.Engine(tools=[get_weather], hooks={"PostToolUse": [audit]}) as engine:
        engine.execute("chat-1", "weather in Paris?")
        engine.set_model("chat-1", "claude-sonnet-4-5")

The agent's questions and plans arrive as ``ask_user_question`` and
``exit_plan_mode`` events and wait, without the turn's timeout, for
``engine.answer_question(id, question_id, {question: label})`` or
``engine.approve_plan(id, True, mode="acceptEdits")`` (from any thread).

Telemetry: ``engine.metrics_text()`` (OpenMetrics text; hotplex opens no
port), ``hotplex.PrometheusCollector(engine)`` for a ``prometheus_client``
registry, ``Engine(observer=...)`` for typed lifecycle records
(``hotplex.LifecycleRecord``), and ``hotplex.enable_logging()`` for hotplex's
logs in the ``logging`` logger ``"hotplex"``.
"""

from ._contract import (
    CapacityExceeded,
    Closed,
    ContainmentFailed,
    ControlFailed,
    DangerBlocked,
    Event,
    HotplexError,
    InternalError,
    InvalidArgument,
    InvalidConfig,
    InvalidRule,
    InvalidUtf8,
    ImageInput,
    IoError,
    LifecycleRecord,
    PrewarmProfile,
    ProcessSignalled,
    Question,
    QuestionNotFound,
    QuestionOption,
    QuestionTimeout,
    Fenced,
    OwnedElsewhere,
    InvalidAnswer,
    SessionDead,
    SessionExited,
    SessionInfo,
    SessionLimits,
    PlacementOptions,
    SessionNotFound,
    SessionOptions,
    SessionStarted,
    SessionStats,
    SpareClaimed,
    SpawnFailed,
    StartFailed,
    Turn,
    TurnFailed,
    TurnFinished,
    TurnTimeout,
    Unsupported,
    WafVerdict,
)
from ._aio import AsyncEngine
from ._host import HookContext, HookMatcher, Tool, ToolServer, tool
from ._logging import disable_logging, enable_logging
from ._native import (
    CORE_VERSION,
    AsyncTurnStream,
    Detector,
    Engine,
    TurnStream,
    Verdict,
    __version__,
    session_ceiling,
    supervisor_mode,
)
from ._prometheus import PrometheusCollector

__all__ = [
    "__version__",
    "CORE_VERSION",
    "supervisor_mode",
    "session_ceiling",
    "Detector",
    "Verdict",
    "Engine",
    "AsyncEngine",
    "Turn",
    "Event",
    "TurnStream",
    "AsyncTurnStream",
    "SessionInfo",
    "SessionStats",
    "SessionOptions",
    "SessionLimits",
    "PlacementOptions",
    "ImageInput",
    "PrewarmProfile",
    "Question",
    "QuestionOption",
    "HookMatcher",
    "HookContext",
    "Tool",
    "ToolServer",
    "tool",
    "LifecycleRecord",
    "SessionStarted",
    "SpareClaimed",
    "SessionExited",
    "TurnFinished",
    "WafVerdict",
    "ProcessSignalled",
    "PrometheusCollector",
    "enable_logging",
    "disable_logging",
    "HotplexError",
    "InvalidRule",
    "InvalidArgument",
    "InvalidUtf8",
    "InvalidConfig",
    "DangerBlocked",
    "TurnTimeout",
    "SessionDead",
    "TurnFailed",
    "CapacityExceeded",
    "StartFailed",
    "Closed",
    "SpawnFailed",
    "IoError",
    "ContainmentFailed",
    "InternalError",
    "SessionNotFound",
    "Unsupported",
    "ControlFailed",
    "QuestionNotFound",
    "InvalidAnswer",
    "QuestionTimeout",
    "Fenced",
    "OwnedElsewhere",
]
