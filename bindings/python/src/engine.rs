//! `hotplex.Engine`: the session pool, for Python, as a thin layer over
//! `hotplex_core::Engine`; and `Pool`, what it shares with
//! `hotplex.AsyncEngine` (`crate::aio`): the option handling, the runtime,
//! the host functions (`can_use_tool`, `hooks`, `tools`: see `crate::host`)
//! and the synchronous queries. Live controls (`interrupt`, `set_model`,
//! ...) and `reset_session`/`fork_session` are thin calls of the core's.
//!
//! Options go in as one JSON object read by the core
//! (`EngineOptions::from_json`, `TurnOptions::from_json`), so defaults and
//! validation exist only there; hooks and tools add their wire form (the
//! core's `HookSpec`s and `ToolServer`s, made by `hotplex/_host.py`).
//! Records go out as the core's JSON, wrapped by the dataclasses of
//! `hotplex/_contract.py`. A host function's answer is converted to JSON and
//! read by the core (`Permission::from_answer`, the hook and tool rules).
//!
//! The engine owns a small tokio runtime on which every session's actor
//! runs. Python calls block on it with the GIL released, waking every
//! 100 ms to let Ctrl-C (and other signals) through: a signal cancels the
//! turn (the agent is interrupted) and raises in the caller. Every wait
//! goes through `crate::lifecycle`, so a daemon thread blocked here at
//! interpreter exit never takes the GIL back.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hotplex_core::{self as core, EngineOptions, TurnOptions};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::convert::{json_to_py, py_to_json};
use crate::detector::Detector;
use crate::errors::core_error;
use crate::host::{self, LoopSlot};
use crate::lifecycle;
use crate::telemetry::{self, ObserverSlot};

/// How often a blocked call wakes to check for signals.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The parameters `Engine()` takes positionally, in their historical order;
/// every other option is keyword-only.
const POSITIONAL: [&str; 12] = [
    "binary",
    "args",
    "env",
    "max_sessions",
    "idle_timeout",
    "turn_timeout",
    "startup_timeout",
    "state_dir",
    "permission_mode",
    "allowed_tools",
    "disallowed_tools",
    "allowed_roots",
];

fn invalid_config(py: Python<'_>, message: String) -> PyErr {
    core_error(py, core::Error::InvalidConfig(message))
}

/// A deadline of `s` seconds (0: now; at most 2^32, as in C, Go and Node),
/// else InvalidArgument naming `name`.
pub(crate) fn seconds_arg(py: Python<'_>, name: &str, s: f64) -> PyResult<Duration> {
    if !s.is_finite() || !(0.0..=4_294_967_296.0).contains(&s) {
        return Err(core_error(
            py,
            core::Error::InvalidArgument(format!(
                "{name}: must be a number of seconds from 0 to 2^32, not {s}"
            )),
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// The JSON of an `answer_question` answers argument (a dict or a list);
/// what cannot be JSON is an `InvalidAnswer`.
pub(crate) fn answers_json(py: Python<'_>, answers: &Bound<'_, PyAny>) -> PyResult<Value> {
    py_to_json(answers, "answers").map_err(|m| core_error(py, core::Error::InvalidAnswer(m)))
}

/// `hotplex._contract.<class>._from_json(v)`: a record from the core's JSON.
pub(crate) fn record(py: Python<'_>, class: &str, v: &Value) -> PyResult<Py<PyAny>> {
    let cls = py.import("hotplex._contract")?.getattr(class)?;
    Ok(cls
        .call_method1("_from_json", (json_to_py(py, v)?,))?
        .unbind())
}

/// The engine's tokio runtime. Dropping the last handle shuts it down in
/// the background: the last handle may go on any thread, even one of the
/// runtime's own (a garbage collection there), where a blocking drop
/// would panic.
pub(crate) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnedRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        // Only Drop takes it out.
        self.0.as_ref().expect("runtime present until dropped")
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        // Actors kill their trees on their own (the supervisors finish
        // even without the runtime). Never block here.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// What one step of a turn stream gave.
pub(crate) enum Step {
    Event(core::Event),
    /// The turn ended with this outcome.
    Done(core::Result<core::Turn>),
    /// The stream was already over, or was cancelled.
    Over,
}

/// One turn's core stream, shared by whoever reads it and whoever cancels
/// it: `cancel()` never waits and never fails, from any thread, even while
/// another thread (or a runtime task) is inside `next()`. The reader drops
/// the core stream when it sees the cancel (which cancels the turn: the
/// agent is interrupted, then the kill ladder after `interrupt_grace`).
pub(crate) struct TurnCell {
    stream: tokio::sync::Mutex<Option<core::TurnStream>>,
    cancelled: watch::Sender<bool>,
}

impl TurnCell {
    pub(crate) fn new(stream: core::TurnStream) -> Arc<TurnCell> {
        Arc::new(TurnCell {
            stream: tokio::sync::Mutex::new(Some(stream)),
            cancelled: watch::Sender::new(false),
        })
    }

    /// The next step. Cancel-safe: dropping it mid-wait loses nothing (an
    /// outcome is taken only when no await follows that could suspend).
    pub(crate) async fn next(&self) -> Step {
        let mut cancel = self.cancelled.subscribe();
        let mut guard = self.stream.lock().await;
        if *cancel.borrow_and_update() {
            guard.take();
            return Step::Over;
        }
        let Some(stream) = guard.as_mut() else {
            return Step::Over;
        };
        let got = tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => None,
            e = stream.next_event() => Some(e),
        };
        match got {
            None => {
                guard.take();
                Step::Over
            }
            Some(Some(e)) => Step::Event(e),
            Some(None) => match guard.take() {
                // next_event() gave None: the outcome is there, finish()
                // returns it without waiting.
                Some(stream) => Step::Done(stream.finish().await),
                None => Step::Over,
            },
        }
    }

    /// Cancels the turn if it still runs. Thread-safe and never blocks.
    pub(crate) fn cancel(&self) {
        self.cancelled.send_replace(true);
        // Nobody reading: drop the stream here; else the reader does.
        if let Ok(mut guard) = self.stream.try_lock() {
            guard.take();
        }
    }
}

/// Waits for the next event with the GIL released, checking for signals.
/// `None`: the turn is over.
fn next_event(
    py: Python<'_>,
    rt: &Arc<OwnedRuntime>,
    stream: &mut core::TurnStream,
) -> PyResult<Option<core::Event>> {
    loop {
        let got = lifecycle::detach(py, || {
            rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, stream.next_event()).await })
        });
        match got {
            Ok(e) => return Ok(e),
            Err(_) => py.check_signals()?,
        }
    }
}

