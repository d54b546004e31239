//! The contract: the serde types every binding shares.
//!
//! Each binding is a thin, idiomatic layer over these definitions, never a
//! copy of them:
//!
//! * [`options`]: engine and turn options with their defaults and
//!   validation; bindings pass the host's options in as JSON.
//! * [`limits`]: the per-session resource limits in the engine options.
//! * [`prewarm`]: spare-process profiles in the engine options.
//! * [`events`]: the events of a turn (the seed's names) and its statistics.
//! * [`records`]: finished turns, session snapshots and totals, which go out
//!   through serde.
//! * [`errors`]: the error table, exhaustive over [`crate::Error`].
//! * [`permission`]: the one rule that reads a host's answer to a tool
//!   call.
//! * [`hooks`] and [`tools`]: host functions the agent calls (hook events,
//!   tools served as in-process MCP servers).
//! * [`session`]: per-session agent options and per-turn content.
//! * [`provider`]: which protocol a session's agent speaks, and the options
//!   only Claude Code takes.
//! * [`telemetry`]: lifecycle and log records, and the label values of the
//!   metrics.
//! * [`schema`]: all of the above as a JSON Schema, committed and checked
//!   for drift, which the bindings' tests read.

pub mod errors;
pub mod events;
pub mod hooks;
pub mod limits;
pub mod options;
pub mod permission;
pub mod prewarm;
pub mod provider;
pub mod records;
pub mod schema;
pub mod session;
pub mod telemetry;
pub mod tools;

pub use errors::ErrorCode;
pub use events::{Event, Question, QuestionOption, ToolCall, TurnStats, Usage};
pub use hooks::{HookCall, HookHandler, HookSpec};
pub use limits::SessionLimits;
pub use options::{EngineOptions, PlacementOptions, TurnOptions};
pub use permission::{Permission, PermissionHandler, ToolRequest};
pub use prewarm::PrewarmProfile;
pub use provider::Provider;
pub use records::{EngineLoad, SessionInfo, SessionStats, SessionStatus, Turn};
pub use session::{ImageInput, SessionOptions};
pub use tools::{ToolHandler, ToolInvocation, ToolServer, ToolSpec};

/// Serializes a contract value. These types serialize infallibly (string
/// keys, no custom errors); `Null` stands in should that ever change.
pub(crate) fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
