//! hotplex-reference-agent: a small stand-in for the Claude Code CLI.
//!
//! It speaks the same stream-json protocol on stdin/stdout as
//! `claude -p --input-format stream-json --output-format stream-json
//! --verbose --permission-prompt-tool stdio` (see `hotplex_core::protocol`),
//! fast and deterministic, so tests of hotplex can run thousands of turns and
//! inject faults on demand. It is for tests, not a replacement for the real
//! CLI, which has its own end-to-end suite.
//!
//! Every user message starts a turn: a `system/init` line, then what the
//! prompt asks for, then exactly one `result` line. A prompt is either plain
//! text (answered with `echo: <text>`) or one directive:
//!
//! | prompt | behaviour |
//! |---|---|
//! | `tool:<command>` | asks `can_use_tool` for Bash `<command>`, waits for the host's answer, reports the tool result (an error when denied), then answers |
//! | `readonly:<command>` | like `tool:`, but as the CLI does for commands it deems read-only: no `can_use_tool`, only the PreToolUse hook (if one was registered) |
//! | `stall:<ms>` | waits `<ms>` before answering; an `interrupt` control request ends the turn early with an `is_error` result |
//! | `crash` | exits with status 3 in the middle of the turn |
//! | `garbage` | prints a line that is not JSON, then answers |
//! | `flood:<n>` | prints `<n>` assistant text lines, then answers |
//! | `exit` | answers, then exits cleanly |
//! | `fail` | ends the turn with an `is_error` result |
//! | `hang` | never answers and ignores interrupts (only a kill ends it) |
//! | `recall` | answers `history: <earlier prompts joined by " | ">` |
//! | `after:<text>` | answers `<text>`, then in the same write as the `result` prints stray output (an assistant message and a text delta saying `STALE`) |
//! | `double:<text>` | answers `<text>`, then prints a second `result` (`STALE`) in the same write |
//! | `late:<ms>:<text>` | answers `<text>`; `<ms>` later prints a stray `result` (`STALE`) naming this turn's message |
//! | `badutf8` | prints an assistant message and a `result` whose text holds invalid UTF-8 |
//! | `surrogate` | answers with a `result` whose text is a lone surrogate escape (`\ud800`), as Node prints a cut emoji |
//! | `badresult` | prints a `result` line that is not valid JSON (cut short), then waits for the next message |
//! | `bigline:<mib>` | prints one assistant text line of `<mib>` MiB, then answers |
//! | `closeout` | closes its stdout and keeps running, ignoring stdin's EOF (only signals end it) |
//!
//! Control requests from the host: `initialize` and `interrupt` are
//! answered with `success`; an `initialize` that registers a `PreToolUse`
//! hook gets a `hook_callback` request before every tool call, and a
//! `permissionDecision: deny` answer denies the call (as with the CLI). Arguments: `--session-id <id>` / `--resume <id>`
//! set the reported session id; `--startup-delay-ms <n>` waits before
//! reading input; `--exit-at-start` exits at once with status 2;
//! `--include-partial-messages` streams each answer as 4 `stream_event`
//! text deltas before the complete message, as the CLI does;
//! `--replay-user-messages` echoes each user message (with its `uuid`,
//! `isReplay: true`) after the turn's `system/init` and tags the `result`
//! with `user_message_uuid`, as the CLI does (the echo since 2.1.197, the
//! tag since 2.1.332); `--own-message-uuids` makes it replace the host's
//! message uuids with its own in both; everything else is ignored. With `HOTPLEX_REF_STATE=<dir>` the agent keeps a
//! transcript per session id there; like the CLI (2.1.197), `--resume` of
//! an id without one prints an error `result` and `No conversation found
//! with session ID: <id>` on stderr and exits 1, and `--session-id` of an id
//! with one prints `Error: Session ID <id> is already in use.` and exits 1.
//! `total_cost_usd` is a running total per process, as the CLI's is.