/// Iterates the events of one turn as they arrive; see Engine.stream.
/// After the last event, `turn` holds the finished Turn, or iteration
/// raised the turn's error. `cancel()` or `close()` (from any thread, also
/// while another thread iterates: its iteration then ends), leaving a
/// `with` block, or dropping the iterator cancels a turn still running.
#[pyclass(module = "hotplex", name = "TurnStream", frozen)]
pub struct TurnStream {
    rt: Arc<OwnedRuntime>,
    cell: Arc<TurnCell>,
    turn: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl TurnStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let _busy = lifecycle::Busy::begin();
        loop {
            let step = lifecycle::detach(py, || {
                self.rt
                    .block_on(async { tokio::time::timeout(SIGNAL_POLL, self.cell.next()).await })
            });
            match step {
                Ok(Step::Event(e)) => return record(py, "Event", &e.to_json()).map(Some),
                Ok(Step::Done(outcome)) => {
                    let turn = outcome.map_err(|e| core_error(py, e))?;
                    let turn = record(py, "Turn", &turn.to_json())?;
                    *self.turn.lock().unwrap_or_else(PoisonError::into_inner) = Some(turn);
                    return Ok(None);
                }
                Ok(Step::Over) => return Ok(None),
                Err(_) => {
                    if let Err(err) = py.check_signals() {
                        self.cell.cancel();
                        return Err(err);
                    }
                }
            }
        }
    }

    /// The finished turn, once iteration ended without an error.
    #[getter]
    fn turn(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        turn.as_ref().map(|t| t.clone_ref(py))
    }

    /// Cancels the turn if it still runs (the agent is interrupted); an
    /// iteration in another thread ends. Callable from any thread.
    fn cancel(&self) {
        self.cell.cancel();
    }

    /// Same as cancel().
    fn close(&self) {
        self.cell.cancel();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) {
        self.cell.cancel();
    }
}

/// What `Engine` and `AsyncEngine` share: the core engine, its runtime,
/// the observer and the loop of an async `can_use_tool`.
pub(crate) struct Pool {
    pub(crate) rt: Arc<OwnedRuntime>,
    pub(crate) engine: core::Engine,
    /// The observer, also held by the core (visible to the GC from here).
    observer: Option<ObserverSlot>,
    pub(crate) loops: LoopSlot,
}

