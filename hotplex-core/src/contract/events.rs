//! The events of a turn and its statistics.
//!
//! An [`Event`] serializes as one JSON object tagged by `type`, the seed's
//! event name, with a typed payload per kind: this is the shape every
//! binding shows its host (Python's `Event.type`/`Event.data`, Node's
//! camelCased objects, C's JSON text, Go's `Event`).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::verdict::Verdict;

/// Token counts of a turn, as the CLI's `result` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Usage {
    /// Input tokens not served from the cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
}

/// One tool call of a turn.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ToolCall {
    /// Tool call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Whether its result was an error (or a denial).
    pub is_error: bool,
    /// From `tool_use` to `tool_result`; `None` if no result arrived.
    /// Milliseconds on the wire (`duration_ms`).
    #[serde(rename = "duration_ms", serialize_with = "opt_millis")]
    #[schemars(rename = "duration_ms", with = "Option<f64>")]
    pub duration: Option<Duration>,
}

/// Statistics of one turn.
#[derive(Debug, Clone, PartialEq, Default, Serialize, JsonSchema)]
pub struct TurnStats {
    /// Token usage reported by the turn's `result`.
    pub usage: Usage,
    /// Cost of this turn in USD (the CLI reports a running total per
    /// process; hotplex subtracts what the process had cost before).
    pub cost_usd: f64,
    /// The CLI's own duration of the turn.
    pub cli_duration_ms: u64,
    /// Time spent waiting for the model API.
    pub api_duration_ms: u64,
    /// Model round trips.
    pub num_turns: u64,
    /// Tool calls, in order.
    pub tools: Vec<ToolCall>,
    /// The model from `system/init`.
    pub model: Option<String>,
    /// Whether the turn ended with an error.
    pub is_error: bool,
    /// Time from submitting the turn to its first `answer_delta` or
    /// `thinking_delta` (time to first token), in milliseconds; `None`
    /// without partial messages.
    pub first_delta_ms: Option<f64>,
    /// Events of this turn dropped by the engine's per-turn budget
    /// (`max_turn_events`, `max_turn_event_bytes`); 0 normally.
    pub events_dropped: u64,
}

/// One choice of a [`Question`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct QuestionOption {
    /// The option's label: what an answer names to choose it.
    pub label: String,
    /// What choosing it means (empty when the agent gave none).
    pub description: String,
    /// A preview of the option (code, a mock-up), when the agent gave one.
    pub preview: Option<String>,
}

/// One question of an `ask_user_question` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Question {
    /// The question's text. Answers are keyed by it (or by its `header`,
    /// or by its index).
    pub question: String,
    /// A short label for the question (a chip of at most 12 characters in
    /// the CLI's own interface; empty when the agent gave none).
    pub header: String,
    /// The choices offered (2 to 4 with Claude Code). An answer may also be
    /// text of the person's own.
    pub options: Vec<QuestionOption>,
    /// Whether several options may be chosen.
    pub multi_select: bool,
}

/// An event of a turn, in the order it happened. The variant names are the
/// seed's event names (`type` on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// `session_start`: the CLI announced its session.
    SessionStart {
        /// The CLI's session id.
        session_id: Option<String>,
        /// The model in use.
        model: Option<String>,
    },
    /// `thinking`: extended thinking text.
    Thinking {
        /// The text.
        text: String,
    },
    /// `answer`: answer text (a whole message's text).
    Answer {
        /// The text.
        text: String,
    },
    /// `answer_delta`: the next piece of the answer as the model generates
    /// it (with `partial_messages`). The pieces of a message concatenate to
    /// its `answer` event, which still follows.
    AnswerDelta {
        /// The piece.
        text: String,
    },
    /// `thinking_delta`: the next piece of extended thinking (with
    /// `partial_messages`).
    ThinkingDelta {
        /// The piece.
        text: String,
    },
    /// `tool_input_delta`: the next piece of a tool call's input JSON (with
    /// `partial_messages`); the complete call follows as `tool_use`.
    ToolInputDelta {
        /// The piece of JSON text.
        partial_json: String,
    },
    /// `tool_use`: the model asks to run a tool.
    ToolUse {
        /// Tool call id.
        id: String,
        /// Tool name.
        name: String,
        /// Tool input.
        input: Value,
    },
    /// `tool_result`: a tool's result.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// The tool's name, when known from its `tool_use`.
        name: Option<String>,
        /// Result text.
        content: String,
        /// Whether it failed or was denied.
        is_error: bool,
    },
    /// `permission_request`: the CLI asks whether a tool may run.
    PermissionRequest {
        /// Id to answer with.
        request_id: String,
        /// Tool name.
        tool_name: String,
        /// Tool input.
        input: Value,
    },
    /// `danger_block`: the WAF denied a tool call or a prompt.
    DangerBlock {
        /// Why.
        verdict: Verdict,
    },
    /// `session_stats`: the turn's statistics, at its end.
    SessionStats(TurnStats),
    /// `error`: something went wrong in the turn (an error result, a resume
    /// that fell back to a fresh start, ...).
    Error {
        /// What.
        message: String,
    },
    /// `ask_user_question`: the agent asks the person (Claude Code's
    /// `AskUserQuestion` tool) and waits, without a turn timeout, until the
    /// host answers with `answer_question` (or `question_timeout` passes).
    AskUserQuestion {
        /// The id to answer with (the tool call's id).
        question_id: String,
        /// The tool call that asks (its `tool_use` event's `id`).
        tool_use_id: String,
        /// The questions, in order.
        questions: Vec<Question>,
    },
    /// `exit_plan_mode`: in permission mode `plan`, the agent proposes its
    /// plan (Claude Code's `ExitPlanMode` tool) and waits, like a question,
    /// until the host approves or rejects it with `approve_plan`.
    ExitPlanMode {
        /// The id of the proposal (the tool call's id).
        plan_id: String,
        /// The plan's text (markdown).
        plan: String,
        /// The file the agent keeps the plan in, when it names one.
        plan_file: Option<String>,
    },
    /// `plan_mode`: the session entered or left permission mode `plan`
    /// (also at the start of each turn that runs in it).
    PlanMode {
        /// Whether the session is in plan mode now.
        active: bool,
        /// The permission mode now (`plan`, `default`, `acceptEdits`, ...).
        permission_mode: String,
    },
}

