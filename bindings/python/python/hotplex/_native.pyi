"""Type stubs for hotplex._native, the Rust extension behind hotplex.

Docstrings here are the runtime ones (tests/test_detector.py checks that).
"""

import os
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Literal, Mapping, Optional, Tuple, TypedDict, Union, final

__version__: str
CORE_VERSION: str

_LevelName = Literal["critical", "high", "moderate", "safe"]
_CheckKindName = Literal["command", "prompt", "tool"]
_Text = Union[str, bytes]
_AuditCallback = Callable[[_CheckKindName, str, "Verdict"], object]
_ScopeName = Literal["text", "script", "command", "redirect", "pipeline", "code"]

# The dicts of Detector.explain() (functional form: plain dicts at run time).
_VerdictDict = TypedDict(
    "_VerdictDict",
    {
        "level": _LevelName,
        "level_value": Literal[1, 2, 3, -1],
        "blocked": bool,
        "rule_id": Optional[str],
        "category": Optional[str],
        "reason": str,
        "span": Optional[Tuple[int, int]],
        "canonical": Optional[str],
        "suggestions": List[str],
    },
)
_Hit = TypedDict(
    "_Hit",
    {
        "rule_id": str,
        "level": _LevelName,
        "level_value": Literal[1, 2, 3, -1],
        "category": str,
        "scope": _ScopeName,
        "text": str,
    },
)
_Explanation = TypedDict(
    "_Explanation",
    {
        "input": str,
        "control": Optional[_VerdictDict],
        "commands": List[str],
        "redirects": List[str],
        "pipelines": List[str],
        "code": List[str],
        "incomplete": bool,
        "hits": List[_Hit],
        "verdict": _VerdictDict,
    },
)

@final
class Verdict:
    """The outcome of screening one command, prompt or tool call.

    When several rules match, the most severe one is reported. `blocked` is
    true for "critical" and "high": the caller must not run the input.
    "moderate" means a person should confirm; "safe" means no rule matched.
    Verdicts are immutable and compare equal when all fields are equal.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    @property
    def level(self) -> _LevelName:
        """Severity name: "critical", "high", "moderate" or "safe"."""
    @property
    def level_value(self) -> Literal[1, 2, 3, -1]:
        """Severity number: 1 (critical), 2 (high), 3 (moderate) or -1 (safe)."""
    @property
    def blocked(self) -> bool:
        """True when the level is "critical" or "high": do not run the input."""
    @property
    def rule_id(self) -> Optional[str]:
        """Id of the reported rule, e.g. "file_delete.rm_root"; None when safe."""
    @property
    def category(self) -> Optional[str]:
        """Category of the reported rule, e.g. "file_delete"; None when safe."""
    @property
    def reason(self) -> str:
        """Human-readable reason: the rule's description, or "no rule matched"."""
    @property
    def span(self) -> Optional[Tuple[int, int]]:
        """(start, end) character offsets of the matched part of the checked
        str (for check_tool: of the Bash tool's "command"), so
        text[start:end] is the match; None when safe or unknown."""
    @property
    def canonical(self) -> Optional[str]:
        """The text the reported rule judged (the canonical command after quote
        removal and wrapper stripping, or the raw text); None when safe."""
    @property
    def suggestions(self) -> List[str]:
        """What to do instead (a new list on every access)."""
    def to_dict(self) -> Dict[str, Any]:
        """All fields as a plain dict (JSON-serialisable; span is a tuple or None)."""
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...

@final
class Detector:
    """The command WAF: screens shell commands, prompts and Claude Code tool
    calls before they run.

    rules: custom rule text, in the line format
    ("pattern|description|level|category[|danger|safe]" per line) or as a
    JSON array of rule objects; custom rules come after the built-in ones.
    allow_paths: absolute paths (str or os.PathLike) that file tools may
    touch even where a rule would object. builtin_rules: False to use only
    the custom rules. on_audit: a callable receiving (kind, input, verdict)
    for every non-safe verdict, synchronously and in call order; kind is
    "command", "prompt" or "tool". An exception in it is reported through
    sys.unraisablehook and does not affect the check.

    A Detector is immutable and thread-safe; checks release the GIL.
    Raises InvalidRule for a bad custom rule and InvalidArgument for a
    relative allow path.
    """

    def __init__(
        self,
        rules: Optional[_Text] = None,
        allow_paths: Optional[Iterable[Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]]] = None,
        builtin_rules: bool = True,
        on_audit: Optional[_AuditCallback] = None,
    ) -> None: ...
    def check_command(self, command: _Text) -> Verdict:
        """Screens a shell command line, as an agent's Bash tool would run it.
        command is a str or UTF-8 bytes; raises InvalidUtf8 otherwise."""
    def check_prompt(self, prompt: _Text) -> Verdict:
        """Screens a natural-language prompt. Prose never blocks; code in it
        (fenced blocks, inline code, command lines) is judged as commands.
        prompt is a str or UTF-8 bytes; raises InvalidUtf8 otherwise."""
    def check_tool(self, name: _Text, input: Union[_Text, Mapping[str, Any]]) -> Verdict:
        """Screens a Claude Code tool call: name is the tool name ("Bash",
        "Write", "Edit", "Read", ...), input its input object as a mapping
        (serialised with json.dumps) or as JSON text (str or bytes). Raises
        InvalidArgument when the input is not a JSON object. For Bash tools,
        the verdict's span indexes input["command"]."""
    def explain(self, command: _Text) -> _Explanation:
        """Shows how a command is judged, for debugging rules: a plain dict with
        "input", "control" (the control-byte pre-check's verdict dict when it
        decided alone, else None), "commands" (canonical simple commands, each
        wrapper level on its own), "redirects", "pipelines", "code" (lists of
        str), "incomplete" (a parse limit was hit), "hits" (every rule that
        matched, in scope order: dicts with "rule_id", "level", "level_value",
        "category", "scope" and "text") and "verdict" (check_command's
        verdict, as Verdict.to_dict() gives it). Nothing is audited. command
        is a str or UTF-8 bytes; raises InvalidUtf8 otherwise."""
