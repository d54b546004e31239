//! The session pool: an [`Engine`] keeps one hot agent process per session
//! id and runs turns on it.
//!
//! Files: this one is the pool (get-or-create, capacity, eviction, close);
//! `session` is one session's actor (process, turns, interrupts); `state`
//! the part of a session both read, with the one owner of its pending count
//! and stop flag; `lines` and `marker` the actor's line reader and resume
//! markers.
//!
//! ```text
//!   Engine::submit(id, prompt)
//!     ├─ validate (session id, prompt size, workdir under allowed roots)
//!     ├─ WAF check_prompt (unless waf_approved)       -> Error::DangerBlocked
//!     ├─ get-or-create the session (one actor per id; capacity / LRU eviction)
//!     └─ enqueue the turn on the session's FIFO queue -> TurnStream
//!   session actor (engine::session): one turn at a time; start/resume,
//!     write, read to `result`, answer tool requests with the WAF,
//!     interrupt + kill ladder on timeout or cancel
//!   reaper task: evicts sessions idle for `idle_timeout` (never busy ones)
//!   refiller task: keeps the spare processes of `prewarm` started
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
//!
//! Spares (`EngineOptions::prewarm`, [`Engine::prewarm`]; see
//! [`crate::contract::prewarm`]): a spare is a session actor started without
//! a session, by the same code as a session's process (containment, limits,
//! hooks and tools alike), with a fresh provider session id, in its
//! profile's workdir. A turn that creates a session for a new conversation
//! (no marker, no binding: nothing to resume or fork) whose workdir and
//! session options are a profile's takes a ready spare instead of creating
//! an actor: the spare's actor becomes the session's, records the binding
//! and answers the turn on its running process. Spares occupy session slots;
//! creating a session stops a spare before it evicts a session. The
//! refiller starts missing spares only into free slots and only on a free
//! cold-start slot (`try_acquire`: a spare never waits in line before a
//! session's start), and waits longer after each spare that died young.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::contract::telemetry::{LifecycleRecord, TurnOutcome, WafSource};
use crate::contract::{
    EngineOptions, Event, PrewarmProfile, SessionInfo, SessionOptions, SessionStats, SessionStatus,
    Turn, TurnOptions,
};
use crate::telemetry::metrics::LiveView;
use crate::telemetry::Telemetry;
use crate::waf::Detector;
use crate::{Error, Result};

use marker::{fresh_provider_session_id, MarkerStore};
use provider::{ActorParts, Provider};
use session::{Control, ControlCmd, Job, Reply, SessionCtx, TurnCmd, TurnMsg};
use state::{State, StopReason};

mod acp;
mod agent;
mod ask;
mod budget;
mod host;
mod lines;
mod marker;
mod placed;
mod provider;
mod session;
mod state;

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

    /// A stream that is over before it began: it yields a `danger_block`
    /// event for a blocked prompt (as the seed reported it), then ends
    /// with `err`.
    fn failed(err: Error) -> TurnStream {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Error::DangerBlocked(v) = &err {
            let verdict = (**v).clone();
            let _ = tx.send(TurnMsg::Event(Event::DangerBlock { verdict }));
        }
        let _ = tx.send(TurnMsg::Done(Err(err)));
        TurnStream { rx, outcome: None }
    }

    /// Waits for the end of the turn (dropping events not yet read).
    pub async fn finish(mut self) -> Result<Turn> {
        while self.next_event().await.is_some() {}
        self.outcome.take().unwrap_or(Err(Error::Closed))
    }
}

struct Entry {
    tx: mpsc::UnboundedSender<Job>,
    /// Live controls (answered between turns and during them).
    controls: mpsc::UnboundedSender<ControlCmd>,
    state: Arc<Mutex<State>>,
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
    /// The workdir of the latest turn submitted: where a turn that names
    /// none runs (the session's conversation lives there).
    workdir: Option<PathBuf>,
    /// The protocol its agent speaks (fixed while it is in the pool).
    provider: Provider,
}

impl Entry {
    fn signal(&self, reason: StopReason) {
        self.state.lock().request_stop(reason);
        let _ = self.stop.send(true);
    }
}

/// A spare: an actor whose process is started (or starting) for no
/// session yet.
struct Spare {
    entry: Entry,
    /// Its name in records and in `retiring` (`spare-<n>`).
    name: String,
    /// The key of the profile it was started for.
    profile: u64,
    created: Instant,
}

/// A prewarm profile, its workdir resolved.
struct Profile {
    key: u64,
    workdir: PathBuf,
    session: SessionOptions,
    spares: usize,
    /// Spares of this profile that died young, in a row.
    failures: u32,
    /// No new spare of this profile before then (after a young death).
    not_before: Option<Instant>,
}

/// How long after a claim the claimed spare's replacement may start (see
/// [`Engine::claim`]).
const REFILL_AFTER_CLAIM: Duration = Duration::from_secs(1);

/// A spare that lived this long before dying is not counted as a failure.
const SPARE_HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// The wait before replacing a spare after `failures` young deaths in a
/// row: 0.5 s, doubling, at most 30 s.
fn spare_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(6);
    (Duration::from_millis(500) * (1u32 << doublings)).min(Duration::from_secs(30))
}

/// A spare process, as [`Engine::spares`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpareInfo {
    /// The agent's pid; `None` before its process is spawned.
    pub pid: Option<i32>,
    /// The workdir of the sessions it serves (resolved).
    pub workdir: PathBuf,
    /// It has done its start work; otherwise it is still starting.
    pub ready: bool,
}

#[derive(Default)]
struct Sessions {
    map: HashMap<String, Entry>,
    /// Stopped sessions and spares whose process may still be dying, by id
    /// (a spare's by its name).
    retiring: HashMap<String, watch::Receiver<bool>>,
    spares: Vec<Spare>,
    profiles: Vec<Profile>,
    /// The last profile key and spare number handed out.
    profile_seq: u64,
    spare_seq: u64,
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

    /// Removes spare `i` and tells its actor to stop, like
    /// [`retire`](Self::retire).
    fn retire_spare(&mut self, i: usize, reason: StopReason) -> watch::Receiver<bool> {
        let s = self.spares.remove(i);
        s.entry.signal(reason);
        self.retiring.insert(s.name, s.entry.done.clone());
        s.entry.done
    }

    /// Slots taken: sessions, spares, and stopped ones still dying.
    fn occupied(&mut self) -> usize {
        self.retiring.retain(|_, d| !*d.borrow());
        self.map.len() + self.spares.len() + self.retiring.len()
    }
}

