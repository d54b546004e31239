"""hotplex: keeps AI coding agents hot, with a shell-aware command WAF.

The work is done by a Rust core (``hotplex._native``); this package
re-exports its public API::

    import hotplex

    d = hotplex.Detector()
    v = d.check_command("rm -rf /")
    assert v.blocked and v.level == "critical"
"""

from ._errors import HotplexError, InvalidArgument, InvalidRule, InvalidUtf8
from ._native import CORE_VERSION, Detector, Verdict, __version__

__all__ = [
    "__version__",
    "CORE_VERSION",
    "Detector",
    "Verdict",
    "HotplexError",
    "InvalidRule",
    "InvalidArgument",
    "InvalidUtf8",
]
