//! The part of a session that the pool and the session's actor both read:
//! status, pid, activity, totals, and the two counters that decide its
//! fate, the pending count and the stop flag. Those two are private here,
//! changed only through the methods below, so one place owns each rule
//! (a turn is counted once when queued and once when done; the first stop
//! reason wins).

use std::path::PathBuf;
use std::time::Instant;

use crate::contract::telemetry::ExitReason;
use crate::contract::{SessionStats, SessionStatus};

/// Why a session's actor was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// `stop_session`.
    Stopped,
    /// LRU eviction (`max_sessions`).
    Evicted,
    /// The idle reaper (`idle_timeout`).
    Idle,
    /// The engine was closed or dropped.
    Closed,
    /// Placement: another host took the session's lease over.
    Fenced,
}

impl StopReason {
    /// How a process ended by this stop is counted.
    pub(crate) fn exit_reason(self) -> ExitReason {
        match self {
            StopReason::Stopped | StopReason::Fenced => ExitReason::Stopped,
            StopReason::Evicted => ExitReason::Evicted,
            StopReason::Idle => ExitReason::Idle,
            StopReason::Closed => ExitReason::Closed,
        }
    }
}

/// A session's shared state, behind the engine's per-session mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// The conversation's provider session id (changes on reset and when a
    /// fork learns its own).
    pub psid: String,
    pub status: SessionStatus,
    pub pid: Option<i32>,
    pub last_active: Instant,
    pub workdir: Option<PathBuf>,
    pub stats: SessionStats,
    /// Turns queued or running.
    pending: usize,
    /// Set once, by the first stop request.
    stop: Option<StopReason>,
}

impl State {
    pub(crate) fn new(psid: String) -> State {
        State {
            psid,
            status: SessionStatus::Dead,
            pid: None,
            last_active: Instant::now(),
            workdir: None,
            stats: SessionStats::default(),
            pending: 0,
            stop: None,
        }
    }

    /// Turns queued or running.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// A turn was queued (by the pool).
    pub(crate) fn enqueue(&mut self) {
        self.pending += 1;
    }

    /// A queued turn ended, or could not be queued after all.
    pub(crate) fn dequeue(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// Asks the actor to stop; the first reason given is kept.
    pub(crate) fn request_stop(&mut self, reason: StopReason) {
        self.stop.get_or_insert(reason);
    }

    /// Why the actor was told to stop, if it was.
    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }
}
