#!/usr/bin/env python3
"""Probe the real Claude Code CLI against fake_anthropic.py and record the facts hotplex needs.

Usage:
    python3 tests/e2e/probe.py [PATH_TO_CLAUDE] [--only a,b,...] [--json FILE] [--timeout S]

Without PATH_TO_CLAUDE it uses tests/e2e/.claude-cli/node_modules/.bin/claude (run
tests/e2e/install-claude.sh first; CLAUDE_BIN also works). Each probe runs the CLI in a
private temp HOME / CLAUDE_CONFIG_DIR and a temp working directory, and is time-boxed. Prints
every observation as JSON, stores them in tests/e2e/.probe-results.json (git-ignored), and ends
with a one-line-per-question SUMMARY. tests/e2e/FACTS.md is the hand-written interpretation of
a run; re-run this after changing the pinned CLI version and update FACTS.md if lines differ.

Probes a..l cover the process lifecycle; m..v the control surface (set_model,
set_permission_mode, get_context_usage, mcp_status, unknown subtypes, host hooks, SDK MCP
servers, can_use_tool answers, --fork-session / --resume-session-at, --max-turns, --json-schema,
images, --max-budget-usd). Those use `Host`, which answers the CLI's control requests as an SDK
would. w..x cover interactive turns (issue 19): AskUserQuestion and plan mode's ExitPlanMode,
both answered through can_use_tool (`interactive_host`). Run them against every supported version, e.g.
    python3 tests/e2e/probe.py tests/e2e/.claude-cli-2.1.332/node_modules/.bin/claude --only m,n,o
"""

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_anthropic import FakeAnthropic  # noqa: E402

DEFAULT_CLAUDE = os.path.join(HERE, ".claude-cli", "node_modules", ".bin", "claude")
BASE_ARGS = ["-p", "--input-format", "stream-json", "--output-format", "stream-json",
             "--verbose", "--permission-prompt-tool", "stdio"]


# ---------------------------------------------------------------------------------------------
# harness
# ---------------------------------------------------------------------------------------------

