//! The native half of `hotplex.AsyncEngine` (`hotplex/_aio.py`): the
//! session pool for asyncio hosts, which never blocks the event loop.
//!
//! Every wait happens on the engine's own tokio runtime. A call that waits
//! hands the host an `asyncio.Future` of the loop running at call time; a
//! runtime task awaits the core and settles that future through
//! `loop.call_soon_threadsafe` (`hotplex._aio._settle`). The loop's thread
//! takes no lock and waits for nothing. A cancelled future (the awaiting
//! task was cancelled) cancels the turn: the core stream is dropped, so the
//! agent is interrupted, then killed after `interrupt_grace` if it does not
//! stop; after a clean interrupt the session stays hot.
//!
//! Runtime tasks enter Python through `crate::lifecycle::attach`: once the
//! interpreter is exiting, results are dropped and nothing is called.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use hotplex_core as core;
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::convert::json_to_py;
use crate::detector::Detector;
use crate::engine::{answers_json, record, OwnedRuntime, Pool, Step, TurnCell};
use crate::errors::core_error;
use crate::host::LoopSlot;
use crate::lifecycle;

/// `loop.create_future()` of the loop running in this thread (RuntimeError
/// outside a running loop, as asyncio raises it).
fn new_future<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    Ok((event_loop, future))
}

/// Settles `future` with `result` on its loop's thread. A closed loop
/// raises here; then nobody is waiting and the result is dropped.
fn settle(py: Python<'_>, event_loop: &Py<PyAny>, future: &Py<PyAny>, result: PyResult<Py<PyAny>>) {
    let (ok, value) = match result {
        Ok(v) => (true, v),
        Err(e) => (false, e.into_value(py).into_any()),
    };
    let scheduled = py
        .import("hotplex._aio")
        .and_then(|m| m.getattr("_settle"))
        .and_then(|s| {
            event_loop
                .bind(py)
                .call_method1("call_soon_threadsafe", (s, future, ok, value))
        });
    drop(scheduled);
}

/// A future of the running loop, settled with `convert(work.await)` once
/// `work` is done on the runtime.
fn spawn_future<'py, T, W>(
    py: Python<'py>,
    rt: &OwnedRuntime,
    work: W,
    convert: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>>
where
    W: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (event_loop, future) = new_future(py)?;
    let (l, f) = (event_loop.unbind(), future.clone().unbind());
    rt.spawn(async move {
        let out = work.await;
        lifecycle::attach(|py| settle(py, &l, &f, convert(py, out)));
    });
    Ok(future)
}

/// None, or the exception of a core error (for spawn_future).
fn none_or_error(py: Python<'_>, r: core::Result<()>) -> PyResult<Py<PyAny>> {
    r.map(|()| py.None()).map_err(|e| core_error(py, e))
}

/// A JSON answer as a dict, or the exception of a core error.
fn dict_or_error(py: Python<'_>, r: core::Result<serde_json::Value>) -> PyResult<Py<PyAny>> {
    match r {
        Ok(v) => Ok(json_to_py(py, &v)?.unbind()),
        Err(e) => Err(core_error(py, e)),
    }
}

/// `hotplex._aio._value(value)`: a coroutine that returns `value` (what
/// `aclose` and `__aenter__` return: an awaitable that is not a future).
fn value_coroutine<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    py.import("hotplex._aio")?
        .getattr("_value")?
        .call1((value,))
}

/// Iterates the events of one turn with `async for`, as they arrive; see
/// AsyncEngine.stream. After the last event, `turn` holds the finished
/// Turn, or iteration raised the turn's error. Cancelling the task that
/// awaits the next event, `cancel()` (from any thread), `await aclose()`,
/// leaving an `async with` block, or dropping the iterator cancels a turn
/// still running (the agent is interrupted); iteration then ends.
#[pyclass(module = "hotplex", name = "AsyncTurnStream", frozen)]
pub struct AsyncTurnStream {
    rt: Arc<OwnedRuntime>,
    cell: Arc<TurnCell>,
    turn: Arc<Mutex<Option<Py<PyAny>>>>,
    loops: LoopSlot,
}

impl AsyncTurnStream {
    fn new(pool: &Pool, stream: core::TurnStream) -> AsyncTurnStream {
        AsyncTurnStream {
            rt: pool.rt.clone(),
            cell: TurnCell::new(stream),
            turn: Arc::new(Mutex::new(None)),
            loops: pool.loops.clone(),
        }
    }
}

