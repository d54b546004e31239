"""The records of hotplex.Engine: finished turns, their events, sessions.

Each is built from hotplex-core's JSON (``Turn``, ``Event``, ``SessionInfo``
and ``SessionStats`` in schema/hotplex.schema.json), one field per key, so
the names and meanings are the core's; the annotations here are what type
checkers see (there is no separate stub). tests/test_records.py fails when
the schema has a field that is missing here.
"""

import dataclasses
import pathlib
from typing import Any, Dict, List, Literal, Optional, Type, TypedDict, TypeVar, Union

EventName = Literal[
    "session_start", "thinking", "answer", "tool_use", "tool_result",
    "permission_request", "danger_block", "session_stats", "error",
]
SessionStatus = Literal["starting", "ready", "busy", "dead"]


# The dicts inside the records, as the core writes them (functional form:
# plain dicts at run time). Event data is named after its event.
Usage = TypedDict("Usage", {
    "input_tokens": int, "output_tokens": int,
    "cache_creation_input_tokens": int, "cache_read_input_tokens": int,
})
# duration_ms is None when no result came.
ToolCall = TypedDict("ToolCall", {
    "id": str, "name": str, "is_error": bool, "duration_ms": Optional[float],
})
Span = TypedDict("Span", {"start": int, "end": int})  # UTF-8 byte offsets
# A verdict inside an event, in the core's form; hotplex.Verdict is the object form.
VerdictData = TypedDict("VerdictData", {
    "level": Literal["critical", "high", "moderate", "safe"], "blocked": bool,
    "rule_id": Optional[str], "category": Optional[str], "reason": str,
    "span": Optional[Span], "canonical": Optional[str],
    "suggestions": List[str],
})
SessionStartData = TypedDict("SessionStartData", {"session_id": Optional[str], "model": Optional[str]})
ThinkingData = TypedDict("ThinkingData", {"text": str})
AnswerData = TypedDict("AnswerData", {"text": str})
ToolUseData = TypedDict("ToolUseData", {"id": str, "name": str, "input": Any})
ToolResultData = TypedDict("ToolResultData", {
    "tool_use_id": str, "name": Optional[str], "content": str, "is_error": bool,
})
PermissionRequestData = TypedDict("PermissionRequestData", {
    "request_id": str, "tool_name": str, "input": Any,
})
DangerBlockData = TypedDict("DangerBlockData", {"verdict": VerdictData})
SessionStatsData = TypedDict("SessionStatsData", {
    "usage": Usage, "cost_usd": float, "cli_duration_ms": int, "api_duration_ms": int,
    "num_turns": int, "tools": List[ToolCall], "model": Optional[str], "is_error": bool,
})
ErrorData = TypedDict("ErrorData", {"message": str})
EventData = Union[
    SessionStartData, ThinkingData, AnswerData, ToolUseData, ToolResultData,
    PermissionRequestData, DangerBlockData, SessionStatsData, ErrorData,
]
# Totals over every turn of a session (Engine.session_stats).
SessionStats = TypedDict("SessionStats", {
    "turns": int, "failed_turns": int, "cold_starts": int, "resumes": int,
    "input_tokens": int, "output_tokens": int, "cache_creation_input_tokens": int,
    "cache_read_input_tokens": int, "cost_usd": float, "tool_calls": int,
    "tool_errors": int, "tools_denied": int, "busy_ms": int, "bad_lines": int,
    "model": Optional[str],
})

_R = TypeVar("_R")


def _build(cls: Type[_R], d: Dict[str, Any], **converted: Any) -> _R:
    """cls from the core's dict: every field from its key, or from converted."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: converted[n] if n in converted else d.get(n) for n in names})


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of a turn: `type` is its name (`session_start`, `thinking`,
    `answer`, `tool_use`, `tool_result`, `permission_request`,
    `danger_block`, `session_stats`, `error`); `data` holds its fields, the
    TypedDict named after it (e.g. AnswerData for `answer`).
    """

    type: EventName
    data: EventData

    @classmethod
    def _from_json(cls, d: Dict[str, Any]) -> "Event":
        data = dict(d)
        return cls(data.pop("type"), data)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Turn:
    """A finished turn. Durations are milliseconds; is_error is False for a
    returned turn (error results raise TurnFailed)."""

    text: str
    cold_start: bool
    resumed: bool
    duration_ms: float
    queued_ms: float
    usage: Usage
    cost_usd: float
    cli_duration_ms: int
    api_duration_ms: int
    num_turns: int
    tools: List[ToolCall]
    model: Optional[str]
    is_error: bool
    events: List[Event] = dataclasses.field(repr=False)
    pid: int
    provider_session_id: str

    @classmethod
    def _from_json(cls, d: Dict[str, Any]) -> "Turn":
        return _build(cls, d, events=[Event._from_json(e) for e in d.get("events", [])])


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """A snapshot of one session; pid is None when no process runs."""

    id: str
    provider_session_id: str
    pid: Optional[int]
    status: SessionStatus
    turns: int
    pending: int
    workdir: Optional[pathlib.Path]
    idle_ms: float

    @property
    def idle_seconds(self) -> float:
        """Seconds since the session last saw input or output."""
        return self.idle_ms / 1000.0

    @classmethod
    def _from_json(cls, d: Dict[str, Any]) -> "SessionInfo":
        workdir = d.get("workdir")
        return _build(cls, d, workdir=None if workdir is None else pathlib.Path(workdir))
