//! The reference ACP agent: a small stand-in for ACP agents such as
//! `opencode acp` and `gemini --acp`, speaking the Agent Client Protocol
//! (JSON-RPC 2.0, one JSON object per line) on stdin/stdout, fast and
//! deterministic, with faults on demand. The binary is
//! `hotplex-reference-acp`; [`run`] is everything it does.
//!
//! It is written against the ACP schema 1.x with `serde_json` alone (not
//! with `hotplex_core::protocol::acp`), so tests that drive it with the
//! core's types check one implementation against another.
//!
//! **Methods.** `initialize` answers protocol version 1, `agentCapabilities`
//! `{loadSession: true}` (false with `--no-load-session`), `agentInfo`
//! `{name: "hotplex-reference-acp"}`, no auth methods, and remembers the
//! client's `fs.readTextFile`, `fs.writeTextFile` and `terminal` flags.
//! `authenticate` answers `{}`. `session/new {cwd}` answers a fresh
//! `sessionId` with modes `default` and `plan` (current: `default`), then
//! sends an `available_commands_update`. `session/load {sessionId, cwd}`
//! replays the stored conversation as `user_message_chunk` and
//! `agent_message_chunk` updates, then answers `{modes}` (an unknown id:
//! error -32002; with `--no-load-session`: -32601). `session/set_mode
//! {modeId}` sends `current_mode_update` and answers `{}` (an unknown mode:
//! -32602). `session/prompt` runs a turn (below) and answers `{stopReason,
//! usage: {inputTokens, outputTokens, totalTokens}}`, after a
//! `usage_update` whose `cost` grows by 0.001 USD per turn of the session.
//! Requests that arrive while a turn runs are answered after it (FIFO),
//! except `session/set_mode`; `session/cancel` for the session running a
//! turn cancels it. Unknown methods: -32601.
//!
//! **Turns.** The prompt's text blocks, joined, are plain text (answered
//! `echo: <text>`, streamed as up to four `agent_message_chunk`s sharing a
//! `messageId`) or one directive:
//!
//! | prompt | behaviour |
//! |---|---|
//! | `sleep:<ms>` | waits `<ms>`, answers `slept <ms> ms`; a `session/cancel` ends the turn at once with `stopReason: cancelled` |
//! | `ignorecancel:<ms>` | waits `<ms>` (empty: forever), ignoring `session/cancel` and stdin's end, then answers `ignored cancel` (`end_turn`) |
//! | `crash:` | sends one chunk (`about to crash`), then exits with status 3 without answering |
//! | `garbage:<kib>` | prints a line that is not JSON, one of invalid UTF-8, one of `<kib>` KiB (default 1024) of `x`, a JSON array, a `jsonrpc: "1.0"` object, a response to an id nobody sent, an update of an unknown kind, and a chunk with an invalid UTF-8 byte in its text (`bad?byte`, its own message); then answers `echo: garbage survived` |
//! | `run:<command>` | a `tool_call` (`kind: execute`, `status: pending`, `rawInput: {command}`, title the command), then `session/request_permission` with options `allow-once` (allow_once), `allow-always` (allow_always) and `reject-once` (reject_once), unless an earlier `allow-always` granted this command. Allowed: runs `sh -c <command>` in the session's cwd, through the client (`terminal/create {command: "sh", args: ["-c", <command>], cwd}`, then `terminal/wait_for_exit`, `terminal/output`, `terminal/release`) when it offered `terminal`, else itself (killed by a cancel); a `tool_call_update` `completed` with the output; answers `ran: <command>\nexit: <code>\n<output>`. Rejected: `failed`, answers `denied: <command>`. The `cancelled` outcome (or a cancel while running): `stopReason: cancelled`. A JSON-RPC error from the client: answers `permission error: <message>` / `terminal error: <message>` |
//! | `term:<command>` | like `run:`, without asking permission first (an agent that trusts its client's terminal to screen commands) |
//! | `read:<path>` | a `tool_call` (`kind: read`, `locations`), then `fs/read_text_file {path}` when the client offered it (answers `read: <content>`, or `read error: <code> <message>`), else reads the file itself (`read locally: <content>`) |
//! | `write:<path>:<text>` | a `tool_call` (`kind: edit`), then `fs/write_text_file {path, content: <text>}` when offered (answers `wrote: <path>`, or `write error: <code> <message>`), else writes itself (`wrote locally: <path>`) |
//! | `askwrite:<path>:<text>` | like `write:`, but first asks `session/request_permission` for the edit (`rawInput: {path, content}`); rejected: `denied: <path>` |
//! | `thought:<text>` | streams `<text>` as `agent_thought_chunk`s, answers `thought about it` |
//! | `plan:<a>\|<b>\|...` | a `plan` update (first step `in_progress`, the rest `pending`), answers `planned <n> steps` |
//! | `stop:<reason>` | answers `stopping with <reason>` and ends with that `stopReason` |
//! | `fail:<message>` | answers the prompt with JSON-RPC error -32603 `<message>` |
//! | `after:<text>` | answers `<text>`, then prints a stray `agent_message_chunk` (`STALE`) and a second answer to the same prompt |
//! | `recall` | answers `history: <earlier prompts of the session, joined by " \| ">` |
//! | `caps?` | answers `caps: read=<bool> write=<bool> terminal=<bool>` (what the client offered) |
//! | `cwd?` | answers `cwd: <the session's cwd>` |
//! | `mode?` | answers `mode: <the session's mode>` |
//! | `exit` | answers `bye`, then exits with status 0 |
//!
//! **State.** With `--state-dir <dir>` (or `HOTPLEX_REF_STATE=<dir>`, as
//! the stream-json agent) each session's conversation is kept in
//! `<dir>/<session id>.acp.jsonl` (one `{"role", "text"}` object per line),
//! so a fresh process can `session/load` it.
//!
//! **Arguments.** `--state-dir <dir>`; `--no-load-session`;
//! `--ignore-eof` (keeps running after stdin ends, as claude-code-acp
//! does, until a signal); `--name <n>` (its `agentInfo.name`, to act as a
//! known agent, e.g. `gemini-cli`); `--startup-delay-ms <n>` waits before reading.
//! The agent otherwise exits with status 0 when stdin ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the stdin reader thread hands over.
enum Input {
    Message(Value),
    Eof,
}

