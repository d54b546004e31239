//! What the engine reports: finished turns, session snapshots and totals.
//!
//! Every record serializes to the one JSON shape all bindings show (Python
//! attributes, Node camelCase properties, Go struct fields, C JSON text).
//! Durations are milliseconds on the wire, in fields named `*_ms`.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::events::{millis, Event, TurnStats};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SessionStatus {
    /// A turn is starting its process.
    Starting,
    /// The process is up and no turn runs.
    Ready,
    /// A turn runs.
    Busy,
    /// No process (it exited, crashed or was killed); the next turn starts
    /// one, resuming the conversation.
    Dead,
}

impl SessionStatus {
    /// The seed's name: `starting`, `ready`, `busy` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Starting => "starting",
            SessionStatus::Ready => "ready",
            SessionStatus::Busy => "busy",
            SessionStatus::Dead => "dead",
        }
    }
}

/// Totals over every turn of a session (across its process restarts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct SessionStats {
    /// Turns that produced a result (successful or not).
    pub turns: u64,
    /// Turns that ended in an error of any kind.
    pub failed_turns: u64,
    /// Processes started (the first one included).
    pub cold_starts: u64,
    /// Cold starts that resumed an earlier conversation.
    pub resumes: u64,
    /// Input tokens (not from cache), summed over turns.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Cost in USD, summed over turns.
    pub cost_usd: f64,
    /// Tool calls requested by the model.
    pub tool_calls: u64,
    /// Tool calls that failed or were denied.
    pub tool_errors: u64,
    /// Tool calls the WAF denied.
    pub tools_denied: u64,
    /// Wall time spent in turns, in milliseconds.
    pub busy_ms: u64,
    /// Lines of agent output that could not be used (not JSON, too long).
    pub bad_lines: u64,
    /// Lines of agent output that belonged to no turn (printed after a
    /// turn's result, or a stray second result), dropped.
    pub stray_lines: u64,
    /// The model, from the CLI's `system/init`.
    pub model: Option<String>,
}

impl SessionStats {
    /// Adds a finished turn's statistics.
    pub(crate) fn add_turn(&mut self, t: &TurnStats) {
        self.turns += 1;
        self.input_tokens += t.usage.input_tokens;
        self.output_tokens += t.usage.output_tokens;
        self.cache_creation_input_tokens += t.usage.cache_creation_input_tokens;
        self.cache_read_input_tokens += t.usage.cache_read_input_tokens;
        self.cost_usd += t.cost_usd;
        self.tool_calls += t.tools.len() as u64;
        self.tool_errors += t.tools.iter().filter(|c| c.is_error).count() as u64;
        if t.model.is_some() {
            self.model.clone_from(&t.model);
        }
    }

    /// The totals as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        super::to_value(self)
    }
}

/// An engine's load, for a balancer that places sessions across hosts
/// (from [`crate::Engine::load`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EngineLoad {
    /// Sessions in the pool.
    pub sessions: usize,
    /// Sessions running a turn.
    pub busy: usize,
    /// Turns waiting behind a running one, over all sessions.
    pub queued: usize,
    /// More sessions the engine takes before it must evict (`max_sessions`
    /// minus sessions and spares).
    pub free_slots: usize,
    /// Spare processes kept for new conversations.
    pub spares: usize,
    /// Resident memory of every agent process tree (sessions and spares),
    /// in bytes.
    pub agent_memory_bytes: u64,
    /// The engine is draining (`drain`): it takes no new session.
    pub draining: bool,
}

/// A snapshot of one session, from [`crate::Engine::sessions`].
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SessionInfo {
    /// The host's session id.
    pub id: String,
    /// The provider (CLI) session id.
    pub provider_session_id: String,
    /// The agent's pid, while a process runs.
    pub pid: Option<i32>,
    /// Current status.
    pub status: SessionStatus,
    /// Turns answered.
    pub turns: u64,
    /// Turns queued or running.
    pub pending: usize,
    /// The working directory of the current (or last) process.
    #[schemars(with = "Option<String>")]
    pub workdir: Option<PathBuf>,
    /// Time since the session last saw input or output (`idle_ms` on the
    /// wire).
    #[serde(rename = "idle_ms", serialize_with = "millis")]
    #[schemars(rename = "idle_ms", with = "f64")]
    pub idle_for: Duration,
}

impl SessionInfo {
    /// The snapshot as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        super::to_value(self)
    }
}

/// A finished turn. On the wire its statistics are flattened into it
/// (`usage`, `cost_usd`, `tools`, `model`, ... beside `text`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Turn {
    /// The answer: the `result` text, or the answer events joined.
    pub text: String,
    /// Whether this turn started the agent process.
    pub cold_start: bool,
    /// Whether that start resumed an earlier conversation.
    pub resumed: bool,
    /// Wall time from the start of the turn (after any queueing) to its
    /// result (`duration_ms` on the wire).
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    #[schemars(rename = "duration_ms", with = "f64")]
    pub duration: Duration,
    /// Time the turn waited behind earlier turns of the session
    /// (`queued_ms` on the wire).
    #[serde(rename = "queued_ms", serialize_with = "millis")]
    #[schemars(rename = "queued_ms", with = "f64")]
    pub queued: Duration,
    /// Tokens, cost, tool calls, model; `stats.is_error` is always `false`
    /// for a returned turn (error results become
    /// [`crate::Error::TurnFailed`]).
    #[serde(flatten)]
    pub stats: TurnStats,
    /// Every event of the turn, in order.
    pub events: Vec<Event>,
    /// The agent's pid.
    pub pid: i32,
    /// The provider (CLI) session id.
    pub provider_session_id: String,
    /// The answer as the JSON value the session's `json_schema` asked for
    /// (the CLI's `structured_output`); `null` without a schema.
    pub structured_output: Option<serde_json::Value>,
    /// The `uuid` hotplex gave this turn's user message: a fork can end
    /// there (`fork_session`'s `at_message`).
    pub message_uuid: String,
}

impl Turn {
    /// The turn as a JSON object (see the type's docs for the shape).
    pub fn to_json(&self) -> serde_json::Value {
        super::to_value(self)
    }
}
