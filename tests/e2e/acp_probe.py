#!/usr/bin/env python3
"""Probe real ACP agents (OpenCode, Gemini CLI) offline and print what they do.

Stand-alone (stdlib only, Python 3.9+): a small Agent Client Protocol client (JSON-RPC 2.0,
one JSON object per line over the agent's stdio; subprocess + threads) drives each agent in a
scratch home against ``fake_openai.py`` on 127.0.0.1 and measures and records:

* timing: ``initialize``, ``session/new``, the first turn, hot turns (median of 9), exit on
  stdin EOF, spawn -> first answer;
* permissions: ``RUNTOOL echo hi`` answered allow_once, ``RUNTOOL rm -rf <scratch>/canary``
  answered reject_once (the canary must survive), ``WRITE <file> <text>`` answered allow_once
  (which client methods it uses), each ``session/request_permission`` recorded whole;
* cancel: a ``SLOW 10`` turn cancelled with ``session/cancel`` (time to the ``cancelled``
  stopReason, whether the model request was aborted), a running ``sleep`` tool cancelled
  (whether the process died), then a next turn;
* resume: the agent killed (SIGKILL to its process group) mid-turn, then a fresh process's
  ``session/load`` (replayed updates; a ``RECALL`` turn shows what the model sees), once at
  once and once after the wall-clock minute of the session's creation has passed (Gemini CLI
  0.61.0 cannot load a session created in the same minute);
* 4 sessions at once on 4 processes;
* more shapes: reasoning (``THINK``), the agent's todo tool (``plan`` updates or not), a long
  compound command (is it whole in the permission request?), a command on a path outside the
  workdir (OpenCode's extra external-directory request), what ``allow_always`` changes;
* processes per agent and SIGTERM to the agent's pid (Gemini CLI also without
  ``GEMINI_CLI_NO_RELAUNCH``);
* the ``session/update`` kinds, usage/stats, stopReasons and agent -> client requests seen.

The probe answers ``fs/*`` and ``terminal/*`` requests itself (it advertises both). Known bugs
of the pinned versions (Gemini CLI 0.61.0: new files through ``fs/read_text_file`` errors,
``session/load`` in the minute of creation) are reported as KNOWN and do not fail the run; see
``tests/e2e/FACTS.md`` section z for what the records showed.

Usage (after ``bash tests/e2e/install-acp.sh``)::

    python3 tests/e2e/acp_probe.py [--agent opencode|gemini] [--quick] [--netns] [--json FILE]

``--quick`` skips the wait for the minute boundary; ``--netns`` re-runs the probe inside
``unshare -n`` (loopback only; needs root) to prove nothing needs the network; ``--json`` writes
every record (default ``target/acp-agents/probe-<agent>.json``; with both agents FILE gets a
``-<agent>`` suffix); ``--keep`` keeps the scratch dirs (``<tmp>/acp-<agent>-*``, agent stderr in
``logs/``). Exit status 0 when every check held (or failed only by a known bug), 1 otherwise.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from fake_openai import FakeModel  # noqa: E402

OPENCODE_VERSION = os.environ.get("OPENCODE_VERSION", "1.18.33")
GEMINI_VERSION = os.environ.get("GEMINI_CLI_VERSION", "0.61.0")
AGENTS_DIR = os.path.join(ROOT, "target", "acp-agents")
GEMINI_MODEL = "gemini-2.5-flash"


def now() -> float:
    return time.monotonic()


# ---------------------------------------------------------------------------------------------
# the ACP client
# ---------------------------------------------------------------------------------------------

class RpcError(Exception):
    def __init__(self, error: Dict[str, Any]):
        super().__init__(json.dumps(error))
        self.error = error


class Pending:
    def __init__(self, method: str):
        self.method = method
        self.event = threading.Event()
        self.result: Any = None
        self.error: Optional[Dict[str, Any]] = None
        self.sent = now()
        self.done_at: Optional[float] = None

    def wait(self, timeout: float) -> Any:
        if not self.event.wait(timeout):
            raise TimeoutError("%s: no answer in %.0f s" % (self.method, timeout))
        if self.error is not None:
            raise RpcError(self.error)
        return self.result

    @property
    def elapsed(self) -> float:
        return (self.done_at or now()) - self.sent


class Terminal:
    """One ``terminal/create`` command run for the agent."""

    def __init__(self, params: Dict[str, Any], default_cwd: str):
        argv = [params["command"]] + list(params.get("args") or [])
        env = dict(os.environ)
        for e in params.get("env") or []:
            env[e["name"]] = e["value"]
        shell = not params.get("args") and " " in params["command"]
        self.proc = subprocess.Popen(params["command"] if shell else argv, shell=shell,
                                     cwd=params.get("cwd") or default_cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.limit = params.get("outputByteLimit")
        self.buf = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            self.buf += chunk
            if self.limit and len(self.buf) > self.limit:
                self.buf = self.buf[-self.limit:]

    def status(self) -> Optional[Dict[str, Any]]:
        rc = self.proc.poll()
        if rc is None:
            return None
        return {"exitCode": rc if rc >= 0 else None,
                "signal": signal.Signals(-rc).name if rc < 0 else None}

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Agent:
    """One agent process spoken to over ACP. Agent -> client requests are answered by
    ``handle_*`` methods; ``permission`` decides ``session/request_permission``."""

    def __init__(self, name: str, argv: List[str], env: Dict[str, str], cwd: str,
                 stderr_path: str, missing_file: str = "error"):
        self.name = name
        self.cwd = cwd
        self.missing_file = missing_file  # "error" (-32002) or "empty" ("" content)
        self.spawned = now()
        self.stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr,
                                     start_new_session=True)
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        self.next_id = 0
        self.pending: Dict[Any, Pending] = {}
        self.updates: List[Dict[str, Any]] = []  # {"t", "update", "sessionId"}
        self.incoming: List[Dict[str, Any]] = []  # agent -> client requests: {"t", "method", "params", "reply"}
        self.notes: List[Dict[str, Any]] = []  # other notifications
        self.garbage: List[str] = []
        self.permission: Callable[[Dict[str, Any]], Dict[str, Any]] = lambda p: choose(p, "allow_once")
        self.terminals: Dict[str, Terminal] = {}
        self.exited_at: Optional[float] = None
        self.turn_end = 0  # index in updates just past the last finished turn's updates
        self.between: List[Dict[str, Any]] = []  # updates that came after a turn's answer
        self.reader = threading.Thread(target=self._read, name="acp-" + name, daemon=True)
        self.reader.start()

    # -- wire -----------------------------------------------------------------------------------
    def _send(self, obj: Dict[str, Any]) -> None:
        data = (json.dumps(obj) + "\n").encode()
        with self.wlock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.garbage.append(line[:300])
                continue
            if not isinstance(msg, dict):
                self.garbage.append(line[:300])
                continue
            if "method" in msg and "id" in msg:
                threading.Thread(target=self._serve, args=(msg,), daemon=True).start()
            elif "method" in msg:
                p = msg.get("params") or {}
                if msg["method"] == "session/update":
                    with self.lock:
                        self.updates.append({"t": now(), "sessionId": p.get("sessionId"),
                                             "update": p.get("update") or {}})
                else:
                    with self.lock:
                        self.notes.append({"t": now(), "method": msg["method"], "params": p})
            elif "id" in msg:
                with self.lock:
                    pend = self.pending.pop(msg["id"], None)
                if pend is not None:
                    pend.result = msg.get("result")
                    pend.error = msg.get("error")
                    pend.done_at = now()
                    pend.event.set()
        self.proc.wait()
        self.exited_at = now()
        with self.lock:
            pending, self.pending = list(self.pending.values()), {}
        for pend in pending:
            pend.error = {"code": -1, "message": "agent exited (%s)" % self.proc.returncode}
            pend.done_at = now()
            pend.event.set()

    def start_request(self, method: str, params: Dict[str, Any]) -> Pending:
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            pend = Pending(method)
            self.pending[rid] = pend
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return pend

    def request(self, method: str, params: Dict[str, Any], timeout: float = 60.0) -> Any:
        return self.start_request(method, params).wait(timeout)

    def notify(self, method: str, params: Dict[str, Any]) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    # -- agent -> client ------------------------------------------------------------------------
    def _serve(self, msg: Dict[str, Any]) -> None:
        method, params = msg["method"], msg.get("params") or {}
        rec = {"t": now(), "method": method, "params": params, "reply": None}
        with self.lock:
            self.incoming.append(rec)
        try:
            fn = getattr(self, "handle_" + method.replace("/", "_"), None)
            if fn is None:
                raise RpcError({"code": -32601, "message": "method not found: " + method})
            result = fn(params)
            reply = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
        except RpcError as e:
            reply = {"jsonrpc": "2.0", "id": msg["id"], "error": e.error}
        except Exception as e:  # noqa: BLE001 - report anything to the agent
            reply = {"jsonrpc": "2.0", "id": msg["id"],
                     "error": {"code": -32603, "message": "%s: %s" % (type(e).__name__, e)}}
        rec["reply"] = reply.get("result", reply.get("error"))
        try:
            self._send(reply)
        except (BrokenPipeError, ValueError, OSError):
            pass

    def handle_session_request_permission(self, p):
        return self.permission(p)

    def handle_fs_read_text_file(self, p):
        path = p["path"]
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines(keepends=True)
        except FileNotFoundError:
            if self.missing_file == "empty":
                return {"content": ""}
            raise RpcError({"code": -32002, "message": "Resource not found: " + path,
                            "data": {"uri": "file://" + path}})
        start = max(0, (p.get("line") or 1) - 1)
        end = start + p["limit"] if p.get("limit") else None
        return {"content": "".join(lines[start:end])}

    def handle_fs_write_text_file(self, p):
        os.makedirs(os.path.dirname(p["path"]) or ".", exist_ok=True)
        with open(p["path"], "w", encoding="utf-8") as f:
            f.write(p["content"])
        return None

    def handle_terminal_create(self, p):
        term = Terminal(p, self.cwd)
        tid = "term-%d" % (len(self.terminals) + 1)
        self.terminals[tid] = term
        return {"terminalId": tid}

    def handle_terminal_output(self, p):
        term = self.terminals[p["terminalId"]]
        out = {"output": term.buf.decode("utf-8", "replace"), "truncated": False}
        st = term.status()
        if st is not None:
            out["exitStatus"] = st
        return out

    def handle_terminal_wait_for_exit(self, p):
        term = self.terminals[p["terminalId"]]
        term.proc.wait()
        term.reader.join(timeout=5)
        return term.status()

    def handle_terminal_kill(self, p):
        self.terminals[p["terminalId"]].kill()
        return {}

    def handle_terminal_release(self, p):
        term = self.terminals.pop(p["terminalId"], None)
        if term is not None:
            term.kill()
        return {}

    # -- lifecycle ------------------------------------------------------------------------------
    def updates_since(self, mark: int, session: Optional[str] = None) -> List[Dict[str, Any]]:
        with self.lock:
            ups = self.updates[mark:]
        return [u for u in ups if session is None or u["sessionId"] == session]

    def close_stdin_and_wait(self, timeout: float = 10.0) -> Optional[float]:
        """Close stdin; seconds until the process exited, or None (then SIGTERM, SIGKILL)."""
        t = now()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
            return now() - t
        except subprocess.TimeoutExpired:
            self.terminate()
            return None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def terminate(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.terminate()
        for term in self.terminals.values():
            term.kill()
        self.reader.join(timeout=5)
        self.stderr.close()


def choose(p: Dict[str, Any], kind: str) -> Dict[str, Any]:
    """A permission answer selecting the first option of ``kind`` (allow_once, reject_once...)."""
    for opt in p.get("options") or []:
        if opt.get("kind") == kind:
            return {"outcome": {"outcome": "selected", "optionId": opt["optionId"]}}
    return {"outcome": {"outcome": "cancelled"}}


# ---------------------------------------------------------------------------------------------
# agent set-up
# ---------------------------------------------------------------------------------------------

class Setup:
    """Scratch dirs, env and command line of one agent against one fake API."""

    def __init__(self, agent: str, fake: FakeModel, root: str):
        self.agent = agent
        self.fake = fake
        self.root = root
        self.home = os.path.join(root, "home")
        self.work = os.path.join(root, "work")
        self.canary = os.path.join(root, "canary")
        for d in (self.home, self.work, self.canary):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(self.canary, "alive"), "w") as f:
            f.write("canary\n")
        self.logs = os.path.join(root, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.spawns = 0
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENCODE_", "GEMINI_", "GOOGLE_", "XDG_"))}
        env.update({"HOME": self.home, "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
                    "XDG_DATA_HOME": os.path.join(self.home, ".local", "share"),
                    "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
                    "XDG_STATE_HOME": os.path.join(self.home, ".local", "state")})
        if agent == "opencode":
            cfgdir = os.path.join(root, "occfg")
            os.makedirs(cfgdir, exist_ok=True)
            self.config = {
                "$schema": "https://opencode.ai/config.json",
                "autoupdate": False, "share": "disabled", "enabled_providers": ["fake"],
                "provider": {"fake": {
                    "npm": "@ai-sdk/openai-compatible", "name": "Fake",
                    "options": {"baseURL": fake.openai_url, "apiKey": "fake"},
                    "models": {"fake-model": {"name": "Fake", "tool_call": True,
                                              "limit": {"context": 128000, "output": 8192}}}}},
                "model": "fake/fake-model", "small_model": "fake/fake-model",
                "permission": {"bash": "ask", "edit": "ask"}}
            cfg = os.path.join(cfgdir, "opencode.json")
            with open(cfg, "w") as f:
                json.dump(self.config, f, indent=1)
            env.update({"OPENCODE_CONFIG": cfg, "OPENCODE_DISABLE_AUTOUPDATE": "1",
                        "OPENCODE_DISABLE_SHARE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1",
                        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
                        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1"})
            self.bin = os.path.join(AGENTS_DIR, "opencode-" + OPENCODE_VERSION,
                                    "node_modules", ".bin", "opencode")
            self.argv = [self.bin, "acp", "--print-logs"]
            self.version = OPENCODE_VERSION
        elif agent == "gemini":
            gdir = os.path.join(self.home, ".gemini")
            os.makedirs(gdir, exist_ok=True)
            self.config = {
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
                "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}}
            with open(os.path.join(gdir, "settings.json"), "w") as f:
                json.dump(self.config, f, indent=1)
            # GEMINI_CLI_NO_RELAUNCH: without it the CLI re-launches itself as a child node
            # process (2 processes, ~1.5 s more start-up) and the parent ignores SIGTERM.
            env.update({"GEMINI_API_KEY": "fake", "GOOGLE_GEMINI_BASE_URL": fake.url,
                        "GEMINI_CLI_TRUST_WORKSPACE": "true", "GEMINI_CLI_NO_RELAUNCH": "true"})
            self.bin = os.path.join(AGENTS_DIR, "gemini-" + GEMINI_VERSION,
                                    "node_modules", ".bin", "gemini")
            self.argv = [self.bin, "--acp", "-m", GEMINI_MODEL]
            self.version = GEMINI_VERSION
        else:
            raise SystemExit("unknown agent " + agent)
        if not os.access(self.bin, os.X_OK):
            raise SystemExit("%s not installed: run bash tests/e2e/install-acp.sh" % self.bin)
        self.env = env

    def spawn(self, missing_file: str = "error", drop_env: tuple = ()) -> Agent:
        self.spawns += 1
        env = {k: v for k, v in self.env.items() if k not in drop_env}
        return Agent(self.agent, self.argv, env, self.work,
                     os.path.join(self.logs, "stderr-%d.log" % self.spawns), missing_file)

    def our_pids(self) -> List[int]:
        """Live processes whose environment has our scratch HOME (everything we started)."""
        mark = ("HOME=" + self.home).encode()
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if mark in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
        return out

    def pids_running(self, needle: str) -> List[int]:
        out = []
        for pid in self.our_pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if needle.encode() in f.read().replace(b"\0", b" "):
                        out.append(pid)
            except OSError:
                pass
        return out

    def reap(self) -> List[int]:
        """SIGKILL whatever we started that still runs; the pids killed."""
        pids = [p for p in self.our_pids() if p != os.getpid()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids


# ---------------------------------------------------------------------------------------------
# turns
# ---------------------------------------------------------------------------------------------

def init_params() -> Dict[str, Any]:
    return {"protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": True, "writeTextFile": True},
                                   "terminal": True},
            "clientInfo": {"name": "hotplex-acp-probe", "version": "0.1.0"}}


def text_of(updates: List[Dict[str, Any]], kind: str = "agent_message_chunk") -> str:
    out = []
    for u in updates:
        up = u["update"]
        if up.get("sessionUpdate") == kind:
            c = up.get("content") or {}
            if c.get("type") == "text":
                out.append(c.get("text", ""))
    return "".join(out)


class Turn:
    def __init__(self, agent: Agent, session: str, prompt: str):
        self.agent = agent
        self.session = session
        self.prompt = prompt
        with agent.lock:
            late = agent.updates[agent.turn_end:]
            agent.between.extend(late)
            self.mark = len(agent.updates)
            self.imark = len(agent.incoming)
        self._updates: Optional[List[Dict[str, Any]]] = None
        self._incoming: Optional[List[Dict[str, Any]]] = None
        self.pend = agent.start_request("session/prompt", {
            "sessionId": session, "prompt": [{"type": "text", "text": prompt}]})
        self.result: Any = None
        self.error: Optional[Dict[str, Any]] = None

    def wait(self, timeout: float = 60.0) -> "Turn":
        try:
            self.result = self.pend.wait(timeout)
        except RpcError as e:
            self.error = e.error
        # A turn's updates are those before its answer (later ones are counted as between).
        done = self.pend.done_at or now()
        with self.agent.lock:
            mine = [u for u in self.agent.updates[self.mark:] if u["t"] <= done]
            self.agent.turn_end = self.mark + len(mine)
        self._updates = [u for u in mine if u["sessionId"] == self.session]
        with self.agent.lock:
            self._incoming = [r for r in self.agent.incoming[self.imark:] if r["t"] <= done]
        return self

    @property
    def seconds(self) -> float:
        return self.pend.elapsed

    @property
    def stop(self) -> Optional[str]:
        return (self.result or {}).get("stopReason") if isinstance(self.result, dict) else None

    @property
    def updates(self) -> List[Dict[str, Any]]:
        if self._updates is not None:
            return self._updates
        return self.agent.updates_since(self.mark, self.session)

    @property
    def text(self) -> str:
        return text_of(self.updates)

    @property
    def incoming(self) -> List[Dict[str, Any]]:
        if self._incoming is not None:
            return self._incoming
        with self.agent.lock:
            return list(self.agent.incoming[self.imark:])

    def wait_update(self, pred, timeout: float) -> bool:
        deadline = now() + timeout
        while now() < deadline:
            if any(pred(u["update"]) for u in self.updates):
                return True
            if self.pend.event.is_set():
                return False
            time.sleep(0.02)
        return False


def turn(agent: Agent, session: str, prompt: str, timeout: float = 60.0) -> Turn:
    return Turn(agent, session, prompt).wait(timeout)


def open_session(setup: Setup, missing_file: str = "error", drop_env: tuple = ()):
    """Spawn, initialize, session/new: (agent, session id, timings, init result, new result)."""
    agent = setup.spawn(missing_file, drop_env)
    p = agent.start_request("initialize", init_params())
    init = p.wait(90)
    t_init = now() - agent.spawned
    p2 = agent.start_request("session/new", {"cwd": setup.work, "mcpServers": []})
    new = p2.wait(60)
    return agent, new["sessionId"], {"initialize": t_init, "session_new": p2.elapsed}, init, new


# ---------------------------------------------------------------------------------------------
# the probe
# ---------------------------------------------------------------------------------------------

class Probe:
    def __init__(self, agent: str, quick: bool, keep: bool):
        self.agent = agent
        self.quick = quick
        self.keep = keep
        self.fake = FakeModel().start()
        self.root = tempfile.mkdtemp(prefix="acp-%s-" % agent)
        self.setup = Setup(agent, self.fake, self.root)
        self.rec: Dict[str, Any] = {"agent": agent, "version": self.setup.version,
                                    "argv": self.setup.argv, "config": self.setup.config,
                                    "env": {k: v for k, v in self.setup.env.items()
                                            if k.startswith(("OPENCODE_", "GEMINI_", "GOOGLE_",
                                                             "XDG_", "HOME", "IS_SANDBOX"))},
                                    "checks": {}, "figures": {}, "samples": {}}
        self.agents: List[Agent] = []
        self.update_kinds: Dict[str, int] = {}
        self.stop_reasons: Dict[str, int] = {}
        self.methods: Dict[str, int] = {}
        self.between_kinds: Dict[str, int] = {}  # updates outside any prompt (new, load, late)

    # -- bookkeeping ----------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print("[%s] %s" % (self.agent, msg), flush=True)

    def check(self, name: str, ok: bool, detail: Any = "", known: Optional[str] = None) -> bool:
        """Record a check. ``known``: a known bug of this agent version that makes it fail;
        then a failure is reported as KNOWN (not a probe failure) and a pass as news."""
        status = "ok  " if ok else ("KNOWN" if known else "FAIL")
        if ok and known:
            status = "ok (known bug gone?)"
        self.rec["checks"][name] = {"ok": bool(ok) or bool(known), "held": bool(ok),
                                    "known_bug": known, "detail": detail}
        self.log("%s %s%s%s" % (status, name, " [%s]" % known if known and not ok else "",
                                (": %s" % detail) if detail != "" else ""))
        return ok

    def known(self, bug: str) -> Optional[str]:
        """The bug, when this agent version is known to have it (see FACTS.md, section z)."""
        bugs = {"gemini": {"new files need \"\" for a missing file",
                           "no session/load in the minute of creation"}}
        return bug if bug in bugs.get(self.agent, set()) else None

    def fig(self, name: str, value: Any) -> None:
        self.rec["figures"][name] = value

    def sample(self, name: str, value: Any) -> None:
        """Keep the first non-empty value recorded under ``name``."""
        if value not in (None, [], {}, "") and name not in self.rec["samples"]:
            self.rec["samples"][name] = value

    def spawn_session(self, missing_file: str = "error", drop_env: tuple = ()):
        agent, sid, times, init, new = open_session(self.setup, missing_file, drop_env)
        self.agents.append(agent)
        return agent, sid, times, init, new

    def note_turn(self, t: Turn) -> None:
        if t.stop:
            self.stop_reasons[t.stop] = self.stop_reasons.get(t.stop, 0) + 1

    def finish_agent(self, agent: Agent) -> None:
        for u in agent.updates:
            k = u["update"].get("sessionUpdate", "?")
            self.update_kinds[k] = self.update_kinds.get(k, 0) + 1
        for r in agent.incoming:
            self.methods[r["method"]] = self.methods.get(r["method"], 0) + 1
        with agent.lock:
            agent.between.extend(agent.updates[agent.turn_end:])
        for u in agent.between:
            k = u["update"].get("sessionUpdate", "?")
            self.between_kinds[k] = self.between_kinds.get(k, 0) + 1
        if agent.garbage:
            self.sample("stdout_garbage", agent.garbage[:5])
        if agent.notes:
            self.sample("other_notifications", agent.notes[:5])

    # -- scenarios ------------------------------------------------------------------------------
    def run(self) -> bool:
        self.log("%s %s, fake API %s, scratch %s" % (self.agent, self.setup.version,
                                                     self.fake.url, self.root))
        self.rec["loadavg_start"] = os.getloadavg()
        self.rec["cpus"] = os.cpu_count()
        try:
            self.main_session()
            self.resume()
            self.concurrent()
            self.signals()
        finally:
            for a in self.agents:
                a.close()
                self.finish_agent(a)
            self.rec["loadavg_end"] = os.getloadavg()
            left = self.setup.reap()
            self.rec["leftover_processes_killed"] = len(left)
            self.fake.stop()
            self.rec["update_kinds"] = self.update_kinds
            self.rec["stop_reasons"] = self.stop_reasons
            self.rec["updates_outside_turns"] = self.between_kinds
            self.rec["client_methods_called"] = self.methods
            self.rec["fake_counts"] = self.fake.counts()
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
        return all(c["ok"] for c in self.rec["checks"].values())

    def main_session(self) -> None:
        fake, setup = self.fake, self.setup
        agent, sid, times, init, new = self.spawn_session()
        self.rec["initialize_result"] = init
        new_done = now()
        self.rec["session_new_result"] = new
        self.fig("initialize_s", round(times["initialize"], 3))
        self.fig("session_new_s", round(times["session_new"], 3))
        self.log("initialize %.3f s, session/new %.3f s, session %s" % (
            times["initialize"], times["session_new"], sid))
        self.check("loadSession advertised",
                   bool((init.get("agentCapabilities") or {}).get("loadSession")),
                   init.get("agentCapabilities"))

        # first turn and hot turns
        before = fake.requests
        t1 = turn(agent, sid, "first turn")
        self.note_turn(t1)
        self.fig("turn1_s", round(t1.seconds, 3))
        self.fig("spawn_to_first_answer_s", round(now() - agent.spawned, 3))
        self.fig("turn1_model_requests", fake.requests - before)
        self.rec["turn1_result"] = t1.result
        with agent.lock:
            first = agent.updates[:8]
        self.rec["first_updates"] = [
            {"kind": u["update"].get("sessionUpdate"),
             "when": "after session/new, before the first prompt" if u["t"] < t1.pend.sent
             else ("during the first prompt" if u["t"] <= t1.pend.done_at else "later"),
             "ms_after_session_new": round((u["t"] - new_done) * 1000)} for u in first]
        self.sample("available_commands_update", next(
            (u["update"] for u in first
             if u["update"].get("sessionUpdate") == "available_commands_update"), None))
        self.check("turn 1 answers", t1.text == "echo: first turn" and t1.stop == "end_turn",
                   {"text": t1.text, "stop": t1.stop, "error": t1.error})
        hots, ok = [], True
        before = fake.requests
        for k in range(1, 10):
            t = turn(agent, sid, "hot %d" % k)
            self.note_turn(t)
            hots.append(t.seconds)
            ok = ok and t.text == "echo: hot %d" % k and t.stop == "end_turn"
        self.fig("hot_turn_median_s", round(statistics.median(hots), 4))
        self.fig("hot_turn_min_max_s", [round(min(hots), 4), round(max(hots), 4)])
        self.fig("hot_turn_model_requests", (fake.requests - before) / 9.0)
        self.check("9 hot turns answer", ok)
        self.sample("turn_updates_hot", [u["update"] for u in t.updates])
        self.sample("prompt_result_hot", t.result)

        # reasoning and a plan (todo tool)
        t = turn(agent, sid, "THINK pondering deeply\nhello think")
        self.note_turn(t)
        self.sample("thought_updates", [u["update"] for u in t.updates
                                        if u["update"].get("sessionUpdate") == "agent_thought_chunk"])
        # (Gemini CLI formats a thought as "**<subject>**\n<text>": here "****\npondering deeply")
        self.check("THINK gives thought chunks", text_of(t.updates, "agent_thought_chunk")
                   .endswith("pondering deeply") and t.text == "echo: hello think",
                   {"thought": text_of(t.updates, "agent_thought_chunk"), "text": t.text,
                    "kinds": sorted({u["update"].get("sessionUpdate") for u in t.updates})})
        todo = ('todowrite {"todos":[{"content":"step one","status":"in_progress",'
                '"priority":"high"},{"content":"step two","status":"pending",'
                '"priority":"low"}]}') if self.agent == "opencode" else (
                'write_todos {"todos":[{"description":"step one","status":"in_progress"},'
                '{"description":"step two","status":"pending"}]}')
        t = turn(agent, sid, "CALLTOOL " + todo)
        self.note_turn(t)
        plans = [u["update"] for u in t.updates if u["update"].get("sessionUpdate") == "plan"]
        self.sample("plan_updates", plans)
        self.sample("tool_updates_todo", [u["update"] for u in t.updates
                                          if u["update"].get("sessionUpdate", "").startswith("tool_call")])
        self.rec["todo_turn"] = {"kinds": sorted({u["update"].get("sessionUpdate") for u in t.updates}),
                                 "plan_updates": len(plans),
                                 "asked": len([r for r in t.incoming
                                               if r["method"] == "session/request_permission"]),
                                 "text": t.text[:200], "stop": t.stop}
        # Neither pinned agent sends `plan` updates for its todo tool (a fact, not a check).
        self.log("info todo tool: %s" % self.rec["todo_turn"])
        self.check("todo tool runs", t.stop == "end_turn" and "step one" in t.text,
                   self.rec["todo_turn"])

        # RUNTOOL echo hi: allow_once
        agent.permission = lambda p: choose(p, "allow_once")
        t = turn(agent, sid, "RUNTOOL echo hi")
        self.note_turn(t)
        perms = [r for r in t.incoming if r["method"] == "session/request_permission"]
        self.sample("permission_echo", perms[0]["params"] if perms else None)
        self.sample("tool_updates_echo", [u["update"] for u in t.updates
                                          if u["update"].get("sessionUpdate", "").startswith("tool_call")])
        self.rec["echo_asked_permission"] = bool(perms)
        self.sample("prompt_result_tool", t.result)
        self.sample("usage_updates_tool", [u["update"] for u in t.updates
                                           if u["update"].get("sessionUpdate") == "usage_update"])
        self.rec["echo_client_methods"] = [r["method"] for r in t.incoming]
        self.check("RUNTOOL echo hi runs", "hi" in t.text and t.stop == "end_turn",
                   {"asked": bool(perms), "text": t.text[:200], "stop": t.stop,
                    "client_methods": [r["method"] for r in t.incoming]})

        # RUNTOOL rm -rf canary: reject_once
        agent.permission = lambda p: choose(p, "reject_once")
        before = fake.requests
        t = turn(agent, sid, "RUNTOOL rm -rf %s" % setup.canary)
        self.note_turn(t)
        perms = [r for r in t.incoming if r["method"] == "session/request_permission"]
        self.sample("permission_rm", perms[0]["params"] if perms else None)
        self.sample("tool_updates_rm", [u["update"] for u in t.updates
                                        if u["update"].get("sessionUpdate", "").startswith("tool_call")])
        self.rec["rm_result"] = {"stop": t.stop, "text": t.text, "error": t.error,
                                 "model_requests": fake.requests - before}
        self.check("rm -rf asked and rejected; canary survives",
                   bool(perms) and os.path.exists(os.path.join(setup.canary, "alive")),
                   {"asked": bool(perms), "stop": t.stop, "text": t.text[:200]})

        # the same inside the workdir (rejected), and a harmless command on a path outside
        # the workdir allowed: every permission request of the turn is recorded
        inside = os.path.join(setup.work, "canary-in")
        os.makedirs(inside, exist_ok=True)
        t = turn(agent, sid, "RUNTOOL rm -rf %s" % inside)
        self.note_turn(t)
        perms = [r for r in t.incoming if r["method"] == "session/request_permission"]
        self.sample("permission_rm_inside", perms[0]["params"] if perms else None)
        self.check("rm -rf inside the workdir asked and rejected; dir survives",
                   bool(perms) and os.path.isdir(inside),
                   {"asked": len(perms), "stop": t.stop, "text": t.text[:200]})
        agent.permission = lambda p: choose(p, "allow_once")
        touched = os.path.join(setup.canary, "touched")
        t = turn(agent, sid, "RUNTOOL touch %s" % touched)
        self.note_turn(t)
        perms = [r for r in t.incoming if r["method"] == "session/request_permission"]
        self.sample("permissions_outside_allowed", [r["params"] for r in perms])
        self.sample("tool_updates_asked_allowed", [
            u["update"] for u in t.updates
            if u["update"].get("sessionUpdate", "").startswith("tool_call")])
        self.rec["outside_allowed"] = {
            "permission_requests": len(perms),
            "kinds": [r["params"]["toolCall"].get("kind") for r in perms],
            "text": t.text[:200]}
        self.check("touch outside the workdir allowed runs", os.path.exists(touched),
                   self.rec["outside_allowed"])

        # a long compound command (rejected): is the whole command in the request?
        agent.permission = lambda p: choose(p, "reject_once")
        long_cmd = "ls %s && echo %s | wc -c" % (setup.work, "x" * 300)
        t = turn(agent, sid, "RUNTOOL " + long_cmd)
        self.note_turn(t)
        perms = [r["params"] for r in t.incoming if r["method"] == "session/request_permission"]
        tc = perms[0]["toolCall"] if perms else {}
        where = [k for k, v in (("title", tc.get("title")),
                                ("rawInput.command", (tc.get("rawInput") or {}).get("command")))
                 if v == long_cmd]
        self.rec["long_command"] = {"asked": len(perms), "whole_command_in": where,
                                    "title_len": len(tc.get("title") or ""),
                                    "command_len": len(long_cmd)}
        self.check("long command asked, whole command in the request", bool(where),
                   self.rec["long_command"])

        # WRITE a new file: allow_once (spec error for a missing file first)
        agent.permission = lambda p: choose(p, "allow_once")
        target = os.path.join(setup.work, "new.txt")
        t = turn(agent, sid, "WRITE %s hello from write" % target)
        self.note_turn(t)
        perms = [r for r in t.incoming if r["method"] == "session/request_permission"]
        self.sample("permission_write", perms[0]["params"] if perms else None)
        self.sample("tool_updates_write", [u["update"] for u in t.updates
                                           if u["update"].get("sessionUpdate", "").startswith("tool_call")])
        self.sample("client_requests_write", [{"method": r["method"], "params": r["params"],
                                               "reply": r["reply"]} for r in t.incoming])
        wrote = os.path.exists(target) and open(target).read() == "hello from write"
        self.rec["write_new_file_spec_error"] = {"written": wrote, "text": t.text[:300],
                                                 "stop": t.stop,
                                                 "client_methods": [r["method"] for r in t.incoming]}
        self.check("WRITE new file (missing file -> -32002)", wrote,
                   self.rec["write_new_file_spec_error"],
                   known=self.known("new files need \"\" for a missing file"))
        if not wrote:
            agent.missing_file = "empty"
            target2 = os.path.join(setup.work, "new2.txt")
            t = turn(agent, sid, "WRITE %s hello again" % target2)
            self.note_turn(t)
            wrote2 = os.path.exists(target2) and open(target2).read() == "hello again"
            perms = [r for r in t.incoming if r["method"] == "session/request_permission"]
            self.sample("permission_write", perms[0]["params"] if perms else None)
            self.sample("tool_updates_write_empty_workaround", [
                u["update"] for u in t.updates
                if u["update"].get("sessionUpdate", "").startswith("tool_call")])
            self.sample("client_requests_write_empty_workaround", [
                {"method": r["method"], "params": r["params"], "reply": r["reply"]}
                for r in t.incoming])
            self.rec["write_new_file_empty_workaround"] = {
                "written": wrote2, "text": t.text[:300], "stop": t.stop,
                "client_methods": [r["method"] for r in t.incoming]}
            self.check("WRITE new file (missing file -> \"\")", wrote2,
                       self.rec["write_new_file_empty_workaround"])
            agent.missing_file = "error"
        # overwrite an existing file
        with open(os.path.join(setup.work, "old.txt"), "w") as f:
            f.write("old\n")
        t = turn(agent, sid, "WRITE %s replaced" % os.path.join(setup.work, "old.txt"))
        self.note_turn(t)
        self.check("WRITE existing file", open(os.path.join(setup.work, "old.txt")).read()
                   == "replaced", {"client_methods": [r["method"] for r in t.incoming],
                                   "text": t.text[:200]})

        # cancel a slow model answer
        abandoned = fake.abandoned
        t = Turn(agent, sid, "SLOW 10")
        got_chunk = t.wait_update(lambda u: u.get("sessionUpdate") == "agent_message_chunk", 8)
        time.sleep(0.5)
        tc = now()
        agent.notify("session/cancel", {"sessionId": sid})
        t.wait(30)
        self.note_turn(t)
        time.sleep(0.3)
        self.fig("cancel_slow_model_s", round((t.pend.done_at or now()) - tc, 3))
        self.fig("cancel_slow_prompt_to_stop_s", round(t.seconds, 3))
        self.rec["cancel_slow"] = {"stop": t.stop, "error": t.error, "chunk_before": got_chunk,
                                   "http_aborted": fake.abandoned > abandoned,
                                   "text": t.text[:100]}
        self.check("SLOW turn cancelled", t.stop == "cancelled", self.rec["cancel_slow"])
        t = turn(agent, sid, "after cancel")
        self.note_turn(t)
        self.check("turn after cancel", t.text == "echo: after cancel" and t.stop == "end_turn",
                   {"text": t.text, "stop": t.stop})

        # cancel a running tool (sleep)
        agent.permission = lambda p: choose(p, "allow_once")
        needle = "sleep 37.5"
        t = Turn(agent, sid, "RUNTOOL " + needle)
        deadline = now() + 20
        while now() < deadline and not setup.pids_running(needle) and not t.pend.event.is_set():
            time.sleep(0.05)
        running = bool(setup.pids_running(needle))
        time.sleep(0.5)
        tc = now()
        agent.notify("session/cancel", {"sessionId": sid})
        t.wait(30)
        self.note_turn(t)
        time.sleep(1.0)
        left = setup.pids_running(needle)
        self.fig("cancel_running_tool_s", round((t.pend.done_at or now()) - tc, 3))
        self.rec["cancel_tool"] = {"stop": t.stop, "error": t.error, "tool_was_running": running,
                                   "tool_still_running_1s_later": bool(left),
                                   "tool_updates": [u["update"] for u in t.updates if u["update"].get(
                                       "sessionUpdate", "").startswith("tool_call")]}
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        self.check("running tool cancelled and killed",
                   t.stop == "cancelled" and running and not left,
                   {k: v for k, v in self.rec["cancel_tool"].items() if k != "tool_updates"})
        t = turn(agent, sid, "after tool cancel")
        self.note_turn(t)
        self.check("turn after tool cancel", t.text == "echo: after tool cancel",
                   {"text": t.text, "stop": t.stop})

        # allow_always: what does it change?
        agent.permission = lambda p: choose(p, "allow_always")
        t = turn(agent, sid, "RUNTOOL ls %s && echo one" % setup.work)
        self.note_turn(t)
        first = [r["params"] for r in t.incoming if r["method"] == "session/request_permission"]
        ups1 = [u["update"] for u in t.updates]
        agent.permission = lambda p: choose(p, "reject_once")
        t2 = turn(agent, sid, "RUNTOOL ls %s && echo two" % setup.work)
        self.note_turn(t2)
        t3 = turn(agent, sid, "WRITE %s after always" % os.path.join(setup.work, "old.txt"))
        self.note_turn(t3)
        t4 = turn(agent, sid, "RUNTOOL rm -rf %s" % inside)
        self.note_turn(t4)
        asked = lambda tt: len([r for r in tt.incoming  # noqa: E731
                                if r["method"] == "session/request_permission"])
        self.rec["allow_always"] = {
            "asked_first": len(first), "text_first": t.text[:200],
            "mode_updates": [u for u in ups1 + [u["update"] for u in t2.updates + t3.updates]
                             if u.get("sessionUpdate") == "current_mode_update"],
            "same_command_other_arg_asked": asked(t2), "text_same_command": t2.text[:200],
            "write_asked_after": asked(t3), "write_result": t3.text[:200],
            "rm_asked_after": asked(t4), "rm_dir_survived": os.path.isdir(inside),
            "files_in_workdir": sorted(os.listdir(setup.work))}
        # allow_always on a write, then another write (rejected if asked)
        agent.permission = lambda p: choose(p, "allow_always")
        t5 = turn(agent, sid, "WRITE %s always one" % os.path.join(setup.work, "old.txt"))
        self.note_turn(t5)
        agent.permission = lambda p: choose(p, "reject_once")
        t6 = turn(agent, sid, "WRITE %s always two" % os.path.join(setup.work, "old.txt"))
        self.note_turn(t6)
        t7 = turn(agent, sid, "RUNTOOL rm -rf %s" % inside)
        self.note_turn(t7)
        self.rec["allow_always"].update({
            "write_always_asked": asked(t5), "write_again_asked": asked(t6),
            "old_txt_now": open(os.path.join(setup.work, "old.txt")).read(),
            "mode_updates_after_write_always": [
                u["update"] for u in t5.updates + t6.updates
                if u["update"].get("sessionUpdate") == "current_mode_update"],
            "model_saw_MODE_UPDATE": fake.saw("MODE_UPDATE"),
            "updates_mentioning_MODE_UPDATE_or_autoEdit": [
                {"turn": n, "update": u["update"]}
                for n, tt in (("ls one (allow_always)", t), ("ls two", t2), ("write", t3),
                              ("rm", t4), ("write (allow_always)", t5), ("write again", t6),
                              ("rm again", t7)) for u in tt.updates
                if u["update"].get("sessionUpdate") != "available_commands_update"
                and ("MODE_UPDATE" in json.dumps(u["update"])
                     or "autoEdit" in json.dumps(u["update"]))][:4],
            "rm_asked_after_write_always": asked(t7), "rm_dir_survived": os.path.isdir(inside)})
        self.check("allow_always recorded (rm still asked)",
                   asked(t4) > 0 and asked(t7) > 0 and os.path.isdir(inside),
                   self.rec["allow_always"])

        # exit on stdin EOF
        dt = agent.close_stdin_and_wait(10)
        self.fig("exit_on_stdin_eof_s", None if dt is None else round(dt, 3))
        self.check("exits on stdin EOF", dt is not None, dt)

    def _killed_session(self):
        """A session with two turns whose process is SIGKILLed mid-turn; (session id,
        created wall time)."""
        agent, sid, _, _, _ = self.spawn_session()
        created = time.time()
        for p in ("remember alpha", "remember beta"):
            t = turn(agent, sid, p)
            self.note_turn(t)
        t = Turn(agent, sid, "SLOW 10")
        t.wait_update(lambda u: u.get("sessionUpdate") == "agent_message_chunk", 8)
        time.sleep(0.3)
        agent.kill()
        t.wait(5)
        self.rec.setdefault("killed_turn", {"error": t.error, "result": t.result})
        return sid, created

    def _load(self, sid: str, created: float, label: str) -> bool:
        agent = self.setup.spawn()
        self.agents.append(agent)
        t0 = now()
        agent.request("initialize", init_params(), 90)
        mark = len(agent.updates)
        p = agent.start_request("session/load", {"sessionId": sid, "cwd": self.setup.work,
                                                 "mcpServers": []})
        try:
            res, err = p.wait(60), None
        except RpcError as e:
            res, err = None, e.error
        replay = agent.updates_since(mark)
        info: Dict[str, Any] = {
            "same_minute_as_creation": time.strftime("%H:%M", time.localtime(created))
            == time.strftime("%H:%M", time.localtime(time.time())),
            "load_s": round(p.elapsed, 3), "spawn_to_loaded_s": round(now() - t0, 3),
            "result": res, "error": err, "replayed_updates": len(replay),
            "replayed_kinds": sorted({u["update"].get("sessionUpdate") for u in replay}),
            "replayed_user_text": text_of(replay, "user_message_chunk")[:300]}
        if err is None:
            t = turn(agent, sid, "RECALL")
            self.note_turn(t)
            info["recall"] = t.text
        self.rec["load_" + label] = info
        ok = err is None and "remember alpha" in info.get("recall", "")
        self.check("session/load %s" % label, ok, info,
                   known=self.known("no session/load in the minute of creation")
                   if info["same_minute_as_creation"] else None)
        agent.close_stdin_and_wait(5)
        return ok

    def resume(self) -> None:
        sid, created = self._killed_session()
        self._load(sid, created, "at once")
        if self.quick:
            return
        sid, created = self._killed_session()
        wait = 61 - time.localtime().tm_sec
        self.log("waiting %d s for the next wall-clock minute" % wait)
        time.sleep(wait)
        self._load(sid, created, "after the minute boundary")

    def concurrent(self) -> None:
        n = 4
        out: List[Dict[str, Any]] = [{} for _ in range(n)]

        def one(i: int) -> None:
            try:
                t0 = now()
                agent, sid, times, _, _ = self.spawn_session()
                t1 = turn(agent, sid, "conc %d" % i)
                t2 = turn(agent, sid, "conc %d again" % i)
                out[i] = {"ok": t1.text == "echo: conc %d" % i
                          and t2.text == "echo: conc %d again" % i,
                          "spawn_to_first_answer_s": round(t1.pend.done_at - t0, 3),
                          "turn1_s": round(t1.seconds, 3), "turn2_s": round(t2.seconds, 3),
                          "texts": [t1.text, t2.text], "stops": [t1.stop, t2.stop],
                          "errors": [t1.error, t2.error]}
                agent.close_stdin_and_wait(5)
            except Exception as e:  # noqa: BLE001
                out[i] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}

        t0 = now()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(180)
        wall = now() - t0
        self.fig("concurrent_4_wall_s", round(wall, 3))
        self.fig("concurrent_4_spawn_to_first_answer_s",
                 [o.get("spawn_to_first_answer_s") for o in out])
        self.check("4 sessions on 4 processes at once", all(o.get("ok") for o in out), out)


    def signals(self) -> None:
        """Processes per agent and SIGTERM to the agent's pid alone (not its group), idle after
        a turn; Gemini CLI also without GEMINI_CLI_NO_RELAUNCH."""
        variants = [("env as above", ())]
        if self.agent == "gemini":
            variants.append(("without GEMINI_CLI_NO_RELAUNCH", ("GEMINI_CLI_NO_RELAUNCH",)))
        out = {}
        for label, drop in variants:
            agent, sid, times, _, _ = self.spawn_session(drop_env=drop)
            t = turn(agent, sid, "signals")
            self.note_turn(t)
            procs = [p for p in self.setup.our_pids() if p != os.getpid()]
            tt = now()
            os.kill(agent.proc.pid, signal.SIGTERM)
            try:
                agent.proc.wait(5)
                dt: Optional[float] = round(now() - tt, 3)
            except subprocess.TimeoutExpired:
                dt = None
            time.sleep(0.3)
            left = [p for p in self.setup.our_pids() if p != os.getpid()]
            out[label] = {"processes": len(procs), "initialize_s": round(times["initialize"], 3),
                          "sigterm_pid_exit_s": dt, "processes_left": len(left),
                          "returncode": agent.proc.returncode}
            agent.close()
            self.setup.reap()
        self.rec["signals"] = out
        self.log("info processes and SIGTERM: %s" % out)
        first = out["env as above"]
        self.check("one process that exits on SIGTERM", first["processes"] == 1
                   and first["sigterm_pid_exit_s"] is not None and not first["processes_left"],
                   first)


# ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agent", choices=("opencode", "gemini"), action="append",
                    help="probe only this agent (repeatable; default both)")
    ap.add_argument("--quick", action="store_true", help="skip the minute-boundary load")
    ap.add_argument("--netns", action="store_true", help="run inside unshare -n (loopback only)")
    ap.add_argument("--keep", action="store_true", help="keep scratch dirs")
    ap.add_argument("--json", help="write records here (default target/acp-agents/probe-<agent>.json)")
    args = ap.parse_args(argv)
    if args.netns and os.environ.get("ACP_PROBE_IN_NETNS") != "1":
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--netns"]
        script = "ip link set lo up && exec %s" % " ".join(
            shlex.quote(a) for a in [sys.executable, os.path.abspath(__file__)] + rest)
        env = dict(os.environ, ACP_PROBE_IN_NETNS="1")
        return subprocess.call(["unshare", "-n", "sh", "-c", script], env=env)
    agents = args.agent or ["opencode", "gemini"]
    ok_all = True
    for name in agents:
        probe = Probe(name, args.quick, args.keep)
        t0 = now()
        ok = probe.run()
        probe.rec["probe_seconds"] = round(now() - t0, 1)
        probe.rec["in_netns"] = os.environ.get("ACP_PROBE_IN_NETNS") == "1"
        path = args.json if (args.json and len(agents) == 1) else (
            args.json.replace(".json", "-%s.json" % name) if args.json else
            os.path.join(AGENTS_DIR, "probe-%s.json" % name))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            json.dump(probe.rec, f, indent=1, default=str)
        print("\n== %s %s: %s in %.0f s (records: %s)" % (
            name, probe.setup.version, "all checks held" if ok else "SOME CHECKS FAILED",
            probe.rec["probe_seconds"], path))
        for k, v in probe.rec["figures"].items():
            print("   %-40s %s" % (k, v))
        print("   %-40s %s" % ("session/update kinds", probe.update_kinds))
        print("   %-40s %s" % ("  outside prompts (new, load replay)", probe.between_kinds))
        print("   %-40s %s" % ("stopReasons", probe.stop_reasons))
        print("   %-40s %s" % ("client methods called by the agent", probe.methods))
        print("   %-40s %s" % ("fake API requests per path", probe.rec["fake_counts"]))
        ok_all = ok_all and ok
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
