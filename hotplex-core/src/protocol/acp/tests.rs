//! The wire types: builders, the line parser, results.

use serde_json::{json, Value};

use super::*;

fn parse(line: &str) -> Result<Incoming, AcpError> {
    parse_line(line.as_bytes())
}

fn update(line: &str) -> SessionUpdate {
    match parse(line) {
        Ok(Incoming::Notification(AgentNotification::SessionUpdate { update, .. })) => update,
        other => panic!("not a session/update: {other:?}"),
    }
}

fn request(line: &str) -> (RequestId, AgentRequest) {
    match parse(line) {
        Ok(Incoming::Request { id, request }) => (id, request),
        other => panic!("not a request: {other:?}"),
    }
}

/// Parses a builder's output, checking it is one JSON-RPC 2.0 line.
fn sent(line: &str) -> Value {
    assert!(
        line.ends_with('\n') && line.matches('\n').count() == 1,
        "{line:?}"
    );
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["jsonrpc"], "2.0");
    v
}

#[test]
fn ids_count_from_zero_and_echo_exactly() {
    let mut c = IdCounter::new();
    assert_eq!(c.next_id(), RequestId::Int(0));
    assert_eq!(c.next_id(), RequestId::Int(1));
    let big = RequestId::Other(json!(18446744073709551615u64));
    assert_eq!(
        sent(&response(&big, json!({})))["id"],
        json!(18446744073709551615u64)
    );
    assert_eq!(
        sent(&response(&RequestId::Str("a-1".into()), Value::Null))["id"],
        "a-1"
    );
    assert_eq!(RequestId::Int(3).to_string(), "3");
    assert_eq!(RequestId::Str("x".into()).to_string(), "x");
    assert_eq!(RequestId::Other(Value::Null).to_string(), "null");
}

#[test]
fn initialize_offers_the_chosen_capabilities_and_names_hotplex() {
    let caps = ClientCapabilities {
        read_text_file: true,
        write_text_file: false,
        terminal: true,
    };
    let v = sent(&initialize(&RequestId::Int(0), caps));
    assert_eq!(v["id"], 0);
    assert_eq!(v["method"], "initialize");
    assert_eq!(v["params"]["protocolVersion"], 1);
    assert_eq!(
        v["params"]["clientCapabilities"],
        json!({"fs": {"readTextFile": true, "writeTextFile": false}, "terminal": true})
    );
    assert_eq!(v["params"]["clientInfo"]["name"], "hotplex");
    assert_eq!(v["params"]["clientInfo"]["version"], crate::VERSION);
}

#[test]
fn session_requests_have_the_schemas_shape() {
    let id = RequestId::Int(4);
    let v = sent(&session_new(&id, "/w"));
    assert_eq!(
        (v["method"].as_str(), &v["params"]),
        (Some("session/new"), &json!({"cwd": "/w", "mcpServers": []}))
    );
    let v = sent(&session_load(&id, "s1", "/w"));
    assert_eq!(
        v["params"],
        json!({"sessionId": "s1", "cwd": "/w", "mcpServers": []})
    );
    let v = sent(&session_prompt(&id, "s1", "line 1\nline 2 \"q\""));
    assert_eq!(v["method"], "session/prompt");
    assert_eq!(
        v["params"]["prompt"],
        json!([{"type": "text", "text": "line 1\nline 2 \"q\""}])
    );
    let v = sent(&session_cancel("s1"));
    assert_eq!(v["method"], "session/cancel");
    assert!(v.get("id").is_none(), "a notification has no id");
    let v = sent(&session_set_mode(&id, "s1", "plan"));
    assert_eq!(v["params"], json!({"sessionId": "s1", "modeId": "plan"}));
    let v = sent(&authenticate(&id, "gemini-api-key"));
    assert_eq!(v["params"]["methodId"], "gemini-api-key");
}

