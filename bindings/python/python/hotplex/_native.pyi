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

_EventName = Literal[
    "session_start", "thinking", "answer", "tool_use", "tool_result",
    "permission_request", "danger_block", "session_stats", "error",
]
_CanUseTool = Callable[[str, Dict[str, Any], "Verdict"], Union[bool, str, None]]

@final
class Event:
    """One event of a turn: `type` is the seed's name (`session_start`,
    `thinking`, `answer`, `tool_use`, `tool_result`, `permission_request`,
    `danger_block`, `session_stats`, `error`); `data` holds its fields.
    """
    @property
    def type(self) -> _EventName:
        """The event name."""
    @property
    def data(self) -> Dict[str, Any]:
        """The event's fields as a dict (the same keys as the other bindings)."""

@final
class Turn:
    """A finished turn."""
    @property
    def duration_ms(self) -> float:
        """Wall time of the turn in milliseconds (after any queueing)."""
    @property
    def queued_ms(self) -> float:
        """Milliseconds the turn waited behind earlier turns of its session."""
    @property
    def tools(self) -> List[Dict[str, Any]]:
        """Tool calls: dicts with id, name, is_error, duration_ms."""
    @property
    def usage(self) -> Dict[str, int]:
        """Token usage: input_tokens, output_tokens, cache_creation_input_tokens,
        cache_read_input_tokens.
        """
    @property
    def model(self) -> Optional[str]:
        """The model, from the CLI's system/init."""
    @property
    def events(self) -> List[Event]:
        """Every event of the turn, in order."""
    @property
    def pid(self) -> int:
        """The agent's pid."""
    @property
    def is_error(self) -> bool:
        """False for a returned turn (error results raise TurnFailed)."""
    @property
    def cold_start(self) -> bool:
        """Whether this turn started the agent process."""
    @property
    def cost_usd(self) -> float:
        """Cost in USD as the CLI reports it."""
    @property
    def provider_session_id(self) -> str:
        """The provider (CLI) session id."""
    @property
    def text(self) -> str:
        """The answer text."""
    @property
    def resumed(self) -> bool:
        """Whether that start resumed an earlier conversation."""

@final
class TurnStream:
    """Iterates the events of one turn as they arrive; see Engine.stream.
    After the last event, `turn` holds the finished Turn, or iteration
    raised the turn's error. `close()` (or leaving a `with` block, or
    dropping the iterator) cancels a turn still running.
    """
    def __iter__(self) -> TurnStream: ...
    def __next__(self) -> Event: ...
    def __enter__(self) -> TurnStream: ...
    def __exit__(self, *exc: object) -> bool: ...
    def close(self) -> None:
        """Cancels the turn if it still runs (the agent is interrupted)."""
    @property
    def turn(self) -> Optional[Turn]:
        """The finished turn, once iteration ended without an error."""

@final
class SessionInfo:
    """A snapshot of one session."""
    @property
    def provider_session_id(self) -> str:
        """The provider (CLI) session id."""
    @property
    def id(self) -> str:
        """The host's session id."""
    @property
    def pending(self) -> int:
        """Turns queued or running."""
    @property
    def idle_seconds(self) -> float:
        """Seconds since the session last saw input or output."""
    @property
    def status(self) -> Literal["starting", "ready", "busy", "dead"]:
        """"starting", "ready", "busy" or "dead"."""
    @property
    def workdir(self) -> Optional[str]:
        """The working directory of the current (or last) process."""
    @property
    def pid(self) -> Optional[int]:
        """The agent's pid, or None when no process runs."""
    @property
    def turns(self) -> int:
        """Turns answered."""

@final
class Engine:
    """The session pool: one hot agent process per session id.

    Engine(binary="claude", args=[], env={}, max_sessions=64,
    idle_timeout=1800.0, turn_timeout=300.0, startup_timeout=30.0,
    state_dir=None, permission_mode=None, allowed_tools=None,
    disallowed_tools=None, allowed_roots=None, *, namespace="default",
    system_prompt=None, model=None, env_allow=None, max_concurrent_starts=4,
    interrupt_grace=5.0, max_prompt_bytes=1048576, default_workdir=None,
    detector=None, can_use_tool=None)

    Durations are in seconds. env is added to the agent's environment, which
    otherwise inherits only env_allow (default: PATH, HOME, USER, LANG, LC_*,
    TERM, TMPDIR, SHELL). detector is a hotplex.Detector (default: built-in
    rules). can_use_tool(tool_name, input, verdict) decides tool calls the
    WAF let through: True/None allows, False denies, a str denies with that
    message. Raises InvalidConfig for bad options.
    """
    def __init__(
        self,
        binary: Union[str, os.PathLike[str]] = "claude",
        args: Optional[Iterable[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        max_sessions: int = 64,
        idle_timeout: float = 1800.0,
        turn_timeout: float = 300.0,
        startup_timeout: float = 30.0,
        state_dir: Optional[Union[str, os.PathLike[str]]] = None,
        permission_mode: Optional[str] = None,
        allowed_tools: Optional[Iterable[str]] = None,
        disallowed_tools: Optional[Iterable[str]] = None,
        allowed_roots: Optional[Iterable[Union[str, os.PathLike[str]]]] = None,
        *,
        namespace: str = "default",
        system_prompt: Optional[str] = None,
        model: Optional[str] = None,
        env_allow: Optional[Iterable[str]] = None,
        max_concurrent_starts: int = 4,
        interrupt_grace: float = 5.0,
        max_prompt_bytes: int = 1048576,
        default_workdir: Optional[Union[str, os.PathLike[str]]] = None,
        detector: Optional[Detector] = None,
        can_use_tool: Optional[_CanUseTool] = None,
    ) -> None: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *exc: object) -> bool: ...
    def execute(self, session_id: str, prompt: str, workdir: Optional[Union[str, os.PathLike[str]]] = None, on_event: Optional[Callable[[Event], object]] = None, *, timeout: Optional[float] = None, waf_approved: bool = False) -> Turn:
        """Runs one turn on session_id (started or resumed on first use) and
        returns the finished Turn. Blocks with the GIL released. on_event(event)
        is called for each event, in order, in this thread. Raises
        DangerBlocked (prompt blocked by the WAF), TurnTimeout, SessionDead,
        TurnFailed, CapacityExceeded, StartFailed, InvalidConfig or Closed.
        """
    def stream(self, session_id: str, prompt: str, workdir: Optional[Union[str, os.PathLike[str]]] = None, *, timeout: Optional[float] = None, waf_approved: bool = False) -> TurnStream:
        """Like execute, but returns an iterator over the turn's events as they
        arrive; its `turn` attribute holds the Turn afterwards, and errors
        are raised by the iteration.
        """
    def sessions(self) -> List[SessionInfo]:
        """Snapshots of every session, sorted by id."""
    def session_stats(self, session_id: str) -> Optional[Dict[str, Any]]:
        """Totals of a session as a dict (turns, failed_turns, cold_starts,
        resumes, tokens, cost_usd, tool_calls, tool_errors, tools_denied,
        busy_ms, bad_lines, model), or None for an unknown id.
        """
    def stop_session(self, session_id: str) -> bool:
        """Stops a session: its running and queued turns raise SessionDead and
        its process tree is killed (returns once confirmed gone). The
        conversation resumes if the id is used again. Returns whether the
        session existed.
        """
    def close(self) -> None:
        """Stops every session and kills every process tree; afterwards every
        call raises Closed. Idempotent.
        """
    @property
    def detector(self) -> Detector:
        """The WAF screening this engine's prompts and tool calls."""
    @property
    def closed(self) -> bool:
        """Whether close() was called."""
