//! `hotplex.Engine`: the session pool, for Python.
//!
//! The engine owns a small tokio runtime (two worker threads) on which every
//! session's actor runs. Python calls block on it with the GIL released,
//! waking every 100 ms to let Ctrl-C (and other signals) through: a signal
//! cancels the turn (the agent is interrupted) and raises in the caller.
//!
//! Callbacks (`on_event`, `can_use_tool`) are Python callables. `on_event`
//! runs in the calling thread, in event order. `can_use_tool` runs on a
//! runtime thread (it takes the GIL); an exception in either is reported
//! through `sys.unraisablehook` and never breaks the turn (a failing
//! `can_use_tool` denies).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotplex_core::pool::{Permission, PermissionHandler, ToolRequest};
use hotplex_core::{self as core, EngineOptions, TurnOptions};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::Value;

use crate::detector::Detector;
use crate::errors::core_error;
use crate::verdict::Verdict;

/// How often a blocked call wakes to check for signals.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// JSON to Python objects, through the json module (exact and simple).
pub(crate) fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

fn seconds(name: &str, v: f64) -> PyResult<Duration> {
    if !v.is_finite() || v <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds"
        )));
    }
    Duration::try_from_secs_f64(v).map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

fn str_list(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Vec<String>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a list of str, not a single str"
        )));
    }
    obj.try_iter()?.map(|i| i?.extract::<String>()).collect()
}

/// One event of a turn: `type` is the seed's name (`session_start`,
/// `thinking`, `answer`, `tool_use`, `tool_result`, `permission_request`,
/// `danger_block`, `session_stats`, `error`); `data` holds its fields.
#[pyclass(frozen, module = "hotplex", name = "Event")]
pub struct Event {
    kind: &'static str,
    json: Value,
}

impl Event {
    fn from_core(e: &core::Event) -> Event {
        Event {
            kind: e.name(),
            json: e.to_json(),
        }
    }
}

#[pymethods]
impl Event {
    /// The event name.
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The event's fields as a dict (the same keys as the other bindings).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut v = self.json.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("type");
        }
        json_to_py(py, &v)
    }

    fn __repr__(&self) -> String {
        let mut text = self.json.to_string();
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        format!("Event({:?}, {text})", self.kind)
    }
}

/// A finished turn.
#[pyclass(frozen, module = "hotplex", name = "Turn")]
pub struct Turn {
    inner: core::Turn,
}

#[pymethods]
impl Turn {
    /// The answer text.
    #[getter]
    fn text(&self) -> &str {
        &self.inner.text
    }
    /// False for a returned turn (error results raise TurnFailed).
    #[getter]
    fn is_error(&self) -> bool {
        self.inner.is_error
    }
    /// Whether this turn started the agent process.
    #[getter]
    fn cold_start(&self) -> bool {
        self.inner.cold_start
    }
    /// Whether that start resumed an earlier conversation.
    #[getter]
    fn resumed(&self) -> bool {
        self.inner.resumed
    }
    /// Wall time of the turn in milliseconds (after any queueing).
    #[getter]
    fn duration_ms(&self) -> f64 {
        self.inner.duration.as_secs_f64() * 1000.0
    }
    /// Milliseconds the turn waited behind earlier turns of its session.
    #[getter]
    fn queued_ms(&self) -> f64 {
        self.inner.queued.as_secs_f64() * 1000.0
    }
    /// Token usage: input_tokens, output_tokens, cache_creation_input_tokens,
    /// cache_read_input_tokens.
    #[getter]
    fn usage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.stats.to_json()["usage"])
    }
    /// Cost in USD as the CLI reports it.
    #[getter]
    fn cost_usd(&self) -> f64 {
        self.inner.stats.cost_usd
    }
    /// The model, from the CLI's system/init.
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.stats.model.as_deref()
    }
    /// Tool calls: dicts with id, name, is_error, duration_ms.
    #[getter]
    fn tools<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.stats.to_json()["tools"])
    }
    /// Every event of the turn, in order.
    #[getter]
    fn events(&self) -> Vec<Event> {
        self.inner.events.iter().map(Event::from_core).collect()
    }
    /// The agent's pid.
    #[getter]
    fn pid(&self) -> i32 {
        self.inner.pid
    }
    /// The provider (CLI) session id.
    #[getter]
    fn provider_session_id(&self) -> &str {
        &self.inner.provider_session_id
    }

    fn __repr__(&self) -> String {
        format!(
            "Turn(text={:?}, cold_start={}, duration_ms={:.1})",
            self.inner.text.chars().take(60).collect::<String>(),
            if self.inner.cold_start {
                "True"
            } else {
                "False"
            },
            self.inner.duration.as_secs_f64() * 1000.0
        )
    }
}

