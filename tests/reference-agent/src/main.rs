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
//! | `stall:<ms>` | waits `<ms>` before answering; an `interrupt` control request ends the turn early with an `is_error` result |
//! | `crash` | exits with status 3 in the middle of the turn |
//! | `garbage` | prints a line that is not JSON, then answers |
//! | `flood:<n>` | prints `<n>` assistant text lines, then answers |
//! | `exit` | answers, then exits cleanly |
//!
//! Control requests from the host: `initialize` and `interrupt` are
//! answered with `success`. Arguments: `--session-id <id>` / `--resume <id>`
//! set the reported session id; everything else is ignored.

use std::io::{BufRead, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the stdin reader thread hands to the turn loop.
enum Input {
    Line(Value),
    Eof,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut session_id = format!("ref-{}", std::process::id());
    while let Some(a) = args.next() {
        if a == "--session-id" || a == "--resume" {
            if let Some(v) = args.next() {
                session_id = v;
            }
        }
    }
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
    };
    agent.run();
}

struct Agent {
    session_id: String,
    rx: Receiver<Input>,
    out: std::io::Stdout,
    turns: u64,
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
                        if !self.turn(&text) {
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
        self.emit(json!({"type": "control_response", "response": {"subtype": "success", "request_id": id, "response": {}}}));
    }

    /// Runs one turn; returns false when the agent should exit.
    fn turn(&mut self, prompt: &str) -> bool {
        self.turns += 1;
        let started = Instant::now();
        self.emit(json!({"type": "system", "subtype": "init", "session_id": self.session_id,
            "model": "reference-model", "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            "tools": ["Bash"], "permissionMode": "default", "claude_code_version": "reference"}));
        let mut answer = format!("echo: {prompt}");
        let mut is_error = false;
        let mut subtype = "success";
        if let Some(cmd) = prompt.strip_prefix("tool:") {
            answer = self.tool_call(cmd);
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
        }
        if !answer.is_empty() {
            self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": answer}],
                "usage": {"input_tokens": prompt.len(), "output_tokens": answer.len()}}, "session_id": self.session_id}));
        }
        self.emit(json!({"type": "result", "subtype": subtype, "is_error": is_error,
            "result": answer, "duration_ms": started.elapsed().as_millis() as u64, "duration_api_ms": 0,
            "num_turns": 1, "session_id": self.session_id, "total_cost_usd": 0.0,
            "usage": {"input_tokens": prompt.len(), "output_tokens": answer.len(), "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            "permission_denials": []}));
        prompt != "exit"
    }

    /// Asks permission for a Bash tool call and reports its outcome.
    fn tool_call(&mut self, command: &str) -> String {
        let tool_id = format!("toolu_{}", self.turns);
        let request_id = format!("perm-{}", self.turns);
        let input = json!({"command": command, "description": "reference agent tool call"});
        self.emit(json!({"type": "assistant", "message": {"content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": input}]}, "session_id": self.session_id}));
        self.emit(json!({"type": "control_request", "request_id": request_id,
            "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": input, "permission_suggestions": []}}));
        // Wait for the matching control_response (other lines are kept
        // waiting: control requests are answered, user turns are not
        // expected mid-turn).
        let decision = loop {
            match self.rx.recv() {
                Ok(Input::Line(v))
                    if v.get("type").and_then(Value::as_str) == Some("control_response") =>
                {
                    let r = &v["response"];
                    if r.get("request_id").and_then(Value::as_str) == Some(request_id.as_str()) {
                        break r["response"].clone();
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
        };
        let allowed = decision.get("behavior").and_then(Value::as_str) == Some("allow");
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
