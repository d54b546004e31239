#!/usr/bin/env python3
"""Probe y (tests/e2e/FACTS.md): spare processes on the real Claude Code CLI.

Usage:
    python3 tests/e2e/probe_spares.py [PATH_TO_CLAUDE] [--samples N] [--park S] [--json FILE]

Starts processes the way hotplex does (a fresh --session-id, --replay-user-messages, the
opening initialize with hotplex's PreToolUse hook) against fake_anthropic.py and measures, in
one run and interleaved so that every mode sees the same machine load:

- cold:   spawn -> first result, the initialize and the first user line written at once;
- noinit: a process parked `--park` s with nothing written, then the first user line
          (write -> result);
- init:   initialize written at once and answered, parked, then the first user line;
- ctx:    like init, plus a get_context_usage request answered before parking (what hotplex
          sends a spare);
- ups:    like ctx, plus a UserPromptSubmit hook registered in initialize and a warm-up user
          message that the hook blocks (`decision: block`) before parking;
- hot:    a second turn on each of those processes (write -> result).

Then: the transcript of a ctx spare's session lies under its --session-id and `--resume` of it
works; whether the model ever sees the ups warm-up message; and the Agent SDK's own spare
mechanism (`--await-claim` in a parking directory, initialize, `claim_session` with the
session's cwd), with and without --session-id, where the CLI knows it.

It reuses probe.py's harness (Sandbox, Cli, Host). Prints the observations as JSON and a
summary; the figures vary with machine load, the ratios much less.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import probe  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402

HOTPLEX_ARGS = ["--replay-user-messages"]
TOOL_HOOK = {"PreToolUse": [{"matcher": None, "hookCallbackIds": ["hotplex_tool_hook"]}]}
WARMUP = "hotplex-warmup"
MODES = ("cold", "noinit", "init", "ctx", "ups")


def initialize(with_ups: bool) -> Dict[str, Any]:
    hooks = dict(TOOL_HOOK)
    if with_ups:
        hooks["UserPromptSubmit"] = [{"hookCallbackIds": ["warm_block"]}]
    return {"subtype": "initialize", "hooks": hooks}


def answer(req: Dict[str, Any], line: Dict[str, Any]) -> Any:
    """probe.default_answer, plus the ups mode's hook: block the warm-up, pass the rest."""
    if req.get("subtype") == "hook_callback" and req.get("callback_id") == "warm_block":
        if (req.get("input") or {}).get("prompt") == WARMUP:
            return {"decision": "block", "reason": "warm-up"}
        return {}
    return probe.default_answer(req, line)


