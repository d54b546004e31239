#!/usr/bin/env python3
"""A tiny fake Anthropic Messages API for driving the real Claude Code CLI in tests.

Stdlib only, Python 3.9+. Serves on 127.0.0.1 (port 0 = ephemeral by default).

Module use::

    from fake_anthropic import FakeAnthropic
    with FakeAnthropic() as api:          # or api = FakeAnthropic().start(); ...; api.stop()
        env["ANTHROPIC_BASE_URL"] = api.url   # "http://127.0.0.1:PORT"
        ...
        api.requests                      # number of POST /v1/messages answered so far
        api.log                           # copies of [{"path", "body", "kind", "reply", "time",
                                          #   "model", "tools", "text"}], oldest first
        api.models()                      # the "model" of each /v1/messages request, in order
        api.tools(i)                      # tool names offered by request i (default: the last)
        api.text(i)                       # everything request i showed the model (see below)
        api.saw("some text")              # did any request (or request i) show the model this?
        api.blocks("image")               # every content block of that type sent to the model
        api.tool_results("AskUserQuestion")  # what the model got back for that tool's calls:
                                          #   [{"tool_use_id", "name", "input", "text", "is_error"}]

Script use: ``python3 fake_anthropic.py [--port N]`` prints the URL on stdout and serves
until killed.

Behaviour of ``POST /v1/messages`` (any query string) is chosen from the NEWEST ``user``-role
message of the request (the CLI appends a system-role entry after it; its content may be a
string or a list of blocks; the CLI may prepend ``<system-reminder>`` text blocks):

* it holds a ``tool_result`` block   -> text ``tool said: <first 200 chars of the result>``, end_turn
  (and no user text after it)          (several results: each one's text joined by `` || ``;
                                        ``<system-reminder>`` parts are left out)
* directive ``bash: <command>``      -> ``tool_use`` of tool ``Bash`` with input
                                        ``{"command": <command>, "description": "run it"}``,
                                        stop_reason tool_use
* directive ``tool: <Name> <json>``  -> ``tool_use`` of tool ``<Name>`` with the JSON object as input
                                        (``{}`` when omitted), stop_reason tool_use. Honoured only
                                        when the request offers a tool of that exact name (e.g.
                                        ``mcp__host__get_weather``, ``StructuredOutput`` of
                                        ``--json-schema``, ``Write``). Several ``tool:`` lines give
                                        several tool_use blocks in one reply (parallel calls);
                                        a ``bash:`` line is then one more block. A tool the
                                        request does not offer while it offers ``ToolSearch``
                                        (2.1.332 defers MCP tools so) is first loaded with a
                                        ``ToolSearch`` call ``{"query": "select:<Name>"}``; the
                                        answer to that call then gets the ``tool:`` calls.
* directive ``ask: <question>? <label> | <label> [| ...]`` (``askmulti:`` for multiSelect)
                                     -> ``tool_use`` of ``AskUserQuestion`` with one question per
                                        ``ask``/``askmulti`` line, in order (header ``Q1``, ``Q2``...,
                                        option descriptions ``about <label>``), alongside any
                                        ``tool:``/``bash:`` calls. Honoured when AskUserQuestion is
                                        offered (a ``tool: AskUserQuestion <json>`` line gives any input).
* directive ``plan: <text>``         -> propose a plan the way plan mode asks a model to (``\\n`` in
                                        the text is a newline): ``Write`` the text to the plan file the
                                        request names (``...create your plan at <path>`` / ``A plan file
                                        already exists at <path>``), then call ``ExitPlanMode {}``
                                        (loaded through ``ToolSearch`` when deferred); without a plan
                                        file (or ``Write``), ``ExitPlanMode {"plan": <text>}``. A
                                        rejected ExitPlanMode (error tool_result) makes a revision:
                                        the plan plus ``\\nRevised after: <feedback>``, proposed again,
                                        at most 3 times, then text ``plan rejected: <feedback>``. Once
                                        it is approved the prompt's other directives (``bash:``,
                                        ``tool:``, ``ask:``) run, so ``plan: ...`` + ``bash: touch f``
                                        shows which mode the approval left the CLI in.
* directive ``sleep: <seconds>``     -> wait (in small steps; gives up early if the client
                                        disconnects), then answer as below
* directive ``recall``               -> text ``recall: <earlier user texts joined by " | ">``
                                        (``recall: (none)`` when there are none; texts are the
                                        non-reminder text blocks of user messages, so an
                                        interrupted turn shows as "[Request interrupted by user]")
* anything else                      -> text ``echo: <the prompt text>``, end_turn

Directives are read from the prompt (the last non-reminder text block of the newest user
message; earlier blocks there are older merged turns). They are lines of the prompt text (``bash:``/``sleep:`` may also start mid-text after
whitespace). ``bash:`` is only honoured when the request offers a ``Bash`` tool and ``sleep:``
only when the request offers tools at all, so the CLI's own side requests (titles, summaries,
quota checks; they carry no tools) always get a short immediate text answer.

What each request showed the model is recorded as ``text`` in its log entry: the system
prompt (string or blocks), then every message as ``<role>: <block>`` lines, where a text block
is its text, a tool_result is ``[tool_result <id> error=<bool>] <text>``, a tool_use is
``[tool_use <name> <json input>]`` and an image is ``[image <media_type>]``. ``api.saw(s)``
searches those texts, so a test can check that a hook's ``additionalContext`` or a tool's result
reached the model.

Every reply reports usage ``input_tokens=10, output_tokens=5`` (configurable) and echoes the
request's model. ``"stream": true`` gets SSE (message_start, content_block_start,
content_block_delta, content_block_stop, message_delta, message_stop, then the connection is
closed); otherwise a JSON message. ``/v1/messages/count_tokens`` answers
``{"input_tokens": 10}``; any other GET/HEAD/POST answers 200 ``{}`` so nothing hangs.
"""