impl Pool {
    /// Builds the pool from the constructor's arguments: `who` names the
    /// class in argument errors. The one place options are read.
    pub(crate) fn build(
        py: Python<'_>,
        who: &str,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Pool> {
        if args.len() > POSITIONAL.len() {
            return Err(PyTypeError::new_err(format!(
                "{who}() takes at most {} positional arguments ({} given)",
                POSITIONAL.len(),
                args.len()
            )));
        }
        let mut given: Vec<(String, Bound<'_, PyAny>)> = POSITIONAL
            .iter()
            .map(|n| n.to_string())
            .zip(args.iter())
            .collect();
        for (k, v) in kwargs.into_iter().flat_map(|kw| kw.iter()) {
            let name: String = k.extract()?;
            if given.iter().any(|(n, _)| *n == name) {
                return Err(PyTypeError::new_err(format!(
                    "{who}() got multiple values for argument '{name}'"
                )));
            }
            given.push((name, v));
        }
        let (mut detector, mut can_use_tool, mut observer) = (None, None, None);
        let (mut hooks, mut tools) = (None, None);
        let mut wire = Map::new();
        for (name, v) in given {
            match name.as_str() {
                // Not wire options: objects of this language.
                "detector" => detector = Some(v),
                "can_use_tool" => can_use_tool = Some(v),
                "observer" => observer = Some(v),
                // Functions: the binding makes their wire form (below).
                "hooks" => hooks = Some(v),
                "tools" => tools = Some(v),
                _ => {
                    let json = py_to_json(&v, &name).map_err(|m| invalid_config(py, m))?;
                    wire.insert(name, json);
                }
            }
        }
        let loops = LoopSlot::default();
        // The loop an async callback's coroutines run on, if any.
        loops.capture(py);
        // Hooks and tools: their specs are wire options; their functions
        // are called by handlers the binding makes.
        let mut hook_handler = None;
        if let Some(h) = hooks.filter(|h| !h.is_none()) {
            let (specs, handler) = host::hooks(py, &h, loops.clone())?;
            wire.insert("hooks".into(), specs);
            hook_handler = Some(handler);
        }
        let mut tool_fns = None;
        if let Some(t) = tools.filter(|t| !t.is_none()) {
            let (servers, fns) = host::tools(py, &t)?;
            wire.insert("tools".into(), servers);
            tool_fns = Some(fns);
        }
        let mut opts =
            EngineOptions::from_json(&Value::Object(wire)).map_err(|e| core_error(py, e))?;
        opts.hook_handler = hook_handler;
        if let Some(fns) = tool_fns {
            opts.tool_handler = Some(host::tool_handler(fns, loops.clone(), opts.turn_timeout));
        }
        if let Some(d) = detector.filter(|d| !d.is_none()) {
            let d = d
                .extract::<PyRef<'_, Detector>>()
                .map_err(|_| PyTypeError::new_err("detector must be a hotplex.Detector"))?;
            opts.detector = Some(Arc::new(d.core().clone()));
        }
        if let Some(cb) = can_use_tool.filter(|c| !c.is_none()) {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("can_use_tool must be callable"));
            }
            let context = host::wants_context(py, &cb)?;
            opts.permission_handler = Some(host::permission_handler(
                cb.unbind(),
                context,
                loops.clone(),
                opts.turn_timeout,
            ));
        }
        let mut slot = None;
        if let Some(cb) = observer.filter(|o| !o.is_none()) {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("observer must be callable"));
            }
            let (observer, held) = telemetry::observer(cb.unbind());
            opts.observer = Some(observer);
            slot = Some(held);
        }
        let (engine, rt) = core::Engine::with_own_runtime(opts).map_err(|e| core_error(py, e))?;
        Ok(Pool {
            rt: Arc::new(OwnedRuntime(Some(rt))),
            engine,
            observer: slot,
            loops,
        })
    }

    /// The turn options as the core reads them, from the keyword arguments
    /// of `execute`/`stream` (`workdir`, `timeout`, `waf_approved`,
    /// `partial_messages`, `session`, `instructions`, `images`); None values
    /// are left out (the core's default).
    pub(crate) fn turn_options(
        py: Python<'_>,
        given: &[(&str, Option<&Bound<'_, PyAny>>)],
    ) -> PyResult<TurnOptions> {
        let mut wire = Map::new();
        for (name, value) in given {
            if let Some(v) = value.filter(|v| !v.is_none()) {
                let v = py_to_json(v, name).map_err(|m| invalid_config(py, m))?;
                wire.insert((*name).to_owned(), v);
            }
        }
        TurnOptions::from_json(&Value::Object(wire)).map_err(|e| core_error(py, e))
    }

    /// Runs `work` on the runtime from a Python thread, with the GIL
    /// released (a live control: bounded by `control_timeout`).
    pub(crate) fn block<T: Send>(&self, py: Python<'_>, work: impl Future<Output = T> + Send) -> T {
        let rt = self.rt.clone();
        lifecycle::detach(py, || rt.block_on(work))
    }

    /// `prewarm(spares, workdir, session)` of both engines: the profile's
    /// wire form from the Python values, read by the core.
    pub(crate) fn prewarm(
        &self,
        py: Python<'_>,
        spares: &Bound<'_, PyAny>,
        workdir: Option<&Bound<'_, PyAny>>,
        session: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut wire = Map::new();
        for (name, value) in [
            ("spares", Some(spares)),
            ("workdir", workdir),
            ("session", session),
        ] {
            if let Some(v) = value.filter(|v| !v.is_none()) {
                let v = py_to_json(v, name).map_err(|m| invalid_config(py, m))?;
                wire.insert(name.to_owned(), v);
            }
        }
        let profile =
            core::PrewarmProfile::from_json(&Value::Object(wire)).map_err(|e| core_error(py, e))?;
        self.engine.prewarm(profile).map_err(|e| core_error(py, e))
    }

    pub(crate) fn owns(&self, py: Python<'_>, session_id: &str) -> PyResult<bool> {
        self.engine.owns(session_id).map_err(|e| core_error(py, e))
    }

    pub(crate) fn adopt(
        &self,
        py: Python<'_>,
        session_id: &str,
        workdir: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let workdir = match workdir.filter(|w| !w.is_none()) {
            Some(w) => Some(w.extract::<std::path::PathBuf>()?),
            None => None,
        };
        let engine = self.engine.clone();
        let id = session_id.to_owned();
        // File work (the lease, the transcript): without the GIL.
        lifecycle::detach(py, move || engine.adopt(&id, workdir.as_deref()))
            .map_err(|e| core_error(py, e))
    }

    pub(crate) fn load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let load = self.engine.load();
        let v = serde_json::to_value(&load).unwrap_or(Value::Null);
        json_to_py(py, &v)
    }

    pub(crate) fn sessions(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let infos = self.engine.sessions();
        infos
            .iter()
            .map(|s| record(py, "SessionInfo", &s.to_json()))
            .collect()
    }

    pub(crate) fn session_stats<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.engine
            .session_stats(session_id)
            .map(|s| json_to_py(py, &s.to_json()))
            .transpose()
    }

    pub(crate) fn metrics_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.engine.metrics_snapshot())
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.observer {
            Some(slot) => slot.traverse(visit),
            None => Ok(()),
        }
    }

    pub(crate) fn clear(&self) {
        if let Some(slot) = &self.observer {
            drop(slot.clear());
        }
    }

    pub(crate) fn repr(&self, class: &str) -> String {
        format!(
            "{class}(sessions={}, closed={})",
            self.engine.sessions().len(),
            self.engine.is_closed()
        )
    }
}

