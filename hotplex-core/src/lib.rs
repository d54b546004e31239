//! hotplex-core: the pure-Rust heart of hotplex.
//!
//! hotplex keeps AI coding agents (Claude Code first) *hot*: one long-lived
//! agent process per conversation. This crate holds everything that is not
//! foreign-function glue. Today it provides:
//!
//! * [`waf`]: the command WAF, which screens shell commands, prompts and
//!   Claude Code tool calls before they run.
//! * [`proc`]: process containment: every process an agent starts dies with
//!   its session.
//! * [`protocol`]: the Claude Code stream-json protocol as typed values.
//! * [`pool`] and [`session`]: the [`Engine`], which keeps one hot agent
//!   process per session id and runs turns on it, one at a time each.
//!
//! The C ABI lives in `hotplex-ffi`; the Python, Node and Go bindings are thin
//! layers over this crate (Python and Node directly, Go through the C ABI).

// `unsafe` is allowed only where a module says why (process spawning needs
// raw system calls); everything else stays safe.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod pool;
pub mod proc;
pub mod protocol;
pub mod session;
pub mod waf;

pub use error::{Error, Result};
pub use pool::{Engine, EngineOptions, TurnOptions, TurnStream};
pub use protocol::events::Event;
pub use session::{SessionInfo, SessionStats, SessionStatus, Turn};

/// The version of this crate, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
