//! One hot session of an agent that speaks the Agent Client Protocol
//! (`opencode acp`, `gemini --acp`, ...): the ACP counterpart of
//! `engine::session` (Claude Code), built on the same shared parts
//! ([`super::agent`]: the contained process, line reading, kill and reap,
//! turn bookkeeping, the event budget).
//!
//! The actor alone owns the agent process; turns run one at a time in
//! arrival order, and between turns it keeps reading (a dying agent is
//! reaped, stray output counted, late requests answered). What is ACP's
//! own:
//!
//! 1. **Start** (a turn finds no process, or one in another workdir or with
//!    other options): spawn the agent (`binary` + `args`, contained), then
//!    `initialize`, offering `fs.readTextFile`, `fs.writeTextFile` and
//!    `terminal` (hotplex serves them: [`fs`], [`terminal`]), then the
//!    conversation: `session/load` of the agent's session id kept in the
//!    resume marker when there is one and the agent advertised
//!    `loadSession`, else `session/new` in the workdir, whose id the marker
//!    keeps. All of it within `startup_timeout`, on a cold-start slot. A
//!    conversation that cannot be taken up again (no `loadSession`, or the
//!    load failed) starts fresh, and an `error` event of the turn says so.
//! 2. **Turn**: `session/prompt`; `session/update` notifications become the
//!    contract's events through [`TurnTracker`]; the answer to the prompt
//!    ends the turn (`end_turn`: success; another `stopReason` or a
//!    JSON-RPC error: [`Error::TurnFailed`]).
//! 3. **Interrupts and timeouts**: `session/cancel`, pending permission
//!    requests answered `cancelled`, the session's terminal commands
//!    killed; `interrupt_grace` for the prompt's answer, then the kill
//!    ladder. After a clean cancel the process stays hot.
//! 4. **Agent requests**: `session/request_permission` goes through the WAF
//!    (every command and path of the tool call; a block is denied and is a
//!    `danger_block` event), then the host's permission handler, and is
//!    answered with one of the agent's options, never `allow_always`
//!    ([`permission::select_option`]); file and terminal requests are
//!    confined and screened ([`fs`], [`terminal`]). Outside a turn they
//!    are refused (terminal bookkeeping excepted).
//!
//! An agent that dies ends the running turn with [`Error::SessionDead`];
//! the next turn starts a new process and loads the conversation.

mod fs;
mod terminal;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::agent::{self, AgentProc, Base, Launch, TurnSink};
use super::host::{self, Answered, HostCalls};
use super::lines::RawLine;
use super::session::{Control, ControlCmd, Job, SessionCtx, TurnCmd};
use super::state::{State, StopReason};
use crate::contract::telemetry::{ExitReason, StartMode};
use crate::contract::{Event, Permission, SessionOptions, Turn};
use crate::protocol::acp::permission::{self, PermissionAnswer};
use crate::protocol::acp::tracker::TurnTracker;
use crate::protocol::acp::{
    self, codes, AgentInfo, AgentNotification, AgentRequest, ClientCapabilities, IdCounter,
    Incoming, PermissionOption, RequestId, RpcError, SessionCreated, SessionUpdate,
    StopReason as AcpStop, ToolKind,
};
use crate::verdict::Verdict;
use crate::{Error, Result};

/// How long one answer to the agent may take to write (an agent that
/// stops reading must not stall the session).
const WRITE_LIMIT: Duration = Duration::from_secs(5);

/// Most lines taken as stray output before a prompt (see
/// [`AcpActor::prompt`]); an agent printing more delays nothing beyond it.
const STRAY_DRAIN: usize = 1024;

/// What hotplex offers every ACP agent: it serves files and terminals
/// itself, so the WAF sees those operations.
const CAPABILITIES: ClientCapabilities = ClientCapabilities {
    read_text_file: true,
    write_text_file: true,
    terminal: true,
};

/// The running agent process of an ACP session.
struct Live {
    proc: AgentProc,
    ids: IdCounter,
    /// What the agent said in `initialize`.
    info: AgentInfo,
    /// The agent's session id (from `session/new`, or the one loaded);
    /// empty until then.
    sid: String,
    /// The session's cumulative cost the agent reported last (USD).
    cost_total: f64,
    /// The conversation was loaded (`session/load`) at this start.
    resumed: bool,
    /// The session options this process runs with: others restart it.
    started_with: SessionOptions,
}

/// What woke a turn's read loop.
enum Wake {
    Stop,
    CallerGone,
    Timer,
    Line(std::io::Result<Option<RawLine>>),
    Host(Option<Answered>),
    Control(Option<ControlCmd>),
    Terminal(Vec<RequestId>, acp::ExitStatus),
}

/// A running turn, as the handling of an agent request sees it.
struct InTurn<'a> {
    tracker: &'a mut TurnTracker,
    /// The turn is being cancelled: new tool calls are refused.
    interrupting: bool,
    /// How long the host's permission handler may take.
    host_timeout: Duration,
}

/// The actor of one ACP session; see the module docs.
pub(crate) struct AcpActor {
    base: Base,
    /// hotplex's id for the conversation (the key of its resume marker).
    psid: String,
    previous: Vec<watch::Receiver<bool>>,
    live: Option<Live>,
    /// The session's options (the latest a turn gave).
    session: SessionOptions,
    /// The session was made as a fork, which ACP cannot do (its first
    /// start says so and begins a new conversation).
    fork_from: Option<String>,
    controls: mpsc::UnboundedReceiver<ControlCmd>,
    controls_closed: bool,
    /// Permission requests the host's handler is deciding.
    calls: HostCalls,
    /// Those requests' ids as the agent sent them (to answer `cancelled`
    /// when the turn is cancelled), with the options they offered.
    asking: HashMap<String, (RequestId, Vec<PermissionOption>)>,
    terminals: terminal::Terminals,
    /// The current turn's caller went away (its outcome is `cancelled`).
    cancelled: bool,
}

