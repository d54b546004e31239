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
//! a `tool_use` and its `tool_result`. The CLI's `total_cost_usd` is a
//! running total per process (verified, CLI 2.1.197): the tracker is told
//! what the process had cost before the turn ([`TurnTracker::with_cost_base`])
//! so the `session_stats` event and the finished turn carry the same
//! per-turn cost.

use std::collections::HashMap;
use std::time::Instant;

use super::{Block, CliRequest, Delta, Line};
use crate::contract::{Event, ToolCall, TurnStats};
use crate::verdict::Verdict;

/// Follows one turn; see the module docs.
#[derive(Debug, Default)]
pub struct TurnTracker {
    stats: TurnStats,
    /// The process's running cost before this turn.
    cost_base: f64,
    /// Whether `stream_event` deltas become events.
    deltas: bool,
    /// Open tool calls: id -> (index in `stats.tools`, start).
    open: HashMap<String, (usize, Instant)>,
    /// The inputs of the turn's `ExitPlanMode` calls, by id: the plan when
    /// the permission request leaves it out (CLI 2.1.332 without a plan
    /// file).
    plans: HashMap<String, serde_json::Value>,
    /// The session's permission mode as last reported.
    mode: Option<String>,
    done: bool,
}

impl TurnTracker {
    /// A tracker for a new turn.
    // Used by the reference agent's protocol tests (feature `internals`).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn new() -> TurnTracker {
        TurnTracker::default()
    }

    /// A tracker for a turn of a process that had cost `total_before` USD
    /// so far (the last `total_cost_usd` it reported).
    pub fn with_cost_base(total_before: f64) -> TurnTracker {
        TurnTracker {
            cost_base: total_before,
            ..TurnTracker::default()
        }
    }

    /// Makes token deltas (`--include-partial-messages`) events of the turn.
    pub fn with_deltas(mut self, on: bool) -> TurnTracker {
        self.deltas = on;
        self
    }

    /// Starts from the permission mode the session was last known to be
    /// in (`plan_mode` events report changes against it).
    pub fn with_mode(mut self, mode: Option<String>) -> TurnTracker {
        self.mode = mode;
        self
    }

    /// The permission mode as last reported (`system/init`,
    /// `system/status`).
    pub fn mode(&self) -> Option<&str> {
        self.mode.as_deref()
    }

    /// The input of the turn's `ExitPlanMode` call `id`, if it was seen.
    pub fn plan_input(&self, id: &str) -> Option<&serde_json::Value> {
        self.plans.get(id)
    }

    /// Learns the permission mode `m`: a `plan_mode` event when the session
    /// enters or leaves plan mode, or (`at_start`) starts a turn in it.
    fn learn_mode(&mut self, m: String, at_start: bool, out: &mut Vec<Event>) {
        let was_plan = self.mode.as_deref() == Some("plan");
        let is_plan = m == "plan";
        let changed = self.mode.as_deref() != Some(m.as_str());
        if (at_start && is_plan) || (changed && (was_plan || is_plan)) {
            out.push(Event::PlanMode {
                active: is_plan,
                permission_mode: m.clone(),
            });
        }
        self.mode = Some(m);
    }

    /// Whether the turn's `result` was seen.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The statistics so far.
    pub fn stats(&self) -> &TurnStats {
        &self.stats
    }

    /// A WAF denial, as an event in order with the others.
    pub fn danger_block(&mut self, verdict: Verdict) -> Event {
        Event::DangerBlock { verdict }
    }

    /// Feeds one line; returns the events it produces, in order. Lines
    /// after the `result` produce nothing: they belong to no turn.
    pub fn push(&mut self, line: &Line) -> Vec<Event> {
        self.push_owned(line.clone())
    }

    /// Like [`push`](Self::push), but takes the line, so its texts move
    /// into the events instead of being copied (a large line then costs
    /// its size once, not twice).
    pub fn push_owned(&mut self, line: Line) -> Vec<Event> {
        if self.done {
            return Vec::new();
        }
        let now = Instant::now();
        let mut out = Vec::new();
        match line {
            Line::Init {
                session_id,
                model,
                permission_mode,
                ..
            } => {
                self.stats.model.clone_from(&model);
                out.push(Event::SessionStart { session_id, model });
                if let Some(m) = permission_mode {
                    self.learn_mode(m, true, &mut out);
                }
            }
            Line::Status {
                permission_mode: Some(m),
            } => self.learn_mode(m, false, &mut out),
            Line::Assistant { blocks, .. } => self.blocks(blocks, true, now, &mut out),
            Line::User { blocks } => self.blocks(blocks, false, now, &mut out),
            // A question or plan is an event of its own, emitted by whoever
            // holds it for the host's answer (see `engine::host`).
            Line::ControlRequest {
                request: CliRequest::CanUseTool { ref tool_name, .. },
                ..
            } if super::is_interactive(tool_name) => {}
            Line::ControlRequest {
                request_id,
                request:
                    CliRequest::CanUseTool {
                        tool_name, input, ..
                    },
            } => out.push(Event::PermissionRequest {
                request_id,
                tool_name,
                input,
            }),
            Line::Delta(d) if self.deltas => out.push(match d {
                Delta::Text(text) => Event::AnswerDelta { text },
                Delta::Thinking(text) => Event::ThinkingDelta { text },
                Delta::ToolInput(partial_json) => Event::ToolInputDelta { partial_json },
            }),
            Line::Result(r) => {
                self.done = true;
                self.stats.usage = r.usage;
                self.stats.cost_usd = (r.total_cost_usd - self.cost_base).max(0.0);
                self.stats.cli_duration_ms = r.duration_ms;
                self.stats.api_duration_ms = r.duration_api_ms;
                self.stats.num_turns = r.num_turns;
                self.stats.is_error = r.is_error;
                if r.is_error {
                    out.push(Event::Error {
                        message: format!(
                            "turn ended with {}{}",
                            r.subtype,
                            r.result
                                .as_deref()
                                .map(|t| format!(": {t}"))
                                .unwrap_or_default()
                        ),
                    });
                }
                out.push(Event::SessionStats(self.stats.clone()));
            }
            _ => {}
        }
        out
    }

    /// Events of an assistant (`answer` texts) or user message's blocks.
    fn blocks(&mut self, blocks: Vec<Block>, assistant: bool, now: Instant, out: &mut Vec<Event>) {
        for b in blocks {
            match b {
                Block::Text(text) if assistant => out.push(Event::Answer { text }),
                Block::Thinking(text) => out.push(Event::Thinking { text }),
                Block::ToolUse { id, name, input } => {
                    self.open.insert(id.clone(), (self.stats.tools.len(), now));
                    if name == super::EXIT_PLAN_MODE {
                        self.plans.insert(id.clone(), input.clone());
                    }
                    self.stats.tools.push(ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        is_error: false,
                        duration: None,
                    });
                    out.push(Event::ToolUse { id, name, input });
                }
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => {
                    let name = match self.open.remove(&tool_use_id) {
                        Some((i, started)) => self.stats.tools.get_mut(i).map(|call| {
                            call.is_error = is_error;
                            call.duration = Some(now.duration_since(started));
                            call.name.clone()
                        }),
                        None => None,
                    };
                    out.push(Event::ToolResult {
                        tool_use_id,
                        name,
                        content,
                        is_error,
                    });
                }
                _ => {}
            }
        }
    }

    /// Records how many events the turn's budget dropped, before the
    /// `result` (its `session_stats` event carries the count).
    pub fn set_events_dropped(&mut self, n: u64) {
        self.stats.events_dropped = n;
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
    fn the_cost_is_per_turn_in_the_stats_event_too() {
        let mut t = TurnTracker::with_cost_base(0.05);
        let out = t.push(
            &parse_line(
                r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.08}"#,
            )
            .unwrap(),
        );
        let Some(Event::SessionStats(s)) = out.last() else {
            panic!("no session_stats")
        };
        assert!((s.cost_usd - 0.03).abs() < 1e-12);
        assert_eq!(s.cost_usd, t.stats().cost_usd);
    }

    #[test]
    fn plan_mode_is_reported_at_a_plan_turns_start_and_when_it_changes() {
        let mut t = TurnTracker::new().with_mode(Some("default".into()));
        let names = feed(
            &mut t,
            &[
                r#"{"type":"system","subtype":"init","session_id":"s","permissionMode":"plan"}"#,
                r#"{"type":"system","subtype":"status","status":null,"permissionMode":"plan"}"#,
                r#"{"type":"system","subtype":"status","status":null,"permissionMode":"acceptEdits"}"#,
                r#"{"type":"system","subtype":"status","status":null,"permissionMode":"default"}"#,
            ],
        );
        assert_eq!(names, ["session_start", "plan_mode", "plan_mode"]);
        assert_eq!(t.mode(), Some("default"));
        // Leaving plan mode between turns shows at the next turn's start.
        let mut t = TurnTracker::new().with_mode(Some("plan".into()));
        let out = t.push(
            &parse_line(r#"{"type":"system","subtype":"init","permissionMode":"default"}"#)
                .unwrap(),
        );
        assert_eq!(
            out.last(),
            Some(&Event::PlanMode {
                active: false,
                permission_mode: "default".into()
            })
        );
    }

    #[test]
    fn questions_and_plans_are_not_permission_requests() {
        let mut t = TurnTracker::new();
        let names = feed(
            &mut t,
            &[
                r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"ExitPlanMode","input":{"plan":"P1"}}]}}"#,
                r#"{"type":"control_request","request_id":"r1","request":{"subtype":"can_use_tool","tool_name":"ExitPlanMode","input":{},"tool_use_id":"t1"}}"#,
                r#"{"type":"control_request","request_id":"r2","request":{"subtype":"can_use_tool","tool_name":"AskUserQuestion","input":{"questions":[]},"tool_use_id":"t2"}}"#,
            ],
        );
        assert_eq!(names, ["tool_use"]);
        assert_eq!(t.plan_input("t1").unwrap()["plan"], "P1");
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