struct Args {
    state_dir: Option<PathBuf>,
    load_session: bool,
    ignore_eof: bool,
    startup_delay: Duration,
    /// `agentInfo.name` (`--name`; default `hotplex-reference-acp`).
    name: String,
}

impl Args {
    fn parse(argv: Vec<String>) -> Args {
        let mut a = Args {
            state_dir: std::env::var_os("HOTPLEX_REF_STATE").map(PathBuf::from),
            load_session: true,
            ignore_eof: false,
            startup_delay: Duration::ZERO,
            name: "hotplex-reference-acp".into(),
        };
        let mut it = argv.into_iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--state-dir" => a.state_dir = it.next().map(PathBuf::from),
                "--no-load-session" => a.load_session = false,
                "--ignore-eof" => a.ignore_eof = true,
                "--name" => a.name = it.next().unwrap_or_default(),
                "--startup-delay-ms" => {
                    let ms = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    a.startup_delay = Duration::from_millis(ms);
                }
                _ => {}
            }
        }
        a
    }
}

/// What the client offered in `initialize`.
#[derive(Default, Clone, Copy)]
struct Caps {
    read: bool,
    write: bool,
    terminal: bool,
}

struct Session {
    cwd: String,
    mode: String,
    /// `(role, text)`: `user` prompts and `agent` answers, in order.
    history: Vec<(String, String)>,
    /// Commands an `allow-always` answer granted.
    always: HashSet<String>,
    cost: f64,
}

/// How a turn ends.
enum End {
    Stop(&'static str),
    StopNamed(String),
    Error(String),
}

struct Agent {
    args: Args,
    rx: Receiver<Input>,
    out: std::io::Stdout,
    caps: Caps,
    sessions: HashMap<String, Session>,
    /// Requests that arrived during a turn, answered after it.
    queued: VecDeque<Value>,
    /// Ids of the agent's own requests.
    seq: u64,
    /// Sessions made by this process (for unique ids).
    made: u64,
    /// The session whose turn is running.
    current: Option<String>,
    /// A `session/cancel` for it arrived.
    cancelled: bool,
    /// Whether stdin's end is ignored right now (`ignorecancel:`).
    deaf: bool,
}

/// Runs the agent on this process's stdin/stdout with `args` (the command
/// line without the program name); returns when stdin ends (or exits the
/// process itself, for `crash:` and `exit`).
pub fn run(args: impl IntoIterator<Item = String>) {
    let args = Args::parse(args.into_iter().collect());
    std::thread::sleep(args.startup_delay);
    // stdin is read on its own thread so a cancel or the client's answer
    // can arrive while a turn waits.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // What is not JSON is ignored, as the ACP SDKs do.
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                        if tx.send(Input::Message(v)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let _ = tx.send(Input::Eof);
    });
    let mut agent = Agent {
        args,
        rx,
        out: std::io::stdout(),
        caps: Caps::default(),
        sessions: HashMap::new(),
        queued: VecDeque::new(),
        seq: 0,
        made: 0,
        current: None,
        cancelled: false,
        deaf: false,
    };
    agent.run();
}

