//! The reference ACP agent (`hotplex-reference-acp`) driven over its stdio
//! with `hotplex_core::protocol::acp`: the core's builders write every
//! request, its parser reads every line, its tracker turns each turn into
//! the contract's events, and a small host here answers the agent's
//! permission, file and terminal requests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use hotplex_core::protocol::acp::permission::{select_option, PermissionAnswer, PermissionTarget};
use hotplex_core::protocol::acp::tracker::TurnTracker;
use hotplex_core::protocol::acp::{self as acp, AcpError, AgentRequest, Incoming, RequestId};
use hotplex_core::Event;
use serde_json::{json, Value};

const AGENT: &str = env!("CARGO_BIN_EXE_hotplex-reference-acp");

/// Long enough for a loaded machine; a hang fails instead of blocking.
const WAIT: Duration = Duration::from_secs(30);

mod support;
use support::TempDir;

/// A path in `dir`, as a string.
fn path_in(dir: &TempDir, name: &str) -> String {
    dir.0.join(name).to_string_lossy().into_owned()
}

/// Why no line came.
#[derive(Debug)]
enum Stop {
    /// The agent's stdout ended.
    Eof,
    /// Nothing within the wait.
    Quiet,
}

/// The next line, parsed, or why there was none.
type Next = Result<Result<Incoming, AcpError>, Stop>;

/// How the host answers the agent's requests.
#[derive(Default)]
struct Host {
    /// Allow tool calls (through `select_option`, so never `allow_always`).
    allow: bool,
    /// Answer permission requests with this option id instead (to show
    /// what an `allow_always` does).
    force_option: Option<String>,
    /// Every request the agent made, by method, in order.
    seen: Vec<String>,
    /// What the WAF would have judged, per permission request.
    targets: Vec<PermissionTarget>,
    /// `terminal/create` commands as the WAF would see them.
    terminal_commands: Vec<Vec<String>>,
    /// Finished terminals: id -> (exit code, output).
    terminals: HashMap<String, (Option<u32>, String)>,
    /// Permission answers sent.
    answers: Vec<PermissionAnswer>,
}

impl Host {
    fn allowing() -> Host {
        Host {
            allow: true,
            ..Host::default()
        }
    }

    /// The answer line to one agent request.
    fn answer(&mut self, id: &RequestId, req: &AgentRequest, tracker: &TurnTracker) -> String {
        self.seen.push(req.method().to_owned());
        match req {
            AgentRequest::RequestPermission(p) => {
                self.targets.push(tracker.permission_target(p));
                let answer = match &self.force_option {
                    Some(o) => PermissionAnswer::Selected {
                        option_id: o.clone(),
                        kind: acp::PermissionKind::AllowAlways,
                    },
                    None => select_option(&p.options, self.allow),
                };
                self.answers.push(answer.clone());
                acp::permission_response(id, &answer)
            }
            AgentRequest::ReadTextFile(r) => match std::fs::read_to_string(&r.path) {
                Ok(text) => acp::read_text_file_response(id, &text),
                Err(_) => acp::error_response(
                    id,
                    acp::codes::RESOURCE_NOT_FOUND,
                    &format!("Resource not found: {}", r.path),
                ),
            },
            AgentRequest::WriteTextFile(w) => match std::fs::write(&w.path, &w.content) {
                Ok(()) => acp::write_text_file_response(id),
                Err(e) => acp::error_response(id, acp::codes::INTERNAL_ERROR, &e.to_string()),
            },
            AgentRequest::TerminalCreate(t) => {
                self.terminal_commands.push(t.screened_commands());
                let mut c = Command::new(&t.command);
                c.args(&t.args).stdin(Stdio::null());
                if let Some(cwd) = &t.cwd {
                    c.current_dir(cwd);
                }
                match c.output() {
                    Ok(o) => {
                        let tid = format!("term-{}", self.terminals.len() + 1);
                        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                        text.push_str(&String::from_utf8_lossy(&o.stderr));
                        let code = o.status.code().and_then(|c| u32::try_from(c).ok());
                        self.terminals.insert(tid.clone(), (code, text));
                        acp::terminal_create_response(id, &tid)
                    }
                    Err(e) => acp::error_response(id, acp::codes::INTERNAL_ERROR, &e.to_string()),
                }
            }
            AgentRequest::TerminalWaitForExit(r) | AgentRequest::TerminalOutput(r) => {
                match self.terminals.get(&r.terminal_id) {
                    Some((code, text)) => {
                        let exit = acp::ExitStatus {
                            exit_code: *code,
                            signal: None,
                        };
                        if matches!(req, AgentRequest::TerminalOutput(_)) {
                            acp::terminal_output_response(id, text, false, Some(&exit))
                        } else {
                            acp::terminal_exit_response(id, &exit)
                        }
                    }
                    None => acp::error_response(id, acp::codes::INVALID_PARAMS, "no such terminal"),
                }
            }
            AgentRequest::TerminalKill(_) => acp::terminal_done_response(id),
            AgentRequest::TerminalRelease(r) => {
                self.terminals.remove(&r.terminal_id);
                acp::terminal_done_response(id)
            }
            AgentRequest::Invalid { reason, .. } => {
                acp::error_response(id, acp::codes::INVALID_PARAMS, reason)
            }
            AgentRequest::Other { method, .. } => acp::error_response(
                id,
                acp::codes::METHOD_NOT_FOUND,
                &format!("Method not found: {method}"),
            ),
        }
    }
}

