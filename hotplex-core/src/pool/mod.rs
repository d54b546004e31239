//! The session pool: an [`Engine`] keeps one hot agent process per session
//! id and runs turns on it.
//!
//! ```text
//!   Engine::submit(id, prompt)
//!     ├─ validate (session id, prompt size, workdir under allowed roots)
//!     ├─ WAF check_prompt (unless waf_approved)       -> Error::DangerBlocked
//!     ├─ get-or-create the session (one actor per id; capacity / LRU eviction)
//!     └─ enqueue the turn on the session's FIFO queue -> TurnStream
//!   session actor (crate::session): one turn at a time; start/resume,
//!     write, read to `result`, answer tool requests with the WAF,
//!     interrupt + kill ladder on timeout or cancel
//!   reaper task: evicts sessions idle for `idle_timeout` (never busy ones)
//! ```
//!
//! Everything runs on the tokio runtime the engine was created in; nothing
//! here blocks a runtime thread. The engine's lock is a plain mutex held for
//! map operations only, never across an await or a system call.
//!
//! ```no_run
//! use hotplex_core::{Engine, EngineOptions, TurnOptions};
//!
//! # async fn demo() -> hotplex_core::Result<()> {
//! let engine = Engine::new(EngineOptions {
//!     state_dir: Some("/var/lib/myapp/hotplex".into()),
//!     env: vec![("ANTHROPIC_API_KEY".into(), "sk-...".into())],
//!     ..EngineOptions::default()
//! })?;
//! let turn_opts = TurnOptions {
//!     workdir: Some("/srv/repos/app".into()),
//!     ..TurnOptions::default()
//! };
//! let turn = engine
//!     .execute("chat-42", "fix the failing test", &turn_opts, |e| println!("{}", e.name()))
//!     .await?;
//! println!("{} (cold start: {})", turn.text, turn.cold_start);
//! engine.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Capacity: at most `max_sessions` sessions exist. Creating one more evicts
//! the least recently used session with no queued or running turn; when every
//! session is busy the call fails with [`Error::CapacityExceeded`]. At most
//! `max_concurrent_starts` processes start at once (a burst of new sessions
//! waits for a slot, bounded by `startup_timeout`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::proc::{ContainmentPreference, DEFAULT_ENV_ALLOW};
use crate::protocol::events::Event;
use crate::session::marker::{provider_session_id, MarkerStore};
use crate::session::{
    Actor, Ctx, SessionInfo, SessionStats, SessionStatus, State, StopReason, Turn, TurnCmd, TurnMsg,
};
use crate::waf::{Detector, Verdict};
use crate::{Error, Result};

/// A tool call the WAF let through, for the host's [`PermissionHandler`].
#[derive(Debug)]
pub struct ToolRequest<'a> {
    /// The host's session id.
    pub session_id: &'a str,
    /// Tool name (`Bash`, `Write`, ...).
    pub tool_name: &'a str,
    /// Tool input, as the agent sent it.
    pub input: &'a Value,
    /// The WAF's verdict (not blocking, possibly moderate or low).
    pub verdict: &'a Verdict,
}

/// The host's answer to a [`ToolRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Let the tool run.
    Allow,
    /// Refuse; the model sees the message as the tool's error.
    Deny(String),
}