struct Inner {
    ctx: Arc<SessionCtx>,
    /// The engine's own metrics registry (prefix `hotplex`).
    registry: prometheus_client::registry::Registry,
    sessions: Mutex<Sessions>,
    closed: AtomicBool,
    /// `drain` was called: no new session is taken.
    draining: AtomicBool,
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
    /// Fails with [`Error::InvalidConfig`] for a bad option, including an
    /// agent binary that cannot be found (the error names the path tried).
    pub fn new(mut opts: EngineOptions) -> Result<Engine> {
        opts.validate()?;
        if !opts.hooks.is_empty() && opts.hook_handler.is_none() {
            return Err(Error::InvalidConfig(
                "hooks: registered without a hook handler to call them".into(),
            ));
        }
        if !opts.tools.is_empty() && opts.tool_handler.is_none() {
            return Err(Error::InvalidConfig(
                "tools: defined without a tool handler to call them".into(),
            ));
        }
        // Found now, not at the first turn: a typo must fail here. The agent
        // starts in its workdir, so the path is pinned to an absolute one.
        opts.binary = opts.resolve_binary()?;
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
        let placed = match &opts.placement {
            Some(p) => Some(Arc::new(placed::Placed::new(p)?)),
            None => None,
        };
        let markers = MarkerStore::new(opts.state_dir.as_deref())
            .map_err(|e| Error::InvalidConfig(format!("state_dir: {e}")))?;
        let detector = opts
            .detector
            .take()
            .unwrap_or_else(|| Arc::new(Detector::new()));
        // Each session holds a few descriptors: lift the soft open-files
        // limit to the hard one (once per process; `proc::raise_nofile_limit`).
        crate::proc::raise_nofile_limit();
        let starts = Arc::new(Semaphore::new(opts.max_concurrent_starts));
        let pool_changed = Arc::new(tokio::sync::Notify::new());
        let profiles = std::mem::take(&mut opts.prewarm);
        let idle = opts.idle_timeout;
        let containment = match opts.containment {
            crate::proc::ContainmentPreference::Auto => crate::proc::detect_mode().as_str(),
            _ => crate::proc::ContainmentMode::Subreaper.as_str(),
        };
        let telemetry = Arc::new(Telemetry::new(
            opts.observer.take(),
            opts.observer_drops.take(),
            containment,
        ));
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let mut registry = prometheus_client::registry::Registry::with_prefix("hotplex");
            telemetry
                .metrics
                .register(&mut registry, Arc::new(Live(weak.clone())));
            Inner {
                ctx: Arc::new(SessionCtx {
                    opts,
                    allowed_roots,
                    detector,
                    markers,
                    starts,
                    telemetry,
                    pool_changed: pool_changed.clone(),
                    warm_up: AtomicBool::new(true),
                    placed: placed.clone(),
                }),
                registry,
                sessions: Mutex::new(Sessions::default()),
                closed: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                default_workdir,
                handle: handle.clone(),
            }
        });
        let engine = Engine { inner };
        for p in profiles {
            engine.prewarm(p)?;
        }
        handle.spawn(reaper(Arc::downgrade(&engine.inner), idle));
        handle.spawn(refiller(Arc::downgrade(&engine.inner), pool_changed));
        if let Some(p) = placed {
            handle.spawn(renewer(Arc::downgrade(&engine.inner), p));
        }
        Ok(engine)
    }

    /// Creates an engine on a runtime of its own: two worker threads named
    /// `hotplex`, for hosts that have no tokio runtime (the Python and C
    /// bindings). Its threads block SIGPIPE. Keep the runtime as long as the engine and its streams;
    /// drop it with `shutdown_background` (actors kill their trees on their
    /// own).
    pub fn with_own_runtime(opts: EngineOptions) -> Result<(Engine, tokio::runtime::Runtime)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hotplex")
            .enable_all()
            // A write to an agent that just exited is EPIPE, never a
            // process-killing SIGPIPE in a host that keeps its default.
            .on_thread_start(crate::proc::block_sigpipe_on_this_thread)
            .build()
            .map_err(|e| Error::Io(format!("cannot start a runtime: {e}")))?;
        let engine = {
            let _enter = rt.enter();
            Engine::new(opts)?
        };
        Ok((engine, rt))
    }

    /// The engine's metrics as OpenMetrics text (what a Prometheus scrape
    /// of `/metrics` returns; the host serves it where it likes).
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// The engine's metrics in the Prometheus text format (0.0.4), for a
    /// `/metrics` whose scraper does not ask for OpenMetrics (its `Accept`
    /// header lacks `application/openmetrics-text`) and for tools that read
    /// only this format (`promtool check metrics`). Counter families are
    /// named with `_total` here.
    pub fn metrics_text_prometheus(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry);
        out
    }

    /// The engine's metrics as JSON (see
    /// [`crate::telemetry::metrics::snapshot_from_text`]).
    pub fn metrics_snapshot(&self) -> serde_json::Value {
        crate::telemetry::metrics::snapshot_from_text(&self.metrics_text())
    }

    /// Registers this engine's metric families into the host's own
    /// registry, under the prefix `hotplex` (a sub-registry), so they appear
    /// in the host's existing `/metrics`. They share their values with the
    /// engine's own; register each engine into its own registry (or a
    /// sub-registry with a label) to tell several apart.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let sub = registry.sub_registry_with_prefix("hotplex");
        self.inner
            .ctx
            .telemetry
            .metrics
            .register(sub, Arc::new(Live(Arc::downgrade(&self.inner))));
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
        turn.validate()?;
        if !turn.waf_approved {
            self.screen_prompt(id, prompt)?;
            if let Some(i) = &turn.instructions {
                self.screen_prompt(id, i)?;
            }
        }
        let text = match &turn.instructions {
            Some(i) if !i.is_empty() => crate::contract::session::with_instructions(i, prompt),
            _ => prompt.to_owned(),
        };
        // Workdirs are resolved outside the lock (that touches the file
        // system): the turn's own; else the session's latest, read under the
        // lock; else, for a session not in the pool, where its conversation
        // lives (its resume marker) or the default. The last is computed
        // only when needed, and again should the session leave the pool
        // between the look and the lock.
        // The session's own program is found now, like the engine's: a
        // typo fails here, not at the start.
        let session = match &turn.session {
            Some(s) => Some(self.resolved(s)?),
            None => None,
        };
        let wanted = match &turn.workdir {
            Some(w) => Some(self.workdir(w)?),
            None => None,
        };
        let mut fallback = None;
        if self.inner.draining.load(Ordering::Acquire) && !self.in_pool(id) {
            return Err(Error::CapacityExceeded(
                "the engine is draining: it takes no new session".into(),
            ));
        }
        if let Some(p) = &self.inner.ctx.placed {
            if !p.holds(id) {
                fallback = self.take_session(p, id, wanted.as_deref(), session.as_ref())?;
            }
        }
        // Whether the session would begin a new conversation (may take a
        // spare): read from the marker store outside the lock, and only
        // while spares are kept and the session is not in the pool.
        let mut new_conversation = None;
        let (tx, rx) = mpsc::unbounded_channel();
        loop {
            if wanted.is_none() && fallback.is_none() && !self.has_workdir(id) {
                fallback = Some(self.fallback_workdir(id)?);
            }
            if new_conversation.is_none() && self.may_claim(id) {
                new_conversation = Some(self.is_new_conversation(id));
            }
            let mut sessions = self.inner.sessions.lock();
            // Checked again under the lock: close() drains the map under it.
            if self.is_closed() {
                return Err(Error::Closed);
            }
            // The session's provider decides what the turn may ask for.
            let running = sessions.map.get(id).map(|e| e.provider);
            let provider = provider::for_turn(ctx.opts.provider, running, session.as_ref(), id)?;
            provider::check_turn(provider, turn)?;
            let deltas = match turn.partial_messages {
                None => ctx.opts.partial_messages,
                // ACP agents always stream their messages in chunks.
                Some(true) if !ctx.opts.partial_messages && provider != Provider::Acp => {
                    return Err(Error::InvalidConfig(
                        "partial_messages: this engine's agents print no deltas (build the engine with partial_messages)".into(),
                    ))
                }
                Some(on) => on,
            };
            if running.is_none() {
                let claimed = match (new_conversation, wanted.as_ref().or(fallback.as_ref())) {
                    (Some(true), Some(dir)) if provider == Provider::ClaudeCode => {
                        let options = session.clone().unwrap_or_default();
                        self.claim(&mut sessions, id, dir, &options)
                    }
                    _ => false,
                };
                if !claimed {
                    self.create(&mut sessions, id, provider)?;
                }
            }
            let entry = sessions
                .map
                .get_mut(id)
                .ok_or_else(|| Error::SessionDead("session vanished".into()))?;
            let Some(workdir) = wanted
                .clone()
                .or_else(|| entry.workdir.clone())
                .or_else(|| fallback.clone())
            else {
                // Evicted after the look above; a new entry was made.
                continue;
            };
            entry.workdir = Some(workdir.clone());
            let cmd = TurnCmd {
                prompt: text.clone(),
                images: turn.images.clone(),
                session: session.clone(),
                workdir,
                timeout: turn.timeout.unwrap_or(ctx.opts.turn_timeout),
                question_timeout: turn.question_timeout.unwrap_or(ctx.opts.question_timeout),
                queued_at: Instant::now(),
                deltas,
                tx,
            };
            entry.state.lock().enqueue();
            if entry.tx.send(Job::Turn(Box::new(cmd))).is_err() {
                entry.state.lock().dequeue();
                return Err(Error::SessionDead("the session is shutting down".into()));
            }
            return Ok(TurnStream { rx, outcome: None });
        }
    }

    /// Takes session `id` for this engine under placement: stops a local
    /// copy whose lease was lost, takes the lease (else
    /// [`Error::OwnedElsewhere`]), and restores the conversation another
    /// host saved, in `wanted` or the session's usual workdir (returned,
    /// for the turn to use when it names none).
    fn take_session(
        &self,
        p: &placed::Placed,
        id: &str,
        wanted: Option<&Path>,
        session: Option<&SessionOptions>,
    ) -> Result<Option<PathBuf>> {
        let ctx = &self.inner.ctx;
        // A session still in the pool whose lease went elsewhere: its
        // process must not run another turn.
        let _ = self.inner.sessions.lock().retire(id, StopReason::Fenced);
        p.take(id)?;
        let workdir = match wanted {
            Some(w) => w.to_owned(),
            None => self.fallback_workdir(id)?,
        };
        let psid = ctx.markers.current(&ctx.opts.namespace, id).psid;
        let options = session.cloned().unwrap_or_default();
        if let Some(config) = session::config_dir(&ctx.opts, &options) {
            if let Err(e) = p.restore(id, &psid, &config, &workdir, &ctx.markers) {
                let _ = p.release(id);
                return Err(e);
            }
        }
        Ok(Some(workdir))
    }

    /// Session options with their `binary` resolved (made absolute, looked
    /// up in the agent's `PATH`), as the engine's is when it is built.
    fn resolved(&self, s: &SessionOptions) -> Result<SessionOptions> {
        let Some(b) = &s.binary else {
            return Ok(s.clone());
        };
        let mut env = self.inner.ctx.opts.env.clone();
        env.extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let program = crate::contract::options::resolve_program(b, &env, "session.binary")?;
        Ok(SessionOptions {
            binary: Some(program),
            ..s.clone()
        })
    }

    /// Whether a new session `id` could take a spare: spares are kept and
    /// `id` is not in the pool.
    fn may_claim(&self, id: &str) -> bool {
        let sessions = self.inner.sessions.lock();
        !sessions.profiles.is_empty() && !sessions.map.contains_key(id)
    }

    /// Whether session `id` has no conversation yet: no binding (a reset or
    /// fork names its own), no confirmed conversation under its id.
    fn is_new_conversation(&self, id: &str) -> bool {
        let ctx = &self.inner.ctx;
        let ns = &ctx.opts.namespace;
        let binding = ctx.markers.current(ns, id);
        binding.fork_from.is_none()
            && binding.psid == marker::provider_session_id(ns, id)
            && ctx.markers.get(&binding.psid).is_none()
    }

    /// Hands a spare of the profile for (`workdir`, `options`) to new
    /// session `id`: its actor becomes the session's. Returns whether one
    /// was taken. Only a spare that has done its start work is taken: one
    /// still warming up would mix its warm-up's output into the turn.
    fn claim(
        &self,
        sessions: &mut Sessions,
        id: &str,
        workdir: &Path,
        options: &SessionOptions,
    ) -> bool {
        let metrics = &self.inner.ctx.telemetry.metrics;
        let Some(profile) = sessions
            .profiles
            .iter_mut()
            .find(|p| p.workdir == workdir && p.session == *options)
        else {
            return false;
        };
        let key = profile.key;
        let pick = sessions
            .spares
            .iter()
            .enumerate()
            .filter(|(_, s)| s.profile == key)
            .find(|(_, s)| {
                let st = s.entry.state.lock();
                st.status == SessionStatus::Ready && st.stop_reason().is_none()
            })
            .map(|(i, _)| i);
        let Some(i) = pick else {
            metrics.spare_missed();
            return false;
        };
        let spare = sessions.spares.remove(i);
        if spare
            .entry
            .tx
            .send(Job::Claim { id: id.to_owned() })
            .is_err()
        {
            // Its actor is gone (it is dying): the refiller replaces it.
            spare.entry.signal(StopReason::Stopped);
            sessions.retiring.insert(spare.name, spare.entry.done);
            metrics.spare_missed();
            return false;
        }
        // A claimed spare shows the profile works: no backoff. Its
        // replacement waits a moment: an agent's start takes a core or two
        // for a second or more, and would slow the very turn the spare was
        // kept for (tests/bench/spares.py with 2.1.332 on a 2-core host:
        // 2.8x a hot turn with the replacement starting at once, 1.9x with
        // this delay; FACTS.md, section y).
        profile.failures = 0;
        profile.not_before = Some(Instant::now() + REFILL_AFTER_CLAIM);
        metrics.spare_claimed();
        sessions.map.insert(id.to_owned(), spare.entry);
        self.inner.ctx.pool_changed.notify_one();
        true
    }

    /// Adds, changes or removes a spare-process profile (see
    /// [`PrewarmProfile`]): the engine keeps `profile.spares` spares started
    /// for new conversations in its workdir with its session options. A
    /// profile for the same workdir and options is replaced; `spares: 0`
    /// removes it. Spares over the new count are stopped at once (not
    /// waited for); missing ones are started in the background. Fails with
    /// [`Error::InvalidConfig`] for bad session options or a workdir that is
    /// not allowed, and with [`Error::Closed`] after `close()`.
    pub fn prewarm(&self, profile: PrewarmProfile) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        profile.validate()?;
        let provider = profile
            .session
            .as_ref()
            .and_then(|s| s.provider)
            .unwrap_or(self.inner.ctx.opts.provider);
        if provider == Provider::Acp {
            return Err(Error::InvalidConfig(
                "prewarm: a claude-code option; the acp provider keeps no spare processes".into(),
            ));
        }
        let dir = profile
            .workdir
            .as_deref()
            .unwrap_or(&self.inner.default_workdir);
        let workdir = self
            .workdir(dir)
            .map_err(|e| Error::InvalidConfig(format!("prewarm.workdir: {e}")))?;
        let session = self.resolved(&profile.session_options())?;
        {
            let mut sessions = self.inner.sessions.lock();
            let found = sessions
                .profiles
                .iter()
                .position(|p| p.workdir == workdir && p.session == session);
            let key = match found {
                Some(i) if profile.spares == 0 => sessions.profiles.remove(i).key,
                Some(i) => {
                    let p = &mut sessions.profiles[i];
                    p.spares = profile.spares;
                    p.failures = 0;
                    p.not_before = None;
                    p.key
                }
                None if profile.spares == 0 => return Ok(()),
                None => {
                    sessions.profile_seq += 1;
                    let key = sessions.profile_seq;
                    sessions.profiles.push(Profile {
                        key,
                        workdir,
                        session,
                        spares: profile.spares,
                        failures: 0,
                        not_before: None,
                    });
                    key
                }
            };
            // Stop the spares over the count, those still starting first.
            let mut extra = sessions.spares.iter().filter(|s| s.profile == key).count();
            extra = extra.saturating_sub(profile.spares);
            while extra > 0 {
                let i = sessions
                    .spares
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.profile == key)
                    .min_by_key(|(_, s)| s.entry.state.lock().status == SessionStatus::Ready)
                    .map(|(i, _)| i);
                let Some(i) = i else { break };
                sessions.retire_spare(i, StopReason::Stopped);
                extra -= 1;
            }
        }
        self.inner.ctx.pool_changed.notify_one();
        Ok(())
    }

    /// The spare processes kept now (see [`prewarm`](Self::prewarm)).
    pub fn spares(&self) -> Vec<SpareInfo> {
        let sessions = self.inner.sessions.lock();
        let workdirs: HashMap<u64, &PathBuf> = sessions
            .profiles
            .iter()
            .map(|p| (p.key, &p.workdir))
            .collect();
        sessions
            .spares
            .iter()
            .filter_map(|s| {
                let st = s.entry.state.lock();
                Some(SpareInfo {
                    pid: st.pid,
                    workdir: (*workdirs.get(&s.profile)?).clone(),
                    ready: st.status == SessionStatus::Ready,
                })
            })
            .collect()
    }

    /// Starts the missing spares that may start now: replaces dead ones
    /// (after their profile's backoff), and fills free session slots while
    /// a cold-start slot is free. Returns when to look again if something
    /// is still missing for a reason no notification ends (a backoff, a
    /// busy cold-start slot).
    fn refill(&self) -> Option<Instant> {
        let ctx = &self.inner.ctx;
        let mut sessions = self.inner.sessions.lock();
        if self.is_closed() {
            return None;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < sessions.spares.len() {
            let s = &sessions.spares[i];
            if s.entry.state.lock().status != SessionStatus::Dead {
                i += 1;
                continue;
            }
            let (key, lived) = (s.profile, s.created.elapsed());
            if let Some(p) = sessions.profiles.iter_mut().find(|p| p.key == key) {
                if lived >= SPARE_HEALTHY_AFTER {
                    p.failures = 0;
                    p.not_before = None;
                } else {
                    p.failures += 1;
                    p.not_before = Some(now + spare_backoff(p.failures));
                    tracing::warn!(
                        workdir = %p.workdir.display(),
                        failures = p.failures,
                        "a spare agent died {:?} after it was started; the next one starts in {:?}",
                        lived,
                        spare_backoff(p.failures)
                    );
                }
            }
            sessions.retire_spare(i, StopReason::Stopped);
        }
        let mut again: Option<Instant> = None;
        let mut soon = |t: Instant| again = Some(again.map_or(t, |a| a.min(t)));
        for pi in 0..sessions.profiles.len() {
            let p = &sessions.profiles[pi];
            let key = p.key;
            let have = sessions.spares.iter().filter(|s| s.profile == key).count();
            let mut missing = p.spares.saturating_sub(have);
            if missing == 0 {
                continue;
            }
            if let Some(t) = p.not_before.filter(|t| *t > now) {
                soon(t);
                continue;
            }
            while missing > 0 {
                // A slot freed later is notified (an actor that ends).
                if sessions.occupied() >= ctx.opts.max_sessions {
                    return again;
                }
                let Ok(permit) = ctx.starts.clone().try_acquire_owned() else {
                    soon(now + Duration::from_millis(100));
                    return again;
                };
                self.start_spare(&mut sessions, pi, permit);
                missing -= 1;
            }
        }
        again
    }

    /// Starts one spare of profile `pi` on cold-start slot `permit`.
    fn start_spare(
        &self,
        sessions: &mut Sessions,
        pi: usize,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let ctx = &self.inner.ctx;
        sessions.spare_seq += 1;
        let name = format!("spare-{}", sessions.spare_seq);
        let p = &sessions.profiles[pi];
        let psid = fresh_provider_session_id(&ctx.opts.namespace, &name);
        let mut st = State::new(psid.clone());
        // Not `Dead` (which the refiller takes for a spare that died).
        st.status = SessionStatus::Starting;
        let state = Arc::new(Mutex::new(st));
        let (tx, rx) = mpsc::unbounded_channel();
        let (controls, controls_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(false);
        let _ = tx.send(Job::Warm {
            workdir: p.workdir.clone(),
            session: Box::new(p.session.clone()),
            permit,
        });
        let parts = ActorParts {
            id: name.clone(),
            psid,
            ctx: ctx.clone(),
            state: state.clone(),
            previous: Vec::new(),
            fork: (None, None),
            controls: controls_rx,
            jobs: rx,
            stop: stop_rx,
            done: done_tx,
        };
        let span = tracing::info_span!("session", session_id = %name);
        // Spares are Claude Code processes (`prewarm` refuses acp).
        provider::launch(Provider::ClaudeCode, parts, &self.inner.handle, span);
        let profile = p.key;
        sessions.spares.push(Spare {
            entry: Entry {
                tx,
                controls,
                state,
                stop: stop_tx,
                done: done_rx,
                workdir: None,
                provider: Provider::ClaudeCode,
            },
            name,
            profile,
            created: Instant::now(),
        });
    }

    /// Whether session `id` is in the pool with a workdir of its own.
    fn has_workdir(&self, id: &str) -> bool {
        let sessions = self.inner.sessions.lock();
        sessions.map.get(id).is_some_and(|e| e.workdir.is_some())
    }

    /// Like [`submit`](Self::submit), but never fails: an error is the
    /// stream's outcome, and a prompt the WAF blocks is reported as a
    /// `danger_block` event first (as the seed did). The shape of
    /// [`execute`](Self::execute) and of every binding's `execute`.
    pub fn start(&self, id: &str, prompt: &str, turn: &TurnOptions) -> TurnStream {
        self.submit(id, prompt, turn)
            .unwrap_or_else(TurnStream::failed)
    }

    /// Runs a turn to its end, calling `on_event` for each event in order
    /// (see [`start`](Self::start): a blocked prompt is a `danger_block`
    /// event, then [`Error::DangerBlocked`]).
    pub async fn execute(
        &self,
        id: &str,
        prompt: &str,
        turn: &TurnOptions,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Turn> {
        let mut stream = self.start(id, prompt, turn);
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
                    provider_session_id: st.psid.clone(),
                    pid: st.pid,
                    status: st.status,
                    turns: st.stats.turns,
                    pending: st.pending(),
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

    /// Whether session `id`'s turns belong to this engine: without
    /// placement, always; with it, while this engine holds the session's
    /// current lease.
    pub fn owns(&self, id: &str) -> Result<bool> {
        match &self.inner.ctx.placed {
            None => Ok(true),
            Some(p) => p.owns(id),
        }
    }

    /// Takes session `id` for this engine before its first turn here
    /// (placement only): its lease, and its conversation from the store
    /// (written where the local CLI finds it, in `workdir` or the session's
    /// usual workdir), so that the next turn resumes it. Fails with
    /// [`Error::OwnedElsewhere`] while another host holds it, and with
    /// [`Error::InvalidConfig`] without placement.
    pub fn adopt(&self, id: &str, workdir: Option<&Path>) -> Result<()> {
        validate_id(id)?;
        let Some(p) = &self.inner.ctx.placed else {
            return Err(Error::InvalidConfig(
                "adopt: the engine has no placement option".into(),
            ));
        };
        let wanted = match workdir {
            Some(w) => Some(self.workdir(w)?),
            None => None,
        };
        if !p.holds(id) {
            self.take_session(p, id, wanted.as_deref(), None)?;
        }
        Ok(())
    }

    /// Lets session `id` go (placement only): a running turn is
    /// interrupted, queued ones fail, the process is stopped (its stdin
    /// closed first, so the CLI writes its transcript out), the transcript
    /// is saved to the store and the lease released, so another host can
    /// take the session up at once. Returns whether this engine held it.
    pub async fn release(&self, id: &str) -> Result<bool> {
        let Some(p) = self.inner.ctx.placed.clone() else {
            return Err(Error::InvalidConfig(
                "release: the engine has no placement option".into(),
            ));
        };
        if !p.holds(id) {
            return Ok(false);
        }
        let workdir = self
            .inner
            .sessions
            .lock()
            .map
            .get(id)
            .and_then(|e| e.workdir.clone());
        let _ = self.interrupt(id).await;
        self.stop_session(id).await;
        let ctx = self.inner.ctx.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let binding = ctx.markers.current(&ctx.opts.namespace, &id);
            let workdir = workdir.or_else(|| ctx.markers.get(&binding.psid));
            let config = session::config_dir(&ctx.opts, &SessionOptions::default());
            let saved = match (workdir, config) {
                (Some(w), Some(c)) => p.save(&id, &binding.psid, &c, &w, None),
                _ => Ok(()),
            };
            // Released even when the save failed: a fenced save means the
            // lease is gone already; another error leaves the last turn's
            // save as the conversation.
            p.release(&id)?;
            saved.map(|()| true)
        })
        .await
        .map_err(|e| Error::Io(format!("release task: {e}")))?
    }

    /// Drains the engine for a shutdown or a move (placement only): it
    /// takes no new session from now on ([`Error::CapacityExceeded`]),
    /// lets running and queued turns finish within `deadline`, then
    /// releases every session it holds ([`release`](Self::release)).
    /// Returns the sessions released.
    pub async fn drain(&self, deadline: Duration) -> Result<Vec<String>> {
        let Some(p) = self.inner.ctx.placed.clone() else {
            return Err(Error::InvalidConfig(
                "drain: the engine has no placement option".into(),
            ));
        };
        self.inner.draining.store(true, Ordering::Release);
        // A deadline too far to add is no deadline (never a panic).
        let until = Instant::now().checked_add(deadline);
        while until.map_or(true, |u| Instant::now() < u)
            && self
                .sessions()
                .iter()
                .any(|s| s.pending > 0 || s.status == SessionStatus::Busy)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut released = Vec::new();
        for id in p.held() {
            if self.release(&id).await? {
                released.push(id);
            }
        }
        released.sort();
        Ok(released)
    }

    /// The engine's load, for a balancer.
    pub fn load(&self) -> crate::contract::EngineLoad {
        let sessions = self.sessions();
        let spares = self.spares();
        let pids: Vec<i32> = sessions
            .iter()
            .filter_map(|s| s.pid)
            .chain(spares.iter().filter_map(|s| s.pid))
            .collect();
        let used = sessions.len() + spares.len();
        crate::contract::EngineLoad {
            sessions: sessions.len(),
            busy: sessions
                .iter()
                .filter(|s| s.status == SessionStatus::Busy)
                .count(),
            queued: sessions.iter().map(|s| s.pending).sum(),
            free_slots: self.inner.ctx.opts.max_sessions.saturating_sub(used),
            spares: spares.len(),
            agent_memory_bytes: crate::telemetry::memory::tree_rss_bytes(&pids),
            draining: self.inner.draining.load(Ordering::Acquire),
        }
    }

    /// Whether session `id` is in the pool.
    fn in_pool(&self, id: &str) -> bool {
        self.inner.sessions.lock().map.contains_key(id)
    }

    /// Interrupts session `id`'s running turn (the turn ends with
    /// [`Error::TurnTimeout`] "interrupted by the host"; the process stays
    /// hot). Returns whether a turn was running. Fails with
    /// [`Error::SessionNotFound`] for a session not in the pool.
    pub async fn interrupt(&self, id: &str) -> Result<bool> {
        let v = self.control(id, Control::Interrupt).await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Switches session `id`'s model (`None`: the agent's default) on its
    /// running process, between turns or during one; the session keeps it
    /// across restarts. A session without a process takes it at its next
    /// start.
    pub async fn set_model(&self, id: &str, model: Option<&str>) -> Result<()> {
        self.control(id, Control::SetModel(model.map(str::to_owned)))
            .await
            .map(drop)
    }

    /// Switches session `id`'s permission mode (`default`, `acceptEdits`,
    /// `plan`, `bypassPermissions`, ...), like [`set_model`](Self::set_model).
    pub async fn set_permission_mode(&self, id: &str, mode: &str) -> Result<()> {
        if mode.is_empty() {
            return Err(Error::InvalidArgument(
                "permission mode must not be empty".into(),
            ));
        }
        self.control(id, Control::SetPermissionMode(mode.to_owned()))
            .await
            .map(drop)
    }

    /// Answers question `question_id` (an `ask_user_question` event's id)
    /// that session `id`'s agent waits on, from any task, however long
    /// after the event (the turn's timeout does not run while it waits;
    /// `question_timeout` does).
    ///
    /// `answers` maps each question (its text, its `header`, or its index
    /// as a string) to the chosen label, or to a list of labels for a
    /// `multi_select` question (sent joined with ", "); a list answers the
    /// questions in order. A label need not be one of the options (the
    /// person's own words reach the agent as they are). Questions left out
    /// stay unanswered.
    ///
    /// Fails with [`Error::QuestionNotFound`] when no such question waits
    /// (answered, cancelled by an interrupt or `stop_session`, timed out,
    /// or a session not in the pool) and with [`Error::InvalidAnswer`] for
    /// an answer that names no question, picks several options of a
    /// single-choice question or is empty (the question then still waits).
    pub async fn answer_question(
        &self,
        id: &str,
        question_id: &str,
        answers: &serde_json::Value,
    ) -> Result<()> {
        let reply = Reply::Question {
            question_id: question_id.to_owned(),
            answers: answers.clone(),
        };
        self.reply(id, reply).await
    }

    /// Approves or rejects the plan session `id`'s agent proposed (an
    /// `exit_plan_mode` event), from any task, however long after it.
    ///
    /// Approved, the agent leaves plan mode and carries the plan out, in
    /// permission mode `mode` (e.g. `acceptEdits`; kept by the session like
    /// [`set_permission_mode`](Self::set_permission_mode)), or, without
    /// one, in the mode it had before plan mode. Rejected, the agent reads
    /// `feedback` and stays in plan mode, usually to propose a revised plan
    /// (a new `exit_plan_mode` event) in the same turn.
    ///
    /// Fails with [`Error::QuestionNotFound`] when no plan waits and with
    /// [`Error::InvalidAnswer`] for an empty mode or a mode with a
    /// rejection.
    pub async fn approve_plan(
        &self,
        id: &str,
        approved: bool,
        feedback: Option<&str>,
        mode: Option<&str>,
    ) -> Result<()> {
        let reply = Reply::Plan {
            approved,
            feedback: feedback.map(str::to_owned),
            mode: mode.map(str::to_owned),
        };
        self.reply(id, reply).await
    }

    /// Hands a host's answer to session `id`'s actor, which holds the
    /// questions: a session not in the pool has none.
    async fn reply(&self, id: &str, reply: Reply) -> Result<()> {
        match self.control(id, Control::Answer(reply)).await {
            Ok(_) => Ok(()),
            Err(Error::SessionNotFound(_)) => Err(Error::QuestionNotFound(format!(
                "session {id:?} is not in the pool, so nothing of it waits for an answer"
            ))),
            Err(e) => Err(e),
        }
    }

    /// How full session `id`'s context window is, as the agent reports it
    /// (`get_context_usage`; a JSON object with token counts by category).
    /// Needs a running process ([`Error::SessionDead`] otherwise).
    pub async fn context_usage(&self, id: &str) -> Result<serde_json::Value> {
        self.control(id, Control::ContextUsage).await
    }

    /// The state of session `id`'s MCP servers, as the agent reports it
    /// (`mcp_status`). Needs a running process.
    pub async fn mcp_status(&self, id: &str) -> Result<serde_json::Value> {
        self.control(id, Control::McpStatus).await
    }

    /// Sends a live control to session `id`'s actor and waits (at most
    /// `control_timeout`) for its answer.
    async fn control(&self, id: &str, control: Control) -> Result<serde_json::Value> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let sessions = self.inner.sessions.lock();
            let entry = sessions
                .map
                .get(id)
                .ok_or_else(|| Error::SessionNotFound(id.to_owned()))?;
            entry
                .controls
                .send(ControlCmd { control, tx })
                .map_err(|_| Error::SessionDead("the session is shutting down".into()))?;
        }
        let limit = self.inner.ctx.opts.control_timeout;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Error::SessionDead("the session ended".into())),
            Err(_) => Err(Error::ControlFailed(format!(
                "the agent did not answer within control_timeout ({limit:?})"
            ))),
        }
    }

    /// Makes session `id` forget its conversation: its next turn starts a
    /// new one (a new provider session id, recorded like a resume marker,
    /// so it holds across engines sharing the state directory). Queued
    /// turns run first, in the old conversation; a running process is then
    /// stopped. With `forget_transcript` the old conversation's transcript
    /// is deleted too (best effort, where hotplex knows the agent's
    /// configuration directory). Works whether or not the session is in the
    /// pool.
    pub async fn reset_session(&self, id: &str, forget_transcript: bool) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        validate_id(id)?;
        let ctx = &self.inner.ctx;
        let psid = fresh_provider_session_id(&ctx.opts.namespace, id);
        let old = ctx.markers.current(&ctx.opts.namespace, id).psid;
        ctx.markers.bind(&ctx.opts.namespace, id, &psid, None, None);
        let queued = {
            let sessions = self.inner.sessions.lock();
            match sessions.map.get(id) {
                Some(entry) => {
                    let (done, wait) = tokio::sync::oneshot::channel();
                    let job = Job::Reset {
                        psid,
                        forget_transcript,
                        done,
                    };
                    entry.tx.send(job).ok().map(|_| wait)
                }
                None => None,
            }
        };
        match queued {
            Some(wait) => {
                let _ = wait.await;
            }
            None => {
                let none = crate::contract::SessionOptions::default();
                let config = forget_transcript.then(|| session::config_dir(&ctx.opts, &none));
                ctx.markers.forget(&old, config.flatten().as_deref());
            }
        }
        Ok(())
    }

    /// Starts session `new_id` as a copy of session `id`'s conversation:
    /// its first turn resumes that conversation under a new provider id
    /// (`--fork-session`), in the same workdir, and from then on the two
    /// continue separately. With `at_message` (a [`Turn::message_uuid`] of
    /// `id`), the copy ends at that message (`--resume-session-at`): the
    /// turns after it are left out of the fork (the original keeps them).
    /// Fails with [`Error::SessionNotFound`] when `id` has no conversation
    /// yet (no confirmed turn) and with [`Error::InvalidArgument`] when
    /// `new_id` is in the pool already or `at_message` is not a message id
    /// (an id the conversation lacks fails the fork's first turn).
    pub fn fork_session(&self, id: &str, new_id: &str, at_message: Option<&str>) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        validate_id(id)?;
        validate_id(new_id)?;
        if let Some(at) = at_message {
            let ok = !at.is_empty()
                && at.len() <= 64
                && at.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if !ok {
                return Err(Error::InvalidArgument(format!(
                    "at_message {at:?} is not a message id (a UUID, as Turn.message_uuid)"
                )));
            }
        }
        if id == new_id {
            return Err(Error::InvalidArgument(
                "a session cannot fork into itself".into(),
            ));
        }
        let ctx = &self.inner.ctx;
        let ns = &ctx.opts.namespace;
        let source = {
            let sessions = self.inner.sessions.lock();
            if sessions.map.contains_key(new_id) {
                return Err(Error::InvalidArgument(format!(
                    "session {new_id:?} exists; fork into a new id"
                )));
            }
            match sessions.map.get(id) {
                Some(e) => e.state.lock().psid.clone(),
                None => ctx.markers.current(ns, id).psid,
            }
        };
        if ctx.markers.get(&source).is_none() {
            return Err(Error::SessionNotFound(format!(
                "{id} has no conversation to fork yet"
            )));
        }
        if ctx.markers.acp_session(&source).is_some() {
            return Err(Error::Unsupported(format!(
                "fork_session: {id} is an acp session, and ACP agents cannot fork conversations"
            )));
        }
        let psid = fresh_provider_session_id(ns, new_id);
        ctx.markers
            .bind(ns, new_id, &psid, Some(&source), at_message);
        Ok(())
    }

    /// The WAF's check of a prompt (or instructions) of session `id`.
    fn screen_prompt(&self, id: &str, text: &str) -> Result<()> {
        let ctx = &self.inner.ctx;
        let t0 = Instant::now();
        let v = ctx.detector.check_prompt(text);
        let tel = &ctx.telemetry;
        tel.metrics
            .waf_checked(WafSource::Prompt, &v, t0.elapsed().as_secs_f64());
        tel.record(|| waf_record(id, WafSource::Prompt, &v));
        if v.blocked {
            tel.metrics.turn_ended(TurnOutcome::Blocked, None);
            tel.record(|| LifecycleRecord::TurnFinished {
                session_id: id.to_owned(),
                outcome: TurnOutcome::Blocked,
                duration_ms: 0.0,
                queued_ms: 0.0,
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: 0.0,
            });
            tracing::warn!(session_id = id, rule = ?v.rule_id, "prompt blocked by the WAF");
            return Err(Error::DangerBlocked(Box::new(v)));
        }
        Ok(())
    }

    /// Closes the engine: every session is stopped (running and queued
    /// turns fail with [`Error::Closed`]) and every process tree confirmed
    /// gone; under placement its leases are released (their transcripts
    /// were saved after each turn). Idempotent; afterwards every call fails
    /// with `Closed`.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let waits: Vec<_> = {
            let mut sessions = self.inner.sessions.lock();
            sessions.profiles.clear();
            let mut entries: Vec<Entry> = sessions.map.drain().map(|(_, e)| e).collect();
            entries.extend(sessions.spares.drain(..).map(|s| s.entry));
            let mut waits: Vec<_> = sessions.retiring.drain().map(|(_, d)| d).collect();
            for e in entries {
                e.signal(StopReason::Closed);
                waits.push(e.done);
            }
            waits
        };
        // The refiller sees the engine closed and ends.
        self.inner.ctx.pool_changed.notify_one();
        for d in waits {
            wait_done(d).await;
        }
        // Its processes are gone and each turn's transcript was saved: the
        // leases go too, so other hosts need not wait out their TTL.
        if let Some(p) = self.inner.ctx.placed.clone() {
            let _ = tokio::task::spawn_blocking(move || {
                for id in p.held() {
                    let _ = p.release(&id);
                }
            })
            .await;
        }
    }

    fn create(&self, sessions: &mut Sessions, id: &str, provider: Provider) -> Result<()> {
        let mut evicted = None;
        let ctx = &self.inner.ctx;
        if sessions.map.len() + sessions.spares.len() >= ctx.opts.max_sessions
            && !sessions.spares.is_empty()
        {
            // Spares hold slots for sessions: give this one the spare of
            // least use (the last started, a starting one first).
            let i = (0..sessions.spares.len())
                .rev()
                .min_by_key(|i| {
                    sessions.spares[*i].entry.state.lock().status == SessionStatus::Ready
                })
                .unwrap_or(0);
            evicted = Some(sessions.retire_spare(i, StopReason::Evicted));
        } else if sessions.map.len() >= ctx.opts.max_sessions {
            // Evict the least recently used session with nothing to do.
            let victim = sessions
                .map
                .iter()
                .filter_map(|(k, e)| {
                    let st = e.state.lock();
                    (st.pending() == 0).then(|| (st.last_active, k.clone()))
                })
                .min()
                .map(|(_, k)| k);
            let Some(victim) = victim else {
                ctx.telemetry.metrics.capacity_rejected();
                return Err(Error::CapacityExceeded(format!(
                    "all {} sessions are busy",
                    ctx.opts.max_sessions
                )));
            };
            evicted = sessions.retire(&victim, StopReason::Evicted);
        }
        let binding = ctx.markers.current(&ctx.opts.namespace, id);
        let psid = binding.psid;
        let state = Arc::new(Mutex::new(State::new(psid.clone())));
        let (tx, rx) = mpsc::unbounded_channel();
        let (controls, controls_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(false);
        // The new process waits until the ones it replaces are confirmed
        // gone: an earlier incarnation of this id (two processes must never
        // share a provider session) and the session it evicted (so that
        // `max_sessions` bounds processes, not just map entries).
        let previous: Vec<_> = sessions
            .retiring
            .remove(id)
            .into_iter()
            .chain(evicted)
            .collect();
        sessions.retiring.retain(|_, d| !*d.borrow());
        let parts = ActorParts {
            id: id.to_owned(),
            psid,
            ctx: ctx.clone(),
            state: state.clone(),
            previous,
            fork: (binding.fork_from, binding.fork_at),
            controls: controls_rx,
            jobs: rx,
            stop: stop_rx,
            done: done_tx,
        };
        let span = tracing::info_span!("session", session_id = %id);
        provider::launch(provider, parts, &self.inner.handle, span);
        sessions.map.insert(
            id.to_owned(),
            Entry {
                tx,
                controls,
                state,
                stop: stop_tx,
                done: done_rx,
                workdir: None,
                provider,
            },
        );
        Ok(())
    }

    /// Where a turn that names no workdir runs if session `id` has no turn
    /// in the pool yet: the workdir of its resume marker while that is still
    /// an allowed directory (the conversation lives there), else the
    /// engine's default.
    fn fallback_workdir(&self, id: &str) -> Result<PathBuf> {
        let ctx = &self.inner.ctx;
        let binding = ctx.markers.current(&ctx.opts.namespace, id);
        // A fork not started yet lives where the conversation it copies does.
        let lives = std::iter::once(binding.psid).chain(binding.fork_from);
        for psid in lives {
            if let Some(dir) = ctx.markers.get(&psid) {
                if dir.is_dir() {
                    if let Ok(dir) = self.workdir(&dir) {
                        return Ok(dir);
                    }
                }
            }
        }
        self.workdir(&self.inner.default_workdir)
    }

    /// Resolves a turn's workdir: created if missing (0700), symlinks
    /// resolved, and checked against the allowed roots.
    fn workdir(&self, dir: &Path) -> Result<PathBuf> {
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
        let roots = &self.inner.ctx.allowed_roots;
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
        let sessions = self.sessions.get_mut();
        for (_, e) in sessions.map.drain() {
            e.signal(StopReason::Closed);
        }
        for s in sessions.spares.drain(..) {
            s.entry.signal(StopReason::Closed);
        }
        // The refiller finds no engine and ends.
        self.ctx.pool_changed.notify_one();
    }
}

