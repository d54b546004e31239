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
"""

from ._contract import (
    CapacityExceeded,
    Closed,
    ContainmentFailed,
    DangerBlocked,
    Event,
    HotplexError,
    InternalError,
    InvalidArgument,
    InvalidConfig,
    InvalidRule,
    InvalidUtf8,
    IoError,
    SessionDead,
    SessionInfo,
    SessionStats,
    SpawnFailed,
    StartFailed,
    Turn,
    TurnFailed,
    TurnTimeout,
)
from ._native import (
    CORE_VERSION,
    Detector,
    Engine,
    TurnStream,
    Verdict,
    __version__,
)

__all__ = [
    "__version__",
    "CORE_VERSION",
    "Detector",
    "Verdict",
    "Engine",
    "Turn",
    "Event",
    "TurnStream",
    "SessionInfo",
    "SessionStats",
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
