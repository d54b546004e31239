#!/usr/bin/env python3
"""A tiny fake Anthropic Messages API for driving the real Claude Code CLI in tests.

Stdlib only, Python 3.9+. Serves on 127.0.0.1 (port 0 = ephemeral by default).

Module use::

    from fake_anthropic import FakeAnthropic
    with FakeAnthropic() as api:          # or api = FakeAnthropic().start(); ...; api.stop()
        env["ANTHROPIC_BASE_URL"] = api.url   # "http://127.0.0.1:PORT"
        ...
        api.requests                      # number of POST /v1/messages answered so far
        api.log                           # copies of [{"path", "body", "kind", "reply"}], oldest first

Script use: ``python3 fake_anthropic.py [--port N]`` prints the URL on stdout and serves
until killed.

Behaviour of ``POST /v1/messages`` (any query string) is chosen from the NEWEST ``user``-role
message of the request (the CLI appends a system-role entry after it; its content may be a
string or a list of blocks; the CLI may prepend ``<system-reminder>`` text blocks):

* it holds a ``tool_result`` block   -> text ``tool said: <first 200 chars of the result>``, end_turn
  (and no user text after it)
* directive ``bash: <command>``      -> ``tool_use`` of tool ``Bash`` with input
                                        ``{"command": <command>, "description": "run it"}``,
                                        stop_reason tool_use
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

Every reply reports usage ``input_tokens=10, output_tokens=5`` (configurable) and echoes the
request's model. ``"stream": true`` gets SSE (message_start, content_block_start,
content_block_delta, content_block_stop, message_delta, message_stop, then the connection is
closed); otherwise a JSON message. ``/v1/messages/count_tokens`` answers
``{"input_tokens": 10}``; any other GET/HEAD/POST answers 200 ``{}`` so nothing hangs.
"""

import argparse
import copy
import json
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
BASH_RE = re.compile(r"(?:^|\s)bash:[ \t]*(\S[^\n]*)", re.M)
SLEEP_RE = re.compile(r"(?:^|\s)sleep:[ \t]*([0-9]+(?:\.[0-9]*)?)", re.M)
RECALL_RE = re.compile(r"(?:^|\s)recall\b", re.M)


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


def user_texts(content: Any) -> List[str]:
    """The user's own texts in a message content, in order: text blocks with system reminders
    stripped, empty ones dropped. (The CLI merges consecutive user turns into one message,
    e.g. after an interrupt: ["sleep: 10", "[Request interrupted by user]", "next prompt"].)"""
    out = []
    for b in _blocks(content):
        if b.get("type") != "text":
            continue
        t = REMINDER_RE.sub("", str(b.get("text", ""))).strip()
        if t and not t.startswith("<system-reminder>"):
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


