"""Type stubs for hotplex._native, the Rust extension behind hotplex.

Docstrings here are the runtime ones (tests/test_detector.py checks that).
"""

import os
import asyncio
from typing_extensions import Self, disjoint_base
from typing import Any, Awaitable, Callable, ClassVar, Coroutine, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union, final

from hotplex._contract import Event, ImageInput, LifecycleRecord, PlacementOptions, PrewarmProfile, SessionInfo, SessionLimits, SessionOptions, SessionStats, Turn
from hotplex._host import HookCallback, HookMatcher, Tool, ToolServer

__all__ = ["__version__", "CORE_VERSION", "supervisor_mode", "session_ceiling", "Detector", "Verdict", "Engine", "TurnStream", "AsyncTurnStream", "_set_log_sink", "_AsyncEngine", "_ENGINE_DEFAULTS", "_begin_exit", "_write_unraisable"]

__version__: str
CORE_VERSION: str

def supervisor_mode() -> Literal["exec", "fork"]:
    """How this process starts each session's supervisor: "exec" (the small
    program embedded in hotplex, which holds none of this process's memory)
    or "fork" (a copy of this process: where the program is unavailable, or
    with HOTPLEX_SUPERVISOR=fork in the environment).
    """

def session_ceiling() -> int:
    """The most sessions this process's open-files limit allows. Like creating
    an Engine, it first raises the soft open-files limit to the hard one
    (once per process).
    """

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
        "effects": List[str],
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
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...

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

    def __new__(
        cls,
        rules: Optional[_Text] = None,
        allow_paths: Optional[Iterable[Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]]] = None,
        builtin_rules: bool = True,
        on_audit: Optional[_AuditCallback] = None,
    ) -> Detector: ...
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
        "category", "scope" and "text"), "effects" (what the command does, as
        the effect model derived it: list of str) and "verdict" (check_command's
        verdict, as Verdict.to_dict() gives it). Nothing is audited. command
        is a str or UTF-8 bytes; raises InvalidUtf8 otherwise."""

_Path = Union[str, "os.PathLike[str]"]
_Strs = Union[List[str], Tuple[str, ...]]
# answer_question's answers: question text, header or index -> label(s), or
# the labels in question order.
_Label = Union[str, List[str], Tuple[str, ...]]
_Answers = Union[Mapping[str, _Label], List[_Label], Tuple[_Label, ...]]
# A can_use_tool answer, read by the core's rule (see Engine).
_Answer = Union[bool, str, None, Mapping[str, Any]]
# can_use_tool(tool_name, input, verdict[, context]): the 4th argument (the
# agent's context dict) only for callables that accept four.
_CanUseTool = Union[
    Callable[[str, Dict[str, Any], Verdict], Union[_Answer, Awaitable[_Answer]]],
    Callable[[str, Dict[str, Any], Verdict, Dict[str, Any]], Union[_Answer, Awaitable[_Answer]]],
]
# hooks={event: [fn | HookMatcher, ...]}
_Hooks = Mapping[str, Sequence[Union[HookCallback, HookMatcher]]]
# tools=[ToolServer, ...] or [Tool, ...] (one server named "host")
_Tools = Union[Sequence[ToolServer], Sequence[Tool]]
_Observer = Callable[[LifecycleRecord], object]
_LogLevelName = Literal["trace", "debug", "info", "warn", "error"]
_LogSink = Callable[[_LogLevelName, str, str, Optional[str]], object]

# The dicts of Engine.metrics_snapshot() (functional form: plain dicts at run time).
_MetricSample = TypedDict(
    "_MetricSample",
    {
        "name": str,
        "labels": Dict[str, str],
        "value": float,
    },
)
_MetricFamily = TypedDict(
    "_MetricFamily",
    {
        "name": str,
        "type": Literal["counter", "gauge", "histogram", "info", "unknown"],
        "help": str,
        "samples": List[_MetricSample],
    },
)

def _set_log_sink(level: _LogLevelName, sink: Optional[_LogSink]) -> None:
    """Sends hotplex's log records at `level` ("trace", "debug", "info",
    "warn" or "error") and above to `sink(level, target, message,
    session_id)` on hotplex's log thread; `sink=None` stops logging.
    Process-wide. Raises InvalidConfig if the process already has another
    `tracing` subscriber. Use hotplex.enable_logging instead."""

@final
class TurnStream:
    """Iterates the events of one turn as they arrive; see Engine.stream.
    After the last event, `turn` holds the finished Turn, or iteration
    raised the turn's error. `cancel()` or `close()` (from any thread, also
    while another thread iterates: its iteration then ends), leaving a
    `with` block, or dropping the iterator cancels a turn still running.
    """
    def __iter__(self) -> TurnStream: ...
    def __next__(self) -> Event: ...
    def __enter__(self) -> TurnStream: ...
    def __exit__(self, *_exc: object) -> None: ...
    def cancel(self) -> None:
        """Cancels the turn if it still runs (the agent is interrupted); an
        iteration in another thread ends. Callable from any thread."""
    def close(self) -> None:
        """Same as cancel()."""
    @property
    def turn(self) -> Optional[Turn]:
        """The finished turn, once iteration ended without an error."""

@final
class AsyncTurnStream:
    """Iterates the events of one turn with `async for`, as they arrive; see
    AsyncEngine.stream. After the last event, `turn` holds the finished
    Turn, or iteration raised the turn's error. Cancelling the task that
    awaits the next event, `cancel()` (from any thread), `await aclose()`,
    leaving an `async with` block, or dropping the iterator cancels a turn
    still running (the agent is interrupted); iteration then ends.
    """
    def __aiter__(self) -> AsyncTurnStream: ...
    def __anext__(self) -> asyncio.Future[Event]: ...
    def __aenter__(self) -> Coroutine[Any, Any, AsyncTurnStream]: ...
    def __aexit__(self, *_exc: object) -> Coroutine[Any, Any, None]: ...
    def cancel(self) -> None:
        """Cancels the turn if it still runs (the agent is interrupted); a
        pending iteration ends. Never blocks; callable from any thread."""
    def aclose(self) -> Coroutine[Any, Any, None]:
        """Cancels the turn if it still runs, as cancel() (a coroutine, for
        contextlib.aclosing and friends)."""
    @property
    def turn(self) -> Optional[Turn]:
        """The finished turn, once iteration ended without an error."""

@final
class Engine:
    """The session pool: one hot agent process per session id.

    Options are hotplex-core's EngineOptions, same names; one left out or None
    takes the core's default (listed below). Durations are float seconds, paths
    str or os.PathLike, env a dict of str added to the agent's environment
    (which otherwise inherits only env_allow). A bad or unknown option, or a
    binary that cannot be found, raises InvalidConfig naming it. detector is a
    hotplex.Detector (default: the built-in rules).

    provider is the protocol the agents speak: "claude-code" (the default,
    Claude Code's CLI) or "acp" (the Agent Client Protocol), where binary and
    args are the agent's command line (binary="opencode", args=["acp"];
    binary="gemini", args=["--acp"]). An "acp" engine refuses the options only
    Claude Code takes (permission_mode, allowed_tools, disallowed_tools,
    system_prompt, model, hooks, tools, prewarm) with InvalidConfig naming
    them. A session may pick its own provider, binary and args
    (session={"provider": "acp", "binary": ..., "args": [...]}), so one
    engine holds both kinds.

    limits (a dict, see hotplex.SessionLimits: memory_bytes, max_processes,
    cpu_seconds, open_files; each unset by default) caps every session's
    process tree: the per-session cgroup's memory.max and pids.max where
    there is one, else RLIMIT_AS and a best-effort RLIMIT_NPROC; CPU seconds
    and open files per process. A zero, negative or unknown limit raises
    InvalidConfig naming it (limits.max_processes: ...).
    prewarm=[{"spares": 2, "workdir": ..., "session": {...}}, ...] (see
    hotplex.PrewarmProfile and Engine.prewarm) keeps agent processes started
    for new conversations, so their first turn skips the agent's cold start.

    can_use_tool(tool_name, input, verdict) decides tool calls the WAF let
    through, on an engine thread: True, None or {"behavior": "allow"[,
    "updatedInput": {...}][, "updatedPermissions": [...]]} allow (the new
    input is screened again; the agent keeps the permission updates, e.g. an
    allow rule for later calls); False, a str, {"behavior": "deny"[,
    "message": str][, "interrupt": True]} (interrupt also stops the turn) and
    anything else deny. A callable that accepts four positional arguments
    also gets the agent's context of the request, a dict
    (permission_suggestions, decision_reason, tool_use_id, ...), as the 4th;
    three-parameter callables keep getting three. An async callback runs on
    the asyncio loop that was running when the Engine was created, waited for
    up to turn_timeout; in asyncio code use hotplex.AsyncEngine, which never
    blocks the loop. Without that loop, or if the callback raises or times
    out, the error goes to sys.unraisablehook and the call is denied.

    hooks={"PostToolUse": [fn, hotplex.HookMatcher(matcher="Bash",
    hooks=[fn], timeout=30.0)], ...} registers host hooks by hook event
    (PreToolUse, PostToolUse, UserPromptSubmit, Stop, ...). Each is called as
    fn(input, tool_use_id, context) (input: the agent's hook input dict;
    context: a hotplex.HookContext) and returns the hook's output dict
    (hookSpecificOutput with permissionDecision, updatedInput,
    additionalContext, ...; continue_/continue, stopReason, ...) or None;
    plain or async def, called as can_use_tool is. The WAF answers first: a
    PreToolUse call it blocks never reaches the hook, and an updatedInput is
    screened again. A hook that raises or exceeds its timeout (default 60 s)
    is reported to sys.unraisablehook; for PreToolUse the call is denied,
    for the other events the turn goes on (with an error event).

    tools=[hotplex.ToolServer(name, [tool, ...])] (or a plain list of
    hotplex.Tool, one server named "host") serves host functions made with
    @hotplex.tool to the agent as in-process MCP tools (the model sees
    `mcp__<server>__<tool>`); their calls go through the WAF and can_use_tool
    like any tool. A tool function gets the arguments dict and returns a str
    or a dict (plain or async def, waited for up to turn_timeout); an
    exception becomes an error result the model sees.

    observer(record) receives a hotplex.LifecycleRecord for each lifecycle
    event (a session started or exited, a turn finished, a WAF verdict, a
    process tree signalled), in order, on hotplex's observer thread (never
    the caller's), through a bounded queue: a slow observer loses records,
    counted in hotplex_observer_dropped_total, and never stalls a turn. An
    exception in it goes to sys.unraisablehook and loses that record only.

    At interpreter exit, a thread still blocked in a call here stays blocked
    (it is never resumed into a dying interpreter) and callbacks are no
    longer called; the agents are killed when the process ends.
    """
    def __new__(
        cls,
        binary: Optional[_Path] = None,
        args: Optional[_Strs] = None,
        env: Optional[Dict[str, str]] = None,
        max_sessions: Optional[int] = None,
        idle_timeout: Optional[float] = None,
        turn_timeout: Optional[float] = None,
        startup_timeout: Optional[float] = None,
        state_dir: Optional[_Path] = None,
        permission_mode: Optional[str] = None,
        allowed_tools: Optional[_Strs] = None,
        disallowed_tools: Optional[_Strs] = None,
        allowed_roots: Optional[Union[List[_Path], Tuple[_Path, ...]]] = None,
        *,
        provider: Optional[Literal["claude-code", "acp"]] = None,
        namespace: Optional[str] = None,
        system_prompt: Optional[str] = None,
        model: Optional[str] = None,
        env_allow: Optional[_Strs] = None,
        max_concurrent_starts: Optional[int] = None,
        interrupt_grace: Optional[float] = None,
        max_prompt_bytes: Optional[int] = None,
        partial_messages: Optional[bool] = None,
        max_line_bytes: Optional[int] = None,
        max_turn_events: Optional[int] = None,
        max_turn_event_bytes: Optional[int] = None,
        control_timeout: Optional[float] = None,
        question_timeout: Optional[float] = None,
        question_timeout_answer: Optional[str] = None,
        default_workdir: Optional[_Path] = None,
        limits: Optional[SessionLimits] = None,
        prewarm: Optional[List[PrewarmProfile]] = None,
        placement: Optional[PlacementOptions] = None,
        detector: Optional[Detector] = None,
        can_use_tool: Optional[_CanUseTool] = None,
        hooks: Optional[_Hooks] = None,
        tools: Optional[_Tools] = None,
        observer: Optional[_Observer] = None,
    ) -> Engine: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *_exc: object) -> None: ...
    def execute(
        self,
        session_id: str,
        prompt: str,
        workdir: Optional[_Path] = None,
        on_event: Optional[Callable[[Event], object]] = None,
        *,
        timeout: Optional[float] = None,
        waf_approved: Optional[bool] = None,
        partial_messages: Optional[bool] = None,
        session: Optional[SessionOptions] = None,
        instructions: Optional[str] = None,
        images: Optional[List[ImageInput]] = None,
        question_timeout: Optional[float] = None,
    ) -> Turn:
        """Runs one turn on session_id (started or resumed on first use) and
        returns the finished Turn. Blocks with the GIL released. on_event(event)
        is called for each event, in order, in this thread. A turn without a
        workdir continues in the session's (the first turn: default_workdir).
        timeout and waf_approved left out or None take the engine's defaults.
        session (a dict, see hotplex.SessionOptions: model, permission_mode,
        system_prompt, max_turns, json_schema, ...) sets the session's agent
        options from this turn on (options that differ from those its process
        runs with restart it, resuming the conversation); instructions are
        task instructions sent with the prompt (in a <context> section before
        the <user_query>, screened by the WAF too); images a list of
        {"media_type": "image/png", "data": <base64 str>} sent before the
        prompt's text. With a json_schema, Turn.structured_output holds the
        answer's JSON value. question_timeout (seconds) overrides the
        engine's for this turn's questions and plans (see answer_question).
        Raises DangerBlocked (prompt blocked by the WAF, after a danger_block
        event), TurnTimeout, QuestionTimeout, SessionDead, TurnFailed (e.g.
        subtype error_max_turns), CapacityExceeded, StartFailed,
        InvalidConfig or Closed.
        """
    def stream(
        self,
        session_id: str,
        prompt: str,
        workdir: Optional[_Path] = None,
        *,
        timeout: Optional[float] = None,
        waf_approved: Optional[bool] = None,
        partial_messages: Optional[bool] = None,
        session: Optional[SessionOptions] = None,
        instructions: Optional[str] = None,
        images: Optional[List[ImageInput]] = None,
        question_timeout: Optional[float] = None,
    ) -> TurnStream:
        """Like execute, but returns an iterator over the turn's events as they
        arrive; its `turn` attribute holds the Turn afterwards, and errors
        are raised by the iteration (those found before the turn is queued,
        such as DangerBlocked, by this call).
        """
    def sessions(self) -> List[SessionInfo]:
        """Snapshots of every session, sorted by id."""
    def session_stats(self, session_id: str) -> Optional[SessionStats]:
        """Totals of a session as a dict (see hotplex.SessionStats for the
        keys), or None for an unknown id.
        """
    def stop_session(self, session_id: str) -> bool:
        """Stops a session: its running and queued turns raise SessionDead and
        its process tree is killed (returns once confirmed gone). The
        conversation resumes if the id is used again. Returns whether the
        session existed.
        """
    def owns(self, session_id: str) -> bool:
        """Whether session_id's turns belong to this engine: without placement,
        always; with it, while this engine holds the session's current lease.
        """
    def adopt(self, session_id: str, workdir: Optional[_Path] = None) -> None:
        """Takes session_id for this engine before its first turn here
        (placement only): its lease, and its conversation from the store
        (written where the local CLI finds it, in workdir or the session's
        usual workdir), so the next turn resumes it. Raises OwnedElsewhere
        (its owner attribute names the holder) while another host holds it,
        InvalidConfig without placement.
        """
    def release(self, session_id: str) -> bool:
        """Lets session_id go (placement only): a running turn is interrupted,
        queued ones fail, the process is stopped (its stdin closed first, so
        the CLI writes its transcript out), the transcript is saved to the
        store and the lease released. Returns whether this engine held it.
        """
    def drain(self, deadline: float) -> List[str]:
        """Drains the engine (placement only): no new session from now on
        (CapacityExceeded), running and queued turns get deadline seconds
        (0: none) to finish, then every session is released. Returns the
        released ids.
        """
    def load(self) -> Dict[str, Any]:
        """The engine's load for a balancer, a dict: sessions, busy, queued,
        free_slots, spares, agent_memory_bytes, draining.
        """
    def interrupt(self, session_id: str) -> bool:
        """Interrupts session_id's running turn (it raises TurnTimeout
        "interrupted by the host"; the process stays hot). Returns whether a
        turn was running. Raises SessionNotFound for a session not in the
        pool.
        """
    def set_model(self, session_id: str, model: Optional[str]) -> None:
        """Switches session_id's model (None: the agent's default) on its running
        process, between turns or during one; the session keeps it across
        restarts (a session without a process takes it at its next start).
        Raises SessionNotFound, Unsupported (the agent's version lacks the
        control) or ControlFailed (an error answer, or none within
        control_timeout).
        """
    def set_permission_mode(self, session_id: str, mode: str) -> None:
        """Switches session_id's permission mode ("default", "acceptEdits",
        "plan", "bypassPermissions", ...), like set_model. Raises
        InvalidArgument for an empty mode.
        """
    def answer_question(self, session_id: str, question_id: str, answers: _Answers) -> None:
        """Answers question question_id (an ask_user_question event's
        data["question_id"]) that session_id's agent waits on, from any
        thread, however long after the event: the turn's timeout does not
        run while a question waits (question_timeout does). answers maps
        each question (its text, its header, or its index as a str) to the
        chosen label, or to a list of labels for a multi_select question
        (sent joined with ", "); a list answers the questions in order. A
        label need not be an option (the person's own words reach the
        agent). Raises QuestionNotFound (no such question waits: answered,
        cancelled by an interrupt or stop_session, timed out) or
        InvalidAnswer (a key that names no question, several labels for a
        single-choice question, an empty answer; the question still waits).
        """
    def approve_plan(
        self,
        session_id: str,
        approved: bool,
        feedback: Optional[str] = None,
        mode: Optional[str] = None,
    ) -> None:
        """Approves (approved=True) or rejects the plan session_id's agent
        proposed (an exit_plan_mode event), from any thread, however long
        after it. Approved, the agent leaves plan mode and carries the plan
        out in permission mode mode (e.g. "acceptEdits", kept by the session
        like set_permission_mode; None: the mode it had before plan mode).
        Rejected, the agent reads feedback and usually proposes a revised
        plan (a new exit_plan_mode event) in the same turn. Raises
        QuestionNotFound (no plan waits) or InvalidAnswer (a mode with a
        rejection, an empty mode).
        """
    def context_usage(self, session_id: str) -> Dict[str, Any]:
        """How full session_id's context window is, as its agent reports it (a
        dict: totalTokens, maxTokens, percentage, categories, ...). Needs a
        running process (SessionDead otherwise); raises as set_model.
        """
    def mcp_status(self, session_id: str) -> Dict[str, Any]:
        """The state of session_id's MCP servers, as its agent reports it (a
        dict: {"mcpServers": [{"name": ..., "status": ...}, ...]}). Needs a
        running process; raises as context_usage.
        """
    def reset_session(self, session_id: str, *, forget_transcript: bool = False) -> None:
        """Makes session_id forget its conversation: its next turn starts a new
        one. Turns already queued run first, in the old conversation; a
        running process is then stopped. With forget_transcript the old
        conversation's transcript is deleted too (best effort). Works whether
        or not the session is in the pool.
        """
    def fork_session(self, session_id: str, new_id: str, *, at_message: Optional[str] = None) -> None:
        """Starts session new_id as a copy of session_id's conversation: its
        first turn resumes that conversation under a new id, in the same
        workdir, and from then on the two continue separately (session_id is
        unchanged). With at_message (a Turn.message_uuid of session_id) the
        copy ends at that message. Raises SessionNotFound when session_id
        has no conversation yet, InvalidArgument when new_id is in the pool
        or at_message is not a message id.
        """
    def prewarm(self, spares: int, workdir: Optional[_Path] = None, *, session: Optional[SessionOptions] = None) -> None:
        """Keeps `spares` agent processes started for new conversations in
        workdir (None: default_workdir) with the session options `session`
        (a dict, see hotplex.SessionOptions; None: none): a session's first
        turn with that workdir and options, when the session has no
        conversation to resume or fork, goes to a spare's running process
        instead of starting one. Replaces the profile of the same workdir
        and options (the prewarm option of Engine() lists the first ones);
        spares=0 removes it. Spares count toward max_sessions and are
        started in the background. Raises InvalidConfig or Closed.
        """
    def close(self) -> None:
        """Stops every session and kills every process tree; afterwards every
        call raises Closed. Idempotent.
        """
    def metrics_text(self) -> str:
        """The engine's metrics as OpenMetrics text (ending with "# EOF"), what
        a Prometheus scrape of /metrics returns; serve it where you like, or
        register hotplex.PrometheusCollector(engine) with prometheus_client.
        hotplex opens no port. Every family is listed in the schema's
        x-hotplex-metrics."""
    def metrics_snapshot(self) -> List[_MetricFamily]:
        """The engine's metrics as a list of families, each a dict with "name"
        (as exposed: counters end in _total), "type", "help" and "samples"
        (dicts with "name", "labels" (a dict of str) and "value")."""
    @property
    def detector(self) -> Detector:
        """The WAF screening this engine's prompts and tool calls."""
    @property
    def closed(self) -> bool:
        """Whether close() was called."""

