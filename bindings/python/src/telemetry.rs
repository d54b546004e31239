//! Telemetry for Python: an engine's lifecycle observer and hotplex's log
//! bridge. Both run a Python callable on a thread of the core's own (the
//! observer's, the log's), never on a session's, so a slow callable loses
//! records (counted) instead of stalling turns.
//!
//! Each call takes the GIL with `crate::lifecycle::attach`: once the
//! interpreter is exiting, records are dropped rather than attaching a
//! thread to a dying interpreter. A callable that raises loses that record only; the
//! error goes to `sys.unraisablehook`.
//!
//! The metrics themselves need nothing here: `Engine.metrics_text()` is the
//! core's OpenMetrics text, and `hotplex.PrometheusCollector` (Python)
//! parses it for `prometheus_client`.

use std::sync::{Arc, Mutex, PoisonError};

use hotplex_core::telemetry::{self, LifecycleRecord, LogLevel, LogRecord, LogSink, Observer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::PyVisit;

use crate::convert::json_to_py;
use crate::errors::core_error;

/// The host's observer, shared by the core's closure and the Python
/// `Engine` that owns it, so the garbage collector can see (and break) a
/// cycle through it: an observer that is a bound method of an object
/// holding the engine.
#[derive(Clone)]
pub struct ObserverSlot(Arc<Mutex<Option<Py<PyAny>>>>);

impl ObserverSlot {
    /// The callable, if it was not cleared by the garbage collector.
    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|cb| cb.clone_ref(py))
    }

    /// For `Engine.__traverse__`. Never waits: the lock is only ever held
    /// briefly, by a thread attached to Python, so it is free here.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Ok(slot) = self.0.try_lock() {
            if let Some(cb) = slot.as_ref() {
                visit.call(cb)?;
            }
        }
        Ok(())
    }

    /// For `Engine.__clear__`: later records are dropped.
    pub fn clear(&self) -> Option<Py<PyAny>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The core's observer calling `cb(record)` with a `hotplex.LifecycleRecord`
/// (a dataclass of `hotplex/_contract.py`), and the slot holding `cb`.
pub fn observer(cb: Py<PyAny>) -> (Observer, ObserverSlot) {
    let slot = ObserverSlot(Arc::new(Mutex::new(Some(cb))));
    let held = slot.clone();
    let observer: Observer = Arc::new(move |record: &LifecycleRecord| {
        let Ok(json) = serde_json::to_value(record) else {
            return;
        };
        crate::lifecycle::attach(|py| {
            let Some(cb) = held.get(py) else {
                return;
            };
            let cb = cb.bind(py);
            let called = py
                .import("hotplex._contract")
                .and_then(|m| m.getattr("_lifecycle_record"))
                .and_then(|build| build.call1((json_to_py(py, &json)?,)))
                .and_then(|record| cb.call1((record,)));
            if let Err(err) = called {
                err.write_unraisable(py, Some(cb));
            }
        });
    });
    (observer, slot)
}

/// The core's log level named `name` (its wire name).
fn log_level(name: &str) -> PyResult<LogLevel> {
    Ok(match name {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown log level {other:?}"
            )))
        }
    })
}

/// The wire name of a log level (what `sink` receives).
fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Sends hotplex's log records at `level` ("trace", "debug", "info",
/// "warn" or "error") and above to `sink(level, target, message,
/// session_id)` on hotplex's log thread; `sink=None` stops logging.
/// Process-wide. Raises InvalidConfig if the process already has another
/// `tracing` subscriber. Use hotplex.enable_logging instead.
#[pyfunction]
#[pyo3(name = "_set_log_sink", signature = (level, sink))]
pub fn set_log_sink(py: Python<'_>, level: &str, sink: Option<Py<PyAny>>) -> PyResult<()> {
    let min = log_level(level)?;
    let sink = sink.filter(|s| !s.is_none(py)).map(|cb| {
        let sink: LogSink = Arc::new(move |r: &LogRecord| {
            crate::lifecycle::attach(|py| {
                let cb = cb.bind(py);
                let args = (level_name(r.level), &r.target, &r.message, &r.session_id);
                if let Err(err) = cb.call1(args) {
                    err.write_unraisable(py, Some(cb));
                }
            });
        });
        sink
    });
    telemetry::set_log_sink(min, sink).map_err(|e| core_error(py, e))
}