/// One turn's outcome.
struct Turn {
    events: Vec<Event>,
    tracker: TurnTracker,
}

impl Turn {
    /// The concatenated `answer` texts.
    fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Answer { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn names(&self) -> Vec<&'static str> {
        self.events.iter().map(Event::name).collect()
    }

    fn stop(&self) -> &str {
        self.tracker.stop_reason().map_or("(none)", |s| s.as_str())
    }
}

/// The agent process and the client's side of the conversation.
struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    ids: acp::IdCounter,
    /// Lines that were not messages.
    errors: Vec<AcpError>,
    /// Responses to ids the client never sent.
    unknown: Vec<RequestId>,
    /// Notifications received outside a turn.
    outside: Vec<Incoming>,
    cost: f64,
    /// The id of the last `session/prompt` sent.
    last_prompt: Option<RequestId>,
}

impl Agent {
    fn spawn(args: &[&str]) -> Agent {
        let mut child = Command::new(AGENT)
            .args(args)
            .env_remove("HOTPLEX_REF_STATE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the reference ACP agent");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(buf).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Agent {
            stdin: child.stdin.take(),
            child,
            lines,
            ids: acp::IdCounter::new(),
            errors: Vec::new(),
            unknown: Vec::new(),
            outside: Vec::new(),
            cost: 0.0,
            last_prompt: None,
        }
    }

    /// Spawned and initialized with these capabilities.
    fn start(args: &[&str], caps: acp::ClientCapabilities) -> (Agent, acp::AgentInfo) {
        let mut a = Agent::spawn(args);
        let info = a
            .request(|id| acp::initialize(id, caps))
            .expect("initialize");
        (a, acp::AgentInfo::from_result(&info))
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write to agent");
        stdin.flush().expect("flush");
    }

    fn next(&mut self, wait: Duration) -> Next {
        match self.lines.recv_timeout(wait) {
            Ok(bytes) => {
                let parsed = acp::parse_line(&bytes);
                if let Err(e) = &parsed {
                    self.errors.push(e.clone());
                }
                Ok(parsed)
            }
            Err(RecvTimeoutError::Timeout) => Err(Stop::Quiet),
            Err(RecvTimeoutError::Disconnected) => Err(Stop::Eof),
        }
    }

    /// Sends a request and returns its answer; notifications meanwhile
    /// are kept in `outside`.
    fn request(
        &mut self,
        build: impl FnOnce(&RequestId) -> String,
    ) -> Result<Value, acp::RpcError> {
        let id = self.ids.next_id();
        let line = build(&id);
        self.send(&line);
        loop {
            match self.next(WAIT) {
                Ok(Ok(Incoming::Response { id: got, result })) => {
                    if got == id {
                        return result;
                    }
                    self.unknown.push(got);
                }
                Ok(Ok(other)) => self.outside.push(other),
                Ok(Err(_)) => {}
                Err(Stop::Eof) => panic!("the agent exited while answering {line}"),
                Err(Stop::Quiet) => panic!("no answer to {line}"),
            }
        }
    }