# The text of the engine options' defaults (appended to the Engine and
# AsyncEngine docstrings).
_ENGINE_DEFAULTS: str

def _write_unraisable(exc: BaseException, obj: object) -> None:
    """Reports `exc` (raised by `obj`, an on_event callback) through
    sys.unraisablehook, as the synchronous Engine does."""

def _begin_exit() -> None:
    """The `atexit` handler: from now on no thread of ours enters Python;
    waits (without the GIL) for those already entering."""

@disjoint_base
class _AsyncEngine:
    """The native base of hotplex.AsyncEngine (see its documentation there)."""
    def __new__(
        cls,
        binary: Optional[_Path] = None,
        args: Optional[_Strs] = None,
        env: Optional[Dict[str, str]] = None,
        max_sessions: Optional[int] = None,
        idle_timeout: Optional[float] = None,
        turn_timeout: Optional[float] = None,
        startup_timeout: Optional[float] = None,
        state_dir: Optional[_Path] = None,
        permission_mode: Optional[str] = None,
        allowed_tools: Optional[_Strs] = None,
        disallowed_tools: Optional[_Strs] = None,
        allowed_roots: Optional[Union[List[_Path], Tuple[_Path, ...]]] = None,
        *,
        provider: Optional[Literal["claude-code", "acp"]] = None,
        namespace: Optional[str] = None,
        system_prompt: Optional[str] = None,
        model: Optional[str] = None,
        env_allow: Optional[_Strs] = None,
        max_concurrent_starts: Optional[int] = None,
        interrupt_grace: Optional[float] = None,
        max_prompt_bytes: Optional[int] = None,
        partial_messages: Optional[bool] = None,
        max_line_bytes: Optional[int] = None,
        max_turn_events: Optional[int] = None,
        max_turn_event_bytes: Optional[int] = None,
        control_timeout: Optional[float] = None,
        question_timeout: Optional[float] = None,
        question_timeout_answer: Optional[str] = None,
        default_workdir: Optional[_Path] = None,
        limits: Optional[SessionLimits] = None,
        prewarm: Optional[List[PrewarmProfile]] = None,
        placement: Optional[PlacementOptions] = None,
        detector: Optional[Detector] = None,
        can_use_tool: Optional[_CanUseTool] = None,
        hooks: Optional[_Hooks] = None,
        tools: Optional[_Tools] = None,
        observer: Optional[_Observer] = None,
    ) -> Self: ...
    def stream(
        self,
        session_id: str,
        prompt: str,
        workdir: Optional[_Path] = None,
        *,
        timeout: Optional[float] = None,
        waf_approved: Optional[bool] = None,
        partial_messages: Optional[bool] = None,
        session: Optional[SessionOptions] = None,
        instructions: Optional[str] = None,
        images: Optional[List[ImageInput]] = None,
        question_timeout: Optional[float] = None,
    ) -> AsyncTurnStream:
        """Queues a turn and returns an async iterator over its events as they
        arrive (`async for event in engine.stream(...)`); its `turn`
        attribute holds the Turn afterwards, and errors are raised by the
        iteration (those found before the turn is queued, such as
        DangerBlocked, by this call, which never blocks).
        """
    def _start(
        self,
        session_id: str,
        prompt: str,
        workdir: Optional[_Path] = None,
        timeout: Optional[float] = None,
        waf_approved: Optional[bool] = None,
        partial_messages: Optional[bool] = None,
        session: Optional[SessionOptions] = None,
        instructions: Optional[str] = None,
        images: Optional[List[ImageInput]] = None,
        question_timeout: Optional[float] = None,
    ) -> AsyncTurnStream:
        """Like stream, but every error (a blocked prompt too, after its
        danger_block event) comes through the iteration: for execute."""
    def owns(self, session_id: str) -> bool:
        """Whether session_id's turns belong to this engine; see Engine.owns."""
    def adopt(self, session_id: str, workdir: Optional[_Path] = None) -> None:
        """Takes session_id for this engine (placement only); see Engine.adopt."""
    def load(self) -> Dict[str, Any]:
        """The engine's load for a balancer; see Engine.load."""
    def _release(self, session_id: str) -> asyncio.Future[bool]:
        """A future of release's result, settled on the running loop."""
    def _drain(self, deadline: float) -> asyncio.Future[List[str]]:
        """A future of drain's result, settled on the running loop."""
    def _stop_session(self, session_id: str) -> asyncio.Future[bool]:
        """A future of stop_session's result, settled on the running loop."""
    def _interrupt(self, session_id: str) -> asyncio.Future[bool]:
        """A future of interrupt's result, settled on the running loop.
        """
    def _set_model(self, session_id: str, model: Optional[str]) -> asyncio.Future[None]:
        """A future of set_model, settled on the running loop.
        """
    def _set_permission_mode(self, session_id: str, mode: str) -> asyncio.Future[None]:
        """A future of set_permission_mode, settled on the running loop.
        """
    def _answer_question(
        self, session_id: str, question_id: str, answers: _Answers
    ) -> asyncio.Future[None]:
        """A future of answer_question, settled on the running loop (the
        answers are read now, under the GIL).
        """
    def _approve_plan(
        self, session_id: str, approved: bool, feedback: Optional[str], mode: Optional[str]
    ) -> asyncio.Future[None]:
        """A future of approve_plan, settled on the running loop.
        """
    def _context_usage(self, session_id: str) -> asyncio.Future[Dict[str, Any]]:
        """A future of context_usage's dict, settled on the running loop.
        """
    def _mcp_status(self, session_id: str) -> asyncio.Future[Dict[str, Any]]:
        """A future of mcp_status's dict, settled on the running loop.
        """
    def _reset_session(self, session_id: str, forget_transcript: bool) -> asyncio.Future[None]:
        """A future of reset_session, settled on the running loop.
        """
    def _fork_session(self, session_id: str, new_id: str, at_message: Optional[str] = None) -> None:
        """fork_session, at once (it never waits); see Engine.fork_session.
        """
    def _prewarm(self, spares: int, workdir: Optional[_Path] = None, session: Optional[SessionOptions] = None) -> None:
        """prewarm, at once (it never waits); see Engine.prewarm."""
    def _close(self) -> asyncio.Future[None]:
        """A future settled on the running loop once the engine is closed."""
    def sessions(self) -> List[SessionInfo]:
        """Snapshots of every session, sorted by id."""
    def session_stats(self, session_id: str) -> Optional[SessionStats]:
        """Totals of a session as a dict (see hotplex.SessionStats for the
        keys), or None for an unknown id.
        """
    def metrics_text(self) -> str:
        """The engine's metrics as OpenMetrics text (ending with "# EOF"); see
        Engine.metrics_text."""
    def metrics_snapshot(self) -> List[_MetricFamily]:
        """The engine's metrics as a list of families; see
        Engine.metrics_snapshot."""
    @property
    def detector(self) -> Detector:
        """The WAF screening this engine's prompts and tool calls."""
    @property
    def closed(self) -> bool:
        """Whether close() was called."""
