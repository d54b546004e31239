#!/usr/bin/env python3
"""A tiny fake model API for driving real ACP agents (OpenCode, Gemini CLI) in tests.

Stdlib only, Python 3.9+. Serves on 127.0.0.1 (port 0 = ephemeral by default), threaded.
One server speaks two wire shapes:

* OpenAI-compatible: ``POST /v1/chat/completions`` (``"stream": true`` -> SSE chunks ending in
  ``data: [DONE]``; otherwise one JSON completion) and ``GET /v1/models`` (one model,
  ``fake-model``). OpenCode uses it through a custom ``@ai-sdk/openai-compatible`` provider
  with ``baseURL http://127.0.0.1:PORT/v1``.
* Gemini: ``POST /<version>/models/<model>:generateContent`` (JSON) and
  ``:streamGenerateContent`` (``?alt=sse`` -> ``data: <GenerateContentResponse>`` events; without
  it a JSON array), ``:countTokens``. Gemini CLI uses it with
  ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT``.

Module use::

    from fake_openai import FakeModel
    with FakeModel() as api:            # or api = FakeModel().start(); ...; api.stop()
        api.url                         # "http://127.0.0.1:PORT"
        api.openai_url                  # "http://127.0.0.1:PORT/v1"
        api.requests                    # model requests answered so far (both shapes)
        api.counts()                    # {path: number of requests} (every verb, every path)
        api.count("/v1/chat/completions")
        api.abandoned                   # slow answers whose client went away before the end
        api.log                         # copies of [{"path", "shape", "kind", "body", "reply",
                                        #   "time", "model", "tools", "prompt"}], oldest first
        api.tools(i)                    # tool names offered by model request i (default: last)
        api.saw("text")                 # did any model request show the model this text?

Script use: ``python3 fake_openai.py [--port N] [--verbose]`` prints the URL on stdout and
serves until killed.

The reply to a model request is chosen from the request's conversation (the same conventions
as ``fake_anthropic.py`` where they apply):

* the newest message is a tool result (OpenAI ``role: tool``; Gemini ``functionResponse``
  parts) -> text ``tool said: <first 400 chars of each result, joined by " || ">``, stop.
* otherwise the newest user text is the prompt (``<session_context>``/``<system-reminder>``
  blocks left out: Gemini CLI puts its context in front of the first prompt); its
  directives are lines:
  - ``RUNTOOL <command>`` (alias ``bash: <command>``) -> one call of the agent's shell tool,
    picked from the tools offered: ``bash`` (OpenCode), ``run_shell_command`` (Gemini),
    ``shell``/``Bash``/``execute`` otherwise. Arguments: ``{"command": <command>}`` plus a
    value for every other required string property of the tool's schema
    (``description`` -> ``"run it"``).
  - ``WRITE <path> <text>`` -> one call of the write tool offered (``write`` / ``write_file``
    / ``Write``) with the path and text in whatever its schema names them
    (``filePath``/``file_path``/``path``, ``content``). ``\\n`` in the text is a newline.
  - ``CALLTOOL <name> <json>`` (alias ``tool: <name> <json>``) -> a call of that exact tool.
  Several tool directives give several calls in one reply (parallel calls).
  - ``SLOW <secs>`` (alias ``sleep: <secs>``) -> the answer takes that long: a streamed text
    answer is sent in small pieces spread over the time (the first at once), a tool call or
    a JSON answer waits first. The server notices a client that goes away (counted in
    ``abandoned``) and stops.
  - ``RECALL`` (alias ``recall``) -> text ``recall: <earlier user prompts joined by " | ">``.
  - ``THINK <text>`` -> the answer (text or tool call) is preceded by that reasoning text
    (OpenAI: ``reasoning_content`` deltas; Gemini: a part with ``"thought": true``).
  - anything else -> text ``echo: <prompt>``.
  Tool directives, ``SLOW`` and ``RECALL`` are only honoured when the request offers tools,
  so an agent's side requests (OpenCode's title call, Gemini's JSON checks) always get a
  short immediate answer.
* a Gemini request asking for JSON (``generationConfig.responseMimeType`` application/json or
  a response schema) gets a JSON object built from the schema (strings ``"fake"``, the first
  enum value, ``next_speaker`` -> ``"user"``), as Gemini CLI's next-speaker and loop checks
  expect.

Every reply reports usage 10 in / 5 out (configurable) and echoes the request's model.
Any other GET/HEAD/POST answers 200 ``{}`` so nothing hangs.
"""

import copy
import json
import re
import sys
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import fake_api

