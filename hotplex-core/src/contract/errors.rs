//! The error table: one stable code number and name per kind of failure.
//!
//! [`Error::code`] maps every variant of the core's [`Error`] with an
//! exhaustive `match` (no `_` arm), so a new variant does not compile until
//! it has a code here. The bindings map codes, not variants: C's
//! `hotplex_status` uses the numbers, Go's sentinels and Node's `code`
//! strings (`HOTPLEX_` + the upper-cased name) and Python's exception
//! classes are tested against [`ErrorCode::ALL`] (through the committed
//! JSON Schema, `x-hotplex-errors`).
//!
//! A few codes are never produced by the core itself but by the bindings
//! (`utf8`, `panic`, `pending`); they live here too so that every language
//! agrees on their numbers.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};

use crate::Error;

/// A stable error code. The numbers are part of the C ABI and never change;
/// new codes get new numbers. Deliberately not `#[non_exhaustive]`: this is
/// the table every binding maps, so a new code must break their builds (an
/// exhaustive `match`) until each has given it a status, class or sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[repr(i32)]
pub enum ErrorCode {
    /// An argument was rejected (a NULL handle, tool input that is not a
    /// JSON object, a relative allow path, ...).
    InvalidArgument = 1,
    /// Text is not valid UTF-8 (produced by bindings).
    Utf8 = 2,
    /// A custom WAF rule could not be used.
    InvalidRule = 3,
    /// An internal error (a bug) was contained (produced by bindings).
    Panic = 4,
    /// An engine option, session id, workdir or prompt was rejected.
    InvalidConfig = 5,
    /// The WAF blocked the prompt.
    DangerBlocked = 6,
    /// The turn exceeded its timeout or was cancelled.
    TurnTimeout = 7,
    /// The agent process died during the turn.
    SessionDead = 8,
    /// The agent ended the turn with an error result.
    TurnFailed = 9,
    /// Every session slot holds a busy session.
    CapacityExceeded = 10,
    /// The agent could not be started.
    StartFailed = 11,
    /// The engine was closed.
    Closed = 12,
    /// Nothing happened within a poll's timeout (C only; not an error of
    /// the turn).
    Pending = 13,
    /// A contained process could not be spawned.
    Spawn = 14,
    /// An operating-system call failed.
    Io = 15,
    /// Containment could not be confirmed.
    Containment = 16,
    /// No session with the id is in the pool.
    SessionNotFound = 17,
    /// The agent does not support the request.
    Unsupported = 18,
    /// A live control failed or timed out.
    ControlFailed = 19,
    /// No question or plan with the id waits for an answer.
    QuestionNotFound = 20,
    /// An answer to a question or plan was rejected.
    InvalidAnswer = 21,
    /// A question or plan was not answered within `question_timeout`.
    QuestionTimeout = 22,
    /// This host lost the session to another owner (placement).
    Fenced = 23,
    /// Another host owns the session (placement).
    OwnedElsewhere = 24,
}

