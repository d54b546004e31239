//! One hot session: a long-lived agent process and the turns it answers.
//!
//! Each session is an *actor*: a tokio task that alone owns the agent
//! process, its pipes and its turn state. Turns arrive on a queue and run one
//! at a time in arrival order (the seed let two turns write to one process
//! and complete each other). Between turns the actor keeps reading the
//! agent's stdout, so a process that dies while idle is noticed and reaped,
//! and a chatty one never blocks on a full pipe.
//!
//! A turn, top to bottom (`Actor::turn`):
//!
//! 1. If the process is missing (first turn, crash, timeout kill) or runs in
//!    another working directory, (re)start it: take a cold-start slot from
//!    the engine's semaphore, `--resume` the provider session if a marker
//!    says the CLI confirmed it in this directory, else `--session-id`.
//! 2. Write the user message at once: readiness is the protocol itself (the
//!    pipe buffers the line until the CLI reads it), never a sleep. A cold
//!    start must produce its first line within `startup_timeout`.
//! 3. Read lines until the turn's `result`, turning them into [`Event`]s,
//!    screening every tool call with the WAF (through the `PreToolUse` hook
//!    registered at start, which also sees the read-only commands the CLI
//!    runs without asking, and again at `can_use_tool`, where the host's
//!    handler decides last), and writing the resume marker once the CLI
//!    confirms the session. A question or plan for the person
//!    (`AskUserQuestion`, `ExitPlanMode`) is held until the host answers
//!    it; meanwhile the turn's clock stands still and `question_timeout`
//!    runs instead (see [`super::ask`]).
//! 4. On timeout or when the caller goes away: send `interrupt`, wait
//!    `interrupt_grace` for the `result`; if it does not come, run the kill
//!    ladder. On EOF: the agent died; a resume that dies before confirming
//!    falls back once to a fresh session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use super::agent::{self, AgentProc, Base, Launch, TurnSink};
use super::ask::{AskKind, Held};
use super::host::{self, Answered, HostCalls, Routed, Scene};
use super::lines::RawLine;
use super::marker::MarkerStore;
use super::state::{State, StopReason};
use crate::contract::telemetry::{ExitReason, LifecycleRecord, StartMode};
use crate::contract::{EngineOptions, Event, ImageInput, SessionOptions, SessionStatus, Turn};
use crate::protocol::tracker::TurnTracker;
use crate::protocol::{self, looks_like_result, CliRequest, Line};
use crate::telemetry::Telemetry;
use crate::waf::Detector;
use crate::{Error, Result};
use tracing::Instrument;

/// The text of a spare's warm-up message (blocked by the spare's own hook:
/// it never reaches the model or the conversation).
const WARM_UP_PROMPT: &str = "hotplex warm-up";

/// What a turn sends to whoever waits on it, in order: its events, then
/// exactly one `Done`.
#[derive(Debug)]
pub(crate) enum TurnMsg {
    Event(Event),
    Done(Result<Turn>),
}

/// What a session's queue holds, run in order.
pub(crate) enum Job {
    /// A turn.
    Turn(Box<TurnCmd>),
    /// Start a new conversation (`reset_session`): the process stops and
    /// the next turn starts fresh under `psid`.
    Reset {
        psid: String,
        forget_transcript: bool,
        done: oneshot::Sender<()>,
    },
    /// Start the process now, as a spare (`EngineOptions.prewarm`): fresh,
    /// in `workdir`, with `session` options, on the cold-start slot the
    /// pool already took for it; then wait idle.
    Warm {
        workdir: PathBuf,
        session: Box<SessionOptions>,
        permit: OwnedSemaphorePermit,
    },
    /// This spare now serves session `id` (claimed by a new conversation):
    /// records from now on name it, and its provider session id becomes
    /// the session's binding before the first turn is written.
    Claim { id: String },
}

/// A live control for a session's agent, answered on `tx`.
pub(crate) struct ControlCmd {
    pub control: Control,
    pub tx: oneshot::Sender<Result<Value>>,
}

/// The live controls.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Control {
    /// Stop the running turn (answers whether one was running).
    Interrupt,
    /// Switch the model (`None`: the default).
    SetModel(Option<String>),
    /// Switch the permission mode.
    SetPermissionMode(String),
    /// How full the context window is (`get_context_usage`).
    ContextUsage,
    /// The MCP servers' states (`mcp_status`).
    McpStatus,
    /// The host's answer to a question or plan the agent waits on
    /// (answered by the actor, never sent as a control request).
    Answer(Reply),
}

/// A host's answer to a held question or plan (see [`super::ask`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// `Engine::answer_question`.
    Question { question_id: String, answers: Value },
    /// `Engine::approve_plan`.
    Plan {
        approved: bool,
        feedback: Option<String>,
        mode: Option<String>,
    },
}

impl Control {
    /// The request's body on the wire.
    fn body(&self) -> Value {
        match self {
            Control::Interrupt => serde_json::json!({"subtype": "interrupt"}),
            Control::SetModel(m) => serde_json::json!({"subtype": "set_model", "model": m}),
            Control::SetPermissionMode(m) => {
                serde_json::json!({"subtype": "set_permission_mode", "mode": m})
            }
            Control::ContextUsage => serde_json::json!({"subtype": "get_context_usage"}),
            Control::McpStatus => serde_json::json!({"subtype": "mcp_status"}),
            Control::Answer(_) => Value::Null,
        }
    }

    /// Applies the control to session options (those that change them),
    /// so a restart keeps it.
    fn apply(&self, o: &mut SessionOptions) {
        match self {
            Control::SetModel(m) => o.model.clone_from(m),
            Control::SetPermissionMode(m) => o.permission_mode = Some(m.clone()),
            // A mode the host picks for an approved plan is kept like a
            // `set_permission_mode`.
            Control::Answer(Reply::Plan {
                approved: true,
                mode: Some(m),
                ..
            }) => o.permission_mode = Some(m.clone()),
            _ => {}
        }
    }
}

/// A queued turn.
pub(crate) struct TurnCmd {
    pub prompt: String,
    /// Images sent before the prompt's text.
    pub images: Vec<ImageInput>,
    /// The session's options from this turn on, if the turn gives them.
    pub session: Option<SessionOptions>,
    pub workdir: PathBuf,
    pub timeout: Duration,
    /// How long a question or plan of this turn may wait for its answer.
    pub question_timeout: Duration,
    pub queued_at: Instant,
    /// Whether this turn's token deltas are delivered.
    pub deltas: bool,
    pub tx: mpsc::UnboundedSender<TurnMsg>,
}

/// Everything engine-wide a session needs.
pub(crate) struct SessionCtx {
    pub opts: EngineOptions,
    /// The engine's `allowed_roots`, canonical: workdirs, and the files
    /// and terminals an ACP agent asks hotplex for, stay under them.
    pub allowed_roots: Vec<PathBuf>,
    pub detector: Arc<Detector>,
    pub markers: MarkerStore,
    pub starts: Arc<Semaphore>,
    pub telemetry: Arc<Telemetry>,
    /// Woken when a process ends or an actor finishes: the pool's spare
    /// refiller may have a slot or a dead spare to replace.
    pub pool_changed: Arc<tokio::sync::Notify>,
    /// Whether spares send their warm-up message (see [`Actor::warm`]);
    /// cleared for good once an agent did not block it.
    pub warm_up: std::sync::atomic::AtomicBool,
    /// Leases and transcripts across hosts (`EngineOptions.placement`).
    pub placed: Option<Arc<super::placed::Placed>>,
}

