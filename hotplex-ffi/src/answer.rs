//! What the host's answering callbacks share: the permission callback
//! (`permission.rs`) and the hook and tool callbacks (`host.rs`) each get a
//! call as JSON and an answer slot to fill with JSON (or a failure), on one
//! of the engine's threads, while the agent waits.
//!
//! * [`Answer`] and [`answer_with`]: the slot and the one rule for filling
//!   it (one well-formed answer; a second one, malformed JSON or a reported
//!   failure spoil it for good).
//! * [`call_c`]: calls a C callback with a slot, contains a panic, and
//!   turns what the slot holds into the answer or why there is none.
//! * [`HostGate`]: counts the calls in flight, so that
//!   `hotplex_engine_close()` can promise that none runs after it returns
//!   (the core runs host functions on blocking threads with a timeout, and
//!   a call past its timeout is left to finish on its own).

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde_json::Value;

use crate::error::{c_string, guard, str_arg, Failure};
use crate::hotplex_status;

/// What a callback did with its answer slot.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Nothing yet (a failure if it stays so).
    Unset,
    /// One well-formed answer.
    Json(Value),
    /// A mistake or a reported failure, whatever else is set.
    Failed(String),
}

/// The body of every `*_answer_set` (`fail == false`) and `*_answer_fail`
/// function: `slot` is the answer's state (`None` for a NULL answer
/// handle), `text` the JSON (or the failure's reason).
///
/// # Safety
/// `text` must be NULL or point to `len` readable bytes.
pub(crate) unsafe fn answer_with(
    slot: Option<&mut Answer>,
    text: *const c_char,
    len: usize,
    fail: bool,
) -> hotplex_status {
    guard(|| {
        let slot = slot.ok_or_else(|| Failure::null("answer"))?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(text, len, "answer json") };
        let (state, result) = match (&*slot, fail, text) {
            (_, true, Ok(why)) => (Answer::Failed(why.to_owned()), Ok(())),
            (_, true, Err(_)) => (Answer::Failed("(not UTF-8)".into()), Ok(())),
            (Answer::Failed(why), false, _) => {
                let why = format!("the answer already failed ({why})");
                return Err(Failure::invalid_argument(why));
            }
            (_, false, Err(e)) => (Answer::Failed(e.message.clone()), Err(e)),
            (Answer::Json(_), false, Ok(_)) => {
                let why = "the callback set an answer more than once";
                (
                    Answer::Failed(why.into()),
                    Err(Failure::invalid_argument(why)),
                )
            }
            (Answer::Unset, false, Ok(text)) => match serde_json::from_str(text) {
                Ok(v) => (Answer::Json(v), Ok(())),
                Err(e) => {
                    let why = format!("the callback's answer is not valid JSON: {e}");
                    (
                        Answer::Failed(why.clone()),
                        Err(Failure::invalid_argument(why)),
                    )
                }
            },
        };
        *slot = state;
        result
    })
}

/// A C callback of the answering kind with its user data.
pub(crate) struct CCallback<A> {
    /// The host's function.
    pub(crate) f: unsafe extern "C" fn(*mut c_void, *const c_char, usize, *mut A),
    /// Passed to it unchanged.
    pub(crate) user_data: *mut c_void,
}

impl<A> Clone for CCallback<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for CCallback<A> {}

// SAFETY: the header requires each answering callback to be callable from
// the engine's threads, concurrently, with its `user_data`; hotplex never
// dereferences `user_data`.
unsafe impl<A> Send for CCallback<A> {}
// SAFETY: as above.
unsafe impl<A> Sync for CCallback<A> {}

impl<A> CCallback<A> {
    /// Calls the callback with `call` (JSON text) and a fresh answer slot
    /// (`slot` wraps the state into the handle type `A`, `state` reads it
    /// back): the answer, or why there is none (`what` names the callback
    /// in that text).
    pub(crate) fn ask(
        &self,
        call: &Value,
        what: &str,
        mut slot: A,
        state: impl FnOnce(A) -> Answer,
    ) -> Result<Value, String> {
        let text = call.to_string();
        let c_text = c_string(&text);
        let len = c_text.as_bytes().len();
        // SAFETY: the callback's contract (see its typedef): the text and
        // the answer handle are valid for the duration of the call.
        let called = catch_unwind(AssertUnwindSafe(|| unsafe {
            (self.f)(self.user_data, c_text.as_ptr(), len, &mut slot)
        }));
        match (called, state(slot)) {
            (Err(_), _) => Err(format!("the {what} callback panicked")),
            (Ok(()), Answer::Unset) => Err(format!("the {what} callback set no answer")),
            (Ok(()), Answer::Failed(why)) => Err(why),
            (Ok(()), Answer::Json(v)) => Ok(v),
        }
    }
}

