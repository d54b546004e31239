//! Entering Python from hotplex's own threads, and leaving it safely at
//! interpreter exit.
//!
//! Once CPython has begun finalising, a thread that takes the GIL (a
//! runtime thread calling back into Python, a daemon thread returning from
//! a blocked `Engine.execute`, or one running a callback from inside it that
//! yields the GIL) is ended with `pthread_exit`. Its forced unwind runs
//! through Rust frames with `catch_unwind` (tokio's task polls, pyo3's
//! trampolines) and the process aborts ("FATAL: exception not rethrown").
//! So when finalisation begins, no thread may be running Python, or waiting
//! to, inside frames of ours:
//!
//! * [`attach`] (runtime threads) counts itself in `ACTIVE` from before it
//!   takes the GIL until it has released it; a Python thread counts itself
//!   with a [`Busy`] guard while it runs inside a call of ours, except while
//!   it waits in [`detach`] without the GIL. Once `CLOSING` is set, `attach`
//!   drops its callback and `detach` never takes the GIL back: the thread
//!   sleeps until the process ends, as CPython 3.14 does with its own
//!   daemon threads;
//! * [`begin_exit`], an `atexit` handler registered at import, sets
//!   `CLOSING` and releases the GIL until `ACTIVE` is zero (bounded).
//!   `atexit` handlers run before the interpreter marks itself finalising,
//!   and after the non-daemon threads were joined, so only daemon threads
//!   ever sleep.
//!
//! pyo3's own check (`Py_IsFinalizing`) exists only when built for 3.13+;
//! this module's flag works for every version of the abi3 wheel.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Set by [`begin_exit`]: no thread of ours enters Python again.
static CLOSING: AtomicBool = AtomicBool::new(false);
/// Threads taking the GIL or running Python inside frames of ours.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The thread that ran [`begin_exit`] (the finalising one): it is never
/// parked, e.g. when a later `atexit` handler or `__del__` closes an engine.
static CLOSER: OnceLock<ThreadId> = OnceLock::new();

/// How long interpreter exit waits for threads already taking the GIL
/// (each holds it only for one callback).
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Whether the interpreter is exiting (callbacks are dropped).
pub fn closing() -> bool {
    CLOSING.load(Ordering::SeqCst)
}

thread_local! {
    /// This (Python) thread is counted in `ACTIVE` by a [`Busy`] guard.
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// Counts this thread in `ACTIVE`, or returns false once exiting.
fn enter() -> bool {
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    if closing() {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

fn leave() {
    ACTIVE.fetch_sub(1, Ordering::SeqCst);
}

fn is_closer() -> bool {
    CLOSER.get() == Some(&std::thread::current().id())
}

/// Held by a Python thread for the length of a call of ours that runs
/// Python code (callbacks, record conversion) or waits in [`detach`]:
/// interpreter exit waits until no such thread runs Python.
pub struct Busy {
    counted: bool,
}

impl Busy {
    /// Counts this thread (once, however deeply calls nest); not counted
    /// once exiting (only the exiting thread itself gets this far then).
    pub fn begin() -> Busy {
        if HELD.with(Cell::get) || !enter() {
            return Busy { counted: false };
        }
        HELD.with(|h| h.set(true));
        Busy { counted: true }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.counted && HELD.with(|h| h.replace(false)) {
            leave();
        }
    }
}

/// Runs `f` attached to Python from a thread that is not (a runtime or
/// telemetry thread). `None`, and `f` never runs, once the interpreter is
/// exiting or gone: the callback is dropped silently.
pub fn attach<F, R>(f: F) -> Option<R>
where
    F: for<'py> FnOnce(Python<'py>) -> R,
{
    if !enter() {
        return None;
    }
    // Counted until the GIL is released again: exit waits for f.
    let out = Python::try_attach(f);
    leave();
    out
}

/// `py.detach(f)` for a Python thread waiting on the core: once the
/// interpreter is exiting, the thread never takes the GIL back (it would
/// be killed mid-frame and abort the process); it sleeps until the process
/// ends. A thread holding a [`Busy`] is not counted while it waits.
pub fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    let held = HELD.with(Cell::get);
    let (out, counted) = py.detach(|| {
        if held {
            // Waiting without the GIL: exit need not wait for this thread.
            leave();
        }
        let out = f();
        if enter() {
            (out, true)
        } else if is_closer() {
            // The exiting thread itself (a later atexit handler): not
            // counted, and it must go on.
            (out, false)
        } else {
            park_forever()
        }
    });
    match (held, counted) {
        // Counted again for the rest of the call; Busy releases it.
        (true, true) => {}
        (false, true) => leave(),
        // (Never: the exiting thread holds no Busy.) Nothing to release.
        (true, false) => HELD.with(|h| h.set(false)),
        (false, false) => {}
    }
    out
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The `atexit` handler: from now on no thread of ours enters Python;
/// waits (without the GIL) for those already entering.
#[pyfunction]
#[pyo3(name = "_begin_exit")]
pub fn begin_exit(py: Python<'_>) {
    let _ = CLOSER.set(std::thread::current().id());
    // The exiting thread is not counted (it runs atexit, not our calls).
    if HELD.with(|h| h.replace(false)) {
        leave();
    }
    CLOSING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while ACTIVE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