def p50(xs: List[Optional[float]]) -> Optional[float]:
    ys = sorted(x for x in xs if x is not None)
    return ys[len(ys) // 2] if ys else None


def rss_kb(pid: int) -> Optional[int]:
    """Resident memory of `pid` and its children (the npm launcher may run a child)."""
    total = 0
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        for p in [pid] + [int(x) for x in kids.split()]:
            with open("/proc/%d/status" % p) as fh:
                total += sum(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    except (OSError, ValueError):
        return None
    return total


def sample(claude: str, box: probe.Sandbox, how: str, park: float) -> Dict[str, Any]:
    """One process in mode `how` (see the module docs), its first turn and one hot turn."""
    sid = str(uuid.uuid4())
    cli = probe.Cli(claude, box, ["--session-id", sid] + HOTPLEX_ARGS)
    host = probe.Host(cli, answer)
    out: Dict[str, Any] = {"sid": sid}
    try:
        if how != "noinit":
            host._n += 1
            cli.send({"type": "control_request", "request_id": "host_%d" % host._n,
                      "request": initialize(how == "ups")})
        if how in ("init", "ctx", "ups"):
            got = host.run(lambda o: o.get("type") == "control_response", 30)
            out["initialize_answered_s"] = round(got["t"], 3) if got else None
        if how in ("ctx", "ups"):
            c = host.ctl({"subtype": "get_context_usage"}, timeout=30)
            out["context_usage_answered_s"] = round(c["sent_at"] + (c["answered_after_s"] or 0), 3)
        if how == "ups":
            w = host.turn(WARMUP, timeout=30)
            out["warmup"] = {"kinds": w["kinds"], "result": w["result"]}
        if how != "cold":
            host.run(lambda o: False, park)  # idle; answers whatever the CLI asks meanwhile
            out["rss_parked_kb"] = rss_kb(cli.proc.pid)
        t = host.turn("first", timeout=30)
        # cold: from spawn (the Cli's clock starts there); the others: from the write.
        out["first_s"] = (round(t["result_s"] + (t["_t"] if how == "cold" else 0), 3)
                          if t["result_s"] is not None else None)
        out["first_result"] = t["result"]
        out["first_session_id"] = t["session_id"]
        out["hot_s"] = host.turn("hot", timeout=30)["result_s"]
        cli.close()
        return out
    finally:
        cli.kill()


def transcript(box: probe.Sandbox, cwd: str, sid: str) -> str:
    key = "".join(c if c.isalnum() else "-" for c in cwd)
    return os.path.join(box.config, "projects", key, sid + ".jsonl")


def await_claim(claude: str, box: probe.Sandbox) -> Dict[str, Any]:
    """The SDK's prewarm(): --await-claim in a parking directory, initialize, then
    claim_session with the session's cwd, then the first message."""
    out: Dict[str, Any] = {}
    park_dir = os.path.join(box.root, "parking")
    os.makedirs(park_dir, exist_ok=True)
    for label, extra in (("plain", []), ("with_session_id", ["--session-id", str(uuid.uuid4())])):
        work = os.path.join(box.root, "claimed-" + label)
        os.makedirs(work, exist_ok=True)
        cli = probe.Cli(claude, box, ["--await-claim"] + extra + HOTPLEX_ARGS, cwd=park_dir)
        host = probe.Host(cli)
        r: Dict[str, Any] = {}
        try:
            init = host.ctl(initialize(False), timeout=30)
            r["initialize_subtype"] = (init["response"] or {}).get("subtype")
            if init["response"] is None:
                r["exit_code"] = cli.wait(5)
                r["stderr"] = cli.err_text()[:400]
                out[label] = r
                continue
            host.run(lambda o: False, 2.0)
            claim = host.ctl({"subtype": "claim_session", "cwd": work}, timeout=30)
            resp = claim["response"] or {}
            r["claim"] = {"answered_after_s": claim["answered_after_s"], "subtype": resp.get("subtype"),
                          "error": resp.get("error"),
                          "response": {k: v for k, v in (resp.get("response") or {}).items()
                                       if k != "initialize"}}
            t = host.turn("claimed first", timeout=30)
            r["first_turn"] = {"result": t["result"], "session_id": t["session_id"],
                               "write_to_result_s": t["result_s"]}
            r["transcript_under_claimed_cwd"] = os.path.exists(
                transcript(box, work, t["session_id"] or ""))
            if extra:
                r["session_id_is_the_given_one"] = t["session_id"] == extra[1]
            cli.close()
        finally:
            cli.kill()
        out[label] = r
    return out


def run(claude: str, api: FakeAnthropic, samples: int, park: float) -> Dict[str, Any]:
    box = probe.Sandbox(api)
    out: Dict[str, Any] = {"samples": samples, "park_s": park}
    try:
        rows: Dict[str, List[Dict[str, Any]]] = {m: [] for m in MODES}
        for _ in range(samples):
            for how in MODES:  # interleaved: every mode sees the same machine load
                rows[how].append(sample(claude, box, how, park))
        hot = [r["hot_s"] for rs in rows.values() for r in rs]
        out["p50_s"] = {m: p50([r["first_s"] for r in rows[m]]) for m in MODES}
        out["p50_s"]["hot"] = p50(hot)
        out["p50_s"]["initialize_answered_after_spawn"] = p50(
            [r.get("initialize_answered_s") for r in rows["init"]])
        out["p50_s"]["context_usage_answered_after_spawn"] = p50(
            [r.get("context_usage_answered_s") for r in rows["ctx"]])
        out["first_over_hot"] = {m: round(out["p50_s"][m] / out["p50_s"]["hot"], 2)
                                 for m in MODES if m != "cold" and out["p50_s"][m] and out["p50_s"]["hot"]}
        out["all_s"] = {m: [r["first_s"] for r in rows[m]] for m in MODES}
        out["all_s"]["hot"] = hot
        out["rss_parked_mb"] = {m: round((p50([r["rss_parked_kb"] for r in rows[m]]) or 0) / 1024)
                                for m in MODES if m != "cold"}
        out["first_results"] = sorted({str(r["first_result"]) for v in rows.values() for r in v})
        out["ups_warmup"] = rows["ups"][0].get("warmup")
        out["model_saw_warmup"] = api.saw(WARMUP) or api.saw("warm-up")
        # A ctx spare's conversation is its --session-id's: transcript there, resumable later.
        spare = rows["ctx"][-1]
        sid = spare["sid"]
        out["spare_session_id_in_result"] = spare["first_session_id"] == sid
        out["spare_transcript_exists"] = os.path.exists(transcript(box, box.cwd, sid))
        cli = probe.Cli(claude, box, ["--resume", sid] + HOTPLEX_ARGS)
        try:
            t = probe.Host(cli).turn("recall", timeout=30)
            out["resume_of_spare"] = {"result": t["result"], "session_id_kept": t["session_id"] == sid}
            cli.close()
        finally:
            cli.kill()
        out["await_claim"] = await_claim(claude, box)
        return out
    finally:
        box.cleanup()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("claude", nargs="?", default=os.environ.get("CLAUDE_BIN", probe.DEFAULT_CLAUDE))
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--park", type=float, default=3.0, help="seconds a spare sits idle")
    ap.add_argument("--json", help="also write the observations here")
    args = ap.parse_args(argv)
    claude = os.path.abspath(args.claude)
    version = subprocess.run([claude, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    with FakeAnthropic() as api:
        res = run(claude, api, args.samples, args.park)
    res["version"] = version
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    p = res["p50_s"]
    print("\n==== SUMMARY: claude %s, p50 of %d each ====" % (version, args.samples))
    print("cold spawn->result %.3fs | first turn of a parked process: noinit %.3fs, init %.3fs, "
          "ctx %.3fs, ups %.3fs | hot %.3fs" % (p["cold"], p["noinit"], p["init"], p["ctx"],
                                                 p["ups"], p["hot"]))
    print("first/hot: %s; parked RSS MB: %s" % (res["first_over_hot"], res["rss_parked_mb"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
