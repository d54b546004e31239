//! What every session actor shares, whatever protocol its agent speaks:
//! the running agent process and how it starts, is written to, read, killed
//! and reaped ([`AgentProc`]); the session's bookkeeping of processes and
//! turns ([`Base`]: exit reporting, turn outcomes, statistics, the state
//! the pool reads, stray and bad lines); a turn's event stream with its
//! budget ([`TurnSink`]); and the end of an actor (queued work failed, the
//! process confirmed gone).
//!
//! The protocol actors (`session` for Claude Code, `acp` for the Agent
//! Client Protocol) own what differs: the command line, what is written to
//! start a conversation and a turn, how lines become events, how a turn
//! ends and is interrupted, how a conversation is resumed, and which agent
//! requests they answer (see [`super::provider`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::timeout_at;

use super::budget::{Admit, EventBudget};
use super::lines::{LineReader, RawLine};
use super::session::{ControlCmd, Job, SessionCtx, TurnCmd, TurnMsg};
use super::state::{State, StopReason};
use crate::contract::telemetry::{ExitReason, KillStage, LifecycleRecord, StartMode, TurnOutcome};
use crate::contract::{Event, SessionOptions, SessionStatus, Turn};
use crate::proc::{ChildStdin, ChildStdout, Contained, KillReport, LadderStage, SpawnOptions};
use crate::{Error, Result};

/// How long an agent whose stdout ended may take to exit before it is
/// taken to have closed its output while running (then it is killed).
const EXIT_AFTER_EOF: Duration = Duration::from_millis(250);
/// Bytes of the agent's stderr kept for error messages.
const STDERR_TAIL: usize = 8 << 10;

/// A session's running agent process: contained, its stdin to write to,
/// its stdout read line by line, its stderr kept (the tail) and logged.
pub(crate) struct AgentProc {
    pub child: Contained,
    pub stdin: ChildStdin,
    pub lines: LineReader<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// Ends at stderr's EOF, i.e. once nothing in the tree holds it.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    /// Where it runs.
    pub workdir: PathBuf,
    /// Held until the process has done its start work: bounds concurrent
    /// cold starts.
    pub permit: Option<OwnedSemaphorePermit>,
    /// When the process was spawned (for the cold-start histogram).
    pub spawned_at: Instant,
}

impl AgentProc {
    /// The agent's pid.
    pub(crate) fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Writes one line to the agent, bounded by `deadline` (a stuck agent
    /// that stops reading must not stall the session forever).
    pub(crate) async fn write(&mut self, text: &str, deadline: tokio::time::Instant) -> Result<()> {
        match timeout_at(deadline, self.stdin.write_all(text.as_bytes())).await {
            Ok(r) => r.map_err(|e| Error::SessionDead(format!("writing to the agent: {e}"))),
            Err(_) => Err(Error::TurnTimeout(
                "the agent stopped reading its input".into(),
            )),
        }
    }
}

/// What a protocol actor starts: the program and its arguments, where, with
/// which extra environment, how the start is counted, and the cold-start
/// slot it holds.
pub(crate) struct Launch<'a> {
    pub program: &'a Path,
    pub args: Vec<String>,
    pub workdir: &'a Path,
    /// Set after the engine's and the session's `env` (e.g. the agent's
    /// configuration directory).
    pub env: Vec<(String, std::ffi::OsString)>,
    /// How the start is counted; `None` when the protocol learns it only
    /// from the running agent (the caller then calls [`Base::started`]).
    pub mode: Option<StartMode>,
    pub permit: OwnedSemaphorePermit,
}

/// The session as both protocol actors and the pool see it: its id, the
/// engine's context, the state the pool reads.
pub(crate) struct Base {
    pub id: String,
    pub ctx: Arc<SessionCtx>,
    pub state: Arc<Mutex<State>>,
}

impl Base {
    /// The program a session runs: the session's `binary` (resolved when
    /// its turn was submitted), else the engine's.
    pub(crate) fn program<'a>(&'a self, session: &'a SessionOptions) -> &'a Path {
        session.binary.as_deref().unwrap_or(&self.ctx.opts.binary)
    }

