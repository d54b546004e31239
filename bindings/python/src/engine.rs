//! `hotplex.Engine`: the session pool, for Python, as a thin layer over
//! `hotplex_core::Engine`; and [`Pool`], what it shares with
//! `hotplex.AsyncEngine` (`crate::aio`): the option handling, the runtime,
//! the permission handler and the synchronous queries.
//!
//! Options go in as one JSON object read by the core
//! (`EngineOptions::from_json`, `TurnOptions::from_json`), so defaults and
//! validation exist only there. Records go out as the core's JSON, wrapped
//! by the dataclasses of `hotplex/_contract.py`. A permission answer is
//! converted to JSON and read by `Permission::from_answer`.
//!
//! The engine owns a small tokio runtime on which every session's actor
//! runs. Python calls block on it with the GIL released, waking every
//! 100 ms to let Ctrl-C (and other signals) through: a signal cancels the
//! turn (the agent is interrupted) and raises in the caller. Every wait
//! goes through `crate::lifecycle`, so a daemon thread blocked here at
//! interpreter exit never takes the GIL back.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hotplex_core::{
    self as core, EngineOptions, Permission, PermissionHandler, ToolRequest, TurnOptions,
};
use pyo3::exceptions::{PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::convert::{json_to_py, py_to_json};
use crate::detector::Detector;
use crate::errors::core_error;
use crate::lifecycle;
use crate::telemetry::{self, ObserverSlot};
use crate::verdict::Verdict;

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

/// The asyncio loop an async `can_use_tool` runs on: for an Engine, the
/// one running when it was created; for an AsyncEngine, the one its
/// latest call ran on.
#[derive(Clone, Default)]
pub(crate) struct LoopSlot(Arc<Mutex<Option<Py<PyAny>>>>);

impl LoopSlot {
    /// Remembers the loop running in this thread, if any.
    pub(crate) fn capture(&self, py: Python<'_>) {
        let running = py
            .import("asyncio")
            .and_then(|a| a.call_method0("get_running_loop"));
        if let Ok(running) = running {
            self.set(running.unbind());
        }
    }

    pub(crate) fn set(&self, event_loop: Py<PyAny>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(event_loop);
    }

    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|l| l.clone_ref(py))
    }
}

/// A `can_use_tool` answer: at once, or later from the host's loop.
enum Asked {
    Now(Permission),
    /// The coroutine runs on the loop; its answer comes through the
    /// channel. The `concurrent.futures.Future` is cancelled on timeout.
    Later(mpsc::Receiver<Permission>, Py<PyAny>),
}

/// A Python answer as the core's permission.
fn permission_of(answer: &Bound<'_, PyAny>) -> Permission {
    match py_to_json(answer, "can_use_tool answer") {
        Ok(v) => Permission::from_answer(&v),
        Err(what) => Permission::unexpected(&what),
    }
}

/// A failed callback denies; the error goes to sys.unraisablehook.
fn failed(py: Python<'_>, err: PyErr, cb: &Bound<'_, PyAny>) -> Permission {
    let why = err.value(py).to_string();
    err.write_unraisable(py, Some(cb));
    Permission::failed(&why)
}

/// Calls `can_use_tool`; a coroutine it returns is scheduled on the
/// loop by `hotplex._permission.schedule`, and its answer is sent back by a
/// done-callback on the loop's thread.
fn ask(py: Python<'_>, cb: &Bound<'_, PyAny>, loops: &LoopSlot, req: &ToolRequest<'_>) -> Asked {
    let asked = || -> PyResult<Asked> {
        let input = json_to_py(py, req.input)?;
        let verdict = Verdict::from_core(req.verdict.clone(), None);
        let answer = cb.call1((req.tool_name, input, verdict))?;
        let awaitable = py
            .import("inspect")?
            .call_method1("isawaitable", (&answer,))?
            .is_truthy()?;
        if !awaitable {
            return Ok(Asked::Now(permission_of(&answer)));
        }
        let schedule = py.import("hotplex._permission")?.getattr("schedule")?;
        let future = schedule.call1((answer, loops.get(py)))?;
        let (tx, rx) = mpsc::sync_channel(1);
        let reporter = cb.clone().unbind();
        let done = PyCFunction::new_closure(py, None, None, move |args, _| -> PyResult<()> {
            let py = args.py();
            let future = args.get_item(0)?;
            // Cancelled: the wait timed out and already reported it.
            let permission = if future.call_method0("cancelled")?.is_truthy()? {
                Permission::failed("cancelled")
            } else {
                match future.call_method0("result") {
                    Ok(answer) => permission_of(&answer),
                    Err(err) => failed(py, err, reporter.bind(py)),
                }
            };
            let _ = tx.send(permission);
            Ok(())
        })?;
        future.call_method1("add_done_callback", (done,))?;
        Ok(Asked::Later(rx, future.unbind()))
    };
    asked().unwrap_or_else(|err| Asked::Now(failed(py, err, cb)))
}

