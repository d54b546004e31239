//! A turn in flight over the C ABI: `hotplex_turn_stream`, its pollable
//! file descriptor, and the callback form of a turn.
//!
//! The core's `TurnStream` is async. Rather than block a host thread inside
//! the runtime for every read, each turn gets a small forwarding task on the
//! engine's runtime that owns the core stream and moves its events and its
//! outcome into a queue owned by the handle ([`Shared`]). The C calls then
//! only wait on that queue (a condition variable), which is what makes them
//! safe from any thread (no `block_on`), lets `hotplex_turn_stream_cancel()`
//! run concurrently with a blocked `hotplex_turn_stream_next()`, and lets the
//! queue raise an eventfd a host can put into poll/epoll/libuv. Cancelling
//! (or freeing) aborts the task, which drops the core stream: that is what
//! cancels the turn in the core (interrupt, grace, kill ladder).
//!
//! The callback form runs the same task, but hands each event and the
//! outcome to the host's callbacks instead of queueing them.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hotplex_core::{Error, Event, Turn, TurnStream};
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::error::{borrow, c_string, check_out, free_box, guard, value_guard, write_out, Failure};
use crate::hotplex_status;

/// The message of a turn cancelled by the host.
const CANCELLED: &str = "cancelled by the caller (hotplex_turn_stream_cancel or _free)";

/// A shared owner of an engine's runtime. The last one to go shuts the
/// runtime down in the background: a plain drop would block until every
/// worker stopped, and panics when it happens on one of the runtime's own
/// threads (which is where a callback turn ends).
#[derive(Clone)]
pub(crate) struct RuntimeRef(Option<Arc<Runtime>>);

impl RuntimeRef {
    pub(crate) fn new(rt: Runtime) -> RuntimeRef {
        RuntimeRef(Some(Arc::new(rt)))
    }

    pub(crate) fn get(&self) -> &Runtime {
        self.0.as_ref().expect("set until dropped")
    }
}

impl Drop for RuntimeRef {
    fn drop(&mut self) {
        // `into_inner` (not `try_unwrap`): of two owners dropped at once,
        // exactly one gets the runtime, so it is never dropped in place.
        if let Some(rt) = self.0.take().and_then(Arc::into_inner) {
            rt.shutdown_background();
        }
    }
}

/// The pollable side of a stream: an eventfd whose counter is non-zero
/// exactly while something is ready for `hotplex_turn_stream_next(s, 0)`.
struct Signal {
    fd: OwnedFd,
    raised: bool,
}

impl Signal {
    #[cfg(target_os = "linux")]
    fn new() -> Result<Signal, Failure> {
        use std::os::fd::FromRawFd;
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor that nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(Failure::new(
                hotplex_status::Io,
                format!("eventfd failed: {e}"),
            ));
        }
        Ok(Signal {
            // SAFETY: `fd` is open and ours alone (above).
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            raised: false,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> Result<Signal, Failure> {
        Err(Failure::new(
            hotplex_status::Io,
            "a pollable turn stream needs Linux (eventfd)",
        ))
    }

    /// Makes the descriptor readable (level: stays so until `lower`).
    fn raise(&mut self) {
        if self.raised {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 readable bytes to our own descriptor. It cannot
        // block (EFD_NONBLOCK) nor overflow (the counter is 0 or 1 here).
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        self.raised = n == 8;
    }

    /// Makes the descriptor unreadable: reading an eventfd resets its
    /// counter to zero.
    fn lower(&mut self) {
        if !self.raised {
            return;
        }
        let mut buf: u64 = 0;
        // SAFETY: reads at most 8 bytes into `buf`; non-blocking.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
        self.raised = false;
    }
}

/// What the forwarding task has handed over and the host not yet taken.
#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Set once the turn is over (by the task, or by a cancel).
    outcome: Option<Result<Turn, Error>>,
    ended: bool,
    /// `hotplex_turn_stream_finish()` took the outcome.
    spent: bool,
    /// Created by the first `hotplex_turn_stream_fd()`.
    signal: Option<Signal>,
}

impl Queue {
    /// Whether `hotplex_turn_stream_next(s, 0)` would return at once with
    /// an event or the end (the level the descriptor shows).
    fn ready(&self) -> bool {
        !self.events.is_empty() || self.ended
    }

    fn update_signal(&mut self) {
        let ready = self.ready();
        if let Some(sig) = self.signal.as_mut() {
            if ready {
                sig.raise();
            } else {
                sig.lower();
            }
        }
    }
}

/// The state a stream handle shares with its forwarding task.
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
    /// The host cancelled (or freed) the turn.
    cancelled: AtomicBool,
    /// Events go to callbacks (the callback form); nothing is queued.
    callbacks: bool,
}

impl Shared {
    fn new(callbacks: bool) -> Arc<Shared> {
        Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            cancelled: AtomicBool::new(false),
            callbacks,
        })
    }

    /// The queue; a panic while it was held leaves nothing half done that
    /// matters here, so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, ev: Event) {
        let mut q = self.lock();
        // After a cancel the task may still deliver a last event or two
        // before the abort lands; the stream is over for the host.
        if q.ended {
            return;
        }
        q.events.push_back(ev);
        q.update_signal();
        self.changed.notify_all();
    }

    /// Records the outcome unless one is there already (the first wins: a
    /// cancel racing the natural end keeps whichever came first).
    fn end(&self, outcome: Result<Turn, Error>) {
        let mut q = self.lock();
        if q.ended {
            return;
        }
        q.outcome = Some(outcome);
        q.ended = true;
        q.update_signal();
        self.changed.notify_all();
    }
}

