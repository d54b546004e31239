"""The records of hotplex.Engine (Turn, Event, SessionInfo, SessionStats and
the TypedDicts inside them), under the name they have always had here.

They are generated in _contract.py from schema/hotplex.schema.json by
scripts/gen_contract.py; this module only re-exports them.
"""

from ._contract import (
    AnswerData,
    AskUserQuestionData,
    DangerBlockData,
    ErrorData,
    Event,
    EventData,
    EventName,
    ExitPlanModeData,
    PermissionRequestData,
    PlanModeData,
    Question,
    QuestionOption,
    SessionInfo,
    SessionStartData,
    SessionStats,
    SessionStatsData,
    SessionStatus,
    Span,
    ThinkingData,
    ToolCall,
    ToolResultData,
    ToolUseData,
    Turn,
    Usage,
    VerdictData,
)

__all__ = [
    "AnswerData",
    "AskUserQuestionData",
    "DangerBlockData",
    "ErrorData",
    "Event",
    "EventData",
    "EventName",
    "ExitPlanModeData",
    "PermissionRequestData",
    "PlanModeData",
    "Question",
    "QuestionOption",
    "SessionInfo",
    "SessionStartData",
    "SessionStats",
    "SessionStatsData",
    "SessionStatus",
    "Span",
    "ThinkingData",
    "ToolCall",
    "ToolResultData",
    "ToolUseData",
    "Turn",
    "Usage",
    "VerdictData",
]
