//! `hotplex.Engine`: the session pool, for Python, as a thin layer over
//! `hotplex_core::Engine`.
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
//! turn (the agent is interrupted) and raises in the caller.

use std::sync::Arc;
use std::time::Duration;

use hotplex_core::{
    self as core, EngineOptions, Permission, PermissionHandler, ToolRequest, TurnOptions,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};
use serde_json::{Map, Value};

use crate::convert::{json_to_py, py_to_json};
use crate::detector::Detector;
use crate::errors::core_error;
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
fn record(py: Python<'_>, class: &str, v: &Value) -> PyResult<Py<PyAny>> {
    let cls = py.import("hotplex._contract")?.getattr(class)?;
    Ok(cls
        .call_method1("_from_json", (json_to_py(py, v)?,))?
        .unbind())
}

/// Waits for the next event with the GIL released, checking for signals.
/// `None`: the turn is over.
fn next_event(
    py: Python<'_>,
    rt: &tokio::runtime::Runtime,
    stream: &mut core::TurnStream,
) -> PyResult<Option<core::Event>> {
    loop {
        let got = py.detach(|| {
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
/// raised the turn's error. `close()` (or leaving a `with` block, or
/// dropping the iterator) cancels a turn still running.
#[pyclass(module = "hotplex", name = "TurnStream")]
pub struct TurnStream {
    rt: Arc<tokio::runtime::Runtime>,
    stream: Option<core::TurnStream>,
    turn: Option<Py<PyAny>>,
}

#[pymethods]
impl TurnStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let rt = self.rt.clone();
        let event = next_event(py, &rt, stream);
        if let Ok(Some(e)) = &event {
            return record(py, "Event", &e.to_json()).map(Some);
        }
        // The turn is over (or a signal cancels it).
        let stream = self.stream.take();
        event?;
        let Some(stream) = stream else {
            return Ok(None);
        };
        let turn = py
            .detach(|| rt.block_on(stream.finish()))
            .map_err(|e| core_error(py, e))?;
        self.turn = Some(record(py, "Turn", &turn.to_json())?);
        Ok(None)
    }

    /// The finished turn, once iteration ended without an error.
    #[getter]
    fn turn(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.turn.as_ref().map(|t| t.clone_ref(py))
    }

    /// Cancels the turn if it still runs (the agent is interrupted).
    fn close(&mut self) {
        self.stream = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, _exc: &Bound<'_, PyTuple>) {
        self.stream = None;
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
/// was created (call execute via asyncio.to_thread to keep it free), waited
/// for up to turn_timeout. Without that loop, or if the callback raises or
/// times out, the error goes to sys.unraisablehook and the call is denied.
///
/// observer(record) receives a hotplex.LifecycleRecord for each lifecycle
/// event (a session started or exited, a turn finished, a WAF verdict, a
/// process tree signalled), in order, on hotplex's observer thread (never
/// the caller's), through a bounded queue: a slow observer loses records,
/// counted in hotplex_observer_dropped_total, and never stalls a turn. An
/// exception in it goes to sys.unraisablehook and loses that record only.
#[pyclass(module = "hotplex", name = "Engine")]
pub struct Engine {
    rt: Option<Arc<tokio::runtime::Runtime>>,
    engine: core::Engine,
    /// The observer, also held by the core (visible to the GC from here).
    observer: Option<ObserverSlot>,
}

/// Asks the host's `can_use_tool`: its answer (awaited on the host's loop
/// by `hotplex._permission.resolve` when it is a coroutine) goes to the
/// core's rule as JSON.
fn permission_handler(
    cb: Py<PyAny>,
    event_loop: Option<Py<PyAny>>,
    timeout: f64,
) -> PermissionHandler {
    Arc::new(move |req: &ToolRequest<'_>| {
        Python::attach(|py| {
            let cb = cb.bind(py);
            let ask = || -> PyResult<Bound<'_, PyAny>> {
                let input = json_to_py(py, req.input)?;
                let verdict = Verdict::from_core(req.verdict.clone(), None);
                let answer = cb.call1((req.tool_name, input, verdict))?;
                let resolve = py.import("hotplex._permission")?.getattr("resolve")?;
                resolve.call1((answer, event_loop.as_ref().map(|l| l.bind(py)), timeout))
            };
            match ask() {
                Ok(answer) => match py_to_json(&answer, "can_use_tool answer") {
                    Ok(v) => Permission::from_answer(&v),
                    Err(what) => Permission::unexpected(&what),
                },
                Err(err) => {
                    let why = err.value(py).to_string();
                    err.write_unraisable(py, Some(cb));
                    Permission::failed(&why)
                }
            }
        })
    })
}

impl Engine {
    fn rt(&self) -> PyResult<&Arc<tokio::runtime::Runtime>> {
        self.rt
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("engine runtime is gone"))
    }

    /// The turn options as the core reads them; None values are left out.
    /// The keyword arguments `workdir`, `timeout` and `waf_approved` of
    /// `execute`/`stream`, read by the core (None: the core's default).
    fn turn_options(
        py: Python<'_>,
        workdir: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        waf_approved: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TurnOptions> {
        let given = [
            ("workdir", workdir),
            ("timeout", timeout),
            ("waf_approved", waf_approved),
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
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(
        signature = (*args, **kwargs),
        text_signature = "(binary=None, args=None, env=None, max_sessions=None, idle_timeout=None, turn_timeout=None, startup_timeout=None, state_dir=None, permission_mode=None, allowed_tools=None, disallowed_tools=None, allowed_roots=None, *, namespace=None, system_prompt=None, model=None, env_allow=None, max_concurrent_starts=None, interrupt_grace=None, max_prompt_bytes=None, default_workdir=None, detector=None, can_use_tool=None, observer=None)"
    )]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Engine> {
        if args.len() > POSITIONAL.len() {
            return Err(PyTypeError::new_err(format!(
                "Engine() takes at most {} positional arguments ({} given)",
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
                    "Engine() got multiple values for argument '{name}'"
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
        if let Some(cb) = can_use_tool.filter(|c| !c.is_none()) {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("can_use_tool must be callable"));
            }
            // The loop an async callback's coroutines run on, if any.
            let event_loop = py
                .import("asyncio")?
                .call_method0("get_running_loop")
                .ok()
                .map(Bound::unbind);
            let timeout = opts.turn_timeout.as_secs_f64();
            opts.permission_handler = Some(permission_handler(cb.unbind(), event_loop, timeout));
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
        Ok(Engine {
            rt: Some(Arc::new(rt)),
            engine,
            observer: slot,
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
    #[pyo3(signature = (session_id, prompt, workdir=None, on_event=None, *, timeout=None, waf_approved=None))]
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
    ) -> PyResult<Py<PyAny>> {
        let on_event = on_event.filter(|cb| !cb.is_none());
        if on_event.is_some_and(|cb| !cb.is_callable()) {
            return Err(PyTypeError::new_err("on_event must be callable"));
        }
        let rt = self.rt()?.clone();
        let opts = Self::turn_options(py, workdir, timeout, waf_approved)?;
        let mut stream = self.engine.start(session_id, prompt, &opts);
        while let Some(e) = next_event(py, &rt, &mut stream)? {
            if let Some(cb) = on_event {
                // A failing callback is reported and never breaks the turn.
                let called = record(py, "Event", &e.to_json()).and_then(|ev| cb.call1((ev,)));
                if let Err(err) = called {
                    err.write_unraisable(py, Some(cb));
                }
            }
        }
        let turn = py
            .detach(|| rt.block_on(stream.finish()))
            .map_err(|e| core_error(py, e))?;
        record(py, "Turn", &turn.to_json())
    }

    /// Like execute, but returns an iterator over the turn's events as they
    /// arrive; its `turn` attribute holds the Turn afterwards, and errors
    /// are raised by the iteration (those found before the turn is queued,
    /// such as DangerBlocked, by this call).
    #[pyo3(signature = (session_id, prompt, workdir=None, *, timeout=None, waf_approved=None))]
    fn stream(
        &self,
        py: Python<'_>,
        session_id: &str,
        prompt: &str,
        workdir: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        waf_approved: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TurnStream> {
        let rt = self.rt()?.clone();
        let opts = Self::turn_options(py, workdir, timeout, waf_approved)?;
        let stream = self
            .engine
            .submit(session_id, prompt, &opts)
            .map_err(|e| core_error(py, e))?;
        Ok(TurnStream {
            rt,
            stream: Some(stream),
            turn: None,
        })
    }

    /// Snapshots of every session, sorted by id.
    fn sessions(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let infos = self.engine.sessions();
        infos
            .iter()
            .map(|s| record(py, "SessionInfo", &s.to_json()))
            .collect()
    }

    /// Totals of a session as a dict (see hotplex.SessionStats for the
    /// keys), or None for an unknown id.
    fn session_stats<'py>(
        &self,
        py: Python<'py>,
        session_id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.engine
            .session_stats(session_id)
            .map(|s| json_to_py(py, &s.to_json()))
            .transpose()
    }

    /// Stops a session: its running and queued turns raise SessionDead and
    /// its process tree is killed (returns once confirmed gone). The
    /// conversation resumes if the id is used again. Returns whether the
    /// session existed.
    fn stop_session(&self, py: Python<'_>, session_id: &str) -> PyResult<bool> {
        let rt = self.rt()?.clone();
        let engine = self.engine.clone();
        Ok(py.detach(|| rt.block_on(engine.stop_session(session_id))))
    }

    /// Stops every session and kills every process tree; afterwards every
    /// call raises Closed. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let rt = self.rt()?.clone();
        let engine = self.engine.clone();
        py.detach(|| rt.block_on(engine.close()));
        Ok(())
    }

    /// The engine's metrics as OpenMetrics text (ending with "# EOF"), what
    /// a Prometheus scrape of /metrics returns; serve it where you like, or
    /// register hotplex.PrometheusCollector(engine) with prometheus_client.
    /// hotplex opens no port. Every family is listed in the schema's
    /// x-hotplex-metrics.
    fn metrics_text(&self) -> String {
        self.engine.metrics_text()
    }

    /// The engine's metrics as a list of families, each a dict with "name"
    /// (as exposed: counters end in _total), "type", "help" and "samples"
    /// (dicts with "name", "labels" (a dict of str) and "value").
    fn metrics_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.engine.metrics_snapshot())
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.engine.is_closed()
    }

    /// The WAF screening this engine's prompts and tool calls.
    #[getter]
    fn detector(&self) -> Detector {
        Detector::from_core(self.engine.detector().clone())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    // Returns None, not False: `with Engine() as e: return ...` type-checks.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close(py)
    }

    // The observer may hold this engine (a bound method of its owner).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.observer {
            Some(slot) => slot.traverse(&visit),
            None => Ok(()),
        }
    }

    fn __clear__(&mut self) {
        if let Some(slot) = &self.observer {
            drop(slot.clear());
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(sessions={}, closed={})",
            self.engine.sessions().len(),
            self.engine.is_closed()
        )
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Dropping the core engine stops every actor; each kills its tree
        // on its own (the supervisors finish even without the runtime).
        // Never block a Python thread here.
        if let Some(rt) = self.rt.take() {
            if let Ok(rt) = Arc::try_unwrap(rt) {
                rt.shutdown_background();
            }
        }
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
