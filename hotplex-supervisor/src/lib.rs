//! The per-session supervisor of hotplex's process containment.
//!
//! This crate is an implementation detail of `hotplex-core` (see the module
//! docs of `hotplex_core::proc` for the design); it is a crate of its own so
//! that the same code can run in two ways:
//!
//! * **exec'd**: `hotplex-core`'s build script builds this crate's binary as
//!   a small static program and embeds its bytes; each session runs it from a
//!   sealed in-memory file, so the supervisor holds none of the host's pages
//!   and starting it costs the same in a 20 MB host as in a 4 GiB one;
//! * **forked**: where the program is not available (macOS, a build without
//!   it), the host forks and the child calls [`supervisor::run`] directly.
//!
//! Either way the program's `main` and the fork child call the same
//! [`supervisor::run`] with the same [`Plan`]; the exec'd program receives the
//! plan serialized ([`plan`]).

// The supervisor is raw system calls after fork (no allocation, no locks):
// each unsafe block is small and carries a SAFETY comment.
#![allow(unsafe_code)]
#![warn(missing_docs)]

pub mod plan;
pub mod proto;
pub mod supervisor;

pub use supervisor::Plan;
