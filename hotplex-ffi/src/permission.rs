//! The host's say on tool calls: `hotplex_permission_callback` and the
//! answer it gives through `hotplex_permission_answer_set()`.
//!
//! The answer is JSON read by the core's one rule
//! (`Permission::from_answer`), the same for every binding; this module only
//! carries it across and fails closed when the callback gets it wrong. The
//! slot, its rule and the gate are shared with the hook and tool callbacks
//! (`answer.rs`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use hotplex_core::{Permission, PermissionHandler, ToolRequest};
use serde_json::json;

use crate::answer::{answer_with, Answer, CCallback, HostGate};
use crate::hotplex_status;

/// Where a `hotplex_permission_callback` puts its answer (opaque). It lives
/// only during the callback that received it: set it from that call, on
/// that thread, and do not keep the pointer.
pub struct hotplex_permission_answer {
    state: Answer,
}

/// Decides a tool call the WAF did not block, for an engine made with
/// `hotplex_engine_new_with_permission()` (or the `permission` field of
/// `hotplex_engine_callbacks`).
///
/// `request_json` points to `request_len` bytes (followed by a NUL) of a
/// JSON object: `session_id`, `tool_name`, `input` (the tool input object),
/// `verdict` (the WAF's verdict, not blocking) and `context` (what else the
/// agent said about the call, an object, empty if it said nothing:
/// `permission_suggestions` (permission updates the host may grant),
/// `decision_reason`, `tool_use_id`, `blocked_path`, ...). The callback
/// answers by calling `hotplex_permission_answer_set(answer, json, len)`
/// once, with: `true` (allow), `false` (deny), a string (deny with that
/// message), `{"behavior": "deny", "message": "..."}` (add
/// `"interrupt": true` to also stop the turn), `{"behavior": "allow"}`,
/// optionally with `"updatedInput": {...}` (run this input instead; the WAF
/// screens it too) and `"updatedPermissions": [...]` (permission updates
/// for the agent to keep, e.g. one of the suggestions). Anything else
/// denies, and so does a callback that sets nothing, sets invalid JSON,
/// sets twice or calls `hotplex_permission_answer_fail()`: a lost answer
/// never allows.
///
/// Threads: it runs on one of the engine's blocking threads (not the
/// thread that submitted the turn), possibly concurrently for different
/// sessions, and the agent waits for it, at most the turn's timeout (then
/// the call is denied; the callback is left to finish, its answer
/// dropped). Do not wait on the engine's turns from inside it
/// (`hotplex_turn_stream_next()`, `_finish()`,
/// `hotplex_engine_stop_session()`, `hotplex_engine_close()`).
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

/// The core's handler for a C callback (`None` for a NULL callback: every
/// tool call the WAF allows runs). Its calls pass through `gate`.
pub(crate) fn handler(
    callback: hotplex_permission_callback,
    user_data: *mut c_void,
    gate: &Arc<HostGate>,
) -> Option<PermissionHandler> {
    let c = CCallback {
        f: callback?,
        user_data,
    };
    let gate = gate.clone();
    Some(Arc::new(move |req: &ToolRequest<'_>| {
        let request = json!({
            "session_id": req.session_id,
            "tool_name": req.tool_name,
            "input": req.input,
            "verdict": req.verdict,
            "context": if req.context.is_object() { req.context.clone() } else { json!({}) },
        });
        let slot = hotplex_permission_answer {
            state: Answer::Unset,
        };
        match gate.run(|| c.ask(&request, "permission", slot, |a| a.state)) {
            Ok(v) => Permission::from_answer(&v),
            Err(why) => Permission::failed(&why),
        }
    }))
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
    unsafe { answer_with(answer.as_mut().map(|a| &mut a.state), json, json_len, false) }
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
    unsafe { answer_with(answer.as_mut().map(|a| &mut a.state), why, why_len, true) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
