//! The session pool (`hotplex_core::Engine`) driving the reference ACP
//! agent (`hotplex-reference-acp`) through the `acp` provider: hot
//! processes, FIFO turns, cancels by interrupt and timeout, the kill
//! ladder, crashes and `session/load`, garbage, the WAF and the host's
//! permission handler in front of tool calls, hotplex as the agent's file
//! system and terminal (confined, screened, contained), concurrency, and
//! one engine holding a Claude Code and an ACP session at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotplex_core::contract::SessionOptions;
use hotplex_core::{
    Engine, EngineOptions, Error, Event, Permission, PermissionHandler, Provider, ToolRequest,
    Turn, TurnOptions,
};

mod support;
use support::{alive, TempDir};

const ACP: &str = env!("CARGO_BIN_EXE_hotplex-reference-acp");

/// An `acp` engine on the reference ACP agent with short timeouts; the
/// agent keeps its conversations in `<dir>/acp-state` (for `session/load`)
/// and its HOME is `<dir>/home` (so a command that got through could only
/// hurt that).
fn acp_options(dir: &TempDir) -> EngineOptions {
    let state = dir.0.join("acp-state");
    let home = dir.0.join("home");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    EngineOptions {
        provider: Provider::Acp,
        binary: ACP.into(),
        args: vec!["--state-dir".into(), state.to_string_lossy().into_owned()],
        env: vec![("HOME".into(), home.to_string_lossy().into_owned())],
        turn_timeout: Duration::from_secs(20),
        startup_timeout: Duration::from_secs(20),
        interrupt_grace: Duration::from_secs(2),
        kill_grace: (Duration::from_millis(200), Duration::from_millis(200)),
        default_workdir: Some(dir.0.join("work")),
        ..EngineOptions::default()
    }
}

fn workdir(dir: &TempDir) -> PathBuf {
    let w = dir.0.join("work");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::canonicalize(w).unwrap()
}

async fn turn(engine: &Engine, id: &str, prompt: &str) -> Turn {
    engine
        .execute(id, prompt, &TurnOptions::default(), |_| {})
        .await
        .unwrap_or_else(|e| panic!("turn {prompt:?} on {id:?}: {e}"))
}

fn timeout_ms(ms: u64) -> TurnOptions {
    TurnOptions {
        timeout: Some(Duration::from_millis(ms)),
        ..TurnOptions::default()
    }
}

fn errors(t: &Turn) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn names(t: &Turn) -> Vec<&'static str> {
    t.events.iter().map(Event::name).collect()
}

