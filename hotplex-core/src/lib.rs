//! hotplex-core: the pure-Rust heart of hotplex.
//!
//! hotplex keeps AI coding agents (Claude Code, and agents that speak the
//! Agent Client Protocol) *hot*: one long-lived agent process per
//! conversation. This crate holds everything that is not
//! foreign-function glue. Today it provides:
//!
//! * [`waf`]: the command WAF, which screens shell commands, prompts and
//!   Claude Code tool calls before they run.
//! * [`proc`]: process containment: every process an agent starts dies with
//!   its session.
//! * [`engine`]: the [`Engine`], which keeps one hot agent process per
//!   session id and runs turns on it, one at a time each.
//! * [`contract`]: the serde types every binding shares (options, events,
//!   turns, session records, the error table, the permission rule) and
//!   their JSON Schema.
//! * [`placement`]: leases with fencing and transcript stores, for hosts
//!   that spread sessions over many machines.
//! * [`verdict`]: what a WAF check concludes (a leaf module).
//! * [`telemetry`]: Prometheus metrics per engine, a lifecycle observer and
//!   logs, all owned by the host (no port, no global registry).
//!
//! The C ABI lives in `hotplex-ffi`; the Python, Node and Go bindings are thin
//! layers over this crate (Python and Node directly, Go through the C ABI).

// `unsafe` is allowed only where a module says why (process spawning needs
// raw system calls); everything else stays safe.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod contract;
pub mod engine;
pub mod error;
pub mod placement;
pub mod proc;
// The Claude Code wire protocol is internal to the engine. The `internals`
// feature, enabled only by tests/reference-agent (whose protocol tests drive
// an agent line by line), makes it public; it is not part of the API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod protocol;
#[cfg(not(feature = "internals"))]
pub(crate) mod protocol;
pub mod telemetry;
pub mod verdict;
pub mod waf;

pub use contract::EngineOptions;
pub use contract::{
    ErrorCode, Event, Permission, PermissionHandler, PrewarmProfile, Provider, SessionInfo,
    SessionStats, SessionStatus, ToolRequest, Turn, TurnOptions, TurnStats, Usage,
};
pub use engine::{Engine, SpareInfo, TurnStream};
pub use error::{Error, Result};

/// The version of this crate, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
