"""The exceptions of hotplex.

Every error raised by the native core is a :class:`HotplexError`; the
subclasses also derive from the matching built-in exception, so
``except ValueError`` keeps working.
"""

from typing import Optional

__all__ = ["HotplexError", "InvalidRule", "InvalidArgument", "InvalidUtf8"]


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
