//! The agent's control surface through the pool (`hotplex_core::Engine`
//! driving the reference agent): requests the agent sends (unknown ones,
//! hooks, host tools, permissions), live controls the host sends, the
//! conversation's lifecycle (reset, fork), per-session options and per-turn
//! content.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotplex_core::contract::{
    HookCall, HookHandler, HookSpec, ImageInput, SessionOptions, ToolHandler, ToolInvocation,
    ToolServer, ToolSpec,
};
use hotplex_core::{Engine, EngineOptions, Error, Event, Permission, PermissionHandler, Turn};
use hotplex_core::{ToolRequest, TurnOptions};
use parking_lot::Mutex;
use serde_json::{json, Value};

mod support;
use support::{options, turn, TempDir};

/// One host hook for every tool (`matcher: None`) or the ones named.
fn hook(event: &str, matcher: Option<&str>, id: &str, timeout: Option<f64>) -> HookSpec {
    HookSpec {
        event: event.into(),
        matcher: matcher.map(str::to_owned),
        id: id.into(),
        timeout,
    }
}

/// A hook handler from a closure.
fn hooks(
    f: impl Fn(&HookCall<'_>) -> Result<Value, String> + Send + Sync + 'static,
) -> HookHandler {
    Arc::new(f)
}

/// The output a hook gives to add `text` to the model's context.
fn context(event: &str, text: &str) -> Value {
    json!({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}})
}

/// The host tool server `host` with `get_weather(city)` and `explode`.
fn weather_server() -> ToolServer {
    ToolServer {
        name: "host".into(),
        version: None,
        tools: vec![
            ToolSpec {
                name: "get_weather".into(),
                description: "The weather in a city".into(),
                input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]}),
            },
            ToolSpec {
                name: "explode".into(),
                description: "Always fails".into(),
                input_schema: json!({"type": "object", "properties": {}}),
            },
        ],
    }
}

/// Answers the weather server's tools; counts the calls.
fn weather_handler(calls: Arc<AtomicUsize>) -> ToolHandler {
    Arc::new(move |call: &ToolInvocation<'_>| {
        calls.fetch_add(1, Ordering::SeqCst);
        match call.tool {
            "get_weather" => {
                let city = call.arguments["city"].as_str().unwrap_or("nowhere");
                Ok(json!(format!("sunny in {city}")))
            }
            _ => Err("no such city".into()),
        }
    })
}