#[test]
fn answers_to_agent_requests_have_the_schemas_shape() {
    let id = RequestId::Int(9);
    let v = sent(&error_response(
        &id,
        codes::RESOURCE_NOT_FOUND,
        "no such file",
    ));
    assert_eq!(
        v["error"],
        json!({"code": -32002, "message": "no such file"})
    );
    assert!(v.get("result").is_none());
    let v = sent(&permission_response(
        &id,
        &permission::PermissionAnswer::Selected {
            option_id: "once".into(),
            kind: PermissionKind::AllowOnce,
        },
    ));
    assert_eq!(
        v["result"],
        json!({"outcome": {"outcome": "selected", "optionId": "once"}})
    );
    let v = sent(&permission_response(
        &id,
        &permission::PermissionAnswer::Cancelled,
    ));
    assert_eq!(v["result"], json!({"outcome": {"outcome": "cancelled"}}));
    assert_eq!(
        sent(&read_text_file_response(&id, "a\nb"))["result"],
        json!({"content": "a\nb"})
    );
    let v = sent(&write_text_file_response(&id));
    assert!(v.get("result").is_some_and(Value::is_null));
    assert_eq!(
        sent(&terminal_create_response(&id, "t1"))["result"],
        json!({"terminalId": "t1"})
    );
    let exit = ExitStatus {
        exit_code: Some(0),
        signal: None,
    };
    assert_eq!(
        sent(&terminal_output_response(&id, "out", false, Some(&exit)))["result"],
        json!({"output": "out", "truncated": false, "exitStatus": {"exitCode": 0, "signal": null}})
    );
    assert_eq!(
        sent(&terminal_output_response(&id, "", true, None))["result"]["exitStatus"],
        Value::Null
    );
    let killed = ExitStatus {
        exit_code: None,
        signal: Some("SIGKILL".into()),
    };
    assert_eq!(
        sent(&terminal_exit_response(&id, &killed))["result"],
        json!({"exitCode": null, "signal": "SIGKILL"})
    );
    assert_eq!(sent(&terminal_done_response(&id))["result"], json!({}));
}