/// The scrape-time view of an engine's sessions (weak: the registry lives
/// inside the engine).
#[derive(Debug)]
struct Live(Weak<Inner>);

impl LiveView for Live {
    fn sessions(&self) -> Vec<(SessionStatus, Option<i32>)> {
        let Some(inner) = self.0.upgrade() else {
            return Vec::new();
        };
        let sessions = inner.sessions.lock();
        sessions
            .map
            .values()
            .map(|e| {
                let st = e.state.lock();
                (st.status, st.pid)
            })
            .collect()
    }

    fn spares(&self) -> Vec<(bool, Option<i32>)> {
        let Some(inner) = self.0.upgrade() else {
            return Vec::new();
        };
        let sessions = inner.sessions.lock();
        sessions
            .spares
            .iter()
            .map(|s| {
                let st = s.entry.state.lock();
                (st.status == SessionStatus::Ready, st.pid)
            })
            .collect()
    }
}

/// The observer's record of a WAF verdict.
pub(crate) fn waf_record(
    id: &str,
    source: WafSource,
    v: &crate::verdict::Verdict,
) -> LifecycleRecord {
    LifecycleRecord::WafVerdict {
        session_id: id.to_owned(),
        source,
        level: v.level,
        category: v.category,
        rule_id: v.rule_id.clone(),
        blocked: v.blocked,
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

/// Keeps the spares of the engine's prewarm profiles started (see
/// [`Engine::refill`]); woken by `changed` (a claim, a profile changed, a
/// process that ended) or when a backoff runs out.
async fn refiller(inner: Weak<Inner>, changed: Arc<tokio::sync::Notify>) {
    loop {
        let again = {
            let Some(inner) = inner.upgrade() else { return };
            if inner.closed.load(Ordering::Acquire) {
                return;
            }
            Engine { inner }.refill()
        };
        match again {
            Some(t) => {
                tokio::select! {
                    _ = changed.notified() => {}
                    _ = tokio::time::sleep_until(t.into()) => {}
                }
            }
            None => changed.notified().await,
        }
    }
}

/// Stops sessions idle for `idle` (no queued or running turn, no output).
/// Renews the engine's leases every third of their TTL; a session whose
/// lease was taken over by another host is stopped at once (its process
/// killed), so it never runs on two hosts for longer than a TTL.
async fn renewer(inner: Weak<Inner>, placed: Arc<placed::Placed>) {
    let tick = (placed.ttl / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let p = placed.clone();
        let lost = tokio::task::spawn_blocking(move || p.renew_all())
            .await
            .unwrap_or_default();
        if lost.is_empty() {
            continue;
        }
        let mut sessions = inner.sessions.lock();
        for id in lost {
            tracing::warn!(session = %id, "lease taken over by another host: session stopped");
            sessions.retire(&id, StopReason::Fenced);
        }
    }
}

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
                st.pending() == 0
                    && st.status != SessionStatus::Busy
                    && st.last_active.elapsed() >= idle
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in idle_ids {
            sessions.retire(&id, StopReason::Idle);
        }
    }
}