/// A snapshot of one session.
#[pyclass(frozen, module = "hotplex", name = "SessionInfo")]
pub struct SessionInfo {
    inner: core::SessionInfo,
}

#[pymethods]
impl SessionInfo {
    /// The host's session id.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// The agent's pid, or None when no process runs.
    #[getter]
    fn pid(&self) -> Option<i32> {
        self.inner.pid
    }
    /// "starting", "ready", "busy" or "dead".
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }
    /// Turns answered.
    #[getter]
    fn turns(&self) -> u64 {
        self.inner.turns
    }
    /// Turns queued or running.
    #[getter]
    fn pending(&self) -> usize {
        self.inner.pending
    }
    /// The working directory of the current (or last) process.
    #[getter]
    fn workdir(&self) -> Option<PathBuf> {
        self.inner.workdir.clone()
    }
    /// Seconds since the session last saw input or output.
    #[getter]
    fn idle_seconds(&self) -> f64 {
        self.inner.idle_for.as_secs_f64()
    }
    /// The provider (CLI) session id.
    #[getter]
    fn provider_session_id(&self) -> &str {
        &self.inner.provider_session_id
    }

    fn __repr__(&self) -> String {
        let pid = self
            .inner
            .pid
            .map_or_else(|| "None".to_owned(), |p| p.to_string());
        format!(
            "SessionInfo(id={:?}, pid={pid}, status={:?}, turns={})",
            self.inner.id,
            self.inner.status.as_str(),
            self.inner.turns
        )
    }
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

fn call_on_event(py: Python<'_>, cb: &Bound<'_, PyAny>, e: &core::Event) {
    let ev = match Bound::new(py, Event::from_core(e)) {
        Ok(ev) => ev,
        Err(err) => return err.write_unraisable(py, None),
    };
    if let Err(err) = cb.call1((ev,)) {
        err.write_unraisable(py, Some(cb));
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
    turn: Option<Py<Turn>>,
}

#[pymethods]
impl TurnStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Event>> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let rt = self.rt.clone();
        match next_event(py, &rt, stream) {
            Ok(Some(e)) => Ok(Some(Event::from_core(&e))),
            Ok(None) => {
                let stream = self
                    .stream
                    .take()
                    .ok_or_else(|| PyValueError::new_err("no turn"))?;
                match py.detach(|| rt.block_on(stream.finish())) {
                    Ok(t) => {
                        self.turn = Some(Py::new(py, Turn { inner: t })?);
                        Ok(None)
                    }
                    Err(e) => Err(core_error(py, e)),
                }
            }
            Err(signal) => {
                self.stream = None;
                Err(signal)
            }
        }
    }

    /// The finished turn, once iteration ended without an error.
    #[getter]
    fn turn(&self, py: Python<'_>) -> Option<Py<Turn>> {
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
    fn __exit__(&mut self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stream = None;
        false
    }
}

/// The session pool: one hot agent process per session id.
///
/// Engine(binary="claude", args=[], env={}, max_sessions=64,
/// idle_timeout=1800.0, turn_timeout=300.0, startup_timeout=30.0,
/// state_dir=None, permission_mode=None, allowed_tools=None,
/// disallowed_tools=None, allowed_roots=None, *, namespace="default",
/// system_prompt=None, model=None, env_allow=None, max_concurrent_starts=4,
/// interrupt_grace=5.0, max_prompt_bytes=1048576, default_workdir=None,
/// detector=None, can_use_tool=None)
///
/// Durations are in seconds. env is added to the agent's environment, which
/// otherwise inherits only env_allow (default: PATH, HOME, USER, LANG, LC_*,
/// TERM, TMPDIR, SHELL). detector is a hotplex.Detector (default: built-in
/// rules). can_use_tool(tool_name, input, verdict) decides tool calls the
/// WAF let through: True/None allows, False denies, a str denies with that
/// message. Raises InvalidConfig for bad options.
#[pyclass(module = "hotplex", name = "Engine")]
pub struct Engine {
    rt: Option<Arc<tokio::runtime::Runtime>>,
    engine: core::Engine,
}