use std::io::{BufRead, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the stdin reader thread hands to the turn loop.
enum Input {
    Line(Value),
    Eof,
}

/// Runs the agent on this process's stdin/stdout with `args` (the command
/// line without the program name) and returns when it should exit (or
/// exits the process itself, for `crash` and startup failures).
///
/// The binary calls this; the hotplex demo calls it too, re-executing
/// itself as its own agent so it needs no second program.
pub fn run(args: impl IntoIterator<Item = String>) {
    let mut args = args.into_iter();
    let mut session_id = format!("ref-{}", std::process::id());
    let mut resume = false;
    let mut startup_delay = Duration::ZERO;
    let mut partial = false;
    let mut replay = false;
    let mut own_uuids = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--include-partial-messages" => partial = true,
            "--replay-user-messages" => replay = true,
            "--own-message-uuids" => own_uuids = true,
            "--session-id" | "--resume" => {
                resume = a == "--resume";
                if let Some(v) = args.next() {
                    session_id = v;
                }
            }
            "--startup-delay-ms" => {
                let ms = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                startup_delay = Duration::from_millis(ms);
            }
            "--exit-at-start" => {
                eprintln!("reference agent: told to exit at start");
                std::process::exit(2);
            }
            _ => {}
        }
    }
    // Transcripts, like the CLI's: one file per session id, one prompt per
    // line, so `--resume` of an unknown id fails as the real CLI's does and
    // `recall` proves a resumed conversation kept its history.
    let transcript = std::env::var_os("HOTPLEX_REF_STATE")
        .map(std::path::PathBuf::from)
        .map(|d| d.join(format!("{session_id}.txt")));
    let existing = transcript
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let history: Vec<String> = match (existing, &transcript) {
        (Some(_), Some(_)) if !resume => {
            eprintln!("Error: Session ID {session_id} is already in use.");
            std::process::exit(1);
        }
        (Some(t), _) => t.lines().map(str::to_owned).collect(),
        (None, Some(_)) if resume => {
            let why = format!("No conversation found with session ID: {session_id}");
            println!(
                "{}",
                json!({"type": "result", "subtype": "error_during_execution", "is_error": true,
                    "num_turns": 0, "session_id": session_id, "errors": [why]})
            );
            eprintln!("{why}");
            std::process::exit(1);
        }
        _ => Vec::new(),
    };
    std::thread::sleep(startup_delay);
    // stdin is read on its own thread so that an interrupt can arrive while
    // a turn is stalling.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(Input::Line(v)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Input::Eof);
    });
    let mut agent = Agent {
        session_id,
        rx,
        out: std::io::stdout(),
        turns: 0,
        transcript,
        history,
        pre_tool_hook: None,
        partial,
        replay,
        own_uuids,
        message_uuid: None,
    };
    agent.run();
}

struct Agent {
    session_id: String,
    rx: Receiver<Input>,
    out: std::io::Stdout,
    turns: u64,
    transcript: Option<std::path::PathBuf>,
    history: Vec<String>,
    /// The callback id of a PreToolUse hook registered by `initialize`.
    pre_tool_hook: Option<String>,
    /// `--include-partial-messages`: stream each answer as deltas first.
    partial: bool,
    /// `--replay-user-messages`: echo user messages, tag results.
    replay: bool,
    /// `--own-message-uuids`: ignore the host's message uuids and use
    /// made-up ones (as the CLI does for messages without one).
    own_uuids: bool,
    /// The `uuid` of the user message being answered.
    message_uuid: Option<String>,
}

impl Agent {
    fn emit(&mut self, v: Value) {
        let mut lock = self.out.lock();
        let _ = writeln!(lock, "{v}");
        let _ = lock.flush();
    }

    fn run(&mut self) {
        loop {
            match self.rx.recv() {
                Ok(Input::Line(v)) => match v.get("type").and_then(Value::as_str) {
                    Some("user") => {
                        let text = user_text(&v);
                        self.message_uuid =
                            v.get("uuid").and_then(Value::as_str).map(str::to_owned);
                        if self.own_uuids {
                            self.message_uuid = Some(format!("ref-message-{}", self.turns + 1));
                        }
                        if !self.turn(&text, &v) {
                            return;
                        }
                    }
                    Some("control_request") => self.answer_control(&v),
                    _ => {}
                },
                Ok(Input::Eof) | Err(_) => return,
            }
        }
    }