#[pymethods]
impl AsyncTurnStream {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (event_loop, future) = new_future(py)?;
        // An async can_use_tool of this turn runs on this loop.
        self.loops.set(event_loop.clone().unbind());
        let cell = self.cell.clone();
        let on_done = PyCFunction::new_closure(py, None, None, move |args, _| -> PyResult<()> {
            // The awaiting task was cancelled: so is the turn.
            if args.get_item(0)?.call_method0("cancelled")?.is_truthy()? {
                cell.cancel();
            }
            Ok(())
        })?;
        future.call_method1("add_done_callback", (on_done,))?;
        let (cell, turn) = (self.cell.clone(), self.turn.clone());
        let (l, f) = (event_loop.unbind(), future.clone().unbind());
        self.rt.spawn(async move {
            let step = cell.next().await;
            lifecycle::attach(|py| {
                let result = match step {
                    Step::Event(e) => record(py, "Event", &e.to_json()),
                    Step::Done(Ok(t)) => record(py, "Turn", &t.to_json()).and_then(|t| {
                        *turn.lock().unwrap_or_else(PoisonError::into_inner) = Some(t);
                        Err(PyStopAsyncIteration::new_err(()))
                    }),
                    Step::Done(Err(e)) => Err(core_error(py, e)),
                    Step::Over => Err(PyStopAsyncIteration::new_err(())),
                };
                settle(py, &l, &f, result);
            });
        });
        Ok(future)
    }

    /// The finished turn, once iteration ended without an error.
    #[getter]
    fn turn(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        turn.as_ref().map(|t| t.clone_ref(py))
    }

    /// Cancels the turn if it still runs (the agent is interrupted); a
    /// pending iteration ends. Never blocks; callable from any thread.
    fn cancel(&self) {
        self.cell.cancel();
    }

    /// Cancels the turn if it still runs, as cancel() (a coroutine, for
    /// contextlib.aclosing and friends).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cell.cancel();
        value_coroutine(py, py.None().into_bound(py))
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        value_coroutine(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.aclose(py)
    }
}

/// The native base of hotplex.AsyncEngine (see its documentation there).
#[pyclass(module = "hotplex._native", name = "_AsyncEngine", subclass)]
pub struct AsyncEngineBase {
    pool: Pool,
}

#[pymethods]
impl AsyncEngineBase {
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<AsyncEngineBase> {
        Ok(AsyncEngineBase {
            pool: Pool::build(py, "AsyncEngine", args, kwargs)?,
        })
    }