/// The session pool: one hot agent process per session id.
///
/// Options are hotplex-core's EngineOptions, same names; one left out or None
/// takes the core's default (listed below). Durations are float seconds, paths
/// str or os.PathLike, env a dict of str added to the agent's environment
/// (which otherwise inherits only env_allow). A bad or unknown option, or a
/// binary that cannot be found, raises InvalidConfig naming it. detector is a
/// hotplex.Detector (default: the built-in rules).
///
/// provider is the protocol the agents speak: "claude-code" (the default,
/// Claude Code's CLI) or "acp" (the Agent Client Protocol), where binary and
/// args are the agent's command line (binary="opencode", args=["acp"];
/// binary="gemini", args=["--acp"]). An "acp" engine refuses the options only
/// Claude Code takes (permission_mode, allowed_tools, disallowed_tools,
/// system_prompt, model, hooks, tools, prewarm) with InvalidConfig naming
/// them. A session may pick its own provider, binary and args
/// (session={"provider": "acp", "binary": ..., "args": [...]}), so one
/// engine holds both kinds.
///
/// limits (a dict, see hotplex.SessionLimits: memory_bytes, max_processes,
/// cpu_seconds, open_files; each unset by default) caps every session's
/// process tree: the per-session cgroup's memory.max and pids.max where
/// there is one, else RLIMIT_AS and a best-effort RLIMIT_NPROC; CPU seconds
/// and open files per process. A zero, negative or unknown limit raises
/// InvalidConfig naming it (limits.max_processes: ...).
/// prewarm=[{"spares": 2, "workdir": ..., "session": {...}}, ...] (see
/// hotplex.PrewarmProfile and Engine.prewarm) keeps agent processes started
/// for new conversations, so their first turn skips the agent's cold start.
///
/// can_use_tool(tool_name, input, verdict) decides tool calls the WAF let
/// through, on an engine thread: True, None or {"behavior": "allow"[,
/// "updatedInput": {...}][, "updatedPermissions": [...]]} allow (the new
/// input is screened again; the agent keeps the permission updates, e.g. an
/// allow rule for later calls); False, a str, {"behavior": "deny"[,
/// "message": str][, "interrupt": True]} (interrupt also stops the turn) and
/// anything else deny. A callable that accepts four positional arguments
/// also gets the agent's context of the request, a dict
/// (permission_suggestions, decision_reason, tool_use_id, ...), as the 4th;
/// three-parameter callables keep getting three. An async callback runs on
/// the asyncio loop that was running when the Engine was created, waited for
/// up to turn_timeout; in asyncio code use hotplex.AsyncEngine, which never
/// blocks the loop. Without that loop, or if the callback raises or times
/// out, the error goes to sys.unraisablehook and the call is denied.
///
/// hooks={"PostToolUse": [fn, hotplex.HookMatcher(matcher="Bash",
/// hooks=[fn], timeout=30.0)], ...} registers host hooks by hook event
/// (PreToolUse, PostToolUse, UserPromptSubmit, Stop, ...). Each is called as
/// fn(input, tool_use_id, context) (input: the agent's hook input dict;
/// context: a hotplex.HookContext) and returns the hook's output dict
/// (hookSpecificOutput with permissionDecision, updatedInput,
/// additionalContext, ...; continue_/continue, stopReason, ...) or None;
/// plain or async def, called as can_use_tool is. The WAF answers first: a
/// PreToolUse call it blocks never reaches the hook, and an updatedInput is
/// screened again. A hook that raises or exceeds its timeout (default 60 s)
/// is reported to sys.unraisablehook; for PreToolUse the call is denied,
/// for the other events the turn goes on (with an error event).
///
/// tools=[hotplex.ToolServer(name, [tool, ...])] (or a plain list of
/// hotplex.Tool, one server named "host") serves host functions made with
/// @hotplex.tool to the agent as in-process MCP tools (the model sees
/// `mcp__<server>__<tool>`); their calls go through the WAF and can_use_tool
/// like any tool. A tool function gets the arguments dict and returns a str
/// or a dict (plain or async def, waited for up to turn_timeout); an
/// exception becomes an error result the model sees.
///
/// observer(record) receives a hotplex.LifecycleRecord for each lifecycle
/// event (a session started or exited, a turn finished, a WAF verdict, a
/// process tree signalled), in order, on hotplex's observer thread (never
/// the caller's), through a bounded queue: a slow observer loses records,
/// counted in hotplex_observer_dropped_total, and never stalls a turn. An
/// exception in it goes to sys.unraisablehook and loses that record only.
///
/// At interpreter exit, a thread still blocked in a call here stays blocked
/// (it is never resumed into a dying interpreter) and callbacks are no
/// longer called; the agents are killed when the process ends.
#[pyclass(module = "hotplex", name = "Engine")]
pub struct Engine {
    pool: Pool,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(binary=None, args=None, env=None, max_sessions=None, idle_timeout=None, turn_timeout=None, startup_timeout=None, state_dir=None, permission_mode=None, allowed_tools=None, disallowed_tools=None, allowed_roots=None, *, provider=None, namespace=None, system_prompt=None, model=None, env_allow=None, max_concurrent_starts=None, interrupt_grace=None, max_prompt_bytes=None, partial_messages=None, max_line_bytes=None, max_turn_events=None, max_turn_event_bytes=None, control_timeout=None, question_timeout=None, question_timeout_answer=None, default_workdir=None, limits=None, prewarm=None, placement=None, detector=None, can_use_tool=None, hooks=None, tools=None, observer=None)"
    )]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Engine> {
        Ok(Engine {
            pool: Pool::build(py, "Engine", args, kwargs)?,
        })
    }

    /// Runs one turn on session_id (started or resumed on first use) and
    /// returns the finished Turn. Blocks with the GIL released. on_event(event)
    /// is called for each event, in order, in this thread. A turn without a
    /// workdir continues in the session's (the first turn: default_workdir).
    /// timeout and waf_approved left out or None take the engine's defaults.
    /// session (a dict, see hotplex.SessionOptions: model, permission_mode,
    /// system_prompt, max_turns, json_schema, ...) sets the session's agent
    /// options from this turn on (options that differ from those its process
    /// runs with restart it, resuming the conversation); instructions are
    /// task instructions sent with the prompt (in a <context> section before
    /// the <user_query>, screened by the WAF too); images a list of
    /// {"media_type": "image/png", "data": <base64 str>} sent before the
    /// prompt's text. With a json_schema, Turn.structured_output holds the
    /// answer's JSON value. question_timeout (seconds) overrides the
    /// engine's for this turn's questions and plans (see answer_question).
    /// Raises DangerBlocked (prompt blocked by the WAF, after a danger_block
    /// event), TurnTimeout, QuestionTimeout, SessionDead, TurnFailed (e.g.
    /// subtype error_max_turns), CapacityExceeded, StartFailed,
    /// InvalidConfig or Closed.
    #[pyo3(signature = (session_id, prompt, workdir=None, on_event=None, *, timeout=None, waf_approved=None, partial_messages=None, session=None, instructions=None, images=None, question_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        py: Python<'_>,
        session_id: &str,
        prompt: &str,
        workdir: Option<&Bound<'_, PyAny>>,
        on_event: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        waf_approved: Option<&Bound<'_, PyAny>>,
        partial_messages: Option<&Bound<'_, PyAny>>,
        session: Option<&Bound<'_, PyAny>>,
        instructions: Option<&Bound<'_, PyAny>>,
        images: Option<&Bound<'_, PyAny>>,
        question_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let on_event = on_event.filter(|cb| !cb.is_none());
        if on_event.is_some_and(|cb| !cb.is_callable()) {
            return Err(PyTypeError::new_err("on_event must be callable"));
        }
        let rt = self.pool.rt.clone();
        let opts = Pool::turn_options(
            py,
            &[
                ("workdir", workdir),
                ("timeout", timeout),
                ("waf_approved", waf_approved),
                ("partial_messages", partial_messages),
                ("session", session),
                ("instructions", instructions),
                ("images", images),
                ("question_timeout", question_timeout),
            ],
        )?;
        // Runs on_event from inside this call: see lifecycle.
        let _busy = lifecycle::Busy::begin();
        let mut stream = self.pool.engine.start(session_id, prompt, &opts);
        while let Some(e) = next_event(py, &rt, &mut stream)? {
            if let Some(cb) = on_event {
                // A failing callback is reported and never breaks the turn.
                let called = record(py, "Event", &e.to_json()).and_then(|ev| cb.call1((ev,)));
                if let Err(err) = called {
                    err.write_unraisable(py, Some(cb));
                }
            }
        }
        let turn = lifecycle::detach(py, || rt.block_on(stream.finish()))
            .map_err(|e| core_error(py, e))?;
        record(py, "Turn", &turn.to_json())
    }

    /// Like execute, but returns an iterator over the turn's events as they
    /// arrive; its `turn` attribute holds the Turn afterwards, and errors
    /// are raised by the iteration (those found before the turn is queued,
    /// such as DangerBlocked, by this call).
    #[pyo3(signature = (session_id, prompt, workdir=None, *, timeout=None, waf_approved=None, partial_messages=None, session=None, instructions=None, images=None, question_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        session_id: &str,
        prompt: &str,
        workdir: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        waf_approved: Option<&Bound<'_, PyAny>>,
        partial_messages: Option<&Bound<'_, PyAny>>,
        session: Option<&Bound<'_, PyAny>>,
        instructions: Option<&Bound<'_, PyAny>>,
        images: Option<&Bound<'_, PyAny>>,
        question_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TurnStream> {
        let opts = Pool::turn_options(
            py,
            &[
                ("workdir", workdir),
                ("timeout", timeout),
                ("waf_approved", waf_approved),
                ("partial_messages", partial_messages),
                ("session", session),
                ("instructions", instructions),
                ("images", images),
                ("question_timeout", question_timeout),
            ],
        )?;
        let stream = self
            .pool
            .engine
            .submit(session_id, prompt, &opts)
            .map_err(|e| core_error(py, e))?;
        Ok(TurnStream {
            rt: self.pool.rt.clone(),
            cell: TurnCell::new(stream),
            turn: Mutex::new(None),
        })
    }

    /// Snapshots of every session, sorted by id.
    fn sessions(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        self.pool.sessions(py)
    }

    /// Totals of a session as a dict (see hotplex.SessionStats for the
    /// keys), or None for an unknown id.
    fn session_stats<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.pool.session_stats(py, session_id)
    }

    /// Stops a session: its running and queued turns raise SessionDead and
    /// its process tree is killed (returns once confirmed gone). The
    /// conversation resumes if the id is used again. Returns whether the
    /// session existed.
    fn stop_session(&self, py: Python<'_>, session_id: &str) -> bool {
        let rt = self.pool.rt.clone();
        let engine = self.pool.engine.clone();
        lifecycle::detach(py, || rt.block_on(engine.stop_session(session_id)))
    }

    /// Whether session_id's turns belong to this engine: without placement,
    /// always; with it, while this engine holds the session's current lease.
    fn owns(&self, py: Python<'_>, session_id: &str) -> PyResult<bool> {
        self.pool.owns(py, session_id)
    }

    /// Takes session_id for this engine before its first turn here
    /// (placement only): its lease, and its conversation from the store
    /// (written where the local CLI finds it, in workdir or the session's
    /// usual workdir), so the next turn resumes it. Raises OwnedElsewhere
    /// (its owner attribute names the holder) while another host holds it,
    /// InvalidConfig without placement.
    #[pyo3(signature = (session_id, workdir=None))]
    fn adopt(
        &self,
        py: Python<'_>,
        session_id: &str,
        workdir: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.pool.adopt(py, session_id, workdir)
    }

    /// Lets session_id go (placement only): a running turn is interrupted,
    /// queued ones fail, the process is stopped (its stdin closed first, so
    /// the CLI writes its transcript out), the transcript is saved to the
    /// store and the lease released. Returns whether this engine held it.
    fn release(&self, py: Python<'_>, session_id: &str) -> PyResult<bool> {
        let engine = self.pool.engine.clone();
        self.pool
            .block(py, engine.release(session_id))
            .map_err(|e| core_error(py, e))
    }

    /// Drains the engine (placement only): no new session from now on
    /// (CapacityExceeded), running and queued turns get deadline seconds
    /// (0: none) to finish, then every session is released. Returns the
    /// released ids.
    fn drain(&self, py: Python<'_>, deadline: f64) -> PyResult<Vec<String>> {
        let deadline = seconds_arg(py, "deadline", deadline)?;
        let engine = self.pool.engine.clone();
        self.pool
            .block(py, engine.drain(deadline))
            .map_err(|e| core_error(py, e))
    }

    /// The engine's load for a balancer, a dict: sessions, busy, queued,
    /// free_slots, spares, agent_memory_bytes, draining.
    fn load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.pool.load(py)
    }

    /// Interrupts session_id's running turn (it raises TurnTimeout
    /// "interrupted by the host"; the process stays hot). Returns whether a
    /// turn was running. Raises SessionNotFound for a session not in the
    /// pool.
    fn interrupt(&self, py: Python<'_>, session_id: &str) -> PyResult<bool> {
        let engine = self.pool.engine.clone();
        self.pool
            .block(py, engine.interrupt(session_id))
            .map_err(|e| core_error(py, e))
    }

    /// Switches session_id's model (None: the agent's default) on its running
    /// process, between turns or during one; the session keeps it across
    /// restarts (a session without a process takes it at its next start).
    /// Raises SessionNotFound, Unsupported (the agent's version lacks the
    /// control) or ControlFailed (an error answer, or none within
    /// control_timeout).
    #[pyo3(signature = (session_id, model))]
    fn set_model(&self, py: Python<'_>, session_id: &str, model: Option<&str>) -> PyResult<()> {
        let engine = self.pool.engine.clone();
        self.pool
            .block(py, engine.set_model(session_id, model))
            .map_err(|e| core_error(py, e))
    }

    /// Switches session_id's permission mode ("default", "acceptEdits",
    /// "plan", "bypassPermissions", ...), like set_model. Raises
    /// InvalidArgument for an empty mode.
    fn set_permission_mode(&self, py: Python<'_>, session_id: &str, mode: &str) -> PyResult<()> {
        let engine = self.pool.engine.clone();
        self.pool
            .block(py, engine.set_permission_mode(session_id, mode))
            .map_err(|e| core_error(py, e))
    }

    /// Answers question question_id (an ask_user_question event's
    /// data["question_id"]) that session_id's agent waits on, from any
    /// thread, however long after the event: the turn's timeout does not
    /// run while a question waits (question_timeout does). answers maps
    /// each question (its text, its header, or its index as a str) to the
    /// chosen label, or to a list of labels for a multi_select question
    /// (sent joined with ", "); a list answers the questions in order. A
    /// label need not be an option (the person's own words reach the
    /// agent). Raises QuestionNotFound (no such question waits: answered,
    /// cancelled by an interrupt or stop_session, timed out) or
    /// InvalidAnswer (a key that names no question, several labels for a
    /// single-choice question, an empty answer; the question still waits).
    fn answer_question(
        &self,
        py: Python<'_>,
        session_id: &str,
        question_id: &str,
        answers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let answers = answers_json(py, answers)?;
        let engine = self.pool.engine.clone();
        self.pool
            .block(
                py,
                engine.answer_question(session_id, question_id, &answers),
            )
            .map_err(|e| core_error(py, e))
    }

    /// Approves (approved=True) or rejects the plan session_id's agent
    /// proposed (an exit_plan_mode event), from any thread, however long
    /// after it. Approved, the agent leaves plan mode and carries the plan
    /// out in permission mode mode (e.g. "acceptEdits", kept by the session
    /// like set_permission_mode; None: the mode it had before plan mode).
    /// Rejected, the agent reads feedback and usually proposes a revised
    /// plan (a new exit_plan_mode event) in the same turn. Raises
    /// QuestionNotFound (no plan waits) or InvalidAnswer (a mode with a
    /// rejection, an empty mode).
    #[pyo3(signature = (session_id, approved, feedback=None, mode=None))]
    fn approve_plan(
        &self,
        py: Python<'_>,
        session_id: &str,
        approved: bool,
        feedback: Option<&str>,
        mode: Option<&str>,
    ) -> PyResult<()> {
        let engine = self.pool.engine.clone();
        self.pool
            .block(
                py,
                engine.approve_plan(session_id, approved, feedback, mode),
            )
            .map_err(|e| core_error(py, e))
    }

    /// How full session_id's context window is, as its agent reports it (a
    /// dict: totalTokens, maxTokens, percentage, categories, ...). Needs a
    /// running process (SessionDead otherwise); raises as set_model.
    fn context_usage<'py>(&self, py: Python<'py>, session_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        let usage = self
            .pool
            .block(py, engine.context_usage(session_id))
            .map_err(|e| core_error(py, e))?;
        json_to_py(py, &usage)
    }

    /// The state of session_id's MCP servers, as its agent reports it (a
    /// dict: {"mcpServers": [{"name": ..., "status": ...}, ...]}). Needs a
    /// running process; raises as context_usage.
    fn mcp_status<'py>(&self, py: Python<'py>, session_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        let status = self
            .pool
            .block(py, engine.mcp_status(session_id))
            .map_err(|e| core_error(py, e))?;
        json_to_py(py, &status)
    }

    /// Makes session_id forget its conversation: its next turn starts a new
    /// one. Turns already queued run first, in the old conversation; a
    /// running process is then stopped. With forget_transcript the old
    /// conversation's transcript is deleted too (best effort). Works whether
    /// or not the session is in the pool.
    #[pyo3(signature = (session_id, *, forget_transcript=false))]
    fn reset_session(
        &self,
        py: Python<'_>,
        session_id: &str,
        forget_transcript: bool,
    ) -> PyResult<()> {
        let engine = self.pool.engine.clone();
        self.pool
            .block(py, engine.reset_session(session_id, forget_transcript))
            .map_err(|e| core_error(py, e))
    }

    /// Starts session new_id as a copy of session_id's conversation: its
    /// first turn resumes that conversation under a new id, in the same
    /// workdir, and from then on the two continue separately (session_id is
    /// unchanged). With at_message (a Turn.message_uuid of session_id) the
    /// copy ends at that message. Raises SessionNotFound when session_id
    /// has no conversation yet, InvalidArgument when new_id is in the pool
    /// or at_message is not a message id.
    #[pyo3(signature = (session_id, new_id, *, at_message = None))]
    fn fork_session(
        &self,
        py: Python<'_>,
        session_id: &str,
        new_id: &str,
        at_message: Option<&str>,
    ) -> PyResult<()> {
        self.pool
            .engine
            .fork_session(session_id, new_id, at_message)
            .map_err(|e| core_error(py, e))
    }

    /// Keeps `spares` agent processes started for new conversations in
    /// workdir (None: default_workdir) with the session options `session`
    /// (a dict, see hotplex.SessionOptions; None: none): a session's first
    /// turn with that workdir and options, when the session has no
    /// conversation to resume or fork, goes to a spare's running process
    /// instead of starting one. Replaces the profile of the same workdir
    /// and options (the prewarm option of Engine() lists the first ones);
    /// spares=0 removes it. Spares count toward max_sessions and are
    /// started in the background. Raises InvalidConfig or Closed.
    #[pyo3(signature = (spares, workdir=None, *, session=None))]
    fn prewarm(
        &self,
        py: Python<'_>,
        spares: &Bound<'_, PyAny>,
        workdir: Option<&Bound<'_, PyAny>>,
        session: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.pool.prewarm(py, spares, workdir, session)
    }

    /// Stops every session and kills every process tree; afterwards every
    /// call raises Closed. Idempotent.
    fn close(&self, py: Python<'_>) {
        let rt = self.pool.rt.clone();
        let engine = self.pool.engine.clone();
        lifecycle::detach(py, || rt.block_on(engine.close()));
    }

    /// The engine's metrics as OpenMetrics text (ending with "# EOF"), what
    /// a Prometheus scrape of /metrics returns; serve it where you like, or
    /// register hotplex.PrometheusCollector(engine) with prometheus_client.
    /// hotplex opens no port. Every family is listed in the schema's
    /// x-hotplex-metrics.
    fn metrics_text(&self) -> String {
        self.pool.engine.metrics_text()
    }

    /// The engine's metrics as a list of families, each a dict with "name"
    /// (as exposed: counters end in _total), "type", "help" and "samples"
    /// (dicts with "name", "labels" (a dict of str) and "value").
    fn metrics_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.pool.metrics_snapshot(py)
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.pool.engine.is_closed()
    }

    /// The WAF screening this engine's prompts and tool calls.
    #[getter]
    fn detector(&self) -> Detector {
        Detector::from_core(self.pool.engine.detector().clone())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    // Returns None, not False: `with Engine() as e: return ...` type-checks.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) {
        self.close(py)
    }

    // The observer may hold this engine (a bound method of its owner).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.pool.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.pool.clear();
    }

    fn __repr__(&self) -> String {
        self.pool.repr("Engine")
    }
}

/// The defaults of the engine options, for `Engine.__doc__`: read from the
/// core's schema (generated from `EngineOptions::default()`), so this
/// binding holds no copy of them. Empty and None defaults are left out.
pub fn defaults_doc() -> String {
    // The core's wire form of its defaults (durations in seconds).
    let defaults = core::EngineOptions::default().to_json();
    let mut lines = Vec::new();
    for (name, value) in defaults.as_object().into_iter().flatten() {
        let shown = match value {
            Value::Null => continue,
            Value::Array(a) if a.is_empty() => continue,
            // An object of defaults that are all unset (`limits`) says nothing.
            Value::Object(o) if o.values().all(Value::is_null) => continue,
            v => v.to_string(),
        };
        lines.push(format!("    {name}={shown}"));
    }
    format!("Defaults (from hotplex-core):\n\n{}", lines.join("\n"))
}