RUNTOOL_RE = re.compile(r"^[ \t]*(?:RUNTOOL[ \t]+|bash:[ \t]*)(\S[^\n]*)$", re.M)
WRITE_RE = re.compile(r"^[ \t]*WRITE[ \t]+(\S+)[ \t]?([^\n]*)$", re.M)
CALLTOOL_RE = re.compile(r"^[ \t]*(?:CALLTOOL[ \t]+|tool:[ \t]*)([A-Za-z0-9_.:-]+)[ \t]*([^\n]*)$",
                         re.M)
SLOW_RE = re.compile(r"^[ \t]*(?:SLOW[ \t]+|sleep:[ \t]*)([0-9]+(?:\.[0-9]*)?)", re.M)
THINK_RE = re.compile(r"^[ \t]*THINK[ \t]+([^\n]*)$", re.M)
RECALL_RE = re.compile(r"^[ \t]*(?:RECALL|recall)\b", re.M)
# Context an agent puts in front of the user's first prompt (Gemini CLI: <session_context>),
# left out of the prompt the directives are read from.
CONTEXT_RE = re.compile(r"<(session_context|system-reminder)>.*?</\1>", re.S)

SHELL_TOOLS = ("bash", "run_shell_command", "shell", "Bash", "execute", "run_command")
WRITE_TOOLS = ("write", "write_file", "Write", "create_file")
PATH_KEYS = ("filePath", "file_path", "path", "absolute_path", "filename")
CONTENT_KEYS = ("content", "contents", "text", "file_text")


# ---------------------------------------------------------------------------------------------
# conversation inspection (pure functions, usable by tests too)
# ---------------------------------------------------------------------------------------------

