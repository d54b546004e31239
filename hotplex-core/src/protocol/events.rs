//! From CLI lines to the events a host sees, with the seed's event names,
//! and per-turn statistics.
//!
//! A [`TurnTracker`] consumes the [`Line`]s of one turn in order and yields
//! [`Event`]s: `session_start` (from `system/init`), `thinking`, `answer`,
//! `tool_use`, `tool_result`, `permission_request`, `session_stats` (at the
//! `result`) and `error` (an `is_error` result). `danger_block` is emitted by
//! whoever answers permission requests with the WAF, through
//! [`TurnTracker::danger_block`], so the event lands in order with the rest.
//!
//! Statistics follow the CLI's own accounting: tokens and cost come from the
//! `result` line of the turn (never summed from assistant messages, which
//! would count the same tokens twice), tool durations from the time between
//! a `tool_use` and its `tool_result`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Block, CliRequest, Line, Usage};
use crate::waf::Verdict;

/// One tool call of a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Tool call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Whether its result was an error (or a denial).
    pub is_error: bool,
    /// From `tool_use` to `tool_result`; `None` if no result arrived.
    pub duration: Option<Duration>,
}

/// Statistics of one turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnStats {
    /// Token usage reported by the turn's `result`.
    pub usage: Usage,
    /// Cost reported by the turn's `result`.
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
}

/// An event of a turn, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `session_start`: the CLI announced its session.
    SessionStart {
        /// The CLI's session id.
        session_id: Option<String>,
        /// The model in use.
        model: Option<String>,
    },
    /// `thinking`: extended thinking text.
    Thinking(String),
    /// `answer`: answer text.
    Answer(String),
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
    DangerBlock(Verdict),
    /// `session_stats`: the turn's statistics, at its end.
    SessionStats(TurnStats),
    /// `error`: the turn ended with an error.
    Error(String),
}

impl Event {
    /// The seed's event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::SessionStart { .. } => "session_start",
            Event::Thinking(_) => "thinking",
            Event::Answer(_) => "answer",
            Event::ToolUse { .. } => "tool_use",
            Event::ToolResult { .. } => "tool_result",
            Event::PermissionRequest { .. } => "permission_request",
            Event::DangerBlock(_) => "danger_block",
            Event::SessionStats(_) => "session_stats",
            Event::Error(_) => "error",
        }
    }
}

impl Event {
    /// The event as a JSON object: `{"type": <name>, ...fields}`. Bindings
    /// hand this shape to their host languages, so it is the same everywhere.
    pub fn to_json(&self) -> Value {
        let mut v = match self {
            Event::SessionStart { session_id, model } => {
                json!({"session_id": session_id, "model": model})
            }
            Event::Thinking(t) | Event::Answer(t) => json!({"text": t}),
            Event::ToolUse { id, name, input } => json!({"id": id, "name": name, "input": input}),
            Event::ToolResult {
                tool_use_id,
                name,
                content,
                is_error,
            } => {
                json!({"tool_use_id": tool_use_id, "name": name, "content": content, "is_error": is_error})
            }
            Event::PermissionRequest {
                request_id,
                tool_name,
                input,
            } => json!({"request_id": request_id, "tool_name": tool_name, "input": input}),
            Event::DangerBlock(verdict) => json!({
                "verdict": serde_json::to_value(verdict).unwrap_or(Value::Null),
            }),
            Event::SessionStats(stats) => stats.to_json(),
            Event::Error(message) => json!({"message": message}),
        };
        if let Some(obj) = v.as_object_mut() {
            obj.insert("type".into(), Value::String(self.name().into()));
        }
        v
    }
}

