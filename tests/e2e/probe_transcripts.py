#!/usr/bin/env python3
"""Probe aa (tests/e2e/FACTS.md): where the real Claude Code CLI keeps a session's transcript,
when it writes it, how a copy resumes on another "host", and the CLI's own mirror
(`--session-mirror` -> `transcript_mirror` frames) that the Agent SDK's SessionStore uses.

Usage:
    python3 tests/e2e/probe_transcripts.py [PATH_TO_CLAUDE] [--only location,flush,...]
                                           [--turns N] [--json FILE]

Sections (all by default, in this order):

- location: the project key rule (plain, symlinked and long (>200 chars) workdirs, a
            non-ASCII name), the entries of a transcript, every other file a session leaves in
            $CLAUDE_CONFIG_DIR (Bash, Write/Edit, a task tool, an Agent sub-agent).
- flush:    when a turn's entries reach the file relative to its `result` line (`--turns`
            turns, the file polled every ms), with and without `--session-mirror`; what stdin
            EOF, SIGTERM and SIGKILL right after a `result` leave on disk.
- restore:  the .jsonl copied into another CLAUDE_CONFIG_DIR under the key of a different
            workdir, then `--resume` there (the fake API's `recall` shows what the model got);
            the copy under the old key only; with and without the sub-agent files.
- concurrent: two processes `--resume` the same session at once: the file, its chains, any
            lock; what a third `--resume` sees.
- mirror:   `--session-mirror`: every `transcript_mirror` frame (shape, batching, timing vs
            `result`), the frames against the file, sub-agent frames, control requests,
            `--no-session-persistence`, and a resume from the mirrored entries written to a
            fresh CLAUDE_CONFIG_DIR under a different workdir.
- shared:   two concurrent processes sharing one CLAUDE_CONFIG_DIR: every rewrite of
            `.claude.json` (polled every 5 ms) and what changed.

It reuses probe.py's harness (Sandbox, Cli, Host) and fake_anthropic.py on 127.0.0.1. Prints
the observations as JSON and a summary. A whole run takes about 50 s per version (2 cores).
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import probe  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402

REPLAY = ["--replay-user-messages"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def js_hash36(s: str) -> str:
    """The CLI's 32-bit string hash (`h = (h << 5) - h + c | 0` over UTF-16 code units),
    abs, base 36."""
    units = s.encode("utf-16-le")
    h = 0
    for i in range(0, len(units), 2):
        h = ((h << 5) - h + int.from_bytes(units[i:i + 2], "little")) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    h = abs(h)
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        h, r = divmod(h, 36)
        out = digits[r] + out
        if h == 0:
            return out


def project_key(path: str) -> str:
    """Every UTF-16 code unit that is not [a-zA-Z0-9] becomes '-'; past 200 characters the
    first 200 plus '-' plus js_hash36(path)."""
    units = path.encode("utf-16-le")
    chars = []
    for i in range(0, len(units), 2):
        c = int.from_bytes(units[i:i + 2], "little")
        chars.append(chr(c) if c < 128 and chr(c).isalnum() else "-")
    key = "".join(chars)
    return key if len(key) <= 200 else "%s-%s" % (key[:200], js_hash36(path))


def tree(root: str) -> Dict[str, int]:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                out[os.path.relpath(p, root)] = os.path.getsize(p)
            except OSError:
                pass
    return dict(sorted(out.items()))


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for ln in fh:
                ln = ln.strip()
                if ln:
                    try:
                        out.append(json.loads(ln))
                    except ValueError:
                        out.append({"_unparsed": ln[:80]})
    except OSError:
        pass
    return out


def entry_label(e: Dict[str, Any]) -> str:
    """type, plus the text of user/assistant entries, short."""
    t = e.get("type", "?")
    if t in ("user", "assistant"):
        c = (e.get("message") or {}).get("content")
        if isinstance(c, str):
            return "%s %r" % (t, c[:40])
        if isinstance(c, list) and c:
            b = c[0]
            if b.get("type") == "text":
                return "%s %r" % (t, b.get("text", "")[:40])
            if b.get("type") == "tool_use":
                return "%s tool_use:%s" % (t, b.get("name"))
            if b.get("type") == "tool_result":
                return "%s tool_result" % t
            return "%s %s" % (t, b.get("type"))
    if t == "attachment":
        return "attachment:%s" % ((e.get("attachment") or {}).get("type"))
    if t == "system":
        return "system:%s" % e.get("subtype")
    return t


def user_texts(entries: List[Dict[str, Any]]) -> List[str]:
    out = []
    for e in entries:
        if e.get("type") == "user" and not e.get("isMeta"):
            c = (e.get("message") or {}).get("content")
            if isinstance(c, str):
                out.append(c)
            elif isinstance(c, list):
                out.extend(b.get("text", "") for b in c if b.get("type") == "text")
    return out


def fsnap(path: str) -> Optional[Dict[str, Any]]:
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return {"mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "size": st.st_size,
            "sha1": hashlib.sha1(data).hexdigest()[:12], "data": data}


def mirror_frames(cli: probe.Cli, since: int = 0, until: Optional[int] = None) -> List[Dict[str, Any]]:
    return [x for x in cli.lines[since:until] if x["obj"] and x["obj"].get("type") == "transcript_mirror"]


class Poller(threading.Thread):
    """Polls one file every `step` s; records each new complete line with the time it was first
    seen (the Cli's clock)."""

    def __init__(self, cli: probe.Cli, path: str, step: float = 0.001):
        super().__init__(daemon=True)
        self.cli, self.path, self.step = cli, path, step
        self.seen: List[Dict[str, Any]] = []  # {"t", "obj"}
        self.stop = threading.Event()
        self._off = 0
        self._buf = b""

    def run(self):
        while not self.stop.is_set():
            self.poll()
            time.sleep(self.step)
        self.poll()

    def poll(self):
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._off)
                data = fh.read()
        except OSError:
            return
        if not data:
            return
        t = self.cli.now()
        self._off += len(data)
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for ln in lines:
            if ln.strip():
                try:
                    self.seen.append({"t": t, "obj": json.loads(ln)})
                except ValueError:
                    self.seen.append({"t": t, "obj": {"_unparsed": True}})

    def first(self, pred) -> Optional[float]:
        return next((x["t"] for x in self.seen if pred(x["obj"])), None)


