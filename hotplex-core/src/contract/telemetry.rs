//! What the engine tells a host's monitoring: lifecycle records for an
//! observer, log records for a log bridge, and the label values its metrics
//! use. The values here are the ones the Prometheus metrics carry as labels
//! (`hotplex_turns_total{outcome="timeout"}`), so a host's dashboards and
//! its observer speak the same words.

use schemars::JsonSchema;
use serde::Serialize;

use crate::verdict::{Category, Level};

/// How an agent process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// A new conversation.
    Fresh,
    /// An earlier conversation, resumed.
    Resume,
}

/// Why an agent process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Its session sat idle for `idle_timeout`.
    Idle,
    /// `stop_session`, or its session moved to another workdir.
    Stopped,
    /// Its session was evicted to make room (`max_sessions`).
    Evicted,
    /// It died on its own, or hung and was killed.
    Crashed,
    /// The engine was closed or dropped.
    Closed,
    /// It never confirmed its session (refused, exited or silent at start).
    StartFailed,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    /// It returned a turn.
    Ok,
    /// The agent answered with an error result, or could not be started.
    Failed,
    /// It ran past its timeout and was interrupted (or killed).
    Timeout,
    /// Its session was stopped, evicted or closed while it ran or waited.
    Interrupted,
    /// The caller went away (a dropped stream, a cancelled context).
    Cancelled,
    /// The agent died during the turn.
    Dead,
    /// The WAF blocked its prompt; it never ran.
    Blocked,
}

/// What the WAF was asked to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WafSource {
    /// A turn's prompt.
    Prompt,
    /// A tool call of the agent.
    Tool,
    /// A shell command checked directly.
    Command,
}

/// A step of the kill ladder that ended an agent's process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillStage {
    /// Its stdin was closed and it exited.
    Eof,
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
}

macro_rules! label_names {
    ($($t:ty => [$($v:ident = $s:literal),+ $(,)?]),+ $(,)?) => {$(
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),+];
            /// The value as its metric label and wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
        }
    )+};
}

label_names! {
    StartMode => [Fresh = "fresh", Resume = "resume"],
    ExitReason => [Idle = "idle", Stopped = "stopped", Evicted = "evicted", Crashed = "crashed",
        Closed = "closed", StartFailed = "start_failed"],
    TurnOutcome => [Ok = "ok", Failed = "failed", Timeout = "timeout", Interrupted = "interrupted",
        Cancelled = "cancelled", Dead = "dead", Blocked = "blocked"],
    WafSource => [Prompt = "prompt", Tool = "tool", Command = "command"],
    KillStage => [Eof = "eof", Term = "term", Kill = "kill"],
}

/// One thing that happened in the engine, for a host's observer. Records
/// are delivered in order, off the hot path, through a bounded queue: an
/// observer that cannot keep up loses records (counted in
/// `hotplex_observer_dropped_total`), never stalls a turn.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LifecycleRecord {
    /// An agent process started for a session.
    SessionStarted {
        /// The host's session id.
        session_id: String,
        /// The agent's pid.
        pid: i32,
        /// Fresh or resumed conversation.
        mode: StartMode,
    },
    /// A new session took a spare process (`EngineOptions.prewarm`): its
    /// first turn goes to that already started process. The spare's own
    /// records (its `session_started`) carried `spare_id` as their
    /// `session_id`; from now on they carry the session's.
    SpareClaimed {
        /// The host's session id.
        session_id: String,
        /// The name the spare had in records until now (`spare-<n>`).
        spare_id: String,
        /// The agent's pid.
        pid: i32,
    },
    /// A session's agent process ended.
    SessionExited {
        /// The host's session id.
        session_id: String,
        /// Why.
        reason: ExitReason,
    },
    /// A turn ended, one way or another.
    TurnFinished {
        /// The host's session id.
        session_id: String,
        /// How it ended.
        outcome: TurnOutcome,
        /// Wall time of the turn (after queueing), in milliseconds.
        duration_ms: f64,
        /// Time it waited behind earlier turns, in milliseconds.
        queued_ms: f64,
        /// Input tokens (not from cache).
        input_tokens: u64,
        /// Output tokens.
        output_tokens: u64,
        /// Cost of the turn in USD.
        cost_usd: f64,
    },
    /// The WAF judged a prompt or a tool call.
    WafVerdict {
        /// The host's session id.
        session_id: String,
        /// What was judged.
        source: WafSource,
        /// The verdict's level.
        level: Level,
        /// The matched rule's category, if any.
        category: Option<Category>,
        /// The matched rule, if any.
        rule_id: Option<String>,
        /// Whether it was blocked.
        blocked: bool,
    },
    /// The kill ladder ended an agent's process tree.
    ProcessSignalled {
        /// The host's session id.
        session_id: String,
        /// The agent's pid.
        pid: i32,
        /// The last step the ladder needed.
        stage: KillStage,
        /// Processes of the tree terminated or killed.
        processes: u64,
    },
}

/// The level of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Agent stderr lines, protocol details.
    Debug,
    /// Sessions starting and ending.
    Info,
    /// Something went wrong but the engine went on.
    Warn,
    /// Something failed.
    Error,
}

/// One log line of hotplex, for a host's log bridge.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// Where in hotplex it comes from (`hotplex_core::engine`, `hotplex::agent` for agent stderr).
    pub target: String,
    /// The message, with its fields (`key=value`) appended.
    pub message: String,
    /// The session it concerns, if any.
    pub session_id: Option<String>,
}
