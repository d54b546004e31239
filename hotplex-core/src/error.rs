//! The one error type of hotplex-core.
//!
//! Every binding maps these variants once, into its own idiom (a status code in
//! C, exception classes in Python, `Error` with a `code` in Node, `error`
//! values in Go). Keep the variants coarse and stable: bindings key on them.

use thiserror::Error;

/// Everything that can go wrong in hotplex-core.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A custom WAF rule could not be used. `line` is 1-based: the line of a
    /// line-format file, or the array index + 1 of a JSON rule list.
    #[error("invalid rule at line {line}: {message}")]
    InvalidRule {
        /// 1-based line (or JSON element) that holds the bad rule.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// An argument was rejected (malformed JSON tool input, an empty path, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A contained process could not be started (program not found, exec
    /// failed, the supervisor could not be forked, ...).
    #[error("spawn failed: {0}")]
    Spawn(String),
    /// An operating-system call failed (pipes, sockets, files in the state
    /// directory, ...). Holds the rendered `std::io::Error`.
    #[error("i/o error: {0}")]
    Io(String),
    /// Containment could not be confirmed: the supervisor of a session died
    /// before reporting that its process tree was empty.
    #[error("containment failure: {0}")]
    Containment(String),
    /// An engine option, a session id, a working directory or a prompt was
    /// rejected before anything ran (bad value, workdir outside the allowed
    /// roots, prompt over the size limit, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The WAF blocked a prompt before it reached the agent. Holds the verdict.
    #[error("blocked by the WAF: {}", .0.reason)]
    DangerBlocked(Box<crate::verdict::Verdict>),
    /// The turn did not finish within its timeout (or was cancelled). The
    /// agent was interrupted; if it did not stop within the grace period its
    /// process tree was killed and the next turn resumes the conversation in
    /// a new process.
    #[error("turn timed out: {0}")]
    TurnTimeout(String),
    /// The agent process died during the turn (crash, kill, stopped session).
    /// The next turn on the same session starts a new process that resumes
    /// the conversation.
    #[error("session dead: {0}")]
    SessionDead(String),
    /// The agent finished the turn with an error result (`is_error`).
    #[error("turn failed ({subtype}): {message}")]
    TurnFailed {
        /// The result's subtype (`error_during_execution`, `error_max_turns`, ...).
        subtype: String,
        /// The result text, or a description.
        message: String,
    },
    /// Every session slot holds a busy session: nothing could be evicted.
    #[error("capacity exceeded: {0}")]
    CapacityExceeded(String),
    /// The agent could not be started, or did not start answering within
    /// the startup timeout.
    #[error("agent failed to start: {0}")]
    StartFailed(String),
    /// The engine was closed.
    #[error("engine is closed")]
    Closed,
    /// No session with this id is in the pool (live controls need one).
    #[error("no such session: {0}")]
    SessionNotFound(String),
    /// The agent does not support what was asked (its version lacks the
    /// control request, or it refused it as unknown).
    #[error("not supported by the agent: {0}")]
    Unsupported(String),
    /// The agent answered a live control with an error, or not within
    /// `control_timeout`.
    #[error("control request failed: {0}")]
    ControlFailed(String),
    /// No question or plan with this id waits for an answer in the session
    /// (it was answered already, cancelled by an interrupt or a stopped
    /// session, timed out, or never asked).
    #[error("no such question: {0}")]
    QuestionNotFound(String),
    /// An answer to a pending question or plan was rejected (a key that
    /// names no question, several labels for a single-choice question, an
    /// empty answer, ...). The question still waits for a valid answer.
    #[error("invalid answer: {0}")]
    InvalidAnswer(String),
    /// A question or plan of the turn got no answer within
    /// `question_timeout`, and the host chose no answer for that case: the
    /// agent was interrupted (the process stays hot).
    #[error("question timed out: {0}")]
    QuestionTimeout(String),
    /// This host lost the session to another owner (its lease was taken
    /// over after it expired, or released): what it writes is rejected and
    /// its process must stop (see [`crate::placement`]).
    #[error("fenced: {0}")]
    Fenced(String),
    /// Another host owns the session (its lease is held and current): send
    /// the turn there.
    #[error("session {session:?} is owned by {owner:?}")]
    OwnedElsewhere {
        /// The session's id.
        session: String,
        /// The owner's id, as it acquired the lease.
        owner: String,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// `Result` with [`enum@Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
