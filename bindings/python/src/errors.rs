//! The Python exceptions of hotplex and the one place that maps
//! [`hotplex_core::Error`] onto them.
//!
//! The classes are defined in Python (`hotplex/_errors.py`) because they
//! need multiple inheritance (`InvalidRule(HotplexError, ValueError)`), which
//! PyO3's `create_exception!` cannot express. They are looked up once and
//! cached.

use hotplex_core::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::verdict::Verdict;

/// The Python module that defines the exception classes.
const ERRORS_MODULE: &str = "hotplex._errors";

static HOTPLEX_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_RULE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_ARGUMENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_UTF8: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_CONFIG: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DANGER_BLOCKED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TURN_TIMEOUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SESSION_DEAD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TURN_FAILED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CAPACITY_EXCEEDED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static START_FAILED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CLOSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Instantiates `hotplex.<name>(*args)` as a `PyErr`. If the class cannot be
/// loaded (a broken install), the import error is raised instead.
fn raise<'py, A>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    args: A,
) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match cell
        .import(py, ERRORS_MODULE, name)
        .and_then(|cls| cls.call1(args))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// Maps a core error to its Python exception:
///
/// * `InvalidRule { line, .. }` to `hotplex.InvalidRule` (with `.line`),
/// * `InvalidArgument` to `hotplex.InvalidArgument`,
/// * `InvalidConfig`, `DangerBlocked` (with `.verdict`), `TurnTimeout`,
///   `SessionDead`, `TurnFailed` (with `.subtype`), `CapacityExceeded`,
///   `StartFailed` and `Closed` to the engine's exceptions of those names,
/// * anything newer to the base class `hotplex.HotplexError`.
pub fn core_error(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::InvalidRule { line, .. } => raise(py, &INVALID_RULE, "InvalidRule", (message, line)),
        Error::InvalidArgument(_) => raise(py, &INVALID_ARGUMENT, "InvalidArgument", (message,)),
        Error::InvalidConfig(_) => raise(py, &INVALID_CONFIG, "InvalidConfig", (message,)),
        Error::DangerBlocked(v) => {
            let verdict = Verdict::from_core(*v, None);
            match Py::new(py, verdict) {
                Ok(v) => raise(py, &DANGER_BLOCKED, "DangerBlocked", (message, v)),
                Err(e) => e,
            }
        }
        Error::TurnTimeout(_) => raise(py, &TURN_TIMEOUT, "TurnTimeout", (message,)),
        Error::SessionDead(_) => raise(py, &SESSION_DEAD, "SessionDead", (message,)),
        Error::TurnFailed { subtype, .. } => {
            raise(py, &TURN_FAILED, "TurnFailed", (message, subtype))
        }
        Error::CapacityExceeded(_) => raise(py, &CAPACITY_EXCEEDED, "CapacityExceeded", (message,)),
        Error::StartFailed(_) => raise(py, &START_FAILED, "StartFailed", (message,)),
        Error::Closed => raise(py, &CLOSED, "Closed", (message,)),
        _ => raise(py, &HOTPLEX_ERROR, "HotplexError", (message,)),
    }
}

/// `hotplex.InvalidUtf8(message)`, chained to `cause` (the codec error) when
/// there is one.
pub fn invalid_utf8(py: Python<'_>, message: String, cause: Option<PyErr>) -> PyErr {
    let err = raise(py, &INVALID_UTF8, "InvalidUtf8", (message,));
    if cause.is_some() {
        err.set_cause(py, cause);
    }
    err
}