    /// Queues a turn and returns an async iterator over its events as they
    /// arrive (`async for event in engine.stream(...)`); its `turn`
    /// attribute holds the Turn afterwards, and errors are raised by the
    /// iteration (those found before the turn is queued, such as
    /// DangerBlocked, by this call, which never blocks).
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
    ) -> PyResult<AsyncTurnStream> {
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
        self.pool.loops.capture(py);
        Ok(AsyncTurnStream::new(&self.pool, stream))
    }

    /// Like stream, but every error (a blocked prompt too, after its
    /// danger_block event) comes through the iteration: for execute.
    #[pyo3(signature = (session_id, prompt, workdir=None, timeout=None, waf_approved=None, partial_messages=None, session=None, instructions=None, images=None, question_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn _start(
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
    ) -> PyResult<AsyncTurnStream> {
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
        let stream = self.pool.engine.start(session_id, prompt, &opts);
        self.pool.loops.capture(py);
        Ok(AsyncTurnStream::new(&self.pool, stream))
    }

    /// A future of stop_session's result, settled on the running loop.
    fn _stop_session<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.stop_session(&session_id).await },
            |py, existed: bool| Ok(existed.into_pyobject(py)?.to_owned().into_any().unbind()),
        )
    }

    /// A future of interrupt's result, settled on the running loop.
    fn _interrupt<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.interrupt(&session_id).await },
            |py, r: core::Result<bool>| match r {
                Ok(b) => Ok(b.into_pyobject(py)?.to_owned().into_any().unbind()),
                Err(e) => Err(core_error(py, e)),
            },
        )
    }

    /// A future of set_model, settled on the running loop.
    #[pyo3(signature = (session_id, model))]
    fn _set_model<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        model: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.set_model(&session_id, model.as_deref()).await },
            none_or_error,
        )
    }

    /// A future of set_permission_mode, settled on the running loop.
    fn _set_permission_mode<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        mode: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.set_permission_mode(&session_id, &mode).await },
            none_or_error,
        )
    }

    /// A future of answer_question, settled on the running loop (the
    /// answers are read now, under the GIL).
    fn _answer_question<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        question_id: String,
        answers: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let answers = answers_json(py, answers)?;
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move {
                engine
                    .answer_question(&session_id, &question_id, &answers)
                    .await
            },
            none_or_error,
        )
    }

    /// A future of approve_plan, settled on the running loop.
    #[pyo3(signature = (session_id, approved, feedback, mode))]
    fn _approve_plan<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        approved: bool,
        feedback: Option<String>,
        mode: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move {
                engine
                    .approve_plan(&session_id, approved, feedback.as_deref(), mode.as_deref())
                    .await
            },
            none_or_error,
        )
    }

    /// A future of context_usage's dict, settled on the running loop.
    fn _context_usage<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.context_usage(&session_id).await },
            dict_or_error,
        )
    }

    /// A future of mcp_status's dict, settled on the running loop.
    fn _mcp_status<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.mcp_status(&session_id).await },
            dict_or_error,
        )
    }

    /// A future of reset_session, settled on the running loop.
    fn _reset_session<'py>(
        &self,
        py: Python<'py>,
        session_id: String,
        forget_transcript: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.reset_session(&session_id, forget_transcript).await },
            none_or_error,
        )
    }

    /// fork_session, at once (it never waits); see Engine.fork_session.
    #[pyo3(signature = (session_id, new_id, at_message = None))]
    fn _fork_session(
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

    /// prewarm, at once (it never waits); see Engine.prewarm.
    #[pyo3(signature = (spares, workdir = None, session = None))]
    fn _prewarm(
        &self,
        py: Python<'_>,
        spares: &Bound<'_, PyAny>,
        workdir: Option<&Bound<'_, PyAny>>,
        session: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.pool.prewarm(py, spares, workdir, session)
    }

    /// A future settled on the running loop once the engine is closed.
    fn _close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.close().await },
            |py, ()| Ok(py.None()),
        )
    }

    /// Snapshots of every session, sorted by id.
    fn sessions(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        self.pool.sessions(py)
    }

    /// Whether session_id's turns belong to this engine; see Engine.owns.
    fn owns(&self, py: Python<'_>, session_id: &str) -> PyResult<bool> {
        self.pool.owns(py, session_id)
    }

    /// Takes session_id for this engine (placement only); see Engine.adopt.
    #[pyo3(signature = (session_id, workdir=None))]
    fn adopt(
        &self,
        py: Python<'_>,
        session_id: &str,
        workdir: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.pool.adopt(py, session_id, workdir)
    }

    /// The engine's load for a balancer; see Engine.load.
    fn load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.pool.load(py)
    }

    /// A future of release's result, settled on the running loop.
    fn _release<'py>(&self, py: Python<'py>, session_id: String) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.release(&session_id).await },
            |py, r: core::Result<bool>| match r {
                Ok(b) => Ok(b.into_pyobject(py)?.to_owned().into_any().unbind()),
                Err(e) => Err(core_error(py, e)),
            },
        )
    }

    /// A future of drain's result, settled on the running loop.
    fn _drain<'py>(&self, py: Python<'py>, deadline: f64) -> PyResult<Bound<'py, PyAny>> {
        let deadline = crate::engine::seconds_arg(py, "deadline", deadline)?;
        let engine = self.pool.engine.clone();
        spawn_future(
            py,
            &self.pool.rt,
            async move { engine.drain(deadline).await },
            |py, r: core::Result<Vec<String>>| match r {
                Ok(ids) => Ok(ids.into_pyobject(py)?.into_any().unbind()),
                Err(e) => Err(core_error(py, e)),
            },
        )
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

    /// The engine's metrics as OpenMetrics text (ending with "# EOF"); see
    /// Engine.metrics_text.
    fn metrics_text(&self) -> String {
        self.pool.engine.metrics_text()
    }

    /// The engine's metrics as a list of families; see
    /// Engine.metrics_snapshot.
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

    // The observer may hold this engine (a bound method of its owner).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.pool.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.pool.clear();
    }

    fn __repr__(&self) -> String {
        self.pool.repr("AsyncEngine")
    }
}

/// Reports `exc` (raised by `obj`, an on_event callback) through
/// sys.unraisablehook, as the synchronous Engine does.
#[pyfunction]
#[pyo3(name = "_write_unraisable")]
pub fn write_unraisable(
    py: Python<'_>,
    exc: Bound<'_, PyAny>,
    obj: Bound<'_, PyAny>,
) -> PyResult<()> {
    if !exc.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        return Err(PyTypeError::new_err("exc must be an exception"));
    }
    PyErr::from_value(exc).write_unraisable(py, Some(&obj));
    Ok(())
}