impl ErrorCode {
    /// Every code, in number order.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Utf8,
        ErrorCode::InvalidRule,
        ErrorCode::Panic,
        ErrorCode::InvalidConfig,
        ErrorCode::DangerBlocked,
        ErrorCode::TurnTimeout,
        ErrorCode::SessionDead,
        ErrorCode::TurnFailed,
        ErrorCode::CapacityExceeded,
        ErrorCode::StartFailed,
        ErrorCode::Closed,
        ErrorCode::Pending,
        ErrorCode::Spawn,
        ErrorCode::Io,
        ErrorCode::Containment,
        ErrorCode::SessionNotFound,
        ErrorCode::Unsupported,
        ErrorCode::ControlFailed,
        ErrorCode::QuestionNotFound,
        ErrorCode::InvalidAnswer,
        ErrorCode::QuestionTimeout,
        ErrorCode::Fenced,
        ErrorCode::OwnedElsewhere,
    ];

    /// The stable number (the C status).
    pub const fn number(self) -> i32 {
        self as i32
    }

    /// The code for a number, if there is one.
    pub fn from_number(n: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.number() == n)
    }

    /// The stable name: `invalid_config`, `turn_timeout`, ...
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Utf8 => "utf8",
            ErrorCode::InvalidRule => "invalid_rule",
            ErrorCode::Panic => "panic",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::DangerBlocked => "danger_blocked",
            ErrorCode::TurnTimeout => "turn_timeout",
            ErrorCode::SessionDead => "session_dead",
            ErrorCode::TurnFailed => "turn_failed",
            ErrorCode::CapacityExceeded => "capacity_exceeded",
            ErrorCode::StartFailed => "start_failed",
            ErrorCode::Closed => "closed",
            ErrorCode::Pending => "pending",
            ErrorCode::Spawn => "spawn",
            ErrorCode::Io => "io",
            ErrorCode::Containment => "containment",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::ControlFailed => "control_failed",
            ErrorCode::QuestionNotFound => "question_not_found",
            ErrorCode::InvalidAnswer => "invalid_answer",
            ErrorCode::QuestionTimeout => "question_timeout",
            ErrorCode::Fenced => "fenced",
            ErrorCode::OwnedElsewhere => "owned_elsewhere",
        }
    }

    /// The exception/class name the bindings use (`InvalidConfig`, ...).
    pub const fn class_name(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "InvalidArgument",
            ErrorCode::Utf8 => "InvalidUtf8",
            ErrorCode::InvalidRule => "InvalidRule",
            ErrorCode::Panic => "InternalError",
            ErrorCode::InvalidConfig => "InvalidConfig",
            ErrorCode::DangerBlocked => "DangerBlocked",
            ErrorCode::TurnTimeout => "TurnTimeout",
            ErrorCode::SessionDead => "SessionDead",
            ErrorCode::TurnFailed => "TurnFailed",
            ErrorCode::CapacityExceeded => "CapacityExceeded",
            ErrorCode::StartFailed => "StartFailed",
            ErrorCode::Closed => "Closed",
            ErrorCode::Pending => "Pending",
            ErrorCode::Spawn => "SpawnFailed",
            ErrorCode::Io => "IoError",
            ErrorCode::Containment => "ContainmentFailed",
            ErrorCode::SessionNotFound => "SessionNotFound",
            ErrorCode::Unsupported => "Unsupported",
            ErrorCode::ControlFailed => "ControlFailed",
            ErrorCode::QuestionNotFound => "QuestionNotFound",
            ErrorCode::InvalidAnswer => "InvalidAnswer",
            ErrorCode::QuestionTimeout => "QuestionTimeout",
            ErrorCode::Fenced => "Fenced",
            ErrorCode::OwnedElsewhere => "OwnedElsewhere",
        }
    }

    /// One line on what the code means (docs and generated tables).
    pub const fn description(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "an argument was rejected",
            ErrorCode::Utf8 => "text is not valid UTF-8",
            ErrorCode::InvalidRule => "a custom WAF rule could not be used",
            ErrorCode::Panic => "an internal error (a bug) was contained",
            ErrorCode::InvalidConfig => "an option, session id, workdir or prompt was rejected",
            ErrorCode::DangerBlocked => "the WAF blocked the prompt",
            ErrorCode::TurnTimeout => "the turn exceeded its timeout or was cancelled",
            ErrorCode::SessionDead => "the agent process died during the turn",
            ErrorCode::TurnFailed => "the agent ended the turn with an error result",
            ErrorCode::CapacityExceeded => "every session slot holds a busy session",
            ErrorCode::StartFailed => "the agent could not be started",
            ErrorCode::Closed => "the engine was closed",
            ErrorCode::Pending => "nothing happened within the timeout",
            ErrorCode::Spawn => "a contained process could not be spawned",
            ErrorCode::Io => "an operating-system call failed",
            ErrorCode::Containment => "containment could not be confirmed",
            ErrorCode::SessionNotFound => "no session with this id is in the pool",
            ErrorCode::Unsupported => "the agent does not support the request",
            ErrorCode::ControlFailed => "a live control failed or timed out",
            ErrorCode::QuestionNotFound => "no question or plan with this id waits for an answer",
            ErrorCode::InvalidAnswer => "an answer to a question or plan was rejected",
            ErrorCode::QuestionTimeout => "a question or plan was not answered in time",
            ErrorCode::Fenced => "this host lost the session to another owner",
            ErrorCode::OwnedElsewhere => "another host owns the session",
        }
    }

    /// The table as JSON, for the schema (`x-hotplex-errors`).
    pub fn table() -> Value {
        Value::Array(
            ErrorCode::ALL
                .iter()
                .map(|c| {
                    json!({
                        "code": c.number(),
                        "name": c.name(),
                        "class": c.class_name(),
                        "description": c.description(),
                    })
                })
                .collect(),
        )
    }
}

