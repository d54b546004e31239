//! The session pool (`hotplex_core::Engine`) driving the reference agent:
//! ordering, capacity, eviction, idle timeout, close, resume and its
//! fallback, and every error the engine can return.

use std::sync::Arc;
use std::time::Duration;

use hotplex_core::{Engine, EngineOptions, Error, Event, SessionStatus, TurnOptions};
use hotplex_core::{Permission, PermissionHandler};

mod support;
use support::{alive, options, timeout_ms, turn, turn_opts, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_turns_share_one_process_with_one_cold_start() {
    let dir = TempDir::new("five");
    let engine = Engine::new(options(&dir)).unwrap();
    let mut pids = Vec::new();
    for i in 0..5 {
        let t = engine
            .execute("s", &format!("hello {i}"), &turn_opts(), |_| {})
            .await
            .expect("turn");
        assert_eq!(t.text, format!("echo: hello {i}"));
        assert_eq!(t.cold_start, i == 0, "turn {i}");
        pids.push(t.pid);
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one process: {pids:?}"
    );
    let stats = engine.session_stats("s").unwrap();
    assert_eq!((stats.turns, stats.cold_starts), (5, 1));
    assert_eq!(stats.model.as_deref(), Some("reference-model"));
    assert!(stats.output_tokens > 0);
    let info = engine.sessions();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].status, SessionStatus::Ready);
    assert_eq!(info[0].turns, 5);
    engine.close().await;
    assert!(!alive(pids[0]), "the process is gone after close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_turns_on_one_session_run_in_order_and_all_complete() {
    let dir = TempDir::new("fifo");
    let engine = Engine::new(options(&dir)).unwrap();
    // Queued in this order from one thread; they must finish in it.
    let streams: Vec<_> = (0..12)
        .map(|i| {
            let prompt = if i % 3 == 0 {
                format!("stall:{}", 30 - i)
            } else {
                format!("turn {i}")
            };
            (
                prompt.clone(),
                engine.submit("s", &prompt, &turn_opts()).unwrap(),
            )
        })
        .collect();
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, (prompt, stream)) in streams.into_iter().enumerate() {
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let t = stream.finish().await.expect("turn");
            order.lock().push(i);
            (prompt, t)
        }));
    }
    for task in tasks {
        let (prompt, t) = task.await.unwrap();
        let want = match prompt.strip_prefix("stall:") {
            Some(ms) => format!("stalled {ms} ms"),
            None => format!("echo: {prompt}"),
        };
        assert_eq!(t.text, want, "each turn gets its own answer");
    }
    assert_eq!(*order.lock(), (0..12).collect::<Vec<_>>());
    assert_eq!(engine.session_stats("s").unwrap().cold_starts, 1);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_cold_start_once() {
    let dir = TempDir::new("once");
    let engine = Engine::new(options(&dir)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move {
            e.execute("same", &format!("p{i}"), &turn_opts(), |_| {})
                .await
        }));
    }
    let mut colds = 0;
    for t in tasks {
        colds += t.await.unwrap().expect("turn").cold_start as usize;
    }
    assert_eq!(colds, 1);
    assert_eq!(engine.session_stats("same").unwrap().cold_starts, 1);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_evicts_the_least_recently_used_idle_session() {
    let dir = TempDir::new("lru");
    let engine = Engine::new(EngineOptions {
        max_sessions: 2,
        ..options(&dir)
    })
    .unwrap();
    let a = turn(&engine, "a", "hi").await;
    let b = turn(&engine, "b", "hi").await;
    turn(&engine, "a", "again").await;
    // b is now the least recently used.
    turn(&engine, "c", "hi").await;
    let ids: Vec<String> = engine.sessions().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["a", "c"]);
    assert!(alive(a.pid));
    // c's process started only once b's was gone: max_sessions bounds
    // processes, never exceeded even for a moment.
    assert!(
        !alive(b.pid),
        "the evicted agent outlived the turn that evicted it"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_busy_sessions_refuses_with_capacity_exceeded() {
    let dir = TempDir::new("cap");
    let engine = Engine::new(EngineOptions {
        max_sessions: 2,
        ..options(&dir)
    })
    .unwrap();
    let s1 = engine.submit("a", "stall:1500", &turn_opts()).unwrap();
    let s2 = engine.submit("b", "stall:1500", &turn_opts()).unwrap();
    match engine.submit("c", "hi", &turn_opts()) {
        Err(Error::CapacityExceeded(m)) => assert!(m.contains("2 sessions")),
        other => panic!("expected CapacityExceeded, got {other:?}"),
    }
    s1.finish().await.unwrap();
    s2.finish().await.unwrap();
    // Now both are idle: c evicts one.
    turn(&engine, "c", "hi").await;
    assert_eq!(engine.sessions().len(), 2);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_evicts_idle_sessions_but_never_busy_ones() {
    let dir = TempDir::new("idle");
    let engine = Engine::new(EngineOptions {
        idle_timeout: Duration::from_millis(300),
        ..options(&dir)
    })
    .unwrap();
    let idle = turn(&engine, "idle", "hi").await;
    let busy = engine.submit("busy", "stall:1500", &turn_opts()).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let ids: Vec<String> = engine.sessions().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["busy"], "the idle session went, the busy one stayed");
    assert!(!alive(idle.pid), "the idle session's process was killed");
    let t = busy.finish().await.expect("the busy turn completes");
    assert_eq!(t.text, "stalled 1500 ms");
    // The evicted session comes back, resuming its conversation.
    let back = turn(&engine, "idle", "recall").await;
    assert!(back.cold_start && back.resumed);
    assert_eq!(back.text, "history: hi");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_running_and_later_turns_with_closed_and_is_idempotent() {
    let dir = TempDir::new("close");
    let engine = Engine::new(options(&dir)).unwrap();
    let first = turn(&engine, "s", "hi").await;
    let running = engine.submit("s", "stall:5000", &turn_opts()).unwrap();
    let queued = engine.submit("s", "after", &turn_opts()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.close().await;
    assert!(matches!(running.finish().await, Err(Error::Closed)));
    assert!(matches!(queued.finish().await, Err(Error::Closed)));
    assert!(!alive(first.pid));
    engine.close().await;
    assert!(engine.is_closed());
    assert!(matches!(
        engine.submit("s", "hi", &turn_opts()),
        Err(Error::Closed)
    ));
    assert!(engine.sessions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_turn_is_session_dead_and_the_next_turn_resumes() {
    let dir = TempDir::new("crash");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "remember me").await;
    match engine.execute("s", "crash", &turn_opts(), |_| {}).await {
        Err(Error::SessionDead(m)) => assert!(m.contains("exit status: 3"), "{m}"),
        other => panic!("expected SessionDead, got {other:?}"),
    }
    assert_eq!(engine.sessions()[0].status, SessionStatus::Dead);
    let t = turn(&engine, "s", "recall").await;
    assert!(t.cold_start && t.resumed);
    assert_eq!(t.text, "history: remember me | crash");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_resume_falls_back_to_a_fresh_session() {
    let dir = TempDir::new("fallback");
    let state = dir.0.join("state");
    let opts = EngineOptions {
        state_dir: Some(state.clone()),
        ..options(&dir)
    };
    let engine = Engine::new(opts.clone()).unwrap();
    let t = turn(&engine, "s", "one").await;
    engine.close().await;
    // A new engine on the same state dir resumes...
    let engine = Engine::new(opts.clone()).unwrap();
    let t2 = turn(&engine, "s", "recall").await;
    assert!(t2.resumed);
    assert_eq!(t2.text, "history: one");
    engine.close().await;
    // ...unless the CLI lost the transcript: then it starts fresh.
    std::fs::remove_file(dir.0.join(format!("{}.txt", t.provider_session_id))).unwrap();
    let engine = Engine::new(opts).unwrap();
    let mut events = Vec::new();
    let t3 = engine
        .execute("s", "recall", &turn_opts(), |e| events.push(e.clone()))
        .await
        .expect("fresh start after a failed resume");
    assert!(t3.cold_start && !t3.resumed);
    assert_eq!(t3.text, "history: ");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Error { message: m } if m.contains("No conversation found"))));
    assert_eq!(engine.session_stats("s").unwrap().cold_starts, 2);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_interrupts_the_turn_and_the_session_stays_usable() {
    let dir = TempDir::new("timeout");
    let engine = Engine::new(options(&dir)).unwrap();
    let first = turn(&engine, "s", "hi").await;
    let short = timeout_ms(300);
    let started = std::time::Instant::now();
    assert!(matches!(
        engine.execute("s", "stall:10000", &short, |_| {}).await,
        Err(Error::TurnTimeout(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    let next = turn(&engine, "s", "still there?").await;
    assert_eq!(next.text, "echo: still there?");
    assert_eq!(next.pid, first.pid, "a clean interrupt keeps the process");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_ignores_the_interrupt_is_killed_and_the_next_turn_resumes() {
    let dir = TempDir::new("hang");
    let engine = Engine::new(options(&dir)).unwrap();
    let first = turn(&engine, "s", "hi").await;
    let short = timeout_ms(300);
    assert!(matches!(
        engine.execute("s", "hang", &short, |_| {}).await,
        Err(Error::TurnTimeout(_))
    ));
    assert!(!alive(first.pid), "the stuck process was killed");
    let next = turn(&engine, "s", "recall").await;
    assert!(next.cold_start && next.resumed);
    assert_eq!(next.text, "history: hi | hang");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_turn_stream_cancels_the_turn() {
    let dir = TempDir::new("cancel");
    let engine = Engine::new(options(&dir)).unwrap();
    let mut stream = engine.submit("s", "stall:10000", &turn_opts()).unwrap();
    // Wait until the turn is running, then walk away.
    assert!(matches!(
        stream.next_event().await,
        Some(Event::SessionStart { .. })
    ));
    drop(stream);
    let started = std::time::Instant::now();
    let t = turn(&engine, "s", "next").await;
    assert_eq!(t.text, "echo: next");
    assert!(!t.cold_start, "interrupted, not killed");
    assert!(started.elapsed() < Duration::from_secs(5));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_result_is_turn_failed() {
    let dir = TempDir::new("fail");
    let engine = Engine::new(options(&dir)).unwrap();
    match engine.execute("s", "fail", &turn_opts(), |_| {}).await {
        Err(Error::TurnFailed { subtype, message }) => {
            assert_eq!(subtype, "error_during_execution");
            assert!(message.contains("on purpose"));
        }
        other => panic!("expected TurnFailed, got {other:?}"),
    }
    assert_eq!(engine.session_stats("s").unwrap().failed_turns, 1);
    turn(&engine, "s", "ok").await;
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failures_are_start_failed() {
    let dir = TempDir::new("start");

    let exits = Engine::new(EngineOptions {
        args: vec!["--exit-at-start".into()],
        ..options(&dir)
    })
    .unwrap();
    match exits.execute("s", "hi", &turn_opts(), |_| {}).await {
        Err(Error::StartFailed(m)) => assert!(m.contains("told to exit at start"), "{m}"),
        other => panic!("expected StartFailed, got {other:?}"),
    }
    exits.close().await;

    let slow = Engine::new(EngineOptions {
        args: vec!["--startup-delay-ms".into(), "5000".into()],
        startup_timeout: Duration::from_millis(300),
        ..options(&dir)
    })
    .unwrap();
    match slow.execute("s", "hi", &turn_opts(), |_| {}).await {
        Err(Error::StartFailed(m)) => assert!(m.contains("startup_timeout"), "{m}"),
        other => panic!("expected StartFailed, got {other:?}"),
    }
    slow.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_binary_is_invalid_config_when_the_engine_is_built() {
    let dir = TempDir::new("binary");
    for (binary, names) in [
        ("/nonexistent/agent", "/nonexistent/agent"),
        ("no-such-agent-cli-xyz", "no-such-agent-cli-xyz"),
    ] {
        match Engine::new(EngineOptions {
            binary: binary.into(),
            ..options(&dir)
        }) {
            Err(Error::InvalidConfig(m)) => {
                assert!(m.contains(names) && m.contains("hint"), "{m}")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_turn_without_a_workdir_continues_in_the_sessions_workdir() {
    let dir = TempDir::new("follow");
    let engine = Engine::new(options(&dir)).unwrap();
    let project = TurnOptions {
        workdir: Some(dir.0.join("project")),
        ..TurnOptions::default()
    };
    let first = engine
        .execute("s", "remember me", &project, |_| {})
        .await
        .unwrap();
    // No workdir: the session's, not the engine's default.
    let next = turn(&engine, "s", "recall").await;
    assert!(!next.cold_start && next.pid == first.pid);
    assert_eq!(next.text, "history: remember me");
    let info = engine.sessions();
    assert_eq!(
        info[0].workdir.as_deref(),
        Some(
            std::fs::canonicalize(dir.0.join("project"))
                .unwrap()
                .as_path()
        )
    );
    // After a stop the marker remembers where the conversation lives.
    engine.stop_session("s").await;
    let back = turn(&engine, "s", "recall").await;
    assert!(back.cold_start && back.resumed, "{back:?}");
    // A first turn without a workdir runs in the default.
    turn(&engine, "other", "hi").await;
    let other = engine
        .sessions()
        .into_iter()
        .find(|s| s.id == "other")
        .unwrap();
    assert!(other.workdir.unwrap().ends_with("work"));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_stats_event_carries_the_same_per_turn_cost_as_the_turn() {
    let dir = TempDir::new("statscost");
    let engine = Engine::new(options(&dir)).unwrap();
    for _ in 0..3 {
        let mut event_cost = None;
        let t = engine
            .execute("s", "x", &turn_opts(), |e| {
                if let Event::SessionStats(s) = e {
                    event_cost = Some(s.cost_usd);
                }
            })
            .await
            .unwrap();
        assert_eq!(event_cost, Some(t.stats.cost_usd));
        assert!((t.stats.cost_usd - 0.001).abs() < 1e-9);
    }
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_answer_that_rewrites_the_input_runs_it_and_the_waf_screens_it() {
    let dir = TempDir::new("rewrite");
    let handler: PermissionHandler = Arc::new(|req| {
        let answer = match req.input["command"].as_str() {
            Some("make test") => {
                serde_json::json!({"behavior": "allow", "updatedInput": {"command": "make check"}})
            }
            _ => serde_json::json!({"behavior": "allow", "updatedInput": {"command": "rm -rf /"}}),
        };
        Permission::from_answer(&answer)
    });
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(handler),
        ..options(&dir)
    })
    .unwrap();
    assert_eq!(
        turn(&engine, "s", "tool:make test").await.text,
        "tool ran: make check"
    );
    let t = turn(&engine, "s", "tool:ls").await;
    assert_eq!(t.text, "tool denied: ls");
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, Event::DangerBlock { .. })));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangerous_prompt_is_danger_blocked_unless_approved() {
    let dir = TempDir::new("prompt");
    let engine = Engine::new(options(&dir)).unwrap();
    match engine.submit("s", "run this: rm -rf /", &turn_opts()) {
        Err(Error::DangerBlocked(v)) => assert!(v.blocked),
        other => panic!("expected DangerBlocked, got {other:?}"),
    }
    let mut seen = Vec::new();
    let blocked = engine
        .execute("s", "run this: rm -rf /", &turn_opts(), |e| {
            seen.push(e.name())
        })
        .await;
    assert!(matches!(blocked, Err(Error::DangerBlocked(_))));
    assert_eq!(
        seen,
        ["danger_block"],
        "execute reports the block as an event too"
    );
    assert!(engine.sessions().is_empty(), "nothing started");
    let approved = TurnOptions {
        waf_approved: true,
        ..TurnOptions::default()
    };
    let t = engine
        .execute("s", "run this: rm -rf /", &approved, |_| {})
        .await
        .unwrap();
    assert_eq!(t.text, "echo: run this: rm -rf /");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_screened_by_the_waf_then_the_host_handler() {
    let dir = TempDir::new("tools");
    let engine = Engine::new(options(&dir)).unwrap();
    let t = turn(&engine, "s", "tool:rm -rf /").await;
    assert_eq!(t.text, "tool denied: rm -rf /");
    let names: Vec<&str> = t.events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "session_start",
            "tool_use",
            "danger_block",
            "tool_result",
            "answer",
            "session_stats"
        ],
        "the PreToolUse hook denied it before any permission request"
    );
    let t = turn(&engine, "s", "tool:ls -la").await;
    assert_eq!(t.text, "tool ran: ls -la");
    let stats = engine.session_stats("s").unwrap();
    assert_eq!(
        (stats.tool_calls, stats.tools_denied, stats.tool_errors),
        (2, 1, 1)
    );
    engine.close().await;

    let handler: PermissionHandler = Arc::new(|req| {
        if req.input["command"].as_str() == Some("make deploy") {
            Permission::deny("deploys need a human")
        } else {
            Permission::allow()
        }
    });
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(handler),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "h", "tool:make deploy").await;
    assert_eq!(t.text, "tool denied: make deploy");
    let t = turn(&engine, "h", "tool:make test").await;
    assert_eq!(t.text, "tool ran: make test");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_workdir_restarts_the_process_and_roots_are_enforced() {
    let dir = TempDir::new("workdir");
    let root = dir.0.join("root");
    let engine = Engine::new(EngineOptions {
        allowed_roots: vec![{
            std::fs::create_dir_all(&root).unwrap();
            root.clone()
        }],
        ..options(&dir)
    })
    .unwrap();
    let in_a = TurnOptions {
        workdir: Some(root.join("a")),
        ..TurnOptions::default()
    };
    let in_b = TurnOptions {
        workdir: Some(root.join("b")),
        ..TurnOptions::default()
    };
    let a = engine.execute("s", "hi", &in_a, |_| {}).await.unwrap();
    let a2 = engine.execute("s", "hi", &in_a, |_| {}).await.unwrap();
    let b = engine.execute("s", "hi", &in_b, |_| {}).await.unwrap();
    assert!(a.cold_start && !a2.cold_start && b.cold_start);
    assert_ne!(a.pid, b.pid);
    assert!(!alive(a.pid));
    let outside = TurnOptions {
        workdir: Some(dir.0.join("elsewhere")),
        ..TurnOptions::default()
    };
    assert!(matches!(
        engine.submit("s", "hi", &outside),
        Err(Error::InvalidConfig(m)) if m.contains("outside the allowed roots")
    ));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agent_output_is_counted_and_the_turn_completes() {
    let dir = TempDir::new("garbage");
    let engine = Engine::new(options(&dir)).unwrap();
    let t = turn(&engine, "s", "garbage").await;
    assert_eq!(t.text, "echo: garbage");
    let t = turn(&engine, "s", "flood:2000").await;
    assert_eq!(
        t.events
            .iter()
            .filter(|e| matches!(e, Event::Answer { .. }))
            .count(),
        2001
    );
    assert_eq!(engine.session_stats("s").unwrap().bad_lines, 1);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_session_fails_the_running_turn_and_kills_the_process() {
    let dir = TempDir::new("stop");
    let engine = Engine::new(options(&dir)).unwrap();
    let first = turn(&engine, "s", "hi").await;
    let running = engine.submit("s", "stall:10000", &turn_opts()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(engine.stop_session("s").await);
    assert!(!alive(first.pid));
    assert!(matches!(running.finish().await, Err(Error::SessionDead(_))));
    assert!(!engine.stop_session("s").await, "already gone");
    let again = turn(&engine, "s", "recall").await;
    assert!(again.resumed);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_and_input_are_invalid_config() {
    let dir = TempDir::new("invalid");
    for opts in [
        EngineOptions {
            max_sessions: 0,
            ..options(&dir)
        },
        EngineOptions {
            turn_timeout: Duration::ZERO,
            ..options(&dir)
        },
    ] {
        assert!(matches!(Engine::new(opts), Err(Error::InvalidConfig(_))));
    }
    let engine = Engine::new(EngineOptions {
        max_prompt_bytes: 10,
        ..options(&dir)
    })
    .unwrap();
    assert!(matches!(
        engine.submit("", "hi", &turn_opts()),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        engine.submit("s", "this prompt is too long", &turn_opts()),
        Err(Error::InvalidConfig(_))
    ));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_session_resumes_even_without_a_marker() {
    // Markers in memory: a second engine does not know the CLI already has
    // the conversation; the CLI refuses the fresh start and hotplex resumes.
    let dir = TempDir::new("nomarker");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "first life").await;
    engine.close().await;
    let engine = Engine::new(options(&dir)).unwrap();
    let mut events = Vec::new();
    let t = engine
        .execute("s", "recall", &turn_opts(), |e| events.push(e.clone()))
        .await
        .unwrap();
    assert!(t.resumed);
    assert_eq!(t.text, "history: first life");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Error { message: m } if m.contains("already in use"))));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_process_cost_becomes_per_turn_cost() {
    let dir = TempDir::new("cost");
    let engine = Engine::new(options(&dir)).unwrap();
    for _ in 0..3 {
        let t = turn(&engine, "s", "x").await;
        assert!(
            (t.stats.cost_usd - 0.001).abs() < 1e-9,
            "{}",
            t.stats.cost_usd
        );
    }
    let _ = engine.execute("s", "crash", &turn_opts(), |_| {}).await;
    let t = turn(&engine, "s", "x").await;
    assert!(t.resumed && (t.stats.cost_usd - 0.001).abs() < 1e-9);
    let total = engine.session_stats("s").unwrap().cost_usd;
    assert!((total - 0.004).abs() < 1e-9, "{total}");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_across_more_sessions_than_slots_keeps_every_answer_right_and_leaves_no_process() {
    let dir = TempDir::new("churn");
    let engine = Engine::new(EngineOptions {
        max_sessions: 6,
        max_concurrent_starts: 2,
        ..options(&dir)
    })
    .unwrap();
    let pids = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (engine, pids, refused) = (engine.clone(), pids.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                let id = format!("s{}", (i + j) % 12);
                let prompt = format!("task {i} turn {j}");
                loop {
                    match engine.execute(&id, &prompt, &turn_opts(), |_| {}).await {
                        Ok(t) => {
                            assert_eq!(t.text, format!("echo: {prompt}"));
                            pids.lock().insert(t.pid);
                            break;
                        }
                        Err(Error::CapacityExceeded(_)) => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        // An evicted session's queued turn: try again.
                        Err(Error::SessionDead(m)) if m.contains("evicted") => {}
                        Err(e) => panic!("turn {i}/{j} on {id}: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(engine.sessions().len() <= 6);
    engine.close().await;
    let pids = pids.lock();
    assert!(pids.len() > 6, "sessions were evicted and restarted");
    let survivors: Vec<_> = pids.iter().filter(|p| alive(**p)).collect();
    assert!(survivors.is_empty(), "still running: {survivors:?}");
    println!(
        "{} processes for 240 turns, {} refusals while all slots were busy",
        pids.len(),
        refused.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_session_closes_its_stdin_first_so_the_agent_exits_on_eof() {
    // With minute-long grace periods, only a clean EOF exit can end the
    // session quickly; the bound below is a hang guard, not a benchmark.
    let dir = TempDir::new("eof");
    let engine = Engine::new(EngineOptions {
        kill_grace: (Duration::from_secs(60), Duration::from_secs(60)),
        ..options(&dir)
    })
    .unwrap();
    turn(&engine, "s", "hi").await;
    let stopped = tokio::time::timeout(Duration::from_secs(30), engine.stop_session("s")).await;
    assert_eq!(stopped, Ok(true));
    turn(&engine, "s", "hi").await;
    tokio::time::timeout(Duration::from_secs(30), engine.close())
        .await
        .expect("close does not wait out the grace period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_the_agent_runs_without_asking_are_screened_by_the_hook() {
    // The CLI runs commands it deems read-only without can_use_tool; the
    // PreToolUse hook hotplex registers at start still shows them to the WAF.
    let dir = TempDir::new("hook");
    let engine = Engine::new(options(&dir)).unwrap();
    // The prompt names the command too; approve it so that the tool call
    // (not the prompt check) is what the WAF stops.
    let approved = TurnOptions {
        waf_approved: true,
        ..turn_opts()
    };
    let t = engine
        .execute("s", "readonly:cat ~/.ssh/id_rsa", &approved, |_| {})
        .await
        .unwrap();
    assert_eq!(t.text, "tool denied: cat ~/.ssh/id_rsa");
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, Event::DangerBlock { .. })));
    let t = turn(&engine, "s", "readonly:ls -la").await;
    assert_eq!(t.text, "tool ran: ls -la");
    let names: Vec<&str> = t.events.iter().map(Event::name).collect();
    assert!(!names.contains(&"permission_request") && !names.contains(&"danger_block"));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_messages_stream_answer_deltas_that_add_up_to_the_answer() {
    let dir = TempDir::new("deltas");
    let engine = Engine::new(EngineOptions {
        partial_messages: true,
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "a reply worth streaming").await;
    let deltas: Vec<&str> = t
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AnswerDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(deltas.len() >= 3, "{deltas:?}");
    let answer = t.events.iter().find_map(|e| match e {
        Event::Answer { text } => Some(text.clone()),
        _ => None,
    });
    // The deltas come first, then the whole message as before.
    assert_eq!(Some(deltas.concat()), answer);
    let first = t
        .events
        .iter()
        .position(|e| matches!(e, Event::AnswerDelta { .. }));
    let whole = t
        .events
        .iter()
        .position(|e| matches!(e, Event::Answer { .. }));
    assert!(first < whole);
    assert!(t.stats.first_delta_ms.is_some_and(|ms| ms > 0.0));

    // A turn can leave them out; without the engine option none arrive and
    // asking for them is a clear error.
    let quiet = TurnOptions {
        partial_messages: Some(false),
        ..TurnOptions::default()
    };
    let t = engine.execute("s", "hi", &quiet, |_| {}).await.unwrap();
    assert!(!t
        .events
        .iter()
        .any(|e| matches!(e, Event::AnswerDelta { .. })));
    assert_eq!(t.stats.first_delta_ms, None);
    engine.close().await;

    let plain = Engine::new(options(&dir)).unwrap();
    let t = turn(&plain, "p", "hi").await;
    assert!(!t
        .events
        .iter()
        .any(|e| matches!(e, Event::AnswerDelta { .. })));
    let loud = TurnOptions {
        partial_messages: Some(true),
        ..TurnOptions::default()
    };
    assert!(matches!(
        plain.submit("p", "hi", &loud),
        Err(Error::InvalidConfig(m)) if m.starts_with("partial_messages")
    ));
    plain.close().await;
}
