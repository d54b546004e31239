//! The per-turn event budget: what one turn may keep and stream.
//!
//! An agent decides how much it prints; a flood of messages must not turn
//! into unbounded memory in the host (`Turn.events`, the stream's queue, a
//! binding's copy of both). Each turn may keep `max_events` events and
//! `max_bytes` bytes of their payload; the event that passes either limit
//! is replaced by one `error` event saying so, and every later event is
//! dropped and counted, except the events that close a turn
//! (`session_stats`, `error`, `danger_block`), which always arrive.

use serde_json::Value;

use crate::contract::Event;

/// What to do with one event.
#[derive(Debug, PartialEq)]
pub(crate) enum Admit {
    /// Keep and stream it.
    Keep,
    /// The budget just ran out: keep and stream this note instead.
    Note(Event),
    /// Over budget: drop it (counted).
    Drop,
}

/// One turn's budget; see the module docs.
#[derive(Debug)]
pub(crate) struct EventBudget {
    max_events: usize,
    max_bytes: usize,
    events: usize,
    bytes: usize,
    dropped: u64,
}

impl EventBudget {
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> EventBudget {
        EventBudget {
            max_events,
            max_bytes,
            events: 0,
            bytes: 0,
            dropped: 0,
        }
    }

    /// Events dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Decides the fate of the turn's next event.
    pub(crate) fn admit(&mut self, e: &Event) -> Admit {
        if matches!(
            e,
            Event::SessionStats(_) | Event::Error { .. } | Event::DangerBlock { .. }
        ) {
            return Admit::Keep;
        }
        if self.dropped > 0 {
            self.dropped += 1;
            return Admit::Drop;
        }
        let size = payload_bytes(e);
        if self.events + 1 > self.max_events || self.bytes + size > self.max_bytes {
            self.dropped = 1;
            return Admit::Note(Event::Error {
                message: format!(
                    "this turn reached its event budget ({} events, {} bytes; max_turn_events {}, max_turn_event_bytes {}): its further events are dropped and counted in events_dropped",
                    self.events, self.bytes, self.max_events, self.max_bytes
                ),
            });
        }
        self.events += 1;
        self.bytes += size;
        Admit::Keep
    }
}

/// Roughly the bytes an event holds: its texts and JSON values.
fn payload_bytes(e: &Event) -> usize {
    const BASE: usize = 64;
    BASE + match e {
        Event::Thinking { text }
        | Event::Answer { text }
        | Event::AnswerDelta { text }
        | Event::ThinkingDelta { text } => text.len(),
        Event::ToolInputDelta { partial_json } => partial_json.len(),
        Event::ToolUse { id, name, input } => id.len() + name.len() + value_bytes(input),
        Event::ToolResult {
            tool_use_id,
            content,
            ..
        } => tool_use_id.len() + content.len(),
        Event::PermissionRequest {
            request_id,
            tool_name,
            input,
        } => request_id.len() + tool_name.len() + value_bytes(input),
        _ => 0,
    }
}

/// Roughly the bytes of a JSON value in memory (strings plus a small cost
/// per node), without serialising it.
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => 16 + s.len(),
        Value::Array(a) => 16 + a.iter().map(value_bytes).sum::<usize>(),
        Value::Object(o) => {
            16 + o
                .iter()
                .map(|(k, v)| k.len() + value_bytes(v))
                .sum::<usize>()
        }
        _ => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::TurnStats;

    fn answer(n: usize) -> Event {
        Event::Answer {
            text: "x".repeat(n),
        }
    }

    #[test]
    fn the_event_that_passes_the_count_becomes_one_note_and_later_ones_drop() {
        let mut b = EventBudget::new(2, 1 << 20);
        assert_eq!(b.admit(&answer(1)), Admit::Keep);
        assert_eq!(b.admit(&answer(1)), Admit::Keep);
        assert!(matches!(
            b.admit(&answer(1)),
            Admit::Note(Event::Error { .. })
        ));
        assert_eq!(b.admit(&answer(1)), Admit::Drop);
        assert_eq!(b.dropped(), 2);
    }

    #[test]
    fn the_byte_limit_counts_payload_sizes() {
        let mut b = EventBudget::new(1000, 10_000);
        assert_eq!(b.admit(&answer(5_000)), Admit::Keep);
        assert!(matches!(b.admit(&answer(5_000)), Admit::Note(_)));
    }

    #[test]
    fn closing_events_always_pass() {
        let mut b = EventBudget::new(1, 4096);
        b.admit(&answer(1));
        b.admit(&answer(1));
        assert_eq!(
            b.admit(&Event::SessionStats(TurnStats::default())),
            Admit::Keep
        );
        let err = Event::Error {
            message: "x".into(),
        };
        assert_eq!(b.admit(&err), Admit::Keep);
    }
}