    fn new_session(&mut self, cwd: &Path) -> String {
        let v = self
            .request(|id| acp::session_new(id, &cwd.to_string_lossy()))
            .expect("session/new");
        acp::SessionCreated::from_result(&v)
            .expect("a session id")
            .session_id
    }

    /// Starts a turn; returns the tracker to feed with [`Agent::drive`].
    fn prompt(&mut self, session: &str, text: &str) -> TurnTracker {
        let id = self.ids.next_id();
        self.send(&acp::session_prompt(&id, session, text));
        self.last_prompt = Some(id.clone());
        TurnTracker::new(id)
            .for_session(session)
            .with_deltas(true)
            .with_cost_base(self.cost)
    }

    /// Feeds the tracker until the turn ends, answering requests with
    /// `host`; `None` when the agent's stdout ended first.
    fn drive(&mut self, mut tracker: TurnTracker, host: &mut Host) -> Option<Turn> {
        let mut events = Vec::new();
        while !tracker.is_done() {
            match self.next(WAIT) {
                Ok(Ok(msg)) => {
                    if let Incoming::Response { id, .. } = &msg {
                        // Only the prompt's answer is awaited during a
                        // turn: any other answers nothing.
                        let id = id.clone();
                        events.extend(tracker.push_owned(msg));
                        if !tracker.is_done() {
                            self.unknown.push(id);
                        }
                        continue;
                    }
                    let answer = match &msg {
                        Incoming::Request { id, request } => {
                            Some(host.answer(id, request, &tracker))
                        }
                        _ => None,
                    };
                    events.extend(tracker.push_owned(msg));
                    if let Some(line) = answer {
                        self.send(&line);
                    }
                }
                Ok(Err(_)) => {}
                Err(Stop::Eof) => {
                    events.extend(tracker.abandon());
                    return None;
                }
                Err(Stop::Quiet) => panic!("the turn did not end; events so far: {events:?}"),
            }
        }
        if let Some(total) = tracker.cost_total() {
            self.cost = total;
        }
        Some(Turn { events, tracker })
    }

    fn turn(&mut self, session: &str, text: &str, host: &mut Host) -> Turn {
        let t = self.prompt(session, text);
        self.drive(t, host).expect("the agent exited mid-turn")
    }

