//! The host's say on tool calls: `hotplex_permission_callback` and the
//! answer it gives through `hotplex_permission_answer_set()`.
//!
//! The answer is JSON read by the core's one rule
//! (`Permission::from_answer`), the same for every binding; this module only
//! carries it across and fails closed when the callback gets it wrong.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use hotplex_core::{Permission, PermissionHandler, ToolRequest};
use serde_json::{json, Value};

use crate::error::{borrow_mut, c_string, guard, str_arg, Failure};
use crate::hotplex_status;

/// Where a `hotplex_permission_callback` puts its answer (opaque). It lives
/// only during the callback that received it: set it from that call, on
/// that thread, and do not keep the pointer.
pub struct hotplex_permission_answer {
    state: Answer,
}

/// What the callback did with its answer slot.
enum Answer {
    /// Nothing yet (denies if it stays so).
    Unset,
    /// One well-formed answer.
    Json(Value),
    /// A mistake or a reported failure: denies, whatever else is set.
    Failed(String),
}

/// Decides a tool call the WAF did not block, for an engine made with
/// `hotplex_engine_new_with_permission()`.
///
/// `request_json` points to `request_len` bytes (followed by a NUL) of a
/// JSON object: `session_id`, `tool_name`, `input` (the tool input object)
/// and `verdict` (the WAF's verdict, not blocking). The callback answers by
/// calling `hotplex_permission_answer_set(answer, json, len)` once, with:
/// `true` (allow), `false` (deny), a string (deny with that message),
/// `{"behavior": "deny", "message": "..."}`, `{"behavior": "allow"}` or
/// `{"behavior": "allow", "updatedInput": {...}}` (run this input instead; the
/// WAF screens it too). Anything else denies, and so does a callback that
/// sets nothing, sets invalid JSON, sets twice or calls
/// `hotplex_permission_answer_fail()`: a lost answer never allows.
///
/// Threads: it runs on one of the engine's runtime threads (not the thread
/// that submitted the turn), possibly concurrently for different sessions,
/// and the session waits for it: keep it quick, and do not wait on the
/// engine's turns from inside it (`hotplex_turn_stream_next()`,
/// `_finish()`, `hotplex_engine_stop_session()`, `hotplex_engine_close()`).
/// `user_data` must be safe to use from those threads. `request_json` and
/// `answer` are valid only during the call. The callback must not unwind
/// (no C++ exceptions, no longjmp out of it).
pub type hotplex_permission_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        request_json: *const c_char,
        request_len: usize,
        answer: *mut hotplex_permission_answer,
    ),
>;

/// A C permission callback with its user data.
#[derive(Clone, Copy)]
struct CPermission {
    callback:
        unsafe extern "C" fn(*mut c_void, *const c_char, usize, *mut hotplex_permission_answer),
    user_data: *mut c_void,
}

// SAFETY: the header requires the callback to be callable from the engine's
// threads, concurrently, with this `user_data`; hotplex never dereferences it.
unsafe impl Send for CPermission {}
// SAFETY: as above.
unsafe impl Sync for CPermission {}

