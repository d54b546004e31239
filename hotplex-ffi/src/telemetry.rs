//! Telemetry over the C ABI: the lifecycle observer of an engine
//! (`hotplex_observer_callback`, passed in `hotplex_engine_callbacks`) and
//! the process-wide log bridge (`hotplex_set_log_callback()`). The metrics
//! themselves are read from an engine (`hotplex_engine_metrics_text()`, in
//! `engine.rs`).
//!
//! Both callbacks receive records as JSON (the core's serde forms, the
//! schema's `LifecycleRecord` and `LogRecord`) on a thread of hotplex's own,
//! fed by a bounded queue: a slow callback loses records, it never stalls a
//! session. Each C callback sits behind a [`Gate`], which is what lets the
//! header promise a hard end to its calls (and so to its `user_data`).

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hotplex_core::telemetry::{
    set_log_sink, LifecycleRecord, LogLevel, LogRecord, LogSink, Observer,
};

use crate::error::{guard, Failure};
use crate::hotplex_status;

/// Receives an engine's lifecycle records, given in
/// `hotplex_engine_callbacks.observer`.
///
/// `record_json` points to `len` bytes (followed by a NUL) of one JSON
/// object, the schema's `LifecycleRecord`: `{"type": "session_started",
/// "session_id", "pid", "mode"}`, `"session_exited"` (`reason`),
/// `"turn_finished"` (`outcome`, `duration_ms`, `queued_ms`,
/// `input_tokens`, `output_tokens`, `cost_usd`), `"waf_verdict"` (`source`,
/// `level`, `category`, `rule_id`, `blocked`) or `"process_signalled"`
/// (`pid`, `stage`, `processes`). Later versions may add types and keys:
/// ignore what you do not know. It is valid only during the call.
///
/// Threads: it runs on the engine's observer thread (never on a session's,
/// never on the caller's), one record at a time, in the order things
/// happened. Records wait in a bounded queue (1024): while the callback is
/// slow, new records are dropped and counted in the metric
/// `hotplex_observer_dropped_total`; a turn never waits for it.
///
/// Lifetime: `observer_data` is passed to every call unchanged; it must stay
/// valid, and usable from the observer thread, until
/// `hotplex_engine_free()` has returned. After that the callback is never
/// called again. `hotplex_engine_free()` of a closed engine first waits
/// (up to 2 s) for the records still queued, so the callback sees every
/// record of the sessions `hotplex_engine_close()` stopped; freeing an
/// engine that was not closed drops them.
///
/// It must not unwind (no C++ exceptions, no longjmp out of it). It may
/// call any hotplex function, `hotplex_engine_free()` of its own engine
/// included (no record is delivered after that).
pub type hotplex_observer_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, record_json: *const c_char, len: usize)>;

/// Receives hotplex's log records, set with `hotplex_set_log_callback()`.
///
/// `record_json` points to `len` bytes (followed by a NUL) of one JSON
/// object, the schema's `LogRecord`: `level` (`"trace"`, `"debug"`,
/// `"info"`, `"warn"` or `"error"`), `target` (where in hotplex it comes
/// from; `"hotplex::agent"` for agent stderr lines, which arrive at debug),
/// `message` (its fields appended as `key=value`) and `session_id` (a
/// string, or null). It is valid only during the call.
///
/// Threads: it runs on hotplex's log thread (one for the process), one
/// record at a time, in order. Records wait in a bounded queue: while the
/// callback is slow, new records are dropped, logging never stalls a
/// session. `user_data` must stay valid, and usable from that thread, until
/// a later `hotplex_set_log_callback()` has returned; after that this
/// callback is never called again (records still queued for it are
/// dropped). It must not unwind.
pub type hotplex_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, record_json: *const c_char, len: usize)>;

/// A C function that takes one JSON record, with its user data.
#[derive(Clone, Copy)]
struct CRecordFn {
    f: unsafe extern "C" fn(*mut c_void, *const c_char, usize),
    user_data: *mut c_void,
}