impl Event {
    /// Every event name, in declaration order.
    pub const NAMES: [&'static str; 15] = [
        "session_start",
        "thinking",
        "answer",
        "answer_delta",
        "thinking_delta",
        "tool_input_delta",
        "tool_use",
        "tool_result",
        "permission_request",
        "danger_block",
        "session_stats",
        "error",
        "ask_user_question",
        "exit_plan_mode",
        "plan_mode",
    ];

    /// The seed's event name (`type` on the wire).
    pub fn name(&self) -> &'static str {
        match self {
            Event::SessionStart { .. } => "session_start",
            Event::Thinking { .. } => "thinking",
            Event::Answer { .. } => "answer",
            Event::AnswerDelta { .. } => "answer_delta",
            Event::ThinkingDelta { .. } => "thinking_delta",
            Event::ToolInputDelta { .. } => "tool_input_delta",
            Event::ToolUse { .. } => "tool_use",
            Event::ToolResult { .. } => "tool_result",
            Event::PermissionRequest { .. } => "permission_request",
            Event::DangerBlock { .. } => "danger_block",
            Event::SessionStats(_) => "session_stats",
            Event::Error { .. } => "error",
            Event::AskUserQuestion { .. } => "ask_user_question",
            Event::ExitPlanMode { .. } => "exit_plan_mode",
            Event::PlanMode { .. } => "plan_mode",
        }
    }

    /// The event as its JSON object: `{"type": <name>, ...fields}`.
    pub fn to_json(&self) -> Value {
        super::to_value(self)
    }

    /// The event's fields without `type` (Python's `Event.data`, Go's
    /// `Event.Data`).
    pub fn data(&self) -> Value {
        let mut v = self.to_json();
        if let Some(o) = v.as_object_mut() {
            o.remove("type");
        }
        v
    }
}

pub(crate) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn opt_millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_serializes_with_its_seed_name() {
        let events = [
            Event::SessionStart {
                session_id: None,
                model: None,
            },
            Event::Thinking { text: "t".into() },
            Event::Answer { text: "a".into() },
            Event::AnswerDelta { text: "a".into() },
            Event::ThinkingDelta { text: "t".into() },
            Event::ToolInputDelta {
                partial_json: "{".into(),
            },
            Event::ToolUse {
                id: "i".into(),
                name: "Bash".into(),
                input: json!({}),
            },
            Event::ToolResult {
                tool_use_id: "i".into(),
                name: None,
                content: "c".into(),
                is_error: false,
            },
            Event::PermissionRequest {
                request_id: "r".into(),
                tool_name: "Bash".into(),
                input: json!({}),
            },
            Event::DangerBlock {
                verdict: Verdict::safe(),
            },
            Event::SessionStats(TurnStats::default()),
            Event::Error {
                message: "m".into(),
            },
            Event::AskUserQuestion {
                question_id: "q".into(),
                tool_use_id: "q".into(),
                questions: vec![],
            },
            Event::ExitPlanMode {
                plan_id: "p".into(),
                plan: "# Plan".into(),
                plan_file: None,
            },
            Event::PlanMode {
                active: true,
                permission_mode: "plan".into(),
            },
        ];
        assert_eq!(events.len(), Event::NAMES.len());
        for (e, name) in events.iter().zip(Event::NAMES) {
            assert_eq!(e.name(), name);
            assert_eq!(e.to_json()["type"], name);
            assert!(e.data().get("type").is_none());
        }
        assert_eq!(events[2].data(), json!({"text": "a"}));
        let stats = events[10].to_json();
        assert_eq!(stats["usage"]["input_tokens"], 0);
        assert_eq!(stats["cost_usd"], 0.0);
    }

    #[test]
    fn tool_durations_are_milliseconds() {
        let c = ToolCall {
            id: "i".into(),
            name: "n".into(),
            is_error: false,
            duration: Some(Duration::from_micros(1500)),
        };
        assert_eq!(serde_json::to_value(&c).unwrap()["duration_ms"], 1.5);
    }
}