/// The running agent process of a session (the process itself, whose
/// `permit` is held until the first line, and what this protocol keeps
/// about it).
struct Live {
    proc: AgentProc,
    resumed: bool,
    /// The CLI confirmed the session (init or result seen).
    confirmed: bool,
    /// The CLI's `total_cost_usd` is a running total per process (verified,
    /// CLI 2.1.197); the last one seen turns it into per-turn costs.
    cost_seen: f64,
    /// The agent echoed a user message (`--replay-user-messages`): from
    /// then on a turn's output starts at the echo of its own message, and
    /// whatever comes before it belongs to no turn.
    echoes: bool,
    /// The session options this process runs with (live controls
    /// included): others restart it.
    started_with: SessionOptions,
    /// Started as a fork: the conversation's new id comes with `init`.
    forking: bool,
}

/// What woke a turn's read loop.
enum Wake {
    Stop,
    CallerGone,
    Timer,
    Line(std::io::Result<Option<RawLine>>),
    /// A host call answered an agent request.
    Host(Option<Answered>),
    /// A live control arrived.
    Control(Option<ControlCmd>),
}

/// How a turn's read loop ended badly.
enum Fail {
    /// Any error to report as is.
    Error(Error),
    /// The process died before confirming the session (resume fallback).
    Unconfirmed(String),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Error(e)
    }
}

/// The actor of one session; see the module docs.
pub(crate) struct Actor {
    /// The session's id, the engine's context and the state the pool
    /// reads (shared with the other protocols' actors).
    base: Base,
    pub psid: String,
    /// Finish when the processes this session replaces are gone (an
    /// earlier incarnation of its id, a session it evicted); it starts none
    /// of its own before.
    pub previous: Vec<watch::Receiver<bool>>,
    live: Option<Live>,
    req_seq: u64,
    /// User messages written (their uuids are unique per session).
    msg_seq: u64,
    /// The uuids of the latest messages written (this turn's included), to
    /// tell a late echo of an earlier message from this turn's.
    sent: std::collections::VecDeque<String>,
    /// The current turn's caller went away (its outcome is `cancelled`).
    cancelled: bool,
    /// Host calls answering agent requests.
    calls: HostCalls,
    /// Live controls sent to the agent, by request id, until it answers.
    awaiting: std::collections::HashMap<String, ControlCmd>,
    /// The session's options (the latest a turn gave, with live controls).
    session: SessionOptions,
    /// The conversation this session forks at its next start.
    fork_from: Option<String>,
    /// The message of `fork_from` the fork ends at (`None`: all of it).
    fork_at: Option<String>,
    /// Live controls from the engine.
    controls: mpsc::UnboundedReceiver<ControlCmd>,
    /// The engine dropped its end of `controls` (then it is not polled:
    /// a closed channel is always ready).
    controls_closed: bool,
    /// A spare's process must have done its start work by then (no turn
    /// bounds it with `startup_timeout`); cleared when it has, or by a turn.
    warm_deadline: Option<tokio::time::Instant>,
    /// A spare is warming up: the uuid of its warm-up message until that
    /// message's `result` (without a warm-up message: the request id of
    /// its context-usage request, until answered).
    warming: Option<String>,
    /// The workdir of a spare not yet claimed (then its transcript, if the
    /// warm-up made one, is removed when it stops).
    spare_workdir: Option<PathBuf>,
    /// Questions and plans of the running turn waiting for the host's
    /// answer, in the order asked, each with when it times out.
    held: Vec<(Held, tokio::time::Instant)>,
    /// The permission mode the agent last reported (for `plan_mode`
    /// events, which report changes across turns too).
    mode: Option<String>,
}

impl Actor {
    pub(crate) fn new(
        id: String,
        psid: String,
        ctx: Arc<SessionCtx>,
        state: Arc<Mutex<State>>,
        previous: Vec<watch::Receiver<bool>>,
        fork: (Option<String>, Option<String>),
        controls: mpsc::UnboundedReceiver<ControlCmd>,
    ) -> Actor {
        Actor {
            base: Base { id, ctx, state },
            psid,
            previous,
            live: None,
            req_seq: 0,
            msg_seq: 0,
            sent: std::collections::VecDeque::new(),
            cancelled: false,
            calls: HostCalls::default(),
            awaiting: std::collections::HashMap::new(),
            session: SessionOptions::default(),
            fork_from: fork.0,
            fork_at: fork.1,
            controls,
            controls_closed: false,
            warm_deadline: None,
            warming: None,
            spare_workdir: None,
            held: Vec::new(),
            mode: None,
        }
    }