class Sandbox:
    """A private HOME / CLAUDE_CONFIG_DIR and a working directory."""

    def __init__(self, api: FakeAnthropic):
        self.root = tempfile.mkdtemp(prefix="hotplex-probe-")
        self.home = os.path.join(self.root, "home")
        self.config = os.path.join(self.home, ".claude")
        self.cwd = os.path.join(self.root, "work")
        for d in (self.home, self.config, self.cwd):
            os.makedirs(d, exist_ok=True)
        self.api = api

    def env(self) -> Dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "CLAUDE_CONFIG_DIR": self.config,
            "ANTHROPIC_BASE_URL": self.api.url,
            "ANTHROPIC_API_KEY": "sk-test",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "LANG": "C.UTF-8",
        }

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Cli:
    """One claude process; stdout lines are parsed and timestamped by a reader thread."""

    def __init__(self, claude: str, box: Sandbox, extra: List[str] = (), cwd: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None, base: Optional[List[str]] = None):
        self.t0 = time.monotonic()
        args = BASE_ARGS if base is None else base  # `base` replaces BASE_ARGS (e.g. without stdio)
        self.proc = subprocess.Popen([claude] + args + list(extra), cwd=cwd or box.cwd,
                                     env=dict(box.env(), **(env or {})), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.lines: List[Dict[str, Any]] = []  # {"t", "raw", "obj"}
        self.q: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.stderr = b""
        self._cursor = 0
        self._wlock = threading.Lock()
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _read_out(self):
        for raw in self.proc.stdout:
            raw = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            item = {"t": self.now(), "raw": raw, "obj": obj}
            self.lines.append(item)
            self.q.put(item)
        self.q.put({"t": self.now(), "raw": None, "obj": None})  # EOF marker

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def send(self, obj: Dict[str, Any]) -> float:
        with self._wlock:  # answers may come from timer threads (delayed hook answers)
            t = self.now()
            try:
                self.proc.stdin.write((json.dumps(obj) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):  # the process is gone: the probe records that
                pass
            return t

    def user(self, text: str) -> float:
        return self.send({"type": "user", "message": {"role": "user", "content": text}})

    def wait_for(self, pred: Callable[[Dict[str, Any]], bool], timeout: float) -> Optional[Dict[str, Any]]:
        """Next line (after the ones already consumed) whose obj satisfies pred, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                item = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if item["raw"] is None:
                self.q.put(item)  # keep EOF visible
                return None
            if item["obj"] is not None and pred(item["obj"]):
                return item

    def result(self, timeout: float = 30) -> Optional[Dict[str, Any]]:
        return self.wait_for(lambda o: o.get("type") == "result", timeout)

    def turn(self, text: str, timeout: float = 30):
        t = self.user(text)
        r = self.result(timeout)
        return t, r

    def close(self, timeout: float = 10) -> Optional[int]:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        return self.wait(timeout)

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait(5)

    def err_text(self) -> str:
        time.sleep(0.1)
        return self.stderr.decode("utf-8", "replace").strip()


def short(raw: str, n: int = 400) -> str:
    return raw if len(raw) <= n else raw[:n] + "...(%d chars)" % len(raw)


def line_kind(obj: Dict[str, Any]) -> str:
    k = obj.get("type", "?")
    if obj.get("subtype"):
        k += "/" + obj["subtype"]
    if k == "control_request":
        k += "/" + obj.get("request", {}).get("subtype", "?")
    if k == "control_response":
        k += "/" + obj.get("response", {}).get("subtype", "?")
    return k


def observe_startup(claude, box, extra, quiet_wait=4.0, first_line="hello", after_wait=8.0, cwd=None):
    """Start a process, watch it for quiet_wait s with no stdin, then send one user line."""
    cli = Cli(claude, box, extra, cwd=cwd)
    out = {}
    try:
        rc = cli.wait(quiet_wait)
        out["exited_before_stdin"] = rc is not None
        out["lines_before_stdin"] = [short(x["raw"], 3000) for x in cli.lines]
        if rc is None:
            t_send = cli.user(first_line)
            res = cli.result(after_wait)
            rc = cli.wait(0.5 if res else after_wait)
            out["result"] = short(res["raw"], 600) if res else None
            out["result_fields"] = {k: res["obj"].get(k) for k in (
                "subtype", "is_error", "result", "session_id", "errors")} if res else None
            out["lines_after_stdin"] = [
                "%+.3fs %s" % (x["t"] - t_send, short(x["raw"], 300)) for x in cli.lines
                if x["t"] >= t_send]
            if rc is None:
                rc = cli.close(10)
        out["exit_code"] = rc
        out["exit_after_s"] = round(cli.now(), 2)
        out["stderr"] = cli.err_text()
    finally:
        cli.kill()
    return out


# ---------------------------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------------------------

def probe_a(claude, api):
    """usage / total_cost_usd per turn or cumulative; init once per turn."""
    box = Sandbox(api)
    cli = Cli(claude, box)
    try:
        rows = []
        for i, text in enumerate(["turn one", "turn two", "bash: ls"]):
            mark = len(cli.lines)
            _, r = cli.turn(text)
            o = r["obj"] if r else {}
            kinds = [line_kind(x["obj"]) for x in cli.lines[mark:] if x["obj"]]
            rows.append({"prompt": text, "result": o.get("result"), "num_turns": o.get("num_turns"),
                         "usage": {k: o.get("usage", {}).get(k) for k in ("input_tokens", "output_tokens")},
                         "total_cost_usd": o.get("total_cost_usd"),
                         "modelUsage": o.get("modelUsage"),
                         "lines": kinds})
        cli.close()
        return {"turns": rows, "api_requests": api.requests,
                "result_line_example": short(r["raw"], 2000) if r else None}
    finally:
        cli.kill()
        box.cleanup()


def probe_b(claude, api):
    """--session-id fresh: what is printed before the first stdin line; init timing/contents."""
    box = Sandbox(api)
    sid = str(uuid.uuid4())
    cli = Cli(claude, box, ["--session-id", sid])
    try:
        time.sleep(4)
        before = [short(x["raw"]) for x in cli.lines]
        alive = cli.proc.poll() is None
        t_send = cli.user("hello")
        init = cli.wait_for(lambda o: o.get("type") == "system" and o.get("subtype") == "init", 15)
        res = cli.result(15)
        # initialize control request on a second, fresh process, before any user line
        cli.close()
        cli2 = Cli(claude, box, ["--session-id", str(uuid.uuid4())])
        try:
            time.sleep(1.5)
            t_init = cli2.send({"type": "control_request", "request_id": "r1",
                                "request": {"subtype": "initialize", "hooks": None}})
            resp = cli2.wait_for(lambda o: o.get("type") == "control_response", 10)
            time.sleep(1.0)
            after_init = [line_kind(x["obj"]) for x in cli2.lines if x["obj"]]
            _, r2 = cli2.turn("after initialize")
            kinds2 = [line_kind(x["obj"]) for x in cli2.lines if x["obj"]]
            cli2.close()
        finally:
            cli2.kill()
        return {
            "session_id": sid,
            "alive_after_4s_without_stdin": alive,
            "stdout_lines_before_first_stdin_line": before,
            "init_after_user_line_s": round(init["t"] - t_send, 3) if init else None,
            "init_session_id_matches": bool(init and init["obj"].get("session_id") == sid),
            "init_line": init["raw"] if init else None,
            "result_session_id": res["obj"].get("session_id") if res else None,
            "initialize_response_after_s": round(resp["t"] - t_init, 3) if resp else None,
            "initialize_response": short(resp["raw"], 700) if resp else None,
            "lines_after_initialize_before_user": after_init,
            "lines_with_initialize_then_turn": kinds2,
        }
    finally:
        cli.kill()
        box.cleanup()


def probe_c(claude, api):
    """--session-id whose transcript already exists."""
    box = Sandbox(api)
    sid = str(uuid.uuid4())
    try:
        cli = Cli(claude, box, ["--session-id", sid])
        try:
            _, r = cli.turn("first life")
            rc1 = cli.close()
        finally:
            cli.kill()
        second = observe_startup(claude, box, ["--session-id", sid], first_line="second life")
        # an id whose first process got no user line at all (closed stdin at once)
        sid2 = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", sid2])
        try:
            time.sleep(1.0)
            rc_idle = cli.close()
        finally:
            cli.kill()
        idle_files = transcripts(box, sid2)
        reuse_idle = observe_startup(claude, box, ["--session-id", sid2], quiet_wait=2,
                                     first_line="reuse after idle")
        resume_idle_sid = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", resume_idle_sid])
        try:
            time.sleep(1.0)
            cli.close()
        finally:
            cli.kill()
        resume_idle = observe_startup(claude, box, ["--resume", resume_idle_sid], quiet_wait=2)
        # the id is held by a process that is still running (with one turn done)
        sid3 = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", sid3])
        try:
            cli.turn("holder")
            concurrent_sid = observe_startup(claude, box, ["--session-id", sid3], quiet_wait=2)
            concurrent_resume = observe_startup(claude, box, ["--resume", sid3], quiet_wait=2,
                                                first_line="recall")
            _, rh = cli.turn("holder still ok?")
            cli.close()
        finally:
            cli.kill()
        return {"session_id": sid, "first_process_result": r["obj"].get("result") if r else None,
                "first_process_exit": rc1, "second_process": second,
                "no_turn_session_id": sid2, "no_turn_process_exit": rc_idle, "no_turn_transcript_files": idle_files,
                "session_id_reuse_after_no_turn_process": reuse_idle,
                "resume_after_no_turn_process": resume_idle,
                "session_id_while_holder_running": concurrent_sid,
                "resume_while_holder_running": concurrent_resume,
                "holder_after": rh["obj"].get("result") if rh else None}
    finally:
        box.cleanup()


def probe_d(claude, api):
    """--resume of an id with no conversation."""
    box = Sandbox(api)
    try:
        sid = str(uuid.uuid4())
        return {"session_id": sid, "resume": observe_startup(claude, box, ["--resume", sid])}
    finally:
        box.cleanup()


def probe_e(claude, api):
    """--resume after SIGKILL mid-turn, and after clean exit."""
    box = Sandbox(api)
    out = {}
    try:
        # killed mid-turn
        sid = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", sid])
        try:
            _, r = cli.turn("alpha before kill")
            cli.user("sleep: 5")
            time.sleep(1.0)
            os.killpg(cli.proc.pid, signal.SIGKILL)
            rc = cli.wait(5)
        finally:
            cli.kill()
        out["killed"] = {"first_result": r["obj"].get("result") if r else None, "exit_code": rc,
                         "transcript_files": transcripts(box, sid)}
        time.sleep(0.5)
        res_cli = Cli(claude, box, ["--resume", sid])
        try:
            t_start = res_cli.now()
            time.sleep(2)
            before = [short(x["raw"]) for x in res_cli.lines]
            alive = res_cli.proc.poll() is None
            init = None
            r2 = None
            if alive:
                res_cli.user("recall")
                init = res_cli.wait_for(lambda o: o.get("subtype") == "init", 15)
                r2 = res_cli.result(20)
            rc2 = res_cli.close()
            out["resume_after_kill"] = {
                "alive_after_2s": alive, "lines_before_stdin": before,
                "init_session_id": init["obj"].get("session_id") if init else None,
                "same_session_id": bool(init and init["obj"].get("session_id") == sid),
                "recall_result": r2["obj"].get("result") if r2 else None,
                "result_subtype": r2["obj"].get("subtype") if r2 else None,
                "exit_code": rc2, "stderr": res_cli.err_text(),
                "lines": [line_kind(x["obj"]) for x in res_cli.lines if x["obj"]],
                "transcript_files_after": transcripts(box, sid)}
        finally:
            res_cli.kill()

        # clean exit then resume (twice, to see the id stays usable)
        sid2 = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", sid2])
        try:
            cli.turn("one clean")
            cli.turn("two clean")
            rc = cli.close()
        finally:
            cli.kill()
        res_cli = Cli(claude, box, ["--resume", sid2])
        try:
            init = None
            res_cli.user("recall")
            init = res_cli.wait_for(lambda o: o.get("subtype") == "init", 15)
            r3 = res_cli.result(20)
            _, r4 = res_cli.turn("three after resume")
            rc3 = res_cli.close()
        finally:
            res_cli.kill()
        res_cli = Cli(claude, box, ["--resume", sid2])
        try:
            _, r5 = res_cli.turn("recall")
            res_cli.close()
        finally:
            res_cli.kill()
        out["resume_after_clean_exit"] = {
            "first_exit_code": rc,
            "init_session_id_same": bool(init and init["obj"].get("session_id") == sid2),
            "recall_result": r3["obj"].get("result") if r3 else None,
            "total_cost_usd_first_turn_after_resume": r3["obj"].get("total_cost_usd") if r3 else None,
            "usage_first_turn_after_resume": r3["obj"].get("usage", {}).get("input_tokens") if r3 else None,
            "next_turn": r4["obj"].get("result") if r4 else None,
            "exit_code": rc3,
            "second_resume_recall": r5["obj"].get("result") if r5 else None,
            "transcript_files": transcripts(box, sid2)}
        return out
    finally:
        box.cleanup()


def probe_f(claude, api):
    """interrupt during a slow turn."""
    box = Sandbox(api)
    cli = Cli(claude, box)
    try:
        _, r0 = cli.turn("warm up")
        mark = len(cli.lines)
        abandoned0 = api.abandoned
        t_user = cli.user("sleep: 10")
        time.sleep(1.0)
        t_int = cli.send({"type": "control_request", "request_id": "r2",
                          "request": {"subtype": "interrupt"}})
        res = cli.result(15)
        time.sleep(0.3)
        seq = ["%+.3fs %s" % (x["t"] - t_int, short(x["raw"], 700)) for x in cli.lines[mark:]]
        kinds = ["%+.3fs %s" % (x["t"] - t_int, line_kind(x["obj"])) for x in cli.lines[mark:] if x["obj"]]
        alive = cli.proc.poll() is None
        t_next, r2 = cli.turn("after interrupt")
        # interrupt with no turn running
        mark2 = len(cli.lines)
        t_idle = cli.send({"type": "control_request", "request_id": "r3",
                           "request": {"subtype": "interrupt"}})
        idle_resp = cli.wait_for(lambda o: o.get("type") == "control_response", 5)
        time.sleep(0.5)
        idle_lines = [short(x["raw"], 400) for x in cli.lines[mark2:]]
        _, r3 = cli.turn("after idle interrupt")
        rc = cli.close()
        return {
            "sequence_relative_to_interrupt": seq,
            "kinds_relative_to_interrupt": kinds,
            "result_line": res["raw"] if res else None,
            "result_after_interrupt_s": round(res["t"] - t_int, 3) if res else None,
            "result_subtype": res["obj"].get("subtype") if res else None,
            "fake_saw_disconnect": api.abandoned - abandoned0,
            "alive_after": alive,
            "next_turn_result": r2["obj"].get("result") if r2 else None,
            "next_turn_subtype": r2["obj"].get("subtype") if r2 else None,
            "next_turn_s": round(r2["t"] - t_next, 3) if r2 else None,
            "idle_interrupt_lines": idle_lines,
            "turn_after_idle_interrupt": r3["obj"].get("result") if r3 else None,
            "exit_code": rc,
        }
    finally:
        cli.kill()
        box.cleanup()


def probe_g(claude, api):
    """can_use_tool permission round-trip: allow and deny."""
    box = Sandbox(api)
    for d in ("dir_allow", "dir_deny"):
        os.makedirs(os.path.join(box.cwd, d, "sub"), exist_ok=True)
    cli = Cli(claude, box)
    out = {}
    try:
        def tool_turn(prompt, answer):
            mark = len(cli.lines)
            t = cli.user(prompt)
            got = cli.wait_for(lambda o: o.get("type") in ("result", "control_request"), 20)
            req = None
            if got and got["obj"].get("type") == "control_request":
                req = got
                rid = req["obj"]["request_id"]
                inp = req["obj"]["request"].get("input")
                if answer == "allow":
                    resp = {"behavior": "allow", "updatedInput": inp}
                else:
                    resp = {"behavior": "deny", "message": "why"}
                cli.send({"type": "control_response", "response": {
                    "subtype": "success", "request_id": rid, "response": resp}})
                res = cli.result(20)
            else:
                res = got
            time.sleep(0.2)
            return {
                "can_use_tool_request": req["raw"] if req else None,
                "lines": ["%+.3fs %s" % (x["t"] - t, short(x["raw"], 900)) for x in cli.lines[mark:]],
                "result": res["obj"].get("result") if res else None,
                "permission_denials": res["obj"].get("permission_denials") if res else None,
            }

        out["ls"] = tool_turn("bash: ls", "allow")
        out["rm_allow"] = tool_turn("bash: rm -rf dir_allow", "allow")
        out["rm_allow"]["dir_still_exists"] = os.path.exists(os.path.join(box.cwd, "dir_allow"))
        out["rm_deny"] = tool_turn("bash: rm -rf dir_deny", "deny")
        out["rm_deny"]["dir_still_exists"] = os.path.exists(os.path.join(box.cwd, "dir_deny"))
        out["touch_allow"] = tool_turn("bash: touch made_by_tool.txt", "allow")
        out["touch_allow"]["file_exists"] = os.path.exists(os.path.join(box.cwd, "made_by_tool.txt"))
        _, r = cli.turn("still alive?")
        out["after"] = r["obj"].get("result") if r else None
        cli.close()
        return out
    finally:
        cli.kill()
        box.cleanup()


def transcripts(box: Sandbox, sid: str) -> List[str]:
    found = []
    for root, _, files in os.walk(box.config):
        for f in files:
            if sid in f or sid in root:
                found.append(os.path.relpath(os.path.join(root, f), box.config))
    return sorted(found)


def probe_h(claude, api):
    """transcript location; --resume from a different cwd."""
    box = Sandbox(api)
    try:
        sid = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", sid])
        try:
            cli.turn("remember me")
            cli.close()
        finally:
            cli.kill()
        files = transcripts(box, sid)
        tree = []
        for root, dirs, fs in os.walk(box.config):
            for f in fs:
                tree.append(os.path.relpath(os.path.join(root, f), box.config))
        jsonl = [f for f in files if f.endswith(".jsonl")]
        first_lines = []
        if jsonl:
            with open(os.path.join(box.config, jsonl[0])) as fh:
                for ln in fh:
                    try:
                        o = json.loads(ln)
                    except ValueError:
                        continue
                    first_lines.append({k: o.get(k) for k in ("type", "sessionId", "cwd") if k in o})
        odd = os.path.join(box.root, "we.ird_dir name-X")
        os.makedirs(odd)
        sid_odd = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", sid_odd], cwd=odd)
        try:
            cli.turn("odd cwd")
            cli.close()
        finally:
            cli.kill()
        odd_files = transcripts(box, sid_odd)
        other = os.path.join(box.root, "elsewhere")
        os.makedirs(other)
        elsewhere = observe_startup(claude, box, ["--resume", sid], first_line="recall", cwd=other)
        same = observe_startup(claude, box, ["--resume", sid], first_line="recall")
        return {"cwd": box.cwd, "session_id": sid, "files_for_session": files,
                "odd_cwd": odd, "odd_cwd_files": odd_files,
                "config_tree": sorted(tree), "transcript_entries": first_lines[:12],
                "resume_from_other_cwd": elsewhere, "resume_from_same_cwd": same}
    finally:
        box.cleanup()


def probe_i(claude, api, samples=3, hot=6):
    """cold start (spawn -> first result, user line written at once) and hot turn latency."""
    box = Sandbox(api)
    cold, hot_t, first_stdout = [], [], []
    try:
        for _ in range(samples):
            cli = Cli(claude, box)
            try:
                cli.user("cold")
                r = cli.result(30)
                if r:
                    cold.append(round(r["t"], 3))
                    first_stdout.append(round(cli.lines[0]["t"], 3))
                for j in range(hot):
                    t, r = cli.turn("hot %d" % j)
                    if r:
                        hot_t.append(round((r["t"] - t) * 1000, 1))
                cli.close()
            finally:
                cli.kill()
        return {"cold_spawn_to_result_s": cold, "cold_spawn_to_first_stdout_s": first_stdout,
                "hot_turn_ms": hot_t}
    finally:
        box.cleanup()


def probe_j(claude, api):
    """what system/init contains; how often it is printed."""
    box = Sandbox(api)
    sid = str(uuid.uuid4())
    cli = Cli(claude, box, ["--session-id", sid, "--model", "claude-sonnet-4-5"])
    try:
        for text in ("j one", "j two", "j three"):
            cli.turn(text)
        cli.close()
        inits = [x["obj"] for x in cli.lines if x["obj"] and x["obj"].get("subtype") == "init"]
        kinds = [line_kind(x["obj"]) for x in cli.lines if x["obj"]]
        i0 = inits[0] if inits else {}
        models_seen = sorted({e["body"].get("model") for e in api.log if e["body"].get("model")})
        return {"init_count_for_3_turns": len(inits), "line_sequence": kinds,
                "init_keys": sorted(i0.keys()),
                "init_fields": {k: i0.get(k) for k in ("session_id", "model", "cwd", "permissionMode",
                                                       "claude_code_version", "apiKeySource",
                                                       "output_style", "uuid")},
                "init_uuid_differs_per_turn": len({i.get("uuid") for i in inits}) == len(inits),
                "passed_session_id": sid, "passed_model": "claude-sonnet-4-5",
                "models_in_api_requests_so_far": models_seen,
                "init_line": json.dumps(i0)}
    finally:
        cli.kill()
        box.cleanup()


def probe_k(claude, api):
    """stdin closed mid-turn; a second user line written while a turn is running."""
    box = Sandbox(api)
    out = {}
    try:
        cli = Cli(claude, box)
        try:
            cli.turn("warm")
            t = cli.user("sleep: 2")
            time.sleep(0.5)
            cli.proc.stdin.close()
            r = cli.result(10)
            rc = cli.wait(10)
            out["close_stdin_mid_turn"] = {
                "result": r["obj"].get("result") if r else None,
                "result_after_s": round(r["t"] - t, 2) if r else None,
                "exit_code": rc, "exit_after_close_s": round(cli.now() - t - 0.5, 2),
                "stderr": cli.err_text()}
        finally:
            cli.kill()
        cli = Cli(claude, box)
        try:
            cli.turn("warm")
            mark = len(cli.lines)
            t = cli.user("sleep: 2")
            time.sleep(0.5)
            cli.user("second while busy")
            r1 = cli.result(10)
            r2 = cli.result(10)
            time.sleep(0.3)
            out["user_line_while_busy"] = {
                "lines": ["%+.3fs %s" % (x["t"] - t, line_kind(x["obj"]) + " " + json.dumps(
                    x["obj"].get("result") or x["obj"].get("message", {}).get("content"))[:200])
                    for x in cli.lines[mark:] if x["obj"]],
                "first_result": r1["obj"].get("result") if r1 else None,
                "second_result": r2["obj"].get("result") if r2 else None}
            cli.close()
        finally:
            cli.kill()
        # host never answers can_use_tool, then interrupts
        cli = Cli(claude, box)
        try:
            t = cli.user("bash: touch x_never_answered")
            req = cli.wait_for(lambda o: o.get("type") == "control_request", 15)
            time.sleep(2.0)
            mark = len(cli.lines)
            ti = cli.send({"type": "control_request", "request_id": "r9",
                           "request": {"subtype": "interrupt"}})
            r = cli.result(10)
            time.sleep(0.3)
            out["interrupt_while_permission_pending"] = {
                "got_request": bool(req),
                "lines_after_interrupt": ["%+.3fs %s" % (x["t"] - ti, short(x["raw"], 500))
                                          for x in cli.lines[mark:]],
                "result_subtype": r["obj"].get("subtype") if r else None,
                "file_created": os.path.exists(os.path.join(box.cwd, "x_never_answered"))}
            _, r2 = cli.turn("after pending interrupt")
            out["interrupt_while_permission_pending"]["next_turn"] = r2["obj"].get("result") if r2 else None
            cli.close()
        finally:
            cli.kill()
        return out
    finally:
        box.cleanup()


def probe_l(claude, api):
    """--replay-user-messages: which output answers which user message (turn correlation)."""
    box = Sandbox(api)
    cli = Cli(claude, box, ["--replay-user-messages", "--session-id", str(uuid.uuid4())])
    try:
        u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
        # Two messages back to back: the second is written while the first runs.
        for u, text in ((u1, "l one"), (u2, "l two")):
            cli.send({"type": "user", "message": {"role": "user", "content": text},
                      "uuid": u, "parent_tool_use_id": None, "session_id": ""})
        cli.result(30)
        cli.result(30)
        time.sleep(0.5)
        objs = [x["obj"] for x in cli.lines if x["obj"]]
        names = {u1: "U1", u2: "U2"}
        seq = []
        for o in objs:
            k = line_kind(o)
            if o.get("type") == "user" and o.get("isReplay"):
                k = "echo(%s)" % names.get(o.get("uuid"), "other")
            elif o.get("type") == "result":
                k += "(user_message_uuid=%s)" % names.get(o.get("user_message_uuid"),
                                                          o.get("user_message_uuid"))
            elif o.get("type") == "command_lifecycle":
                k += "(%s %s)" % (names.get(o.get("command_uuid"), "?"), o.get("state"))
            seq.append(k)
        echoes = [o for o in objs if o.get("type") == "user" and o.get("isReplay")]
        return {"line_sequence": seq,
                "echo_keeps_host_uuid": [e.get("uuid") for e in echoes] == [u1, u2],
                "echo_line": json.dumps(echoes[0]) if echoes else None,
                "result_names_message": any("user_message_uuid" in o for o in objs
                                            if o.get("type") == "result")}
    finally:
        cli.kill()
        box.cleanup()


# ---------------------------------------------------------------------------------------------
# control surface (issue 14): a host that answers the CLI's control requests like an SDK would
# ---------------------------------------------------------------------------------------------

NO_ANSWER = "__no_answer__"


def ctl_answer(cli: Cli, rid: str, response: Any = None, error: Optional[str] = None) -> float:
    """Answer the CLI's control_request `rid`: success with `response`, or an error."""
    if error is not None:
        return cli.send({"type": "control_response", "response": {
            "subtype": "error", "request_id": rid, "error": error}})
    return cli.send({"type": "control_response", "response": {
        "subtype": "success", "request_id": rid, "response": {} if response is None else response}})


WEATHER_TOOLS = [
    {"name": "get_weather", "description": "Current weather for a city",
     "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}},
    {"name": "broken", "description": "Always fails (isError result)",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "rpc_fail", "description": "Always fails (JSON-RPC error)",
     "inputSchema": {"type": "object", "properties": {}}},
]


def mcp_server_answer(message: Dict[str, Any]) -> Dict[str, Any]:
    """A minimal in-process MCP server `host` (what an SDK's server would answer)."""
    method, mid = message.get("method"), message.get("id")
    params = message.get("params") or {}
    if "id" not in message:  # a notification: no JSON-RPC reply, but the control request is acked
        return {"jsonrpc": "2.0", "result": {}}
    if method == "initialize":
        result = {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "host", "version": "1.0.0"}}
    elif method == "tools/list":
        result = {"tools": WEATHER_TOOLS}
    elif method == "tools/call":
        name, args = params.get("name"), params.get("arguments") or {}
        if name == "get_weather":
            result = {"content": [{"type": "text",
                                   "text": "WEATHER-OK sunny in %s" % args.get("city")}]}
        elif name == "broken":
            result = {"content": [{"type": "text", "text": "WEATHER-FAIL service down"}],
                      "isError": True}
        elif name == "rpc_fail":
            return {"jsonrpc": "2.0", "id": mid,
                    "error": {"code": -32000, "message": "RPC-FAIL exploded"}}
        else:
            return {"jsonrpc": "2.0", "id": mid,
                    "error": {"code": -32602, "message": "unknown tool %s" % name}}
    else:
        return {"jsonrpc": "2.0", "id": mid,
                "error": {"code": -32601, "message": "method not found: %s" % method}}
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def default_answer(req: Dict[str, Any], line: Dict[str, Any]) -> Any:
    """allow every can_use_tool (input unchanged), {} to every hook, serve MCP `host`,
    refuse anything else with an error (never silence)."""
    sub = req.get("subtype")
    if sub == "can_use_tool":
        return {"behavior": "allow", "updatedInput": req.get("input")}
    if sub == "hook_callback":
        return {}
    if sub == "mcp_message":
        return {"mcp_response": mcp_server_answer(req.get("message") or {})}
    return ("error", "unsupported control request %s" % sub)


class Host:
    """Reads a Cli's stdout like an SDK: answers every control_request with `handler(request,
    line)`, which returns the success payload, ("error", msg), ("delay", seconds, answer) or
    NO_ANSWER. Records every control request (`requests`) and answer (`answers`)."""

    def __init__(self, cli: Cli, handler=None):
        self.cli = cli
        self.handler = handler or default_answer
        self.requests: List[Dict[str, Any]] = []
        self.answers: List[Dict[str, Any]] = []
        self._n = 0

    def run(self, until: Callable[[Dict[str, Any]], bool], timeout: float) -> Optional[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                item = self.cli.q.get(timeout=left)
            except queue.Empty:
                return None
            if item["raw"] is None:
                self.cli.q.put(item)
                return None
            o = item["obj"]
            if o is None:
                continue
            if o.get("type") == "control_request":
                self._answer(item)
            if until(o):
                return item

    def _answer(self, item):
        o = item["obj"]
        req, rid = o.get("request") or {}, o.get("request_id")
        self.requests.append({"t": item["t"], "request_id": rid, "request": req})
        ans = self.handler(req, o)
        if ans is NO_ANSWER:
            return
        delay = 0.0
        if isinstance(ans, tuple) and ans and ans[0] == "delay":
            delay, ans = ans[1], ans[2]

        def do():
            if isinstance(ans, tuple) and ans and ans[0] == "error":
                t = ctl_answer(self.cli, rid, error=ans[1])
            else:
                t = ctl_answer(self.cli, rid, ans)
            self.answers.append({"t": t, "request_id": rid, "subtype": req.get("subtype"),
                                 "answer": ans})

        if delay:
            threading.Timer(delay, do).start()
        else:
            do()

    def ctl(self, request: Dict[str, Any], timeout: float = 10) -> Dict[str, Any]:
        """Send a host->CLI control request; wait for its control_response."""
        self._n += 1
        rid = "host_%d" % self._n
        t = self.cli.send({"type": "control_request", "request_id": rid, "request": request})
        got = self.run(lambda o: o.get("type") == "control_response"
                       and (o.get("response") or {}).get("request_id") == rid, timeout)
        return {"answered_after_s": round(got["t"] - t, 3) if got else None,
                "response": compact(got["obj"]["response"]) if got else None,
                "raw": short(got["raw"], 1500) if got else None, "sent_at": t}

    def turn(self, content: Any, timeout: float = 30, **extra) -> Dict[str, Any]:
        """One user message; answers control requests until its result (or the timeout)."""
        mark = len(self.cli.lines)
        nreq = len(self.requests)
        msg = {"type": "user", "message": {"role": "user", "content": content}}
        msg.update(extra)
        t = self.cli.send(msg)
        res = self.run(lambda o: o.get("type") == "result", timeout)
        time.sleep(0.1)
        objs = [x for x in self.cli.lines[mark:] if x["obj"]]
        init = next((x["obj"] for x in objs if x["obj"].get("subtype") == "init"), None)
        r = res["obj"] if res else {}
        return {
            "result": r.get("result"), "subtype": r.get("subtype"), "is_error": r.get("is_error"),
            "num_turns": r.get("num_turns"), "permission_denials": r.get("permission_denials"),
            "errors": r.get("errors"), "session_id": r.get("session_id"),
            "result_s": round(res["t"] - t, 3) if res else None,
            "init_model": init.get("model") if init else None,
            "init_permission_mode": init.get("permissionMode") if init else None,
            "init_session_id": init.get("session_id") if init else None,
            "kinds": [line_kind(x["obj"]) for x in objs],
            "control_requests": [x["request"] for x in self.requests[nreq:]],
            "result_obj": r,
            "_t": t, "_mark": mark,
        }


def compact(o: Any) -> Any:
    """get_context_usage answers carry a 10x20 display grid and per-skill rows: summarized."""
    if isinstance(o, dict):
        return {k: ("<%d rows>" % len(v) if k in ("gridRows", "skillFrontmatter") and isinstance(v, list)
                    else compact(v)) for k, v in o.items()}
    if isinstance(o, list):
        return [compact(x) for x in o]
    return o


def req_models(api, since: int) -> List[str]:
    """'model (kind)' of the /v1/messages requests since index `since` (kind side-request = no tools)."""
    return ["%s (%s)" % (e["model"], e["kind"]) for e in api.messages_log()[since:]]


def lines_since(cli: Cli, mark: int, t0: float, n: int = 600) -> List[str]:
    return ["%+.3fs %s" % (x["t"] - t0, short(x["raw"], n)) for x in cli.lines[mark:]]


def slim(turn: Dict[str, Any]) -> Dict[str, Any]:
    """A turn record without the bulky parts."""
    return {k: v for k, v in turn.items() if not k.startswith("_") and k != "result_obj"}


def requests_of(host: Host, subtype: str, since: int = 0) -> List[Dict[str, Any]]:
    return [r for r in host.requests[since:] if r["request"].get("subtype") == subtype]


def start_hooked(claude, box, hooks, extra=(), handler=None):
    """A process whose host registered `hooks` in initialize (as the SDK does before any turn)."""
    cli = Cli(claude, box, list(extra))
    host = Host(cli, handler)
    init = host.ctl({"subtype": "initialize", "hooks": hooks}, timeout=15)
    return cli, host, init


def probe_m(claude, api):
    """set_model: its control_response; the model of the next API request, idle and mid-turn."""
    box = Sandbox(api)
    cli = Cli(claude, box)
    host = Host(cli)
    out = {}
    try:
        t1 = host.turn("m one")
        out["default"] = {"api_models": api.models(True), "init_model": t1["init_model"]}
        n0 = len(api.messages_log())
        mark = len(cli.lines)
        out["set_model_idle"] = host.ctl({"subtype": "set_model", "model": "claude-sonnet-4-5"})
        time.sleep(0.3)
        out["set_model_idle"]["lines"] = [short(x["raw"], 300) for x in cli.lines[mark:]]
        t2 = host.turn("m two")
        out["model_saw_set_model_notice"] = api.saw("Set model to")
        out["after_idle_set"] = {"api_models": req_models(api, n0),
                                 "init_model": t2["init_model"],
                                 "modelUsage_keys": sorted((t2["result_obj"].get("modelUsage") or {}).keys())}
        # mid-turn: the fake sleeps 2 s on the first request, then asks for `ls` (auto-allowed);
        # the tool result makes a second request in the same turn
        n1 = len(api.messages_log())
        mark = len(cli.lines)
        t_user = cli.user("sleep: 2\nbash: ls")
        time.sleep(0.7)
        mid = host.ctl({"subtype": "set_model", "model": "claude-haiku-4-5"}, timeout=10)
        res = host.run(lambda o: o.get("type") == "result", 20)
        mid["response_relative_to_user_line_s"] = round(mid["sent_at"] + (mid["answered_after_s"] or 0) - t_user, 3)
        out["set_model_mid_turn"] = {
            "control": mid,
            "models_of_this_turn_requests": req_models(api, n1),
            "result": res["obj"].get("result") if res else None,
            "lines": lines_since(cli, mark, t_user, 200)}
        n2 = len(api.messages_log())
        t3 = host.turn("m after mid")
        out["after_mid_turn_set"] = {"api_models": req_models(api, n2),
                                     "init_model": t3["init_model"]}
        out["set_model_null"] = host.ctl({"subtype": "set_model", "model": None})
        n3 = len(api.messages_log())
        t4 = host.turn("m after null")
        out["after_null"] = {"api_models": req_models(api, n3),
                             "init_model": t4["init_model"]}
        out["set_model_unknown_name"] = host.ctl({"subtype": "set_model", "model": "no-such-model-xyz"})
        n4 = len(api.messages_log())
        t5 = host.turn("m after unknown")
        out["after_unknown_name"] = {"api_models": req_models(api, n4),
                                     "init_model": t5["init_model"], "result": t5["result"],
                                     "subtype": t5["subtype"]}
        out["set_model_missing_field"] = host.ctl({"subtype": "set_model"})
        cli.close()
        return out
    finally:
        cli.kill()
        box.cleanup()


def probe_n(claude, api):
    """set_permission_mode: responses; effect on can_use_tool (plan, acceptEdits, bypass, ...)."""
    box = Sandbox(api)
    out = {}

    def tool_turn(host, prompt, files):
        n = len(host.requests)
        t = host.turn(prompt)
        asks = requests_of(host, "can_use_tool", n)
        return {"asked": [a["request"].get("tool_name") + " " + json.dumps(a["request"].get("input"))[:120]
                          for a in asks],
                "decision_reasons": [a["request"].get("decision_reason") for a in asks],
                "files": {f: os.path.exists(os.path.join(box.cwd, f)) for f in files},
                "result": (t["result"] or "")[:200], "subtype": t["subtype"],
                "init_permission_mode": t["init_permission_mode"],
                "tools_offered_has_ExitPlanMode": "ExitPlanMode" in api.tools()}

    def write(name):
        return 'tool: Write {"file_path": "%s", "content": "x"}' % os.path.join(box.cwd, name)

    try:
        cli = Cli(claude, box)
        host = Host(cli)
        try:
            out["default"] = tool_turn(host, "bash: touch n_default.txt", ["n_default.txt"])
            for mode, prompts in (
                    ("plan", [("bash: touch n_plan.txt", "n_plan.txt"), (write("n_plan_w.txt"), "n_plan_w.txt")]),
                    ("acceptEdits", [("bash: touch n_ae.txt", "n_ae.txt"), (write("n_ae_w.txt"), "n_ae_w.txt")]),
                    ("dontAsk", [("bash: touch n_da.txt", "n_da.txt")]),
                    ("bypassPermissions", [("bash: touch n_bp.txt", "n_bp.txt")]),
                    ("default", [("bash: touch n_back.txt", "n_back.txt")])):
                resp = host.ctl({"subtype": "set_permission_mode", "mode": mode})
                out[mode] = {"control": resp,
                             "turns": [tool_turn(host, p, [f]) for p, f in prompts]}
            out["bogus_mode"] = host.ctl({"subtype": "set_permission_mode", "mode": "bogus"})
            out["after_bogus"] = tool_turn(host, "bash: touch n_after_bogus.txt", ["n_after_bogus.txt"])
            cli.close()
        finally:
            cli.kill()
        # bypassPermissions on a process started with --allow-dangerously-skip-permissions
        # (as root the CLI refuses that flag unless IS_SANDBOX=1)
        for label, env in (("", None), ("_IS_SANDBOX", {"IS_SANDBOX": "1"})):
            cli = Cli(claude, box, ["--allow-dangerously-skip-permissions"], env=env)
            host = Host(cli)
            try:
                rc = cli.wait(2.0)
                if rc is not None:
                    out["allow_dangerously" + label] = {"exit_at_start": rc, "euid": os.geteuid(),
                                                        "stderr": cli.err_text()[:300]}
                    continue
                d = {"default_turn": tool_turn(host, "bash: touch n_ads0%s.txt" % label, ["n_ads0%s.txt" % label])}
                d["control"] = host.ctl({"subtype": "set_permission_mode", "mode": "bypassPermissions"})
                d["turn"] = tool_turn(host, "bash: touch n_ads1%s.txt" % label, ["n_ads1%s.txt" % label])
                out["allow_dangerously" + label] = d
                cli.close()
            finally:
                cli.kill()
        return out
    finally:
        box.cleanup()


def probe_o(claude, api):
    """get_context_usage, mcp_status, an unknown subtype, interrupt when idle."""
    box = Sandbox(api)
    cli = Cli(claude, box)
    host = Host(cli)
    out = {}
    try:
        out["before_first_turn"] = {
            "get_context_usage": host.ctl({"subtype": "get_context_usage"}, 15),
            "mcp_status": host.ctl({"subtype": "mcp_status"}),
            "unknown": host.ctl({"subtype": "frobnicate", "x": 1}),
            "interrupt": host.ctl({"subtype": "interrupt"}),
            "lines": [short(x["raw"], 300) for x in cli.lines]}
        t1 = host.turn("o one")
        out["first_turn"] = slim(t1)
        out["after_turn"] = {
            "get_context_usage": host.ctl({"subtype": "get_context_usage"}, 15),
            "mcp_status": host.ctl({"subtype": "mcp_status"}),
            "unknown": host.ctl({"subtype": "frobnicate"}),
            "interrupt_idle": host.ctl({"subtype": "interrupt"})}
        mark = len(cli.lines)
        time.sleep(0.5)
        out["lines_after_idle_controls"] = [short(x["raw"], 300) for x in cli.lines[mark:]]
        # unknown subtype while a turn runs
        mark = len(cli.lines)
        t = cli.user("sleep: 1.5")
        time.sleep(0.4)
        mid = host.ctl({"subtype": "frobnicate"})
        mid_usage = host.ctl({"subtype": "get_context_usage"}, 15)
        res = host.run(lambda o: o.get("type") == "result", 15)
        out["mid_turn"] = {"unknown": mid, "get_context_usage_answered_after_s": mid_usage["answered_after_s"],
                           "result": res["obj"].get("result") if res else None,
                           "lines": lines_since(cli, mark, t, 200)}
        out["next_turn"] = host.turn("o after")["result"]
        # a control_request without request_id / without subtype
        mark = len(cli.lines)
        cli.send({"type": "control_request", "request": {"subtype": "mcp_status"}})
        cli.send({"type": "control_request", "request_id": "nosub", "request": {}})
        time.sleep(1.0)
        out["malformed_requests_lines"] = [short(x["raw"], 300) for x in cli.lines[mark:]]
        out["alive_after_malformed"] = cli.proc.poll() is None
        out["turn_after_malformed"] = host.turn("o after malformed")["result"] if out["alive_after_malformed"] else None
        out["exit"] = cli.close()
        out["stderr"] = cli.err_text()[:500]
        return out
    finally:
        cli.kill()
        box.cleanup()


def probe_p(claude, api):
    """hook_callback requests: exact shapes per event; several matchers at once (concurrent?)."""
    box = Sandbox(api)
    hooks = {
        "PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["pre_bash_a", "pre_bash_b"]},
                       {"matcher": None, "hookCallbackIds": ["pre_any"]},
                       {"matcher": "Write", "hookCallbackIds": ["pre_write"]}],
        "PostToolUse": [{"matcher": "Bash", "hookCallbackIds": ["post_bash"]}],
        "PostToolUseFailure": [{"matcher": None, "hookCallbackIds": ["post_fail"]}],
        "UserPromptSubmit": [{"hookCallbackIds": ["ups"]}],
        "Stop": [{"hookCallbackIds": ["stop"]}],
    }

    def handler(req, line):
        if req.get("subtype") == "hook_callback":
            return ("delay", 1.0, {})  # answer late: do other callbacks arrive meanwhile?
        return default_answer(req, line)

    cli, host, init = start_hooked(claude, box, hooks, handler=handler)
    iresp = (init["response"] or {}).get("response") or {}
    out = {"initialize": {"answered_after_s": init["answered_after_s"],
                          "subtype": (init["response"] or {}).get("subtype"),
                          "response_keys": sorted(iresp.keys()),
                          "response_scalars": {k: v for k, v in iresp.items()
                                               if not isinstance(v, (list, dict)) or k in (
                                                   "capabilities", "hooks_applied", "session_state")},
                          "commands": len(iresp.get("commands") or []),
                          "models": [m.get("value") for m in iresp.get("models") or [] if isinstance(m, dict)]}}
    try:
        for name, prompt in (("ls", "bash: ls"),
                             ("failing", "bash: cat /nonexistent-hotplex-xyz"),
                             ("plain", "p plain text")):
            n = len(host.requests)
            t = host.turn(prompt, timeout=40)
            time.sleep(1.2)  # let late answers go out
            seq = []
            for r in host.requests[n:]:
                req = r["request"]
                ans = next((a for a in host.answers if a["request_id"] == r["request_id"]), None)
                seq.append({"at_s": round(r["t"] - t["_t"], 3),
                            "answered_at_s": round(ans["t"] - t["_t"], 3) if ans else None,
                            "subtype": req.get("subtype"), "callback_id": req.get("callback_id"),
                            "event": (req.get("input") or {}).get("hook_event_name"),
                            "tool": req.get("tool_name") or (req.get("input") or {}).get("tool_name")})
            out[name] = {"turn": slim(t), "sequence": seq,
                         "raw_requests": [json.dumps({"type": "control_request",
                                                      "request_id": r["request_id"],
                                                      "request": r["request"]})[:1500]
                                          for r in host.requests[n:]]}
        cli.close()
        return out
    finally:
        cli.kill()
        box.cleanup()


def probe_q(claude, api):
    """PreToolUse hook answers: allow / deny / ask / updatedInput; is can_use_tool still asked?"""
    box = Sandbox(api)
    hooks = {"PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["pre"]}]}

    def pre(decision=None, reason=None, updated=None, context=None, **top):
        hso = {"hookEventName": "PreToolUse"}
        if decision:
            hso["permissionDecision"] = decision
        if reason:
            hso["permissionDecisionReason"] = reason
        if updated:
            hso["updatedInput"] = {"command": updated, "description": "rewritten"}
        if context:
            hso["additionalContext"] = context
        out = dict(top)
        if len(hso) > 1:
            out["hookSpecificOutput"] = hso
        return out

    cases = [
        ("allow", "touch q_allow.txt", pre("allow", "Q-ALLOW-REASON"), []),
        ("allow_rewrite", "touch q_orig.txt", pre("allow", updated="touch q_rewritten.txt"),
         ["q_orig.txt", "q_rewritten.txt"]),
        ("rewrite_without_decision", "touch q_orig2.txt", pre(updated="touch q_rewritten2.txt"),
         ["q_orig2.txt", "q_rewritten2.txt"]),
        ("allow_rewrite_readonly_into_write", "ls", pre("allow", updated="touch q_from_ls.txt"),
         ["q_from_ls.txt"]),
        ("rewrite_readonly_into_write_no_decision", "ls -a", pre(updated="touch q_from_ls2.txt"),
         ["q_from_ls2.txt"]),
        ("ask", "touch q_ask.txt", pre("ask", "Q-ASK-REASON"), ["q_ask.txt"]),
        ("ask_readonly", "ls -l", pre("ask", "Q-ASK-RO"), []),
        ("deny", "touch q_deny.txt", pre("deny", "Q-DENY-REASON"), ["q_deny.txt"]),
        ("additional_context", "touch q_ctx.txt", pre(context="Q-PRE-CTX"), ["q_ctx.txt"]),
        ("legacy_decision_block", "touch q_block.txt", {"decision": "block", "reason": "Q-BLOCK"},
         ["q_block.txt"]),
        ("continue_false", "touch q_cont.txt", {"continue": False, "stopReason": "Q-STOP"},
         ["q_cont.txt"]),
    ]
    answers = {c[1]: c[2] for c in cases}

    def handler(req, line):
        if req.get("subtype") == "hook_callback":
            cmd = ((req.get("input") or {}).get("tool_input") or {}).get("command")
            return answers.get(cmd, {})
        return default_answer(req, line)

    cli, host, init = start_hooked(claude, box, hooks, handler=handler)
    out = {}
    try:
        for name, cmd, answer, files in cases:
            n = len(host.requests)
            nlog = len(api.messages_log())
            t = host.turn("bash: " + cmd)
            asks = requests_of(host, "can_use_tool", n)
            texts = "\n".join(e["text"] for e in api.messages_log()[nlog:])
            user_lines = [x["obj"] for x in cli.lines[t["_mark"]:] if x["obj"] and x["obj"].get("type") == "user"]
            out[name] = {
                "hook_answer": answer,
                "can_use_tool_asked": [{k: v for k, v in a["request"].items() if k != "subtype"}
                                       for a in asks],
                "files": {f: os.path.exists(os.path.join(box.cwd, f)) for f in files},
                "tool_results": [json.dumps(u.get("message", {}).get("content"))[:300] for u in user_lines],
                "result": (t["result"] or "")[:300], "subtype": t["subtype"], "kinds": t["kinds"],
                "model_saw": {s: s in texts for s in ("Q-ALLOW-REASON", "Q-ASK-REASON", "Q-DENY-REASON",
                                                      "Q-PRE-CTX", "Q-BLOCK", "Q-STOP", "Q-ASK-RO")
                              if s in json.dumps(answer)},
                "permission_denials": t["permission_denials"]}
        cli.close()
        return out
    finally:
        cli.kill()
        box.cleanup()


def probe_r(claude, api):
    """PostToolUse / UserPromptSubmit outputs (additionalContext, updatedToolOutput, continue:false),
    a hook answered with an error, a hook never answered (timeout? control_cancel_request?)."""
    box = Sandbox(api)
    out = {}
    try:
        hooks = {"PostToolUse": [{"matcher": "Bash", "hookCallbackIds": ["post"]}],
                 "UserPromptSubmit": [{"hookCallbackIds": ["ups"]}],
                 "Stop": [{"hookCallbackIds": ["stop"]}]}
        post_answers = {
            "ls": {"hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "R-POST-CTX"}},
            "pwd": {"hookSpecificOutput": {"hookEventName": "PostToolUse", "updatedToolOutput": {
                "stdout": "R-REPLACED-OUTPUT", "stderr": "", "interrupted": False, "isImage": False}}},
            "ls -a": {"continue": False, "stopReason": "R-STOP-POST"},
            "ls -l": {"decision": "block", "reason": "R-POST-BLOCK"},
        }
        ups_answers = {
            "r ups context": {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit",
                                                     "additionalContext": "R-UPS-CTX"}},
            "r ups stop": {"continue": False, "stopReason": "R-STOP-UPS"},
            "r ups block": {"decision": "block", "reason": "R-UPS-BLOCK"},
        }
        stop_state = {"blocked": False}

        def handler(req, line):
            if req.get("subtype") == "hook_callback":
                inp = req.get("input") or {}
                ev = inp.get("hook_event_name")
                if ev == "PostToolUse":
                    return post_answers.get((inp.get("tool_input") or {}).get("command"), {})
                if ev == "UserPromptSubmit":
                    return ups_answers.get(inp.get("prompt"), {})
                if ev == "Stop" and stop_state.get("arm") and not stop_state["blocked"]:
                    stop_state["blocked"] = True
                    return {"decision": "block", "reason": "R-STOP-BLOCK keep going"}
                return {}
            return default_answer(req, line)

        cli, host, init = start_hooked(claude, box, hooks, handler=handler)
        try:
            for name, prompt in (("post_additional_context", "bash: ls"),
                                 ("post_updated_tool_output", "bash: pwd"),
                                 ("post_continue_false", "bash: ls -a"),
                                 ("post_decision_block", "bash: ls -l"),
                                 ("ups_additional_context", "r ups context"),
                                 ("ups_continue_false", "r ups stop"),
                                 ("ups_decision_block", "r ups block"),
                                 ("stop_decision_block", "r stop block")):
                if name == "stop_decision_block":
                    stop_state["arm"] = True
                nlog = len(api.messages_log())
                before = api.text() if nlog else ""
                t = host.turn(prompt)
                reqs = api.messages_log()[nlog:]
                texts = "\n".join(e["text"] for e in reqs)
                marks = [m for m in ("R-POST-CTX", "R-REPLACED-OUTPUT", "R-STOP-POST", "R-POST-BLOCK",
                                     "R-UPS-CTX", "R-STOP-UPS", "R-UPS-BLOCK", "R-STOP-BLOCK")
                         if m in texts and m not in before]
                ctx = []
                for m in marks:  # the rendered line(s) that carried it: "<role>: <block text>"
                    i = texts.find(m)
                    ctx.append(texts[max(0, texts.rfind("\n", 0, texts.rfind(": ", 0, i)) + 1): i + 60])
                out[name] = {"result": (t["result"] or "")[:300], "subtype": t["subtype"],
                             "is_error": t["is_error"], "kinds": t["kinds"],
                             "api_requests_in_turn": len(reqs), "model_saw": marks,
                             "where_model_saw_it": ctx,
                             "lines": lines_since(cli, t["_mark"], t["_t"], 400)}
            cli.close()
        finally:
            cli.kill()

        # a hook answered with a control error
        hooks = {"PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["pre"]}],
                 "PostToolUse": [{"matcher": "Bash", "hookCallbackIds": ["post"]}],
                 "UserPromptSubmit": [{"hookCallbackIds": ["ups"]}]}
        err_for = {"state": None}

        def err_handler(req, line):
            if req.get("subtype") == "hook_callback":
                ev = (req.get("input") or {}).get("hook_event_name")
                if ev == err_for["state"]:
                    return ("error", "R-HOOK-ERROR boom")
                return {}
            return default_answer(req, line)

        cli, host, init = start_hooked(claude, box, hooks, handler=err_handler)
        try:
            for ev, prompt, f in (("PreToolUse", "bash: touch r_err_pre.txt", "r_err_pre.txt"),
                                  ("PostToolUse", "bash: touch r_err_post.txt", "r_err_post.txt"),
                                  ("UserPromptSubmit", "r ups error", None)):
                err_for["state"] = ev
                n = len(host.requests)
                nlog = len(api.messages_log())
                t = host.turn(prompt)
                texts = "\n".join(e["text"] for e in api.messages_log()[nlog:])
                out["error_answer_" + ev] = {
                    "result": (t["result"] or "")[:300], "subtype": t["subtype"],
                    "can_use_tool_asked": len(requests_of(host, "can_use_tool", n)),
                    "file_created": os.path.exists(os.path.join(box.cwd, f)) if f else None,
                    "model_saw_error_text": "R-HOOK-ERROR" in texts,
                    "api_requests_in_turn": len(api.messages_log()) - nlog,
                    "lines": lines_since(cli, t["_mark"], t["_t"], 400)}
            cli.close()
            out["error_answer_stderr"] = cli.err_text()[:800]
        finally:
            cli.kill()

        # a hook never answered: with a matcher timeout of 3 s, and with none
        for label, timeout_field, wait_s in (("timeout_3s", 3, 8), ("no_timeout_field", None, 12)):
            m = {"matcher": "Bash", "hookCallbackIds": ["pre_silent"]}
            if timeout_field is not None:
                m["timeout"] = timeout_field

            def silent(req, line):
                if req.get("subtype") == "hook_callback":
                    return NO_ANSWER
                return default_answer(req, line)

            cli, host, init = start_hooked(claude, box, {"PreToolUse": [m]}, handler=silent)
            try:
                fname = "r_silent_%s.txt" % label
                mark = len(cli.lines)
                t = cli.user("bash: touch " + fname)
                res = host.run(lambda o: o.get("type") == "result", wait_s)
                rec = {"result_within_s": round(res["t"] - t, 2) if res else None,
                       "result": (res["obj"].get("result") or "")[:300] if res else None}
                if not res:
                    ti = host.ctl({"subtype": "interrupt"})
                    res2 = host.run(lambda o: o.get("type") == "result", 10)
                    rec["interrupt"] = {"answered_after_s": ti["answered_after_s"],
                                        "result_subtype": res2["obj"].get("subtype") if res2 else None}
                time.sleep(0.3)
                rec["file_created"] = os.path.exists(os.path.join(box.cwd, fname))
                rec["can_use_tool_asked"] = len(requests_of(host, "can_use_tool"))
                rec["lines"] = lines_since(cli, mark, t, 400)
                rec["next_turn"] = host.turn("r after silent", timeout=15)["result"]
                out["unanswered_" + label] = rec
                cli.close()
            finally:
                cli.kill()
        return out
    finally:
        box.cleanup()


SDK_MCP = json.dumps({"mcpServers": {"host": {"type": "sdk", "name": "host"}}})


def probe_s(claude, api):
    """SDK MCP server (--mcp-config type sdk): mcp_message traffic, tool names, results, errors."""
    box = Sandbox(api)
    out = {}

    def mcp_seq(host, t0, since=0):
        return ["%+.3fs %s %s" % (r["t"] - t0, r["request"].get("server_name"),
                                  json.dumps(r["request"].get("message"))[:200])
                for r in host.requests[since:] if r["request"].get("subtype") == "mcp_message"]

    try:
        # 1. no initialize; watch before any stdin, then a turn that calls the tool
        cli = Cli(claude, box, ["--mcp-config", SDK_MCP])
        host = Host(cli)
        try:
            host.run(lambda o: False, 3.0)
            out["before_stdin"] = {"control_requests": len(host.requests),
                                   "lines": [short(x["raw"], 300) for x in cli.lines]}
            nlog = len(api.messages_log())
            t = host.turn('tool: mcp__host__get_weather {"city": "Paris"}')
            mcp_reqs = [r for r in host.requests if r["request"].get("subtype") == "mcp_message"]
            out["first_turn"] = {
                "turn": slim(t), "mcp_sequence": mcp_seq(host, t["_t"]),
                "mcp_request_example": json.dumps({"type": "control_request", "request_id": mcp_reqs[0]["request_id"],
                                                   "request": mcp_reqs[0]["request"]}) if mcp_reqs else None,
                "can_use_tool": [json.dumps(r["request"])[:1200] for r in requests_of(host, "can_use_tool")],
                "tools_offered_mcp": [n for n in api.tools() if n.startswith("mcp__")],
                "model_saw_result": api.saw("WEATHER-OK"),
                "tool_result_as_model_saw_it": [ln for e in api.messages_log()[nlog:]
                                                for ln in e["text"].splitlines() if "WEATHER-OK" in ln][:1],
                "fake_reply_kinds": [e["kind"] for e in api.messages_log()[nlog:]],
                "tools_offered_in_first_request": [n for n in api.messages_log()[nlog]["tools"]
                                                   if n.startswith("mcp__") or n == "ToolSearch"]
                if len(api.messages_log()) > nlog else None,
                "init_mcp_servers": next((x["obj"].get("mcp_servers") for x in cli.lines
                                          if x["obj"] and x["obj"].get("subtype") == "init"), None),
                "init_tools_mcp": [n for n in next((x["obj"].get("tools") for x in cli.lines
                                                    if x["obj"] and x["obj"].get("subtype") == "init"), [])
                                   if n.startswith("mcp__")],
                "lines": lines_since(cli, t["_mark"], t["_t"], 500)}
            for name, prompt, mark_text in (("isError_result", "tool: mcp__host__broken {}", "WEATHER-FAIL"),
                                            ("jsonrpc_error", "tool: mcp__host__rpc_fail {}", "RPC-FAIL")):
                n = len(host.requests)
                nlog = len(api.messages_log())
                t = host.turn(prompt)
                seen = [ln for e in api.messages_log()[nlog:] for ln in e["text"].splitlines()
                        if "tool_result" in ln]
                out[name] = {"result": t["result"], "subtype": t["subtype"],
                             "model_saw": seen[:2], "mcp_sequence": mcp_seq(host, t["_t"], n),
                             "tool_result_line": [short(x["raw"], 600) for x in cli.lines[t["_mark"]:]
                                                  if x["obj"] and x["obj"].get("type") == "user"][-1:]}
            n = len(host.requests)
            t = host.turn("s plain turn")
            out["plain_turn_mcp_messages"] = mcp_seq(host, t["_t"], n)
            out["mcp_status"] = host.ctl({"subtype": "mcp_status"})
            cli.close()
        finally:
            cli.kill()

        # 1b. with ENABLE_TOOL_SEARCH=false (2.1.332 otherwise defers MCP tools behind ToolSearch)
        cli = Cli(claude, box, ["--mcp-config", SDK_MCP], env={"ENABLE_TOOL_SEARCH": "false"})
        host = Host(cli)
        try:
            host.run(lambda o: False, 2.0)
            nlog = len(api.messages_log())
            t = host.turn('tool: mcp__host__get_weather {"city": "Lima"}')
            out["tool_search_disabled"] = {
                "result": t["result"], "fake_reply_kinds": [e["kind"] for e in api.messages_log()[nlog:]],
                "tools_offered_in_first_request": [n for n in api.messages_log()[nlog]["tools"]
                                                   if n.startswith("mcp__") or n == "ToolSearch"]
                if len(api.messages_log()) > nlog else None}
            cli.close()
        finally:
            cli.kill()

        # 2. SDK order: initialize first, then the user line
        cli = Cli(claude, box, ["--mcp-config", SDK_MCP])
        host = Host(cli)
        try:
            t0 = cli.now()
            init = host.ctl({"subtype": "initialize", "hooks": None}, 15)
            host.run(lambda o: False, 1.0)
            n_before = len(host.requests)
            t = host.turn('tool: mcp__host__get_weather {"city": "Oslo"}')
            out["initialize_first"] = {
                "initialize_answered_after_s": init["answered_after_s"],
                "mcp_messages_before_user_line": mcp_seq(host, t0, 0)[:n_before],
                "mcp_sequence_from_user_line": mcp_seq(host, t["_t"], n_before),
                "result": t["result"]}
            cli.close()
        finally:
            cli.kill()

        # 3. the host answers every mcp_message with a control error
        def refuse(req, line):
            if req.get("subtype") == "mcp_message":
                return ("error", "no such server here")
            return default_answer(req, line)

        cli = Cli(claude, box, ["--mcp-config", SDK_MCP])
        host = Host(cli, refuse)
        try:
            t = host.turn('tool: mcp__host__get_weather {"city": "Rome"}', timeout=30)
            out["mcp_refused"] = {"turn": slim(t), "mcp_sequence": mcp_seq(host, t["_t"]),
                                  "tools_offered_mcp": [n for n in api.tools() if n.startswith("mcp__")],
                                  "mcp_status": host.ctl({"subtype": "mcp_status"})}
            cli.close()
        finally:
            cli.kill()

        # 4. the host never answers mcp_message
        def ignore(req, line):
            if req.get("subtype") == "mcp_message":
                return NO_ANSWER
            return default_answer(req, line)

        cli = Cli(claude, box, ["--mcp-config", SDK_MCP])
        host = Host(cli, ignore)
        try:
            t = host.turn("s unanswered mcp", timeout=65)
            out["mcp_unanswered"] = {"turn": slim(t), "mcp_sequence": mcp_seq(host, t["_t"]),
                                     "lines": lines_since(cli, t["_mark"], t["_t"], 300)}
            cli.close()
        finally:
            cli.kill()
        return out
    finally:
        box.cleanup()


def probe_t(claude, api):
    """can_use_tool fields; updatedPermissions (addRules, setMode); deny with interrupt."""
    box = Sandbox(api)
    outside = os.path.join(box.root, "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "r.txt"), "w") as fh:
        fh.write("outside file")
    os.makedirs(os.path.join(box.cwd, "t_del"))
    plan = {}

    def handler(req, line):
        if req.get("subtype") == "can_use_tool":
            f = plan.get("next")
            if f:
                return f(req)
        return default_answer(req, line)

    cli = Cli(claude, box)
    host = Host(cli, handler)
    out = {}

    def step(name, prompt, answer, files=()):
        plan["next"] = answer
        n = len(host.requests)
        t = host.turn(prompt)
        asks = requests_of(host, "can_use_tool", n)
        out[name] = {"asked": [json.dumps({"type": "control_request", "request_id": a["request_id"],
                                           "request": a["request"]})[:2000] for a in asks],
                     "result": (t["result"] or "")[:300], "subtype": t["subtype"],
                     "init_permission_mode": t["init_permission_mode"],
                     "files": {f: os.path.exists(os.path.join(box.cwd, f)) for f in files},
                     "kinds": t["kinds"]}
        return out[name]

    def allow_with(perms):
        return lambda req: {"behavior": "allow", "updatedInput": req.get("input"), "updatedPermissions": perms}

    try:
        step("addRules_session_prefix", "bash: touch t_a.txt", allow_with(
            [{"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "touch:*"}],
              "behavior": "allow", "destination": "session"}]), ["t_a.txt"])
        step("after_addRules_same_prefix", "bash: touch t_b.txt", None, ["t_b.txt"])
        step("after_addRules_other_command_allow_with_first_suggestion", "bash: mkdir -p t_dir", lambda req: {
            "behavior": "allow", "updatedInput": req.get("input"),
            "updatedPermissions": (req.get("permission_suggestions") or [])[:1]}, ["t_dir"])
        local = os.path.join(box.cwd, ".claude", "settings.local.json")
        out["settings_local_json_after_suggestion"] = open(local).read()[:600] if os.path.exists(local) else None
        step("after_suggestion_same_command", "bash: mkdir -p t_dir", None)
        step("write_outside_cwd", 'tool: Write {"file_path": "%s", "content": "x"}' % os.path.join(outside, "w.txt"),
             lambda req: {"behavior": "deny", "message": "T-NO-WRITE"})
        step("read_outside_cwd", 'tool: Read {"file_path": "%s"}' % os.path.join(outside, "r.txt"), None)
        step("allow_with_changed_input", "bash: mkdir t_asked", lambda req: {
            "behavior": "allow", "updatedInput": {"command": "mkdir t_changed", "description": "changed"}},
             ["t_asked", "t_changed"])
        # deny with interrupt
        mark = len(cli.lines)
        st = step("deny_interrupt", "bash: rm -rf t_del", lambda req: {
            "behavior": "deny", "message": "T-DENY-INTERRUPT", "interrupt": True}, ["t_del"])
        st["lines"] = [short(x["raw"], 500) for x in cli.lines[mark:]]
        st["next_turn"] = host.turn("t after interrupt")["result"]
        # setMode through updatedPermissions; then what acceptEdits lets through unasked
        step("write_inside_setMode_acceptEdits",
             'tool: Write {"file_path": "%s", "content": "x"}' % os.path.join(box.cwd, "t_w1.txt"),
             allow_with([{"type": "setMode", "mode": "acceptEdits", "destination": "session"}]), ["t_w1.txt"])
        step("write_inside_after_setMode",
             'tool: Write {"file_path": "%s", "content": "x"}' % os.path.join(box.cwd, "t_w2.txt"), None, ["t_w2.txt"])
        step("rm_rf_in_cwd_under_acceptEdits", "bash: rm -rf t_dir", lambda req: {
            "behavior": "deny", "message": "T-NO-RM"}, ["t_dir"])
        cli.close()
        return out
    finally:
        cli.kill()
        box.cleanup()


def read_transcript(box: Sandbox, sid: str) -> List[Dict[str, Any]]:
    for f in transcripts(box, sid):
        if f.endswith(sid + ".jsonl"):
            with open(os.path.join(box.config, f)) as fh:
                return [json.loads(ln) for ln in fh if ln.strip()]
    return []


def probe_u(claude, api):
    """--fork-session with --resume; --resume-session-at; which ids, what is remembered."""
    box = Sandbox(api)
    out = {}
    try:
        a = str(uuid.uuid4())
        cli = Cli(claude, box, ["--session-id", a])
        host = Host(cli)
        try:
            host.turn("u one")
            host.turn("u two")
            cli.close()
        finally:
            cli.kill()
        time.sleep(0.3)
        path_a = [f for f in transcripts(box, a) if f.endswith(".jsonl")]
        before = open(os.path.join(box.config, path_a[0]), "rb").read() if path_a else b""
        entries = read_transcript(box, a)
        out["original_entries"] = [(e.get("type"), e.get("uuid"),
                                    json.dumps((e.get("message") or {}).get("content"))[:40])
                                   for e in entries if e.get("type") in ("user", "assistant")]

        def run(extra, prompts, quiet=1.0):
            cli = Cli(claude, box, extra)
            host = Host(cli)
            try:
                host.run(lambda o: False, quiet)
                pre = [short(x["raw"], 300) for x in cli.lines]
                rc = cli.proc.poll()
                if rc is not None:
                    return {"exit_at_start": rc, "stdout": pre, "stderr": cli.err_text()[:300]}
                turns = [host.turn(p, timeout=20) for p in prompts]
                rc = cli.close()
                return {"lines_before_stdin": pre, "exit": rc, "stderr": cli.err_text()[:300],
                        "turns": [{"prompt": p, "init_session_id": t["init_session_id"],
                                   "result_session_id": t["session_id"], "result": t["result"],
                                   "subtype": t["subtype"], "errors": t["result_obj"].get("errors")}
                                  for p, t in zip(prompts, turns)]}
            finally:
                cli.kill()

        out["fork"] = run(["--resume", a, "--fork-session"], ["recall", "u fork only"])
        time.sleep(0.3)
        after = open(os.path.join(box.config, path_a[0]), "rb").read() if path_a else b""
        out["original_transcript_unchanged_after_fork"] = before == after
        fork_id = (out["fork"]["turns"][0]["result_session_id"] or "")
        out["fork_transcript_files"] = transcripts(box, fork_id) if fork_id else []
        out["resume_original_after_fork"] = run(["--resume", a], ["recall"])
        out["resume_fork"] = run(["--resume", fork_id], ["recall"]) if fork_id else None
        b = str(uuid.uuid4())
        out["fork_with_session_id"] = run(["--resume", a, "--fork-session", "--session-id", b], ["recall"])
        out["fork_with_session_id"]["requested_id"] = b
        # --resume-session-at: the uuid of the first assistant message (after "u one")
        entries = read_transcript(box, a)
        first_asst = next((e for e in entries if e.get("type") == "assistant"), None)
        first_user = next((e for e in entries if e.get("type") == "user"), None)
        if first_asst:
            before = open(os.path.join(box.config, path_a[0]), "rb").read()
            out["resume_session_at_assistant"] = run(
                ["--resume", a, "--resume-session-at", first_asst["uuid"]], ["recall"])
            after = open(os.path.join(box.config, path_a[0]), "rb").read()
            out["resume_session_at_assistant"]["at_uuid"] = first_asst["uuid"]
            out["resume_session_at_assistant"]["transcript_grew"] = len(after) - len(before)
            out["resume_after_resume_session_at"] = run(["--resume", a], ["recall"])
            out["resume_session_at_plus_fork"] = run(
                ["--resume", a, "--resume-session-at", first_asst["uuid"], "--fork-session"], ["recall"])
        if first_user:
            out["resume_session_at_user_uuid"] = run(
                ["--resume", a, "--resume-session-at", first_user["uuid"]], ["recall"])
        out["resume_session_at_unknown_uuid"] = run(
            ["--resume", a, "--resume-session-at", str(uuid.uuid4())], ["recall"])
        out["fork_session_without_resume"] = run(["--fork-session"], ["recall"])
        return out
    finally:
        box.cleanup()


# a 1x1 PNG
PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def probe_v(claude, api):
    """--max-turns 1 with a tool call; --json-schema (StructuredOutput, structured_output);
    image blocks in a user message; --max-budget-usd."""
    box = Sandbox(api)
    out = {}
    try:
        cli = Cli(claude, box, ["--max-turns", "1"])
        host = Host(cli)
        try:
            t = host.turn("v plain")
            out["max_turns_plain"] = {"subtype": t["subtype"], "result": t["result"], "num_turns": t["num_turns"]}
            nlog = len(api.messages_log())
            t = host.turn("bash: ls")
            r = t["result_obj"]
            out["max_turns_tool"] = {"subtype": t["subtype"], "is_error": t["is_error"], "result": t["result"],
                                     "num_turns": t["num_turns"], "errors": r.get("errors"),
                                     "stop_reason": r.get("stop_reason"), "terminal_reason": r.get("terminal_reason"),
                                     "api_requests": len(api.messages_log()) - nlog, "kinds": t["kinds"],
                                     "result_line": json.dumps({k: v for k, v in r.items()
                                                                if k not in ("modelUsage", "usage")})[:900]}
            t = host.turn("v after max turns")
            out["max_turns_next_turn"] = {"subtype": t["subtype"], "result": t["result"]}
            out["max_turns_alive"] = cli.proc.poll() is None
            cli.close()
        finally:
            cli.kill()

        cli = Cli(claude, box, ["--json-schema", json.dumps(SCHEMA)])
        host = Host(cli)
        try:
            nlog = len(api.messages_log())
            t = host.turn('tool: StructuredOutput {"answer": "forty-two"}')
            reqs = api.messages_log()[nlog:]
            so_tool = next((tl for tl in (reqs[0]["body"].get("tools") or []) if tl.get("name") == "StructuredOutput"),
                           None) if reqs else None
            r = t["result_obj"]
            out["json_schema_called"] = {
                "tools_offered_StructuredOutput": bool(so_tool),
                "StructuredOutput_tool": json.dumps(so_tool)[:700] if so_tool else None,
                "subtype": t["subtype"], "result": t["result"], "structured_output": r.get("structured_output"),
                "result_keys": sorted(r.keys()), "api_requests": len(reqs), "kinds": t["kinds"],
                "can_use_tool_asked": len(requests_of(host, "can_use_tool")),
                "system_mentions_StructuredOutput": "StructuredOutput" in (reqs[0]["text"] if reqs else "")}
            nlog = len(api.messages_log())
            t = host.turn("v no structured call")
            r = t["result_obj"]
            out["json_schema_not_called"] = {
                "subtype": t["subtype"], "is_error": t["is_error"], "result": t["result"],
                "structured_output": r.get("structured_output"), "errors": r.get("errors"),
                "api_requests": len(api.messages_log()) - nlog,
                "prompts_the_cli_added": [ln[:200] for e in api.messages_log()[nlog:]
                                          for ln in e["text"].splitlines()[-3:] if ln.startswith("user:")][-3:]}
            t = host.turn('tool: StructuredOutput {"wrong": 1}')
            r = t["result_obj"]
            out["json_schema_invalid_call"] = {
                "subtype": t["subtype"], "result": t["result"], "structured_output": r.get("structured_output"),
                "tool_results": [short(x["raw"], 400) for x in cli.lines[t["_mark"]:]
                                 if x["obj"] and x["obj"].get("type") == "user"][:2]}
            cli.close()
        finally:
            cli.kill()

        cli = Cli(claude, box)
        host = Host(cli)
        try:
            nlog = len(api.messages_log())
            t = host.turn([{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                        "data": PNG_1PX}},
                           {"type": "text", "text": "v describe the image"}])
            imgs = api.blocks("image")
            out["image"] = {"result": t["result"], "subtype": t["subtype"],
                            "fake_got_image_blocks": len(imgs),
                            "image_block": json.dumps(imgs[0])[:300] if imgs else None,
                            "data_unchanged": bool(imgs and imgs[0].get("source", {}).get("data") == PNG_1PX),
                            "user_message_as_model_saw_it": [ln[:120] for e in api.messages_log()[nlog:]
                                                             for ln in e["text"].splitlines()
                                                             if ln.startswith("user:")][-2:]}
            cli.close()
        finally:
            cli.kill()

        cli = Cli(claude, box, ["--max-budget-usd", "0.0003"])
        host = Host(cli)
        try:
            rows = []
            for p in ("v budget one", "v budget two", "v budget three"):
                t = host.turn(p, timeout=15)
                rows.append({"subtype": t["subtype"], "result": t["result"], "is_error": t["is_error"],
                             "total_cost_usd": t["result_obj"].get("total_cost_usd"),
                             "errors": t["result_obj"].get("errors")})
            out["max_budget_usd_0.0003"] = {"turns": rows, "alive": cli.proc.poll() is None}
            cli.close()
        finally:
            cli.kill()
        return out
    finally:
        box.cleanup()


# ---------------------------------------------------------------------------------------------
# interactive turns (issue 19): AskUserQuestion and plan mode's ExitPlanMode through can_use_tool
# ---------------------------------------------------------------------------------------------

ASK_PROMPT = "ask: Which color? Red | Blue\naskmulti: Which sizes? S | M | L"
NO_STDIO = [a for a in BASE_ARGS if a not in ("--permission-prompt-tool", "stdio")]


def with_answers(answers=None, **more):
    """A can_use_tool answer for AskUserQuestion: allow, the input plus `answers` (and e.g. `response`)."""
    def answer(req):
        inp = dict(req.get("input") or {})
        if answers is not None:
            inp["answers"] = answers
        inp.update(more)
        return {"behavior": "allow", "updatedInput": inp}
    return answer


def interactive_host(cli: Cli):
    """A Host whose can_use_tool answers come from `plan["next"]` (a function of the request,
    NO_ANSWER, or ("delay", s, fn)); everything else as default_answer."""
    plan: Dict[str, Any] = {}

    def handler(req, line):
        if req.get("subtype") == "can_use_tool" and plan.get("next") is not None:
            f = plan["next"]
            if f is NO_ANSWER:
                return NO_ANSWER
            if isinstance(f, tuple):
                return ("delay", f[1], f[2](req))
            return f(req)
        return default_answer(req, line)

    return Host(cli, handler), plan


def interactive_step(host: Host, plan, api, prompt, answer, timeout=30, tool=None, files=(), box=None):
    """One turn whose can_use_tool requests get `answer`; what reached the host and the model."""
    plan["next"] = answer
    n = len(host.requests)
    before = {r["tool_use_id"] for r in api.tool_results()}
    t = host.turn(prompt, timeout=timeout)
    asks = requests_of(host, "can_use_tool", n)
    objs = [x for x in host.cli.lines[t["_mark"]:] if x["obj"]]
    return {
        "can_use_tool": [json.dumps({"type": "control_request", "request_id": a["request_id"],
                                     "request": a["request"]})[:2500] for a in asks],
        "lines": ["%+.3fs %s" % (x["t"] - t["_t"], line_kind(x["obj"])) for x in objs],
        "tool_result_lines": [short(x["raw"], 1500) for x in objs
                              if x["obj"].get("type") == "user" and "tool_result" in x["raw"]],
        "status_lines": [short(x["raw"], 400) for x in objs if line_kind(x["obj"]) == "system/status"],
        "model_got": [{k: r[k] for k in ("name", "text", "is_error")} for r in api.tool_results(tool)
                      if r["tool_use_id"] not in before],
        "result": (t["result"] or "")[:400], "subtype": t["subtype"], "num_turns": t["num_turns"],
        "permission_denials": t["permission_denials"], "init_permission_mode": t["init_permission_mode"],
        "files": {f: os.path.exists(os.path.join(box.cwd, f)) for f in files} if box else {},
        "result_s": t["result_s"],
    }


def probe_w(claude, api):
    """AskUserQuestion: availability, the can_use_tool request, answers, deny, a late answer, interrupt."""
    box = Sandbox(api)
    out: Dict[str, Any] = {}
    try:
        # Which interactive tools are offered with and without --permission-prompt-tool stdio.
        for label, base, extra in (("stdio", None, []), ("no_stdio", NO_STDIO, []),
                                   ("stdio_plan", None, ["--permission-mode", "plan"]),
                                   ("no_stdio_plan", NO_STDIO, ["--permission-mode", "plan"]),
                                   ("stdio_disallowed", None, ["--disallowed-tools", "AskUserQuestion"])):
            cli = Cli(claude, box, extra, base=base)
            host = Host(cli)
            try:
                t = host.turn(ASK_PROMPT)
                init = next((x["obj"] for x in cli.lines if x["obj"] and x["obj"].get("subtype") == "init"), {})
                out["offered_" + label] = {
                    "api_offers": [n for n in api.tools() if n in ("AskUserQuestion", "ExitPlanMode", "EnterPlanMode", "ToolSearch")],
                    "init_tools": [n for n in init.get("tools", []) if n in ("AskUserQuestion", "ExitPlanMode", "EnterPlanMode")],
                    "result": (t["result"] or "")[:200], "control_requests": [r.get("subtype") for r in t["control_requests"]]}
                cli.close()
            finally:
                cli.kill()

        cli = Cli(claude, box)
        host, plan = interactive_host(cli)
        try:
            out["answer_after_0.5s"] = interactive_step(host, plan, api, ASK_PROMPT, (
                "delay", 0.5, with_answers({"Which color?": "Blue", "Which sizes?": "S, L"})), tool="AskUserQuestion")
            out["answer_multiselect_as_list"] = interactive_step(host, plan, api, ASK_PROMPT, with_answers(
                {"Which color?": "Red", "Which sizes?": ["M", "L"]}), tool="AskUserQuestion")
            out["answer_label_not_offered"] = interactive_step(host, plan, api, "ask: Which color? Red | Blue", with_answers(
                {"Which color?": "Green please"}), tool="AskUserQuestion")
            out["allow_without_answers"] = interactive_step(host, plan, api, ASK_PROMPT, with_answers(None),
                                                            tool="AskUserQuestion")
            out["allow_with_response"] = interactive_step(host, plan, api, ASK_PROMPT, with_answers(
                None, response="W-FREE none of these"), tool="AskUserQuestion")
            out["answer_keyed_by_header"] = interactive_step(host, plan, api, "ask: Which color? Red | Blue", with_answers(
                {"Q1": "Red"}), tool="AskUserQuestion")
            out["deny"] = interactive_step(host, plan, api, ASK_PROMPT, lambda req: {
                "behavior": "deny", "message": "W-DENY the person is away"}, tool="AskUserQuestion")
            # a person who answers 35 s later: what the CLI prints meanwhile (nothing, see FACTS w)
            mark = len(cli.lines)
            late = interactive_step(host, plan, api, "ask: Which color? Red | Blue", (
                "delay", 35.0, with_answers({"Which color?": "Red"})), timeout=60, tool="AskUserQuestion")
            late["other_lines"] = [short(x["raw"], 300) for x in cli.lines[mark:] if x["obj"] and line_kind(x["obj"])
                                   not in ("system/init", "assistant", "user", "result/success",
                                           "control_request/can_use_tool")]
            out["answer_after_35s"] = late
            # interrupt while the question is pending
            plan["next"] = NO_ANSWER
            mark = len(cli.lines)
            nreq = len(host.requests)
            t_user = cli.user("ask: Which color? Red | Blue")
            got = host.run(lambda o: o.get("type") == "control_request"
                           and (o.get("request") or {}).get("subtype") == "can_use_tool", 15)
            time.sleep(1.0)
            ctl = host.ctl({"subtype": "interrupt"}, timeout=10)
            res = host.run(lambda o: o.get("type") == "result", 15)
            time.sleep(0.3)
            out["interrupt_while_pending"] = {
                "asked": bool(got), "control": ctl, "result_subtype": res["obj"].get("subtype") if res else None,
                "lines": lines_since(cli, mark, t_user, 700),
                "model_requests_after": len(api.messages_log()),
                "alive": cli.proc.poll() is None}
            nr = len(api.messages_log())
            nxt = host.turn("w after interrupt")
            out["interrupt_while_pending"]["next_turn"] = {"result": nxt["result"], "subtype": nxt["subtype"],
                                                           "model_saw": api.text(-1)[-600:] if len(api.messages_log()) > nr else None}
            # permission modes that skip the usual asks
            for mode in ("acceptEdits", "dontAsk"):
                host.ctl({"subtype": "set_permission_mode", "mode": mode})
                out["mode_" + mode] = interactive_step(host, plan, api, "ask: Which color? Red | Blue", with_answers(
                    {"Which color?": "Blue"}), tool="AskUserQuestion")
            host.ctl({"subtype": "set_permission_mode", "mode": "default"})
            cli.close()
        finally:
            cli.kill()

        # a PreToolUse hook (hotplex registers one at every start) sees the question first
        cli, host, init = start_hooked(claude, box, {"PreToolUse": [{"matcher": None, "hookCallbackIds": ["pre"]}]})
        try:
            host.handler = lambda req, line: (with_answers({"Which color?": "Red"})(req)
                                              if req.get("subtype") == "can_use_tool" else default_answer(req, line))
            t = host.turn("ask: Which color? Red | Blue")
            out["with_pretooluse_hook"] = {
                "requests": [json.dumps(r["request"])[:900] for r in host.requests],
                "result": (t["result"] or "")[:300]}
            cli.close()
        finally:
            cli.kill()
        return out
    finally:
        box.cleanup()


def plan_answers(*answers):
    """can_use_tool answers for a plan turn: the i-th ExitPlanMode request gets answers[i] (the
    last one repeats); every other tool is allowed as asked."""
    seen = {"n": 0}

    def answer(req):
        if req.get("tool_name") != "ExitPlanMode":
            return {"behavior": "allow", "updatedInput": req.get("input")}
        f = answers[min(seen["n"], len(answers) - 1)]
        seen["n"] += 1
        return f(req)
    return answer


def approve(perms=None, drop_plan=False, plan=None):
    def answer(req):
        inp = dict(req.get("input") or {})
        if drop_plan:
            inp.pop("plan", None)
            inp.pop("planFilePath", None)
        if plan is not None:
            inp["plan"] = plan
        out = {"behavior": "allow", "updatedInput": inp}
        if perms:
            out["updatedPermissions"] = perms
        return out
    return answer


def reject(message):
    return lambda req: {"behavior": "deny", "message": message}


def probe_x(claude, api):
    """plan mode: ExitPlanMode through can_use_tool; approve (which mode follows), reject with feedback, interrupt."""
    box = Sandbox(api)
    out: Dict[str, Any] = {}
    cli = Cli(claude, box, ["--permission-mode", "plan"])
    host, plan = interactive_host(cli)

    def step(name, prompt, answer, files=(), timeout=30):
        st = interactive_step(host, plan, api, prompt, answer, timeout=timeout, files=files, box=box)
        st["exit_plan_mode_asks"] = [c for c in st["can_use_tool"] if '"ExitPlanMode"' in c]
        st["other_asks"] = [json.loads(c)["request"]["tool_name"] for c in st["can_use_tool"]
                            if '"ExitPlanMode"' not in c]
        pdir = os.path.join(box.config, "plans")
        st["plan_files"] = {f: open(os.path.join(pdir, f)).read()[:300] for f in sorted(os.listdir(pdir))} \
            if os.path.isdir(pdir) else {}
        out[name] = st
        return st

    def mode_now():
        t = host.turn("x which mode")
        return t["init_permission_mode"]

    try:
        # 1. approve as asked: which mode does the CLI pick, is the next tool asked?
        step("approve_as_asked", "plan: # Plan A\\n1. touch x_a.txt\nbash: touch x_a.txt",
             plan_answers(approve()), ["x_a.txt"])
        out["approve_as_asked"]["mode_next_turn"] = mode_now()
        # 2. reject with feedback (the fake revises and proposes again), then approve with
        #    updatedPermissions setMode acceptEdits: is the next edit asked?
        out["set_plan_again"] = host.ctl({"subtype": "set_permission_mode", "mode": "plan"})
        step("reject_then_approve_acceptEdits", "plan: # Plan B\\n1. touch x_b.txt\nbash: touch x_b.txt",
             plan_answers(reject("X-FEEDBACK add a test step"),
                          approve([{"type": "setMode", "mode": "acceptEdits", "destination": "session"}])),
             ["x_b.txt"])
        out["reject_then_approve_acceptEdits"]["mode_next_turn"] = mode_now()
        # 3. entered plan from acceptEdits (set_permission_mode): a plain approval goes back to?
        host.ctl({"subtype": "set_permission_mode", "mode": "acceptEdits"})
        host.ctl({"subtype": "set_permission_mode", "mode": "plan"})
        step("approve_after_plan_entered_from_acceptEdits", "plan: # Plan C\\n1. touch x_c.txt\nbash: touch x_c.txt",
             plan_answers(approve(drop_plan=True)), ["x_c.txt"])
        out["approve_after_plan_entered_from_acceptEdits"]["mode_next_turn"] = mode_now()
        # 4. the host edits the plan while approving
        host.ctl({"subtype": "set_permission_mode", "mode": "default"})
        host.ctl({"subtype": "set_permission_mode", "mode": "plan"})
        step("approve_with_host_edited_plan", "plan: # Plan D", plan_answers(approve(plan="# Plan D edited by the host")))
        # 5. reject every proposal: the fake gives up; the CLI stays in plan mode?
        host.ctl({"subtype": "set_permission_mode", "mode": "plan"})
        step("reject_always", "plan: # Plan E\\n1. touch x_e.txt\nbash: touch x_e.txt",
             plan_answers(reject("X-NO")), ["x_e.txt"])
        out["reject_always"]["mode_next_turn"] = mode_now()
        # 6. outside plan mode: ExitPlanMode is refused by the CLI itself; EnterPlanMode
        host.ctl({"subtype": "set_permission_mode", "mode": "default"})
        step("exit_plan_mode_outside_plan", "plan: # Plan G", plan_answers(approve()))
        step("enter_plan_mode_tool", "tool: EnterPlanMode {}", plan_answers(approve()))
        out["enter_plan_mode_tool"]["mode_next_turn"] = mode_now()
        host.ctl({"subtype": "set_permission_mode", "mode": "plan"})
        # 7. interrupt while the approval is pending
        plan["next"] = NO_ANSWER
        mark = len(cli.lines)
        t_user = cli.user("plan: # Plan F")
        got = host.run(lambda o: o.get("type") == "control_request"
                       and (o.get("request") or {}).get("tool_name") == "ExitPlanMode", 15)
        time.sleep(1.0)
        ctl = host.ctl({"subtype": "interrupt"}, timeout=10)
        res = host.run(lambda o: o.get("type") == "result", 15)
        time.sleep(0.3)
        out["interrupt_while_pending"] = {
            "asked": bool(got), "control": _resp(ctl), "result_subtype": res["obj"].get("subtype") if res else None,
            "lines": ["%+.3fs %s" % (x["t"] - t_user, short(x["raw"], 400)) for x in cli.lines[mark:]
                      if x["obj"] and x["obj"].get("subtype") != "init"],
            "mode_next_turn": mode_now()}
        # what plan mode looks like on stdout: every line kind of this process
        kinds: Dict[str, int] = {}
        for x in cli.lines:
            if x["obj"]:
                kinds[line_kind(x["obj"])] = kinds.get(line_kind(x["obj"]), 0) + 1
        out["line_kinds_seen"] = kinds
        out["plan_like_lines"] = sorted({short(json.dumps({k: v for k, v in x["obj"].items() if k not in ("uuid", "session_id")}), 300)
                                         for x in cli.lines if x["obj"] and x["obj"].get("type") == "system"
                                         and x["obj"].get("subtype") != "init"})
        cli.close()
        return out
    finally:
        cli.kill()
        box.cleanup()


def _get(d, *path):
    for k in path:
        if isinstance(d, dict):
            d = d.get(k)
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return None
    return d


def summarize(r: Dict[str, Any]) -> List[str]:
    """One or a few lines per question, computed from the raw observations."""
    out = ["claude %s (%s)" % (r.get("version"), r.get("claude"))]
    a = r.get("a")
    if a and "turns" in a:
        t = a["turns"]
        out.append("a. result.usage per turn: %s; total_cost_usd per turn: %s; modelUsage inputTokens: %s"
                   % ([x["usage"] for x in t], [x["total_cost_usd"] for x in t],
                      [sum(m.get("inputTokens", 0) for m in (x["modelUsage"] or {}).values()) for x in t]))
    b = r.get("b")
    if b and "alive_after_4s_without_stdin" in b:
        out.append("b. stdout before first stdin line: %s; init %.3fs after the user line, session_id "
                   "matches --session-id: %s; initialize answered in %ss with lines %s"
                   % (b["stdout_lines_before_first_stdin_line"] or "nothing",
                      b["init_after_user_line_s"] or -1, b["init_session_id_matches"],
                      b["initialize_response_after_s"], b["lines_with_initialize_then_turn"]))
    c = r.get("c")
    if c and "second_process" in c:
        sp = c["second_process"]
        out.append("c. reused --session-id: exit %s after %ss, before stdin: %s, stderr %r, stdout %s"
                   % (sp["exit_code"], sp["exit_after_s"], sp["exited_before_stdin"], sp["stderr"],
                      sp["lines_before_stdin"] or "empty"))
        ri = c.get("session_id_reuse_after_no_turn_process") or {}
        out.append("c. id of a process that never got a user line: transcript files %s; reuse with "
                   "--session-id exit %s result %s; --resume exit %s stderr %r"
                   % (c.get("no_turn_transcript_files"), ri.get("exit_code"),
                      ri.get("result_fields"),
                      _get(c, "resume_after_no_turn_process", "exit_code"),
                      _get(c, "resume_after_no_turn_process", "stderr")))
        out.append("c. while the holder process runs: --session-id exit %s %r; --resume exit %s (ran a turn)"
                   % (_get(c, "session_id_while_holder_running", "exit_code"),
                      _get(c, "session_id_while_holder_running", "stderr"),
                      _get(c, "resume_while_holder_running", "exit_code")))
    d = r.get("d")
    if d and "resume" in d:
        x = d["resume"]
        out.append("d. --resume unknown id: exit %s after %ss, before stdin: %s, stderr %r, stdout %s"
                   % (x["exit_code"], x["exit_after_s"], x["exited_before_stdin"], x["stderr"],
                      x["lines_before_stdin"]))
    e = r.get("e")
    if e and "resume_after_kill" in e:
        k, cl = e["resume_after_kill"], e["resume_after_clean_exit"]
        out.append("e. after SIGKILL mid-turn: resume same id %s, recall %r, exit %s; after clean exit: "
                   "recall %r, total_cost_usd first resumed turn %s"
                   % (k["same_session_id"], k["recall_result"], k["exit_code"], cl["recall_result"],
                      cl["total_cost_usd_first_turn_after_resume"]))
    f = r.get("f")
    if f and "sequence_relative_to_interrupt" in f:
        out.append("f. interrupt: result %s %ss after the request, lines %s; next turn %r in %ss"
                   % (f["result_subtype"], f["result_after_interrupt_s"],
                      f["kinds_relative_to_interrupt"],
                      f["next_turn_result"], f["next_turn_s"]))
    g = r.get("g")
    if g and "rm_allow" in g:
        out.append("g. 'ls' asked permission: %s; rm allow -> dir exists %s; rm deny -> dir exists %s, "
                   "result %r, denials %s"
                   % (bool(g["ls"]["can_use_tool_request"]), g["rm_allow"]["dir_still_exists"],
                      g["rm_deny"]["dir_still_exists"], g["rm_deny"]["result"],
                      g["rm_deny"]["permission_denials"]))
    h = r.get("h")
    if h and "files_for_session" in h:
        out.append("h. transcript %s (cwd %s; odd cwd %r -> %s); resume from another cwd: exit %s %r"
                   % (h["files_for_session"], h["cwd"], h["odd_cwd"], h["odd_cwd_files"],
                      h["resume_from_other_cwd"]["exit_code"], h["resume_from_other_cwd"]["stderr"]))
    i = r.get("i")
    if i and "cold_spawn_to_result_s" in i:
        hot = sorted(i["hot_turn_ms"])
        out.append("i. cold spawn->result s: %s; hot turn ms: min %s median %s max %s"
                   % (i["cold_spawn_to_result_s"], hot[0] if hot else None,
                      hot[len(hot) // 2] if hot else None, hot[-1] if hot else None))
    j = r.get("j")
    if j and "init_fields" in j:
        out.append("j. init printed %s times for 3 turns; fields %s"
                   % (j["init_count_for_3_turns"], j["init_fields"]))
    k = r.get("k")
    if k and "close_stdin_mid_turn" in k:
        out.append("k. stdin closed mid-turn: %s; user line while busy: %s; interrupt while "
                   "can_use_tool pending: %s"
                   % (k["close_stdin_mid_turn"], k["user_line_while_busy"]["lines"],
                      [s[:120] for s in k["interrupt_while_permission_pending"]["lines_after_interrupt"]]))
    ll = r.get("l")
    if ll and "line_sequence" in ll:
        out.append("l. --replay-user-messages: echo keeps the host's uuid: %s; result names its message: %s; "
                   "lines: %s" % (ll["echo_keeps_host_uuid"], ll["result_names_message"],
                                  " ".join(ll["line_sequence"])))
    out.extend(summarize_control(r))
    return out


def _resp(ctl):
    """A control_response's payload (or its error) in one short string."""
    r = (ctl or {}).get("response") or {}
    if r.get("subtype") == "error":
        return "error %r%s" % (r.get("error"), " code=%s" % r["error_code"] if r.get("error_code") else "")
    return "success %s" % json.dumps(r.get("response"))[:120]


def summarize_control(r: Dict[str, Any]) -> List[str]:
    """Summary lines of the control-surface probes m..v."""
    out = []
    m = r.get("m")
    if m and "set_model_idle" in m:
        out.append("m. set_model idle -> %s; next turn models %s (init %s); mid-turn -> %s, that turn's "
                   "requests %s; model null -> %s then %s; unknown name -> %s then %s"
                   % (_resp(m["set_model_idle"]), m["after_idle_set"]["api_models"],
                      m["after_idle_set"]["init_model"], _resp(m["set_model_mid_turn"]["control"]),
                      m["set_model_mid_turn"]["models_of_this_turn_requests"], _resp(m["set_model_null"]),
                      m["after_null"]["api_models"], _resp(m["set_model_unknown_name"]),
                      m["after_unknown_name"]["api_models"]))
    n = r.get("n")
    if n and "plan" in n:
        rows = []
        for mode in ("plan", "acceptEdits", "dontAsk", "bypassPermissions", "default"):
            x = n.get(mode) or {}
            rows.append("%s: %s, turns %s" % (mode, _resp(x.get("control")), [
                ("asked" if t["asked"] else "not asked") + (" ran" if all(t["files"].values()) else " did not run")
                for t in x.get("turns", [])]))
        out.append("n. set_permission_mode " + "; ".join(rows) + "; bogus -> " + _resp(n.get("bogus_mode")))
        for k in ("allow_dangerously", "allow_dangerously_IS_SANDBOX"):
            x = n.get(k) or {}
            if "exit_at_start" in x:
                out.append("n. --allow-dangerously-skip-permissions%s: exit %s at start %r"
                           % (k[len("allow_dangerously"):], x["exit_at_start"], x.get("stderr")))
            elif x:
                out.append("n. --allow-dangerously-skip-permissions%s: bypassPermissions -> %s, touch asked: %s"
                           % (k[len("allow_dangerously"):], _resp(x.get("control")), bool(x["turn"]["asked"])))
    o = r.get("o")
    if o and "after_turn" in o:
        cu = ((o["after_turn"]["get_context_usage"].get("response") or {}).get("response") or {})
        out.append("o. get_context_usage keys %s totalTokens %s maxTokens %s; mcp_status -> %s; unknown subtype "
                   "-> %s; idle interrupt -> %s; unknown mid-turn -> %s, turn result %r"
                   % (sorted(cu.keys()), cu.get("totalTokens"), cu.get("maxTokens"),
                      _resp(o["after_turn"]["mcp_status"]), _resp(o["after_turn"]["unknown"]),
                      _resp(o["after_turn"]["interrupt_idle"]), _resp(o["mid_turn"]["unknown"]),
                      o["mid_turn"]["result"]))
    p = r.get("p")
    if p and "ls" in p:
        out.append("p. hook_callback order for `bash: ls` (each answered 1 s late): %s"
                   % ["%s@%ss" % (x["callback_id"], x["at_s"]) for x in p["ls"]["sequence"]])
        out.append("p. initialize answer fields: %s" % p["initialize"].get("response_keys"))
    q = r.get("q")
    if q and "allow" in q:
        out.append("q. PreToolUse answers: " + "; ".join(
            "%s: can_use_tool %s, files %s, model saw %s" % (k, "asked" if v["can_use_tool_asked"] else "not asked",
                                                          v["files"], v["model_saw"] or v["result"][:60])
            for k, v in q.items() if isinstance(v, dict) and "hook_answer" in v))
    rr = r.get("r")
    if rr and "post_additional_context" in rr:
        out.append("r. hook outputs: " + "; ".join(
            "%s: %r (%s, model saw %s)" % (k, (v.get("result") or "")[:60], v.get("subtype"), v.get("model_saw"))
            for k, v in rr.items() if isinstance(v, dict) and "api_requests_in_turn" in v and "model_saw" in v))
        out.append("r. hook answered with an error: " + "; ".join(
            "%s: tool ran %s, result %r" % (k[len("error_answer_"):], v.get("file_created"), (v.get("result") or "")[:50])
            for k, v in rr.items() if k.startswith("error_answer_") and isinstance(v, dict)))
        out.append("r. hook never answered: " + "; ".join(
            "%s: result after %ss %r, tool ran %s, cancel sent %s" % (
                k[len("unanswered_"):], v.get("result_within_s"), (v.get("result") or "")[:70], v.get("file_created"),
                [ln.split(" ", 1)[0] for ln in v.get("lines", []) if "control_cancel_request" in ln])
            for k, v in rr.items() if k.startswith("unanswered_") and isinstance(v, dict)))
    ss = r.get("s")
    if ss and "first_turn" in ss:
        ft = ss["first_turn"]
        out.append("s. SDK MCP: before stdin %s control requests; first turn %r, mcp %s, tools offered %s, "
                   "can_use_tool %s; isError -> %r; JSON-RPC error -> %r; refused -> status %s; "
                   "unanswered -> result %s"
                   % (ss["before_stdin"]["control_requests"], ft["turn"]["result"],
                      [x.split(" ", 2)[2][:40] for x in ft["mcp_sequence"]], ft.get("tools_offered_in_first_request"),
                      bool(ft["can_use_tool"]), ss["isError_result"]["result"], ss["jsonrpc_error"]["result"],
                      _resp(ss["mcp_refused"]["mcp_status"]), ss["mcp_unanswered"]["turn"]["result"]))
    t = r.get("t")
    if t and "addRules_session_prefix" in t:
        out.append("t. after addRules touch:* (session) `touch t_b` asked: %s; localSettings suggestion wrote %r; "
                   "deny+interrupt: result %s; acceptEdits `rm -rf` in cwd asked: %s"
                   % (bool(t["after_addRules_same_prefix"]["asked"]), t.get("settings_local_json_after_suggestion"),
                      t["deny_interrupt"]["subtype"], bool((t.get("rm_rf_in_cwd_under_acceptEdits") or {}).get("asked"))))
    u = r.get("u")
    if u and "fork" in u:
        f = u["fork"]["turns"]
        out.append("u. --resume A --fork-session: ids %s, recall %r, original unchanged %s; --session-id B with it "
                   "-> %s; --resume-session-at: recall %r, then plain --resume recall %r"
                   % ([x["result_session_id"] for x in f], f[0]["result"], u["original_transcript_unchanged_after_fork"],
                      u["fork_with_session_id"]["turns"][0]["result_session_id"] == u["fork_with_session_id"]["requested_id"]
                      if "turns" in u["fork_with_session_id"] else u["fork_with_session_id"],
                      _get(u, "resume_session_at_assistant", "turns", 0, "result"),
                      _get(u, "resume_after_resume_session_at", "turns", 0, "result")))
    v = r.get("v")
    if v and "max_turns_tool" in v:
        out.append("v. --max-turns 1 + tool: %s %s; --json-schema: StructuredOutput offered %s, structured_output %s; "
                   "image blocks at the API %s; --max-budget-usd: %s"
                   % (v["max_turns_tool"]["subtype"], v["max_turns_tool"]["errors"],
                      v["json_schema_called"]["tools_offered_StructuredOutput"],
                      v["json_schema_called"]["structured_output"], v["image"]["fake_got_image_blocks"],
                      [x["subtype"] for x in v["max_budget_usd_0.0003"]["turns"]]))
    w = r.get("w")
    if w and "answer_after_0.5s" in w:
        got = lambda k: ((w.get(k) or {}).get("model_got") or [{}])[-1].get("text", "")[:110]  # noqa: E731
        out.append("w. AskUserQuestion offered (API) with stdio %s, without %s; answers -> %r; list -> %r; "
                   "no answers -> %r; response -> %r; deny -> %r (is_error %s)"
                   % (w["offered_stdio"]["api_offers"], w["offered_no_stdio"]["api_offers"],
                      got("answer_after_0.5s"), got("answer_multiselect_as_list"), got("allow_without_answers"),
                      got("allow_with_response"), got("deny"),
                      ((w["deny"].get("model_got") or [{}])[-1]).get("is_error")))
        ip = w.get("interrupt_while_pending") or {}
        out.append("w. answered 35 s later -> %r after %ss, lines %s; interrupt while pending -> %s, cancel sent %s, "
                   "next turn %r; acceptEdits asked %s; dontAsk asked %s"
                   % (got("answer_after_35s"), w["answer_after_35s"]["result_s"], w["answer_after_35s"]["lines"],
                      ip.get("result_subtype"), any("control_cancel_request" in x for x in ip.get("lines", [])),
                      (ip.get("next_turn") or {}).get("result"), bool(w["mode_acceptEdits"]["can_use_tool"]),
                      bool(w["mode_dontAsk"]["can_use_tool"])))
    x = r.get("x")
    if x and "approve_as_asked" in x:
        a, b, c = x["approve_as_asked"], x["reject_then_approve_acceptEdits"], x["approve_after_plan_entered_from_acceptEdits"]
        out.append("x. ExitPlanMode asked with input keys %s; approve as asked -> status %s, next mode %s, touch asked %s; "
                   "reject+approve(setMode acceptEdits) -> model got %r, status %s, touch asked %s; plan entered from "
                   "acceptEdits, plain approve -> %s; reject always -> next mode %s; interrupt -> %s, next mode %s"
                   % (sorted(json.loads(a["exit_plan_mode_asks"][0])["request"]["input"]) if a["exit_plan_mode_asks"] else None,
                      [json.loads(s)["permissionMode"] for s in a["status_lines"]], a.get("mode_next_turn"),
                      "Bash" in a["other_asks"],
                      [m["text"][:40] for m in b["model_got"] if m["name"] == "ExitPlanMode"],
                      [json.loads(s)["permissionMode"] for s in b["status_lines"]], "Bash" in b["other_asks"],
                      c.get("mode_next_turn"), x["reject_always"].get("mode_next_turn"),
                      x["interrupt_while_pending"]["result_subtype"], x["interrupt_while_pending"]["mode_next_turn"]))
    return out


PROBES = {"a": probe_a, "b": probe_b, "c": probe_c, "d": probe_d, "e": probe_e, "f": probe_f,
          "g": probe_g, "h": probe_h, "i": probe_i, "j": probe_j,
          "k": probe_k, "l": probe_l, "m": probe_m, "n": probe_n, "o": probe_o, "p": probe_p,
          "q": probe_q, "r": probe_r, "s": probe_s, "t": probe_t, "u": probe_u, "v": probe_v,
          "w": probe_w, "x": probe_x}


def run_with_timeout(fn, args, timeout):
    box = {}

    def target():
        try:
            box["ok"] = fn(*args)
        except Exception:  # noqa: BLE001
            box["err"] = traceback.format_exc()

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        return {"error": "probe timed out after %ss" % timeout}
    return box.get("ok", {"error": box.get("err")})


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("claude", nargs="?", default=os.environ.get("CLAUDE_BIN", DEFAULT_CLAUDE))
    ap.add_argument("--only", default=",".join(PROBES))
    ap.add_argument("--json", default=os.path.join(HERE, ".probe-results.json"),
                    help="where to store the raw observations (default: tests/e2e/.probe-results.json)")
    ap.add_argument("--timeout", type=float, default=180, help="per-probe time box, seconds")
    args = ap.parse_args(argv)
    args.claude = os.path.abspath(args.claude)  # the CLI runs in temp working directories
    if not os.path.exists(args.claude):
        sys.exit("claude not found at %s; run tests/e2e/install-claude.sh" % args.claude)
    version = subprocess.run([args.claude, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    results = {"claude": args.claude, "version": version}
    with FakeAnthropic() as api:
        for key in args.only.split(","):
            key = key.strip()
            api.reset()
            t = time.monotonic()
            print("== probe %s: %s" % (key, PROBES[key].__doc__.strip()), flush=True)
            res = run_with_timeout(PROBES[key], (args.claude, api), args.timeout)
            res["_probe_seconds"] = round(time.monotonic() - t, 1)
            results[key] = res
            print(json.dumps(res, indent=2)[:20000], flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
        print("raw observations written to", args.json)
    print("\n==== SUMMARY (see FACTS.md for the interpretation) ====")
    for line in summarize(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
