//! Host hooks and host-defined tools over the C ABI:
//! `hotplex_hook_callback` and `hotplex_tool_callback`, set in
//! `hotplex_engine_callbacks`, answered through a `hotplex_callback_answer`.
//!
//! Which hooks and tools exist travels in the engine's options JSON
//! (`hooks`: `[{event, matcher, id, timeout}]`, `tools`: `[{name, version,
//! tools: [{name, description, input_schema}]}]`, the schema's `HookSpec`
//! and `ToolServer`); the engine calls one C function per kind with the
//! call as JSON. The answer slot, its rule and the gate that ends calls at
//! `hotplex_engine_close()` are the permission callback's (`answer.rs`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use hotplex_core::contract::{HookCall, HookHandler, ToolHandler, ToolInvocation};
use serde_json::json;

use crate::answer::{answer_with, Answer, CCallback, HostGate};
use crate::hotplex_status;

/// Where a `hotplex_hook_callback` or `hotplex_tool_callback` puts its
/// answer (opaque). It lives only during the callback that received it:
/// set it from that call, on that thread, and do not keep the pointer.
pub struct hotplex_callback_answer {
    state: Answer,
}

/// Runs a host hook, for an engine whose options declare `hooks` (given in
/// `hotplex_engine_callbacks.hook`).
///
/// `call_json` points to `call_len` bytes (followed by a NUL) of a JSON
/// object: `session_id`, `hook_id` (the `id` of the hook in the options:
/// which of the host's hooks to run), `event` (`PreToolUse`,
/// `PostToolUse`, `UserPromptSubmit`, `Stop`, ...), `input` (the hook's
/// input as the agent sent it: `hook_event_name`, `tool_name`,
/// `tool_input`, `tool_response`, `prompt`, ...) and `tool_use_id` (a
/// string, or null). The callback answers by calling
/// `hotplex_callback_answer_set(answer, json, len)` once with the hook's
/// output: an object as the Claude Agent SDK's hooks return it
/// (`continue`, `stopReason`, `systemMessage`, `decision`, `reason`,
/// `hookSpecificOutput` with `hookEventName`, `permissionDecision`,
/// `permissionDecisionReason`, `updatedInput`, `additionalContext`, ...),
/// or `{}`/`null` for nothing to say. Or it reports a failure with
/// `hotplex_callback_answer_fail()`.
///
/// The WAF answers first: for `PreToolUse` a call the WAF blocks is denied
/// and the hook is not called, and an `updatedInput` is screened again (a
/// blocked rewrite is denied). A hook that fails (sets nothing, sets
/// something that is not an object, invalid JSON, twice, or calls
/// `_fail()`) or does not return within its `timeout` (default 60 s)
/// denies the tool call for `PreToolUse`; for the other events the agent
/// goes on as if it returned `{}`, and the turn gets an `error` event.
///
/// Threads: as for `hotplex_permission_callback` (one of the engine's
/// blocking threads, concurrently for different sessions, and the agent
/// waits for it). `call_json` and `answer` are valid only during the call;
/// the callback must not unwind.
pub type hotplex_hook_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        call_json: *const c_char,
        call_len: usize,
        answer: *mut hotplex_callback_answer,
    ),
>;

/// Runs a host-defined tool, for an engine whose options declare `tools`
/// (given in `hotplex_engine_callbacks.tool`). The engine serves each
/// server of `tools` to the agent as an in-process MCP server; the model
/// sees a tool as `mcp__<server>__<tool>`, and its calls go through the
/// WAF and the permission callback like any tool's.
///
/// `call_json` points to `call_len` bytes (followed by a NUL) of a JSON
/// object: `session_id`, `server`, `tool` (which of the host's tools to
/// run) and `arguments` (the model's arguments, an object). The callback
/// answers by calling `hotplex_callback_answer_set(answer, json, len)` once
/// with the tool's result: a JSON string (one text block the model reads),
/// an object with a `content` list (the MCP result itself, e.g. with
/// `isError: true` or image blocks), or any other JSON value (sent as its
/// text). A failure (`hotplex_callback_answer_fail()`, no answer, invalid
/// JSON, two answers, or no answer within the turn's timeout) becomes an
/// error result with that text, which the model sees; the turn goes on.
///
/// Threads: as for `hotplex_hook_callback`.
pub type hotplex_tool_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        call_json: *const c_char,
        call_len: usize,
        answer: *mut hotplex_callback_answer,
    ),
>;

fn slot() -> hotplex_callback_answer {
    hotplex_callback_answer {
        state: Answer::Unset,
    }
}

