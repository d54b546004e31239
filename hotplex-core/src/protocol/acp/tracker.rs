//! From the ACP messages of one turn to the contract's events, and per-turn
//! statistics: the ACP counterpart of `protocol::tracker` for Claude Code.
//!
//! A [`TurnTracker`] is made for one `session/prompt` request (its id) and
//! fed every message the agent prints until the answer to that request,
//! which ends the turn. How ACP maps to the contract's events:
//!
//! | ACP | event |
//! |---|---|
//! | `agent_message_chunk` (text) | `answer_delta` per chunk (with deltas on); `answer` with the message's whole text when the message ends |
//! | `agent_thought_chunk` (text) | `thinking_delta` per chunk (with deltas on); `thinking` with the whole text when the thought ends |
//! | `tool_call`, `tool_call_update` | `tool_use` once the call's input is known (see below); `tool_result` when its status becomes `completed` or `failed` |
//! | `session/request_permission` | `permission_request` (after the call's `tool_use`) |
//! | `plan` | `thinking`, the plan as text (`Plan:` then one `- [status] step` line per entry); the entries stay in [`TurnTracker::plan`] |
//! | the `session/prompt` answer | `error` unless `stopReason` is `end_turn` (or the answer is a JSON-RPC error), then `session_stats` |
//! | `user_message_chunk`, `available_commands_update`, `current_mode_update`, `usage_update`, unknown kinds | no event; kept as state ([`TurnTracker::current_mode`], ...) |
//!
//! A message *ends* when a chunk with another `messageId` arrives, when
//! anything else produces an event (a tool call, a thought, a plan, a
//! permission request), or when the turn ends: so the `answer` events of a
//! turn are its messages in order, and the `answer_delta`s of a message
//! concatenate to its `answer`, as for Claude with partial messages.
//!
//! A tool call's `tool_use` waits for its input: agents first report a
//! call `pending` with an empty `rawInput` while the model still streams
//! it (OpenCode, claude-code-acp). `tool_use` is emitted the first time
//! the call has a non-empty `rawInput`, leaves `pending`, is asked
//! permission for, or ends; calls never announced are announced at the
//! turn's end. The event's `name` is the call's kind (`execute`, `edit`,
//! `read`, ...; `other` when unknown: ACP has no tool names), its `input`
//! the call's `rawInput` object, or `{"title": ...}` when the agent sends
//! none (Gemini CLI).
//!
//! Statistics: token usage from the `session/prompt` answer's `usage`
//! (see [`PromptResult`]); cost from `usage_update`'s cumulative session
//! cost (USD only), minus what the session had cost before the turn
//! ([`TurnTracker::with_cost_base`]); tool durations from a call's first
//! report to its end. ACP reports no model round trips or durations of
//! its own (`num_turns`, `cli_duration_ms` and `api_duration_ms` stay 0).

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

use super::permission::{self, PermissionTarget};
use super::{
    AgentNotification, AgentRequest, AvailableCommand, ContentBlock, Incoming, PermissionRequest,
    PlanEntry, PromptResult, RequestId, RpcError, SessionUpdate, StopReason, ToolCallFields,
    ToolStatus,
};
use crate::contract::{Event, ToolCall, TurnStats};
use crate::verdict::Verdict;

/// Follows one turn; see the module docs.
#[derive(Debug)]
pub struct TurnTracker {
    prompt_id: RequestId,
    session_id: Option<String>,
    deltas: bool,
    stats: TurnStats,
    cost_base: f64,
    cost_total: Option<f64>,
    calls: HashMap<String, Call>,
    answer: Text,
    thought: Text,
    plan: Vec<PlanEntry>,
    mode: Option<String>,
    commands: Vec<AvailableCommand>,
    context: Option<(u64, u64)>,
    stop: Option<StopReason>,
    error: Option<RpcError>,
    done: bool,
    stray: u64,
}

/// A message being received chunk by chunk.
#[derive(Debug, Default)]
struct Text {
    buf: String,
    message_id: Option<String>,
}

/// One tool call of the turn.
#[derive(Debug)]
struct Call {
    /// What `tool_call` / `tool_call_update` said, merged.
    fields: ToolCallFields,
    /// What permission requests said about it, merged (kept apart so
    /// that a request's sparser `rawInput` does not hide the update's).
    asked: Option<ToolCallFields>,
    /// Its index in `stats.tools`.
    index: usize,
    started: Instant,
    announced: bool,
    finished: bool,
}