/// The core's handler for a C callback (`None` for a NULL callback: every
/// tool call the WAF allows runs).
pub(crate) fn handler(
    callback: hotplex_permission_callback,
    user_data: *mut c_void,
) -> Option<PermissionHandler> {
    let c = CPermission {
        callback: callback?,
        user_data,
    };
    Some(Arc::new(move |req: &ToolRequest<'_>| c.ask(req)))
}

impl CPermission {
    fn ask(&self, req: &ToolRequest<'_>) -> Permission {
        let request = json!({
            "session_id": req.session_id,
            "tool_name": req.tool_name,
            "input": req.input,
            "verdict": req.verdict,
        })
        .to_string();
        let text = c_string(&request);
        let mut answer = hotplex_permission_answer {
            state: Answer::Unset,
        };
        // SAFETY: the callback's contract (see hotplex_permission_callback):
        // both pointers are valid for the duration of the call.
        let called = catch_unwind(AssertUnwindSafe(|| unsafe {
            (self.callback)(self.user_data, text.as_ptr(), request.len(), &mut answer)
        }));
        match (called, answer.state) {
            (Err(_), _) => Permission::failed("the callback panicked"),
            (Ok(()), Answer::Unset) => Permission::failed("the callback set no answer"),
            (Ok(()), Answer::Failed(why)) => Permission::failed(&why),
            (Ok(()), Answer::Json(v)) => Permission::from_answer(&v),
        }
    }
}

/// Sets the answer of a `hotplex_permission_callback`: `json` points to
/// `json_len` bytes of JSON (see the callback for the values understood).
/// Fails with `HOTPLEX_STATUS_INVALID_ARGUMENT` for a NULL `answer`, JSON
/// that does not parse or a second answer, `HOTPLEX_STATUS_UTF8` for text
/// that is not UTF-8; each of those (but the NULL) also makes the answer a
/// denial for good.
///
/// # Safety
/// `answer` must be NULL or the `answer` of a callback that is running on
/// this thread; `json` must be NULL or point to `json_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_permission_answer_set(
    answer: *mut hotplex_permission_answer,
    json: *const c_char,
    json_len: usize,
) -> hotplex_status {
    // SAFETY: caller's contract.
    unsafe { answer_with(answer, json, json_len, false) }
}

/// Denies the tool call because the host's check itself failed (an
/// exception, a timeout): `why` (`why_len` bytes, may be empty) says what
/// went wrong, and the model sees `the host's permission check failed:
/// WHY`. Overrides any answer set before. Fails only for a NULL `answer`
/// (`HOTPLEX_STATUS_INVALID_ARGUMENT`); text that is not UTF-8 still denies.
///
/// # Safety
/// As for `hotplex_permission_answer_set()`.
#[no_mangle]
pub unsafe extern "C" fn hotplex_permission_answer_fail(
    answer: *mut hotplex_permission_answer,
    why: *const c_char,
    why_len: usize,
) -> hotplex_status {
    // SAFETY: caller's contract.
    unsafe { answer_with(answer, why, why_len, true) }
}

/// The body of `_set` (`fail == false`) and `_fail`.
///
/// # Safety
/// As for `hotplex_permission_answer_set()`.
unsafe fn answer_with(
    answer: *mut hotplex_permission_answer,
    text: *const c_char,
    len: usize,
    fail: bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let answer = unsafe { borrow_mut(answer, "answer") }?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(text, len, "answer json") };
        let (state, result) = match (&answer.state, fail, text) {
            (_, true, Ok(why)) => (Answer::Failed(why.to_owned()), Ok(())),
            (_, true, Err(_)) => (Answer::Failed("(not UTF-8)".into()), Ok(())),
            (Answer::Failed(why), false, _) => {
                let why = format!("the answer already failed ({why}): the call is denied");
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
        answer.state = state;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> hotplex_permission_answer {
        hotplex_permission_answer {
            state: Answer::Unset,
        }
    }

    fn set(a: &mut hotplex_permission_answer, text: &str) -> hotplex_status {
        // SAFETY: a live slot and a live string.
        unsafe { hotplex_permission_answer_set(a, text.as_ptr().cast(), text.len()) }
    }

    #[test]
    fn a_second_or_malformed_answer_is_an_error_and_stays_a_denial() {
        let mut a = slot();
        assert_eq!(set(&mut a, "true"), hotplex_status::Ok);
        assert!(matches!(a.state, Answer::Json(Value::Bool(true))));
        assert_eq!(set(&mut a, "true"), hotplex_status::InvalidArgument);
        assert!(matches!(a.state, Answer::Failed(_)));
        assert_eq!(set(&mut a, "true"), hotplex_status::InvalidArgument);
        assert!(matches!(a.state, Answer::Failed(_)));

        let mut a = slot();
        assert_eq!(set(&mut a, "{nope"), hotplex_status::InvalidArgument);
        assert!(matches!(a.state, Answer::Failed(_)));

        let mut a = slot();
        // SAFETY: a live slot and two bytes.
        let st = unsafe { hotplex_permission_answer_set(&mut a, b"\"\xff".as_ptr().cast(), 2) };
        assert_eq!(st, hotplex_status::Utf8);
        assert!(matches!(a.state, Answer::Failed(_)));

        // SAFETY: NULL is rejected before anything is read.
        let st =
            unsafe { hotplex_permission_answer_set(std::ptr::null_mut(), std::ptr::null(), 0) };
        assert_eq!(st, hotplex_status::InvalidArgument);
    }

    #[test]
    fn fail_overrides_an_allow() {
        let mut a = slot();
        assert_eq!(set(&mut a, "true"), hotplex_status::Ok);
        // SAFETY: a live slot and a live string.
        let st = unsafe { hotplex_permission_answer_fail(&mut a, c"boom".as_ptr(), 4) };
        assert_eq!(st, hotplex_status::Ok);
        assert!(matches!(&a.state, Answer::Failed(w) if w == "boom"));
    }
}