/// The core's hook handler for a C callback (`None` for NULL). Its calls
/// pass through `gate`.
pub(crate) fn hook_handler(
    callback: hotplex_hook_callback,
    user_data: *mut c_void,
    gate: &Arc<HostGate>,
) -> Option<HookHandler> {
    let c = CCallback {
        f: callback?,
        user_data,
    };
    let gate = gate.clone();
    Some(Arc::new(move |h: &HookCall<'_>| {
        let call = json!({
            "session_id": h.session_id,
            "hook_id": h.hook_id,
            "event": h.event,
            "input": h.input,
            "tool_use_id": h.tool_use_id,
        });
        gate.run(|| c.ask(&call, "hook", slot(), |a| a.state))
    }))
}

/// The core's tool handler for a C callback (`None` for NULL). Its calls
/// pass through `gate`.
pub(crate) fn tool_handler(
    callback: hotplex_tool_callback,
    user_data: *mut c_void,
    gate: &Arc<HostGate>,
) -> Option<ToolHandler> {
    let c = CCallback {
        f: callback?,
        user_data,
    };
    let gate = gate.clone();
    Some(Arc::new(move |t: &ToolInvocation<'_>| {
        let call = json!({
            "session_id": t.session_id,
            "server": t.server,
            "tool": t.tool,
            "arguments": t.arguments,
        });
        gate.run(|| c.ask(&call, "tool", slot(), |a| a.state))
    }))
}

/// Sets the answer of a `hotplex_hook_callback` (the hook's output) or a
/// `hotplex_tool_callback` (the tool's result): `json` points to
/// `json_len` bytes of JSON (see the callbacks for the values understood).
/// Fails with `HOTPLEX_STATUS_INVALID_ARGUMENT` for a NULL `answer`, JSON
/// that does not parse or a second answer, `HOTPLEX_STATUS_UTF8` for text
/// that is not UTF-8; each of those (but the NULL) also makes the answer a
/// failure for good.
///
/// # Safety
/// `answer` must be NULL or the `answer` of a callback that is running on
/// this thread; `json` must be NULL or point to `json_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_callback_answer_set(
    answer: *mut hotplex_callback_answer,
    json: *const c_char,
    json_len: usize,
) -> hotplex_status {
    // SAFETY: caller's contract.
    unsafe { answer_with(answer.as_mut().map(|a| &mut a.state), json, json_len, false) }
}

/// Reports that the hook or tool failed (an exception, a timeout of the
/// host's own): `why` (`why_len` bytes, may be empty) says what went
/// wrong. A failed `PreToolUse` hook denies the tool call; other hooks are
/// reported as an `error` event of the turn; a failed tool is an error
/// result the model sees. Overrides any answer set before. Fails only for
/// a NULL `answer` (`HOTPLEX_STATUS_INVALID_ARGUMENT`); text that is not
/// UTF-8 still fails the call.
///
/// # Safety
/// As for `hotplex_callback_answer_set()`.
#[no_mangle]
pub unsafe extern "C" fn hotplex_callback_answer_fail(
    answer: *mut hotplex_callback_answer,
    why: *const c_char,
    why_len: usize,
) -> hotplex_status {
    // SAFETY: caller's contract.
    unsafe { answer_with(answer.as_mut().map(|a| &mut a.state), why, why_len, true) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A tool callback that echoes its call's `arguments.say`, or fails
    /// when there is none.
    unsafe extern "C" fn echo(
        _: *mut c_void,
        call: *const c_char,
        len: usize,
        answer: *mut hotplex_callback_answer,
    ) {
        // SAFETY: the call text is `len` valid bytes during the call.
        let text = unsafe { std::slice::from_raw_parts(call.cast::<u8>(), len) };
        let v: Value = serde_json::from_slice(text).unwrap();
        match v.pointer("/arguments/say") {
            Some(say) => {
                let s = say.to_string();
                // SAFETY: a live answer and a live string.
                unsafe { hotplex_callback_answer_set(answer, s.as_ptr().cast(), s.len()) };
            }
            // SAFETY: as above.
            None => unsafe {
                hotplex_callback_answer_fail(answer, c"no say".as_ptr(), 6);
            },
        }
    }

    #[test]
    fn a_tool_callback_gets_its_call_as_json_and_answers_or_fails() {
        let gate = Arc::new(HostGate::default());
        let h = tool_handler(Some(echo), std::ptr::null_mut(), &gate).unwrap();
        let args = json!({"say": "hi"});
        let call = ToolInvocation {
            session_id: "s",
            server: "host",
            tool: "echo",
            arguments: &args,
        };
        assert_eq!(h(&call), Ok(json!("hi")));
        let none = json!({});
        let call = ToolInvocation {
            arguments: &none,
            ..call
        };
        assert_eq!(h(&call), Err("no say".into()));
        gate.shut();
        assert!(h(&call).is_err());
    }
}