    /// Takes a cold-start slot, waiting at most until `deadline`.
    pub(crate) async fn start_slot(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit> {
        timeout_at(deadline, self.ctx.starts.clone().acquire_owned())
            .await
            .map_err(|_| Error::StartFailed("timed out waiting for a cold-start slot".into()))?
            .map_err(|_| Error::Closed)
    }

    /// The spawn options every agent and every process hotplex runs for a
    /// session share: containment, the kill ladder, the environment (the
    /// engine's allow-list and `env`, then the session's `env`), the state
    /// directory and the engine's limits.
    pub(crate) fn spawn_options(
        &self,
        program: &Path,
        workdir: &Path,
        session: &SessionOptions,
    ) -> SpawnOptions {
        let opts = &self.ctx.opts;
        let mut spawn = SpawnOptions::new(program)
            .cwd(workdir)
            .grace(opts.kill_grace.0, opts.kill_grace.1)
            .containment(opts.containment);
        for name in &opts.env_allow {
            spawn = spawn.allow_env(name.clone());
        }
        for (k, v) in &opts.env {
            spawn = spawn.env(k, v);
        }
        for (k, v) in &session.env {
            spawn = spawn.env(k, v);
        }
        if let Some(dir) = &opts.state_dir {
            spawn = spawn.state_dir(dir.join("proc"));
        }
        opts.limits.apply(spawn)
    }

    /// Starts the agent process (contained), counts and reports the start,
    /// and starts the reader that keeps its stderr's tail.
    pub(crate) async fn spawn(
        &self,
        launch: Launch<'_>,
        session: &SessionOptions,
    ) -> Result<AgentProc> {
        let opts = &self.ctx.opts;
        let mut spawn = self
            .spawn_options(launch.program, launch.workdir, session)
            .args(launch.args);
        for (k, v) in launch.env {
            spawn = spawn.env(k, v);
        }
        let mut child = Contained::spawn(spawn)
            .await
            .map_err(|e| Error::StartFailed(e.to_string()))?;
        let spawned_at = Instant::now();
        let pid = child.pid();
        if let Some(mode) = launch.mode {
            self.started(pid, mode);
        }
        let (Some(stdin), Some(stdout)) = (child.take_stdin(), child.take_stdout()) else {
            return Err(Error::StartFailed("agent pipes missing".into()));
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_reader = None;
        if let Some(mut err) = child.take_stderr() {
            let tail = stderr.clone();
            let mut log = StderrLog::new(self.id.clone());
            stderr_reader = Some(tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    log.push(&text);
                    let mut t = tail.lock();
                    t.push_str(&text);
                    if t.len() > STDERR_TAIL {
                        let mut cut = t.len() - STDERR_TAIL;
                        while !t.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.drain(..cut);
                    }
                }
            }));
        }
        {
            let mut st = self.state.lock();
            st.pid = Some(pid);
            st.workdir = Some(launch.workdir.to_owned());
        }
        Ok(AgentProc {
            child,
            stdin,
            lines: LineReader::new(
                BufReader::with_capacity(64 << 10, stdout),
                opts.max_line_bytes,
            ),
            stderr,
            stderr_reader,
            workdir: launch.workdir.to_owned(),
            permit: Some(launch.permit),
            spawned_at,
        })
    }

    /// Counts and reports the start of agent `pid` (a cold start; a resume
    /// when it takes up an earlier conversation).
    pub(crate) fn started(&self, pid: i32, mode: StartMode) {
        let tel = &self.ctx.telemetry;
        tel.metrics.session_started(mode);
        tel.record(|| LifecycleRecord::SessionStarted {
            session_id: self.id.clone(),
            pid,
            mode,
        });
        tracing::info!(pid, mode = mode.as_str(), "agent started");
        let mut st = self.state.lock();
        st.stats.cold_starts += 1;
        if mode == StartMode::Resume {
            st.stats.resumes += 1;
        }
    }

    /// The agent's stdout ended: collects its status and stderr, confirms
    /// the tree is gone, and returns a description; `confirmed` says whether
    /// the agent had taken up its conversation (how the end is counted).
    ///
    /// An agent closes its stdout when it exits, so its status follows at
    /// once; one that is still running [`EXIT_AFTER_EOF`] later closed its
    /// output but kept running, and no turn can be answered by it any
    /// more: its tree is killed at once (no grace periods), and the
    /// description says so. The caller marks the session's process gone.
    pub(crate) async fn reap(&self, mut proc: AgentProc, confirmed: bool) -> String {
        let pid = proc.pid();
        let status = tokio::time::timeout(EXIT_AFTER_EOF, proc.child.wait()).await;
        let report = if matches!(status, Ok(Ok(_))) {
            proc.child.kill().await.ok()
        } else {
            proc.child.kill_now().await.ok()
        };
        let reason = if confirmed {
            ExitReason::Crashed
        } else {
            ExitReason::StartFailed
        };
        self.exited(pid, report.as_ref(), reason);
        // The tree is gone, so stderr is at EOF: wait for its last bytes.
        if let Some(reader) = proc.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        // Under load the status may come late; a report that needed no
        // signal means the agent had exited by itself after all.
        let exit_status = match status {
            Ok(Ok(s)) => Some(s),
            _ => report
                .as_ref()
                .filter(|r| matches!(r.stage, LadderStage::None))
                .and_then(|r| r.exit_status),
        };
        let mut msg = match exit_status {
            Some(s) => format!("agent process {pid} exited ({s})"),
            None => {
                let stage = match report.as_ref().map(|r| r.stage) {
                    Some(LadderStage::Kill) => "SIGKILL",
                    Some(LadderStage::Term) => "SIGTERM",
                    _ => "the kill ladder",
                };
                format!(
                    "agent process {pid} closed its output but kept running; killed by hotplex ({stage})"
                )
            }
        };
        let tail = proc.stderr.lock().trim().to_owned();
        if !tail.is_empty() {
            let start = tail.len().saturating_sub(600);
            let start = (start..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(0);
            msg.push_str(": ");
            msg.push_str(&tail[start..]);
        }
        msg
    }

    /// Kills the process (kill ladder, tree confirmed empty); `reason` is
    /// how its end is counted. The caller marks the session's process gone.
    pub(crate) async fn kill(&self, proc: AgentProc, reason: ExitReason) {
        // Close our end of stdin first: the ladder's first step is EOF,
        // and an agent that never sees it would sit out `grace_eof`.
        let AgentProc {
            mut child, stdin, ..
        } = proc;
        drop(stdin);
        let report = child.kill().await.ok();
        self.exited(child.pid(), report.as_ref(), reason);
    }

    /// Counts and reports the end of process `pid`.
    pub(crate) fn exited(&self, pid: i32, report: Option<&KillReport>, reason: ExitReason) {
        let tel = &self.ctx.telemetry;
        tel.metrics.session_exited(reason);
        let stage = match report.map(|r| r.stage) {
            Some(LadderStage::Eof) => Some(KillStage::Eof),
            Some(LadderStage::Term) => Some(KillStage::Term),
            Some(LadderStage::Kill) => Some(KillStage::Kill),
            _ => None,
        };
        if let (Some(stage), Some(r)) = (stage, report) {
            // `killed` counts SIGKILL rounds; a process is counted once.
            let processes = u64::from(r.terminated.max(r.killed));
            tel.metrics.killed(stage, processes);
            tel.record(|| LifecycleRecord::ProcessSignalled {
                session_id: self.id.clone(),
                pid,
                stage,
                processes,
            });
        }
        tel.record(|| LifecycleRecord::SessionExited {
            session_id: self.id.clone(),
            reason,
        });
        let stage_name = stage.map_or("none", KillStage::as_str);
        tracing::info!(
            pid,
            reason = reason.as_str(),
            stage = stage_name,
            "agent exited"
        );
    }

    /// The session has no process any more (the pool sees it dead unless a
    /// turn is running, and its spare refiller may have a slot).
    pub(crate) fn process_gone(&self) {
        let mut st = self.state.lock();
        st.pid = None;
        if st.status != SessionStatus::Busy {
            st.status = SessionStatus::Dead;
        }
        drop(st);
        self.ctx.pool_changed.notify_one();
    }

    /// How a turn's result is counted (`cancelled`: its caller went away).
    pub(crate) fn outcome(&self, result: &Result<Turn>, cancelled: bool) -> TurnOutcome {
        match result {
            Ok(_) => TurnOutcome::Ok,
            Err(Error::TurnTimeout(_)) if cancelled => TurnOutcome::Cancelled,
            Err(Error::TurnTimeout(_) | Error::QuestionTimeout(_)) => TurnOutcome::Timeout,
            Err(Error::Closed) => TurnOutcome::Interrupted,
            Err(Error::SessionDead(_)) if self.state.lock().stop_reason().is_some() => {
                TurnOutcome::Interrupted
            }
            Err(Error::SessionDead(_)) => TurnOutcome::Dead,
            Err(_) => TurnOutcome::Failed,
        }
    }

    /// Counts and reports a turn's end: `times` (duration, queueing) for
    /// turns that started, the turn itself when it succeeded.
    pub(crate) fn turn_ended(
        &self,
        outcome: TurnOutcome,
        times: Option<(Duration, Duration)>,
        turn: Option<&Turn>,
    ) {
        let tel = &self.ctx.telemetry;
        let secs = times.map(|(d, q)| (d.as_secs_f64(), q.as_secs_f64()));
        tel.metrics.turn_ended(outcome, secs);
        if let Some(t) = turn {
            let tools = t.stats.tools.iter().map(|c| c.name.as_str());
            tel.metrics
                .turn_work(&t.stats.usage, t.stats.cost_usd, tools);
        }
        let (duration_ms, queued_ms) = secs.map_or((0.0, 0.0), |(d, q)| (d * 1e3, q * 1e3));
        tel.record(|| LifecycleRecord::TurnFinished {
            session_id: self.id.clone(),
            outcome,
            duration_ms,
            queued_ms,
            input_tokens: turn.map_or(0, |t| t.stats.usage.input_tokens),
            output_tokens: turn.map_or(0, |t| t.stats.usage.output_tokens),
            cost_usd: turn.map_or(0.0, |t| t.stats.cost_usd),
        });
        tracing::info!(outcome = outcome.as_str(), duration_ms, "turn ended");
    }

    /// A turn begins: the session is busy. Returns when it began.
    pub(crate) fn begin_turn(&self) -> Instant {
        let started = Instant::now();
        let mut st = self.state.lock();
        st.status = SessionStatus::Busy;
        st.last_active = started;
        started
    }

    /// A turn that began at `started` ended with `result`: counts it, puts
    /// its totals into the session's, leaves the session ready (with the
    /// process `pid`) or dead, and hands the result to the caller.
    pub(crate) fn finish_turn(
        &self,
        cmd: &TurnCmd,
        started: Instant,
        result: Result<Turn>,
        pid: Option<i32>,
        cancelled: bool,
    ) {
        let times = (started.elapsed(), started.duration_since(cmd.queued_at));
        let outcome = self.outcome(&result, cancelled);
        self.turn_ended(outcome, Some(times), result.as_ref().ok());
        let mut st = self.state.lock();
        st.dequeue();
        st.last_active = Instant::now();
        st.status = if pid.is_some() {
            SessionStatus::Ready
        } else {
            SessionStatus::Dead
        };
        st.pid = pid;
        let stats = &mut st.stats;
        stats.busy_ms += started.elapsed().as_millis() as u64;
        match &result {
            Ok(t) => stats.add_turn(&t.stats),
            Err(_) => stats.failed_turns += 1,
        }
        drop(st);
        let _ = cmd.tx.send(TurnMsg::Done(result));
    }

    /// A line that could not be used (too long, not JSON).
    pub(crate) fn bad_line(&self) {
        self.state.lock().stats.bad_lines += 1;
        self.ctx.telemetry.metrics.bad_line();
    }

    /// A line that belongs to no turn.
    pub(crate) fn stray_line(&self) {
        self.state.lock().stats.stray_lines += 1;
        self.ctx.telemetry.metrics.stray_line();
    }

    /// The actor stops for `reason` (its process is gone): fails what is
    /// still queued (turns, with the stop's error) and waiting (controls),
    /// and finishes resets so their callers return.
    pub(crate) fn fail_queued(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Job>,
        controls: &mut mpsc::UnboundedReceiver<ControlCmd>,
        reason: Option<StopReason>,
    ) {
        rx.close();
        while let Ok(job) = rx.try_recv() {
            match job {
                Job::Turn(cmd) => {
                    self.turn_ended(TurnOutcome::Interrupted, None, None);
                    let _ = cmd.tx.send(TurnMsg::Done(Err(stopped_error(reason))));
                }
                Job::Reset { done, .. } => {
                    let _ = done.send(());
                }
                Job::Warm { .. } | Job::Claim { .. } => {}
            }
        }
        controls.close();
        while let Ok(ctl) = controls.try_recv() {
            let _ = ctl.tx.send(Err(stopped_error(reason)));
        }
    }
}