    /// Reads (into `outside`) until a message `stop` accepts, as a
    /// client reading between turns does.
    fn drain_until(&mut self, stop: impl Fn(&Incoming) -> bool) {
        loop {
            match self.next(WAIT) {
                Ok(Ok(m)) => {
                    let done = stop(&m);
                    self.outside.push(m);
                    if done {
                        return;
                    }
                }
                Ok(Err(_)) => {}
                Err(Stop::Eof) | Err(Stop::Quiet) => panic!("the awaited message never came"),
            }
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The exit status, if the agent exits within `WAIT`.
    fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn all_caps() -> acp::ClientCapabilities {
    acp::ClientCapabilities {
        read_text_file: true,
        write_text_file: true,
        terminal: true,
    }
}

#[test]
fn a_plain_prompt_streams_an_echo_and_ends_the_turn() {
    let dir = TempDir::new("plain");
    let (mut a, info) = Agent::start(&[], all_caps());
    assert_eq!(info.protocol_version, Some(acp::PROTOCOL_VERSION));
    assert!(info.load_session);
    assert_eq!(info.name.as_deref(), Some("hotplex-reference-acp"));
    let s = a.new_session(&dir.0);
    let t = a.turn(&s, "hello there", &mut Host::default());
    assert_eq!(t.stop(), "end_turn");
    assert_eq!(t.text(), "echo: hello there");
    let deltas: String = t
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AnswerDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, t.text(), "the deltas concatenate to the answer");
    assert_eq!(t.names().last(), Some(&"session_stats"));
    let stats = t.tracker.stats();
    assert!(!stats.is_error);
    assert!(stats.usage.input_tokens > 0 && stats.usage.output_tokens > 0);
    assert!((stats.cost_usd - 0.001).abs() < 1e-9, "{}", stats.cost_usd);
    // The session/new answer was followed by the commands it offers,
    // which the first turn's tracker kept (no event).
    assert_eq!(t.tracker.available_commands()[0].name, "recall");
    // The second turn's cost is its own, not the session's total.
    let t = a.turn(&s, "again", &mut Host::default());
    assert!((t.tracker.stats().cost_usd - 0.001).abs() < 1e-9);
    assert!((t.tracker.cost_total().unwrap() - 0.002).abs() < 1e-9);
}

#[test]
fn five_turns_run_in_order_on_one_process() {
    let dir = TempDir::new("fifo");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    for i in 0..5 {
        let t = a.turn(&s, &format!("turn {i}"), &mut Host::default());
        assert_eq!(t.text(), format!("echo: turn {i}"));
    }
    let t = a.turn(&s, "recall", &mut Host::default());
    assert_eq!(
        t.text(),
        "history: turn 0 | turn 1 | turn 2 | turn 3 | turn 4"
    );
    assert!(
        a.child.try_wait().unwrap().is_none(),
        "still the same process"
    );
    // Prompts written back to back are answered in order.
    let t1 = a.prompt(&s, "first");
    let id2 = a.ids.next_id();
    a.send(&acp::session_prompt(&id2, &s, "second"));
    let t1 = a.drive(t1, &mut Host::default()).unwrap();
    assert_eq!(t1.text(), "echo: first");
    let t2 = TurnTracker::new(id2).for_session(&s);
    let t2 = a.drive(t2, &mut Host::default()).unwrap();
    assert_eq!(t2.text(), "echo: second");
}

#[test]
fn a_stall_honours_session_cancel_and_the_next_turn_works() {
    let dir = TempDir::new("cancel");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let tracker = a.prompt(&s, "sleep:600000");
    std::thread::sleep(Duration::from_millis(100));
    a.send(&acp::session_cancel(&s));
    let t = a.drive(tracker, &mut Host::default()).unwrap();
    assert_eq!(t.stop(), "cancelled");
    assert!(t.tracker.stats().is_error);
    assert!(t.events.contains(&Event::Error {
        message: "turn ended with cancelled".into()
    }));
    let t = a.turn(&s, "after the cancel", &mut Host::default());
    assert_eq!(t.text(), "echo: after the cancel");
}

#[test]
fn ignorecancel_stalls_past_the_cancel_until_killed() {
    let dir = TempDir::new("ignore");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let _tracker = a.prompt(&s, "ignorecancel:");
    a.send(&acp::session_cancel(&s));
    a.close_stdin();
    // Nothing answers the prompt, and stdin's end does not end the agent.
    let mut got = Vec::new();
    while let Ok(l) = a.next(Duration::from_millis(700)) {
        got.push(l);
    }
    assert!(
        !got.iter()
            .any(|l| matches!(l, Ok(Incoming::Response { .. }))),
        "{got:?}"
    );
    assert!(a.child.try_wait().unwrap().is_none());
    a.child.kill().unwrap();
    let status = a.wait_exit().expect("killed");
    assert!(!status.success());
    assert!(matches!(a.next(WAIT), Err(Stop::Eof)));
}

#[test]
fn a_timed_ignorecancel_ends_the_turn_as_if_no_cancel_came() {
    let dir = TempDir::new("ignore-ms");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let tracker = a.prompt(&s, "ignorecancel:200");
    a.send(&acp::session_cancel(&s));
    let t = a.drive(tracker, &mut Host::default()).unwrap();
    assert_eq!(
        (t.stop(), t.text().as_str()),
        ("end_turn", "ignored cancel")
    );
}

#[test]
fn a_crash_ends_stdout_mid_turn_with_status_3() {
    let dir = TempDir::new("crash");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let tracker = a.prompt(&s, "crash:");
    let mut events = Vec::new();
    let mut tracker = tracker;
    loop {
        match a.next(WAIT) {
            Ok(Ok(m)) => events.extend(tracker.push_owned(m)),
            Ok(Err(e)) => panic!("{e}"),
            Err(Stop::Eof) => break,
            Err(Stop::Quiet) => panic!("no crash"),
        }
    }
    events.extend(tracker.abandon());
    assert!(!events.iter().any(|e| e.name() == "session_stats"));
    assert_eq!(
        events.last(),
        Some(&Event::Answer {
            text: "about to crash".into()
        })
    );
    assert_eq!(a.wait_exit().and_then(|s| s.code()), Some(3));
}

#[test]
fn garbage_lines_are_counted_errors_and_the_turn_still_ends() {
    let dir = TempDir::new("garbage");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let t = a.turn(&s, "garbage:2048", &mut Host::default());
    assert_eq!(t.stop(), "end_turn");
    let kinds: Vec<&str> = a
        .errors
        .iter()
        .map(|e| match e {
            AcpError::NotJson(_) => "not json",
            AcpError::NotAnObject(_) => "not an object",
            AcpError::BadJsonRpc(_) => "bad jsonrpc",
            AcpError::NotAMessage(_) => "not a message",
            AcpError::MissingField(_) => "missing field",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "not json",
            "not json",
            "not json",
            "not an object",
            "bad jsonrpc"
        ]
    );
    assert_eq!(a.unknown, [RequestId::Int(987654321)]);
    // The chunk with a bad byte kept its line (one character lost) and
    // was its own message; the answer followed.
    let answers: Vec<&Event> = t.events.iter().filter(|e| e.name() == "answer").collect();
    assert_eq!(
        answers,
        [
            &Event::Answer {
                text: "bad\u{fffd}byte".into()
            },
            &Event::Answer {
                text: "echo: garbage survived".into()
            }
        ]
    );
    // And the agent is still fine.
    assert_eq!(a.turn(&s, "ok?", &mut Host::default()).text(), "echo: ok?");
}

#[test]
fn an_allowed_run_goes_through_the_clients_terminal_when_offered() {
    let dir = TempDir::new("terminal");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let mut host = Host::allowing();
    let t = a.turn(&s, "run:echo hi from $PWD", &mut host);
    assert_eq!(
        host.seen,
        [
            "session/request_permission",
            "terminal/create",
            "terminal/wait_for_exit",
            "terminal/output",
            "terminal/release"
        ]
    );
    assert_eq!(host.targets[0].commands, ["echo hi from $PWD"]);
    assert_eq!(
        host.terminal_commands[0],
        ["sh -c 'echo hi from $PWD'", "echo hi from $PWD"]
    );
    assert_eq!(
        host.answers,
        [PermissionAnswer::Selected {
            option_id: "allow-once".into(),
            kind: acp::PermissionKind::AllowOnce
        }]
    );
    let cwd = std::fs::canonicalize(&dir.0).unwrap();
    assert!(
        t.text().contains(&format!("hi from {}", cwd.display()))
            || t.text().contains(&format!("hi from {}", dir.0.display())),
        "{}",
        t.text()
    );
    let names: Vec<&str> = t
        .names()
        .into_iter()
        .filter(|n| *n != "answer_delta")
        .collect();
    assert_eq!(
        names,
        [
            "tool_use",
            "permission_request",
            "tool_result",
            "answer",
            "session_stats"
        ]
    );
    let Event::ToolUse { name, input, .. } = &t.events[0] else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), input),
        ("execute", &json!({"command": "echo hi from $PWD"}))
    );
    let stats = t.tracker.stats();
    assert_eq!(stats.tools.len(), 1);
    assert!(!stats.tools[0].is_error && stats.tools[0].duration.is_some());
}

