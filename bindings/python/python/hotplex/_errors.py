"""The exceptions of hotplex.

Every error raised by the native core is a :class:`HotplexError`; the
subclasses also derive from the matching built-in exception, so
``except ValueError`` keeps working. The class of each core error is the
``class`` of its code in the schema's ``x-hotplex-errors`` table.
"""

from typing import TYPE_CHECKING, Optional, Tuple

if TYPE_CHECKING:
    from ._native import Verdict

__all__ = [
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
]


class HotplexError(Exception):
    """Base class of every exception raised by hotplex."""


class InvalidRule(HotplexError, ValueError):
    """A custom WAF rule could not be used.

    ``line`` is the 1-based line of a line-format rule file, or the line on
    which the offending element of a JSON rule list starts.
    """

    def __init__(self, message: str, line: Optional[int] = None) -> None:
        super().__init__(message)
        self.line = line

    def __reduce__(self) -> Tuple[type, Tuple[str, Optional[int]]]:  # keep .line
        return (type(self), (str(self), self.line))


class InvalidArgument(HotplexError, ValueError):
    """An argument was rejected (tool input that is not a JSON object, a
    relative allow path, ...)."""


class InvalidUtf8(HotplexError, UnicodeError):
    """Text is not valid UTF-8: a str with lone surrogates, or bytes that
    do not decode."""


class InvalidConfig(HotplexError, ValueError):
    """An engine option, session id, workdir or prompt was rejected before
    anything ran (workdir outside allowed_roots, prompt too large, ...)."""


class DangerBlocked(HotplexError):
    """The WAF blocked the prompt; ``verdict`` says why."""

    def __init__(self, message: str, verdict: "Optional[Verdict]" = None) -> None:
        super().__init__(message)
        self.verdict = verdict

    def __reduce__(self) -> Tuple[type, Tuple[str, None]]:  # a Verdict does not pickle
        return (type(self), (str(self), None))


class TurnTimeout(HotplexError, TimeoutError):
    """The turn exceeded its timeout (or was cancelled). The agent was
    interrupted, or killed if it did not stop; the session stays usable."""


class SessionDead(HotplexError):
    """The agent process died during the turn (crash, kill, stop_session).
    The next turn starts a new process that resumes the conversation."""


class TurnFailed(HotplexError):
    """The agent ended the turn with an error result; ``subtype`` is the
    result's subtype (``error_during_execution``, ``error_max_turns``, ...)."""

    def __init__(self, message: str, subtype: Optional[str] = None) -> None:
        super().__init__(message)
        self.subtype = subtype

    def __reduce__(self) -> Tuple[type, Tuple[str, Optional[str]]]:
        return (type(self), (str(self), self.subtype))


class CapacityExceeded(HotplexError):
    """max_sessions sessions exist and every one is busy."""


class StartFailed(HotplexError):
    """The agent could not be started, or printed nothing within
    startup_timeout."""


class Closed(HotplexError):
    """The engine was closed."""


class SpawnFailed(HotplexError):
    """A contained agent process could not be spawned."""


class IoError(HotplexError, OSError):
    """An operating-system call failed."""


class ContainmentFailed(HotplexError):
    """Containment of an agent's process tree could not be confirmed."""


class InternalError(HotplexError):
    """An internal error (a bug in hotplex) was contained."""


# Shown (and pickled) as hotplex.<name>, where users find them.
for _name in __all__:
    globals()[_name].__module__ = "hotplex"
