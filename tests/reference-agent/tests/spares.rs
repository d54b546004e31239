//! Spare processes (`EngineOptions::prewarm`, `Engine::prewarm`) with the
//! reference agent: which sessions take a spare, what the spare's process
//! then does, and how spares are refilled, replaced, made way for and
//! stopped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotplex_core::contract::SessionOptions;
use hotplex_core::{Engine, EngineOptions, PrewarmProfile, TurnOptions};

mod support;
use support::{alive, options, turn, turn_opts, TempDir};

/// One profile of `n` spares in the engine's default workdir.
fn spares(n: usize) -> PrewarmProfile {
    PrewarmProfile {
        spares: n,
        ..PrewarmProfile::default()
    }
}

/// Waits (at most 10 s) until exactly `n` spares exist and have done their
/// start work; returns their pids.
async fn ready_spares(engine: &Engine, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = engine.spares();
        if s.len() == n && s.iter().all(|s| s.ready && s.pid.is_some()) {
            return s.iter().filter_map(|s| s.pid).collect();
        }
        assert!(
            Instant::now() < deadline,
            "wanted {n} ready spares, have {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(engine: &Engine, name: &str) -> f64 {
    engine
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn with_model(model: &str) -> TurnOptions {
    TurnOptions {
        session: Some(SessionOptions {
            model: Some(model.into()),
            ..SessionOptions::default()
        }),
        ..TurnOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_conversation_takes_a_ready_spare_whose_process_answers_its_first_turn() {
    let dir = TempDir::new("claim");
    let state = dir.0.join("state");
    let engine = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        state_dir: Some(state.clone()),
        ..options(&dir)
    })
    .unwrap();
    let spare = ready_spares(&engine, 1).await[0];
    let t = turn(&engine, "a", "hello").await;
    assert_eq!(t.pid, spare, "the first turn went to the spare's process");
    assert!(!t.cold_start, "no process was started for it");
    assert_eq!(t.text, "echo: hello");
    assert_eq!(engine.session_stats("a").unwrap().cold_starts, 1);
    assert_eq!(metric(&engine, "hotplex_spare_claims_total"), 1.0);
    // A new spare replaces the one taken.
    let next = ready_spares(&engine, 1).await[0];
    assert_ne!(next, spare);
    assert_eq!(metric(&engine, "hotplex_spares{status=\"ready\"}"), 1.0);
    // The conversation lives under the spare's provider id, recorded for
    // later resumes: in this engine and in the next one.
    let psid = t.provider_session_id.clone();
    assert!(engine.stop_session("a").await);
    let back = turn(&engine, "a", "recall").await;
    assert!(back.cold_start && back.resumed, "resumed: {back:?}");
    assert_eq!(back.text, "history: hello");
    assert_eq!(back.provider_session_id, psid);
    engine.close().await;
    let again = Engine::new(EngineOptions {
        state_dir: Some(state),
        ..options(&dir)
    })
    .unwrap();
    let later = turn(&again, "a", "recall").await;
    assert!(
        later.resumed,
        "a new engine resumes the claimed conversation"
    );
    assert_eq!(later.text, "history: hello | recall");
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_still_warming_up_is_not_taken_and_stays_for_the_next_session() {
    let dir = TempDir::new("starting");
    let engine = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        args: vec!["--startup-delay-ms".into(), "600".into()],
        ..options(&dir)
    })
    .unwrap();
    // The process is up, its warm-up not done.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = engine.spares().first().and_then(|s| s.pid) {
            break pid;
        }
        assert!(Instant::now() < deadline, "no spare process");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(!engine.spares()[0].ready);
    let t = turn(&engine, "a", "hi").await;
    assert!(t.cold_start && t.pid != pid, "a cold start instead");
    assert_eq!(metric(&engine, "hotplex_spare_misses_total"), 1.0);
    assert_eq!(ready_spares(&engine, 1).await, [pid]);
    let b = turn(&engine, "b", "recall").await;
    assert_eq!(b.pid, pid);
    assert_eq!(
        b.text, "history: ",
        "the warm-up is not in the conversation"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_with_other_options_or_another_workdir_never_take_a_spare() {
    let dir = TempDir::new("mismatch");
    let engine = Engine::new(EngineOptions {
        prewarm: vec![PrewarmProfile {
            spares: 1,
            session: Some(SessionOptions {
                model: Some("m1".into()),
                ..SessionOptions::default()
            }),
            ..PrewarmProfile::default()
        }],
        ..options(&dir)
    })
    .unwrap();
    let spare = ready_spares(&engine, 1).await[0];
    let plain = turn(&engine, "plain", "hi").await;
    assert!(plain.cold_start && plain.pid != spare, "no options: cold");
    let other = engine
        .execute("other", "hi", &with_model("m2"), |_| {})
        .await
        .unwrap();
    assert!(
        other.cold_start && other.pid != spare,
        "another model: cold"
    );
    let elsewhere = TurnOptions {
        workdir: Some(dir.0.join("elsewhere")),
        ..with_model("m1")
    };
    let moved = engine
        .execute("moved", "hi", &elsewhere, |_| {})
        .await
        .unwrap();
    assert!(
        moved.cold_start && moved.pid != spare,
        "another workdir: cold"
    );
    assert_eq!(
        ready_spares(&engine, 1).await,
        [spare],
        "the spare waits on"
    );
    assert_eq!(metric(&engine, "hotplex_spare_misses_total"), 0.0);
    let same = engine
        .execute("same", "model?", &with_model("m1"), |_| {})
        .await
        .unwrap();
    assert_eq!(same.pid, spare, "the profile's options take it");
    assert_eq!(same.text, "model: m1");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_forked_and_reset_sessions_never_take_a_spare() {
    let dir = TempDir::new("resume");
    let engine = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        ..options(&dir)
    })
    .unwrap();
    ready_spares(&engine, 1).await;
    turn(&engine, "a", "one").await;
    let spare = ready_spares(&engine, 1).await[0];
    assert!(engine.stop_session("a").await);
    let resumed = turn(&engine, "a", "recall").await;
    assert!(resumed.resumed && resumed.pid != spare);
    assert_eq!(resumed.text, "history: one");
    engine.fork_session("a", "b", None).unwrap();
    let forked = turn(&engine, "b", "recall").await;
    assert!(forked.pid != spare, "a fork copies its conversation");
    assert_eq!(forked.text, "history: one | recall");
    engine.reset_session("c", false).await.unwrap();
    let reset = turn(&engine, "c", "hi").await;
    assert!(
        reset.cold_start && reset.pid != spare,
        "a reset names its own id"
    );
    assert_eq!(ready_spares(&engine, 1).await, [spare]);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spares_take_session_slots_and_make_way_for_new_sessions() {
    let dir = TempDir::new("capacity");
    let engine = Engine::new(EngineOptions {
        max_sessions: 2,
        prewarm: vec![PrewarmProfile {
            spares: 2,
            session: Some(SessionOptions {
                model: Some("spare-only".into()),
                ..SessionOptions::default()
            }),
            ..PrewarmProfile::default()
        }],
        ..options(&dir)
    })
    .unwrap();
    let pids = ready_spares(&engine, 2).await;
    let a = turn(&engine, "a", "hi").await;
    assert_eq!(engine.spares().len(), 1, "a session took a spare's slot");
    assert!(pids.iter().filter(|p| alive(**p)).count() == 1);
    turn(&engine, "b", "hi").await;
    assert!(engine.spares().is_empty());
    assert!(pids.iter().all(|p| !alive(*p)), "both spares were stopped");
    // No slot, no spare; a slot that frees up gets one again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(engine.spares().is_empty());
    assert!(engine.stop_session("a").await);
    assert!(!alive(a.pid));
    ready_spares(&engine, 1).await;
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_that_dies_is_replaced_and_a_broken_agent_is_retried_ever_more_slowly() {
    let dir = TempDir::new("dies");
    let engine = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        ..options(&dir)
    })
    .unwrap();
    let pid = ready_spares(&engine, 1).await[0];
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let next = loop {
        let now = ready_spares(&engine, 1).await[0];
        if now != pid {
            break now;
        }
        assert!(Instant::now() < deadline, "the dead spare was not replaced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(alive(next));
    engine.close().await;
    assert!(!alive(next));

    // An agent that exits at once: spares keep dying, and are restarted
    // after 0.5, 1, 2, 4 s ...
    let broken = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        args: vec!["--exit-at-start".into()],
        ..options(&dir)
    })
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let starts = metric(&broken, "hotplex_session_starts_total{mode=\"fresh\"}");
    assert!((2.0..=4.0).contains(&starts), "{starts} starts in 2.5 s");
    // Sessions still work around it (cold, and failing here: same agent).
    assert!(broken
        .execute("s", "hi", &turn_opts(), |_| {})
        .await
        .is_err());
    broken.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_at_run_time_adds_changes_and_removes_spares_and_close_stops_them() {
    let dir = TempDir::new("runtime");
    let engine = Engine::new(options(&dir)).unwrap();
    assert!(engine.spares().is_empty());
    let work: PathBuf = dir.0.join("runtime-work");
    let profile = |n| PrewarmProfile {
        spares: n,
        workdir: Some(work.clone()),
        session: None,
    };
    engine.prewarm(profile(2)).unwrap();
    let two = ready_spares(&engine, 2).await;
    assert!(engine
        .spares()
        .iter()
        .all(|s| s.workdir == work.canonicalize().unwrap()));
    engine.prewarm(profile(1)).unwrap();
    let one = ready_spares(&engine, 1).await;
    assert!(two.contains(&one[0]));
    engine.prewarm(profile(0)).unwrap();
    ready_spares(&engine, 0).await;
    engine.prewarm(profile(3)).unwrap();
    let three = ready_spares(&engine, 3).await;
    let bad = PrewarmProfile {
        session: Some(SessionOptions {
            max_turns: Some(0),
            ..SessionOptions::default()
        }),
        ..spares(1)
    };
    assert!(engine.prewarm(bad).is_err());
    engine.close().await;
    assert!(
        two.iter().chain(&three).all(|p| !alive(*p)),
        "a spare outlived close()"
    );
    assert!(engine.spares().is_empty());
    assert!(engine.prewarm(profile(1)).is_err(), "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_spare_serves_host_tools_and_its_tool_calls_meet_the_waf() {
    use hotplex_core::contract::{ToolHandler, ToolServer, ToolSpec};
    let dir = TempDir::new("tools");
    let handler: ToolHandler =
        std::sync::Arc::new(|call: &hotplex_core::contract::ToolInvocation<'_>| {
            Ok(serde_json::json!(format!(
                "sunny in {}",
                call.arguments["city"].as_str().unwrap_or("?")
            )))
        });
    let engine = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        tools: vec![ToolServer {
            name: "host".into(),
            version: None,
            tools: vec![ToolSpec {
                name: "get_weather".into(),
                description: "The weather in a city".into(),
                input_schema: serde_json::json!({"type": "object"}),
            }],
        }],
        tool_handler: Some(handler),
        ..options(&dir)
    })
    .unwrap();
    let spare = ready_spares(&engine, 1).await[0];
    let t = turn(&engine, "s", r#"mcp:host/get_weather {"city": "Oslo"}"#).await;
    assert_eq!(t.pid, spare);
    assert_eq!(t.text, "tool said: sunny in Oslo");
    let blocked = turn(&engine, "s", "tool:rm -rf /").await;
    assert!(blocked
        .events
        .iter()
        .any(|e| matches!(e, hotplex_core::Event::DangerBlock { .. })));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_answers_the_warm_up_gets_spares_without_one() {
    let dir = TempDir::new("noblock");
    let engine = Engine::new(EngineOptions {
        prewarm: vec![spares(1)],
        args: vec!["--ignore-prompt-blocks".into()],
        ..options(&dir)
    })
    .unwrap();
    // The first spare answered its warm-up and was stopped; its
    // replacement starts without one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&engine, "hotplex_session_starts_total{mode=\"fresh\"}") < 2.0 {
        assert!(Instant::now() < deadline, "the spare was not replaced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spare = ready_spares(&engine, 1).await[0];
    let t = turn(&engine, "a", "recall").await;
    assert_eq!(t.pid, spare);
    assert_eq!(t.text, "history: ", "no warm-up in the conversation");
    engine.close().await;
}
