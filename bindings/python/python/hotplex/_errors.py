"""The exceptions of hotplex.

Every error raised by the native core is a :class:`HotplexError`; the
subclasses also derive from the matching built-in exception, so
``except ValueError`` keeps working.
"""

from typing import Optional

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
]


class HotplexError(Exception):
    """Base class of every exception raised by hotplex."""

    __module__ = "hotplex"


class InvalidRule(HotplexError, ValueError):
    """A custom WAF rule could not be used.

    ``line`` is the 1-based line of a line-format rule file, or the line on
    which the offending element of a JSON rule list starts.
    """

    __module__ = "hotplex"

    def __init__(self, message: str, line: Optional[int] = None) -> None:
        super().__init__(message)
        self.line = line

    def __reduce__(self):  # keep .line across pickling
        return (type(self), (str(self), self.line))


class InvalidArgument(HotplexError, ValueError):
    """An argument was rejected (tool input that is not a JSON object, a
    relative allow path, ...)."""

    __module__ = "hotplex"


class InvalidUtf8(HotplexError, UnicodeError):
    """Text is not valid UTF-8: a str with lone surrogates, or bytes that
    do not decode."""

    __module__ = "hotplex"


class InvalidConfig(HotplexError, ValueError):
    """An engine option, session id, workdir or prompt was rejected before
    anything ran (workdir outside allowed_roots, prompt too large, ...)."""

    __module__ = "hotplex"


class DangerBlocked(HotplexError):
    """The WAF blocked the prompt; ``verdict`` says why."""

    __module__ = "hotplex"

    def __init__(self, message: str, verdict: "Optional[object]" = None) -> None:
        super().__init__(message)
        self.verdict = verdict

    def __reduce__(self):
        return (type(self), (str(self), None))


class TurnTimeout(HotplexError, TimeoutError):
    """The turn exceeded its timeout (or was cancelled). The agent was
    interrupted, or killed if it did not stop; the session stays usable."""

    __module__ = "hotplex"


class SessionDead(HotplexError):
    """The agent process died during the turn (crash, kill, stop_session).
    The next turn starts a new process that resumes the conversation."""

    __module__ = "hotplex"


class TurnFailed(HotplexError):
    """The agent ended the turn with an error result; ``subtype`` is the
    result's subtype (``error_during_execution``, ``error_max_turns``, ...)."""

    __module__ = "hotplex"

    def __init__(self, message: str, subtype: Optional[str] = None) -> None:
        super().__init__(message)
        self.subtype = subtype

    def __reduce__(self):
        return (type(self), (str(self), self.subtype))


class CapacityExceeded(HotplexError):
    """max_sessions sessions exist and every one is busy."""

    __module__ = "hotplex"


class StartFailed(HotplexError):
    """The agent could not be started, or printed nothing within
    startup_timeout."""

    __module__ = "hotplex"


class Closed(HotplexError):
    """The engine was closed."""

    __module__ = "hotplex"