/// The events and outcome of one submitted turn (opaque). Create with
/// `hotplex_engine_start()`, `hotplex_engine_submit()` or
/// `hotplex_engine_start_with_callback()`, release with
/// `hotplex_turn_stream_free()`.
///
/// Threads: `hotplex_turn_stream_next()`, `_finish()` and `_fd()` on one
/// stream must be called by one thread at a time (handing the stream to
/// another thread between calls is fine; different streams are
/// independent). `hotplex_turn_stream_cancel()` may be called from any
/// thread at any time while the stream is alive, also while another thread
/// waits in `_next()` or `_finish()` (which then return promptly).
/// `hotplex_turn_stream_free()` must not run concurrently with any other
/// call on the stream.
///
/// Lifetime: a stream may outlive its engine. When the engine is freed
/// first, its sessions are stopped and the turn ends (`_finish()` returns
/// `HOTPLEX_STATUS_CLOSED` or `HOTPLEX_STATUS_SESSION_DEAD`, or the turn if
/// it had already ended); the engine's threads stay until the last stream
/// is freed.
pub struct hotplex_turn_stream {
    shared: Arc<Shared>,
    task: AbortHandle,
    /// Keeps the runtime (and so the forwarding task) alive.
    _rt: RuntimeRef,
}

impl hotplex_turn_stream {
    /// Cancels the turn: records it as cancelled (unless it is over) and
    /// aborts the forwarding task, whose dropped core stream interrupts the
    /// agent.
    fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        if !self.shared.callbacks {
            self.shared
                .end(Err(Error::TurnTimeout(CANCELLED.to_owned())));
        }
        self.task.abort();
    }

    /// The queue of a stream read with next/finish; fails for the callback
    /// form.
    fn polled(&self) -> Result<MutexGuard<'_, Queue>, Failure> {
        if self.shared.callbacks {
            return Err(Failure::invalid_argument(
                "this stream's events go to its callbacks (hotplex_engine_start_with_callback)",
            ));
        }
        let q = self.shared.lock();
        if q.spent {
            return Err(Failure::invalid_argument("the stream was already finished"));
        }
        Ok(q)
    }
}

impl Drop for hotplex_turn_stream {
    fn drop(&mut self) {
        self.cancel();
        // Closed here, not when the task lets go of `shared`: the host may
        // reuse the number as soon as free returns, and an epoll set must
        // not keep watching a descriptor the host no longer owns.
        let signal = self.shared.lock().signal.take();
        drop(signal);
    }
}

/// Ends the stream if the forwarding task goes away without an outcome
/// (aborted, or dropped with its runtime).
struct EndOnDrop(Arc<Shared>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.end(Err(Error::TurnTimeout(CANCELLED.to_owned())));
    }
}

/// Moves a core stream onto the engine's runtime and wraps it in a handle
/// read with `hotplex_turn_stream_next()` / `_finish()`.
pub(crate) fn polled_stream(rt: &RuntimeRef, mut stream: TurnStream) -> hotplex_turn_stream {
    let shared = Shared::new(false);
    let end = EndOnDrop(shared.clone());
    let task = rt.get().spawn(async move {
        while let Some(ev) = stream.next_event().await {
            end.0.push(ev);
        }
        let outcome = stream.finish().await;
        end.0.end(outcome);
    });
    hotplex_turn_stream {
        shared,
        task: task.abort_handle(),
        _rt: rt.clone(),
    }
}