/// A turn's events on their way to the caller, within the turn's budget,
/// and the events kept for the finished [`Turn`].
pub(crate) struct TurnSink {
    budget: EventBudget,
    /// Time from submit to the first text delta (time to first token).
    pub first_delta: Option<Duration>,
    pub events: Vec<Event>,
}

impl TurnSink {
    pub(crate) fn new(ctx: &SessionCtx) -> TurnSink {
        TurnSink {
            budget: EventBudget::new(ctx.opts.max_turn_events, ctx.opts.max_turn_event_bytes),
            first_delta: None,
            events: Vec::new(),
        }
    }

    /// Events the budget dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.budget.dropped()
    }

    /// Sends a turn's new events to its caller and keeps them, within the
    /// turn's event budget.
    pub(crate) fn emit(&mut self, ctx: &SessionCtx, cmd: &TurnCmd, out: Vec<Event>) {
        for e in out {
            let e = match self.budget.admit(&e) {
                Admit::Keep => e,
                Admit::Drop => continue,
                Admit::Note(note) => note,
            };
            if self.first_delta.is_none()
                && matches!(e, Event::AnswerDelta { .. } | Event::ThinkingDelta { .. })
            {
                let t = cmd.queued_at.elapsed();
                self.first_delta = Some(t);
                ctx.telemetry.metrics.first_delta(t.as_secs_f64());
            }
            let _ = cmd.tx.send(TurnMsg::Event(e.clone()));
            self.events.push(e);
        }
    }

    /// The turn's answer texts joined, for a turn whose end carries none.
    pub(crate) fn answers(&self) -> String {
        let texts: Vec<&str> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Answer { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }
}