// SAFETY: the header requires both callbacks and their user data to be
// usable from hotplex's threads; hotplex never dereferences `user_data`.
unsafe impl Send for CRecordFn {}
// SAFETY: as above (a gate calls it from one thread at a time anyway).
unsafe impl Sync for CRecordFn {}

thread_local! {
    /// The gate whose callback this thread is running, if any.
    static CALLING: Cell<*const Gate> = const { Cell::new(std::ptr::null()) };
}

/// A C callback that can be shut for good: once [`Gate::shut`] has
/// returned, it is not running and is never called again. That is what
/// makes its `user_data` lifetime a promise the header can state.
pub(crate) struct Gate {
    f: CRecordFn,
    open: AtomicBool,
    /// Held during each call, so that `shut` can wait for one in flight.
    calling: Mutex<()>,
}

impl Gate {
    fn new(f: CRecordFn) -> Gate {
        Gate {
            f,
            open: AtomicBool::new(true),
            calling: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The callback runs inside catch_unwind: the lock is never poisoned
        // by it, and a poisoned `()` holds nothing to repair anyway.
        self.calling.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls the callback with `json`, unless the gate is shut.
    fn call(&self, json: &str) {
        let _held = self.lock();
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let text = crate::error::c_string(json);
        let len = text.as_bytes().len();
        let previous = CALLING.with(|c| c.replace(self));
        // SAFETY: the callback's contract (see the typedefs): `text` is a
        // live NUL-terminated string of `len` bytes during the call. A
        // callback that unwinds anyway loses its record, nothing more.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            (self.f.f)(self.f.user_data, text.as_ptr(), len)
        }));
        CALLING.with(|c| c.set(previous));
    }

    /// Shuts the gate and waits for a call in flight, except when the
    /// callback itself is shutting it (it cannot wait for itself; it
    /// returns to a gate that is already shut).
    pub(crate) fn shut(&self) {
        self.open.store(false, Ordering::Release);
        if !std::ptr::eq(CALLING.with(|c| c.get()), self) {
            drop(self.lock());
        }
    }
}

/// Tells [`ObserverLink::finish`] that the core has let go of the observer
/// (its thread delivered what was queued and ended).
type Released = Arc<(Mutex<bool>, Condvar)>;

/// Sets the flag when the core drops the observer closure.
struct OnRelease(Released);