/// Waits up to `timeout_ms` (negative: no limit) for the turn's next event.
/// On `HOTPLEX_STATUS_OK`, `*event_json` is an event object (`{"type":
/// "answer", "text": ...}`; release it with `hotplex_string_free()`), or
/// NULL once the turn is over: then call `hotplex_turn_stream_finish()`.
/// `HOTPLEX_STATUS_PENDING`: nothing arrived in time (nothing written).
/// With `timeout_ms` 0 it never waits: the way to drain a stream after its
/// descriptor (`hotplex_turn_stream_fd()`) polled readable. After
/// `hotplex_turn_stream_cancel()` the events already queued are still
/// returned, then NULL. A stream of the callback form fails with
/// `HOTPLEX_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `s` must be NULL or a live stream, not used by another thread except
/// through `hotplex_turn_stream_cancel()`; `event_json` must be NULL or
/// valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_next(
    s: *const hotplex_turn_stream,
    timeout_ms: i64,
    event_json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract; every field is shared-safe.
        let s = unsafe { borrow(s, "stream") }?;
        check_out(event_json, "event_json")?;
        let deadline = u64::try_from(timeout_ms)
            .ok()
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut q = s.polled()?;
        loop {
            if let Some(ev) = q.events.pop_front() {
                q.update_signal();
                drop(q);
                let raw = c_string(&ev.to_json().to_string()).into_raw();
                // SAFETY: checked non-NULL.
                unsafe { write_out(event_json, raw) };
                return Ok(());
            }
            if q.ended {
                // SAFETY: checked non-NULL.
                unsafe { write_out(event_json, std::ptr::null_mut()) };
                return Ok(());
            }
            q = match deadline {
                None => s.shared.changed.wait(q).unwrap_or_else(|e| e.into_inner()),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let why = "no event within the timeout";
                        return Err(Failure::new(hotplex_status::Pending, why));
                    }
                    let waited = s.shared.changed.wait_timeout(q, left);
                    waited.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    })
}

/// Waits for the end of the turn (events not read yet are dropped) and
/// writes the turn as JSON to `*turn_json` (release with
/// `hotplex_string_free()`): the core's `Turn` (`text`, `cold_start`,
/// `resumed`, `duration_ms`, `queued_ms`, `usage`, `cost_usd`, `tools`,
/// `model`, `events`, `pid`, ...: the `Turn` of the schema). A failed turn
/// returns its status (`TURN_TIMEOUT`, also for a turn cancelled with
/// `hotplex_turn_stream_cancel()`; `SESSION_DEAD`, `TURN_FAILED` with its
/// subtype in `hotplex_last_error_detail()`, `START_FAILED`, `CLOSED`).
/// Either way the stream is spent: free it. A stream of the callback form
/// fails with `HOTPLEX_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `s` must be NULL or a live stream, not used by another thread except
/// through `hotplex_turn_stream_cancel()`; `turn_json` must be NULL or
/// valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_finish(
    s: *const hotplex_turn_stream,
    turn_json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract; every field is shared-safe.
        let s = unsafe { borrow(s, "stream") }?;
        check_out(turn_json, "turn_json")?;
        let mut q = s.polled()?;
        while !q.ended {
            q = s.shared.changed.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        q.events.clear();
        q.spent = true;
        let outcome = q.outcome.take().unwrap_or(Err(Error::Closed));
        drop(q);
        let turn = outcome?;
        let raw = c_string(&turn.to_json().to_string()).into_raw();
        // SAFETY: checked non-NULL.
        unsafe { write_out(turn_json, raw) };
        Ok(())
    })
}