    /// Runs until stopped or until the engine drops the queue; then kills the
    /// process (confirmed empty tree), fails queued turns and sets `done`.
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
                    Some(Job::Reset { psid, forget_transcript, done }) => {
                        self.reset(psid, forget_transcript).await;
                        let _ = done.send(());
                    }
                    Some(Job::Warm { workdir, session, permit }) => {
                        self.warm(&workdir, *session, permit).await;
                    }
                    Some(Job::Claim { id }) => self.claimed(id),
                    None => break,
                },
                _ = agent::sleep_until_some(self.warm_deadline) => {
                    self.warm_deadline = None;
                    self.warming = None;
                    tracing::warn!(
                        "spare agent did not finish starting within startup_timeout ({:?}); stopped",
                        self.base.ctx.opts.startup_timeout
                    );
                    self.kill(ExitReason::StartFailed).await;
                }
                ctl = self.controls.recv(), if !self.controls_closed => match ctl {
                    Some(ctl) => self.control(ctl, false).await,
                    None => self.controls_closed = true,
                },
                a = self.calls.next(), if !self.calls.is_empty() => {
                    if let Some(a) = a {
                        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
                        let _ = self.write(&a.line, deadline).await;
                    }
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
        if let Some(workdir) = self.spare_workdir.take() {
            // An unclaimed spare's warm-up left a transcript of nothing.
            if let Some(config) = config_dir(&self.base.ctx.opts, &self.session) {
                super::marker::remove_transcript(&config, &workdir, &self.psid);
            }
        }
        let _ = done.send(true);
        self.base.ctx.pool_changed.notify_one();
    }

    /// Starts this actor's process as a spare (see [`Job::Warm`]). A
    /// failure leaves it without a process, which the pool sees as a dead
    /// spare to replace.
    async fn warm(
        &mut self,
        workdir: &Path,
        session: SessionOptions,
        permit: OwnedSemaphorePermit,
    ) {
        self.session = session;
        self.spare_workdir = Some(workdir.to_owned());
        match self.start(workdir, Some(false), Some(permit)).await {
            Ok(()) => {
                let deadline = tokio::time::Instant::now() + self.base.ctx.opts.startup_timeout;
                self.warm_deadline = Some(deadline);
                // The CLI defers much of its start to the first message
                // (the system prompt, session registration, the first pass
                // through its turn loop). A context-usage request builds
                // the system prompt now; a first message that the spare's
                // own UserPromptSubmit hook blocks runs the rest without a
                // model request and without entering the conversation. The
                // first real turn then costs about what a hot one does
                // (tests/e2e/FACTS.md, section y).
                self.req_seq += 1;
                let id = format!("hotplex-warm-{}", self.req_seq);
                let line = protocol::control_request(&id, Control::ContextUsage.body());
                let _ = self.write(&line, deadline).await;
                if self
                    .base
                    .ctx
                    .warm_up
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    let uuid = self.next_message_uuid();
                    let msg = protocol::user_message_with_uuid(WARM_UP_PROMPT, &uuid);
                    self.warming = Some(uuid);
                    let _ = self.write(&msg, deadline).await;
                } else {
                    self.warming = Some(id);
                }
            }
            Err(e) => {
                // `start` fails before it keeps a process.
                tracing::warn!(error = %e, "spare agent failed to start");
                self.mark_dead();
            }
        }
    }

    /// A line a warming spare printed (see [`warm`](Self::warm)): nothing
    /// of the warm-up is a turn's, or counted. Its hooks are answered here
    /// (the warm-up hook blocks the message; host hooks are not asked about
    /// it), other requests go where they always do (the host's MCP servers
    /// are served), and the warm-up's end makes the spare ready.
    async fn warming_line(&mut self, line: Line) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        match line {
            Line::ControlRequest {
                request_id,
                request: CliRequest::HookCallback { callback_id, .. },
            } => {
                let answer = if callback_id == protocol::WARM_HOOK_ID {
                    protocol::hook_block(&request_id, "hotplex warm-up")
                } else {
                    protocol::hook_continue(&request_id)
                };
                let _ = self.write(&answer, deadline).await;
            }
            Line::ControlResponse { ref request_id, .. }
                if self.warming.as_deref() == Some(request_id.as_str()) =>
            {
                self.warmed();
            }
            l @ (Line::ControlRequest { .. }
            | Line::ControlResponse { .. }
            | Line::ControlCancel { .. }) => self.stray(l, deadline).await,
            Line::Result(r) => {
                let blocked = r
                    .result
                    .as_deref()
                    .is_some_and(|t| t.contains("blocked by hook"));
                if blocked {
                    self.warmed();
                } else {
                    // The agent answered the warm-up (it ignores such
                    // hooks): the conversation now holds it, so this spare
                    // is unusable, and later spares start without one.
                    self.base
                        .ctx
                        .warm_up
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        "the agent did not block a spare's warm-up message; spares start without one"
                    );
                    self.warming = None;
                    self.warm_deadline = None;
                    self.kill(ExitReason::StartFailed).await;
                }
            }
            _ => {}
        }
    }

    /// A spare has done its start work: it is ready to be claimed, and its
    /// cold-start slot is free for the next start.
    fn warmed(&mut self) {
        self.warming = None;
        self.warm_deadline = None;
        if let Some(l) = self.live.as_mut() {
            l.proc.permit = None;
        }
        let mut st = self.base.state.lock();
        if st.status == SessionStatus::Starting {
            st.status = SessionStatus::Ready;
        }
    }

    /// This spare now serves session `id` (see [`Job::Claim`]).
    fn claimed(&mut self, id: String) {
        self.spare_workdir = None;
        let spare_id = std::mem::replace(&mut self.base.id, id);
        tracing::Span::current().record("session_id", self.base.id.as_str());
        // Before the first turn's message, which creates the transcript:
        // a later resume of `id` must find this conversation.
        let ns = &self.base.ctx.opts.namespace;
        self.base
            .ctx
            .markers
            .bind(ns, &self.base.id, &self.psid, None, None);
        if let Some(l) = &self.live {
            let pid = l.proc.pid();
            self.base
                .ctx
                .telemetry
                .record(|| LifecycleRecord::SpareClaimed {
                    session_id: self.base.id.clone(),
                    spare_id,
                    pid,
                });
            tracing::info!(pid, "spare claimed");
        }
    }

    /// Starts a new conversation under `psid` (see [`Job::Reset`]).
    async fn reset(&mut self, psid: String, forget_transcript: bool) {
        if self.live.is_some() {
            self.kill(ExitReason::Stopped).await;
        }
        let old = std::mem::replace(&mut self.psid, psid);
        let config = forget_transcript.then(|| config_dir(&self.base.ctx.opts, &self.session));
        self.base
            .ctx
            .markers
            .forget(&old, config.flatten().as_deref());
        self.fork_from = None;
        self.fork_at = None;
        self.base.state.lock().psid.clone_from(&self.psid);
    }

    /// Handles a live control: sent to the agent when it runs, else
    /// answered here (options are kept for the next start).
    async fn control(&mut self, ctl: ControlCmd, in_turn: bool) {
        if ctl.tx.is_closed() {
            return;
        }
        if let Control::Answer(reply) = &ctl.control {
            let answer = self.reply(reply).await;
            if answer.is_ok() {
                ctl.control.apply(&mut self.session);
                if let Some(l) = self.live.as_mut() {
                    ctl.control.apply(&mut l.started_with);
                }
            }
            let _ = ctl.tx.send(answer.map(|_| Value::Null));
            return;
        }
        if ctl.control == Control::Interrupt && !in_turn {
            let _ = ctl.tx.send(Ok(Value::Bool(false)));
            return;
        }
        if self.live.is_none() {
            let answer = match &ctl.control {
                Control::SetModel(_) | Control::SetPermissionMode(_) => {
                    ctl.control.apply(&mut self.session);
                    Ok(Value::Null)
                }
                _ => Err(Error::SessionDead(
                    "no agent process is running for this session (it starts with the next turn)"
                        .into(),
                )),
            };
            let _ = ctl.tx.send(answer);
            return;
        }
        self.req_seq += 1;
        let request_id = format!("hotplex-ctl-{}", self.req_seq);
        let line = protocol::control_request(&request_id, ctl.control.body());
        let deadline = tokio::time::Instant::now() + self.base.ctx.opts.control_timeout;
        if let Err(e) = self.write(&line, deadline).await {
            let _ = ctl.tx.send(Err(e));
            return;
        }
        // Controls whose callers gave up (timed out) are forgotten.
        self.awaiting.retain(|_, c| !c.tx.is_closed());
        self.awaiting.insert(request_id, ctl);
    }

    /// Sends the host's answer to the held question or plan it names;
    /// a rejected answer leaves it held.
    async fn reply(&mut self, reply: &Reply) -> Result<()> {
        let at = match reply {
            Reply::Question { question_id, .. } => {
                self.held.iter().position(|(h, _)| h.id == *question_id)
            }
            Reply::Plan { .. } => self.held.iter().position(|(h, _)| h.kind == AskKind::Plan),
        };
        let Some(at) = at else {
            return Err(Error::QuestionNotFound(match reply {
                Reply::Question { question_id, .. } => {
                    format!("no question {question_id:?} waits for an answer in this session")
                }
                Reply::Plan { .. } => "no plan waits for approval in this session".into(),
            }));
        };
        let held = &self.held[at].0;
        let line = match reply {
            Reply::Question { answers, .. } => held.answer_line(answers)?,
            Reply::Plan {
                approved,
                feedback,
                mode,
            } => held.plan_line(*approved, feedback.as_deref(), mode.as_deref())?,
        };
        // Answered once, whatever the write does: a dead agent reads no
        // second answer either.
        self.held.remove(at);
        let deadline = tokio::time::Instant::now() + self.base.ctx.opts.control_timeout;
        self.write(&line, deadline).await
    }

    /// Holds a question or plan for the host (until `limit` passes) and
    /// returns the event that shows it.
    fn hold(&mut self, held: Held, limit: Duration, tracker: &TurnTracker) -> Event {
        let event = held.event(tracker);
        tracing::info!(id = %held.id, kind = ?held.kind, "waiting for the host's answer");
        self.held.push((held, tokio::time::Instant::now() + limit));
        event
    }

    /// `question_timeout` passed for held questions or plans: each is
    /// declined with the host's `question_timeout_answer`, or, without
    /// one, the turn is interrupted (and ends with `QuestionTimeout`).
    /// Returns the events to emit.
    async fn questions_expired(
        &mut self,
        limit: Duration,
        interrupting: &mut Option<(Error, tokio::time::Instant)>,
    ) -> Vec<Event> {
        let now = tokio::time::Instant::now();
        let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, due)| *due <= now);
        self.held = waiting;
        if expired.is_empty() {
            return Vec::new();
        }
        let ids: Vec<&str> = expired.iter().map(|(h, _)| h.id.as_str()).collect();
        let what = format!("{} got no answer within {limit:?}", ids.join(", "));
        tracing::warn!("{what}");
        match self.base.ctx.opts.question_timeout_answer.clone() {
            Some(text) => {
                for (h, _) in &expired {
                    let deadline = now + Duration::from_secs(1);
                    let _ = self
                        .write(&protocol::deny_tool(&h.request_id, &text), deadline)
                        .await;
                }
                vec![Event::Error {
                    message: format!("{what}: declined with the host's question_timeout_answer"),
                }]
            }
            None => {
                if interrupting.is_none() {
                    let e = Error::QuestionTimeout(what);
                    *interrupting = Some((e, now + self.base.ctx.opts.interrupt_grace));
                    self.send_interrupt().await;
                }
                Vec::new()
            }
        }
    }

    /// The agent answered a live control.
    fn answered(
        &mut self,
        request_id: &str,
        subtype: &str,
        error: Option<String>,
        response: Value,
    ) {
        let Some(ctl) = self.awaiting.remove(request_id) else {
            return;
        };
        let answer = if subtype == "success" {
            ctl.control.apply(&mut self.session);
            if let Some(l) = self.live.as_mut() {
                ctl.control.apply(&mut l.started_with);
            }
            Ok(match ctl.control {
                Control::Interrupt => Value::Bool(true),
                _ => response,
            })
        } else {
            let why = error.unwrap_or_else(|| "no reason given".into());
            let lower = why.to_ascii_lowercase();
            Err(
                if lower.contains("unsupported") || lower.contains("unknown") {
                    Error::Unsupported(format!("{}: {why}", ctl.control.body()["subtype"]))
                } else {
                    Error::ControlFailed(why)
                },
            )
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
        // Whatever the turn left waiting can no longer be answered.
        self.held.clear();
        // Under placement, the answer goes out only while this engine still
        // holds the session: one taken over meanwhile is Fenced, and its
        // process is stopped before the caller hears so.
        let result = match result {
            Ok(t) => match self.confirm_lease().await {
                Err(e @ Error::Fenced(_)) => {
                    tracing::warn!("{e}: the session's process is stopped");
                    self.kill(ExitReason::Stopped).await;
                    Err(e)
                }
                _ => Ok(t),
            },
            Err(e) => Err(e),
        };
        let pid = self.live.as_ref().map(|l| l.proc.pid());
        let message = match &result {
            Ok(t) if !t.message_uuid.is_empty() => Some(t.message_uuid.clone()),
            _ => None,
        };
        let ran = result.is_ok();
        self.base
            .finish_turn(&cmd, started, result, pid, self.cancelled);
        if ran {
            self.save_transcript(&cmd.workdir, message).await;
        }
    }

    /// Under placement, checks that this engine still holds the session's
    /// lease before the turn's answer goes out (`Placed::confirm`):
    /// [`Error::Fenced`] when another host took it over meanwhile.
    async fn confirm_lease(&self) -> Result<()> {
        let Some(placed) = self.base.ctx.placed.clone() else {
            return Ok(());
        };
        let id = self.base.id.clone();
        tokio::task::spawn_blocking(move || placed.confirm(&id))
            .await
            .unwrap_or_else(|e| Err(Error::Io(format!("lease check task: {e}"))))
    }

    /// Under placement, saves the session's transcript after a turn (see
    /// `engine::placed`). A session another host took over is stopped here:
    /// its process is killed and the save rejected.
    async fn save_transcript(&mut self, workdir: &Path, message: Option<String>) {
        let ctx = self.base.ctx.clone();
        let Some(placed) = ctx.placed.clone() else {
            return;
        };
        let Some(config) = config_dir(&ctx.opts, &self.session) else {
            return;
        };
        let (id, psid, workdir) = (self.base.id.clone(), self.psid.clone(), workdir.to_owned());
        let saved = tokio::task::spawn_blocking(move || {
            placed.save(&id, &psid, &config, &workdir, message.as_deref())
        })
        .await
        .unwrap_or_else(|e| Err(Error::Io(format!("transcript save task: {e}"))));
        match saved {
            Ok(()) => {}
            Err(Error::Fenced(why)) => {
                tracing::warn!("{why}: the session's process is stopped");
                self.kill(ExitReason::Stopped).await;
            }
            Err(e) => tracing::warn!("transcript not saved: {e}"),
        }
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
        // From here the turn's own deadlines bound the process (a late
        // answer to a spare's warm-up is read and dropped like any).
        self.warm_deadline = None;
        self.warming = None;
        if let Some(s) = &cmd.session {
            self.session = s.clone();
        }
        if self
            .live
            .as_ref()
            .is_some_and(|l| l.proc.workdir != cmd.workdir || l.started_with != self.session)
        {
            // The CLI's project (transcripts, settings) follows its cwd, and
            // its options are its command line: a new workdir or new options
            // need a new process (resuming the conversation), never a silent
            // mismatch.
            self.kill(ExitReason::Stopped).await;
        }
        // A cold start picks resume or fresh from the marker; if the CLI
        // refuses before confirming the session, the other mode is tried
        // once: a resume whose transcript is gone or was made in another
        // directory ("No conversation found") starts fresh, and a fresh
        // start whose id the CLI already knows ("Session ID ... is already
        // in use": a transcript without a marker, e.g. markers kept in
        // memory by an earlier engine) resumes it.
        let mut mode: Option<bool> = None;
        let mut first_failure: Option<String> = None;
        // Events about the fallback belong to this turn too.
        let mut notes: Vec<Event> = Vec::new();
        loop {
            let cold = self.live.is_none();
            if cold {
                self.start(&cmd.workdir, mode, None).await?;
            }
            let resumed = self.live.as_ref().is_some_and(|l| l.resumed);
            match self.drive(cmd, cold, started, stop).await {
                Ok(mut t) => {
                    t.cold_start = cold;
                    t.resumed = cold && resumed;
                    t.queued = started.duration_since(cmd.queued_at);
                    t.duration = started.elapsed();
                    t.events.splice(0..0, notes);
                    return Ok(t);
                }
                Err(Fail::Unconfirmed(msg)) if cold && first_failure.is_none() => {
                    let what = if resumed {
                        self.base.ctx.markers.delete(&self.psid);
                        self.fork_at = None;
                        if self.fork_from.take().is_some() {
                            // The copy failed: this id starts its own.
                            let ns = &self.base.ctx.opts.namespace;
                            self.base
                                .ctx
                                .markers
                                .bind(ns, &self.base.id, &self.psid, None, None);
                        }
                        "resume failed, starting a fresh session"
                    } else {
                        "fresh start refused, resuming the session"
                    };
                    let event = Event::Error {
                        message: format!("{what}: {msg}"),
                    };
                    let _ = cmd.tx.send(TurnMsg::Event(event.clone()));
                    notes.push(event);
                    mode = Some(!resumed);
                    first_failure = Some(msg);
                }
                Err(Fail::Unconfirmed(msg)) if cold => {
                    let first = first_failure.unwrap_or_default();
                    return Err(Error::StartFailed(format!("{first}; then: {msg}")));
                }
                Err(Fail::Unconfirmed(msg)) => return Err(Error::SessionDead(msg)),
                Err(Fail::Error(e)) => return Err(e),
            }
        }
    }

    /// Starts the agent process in `workdir`; `resume` forces the mode
    /// (`None`: resume when a marker for this workdir exists). Takes a
    /// cold-start slot unless given one (`permit`).
    async fn start(
        &mut self,
        workdir: &Path,
        resume: Option<bool>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<()> {
        let opts = &self.base.ctx.opts;
        self.base.state.lock().status = SessionStatus::Starting;
        let deadline = tokio::time::Instant::now() + opts.startup_timeout;
        let permit = match permit {
            Some(p) => p,
            None => self.base.start_slot(deadline).await?,
        };
        let own = self.base.ctx.markers.get(&self.psid);
        // A fork starts from its source's transcript until its own exists.
        let fork = match (&self.fork_from, &own, resume) {
            (Some(from), None, None | Some(true)) => Some(from.clone()),
            _ => None,
        };
        let resume = fork.is_some() || resume.unwrap_or_else(|| own.as_deref() == Some(workdir));
        let start = match &fork {
            Some(from) => Start::Fork(from, self.fork_at.as_deref()),
            None if resume => Start::Resume,
            None => Start::Fresh,
        };
        let mode = if resume {
            StartMode::Resume
        } else {
            StartMode::Fresh
        };
        let mut env = Vec::new();
        if let Some(dir) = &self.session.config_dir {
            env.push(("CLAUDE_CONFIG_DIR".to_owned(), dir.clone().into_os_string()));
        }
        let launch = Launch {
            program: self.base.program(&self.session),
            args: claude_args(opts, &self.session, &self.psid, start),
            workdir,
            env,
            mode: Some(mode),
            permit,
        };
        let proc = self.base.spawn(launch, &self.session).await?;
        self.live = Some(Live {
            proc,
            resumed: resume,
            confirmed: false,
            cost_seen: 0.0,
            echoes: false,
            started_with: self.session.clone(),
            forking: fork.is_some(),
        });
        // Register the hooks (the WAF's PreToolUse first, then the host's)
        // before the first turn; the CLI answers with a control_response
        // (ignored) and reads on.
        self.req_seq += 1;
        let mut hooks: Vec<protocol::HookRegistration<'_>> = opts
            .hooks
            .iter()
            .map(|h| protocol::HookRegistration {
                event: &h.event,
                matcher: h.matcher.as_deref(),
                callback_id: &h.id,
                timeout_secs: Some(h.timeout_secs()),
            })
            .collect();
        let warm_up = self
            .base
            .ctx
            .warm_up
            .load(std::sync::atomic::Ordering::Relaxed);
        if self.spare_workdir.is_some() && warm_up {
            // Blocks the spare's warm-up message (see `warm`); lets every
            // later prompt through.
            hooks.push(protocol::HookRegistration {
                event: "UserPromptSubmit",
                matcher: None,
                callback_id: protocol::WARM_HOOK_ID,
                timeout_secs: None,
            });
        }
        let init =
            protocol::initialize_with_hooks(&format!("hotplex-init-{}", self.req_seq), &hooks);
        let _ = self.write(&init, deadline).await;
        Ok(())
    }

    /// Writes the prompt and reads the turn to its end.
    ///
    /// Which output is this turn's: the message goes out with a fresh
    /// `uuid` and the agent runs with `--replay-user-messages`, so it
    /// echoes the message when it begins answering it. Once an agent has
    /// echoed anything, a turn's output starts at the echo of its own
    /// message: what comes before (a previous turn's trailing output, a
    /// second or late `result`) belongs to no turn and is counted
    /// (`stray_lines`) and dropped. A `result` naming another message
    /// (`user_message_uuid`, CLI 2.1.332) never ends this turn. Only one
    /// message is outstanding, so an echo of a uuid hotplex never sent (an
    /// agent that makes up its own) is this turn's, and its results may
    /// name that uuid. An agent that never echoes is read as before: every
    /// line is the turn's.
    async fn drive(
        &mut self,
        cmd: &TurnCmd,
        cold: bool,
        started: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Turn, Fail> {
        let ctx = self.base.ctx.clone();
        let opts = &ctx.opts;
        let now = tokio::time::Instant::now();
        // A cold turn's clock starts once the agent answers at all; until
        // then startup_timeout bounds it.
        let mut deadline = if cold {
            now + opts.startup_timeout
        } else {
            now + cmd.timeout
        };
        let mut awaiting_first = cold;
        let cost_before = self.live.as_ref().map_or(0.0, |l| l.cost_seen);
        let mut tracker = TurnTracker::with_cost_base(cost_before)
            .with_deltas(cmd.deltas)
            .with_mode(self.mode.clone());
        let mut sink = TurnSink::new(&ctx);
        // Set once an interrupt was sent: (why, give up at).
        let mut interrupting: Option<(Error, tokio::time::Instant)> = None;
        let mut caller_gone = false;
        // The turn's first line of output (time to first token).
        let mut first_seen = false;
        // The agent echoed this turn's message: its output has begun.
        let mut begun = false;
        // The uuid that echo carried (the agent's own, if it made one up).
        let mut echoed_as: Option<String> = None;
        // While a question or plan waits for a person, the turn's clock
        // stands still (since then); `question_timeout` runs instead.
        let mut paused: Option<tokio::time::Instant> = None;

        let uuid = self.next_message_uuid();
        let msg = protocol::user_message_with_content(
            &cmd.prompt,
            &cmd.images
                .iter()
                .map(|i| (i.media_type.as_str(), i.data.as_str()))
                .collect::<Vec<_>>(),
            &uuid,
        );
        if self.write(&msg, deadline).await.is_err() {
            // A dead pipe shows up as EOF below, with the exit status.
        }
        loop {
            let live = match self.live.as_mut() {
                Some(l) => l,
                None => return Err(Fail::Error(Error::SessionDead("process gone".into()))),
            };
            match (self.held.is_empty(), paused) {
                (false, None) => paused = Some(tokio::time::Instant::now()),
                (true, Some(since)) => {
                    deadline += since.elapsed();
                    paused = None;
                }
                _ => {}
            }
            let question_due = self.held.iter().map(|(_, due)| *due).min();
            let wake = match (&interrupting, question_due) {
                (Some((_, t)), _) => *t,
                (None, Some(due)) => due,
                (None, None) => deadline,
            };
            let woke = tokio::select! {
                biased;
                _ = stop.changed() => Wake::Stop,
                _ = cmd.tx.closed(), if !caller_gone => Wake::CallerGone,
                _ = tokio::time::sleep_until(wake) => Wake::Timer,
                a = self.calls.next(), if !self.calls.is_empty() => Wake::Host(a),
                c = self.controls.recv(), if !self.controls_closed => Wake::Control(c),
                line = live.proc.lines.next() => Wake::Line(line),
            };
            let line = match woke {
                Wake::Line(line) => line,
                Wake::Host(None) => continue,
                Wake::Control(None) => {
                    self.controls_closed = true;
                    continue;
                }
                Wake::Host(Some(a)) => {
                    let mut out = Vec::new();
                    match a.hold {
                        Some(h) if interrupting.is_none() => {
                            out.push(self.hold(*h, cmd.question_timeout, &tracker));
                        }
                        // Interrupted meanwhile: the agent cancels it.
                        Some(h) => {
                            let line =
                                protocol::deny_tool(&h.request_id, "the turn was interrupted");
                            let _ = self.write(&line, wake).await;
                        }
                        None => {
                            let _ = self.write(&a.line, deadline.max(wake)).await;
                        }
                    }
                    if let Some(v) = a.blocked {
                        self.base.state.lock().stats.tools_denied += 1;
                        out.push(tracker.danger_block(v));
                    }
                    if let Some(message) = a.note {
                        out.push(Event::Error { message });
                    }
                    sink.emit(&ctx, cmd, out);
                    continue;
                }
                Wake::Control(Some(ctl)) => {
                    if ctl.control == Control::Interrupt {
                        let running = interrupting.is_none();
                        if running {
                            let e = Error::TurnTimeout("interrupted by the host".into());
                            interrupting =
                                Some((e, tokio::time::Instant::now() + opts.interrupt_grace));
                            self.send_interrupt().await;
                        }
                        let _ = ctl.tx.send(Ok(Value::Bool(running)));
                    } else {
                        self.control(ctl, true).await;
                    }
                    continue;
                }
                Wake::Stop => {
                    let reason = self.base.state.lock().stop_reason();
                    self.kill(reason.map_or(ExitReason::Closed, StopReason::exit_reason))
                        .await;
                    return Err(Fail::Error(agent::stopped_error(reason)));
                }
                Wake::CallerGone => {
                    caller_gone = true;
                    self.cancelled = true;
                    if interrupting.is_none() {
                        let e = Error::TurnTimeout("cancelled by the caller".into());
                        interrupting =
                            Some((e, tokio::time::Instant::now() + opts.interrupt_grace));
                        self.send_interrupt().await;
                    }
                    continue;
                }
                Wake::Timer => {
                    if let Some((e, _)) = interrupting.take() {
                        // No result within the grace period: kill the tree.
                        self.kill(ExitReason::Crashed).await;
                        return Err(Fail::Error(e));
                    }
                    if !self.held.is_empty() {
                        let out = self
                            .questions_expired(cmd.question_timeout, &mut interrupting)
                            .await;
                        sink.emit(&ctx, cmd, out);
                        continue;
                    }
                    if awaiting_first {
                        self.kill(ExitReason::StartFailed).await;
                        return Err(Fail::Error(Error::StartFailed(format!(
                            "no output within startup_timeout ({:?})",
                            opts.startup_timeout
                        ))));
                    }
                    let e = Error::TurnTimeout(format!("no result within {:?}", cmd.timeout));
                    interrupting = Some((e, tokio::time::Instant::now() + opts.interrupt_grace));
                    self.send_interrupt().await;
                    continue;
                }
            };
            let ours = self.output_is_ours(begun);
            let text = match line {
                Ok(Some(RawLine::Text(t))) => t,
                Ok(Some(RawLine::TooLong { bytes, result_like })) => {
                    self.base.bad_line();
                    if result_like && ours {
                        return Err(Fail::Error(Error::TurnFailed {
                            subtype: "result_too_long".into(),
                            message: format!(
                                "the agent's result line of {bytes} bytes exceeds max_line_bytes ({})",
                                opts.max_line_bytes
                            ),
                        }));
                    }
                    continue;
                }
                Ok(None) | Err(_) => {
                    let (msg, confirmed) = self.reap().await;
                    if let Some((e, _)) = interrupting {
                        return Err(Fail::Error(e));
                    }
                    return Err(if confirmed {
                        Fail::Error(Error::SessionDead(msg))
                    } else {
                        Fail::Unconfirmed(msg)
                    });
                }
            };
            self.base.state.lock().last_active = Instant::now();
            if !first_seen {
                first_seen = true;
                let metrics = &self.base.ctx.telemetry.metrics;
                metrics.first_output(cmd.queued_at.elapsed().as_secs_f64());
                if let Some(l) = self.live.as_ref().filter(|_| cold) {
                    metrics.cold_start(l.proc.spawned_at.elapsed().as_secs_f64());
                }
            }
            let parsed = match protocol::parse_line(&text) {
                Ok(p) => p,
                Err(e) => {
                    if !text.trim().is_empty() {
                        self.base.bad_line();
                    }
                    if ours && looks_like_result(text.as_bytes()) {
                        // Waiting on would cost the whole turn_timeout: the
                        // turn's end came and cannot be read.
                        return Err(Fail::Error(Error::TurnFailed {
                            subtype: "unparsable_result".into(),
                            message: format!("the agent's result line cannot be read ({e})"),
                        }));
                    }
                    continue;
                }
            };
            // The line's text now lives in `parsed`; free the raw copy.
            drop(text);
            if awaiting_first {
                awaiting_first = false;
                deadline = tokio::time::Instant::now() + cmd.timeout;
                if let Some(l) = self.live.as_mut() {
                    l.proc.permit = None;
                }
            }
            if let Line::Echo { uuid: echoed } = &parsed {
                if let Some(l) = self.live.as_mut() {
                    l.echoes = true;
                }
                // Only one message is ever outstanding: an echo of an
                // earlier one is stray, any other echo (an agent that does
                // not keep the host's uuid) can only be of this one.
                let earlier = echoed
                    .as_ref()
                    .is_some_and(|u| *u != uuid && self.sent.contains(u));
                if earlier {
                    self.base.stray_line();
                } else {
                    begun = true;
                    echoed_as = echoed.clone();
                }
                continue;
            }
            let ours = self.output_is_ours(begun);
            let unconfirmed = !self.live.as_ref().is_some_and(|l| l.confirmed);
            let belongs = match &parsed {
                // The CLI refused the session before starting it (a failed
                // --resume prints such a result, then exits).
                Line::Result(r) if r.is_error && unconfirmed => true,
                Line::Result(r) => {
                    ours && r
                        .user_message_uuid
                        .as_deref()
                        .map_or(true, |u| u == uuid || echoed_as.as_deref() == Some(u))
                }
                // Announces the process, whichever turn it prints in.
                Line::Init { .. } => true,
                _ => ours,
            };
            if !belongs {
                self.stray(parsed, deadline.max(wake)).await;
                continue;
            }
            if let Line::Init {
                session_id: Some(sid),
                ..
            } = &parsed
            {
                // Before the marker is written: it belongs to the new id.
                self.learn_fork(sid);
            }
            let confirms = match &parsed {
                Line::Init { .. } => true,
                Line::Result(r) => !r.is_error,
                _ => false,
            };
            if confirms {
                self.confirm();
            }
            // Text-heavy lines move into their events; the others stay
            // for the handling below.
            let (mut out, parsed) = match parsed {
                l @ (Line::Assistant { .. } | Line::User { .. } | Line::Delta(_)) => {
                    (tracker.push_owned(l), None)
                }
                l => {
                    if matches!(l, Line::Result(_)) {
                        tracker.set_events_dropped(sink.dropped());
                    }
                    let out = tracker.push(&l);
                    if matches!(l, Line::Init { .. } | Line::Status { .. }) {
                        self.mode = tracker.mode().map(str::to_owned);
                    }
                    (out, Some(l))
                }
            };
            let parsed = match parsed {
                Some(Line::ControlRequest {
                    request_id,
                    request,
                }) => {
                    let scene = Scene {
                        in_turn: true,
                        interrupting: interrupting.is_some(),
                        workdir: &cmd.workdir,
                        host_timeout: cmd.timeout,
                    };
                    let routed = host::route(
                        &ctx,
                        &mut self.calls,
                        &self.base.id,
                        &request_id,
                        request,
                        &scene,
                    );
                    match routed {
                        Routed::Now(a) => {
                            if let Some(v) = a.blocked {
                                self.base.state.lock().stats.tools_denied += 1;
                                out.push(tracker.danger_block(v));
                            }
                            let _ = self.write(&a.line, deadline.max(wake)).await;
                        }
                        Routed::Hold(h) => {
                            out.push(self.hold(*h, cmd.question_timeout, &tracker));
                        }
                        Routed::Later => {}
                    }
                    None
                }
                Some(Line::ControlResponse {
                    request_id,
                    subtype,
                    error,
                    response,
                }) => {
                    self.answered(&request_id, &subtype, error, response);
                    None
                }
                Some(Line::ControlCancel { request_id }) => {
                    self.cancelled_request(&request_id);
                    None
                }
                other => other,
            };
            sink.emit(&ctx, cmd, out);
            if let Some(Line::Result(r)) = parsed {
                if let Some((e, _)) = interrupting {
                    return Err(Fail::Error(e));
                }
                if r.is_error && unconfirmed {
                    let (msg, _) = self.reap().await;
                    let why = r.errors.first().cloned().or_else(|| r.result.clone());
                    return Err(Fail::Unconfirmed(match why {
                        Some(w) => format!("{w} ({msg})"),
                        None => msg,
                    }));
                }
                if r.is_error {
                    return Err(Fail::Error(Error::TurnFailed {
                        subtype: r.subtype,
                        message: r.result.unwrap_or_else(|| "no result text".into()),
                    }));
                }
                let mut stats = tracker.stats().clone();
                stats.first_delta_ms = sink.first_delta.map(|d| d.as_secs_f64() * 1e3);
                if let Some(l) = self.live.as_mut() {
                    l.cost_seen = r.total_cost_usd;
                }
                let pid = self.live.as_ref().map(|l| l.proc.pid()).unwrap_or(0);
                let text = r.result.unwrap_or_else(|| sink.answers());
                return Ok(Turn {
                    text,
                    cold_start: cold,
                    resumed: false,
                    duration: started.elapsed(),
                    queued: Duration::ZERO,
                    stats,
                    events: sink.events,
                    pid,
                    provider_session_id: self.psid.clone(),
                    structured_output: r.structured_output,
                    message_uuid: uuid,
                });
            }
        }
    }

    /// A forked process reported its conversation's new id: the session
    /// continues under it from now on.
    fn learn_fork(&mut self, sid: &str) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        if !live.forking || sid == self.psid {
            return;
        }
        live.forking = false;
        self.psid = sid.to_owned();
        self.fork_from = None;
        self.fork_at = None;
        self.base.ctx.markers.bind(
            &self.base.ctx.opts.namespace,
            &self.base.id,
            &self.psid,
            None,
            None,
        );
        self.base.state.lock().psid.clone_from(&self.psid);
    }

    /// A fresh `uuid` for the next user message: unique per session and
    /// engine run (the provider session id, this process and a counter,
    /// hashed into the UUID format the CLI expects).
    fn next_message_uuid(&mut self) -> String {
        self.msg_seq += 1;
        let nonce = format!(
            "{}:{}:{}:{:?}",
            self.psid,
            std::process::id(),
            self.msg_seq,
            std::time::SystemTime::now()
        );
        let uuid = super::marker::uuid_from_name(4, nonce.as_bytes());
        if self.sent.len() == 8 {
            self.sent.pop_front();
        }
        self.sent.push_back(uuid.clone());
        uuid
    }

    /// Whether output read now belongs to the running turn: once its echo
    /// came (`begun`), or always from an agent that never echoes.
    fn output_is_ours(&self, begun: bool) -> bool {
        begun || !self.live.as_ref().is_some_and(|l| l.echoes)
    }

    /// Drops output that belongs to no turn, counting what a turn would
    /// have used; a control request still gets its answer (a refusal), so
    /// the agent never waits on it.
    ///
    /// The control protocol is not tied to turns: answers to live controls
    /// are taken, cancels honoured, and the host's MCP servers served
    /// whenever the agent asks; tool permissions and hooks outside a turn
    /// are refused (see [`host::route`]).
    async fn stray(&mut self, line: Line, deadline: tokio::time::Instant) {
        match line {
            Line::ControlRequest {
                request_id,
                request,
            } => {
                if !matches!(request, CliRequest::McpMessage { .. }) {
                    self.base.stray_line();
                }
                let workdir = match self.live.as_ref() {
                    Some(l) => l.proc.workdir.clone(),
                    None => return,
                };
                let scene = Scene {
                    in_turn: false,
                    interrupting: false,
                    workdir: &workdir,
                    host_timeout: self.base.ctx.opts.turn_timeout,
                };
                let ctx = self.base.ctx.clone();
                let routed = host::route(
                    &ctx,
                    &mut self.calls,
                    &self.base.id,
                    &request_id,
                    request,
                    &scene,
                );
                match routed {
                    Routed::Now(a) => {
                        let _ = self.write(&a.line, deadline).await;
                    }
                    // Unreachable (requests outside a turn are refused
                    // first); a question nobody can show is declined.
                    Routed::Hold(h) => {
                        let line = protocol::deny_tool(&h.request_id, "no turn is running");
                        let _ = self.write(&line, deadline).await;
                    }
                    Routed::Later => {}
                }
            }
            Line::ControlResponse {
                request_id,
                subtype,
                error,
                response,
            } => self.answered(&request_id, &subtype, error, response),
            Line::ControlCancel { request_id } => self.cancelled_request(&request_id),
            // Neither output of a turn nor a risk: not counted. A mode
            // change between turns is reported by the next turn's init.
            Line::Other { .. } | Line::Init { .. } | Line::Status { .. } => {}
            _ => self.base.stray_line(),
        }
    }

    /// A line printed while no turn runs.
    async fn between_turns(&mut self, line: RawLine) {
        match line {
            RawLine::TooLong { .. } => self.base.bad_line(),
            RawLine::Text(t) => match protocol::parse_line(&t) {
                Ok(l) if self.warming.is_some() => self.warming_line(l).await,
                Ok(l) => {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
                    self.stray(l, deadline).await;
                }
                Err(_) if !t.trim().is_empty() => self.base.bad_line(),
                Err(_) => {}
            },
        }
    }

    fn confirm(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        if live.confirmed {
            return;
        }
        live.confirmed = true;
        // A marker that cannot be written only costs the next resume.
        let _ = self
            .base
            .ctx
            .markers
            .put(&self.psid, &self.base.id, &live.proc.workdir);
    }

    /// The agent gave up on its request `request_id` (an interrupt cancels
    /// a pending permission, question or plan): its answer is not sent.
    fn cancelled_request(&mut self, request_id: &str) {
        self.calls.cancel(request_id);
        self.held.retain(|(h, _)| h.request_id != request_id);
    }

    async fn send_interrupt(&mut self) {
        // The agent cancels what it waits on (FACTS w): questions held for
        // the host are gone from now on, and a late answer is refused.
        self.held.clear();
        self.req_seq += 1;
        let msg = protocol::interrupt(&format!("hotplex-interrupt-{}", self.req_seq));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        let _ = self.write(&msg, deadline).await;
    }

    /// Writes one line to the agent, bounded by `deadline`.
    async fn write(&mut self, text: &str, deadline: tokio::time::Instant) -> Result<()> {
        let Some(live) = self.live.as_mut() else {
            return Err(Error::SessionDead("process gone".into()));
        };
        live.proc.write(text, deadline).await
    }

    /// The agent's stdout ended: collect its status and stderr, confirm
    /// the tree is gone (see [`Base::reap`]). Returns a description and
    /// whether the session had been confirmed.
    async fn reap(&mut self) -> (String, bool) {
        let Some(live) = self.live.take() else {
            return ("process gone".into(), true);
        };
        let msg = self.base.reap(live.proc, live.confirmed).await;
        self.mark_dead();
        (msg, live.confirmed)
    }

    /// Kills the process (kill ladder, tree confirmed empty); `reason` is
    /// how its end is counted.
    async fn kill(&mut self, reason: ExitReason) {
        if let Some(live) = self.live.take() {
            self.base.kill(live.proc, reason).await;
        }
        self.mark_dead();
    }

    fn mark_dead(&mut self) {
        // Live controls in flight will not be answered by this process.
        for (_, ctl) in self.awaiting.drain() {
            let _ = ctl.tx.send(Err(Error::SessionDead(
                "the agent process ended before answering".into(),
            )));
        }
        self.base.process_gone();
    }
}

/// The agent's configuration directory, if hotplex knows it: the session's
/// `config_dir`, else `CLAUDE_CONFIG_DIR` of the session's or the engine's
/// `env`, else `$HOME/.claude` of the agent's environment.
pub(crate) fn config_dir(o: &EngineOptions, s: &SessionOptions) -> Option<PathBuf> {
    if let Some(d) = &s.config_dir {
        return Some(d.clone());
    }
    let env = |k: &str| {
        s.env.get(k).cloned().or_else(|| {
            o.env
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
    };
    if let Some(d) = env("CLAUDE_CONFIG_DIR") {
        return Some(PathBuf::from(d));
    }
    env("HOME")
        .or_else(|| std::env::var("HOME").ok())
        .map(|h| PathBuf::from(h).join(".claude"))
}

/// How a process takes up its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start<'a> {
    /// A new conversation under the session's provider id.
    Fresh,
    /// The session's own conversation.
    Resume,
    /// A copy of conversation `from` (up to and including message `at`,
    /// if given) under a new id (`--fork-session`).
    Fork(&'a str, Option<&'a str>),
}

/// The CLI's arguments for one process: the engine's options, overridden
/// by the session's (see [`SessionOptions`]).
fn claude_args(o: &EngineOptions, s: &SessionOptions, psid: &str, start: Start<'_>) -> Vec<String> {
    let mut a: Vec<String> = [
        "--print",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-prompt-tool",
        "stdio",
        // Turn correlation (see `Actor::drive`).
        "--replay-user-messages",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if o.partial_messages {
        a.push("--include-partial-messages".into());
    }
    if o.placement.is_some() {
        // The transcript is saved after each turn: with the mirror on, the
        // CLI has written the turn's entries before it prints the result
        // (2.1.197 writes them 37-88 ms after it otherwise; FACTS.md
        // section aa). The `transcript_mirror` lines it prints are not
        // turn output (`Line::Other`).
        a.push("--session-mirror".into());
    }
    match start {
        Start::Fresh => a.extend(["--session-id".into(), psid.into()]),
        Start::Resume => a.extend(["--resume".into(), psid.into()]),
        Start::Fork(from, at) => {
            a.extend(["--resume".into(), from.into(), "--fork-session".into()]);
            // `=`: a message id is never taken for another flag.
            if let Some(at) = at {
                a.push(format!("--resume-session-at={at}"));
            }
        }
    }
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.into());
            a.push(v);
        }
    };
    let either = |s: &Option<String>, o: &Option<String>| s.clone().or_else(|| o.clone());
    opt(
        "--permission-mode",
        either(&s.permission_mode, &o.permission_mode),
    );
    opt("--system-prompt", s.system_prompt.clone());
    opt(
        "--append-system-prompt",
        either(&s.append_system_prompt, &o.system_prompt),
    );
    opt("--model", either(&s.model, &o.model));
    let list = |s: &Option<Vec<String>>, o: &Vec<String>| {
        let l = s.as_ref().unwrap_or(o);
        (!l.is_empty()).then(|| l.join(","))
    };
    opt("--allowed-tools", list(&s.allowed_tools, &o.allowed_tools));
    opt(
        "--disallowed-tools",
        list(&s.disallowed_tools, &o.disallowed_tools),
    );
    opt("--max-turns", s.max_turns.map(|n| n.to_string()));
    opt("--max-budget-usd", s.max_budget_usd.map(|b| b.to_string()));
    opt(
        "--json-schema",
        s.json_schema.as_ref().map(Value::to_string),
    );
    opt("--fallback-model", s.fallback_model.clone());
    opt("--effort", s.effort.clone());
    opt("--agents", s.agents.as_ref().map(Value::to_string));
    opt(
        "--settings",
        s.settings.as_ref().map(|v| match v {
            Value::String(path) => path.clone(),
            other => other.to_string(),
        }),
    );
    opt("--mcp-config", mcp_config(o, s));
    for d in &s.add_dirs {
        opt("--add-dir", Some(d.to_string_lossy().into_owned()));
    }
    for d in &s.plugin_dirs {
        opt("--plugin-dir", Some(d.to_string_lossy().into_owned()));
    }
    // `=` binds an empty list to the flag (two tokens would not).
    if let Some(sources) = &s.setting_sources {
        a.push(format!("--setting-sources={}", sources.join(",")));
    }
    // The session's arguments replace the engine's.
    a.extend(s.args.as_ref().unwrap_or(&o.args).iter().cloned());
    a
}

