"""hotplex's logs in the standard :mod:`logging` module.

The core logs with Rust's ``tracing`` (sessions starting and ending, turns
ending, WAF blocks, agent stderr). :func:`enable_logging` installs the core's
log bridge: each record becomes a :class:`logging.LogRecord` of the logger
``"hotplex"`` (the agents' stderr lines, at DEBUG: ``"hotplex.agent"``), with
``record.session_id`` (``None`` when no session is concerned) and
``record.target`` (where in hotplex it comes from). Handlers, formatters and
levels are configured as usual::

    import logging, hotplex

    logging.basicConfig(format="%(levelname)s %(name)s [%(session_id)s] %(message)s")
    logging.getLogger("hotplex").setLevel(logging.INFO)
    hotplex.enable_logging(logging.INFO)

Records are handed over on hotplex's log thread (which takes the GIL), never
on a session's, through a bounded queue: a slow handler loses records rather
than stalling turns. The bridge is process-wide: the last call wins.
"""

import logging
from typing import TYPE_CHECKING, Dict, Optional, Union

from . import _native

if TYPE_CHECKING:
    # The core's log levels (their wire names).
    from ._native import _LogLevelName

# hotplex's trace level, below DEBUG (logging has none).
TRACE = 5

_LOGGER = logging.getLogger("hotplex")
_AGENT_LOGGER = logging.getLogger("hotplex.agent")
# The core's target of agent stderr lines.
_AGENT_TARGET = "hotplex::agent"
# The core's levels, least severe first, as logging levels.
_LEVELS: Dict["_LogLevelName", int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _core_level(level: Union[int, str]) -> "_LogLevelName":
    """The least severe core level that `level` lets through."""
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown logging level {level!r}")
        level = number
    for name, number in _LEVELS.items():
        if number >= level:
            return name
    return "error"  # CRITICAL: the core has nothing above error


def _forward(level: "_LogLevelName", target: str, message: str, session_id: Optional[str]) -> None:
    """Called by the core's log bridge on hotplex's log thread."""
    logger = _AGENT_LOGGER if target == _AGENT_TARGET else _LOGGER
    number = _LEVELS.get(level, logging.ERROR)
    if logger.isEnabledFor(number):
        # The message is data, never a format string: no args.
        logger.log(number, message, extra={"session_id": session_id, "target": target})


def enable_logging(level: Union[int, str] = logging.INFO) -> None:
    """Forwards hotplex's log records at ``level`` and above (a logging level,
    int or name) to the logger ``"hotplex"`` (agent stderr, at DEBUG, to
    ``"hotplex.agent"``), with ``extra={"session_id": ..., "target": ...}``.

    Records are emitted on hotplex's log thread. Levels map as trace (5, below
    DEBUG), debug, info, warn (WARNING) and error; the loggers' own levels and
    handlers still apply (the root logger drops INFO by default). Process-wide;
    calling it again changes the level. Raises InvalidConfig if the process
    already has another Rust ``tracing`` subscriber (another extension that
    installed one), which then receives hotplex's records instead.
    """
    core = _core_level(level)
    if core == "trace" and logging.getLevelName(TRACE) != "TRACE":
        logging.addLevelName(TRACE, "TRACE")
    _native._set_log_sink(core, _forward)


def disable_logging() -> None:
    """Stops forwarding hotplex's log records (the default)."""
    _native._set_log_sink("error", None)