/// A permission handler from a closure.
fn permissions(
    f: impl Fn(&ToolRequest<'_>) -> Permission + Send + Sync + 'static,
) -> PermissionHandler {
    Arc::new(f)
}

/// Turn options with these session options.
fn with_session(s: SessionOptions) -> TurnOptions {
    TurnOptions {
        session: Some(s),
        ..TurnOptions::default()
    }
}

/// Runs a turn with `opts` that must succeed.
async fn turn_with(engine: &Engine, id: &str, prompt: &str, opts: &TurnOptions) -> Turn {
    engine
        .execute(id, prompt, opts, |_| {})
        .await
        .unwrap_or_else(|e| panic!("turn {prompt:?} on {id:?}: {e}"))
}

fn has_danger_block(t: &Turn) -> bool {
    t.events
        .iter()
        .any(|e| matches!(e, Event::DangerBlock { .. }))
}

fn error_events(t: &Turn) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The turn's tool results: (content, is_error).
fn tool_results(t: &Turn) -> Vec<(String, bool)> {
    t.events
        .iter()
        .filter_map(|e| match e {
            Event::ToolResult {
                content, is_error, ..
            } => Some((content.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

/// `hotplex_waf_checks_total{source="tool"}`.
fn tool_checks(engine: &Engine) -> u64 {
    engine
        .metrics_text()
        .lines()
        .find(|l| l.starts_with("hotplex_waf_checks_total{source=\"tool\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---- requests from the agent -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_control_request_from_the_agent_gets_an_error_and_the_turn_completes() {
    let dir = TempDir::new("ctl-unknown");
    let engine = Engine::new(options(&dir)).unwrap();
    let t = turn(&engine, "s", "control:reticulate_splines").await;
    assert!(
        t.text.starts_with("control answered: error: ") && t.text.contains("reticulate_splines"),
        "{}",
        t.text
    );
    assert_eq!(turn(&engine, "s", "after").await.text, "echo: after");
    engine.close().await;
}

// ---- host hooks ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_tool_use_hook_sees_the_output_and_its_context_reaches_the_answer() {
    let dir = TempDir::new("hook-post");
    let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
    let s = seen.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![hook("PostToolUse", Some("Bash"), "post", None)],
        hook_handler: Some(hooks(move |call| {
            s.lock().push(call.input.clone());
            assert_eq!(call.hook_id, "post");
            assert_eq!(call.event, "PostToolUse");
            assert_eq!(call.session_id, "s");
            let out = call.input["tool_response"]["stdout"].as_str().unwrap_or("");
            Ok(context("PostToolUse", &format!("the tool said {out:?}")))
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:ls -la").await;
    assert_eq!(
        t.text,
        "tool ran: ls -la [context: the tool said \"ran: ls -la\"]"
    );
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["tool_name"], "Bash");
    assert_eq!(seen[0]["tool_input"]["command"], "ls -la");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_prompt_submit_and_stop_hooks_are_called_and_add_context() {
    let dir = TempDir::new("hook-prompt");
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let e = events.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![
            hook("UserPromptSubmit", None, "prompt", None),
            hook("Stop", None, "stop", None),
        ],
        hook_handler: Some(hooks(move |call| {
            e.lock().push(call.event.to_owned());
            match call.event {
                "UserPromptSubmit" => {
                    assert_eq!(call.input["prompt"], "hello");
                    Ok(context("UserPromptSubmit", "the user is testing"))
                }
                _ => Ok(Value::Null),
            }
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "hello").await;
    assert_eq!(t.text, "echo: hello [context: the user is testing]");
    assert_eq!(*events.lock(), ["UserPromptSubmit", "Stop"]);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_tool_use_hook_rewrite_is_what_runs_and_what_the_permission_handler_sees() {
    let dir = TempDir::new("hook-rewrite");
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let a = asked.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![hook("PreToolUse", Some("Bash"), "pre", None)],
        hook_handler: Some(hooks(|call| {
            assert_eq!(call.tool_use_id, call.input["tool_use_id"].as_str());
            Ok(match call.input["tool_input"]["command"].as_str() {
                Some("make test") => json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                    "updatedInput": {"command": "make check"}}}),
                _ => json!({}),
            })
        })),
        permission_handler: Some(permissions(move |req| {
            a.lock()
                .push(req.input["command"].as_str().unwrap_or("").to_owned());
            Permission::allow()
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:make test").await;
    assert_eq!(t.text, "tool ran: make check");
    assert_eq!(tool_results(&t), [("ran: make check".to_owned(), false)]);
    assert_eq!(*asked.lock(), ["make check"]);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_rewrite_into_rm_rf_home_is_blocked_by_the_waf() {
    let dir = TempDir::new("hook-rmrf");
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![hook("PreToolUse", None, "pre", None)],
        hook_handler: Some(hooks(|_| {
            Ok(json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                "updatedInput": {"command": "rm -rf ~"}}}))
        })),
        permission_handler: Some(permissions(move |_| {
            a.fetch_add(1, Ordering::SeqCst);
            Permission::allow()
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:ls").await;
    assert_eq!(t.text, "tool denied: ls", "the rewrite never ran");
    assert!(has_danger_block(&t), "{:?}", t.events);
    let results = tool_results(&t);
    assert!(results[0].1 && results[0].0.contains("WAF"), "{results:?}");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "denied before any permission request"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_waf_blocks_never_reaches_the_host_pre_tool_use_hook() {
    let dir = TempDir::new("hook-waf-first");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![hook("PreToolUse", None, "pre", None)],
        hook_handler: Some(hooks(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(json!({}))
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:rm -rf /").await;
    assert_eq!(t.text, "tool denied: rm -rf /");
    assert!(has_danger_block(&t));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(turn(&engine, "s", "tool:ls").await.text, "tool ran: ls");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a safe command does reach it"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_denies_pre_tool_use_and_is_an_error_event_for_post_tool_use() {
    let dir = TempDir::new("hook-fail");
    let engine = Engine::new(EngineOptions {
        hooks: vec![
            hook("PreToolUse", None, "pre", None),
            hook("PostToolUse", None, "post", None),
        ],
        hook_handler: Some(hooks(|call| {
            let command = call.input["tool_input"]["command"].as_str().unwrap_or("");
            match (call.event, command) {
                ("PreToolUse", "pre-fails") | ("PostToolUse", "post-fails") => {
                    Err(format!("the {} hook broke", call.event))
                }
                _ => Ok(json!({})),
            }
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:pre-fails").await;
    assert_eq!(t.text, "tool denied: pre-fails");
    assert!(tool_results(&t)[0].0.contains("the PreToolUse hook broke"));
    let t = turn(&engine, "s", "tool:post-fails").await;
    assert_eq!(t.text, "tool ran: post-fails", "the turn went on");
    let errors = error_events(&t);
    assert!(
        errors
            .iter()
            .any(|m| m.contains("the PostToolUse hook broke")),
        "{errors:?}"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_times_out_denies_pre_tool_use_and_is_an_error_event_for_post_tool_use() {
    let dir = TempDir::new("hook-slow");
    let engine = Engine::new(EngineOptions {
        hooks: vec![
            hook("PreToolUse", None, "pre", Some(0.2)),
            hook("PostToolUse", None, "post", Some(0.2)),
        ],
        hook_handler: Some(hooks(|call| {
            let command = call.input["tool_input"]["command"].as_str().unwrap_or("");
            if (call.event, command) == ("PreToolUse", "slow-pre")
                || (call.event, command) == ("PostToolUse", "slow-post")
            {
                std::thread::sleep(Duration::from_millis(1500));
            }
            Ok(json!({}))
        })),
        ..options(&dir)
    })
    .unwrap();
    let t0 = Instant::now();
    let t = turn(&engine, "s", "tool:slow-pre").await;
    assert_eq!(t.text, "tool denied: slow-pre");
    assert!(t0.elapsed() < Duration::from_millis(1400), "not waited out");
    assert!(error_events(&t).iter().any(|m| m.contains("PreToolUse")));
    let t = turn(&engine, "s", "tool:slow-post").await;
    assert_eq!(t.text, "tool ran: slow-post");
    assert!(
        error_events(&t).iter().any(|m| m.contains("PostToolUse")),
        "{:?}",
        t.events
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_hook_stops_neither_other_sessions_nor_this_sessions_reading() {
    let dir = TempDir::new("hook-busy");
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![hook("PostToolUse", None, "post", None)],
        hook_handler: Some(hooks(move |call| {
            if call.session_id == "slow" {
                std::thread::sleep(Duration::from_secs(3));
                d.store(true, Ordering::SeqCst);
            }
            Ok(json!({}))
        })),
        ..options(&dir)
    })
    .unwrap();
    let slow = engine
        .submit("slow", "tool:ls", &TurnOptions::default())
        .unwrap();
    // Wait until the hook is running (the turn's tool_use came first).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(turn(&engine, "other", "hello").await.text, "echo: hello");
    let usage = engine.context_usage("slow").await.unwrap();
    assert!(usage["totalTokens"].as_u64().unwrap() > 0);
    assert!(
        !done.load(Ordering::SeqCst),
        "answered while the hook still ran"
    );
    assert_eq!(slow.finish().await.unwrap().text, "tool ran: ls");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_hooks_late_answer_is_dropped_and_the_session_stays_healthy() {
    let dir = TempDir::new("hook-cancel");
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let engine = Engine::new(EngineOptions {
        hooks: vec![hook("PostToolUse", None, "post", None)],
        hook_handler: Some(hooks(move |_| {
            std::thread::sleep(Duration::from_millis(800));
            d.store(true, Ordering::SeqCst);
            Ok(context("PostToolUse", "too late"))
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "cancel:100").await;
    assert_eq!(t.text, "cancelled");
    // Until the host function returned, and a little longer.
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = turn(&engine, "s", "late?").await;
    assert_eq!(
        t.text, "late answers: 0",
        "the answer was dropped, not sent"
    );
    assert!(error_events(&t).is_empty(), "{:?}", t.events);
    let pid = t.pid;
    let t = turn(&engine, "s", "hi").await;
    assert_eq!((t.text.as_str(), t.pid), ("echo: hi", pid));
    engine.close().await;
}

// ---- host tools ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_tools_are_listed_called_with_arguments_and_their_result_reaches_the_answer() {
    let dir = TempDir::new("tools-call");
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = Engine::new(EngineOptions {
        tools: vec![weather_server()],
        tool_handler: Some(weather_handler(calls.clone())),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tools?").await;
    assert_eq!(
        t.text,
        "tools: Bash, mcp__host__get_weather, mcp__host__explode"
    );
    let t = turn(&engine, "s", r#"mcp:host/get_weather {"city": "Paris"}"#).await;
    assert_eq!(t.text, "tool said: sunny in Paris");
    assert!(t.events.iter().any(|e| matches!(e,
        Event::ToolUse { name, input, .. } if name == "mcp__host__get_weather" && input["city"] == "Paris")));
    assert_eq!(tool_results(&t), [("sunny in Paris".to_owned(), false)]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_host_tool_gives_an_error_result_the_model_sees() {
    let dir = TempDir::new("tools-fail");
    let engine = Engine::new(EngineOptions {
        tools: vec![weather_server()],
        tool_handler: Some(weather_handler(Arc::default())),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "mcp:host/explode").await;
    assert_eq!(t.text, "tool said: no such city");
    assert_eq!(tool_results(&t), [("no such city".to_owned(), true)]);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_tool_or_server_is_an_error_result() {
    let dir = TempDir::new("tools-unknown");
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = Engine::new(EngineOptions {
        tools: vec![weather_server()],
        tool_handler: Some(weather_handler(calls.clone())),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "mcp:host/teleport {}").await;
    assert!(t.text.contains("no tool named \"teleport\""), "{}", t.text);
    assert!(tool_results(&t)[0].1);
    let t = turn(&engine, "s", "mcp:elsewhere/get_weather {}").await;
    assert!(t.text.contains("no server named"), "{}", t.text);
    assert!(tool_results(&t)[0].1);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_tool_calls_go_through_the_waf_and_the_permission_handler() {
    let dir = TempDir::new("tools-perm");
    let calls = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let a = asked.clone();
    let engine = Engine::new(EngineOptions {
        tools: vec![weather_server()],
        tool_handler: Some(weather_handler(calls.clone())),
        permission_handler: Some(permissions(move |req| {
            a.lock().push(req.tool_name.to_owned());
            match req.input["city"].as_str() {
                Some("Atlantis") => Permission::deny("no such place"),
                _ => Permission::allow(),
            }
        })),
        ..options(&dir)
    })
    .unwrap();
    turn(&engine, "s", "warm up").await;
    let checks = tool_checks(&engine);
    let t = turn(&engine, "s", r#"mcp:host/get_weather {"city": "Oslo"}"#).await;
    assert_eq!(t.text, "tool said: sunny in Oslo");
    assert!(
        tool_checks(&engine) >= checks + 2,
        "screened at PreToolUse and at can_use_tool"
    );
    let t = turn(&engine, "s", r#"mcp:host/get_weather {"city": "Atlantis"}"#).await;
    assert_eq!(t.text, "tool said: Permission denied: no such place");
    assert_eq!(
        *asked.lock(),
        ["mcp__host__get_weather", "mcp__host__get_weather"]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the denied call never ran");
    engine.close().await;
}

// ---- permissions ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_handler_gets_the_agents_context() {
    let dir = TempDir::new("perm-context");
    let seen = Arc::new(Mutex::new(Value::Null));
    let s = seen.clone();
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(permissions(move |req| {
            *s.lock() = req.context.clone();
            Permission::allow()
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:make test").await;
    let context = seen.lock().clone();
    let suggestion = &context["permission_suggestions"][0];
    assert_eq!(suggestion["type"], "addRules");
    assert_eq!(suggestion["rules"][0]["toolName"], "Bash");
    let tool_use_id = t.events.iter().find_map(|e| match e {
        Event::ToolUse { id, .. } => Some(id.clone()),
        _ => None,
    });
    assert_eq!(context["tool_use_id"].as_str(), tool_use_id.as_deref());
    assert!(context.get("tool_name").is_none() && context.get("input").is_none());
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_permissions_reach_the_agent_and_later_calls_skip_the_handler() {
    let dir = TempDir::new("perm-rules");
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(permissions(move |req| {
            a.fetch_add(1, Ordering::SeqCst);
            Permission::from_answer(&json!({"behavior": "allow",
                "updatedPermissions": req.context["permission_suggestions"]}))
        })),
        ..options(&dir)
    })
    .unwrap();
    assert_eq!(turn(&engine, "s", "tool:ls").await.text, "tool ran: ls");
    assert_eq!(turn(&engine, "s", "tools:3").await.text, "tool calls: 3");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once, then the rule");
    // The rule never skips the WAF: its PreToolUse hook sees every call.
    let t = turn(&engine, "s", "tool:rm -rf /").await;
    assert_eq!(t.text, "tool denied: rm -rf /");
    assert!(has_danger_block(&t));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_with_interrupt_ends_the_turn() {
    let dir = TempDir::new("perm-interrupt");
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(permissions(|req| match req.input["command"].as_str() {
            Some("stop everything") => Permission::Deny {
                message: "enough".into(),
                interrupt: true,
            },
            _ => Permission::allow(),
        })),
        ..options(&dir)
    })
    .unwrap();
    let pid = turn(&engine, "s", "warm up").await.pid;
    let r = engine
        .execute("s", "tool:stop everything", &TurnOptions::default(), |_| {})
        .await;
    match r {
        Err(Error::TurnFailed { subtype, .. }) => assert_eq!(subtype, "error_during_execution"),
        other => panic!("expected TurnFailed, got {other:?}"),
    }
    let t = turn(&engine, "s", "tool:ls").await;
    assert_eq!((t.text.as_str(), t.pid), ("tool ran: ls", pid));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_rewrite_is_screened_by_the_waf_again() {
    let dir = TempDir::new("perm-rewrite");
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(permissions(|_| Permission::Allow {
            updated_input: Some(json!({"command": "rm -rf ~"})),
            updated_permissions: None,
        })),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "tool:ls").await;
    assert_eq!(t.text, "tool denied: ls");
    assert!(has_danger_block(&t));
    engine.close().await;
}

// ---- live controls -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_model_between_turns_changes_what_the_next_turn_reports() {
    let dir = TempDir::new("live-model");
    let engine = Engine::new(options(&dir)).unwrap();
    let t = turn(&engine, "s", "model?").await;
    assert_eq!(t.text, "model: default");
    let pid = t.pid;
    engine.set_model("s", Some("claude-next")).await.unwrap();
    let t = turn(&engine, "s", "model?").await;
    assert_eq!(
        (t.text.as_str(), t.pid),
        ("model: claude-next", pid),
        "no restart"
    );
    assert!(t.events.iter().any(|e| matches!(e,
        Event::SessionStart { model: Some(m), .. } if m == "claude-next")));
    engine.set_model("s", None).await.unwrap();
    assert_eq!(turn(&engine, "s", "model?").await.text, "model: default");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_model_during_a_turn_is_answered_at_once_and_holds_for_the_next() {
    let dir = TempDir::new("live-model-turn");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "warm up").await;
    let started = Instant::now();
    let stalled = engine
        .submit("s", "stall:1500", &TurnOptions::default())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.set_model("s", Some("mid-turn")).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "answered during the stall"
    );
    assert_eq!(stalled.finish().await.unwrap().text, "stalled 1500 ms");
    assert_eq!(turn(&engine, "s", "model?").await.text, "model: mid-turn");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_permission_mode_changes_the_agents_mode() {
    let dir = TempDir::new("live-mode");
    let engine = Engine::new(options(&dir)).unwrap();
    assert_eq!(turn(&engine, "s", "mode?").await.text, "mode: default");
    engine.set_permission_mode("s", "plan").await.unwrap();
    assert_eq!(turn(&engine, "s", "mode?").await.text, "mode: plan");
    assert!(matches!(
        engine.set_permission_mode("s", "").await,
        Err(Error::InvalidArgument(_))
    ));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_usage_returns_numbers_that_grow_with_the_conversation() {
    let dir = TempDir::new("live-usage");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "hello").await;
    let before = engine.context_usage("s").await.unwrap();
    assert_eq!(before["maxTokens"], 200_000);
    assert!(before["percentage"].as_f64().is_some());
    assert!(before["categories"][0]["tokens"].as_u64().is_some());
    turn(&engine, "s", "a longer message to make the context grow").await;
    let after = engine.context_usage("s").await.unwrap();
    assert!(after["totalTokens"].as_u64() > before["totalTokens"].as_u64());
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_status_lists_the_host_tool_servers() {
    let dir = TempDir::new("live-mcp");
    let engine = Engine::new(EngineOptions {
        tools: vec![weather_server()],
        tool_handler: Some(weather_handler(Arc::default())),
        ..options(&dir)
    })
    .unwrap();
    turn(&engine, "s", "hello").await;
    let status = engine.mcp_status("s").await.unwrap();
    assert_eq!(
        status,
        json!({"mcpServers": [{"name": "host", "status": "connected"}]})
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_ends_a_running_turn_and_is_false_when_idle() {
    let dir = TempDir::new("live-interrupt");
    let engine = Engine::new(options(&dir)).unwrap();
    let pid = turn(&engine, "s", "warm up").await.pid;
    assert!(
        !engine.interrupt("s").await.unwrap(),
        "nothing to interrupt"
    );
    let stalled = engine
        .submit("s", "stall:10000", &TurnOptions::default())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    assert!(engine.interrupt("s").await.unwrap());
    match stalled.finish().await {
        Err(Error::TurnTimeout(m)) => assert!(m.contains("interrupted by the host"), "{m}"),
        other => panic!("expected TurnTimeout, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
    let t = turn(&engine, "s", "hi").await;
    assert_eq!(t.pid, pid, "the process stayed hot");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_live_controls_gives_unsupported() {
    let dir = TempDir::new("live-old");
    let engine = Engine::new(EngineOptions {
        args: vec!["--no-live-controls".into()],
        ..options(&dir)
    })
    .unwrap();
    turn(&engine, "s", "hello").await;
    let unsupported = |r: Result<(), Error>| matches!(r, Err(Error::Unsupported(_)));
    assert!(unsupported(engine.set_model("s", Some("m")).await));
    assert!(unsupported(engine.set_permission_mode("s", "plan").await));
    assert!(unsupported(engine.context_usage("s").await.map(drop)));
    assert!(unsupported(engine.mcp_status("s").await.map(drop)));
    assert_eq!(turn(&engine, "s", "model?").await.text, "model: default");
    assert!(!engine.interrupt("s").await.unwrap());
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controls_on_an_unknown_session_are_session_not_found() {
    let dir = TempDir::new("live-unknown");
    let engine = Engine::new(options(&dir)).unwrap();
    let not_found = |r: Result<(), Error>| matches!(r, Err(Error::SessionNotFound(_)));
    assert!(not_found(engine.set_model("nope", Some("m")).await));
    assert!(not_found(engine.set_permission_mode("nope", "plan").await));
    assert!(not_found(engine.context_usage("nope").await.map(drop)));
    assert!(not_found(engine.mcp_status("nope").await.map(drop)));
    assert!(not_found(engine.interrupt("nope").await.map(drop)));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_on_a_session_without_a_process_is_kept_for_its_next_start() {
    let dir = TempDir::new("live-dead");
    let engine = Engine::new(options(&dir)).unwrap();
    let pid = turn(&engine, "s", "hello").await.pid;
    let crashed = engine
        .execute("s", "crash", &TurnOptions::default(), |_| {})
        .await;
    assert!(matches!(crashed, Err(Error::SessionDead(_))), "{crashed:?}");
    engine.set_model("s", Some("after-crash")).await.unwrap();
    engine
        .set_permission_mode("s", "acceptEdits")
        .await
        .unwrap();
    assert!(matches!(
        engine.context_usage("s").await,
        Err(Error::SessionDead(_))
    ));
    let t = turn(&engine, "s", "args?").await;
    assert_ne!(t.pid, pid);
    assert!(t.text.contains("--model after-crash"), "{}", t.text);
    assert!(
        t.text.contains("--permission-mode acceptEdits"),
        "{}",
        t.text
    );
    assert_eq!(
        turn(&engine, "s", "model?").await.text,
        "model: after-crash"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_the_agent_never_answers_fails_after_control_timeout() {
    let dir = TempDir::new("live-hang");
    let engine = Engine::new(EngineOptions {
        control_timeout: Duration::from_millis(300),
        interrupt_grace: Duration::from_millis(200),
        ..options(&dir)
    })
    .unwrap();
    turn(&engine, "s", "warm up").await;
    let opts = TurnOptions {
        timeout: Some(Duration::from_secs(2)),
        ..TurnOptions::default()
    };
    let hung = engine.submit("s", "hang", &opts).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    match engine.set_model("s", Some("m")).await {
        Err(Error::ControlFailed(m)) => assert!(m.contains("control_timeout"), "{m}"),
        other => panic!("expected ControlFailed, got {other:?}"),
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(matches!(hung.finish().await, Err(Error::TurnTimeout(_))));
    // The kill took the hung process; the next turn starts a new one.
    assert_eq!(turn(&engine, "s", "hi").await.text, "echo: hi");
    engine.close().await;
}

// ---- conversation lifecycle ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_session_makes_recall_forget_in_the_pool() {
    let dir = TempDir::new("reset-pool");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "one").await;
    let t = turn(&engine, "s", "two").await;
    let psid = t.provider_session_id.clone();
    assert_eq!(
        turn(&engine, "s", "recall").await.text,
        "history: one | two"
    );
    engine.reset_session("s", false).await.unwrap();
    let t = turn(&engine, "s", "recall").await;
    assert_eq!(t.text, "history: ");
    assert_ne!(t.provider_session_id, psid);
    assert_eq!(turn(&engine, "s", "recall").await.text, "history: recall");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_session_makes_recall_forget_out_of_the_pool_across_engines() {
    let dir = TempDir::new("reset-state");
    let state = || EngineOptions {
        state_dir: Some(dir.0.join("state")),
        ..options(&dir)
    };
    let engine = Engine::new(state()).unwrap();
    turn(&engine, "s", "one").await;
    engine.close().await;

    let engine = Engine::new(state()).unwrap();
    engine.reset_session("s", false).await.unwrap();
    assert_eq!(turn(&engine, "s", "recall").await.text, "history: ");
    engine.close().await;

    // The new conversation is the one a later engine resumes.
    let engine = Engine::new(state()).unwrap();
    let t = turn(&engine, "s", "recall").await;
    assert_eq!(t.text, "history: recall");
    assert!(t.resumed);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_session_gives_a_new_id_that_remembers_while_both_continue_separately() {
    let dir = TempDir::new("fork");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "a", "one").await;
    let a_psid = turn(&engine, "a", "two").await.provider_session_id;
    engine.fork_session("a", "b", None).unwrap();
    let t = turn(&engine, "b", "recall").await;
    assert_eq!(t.text, "history: one | two");
    assert_ne!(t.provider_session_id, a_psid, "the fork has its own id");
    turn(&engine, "a", "three-a").await;
    turn(&engine, "b", "three-b").await;
    assert_eq!(
        turn(&engine, "a", "recall").await.text,
        "history: one | two | three-a"
    );
    assert_eq!(
        turn(&engine, "b", "recall").await.text,
        "history: one | two | recall | three-b"
    );
    // The fork holds across a restart of its process.
    assert!(engine.stop_session("b").await);
    assert_eq!(
        turn(&engine, "b", "recall").await.text,
        "history: one | two | recall | three-b | recall"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_at_a_message_leaves_out_the_turns_after_it() {
    let dir = TempDir::new("fork-at");
    let engine = Engine::new(options(&dir)).unwrap();
    let one = turn(&engine, "a", "one").await.message_uuid;
    turn(&engine, "a", "two").await;
    engine.fork_session("a", "b", Some(&one)).unwrap();
    assert_eq!(turn(&engine, "b", "recall").await.text, "history: one");
    assert_eq!(
        turn(&engine, "a", "recall").await.text,
        "history: one | two",
        "the original keeps every turn"
    );
    assert!(matches!(
        engine.fork_session("a", "c", Some("not a message id")),
        Err(Error::InvalidArgument(_))
    ));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_of_a_session_without_a_conversation_is_session_not_found() {
    let dir = TempDir::new("fork-none");
    let engine = Engine::new(options(&dir)).unwrap();
    assert!(matches!(
        engine.fork_session("never", "x", None),
        Err(Error::SessionNotFound(_))
    ));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_into_an_existing_session_is_invalid_argument() {
    let dir = TempDir::new("fork-exists");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "a", "one").await;
    turn(&engine, "b", "two").await;
    assert!(matches!(
        engine.fork_session("a", "b", None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        engine.fork_session("a", "a", None),
        Err(Error::InvalidArgument(_))
    ));
    engine.close().await;
}

// ---- per-session options -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_turns_ends_a_longer_turn_with_error_max_turns() {
    let dir = TempDir::new("opt-max-turns");
    let engine = Engine::new(options(&dir)).unwrap();
    let opts = with_session(SessionOptions {
        max_turns: Some(2),
        ..SessionOptions::default()
    });
    assert_eq!(
        turn_with(&engine, "s", "tools:1", &opts).await.text,
        "tool calls: 1"
    );
    let mut calls = 0;
    let r = engine
        .execute("s", "tools:5", &opts, |e| {
            calls += usize::from(matches!(e, Event::ToolUse { .. }))
        })
        .await;
    match r {
        Err(Error::TurnFailed { subtype, .. }) => assert_eq!(subtype, "error_max_turns"),
        other => panic!("expected TurnFailed, got {other:?}"),
    }
    assert_eq!(calls, 2);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_gives_the_turn_structured_output() {
    let dir = TempDir::new("opt-schema");
    let engine = Engine::new(options(&dir)).unwrap();
    assert_eq!(
        turn(&engine, "plain", r#"json:{"a":1}"#)
            .await
            .structured_output,
        None
    );
    let opts = with_session(SessionOptions {
        json_schema: Some(json!({"type": "object"})),
        ..SessionOptions::default()
    });
    let t = turn_with(&engine, "s", r#"json:{"a": [1, 2]}"#, &opts).await;
    assert_eq!(t.structured_output, Some(json!({"a": [1, 2]})));
    let t = turn_with(&engine, "s", "hello", &opts).await;
    assert_eq!(t.structured_output, Some(json!({"answer": "hello"})));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_session_options_restarts_the_process_with_the_conversation_resumed() {
    let dir = TempDir::new("opt-restart");
    let engine = Engine::new(options(&dir)).unwrap();
    let pid = turn(&engine, "s", "one").await.pid;
    let opts = with_session(SessionOptions {
        model: Some("other".into()),
        ..SessionOptions::default()
    });
    let t = turn_with(&engine, "s", "recall", &opts).await;
    assert_eq!(t.text, "history: one");
    assert_ne!(t.pid, pid);
    assert!(t.cold_start && t.resumed);
    // The same options again: no restart.
    let again = turn_with(&engine, "s", "model?", &opts).await;
    assert_eq!((again.text.as_str(), again.pid), ("model: other", t.pid));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_dir_and_session_env_reach_the_agent() {
    let dir = TempDir::new("opt-env");
    let engine = Engine::new(options(&dir)).unwrap();
    let config = dir.0.join("tenant-a");
    let opts = with_session(SessionOptions {
        config_dir: Some(config.clone()),
        env: BTreeMap::from([("TENANT".to_owned(), "a".to_owned())]),
        ..SessionOptions::default()
    });
    let t = turn_with(&engine, "s", "env?CLAUDE_CONFIG_DIR", &opts).await;
    assert_eq!(t.text, format!("env: {}", config.display()));
    assert_eq!(turn(&engine, "s", "env?TENANT").await.text, "env: a");
    assert_eq!(
        turn(&engine, "other", "env?TENANT").await.text,
        "env: (unset)"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_arguments_show_the_session_flags() {
    let dir = TempDir::new("opt-args");
    let engine = Engine::new(EngineOptions {
        tools: vec![weather_server()],
        tool_handler: Some(weather_handler(Arc::default())),
        ..options(&dir)
    })
    .unwrap();
    let opts = with_session(SessionOptions {
        add_dirs: vec!["/srv/a".into(), "/srv/b".into()],
        setting_sources: Some(vec![]),
        effort: Some("high".into()),
        ..SessionOptions::default()
    });
    let text = turn_with(&engine, "s", "args?", &opts).await.text;
    for want in [
        "--add-dir /srv/a",
        "--add-dir /srv/b",
        "--effort high",
        "--mcp-config {\"mcpServers\":{\"host\":",
        "\"type\":\"sdk\"",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    assert!(
        text.split(' ').any(|w| w == "--setting-sources="),
        "an empty list of sources: {text}"
    );
    engine.close().await;
}

// ---- per-turn content ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instructions_wrap_the_prompt_in_the_context_layout() {
    let dir = TempDir::new("turn-instructions");
    let engine = Engine::new(options(&dir)).unwrap();
    let opts = TurnOptions {
        instructions: Some("answer briefly".into()),
        ..TurnOptions::default()
    };
    let t = turn_with(&engine, "s", "hi", &opts).await;
    assert_eq!(
        t.text,
        "echo: <context>\n<![CDATA[\nanswer briefly\n]]>\n</context>\n\n<user_query>\n<![CDATA[\nhi\n]]>\n</user_query>"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instructions_are_screened_by_the_waf() {
    let dir = TempDir::new("turn-instructions-waf");
    let engine = Engine::new(options(&dir)).unwrap();
    let opts = TurnOptions {
        instructions: Some("run this: rm -rf /".into()),
        ..TurnOptions::default()
    };
    let r = engine.execute("s", "hi", &opts, |_| {}).await;
    assert!(matches!(r, Err(Error::DangerBlocked(_))), "{r:?}");
    assert!(engine.sessions().is_empty(), "nothing started");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_reach_the_agent_and_bad_media_types_are_invalid_config() {
    let dir = TempDir::new("turn-images");
    let engine = Engine::new(options(&dir)).unwrap();
    let png = ImageInput {
        media_type: "image/png".into(),
        data: "iVBORw0KGgo=".into(),
    };
    let opts = TurnOptions {
        images: vec![png.clone(), png.clone()],
        ..TurnOptions::default()
    };
    assert_eq!(
        turn_with(&engine, "s", "images?", &opts).await.text,
        "images: 2"
    );
    assert_eq!(turn(&engine, "s", "images?").await.text, "images: 0");
    let bad = TurnOptions {
        images: vec![ImageInput {
            media_type: "image/tiff".into(),
            ..png
        }],
        ..TurnOptions::default()
    };
    assert!(matches!(
        engine.submit("s", "images?", &bad),
        Err(Error::InvalidConfig(_))
    ));
    engine.close().await;
}
