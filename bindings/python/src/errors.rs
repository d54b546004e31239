//! The one place that maps [`hotplex_core::Error`] onto Python exceptions.
//!
//! The class is the core's [`ErrorCode::class_name`] of the error's code,
//! looked up in `hotplex/_contract.py` (generated from the schema's
//! `x-hotplex-errors` by `scripts/gen_contract.py`). The classes are defined
//! in Python because they need multiple inheritance (`InvalidRule(HotplexError,
//! ValueError)`), which PyO3's `create_exception!` cannot express.

use hotplex_core::{Error, ErrorCode};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::verdict::Verdict;

/// The Python module that defines the exception classes.
const ERRORS_MODULE: &str = "hotplex._contract";

/// Instantiates `hotplex.<class>(*args)` as a `PyErr`. If the class cannot
/// be loaded (a broken install), that error is raised instead.
fn raise(py: Python<'_>, class: &str, args: PyResult<Bound<'_, PyTuple>>) -> PyErr {
    let exc = args.and_then(|args| py.import(ERRORS_MODULE)?.getattr(class)?.call1(args));
    match exc {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// Maps a core error to the exception of its code's class name
/// (`InvalidConfig`, `TurnTimeout`, `SpawnFailed`, ...), with what the error
/// carries beyond its message: `InvalidRule.line`, `DangerBlocked.verdict`
/// (a `hotplex.Verdict`), `TurnFailed.subtype` and `OwnedElsewhere.owner`.
pub fn core_error(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    let class = err.code().class_name();
    let args = match err {
        Error::InvalidRule { line, .. } => (message, line).into_pyobject(py),
        Error::DangerBlocked(v) => match Bound::new(py, Verdict::from_core(*v, None)) {
            Ok(v) => (message, v).into_pyobject(py),
            Err(e) => Err(e),
        },
        Error::TurnFailed { subtype, .. } => (message, subtype).into_pyobject(py),
        Error::OwnedElsewhere { owner, .. } => (message, owner).into_pyobject(py),
        _ => (message,).into_pyobject(py),
    };
    raise(py, class, args)
}

/// `hotplex.InvalidUtf8(message)`, chained to `cause` (the codec error) when
/// there is one.
pub fn invalid_utf8(py: Python<'_>, message: String, cause: Option<PyErr>) -> PyErr {
    let err = raise(
        py,
        ErrorCode::Utf8.class_name(),
        (message,).into_pyobject(py),
    );
    if cause.is_some() {
        err.set_cause(py, cause);
    }
    err
}