/// Writes to `*fd` a file descriptor that is readable whenever
/// `hotplex_turn_stream_next(s, 0, ...)` would return at once with an event
/// or with the end of the turn, so that a host can wait for the stream in
/// poll(), select(), epoll or libuv (`uv_poll_t`) and then drain it with a
/// zero timeout. Level-triggered: it stays readable while anything is
/// queued, and from the end of the turn on (like a socket at end of file)
/// until the stream is freed. Do not read from it or write to it: the
/// stream resets it itself when `_next()` takes the last queued event.
///
/// Every call returns the same descriptor (created by the first; Linux:
/// an eventfd, non-blocking, close-on-exec). It belongs to the stream:
/// `hotplex_turn_stream_free()` closes it; the host must not close it, and
/// must remove it from an epoll set or a libuv poll handle before freeing
/// the stream. Fails with `HOTPLEX_STATUS_IO` if no descriptor can be made
/// (or the platform has no eventfd), `HOTPLEX_STATUS_INVALID_ARGUMENT` for
/// a stream of the callback form.
///
/// # Safety
/// `s` must be NULL or a live stream, not used by another thread except
/// through `hotplex_turn_stream_cancel()`; `fd` must be NULL or valid for
/// writing an int.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_fd(
    s: *const hotplex_turn_stream,
    fd: *mut c_int,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract; every field is shared-safe.
        let s = unsafe { borrow(s, "stream") }?;
        check_out(fd, "fd")?;
        let mut q = if s.shared.callbacks {
            s.polled()?
        } else {
            // A spent stream still has its (readable) descriptor.
            s.shared.lock()
        };
        if q.signal.is_none() {
            q.signal = Some(Signal::new()?);
            q.update_signal();
        }
        let raw = q.signal.as_ref().map_or(-1, |sig| sig.fd.as_raw_fd());
        // SAFETY: checked non-NULL.
        unsafe { write_out(fd, raw) };
        Ok(())
    })
}

/// Cancels the turn if it still runs: the agent is interrupted (then, after
/// the engine's `interrupt_grace`, its process tree is killed); after a
/// clean interrupt the session stays hot for its next turn. The stream then
/// ends: `hotplex_turn_stream_next()` returns the events already queued,
/// then NULL, and `_finish()` returns `HOTPLEX_STATUS_TURN_TIMEOUT`; the
/// callback form gets its final call with that status. A turn that is over
/// keeps its outcome. Idempotent; does not wait for the agent.
///
/// Unlike the other stream calls it may be called from any thread at any
/// time while the stream is alive, also while another thread is blocked in
/// `_next()` or `_finish()` on it (they return promptly), and from inside
/// the stream's own callbacks. The stream must still be freed.
///
/// # Safety
/// `s` must be NULL or a live stream (not being freed).
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_cancel(
    s: *const hotplex_turn_stream,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract; every field is shared-safe.
        let s = unsafe { borrow(s, "stream") }?;
        s.cancel();
        Ok(())
    })
}

/// Releases a stream; a turn still running is cancelled (as by
/// `hotplex_turn_stream_cancel()`; the agent is interrupted, the session
/// stays usable) and its descriptor, if `hotplex_turn_stream_fd()` made
/// one, is closed. For the callback form the final callback and
/// `destroy` still follow, on a hotplex thread, possibly after this
/// returns. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a stream not freed yet, and no other call may use it
/// concurrently (not even `_cancel()`) or afterwards.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_free(s: *mut hotplex_turn_stream) {
    // SAFETY: caller's contract (documented above).
    unsafe { free_box(s) }
}

/// Receives one event of a turn started with
/// `hotplex_engine_start_with_callback()`: `event_json` is an event object
/// (`{"type": "answer", "text": ...}`), `len` bytes of UTF-8 plus a
/// terminating NUL, valid only during the call (copy what you keep).
///
/// It runs on one of the engine's threads, one call at a time per turn, in
/// the order of the turn's events (calls for different turns may run
/// concurrently). Keep it short: it holds one of the engine's two worker
/// threads. It may call `hotplex_turn_stream_cancel()` and
/// `hotplex_turn_stream_free()` on its own stream, but none of the calls
/// that block (`hotplex_turn_stream_next()` with a timeout,
/// `hotplex_turn_stream_finish()`, `hotplex_engine_close()`,
/// `hotplex_engine_stop_session()`), and must not free its engine.
pub type hotplex_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event_json: *const c_char, len: usize)>;

/// The final call for a turn started with
/// `hotplex_engine_start_with_callback()`, after its last event.
/// `HOTPLEX_STATUS_OK`: `text` is the turn as JSON (as
/// `hotplex_turn_stream_finish()` writes it). Any other status is the
/// turn's failure (as `_finish()` would return it; `TURN_TIMEOUT` also for
/// a cancelled turn, `CLOSED` when the engine went away): `text` is the
/// message, and `hotplex_last_error_message()` / `hotplex_last_error_detail()`
/// called on this thread during the call return the message and the detail.
/// `text` is `len` bytes of UTF-8 plus a NUL, valid only during the call.
/// Same thread rules as `hotplex_event_callback`.
pub type hotplex_done_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: hotplex_status,
        text: *const c_char,
        len: usize,
    ),