def assistant_says(text: str):
    def pred(o):
        if o.get("type") != "assistant":
            return False
        c = (o.get("message") or {}).get("content") or []
        return any(b.get("type") == "text" and b.get("text") == text for b in c if isinstance(b, dict))
    return pred


def run_one(claude: str, box: probe.Sandbox, extra: List[str], prompts: List[str], cwd: Optional[str] = None,
            env: Optional[Dict[str, str]] = None, timeout: float = 30) -> Dict[str, Any]:
    """One process, the prompts as turns, stdin closed; results and exit."""
    cli = probe.Cli(claude, box, extra, cwd=cwd, env=env)
    host = probe.Host(cli)
    out: Dict[str, Any] = {"turns": []}
    try:
        for p in prompts:
            t = host.turn(p, timeout=timeout)
            out["turns"].append({"result": t["result"], "subtype": t["subtype"], "session_id": t["session_id"],
                                 "init_cwd": (next((x["obj"] for x in cli.lines[t["_mark"]:]
                                                    if x["obj"] and x["obj"].get("subtype") == "init"), {})
                                              .get("cwd"))})
            if t["result"] is None:
                break
        out["exit"] = cli.close(15)
        out["stderr"] = cli.err_text()[:300]
        out["control_requests"] = [r["request"].get("subtype") for r in host.requests]
        out["_cli"] = cli
        return out
    finally:
        cli.kill()


def settle(host: probe.Host, seconds: float) -> List[str]:
    """Answer whatever the CLI prints for `seconds` (a background sub-agent's follow-up turn);
    the kinds of those lines."""
    mark = len(host.cli.lines)
    host.run(lambda o: False, seconds)
    return [probe.line_kind(x["obj"]) for x in host.cli.lines[mark:] if x["obj"]]


def strip_private(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: strip_private(v) for k, v in d.items() if not k.startswith("_")}
    if isinstance(d, list):
        return [strip_private(x) for x in d]
    return d


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------

