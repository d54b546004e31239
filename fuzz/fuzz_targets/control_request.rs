//! Fuzzes the control-request path: a line from the agent parsed as a
//! control request, and every answer hotplex can give to it (allow, deny,
//! hook continue/deny, error, and the refusal used outside a turn). Each
//! answer must be one line of JSON, a `control_response` naming the same
//! request id. Run with
//! `cargo +nightly fuzz run control_request -- -max_total_time=600` in `fuzz/`.
#![no_main]

use hotplex_core::protocol::{self, parse_line, CliRequest, Line};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check(answer: &str, request_id: &str) {
    assert!(
        answer.ends_with('\n') && answer.matches('\n').count() == 1,
        "{answer:?}"
    );
    let v: Value = serde_json::from_str(answer).expect("answer is JSON");
    assert_eq!(v["type"], "control_response");
    assert_eq!(v["response"]["request_id"].as_str(), Some(request_id));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(Line::ControlRequest {
        request_id,
        request,
    }) = parse_line(&text)
    else {
        return;
    };
    let why = "fuzz";
    check(&protocol::refuse(&request_id, &request, why), &request_id);
    check(&protocol::control_error(&request_id, why), &request_id);
    check(&protocol::hook_continue(&request_id), &request_id);
    check(&protocol::hook_deny(&request_id, why), &request_id);
    check(&protocol::deny_tool(&request_id, why), &request_id);
    match &request {
        CliRequest::CanUseTool { input, .. } => {
            check(&protocol::allow_tool(&request_id, input), &request_id)
        }
        CliRequest::HookCallback { tool_input, .. } => {
            check(&protocol::allow_tool(&request_id, tool_input), &request_id)
        }
        CliRequest::Other { .. } => {}
    }
});