impl Agent {
    fn emit(&mut self, v: Value) {
        let mut lock = self.out.lock();
        let _ = writeln!(lock, "{v}");
        let _ = lock.flush();
    }

    fn emit_raw(&mut self, bytes: &[u8]) {
        let mut lock = self.out.lock();
        let _ = lock.write_all(bytes);
        let _ = lock.write_all(b"\n");
        let _ = lock.flush();
    }

    fn respond(&mut self, id: &Value, result: Value) {
        self.emit(json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }

    fn respond_error(&mut self, id: &Value, code: i64, message: &str) {
        self.emit(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}));
    }

    fn notify_update(&mut self, session: &str, update: Value) {
        self.emit(json!({"jsonrpc": "2.0", "method": "session/update",
            "params": {"sessionId": session, "update": update}}));
    }

    /// stdin ended: exit, unless told to keep running until a signal.
    fn eof(&mut self) -> ! {
        if self.args.ignore_eof {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        std::process::exit(0);
    }

    fn run(&mut self) {
        loop {
            let v = match self.queued.pop_front() {
                Some(v) => v,
                None => match self.rx.recv() {
                    Ok(Input::Message(v)) => v,
                    Ok(Input::Eof) | Err(_) => {
                        if self.args.ignore_eof {
                            self.eof();
                        }
                        return;
                    }
                },
            };
            self.handle(v);
        }
    }

    /// One message between turns.
    fn handle(&mut self, v: Value) {
        let Some(method) = v.get("method").and_then(Value::as_str).map(str::to_owned) else {
            return; // a late answer to one of the agent's requests
        };
        let params = v.get("params").cloned().unwrap_or(Value::Null);
        let Some(id) = v.get("id").cloned() else {
            return; // notifications outside a turn (a late cancel) change nothing
        };
        match method.as_str() {
            "initialize" => {
                let caps = &params["clientCapabilities"];
                self.caps = Caps {
                    read: caps["fs"]["readTextFile"].as_bool().unwrap_or(false),
                    write: caps["fs"]["writeTextFile"].as_bool().unwrap_or(false),
                    terminal: caps["terminal"].as_bool().unwrap_or(false),
                };
                let load = self.args.load_session;
                self.respond(
                    &id,
                    json!({"protocolVersion": 1,
                        "agentCapabilities": {"loadSession": load,
                            "promptCapabilities": {"image": false, "audio": false, "embeddedContext": false}},
                        "agentInfo": {"name": self.args.name, "version": env!("CARGO_PKG_VERSION")},
                        "authMethods": []}),
                );
            }
            "authenticate" => self.respond(&id, json!({})),
            "session/new" => {
                let Some(cwd) = params["cwd"].as_str().map(str::to_owned) else {
                    return self.respond_error(&id, -32602, "cwd is required");
                };
                self.made += 1;
                let sid = format!(
                    "acp-{}-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0),
                    self.made
                );
                self.sessions.insert(
                    sid.clone(),
                    Session {
                        cwd,
                        mode: "default".into(),
                        history: Vec::new(),
                        always: HashSet::new(),
                        cost: 0.0,
                    },
                );
                self.respond(&id, json!({"sessionId": sid, "modes": modes("default")}));
                self.notify_update(
                    &sid,
                    json!({"sessionUpdate": "available_commands_update", "availableCommands": [
                        {"name": "recall", "description": "Show the conversation's prompts"}]}),
                );
            }
            "session/load" => self.load(&id, &params),
            "session/set_mode" => self.set_mode(&id, &params),
            "session/prompt" => self.prompt(&id, &params),
            other => self.respond_error(&id, -32601, &format!("Method not found: {other}")),
        }
    }

    fn set_mode(&mut self, id: &Value, params: &Value) {
        let sid = params["sessionId"].as_str().unwrap_or("").to_owned();
        let mode = params["modeId"].as_str().unwrap_or("").to_owned();
        match self.sessions.get_mut(&sid) {
            Some(s) if mode == "default" || mode == "plan" => {
                s.mode.clone_from(&mode);
                self.notify_update(
                    &sid,
                    json!({"sessionUpdate": "current_mode_update", "currentModeId": mode}),
                );
                self.respond(id, json!({}));
            }
            Some(_) => self.respond_error(id, -32602, &format!("Unknown mode: {mode}")),
            None => self.respond_error(id, -32602, &format!("Unknown session: {sid}")),
        }
    }

    fn transcript(&self, sid: &str) -> Option<PathBuf> {
        // Session ids are made here or given by the client: keep them
        // from naming another directory.
        if sid.is_empty() || sid.contains(['/', '\\']) || sid.starts_with('.') {
            return None;
        }
        self.args
            .state_dir
            .as_ref()
            .map(|d| d.join(format!("{sid}.acp.jsonl")))
    }

    fn load(&mut self, id: &Value, params: &Value) {
        if !self.args.load_session {
            return self.respond_error(id, -32601, "Method not found: session/load");
        }
        let sid = params["sessionId"].as_str().unwrap_or("").to_owned();
        let cwd = params["cwd"].as_str().unwrap_or("").to_owned();
        let text = self
            .transcript(&sid)
            .and_then(|p| std::fs::read_to_string(p).ok());
        let Some(text) = text else {
            return self.respond_error(id, -32002, &format!("Resource not found: session {sid}"));
        };
        let history: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                Some((
                    v["role"].as_str()?.to_owned(),
                    v["text"].as_str()?.to_owned(),
                ))
            })
            .collect();
        for (i, (role, text)) in history.iter().enumerate() {
            let kind = if role == "user" {
                "user_message_chunk"
            } else {
                "agent_message_chunk"
            };
            self.notify_update(
                &sid,
                json!({"sessionUpdate": kind, "messageId": format!("replay-{i}"),
                    "content": {"type": "text", "text": text}}),
            );
        }
        self.sessions.insert(
            sid,
            Session {
                cwd,
                mode: "default".into(),
                history,
                always: HashSet::new(),
                cost: 0.0,
            },
        );
        self.respond(id, json!({"modes": modes("default")}));
    }

    fn prompt(&mut self, id: &Value, params: &Value) {
        let sid = params["sessionId"].as_str().unwrap_or("").to_owned();
        if !self.sessions.contains_key(&sid) {
            return self.respond_error(id, -32602, &format!("Unknown session: {sid}"));
        }
        let text: String = params["prompt"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("");
        self.current = Some(sid.clone());
        self.cancelled = false;
        let mut said = String::new();
        let end = self.turn(&sid, &text, &mut said);
        self.current = None;
        let recall = text.clone();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.history.push(("user".into(), recall));
            if !said.is_empty() {
                s.history.push(("agent".into(), said.clone()));
            }
            s.cost += 0.001;
        }
        self.save(&sid, &text, &said);
        let (cost, used) = self
            .sessions
            .get(&sid)
            .map(|s| {
                let chars: usize = s.history.iter().map(|(_, t)| t.len()).sum();
                (s.cost, chars as u64 / 4 + 100)
            })
            .unwrap_or((0.0, 0));
        self.notify_update(
            &sid,
            json!({"sessionUpdate": "usage_update", "used": used, "size": 200000,
                "cost": {"amount": cost, "currency": "USD"}}),
        );
        let input = text.len() as u64 / 4 + 1;
        let output = said.len() as u64 / 4 + 1;
        let usage =
            json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
        match end {
            End::Stop(r) => self.respond(id, json!({"stopReason": r, "usage": usage})),
            End::StopNamed(r) => self.respond(id, json!({"stopReason": r, "usage": usage})),
            End::Error(m) => self.respond_error(id, -32603, &m),
        }
        if text.starts_with("after:") {
            self.notify_update(
                &sid,
                json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "STALE"}}),
            );
            self.respond(id, json!({"stopReason": "end_turn"}));
        }
        if text == "exit" {
            std::process::exit(0);
        }
    }

    /// Appends the turn to the session's transcript file.
    fn save(&self, sid: &str, prompt: &str, said: &str) {
        let Some(path) = self.transcript(sid) else {
            return;
        };
        let mut lines = json!({"role": "user", "text": prompt}).to_string();
        lines.push('\n');
        if !said.is_empty() {
            lines.push_str(&json!({"role": "agent", "text": said}).to_string());
            lines.push('\n');
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut f) = file {
            let _ = f.write_all(lines.as_bytes());
        }
    }

    /// Streams `text` as up to four `agent_message_chunk`s of one message.
    fn say(&mut self, sid: &str, text: &str, said: &mut String) {
        self.seq += 1;
        let message = format!("msg-{}", self.seq);
        for piece in pieces(text, 4) {
            self.notify_update(
                sid,
                json!({"sessionUpdate": "agent_message_chunk", "messageId": message,
                    "content": {"type": "text", "text": piece}}),
            );
        }
        said.push_str(text);
    }

    fn turn(&mut self, sid: &str, text: &str, said: &mut String) -> End {
        // A directive is `<name>:<argument>`; anything else is plain text.
        let (directive, rest) = text.split_once(':').unwrap_or(("", text));
        match directive {
            "sleep" => {
                let ms = rest.trim().parse().unwrap_or(0);
                if self.stall(Duration::from_millis(ms), true) {
                    return End::Stop("cancelled");
                }
                self.say(sid, &format!("slept {ms} ms"), said);
            }
            "ignorecancel" => {
                let wait = rest
                    .trim()
                    .parse()
                    .map(Duration::from_millis)
                    .unwrap_or(Duration::MAX);
                self.deaf = true;
                self.stall(wait, false);
                self.deaf = false;
                self.say(sid, "ignored cancel", said);
            }
            "crash" => {
                self.say(sid, "about to crash", said);
                std::process::exit(3);
            }
            "garbage" => {
                let kib = rest.trim().parse().unwrap_or(1024usize);
                self.garbage(sid, kib);
                self.say(sid, "echo: garbage survived", said);
            }
            "run" => return self.run_command(sid, rest, true, said),
            "term" => return self.run_command(sid, rest, false, said),
            "read" => self.read(sid, rest, said),
            "write" | "askwrite" => {
                let (path, content) = rest.split_once(':').unwrap_or((rest, ""));
                return self.write(sid, path, content, directive == "askwrite", said);
            }
            "thought" => {
                for piece in pieces(rest, 3) {
                    self.notify_update(
                        sid,
                        json!({"sessionUpdate": "agent_thought_chunk",
                            "content": {"type": "text", "text": piece}}),
                    );
                }
                self.say(sid, "thought about it", said);
            }
            "plan" => {
                let steps: Vec<&str> = rest.split('|').filter(|s| !s.is_empty()).collect();
                let entries: Vec<Value> = steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        json!({"content": s, "priority": "medium",
                            "status": if i == 0 { "in_progress" } else { "pending" }})
                    })
                    .collect();
                self.notify_update(sid, json!({"sessionUpdate": "plan", "entries": entries}));
                self.say(sid, &format!("planned {} steps", steps.len()), said);
            }
            "stop" => {
                self.say(sid, &format!("stopping with {rest}"), said);
                return End::StopNamed(rest.to_owned());
            }
            "fail" => return End::Error(rest.to_owned()),
            "after" => self.say(sid, rest, said),
            _ => {
                let answer = match text {
                    "recall" => {
                        let prompts: Vec<String> = self
                            .sessions
                            .get(sid)
                            .map(|s| {
                                s.history
                                    .iter()
                                    .filter(|(r, _)| r == "user")
                                    .map(|(_, t)| t.clone())
                                    .collect()
                            })
                            .unwrap_or_default();
                        format!("history: {}", prompts.join(" | "))
                    }
                    "caps?" => format!(
                        "caps: read={} write={} terminal={}",
                        self.caps.read, self.caps.write, self.caps.terminal
                    ),
                    "cwd?" => format!(
                        "cwd: {}",
                        self.sessions.get(sid).map_or("", |s| s.cwd.as_str())
                    ),
                    "mode?" => format!(
                        "mode: {}",
                        self.sessions.get(sid).map_or("", |s| s.mode.as_str())
                    ),
                    "exit" => "bye".to_owned(),
                    _ => format!("echo: {text}"),
                };
                self.say(sid, &answer, said);
            }
        }
        End::Stop("end_turn")
    }

    fn garbage(&mut self, sid: &str, kib: usize) {
        self.emit_raw(b"this is not json");
        self.emit_raw(b"\xff\xfe not \x80 utf-8");
        self.emit_raw(&vec![b'x'; kib.saturating_mul(1024)]);
        self.emit_raw(b"[1,2,3]");
        self.emit_raw(br#"{"jsonrpc":"1.0","method":"session/update"}"#);
        self.emit_raw(br#"{"jsonrpc":"2.0","id":987654321,"result":{}}"#);
        self.notify_update(sid, json!({"sessionUpdate": "mystery_update", "x": 1}));
        let mut bad = format!(
            r#"{{"jsonrpc":"2.0","method":"session/update","params":{{"sessionId":"{sid}","update":{{"sessionUpdate":"agent_message_chunk","messageId":"garbage","content":{{"type":"text","text":"bad"#
        )
        .into_bytes();
        bad.push(0xff);
        bad.extend_from_slice(br#"byte"}}}}"#);
        self.emit_raw(&bad);
    }

    /// The agent's next request id (numbers, as the ACP SDKs use).
    fn next_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Sends a request to the client and waits for its answer: the result,
    /// or the error's code and message.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, (i64, String)> {
        let id = self.next_id();
        self.emit(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let v = match self.rx.recv() {
                Ok(Input::Message(v)) => v,
                Ok(Input::Eof) | Err(_) => self.eof(),
            };
            if v.get("method").is_some() {
                self.aside(v);
                continue;
            }
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // an answer to nothing awaited
            }
            if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
                return Err((
                    e["code"].as_i64().unwrap_or(-32603),
                    e["message"].as_str().unwrap_or("").to_owned(),
                ));
            }
            return Ok(v.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// A request or notification that arrives during a turn.
    fn aside(&mut self, v: Value) {
        match v.get("method").and_then(Value::as_str) {
            Some("session/cancel") => {
                let sid = v["params"]["sessionId"].as_str();
                if sid.is_some() && sid == self.current.as_deref() {
                    self.cancelled = true;
                }
            }
            Some("session/set_mode") => {
                let id = v.get("id").cloned().unwrap_or(Value::Null);
                let params = v.get("params").cloned().unwrap_or(Value::Null);
                self.set_mode(&id, &params);
            }
            _ if v.get("id").is_some() => self.queued.push_back(v),
            _ => {}
        }
    }

    /// Waits `d`; returns true when a cancel arrived first and `honour`.
    fn stall(&mut self, d: Duration, honour: bool) -> bool {
        let end = Instant::now().checked_add(d);
        loop {
            if honour && self.cancelled {
                return true;
            }
            let left = match end {
                Some(e) => e.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if end.is_some() && left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(Input::Message(v)) => {
                    if v.get("method").is_some() {
                        self.aside(v);
                    }
                }
                Ok(Input::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    if self.deaf {
                        // Keep stalling on a dead stdin: only a signal
                        // ends this turn.
                        let rest = end.map(|e| e.saturating_duration_since(Instant::now()));
                        std::thread::sleep(rest.unwrap_or(Duration::from_secs(3600)));
                        if end.is_none() {
                            continue;
                        }
                        return false;
                    }
                    self.eof();
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn tool_update(
        &mut self,
        sid: &str,
        call: &str,
        status: &str,
        text: Option<&str>,
        extra: Value,
    ) {
        let mut update =
            json!({"sessionUpdate": "tool_call_update", "toolCallId": call, "status": status});
        if let Some(t) = text {
            update["content"] =
                json!([{"type": "content", "content": {"type": "text", "text": t}}]);
        }
        if let Value::Object(o) = extra {
            for (k, v) in o {
                update[k] = v;
            }
        }
        self.notify_update(sid, update);
    }

    /// Asks permission for a tool call: `Ok(true)` allowed, `Ok(false)`
    /// rejected, `Err(None)` the `cancelled` outcome, `Err(Some(m))` an
    /// error answer.
    fn ask(&mut self, sid: &str, tool_call: Value) -> Result<bool, Option<String>> {
        let answer = self.call(
            "session/request_permission",
            json!({"sessionId": sid, "toolCall": tool_call, "options": [
                {"optionId": "allow-once", "name": "Allow once", "kind": "allow_once"},
                {"optionId": "allow-always", "name": "Always allow", "kind": "allow_always"},
                {"optionId": "reject-once", "name": "Reject", "kind": "reject_once"}]}),
        );
        match answer {
            Err((_, m)) => Err(Some(m)),
            Ok(v) => match v["outcome"]["outcome"].as_str() {
                Some("selected") => match v["outcome"]["optionId"].as_str() {
                    Some("allow-once") => Ok(true),
                    Some("allow-always") => {
                        let cmd = tool_call["rawInput"]["command"].as_str().unwrap_or("");
                        if let Some(s) = self.sessions.get_mut(sid) {
                            s.always.insert(cmd.to_owned());
                        }
                        Ok(true)
                    }
                    _ => Ok(false),
                },
                Some("cancelled") => Err(None),
                _ => Ok(false),
            },
        }
    }

    fn run_command(&mut self, sid: &str, cmd: &str, ask: bool, said: &mut String) -> End {
        let call = format!("call_{}", self.next_id());
        let tool_call = json!({"toolCallId": call, "title": cmd, "kind": "execute",
            "status": "pending", "rawInput": {"command": cmd}});
        let mut update = tool_call.clone();
        update["sessionUpdate"] = json!("tool_call");
        self.notify_update(sid, update);
        let granted = !ask
            || self
                .sessions
                .get(sid)
                .is_some_and(|s| s.always.contains(cmd));
        if !granted {
            match self.ask(sid, tool_call) {
                Ok(true) => {}
                Ok(false) => {
                    self.tool_update(sid, &call, "failed", Some("rejected"), json!({}));
                    self.say(sid, &format!("denied: {cmd}"), said);
                    return End::Stop("end_turn");
                }
                Err(None) => {
                    self.tool_update(sid, &call, "failed", Some("cancelled"), json!({}));
                    return End::Stop("cancelled");
                }
                Err(Some(m)) => {
                    self.tool_update(sid, &call, "failed", Some(&m), json!({}));
                    self.say(sid, &format!("permission error: {m}"), said);
                    return End::Stop("end_turn");
                }
            }
        }
        if self.cancelled {
            self.tool_update(sid, &call, "failed", Some("cancelled"), json!({}));
            return End::Stop("cancelled");
        }
        self.tool_update(sid, &call, "in_progress", None, json!({}));
        let cwd = self
            .sessions
            .get(sid)
            .map(|s| s.cwd.clone())
            .unwrap_or_default();
        let ran = if self.caps.terminal {
            self.run_in_terminal(sid, &call, cmd, &cwd)
        } else {
            self.run_locally(cmd, &cwd)
        };
        match ran {
            Ran::Done(code, output) => {
                self.tool_update(
                    sid,
                    &call,
                    "completed",
                    Some(&output),
                    json!({"rawOutput": {"exitCode": code, "output": output}}),
                );
                let code = code.map_or("none".to_owned(), |c| c.to_string());
                self.say(sid, &format!("ran: {cmd}\nexit: {code}\n{output}"), said);
                End::Stop("end_turn")
            }
            Ran::Cancelled => {
                self.tool_update(sid, &call, "failed", Some("cancelled"), json!({}));
                End::Stop("cancelled")
            }
            Ran::Failed(m) => {
                self.tool_update(sid, &call, "failed", Some(&m), json!({}));
                self.say(sid, &format!("terminal error: {m}"), said);
                End::Stop("end_turn")
            }
        }
    }

    fn run_in_terminal(&mut self, sid: &str, call: &str, cmd: &str, cwd: &str) -> Ran {
        let created = self.call(
            "terminal/create",
            json!({"sessionId": sid, "command": "sh", "args": ["-c", cmd], "cwd": cwd,
                "outputByteLimit": 1_048_576}),
        );
        let terminal = match created {
            Ok(v) => match v["terminalId"].as_str() {
                Some(t) => t.to_owned(),
                None => return Ran::Failed("terminal/create answered no terminalId".into()),
            },
            Err((_, m)) => return Ran::Failed(m),
        };
        self.tool_update(
            sid,
            call,
            "in_progress",
            None,
            json!({"content": [{"type": "terminal", "terminalId": terminal}]}),
        );
        let which = json!({"sessionId": sid, "terminalId": terminal});
        let exit = self.call("terminal/wait_for_exit", which.clone());
        if self.cancelled {
            let _ = self.call("terminal/kill", which.clone());
            let _ = self.call("terminal/release", which);
            return Ran::Cancelled;
        }
        let output = self.call("terminal/output", which.clone());
        let _ = self.call("terminal/release", which);
        match (exit, output) {
            (Ok(e), Ok(o)) => Ran::Done(
                e["exitCode"].as_i64(),
                o["output"].as_str().unwrap_or("").to_owned(),
            ),
            (Err((_, m)), _) | (_, Err((_, m))) => Ran::Failed(m),
        }
    }

    /// Runs the command itself, reading messages meanwhile so a cancel
    /// kills it.
    fn run_locally(&mut self, cmd: &str, cwd: &str) -> Ran {
        let mut c = Command::new("sh");
        c.arg("-c").arg(cmd).stdin(Stdio::null());
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        if !cwd.is_empty() {
            c.current_dir(cwd);
        }
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => return Ran::Failed(format!("cannot run sh: {e}")),
        };
        // Readers on their own threads, so a full pipe never blocks the
        // command while the agent waits for it.
        let read = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = read(child.stdout.take().map(|s| Box::new(s) as _));
        let err = read(child.stderr.take().map(|s| Box::new(s) as _));
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if self.stall(Duration::from_millis(20), true) {
                let _ = child.kill();
                let _ = child.wait();
                return Ran::Cancelled;
            }
        };
        let mut text = out.join().unwrap_or_default();
        text.extend(err.join().unwrap_or_default());
        Ran::Done(
            status.and_then(|s| s.code()).map(i64::from),
            String::from_utf8_lossy(&text).into_owned(),
        )
    }

    fn read(&mut self, sid: &str, path: &str, said: &mut String) {
        let call = format!("call_{}", self.next_id());
        self.notify_update(
            sid,
            json!({"sessionUpdate": "tool_call", "toolCallId": call, "title": format!("Read {path}"),
                "kind": "read", "status": "in_progress", "locations": [{"path": path}],
                "rawInput": {"path": path}}),
        );
        let (status, answer) = if self.caps.read {
            match self.call("fs/read_text_file", json!({"sessionId": sid, "path": path})) {
                Ok(v) => (
                    "completed",
                    format!("read: {}", v["content"].as_str().unwrap_or("")),
                ),
                Err((code, m)) => ("failed", format!("read error: {code} {m}")),
            }
        } else {
            match std::fs::read_to_string(path) {
                Ok(t) => ("completed", format!("read locally: {t}")),
                Err(e) => ("failed", format!("read error: {e}")),
            }
        };
        self.tool_update(sid, &call, status, Some(&answer), json!({}));
        self.say(sid, &answer, said);
    }

    fn write(&mut self, sid: &str, path: &str, content: &str, ask: bool, said: &mut String) -> End {
        let call = format!("call_{}", self.next_id());
        let tool_call = json!({"toolCallId": call, "title": format!("Write {path}"), "kind": "edit",
            "status": "pending", "locations": [{"path": path}],
            "rawInput": {"path": path, "content": content},
            "content": [{"type": "diff", "path": path, "oldText": null, "newText": content}]});
        let mut update = tool_call.clone();
        update["sessionUpdate"] = json!("tool_call");
        self.notify_update(sid, update);
        if ask {
            match self.ask(sid, tool_call) {
                Ok(true) => {}
                Ok(false) | Err(Some(_)) => {
                    self.tool_update(sid, &call, "failed", Some("rejected"), json!({}));
                    self.say(sid, &format!("denied: {path}"), said);
                    return End::Stop("end_turn");
                }
                Err(None) => {
                    self.tool_update(sid, &call, "failed", Some("cancelled"), json!({}));
                    return End::Stop("cancelled");
                }
            }
        }
        let (status, answer) = if self.caps.write {
            match self.call(
                "fs/write_text_file",
                json!({"sessionId": sid, "path": path, "content": content}),
            ) {
                Ok(_) => ("completed", format!("wrote: {path}")),
                Err((code, m)) => ("failed", format!("write error: {code} {m}")),
            }
        } else {
            match std::fs::write(path, content) {
                Ok(()) => ("completed", format!("wrote locally: {path}")),
                Err(e) => ("failed", format!("write error: {e}")),
            }
        };
        self.tool_update(sid, &call, status, Some(&answer), json!({}));
        self.say(sid, &answer, said);
        End::Stop("end_turn")
    }
}

/// How a command run went.
enum Ran {
    /// It ended: exit code (none when a signal ended it) and output.
    Done(Option<i64>, String),
    /// A cancel stopped it.
    Cancelled,
    /// It could not run (the client refused or failed).
    Failed(String),
}

fn modes(current: &str) -> Value {
    json!({"currentModeId": current, "availableModes": [
        {"id": "default", "name": "Default"},
        {"id": "plan", "name": "Plan", "description": "Read-only planning"}]})
}

/// `text` in up to `n` pieces of about equal length, on character
/// boundaries (an empty text is one empty piece).
fn pieces(text: &str, n: usize) -> Vec<&str> {
    let chars = text.chars().count();
    let size = chars.div_ceil(n.max(1)).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in text.char_indices() {
        if count == size {
            out.push(&text[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_on_character_boundaries_and_rejoin() {
        for (text, n) in [
            ("hello world", 4),
            ("héllo", 4),
            ("ab", 4),
            ("", 4),
            ("x", 1),
        ] {
            let p = pieces(text, n);
            assert!(p.len() <= n.max(1), "{text:?}: {p:?}");
            assert_eq!(p.concat(), text);
        }
        assert_eq!(pieces("abcdefgh", 4), ["ab", "cd", "ef", "gh"]);
    }

    #[test]
    fn arguments_are_read() {
        let a = Args::parse(
            [
                "--state-dir",
                "/s",
                "--no-load-session",
                "--ignore-eof",
                "--startup-delay-ms",
                "5",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        assert_eq!(a.state_dir, Some(PathBuf::from("/s")));
        assert!(!a.load_session && a.ignore_eof);
        assert_eq!(a.startup_delay, Duration::from_millis(5));
    }
}