impl Engine {
    fn rt(&self) -> PyResult<&Arc<tokio::runtime::Runtime>> {
        self.rt
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("engine runtime is gone"))
    }

    fn turn_options(
        workdir: Option<PathBuf>,
        timeout: Option<f64>,
        waf_approved: bool,
    ) -> PyResult<TurnOptions> {
        Ok(TurnOptions {
            workdir,
            timeout: timeout.map(|t| seconds("timeout", t)).transpose()?,
            waf_approved,
        })
    }
}

fn permission_handler(cb: Py<PyAny>) -> PermissionHandler {
    Arc::new(move |req: &ToolRequest<'_>| {
        Python::attach(|py| {
            let cb = cb.bind(py);
            let call = || -> PyResult<Permission> {
                let input = json_to_py(py, req.input)?;
                let verdict = Verdict::from_core(req.verdict.clone(), None);
                let answer = cb.call1((req.tool_name, input, verdict))?;
                if answer.is_none() {
                    return Ok(Permission::Allow);
                }
                if let Ok(msg) = answer.extract::<String>() {
                    return Ok(Permission::Deny(msg));
                }
                Ok(if answer.is_truthy()? {
                    Permission::Allow
                } else {
                    Permission::Deny("denied by the host".into())
                })
            };
            call().unwrap_or_else(|err| {
                err.write_unraisable(py, Some(cb));
                Permission::Deny("the host's permission check failed".into())
            })
        })
    })
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(
        text_signature = "(binary='claude', args=None, env=None, max_sessions=64, idle_timeout=1800.0, turn_timeout=300.0, startup_timeout=30.0, state_dir=None, permission_mode=None, allowed_tools=None, disallowed_tools=None, allowed_roots=None, *, namespace='default', system_prompt=None, model=None, env_allow=None, max_concurrent_starts=4, interrupt_grace=5.0, max_prompt_bytes=1048576, default_workdir=None, detector=None, can_use_tool=None)"
    )]
    #[pyo3(signature = (
        binary=PathBuf::from("claude"), args=None, env=None, max_sessions=64, idle_timeout=1800.0,
        turn_timeout=300.0, startup_timeout=30.0, state_dir=None, permission_mode=None,
        allowed_tools=None, disallowed_tools=None, allowed_roots=None, *,
        namespace="default", system_prompt=None, model=None, env_allow=None,
        max_concurrent_starts=4, interrupt_grace=5.0, max_prompt_bytes=1048576,
        default_workdir=None, detector=None, can_use_tool=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        binary: PathBuf,
        args: Option<&Bound<'_, PyAny>>,
        env: Option<&Bound<'_, PyDict>>,
        max_sessions: usize,
        idle_timeout: f64,
        turn_timeout: f64,
        startup_timeout: f64,
        state_dir: Option<PathBuf>,
        permission_mode: Option<String>,
        allowed_tools: Option<&Bound<'_, PyAny>>,
        disallowed_tools: Option<&Bound<'_, PyAny>>,
        allowed_roots: Option<Vec<PathBuf>>,
        namespace: &str,
        system_prompt: Option<String>,
        model: Option<String>,
        env_allow: Option<&Bound<'_, PyAny>>,
        max_concurrent_starts: usize,
        interrupt_grace: f64,
        max_prompt_bytes: usize,
        default_workdir: Option<PathBuf>,
        detector: Option<PyRef<'_, Detector>>,
        can_use_tool: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Engine> {
        let mut opts = EngineOptions {
            binary,
            args: str_list(args, "args")?,
            max_sessions,
            idle_timeout: seconds("idle_timeout", idle_timeout)?,
            turn_timeout: seconds("turn_timeout", turn_timeout)?,
            startup_timeout: seconds("startup_timeout", startup_timeout)?,
            interrupt_grace: seconds("interrupt_grace", interrupt_grace)?,
            state_dir,
            namespace: namespace.to_owned(),
            permission_mode,
            allowed_tools: str_list(allowed_tools, "allowed_tools")?,
            disallowed_tools: str_list(disallowed_tools, "disallowed_tools")?,
            system_prompt,
            model,
            allowed_roots: allowed_roots.unwrap_or_default(),
            default_workdir,
            max_concurrent_starts,
            max_prompt_bytes,
            detector: detector.map(|d| Arc::new(d.core().clone())),
            ..EngineOptions::default()
        };
        if let Some(env) = env {
            for (k, v) in env.iter() {
                opts.env.push((k.extract()?, v.extract()?));
            }
        }
        if env_allow.is_some() {
            opts.env_allow = str_list(env_allow, "env_allow")?;
        }
        if let Some(cb) = can_use_tool {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("can_use_tool must be callable"));
            }
            opts.permission_handler = Some(permission_handler(cb.unbind()));
        }
        let (engine, rt) = core::Engine::with_own_runtime(opts).map_err(|e| core_error(py, e))?;
        Ok(Engine {
            rt: Some(Arc::new(rt)),
            engine,
        })
    }

    /// Runs one turn on session_id (started or resumed on first use) and
    /// returns the finished Turn. Blocks with the GIL released. on_event(event)
    /// is called for each event, in order, in this thread. Raises
    /// DangerBlocked (prompt blocked by the WAF), TurnTimeout, SessionDead,
    /// TurnFailed, CapacityExceeded, StartFailed, InvalidConfig or Closed.
    #[pyo3(signature = (session_id, prompt, workdir=None, on_event=None, *, timeout=None, waf_approved=false))]
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        py: Python<'_>,
        session_id: &str,
        prompt: &str,
        workdir: Option<PathBuf>,
        on_event: Option<Bound<'_, PyAny>>,
        timeout: Option<f64>,
        waf_approved: bool,
    ) -> PyResult<Turn> {
        if let Some(cb) = &on_event {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("on_event must be callable"));
            }
        }
        let rt = self.rt()?.clone();
        let opts = Self::turn_options(workdir, timeout, waf_approved)?;
        let mut stream = match self.engine.submit(session_id, prompt, &opts) {
            Ok(s) => s,
            Err(core::Error::DangerBlocked(v)) => {
                // Reported as an event too, as the seed did.
                if let Some(cb) = &on_event {
                    call_on_event(py, cb, &core::Event::DangerBlock((*v).clone()));
                }
                return Err(core_error(py, core::Error::DangerBlocked(v)));
            }
            Err(e) => return Err(core_error(py, e)),
        };
        while let Some(e) = next_event(py, &rt, &mut stream)? {
            if let Some(cb) = &on_event {
                call_on_event(py, cb, &e);
            }
        }
        match py.detach(|| rt.block_on(stream.finish())) {
            Ok(t) => Ok(Turn { inner: t }),
            Err(e) => Err(core_error(py, e)),
        }
    }

    /// Like execute, but returns an iterator over the turn's events as they
    /// arrive; its `turn` attribute holds the Turn afterwards, and errors
    /// are raised by the iteration.
    #[pyo3(signature = (session_id, prompt, workdir=None, *, timeout=None, waf_approved=false))]
    fn stream(
        &self,
        py: Python<'_>,
        session_id: &str,
        prompt: &str,
        workdir: Option<PathBuf>,
        timeout: Option<f64>,
        waf_approved: bool,
    ) -> PyResult<TurnStream> {
        let rt = self.rt()?.clone();
        let opts = Self::turn_options(workdir, timeout, waf_approved)?;
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
    fn sessions(&self) -> Vec<SessionInfo> {
        self.engine
            .sessions()
            .into_iter()
            .map(|inner| SessionInfo { inner })
            .collect()
    }

    /// Totals of a session as a dict (turns, failed_turns, cold_starts,
    /// resumes, tokens, cost_usd, tool_calls, tool_errors, tools_denied,
    /// busy_ms, bad_lines, model), or None for an unknown id.
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

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
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