fn permissions(
    f: impl Fn(&ToolRequest<'_>) -> Permission + Send + Sync + 'static,
) -> PermissionHandler {
    Arc::new(f)
}

/// Waits (bounded) until `path` exists and holds a pid.
async fn pid_in(path: &Path) -> i32 {
    for _ in 0..200 {
        if let Ok(t) = std::fs::read_to_string(path) {
            if let Ok(pid) = t.trim().parse() {
                return pid;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no pid in {}", path.display())
}

/// Waits (bounded) until `pid` is gone.
async fn gone(pid: i32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_turns_share_one_acp_process_with_one_cold_start() {
    let dir = TempDir::new("acp-five");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let mut pids = Vec::new();
    for i in 0..5 {
        let t = turn(&engine, "s", &format!("hello {i}")).await;
        assert_eq!(t.text, format!("echo: hello {i}"));
        assert_eq!(t.cold_start, i == 0, "turn {i}");
        assert!(!t.resumed);
        assert!(
            t.stats.usage.output_tokens > 0,
            "usage from the prompt's answer"
        );
        assert!(t.stats.cost_usd > 0.0, "cost from usage_update");
        assert_eq!(
            names(&t).first().copied(),
            Some(if i == 0 { "session_start" } else { "answer" })
        );
        assert_eq!(names(&t).last().copied(), Some("session_stats"));
        pids.push(t.pid);
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one process: {pids:?}"
    );
    let stats = engine.session_stats("s").unwrap();
    assert_eq!((stats.turns, stats.cold_starts, stats.resumes), (5, 1, 0));
    assert!(
        (stats.cost_usd - 0.005).abs() < 1e-9,
        "per-turn costs add up: {}",
        stats.cost_usd
    );
    engine.close().await;
    assert!(gone(pids[0]).await, "the process is gone after close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_turns_on_one_acp_session_run_in_order_and_all_complete() {
    let dir = TempDir::new("acp-fifo");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let streams: Vec<_> = (0..8)
        .map(|i| {
            let prompt = if i % 3 == 0 {
                format!("sleep:{}", 40 - i)
            } else {
                format!("turn {i}")
            };
            let s = engine
                .submit("s", &prompt, &TurnOptions::default())
                .unwrap();
            (prompt, s)
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
        let want = match prompt.strip_prefix("sleep:") {
            Some(ms) => format!("slept {ms} ms"),
            None => format!("echo: {prompt}"),
        };
        assert_eq!(t.text, want, "each turn gets its own answer");
    }
    assert_eq!(*order.lock(), (0..8).collect::<Vec<_>>());
    assert_eq!(engine.session_stats("s").unwrap().cold_starts, 1);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_cancels_the_turn_and_the_next_turn_runs_on_the_same_process() {
    let dir = TempDir::new("acp-interrupt");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let first = turn(&engine, "s", "warm").await;
    let stream = engine
        .submit("s", "sleep:30000", &TurnOptions::default())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(engine.interrupt("s").await.unwrap(), "a turn was running");
    match stream.finish().await {
        Err(Error::TurnTimeout(m)) => assert!(m.contains("interrupted"), "{m}"),
        other => panic!("expected TurnTimeout, got {other:?}"),
    }
    let next = turn(&engine, "s", "after").await;
    assert_eq!(next.text, "echo: after");
    assert!(!next.cold_start, "a clean cancel keeps the process hot");
    assert_eq!(next.pid, first.pid);
    assert!(!engine.interrupt("s").await.unwrap(), "nothing runs now");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_over_its_timeout_is_cancelled_and_the_next_turn_succeeds() {
    let dir = TempDir::new("acp-timeout");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let first = turn(&engine, "s", "warm").await;
    match engine
        .execute("s", "sleep:30000", &timeout_ms(300), |_| {})
        .await
    {
        Err(Error::TurnTimeout(m)) => assert!(m.contains("no result"), "{m}"),
        other => panic!("expected TurnTimeout, got {other:?}"),
    }
    let next = turn(&engine, "s", "again").await;
    assert_eq!(next.text, "echo: again");
    assert_eq!((next.cold_start, next.pid), (false, first.pid));
    let stats = engine.session_stats("s").unwrap();
    assert_eq!((stats.failed_turns, stats.cold_starts), (1, 1));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_ignores_the_cancel_is_killed_after_the_grace_and_the_next_turn_loads() {
    let dir = TempDir::new("acp-ignore");
    let engine = Engine::new(EngineOptions {
        interrupt_grace: Duration::from_millis(500),
        ..acp_options(&dir)
    })
    .unwrap();
    let first = turn(&engine, "s", "remember me").await;
    match engine
        .execute("s", "ignorecancel:", &timeout_ms(300), |_| {})
        .await
    {
        Err(Error::TurnTimeout(_)) => {}
        other => panic!("expected TurnTimeout, got {other:?}"),
    }
    assert!(gone(first.pid).await, "the agent was killed");
    let next = turn(&engine, "s", "recall").await;
    assert!(
        next.cold_start && next.resumed,
        "session/load on a new process"
    );
    assert_ne!(next.pid, first.pid);
    assert!(next.text.contains("remember me"), "{}", next.text);
    let stats = engine.session_stats("s").unwrap();
    assert_eq!((stats.cold_starts, stats.resumes), (2, 1));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_session_dead_and_the_next_turn_loads_the_conversation() {
    let dir = TempDir::new("acp-crash");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let first = turn(&engine, "s", "keep this").await;
    let mut seen = Vec::new();
    match engine
        .execute("s", "crash:", &TurnOptions::default(), |e| {
            seen.push(e.clone())
        })
        .await
    {
        Err(Error::SessionDead(m)) => assert!(m.contains("exited"), "{m}"),
        other => panic!("expected SessionDead, got {other:?}"),
    }
    assert!(
        seen.contains(&Event::Answer {
            text: "about to crash".into()
        }),
        "what it said before dying is the turn's: {seen:?}"
    );
    assert!(gone(first.pid).await);
    let next = turn(&engine, "s", "recall").await;
    assert!(next.cold_start && next.resumed);
    // The crashed turn never reached the agent's transcript.
    assert_eq!(next.text, "history: keep this");
    assert!(errors(&next).is_empty(), "{:?}", errors(&next));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_load_session_a_crash_starts_fresh_with_an_error_event_saying_so() {
    let dir = TempDir::new("acp-noload");
    let mut opts = acp_options(&dir);
    opts.args.push("--no-load-session".into());
    let engine = Engine::new(opts).unwrap();
    turn(&engine, "s", "lost").await;
    assert!(matches!(
        engine
            .execute("s", "crash:", &TurnOptions::default(), |_| {})
            .await,
        Err(Error::SessionDead(_))
    ));
    let next = turn(&engine, "s", "recall").await;
    assert!(next.cold_start && !next.resumed);
    assert_eq!(next.text, "history: ", "a new conversation");
    let e = errors(&next);
    assert!(e.iter().any(|m| m.contains("loadSession")), "{e:?}");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_lines_are_counted_and_the_turn_is_still_answered() {
    let dir = TempDir::new("acp-garbage");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let t = turn(&engine, "s", "garbage:64").await;
    assert!(t.text.ends_with("echo: garbage survived"), "{}", t.text);
    assert!(
        t.text.contains("bad\u{FFFD}byte"),
        "a bad byte costs one character: {}",
        t.text
    );
    let stats = engine.session_stats("s").unwrap();
    // Not JSON, invalid UTF-8, 64 KiB of x, an array, jsonrpc 1.0.
    assert!(stats.bad_lines >= 5, "{stats:?}");
    assert!(
        stats.stray_lines >= 1,
        "a response to an id hotplex never sent"
    );
    let next = turn(&engine, "s", "still fine").await;
    assert_eq!(next.text, "echo: still fine");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_after_the_turns_answer_is_stray_and_never_reaches_the_next_turn() {
    let dir = TempDir::new("acp-after");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let t = turn(&engine, "s", "after:done").await;
    assert_eq!(t.text, "done");
    let next = turn(&engine, "s", "next").await;
    assert_eq!(next.text, "echo: next", "{:?}", next.events);
    assert!(engine.session_stats("s").unwrap().stray_lines >= 2);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waf_denies_rm_rf_home_and_the_home_canary_survives() {
    let dir = TempDir::new("acp-rmrf");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let canary = dir.0.join("home/canary");
    std::fs::write(&canary, "alive").unwrap();
    let t = turn(&engine, "s", "run:rm -rf ~").await;
    assert_eq!(t.text, "denied: rm -rf ~");
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e, Event::DangerBlock { .. })),
        "{:?}",
        t.events
    );
    assert!(names(&t).contains(&"permission_request"));
    assert!(canary.exists(), "the canary survives");
    let stats = engine.session_stats("s").unwrap();
    assert_eq!(stats.tools_denied, 1);
    // A harmless command is allowed and runs in a terminal hotplex serves.
    let ok = turn(&engine, "s", "run:echo hi").await;
    assert_eq!(ok.text, "ran: echo hi\nexit: 0\nhi\n");
    let n = names(&ok);
    assert!(
        n.contains(&"tool_use") && n.contains(&"tool_result"),
        "{n:?}"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_handler_is_asked_and_its_denial_is_the_agents_rejection() {
    let dir = TempDir::new("acp-handler");
    let asked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let a = asked.clone();
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(permissions(move |req| {
            a.lock().push((req.tool_name.to_owned(), req.input.clone()));
            match req.input["command"].as_str() {
                Some(c) if c.starts_with("touch") => Permission::deny("not today"),
                _ => Permission::allow(),
            }
        })),
        ..acp_options(&dir)
    })
    .unwrap();
    let w = workdir(&dir);
    let t = turn(&engine, "s", "run:touch made").await;
    assert_eq!(t.text, "denied: touch made");
    assert!(!w.join("made").exists());
    let ok = turn(&engine, "s", "run:echo fine").await;
    assert!(
        ok.text.starts_with("ran: echo fine\nexit: 0"),
        "{}",
        ok.text
    );
    {
        let asked = asked.lock();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert_eq!(asked[0].0, "execute");
        assert_eq!(asked[0].1["command"], "touch made");
    }
    // rm -rf ~ never reaches the handler: the WAF answers first.
    turn(&engine, "s", "run:rm -rf ~").await;
    assert_eq!(asked.lock().len(), 2);
    assert_eq!(engine.session_stats("s").unwrap().tools_denied, 1);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_answers_the_pending_permission_request_cancelled() {
    let dir = TempDir::new("acp-cancel-perm");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(permissions(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            // A person who takes their time.
            std::thread::sleep(Duration::from_secs(3));
            Permission::allow()
        })),
        ..acp_options(&dir)
    })
    .unwrap();
    let first = turn(&engine, "s", "warm").await;
    let w = workdir(&dir);
    let stream = engine
        .submit("s", "run:touch late", &TurnOptions::default())
        .unwrap();
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(engine.interrupt("s").await.unwrap());
    assert!(matches!(stream.finish().await, Err(Error::TurnTimeout(_))));
    // The agent took the `cancelled` outcome and answered at once: the
    // process is still the same and the late allow never ran anything.
    let next = turn(&engine, "s", "next").await;
    assert_eq!((next.pid, next.cold_start), (first.pid, false));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!w.join("late").exists(), "the late allow was dropped");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_workdir_are_refused_and_inside_ones_are_served() {
    let dir = TempDir::new("acp-fs");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let w = workdir(&dir);
    std::fs::write(w.join("f.txt"), "content").unwrap();
    let outside = dir.0.join("outside.txt");
    std::fs::write(&outside, "secret").unwrap();
    let t = turn(&engine, "s", &format!("read:{}", w.join("f.txt").display())).await;
    assert_eq!(t.text, "read: content");
    let t = turn(&engine, "s", &format!("read:{}", outside.display())).await;
    assert!(t.text.starts_with("read error: -32602"), "{}", t.text);
    assert!(t.text.contains("outside"), "{}", t.text);
    let t = turn(
        &engine,
        "s",
        &format!("read:{}/../outside.txt", w.display()),
    )
    .await;
    assert!(
        t.text.starts_with("read error: -32602"),
        "no `..` escape: {}",
        t.text
    );
    std::os::unix::fs::symlink(&outside, w.join("link")).unwrap();
    let t = turn(&engine, "s", &format!("read:{}", w.join("link").display())).await;
    assert!(
        t.text.starts_with("read error: -32602"),
        "no symlink escape: {}",
        t.text
    );
    let t = turn(
        &engine,
        "s",
        &format!("read:{}", w.join("missing").display()),
    )
    .await;
    assert!(t.text.starts_with("read error: -32002"), "{}", t.text);
    let t = turn(
        &engine,
        "s",
        &format!("write:{}:new text", w.join("sub/new.txt").display()),
    )
    .await;
    assert!(t.text.starts_with("wrote: "), "{}", t.text);
    assert_eq!(
        std::fs::read_to_string(w.join("sub/new.txt")).unwrap(),
        "new text"
    );
    let t = turn(
        &engine,
        "s",
        &format!("write:{}:x", dir.0.join("evil.txt").display()),
    )
    .await;
    assert!(t.text.starts_with("write error: -32602"), "{}", t.text);
    assert!(!dir.0.join("evil.txt").exists());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_file_inside_the_workdir_is_judged_by_the_waf() {
    let dir = TempDir::new("acp-secret");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let w = workdir(&dir);
    std::fs::create_dir_all(w.join(".ssh")).unwrap();
    std::fs::write(w.join(".ssh/id_rsa"), "KEY").unwrap();
    let t = turn(
        &engine,
        "s",
        &format!("read:{}", w.join(".ssh/id_rsa").display()),
    )
    .await;
    assert!(t.text.starts_with("read error: -32603"), "{}", t.text);
    assert!(t.text.contains("WAF"), "{}", t.text);
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, Event::DangerBlock { .. })));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_daemon_dies_with_its_command_and_a_running_one_with_the_session() {
    let dir = TempDir::new("acp-daemon");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let w = workdir(&dir);
    // A setsid daemon left behind by a command that returns at once.
    let t = turn(
        &engine,
        "s",
        "run:setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' > /dev/null 2>&1 & \
         while [ ! -s daemon.pid ]; do sleep 0.01; done; echo started",
    )
    .await;
    assert!(t.text.contains("exit: 0"), "{}", t.text);
    let daemon = pid_in(&w.join("daemon.pid")).await;
    // A command still running when the session stops.
    let stream = engine
        .submit(
            "s",
            "run:setsid sh -c 'echo $$ > long.pid; exec sleep 1000' & sleep 1000",
            &TurnOptions::default(),
        )
        .unwrap();
    let long = pid_in(&w.join("long.pid")).await;
    assert!(engine.stop_session("s").await);
    assert!(matches!(stream.finish().await, Err(Error::SessionDead(_))));
    assert!(
        gone(daemon).await,
        "the daemon left by a finished command is gone"
    );
    assert!(
        !alive(long),
        "the running terminal's daemon died with the session"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thoughts_plans_and_deltas_become_the_contracts_events() {
    let dir = TempDir::new("acp-events");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let t = turn(&engine, "s", "thought:think hard").await;
    assert!(t.events.contains(&Event::Thinking {
        text: "think hard".into()
    }));
    let t = turn(&engine, "s", "plan:a|b").await;
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, Event::Thinking { text } if text.starts_with("Plan:"))));
    let deltas = TurnOptions {
        partial_messages: Some(true),
        ..TurnOptions::default()
    };
    let t = engine
        .execute("s", "streamed", &deltas, |_| {})
        .await
        .unwrap();
    let joined: String = t
        .events
        .iter()
        .filter_map(|e| match e {
            Event::AnswerDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        joined, "echo: streamed",
        "ACP always streams: deltas without the engine option"
    );
    assert!(t.stats.first_delta_ms.is_some());
    let t = engine
        .execute("s", "stop:max_tokens", &TurnOptions::default(), |_| {})
        .await;
    match t {
        Err(Error::TurnFailed { subtype, .. }) => assert_eq!(subtype, "max_tokens"),
        other => panic!("expected TurnFailed, got {other:?}"),
    }
    match engine
        .execute("s", "fail:boom", &TurnOptions::default(), |_| {})
        .await
    {
        Err(Error::TurnFailed { subtype, message }) => {
            assert_eq!(subtype, "prompt_error");
            assert!(message.contains("boom"), "{message}");
        }
        other => panic!("expected TurnFailed, got {other:?}"),
    }
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_acp_sessions_run_turns_concurrently() {
    let dir = TempDir::new("acp-four");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("s{i}");
            let a = e
                .execute(&id, "sleep:500", &TurnOptions::default(), |_| {})
                .await
                .expect("turn");
            let b = e
                .execute(&id, &format!("hello {i}"), &TurnOptions::default(), |_| {})
                .await
                .expect("turn");
            assert_eq!(b.text, format!("echo: hello {i}"));
            assert_eq!(a.pid, b.pid);
            a.pid
        }));
    }
    let mut pids = Vec::new();
    for t in tasks {
        pids.push(t.await.unwrap());
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 4, "four processes");
    assert_eq!(engine.sessions().len(), 4);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_holds_a_claude_code_and_an_acp_session_at_once() {
    let dir = TempDir::new("acp-mixed");
    let engine = Engine::new(support::options(&dir)).unwrap();
    let acp = TurnOptions {
        session: Some(SessionOptions {
            provider: Some(Provider::Acp),
            binary: Some(ACP.into()),
            args: Some(vec![]),
            ..SessionOptions::default()
        }),
        ..TurnOptions::default()
    };
    let c = turn(&engine, "claude", "hi").await;
    let a = engine.execute("acp", "hi", &acp, |_| {}).await.unwrap();
    assert_eq!(c.text, "echo: hi");
    assert_eq!(a.text, "echo: hi");
    assert_ne!(c.pid, a.pid);
    // Later turns of the ACP session need not repeat its options.
    let again = turn(&engine, "acp", "caps?").await;
    assert_eq!(again.text, "caps: read=true write=true terminal=true");
    assert_eq!(again.pid, a.pid);
    let c2 = turn(&engine, "claude", "again").await;
    assert_eq!(c2.pid, c.pid);
    // A running session keeps its provider.
    let claude = TurnOptions {
        session: Some(SessionOptions {
            provider: Some(Provider::ClaudeCode),
            ..SessionOptions::default()
        }),
        ..TurnOptions::default()
    };
    match engine.submit("acp", "x", &claude) {
        Err(Error::InvalidConfig(m)) => assert!(m.contains("session.provider"), "{m}"),
        other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
    }
    assert_eq!(engine.sessions().len(), 2);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_only_options_are_refused_for_acp_by_name() {
    let dir = TempDir::new("acp-refuse");
    let e = Engine::new(EngineOptions {
        model: Some("m".into()),
        ..acp_options(&dir)
    })
    .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidConfig(m) if m.starts_with("model:")),
        "{e}"
    );
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let opts = TurnOptions {
        session: Some(SessionOptions {
            max_turns: Some(2),
            ..SessionOptions::default()
        }),
        ..TurnOptions::default()
    };
    match engine.submit("s", "x", &opts) {
        Err(Error::InvalidConfig(m)) => assert!(m.starts_with("session.max_turns:"), "{m}"),
        other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
    }
    let missing = TurnOptions {
        session: Some(SessionOptions {
            binary: Some("/nonexistent/agent".into()),
            ..SessionOptions::default()
        }),
        ..TurnOptions::default()
    };
    match engine.submit("s", "x", &missing) {
        Err(Error::InvalidConfig(m)) => assert!(m.starts_with("session.binary:"), "{m}"),
        other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        engine.prewarm(hotplex_core::PrewarmProfile {
            spares: 1,
            ..Default::default()
        }),
        Err(Error::InvalidConfig(_))
    ));
    turn(&engine, "s", "hi").await;
    assert!(matches!(
        engine.set_model("s", Some("m")).await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        engine.fork_session("s", "t", None),
        Err(Error::Unsupported(_))
    ));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_command_run_without_asking_is_still_screened_by_the_waf() {
    let dir = TempDir::new("acp-term-waf");
    let engine = Engine::new(acp_options(&dir)).unwrap();
    let canary = dir.0.join("home/canary");
    std::fs::write(&canary, "alive").unwrap();
    // No permission request: the agent goes straight to terminal/create.
    let t = turn(&engine, "s", "term:rm -rf ~").await;
    assert!(t.text.starts_with("terminal error: "), "{}", t.text);
    assert!(
        !names(&t).contains(&"permission_request"),
        "{:?}",
        names(&t)
    );
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e, Event::DangerBlock { .. })),
        "{:?}",
        t.events
    );
    assert!(canary.exists(), "the canary survives");
    assert_eq!(engine.session_stats("s").unwrap().tools_denied, 1);
    let ok = turn(&engine, "s", "term:echo fine").await;
    assert_eq!(ok.text, "ran: echo fine\nexit: 0\nfine\n");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_reads_as_empty_for_gemini_cli_only() {
    let dir = TempDir::new("acp-gemini-missing");
    let mut opts = acp_options(&dir);
    opts.args
        .extend(["--name".to_string(), "gemini-cli".to_string()]);
    let engine = Engine::new(opts).unwrap();
    let w = workdir(&dir);
    let missing = w.join("new.txt");
    // Gemini CLI reads a file before creating it and gives up on the
    // spec's error (FACTS.md z.6): it gets an empty file instead.
    let t = turn(&engine, "s", &format!("read:{}", missing.display())).await;
    assert_eq!(t.text, "read: ");
    // Outside the workdir is still refused, whatever the agent.
    let t = turn(&engine, "s", &format!("read:{}", dir.0.join("x").display())).await;
    assert!(t.text.starts_with("read error: -32602"), "{}", t.text);
    engine.close().await;
}