/// Decides tool calls the WAF did not block. Runs on a runtime thread:
/// keep it quick. A panic counts as a denial.
pub type PermissionHandler = Arc<dyn Fn(&ToolRequest<'_>) -> Permission + Send + Sync>;

/// How an [`Engine`] runs its agents. `Default` gives the documented values.
#[derive(Clone)]
pub struct EngineOptions {
    /// The agent program (looked up in `PATH`). Default `claude`.
    pub binary: PathBuf,
    /// Extra arguments appended to the CLI's.
    pub args: Vec<String>,
    /// Environment variables set for the agent (override inherited ones).
    pub env: Vec<(String, String)>,
    /// Host variables the agent inherits (`*` suffix = prefix match).
    /// Default: [`DEFAULT_ENV_ALLOW`]; secrets are passed through `env`.
    pub env_allow: Vec<String>,
    /// Most sessions at once. Default 64.
    pub max_sessions: usize,
    /// Most processes starting at once. Default 4.
    pub max_concurrent_starts: usize,
    /// A session with no turn and no output for this long is stopped (its
    /// conversation resumes on the next turn). Default 30 min.
    pub idle_timeout: Duration,
    /// Default limit of one turn, after the agent first answered. Default 5 min.
    pub turn_timeout: Duration,
    /// Limit for a new process to print its first line. Default 30 s.
    pub startup_timeout: Duration,
    /// How long an interrupted turn may take to end before the process is
    /// killed. Default 5 s.
    pub interrupt_grace: Duration,
    /// The kill ladder's two grace periods (after closing stdin, after
    /// SIGTERM). Default 2 s and 3 s.
    pub kill_grace: (Duration, Duration),
    /// Resume markers and containment records live here; `None` keeps
    /// markers in memory (resume works within this engine only).
    pub state_dir: Option<PathBuf>,
    /// Salt of the deterministic provider session id. Default `default`.
    pub namespace: String,
    /// `--permission-mode`.
    pub permission_mode: Option<String>,
    /// `--allowed-tools` (comma-joined).
    pub allowed_tools: Vec<String>,
    /// `--disallowed-tools` (comma-joined).
    pub disallowed_tools: Vec<String>,
    /// `--append-system-prompt`.
    pub system_prompt: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// Workdirs must lie under one of these (after resolving symlinks).
    /// Empty: any directory.
    pub allowed_roots: Vec<PathBuf>,
    /// Workdir of turns that name none. Default: the host's cwd.
    pub default_workdir: Option<PathBuf>,
    /// Largest prompt accepted, in bytes. Default 1 MiB.
    pub max_prompt_bytes: usize,
    /// The WAF; `None` uses the built-in rules.
    pub detector: Option<Arc<Detector>>,
    /// Decides tool calls the WAF allowed; `None` allows them.
    pub permission_handler: Option<PermissionHandler>,
    /// How agents are contained.
    pub containment: ContainmentPreference,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            binary: PathBuf::from("claude"),
            args: Vec::new(),
            env: Vec::new(),
            env_allow: DEFAULT_ENV_ALLOW.iter().map(|s| s.to_string()).collect(),
            max_sessions: 64,
            max_concurrent_starts: 4,
            idle_timeout: Duration::from_secs(1800),
            turn_timeout: Duration::from_secs(300),
            startup_timeout: Duration::from_secs(30),
            interrupt_grace: Duration::from_secs(5),
            kill_grace: (Duration::from_secs(2), Duration::from_secs(3)),
            state_dir: None,
            namespace: "default".into(),
            permission_mode: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            system_prompt: None,
            model: None,
            allowed_roots: Vec::new(),
            default_workdir: None,
            max_prompt_bytes: 1 << 20,
            detector: None,
            permission_handler: None,
            containment: ContainmentPreference::default(),
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("binary", &self.binary)
            .field("args", &self.args)
            .field("max_sessions", &self.max_sessions)
            .field("idle_timeout", &self.idle_timeout)
            .field("turn_timeout", &self.turn_timeout)
            .field("startup_timeout", &self.startup_timeout)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// Per-turn options.
#[derive(Debug, Clone, Default)]
pub struct TurnOptions {
    /// The agent's working directory (created if missing). A session whose
    /// process runs elsewhere is restarted here.
    pub workdir: Option<PathBuf>,
    /// Overrides the engine's `turn_timeout`.
    pub timeout: Option<Duration>,
    /// Skip the prompt check: a higher layer already approved this prompt
    /// (the seed's `WAFApproved`). Tool calls are still screened.
    pub waf_approved: bool,
}

/// The events of a submitted turn, then its outcome. Dropping it before the
/// end cancels the turn (the agent is interrupted).
#[derive(Debug)]
pub struct TurnStream {
    rx: mpsc::UnboundedReceiver<TurnMsg>,
    outcome: Option<Result<Turn>>,
}

impl TurnStream {
    /// The next event, or `None` once the turn is over.
    pub async fn next_event(&mut self) -> Option<Event> {
        if self.outcome.is_some() {
            return None;
        }
        match self.rx.recv().await {
            Some(TurnMsg::Event(e)) => Some(e),
            Some(TurnMsg::Done(r)) => {
                self.outcome = Some(r);
                None
            }
            None => {
                self.outcome = Some(Err(Error::Closed));
                None
            }
        }
    }

    /// Waits for the end of the turn (dropping events not yet read).
    pub async fn finish(mut self) -> Result<Turn> {
        while self.next_event().await.is_some() {}
        self.outcome.take().unwrap_or(Err(Error::Closed))
    }
}

struct Entry {
    tx: mpsc::UnboundedSender<TurnCmd>,
    state: Arc<Mutex<State>>,
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
    psid: String,
}

impl Entry {
    fn signal(&self, reason: StopReason) {
        self.state.lock().stop.get_or_insert(reason);
        let _ = self.stop.send(true);
    }
}

#[derive(Default)]
struct Sessions {
    map: HashMap<String, Entry>,
    /// Stopped sessions whose process may still be dying, by id.
    retiring: HashMap<String, watch::Receiver<bool>>,
}

impl Sessions {
    /// Removes session `id` and tells its actor to stop; its process may
    /// still be dying, so a new session with the same id waits for `done`.
    /// Returns that signal, or `None` if there was no such session.
    fn retire(&mut self, id: &str, reason: StopReason) -> Option<watch::Receiver<bool>> {
        let e = self.map.remove(id)?;
        e.signal(reason);
        self.retiring.insert(id.to_owned(), e.done.clone());
        Some(e.done)
    }
}

struct Inner {
    ctx: Arc<Ctx>,
    sessions: Mutex<Sessions>,
    closed: AtomicBool,
    allowed_roots: Vec<PathBuf>,
    default_workdir: PathBuf,
    /// The runtime sessions run on (`submit` may be called from any thread).
    handle: tokio::runtime::Handle,
}

/// The session pool; see the module docs. Cheap to clone (shared).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sessions", &self.inner.sessions.lock().map.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Engine {
    /// Creates an engine. Must be called inside a tokio runtime (it starts
    /// the idle reaper there); sessions run on that runtime.
    pub fn new(mut opts: EngineOptions) -> Result<Engine> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.to_owned()));
        if opts.max_sessions == 0 {
            return bad("max_sessions must be at least 1");
        }
        if opts.max_concurrent_starts == 0 {
            return bad("max_concurrent_starts must be at least 1");
        }
        for (name, d) in [
            ("idle_timeout", opts.idle_timeout),
            ("turn_timeout", opts.turn_timeout),
            ("startup_timeout", opts.startup_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidConfig(format!("{name} must be positive")));
            }
        }
        if opts.binary.as_os_str().is_empty() {
            return bad("binary must not be empty");
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidConfig("Engine::new must be called inside a tokio runtime".into())
        })?;
        let mut allowed_roots = Vec::new();
        for r in &opts.allowed_roots {
            allowed_roots.push(
                std::fs::canonicalize(r).map_err(|e| {
                    Error::InvalidConfig(format!("allowed root {}: {e}", r.display()))
                })?,
            );
        }
        let default_workdir = match &opts.default_workdir {
            Some(d) => d.clone(),
            None => std::env::current_dir()
                .map_err(|e| Error::InvalidConfig(format!("current directory: {e}")))?,
        };
        // A relative path with a slash means "from here", but the agent
        // starts in its workdir: pin it to the host's cwd now.
        if opts.binary.is_relative() && opts.binary.components().count() > 1 {
            if let Ok(cwd) = std::env::current_dir() {
                opts.binary = cwd.join(&opts.binary);
            }
        }
        let markers = MarkerStore::new(opts.state_dir.as_deref())
            .map_err(|e| Error::InvalidConfig(format!("state_dir: {e}")))?;
        let detector = opts
            .detector
            .take()
            .unwrap_or_else(|| Arc::new(Detector::new()));
        let starts = Arc::new(Semaphore::new(opts.max_concurrent_starts));
        let idle = opts.idle_timeout;
        let inner = Arc::new(Inner {
            ctx: Arc::new(Ctx {
                opts,
                detector,
                markers,
                starts,
            }),
            sessions: Mutex::new(Sessions::default()),
            closed: AtomicBool::new(false),
            allowed_roots,
            default_workdir,
            handle: handle.clone(),
        });
        handle.spawn(reaper(Arc::downgrade(&inner), idle));
        Ok(Engine { inner })
    }

    /// Creates an engine on a runtime of its own: two worker threads named
    /// `hotplex`, for hosts that have no tokio runtime (the Python and C
    /// bindings). Keep the runtime as long as the engine and its streams;
    /// drop it with `shutdown_background` (actors kill their trees on their
    /// own).
    pub fn with_own_runtime(opts: EngineOptions) -> Result<(Engine, tokio::runtime::Runtime)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hotplex")
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("cannot start a runtime: {e}")))?;
        let engine = {
            let _enter = rt.enter();
            Engine::new(opts)?
        };
        Ok((engine, rt))
    }

    /// The WAF this engine screens prompts and tool calls with.
    pub fn detector(&self) -> &Detector {
        &self.inner.ctx.detector
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Queues a turn on session `id` (created on first use) and returns its
    /// event stream. Fails at once, before anything runs, for a closed
    /// engine, invalid input, a prompt the WAF blocks, or a full pool.
    pub fn submit(&self, id: &str, prompt: &str, turn: &TurnOptions) -> Result<TurnStream> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let ctx = &self.inner.ctx;
        validate_id(id)?;
        if prompt.len() > ctx.opts.max_prompt_bytes {
            return Err(Error::InvalidConfig(format!(
                "prompt of {} bytes exceeds max_prompt_bytes ({})",
                prompt.len(),
                ctx.opts.max_prompt_bytes
            )));
        }
        if !turn.waf_approved {
            let v = ctx.detector.check_prompt(prompt);
            if v.blocked {
                return Err(Error::DangerBlocked(Box::new(v)));
            }
        }
        let workdir = self.workdir(turn.workdir.as_deref())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cmd = TurnCmd {
            prompt: prompt.to_owned(),
            workdir,
            timeout: turn.timeout.unwrap_or(ctx.opts.turn_timeout),
            queued_at: Instant::now(),
            tx,
        };
        let mut sessions = self.inner.sessions.lock();
        // Checked again under the lock: close() drains the map under it.
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if !sessions.map.contains_key(id) {
            self.create(&mut sessions, id)?;
        }
        let entry = sessions
            .map
            .get(id)
            .ok_or_else(|| Error::SessionDead("session vanished".into()))?;
        entry.state.lock().pending += 1;
        if entry.tx.send(cmd).is_err() {
            entry.state.lock().pending -= 1;
            return Err(Error::SessionDead("the session is shutting down".into()));
        }
        Ok(TurnStream { rx, outcome: None })
    }

    /// Runs a turn to its end, calling `on_event` for each event in order.
    /// A prompt the WAF blocks is reported as a `danger_block` event too
    /// (as the seed did) before the [`Error::DangerBlocked`] is returned.
    pub async fn execute(
        &self,
        id: &str,
        prompt: &str,
        turn: &TurnOptions,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Turn> {
        let mut stream = match self.submit(id, prompt, turn) {
            Ok(s) => s,
            Err(Error::DangerBlocked(v)) => {
                on_event(&Event::DangerBlock((*v).clone()));
                return Err(Error::DangerBlocked(v));
            }
            Err(e) => return Err(e),
        };
        while let Some(e) = stream.next_event().await {
            on_event(&e);
        }
        stream.finish().await
    }

    /// A snapshot of every session.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let sessions = self.inner.sessions.lock();
        let mut out: Vec<SessionInfo> = sessions
            .map
            .iter()
            .map(|(id, e)| {
                let st = e.state.lock();
                SessionInfo {
                    id: id.clone(),
                    provider_session_id: e.psid.clone(),
                    pid: st.pid,
                    status: st.status,
                    turns: st.stats.turns,
                    pending: st.pending,
                    workdir: st.workdir.clone(),
                    idle_for: st.last_active.elapsed(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Totals of session `id`, if it exists.
    pub fn session_stats(&self, id: &str) -> Option<SessionStats> {
        let sessions = self.inner.sessions.lock();
        sessions.map.get(id).map(|e| e.state.lock().stats.clone())
    }

    /// Stops session `id`: a running turn fails with [`Error::SessionDead`],
    /// queued turns too, and the process tree is killed (returns once it is
    /// confirmed gone). The conversation resumes if the id is used again.
    /// Returns whether the session existed.
    pub async fn stop_session(&self, id: &str) -> bool {
        let done = {
            let mut sessions = self.inner.sessions.lock();
            let Some(done) = sessions.retire(id, StopReason::Stopped) else {
                return false;
            };
            done
        };
        wait_done(done).await;
        true
    }

    /// Closes the engine: every session is stopped (running and queued
    /// turns fail with [`Error::Closed`]) and every process tree confirmed
    /// gone. Idempotent; afterwards every call fails with `Closed`.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let waits: Vec<_> = {
            let mut sessions = self.inner.sessions.lock();
            let entries: Vec<Entry> = sessions.map.drain().map(|(_, e)| e).collect();
            let mut waits: Vec<_> = sessions.retiring.drain().map(|(_, d)| d).collect();
            for e in entries {
                e.signal(StopReason::Closed);
                waits.push(e.done);
            }
            waits
        };
        for d in waits {
            wait_done(d).await;
        }
    }

    fn create(&self, sessions: &mut Sessions, id: &str) -> Result<()> {
        let ctx = &self.inner.ctx;
        if sessions.map.len() >= ctx.opts.max_sessions {
            // Evict the least recently used session with nothing to do.
            let victim = sessions
                .map
                .iter()
                .filter_map(|(k, e)| {
                    let st = e.state.lock();
                    (st.pending == 0).then(|| (st.last_active, k.clone()))
                })
                .min()
                .map(|(_, k)| k);
            let Some(victim) = victim else {
                return Err(Error::CapacityExceeded(format!(
                    "all {} sessions are busy",
                    ctx.opts.max_sessions
                )));
            };
            sessions.retire(&victim, StopReason::Evicted);
        }
        let psid = provider_session_id(&ctx.opts.namespace, id);
        let state = Arc::new(Mutex::new(State::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(false);
        let previous = sessions.retiring.remove(id);
        sessions.retiring.retain(|_, d| !*d.borrow());
        let actor = Actor::new(
            id.to_owned(),
            psid.clone(),
            ctx.clone(),
            state.clone(),
            previous,
        );
        self.inner.handle.spawn(actor.run(rx, stop_rx, done_tx));
        sessions.map.insert(
            id.to_owned(),
            Entry {
                tx,
                state,
                stop: stop_tx,
                done: done_rx,
                psid,
            },
        );
        Ok(())
    }

    /// Resolves a turn's workdir: created if missing (0700), symlinks
    /// resolved, and checked against the allowed roots.
    fn workdir(&self, wanted: Option<&Path>) -> Result<PathBuf> {
        let dir = wanted.unwrap_or(&self.inner.default_workdir);
        if dir.as_os_str().is_empty() {
            return Err(Error::InvalidConfig("workdir must not be empty".into()));
        }
        let dir = if dir.is_relative() {
            self.inner.default_workdir.join(dir)
        } else {
            dir.to_owned()
        };
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::InvalidConfig(format!("workdir {}: {e}", dir.display())))?;
        }
        let real = std::fs::canonicalize(&dir)
            .map_err(|e| Error::InvalidConfig(format!("workdir {}: {e}", dir.display())))?;
        if !real.is_dir() {
            return Err(Error::InvalidConfig(format!(
                "workdir {} is not a directory",
                real.display()
            )));
        }
        let roots = &self.inner.allowed_roots;
        if !roots.is_empty() && !roots.iter().any(|r| real.starts_with(r)) {
            return Err(Error::InvalidConfig(format!(
                "workdir {} is outside the allowed roots",
                real.display()
            )));
        }
        Ok(real)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop every actor (each kills its tree on
        // its own; nothing waits here, Drop must not block).
        for (_, e) in self.sessions.get_mut().map.drain() {
            e.signal(StopReason::Closed);
        }
    }
}

fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 512 || id.contains('\0') {
        return Err(Error::InvalidConfig(
            "session id must be 1 to 512 bytes without NUL".into(),
        ));
    }
    Ok(())
}

async fn wait_done(mut done: watch::Receiver<bool>) {
    let _ = done.wait_for(|d| *d).await;
}

/// Stops sessions idle for `idle` (no queued or running turn, no output).
async fn reaper(inner: Weak<Inner>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(30));
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let mut sessions = inner.sessions.lock();
        let idle_ids: Vec<String> = sessions
            .map
            .iter()
            .filter(|(_, e)| {
                let st = e.state.lock();
                st.pending == 0
                    && st.status != SessionStatus::Busy
                    && st.last_active.elapsed() >= idle
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in idle_ids {
            sessions.retire(&id, StopReason::Evicted);
        }
    }
}