def sec_location(claude: str, api: FakeAnthropic) -> Dict[str, Any]:
    """project key rule; transcript entries; every file a session leaves."""
    box = probe.Sandbox(api)
    out: Dict[str, Any] = {}
    try:
        # 1. a session using Bash, Write/Edit, a task tool and a sub-agent
        sid = str(uuid.uuid4())
        w = box.cwd
        before_tmp = set(os.listdir("/tmp"))
        cli = probe.Cli(claude, box, ["--session-id", sid] + REPLAY)
        host = probe.Host(cli)
        f = os.path.join(w, "a.txt")
        turns = {}
        try:
            turns["hello"] = host.turn("loc hello")["result"]
            offered = api.tools()
            out["tools_offered"] = offered
            turns["bash"] = host.turn("bash: echo hi")["result"]
            turns["write"] = host.turn("tool: Write %s" % json.dumps({"file_path": f, "content": "one\n"}))["result"]
            turns["read"] = host.turn("tool: Read %s" % json.dumps({"file_path": f}))["result"]
            turns["edit"] = host.turn("tool: Edit %s" % json.dumps(
                {"file_path": f, "old_string": "one", "new_string": "two"}))["result"]
            for name, inp in (("TodoWrite", {"todos": [{"content": "probe todo", "status": "pending",
                                                         "activeForm": "probing"}]}),
                              ("TaskCreate", {"subject": "probe task", "description": "probe"})):
                if name in offered:
                    turns[name] = host.turn("tool: %s %s" % (name, json.dumps(inp)))["result"]
            agent_tool = "Agent" if "Agent" in offered else ("Task" if "Task" in offered else None)
            if agent_tool:
                t = host.turn("tool: %s %s" % (agent_tool, json.dumps(
                    {"description": "probe sub", "prompt": "sub hello", "subagent_type": "general-purpose"})),
                    timeout=60)
                turns["agent"] = t["result"]
            out["file_content_after_edit"] = open(f).read() if os.path.exists(f) else None
            out["exit"] = cli.close(15)
        finally:
            cli.kill()
        out["turns"] = turns
        key = project_key(os.path.realpath(w))
        out["cwd"] = w
        out["expected_key"] = key
        out["config_tree"] = tree(box.config)
        out["files_naming_session"] = [p for p in out["config_tree"] if sid in p]
        out["home_outside_config"] = [p for p in tree(box.home) if not p.startswith(".claude" + os.sep)]
        out["new_tmp_entries"] = sorted(x for x in set(os.listdir("/tmp")) - before_tmp
                                        if "claude" in x.lower())
        main = os.path.join(box.config, "projects", key, sid + ".jsonl")
        entries = read_jsonl(main)
        out["transcript_exists_at_expected_key"] = os.path.exists(main)
        out["entry_labels"] = [entry_label(e) for e in entries]
        out["entry_keys_by_type"] = {}
        for e in entries:
            out["entry_keys_by_type"].setdefault(e.get("type"), sorted(e.keys()))
        out["distinct_cwd_fields"] = sorted({e["cwd"] for e in entries if "cwd" in e})
        subdir = os.path.join(box.config, "projects", key, sid)
        out["session_dir_tree"] = tree(subdir) if os.path.isdir(subdir) else None
        if os.path.isdir(os.path.join(subdir, "subagents")):
            for p in sorted(tree(os.path.join(subdir, "subagents"))):
                full = os.path.join(subdir, "subagents", p)
                if p.endswith(".jsonl"):
                    se = read_jsonl(full)
                    out.setdefault("subagent_files", {})[p] = {
                        "labels": [entry_label(e) for e in se],
                        "first_entry_keys": sorted(se[0].keys()) if se else None,
                        "first_entry_sample": {k: se[0].get(k) for k in ("isSidechain", "agentId", "sessionId",
                                                                          "parentUuid", "cwd")} if se else None}
                elif p.endswith(".json"):
                    out.setdefault("subagent_files", {})[p] = json.load(open(full))

        # 1b. the same edits with the SDK's file checkpointing switched on (file-history)
        s1b = str(uuid.uuid4())
        f2 = os.path.join(w, "b.txt")
        r = run_one(claude, box, ["--session-id", s1b] + REPLAY, [
            "tool: Write %s" % json.dumps({"file_path": f2, "content": "one\n"}),
            "tool: Edit %s" % json.dumps({"file_path": f2, "old_string": "one", "new_string": "two"})],
            env={"CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING": "true"})
        out["checkpointing"] = {"results": [t["result"] for t in r["turns"]],
                                "files_naming_session": [p for p in tree(box.config) if s1b in p],
                                "file_history_tree": tree(os.path.join(box.config, "file-history")),
                                "entry_types": sorted({e.get("type") for e in read_jsonl(os.path.join(
                                    box.config, "projects", key, s1b + ".jsonl"))})}

        # 2. symlinked workdir: the process cwd is the link (PWD too, as a shell sets it)
        real = os.path.join(box.root, "real-dir")
        link = os.path.join(box.root, "link-dir")
        os.makedirs(real)
        os.symlink(real, link)
        for label, env in (("symlink_cwd", None), ("symlink_cwd_with_PWD", {"PWD": link})):
            s2 = str(uuid.uuid4())
            r = run_one(claude, box, ["--session-id", s2], ["sym"], cwd=link, env=env)
            out[label] = {"init_cwd": r["turns"][0]["init_cwd"],
                          "files": [p for p in tree(box.config) if s2 in p],
                          "key_of_link": project_key(link), "key_of_real": project_key(real)}
        # resume from the real path of a session made through the link
        r = run_one(claude, box, ["--resume", s2], ["recall"], cwd=real)
        out["symlink_resume_from_real_path"] = r["turns"][0]["result"] if r["turns"] else r["stderr"]

        # 3. long workdir (> 200 chars once sanitized) and a non-ASCII name
        long_dir = os.path.join(box.root, "L" * 60, "m.m" * 20, "n_n" * 20, "o" * 40)
        odd_dir = os.path.join(box.root, "caf\u00e9 d\u00e9j\u00e0")
        for label, d in (("long_cwd", long_dir), ("non_ascii_cwd", odd_dir)):
            os.makedirs(d)
            s3 = str(uuid.uuid4())
            r = run_one(claude, box, ["--session-id", s3], ["long"], cwd=d)
            got = [p for p in tree(box.config) if s3 in p]
            made = got[0].split(os.sep)[1] if got else None
            out[label] = {"cwd_len": len(d), "dir_made": made, "dir_len": len(made) if made else None,
                          "predicted": project_key(d), "matches_prediction": made == project_key(d),
                          "first_turn": r["turns"][0]["result"] if r["turns"] else None}
        return out
    finally:
        box.cleanup()