#[test]
fn responses_carry_numeric_string_and_odd_ids() {
    for (line, id) in [
        (r#"{"jsonrpc":"2.0","id":3,"result":{}}"#, RequestId::Int(3)),
        (
            r#"{"jsonrpc":"2.0","id":"3","result":{}}"#,
            RequestId::Str("3".into()),
        ),
        (
            r#"{"jsonrpc":"2.0","id":-9223372036854775808,"result":{}}"#,
            RequestId::Int(i64::MIN),
        ),
        (
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"result":{}}"#,
            RequestId::Other(json!(18446744073709551615u64)),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1.5,"result":{}}"#,
            RequestId::Other(json!(1.5)),
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            RequestId::Other(Value::Null),
        ),
    ] {
        match parse(line) {
            Ok(Incoming::Response { id: got, result }) => {
                assert_eq!(got, id, "{line}");
                assert_eq!(result, Ok(json!({})));
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    // An id that no JSON-RPC message may have.
    assert!(matches!(
        parse(r#"{"jsonrpc":"2.0","id":{"a":1},"result":{}}"#),
        Err(AcpError::BadJsonRpc(_))
    ));
    // A number too large for JSON parsing at all.
    assert!(matches!(
        parse(r#"{"jsonrpc":"2.0","id":1e999,"result":{}}"#),
        Err(AcpError::NotJson(_))
    ));
}

#[test]
fn error_responses_keep_code_message_and_data() {
    let Ok(Incoming::Response { result, .. }) = parse(
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32002,"message":"Resource not found: /x","data":{"path":"/x"}}}"#,
    ) else {
        panic!()
    };
    let e = result.unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (-32002, "Resource not found: /x")
    );
    assert_eq!(e.data, Some(json!({"path": "/x"})));
    assert_eq!(e.to_string(), "Resource not found: /x (code -32002)");
    // Wrong types are tolerated: a code that is not an integer is an
    // internal error, a missing message is empty.
    let Ok(Incoming::Response { result, .. }) =
        parse(r#"{"jsonrpc":"2.0","id":2,"error":{"code":"bad"},"result":{"x":1}}"#)
    else {
        panic!()
    };
    assert_eq!(
        result,
        Err(RpcError {
            code: codes::INTERNAL_ERROR,
            message: String::new(),
            data: None
        })
    );
    // No result and no error: answered with nothing.
    let Ok(Incoming::Response { result, .. }) = parse(r#"{"jsonrpc":"2.0","id":2}"#) else {
        panic!()
    };
    assert_eq!(result, Ok(Value::Null));
    // `"error": null` is no error.
    let Ok(Incoming::Response { result, .. }) =
        parse(r#"{"jsonrpc":"2.0","id":2,"error":null,"result":5}"#)
    else {
        panic!()
    };
    assert_eq!(result, Ok(json!(5)));
}

#[test]
fn garbage_is_a_typed_error_never_a_panic() {
    for (line, want) in [
        ("", "NotJson"),
        ("   ", "NotJson"),
        ("INFO starting server on port 4096", "NotJson"),
        (r#"{"jsonrpc":"2.0","id":1,"result":"#, "NotJson"),
        ("[1,2,3]", "NotAnObject"),
        ("42", "NotAnObject"),
        ("\"text\"", "NotAnObject"),
        ("null", "NotAnObject"),
        (r#"{"id":1,"result":{}}"#, "BadJsonRpc"),
        (r#"{"jsonrpc":"1.0","id":1,"result":{}}"#, "BadJsonRpc"),
        (r#"{"jsonrpc":2.0,"id":1,"result":{}}"#, "BadJsonRpc"),
        (r#"{"jsonrpc":"2.0","method":5}"#, "NotAMessage"),
        (r#"{"jsonrpc":"2.0","method":null,"id":1}"#, "NotAMessage"),
        (r#"{"jsonrpc":"2.0"}"#, "NotAMessage"),
        (r#"{"jsonrpc":"2.0","result":{}}"#, "NotAMessage"),
    ] {
        let got = parse(line);
        let kind = match &got {
            Err(AcpError::NotJson(_)) => "NotJson",
            Err(AcpError::NotAnObject(_)) => "NotAnObject",
            Err(AcpError::BadJsonRpc(_)) => "BadJsonRpc",
            Err(AcpError::NotAMessage(_)) => "NotAMessage",
            other => panic!("{line:?}: {other:?}"),
        };
        assert_eq!(kind, want, "{line:?}");
    }
    // Bytes that are not UTF-8 and not JSON.
    assert!(matches!(
        parse_line(b"\xff\xfe\x00garbage"),
        Err(AcpError::NotJson(_))
    ));
}

#[test]
fn invalid_utf8_and_lone_surrogates_cost_a_character_not_the_line() {
    let mut line = br#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"caf"#.to_vec();
    line.extend_from_slice(b"\xc3"); // a cut two-byte character
    line.extend_from_slice(br#" ok"}}}}"#);
    line.extend_from_slice(b"\r\n");
    let SessionUpdate::AgentMessageChunk(c) = (match parse_line(&line) {
        Ok(Incoming::Notification(AgentNotification::SessionUpdate { update, .. })) => update,
        other => panic!("{other:?}"),
    }) else {
        panic!()
    };
    assert_eq!(c.content.text(), Some("caf\u{fffd} ok"));
    let SessionUpdate::AgentMessageChunk(c) = update(
        r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"x\ud83d"}}}}"#,
    ) else {
        panic!()
    };
    assert_eq!(c.content.text(), Some("x\u{fffd}"));
}

#[test]
fn a_huge_line_parses_whole() {
    let text = "x".repeat(8 << 20);
    let line = json!({"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "s",
        "update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}}})
    .to_string();
    let SessionUpdate::AgentMessageChunk(c) = update(&line) else {
        panic!()
    };
    assert_eq!(c.content.text().map(str::len), Some(8 << 20));
}

#[test]
fn every_update_kind_is_typed() {
    let u = |body: &str| {
        update(&format!(
            r#"{{"jsonrpc":"2.0","method":"session/update","params":{{"sessionId":"s","update":{body}}}}}"#
        ))
    };
    assert_eq!(
        u(
            r#"{"sessionUpdate":"user_message_chunk","messageId":"m1","content":{"type":"text","text":"hi"}}"#
        ),
        SessionUpdate::UserMessageChunk(Chunk {
            content: ContentBlock::Text("hi".into()),
            message_id: Some("m1".into())
        })
    );
    assert!(matches!(
        u(
            r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"image","data":"AA==","mimeType":"image/png"}}"#
        ),
        SessionUpdate::AgentMessageChunk(Chunk {
            content: ContentBlock::Other(_),
            ..
        })
    ));
    assert!(matches!(
        u(
            r#"{"sessionUpdate":"agent_thought_chunk","content":{"type":"text","text":"t"},"messageId":7}"#
        ),
        SessionUpdate::AgentThoughtChunk(Chunk {
            message_id: None,
            ..
        })
    ));
    let SessionUpdate::ToolCall(f) = u(
        r#"{"sessionUpdate":"tool_call","toolCallId":"call_1","title":"Reading","kind":"read","status":"pending","locations":[{"path":"/w/a","line":4}],"rawInput":{"path":"/w/a"},"content":[{"type":"content","content":{"type":"text","text":"..."}}]}"#,
    ) else {
        panic!()
    };
    assert_eq!(f.id, "call_1");
    assert_eq!(f.kind, Some(ToolKind::Read));
    assert_eq!(f.status, Some(ToolStatus::Pending));
    assert_eq!(
        f.locations,
        Some(vec![Location {
            path: "/w/a".into(),
            line: Some(4)
        }])
    );
    assert_eq!(f.content, Some(vec![ToolContent::Text("...".into())]));
    assert_eq!(f.raw_input, Some(json!({"path": "/w/a"})));
    let SessionUpdate::ToolCallUpdate(f) = u(
        r#"{"sessionUpdate":"tool_call_update","toolCallId":42,"status":"weird","kind":"teleport","title":null,"content":"not a list","rawOutput":null}"#,
    ) else {
        panic!()
    };
    assert_eq!(f.id, "42");
    assert_eq!(f.status, Some(ToolStatus::Unknown("weird".into())));
    assert_eq!(f.kind, Some(ToolKind::Unknown("teleport".into())));
    assert_eq!((f.title, f.content, f.raw_output), (None, None, None));
    assert_eq!(
        u(
            r#"{"sessionUpdate":"plan","entries":[{"content":"a","priority":"high","status":"pending"}]}"#
        ),
        SessionUpdate::Plan(vec![PlanEntry {
            content: "a".into(),
            priority: "high".into(),
            status: "pending".into()
        }])
    );
    assert_eq!(
        u(
            r#"{"sessionUpdate":"available_commands_update","availableCommands":[{"name":"web","description":"search","input":{"hint":"q"}},{"description":"no name"}]}"#
        ),
        SessionUpdate::AvailableCommands(vec![AvailableCommand {
            name: "web".into(),
            description: "search".into()
        }])
    );
    for body in [
        r#"{"sessionUpdate":"current_mode_update","currentModeId":"code"}"#,
        r#"{"sessionUpdate":"current_mode_update","modeId":"code"}"#,
    ] {
        assert_eq!(u(body), SessionUpdate::CurrentMode("code".into()));
    }
    assert_eq!(
        u(
            r#"{"sessionUpdate":"usage_update","used":53000,"size":200000,"cost":{"amount":0.045,"currency":"USD"}}"#
        ),
        SessionUpdate::Usage(UsageUpdate {
            used: 53000,
            size: 200000,
            cost: Some(Cost {
                amount: 0.045,
                currency: "USD".into()
            })
        })
    );
    assert_eq!(
        u(r#"{"sessionUpdate":"usage_update","used":1,"size":2,"cost":{"amount":"free"}}"#),
        SessionUpdate::Usage(UsageUpdate {
            used: 1,
            size: 2,
            cost: None
        })
    );
}

#[test]
fn malformed_or_unknown_updates_are_kept_as_other() {
    for body in [
        r#"{"sessionUpdate":"config_option_update","configOptions":[]}"#,
        r#"{"sessionUpdate":"tool_call","title":"no id"}"#,
        r#"{"sessionUpdate":"tool_call","toolCallId":{"no":"id"}}"#,
        r#"{"sessionUpdate":"agent_message_chunk"}"#,
        r#"{"sessionUpdate":"usage_update","used":1}"#,
        r#"{"sessionUpdate":"usage_update","used":-1,"size":2}"#,
        r#"{"sessionUpdate":"usage_update","used":1e300,"size":2}"#,
        r#"{"sessionUpdate":"plan"}"#,
        r#"{"sessionUpdate":"current_mode_update"}"#,
        r#"{"nothing":true}"#,
        r#""not an object""#,
    ] {
        let line = format!(
            r#"{{"jsonrpc":"2.0","method":"session/update","params":{{"sessionId":"s","update":{body}}}}}"#
        );
        assert!(
            matches!(update(&line), SessionUpdate::Other { .. }),
            "{body}"
        );
    }
    // No update at all, no session id: still a session/update, of nothing.
    match parse(r#"{"jsonrpc":"2.0","method":"session/update"}"#) {
        Ok(Incoming::Notification(AgentNotification::SessionUpdate { session_id, update })) => {
            assert_eq!(session_id, "");
            assert_eq!(
                update,
                SessionUpdate::Other {
                    kind: String::new(),
                    value: Value::Null
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_notifications_are_typed_or_kept() {
    assert_eq!(
        parse(r#"{"jsonrpc":"2.0","method":"$/cancel_request","params":{"requestId":12}}"#),
        Ok(Incoming::Notification(AgentNotification::CancelRequest {
            id: RequestId::Int(12)
        }))
    );
    assert!(matches!(
        parse(r#"{"jsonrpc":"2.0","method":"$/cancel_request","params":{}}"#),
        Ok(Incoming::Notification(AgentNotification::Other { .. }))
    ));
    assert_eq!(
        parse(r#"{"jsonrpc":"2.0","method":"_zed/telemetry","params":[1]}"#),
        Ok(Incoming::Notification(AgentNotification::Other {
            method: "_zed/telemetry".into(),
            params: json!([1])
        }))
    );
}

#[test]
fn a_permission_request_is_typed_with_its_options() {
    let (id, r) = request(
        r#"{"jsonrpc":"2.0","id":5,"method":"session/request_permission","params":{"sessionId":"ses_1","toolCall":{"toolCallId":"call_1","title":"echo hi","kind":"execute","status":"pending","rawInput":{"command":"echo hi"}},"options":[{"optionId":"once","kind":"allow_once","name":"Allow once"},{"optionId":"always","kind":"allow_always","name":"Always allow"},{"optionId":"reject","kind":"reject_once","name":"Reject"},{"optionId":"later","kind":"ask_later","name":"?"},{"kind":"reject_always"}]}}"#,
    );
    assert_eq!(id, RequestId::Int(5));
    assert_eq!(r.method(), "session/request_permission");
    assert_eq!(r.session_id(), Some("ses_1"));
    let AgentRequest::RequestPermission(p) = r else {
        panic!()
    };
    assert_eq!(p.tool_call.raw_input, Some(json!({"command": "echo hi"})));
    let kinds: Vec<&str> = p.options.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["allow_once", "allow_always", "reject_once", "ask_later"]
    );
    assert_eq!(
        p.options[3].kind,
        PermissionKind::Unknown("ask_later".into())
    );
}

#[test]
fn file_and_terminal_requests_are_typed() {
    let (_, r) = request(
        r#"{"jsonrpc":"2.0","id":"fs-1","method":"fs/read_text_file","params":{"sessionId":"s","path":"/w/a.txt","line":10,"limit":-5}}"#,
    );
    assert_eq!(
        r,
        AgentRequest::ReadTextFile(ReadTextFile {
            session_id: "s".into(),
            path: "/w/a.txt".into(),
            line: Some(10),
            limit: None,
        })
    );
    let (_, r) = request(
        r#"{"jsonrpc":"2.0","id":2,"method":"fs/write_text_file","params":{"sessionId":"s","path":"/w/b.txt","content":"new\n"}}"#,
    );
    assert_eq!(
        r,
        AgentRequest::WriteTextFile(WriteTextFile {
            session_id: "s".into(),
            path: "/w/b.txt".into(),
            content: "new\n".into(),
        })
    );
    let (_, r) = request(
        r#"{"jsonrpc":"2.0","id":3,"method":"terminal/create","params":{"sessionId":"s","command":"npm","args":["test",7,"--coverage"],"env":[{"name":"NODE_ENV","value":"test"},{"name":"BAD"}],"cwd":"/w","outputByteLimit":1048576}}"#,
    );
    let AgentRequest::TerminalCreate(t) = r else {
        panic!()
    };
    assert_eq!(t.args, ["test", "--coverage"]);
    assert_eq!(t.env, [("NODE_ENV".to_string(), "test".to_string())]);
    assert_eq!(
        (t.cwd.as_deref(), t.output_byte_limit),
        (Some("/w"), Some(1048576))
    );
    assert_eq!(t.command_line(), "npm test --coverage");
    for (method, want) in [
        ("terminal/output", "TerminalOutput"),
        ("terminal/wait_for_exit", "TerminalWaitForExit"),
        ("terminal/kill", "TerminalKill"),
        ("terminal/release", "TerminalRelease"),
    ] {
        let (_, r) = request(&format!(
            r#"{{"jsonrpc":"2.0","id":4,"method":"{method}","params":{{"sessionId":"s","terminalId":"t1"}}}}"#
        ));
        assert_eq!(r.method(), method);
        let got = match &r {
            AgentRequest::TerminalOutput(t) => ("TerminalOutput", t),
            AgentRequest::TerminalWaitForExit(t) => ("TerminalWaitForExit", t),
            AgentRequest::TerminalKill(t) => ("TerminalKill", t),
            AgentRequest::TerminalRelease(t) => ("TerminalRelease", t),
            other => panic!("{other:?}"),
        };
        assert_eq!(got.0, want);
        assert_eq!(got.1.terminal_id, "t1");
    }
}

#[test]
fn a_terminal_command_is_screened_as_a_line_and_as_its_shell_script() {
    let t = |command: &str, args: &[&str]| TerminalCreate {
        session_id: "s".into(),
        command: command.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        cwd: None,
        output_byte_limit: None,
    };
    assert_eq!(
        t("sh", &["-c", "rm -rf ~"]).screened_commands(),
        ["sh -c 'rm -rf ~'", "rm -rf ~"]
    );
    // claude-code-acp style: the whole command line, no args.
    assert_eq!(
        t("rm -rf ~ && echo done", &[]).screened_commands(),
        ["rm -rf ~ && echo done"]
    );
    assert_eq!(t("git", &["status"]).screened_commands(), ["git status"]);
}

#[test]
fn requests_missing_what_they_need_are_invalid_so_they_can_be_answered() {
    for (method, params, reason) in [
        (
            "fs/read_text_file",
            r#"{"sessionId":"s"}"#,
            "path is required",
        ),
        (
            "fs/read_text_file",
            r#"{"path":"/a"}"#,
            "sessionId is required",
        ),
        (
            "fs/write_text_file",
            r#"{"sessionId":"s","path":"/a","content":5}"#,
            "content is required",
        ),
        (
            "terminal/create",
            r#"{"sessionId":"s","args":["x"]}"#,
            "command is required",
        ),
        (
            "terminal/kill",
            r#"{"sessionId":"s"}"#,
            "terminalId is required",
        ),
        (
            "session/request_permission",
            r#"{"sessionId":"s","options":[]}"#,
            "toolCall with a toolCallId is required",
        ),
        (
            "session/request_permission",
            r#"{"sessionId":"s","toolCall":{"toolCallId":"c"}}"#,
            "options is required",
        ),
        ("fs/read_text_file", "null", "sessionId is required"),
    ] {
        let (_, r) = request(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#
        ));
        assert_eq!(
            r,
            AgentRequest::Invalid {
                method: method.into(),
                reason: reason.into()
            },
            "{method} {params}"
        );
        assert_eq!(r.method(), method);
        assert_eq!(r.session_id(), None);
    }
    let (id, r) =
        request(r#"{"jsonrpc":"2.0","id":"x","method":"elicitation/create","params":{}}"#);
    assert_eq!(id, RequestId::Str("x".into()));
    assert_eq!(
        r,
        AgentRequest::Other {
            method: "elicitation/create".into(),
            params: json!({})
        }
    );
}

#[test]
fn initialize_results_are_read_tolerantly() {
    let gemini = json!({"protocolVersion": 1, "authMethods": [
            {"id": "oauth-personal", "name": "Log in with Google", "description": null},
            {"id": "gemini-api-key", "name": "Use Gemini API key"}],
        "agentCapabilities": {"loadSession": true,
            "promptCapabilities": {"image": true, "audio": true, "embeddedContext": true},
            "mcpCapabilities": {"http": true, "sse": true}}});
    let a = AgentInfo::from_result(&gemini);
    assert_eq!(a.protocol_version, Some(1));
    assert!(a.load_session && a.image_prompts);
    assert!(!a.session_resume && !a.session_close);
    assert_eq!(a.auth_methods, ["oauth-personal", "gemini-api-key"]);
    let opencode = json!({"protocolVersion": 1, "agentCapabilities": {"loadSession": true,
            "sessionCapabilities": {"close": {}, "fork": {}, "list": {}, "resume": {}}},
        "agentInfo": {"name": "OpenCode", "version": "1.18.33"}, "authMethods": []});
    let a = AgentInfo::from_result(&opencode);
    assert!(a.session_resume && a.session_close);
    assert_eq!(
        (a.name.as_deref(), a.version.as_deref()),
        (Some("OpenCode"), Some("1.18.33"))
    );
    for junk in [
        Value::Null,
        json!("x"),
        json!({"protocolVersion": "1", "agentCapabilities": {"loadSession": "yes"}}),
    ] {
        assert_eq!(AgentInfo::from_result(&junk), AgentInfo::default());
    }
}

#[test]
fn session_results_name_the_session_and_its_modes() {
    let s = SessionCreated::from_result(&json!({"sessionId": "sess_1", "modes": {
        "currentModeId": "ask", "availableModes": [{"id": "ask", "name": "Ask"}, {"id": "code", "name": "Code"}, {"name": "no id"}]}}))
    .unwrap();
    assert_eq!(s.session_id, "sess_1");
    assert_eq!(s.current_mode.as_deref(), Some("ask"));
    assert_eq!(s.modes, ["ask", "code"]);
    assert_eq!(
        SessionCreated::from_result(&json!({"sessionId": 5})),
        Err(AcpError::MissingField("sessionId"))
    );
    let l = SessionCreated::from_load_result("sess_1", &Value::Null);
    assert_eq!((l.session_id.as_str(), l.modes.len()), ("sess_1", 0));
}

#[test]
fn prompt_results_give_the_stop_reason_and_usage() {
    let r = PromptResult::from_result(&json!({"stopReason": "max_turn_requests",
        "usage": {"totalTokens": 30, "inputTokens": 20, "outputTokens": 10, "thoughtTokens": 4,
                  "cachedReadTokens": 7, "cachedWriteTokens": 2}}));
    assert_eq!(r.stop_reason, StopReason::MaxTurnRequests);
    assert_eq!(
        r.usage,
        Some(Usage {
            input_tokens: 20,
            output_tokens: 10,
            cache_creation_input_tokens: 2,
            cache_read_input_tokens: 7
        })
    );
    for s in [
        "end_turn",
        "max_tokens",
        "max_turn_requests",
        "refusal",
        "cancelled",
    ] {
        assert_eq!(
            PromptResult::from_result(&json!({ "stopReason": s }))
                .stop_reason
                .as_str(),
            s
        );
    }
    let r = PromptResult::from_result(&json!({"stopReason": "end_turn",
        "usage": {"inputTokens": -1, "outputTokens": 1e30}}));
    assert_eq!(r.usage, Some(Usage::default()));
    let r = PromptResult::from_result(&json!({"stopReason": "end_turn", "usage": null}));
    assert_eq!(r.usage, None);
    assert_eq!(
        PromptResult::from_result(&Value::Null).stop_reason,
        StopReason::Unknown(String::new())
    );
}

#[test]
fn tool_result_text_prefers_content_then_raw_output() {
    let f = |content: Option<Vec<ToolContent>>, raw: Option<Value>| ToolCallFields {
        id: "c".into(),
        content,
        raw_output: raw,
        ..ToolCallFields::default()
    };
    assert_eq!(
        f(
            Some(vec![
                ToolContent::Text("a".into()),
                ToolContent::Other(json!({})),
                ToolContent::Text("b".into())
            ]),
            None
        )
        .result_text(),
        "a\nb"
    );
    assert_eq!(
        f(None, Some(json!({"output": "o", "exit": 0}))).result_text(),
        "o"
    );
    assert_eq!(f(Some(vec![]), Some(json!("s"))).result_text(), "s");
    assert_eq!(
        f(None, Some(json!({"exitCode": 1}))).result_text(),
        r#"{"exitCode":1}"#
    );
    assert_eq!(f(None, None).result_text(), "");
    let mut a = f(Some(vec![ToolContent::Text("old".into())]), None);
    a.merge(&ToolCallFields {
        id: "c".into(),
        status: Some(ToolStatus::Completed),
        ..ToolCallFields::default()
    });
    assert_eq!(a.result_text(), "old");
    assert_eq!(a.status, Some(ToolStatus::Completed));
}
