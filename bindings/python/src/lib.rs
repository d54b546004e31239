//! Python bindings for hotplex: the extension module `hotplex._native`.
//!
//! The Python package `hotplex` (in `bindings/python/python/hotplex`)
//! re-exports everything from here; users never import `_native` directly.
//! The binding calls `hotplex-core` directly (not the C ABI).
//!
//! Layout:
//!
//! * [`errors`]: the one mapping from `hotplex_core::Error` to the Python
//!   exception classes (defined in `hotplex/_contract.py`).
//! * [`convert`]: Python values to and from JSON (options, answers, records).
//! * [`text`]: `str | bytes` arguments to UTF-8, and byte spans to
//!   character spans.
//! * [`verdict`] and [`detector`]: the command WAF.
//! * [`engine`]: the session pool (`Engine`, `TurnStream`, and the
//!   `Pool` it shares with `AsyncEngine`); its records
//!   (`Turn`, `Event`, `SessionInfo`) are dataclasses in `hotplex/_contract.py`,
//!   which `scripts/gen_contract.py` generates from the schema.
//! * [`host`]: calling the host's functions from the engine's threads
//!   (`can_use_tool`, hooks, host tools; plain or `async def`).
//! * [`aio`]: the native half of `hotplex.AsyncEngine` (`hotplex/_aio.py`)
//!   and `AsyncTurnStream`, for asyncio hosts.
//! * [`lifecycle`]: entering Python from hotplex's threads, and the
//!   `atexit` hook that stops that before the interpreter finalises.
//! * [`telemetry`]: the engine's lifecycle observer (records are
//!   `LifecycleRecord` dataclasses of `_contract.py`) and the log bridge
//!   behind `hotplex.enable_logging` (`hotplex/_logging.py`).
//!
//! Every check releases the GIL while the Rust core runs.

#![warn(missing_docs)]

pub mod aio;
pub mod convert;
pub mod detector;
pub mod engine;
pub mod errors;
pub mod host;
pub mod lifecycle;
pub mod telemetry;
pub mod text;
pub mod verdict;

use pyo3::prelude::*;

/// How this process starts each session's supervisor: "exec" (the small
/// program embedded in hotplex, which holds none of this process's memory)
/// or "fork" (a copy of this process: where the program is unavailable, or
/// with HOTPLEX_SUPERVISOR=fork in the environment).
#[pyfunction]
fn supervisor_mode() -> &'static str {
    hotplex_core::proc::supervisor_mode().as_str()
}

/// The most sessions this process's open-files limit allows. Like creating
/// an Engine, it first raises the soft open-files limit to the hard one
/// (once per process).
#[pyfunction]
fn session_ceiling() -> u64 {
    hotplex_core::proc::session_ceiling()
}

/// The native half of the `hotplex` package. Import `hotplex` instead.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CORE_VERSION", hotplex_core::VERSION)?;
    m.add_function(wrap_pyfunction!(supervisor_mode, m)?)?;
    m.add_function(wrap_pyfunction!(session_ceiling, m)?)?;
    m.add_class::<detector::Detector>()?;
    m.add_class::<verdict::Verdict>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::TurnStream>()?;
    m.add_class::<aio::AsyncEngineBase>()?;
    m.add_class::<aio::AsyncTurnStream>()?;
    m.add_function(wrap_pyfunction!(aio::write_unraisable, m)?)?;
    m.add_function(wrap_pyfunction!(telemetry::set_log_sink, m)?)?;
    m.add_function(wrap_pyfunction!(lifecycle::begin_exit, m)?)?;
    // Before the interpreter finalises, no thread of ours may be taking the
    // GIL (see lifecycle). Registered at import, so it runs after the
    // atexit handlers registered later (which may still use engines).
    let begin_exit = m.getattr("_begin_exit")?;
    m.py()
        .import("atexit")?
        .call_method1("register", (begin_exit,))?;
    m.add("_ENGINE_DEFAULTS", engine::defaults_doc())?;
    // The defaults come from the core at import, never from a copy here.
    let engine = m.getattr("Engine")?;
    let doc = format!(
        "{}\n\n{}",
        engine.getattr("__doc__")?,
        engine::defaults_doc()
    );
    engine.setattr("__doc__", doc)?;
    Ok(())
}