def measure_flush(claude: str, box: probe.Sandbox, turns: int, mirror: bool) -> Dict[str, Any]:
    sid = str(uuid.uuid4())
    cli = probe.Cli(claude, box, ["--session-id", sid] + REPLAY + (["--session-mirror"] if mirror else []))
    host = probe.Host(cli)
    path = os.path.join(box.config, "projects", project_key(os.path.realpath(box.cwd)), sid + ".jsonl")
    poll = Poller(cli, path)
    poll.start()
    rows = []
    try:
        for i in range(turns):
            text = "flush turn %d" % i
            mark = len(cli.lines)
            host.turn(text, timeout=30)
            res_line = next((x for x in cli.lines[mark:] if x["obj"] and x["obj"].get("type") == "result"), None)
            if not res_line:
                rows.append({"turn": i, "result": None})
                continue
            time.sleep(0.25)  # let the writer catch up before the next turn
            on_disk = poll.first(assistant_says("echo: " + text))
            row = {"turn": i, "assistant_on_disk_minus_result_ms":
                   round((on_disk - res_line["t"]) * 1000, 1) if on_disk is not None else None}
            if mirror:
                fr = [x for x in mirror_frames(cli, mark) if x["t"] <= res_line["t"] + 0.25]
                row["frames_before_result"] = sum(1 for x in fr if x["t"] <= res_line["t"])
                row["frames_after_result_250ms"] = sum(1 for x in fr if x["t"] > res_line["t"])
                row["frame_with_assistant_minus_result_ms"] = next(
                    (round((x["t"] - res_line["t"]) * 1000, 1) for x in fr
                     if any(assistant_says("echo: " + text)(e) for e in x["obj"]["entries"])), None)
            # what the file holds after the result, in order (labels of this turn's lines)
            row["entries_after_result"] = [entry_label(x["obj"]) for x in poll.seen if x["t"] > res_line["t"]
                                           and x["t"] <= res_line["t"] + 0.25]
            rows.append(row)
        n_before = len(poll.seen)
        t_close = cli.now()
        rc = cli.close(15)
        time.sleep(0.05)
        poll.stop.set()
        poll.join(2)
        return {"turns": rows, "exit": rc,
                "appended_on_stdin_eof": [entry_label(x["obj"]) for x in poll.seen[n_before:]],
                "eof_append_after_close_ms": [round((x["t"] - t_close) * 1000) for x in poll.seen[n_before:]],
                "frames_after_stdin_eof": [[entry_label(e) for e in x["obj"]["entries"]]
                                           for x in mirror_frames(cli) if x["t"] >= t_close] if mirror else None}
    finally:
        poll.stop.set()
        cli.kill()


