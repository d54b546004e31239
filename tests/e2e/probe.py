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

    def __init__(self, claude: str, box: Sandbox, extra: List[str] = (), cwd: Optional[str] = None):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([claude] + BASE_ARGS + list(extra), cwd=cwd or box.cwd,
                                     env=box.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.lines: List[Dict[str, Any]] = []  # {"t", "raw", "obj"}
        self.q: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.stderr = b""
        self._cursor = 0
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
        t = self.now()
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()
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
    return out


PROBES = {"a": probe_a, "b": probe_b, "c": probe_c, "d": probe_d, "e": probe_e, "f": probe_f,
          "g": probe_g, "h": probe_h, "i": probe_i, "j": probe_j,
          "k": probe_k, "l": probe_l}


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
    ap.add_argument("--timeout", type=float, default=120, help="per-probe time box, seconds")
    args = ap.parse_args(argv)
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