#[test]
fn an_allowed_run_without_a_client_terminal_runs_in_the_agent() {
    let dir = TempDir::new("local");
    let caps = acp::ClientCapabilities::default();
    let (mut a, _) = Agent::start(&[], caps);
    let s = a.new_session(&dir.0);
    let mut host = Host::allowing();
    let t = a.turn(&s, "run:echo local; exit 4", &mut host);
    assert_eq!(host.seen, ["session/request_permission"]);
    assert_eq!(t.text(), "ran: echo local; exit 4\nexit: 4\nlocal\n");
    assert_eq!(
        a.turn(&s, "caps?", &mut host).text(),
        "caps: read=false write=false terminal=false"
    );
}

#[test]
fn a_rejected_run_never_runs() {
    let dir = TempDir::new("reject");
    let canary = path_in(&dir, "canary");
    for caps in [all_caps(), acp::ClientCapabilities::default()] {
        let (mut a, _) = Agent::start(&[], caps);
        let s = a.new_session(&dir.0);
        let mut host = Host::default();
        let t = a.turn(&s, &format!("run:touch {canary}"), &mut host);
        assert_eq!(t.text(), format!("denied: touch {canary}"));
        assert_eq!(host.seen, ["session/request_permission"]);
        assert_eq!(
            host.answers,
            [PermissionAnswer::Selected {
                option_id: "reject-once".into(),
                kind: acp::PermissionKind::RejectOnce
            }]
        );
        assert!(!Path::new(&canary).exists());
        assert!(matches!(
            t.events.iter().find(|e| e.name() == "tool_result"),
            Some(Event::ToolResult { is_error: true, .. })
        ));
    }
}