def after_result_then(claude: str, box: probe.Sandbox, how: str) -> Dict[str, Any]:
    """A turn, then at its result line: close stdin, SIGTERM or SIGKILL. What is on disk."""
    sid = str(uuid.uuid4())
    cli = probe.Cli(claude, box, ["--session-id", sid] + REPLAY)
    path = os.path.join(box.config, "projects", project_key(os.path.realpath(box.cwd)), sid + ".jsonl")
    try:
        cli.turn("first %s" % how)
        time.sleep(0.3)
        n0 = len(read_jsonl(path))
        cli.user("second %s" % how)
        r = cli.result(30)
        t = cli.now()
        if how == "eof":
            rc = cli.close(15)
        else:
            os.killpg(cli.proc.pid, signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
            rc = cli.wait(15)
        waited = round(cli.now() - t, 3)
        entries = read_jsonl(path)
        return {"result": r["obj"].get("result") if r else None, "exit": rc, "exit_after_s": waited,
                "second_turn_entries_on_disk": [entry_label(e) for e in entries[n0:]],
                "assistant_on_disk": any(assistant_says("echo: second %s" % how)(e) for e in entries)}
    finally:
        cli.kill()


def sec_flush(claude: str, api: FakeAnthropic, turns: int = 10) -> Dict[str, Any]:
    """entries on disk vs the result line; stdin EOF / SIGTERM / SIGKILL right after a result."""
    box = probe.Sandbox(api)
    try:
        out = {"plain": measure_flush(claude, box, turns, False),
               "session_mirror": measure_flush(claude, box, turns, True)}
        for how in ("eof", "sigterm", "sigkill"):
            out["right_after_result_" + how] = after_result_then(claude, box, how)
        for k in ("plain", "session_mirror"):
            d = [r["assistant_on_disk_minus_result_ms"] for r in out[k]["turns"]
                 if r.get("assistant_on_disk_minus_result_ms") is not None]
            out[k]["assistant_on_disk_minus_result_ms_range"] = [min(d), max(d)] if d else None
        return out
    finally:
        box.cleanup()


def sec_restore(claude: str, api: FakeAnthropic) -> Dict[str, Any]:
    """copy the transcript to another config dir under another workdir's key; --resume there."""
    a = probe.Sandbox(api)
    others: List[probe.Sandbox] = []
    out: Dict[str, Any] = {}
    try:
        sid = str(uuid.uuid4())
        offered = []
        cli = probe.Cli(claude, a, ["--session-id", sid] + REPLAY)
        host = probe.Host(cli)
        try:
            out["host_a"] = [host.turn("alpha")["result"]]
            offered = api.tools()
            out["host_a"].append(host.turn("beta")["result"])
            agent_tool = "Agent" if "Agent" in offered else ("Task" if "Task" in offered else None)
            if agent_tool:
                out["host_a"].append(host.turn("tool: %s %s" % (agent_tool, json.dumps(
                    {"description": "probe sub", "prompt": "sub remembers gamma",
                     "subagent_type": "general-purpose"})), timeout=60)["result"])
                out["host_a_after_agent"] = settle(host, 3.0)
            cli.close(15)
        finally:
            cli.kill()
        key_a = project_key(os.path.realpath(a.cwd))
        src = os.path.join(a.config, "projects", key_a, sid + ".jsonl")
        src_dir = os.path.join(a.config, "projects", key_a, sid)
        n_src = len(read_jsonl(src))
        out["source_lines"] = n_src
        out["source_session_dir"] = tree(src_dir) if os.path.isdir(src_dir) else None

        def host_b(label: str, under_key_of: str, with_dir: bool) -> Dict[str, Any]:
            b = probe.Sandbox(api)
            others.append(b)
            w2 = os.path.join(b.root, "elsewhere", "proj-b")
            os.makedirs(w2)
            k = project_key(os.path.realpath(w2)) if under_key_of == "new" else key_a
            dst_dir = os.path.join(b.config, "projects", k)
            os.makedirs(dst_dir)
            shutil.copy2(src, os.path.join(dst_dir, sid + ".jsonl"))
            if with_dir and os.path.isdir(src_dir):
                shutil.copytree(src_dir, os.path.join(dst_dir, sid))
            before = set(tree(b.config))
            n0 = api.requests
            r = run_one(claude, b, ["--resume", sid] + REPLAY, ["recall", "after restore"], cwd=w2)
            res = {"cwd": w2, "copied_under": "key of the new workdir" if under_key_of == "new" else "old key only",
                   "with_session_dir": with_dir, "turns": [{k2: t[k2] for k2 in ("result", "session_id", "init_cwd")}
                                                           for t in r["turns"]],
                   "exit": r["exit"], "stderr": r["stderr"], "api_requests": api.requests - n0,
                   "new_files": sorted(set(tree(b.config)) - before)}
            dst = os.path.join(dst_dir, sid + ".jsonl")
            ents = read_jsonl(dst)
            res["lines_before_after"] = [n_src, len(ents)]
            res["cwd_fields_of_new_entries"] = sorted({e["cwd"] for e in ents[n_src:] if "cwd" in e})
            if under_key_of == "new" and r["turns"] and r["turns"][0]["result"]:
                # the model saw the sub-agent's answer through the main transcript's tool_result
                res["model_saw_subagent_result"] = api.saw("sub remembers gamma")
            return res

        out["new_key_jsonl_only"] = host_b("a", "new", False)
        out["new_key_with_session_dir"] = host_b("b", "new", True)
        out["old_key_only"] = host_b("c", "old", False)
        return out
    finally:
        a.cleanup()
        for b in others:
            b.cleanup()


def sec_concurrent(claude: str, api: FakeAnthropic) -> Dict[str, Any]:
    """two processes --resume one session at once (closed in both orders)."""
    return {"p1_closes_first": concurrent_once(claude, api, True),
            "p2_closes_first": concurrent_once(claude, api, False)}


def concurrent_once(claude: str, api: FakeAnthropic, p1_first: bool) -> Dict[str, Any]:
    box = probe.Sandbox(api)
    out: Dict[str, Any] = {}
    try:
        sid = str(uuid.uuid4())
        run_one(claude, box, ["--session-id", sid], ["base"])
        path = os.path.join(box.config, "projects", project_key(os.path.realpath(box.cwd)), sid + ".jsonl")
        n0 = len(read_jsonl(path))
        p1 = probe.Cli(claude, box, ["--resume", sid] + REPLAY)
        p2 = probe.Cli(claude, box, ["--resume", sid] + REPLAY)
        h1, h2 = probe.Host(p1), probe.Host(p2)
        try:
            seq = []
            for h, text in ((h1, "p1 one"), (h2, "p2 one"), (h1, "p1 two"), (h2, "recall"), (h1, "recall")):
                seq.append({"proc": "p1" if h is h1 else "p2", "prompt": text, "result": h.turn(text)["result"]})
            out["turns"] = seq
            # open files of both processes inside the config dir, and any lock-like names
            fds = {}
            for name, c in (("p1", p1), ("p2", p2)):
                pids = [c.proc.pid] + [int(x) for x in subprocess.run(
                    ["pgrep", "-P", str(c.proc.pid)], capture_output=True, text=True).stdout.split()]
                names = set()
                for pid in pids:
                    try:
                        for fd in os.listdir("/proc/%d/fd" % pid):
                            try:
                                tgt = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                            except OSError:
                                continue
                            if tgt.startswith(box.root):
                                names.add(os.path.relpath(tgt, box.root))
                    except OSError:
                        pass
                fds[name] = sorted(names)
            out["open_files_under_sandbox_while_idle"] = fds
            out["lock_like_files"] = [p for p in tree(box.root) if "lock" in p.lower()]
            for c in ((p1, p2) if p1_first else (p2, p1)):
                c.close(15)
        finally:
            p1.kill()
            p2.kill()
        ents = read_jsonl(path)[n0:]
        out["appended_entries"] = [entry_label(e) for e in ents]
        by_uuid = {e.get("uuid"): e for e in read_jsonl(path) if e.get("uuid")}
        parents: Dict[str, int] = {}
        for e in ents:
            if e.get("parentUuid"):
                parents[e["parentUuid"]] = parents.get(e["parentUuid"], 0) + 1
        out["parents_with_two_children"] = [entry_label(by_uuid[p]) for p, n in parents.items()
                                            if n > 1 and p in by_uuid]
        r = run_one(claude, box, ["--resume", sid], ["recall"])
        out["third_resume_recall"] = r["turns"][0]["result"] if r["turns"] else r["stderr"]
        return out
    finally:
        box.cleanup()


def sec_mirror(claude: str, api: FakeAnthropic) -> Dict[str, Any]:
    """--session-mirror: frames, their shape and timing, vs the file; resume from them."""
    box = probe.Sandbox(api)
    others: List[probe.Sandbox] = []
    out: Dict[str, Any] = {}
    try:
        sid = str(uuid.uuid4())
        cli = probe.Cli(claude, box, ["--session-id", sid, "--session-mirror"] + REPLAY)
        host = probe.Host(cli)
        turns = []
        try:
            prompts = ["m one", "bash: echo hi"]
            t0 = host.turn(prompts[0])
            agent_tool = "Agent" if "Agent" in api.tools() else ("Task" if "Task" in api.tools() else None)
            if agent_tool:
                prompts.append("tool: %s %s" % (agent_tool, json.dumps(
                    {"description": "probe sub", "prompt": "sub hello", "subagent_type": "general-purpose"})))
            prompts.append("recall")
            time.sleep(0.4)  # frames that follow a result stay with their turn
            recs = [t0]
            for p in prompts[1:]:
                recs.append(host.turn(p, timeout=60))
                if p.startswith("tool: "):  # 2.1.332 runs the sub-agent in the background
                    out["after_agent_turn"] = settle(host, 3.0)
                time.sleep(0.4)
            for p, t in zip(prompts, recs):
                mark = t["_mark"]
                lines = cli.lines[mark:]
                res = next((x for x in lines if x["obj"] and x["obj"].get("type") == "result"), None)
                frames = mirror_frames(cli, mark)
                frames = [x for x in frames if res is None or x["t"] <= res["t"] + 0.3]
                turns.append({
                    "prompt": p[:30], "result": t["result"], "kinds": t["kinds"],
                    "frames": [{"at_minus_result_ms": round((x["t"] - res["t"]) * 1000, 1) if res else None,
                                "file": os.path.relpath(x["obj"]["filePath"], box.config),
                                "keys": sorted(x["obj"].keys()), "n": len(x["obj"]["entries"]),
                                "entries": [entry_label(e) for e in x["obj"]["entries"]]} for x in frames]})
            t_close = cli.now()
            out["exit"] = cli.close(15)
            time.sleep(0.1)
        finally:
            cli.kill()
        out["turns"] = turns
        out["frames_after_stdin_eof"] = [{"file": os.path.relpath(x["obj"]["filePath"], box.config),
                                          "entries": [entry_label(e) for e in x["obj"]["entries"]]}
                                         for x in mirror_frames(cli) if x["t"] >= t_close]
        out["control_requests_from_cli"] = [r["request"].get("subtype") for r in host.requests]
        out["stdout_line_kinds"] = sorted({probe.line_kind(x["obj"]) for x in cli.lines if x["obj"]})
        out["frame_example"] = probe.short(mirror_frames(cli)[-1]["raw"], 700) if mirror_frames(cli) else None
        out["stderr"] = cli.err_text()[:300]
        # frames vs files
        by_file: Dict[str, List[Dict[str, Any]]] = {}
        for x in mirror_frames(cli):
            by_file.setdefault(x["obj"]["filePath"], []).extend(x["obj"]["entries"])
        cmp = {}
        for fp, mirrored in by_file.items():
            rel = os.path.relpath(fp, box.config)
            on_disk = read_jsonl(fp)
            non_meta = [e for e in mirrored if e.get("type") != "agent_metadata"]
            cmp[rel] = {"mirrored": len(mirrored), "on_disk": len(on_disk),
                        "identical_in_order": non_meta == on_disk,
                        "mirrored_types_not_on_disk": sorted({e.get("type") for e in mirrored} -
                                                             {e.get("type") for e in on_disk}),
                        "disk_types_not_mirrored": sorted({e.get("type") for e in on_disk} -
                                                          {e.get("type") for e in mirrored})}
            # 2.1.332 writes request records (`api-request*`) to disk only
            cmp[rel]["identical_without_api_request_records"] = non_meta == [
                e for e in on_disk if not str(e.get("type", "")).startswith("api-request")]
            if len(non_meta) != len(on_disk) or non_meta != on_disk:
                cmp[rel]["first_difference_at"] = next((i for i, (m, d) in enumerate(zip(non_meta, on_disk)) if m != d),
                                                       min(len(non_meta), len(on_disk)))
        out["frames_vs_files"] = cmp
        sizes = [len(x["raw"]) for x in mirror_frames(cli)]
        out["frame_bytes"] = {"count": len(sizes), "max": max(sizes) if sizes else None,
                              "total": sum(sizes), "files_total": sum(
                                  os.path.getsize(fp) for fp in by_file if os.path.exists(fp))}
        out["files_in_config_not_mirrored"] = [p for p in tree(box.config) if p.startswith("projects")
                                               and os.path.join(box.config, p) not in by_file]

        # resume from the mirrored entries alone, on another "host" under another workdir's key:
        # every frame, and only the frames printed before the last turn's result (what a host
        # that saves at each result holds if the process then dies)
        last_res = max(i for i, x in enumerate(cli.lines) if x["obj"] and x["obj"].get("type") == "result")
        upto: Dict[str, List[Dict[str, Any]]] = {}
        for x in mirror_frames(cli, 0, last_res):
            upto.setdefault(x["obj"]["filePath"], []).extend(x["obj"]["entries"])
        key_a = project_key(os.path.realpath(box.cwd))
        for label, files in (("resume_from_mirror", by_file), ("resume_from_frames_before_last_result", upto)):
            b = probe.Sandbox(api)
            others.append(b)
            w2 = os.path.join(b.root, "restored", "from-mirror")
            os.makedirs(w2)
            k2 = project_key(os.path.realpath(w2))
            for fp, mirrored in files.items():
                rel = os.path.relpath(fp, os.path.join(box.config, "projects", key_a))
                dst = os.path.join(b.config, "projects", k2, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                meta = [e for e in mirrored if e.get("type") == "agent_metadata"]
                with open(dst, "w") as fh:
                    for e in mirrored:
                        if e.get("type") != "agent_metadata":
                            fh.write(json.dumps(e, separators=(",", ":")) + "\n")
                if meta:  # what the SDK does: the last agent_metadata, without "type", as <agent>.meta.json
                    m = dict(meta[-1])
                    m.pop("type")
                    with open(dst[:-len(".jsonl")] + ".meta.json", "w") as fh:
                        json.dump(m, fh)
            r = run_one(claude, b, ["--resume", sid, "--session-mirror"] + REPLAY, ["recall"], cwd=w2)
            rc = r["_cli"]
            out[label] = {
                "entries_written": {os.path.basename(fp): len(v) for fp, v in files.items()},
                "result": r["turns"][0]["result"] if r["turns"] else None, "session_id_kept": bool(
                    r["turns"] and r["turns"][0]["session_id"] == sid), "exit": r["exit"], "stderr": r["stderr"],
                "frame_files": sorted({os.path.relpath(x["obj"]["filePath"], b.config) for x in mirror_frames(rc)}),
                "frame_entries": [[entry_label(e) for e in x["obj"]["entries"]] for x in mirror_frames(rc)]}

        # --no-session-persistence with --session-mirror
        s3 = str(uuid.uuid4())
        r = run_one(claude, box, ["--session-id", s3, "--session-mirror", "--no-session-persistence"],
                    ["no persist"])
        out["no_session_persistence"] = {"result": r["turns"][0]["result"] if r["turns"] else None,
                                         "frames": len(mirror_frames(r["_cli"])),
                                         "files": [p for p in tree(box.config) if s3 in p], "stderr": r["stderr"]}
        return out
    finally:
        box.cleanup()
        for b in others:
            b.cleanup()


def sec_shared(claude: str, api: FakeAnthropic) -> Dict[str, Any]:
    """two concurrent processes sharing one CLAUDE_CONFIG_DIR: rewrites of .claude.json."""
    return {"staggered": shared_once(claude, api, 2.0), "simultaneous_fresh": shared_once(claude, api, 0.0)}


def shared_once(claude: str, api: FakeAnthropic, stagger: float) -> Dict[str, Any]:
    box = probe.Sandbox(api)
    path = os.path.join(box.config, ".claude.json")
    t0 = time.monotonic()
    events: List[Dict[str, Any]] = []
    stop = threading.Event()
    marks: List[Dict[str, Any]] = []
    lock_seen: List[float] = []

    def watch():
        last = None
        while not stop.is_set():
            if os.path.exists(path + ".lock"):
                lock_seen.append(round(time.monotonic() - t0, 3))
            s = fsnap(path)
            sig = (s["mtime_ns"], s["ino"], s["sha1"]) if s else None
            if sig != last:
                prev = events[-1]["snap"] if events else None
                ev = {"t": round(time.monotonic() - t0, 3), "snap": s}
                if s and prev:
                    try:
                        a, b = json.loads(prev["data"]), json.loads(s["data"])
                        ev["changed_keys"] = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    except ValueError:
                        ev["changed_keys"] = "unparsable"
                    ev["new_inode"] = prev["ino"] != s["ino"]
                events.append(ev)
                last = sig
            time.sleep(0.005)

    def mark(label):
        marks.append({"t": round(time.monotonic() - t0, 3), "at": label})

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    w2 = os.path.join(box.root, "work2")
    os.makedirs(w2)
    try:
        mark("p1 spawn")
        p1 = probe.Cli(claude, box, ["--session-id", str(uuid.uuid4())] + REPLAY)
        time.sleep(stagger)
        mark("p2 spawn (other cwd)")
        p2 = probe.Cli(claude, box, ["--session-id", str(uuid.uuid4())] + REPLAY, cwd=w2)
        h1, h2 = probe.Host(p1), probe.Host(p2)
        try:
            time.sleep(2.0)
            mark("p1 turn")
            h1.turn("shared one")
            mark("p2 turn")
            h2.turn("shared two")
            mark("p1 turn 2")
            h1.turn("shared three")
            time.sleep(0.5)
            mark("p1 close")
            p1.close(15)
            mark("p2 close")
            p2.close(15)
            time.sleep(0.5)
        finally:
            p1.kill()
            p2.kill()
        stop.set()
        th.join(2)
        final = fsnap(path)
        out = {"marks": marks,
               "writes": [{"t": e["t"], "size": e["snap"]["size"] if e["snap"] else None,
                           "new_inode": e.get("new_inode"), "changed_keys": e.get("changed_keys")}
                          for e in events],
               "final_keys": sorted(json.loads(final["data"]).keys()) if final else None,
               "final_projects": sorted((json.loads(final["data"]).get("projects") or {}).keys()) if final else None,
               "backups": sorted(p for p in tree(box.config) if p.startswith("backups")),
               "lock_like_files": [p for p in tree(box.config) if "lock" in p.lower()],
               "claude_json_lock_seen_at": lock_seen[:20], "final_parses": bool(final and json.loads(final["data"]))}
        if final:
            d = json.loads(final["data"])
            out["final_sample"] = {k: (v if not isinstance(v, (dict, list)) else "<%s>" % type(v).__name__)
                                   for k, v in d.items()}
        return out
    finally:
        stop.set()
        box.cleanup()


SECTIONS = {"location": sec_location, "flush": sec_flush, "restore": sec_restore,
            "concurrent": sec_concurrent, "mirror": sec_mirror, "shared": sec_shared}


def summarize(r: Dict[str, Any]) -> List[str]:
    out = ["claude %s" % r.get("version")]
    loc = r.get("location") or {}
    if "entry_labels" in loc:
        out.append("location: at expected key %s; entries %s" % (loc["transcript_exists_at_expected_key"],
                                                                 " ".join(loc["entry_labels"])))
        out.append("location: files naming the session %s; session dir %s" % (
            loc["files_naming_session"], loc.get("session_dir_tree")))
        out.append("location: symlink cwd -> init.cwd %s files %s; with PWD %s; resume from real path %r" % (
            loc["symlink_cwd"]["init_cwd"], loc["symlink_cwd"]["files"], loc["symlink_cwd_with_PWD"]["files"],
            loc["symlink_resume_from_real_path"]))
        for k in ("long_cwd", "non_ascii_cwd"):
            out.append("location: %s len %s -> dir %s (len %s), matches rule: %s" % (
                k, loc[k]["cwd_len"], loc[k]["dir_made"], loc[k]["dir_len"], loc[k]["matches_prediction"]))
    fl = r.get("flush") or {}
    if "plain" in fl:
        for k in ("plain", "session_mirror"):
            out.append("flush %s: assistant entry on disk minus result line, ms: %s (range %s)" % (
                k, [x.get("assistant_on_disk_minus_result_ms") for x in fl[k]["turns"]],
                fl[k]["assistant_on_disk_minus_result_ms_range"]))
            out.append("flush %s: stdin EOF appends %s" % (k, fl[k]["appended_on_stdin_eof"]))
        for how in ("eof", "sigterm", "sigkill"):
            x = fl["right_after_result_" + how]
            out.append("flush: %s right after result -> exit %s, assistant on disk %s, second turn entries %s" % (
                how, x["exit"], x["assistant_on_disk"], x["second_turn_entries_on_disk"]))
    rs = r.get("restore") or {}
    if "old_key_only" in rs:
        for k in ("new_key_jsonl_only", "new_key_with_session_dir", "old_key_only"):
            x = rs[k]
            out.append("restore %s: %s exit %s %r" % (k, [t["result"] for t in x["turns"]], x["exit"], x["stderr"]))
    for k, cc in (r.get("concurrent") or {}).items():
        if isinstance(cc, dict) and "turns" in cc:
            out.append("concurrent %s: %s; forks at %s; third resume %r; lock files %s" % (
                k, [(t["proc"], t["result"]) for t in cc["turns"]], cc["parents_with_two_children"],
                cc["third_resume_recall"], cc["lock_like_files"]))
    mi = r.get("mirror") or {}
    if "turns" in mi:
        for t in mi["turns"]:
            out.append("mirror %r -> %r: frames %s" % (t["prompt"], t["result"], [
                "%+.0fms %s n=%d" % (f["at_minus_result_ms"] or 0, f["file"].split(os.sep)[-1][:24], f["n"])
                for f in t["frames"]]))
        out.append("mirror: after EOF %s; control requests %s; frames vs files %s" % (
            mi["frames_after_stdin_eof"], mi["control_requests_from_cli"],
            {k.split(os.sep)[-1]: v["identical_in_order"] for k, v in mi["frames_vs_files"].items()}))
        out.append("mirror: resume from mirrored entries -> %r; from the frames before the last result -> %r; "
                   "--no-session-persistence frames %s files %s" % (
            mi["resume_from_mirror"]["result"], mi["resume_from_frames_before_last_result"]["result"],
            mi["no_session_persistence"]["frames"],
            mi["no_session_persistence"]["files"]))
    for k, sh in (r.get("shared") or {}).items():
        if isinstance(sh, dict) and "writes" in sh:
            out.append("shared %s: .claude.json writes (t, size, new inode, keys) %s; lock seen at %s" % (
                k, [(w["t"], w["size"], w["new_inode"], w["changed_keys"]) for w in sh["writes"]],
                sh["claude_json_lock_seen_at"]))
            out.append("shared %s: marks %s" % (k, [(m["t"], m["at"]) for m in sh["marks"]]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("claude", nargs="?", default=os.environ.get("CLAUDE_BIN", probe.DEFAULT_CLAUDE))
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--turns", type=int, default=10, help="turns per flush measurement")
    ap.add_argument("--json", help="also write the observations here")
    ap.add_argument("--timeout", type=float, default=240, help="per-section time box, seconds")
    args = ap.parse_args(argv)
    claude = os.path.abspath(args.claude)
    if not os.path.exists(claude):
        sys.exit("claude not found at %s; run tests/e2e/install-claude.sh" % claude)
    version = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    res: Dict[str, Any] = {"claude": claude, "version": version}
    with FakeAnthropic() as api:
        for key in args.only.split(","):
            key = key.strip()
            api.reset()
            t = time.monotonic()
            print("== %s: %s" % (key, SECTIONS[key].__doc__.strip()), flush=True)
            fn = SECTIONS[key]
            a = (claude, api, args.turns) if key == "flush" else (claude, api)
            got = strip_private(probe.run_with_timeout(fn, a, args.timeout))
            got["_seconds"] = round(time.monotonic() - t, 1)
            res[key] = got
            print(json.dumps(got, indent=2)[:30000], flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    print("\n==== SUMMARY: claude %s ====" % version)
    for line in summarize(res):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