impl Drop for OnRelease {
    fn drop(&mut self) {
        let (done, cv) = &*self.0;
        *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

/// An engine's end of its C observer.
pub(crate) struct ObserverLink {
    gate: Arc<Gate>,
    released: Released,
}

/// How long freeing a closed engine waits for its queued records.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

impl ObserverLink {
    /// Ends the observer's calls, after the engine has been dropped: waits
    /// (if `drain`, up to [`DRAIN_WAIT`]) for the core's observer thread to
    /// deliver what was queued, then shuts the gate.
    pub(crate) fn finish(self, drain: bool) {
        if drain {
            let deadline = Instant::now() + DRAIN_WAIT;
            let (done, cv) = &*self.released;
            let mut released = done.lock().unwrap_or_else(|p| p.into_inner());
            // The observer thread cannot end while this thread is its
            // callback (freeing from inside the observer): do not wait then.
            let inside = CALLING.with(|c| c.get()) == Arc::as_ptr(&self.gate);
            while !*released && !inside {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                released = cv
                    .wait_timeout(released, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        self.gate.shut();
    }
}

/// The core's observer for a C callback, and the engine's link to it
/// (`None` for a NULL callback).
pub(crate) fn observer(
    callback: hotplex_observer_callback,
    user_data: *mut c_void,
) -> Option<(Observer, ObserverLink)> {
    let gate = Arc::new(Gate::new(CRecordFn {
        f: callback?,
        user_data,
    }));
    let released: Released = Arc::default();
    let on_release = OnRelease(released.clone());
    let g = gate.clone();
    let observer: Observer = Arc::new(move |record: &LifecycleRecord| {
        // Owned by the closure: dropped (and signalled) with it.
        let _ = &on_release;
        if let Ok(json) = serde_json::to_string(record) {
            g.call(&json);
        }
    });
    Some((observer, ObserverLink { gate, released }))
}

/// `min_level` of `hotplex_set_log_callback()`: everything.
pub const HOTPLEX_LOG_TRACE: i32 = 0;
/// `min_level` of `hotplex_set_log_callback()`: debug and above (agent
/// stderr lines, protocol details).
pub const HOTPLEX_LOG_DEBUG: i32 = 1;
/// `min_level` of `hotplex_set_log_callback()`: info and above (sessions
/// starting and ending, turns ending).
pub const HOTPLEX_LOG_INFO: i32 = 2;
/// `min_level` of `hotplex_set_log_callback()`: warnings and errors.
pub const HOTPLEX_LOG_WARN: i32 = 3;
/// `min_level` of `hotplex_set_log_callback()`: errors only.
pub const HOTPLEX_LOG_ERROR: i32 = 4;

/// The gate of the current log callback.
static LOG_GATE: Mutex<Option<Arc<Gate>>> = Mutex::new(None);

/// Sends hotplex's log records at `min_level` and above to `callback`, or
/// with a NULL `callback` turns logging off. Process-wide: it replaces the
/// callback set before (for every engine). Levels: 0 trace, 1 debug,
/// 2 info, 3 warn, 4 error (`HOTPLEX_LOG_TRACE` .. `HOTPLEX_LOG_ERROR`);
/// any other number fails with
/// `HOTPLEX_STATUS_INVALID_ARGUMENT` (and changes nothing). See
/// `hotplex_log_callback` for the records, the thread and the lifetime of
/// `user_data`: when this returns, the previous callback is not running
/// and is never called again. May be called from any thread, also from
/// inside a log callback.
///
/// # Safety
/// `callback` must be NULL or a function with the `hotplex_log_callback`
/// contract.
#[no_mangle]
pub unsafe extern "C" fn hotplex_set_log_callback(
    min_level: i32,
    callback: hotplex_log_callback,
    user_data: *mut c_void,
) -> hotplex_status {
    guard(|| {
        let level = match min_level {
            HOTPLEX_LOG_TRACE => LogLevel::Trace,
            HOTPLEX_LOG_DEBUG => LogLevel::Debug,
            HOTPLEX_LOG_INFO => LogLevel::Info,
            HOTPLEX_LOG_WARN => LogLevel::Warn,
            HOTPLEX_LOG_ERROR => LogLevel::Error,
            n => {
                return Err(Failure::invalid_argument(format!(
                    "log level {n} is not 0 (trace) .. 4 (error)"
                )))
            }
        };
        let gate = callback.map(|f| Arc::new(Gate::new(CRecordFn { f, user_data })));
        let sink = gate.clone().map(|g| -> LogSink {
            Arc::new(move |record: &LogRecord| {
                if let Ok(json) = serde_json::to_string(record) {
                    g.call(&json);
                }
            })
        });
        let old = {
            // Installing and recording under one lock keeps concurrent
            // callers in the same order in the core and here.
            let mut current = LOG_GATE.lock().unwrap_or_else(|p| p.into_inner());
            set_log_sink(level, sink)?;
            std::mem::replace(&mut *current, gate)
        };
        // Outside the lock: the old callback may itself be waiting for it.
        if let Some(old) = old {
            old.shut();
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(_: *mut c_void, _: *const c_char, _: usize) {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_shut_gate_calls_nothing_and_shutting_from_inside_does_not_deadlock() {
        let g = Gate::new(CRecordFn {
            f: count,
            user_data: std::ptr::null_mut(),
        });
        g.call("{}");
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        // As if from inside the callback: no wait for itself.
        CALLING.with(|c| c.set(&g));
        g.shut();
        CALLING.with(|c| c.set(std::ptr::null()));
        g.call("{}");
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn bad_log_levels_are_invalid_arguments() {
        for n in [-1, 5, i32::MAX] {
            // SAFETY: a NULL callback.
            let st = unsafe { hotplex_set_log_callback(n, None, std::ptr::null_mut()) };
            assert_eq!(st, hotplex_status::InvalidArgument, "{n}");
        }
    }
}