import copy
import json
import re
import sys
import time
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

import fake_api

REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
BASH_RE = re.compile(r"(?:^|\s)bash:[ \t]*(\S[^\n]*)", re.M)
SLEEP_RE = re.compile(r"(?:^|\s)sleep:[ \t]*([0-9]+(?:\.[0-9]*)?)", re.M)
RECALL_RE = re.compile(r"(?:^|\s)recall\b", re.M)
IMAGE_NOTE_RE = re.compile(r"^\[Image[^\]\n]*\]$")  # 2.1.332 adds "[Image: source: <path>]"
TOOL_RE = re.compile(r"(?:^|\s)tool:[ \t]*([A-Za-z0-9_.:-]+)[ \t]*([^\n]*)", re.M)
ASK_RE = re.compile(r"^[ \t]*ask(multi)?:[ \t]*([^\n?]*\?)[ \t]*([^\n]*)", re.M)
PLAN_RE = re.compile(r"^[ \t]*plan:[ \t]*([^\n]*)", re.M)
# Where plan mode tells the model to keep its plan (both pinned CLI versions word it so).
PLAN_FILE_RE = re.compile(r"(?:create your plan at|plan file already exists at) (/\S+?\.md)\b")
TOOL_LOADED = "Tool loaded."  # 2.1.332 follows a ToolSearch tool_result with this user text
MAX_PLAN_REVISIONS = 3


# ---------------------------------------------------------------------------------------------
# request inspection helpers (pure functions, usable by tests too)
# ---------------------------------------------------------------------------------------------