#[test]
fn a_cancel_while_the_agent_runs_the_command_kills_it() {
    let dir = TempDir::new("cancel-run");
    let marker = path_in(&dir, "late");
    let (mut a, _) = Agent::start(&[], acp::ClientCapabilities::default());
    let s = a.new_session(&dir.0);
    let mut host = Host::allowing();
    let tracker = a.prompt(&s, &format!("run:sleep 30; touch {marker}"));
    // Wait for the call to run, then cancel.
    let mut tracker = tracker;
    loop {
        match a.next(WAIT) {
            Ok(Ok(m)) => {
                let answer = match &m {
                    Incoming::Request { id, request } => Some(host.answer(id, request, &tracker)),
                    _ => None,
                };
                let running = matches!(&m, Incoming::Notification(acp::AgentNotification::SessionUpdate {
                    update: acp::SessionUpdate::ToolCallUpdate(f), .. })
                    if f.status == Some(acp::ToolStatus::InProgress));
                tracker.push_owned(m);
                if let Some(l) = answer {
                    a.send(&l);
                }
                if running {
                    break;
                }
            }
            _ => panic!("the command never ran"),
        }
    }
    a.send(&acp::session_cancel(&s));
    let t = a.drive(tracker, &mut host).unwrap();
    assert_eq!(t.stop(), "cancelled");
    assert!(!Path::new(&marker).exists());
}

#[test]
fn allow_always_is_never_sent_so_every_run_asks_again() {
    let dir = TempDir::new("always");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let mut host = Host::allowing();
    a.turn(&s, "run:true", &mut host);
    a.turn(&s, "run:true", &mut host);
    let asked = host
        .seen
        .iter()
        .filter(|m| *m == "session/request_permission")
        .count();
    assert_eq!(asked, 2, "the WAF saw both calls");
    // What hotplex avoids: after an allow_always answer the agent runs
    // the same command again without asking.
    let mut careless = Host {
        allow: true,
        force_option: Some("allow-always".into()),
        ..Host::default()
    };
    a.turn(&s, "run:true", &mut careless);
    a.turn(&s, "run:true", &mut careless);
    let asked = careless
        .seen
        .iter()
        .filter(|m| *m == "session/request_permission")
        .count();
    assert_eq!(asked, 1);
}