impl TurnStats {
    /// The statistics as a JSON object (durations in milliseconds).
    pub fn to_json(&self) -> Value {
        let u = &self.usage;
        json!({
            "usage": {
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cache_creation_input_tokens": u.cache_creation_input_tokens,
                "cache_read_input_tokens": u.cache_read_input_tokens,
            },
            "cost_usd": self.cost_usd,
            "cli_duration_ms": self.cli_duration_ms,
            "api_duration_ms": self.api_duration_ms,
            "num_turns": self.num_turns,
            "model": self.model,
            "is_error": self.is_error,
            "tools": self.tools.iter().map(|t| json!({
                "id": t.id,
                "name": t.name,
                "is_error": t.is_error,
                "duration_ms": t.duration.map(|d| d.as_secs_f64() * 1000.0),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Follows one turn; see the module docs.
#[derive(Debug, Default)]
pub struct TurnTracker {
    stats: TurnStats,
    /// Open tool calls: id -> (index in `stats.tools`, start).
    open: HashMap<String, (usize, Instant)>,
    done: bool,
}

impl TurnTracker {
    /// A tracker for a new turn.
    pub fn new() -> TurnTracker {
        TurnTracker::default()
    }

    /// Whether the turn's `result` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The statistics so far.
    pub fn stats(&self) -> &TurnStats {
        &self.stats
    }

    /// A WAF denial, as an event in order with the others.
    pub fn danger_block(&mut self, verdict: Verdict) -> Event {
        Event::DangerBlock(verdict)
    }

    /// Feeds one line; returns the events it produces, in order. Lines
    /// after the `result` produce nothing: they belong to no turn.
    pub fn push(&mut self, line: &Line) -> Vec<Event> {
        if self.done {
            return Vec::new();
        }
        let now = Instant::now();
        let mut out = Vec::new();
        match line {
            Line::Init {
                session_id, model, ..
            } => {
                self.stats.model.clone_from(model);
                out.push(Event::SessionStart {
                    session_id: session_id.clone(),
                    model: model.clone(),
                });
            }
            Line::Assistant { blocks, .. } | Line::User { blocks } => {
                for b in blocks {
                    match b {
                        Block::Text(t) if matches!(line, Line::Assistant { .. }) => {
                            out.push(Event::Answer(t.clone()))
                        }
                        Block::Thinking(t) => out.push(Event::Thinking(t.clone())),
                        Block::ToolUse { id, name, input } => {
                            self.open.insert(id.clone(), (self.stats.tools.len(), now));
                            self.stats.tools.push(ToolCall {
                                id: id.clone(),
                                name: name.clone(),
                                is_error: false,
                                duration: None,
                            });
                            out.push(Event::ToolUse {
                                id: id.clone(),
                                name: name.clone(),
                                input: input.clone(),
                            });
                        }
                        Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            let name = match self.open.remove(tool_use_id) {
                                Some((i, started)) => self.stats.tools.get_mut(i).map(|call| {
                                    call.is_error = *is_error;
                                    call.duration = Some(now.duration_since(started));
                                    call.name.clone()
                                }),
                                None => None,
                            };
                            out.push(Event::ToolResult {
                                tool_use_id: tool_use_id.clone(),
                                name,
                                content: content.clone(),
                                is_error: *is_error,
                            });
                        }
                        _ => {}
                    }
                }
            }
            Line::ControlRequest {
                request_id,
                request: CliRequest::CanUseTool { tool_name, input },
            } => out.push(Event::PermissionRequest {
                request_id: request_id.clone(),
                tool_name: tool_name.clone(),
                input: input.clone(),
            }),
            Line::Result(r) => {
                self.done = true;
                self.stats.usage = r.usage;
                self.stats.cost_usd = r.total_cost_usd;
                self.stats.cli_duration_ms = r.duration_ms;
                self.stats.api_duration_ms = r.duration_api_ms;
                self.stats.num_turns = r.num_turns;
                self.stats.is_error = r.is_error;
                if r.is_error {
                    out.push(Event::Error(format!(
                        "turn ended with {}{}",
                        r.subtype,
                        r.result
                            .as_deref()
                            .map(|t| format!(": {t}"))
                            .unwrap_or_default()
                    )));
                }
                out.push(Event::SessionStats(self.stats.clone()));
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_line;
    use super::*;

    fn feed(t: &mut TurnTracker, lines: &[&str]) -> Vec<&'static str> {
        lines
            .iter()
            .flat_map(|l| t.push(&parse_line(l).unwrap()))
            .map(|e| e.name())
            .collect()
    }

    #[test]
    fn a_tool_turn_yields_the_seed_events_in_order_with_stats() {
        let mut t = TurnTracker::new();
        let names = feed(
            &mut t,
            &[
                r#"{"type":"system","subtype":"init","session_id":"s","model":"m"}"#,
                r#"{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hm"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}"#,
                r#"{"type":"control_request","request_id":"r1","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{"command":"ls"}}}"#,
                r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"a b","is_error":false}]}}"#,
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"done"}]}}"#,
                r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":40,"num_turns":2,"total_cost_usd":0.02,"usage":{"input_tokens":7,"output_tokens":3}}"#,
            ],
        );
        assert_eq!(
            names,
            [
                "session_start",
                "thinking",
                "tool_use",
                "permission_request",
                "tool_result",
                "answer",
                "session_stats"
            ]
        );
        assert!(t.is_done());
        let s = t.stats();
        assert_eq!(s.model.as_deref(), Some("m"));
        assert_eq!((s.usage.input_tokens, s.usage.output_tokens), (7, 3));
        assert_eq!(s.tools.len(), 1);
        assert!(s.tools[0].duration.is_some());
    }

    #[test]
    fn an_error_result_yields_an_error_event_and_later_lines_are_dropped() {
        let mut t = TurnTracker::new();
        let names = feed(
            &mut t,
            &[
                r#"{"type":"result","subtype":"error_during_execution","is_error":true}"#,
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"stale"}]}}"#,
            ],
        );
        assert_eq!(names, ["error", "session_stats"]);
        assert!(t.stats().is_error);
    }

    #[test]
    fn user_text_is_not_an_answer() {
        let mut t = TurnTracker::new();
        let names = feed(
            &mut t,
            &[r#"{"type":"user","message":{"content":"[Request interrupted by user]"}}"#],
        );
        assert!(names.is_empty());
    }
}
