//! The per-session supervisor of hotplex's process containment.
//!
//! This crate is an implementation detail of `hotplex-core` (see the module
//! docs of `hotplex_core::proc` for the design); it is a crate of its own so
//! that the same code can run in two ways:
//!
//! * **launched**: `hotplex-core`'s build script builds this crate's binary
//!   as a small static program and embeds its bytes; the host runs it once,
//!   from a sealed in-memory file, as a [`launcher`] that forks each
//!   session's supervisor from its own small image, so a supervisor holds
//!   none of the host's pages and starting one costs the same in a 20 MB
//!   host as in a 4 GiB one;
//! * **forked**: where the program is not available (macOS, a build without
//!   it), the host forks and the child calls [`supervisor::run`] directly.
//!
//! Either way the same [`supervisor::run`] runs with the same [`Plan`]; the
//! launcher receives the plan serialized ([`plan`]).

// The supervisor is raw system calls after fork (no allocation, no locks):
// each unsafe block is small and carries a SAFETY comment.
#![allow(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_os = "linux")]
pub mod launcher;
pub mod plan;
pub mod proto;
pub mod supervisor;

pub use supervisor::Plan;