/// Asks the host's `can_use_tool` (on a runtime thread). An async callback
/// is awaited on the host's loop while this thread waits without the GIL,
/// up to `timeout`; past it, or once the interpreter is exiting, the call is
/// denied.
fn permission_handler(cb: Py<PyAny>, loops: LoopSlot, timeout: Duration) -> PermissionHandler {
    Arc::new(move |req: &ToolRequest<'_>| {
        let asked = lifecycle::attach(|py| ask(py, cb.bind(py), &loops, req));
        match asked {
            None => Permission::failed("the Python interpreter is exiting"),
            Some(Asked::Now(p)) => p,
            Some(Asked::Later(rx, future)) => match rx.recv_timeout(timeout) {
                Ok(p) => p,
                Err(_) => {
                    let why = format!(
                        "can_use_tool did not answer within {} s; is its event loop blocked \
                         (e.g. by Engine.execute called on the loop's thread; use \
                         hotplex.AsyncEngine)?",
                        timeout.as_secs_f64()
                    );
                    lifecycle::attach(|py| {
                        let _ = future.bind(py).call_method0("cancel");
                        PyTimeoutError::new_err(why.clone())
                            .write_unraisable(py, Some(cb.bind(py)));
                    });
                    Permission::failed(&why)
                }
            },
        }
    })
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
        let mut wire = Map::new();
        for (name, v) in given {
            match name.as_str() {
                // Not wire options: objects of this language.
                "detector" => detector = Some(v),
                "can_use_tool" => can_use_tool = Some(v),
                "observer" => observer = Some(v),
                _ => {
                    let json = py_to_json(&v, &name).map_err(|m| invalid_config(py, m))?;
                    wire.insert(name, json);
                }
            }
        }
        let mut opts =
            EngineOptions::from_json(&Value::Object(wire)).map_err(|e| core_error(py, e))?;
        if let Some(d) = detector.filter(|d| !d.is_none()) {
            let d = d
                .extract::<PyRef<'_, Detector>>()
                .map_err(|_| PyTypeError::new_err("detector must be a hotplex.Detector"))?;
            opts.detector = Some(Arc::new(d.core().clone()));
        }
        let loops = LoopSlot::default();
        // The loop an async callback's coroutines run on, if any.
        loops.capture(py);
        if let Some(cb) = can_use_tool.filter(|c| !c.is_none()) {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("can_use_tool must be callable"));
            }
            opts.permission_handler = Some(permission_handler(
                cb.unbind(),
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

    /// The turn options as the core reads them; None values are left out.
    /// The keyword arguments `workdir`, `timeout`, `waf_approved` and
    /// `partial_messages` of
    /// `execute`/`stream`, read by the core (None: the core's default).
    pub(crate) fn turn_options(
        py: Python<'_>,
        workdir: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        waf_approved: Option<&Bound<'_, PyAny>>,
        partial_messages: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TurnOptions> {
        let given = [
            ("workdir", workdir),
            ("timeout", timeout),
            ("waf_approved", waf_approved),
            ("partial_messages", partial_messages),
        ];
        let mut wire = Map::new();
        for (name, value) in given {
            if let Some(v) = value {
                let v = py_to_json(v, name).map_err(|m| invalid_config(py, m))?;
                wire.insert(name.to_owned(), v);
            }
        }
        TurnOptions::from_json(&Value::Object(wire)).map_err(|e| core_error(py, e))
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
/// can_use_tool(tool_name, input, verdict) decides tool calls the WAF let
/// through, on an engine thread: True, None or {"behavior": "allow"[,
/// "updatedInput": {...}]} allow (the new input is screened again); False, a
/// str, {"behavior": "deny"[, "message": str]} and anything else deny. An
/// async callback runs on the asyncio loop that was running when the Engine
/// was created, waited for up to turn_timeout; in asyncio code use
/// hotplex.AsyncEngine, which never blocks the loop. Without that loop, or
/// if the callback raises or times out, the error goes to
/// sys.unraisablehook and the call is denied.
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
        text_signature = "(binary=None, args=None, env=None, max_sessions=None, idle_timeout=None, turn_timeout=None, startup_timeout=None, state_dir=None, permission_mode=None, allowed_tools=None, disallowed_tools=None, allowed_roots=None, *, namespace=None, system_prompt=None, model=None, env_allow=None, max_concurrent_starts=None, interrupt_grace=None, max_prompt_bytes=None, partial_messages=None, max_line_bytes=None, max_turn_events=None, max_turn_event_bytes=None, default_workdir=None, detector=None, can_use_tool=None, observer=None)"
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
    /// Raises DangerBlocked (prompt blocked by the WAF, after a danger_block
    /// event), TurnTimeout, SessionDead, TurnFailed, CapacityExceeded,
    /// StartFailed, InvalidConfig or Closed.
    #[pyo3(signature = (session_id, prompt, workdir=None, on_event=None, *, timeout=None, waf_approved=None, partial_messages=None))]
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
    ) -> PyResult<Py<PyAny>> {
        let on_event = on_event.filter(|cb| !cb.is_none());
        if on_event.is_some_and(|cb| !cb.is_callable()) {
            return Err(PyTypeError::new_err("on_event must be callable"));
        }
        let rt = self.pool.rt.clone();
        let opts = Pool::turn_options(py, workdir, timeout, waf_approved, partial_messages)?;
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
    #[pyo3(signature = (session_id, prompt, workdir=None, *, timeout=None, waf_approved=None, partial_messages=None))]
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
    ) -> PyResult<TurnStream> {
        let opts = Pool::turn_options(py, workdir, timeout, waf_approved, partial_messages)?;
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
            Value::Object(o) if o.is_empty() => continue,
            v => v.to_string(),
        };
        lines.push(format!("    {name}={shown}"));
    }
    format!("Defaults (from hotplex-core):\n\n{}", lines.join("\n"))
}