impl Error {
    /// This error's stable code. Exhaustive on purpose (see the module
    /// docs).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRule { .. } => ErrorCode::InvalidRule,
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::Spawn(_) => ErrorCode::Spawn,
            Error::Io(_) => ErrorCode::Io,
            Error::Containment(_) => ErrorCode::Containment,
            Error::InvalidConfig(_) => ErrorCode::InvalidConfig,
            Error::DangerBlocked(_) => ErrorCode::DangerBlocked,
            Error::TurnTimeout(_) => ErrorCode::TurnTimeout,
            Error::SessionDead(_) => ErrorCode::SessionDead,
            Error::TurnFailed { .. } => ErrorCode::TurnFailed,
            Error::CapacityExceeded(_) => ErrorCode::CapacityExceeded,
            Error::StartFailed(_) => ErrorCode::StartFailed,
            Error::Closed => ErrorCode::Closed,
            Error::SessionNotFound(_) => ErrorCode::SessionNotFound,
            Error::Unsupported(_) => ErrorCode::Unsupported,
            Error::ControlFailed(_) => ErrorCode::ControlFailed,
            Error::QuestionNotFound(_) => ErrorCode::QuestionNotFound,
            Error::InvalidAnswer(_) => ErrorCode::InvalidAnswer,
            Error::QuestionTimeout(_) => ErrorCode::QuestionTimeout,
            Error::Fenced(_) => ErrorCode::Fenced,
            Error::OwnedElsewhere { .. } => ErrorCode::OwnedElsewhere,
        }
    }

    /// What the error carries beyond its message, as JSON, or `None`:
    /// `{"error": "danger_blocked", "verdict": {...}}`, `{"error":
    /// "turn_failed", "subtype": ..., "message": ...}`, `{"error":
    /// "invalid_rule", "line": n}`, `{"error": "owned_elsewhere", "session":
    /// ..., "owner": ...}`.
    pub fn detail(&self) -> Option<Value> {
        match self {
            Error::DangerBlocked(v) => Some(json!({
                "error": "danger_blocked",
                "verdict": super::to_value(v.as_ref()),
            })),
            Error::TurnFailed { subtype, message } => Some(json!({
                "error": "turn_failed", "subtype": subtype, "message": message,
            })),
            Error::InvalidRule { line, .. } => Some(json!({
                "error": "invalid_rule", "line": line,
            })),
            Error::OwnedElsewhere { session, owner } => Some(json!({
                "error": "owned_elsewhere", "session": session, "owner": owner,
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_are_unique_and_stable() {
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(c.number(), i as i32 + 1);
            assert_eq!(ErrorCode::from_number(c.number()), Some(*c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                Value::String(c.name().into())
            );
        }
        assert_eq!(ErrorCode::from_number(0), None);
    }

    #[test]
    fn every_core_error_has_its_own_code() {
        let cases = [
            (Error::Spawn("x".into()), ErrorCode::Spawn),
            (Error::Io("x".into()), ErrorCode::Io),
            (Error::Containment("x".into()), ErrorCode::Containment),
            (Error::Closed, ErrorCode::Closed),
            (Error::StartFailed("x".into()), ErrorCode::StartFailed),
        ];
        for (e, c) in cases {
            assert_eq!(e.code(), c, "{e}");
        }
        let d = Error::TurnFailed {
            subtype: "error_max_turns".into(),
            message: "m".into(),
        }
        .detail()
        .unwrap();
        assert_eq!(d["subtype"], "error_max_turns");
    }
}