thread_local! {
    /// The gate whose host call this thread is running, if any.
    static INSIDE: Cell<*const HostGate> = const { Cell::new(std::ptr::null()) };
}

/// The calls of an engine's answering callbacks (permission, hooks, tools):
/// once [`HostGate::shut`] has returned, none is running and none starts.
#[derive(Default)]
pub(crate) struct HostGate {
    state: Mutex<GateState>,
    idle: Condvar,
}

#[derive(Default)]
struct GateState {
    shut: bool,
    running: usize,
}

impl HostGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Nothing runs under this lock that could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` (a call of the host), or `Err(why)` once the gate is shut.
    pub(crate) fn run(&self, f: impl FnOnce() -> Result<Value, String>) -> Result<Value, String> {
        {
            let mut s = self.lock();
            if s.shut {
                return Err("the engine is closed".into());
            }
            s.running += 1;
        }
        let previous = INSIDE.with(|c| c.replace(self));
        let out = catch_unwind(AssertUnwindSafe(f));
        INSIDE.with(|c| c.set(previous));
        let mut s = self.lock();
        s.running -= 1;
        if s.running == 0 {
            self.idle.notify_all();
        }
        drop(s);
        out.unwrap_or_else(|_| Err("the host call panicked".into()))
    }

    /// Shuts the gate and waits for the calls in flight (not for the
    /// caller itself when it is one of them: it cannot wait for itself).
    pub(crate) fn shut(&self) {
        let own = usize::from(std::ptr::eq(INSIDE.with(|c| c.get()), self));
        let mut s = self.lock();
        s.shut = true;
        while s.running > own {
            s = self.idle.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_second_or_malformed_answer_spoils_the_slot() {
        let set = |a: &mut Answer, t: &str| {
            // SAFETY: a live string.
            unsafe { answer_with(Some(a), t.as_ptr().cast(), t.len(), false) }
        };
        let mut a = Answer::Unset;
        assert_eq!(set(&mut a, "{\"x\":1}"), hotplex_status::Ok);
        assert!(matches!(a, Answer::Json(_)));
        assert_eq!(set(&mut a, "true"), hotplex_status::InvalidArgument);
        assert!(matches!(a, Answer::Failed(_)));
        let mut a = Answer::Unset;
        assert_eq!(set(&mut a, "{nope"), hotplex_status::InvalidArgument);
        assert!(matches!(a, Answer::Failed(_)));
        // SAFETY: NULL is rejected before anything is read.
        let st = unsafe { answer_with(None, std::ptr::null(), 0, false) };
        assert_eq!(st, hotplex_status::InvalidArgument);
    }

    #[test]
    fn a_shut_gate_waits_for_calls_in_flight_and_refuses_new_ones() {
        let gate = Arc::new(HostGate::default());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let g = gate.clone();
        let slow = std::thread::spawn(move || {
            g.run(|| {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                Ok(Value::Bool(true))
            })
        });
        started_rx.recv().unwrap();
        let t0 = std::time::Instant::now();
        gate.shut();
        assert!(t0.elapsed() >= Duration::from_millis(100), "shut waited");
        assert_eq!(slow.join().unwrap(), Ok(Value::Bool(true)));
        assert!(gate.run(|| Ok(Value::Null)).is_err());
    }

    #[test]
    fn shutting_from_inside_a_call_does_not_wait_for_itself() {
        let gate = HostGate::default();
        let out = gate.run(|| {
            gate.shut();
            Ok(Value::Null)
        });
        assert_eq!(out, Ok(Value::Null));
        assert!(gate.run(|| Ok(Value::Null)).is_err());
    }
}