#[test]
fn file_requests_go_to_the_client_and_report_its_answer() {
    let dir = TempDir::new("fs");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let mut host = Host::default();
    let note = path_in(&dir, "note.txt");
    std::fs::write(&note, "from disk").unwrap();
    let t = a.turn(&s, &format!("read:{note}"), &mut host);
    assert_eq!(t.text(), "read: from disk");
    let missing = path_in(&dir, "missing.txt");
    let t = a.turn(&s, &format!("read:{missing}"), &mut host);
    assert_eq!(
        t.text(),
        format!("read error: -32002 Resource not found: {missing}")
    );
    assert!(matches!(
        t.events.iter().find(|e| e.name() == "tool_result"),
        Some(Event::ToolResult { is_error: true, .. })
    ));
    let out = path_in(&dir, "out.txt");
    let t = a.turn(&s, &format!("write:{out}:new text"), &mut host);
    assert_eq!(t.text(), format!("wrote: {out}"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "new text");
    assert_eq!(
        host.seen,
        [
            "fs/read_text_file",
            "fs/read_text_file",
            "fs/write_text_file"
        ]
    );
}

#[test]
fn an_asked_write_names_its_path_for_the_waf() {
    let dir = TempDir::new("askwrite");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let target = path_in(&dir, "x.txt");
    let mut host = Host::default();
    let t = a.turn(&s, &format!("askwrite:{target}:data"), &mut host);
    assert_eq!(t.text(), format!("denied: {target}"));
    assert_eq!(host.targets[0].paths, std::slice::from_ref(&target));
    assert!(host.targets[0].commands.is_empty());
    assert!(!Path::new(&target).exists());
    let mut host = Host::allowing();
    let t = a.turn(&s, &format!("askwrite:{target}:data"), &mut host);
    assert_eq!(t.text(), format!("wrote: {target}"));
    assert_eq!(
        host.seen,
        ["session/request_permission", "fs/write_text_file"]
    );
}

#[test]
fn without_fs_capabilities_the_agent_uses_the_disk_itself() {
    let dir = TempDir::new("nofs");
    let (mut a, _) = Agent::start(&[], acp::ClientCapabilities::default());
    let s = a.new_session(&dir.0);
    let mut host = Host::default();
    let p = path_in(&dir, "f.txt");
    assert_eq!(
        a.turn(&s, &format!("write:{p}:abc"), &mut host).text(),
        format!("wrote locally: {p}")
    );
    assert_eq!(
        a.turn(&s, &format!("read:{p}"), &mut host).text(),
        "read locally: abc"
    );
    assert!(host.seen.is_empty());
}

#[test]
fn thoughts_and_plans_become_thinking_events() {
    let dir = TempDir::new("think");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let t = a.turn(&s, "thought:weighing the options", &mut Host::default());
    assert_eq!(
        t.names(),
        [
            "thinking_delta",
            "thinking_delta",
            "thinking_delta",
            "thinking",
            "answer_delta",
            "answer_delta",
            "answer_delta",
            "answer_delta",
            "answer",
            "session_stats"
        ]
    );
    assert_eq!(
        t.events[3],
        Event::Thinking {
            text: "weighing the options".into()
        }
    );
    let t = a.turn(&s, "plan:read|fix|test", &mut Host::default());
    assert_eq!(
        t.events[0],
        Event::Thinking {
            text: "Plan:\n- [in_progress] read\n- [pending] fix\n- [pending] test".into()
        }
    );
    assert_eq!(t.tracker.plan().len(), 3);
    assert_eq!(t.text(), "planned 3 steps");
}

#[test]
fn stop_reasons_and_prompt_errors_fail_the_turn() {
    let dir = TempDir::new("stop");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    for reason in ["refusal", "max_tokens", "max_turn_requests"] {
        let t = a.turn(&s, &format!("stop:{reason}"), &mut Host::default());
        assert_eq!(t.stop(), reason);
        assert!(t.tracker.stats().is_error);
        assert!(t.events.contains(&Event::Error {
            message: format!("turn ended with {reason}")
        }));
    }
    let t = a.turn(&s, "fail:model exploded", &mut Host::default());
    assert_eq!(t.tracker.prompt_error().map(|e| e.code), Some(-32603));
    assert!(t.events.contains(&Event::Error {
        message: "session/prompt failed: model exploded (code -32603)".into()
    }));
    assert_eq!(
        a.turn(&s, "still here", &mut Host::default()).text(),
        "echo: still here"
    );
}

#[test]
fn output_after_the_answer_belongs_to_no_turn() {
    let dir = TempDir::new("after");
    let (mut a, _) = Agent::start(&[], all_caps());
    let s = a.new_session(&dir.0);
    let t = a.turn(&s, "after:the answer", &mut Host::default());
    assert_eq!(t.text(), "the answer");
    // A client reading between turns sees the stray chunk and a second
    // answer to the same prompt: ACP updates name no turn, so these are
    // the provider's to count as stray before it sends the next prompt.
    let first = a.last_prompt.clone().unwrap();
    a.drain_until(|m| matches!(m, Incoming::Response { id, .. } if *id == first));
    assert!(a.outside.iter().any(|m| matches!(m,
        Incoming::Notification(acp::AgentNotification::SessionUpdate {
            update: acp::SessionUpdate::AgentMessageChunk(c), .. }) if c.content.text() == Some("STALE"))));
    let t = a.turn(&s, "next", &mut Host::default());
    assert_eq!(t.text(), "echo: next", "{:?}", t.events);
}

#[test]
fn a_fresh_process_loads_a_session_and_replays_its_history() {
    let dir = TempDir::new("load");
    let state = path_in(&dir, "state");
    std::fs::create_dir_all(&state).unwrap();
    let sid = {
        let (mut a, _) = Agent::start(&["--state-dir", &state], all_caps());
        let s = a.new_session(&dir.0);
        a.turn(&s, "remember the milk", &mut Host::default());
        a.turn(&s, "and the eggs", &mut Host::default());
        a.child.kill().unwrap();
        s
    };
    let (mut b, info) = Agent::start(&["--state-dir", &state], all_caps());
    assert!(info.load_session);
    let cwd = dir.0.to_string_lossy().into_owned();
    let loaded = b.request(|id| acp::session_load(id, &sid, &cwd)).unwrap();
    let created = acp::SessionCreated::from_load_result(&sid, &loaded);
    assert_eq!(created.current_mode.as_deref(), Some("default"));
    let replay: Vec<(&str, String)> = b
        .outside
        .iter()
        .filter_map(|m| match m {
            Incoming::Notification(acp::AgentNotification::SessionUpdate { update, .. }) => {
                match update {
                    acp::SessionUpdate::UserMessageChunk(c) => {
                        Some(("user", c.content.text()?.to_owned()))
                    }
                    acp::SessionUpdate::AgentMessageChunk(c) => {
                        Some(("agent", c.content.text()?.to_owned()))
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        replay,
        [
            ("user", "remember the milk".to_string()),
            ("agent", "echo: remember the milk".to_string()),
            ("user", "and the eggs".to_string()),
            ("agent", "echo: and the eggs".to_string()),
        ]
    );
    let t = b.turn(&sid, "recall", &mut Host::default());
    assert_eq!(t.text(), "history: remember the milk | and the eggs");
}

#[test]
fn loading_an_unknown_or_unsupported_session_is_an_error() {
    let dir = TempDir::new("noload");
    let state = path_in(&dir, "state");
    std::fs::create_dir_all(&state).unwrap();
    let (mut a, _) = Agent::start(&["--state-dir", &state], all_caps());
    let err = a
        .request(|id| acp::session_load(id, "acp-nobody", "/"))
        .unwrap_err();
    assert_eq!(err.code, acp::codes::RESOURCE_NOT_FOUND);
    let err = a
        .request(|id| acp::session_load(id, "../escape", "/"))
        .unwrap_err();
    assert_eq!(err.code, acp::codes::RESOURCE_NOT_FOUND);
    let (mut b, info) = Agent::start(&["--no-load-session"], all_caps());
    assert!(!info.load_session);
    let err = b.request(|id| acp::session_load(id, "x", "/")).unwrap_err();
    assert_eq!(err.code, acp::codes::METHOD_NOT_FOUND);
}

#[test]
fn set_mode_reports_the_new_mode() {
    let dir = TempDir::new("mode");
    let (mut a, _) = Agent::start(&[], all_caps());
    let v = a
        .request(|id| acp::session_new(id, &dir.0.to_string_lossy()))
        .unwrap();
    let created = acp::SessionCreated::from_result(&v).unwrap();
    assert_eq!(created.modes, ["default", "plan"]);
    let s = created.session_id;
    a.request(|id| acp::session_set_mode(id, &s, "plan"))
        .unwrap();
    assert!(a.outside.iter().any(|m| matches!(m,
        Incoming::Notification(acp::AgentNotification::SessionUpdate {
            update: acp::SessionUpdate::CurrentMode(mode), .. }) if mode == "plan")));
    assert_eq!(
        a.turn(&s, "mode?", &mut Host::default()).text(),
        "mode: plan"
    );
    let err = a
        .request(|id| acp::session_set_mode(id, &s, "yolo"))
        .unwrap_err();
    assert_eq!(err.code, acp::codes::INVALID_PARAMS);
}

#[test]
fn unknown_methods_and_sessions_are_errors() {
    let (mut a, _) = Agent::start(&[], all_caps());
    let err = a
        .request(|id| {
            json!({"jsonrpc": "2.0", "id": id.to_value(), "method": "session/teleport", "params": {}})
                .to_string()
                + "\n"
        })
        .unwrap_err();
    assert_eq!(err.code, acp::codes::METHOD_NOT_FOUND);
    let err = a
        .request(|id| acp::session_prompt(id, "no-such-session", "hi"))
        .unwrap_err();
    assert_eq!(err.code, acp::codes::INVALID_PARAMS);
}

#[test]
fn stdin_eof_ends_the_agent_unless_told_to_ignore_it() {
    let (mut a, _) = Agent::start(&[], all_caps());
    a.close_stdin();
    assert_eq!(a.wait_exit().and_then(|s| s.code()), Some(0));
    let (mut b, _) = Agent::start(&["--ignore-eof"], all_caps());
    b.close_stdin();
    std::thread::sleep(Duration::from_millis(300));
    assert!(b.child.try_wait().unwrap().is_none());
}