/// The agent's stderr as debug log lines (target `hotplex::agent`), at most
/// [`StderrLog::PER_SECOND`] lines a second per session: a chatty agent
/// must not flood the host's logs (the rest is counted and reported).
struct StderrLog {
    session_id: String,
    /// A line not finished yet (bounded).
    partial: String,
    window: Instant,
    in_window: u32,
    suppressed: u64,
}

impl StderrLog {
    const PER_SECOND: u32 = 20;
    const MAX_LINE: usize = 4096;

    fn new(session_id: String) -> StderrLog {
        StderrLog {
            session_id,
            partial: String::new(),
            window: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }

    fn push(&mut self, text: &str) {
        if !tracing::enabled!(target: "hotplex::agent", tracing::Level::DEBUG) {
            return;
        }
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end());
        }
        if self.partial.len() > Self::MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    fn line(&mut self, line: &str) {
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::debug!(target: "hotplex::agent", session_id = %self.session_id,
                    "{} stderr lines suppressed", self.suppressed);
            }
            self.window = Instant::now();
            self.in_window = 0;
            self.suppressed = 0;
        }
        if self.in_window >= Self::PER_SECOND {
            self.suppressed += 1;
            return;
        }
        self.in_window += 1;
        tracing::debug!(target: "hotplex::agent", session_id = %self.session_id, "{line}");
    }
}

/// Sleeps until `at`; pending forever when there is none.
pub(crate) async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Reads one line while no turn runs: `None` at EOF (the agent died).
/// Pending forever when there is no process.
pub(crate) async fn idle_read(proc: Option<&mut AgentProc>) -> Option<RawLine> {
    let Some(p) = proc else {
        return std::future::pending().await;
    };
    p.lines.next().await.ok().flatten()
}

/// The error of a turn that a stop for `reason` ended (or never let run).
pub(crate) fn stopped_error(reason: Option<StopReason>) -> Error {
    match reason {
        Some(StopReason::Closed) => Error::Closed,
        Some(StopReason::Evicted) => Error::SessionDead("the session was evicted".into()),
        Some(StopReason::Fenced) => Error::Fenced(
            "another host took the session's lease over: this host's process was stopped".into(),
        ),
        _ => Error::SessionDead("the session was stopped".into()),
    }
}