def plan_reply(body: Dict[str, Any]) -> Dict[str, Any]:
    """Decide the answer for a /v1/messages body.

    Returns {"kind": "text"|"tool_use", "text": ..., "command": ..., "sleep": seconds,
             "reason": which rule fired}.
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
    if last_result >= 0 and not user_texts(blocks[last_result + 1:]):
        first = next(b for b in blocks if b.get("type") == "tool_result")
        return {"kind": "text", "text": "tool said: " + block_text(first)[:200],
                "sleep": 0.0, "reason": "tool_result"}

    # Directives come from the current prompt only (the last text block): earlier blocks of a
    # merged message are old turns, e.g. an interrupted "sleep: 10".
    prompt = prompt_text(content)
    sleep = 0.0
    if tools:
        m = SLEEP_RE.search(prompt)
        if m:
            sleep = float(m.group(1))
    if "Bash" in tool_names:
        m = BASH_RE.search(prompt)
        if m:
            return {"kind": "tool_use", "command": m.group(1).strip(), "sleep": sleep,
                    "reason": "bash"}
    if tools and RECALL_RE.search(prompt):
        earlier = user_prompts(messages)[:-1]  # every user text but the current prompt
        return {"kind": "text", "text": "recall: " + (" | ".join(earlier) or "(none)"),
                "sleep": sleep, "reason": "recall"}
    return {"kind": "text", "text": "echo: " + prompt, "sleep": sleep,
            "reason": "echo" if tools else "side-request"}


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"
    fake: "FakeAnthropic"  # set on the subclass made per server

    def log_message(self, fmt, *args):  # keep test output quiet
        if self.fake.verbose:
            sys.stderr.write("fake_anthropic: " + (fmt % args) + "\n")

    # -- plumbing -------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_fake")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _client_gone(self) -> bool:
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

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
        deadline = time.monotonic() + plan["sleep"]
        while time.monotonic() < deadline:
            if self._client_gone():
                self.fake._note_abandoned()
                self.close_connection = True
                return
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

        model = body.get("model") or "claude-fake"
        msg_id = "msg_fake_%d" % n
        if plan["kind"] == "tool_use":
            block = {"type": "tool_use", "id": "toolu_fake_%d" % n, "name": "Bash",
                     "input": {"command": plan["command"], "description": "run it"}}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": plan["text"]}
            stop = "end_turn"
        usage = dict(self.fake.usage)
        usage.setdefault("cache_creation_input_tokens", 0)
        usage.setdefault("cache_read_input_tokens", 0)
        try:
            if body.get("stream"):
                self._stream(msg_id, model, block, stop, usage)
            else:
                self._send_json(200, {"id": msg_id, "type": "message", "role": "assistant",
                                      "model": model, "content": [block], "stop_reason": stop,
                                      "stop_sequence": None, "usage": usage})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream(self, msg_id, model, block, stop, usage):
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
        if block["type"] == "tool_use":
            ev("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "tool_use", "id": block["id"],
                                                         "name": block["name"], "input": {}}})
            # Two parts, as the real API splits input JSON.
            whole = json.dumps(block["input"])
            for part in (whole[: len(whole) // 2], whole[len(whole) // 2:]):
                ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "input_json_delta",
                                                     "partial_json": part}})
        else:
            ev("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})
            # Several chunks, as a real model streams tokens (hosts render them
            # as they come: tests check they add up to the whole answer).
            for chunk in text_chunks(block["text"]):
                ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": chunk}})
        ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        ev("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"output_tokens": usage["output_tokens"]}})
        ev("message_stop", {"type": "message_stop"})


def text_chunks(text: str, parts: int = 4) -> List[str]:
    """`text` cut into up to `parts` non-empty pieces that concatenate to it."""
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class FakeAnthropic:
    """Fake Anthropic API server. Thread-safe; start()/stop() or use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, input_tokens: int = 10,
                 output_tokens: int = 5, verbose: bool = False):
        self.host = host
        self.port = port
        self.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        self.verbose = verbose
        self._lock = threading.Lock()
        self._count = 0
        self._abandoned = 0
        self._log: List[Dict[str, Any]] = []
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "FakeAnthropic":
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"fake": self})
        srv = ThreadingHTTPServer((self.host, self.port), handler)
        srv.daemon_threads = True
        self._server = srv
        self.port = srv.server_address[1]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeAnthropic":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def requests(self) -> int:
        """Number of POST /v1/messages requests received (side requests included)."""
        with self._lock:
            return self._count

    @property
    def abandoned(self) -> int:
        """Number of sleeping requests whose client disconnected before the answer."""
        with self._lock:
            return self._abandoned

    @property
    def log(self) -> List[Dict[str, Any]]:
        """Deep copy of every request seen: {"path", "kind", "body", "reply", "time"}."""
        with self._lock:
            return copy.deepcopy(self._log)

    def reset(self) -> None:
        with self._lock:
            self._count = 0
            self._abandoned = 0
            self._log.clear()

    def _record(self, path, body, kind, plan) -> int:
        with self._lock:
            if path.endswith("/v1/messages"):
                self._count += 1
            self._log.append({"path": path, "kind": kind, "body": body, "reply": plan,
                              "time": time.time()})
            return len(self._log)

    def _note_abandoned(self) -> None:
        with self._lock:
            self._abandoned += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    api = FakeAnthropic(port=args.port, verbose=args.verbose).start()
    print(api.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