def _text_of(content: Any) -> str:
    """Text of an OpenAI message content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content
                         if isinstance(p, dict) and p.get("type") in ("text", None)
                         and "text" in p)
    return ""


def openai_view(body: Dict[str, Any]) -> Dict[str, Any]:
    """The neutral view of a chat-completions body: {"tools": {name: schema}, "prompts":
    [user texts, oldest first], "results": [tool result texts after the newest user text]
    (empty unless the newest message is a tool result), "json_schema": None}."""
    tools = {}
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            fn = t.get("function") or {}
            if fn.get("name"):
                tools[fn["name"]] = fn.get("parameters") or {}
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompts = [CONTEXT_RE.sub("", _text_of(m.get("content"))).strip()
               for m in messages if m.get("role") == "user"]
    results: List[str] = []
    if messages and messages[-1].get("role") == "tool":
        k = len(messages) - 1
        while k >= 0 and messages[k].get("role") == "tool":
            k -= 1
        results = [_text_of(m.get("content")) for m in messages[k + 1:]]
    return {"tools": tools, "prompts": [p for p in prompts if p.strip()], "results": results,
            "json_schema": None}


def _gemini_result_text(part: Dict[str, Any]) -> str:
    resp = (part.get("functionResponse") or {}).get("response")
    if isinstance(resp, dict):
        for key in ("output", "llmContent", "result", "content"):
            if isinstance(resp.get(key), str):
                return resp[key]
        if "error" in resp:
            return "error: " + json.dumps(resp["error"])
    return json.dumps(resp)


def gemini_view(body: Dict[str, Any]) -> Dict[str, Any]:
    """The neutral view of a generateContent body (see ``openai_view``)."""
    tools = {}
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            for fd in t.get("functionDeclarations") or t.get("function_declarations") or []:
                if isinstance(fd, dict) and fd.get("name"):
                    tools[fd["name"]] = (fd.get("parametersJsonSchema") or fd.get("parameters")
                                         or {})
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    prompts, results = [], []
    for c in contents:
        parts = [p for p in c.get("parts") or [] if isinstance(p, dict)]
        if c.get("role", "user") == "user" and not any("functionResponse" in p for p in parts):
            text = CONTEXT_RE.sub("", "\n".join(str(p["text"]) for p in parts
                                                 if "text" in p)).strip()
            if text:
                prompts.append(text)
    if contents:
        last = [p for p in contents[-1].get("parts") or [] if isinstance(p, dict)]
        if any("functionResponse" in p for p in last):
            results = [_gemini_result_text(p) for p in last if "functionResponse" in p]
    gc = body.get("generationConfig") or {}
    schema = None
    if gc.get("responseMimeType") == "application/json" or gc.get("responseJsonSchema") \
            or gc.get("responseSchema"):
        schema = gc.get("responseJsonSchema") or gc.get("responseSchema") or {}
    return {"tools": tools, "prompts": prompts, "results": results, "json_schema": schema}


def _required_fill(schema: Dict[str, Any], args: Dict[str, Any]) -> Dict[str, Any]:
    props = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key in args:
            continue
        t = (props.get(key) or {}).get("type")
        if t in ("string", "STRING", None):
            args[key] = "run it" if key == "description" else "fake"
        elif t in ("boolean", "BOOLEAN"):
            args[key] = False
        elif t in ("integer", "number", "INTEGER", "NUMBER"):
            args[key] = 0
    return args


def _pick(names, wanted) -> Optional[str]:
    return next((w for w in wanted if w in names), None)


def json_from_schema(schema: Any, key: str = "") -> Any:
    """A small value matching a JSON schema (Gemini CLI's structured side requests)."""
    if not isinstance(schema, dict):
        return "fake"
    if key == "next_speaker":
        return "user"
    if schema.get("enum"):
        return schema["enum"][0]
    t = str(schema.get("type", "object")).lower()
    if t == "object":
        props = schema.get("properties") or {}
        return {k: json_from_schema(v, k) for k, v in props.items()}
    if t == "array":
        return []
    if t == "boolean":
        return False
    if t in ("integer", "number"):
        return 0
    return "fake"


def plan_reply(view: Dict[str, Any]) -> Dict[str, Any]:
    """The answer to a request, from its neutral view: {"kind": "text"|"tool"|"json",
    "text", "calls": [{"name", "args"}], "json", "slow": secs, "reason"}."""
    tools = view["tools"]
    if view["json_schema"] is not None:
        return {"kind": "json", "json": json_from_schema(view["json_schema"]), "slow": 0.0,
                "reason": "json"}
    if view["results"]:
        said = " || ".join(r.strip()[:400] for r in view["results"])
        return {"kind": "text", "text": "tool said: " + said, "slow": 0.0,
                "reason": "tool_result"}
    prompt = view["prompts"][-1] if view["prompts"] else ""
    if not tools:
        return {"kind": "text", "text": "echo: " + prompt.strip()[:100], "slow": 0.0,
                "reason": "side-request"}
    slow = 0.0
    m = SLOW_RE.search(prompt)
    if m:
        slow = float(m.group(1))
    m = THINK_RE.search(prompt)
    think = m.group(1).strip() if m else None
    calls: List[Dict[str, Any]] = []
    for m in CALLTOOL_RE.finditer(prompt):
        name, rest = m.group(1), m.group(2).strip()
        if name not in tools:
            continue
        try:
            args = json.loads(rest) if rest else {}
        except ValueError:
            args = {"raw": rest}
        calls.append({"name": name, "args": args if isinstance(args, dict) else {"value": args}})
    shell = _pick(tools, SHELL_TOOLS)
    for m in RUNTOOL_RE.finditer(prompt):
        if shell:
            calls.append({"name": shell, "args": _required_fill(
                tools[shell], {"command": m.group(1).strip()})})
    writer = _pick(tools, WRITE_TOOLS)
    for m in WRITE_RE.finditer(prompt):
        if writer:
            props = (tools[writer].get("properties") or {})
            pk = _pick(props, PATH_KEYS) or "file_path"
            ck = _pick(props, CONTENT_KEYS) or "content"
            calls.append({"name": writer, "args": _required_fill(tools[writer], {
                pk: m.group(1), ck: m.group(2).replace("\\n", "\n")})})
    if calls:
        return {"kind": "tool", "calls": calls, "slow": slow, "reason": "tool", "think": think}
    if RECALL_RE.search(prompt):
        earlier = [p.strip() for p in view["prompts"][:-1]]
        return {"kind": "text", "text": "recall: " + (" | ".join(earlier) or "(none)"),
                "slow": slow, "reason": "recall", "think": think}
    if think is not None:
        prompt = THINK_RE.sub("", prompt)
    return {"kind": "text", "text": "echo: " + prompt.strip(), "slow": slow,
            "reason": "slow" if slow else "echo", "think": think}


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

class _Handler(fake_api.Handler):
    server_version = "FakeModel/1.0"
    fake: "FakeModel"


    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _sse(self, data: Any) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        try:
            self.wfile.write(("data: %s\n\n" % payload).encode())
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            raise fake_api.Gone()

    def _pieces(self, text: str, slow: float) -> List[Tuple[float, str]]:
        """(delay before, piece) for a streamed text: 4 pieces at once, or when slow up to ~4
        pieces a second, the first at once and the last at ``slow`` seconds."""
        if slow <= 0:
            return [(0.0, c) for c in fake_api.text_chunks(text)]
        pieces = fake_api.text_chunks(text, max(2, min(len(text), int(slow * 4))))
        step = slow / max(1, len(pieces) - 1)
        return [(0.0 if i == 0 else step, c) for i, c in enumerate(pieces)]

    # -- verbs ----------------------------------------------------------------------------------
    def do_HEAD(self):
        self.fake._record(urlsplit(self.path).path, "HEAD", {}, "other", None, None)
        self._send_json(200, {})

    def do_GET(self):
        path = urlsplit(self.path).path.rstrip("/")
        self.fake._record(path, "GET", {}, "other", None, None)
        if path.endswith("/models"):
            if "/v1beta" in path or "/v1alpha" in path:  # Gemini list models
                self._send_json(200, {"models": [{"name": "models/" + m} for m in
                                                 ("gemini-2.5-flash", "gemini-2.5-pro")]})
            else:
                self._send_json(200, {"object": "list", "data": [
                    {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]})
            return
        self._send_json(200, {})

    def do_POST(self):
        raw = self._read_body()
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        query = parse_qs(parts.query)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        try:
            if path.endswith("/chat/completions"):
                self._openai(path, body)
            elif ":streamGenerateContent" in path or ":generateContent" in path:
                stream = ":streamGenerateContent" in path
                self._gemini(path, body, stream, sse=query.get("alt", [""])[0] == "sse")
            elif ":countTokens" in path:
                self.fake._record(path, "POST", body, "count_tokens", None, None)
                self._send_json(200, {"totalTokens": self.fake.usage[0]})
            else:
                self.fake._record(path, "POST", body, "other", None, None)
                self._send_json(200, {})
        except fake_api.Gone:
            self.fake._note_abandoned()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- OpenAI chat completions ----------------------------------------------------------------
    def _openai(self, path: str, body: Dict[str, Any]) -> None:
        view = openai_view(body)
        plan = plan_reply(view)
        n = self.fake._record(path, "POST", body, plan["reason"], plan, view, "openai")
        model = body.get("model") or "fake-model"
        cid = "chatcmpl-fake-%d" % n
        created = int(time.time())
        inp, out = self.fake.usage
        usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}
        calls = [{"id": "call_fake_%d_%d" % (n, k), "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                 for k, c in enumerate(plan.get("calls") or [])]
        text = plan.get("text") if plan["kind"] == "text" else (
            json.dumps(plan["json"]) if plan["kind"] == "json" else None)
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            self._wait(plan["slow"])
            msg: Dict[str, Any] = {"role": "assistant", "content": text}
            if plan.get("think"):
                msg["reasoning_content"] = plan["think"]
            if calls:
                msg["tool_calls"] = calls
            self._send_json(200, {"id": cid, "object": "chat.completion", "created": created,
                                  "model": model, "choices": [{"index": 0, "message": msg,
                                                               "finish_reason": finish}],
                                  "usage": usage})
            return

        def chunk(delta, finish_reason=None, with_usage=False):
            c = {"id": cid, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish_reason}]}
            if with_usage:
                c["usage"] = usage
            return c

        self._sse_start()
        self._sse(chunk({"role": "assistant", "content": ""}))
        for piece in fake_api.text_chunks(plan["think"], 2) if plan.get("think") else []:
            self._sse(chunk({"reasoning_content": piece}))
        if calls:
            self._wait(plan["slow"])
            for k, call in enumerate(calls):
                args = call["function"]["arguments"]
                self._sse(chunk({"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                                 "function": {"name": call["function"]["name"],
                                                              "arguments": ""}}]}))
                for part in (args[: len(args) // 2], args[len(args) // 2:]):
                    self._sse(chunk({"tool_calls": [{"index": k,
                                                     "function": {"arguments": part}}]}))
        else:
            for delay, piece in self._pieces(text or "", plan["slow"]):
                self._wait(delay)
                self._sse(chunk({"content": piece}))
        self._sse(chunk({}, finish, with_usage=True))
        self._sse("[DONE]")

    # -- Gemini generateContent -----------------------------------------------------------------
    def _gemini(self, path: str, body: Dict[str, Any], stream: bool, sse: bool) -> None:
        view = gemini_view(body)
        plan = plan_reply(view)
        n = self.fake._record(path, "POST", body, plan["reason"], plan, view, "gemini")
        m = re.search(r"/models/([^/:]+):", path)
        model = m.group(1) if m else "gemini-fake"
        inp, out = self.fake.usage
        usage = {"promptTokenCount": inp, "candidatesTokenCount": out,
                 "totalTokenCount": inp + out}

        def response(parts, finish=None, with_usage=False):
            cand: Dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                cand["finishReason"] = finish
            r: Dict[str, Any] = {"candidates": [cand], "modelVersion": model,
                                 "responseId": "fake-%d" % n}
            if with_usage:
                r["usageMetadata"] = usage
            return r

        if plan["kind"] == "tool":
            pieces = [(plan["slow"], [{"functionCall": {"name": c["name"], "args": c["args"]}}
                                      for c in plan["calls"]])]
        elif plan["kind"] == "json":
            pieces = [(0.0, [{"text": json.dumps(plan["json"])}])]
        else:
            pieces = [(d, [{"text": t}]) for d, t in self._pieces(plan["text"], plan["slow"])]
        if plan.get("think"):
            pieces.insert(0, (0.0, [{"text": plan["think"], "thought": True}]))
        if not stream:
            self._wait(sum(d for d, _ in pieces))
            merged = [p for _, ps in pieces for p in ps]
            if plan["kind"] != "tool":
                merged = ([p for p in merged if p.get("thought")]
                          + [{"text": "".join(p["text"] for p in merged if not p.get("thought"))}])
            self._send_json(200, response(merged, "STOP", True))
            return
        if not sse:  # a JSON array of responses
            self._wait(sum(d for d, _ in pieces))
            out_list = [response(ps) for _, ps in pieces]
            out_list[-1] = response(pieces[-1][1], "STOP", True)
            self._send_json(200, out_list)
            return
        self._sse_start()
        for i, (delay, ps) in enumerate(pieces):
            self._wait(delay)
            last = i == len(pieces) - 1
            self._sse(response(ps, "STOP" if last else None, with_usage=last))


class FakeModel(fake_api.LoopbackServer):
    """Fake OpenAI-compatible + Gemini API server. Thread-safe; start()/stop() or use as a
    context manager."""

    name = "fake_openai"
    handler = _Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, input_tokens: int = 10,
                 output_tokens: int = 5, verbose: bool = False):
        super().__init__(host, port, verbose)
        self.usage = (input_tokens, output_tokens)
        self._requests = 0
        self._counts: Dict[str, int] = {}

    # -- observation ----------------------------------------------------------------------------
    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def requests(self) -> int:
        """Model requests received (chat completions and generateContent, side requests too)."""
        with self._lock:
            return self._requests

    def counts(self) -> Dict[str, int]:
        """Requests per path (any verb), e.g. {"/v1/chat/completions": 3, "/v1/models": 1}."""
        with self._lock:
            return dict(self._counts)

    def count(self, path_contains: str) -> int:
        """Requests whose path contains ``path_contains``."""
        with self._lock:
            return sum(n for p, n in self._counts.items() if path_contains in p)

    @property
    def log(self) -> List[Dict[str, Any]]:
        """Deep copy of every request: {"path", "verb", "shape" ("openai"|"gemini"|None),
        "kind" (the rule that answered), "body", "reply", "time", "model", "tools" (names
        offered), "prompt" (the newest user text)}."""
        with self._lock:
            return copy.deepcopy(self._log)

    def model_log(self) -> List[Dict[str, Any]]:
        return [e for e in self.log if e["shape"]]

    def tools(self, i: int = -1) -> List[str]:
        log = self.model_log()
        return list(log[i]["tools"]) if log else []

    def saw(self, needle: str) -> bool:
        """True when any model request's body contains ``needle`` (JSON-encoded text)."""
        return any(needle in json.dumps(e["body"]) for e in self.model_log())

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._abandoned = 0
            self._counts.clear()
            self._log.clear()

    def _record(self, path, verb, body, kind, plan, view, shape=None) -> int:
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1
            if shape:
                self._requests += 1
            self._log.append({
                "path": path, "verb": verb, "shape": shape, "kind": kind, "body": body,
                "reply": plan, "time": time.time(),
                "model": body.get("model") if shape == "openai" else (
                    (re.search(r"/models/([^/:]+):", path) or [None, None])[1]
                    if shape else None),
                "tools": sorted((view or {}).get("tools") or {}),
                "prompt": ((view or {}).get("prompts") or [""])[-1]})
            if self.verbose:
                sys.stderr.write("fake_openai: %s %s -> %s\n" % (verb, path, kind))
            return len(self._log)

def main(argv=None) -> int:
    return fake_api.serve(FakeModel, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