def _blocks(content: Any) -> List[Dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def block_text(block: Dict[str, Any]) -> str:
    """Text of a text block or of a tool_result block (whose content may be str or blocks)."""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        c = block.get("content", "")
        if isinstance(c, str):
            return c
        return "".join(str(b.get("text", "")) for b in _blocks(c) if b.get("type") == "text")
    return ""


def render_block(block: Dict[str, Any]) -> str:
    """One content block as the recorded ``text`` shows it (see the module docstring)."""
    t = block.get("type")
    if t == "text":
        return str(block.get("text", ""))
    if t == "tool_result":
        return "[tool_result %s error=%s] %s" % (block.get("tool_use_id"),
                                                 bool(block.get("is_error")), block_text(block))
    if t == "tool_use":
        return "[tool_use %s %s]" % (block.get("name"), json.dumps(block.get("input"),
                                                                   sort_keys=True))
    if t == "image":
        return "[image %s]" % (block.get("source") or {}).get("media_type")
    if t in ("thinking", "redacted_thinking"):
        return "[%s] %s" % (t, block.get("thinking", ""))
    return "[%s]" % t


def request_text(body: Dict[str, Any]) -> str:
    """Everything a /v1/messages body shows the model: system, then each message's blocks."""
    out = []
    system = body.get("system")
    for b in _blocks(system):
        out.append("system: " + render_block(b))
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            for b in _blocks(m.get("content")):
                out.append("%s: %s" % (m.get("role"), render_block(b)))
    return "\n".join(out)


def iter_blocks(body: Dict[str, Any]):
    """Every content block of every message (and nested tool_result content), in order."""
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            for b in _blocks(m.get("content")):
                yield b
                if b.get("type") == "tool_result" and isinstance(b.get("content"), list):
                    for inner in _blocks(b["content"]):
                        yield inner


def tool_calls(prompt: str, tool_names, deferred: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """The ``tool: <Name> <json>`` directives of a prompt whose tool is offered (names of the
    others are appended to ``deferred`` when given)."""
    calls = []
    for m in TOOL_RE.finditer(prompt):
        name, rest = m.group(1), m.group(2).strip()
        if name not in tool_names:
            if deferred is not None:
                deferred.append(name)
            continue
        try:
            inp = json.loads(rest) if rest else {}
        except ValueError:
            inp = {"raw": rest}
        if not isinstance(inp, dict):
            inp = {"value": inp}
        calls.append({"name": name, "input": inp})
    return calls


def ask_questions(prompt: str) -> List[Dict[str, Any]]:
    """The AskUserQuestion questions of a prompt's ``ask:``/``askmulti:`` lines."""
    out = []
    for m in ASK_RE.finditer(prompt):
        labels = [x.strip() for x in m.group(3).split("|") if x.strip()]
        out.append({"question": m.group(2).strip(), "header": "Q%d" % (len(out) + 1),
                    "options": [{"label": x, "description": "about " + x} for x in labels],
                    "multiSelect": bool(m.group(1))})
    return out


def directive_calls(prompt: str, tool_names, deferred: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Every tool call a prompt asks for at once: ``tool:`` lines, the ``ask:`` lines as one
    AskUserQuestion, then ``bash:`` (the last only when Bash is offered)."""
    calls = tool_calls(prompt, tool_names, deferred)
    questions = ask_questions(prompt)
    if questions and "AskUserQuestion" in tool_names:
        calls.append({"name": "AskUserQuestion", "input": {"questions": questions}})
    if "Bash" in tool_names:
        m = BASH_RE.search(prompt)
        if m:
            calls.append({"name": "Bash", "input": {"command": m.group(1).strip(),
                                                    "description": "run it"}})
    return calls


def user_texts(content: Any) -> List[str]:
    """The user's own texts in a message content, in order: text blocks with system reminders
    stripped, empty ones and the CLI's ``[Image: source: ...]`` notes dropped. (The CLI merges consecutive user turns into one message,
    e.g. after an interrupt: ["sleep: 10", "[Request interrupted by user]", "next prompt"].)"""
    out = []
    for b in _blocks(content):
        if b.get("type") != "text":
            continue
        t = REMINDER_RE.sub("", str(b.get("text", ""))).strip()
        if t and not t.startswith("<system-reminder>") and not IMAGE_NOTE_RE.match(t):
            out.append(t)
    return out


def prompt_text(content: Any) -> str:
    """The user's current prompt: the last non-reminder text block ("" if none)."""
    texts = user_texts(content)
    return texts[-1] if texts else ""


def newest_user(messages: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            return m
    return None


def user_prompts(messages: List[Dict[str, Any]]) -> List[str]:
    """All user texts of all user-role messages (tool results and reminders skipped), in order."""
    out: List[str] = []
    for m in messages or []:
        if isinstance(m, dict) and m.get("role") == "user":
            out.extend(user_texts(m.get("content")))
    return out


def _answered_tool_names(messages: List[Dict[str, Any]], blocks: List[Dict[str, Any]]) -> set:
    """Names of the tool_use blocks that the tool_result ``blocks`` answer."""
    ids = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
    names = set()
    for m in messages or []:
        if isinstance(m, dict) and m.get("role") == "assistant":
            for b in _blocks(m.get("content")):
                if b.get("type") == "tool_use" and b.get("id") in ids:
                    names.add(b.get("name"))
    return names


def _prompt_and_since(messages: List[Dict[str, Any]]):
    """The current prompt (the newest user text that is not a tool result's companion, such as
    2.1.332's "Tool loaded.") and the index of the message holding it."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if not (isinstance(m, dict) and m.get("role") == "user"):
            continue
        blocks = _blocks(m.get("content"))
        last = max((k for k, b in enumerate(blocks) if b.get("type") == "tool_result"), default=-1)
        texts = [t for t in user_texts(blocks[last + 1:]) if t != TOOL_LOADED]
        if texts:
            return texts[-1], i
    return "", -1


def _tool_steps(messages: List[Dict[str, Any]], since: int) -> List[Dict[str, Any]]:
    """The tool calls made after message ``since``, in order, each with its result (if any):
    {"id", "name", "input", "text", "is_error", "answered"}."""
    steps: List[Dict[str, Any]] = []
    by_id: Dict[str, Dict[str, Any]] = {}
    for m in messages[since + 1:]:
        if not isinstance(m, dict):
            continue
        for b in _blocks(m.get("content")):
            if m.get("role") == "assistant" and b.get("type") == "tool_use":
                st = {"id": b.get("id"), "name": b.get("name"), "input": b.get("input"),
                      "text": None, "is_error": None, "answered": False}
                steps.append(st)
                by_id[st["id"]] = st
            elif m.get("role") == "user" and b.get("type") == "tool_result":
                st = by_id.get(b.get("tool_use_id"))
                if st is not None:
                    st.update(text=REMINDER_RE.sub("", block_text(b)).strip(),
                              is_error=bool(b.get("is_error")), answered=True)
    return steps


def _plan_step(body: Dict[str, Any], prompt: str, steps: List[Dict[str, Any]],
               tool_names) -> Optional[Dict[str, Any]]:
    """The next move of a ``plan:`` prompt (see the module docstring), or None once the plan
    was approved (the prompt's other directives then run)."""
    m = PLAN_RE.search(prompt)
    if not m:
        return None
    text = m.group(1).strip().replace("\\n", "\n")
    exits = [st for st in steps if st["name"] == "ExitPlanMode"]
    if any(st["answered"] and not st["is_error"] for st in exits):
        return None  # approved: carry on with the rest of the prompt
    rejected = [st for st in exits if st["answered"] and st["is_error"]]
    if rejected:
        feedback = rejected[-1]["text"] or ""
        if len(rejected) > MAX_PLAN_REVISIONS:
            return {"kind": "text", "text": "plan rejected: " + feedback, "sleep": 0.0,
                    "reason": "plan-rejected"}
        text = text + "\nRevised after: " + feedback
    last = steps[-1] if steps else None
    path = None
    found = PLAN_FILE_RE.findall(request_text(body))
    if found and "Write" in tool_names:
        path = found[-1]
    # Write the plan file first, unless this very version was written since the last proposal.
    k = max((i for i, st in enumerate(steps) if st["name"] == "ExitPlanMode"), default=-1)
    written = any(st["name"] == "Write" and st["answered"] and not st["is_error"]
                  and (st["input"] or {}).get("file_path") == path
                  and (st["input"] or {}).get("content") == text for st in steps[k + 1:])
    if path and not written:
        return {"kind": "tool_use", "command": None, "sleep": 0.0, "reason": "plan-write",
                "tools": [{"name": "Write", "input": {"file_path": path, "content": text}}]}
    if "ExitPlanMode" not in tool_names:
        if "ToolSearch" in tool_names and not (last and last["name"] == "ToolSearch"):
            return {"kind": "tool_use", "command": None, "sleep": 0.0, "reason": "plan-search",
                    "tools": [{"name": "ToolSearch", "input": {
                        "query": "select:ExitPlanMode", "max_results": 5}}]}
        return {"kind": "text", "text": "no ExitPlanMode tool offered", "sleep": 0.0,
                "reason": "plan-unavailable"}
    return {"kind": "tool_use", "command": None, "sleep": 0.0, "reason": "plan-exit",
            "tools": [{"name": "ExitPlanMode", "input": {} if path else {"plan": text}}]}


def plan_reply(body: Dict[str, Any]) -> Dict[str, Any]:
    """Decide the answer for a /v1/messages body.

    Returns {"kind": "text"|"tool_use", "text": ..., "command": ..., "sleep": seconds,
             "reason": which rule fired, "tools": [{"name", "input"}] for tool_use}.
    """
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    tool_names = {t.get("name") for t in tools if isinstance(t, dict)}
    user = newest_user(messages)
    content = user.get("content") if user else ""
    blocks = _blocks(content)

    # A tool_result answers our tool_use, unless a user text follows it in the same message
    # (the CLI merges e.g. [tool_result, "[Request interrupted by user for tool use]",
    # "next prompt"] into one user message after an interrupted permission prompt).
    last_result = max((i for i, b in enumerate(blocks) if b.get("type") == "tool_result"),
                      default=-1)
    # A ``plan:`` prompt drives its own tool loop (write the plan file, ExitPlanMode, revise
    # when rejected); once approved, its other directives run.
    current, since = _prompt_and_since(messages)
    if tools and PLAN_RE.search(current):
        steps = _tool_steps(messages, since)
        step = _plan_step(body, current, steps, tool_names)
        if step is not None:
            return step
        if steps and steps[-1]["name"] == "ExitPlanMode" and steps[-1]["answered"]:
            calls = directive_calls(current, tool_names)
            if calls:
                return {"kind": "tool_use", "command": None, "tools": calls, "sleep": 0.0,
                        "reason": "plan-approved"}
    # The answer to our ToolSearch for deferred tools (see ``tool:``; the CLI follows its
    # tool_result with a "Tool loaded." text): now call them.
    if last_result >= 0 and tools and _answered_tool_names(messages, blocks) == {"ToolSearch"}:
        prompt = next((p for m in reversed(messages) if isinstance(m, dict)
                       and m.get("role") == "user"
                       for p in [prompt_text(m.get("content"))] if TOOL_RE.search(p)), "")
        calls = tool_calls(prompt, tool_names)
        if calls:
            return {"kind": "tool_use", "command": None, "tools": calls, "sleep": 0.0,
                    "reason": "tool-after-search"}
    if last_result >= 0 and not user_texts(blocks[last_result + 1:]):
        said = " || ".join(REMINDER_RE.sub("", block_text(b)).strip()[:200]
                           for b in blocks if b.get("type") == "tool_result")
        return {"kind": "text", "text": "tool said: " + said,
                "sleep": 0.0, "reason": "tool_result"}

    # Directives come from the current prompt only (the last text block): earlier blocks of a
    # merged message are old turns, e.g. an interrupted "sleep: 10".
    prompt = prompt_text(content)
    sleep = 0.0
    if tools:
        m = SLEEP_RE.search(prompt)
        if m:
            sleep = float(m.group(1))
    deferred: List[str] = []
    calls = tool_calls(prompt, tool_names, deferred) if tools else []
    if deferred and not calls and "ToolSearch" in tool_names:
        # The CLI (2.1.332: MCP tools by default) offers some tools only through ToolSearch;
        # load them first, as a model does: the CLI then offers them in the next request.
        return {"kind": "tool_use", "command": None, "sleep": sleep, "reason": "tool-search",
                "tools": [{"name": "ToolSearch", "input": {
                    "query": "select:" + ",".join(deferred), "max_results": 5}}]}
    calls = directive_calls(prompt, tool_names) if tools else []
    command = next((c["input"]["command"] for c in calls if c["name"] == "Bash"), None)
    if calls:
        return {"kind": "tool_use", "command": command, "tools": calls, "sleep": sleep,
                "reason": "tool" if len(calls) > 1 or command is None else "bash"}
    if tools and RECALL_RE.search(prompt):
        earlier = user_prompts(messages)[:-1]  # every user text but the current prompt
        return {"kind": "text", "text": "recall: " + (" | ".join(earlier) or "(none)"),
                "sleep": sleep, "reason": "recall"}
    return {"kind": "text", "text": "echo: " + prompt, "sleep": sleep,
            "reason": "echo" if tools else "side-request"}


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

class _Handler(fake_api.Handler):
    server_version = "FakeAnthropic/1.0"
    fake: "FakeAnthropic"
    extra_headers = (("request-id", "req_fake"),)


    # -- verbs ----------------------------------------------------------------------------------
    def do_HEAD(self):
        self._send_json(200, {})

    def do_GET(self):
        self._send_json(200, {})

    def do_POST(self):
        raw = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if path.endswith("/v1/messages/count_tokens"):
            self.fake._record(path, body, "count_tokens", None)
            self._send_json(200, {"input_tokens": self.fake.usage["input_tokens"]})
            return
        if not path.endswith("/v1/messages"):
            self.fake._record(path, body, "other", None)
            self._send_json(200, {})
            return
        if not isinstance(body, dict):
            self._send_json(400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "body must be a JSON object"}})
            return

        plan = plan_reply(body)
        n = self.fake._record(path, body, plan["reason"], plan)
        try:
            self._wait(plan["sleep"])
        except fake_api.Gone:
            self.fake._note_abandoned()
            self.close_connection = True
            return

        model = body.get("model") or "claude-fake"
        msg_id = "msg_fake_%d" % n
        if plan["kind"] == "tool_use":
            # The first block keeps the id toolu_fake_<n> (as before); more get _<n>_<k>.
            blocks = [{"type": "tool_use",
                       "id": "toolu_fake_%d" % n if k == 0 else "toolu_fake_%d_%d" % (n, k),
                       "name": c["name"], "input": c["input"]}
                      for k, c in enumerate(plan["tools"])]
            stop = "tool_use"
        else:
            blocks = [{"type": "text", "text": plan["text"]}]
            stop = "end_turn"
        usage = dict(self.fake.usage)
        usage.setdefault("cache_creation_input_tokens", 0)
        usage.setdefault("cache_read_input_tokens", 0)
        try:
            if body.get("stream"):
                self._stream(msg_id, model, blocks, stop, usage)
            else:
                self._send_json(200, {"id": msg_id, "type": "message", "role": "assistant",
                                      "model": model, "content": blocks, "stop_reason": stop,
                                      "stop_sequence": None, "usage": usage})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream(self, msg_id, model, blocks, stop, usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", "req_fake")
        self.end_headers()
        self.close_connection = True

        def ev(name, data):
            self.wfile.write(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
            self.wfile.flush()

        start_usage = dict(usage, output_tokens=1)
        ev("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        for index, block in enumerate(blocks):
            if block["type"] == "tool_use":
                ev("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "tool_use",
                                                             "id": block["id"],
                                                             "name": block["name"],
                                                             "input": {}}})
                # Two parts, as the real API splits input JSON.
                whole = json.dumps(block["input"])
                for part in (whole[: len(whole) // 2], whole[len(whole) // 2:]):
                    ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "input_json_delta",
                                                         "partial_json": part}})
            else:
                ev("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
                # Several chunks, as a real model streams tokens (hosts render them
                # as they come: tests check they add up to the whole answer).
                for chunk in fake_api.text_chunks(block["text"]):
                    ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": chunk}})
            ev("content_block_stop", {"type": "content_block_stop", "index": index})
        ev("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"output_tokens": usage["output_tokens"]}})
        ev("message_stop", {"type": "message_stop"})


class FakeAnthropic(fake_api.LoopbackServer):
    """Fake Anthropic API server. Thread-safe; start()/stop() or use as a context manager."""

    name = "fake_anthropic"
    handler = _Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, input_tokens: int = 10,
                 output_tokens: int = 5, verbose: bool = False):
        super().__init__(host, port, verbose)
        self.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        self._count = 0

    # -- observation ----------------------------------------------------------------------------
    @property
    def requests(self) -> int:
        """Number of POST /v1/messages requests received (side requests included)."""
        with self._lock:
            return self._count

    @property
    def log(self) -> List[Dict[str, Any]]:
        """Deep copy of every request seen: {"path", "kind", "body", "reply", "time", "model",
        "tools" (names offered, in order), "text" (what the model was shown, see the module
        docstring)}."""
        with self._lock:
            return copy.deepcopy(self._log)

    def messages_log(self) -> List[Dict[str, Any]]:
        """The log entries of POST /v1/messages only (no count_tokens or other paths)."""
        return [e for e in self.log if e["path"].endswith("/v1/messages")]

    def models(self, with_tools_only: bool = False) -> List[Optional[str]]:
        """The ``model`` of each /v1/messages request, oldest first (``with_tools_only``: only
        the main-loop requests, which offer tools; side requests carry none)."""
        return [e["model"] for e in self.messages_log() if e["tools"] or not with_tools_only]

    def tools(self, i: int = -1) -> List[str]:
        """Tool names offered by /v1/messages request ``i`` (default: the newest)."""
        log = self.messages_log()
        return list(log[i]["tools"]) if log else []

    def text(self, i: int = -1) -> str:
        """What /v1/messages request ``i`` showed the model (system + messages, rendered)."""
        log = self.messages_log()
        return log[i]["text"] if log else ""

    def saw(self, needle: str, i: Optional[int] = None) -> bool:
        """True when any /v1/messages request (or just request ``i``) showed the model
        ``needle`` (in the system prompt, a user text, a tool result, a tool_use input...)."""
        log = self.messages_log()
        if i is not None:
            log = [log[i]] if log else []
        return any(needle in e["text"] for e in log)

    def blocks(self, block_type: str, i: Optional[int] = None) -> List[Dict[str, Any]]:
        """Every content block of ``block_type`` (e.g. "image", "tool_result") the requests
        sent (tool_result contents included), or only those of request ``i``."""
        log = self.messages_log()
        if i is not None:
            log = [log[i]] if log else []
        return [b for e in log for b in iter_blocks(e["body"]) if b.get("type") == block_type]

    def tool_results(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        """What the model was told about its tool calls, oldest first, each call once (later
        requests repeat the history): [{"tool_use_id", "name", "input", "text", "is_error"}],
        only those of tool ``name`` when given. ``text`` is the result's text with system
        reminders removed, e.g. what AskUserQuestion's answer or ExitPlanMode's approval or
        rejection looked like to the model."""
        seen: Dict[str, Dict[str, Any]] = {}
        for e in self.messages_log():
            messages = e["body"].get("messages") or []
            for st in _tool_steps(messages, -1):
                if st["answered"] and st["id"] not in seen:
                    seen[st["id"]] = {"tool_use_id": st["id"], "name": st["name"],
                                      "input": st["input"], "text": st["text"],
                                      "is_error": st["is_error"]}
        return [r for r in seen.values() if name is None or r["name"] == name]

    def reset(self) -> None:
        with self._lock:
            self._count = 0
            self._abandoned = 0
            self._log.clear()

    def _record(self, path, body, kind, plan) -> int:
        with self._lock:
            if path.endswith("/v1/messages"):
                self._count += 1
            tools = body.get("tools") if isinstance(body, dict) else None
            self._log.append({
                "path": path, "kind": kind, "body": body, "reply": plan, "time": time.time(),
                "model": body.get("model") if isinstance(body, dict) else None,
                "tools": [t.get("name") for t in tools or [] if isinstance(t, dict)],
                "text": request_text(body) if isinstance(body, dict) else ""})
            return len(self._log)


def main(argv=None) -> int:
    return fake_api.serve(FakeAnthropic, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