/// The `--mcp-config` value: the session's external servers plus the
/// engine's host-tool servers (`{"type": "sdk"}`: the CLI reaches them
/// through `mcp_message` requests); `None` when there are none.
fn mcp_config(o: &EngineOptions, s: &SessionOptions) -> Option<String> {
    let mut servers = s
        .mcp_config
        .as_ref()
        .and_then(|c| c.get("mcpServers"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for t in &o.tools {
        servers.insert(
            t.name.clone(),
            serde_json::json!({"type": "sdk", "name": t.name}),
        );
    }
    (!servers.is_empty()).then(|| serde_json::json!({"mcpServers": servers}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_args_resume_or_fresh_with_options() {
        let o = EngineOptions {
            permission_mode: Some("default".into()),
            allowed_tools: vec!["Bash".into(), "Read".into()],
            args: vec!["--x".into()],
            ..EngineOptions::default()
        };
        let none = SessionOptions::default();
        let fresh = claude_args(&o, &none, "p", Start::Fresh);
        assert!(fresh.windows(2).any(|w| w == ["--session-id", "p"]));
        assert!(fresh
            .windows(2)
            .any(|w| w == ["--permission-prompt-tool", "stdio"]));
        assert!(fresh
            .windows(2)
            .any(|w| w == ["--allowed-tools", "Bash,Read"]));
        assert_eq!(fresh.last().map(String::as_str), Some("--x"));
        let resumed = claude_args(&o, &none, "p", Start::Resume);
        assert!(resumed.windows(2).any(|w| w == ["--resume", "p"]));
        let at = claude_args(&o, &none, "p", Start::Fork("q", Some("m1")));
        assert!(at.iter().any(|a| a == "--resume-session-at=m1"));
        let forked = claude_args(&o, &none, "p", Start::Fork("q", None));
        assert!(forked
            .windows(3)
            .any(|w| w == ["--resume", "q", "--fork-session"]));
        assert!(!forked.iter().any(|a| a == "p"));
    }

    #[test]
    fn session_options_override_the_engines_and_become_flags() {
        let o = EngineOptions {
            model: Some("engine-model".into()),
            allowed_tools: vec!["Bash".into()],
            tools: vec![crate::contract::ToolServer {
                name: "host".into(),
                version: None,
                tools: vec![],
            }],
            ..EngineOptions::default()
        };
        let s = SessionOptions {
            model: Some("session-model".into()),
            allowed_tools: Some(vec![]),
            max_turns: Some(3),
            json_schema: Some(serde_json::json!({"type": "object"})),
            setting_sources: Some(vec![]),
            add_dirs: vec!["/a".into(), "/b".into()],
            mcp_config: Some(serde_json::json!({"mcpServers": {"ext": {"command": "x"}}})),
            ..SessionOptions::default()
        };
        let a = claude_args(&o, &s, "p", Start::Fresh);
        let pair = |f: &str, v: &str| a.windows(2).any(|w| w == [f, v]);
        assert!(pair("--model", "session-model"));
        assert!(
            !a.iter().any(|x| x == "--allowed-tools"),
            "an empty list clears the engine's"
        );
        assert!(pair("--max-turns", "3"));
        assert!(pair("--json-schema", r#"{"type":"object"}"#));
        assert!(pair("--add-dir", "/a") && pair("--add-dir", "/b"));
        assert!(a.iter().any(|x| x == "--setting-sources="));
        let i = a.iter().position(|x| x == "--mcp-config").unwrap();
        let cfg: Value = serde_json::from_str(&a[i + 1]).unwrap();
        assert_eq!(cfg["mcpServers"]["host"]["type"], "sdk");
        assert_eq!(cfg["mcpServers"]["ext"]["command"], "x");
    }
}