    /// Answers a host control request with `success`.
    fn answer_control(&mut self, v: &Value) {
        let id = v.get("request_id").cloned().unwrap_or(Value::Null);
        // `initialize` may register PreToolUse hooks, as the CLI's does.
        if v["request"]["subtype"].as_str() == Some("initialize") {
            self.pre_tool_hook = v["request"]["hooks"]["PreToolUse"][0]["hookCallbackIds"][0]
                .as_str()
                .map(str::to_owned);
        }
        self.emit(json!({"type": "control_response", "response": {"subtype": "success", "request_id": id, "response": {}}}));
    }

    /// Runs one turn; returns false when the agent should exit.
    fn turn(&mut self, prompt: &str, message: &Value) -> bool {
        self.turns += 1;
        let started = Instant::now();
        self.emit(json!({"type": "system", "subtype": "init", "session_id": self.session_id,
            "model": "reference-model", "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            "tools": ["Bash"], "permissionMode": "default", "claude_code_version": "reference"}));
        if self.replay {
            let mut echo = message.clone();
            echo["session_id"] = json!(self.session_id);
            echo["parent_tool_use_id"] = Value::Null;
            echo["isReplay"] = json!(true);
            echo["uuid"] = json!(self
                .message_uuid
                .clone()
                .unwrap_or_else(|| format!("ref-message-{}", self.turns)));
            self.emit(echo);
        }
        // Output the host must never hand to the next turn: written with
        // the result, in one write.
        let mut trailer: Vec<String> = Vec::new();
        // A stray result to print this long after the turn's own.
        let mut late: Option<(String, Duration)> = None;
        let mut answer = format!("echo: {prompt}");
        let mut is_error = false;
        let mut subtype = "success";
        if prompt == "recall" {
            answer = format!("history: {}", self.history.join(" | "));
        }
        self.remember(prompt);
        if prompt == "fail" {
            answer = "the turn failed on purpose".into();
            is_error = true;
            subtype = "error_during_execution";
        } else if prompt == "hang" {
            // Ignores interrupts: only the kill ladder ends this turn.
            std::thread::sleep(Duration::from_secs(3600));
        } else if let Some(cmd) = prompt.strip_prefix("tool:") {
            answer = self.tool_call(cmd, false);
        } else if let Some(cmd) = prompt.strip_prefix("readonly:") {
            answer = self.tool_call(cmd, true);
        } else if let Some(ms) = prompt.strip_prefix("stall:") {
            let ms: u64 = ms.trim().parse().unwrap_or(1000);
            if self.stall(Duration::from_millis(ms)) {
                self.emit(json!({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]}}));
                answer = String::new();
                is_error = true;
                subtype = "error_during_execution";
            } else {
                answer = format!("stalled {ms} ms");
            }
        } else if prompt == "crash" {
            self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "about to crash"}]}, "session_id": self.session_id}));
            std::process::exit(3);
        } else if prompt == "garbage" {
            let mut lock = self.out.lock();
            let _ = writeln!(lock, "this line is not JSON {{");
            let _ = lock.flush();
        } else if let Some(n) = prompt.strip_prefix("flood:") {
            let n: usize = n.trim().parse().unwrap_or(100);
            for i in 0..n {
                self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": format!("line {i}")}]}, "session_id": self.session_id}));
            }
        } else if let Some(text) = prompt.strip_prefix("after:") {
            answer = text.to_owned();
            trailer.push(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "STALE"}]}, "session_id": self.session_id}).to_string());
            trailer.push(json!({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "STALE"}}, "session_id": self.session_id, "parent_tool_use_id": null}).to_string());
        } else if let Some(text) = prompt.strip_prefix("double:") {
            answer = text.to_owned();
            trailer.push(
                self.result_line("success", false, "STALE", started)
                    .to_string(),
            );
        } else if let Some(rest) = prompt.strip_prefix("late:") {
            let (ms, text) = rest.split_once(':').unwrap_or((rest, "late"));
            answer = text.to_owned();
            late = Some((
                self.result_line("success", false, "STALE", started)
                    .to_string(),
                Duration::from_millis(ms.parse().unwrap_or(50)),
            ));
        } else if prompt == "badutf8" {
            let mut lock = self.out.lock();
            let _ = lock.write_all(b"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"bad \xff\xfe bytes\"}]}}\n");
            let res = self
                .result_line("success", false, "@@", started)
                .to_string();
            let mut bytes = res.into_bytes();
            if let Some(at) = bytes.windows(2).position(|w| w == b"@@") {
                bytes.splice(at..at + 2, b"bad \xff bytes".iter().copied());
            }
            bytes.push(b'\n');
            let _ = lock.write_all(&bytes);
            let _ = lock.flush();
            return true;
        } else if prompt == "surrogate" {
            let res = self
                .result_line("success", false, "@@", started)
                .to_string();
            let res = res.replace("@@", "cut \\ud800 emoji");
            let mut lock = self.out.lock();
            let _ = writeln!(lock, "{res}");
            let _ = lock.flush();
            return true;
        } else if prompt == "badresult" {
            let res = self
                .result_line("success", false, "cut short", started)
                .to_string();
            let mut lock = self.out.lock();
            let _ = writeln!(lock, "{}", &res[..res.len() - 2]);
            let _ = lock.flush();
            return true;
        } else if let Some(mib) = prompt.strip_prefix("bigline:") {
            let mib: usize = mib.trim().parse().unwrap_or(1);
            // Written in pieces: a debug build stays fast at 100 MiB.
            let chunk = vec![b'x'; 1 << 20];
            let mut lock = self.out.lock();
            let _ = lock
                .write_all(br#"{"type":"assistant","message":{"content":[{"type":"text","text":""#);
            for _ in 0..mib {
                let _ = lock.write_all(&chunk);
            }
            let _ = lock.write_all(b"\"}]}}\n");
            let _ = lock.flush();
            drop(lock);
            answer = format!("printed {mib} MiB");
        } else if prompt == "closeout" {
            // SAFETY: closing our own stdout; nothing else writes to it.
            unsafe { close_stdout() };
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        if !answer.is_empty() && self.partial {
            // As the CLI does (2.1.197): the message's text deltas, then the
            // complete message.
            let chars: Vec<char> = answer.chars().collect();
            for piece in chars.chunks(chars.len().div_ceil(4).max(1)) {
                let text: String = piece.iter().collect();
                self.emit(json!({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}, "session_id": self.session_id,
                    "parent_tool_use_id": null}));
            }
        }
        if !answer.is_empty() {
            self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": answer}],
                "usage": {"input_tokens": prompt.len(), "output_tokens": answer.len()}}, "session_id": self.session_id}));
        }
        let mut result = self.result_line(subtype, is_error, &answer, started);
        result["usage"]["input_tokens"] = json!(prompt.len());
        let mut text = result.to_string();
        for t in trailer {
            text.push('\n');
            text.push_str(&t);
        }
        let mut lock = self.out.lock();
        let _ = writeln!(lock, "{text}");
        let _ = lock.flush();
        drop(lock);
        if let Some((stray, after)) = late {
            // Started only now: the stray result must follow the real one.
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{stray}");
                let _ = out.flush();
            });
        }
        prompt != "exit"
    }

    /// A `result` line for the current turn (tagged with the message's
    /// uuid under `--replay-user-messages`).
    fn result_line(&self, subtype: &str, is_error: bool, answer: &str, started: Instant) -> Value {
        let mut v = json!({"type": "result", "subtype": subtype, "is_error": is_error,
            "result": answer, "duration_ms": started.elapsed().as_millis() as u64, "duration_api_ms": 0,
            "num_turns": 1, "session_id": self.session_id, "total_cost_usd": self.turns as f64 * 0.001,
            "usage": {"input_tokens": 0, "output_tokens": answer.len(), "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            "permission_denials": []});
        if let (true, Some(u)) = (self.replay, &self.message_uuid) {
            v["user_message_uuid"] = json!(u);
        }
        v
    }

    /// Appends a prompt to the transcript, if there is one.
    fn remember(&mut self, prompt: &str) {
        self.history.push(prompt.replace('\n', " "));
        if let Some(p) = &self.transcript {
            let mut f = match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => f,
                Err(_) => return,
            };
            let _ = writeln!(f, "{}", prompt.replace('\n', " "));
        }
    }

    /// Asks permission for a Bash tool call and reports its outcome.
    fn tool_call(&mut self, command: &str, read_only: bool) -> String {
        let tool_id = format!("toolu_{}", self.turns);
        let input = json!({"command": command, "description": "reference agent tool call"});
        self.emit(json!({"type": "assistant", "message": {"content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": input}]}, "session_id": self.session_id}));
        // Like the CLI: a registered PreToolUse hook sees every tool call
        // first; read-only commands then run without a permission request.
        let mut decision = json!({"behavior": "allow"});
        if let Some(hook) = self.pre_tool_hook.clone() {
            let request_id = format!("hook-{}", self.turns);
            self.emit(json!({"type": "control_request", "request_id": request_id,
                "request": {"subtype": "hook_callback", "callback_id": hook, "tool_use_id": tool_id,
                    "input": {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": input, "tool_use_id": tool_id}}}));
            let out = self.await_response(&request_id);
            let hook_out = &out["hookSpecificOutput"];
            if hook_out["permissionDecision"].as_str() == Some("deny") {
                let why = hook_out["permissionDecisionReason"]
                    .as_str()
                    .unwrap_or("denied");
                decision = json!({"behavior": "deny", "message": why});
            }
        }
        if !read_only && decision["behavior"].as_str() == Some("allow") {
            let request_id = format!("perm-{}", self.turns);
            self.emit(json!({"type": "control_request", "request_id": request_id,
                "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": input, "permission_suggestions": []}}));
            decision = self.await_response(&request_id);
        }
        let allowed = decision.get("behavior").and_then(Value::as_str) == Some("allow");
        // Like the CLI, an allow may rewrite the call (`updatedInput`).
        let command = decision["updatedInput"]["command"]
            .as_str()
            .unwrap_or(command)
            .to_owned();
        let (content, is_error) = if allowed {
            (format!("ran: {command}"), false)
        } else {
            let why = decision
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("denied");
            (format!("Permission denied: {why}"), true)
        };
        self.emit(json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": content, "is_error": is_error}]}, "session_id": self.session_id}));
        if allowed {
            format!("tool ran: {command}")
        } else {
            format!("tool denied: {command}")
        }
    }

    /// Waits for the host's control_response to `request_id` and returns its
    /// `response` (control requests meanwhile are answered, other lines
    /// wait: user turns are not expected mid-turn).
    fn await_response(&mut self, request_id: &str) -> Value {
        loop {
            match self.rx.recv() {
                Ok(Input::Line(v))
                    if v.get("type").and_then(Value::as_str) == Some("control_response") =>
                {
                    let r = &v["response"];
                    if r.get("request_id").and_then(Value::as_str) == Some(request_id) {
                        return r["response"].clone();
                    }
                }
                Ok(Input::Line(v))
                    if v.get("type").and_then(Value::as_str) == Some("control_request") =>
                {
                    self.answer_control(&v)
                }
                Ok(Input::Line(_)) => {}
                Ok(Input::Eof) | Err(_) => std::process::exit(0),
            }
        }
    }

    /// Waits `d`; returns true when an interrupt arrived first.
    fn stall(&mut self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(Input::Line(v))
                    if v.get("type").and_then(Value::as_str) == Some("control_request") =>
                {
                    let interrupt = v["request"]["subtype"].as_str() == Some("interrupt");
                    self.answer_control(&v);
                    if interrupt {
                        return true;
                    }
                }
                Ok(Input::Line(_)) => {}
                Ok(Input::Eof) => std::process::exit(0),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => std::process::exit(0),
            }
        }
    }
}

/// The text of a user message: string content or the text blocks joined.
fn user_text(v: &Value) -> String {
    match &v["message"]["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Closes fd 1 (the `closeout` directive).
///
/// # Safety
/// Nothing may write to stdout afterwards.
unsafe fn close_stdout() {
    extern "C" {
        fn close(fd: i32) -> i32;
    }
    close(1);
}