impl AcpActor {
    pub(crate) fn new(
        base: (String, Arc<SessionCtx>, Arc<Mutex<State>>),
        psid: String,
        previous: Vec<watch::Receiver<bool>>,
        fork_from: Option<String>,
        controls: mpsc::UnboundedReceiver<ControlCmd>,
    ) -> AcpActor {
        let (id, ctx, state) = base;
        AcpActor {
            base: Base { id, ctx, state },
            psid,
            previous,
            live: None,
            session: SessionOptions::default(),
            fork_from,
            controls,
            controls_closed: false,
            calls: HostCalls::default(),
            asking: HashMap::new(),
            terminals: terminal::Terminals::default(),
            cancelled: false,
        }
    }

    /// Runs until stopped or until the engine drops the queue; then kills
    /// the process (confirmed empty tree), fails queued turns and sets
    /// `done`.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Job>,
        mut stop: watch::Receiver<bool>,
        done: watch::Sender<bool>,
    ) {
        for mut prev in std::mem::take(&mut self.previous) {
            let _ = prev.wait_for(|d| *d).await;
        }
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                job = rx.recv() => match job {
                    Some(Job::Turn(cmd)) => self.run_turn(*cmd, &mut stop).await,
                    Some(Job::Reset { psid, done, .. }) => {
                        self.reset(psid).await;
                        let _ = done.send(());
                    }
                    // The pool keeps no spares of ACP sessions.
                    Some(Job::Warm { .. } | Job::Claim { .. }) => {}
                    None => break,
                },
                ctl = self.controls.recv(), if !self.controls_closed => match ctl {
                    Some(ctl) => self.control(ctl, false),
                    None => self.controls_closed = true,
                },
                a = self.calls.next(), if !self.calls.is_empty() => {
                    if let Some(a) = a {
                        self.asking.remove(&a.request_id);
                        let _ = self.write(&a.line).await;
                    }
                }
                (waits, status) = self.terminals.exited() => {
                    self.answer_waits(waits, &status).await;
                }
                line = agent::idle_read(self.live.as_mut().map(|l| &mut l.proc)) => match line {
                    Some(line) => {
                        self.base.state.lock().last_active = Instant::now();
                        self.between_turns(line).await;
                    }
                    None => {
                        self.reap().await;
                    }
                }
            }
        }
        let reason = self.base.state.lock().stop_reason();
        self.kill(reason.map_or(ExitReason::Closed, StopReason::exit_reason))
            .await;
        self.base.fail_queued(&mut rx, &mut self.controls, reason);
        let _ = done.send(true);
        self.base.ctx.pool_changed.notify_one();
    }

    /// Starts a new conversation under `psid` (see [`Job::Reset`]).
    async fn reset(&mut self, psid: String) {
        if self.live.is_some() {
            self.kill(ExitReason::Stopped).await;
        }
        let old = std::mem::replace(&mut self.psid, psid);
        // The marker holds the agent's session id: without it the next
        // start makes a new conversation.
        self.base.ctx.markers.forget(&old, None);
        self.fork_from = None;
        self.base.state.lock().psid.clone_from(&self.psid);
    }

    /// Handles a live control outside the read loop of a turn.
    fn control(&mut self, ctl: ControlCmd, in_turn: bool) {
        let answer = match &ctl.control {
            Control::Interrupt => Ok(Value::Bool(in_turn)),
            Control::Answer(_) => Err(Error::QuestionNotFound(
                "ACP sessions hold no questions or plans".into(),
            )),
            other => Err(Error::Unsupported(format!(
                "{} is not available for acp sessions",
                match other {
                    Control::SetModel(_) => "set_model",
                    Control::SetPermissionMode(_) => "set_permission_mode",
                    Control::ContextUsage => "context_usage",
                    _ => "mcp_status",
                }
            ))),
        };
        let _ = ctl.tx.send(answer);
    }

    async fn run_turn(&mut self, cmd: TurnCmd, stop: &mut watch::Receiver<bool>) {
        let started = self.base.begin_turn();
        self.cancelled = false;
        let result = self
            .turn(&cmd, started, stop)
            .instrument(tracing::info_span!("turn"))
            .await;
        let pid = self.live.as_ref().map(|l| l.proc.pid());
        self.base
            .finish_turn(&cmd, started, result, pid, self.cancelled);
    }

    async fn turn(
        &mut self,
        cmd: &TurnCmd,
        started: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Turn> {
        if cmd.tx.is_closed() {
            self.cancelled = true;
            return Err(Error::TurnTimeout("cancelled before it started".into()));
        }
        if let Some(s) = &cmd.session {
            self.session = s.clone();
        }
        if self
            .live
            .as_ref()
            .is_some_and(|l| l.proc.workdir != cmd.workdir || l.started_with != self.session)
        {
            // The agent's session lives in its cwd and its options are its
            // command line: a new workdir or new options need a new process
            // (which loads the conversation).
            self.kill(ExitReason::Stopped).await;
        }
        let ctx = self.base.ctx.clone();
        let mut sink = TurnSink::new(&ctx);
        let cold = self.live.is_none();
        if cold {
            let notes = self.start(&cmd.workdir, stop).await?;
            sink.emit(&ctx, cmd, notes);
        }
        let mut t = self.prompt(cmd, cold, stop, sink).await?;
        t.cold_start = cold;
        t.resumed = cold && self.live.as_ref().is_some_and(|l| l.resumed);
        t.queued = started.duration_since(cmd.queued_at);
        t.duration = started.elapsed();
        Ok(t)
    }

    /// Starts the agent in `workdir` and takes up the conversation (see the
    /// module docs); returns the events the turn shows for it.
    async fn start(
        &mut self,
        workdir: &Path,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Vec<Event>> {
        let ctx = self.base.ctx.clone();
        let opts = &ctx.opts;
        self.base.state.lock().status = crate::contract::SessionStatus::Starting;
        let deadline = tokio::time::Instant::now() + opts.startup_timeout;
        let permit = self.base.start_slot(deadline).await?;
        let launch = Launch {
            program: self.base.program(&self.session),
            args: self
                .session
                .args
                .clone()
                .unwrap_or_else(|| opts.args.clone()),
            workdir,
            env: Vec::new(),
            mode: None,
            permit,
        };
        let proc = self.base.spawn(launch, &self.session).await?;
        let pid = proc.pid();
        self.live = Some(Live {
            proc,
            ids: IdCounter::new(),
            info: AgentInfo::default(),
            sid: String::new(),
            cost_total: 0.0,
            resumed: false,
            started_with: self.session.clone(),
        });
        let answer = self
            .call(
                "initialize",
                |id| acp::initialize(id, CAPABILITIES),
                deadline,
                stop,
            )
            .await?;
        let info = match answer {
            Ok(v) => AgentInfo::from_result(&v),
            Err(e) => return Err(self.start_failed(format!("initialize failed: {e}")).await),
        };
        if let Some(v) = info
            .protocol_version
            .filter(|v| *v != acp::PROTOCOL_VERSION)
        {
            let why = format!(
                "the agent speaks ACP version {v}; hotplex speaks {}",
                acp::PROTOCOL_VERSION
            );
            return Err(self.start_failed(why).await);
        }
        let can_load = info.load_session;
        if let Some(l) = self.live.as_mut() {
            l.info = info;
        }
        let mut notes = Vec::new();
        let note = |m: String| Event::Error { message: m };
        if self.fork_from.take().is_some() {
            notes.push(note(
                "the acp provider cannot fork a conversation: starting a new one".into(),
            ));
            let ns = &opts.namespace;
            ctx.markers.bind(ns, &self.base.id, &self.psid, None, None);
        }
        let cwd = workdir.to_string_lossy().into_owned();
        let mut created = None;
        match ctx.markers.acp_session(&self.psid) {
            Some((_, sid)) if can_load => {
                let answer = self
                    .call(
                        "session/load",
                        |id| acp::session_load(id, &sid, &cwd),
                        deadline,
                        stop,
                    )
                    .await?;
                match answer {
                    Ok(v) => created = Some((SessionCreated::from_load_result(&sid, &v), true)),
                    Err(e) => {
                        ctx.markers.delete(&self.psid);
                        notes.push(note(format!(
                            "resume failed, starting a fresh session: session/load: {e}"
                        )));
                    }
                }
            }
            Some(_) => {
                ctx.markers.delete(&self.psid);
                notes.push(note(
                    "the agent cannot load sessions (no loadSession): starting a fresh session; the conversation so far is lost"
                        .into(),
                ));
            }
            None => {}
        }
        let (created, resumed) = match created {
            Some(c) => c,
            None => {
                let answer = self
                    .call(
                        "session/new",
                        |id| acp::session_new(id, &cwd),
                        deadline,
                        stop,
                    )
                    .await?;
                let parsed = answer
                    .map_err(|e| e.to_string())
                    .and_then(|v| SessionCreated::from_result(&v).map_err(|e| e.to_string()));
                match parsed {
                    Ok(c) => (c, false),
                    Err(e) => {
                        return Err(self.start_failed(format!("session/new failed: {e}")).await)
                    }
                }
            }
        };
        // A marker that cannot be written only costs the next resume.
        let _ = ctx.markers.put_with(
            &self.psid,
            &self.base.id,
            workdir,
            Some(&created.session_id),
        );
        self.base.started(
            pid,
            if resumed {
                StartMode::Resume
            } else {
                StartMode::Fresh
            },
        );
        if let Some(l) = self.live.as_mut() {
            l.sid.clone_from(&created.session_id);
            l.resumed = resumed;
            // Started: the next cold start may go.
            l.proc.permit = None;
            ctx.telemetry
                .metrics
                .cold_start(l.proc.spawned_at.elapsed().as_secs_f64());
        }
        tracing::info!(pid, acp_session = %created.session_id, resumed, "acp session ready");
        notes.push(Event::SessionStart {
            session_id: Some(created.session_id),
            model: None,
        });
        Ok(notes)
    }

    /// The start failed for `why`: the process is killed; the turn's error.
    async fn start_failed(&mut self, why: String) -> Error {
        self.kill(ExitReason::StartFailed).await;
        Error::StartFailed(why)
    }

    /// Sends request `method` (built by `line` with its id) during the
    /// start and reads until its answer, by `deadline`. Other requests get
    /// their usual answers outside a turn; updates (a load's replay of the
    /// conversation) are not turn output.
    async fn call(
        &mut self,
        method: &str,
        line: impl FnOnce(&RequestId) -> String,
        deadline: tokio::time::Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<std::result::Result<Value, RpcError>> {
        let Some(live) = self.live.as_mut() else {
            return Err(Error::StartFailed("process gone".into()));
        };
        let id = live.ids.next_id();
        let text = line(&id);
        // A dead pipe shows up as EOF below, with the exit status.
        let _ = live.proc.write(&text, deadline).await;
        loop {
            let Some(live) = self.live.as_mut() else {
                return Err(Error::StartFailed("process gone".into()));
            };
            let read = tokio::select! {
                biased;
                _ = stop.changed() => {
                    let reason = self.base.state.lock().stop_reason();
                    self.kill(reason.map_or(ExitReason::Closed, StopReason::exit_reason)).await;
                    return Err(agent::stopped_error(reason));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!(
                        "no answer to {method} within startup_timeout ({:?})",
                        self.base.ctx.opts.startup_timeout
                    );
                    return Err(self.start_failed(why).await);
                }
                line = live.proc.lines.next() => line,
            };
            let text = match read {
                Ok(Some(RawLine::Text(t))) => t,
                Ok(Some(RawLine::TooLong { .. })) => {
                    self.base.bad_line();
                    continue;
                }
                Ok(None) | Err(_) => {
                    let msg = self.reap().await;
                    return Err(Error::StartFailed(format!("{method}: {msg}")));
                }
            };
            match acp::parse_line(text.as_bytes()) {
                Ok(Incoming::Response { id: got, result }) if got == id => return Ok(result),
                Ok(msg) => self.outside_turn(msg).await,
                Err(_) if text.trim().is_empty() => {}
                Err(_) => self.base.bad_line(),
            }
        }
    }

    /// Sends the turn's prompt and reads the turn to its end.
    async fn prompt(
        &mut self,
        cmd: &TurnCmd,
        cold: bool,
        stop: &mut watch::Receiver<bool>,
        mut sink: TurnSink,
    ) -> Result<Turn> {
        let ctx = self.base.ctx.clone();
        let Some(live) = self.live.as_mut() else {
            return Err(Error::SessionDead("process gone".into()));
        };
        let sid = live.sid.clone();
        // What the agent printed after the previous turn's answer and
        // before this prompt belongs to no turn: ACP does not tie updates
        // to a prompt, so it is taken now, before the prompt goes out.
        for _ in 0..STRAY_DRAIN {
            let Some(live) = self.live.as_mut() else {
                break;
            };
            match tokio::time::timeout(Duration::ZERO, live.proc.lines.next()).await {
                Ok(Ok(Some(line))) => self.between_turns(line).await,
                // Nothing waiting, or EOF (seen below, with the prompt).
                _ => break,
            }
        }
        let Some(live) = self.live.as_mut() else {
            return Err(Error::SessionDead("process gone".into()));
        };
        let prompt_id = live.ids.next_id();
        let mut tracker = TurnTracker::new(prompt_id.clone())
            .for_session(&sid)
            .with_deltas(cmd.deltas)
            .with_cost_base(live.cost_total);
        // The turn's clock runs from the prompt, as for Claude Code.
        let deadline = tokio::time::Instant::now() + cmd.timeout;
        let line = acp::session_prompt(&prompt_id, &sid, &cmd.prompt);
        // A dead pipe shows up as EOF below, with the exit status.
        let _ = live.proc.write(&line, deadline).await;
        // Set once the turn is being cancelled: (why, give up at).
        let mut interrupting: Option<(Error, tokio::time::Instant)> = None;
        let mut caller_gone = false;
        let mut first_seen = false;
        loop {
            let Some(live) = self.live.as_mut() else {
                return Err(Error::SessionDead("process gone".into()));
            };
            let wake = interrupting.as_ref().map_or(deadline, |(_, t)| *t);
            let woke = tokio::select! {
                biased;
                _ = stop.changed() => Wake::Stop,
                _ = cmd.tx.closed(), if !caller_gone => Wake::CallerGone,
                _ = tokio::time::sleep_until(wake) => Wake::Timer,
                a = self.calls.next(), if !self.calls.is_empty() => Wake::Host(a),
                c = self.controls.recv(), if !self.controls_closed => Wake::Control(c),
                (waits, status) = self.terminals.exited() => Wake::Terminal(waits, status),
                line = live.proc.lines.next() => Wake::Line(line),
            };
            let line = match woke {
                Wake::Line(line) => line,
                Wake::Stop => {
                    let reason = self.base.state.lock().stop_reason();
                    self.kill(reason.map_or(ExitReason::Closed, StopReason::exit_reason))
                        .await;
                    return Err(agent::stopped_error(reason));
                }
                Wake::CallerGone => {
                    caller_gone = true;
                    self.cancelled = true;
                    let e = Error::TurnTimeout("cancelled by the caller".into());
                    self.cancel(&mut interrupting, e).await;
                    continue;
                }
                Wake::Timer => {
                    if let Some((e, _)) = interrupting.take() {
                        // No answer within the grace period: kill the tree.
                        let out = tracker.abandon();
                        sink.emit(&ctx, cmd, out);
                        self.kill(ExitReason::Crashed).await;
                        return Err(e);
                    }
                    let e = Error::TurnTimeout(format!("no result within {:?}", cmd.timeout));
                    self.cancel(&mut interrupting, e).await;
                    continue;
                }
                Wake::Host(None) => continue,
                Wake::Host(Some(a)) => {
                    self.asking.remove(&a.request_id);
                    let _ = self.write(&a.line).await;
                    if let Some(message) = a.note {
                        sink.emit(&ctx, cmd, vec![Event::Error { message }]);
                    }
                    continue;
                }
                Wake::Control(None) => {
                    self.controls_closed = true;
                    continue;
                }
                Wake::Control(Some(ctl)) => {
                    if ctl.control == Control::Interrupt {
                        let running = interrupting.is_none();
                        if running {
                            let e = Error::TurnTimeout("interrupted by the host".into());
                            self.cancel(&mut interrupting, e).await;
                        }
                        let _ = ctl.tx.send(Ok(Value::Bool(running)));
                    } else {
                        self.control(ctl, true);
                    }
                    continue;
                }
                Wake::Terminal(waits, status) => {
                    self.answer_waits(waits, &status).await;
                    continue;
                }
            };
            let text = match line {
                Ok(Some(RawLine::Text(t))) => t,
                Ok(Some(RawLine::TooLong { .. })) => {
                    self.base.bad_line();
                    continue;
                }
                Ok(None) | Err(_) => {
                    // The agent died: what it said is the turn's, then the
                    // turn fails.
                    let out = tracker.abandon();
                    sink.emit(&ctx, cmd, out);
                    let msg = self.reap().await;
                    if let Some((e, _)) = interrupting {
                        return Err(e);
                    }
                    return Err(Error::SessionDead(msg));
                }
            };
            self.base.state.lock().last_active = Instant::now();
            if !first_seen {
                first_seen = true;
                ctx.telemetry
                    .metrics
                    .first_output(cmd.queued_at.elapsed().as_secs_f64());
            }
            let msg = match acp::parse_line(text.as_bytes()) {
                Ok(m) => m,
                Err(_) => {
                    if !text.trim().is_empty() {
                        self.base.bad_line();
                    }
                    continue;
                }
            };
            drop(text);
            match msg {
                Incoming::Response { ref id, .. } if *id == prompt_id => {
                    tracker.set_events_dropped(sink.dropped());
                    let out = tracker.push_owned(msg);
                    sink.emit(&ctx, cmd, out);
                    if let (Some(l), Some(total)) = (self.live.as_mut(), tracker.cost_total()) {
                        l.cost_total = total;
                    }
                    if let Some((e, _)) = interrupting {
                        return Err(e);
                    }
                    return self.ended(&tracker, sink, &sid, cold);
                }
                Incoming::Response { .. } => self.base.stray_line(),
                Incoming::Notification(AgentNotification::SessionUpdate {
                    ref session_id, ..
                }) if *session_id != sid => self.base.stray_line(),
                Incoming::Notification(AgentNotification::SessionUpdate { .. }) => {
                    let out = tracker.push_owned(msg);
                    sink.emit(&ctx, cmd, out);
                }
                Incoming::Notification(AgentNotification::CancelRequest { id }) => {
                    self.cancel_request(&id);
                }
                Incoming::Notification(AgentNotification::Other { .. }) => {}
                Incoming::Request { id, request } => {
                    let mut turn = InTurn {
                        tracker: &mut tracker,
                        interrupting: interrupting.is_some(),
                        host_timeout: cmd.timeout,
                    };
                    let out = self.request(id, request, Some(&mut turn)).await;
                    sink.emit(&ctx, cmd, out);
                }
            }
        }
    }

    /// The prompt was answered: the turn's result.
    fn ended(&self, tracker: &TurnTracker, sink: TurnSink, sid: &str, cold: bool) -> Result<Turn> {
        match (tracker.stop_reason(), tracker.prompt_error()) {
            (Some(AcpStop::EndTurn), _) => {}
            (Some(other), _) => {
                return Err(Error::TurnFailed {
                    subtype: match other.as_str() {
                        "" => "unknown".to_owned(),
                        s => s.to_owned(),
                    },
                    message: format!(
                        "the agent ended the turn with stopReason {:?}",
                        other.as_str()
                    ),
                })
            }
            (None, e) => {
                return Err(Error::TurnFailed {
                    subtype: "prompt_error".into(),
                    message: e.map_or_else(|| "session/prompt failed".into(), |e| e.to_string()),
                })
            }
        }
        let mut stats = tracker.stats().clone();
        stats.first_delta_ms = sink.first_delta.map(|d| d.as_secs_f64() * 1e3);
        let pid = self.live.as_ref().map_or(0, |l| l.proc.pid());
        Ok(Turn {
            text: sink.answers(),
            cold_start: cold,
            resumed: false,
            duration: Duration::ZERO,
            queued: Duration::ZERO,
            stats,
            events: sink.events,
            pid,
            provider_session_id: sid.to_owned(),
            structured_output: None,
            message_uuid: String::new(),
        })
    }

    /// Cancels the running turn (once): `session/cancel`, pending
    /// permission requests answered `cancelled`, the session's terminal
    /// commands killed; the prompt's answer is awaited `interrupt_grace`.
    async fn cancel(
        &mut self,
        interrupting: &mut Option<(Error, tokio::time::Instant)>,
        why: Error,
    ) {
        if interrupting.is_some() {
            return;
        }
        let grace = self.base.ctx.opts.interrupt_grace;
        *interrupting = Some((why, tokio::time::Instant::now() + grace));
        let Some(sid) = self.live.as_ref().map(|l| l.sid.clone()) else {
            return;
        };
        let _ = self.write(&acp::session_cancel(&sid)).await;
        for (key, (rid, _)) in std::mem::take(&mut self.asking) {
            self.calls.cancel(&key);
            let line = acp::permission_response(&rid, &PermissionAnswer::Cancelled);
            let _ = self.write(&line).await;
        }
        self.terminals.kill_all();
    }

    /// The agent gave up on its request `id` (`$/cancel_request`): its
    /// answer is not sent.
    fn cancel_request(&mut self, id: &RequestId) {
        let key = id.to_string();
        self.calls.cancel(&key);
        self.asking.remove(&key);
        self.terminals.forget_wait(id);
    }

    /// A line printed while no turn runs.
    async fn between_turns(&mut self, line: RawLine) {
        let text = match line {
            RawLine::TooLong { .. } => return self.base.bad_line(),
            RawLine::Text(t) => t,
        };
        match acp::parse_line(text.as_bytes()) {
            Ok(msg) => self.outside_turn(msg).await,
            Err(_) if text.trim().is_empty() => {}
            Err(_) => self.base.bad_line(),
        }
    }

    /// A message that belongs to no turn: output a turn would have shown
    /// (and answers to nothing) is counted and dropped; requests get their
    /// answers (tool calls refused); state updates are not output.
    async fn outside_turn(&mut self, msg: Incoming) {
        match msg {
            Incoming::Response { .. } => self.base.stray_line(),
            Incoming::Notification(AgentNotification::SessionUpdate { update, .. }) => match update
            {
                SessionUpdate::AvailableCommands(_)
                | SessionUpdate::CurrentMode(_)
                | SessionUpdate::Usage(_)
                | SessionUpdate::UserMessageChunk(_)
                | SessionUpdate::Other { .. } => {}
                _ => self.base.stray_line(),
            },
            Incoming::Notification(AgentNotification::CancelRequest { id }) => {
                self.cancel_request(&id);
            }
            Incoming::Notification(AgentNotification::Other { .. }) => {}
            Incoming::Request { id, request } => {
                let _ = self.request(id, request, None).await;
            }
        }
    }

    /// Answers an agent request (now, or through a host call); returns the
    /// turn's events about it. `turn` is `None` outside a turn.
    async fn request(
        &mut self,
        id: RequestId,
        request: AgentRequest,
        turn: Option<&mut InTurn<'_>>,
    ) -> Vec<Event> {
        let sid = self
            .live
            .as_ref()
            .map(|l| l.sid.clone())
            .unwrap_or_default();
        if let Some(other) = request.session_id().filter(|s| *s != sid) {
            let m = format!("unknown session {other:?}");
            let _ = self
                .write(&acp::error_response(&id, codes::INVALID_PARAMS, &m))
                .await;
            return Vec::new();
        }
        let workdir = match self.live.as_ref() {
            Some(l) => l.proc.workdir.clone(),
            None => return Vec::new(),
        };
        // What only a running turn may do.
        let refusal = match (&request, &turn) {
            (
                AgentRequest::RequestPermission(_)
                | AgentRequest::ReadTextFile(_)
                | AgentRequest::WriteTextFile(_)
                | AgentRequest::TerminalCreate(_),
                None,
            ) => Some("no turn is running"),
            (
                AgentRequest::ReadTextFile(_)
                | AgentRequest::WriteTextFile(_)
                | AgentRequest::TerminalCreate(_),
                Some(t),
            ) if t.interrupting => Some("the turn was cancelled"),
            _ => None,
        };
        if let Some(why) = refusal {
            let line = match &request {
                AgentRequest::RequestPermission(_) => {
                    self.base.stray_line();
                    acp::permission_response(&id, &PermissionAnswer::Cancelled)
                }
                _ => acp::error_response(&id, codes::INVALID_REQUEST, &format!("hotplex: {why}")),
            };
            let _ = self.write(&line).await;
            return Vec::new();
        }
        match request {
            AgentRequest::RequestPermission(req) => {
                let Some(turn) = turn else {
                    return Vec::new();
                };
                self.permission(id, req, turn, &workdir).await
            }
            AgentRequest::ReadTextFile(r) => {
                let Some(turn) = turn else {
                    return Vec::new();
                };
                let c = self.confinement(&workdir);
                let real = match c.resolve(&r.path) {
                    Ok(p) => p,
                    Err(e) => return self.fs_refused(&id, e).await,
                };
                let input = json!({ "file_path": real.to_string_lossy() });
                if let Some(out) = self.screened(&id, "Read", &input, &workdir, turn).await {
                    return out;
                }
                let line = match fs::read(real, r.line, r.limit).await {
                    Ok(content) => acp::read_text_file_response(&id, &content),
                    // Gemini CLI reads a file before it creates it and fails
                    // the write on the spec's "not found" error (FACTS.md
                    // z.6): an empty file is what it copes with.
                    Err(e) if e.code == codes::RESOURCE_NOT_FOUND && self.empty_for_missing() => {
                        acp::read_text_file_response(&id, "")
                    }
                    Err(e) => acp::error_response(&id, e.code, &e.message),
                };
                let _ = self.write(&line).await;
                Vec::new()
            }
            AgentRequest::WriteTextFile(w) => {
                let Some(turn) = turn else {
                    return Vec::new();
                };
                let c = self.confinement(&workdir);
                let real = match c.resolve(&w.path) {
                    Ok(p) => p,
                    Err(e) => return self.fs_refused(&id, e).await,
                };
                let input = json!({ "file_path": real.to_string_lossy(), "content": "" });
                if let Some(out) = self.screened(&id, "Write", &input, &workdir, turn).await {
                    return out;
                }
                let line = match fs::write(real, w.content).await {
                    Ok(()) => acp::write_text_file_response(&id),
                    Err(e) => acp::error_response(&id, e.code, &e.message),
                };
                let _ = self.write(&line).await;
                Vec::new()
            }
            AgentRequest::TerminalCreate(tc) => {
                let Some(turn) = turn else {
                    return Vec::new();
                };
                self.terminal_create(id, tc, turn, &workdir).await
            }
            AgentRequest::TerminalOutput(r) => {
                let line = match self.terminals.output(&r.terminal_id) {
                    Some((out, truncated, exit)) => {
                        acp::terminal_output_response(&id, &out, truncated, exit.as_ref())
                    }
                    None => unknown_terminal(&id, &r.terminal_id),
                };
                let _ = self.write(&line).await;
                Vec::new()
            }
            AgentRequest::TerminalWaitForExit(r) => {
                match self.terminals.wait(&r.terminal_id, id.clone()) {
                    Ok(Some(status)) => {
                        let _ = self.write(&acp::terminal_exit_response(&id, &status)).await;
                    }
                    Ok(None) => {}
                    Err(()) => {
                        let _ = self.write(&unknown_terminal(&id, &r.terminal_id)).await;
                    }
                }
                Vec::new()
            }
            AgentRequest::TerminalKill(r) => {
                let line = if self.terminals.kill(&r.terminal_id) {
                    acp::terminal_done_response(&id)
                } else {
                    unknown_terminal(&id, &r.terminal_id)
                };
                let _ = self.write(&line).await;
                Vec::new()
            }
            AgentRequest::TerminalRelease(r) => {
                let line = match self.terminals.release(&r.terminal_id) {
                    Some(waits) => {
                        for w in waits {
                            let m = "the terminal was released";
                            let _ = self
                                .write(&acp::error_response(&w, codes::INVALID_REQUEST, m))
                                .await;
                        }
                        acp::terminal_done_response(&id)
                    }
                    None => unknown_terminal(&id, &r.terminal_id),
                };
                let _ = self.write(&line).await;
                Vec::new()
            }
            AgentRequest::Invalid { method, reason } => {
                let m = format!("{method}: {reason}");
                let _ = self
                    .write(&acp::error_response(&id, codes::INVALID_PARAMS, &m))
                    .await;
                Vec::new()
            }
            AgentRequest::Other { method, .. } => {
                let m = format!("hotplex does not serve {method}");
                let _ = self
                    .write(&acp::error_response(&id, codes::METHOD_NOT_FOUND, &m))
                    .await;
                Vec::new()
            }
        }
    }

    /// The directories this session's file requests may touch.
    fn confinement<'a>(&'a self, workdir: &'a Path) -> fs::Confinement<'a> {
        fs::Confinement {
            workdir,
            roots: &self.base.ctx.allowed_roots,
        }
    }

    /// Answers a refused file request (outside the confinement, invalid).
    async fn fs_refused(&mut self, id: &RequestId, e: fs::FsError) -> Vec<Event> {
        tracing::warn!(reason = %e.message, "file request refused");
        let _ = self
            .write(&acp::error_response(id, e.code, &e.message))
            .await;
        Vec::new()
    }

    /// The WAF's tool check of a file or terminal request: `None` when it
    /// may go on; else the request is answered with the block, counted,
    /// and the turn's `danger_block` event returned.
    async fn screened(
        &mut self,
        id: &RequestId,
        tool: &str,
        input: &Value,
        workdir: &Path,
        turn: &mut InTurn<'_>,
    ) -> Option<Vec<Event>> {
        let v = host::screen(&self.base.ctx, &self.base.id, tool, input, workdir);
        if !v.blocked {
            return None;
        }
        let reason = host::block_reason(tool, &v);
        let _ = self
            .write(&acp::error_response(id, codes::INTERNAL_ERROR, &reason))
            .await;
        self.base.state.lock().stats.tools_denied += 1;
        Some(turn.tracker.danger_block(v))
    }

    /// A missing file is read as empty for this agent (Gemini CLI, which
    /// cannot create a file otherwise); every other agent gets the spec's
    /// `RESOURCE_NOT_FOUND`.
    fn empty_for_missing(&self) -> bool {
        self.live
            .as_ref()
            .and_then(|l| l.info.name.as_deref())
            .is_some_and(|n| n == "gemini-cli")
    }

    /// `terminal/create`: the command (and a shell wrapper's script, and
    /// the environment it is given) screened by the WAF, its cwd confined,
    /// then started contained (see [`terminal`]).
    async fn terminal_create(
        &mut self,
        id: RequestId,
        tc: acp::TerminalCreate,
        turn: &mut InTurn<'_>,
        workdir: &Path,
    ) -> Vec<Event> {
        let mut commands = tc.screened_commands();
        if !tc.env.is_empty() {
            // An assignment in front is how a shell would see it
            // (`LD_PRELOAD=... cmd` is judged as such).
            let env: Vec<String> = tc
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", permission::join_argv(std::iter::once(v.as_str()))))
                .collect();
            commands.push(format!("{} {}", env.join(" "), tc.command_line()));
        }
        for c in commands {
            let input = json!({ "command": c });
            if let Some(out) = self.screened(&id, "Bash", &input, workdir, turn).await {
                return out;
            }
        }
        let cwd = match tc.cwd.as_deref() {
            Some(dir) => match self.confinement(workdir).resolve(dir) {
                Ok(p) => p,
                Err(e) => return self.fs_refused(&id, e).await,
            },
            None => workdir.to_owned(),
        };
        let opts = &self.base.ctx.opts;
        let mut spawn = self
            .base
            .spawn_options(Path::new(&tc.command), &cwd, &self.session)
            .args(tc.args.iter().cloned())
            // Its stdin is /dev/null: no end-of-input grace to wait for.
            .grace(Duration::ZERO, opts.kill_grace.1);
        for (k, v) in &tc.env {
            spawn = spawn.env(k, v);
        }
        let line = match self.terminals.create(spawn, tc.output_byte_limit).await {
            Ok(tid) => {
                tracing::info!(terminal = %tid, command = %tc.command_line(), "terminal started");
                acp::terminal_create_response(&id, &tid)
            }
            Err(m) => acp::error_response(&id, codes::INTERNAL_ERROR, &m),
        };
        let _ = self.write(&line).await;
        Vec::new()
    }

    /// `session/request_permission` (see the module docs).
    async fn permission(
        &mut self,
        id: RequestId,
        req: acp::PermissionRequest,
        turn: &mut InTurn<'_>,
        workdir: &Path,
    ) -> Vec<Event> {
        let target = turn.tracker.permission_target(&req);
        let options = req.options.clone();
        let mut out = turn.tracker.push_owned(Incoming::Request {
            id: id.clone(),
            request: AgentRequest::RequestPermission(req),
        });
        if turn.interrupting {
            let line = acp::permission_response(&id, &PermissionAnswer::Cancelled);
            let _ = self.write(&line).await;
            return out;
        }
        // The WAF judges every command and every path the call names; the
        // most severe verdict decides.
        let writes = !matches!(
            target.kind,
            Some(ToolKind::Read | ToolKind::Search | ToolKind::Fetch | ToolKind::Think)
        );
        let mut verdicts: Vec<Verdict> = Vec::new();
        for c in &target.commands {
            let input = json!({ "command": c });
            verdicts.push(host::screen(
                &self.base.ctx,
                &self.base.id,
                "Bash",
                &input,
                workdir,
            ));
        }
        for p in &target.paths {
            let tool = if writes { "Write" } else { "Read" };
            let input = json!({ "file_path": p });
            verdicts.push(host::screen(
                &self.base.ctx,
                &self.base.id,
                tool,
                &input,
                workdir,
            ));
        }
        let worst = verdicts
            .into_iter()
            .max_by_key(|v| (v.blocked, v.level.severity()))
            .unwrap_or_else(Verdict::safe);
        if worst.blocked {
            self.base.state.lock().stats.tools_denied += 1;
            let answer = permission::select_option(&options, false);
            let _ = self.write(&acp::permission_response(&id, &answer)).await;
            out.extend(turn.tracker.danger_block(worst));
            return out;
        }
        let Some(handler) = self.base.ctx.opts.permission_handler.clone() else {
            let answer = permission::select_option(&options, true);
            let _ = self.write(&acp::permission_response(&id, &answer)).await;
            return out;
        };
        // The host decides on a blocking thread, bounded by the turn's
        // timeout; the session reads on meanwhile.
        let (tool_name, input) = out
            .iter()
            .find_map(|e| match e {
                Event::PermissionRequest {
                    tool_name, input, ..
                } => Some((tool_name.clone(), input.clone())),
                _ => None,
            })
            .unwrap_or_else(|| ("other".into(), json!({})));
        let context = json!({
            "tool_call_id": target.tool_call_id,
            "title": target.title,
            "commands": target.commands,
            "paths": target.paths,
            "options": options.iter().map(|o| json!({
                "option_id": o.option_id, "name": o.name, "kind": o.kind.as_str(),
            })).collect::<Vec<_>>(),
        });
        let key = id.to_string();
        let session_id = self.base.id.clone();
        let (rid, rid_late) = (id.clone(), id.clone());
        let (opts_now, opts_late) = (options.clone(), options.clone());
        let key_late = key.clone();
        self.asking.insert(key.clone(), (id, options));
        self.calls.spawn(
            &key.clone(),
            turn.host_timeout,
            move || {
                let req = crate::contract::ToolRequest {
                    session_id: &session_id,
                    tool_name: &tool_name,
                    input: &input,
                    verdict: &worst,
                    context: &context,
                };
                // A panicking handler denies: losing the check must not allow.
                let decision =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req)))
                        .unwrap_or_else(|_| Permission::failed("the handler panicked"));
                let (allow, note) = match decision {
                    Permission::Allow {
                        updated_input: Some(_),
                        ..
                    } => (
                        false,
                        Some(
                            "the host's permission check rewrote the tool input, which ACP cannot carry: denied"
                                .to_owned(),
                        ),
                    ),
                    Permission::Allow { .. } => (true, None),
                    Permission::Deny { .. } => (false, None),
                };
                let answer = permission::select_option(&opts_now, allow);
                Answered {
                    note,
                    ..Answered::new(&key, acp::permission_response(&rid, &answer))
                }
            },
            move || {
                let answer = permission::select_option(&opts_late, false);
                Answered {
                    note: Some(
                        "the host's permission check failed: no answer within the turn's timeout"
                            .into(),
                    ),
                    ..Answered::new(&key_late, acp::permission_response(&rid_late, &answer))
                }
            },
        );
        out
    }

    /// Answers `terminal/wait_for_exit` requests whose terminal ended.
    async fn answer_waits(&mut self, waits: Vec<RequestId>, status: &acp::ExitStatus) {
        for w in waits {
            let _ = self.write(&acp::terminal_exit_response(&w, status)).await;
        }
    }

    /// Writes one line to the agent, bounded by [`WRITE_LIMIT`].
    async fn write(&mut self, text: &str) -> Result<()> {
        let Some(live) = self.live.as_mut() else {
            return Err(Error::SessionDead("process gone".into()));
        };
        live.proc
            .write(text, tokio::time::Instant::now() + WRITE_LIMIT)
            .await
    }

    /// The agent's stdout ended: its terminals are stopped, its status and
    /// stderr collected, its tree confirmed gone. Returns a description.
    async fn reap(&mut self) -> String {
        let Some(live) = self.live.take() else {
            return "process gone".into();
        };
        self.terminals.shutdown().await;
        let confirmed = !live.sid.is_empty();
        let msg = self.base.reap(live.proc, confirmed).await;
        self.process_gone();
        msg
    }

    /// Kills the process and its terminals (kill ladder, trees confirmed
    /// empty); `reason` is how its end is counted.
    async fn kill(&mut self, reason: ExitReason) {
        self.terminals.shutdown().await;
        if let Some(live) = self.live.take() {
            self.base.kill(live.proc, reason).await;
        }
        self.process_gone();
    }

    fn process_gone(&mut self) {
        // Requests of the dead process are not answered any more.
        for (key, _) in self.asking.drain() {
            self.calls.cancel(&key);
        }
        self.base.process_gone();
    }
}

/// The answer for a terminal id the session does not have.
fn unknown_terminal(id: &RequestId, terminal_id: &str) -> String {
    acp::error_response(
        id,
        codes::INVALID_PARAMS,
        &format!("unknown terminal {terminal_id:?}"),
    )
}