>;

/// Releases the `user_data` of `hotplex_engine_start_with_callback()`:
/// called exactly once, after the final `on_done` call (or, when the start
/// fails, before `hotplex_engine_start_with_callback()` returns, on the
/// calling thread). No callback of the turn runs afterwards.
pub type hotplex_destroy_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The host's side of a callback turn. Delivers the outcome (if the turn
/// did not get to it) and calls `destroy` when dropped, whoever drops it:
/// the task at its end, an abort, a runtime shutting down, or a failed
/// start.
struct Sink {
    on_event: hotplex_event_callback,
    on_done: hotplex_done_callback,
    user_data: *mut c_void,
    destroy: hotplex_destroy_callback,
    done: bool,
    cancelled: Option<Arc<Shared>>,
}

// SAFETY: the host promises (hotplex_engine_start_with_callback's contract)
// that user_data and the callbacks are usable from the engine's threads.
unsafe impl Send for Sink {}

impl Sink {
    fn event(&self, ev: &Event) {
        let Some(cb) = self.on_event else { return };
        let text = c_string(&ev.to_json().to_string());
        // SAFETY: the host's callback with its own user_data; the text is
        // valid for the call.
        unsafe { cb(self.user_data, text.as_ptr(), text.as_bytes().len()) };
    }

    fn done(&mut self, outcome: Result<Turn, Failure>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let Some(cb) = self.on_done else { return };
        let (status, text) = match outcome {
            Ok(turn) => {
                crate::error::set_last(None, None);
                (hotplex_status::Ok, turn.to_json().to_string())
            }
            Err(f) => {
                crate::error::set_last(Some(&f.message), f.detail.as_deref());
                (f.status, f.message)
            }
        };
        let text = c_string(&text);
        // SAFETY: as in `event`.
        unsafe { cb(self.user_data, status, text.as_ptr(), text.as_bytes().len()) };
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.done {
            let cancelled = self
                .cancelled
                .as_ref()
                .is_some_and(|s| s.cancelled.load(Ordering::SeqCst));
            let why = if cancelled {
                Error::TurnTimeout(CANCELLED.to_owned())
            } else {
                Error::Closed
            };
            value_guard((), || self.done(Err(why.into())));
        }
        if let Some(destroy) = self.destroy.take() {
            // SAFETY: the host's destructor, called once (taken above).
            unsafe { destroy(self.user_data) };
        }
    }
}

/// The callbacks of `hotplex_engine_start_with_callback()`, gathered.
pub(crate) struct Callbacks {
    pub(crate) on_event: hotplex_event_callback,
    pub(crate) on_done: hotplex_done_callback,
    pub(crate) user_data: *mut c_void,
    pub(crate) destroy: hotplex_destroy_callback,
}

impl Callbacks {
    /// Owns `user_data` from here on: dropping the result calls `destroy`.
    pub(crate) fn into_sink(self) -> SinkGuard {
        SinkGuard(Sink {
            on_event: self.on_event,
            on_done: self.on_done,
            user_data: self.user_data,
            destroy: self.destroy,
            // A start that fails never reaches on_done: only destroy runs.
            done: true,
            cancelled: None,
        })
    }
}

/// A sink that owns the host's user_data before the turn starts; dropped
/// (a failed start), it only calls `destroy`.
pub(crate) struct SinkGuard(Sink);

/// Runs a callback turn on the engine's runtime and returns its handle
/// (`None` unless `handle`: a turn nobody can cancel runs to its end). The
/// task keeps the runtime alive until the final callback and `destroy`
/// have run, so a host that frees the engine first still gets both (with
/// `CLOSED`).
pub(crate) fn callback_turn(
    rt: &RuntimeRef,
    mut stream: TurnStream,
    sink: SinkGuard,
    handle: bool,
) -> Option<hotplex_turn_stream> {
    let shared = Shared::new(true);
    let mut sink = sink.0;
    sink.done = false;
    sink.cancelled = Some(shared.clone());
    let keep = rt.clone();
    let task = rt.get().spawn(async move {
        let _keep = keep;
        let mut sink = sink;
        while let Some(ev) = stream.next_event().await {
            sink.event(&ev);
        }
        let outcome = stream.finish().await.map_err(Failure::from);
        sink.done(outcome);
    });
    handle.then(|| hotplex_turn_stream {
        shared,
        task: task.abort_handle(),
        _rt: rt.clone(),
    })
}