impl Call {
    /// The call as best known: the updates' fields, with what permission
    /// requests said filling the gaps (an absent field, an empty input).
    fn view(&self) -> ToolCallFields {
        let mut v = self.fields.clone();
        if let Some(a) = &self.asked {
            fn fill<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
                if into.is_none() {
                    into.clone_from(from);
                }
            }
            fill(&mut v.title, &a.title);
            fill(&mut v.kind, &a.kind);
            fill(&mut v.status, &a.status);
            fill(&mut v.content, &a.content);
            fill(&mut v.locations, &a.locations);
            if !has_input(&v) {
                fill_input(&mut v.raw_input, &a.raw_input);
            }
        }
        v
    }
}

fn fill_input(into: &mut Option<Value>, from: &Option<Value>) {
    if from.is_some() {
        into.clone_from(from);
    }
}

/// Whether a call's input is known: a `rawInput` that is not `null` or
/// an empty object.
fn has_input(f: &ToolCallFields) -> bool {
    match &f.raw_input {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// The event name of a call: its kind.
fn call_name(f: &ToolCallFields) -> String {
    f.kind.as_ref().map_or("other", |k| k.as_str()).to_owned()
}

/// The event input of a call: its `rawInput` object, else its title (and
/// a non-object `rawInput`) in an object.
fn call_input(f: &ToolCallFields) -> Value {
    match &f.raw_input {
        Some(Value::Object(o)) if !o.is_empty() => Value::Object(o.clone()),
        raw => {
            let mut o = json!({});
            if let Some(t) = &f.title {
                o["title"] = json!(t);
            }
            if let Some(r) = raw.as_ref().filter(|r| !r.is_null() && !r.is_object()) {
                o["rawInput"] = r.clone();
            }
            o
        }
    }
}

fn render_plan(entries: &[PlanEntry]) -> String {
    let mut s = String::from("Plan:");
    for e in entries {
        s.push_str("\n- [");
        s.push_str(if e.status.is_empty() {
            "pending"
        } else {
            &e.status
        });
        s.push_str("] ");
        s.push_str(&e.content);
    }
    s
}

impl TurnTracker {
    /// A tracker for the turn started by the `session/prompt` request with
    /// id `prompt_id`.
    pub fn new(prompt_id: RequestId) -> TurnTracker {
        TurnTracker {
            prompt_id,
            session_id: None,
            deltas: false,
            stats: TurnStats::default(),
            cost_base: 0.0,
            cost_total: None,
            calls: HashMap::new(),
            answer: Text::default(),
            thought: Text::default(),
            plan: Vec::new(),
            mode: None,
            commands: Vec::new(),
            context: None,
            stop: None,
            error: None,
            done: false,
            stray: 0,
        }
    }

    /// Ignores updates and requests of other sessions (one agent process
    /// may hold several).
    pub fn for_session(mut self, session_id: &str) -> TurnTracker {
        self.session_id = Some(session_id.to_owned());
        self
    }

    /// Makes chunks `answer_delta` / `thinking_delta` events too.
    pub fn with_deltas(mut self, on: bool) -> TurnTracker {
        self.deltas = on;
        self
    }

    /// The session's cumulative cost (USD) before this turn: the last
    /// [`cost_total`](Self::cost_total) of the previous turn, so the turn's
    /// `cost_usd` is its own.
    pub fn with_cost_base(mut self, total_before: f64) -> TurnTracker {
        self.cost_base = total_before;
        self
    }

    /// The model to report in the turn's statistics (ACP turns do not
    /// name it; the host may know it from its options).
    pub fn with_model(mut self, model: Option<String>) -> TurnTracker {
        self.stats.model = model;
        self
    }

    /// Whether the answer to the prompt arrived (or the turn was
    /// [abandoned](Self::abandon)).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Why the turn ended, once it has (`None` before, and when the prompt
    /// was answered with a JSON-RPC error: see [`prompt_error`](Self::prompt_error)).
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// The JSON-RPC error the prompt was answered with, if it was.
    pub fn prompt_error(&self) -> Option<&RpcError> {
        self.error.as_ref()
    }

    /// The statistics so far.
    pub fn stats(&self) -> &TurnStats {
        &self.stats
    }

    /// The latest plan.
    pub fn plan(&self) -> &[PlanEntry] {
        &self.plan
    }

    /// The mode the agent reported last in this turn (`current_mode_update`).
    pub fn current_mode(&self) -> Option<&str> {
        self.mode.as_deref()
    }

    /// The slash commands the agent reported last in this turn.
    pub fn available_commands(&self) -> &[AvailableCommand] {
        &self.commands
    }

    /// Context tokens used and the window's size, from the last
    /// `usage_update`.
    pub fn context_window(&self) -> Option<(u64, u64)> {
        self.context
    }

    /// The session's cumulative cost (USD) last reported, for the next
    /// turn's [`with_cost_base`](Self::with_cost_base).
    pub fn cost_total(&self) -> Option<f64> {
        self.cost_total
    }

    /// Messages pushed after the turn ended (they belong to no turn).
    pub fn stray(&self) -> u64 {
        self.stray
    }

    /// A tool call of this turn, as its updates described it so far.
    pub fn tool_call(&self, id: &str) -> Option<&ToolCallFields> {
        self.calls.get(id).map(|c| &c.fields)
    }

    /// What a permission request asks to do, with what the call's earlier
    /// updates said (see [`permission::permission_target`]).
    pub fn permission_target(&self, request: &PermissionRequest) -> PermissionTarget {
        permission::permission_target(&request.tool_call, self.tool_call(&request.tool_call.id))
    }

    /// A WAF denial, as an event in order with the others (after the text
    /// received so far).
    pub fn danger_block(&mut self, verdict: Verdict) -> Vec<Event> {
        let mut out = Vec::new();
        self.flush(&mut out);
        out.push(Event::DangerBlock { verdict });
        out
    }

    /// Ends the turn without the agent's answer (the agent died, or was
    /// killed after a cancel it ignored): returns the text still buffered
    /// as events; later messages are stray. No `session_stats`: the caller
    /// reports the failure.
    pub fn abandon(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.done {
            self.flush(&mut out);
            self.done = true;
        }
        out
    }

    /// Records how many events the turn's budget dropped, before the end
    /// (its `session_stats` event carries the count).
    pub fn set_events_dropped(&mut self, n: u64) {
        self.stats.events_dropped = n;
    }

    /// Feeds one message; returns the events it produces, in order.
    pub fn push(&mut self, msg: &Incoming) -> Vec<Event> {
        self.push_owned(msg.clone())
    }

    /// Like [`push`](Self::push), but takes the message, so its texts move
    /// into the events instead of being copied.
    pub fn push_owned(&mut self, msg: Incoming) -> Vec<Event> {
        let mut out = Vec::new();
        if self.done {
            self.stray += 1;
            return out;
        }
        let now = Instant::now();
        match msg {
            Incoming::Response { id, result } if id == self.prompt_id => {
                self.finish(result, &mut out);
            }
            Incoming::Notification(AgentNotification::SessionUpdate { session_id, update })
                if self.is_mine(&session_id) =>
            {
                self.update(update, now, &mut out);
            }
            Incoming::Request {
                id,
                request: AgentRequest::RequestPermission(req),
            } if self.is_mine(&req.session_id) => {
                let mut events = Vec::new();
                let call = self.call(req.tool_call.id.clone(), now);
                match &mut call.asked {
                    Some(a) => a.merge(&req.tool_call),
                    None => call.asked = Some(req.tool_call),
                }
                let key = call.fields.id.clone();
                self.announce(&key, true, &mut events);
                let view = self.calls.get(&key).map(Call::view).unwrap_or_default();
                events.push(Event::PermissionRequest {
                    request_id: id.to_string(),
                    tool_name: call_name(&view),
                    input: call_input(&view),
                });
                self.flush(&mut out);
                out.extend(events);
            }
            _ => {}
        }
        out
    }

    fn is_mine(&self, session_id: &str) -> bool {
        self.session_id.as_deref().map_or(true, |s| s == session_id)
    }

    fn update(&mut self, update: SessionUpdate, now: Instant, out: &mut Vec<Event>) {
        match update {
            SessionUpdate::AgentMessageChunk(c) => {
                let ContentBlock::Text(text) = c.content else {
                    return;
                };
                self.flush_thought(out);
                if c.message_id.is_some() && c.message_id != self.answer.message_id {
                    self.flush_answer(out);
                    self.answer.message_id = c.message_id;
                }
                if self.deltas {
                    out.push(Event::AnswerDelta { text: text.clone() });
                }
                self.answer.buf.push_str(&text);
            }
            SessionUpdate::AgentThoughtChunk(c) => {
                let ContentBlock::Text(text) = c.content else {
                    return;
                };
                self.flush_answer(out);
                if c.message_id.is_some() && c.message_id != self.thought.message_id {
                    self.flush_thought(out);
                    self.thought.message_id = c.message_id;
                }
                if self.deltas {
                    out.push(Event::ThinkingDelta { text: text.clone() });
                }
                self.thought.buf.push_str(&text);
            }
            SessionUpdate::ToolCall(f) | SessionUpdate::ToolCallUpdate(f) => {
                let key = f.id.clone();
                self.call(key.clone(), now).fields.merge(&f);
                let mut events = Vec::new();
                self.announce(&key, false, &mut events);
                self.maybe_finish(&key, now, &mut events);
                if !events.is_empty() {
                    self.flush(out);
                    out.extend(events);
                }
            }
            SessionUpdate::Plan(entries) => {
                self.flush(out);
                out.push(Event::Thinking {
                    text: render_plan(&entries),
                });
                self.plan = entries;
            }
            SessionUpdate::AvailableCommands(c) => self.commands = c,
            SessionUpdate::CurrentMode(m) => self.mode = Some(m),
            SessionUpdate::Usage(u) => {
                self.context = Some((u.used, u.size));
                if let Some(c) = u.cost.filter(|c| c.currency.eq_ignore_ascii_case("USD")) {
                    if c.amount.is_finite() {
                        self.cost_total = Some(c.amount);
                    }
                }
            }
            SessionUpdate::UserMessageChunk(_) | SessionUpdate::Other { .. } => {}
        }
    }

    /// The call with this id, created (and counted) on first sight.
    fn call(&mut self, id: String, now: Instant) -> &mut Call {
        let tools = &mut self.stats.tools;
        self.calls.entry(id).or_insert_with_key(|id| {
            tools.push(ToolCall {
                id: id.clone(),
                name: "other".into(),
                is_error: false,
                duration: None,
            });
            Call {
                fields: ToolCallFields {
                    id: id.clone(),
                    ..ToolCallFields::default()
                },
                asked: None,
                index: tools.len() - 1,
                started: now,
                announced: false,
                finished: false,
            }
        })
    }

    /// Emits the call's `tool_use` if it is due (see the module docs).
    fn announce(&mut self, id: &str, force: bool, out: &mut Vec<Event>) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.announced {
            return;
        }
        let view = call.view();
        let due = force
            || has_input(&view)
            || view
                .status
                .as_ref()
                .is_some_and(|s| *s != ToolStatus::Pending);
        if !due {
            return;
        }
        call.announced = true;
        let name = call_name(&view);
        if let Some(t) = self.stats.tools.get_mut(call.index) {
            t.name.clone_from(&name);
        }
        out.push(Event::ToolUse {
            id: id.to_owned(),
            name,
            input: call_input(&view),
        });
    }

    /// Emits the call's `tool_result` when it has just ended.
    fn maybe_finish(&mut self, id: &str, now: Instant, out: &mut Vec<Event>) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let ended = call
            .fields
            .status
            .as_ref()
            .is_some_and(ToolStatus::is_final);
        if call.finished || !ended {
            return;
        }
        call.finished = true;
        let is_error = call.fields.status == Some(ToolStatus::Failed);
        let (index, started) = (call.index, call.started);
        let content = call.fields.result_text();
        let name = call_name(&call.view());
        self.announce(id, true, out);
        if let Some(t) = self.stats.tools.get_mut(index) {
            t.is_error = is_error;
            t.duration = Some(now.duration_since(started));
            t.name.clone_from(&name);
        }
        out.push(Event::ToolResult {
            tool_use_id: id.to_owned(),
            name: Some(name),
            content,
            is_error,
        });
    }

    fn finish(&mut self, result: Result<Value, RpcError>, out: &mut Vec<Event>) {
        self.flush(out);
        // Calls never announced (still pending when the turn ended) are
        // reported so the host sees every call the agent made.
        let mut silent: Vec<(usize, String)> = self
            .calls
            .values()
            .filter(|c| !c.announced)
            .map(|c| (c.index, c.fields.id.clone()))
            .collect();
        silent.sort();
        for (_, id) in silent {
            self.announce(&id, true, out);
        }
        match result {
            Ok(v) => {
                let r = PromptResult::from_result(&v);
                if let Some(u) = r.usage {
                    self.stats.usage = u;
                }
                self.stats.is_error = r.stop_reason != StopReason::EndTurn;
                if self.stats.is_error {
                    let reason = match r.stop_reason.as_str() {
                        "" => "no stopReason",
                        s => s,
                    };
                    out.push(Event::Error {
                        message: format!("turn ended with {reason}"),
                    });
                }
                self.stop = Some(r.stop_reason);
            }
            Err(e) => {
                self.stats.is_error = true;
                out.push(Event::Error {
                    message: format!("session/prompt failed: {e}"),
                });
                self.error = Some(e);
            }
        }
        if let Some(total) = self.cost_total {
            self.stats.cost_usd = (total - self.cost_base).max(0.0);
        }
        self.done = true;
        out.push(Event::SessionStats(self.stats.clone()));
    }

    fn flush(&mut self, out: &mut Vec<Event>) {
        self.flush_thought(out);
        self.flush_answer(out);
    }

    fn flush_answer(&mut self, out: &mut Vec<Event>) {
        if !self.answer.buf.is_empty() {
            out.push(Event::Answer {
                text: std::mem::take(&mut self.answer.buf),
            });
        }
    }

    fn flush_thought(&mut self, out: &mut Vec<Event>) {
        if !self.thought.buf.is_empty() {
            out.push(Event::Thinking {
                text: std::mem::take(&mut self.thought.buf),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_line;
    use super::*;

    fn feed(t: &mut TurnTracker, lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .flat_map(|l| t.push_owned(parse_line(l.as_bytes()).unwrap()))
            .collect()
    }

    fn names(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(Event::name).collect()
    }

    fn chunk(kind: &str, text: &str, message: Option<&str>) -> String {
        let mut update = json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}});
        if let Some(m) = message {
            update["messageId"] = json!(m);
        }
        json!({"jsonrpc": "2.0", "method": "session/update",
            "params": {"sessionId": "s1", "update": update}})
        .to_string()
    }

    const END: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":5,"totalTokens":17,"cachedReadTokens":3}}}"#;

    #[test]
    fn chunks_become_one_answer_per_message_and_deltas_concatenate_to_it() {
        let mut t = TurnTracker::new(RequestId::Int(7))
            .for_session("s1")
            .with_deltas(true);
        let lines = [
            chunk("agent_message_chunk", "Hel", Some("m1")),
            chunk("agent_message_chunk", "lo", Some("m1")),
            chunk("agent_message_chunk", "second", Some("m2")),
            chunk("agent_message_chunk", " message", None),
            END.to_owned(),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let ev = feed(&mut t, &refs);
        assert_eq!(
            names(&ev),
            [
                "answer_delta",
                "answer_delta",
                "answer",
                "answer_delta",
                "answer_delta",
                "answer",
                "session_stats"
            ]
        );
        assert_eq!(
            ev[2],
            Event::Answer {
                text: "Hello".into()
            }
        );
        assert_eq!(
            ev[5],
            Event::Answer {
                text: "second message".into()
            }
        );
        let s = t.stats();
        assert!(!s.is_error);
        assert_eq!(
            (
                s.usage.input_tokens,
                s.usage.output_tokens,
                s.usage.cache_read_input_tokens
            ),
            (12, 5, 3)
        );
        assert_eq!(t.stop_reason(), Some(&StopReason::EndTurn));
        assert!(t.is_done());
    }

    #[test]
    fn without_deltas_only_whole_messages_and_thoughts_are_events() {
        let mut t = TurnTracker::new(RequestId::Int(7));
        let lines = [
            chunk("agent_thought_chunk", "**Plan**\n", None),
            chunk("agent_thought_chunk", "think", None),
            chunk("agent_message_chunk", "ok", None),
            chunk("user_message_chunk", "echo of the prompt", None),
            END.to_owned(),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let ev = feed(&mut t, &refs);
        assert_eq!(names(&ev), ["thinking", "answer", "session_stats"]);
        assert_eq!(
            ev[0],
            Event::Thinking {
                text: "**Plan**\nthink".into()
            }
        );
    }

    #[test]
    fn an_opencode_tool_call_is_announced_once_its_input_is_known() {
        let mut t = TurnTracker::new(RequestId::Int(7)).for_session("s1");
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s1","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"Running it."}}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s1","update":{"sessionUpdate":"tool_call","toolCallId":"call_1","title":"bash","kind":"execute","status":"pending","locations":[],"rawInput":{}}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s1","update":{"sessionUpdate":"tool_call_update","toolCallId":"call_1","status":"in_progress","kind":"execute","title":"echo hi","locations":[],"rawInput":{"command":"echo hi","description":"Print hi"}}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s1","update":{"sessionUpdate":"tool_call_update","toolCallId":"call_1","status":"completed","kind":"execute","content":[{"type":"content","content":{"type":"text","text":"hi\n"}}],"rawOutput":{"output":"hi\n","metadata":{"exit":0}}}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s1","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"done: hi"}}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s1","update":{"sessionUpdate":"usage_update","used":900,"size":128000,"cost":{"amount":0.25,"currency":"USD"}}}}"#,
                r#"{"jsonrpc":"2.0","id":7,"result":{"stopReason":"end_turn"}}"#,
            ],
        );
        assert_eq!(
            names(&ev),
            [
                "answer",
                "tool_use",
                "tool_result",
                "answer",
                "session_stats"
            ]
        );
        assert_eq!(
            ev[1],
            Event::ToolUse {
                id: "call_1".into(),
                name: "execute".into(),
                input: json!({"command": "echo hi", "description": "Print hi"}),
            }
        );
        assert_eq!(
            ev[2],
            Event::ToolResult {
                tool_use_id: "call_1".into(),
                name: Some("execute".into()),
                content: "hi\n".into(),
                is_error: false,
            }
        );
        let s = t.stats();
        assert_eq!(s.tools.len(), 1);
        assert_eq!(s.tools[0].name, "execute");
        assert!(s.tools[0].duration.is_some());
        assert_eq!(t.context_window(), Some((900, 128000)));
        assert_eq!(t.cost_total(), Some(0.25));
        assert!((s.cost_usd - 0.25).abs() < 1e-12);
    }

    #[test]
    fn a_gemini_permission_request_announces_the_call_then_asks() {
        let mut t = TurnTracker::new(RequestId::Int(2)).for_session("g1");
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"g1","update":{"sessionUpdate":"agent_thought_chunk","content":{"type":"text","text":"**Deleting**\nas asked"}}}}"#,
                r#"{"jsonrpc":"2.0","id":0,"method":"session/request_permission","params":{"sessionId":"g1","options":[{"optionId":"proceed_always","name":"Always Allow","kind":"allow_always"},{"optionId":"proceed_once","name":"Allow","kind":"allow_once"},{"optionId":"cancel","name":"Reject","kind":"reject_once"}],"toolCall":{"toolCallId":"run_shell_command-1","status":"pending","title":"rm -rf /tmp/c [current working directory /w] (Delete it)","content":[],"locations":[],"kind":"execute"}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"g1","update":{"sessionUpdate":"tool_call_update","toolCallId":"run_shell_command-1","status":"failed","content":[{"type":"content","content":{"type":"text","text":"Tool \"run_shell_command\" was canceled by the user."}}]}}}"#,
                r#"{"jsonrpc":"2.0","id":2,"result":{"stopReason":"end_turn","_meta":{"quota":{"token_count":{"input_tokens":40,"output_tokens":2},"model_usage":[]}}}}"#,
            ],
        );
        assert_eq!(
            names(&ev),
            [
                "thinking",
                "tool_use",
                "permission_request",
                "tool_result",
                "session_stats"
            ]
        );
        let Event::PermissionRequest {
            request_id,
            tool_name,
            input,
        } = &ev[2]
        else {
            panic!("{:?}", ev[2])
        };
        assert_eq!(request_id, "0");
        assert_eq!(tool_name, "execute");
        assert_eq!(
            input["title"],
            "rm -rf /tmp/c [current working directory /w] (Delete it)"
        );
        assert!(matches!(&ev[3], Event::ToolResult { is_error: true, .. }));
        assert!(t.stats().tools[0].is_error);
        assert_eq!(t.stats().usage.input_tokens, 40);
    }

    #[test]
    fn the_permission_target_keeps_the_input_of_earlier_updates() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"tool_call","toolCallId":"c1","title":"bash","kind":"execute","status":"pending","rawInput":{"command":"rm -rf ~"}}}}"#,
            ],
        );
        let Incoming::Request {
            request: AgentRequest::RequestPermission(req),
            ..
        } = parse_line(
            br#"{"jsonrpc":"2.0","id":5,"method":"session/request_permission","params":{"sessionId":"s","toolCall":{"toolCallId":"c1","rawInput":{}},"options":[]}}"#,
        )
        .unwrap()
        else {
            panic!()
        };
        let ev = t.push_owned(Incoming::Request {
            id: RequestId::Int(5),
            request: AgentRequest::RequestPermission(req.clone()),
        });
        // Announced by the update already (its input was known).
        assert_eq!(names(&ev), ["permission_request"]);
        assert_eq!(t.permission_target(&req).commands, ["rm -rf ~"]);
    }

    #[test]
    fn a_pending_call_without_input_is_announced_at_the_turns_end() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"tool_call","toolCallId":"c1","title":"Thinking about it","status":"pending"}}}"#,
                r#"{"jsonrpc":"2.0","id":1,"result":{"stopReason":"cancelled"}}"#,
            ],
        );
        assert_eq!(names(&ev), ["tool_use", "error", "session_stats"]);
        assert_eq!(
            ev[0],
            Event::ToolUse {
                id: "c1".into(),
                name: "other".into(),
                input: json!({"title": "Thinking about it"})
            }
        );
        assert_eq!(
            ev[1],
            Event::Error {
                message: "turn ended with cancelled".into()
            }
        );
        assert!(t.stats().is_error);
        assert_eq!(t.stats().tools[0].duration, None);
    }

    #[test]
    fn a_plan_is_thinking_text_and_kept_whole() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"plan","entries":[{"content":"Read the code","priority":"high","status":"completed"},{"content":"Fix it","priority":"medium","status":"pending"},{"bad":1}]}}}"#,
            ],
        );
        assert_eq!(
            ev,
            [Event::Thinking {
                text: "Plan:\n- [completed] Read the code\n- [pending] Fix it".into()
            }]
        );
        assert_eq!(t.plan().len(), 2);
    }

    #[test]
    fn state_updates_are_kept_without_events() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"current_mode_update","currentModeId":"code"}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"available_commands_update","availableCommands":[{"name":"init","description":"create AGENTS.md"}]}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"session_info_update","title":"x"}}}"#,
            ],
        );
        assert!(ev.is_empty());
        assert_eq!(t.current_mode(), Some("code"));
        assert_eq!(t.available_commands()[0].name, "init");
    }

    #[test]
    fn other_sessions_other_ids_and_late_lines_are_not_this_turns() {
        let mut t = TurnTracker::new(RequestId::Int(9)).for_session("mine");
        let other = chunk("agent_message_chunk", "not mine", None);
        let ev = feed(
            &mut t,
            &[
                &other,
                r#"{"jsonrpc":"2.0","id":8,"result":{"stopReason":"end_turn"}}"#,
                r#"{"jsonrpc":"2.0","id":"9","result":{"stopReason":"end_turn"}}"#,
                r#"{"jsonrpc":"2.0","id":3,"method":"session/request_permission","params":{"sessionId":"theirs","toolCall":{"toolCallId":"x"},"options":[]}}"#,
            ],
        );
        assert!(ev.is_empty(), "{ev:?}");
        assert!(!t.is_done());
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","id":9,"result":{"stopReason":"end_turn"}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"mine","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"late"}}}}"#,
                r#"{"jsonrpc":"2.0","id":9,"result":{"stopReason":"end_turn"}}"#,
            ],
        );
        assert_eq!(names(&ev), ["session_stats"]);
        assert_eq!(t.stray(), 2);
    }

    #[test]
    fn an_error_answer_or_an_odd_stop_reason_fails_the_turn() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"partial"}}}}"#,
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":429,"message":"Rate limit exceeded. Try again later."}}"#,
            ],
        );
        assert_eq!(names(&ev), ["answer", "error", "session_stats"]);
        assert_eq!(
            ev[1],
            Event::Error {
                message: "session/prompt failed: Rate limit exceeded. Try again later. (code 429)"
                    .into()
            }
        );
        assert_eq!(t.prompt_error().map(|e| e.code), Some(429));
        assert_eq!(t.stop_reason(), None);
        for (result, why) in [
            (r#"{"stopReason":"refusal"}"#, "turn ended with refusal"),
            (
                r#"{"stopReason":"max_tokens"}"#,
                "turn ended with max_tokens",
            ),
            (r#"{"stopReason":"later"}"#, "turn ended with later"),
            (r#"{}"#, "turn ended with no stopReason"),
            (r#"null"#, "turn ended with no stopReason"),
            (r#"{"stopReason":7}"#, "turn ended with no stopReason"),
        ] {
            let mut t = TurnTracker::new(RequestId::Int(1));
            let ev = feed(
                &mut t,
                &[&format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#)],
            );
            assert_eq!(
                ev[0],
                Event::Error {
                    message: why.into()
                },
                "{result}"
            );
            assert!(t.stats().is_error);
        }
    }

    #[test]
    fn the_cost_is_the_turns_share_of_the_sessions_total() {
        let mut t = TurnTracker::new(RequestId::Int(1)).with_cost_base(0.10);
        feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"usage_update","used":10,"size":100,"cost":{"amount":0.13,"currency":"USD"}}}}"#,
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"usage_update","used":10,"size":100,"cost":{"amount":99,"currency":"EUR"}}}}"#,
                r#"{"jsonrpc":"2.0","id":1,"result":{"stopReason":"end_turn"}}"#,
            ],
        );
        assert!((t.stats().cost_usd - 0.03).abs() < 1e-12);
        assert_eq!(t.cost_total(), Some(0.13));
        // No cost reported: 0, not a negative share.
        let mut t = TurnTracker::new(RequestId::Int(1)).with_cost_base(5.0);
        feed(
            &mut t,
            &[r#"{"jsonrpc":"2.0","id":1,"result":{"stopReason":"end_turn"}}"#],
        );
        assert_eq!(t.stats().cost_usd, 0.0);
    }

    #[test]
    fn a_danger_block_and_an_abandoned_turn_flush_the_text_first() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        feed(&mut t, &[&chunk("agent_message_chunk", "about to", None)]);
        let ev = t.danger_block(Verdict::safe());
        assert_eq!(names(&ev), ["answer", "danger_block"]);
        feed(&mut t, &[&chunk("agent_message_chunk", "cut", None)]);
        let ev = t.abandon();
        assert_eq!(ev, [Event::Answer { text: "cut".into() }]);
        assert!(t.is_done());
        assert!(t.abandon().is_empty());
        assert!(feed(
            &mut t,
            &[r#"{"jsonrpc":"2.0","id":1,"result":{"stopReason":"end_turn"}}"#]
        )
        .is_empty());
    }

    #[test]
    fn a_call_completed_in_one_update_yields_use_then_result() {
        let mut t = TurnTracker::new(RequestId::Int(1));
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"tool_call","toolCallId":"r1","title":"ReadFile a.txt","kind":"read","status":"completed","locations":[{"path":"/w/a.txt"}],"content":[{"type":"diff","path":"/w/a.txt","oldText":null,"newText":"x"},{"type":"terminal","terminalId":"t1"}]}}}"#,
            ],
        );
        assert_eq!(names(&ev), ["tool_use", "tool_result"]);
        assert_eq!(
            ev[1],
            Event::ToolResult {
                tool_use_id: "r1".into(),
                name: Some("read".into()),
                content: "diff /w/a.txt\nterminal t1".into(),
                is_error: false
            }
        );
        // A later duplicate completion is not a second result.
        let ev = feed(
            &mut t,
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"tool_call_update","toolCallId":"r1","status":"completed"}}}"#,
            ],
        );
        assert!(ev.is_empty());
    }
}
