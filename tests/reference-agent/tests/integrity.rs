//! Turn integrity under a hostile agent: every answer reaches the turn that
//! asked for it, a turn's end that cannot be read fails the turn at once,
//! memory stays within the engine's budgets, and an agent that closes its
//! output is reported at once. The reference agent's hostile directives
//! (`after:`, `double:`, `late:`, `badutf8`, `surrogate`, `badresult`,
//! `bigline:`, `closeout`) print what a buggy or prompt-injected agent
//! could.

use std::time::{Duration, Instant};

use hotplex_core::{Engine, EngineOptions, Error, Event};

mod support;
use support::{options, turn, turn_opts, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sequential_turns_with_stray_and_late_output_all_get_their_own_answer() {
    let dir = TempDir::new("stray");
    let engine = Engine::new(options(&dir)).unwrap();
    for i in 0..500 {
        // Output after the result in the same write, a second result, and
        // a result printed 5 ms later (while the next turn runs).
        let prompt = match i % 3 {
            0 => format!("after:ok-{i}"),
            1 => format!("double:ok-{i}"),
            _ => format!("late:5:ok-{i}"),
        };
        let t = turn(&engine, "s", &prompt).await;
        assert_eq!(t.text, format!("ok-{i}"), "turn {i} ({prompt})");
        let stale = t.events.iter().any(|e| match e {
            Event::Answer { text } | Event::AnswerDelta { text } => text.contains("STALE"),
            _ => false,
        });
        assert!(!stale, "turn {i} received stray output: {:?}", t.events);
    }
    // Let the last late result arrive, then count.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = engine.session_stats("s").unwrap();
    assert_eq!(stats.turns, 500);
    assert_eq!(stats.cold_starts, 1);
    // after: 1 assistant line (the delta is not printed without partial
    // messages... it is: stream_event lines count too), double: 1, late: 1.
    assert!(
        stats.stray_lines >= 500,
        "stray lines: {}",
        stats.stray_lines
    );
    assert!(engine
        .metrics_text()
        .contains("hotplex_agent_stray_lines_total"));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_makes_up_its_own_message_uuids_is_still_correlated() {
    let dir = TempDir::new("ownuuid");
    let engine = Engine::new(EngineOptions {
        args: vec!["--own-message-uuids".into()],
        ..options(&dir)
    })
    .unwrap();
    for i in 0..60 {
        let prompt = match i % 3 {
            0 => format!("after:ok-{i}"),
            1 => format!("double:ok-{i}"),
            _ => format!("late:2:ok-{i}"),
        };
        assert_eq!(turn(&engine, "s", &prompt).await.text, format!("ok-{i}"));
    }
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_lone_surrogates_are_replaced_not_lost() {
    let dir = TempDir::new("utf8");
    let engine = Engine::new(options(&dir)).unwrap();
    let t = turn(&engine, "s", "badutf8").await;
    assert_eq!(t.text, "bad \u{fffd} bytes");
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, Event::Answer { text } if text == "bad \u{fffd}\u{fffd} bytes")));
    let t = turn(&engine, "s", "surrogate").await;
    assert_eq!(t.text, "cut \u{fffd} emoji");
    assert_eq!(engine.session_stats("s").unwrap().bad_lines, 0);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_result_fails_its_turn_at_once_and_the_session_goes_on() {
    let dir = TempDir::new("badresult");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "warm up").await;
    let t0 = Instant::now();
    let err = engine
        .execute("s", "badresult", &turn_opts(), |_| {})
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(&err, Error::TurnFailed { subtype, .. } if subtype == "unparsable_result"),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // The same process answers the next turn.
    let t = turn(&engine, "s", "after it").await;
    assert_eq!(t.text, "echo: after it");
    assert!(!t.cold_start);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_longer_than_max_line_bytes_fails_its_turn_with_a_typed_error() {
    let dir = TempDir::new("longresult");
    let engine = Engine::new(EngineOptions {
        max_line_bytes: 8192,
        ..options(&dir)
    })
    .unwrap();
    let prompt = "y".repeat(10_000);
    let err = engine
        .execute("s", &prompt, &turn_opts(), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TurnFailed { subtype, message } if subtype == "result_too_long" && message.contains("max_line_bytes")),
        "{err:?}"
    );
    // The assistant line before it was too long too.
    assert!(engine.session_stats("s").unwrap().bad_lines >= 2);
    let t = turn(&engine, "s", "short").await;
    assert_eq!(t.text, "echo: short");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_events_is_cut_at_the_turn_budget_with_a_counted_note() {
    let dir = TempDir::new("budget");
    let engine = Engine::new(EngineOptions {
        max_turn_events: 100,
        ..options(&dir)
    })
    .unwrap();
    let mut streamed = 0usize;
    let t = engine
        .execute("s", "flood:5000", &turn_opts(), |_| streamed += 1)
        .await
        .unwrap();
    assert_eq!(t.text, "echo: flood:5000");
    // 100 kept, the note, and the closing session_stats.
    assert_eq!(t.events.len(), 102, "{:?}", &t.events[95..]);
    assert_eq!(streamed, t.events.len());
    assert!(matches!(&t.events[100], Event::Error { message } if message.contains("event budget")));
    // session_start + 5000 floods + the answer = 5002 events; 101 were
    // kept or replaced by the note.
    assert_eq!(t.stats.events_dropped, 5002 - 100);
    let Some(Event::SessionStats(s)) = t.events.last() else {
        panic!("last event: {:?}", t.events.last())
    };
    assert_eq!(s.events_dropped, t.stats.events_dropped);
    // The next turn has a budget of its own.
    let t = turn(&engine, "s", "again").await;
    assert_eq!(t.stats.events_dropped, 0);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_closes_its_output_is_reported_and_killed_in_under_a_second() {
    let dir = TempDir::new("closeout");
    let engine = Engine::new(EngineOptions {
        // The ladder's default graces: the engine must not wait on them.
        kill_grace: EngineOptions::default().kill_grace,
        ..options(&dir)
    })
    .unwrap();
    let first = turn(&engine, "s", "hi").await;
    let t0 = Instant::now();
    let err = engine
        .execute("s", "closeout", &turn_opts(), |_| {})
        .await
        .unwrap_err();
    let took = t0.elapsed();
    let Error::SessionDead(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(
        msg.contains("closed its output") && msg.contains("killed by hotplex"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(!support::alive(first.pid), "the agent still runs");
    let t = turn(&engine, "s", "recall").await;
    assert!(t.cold_start && t.resumed);
    engine.close().await;
}
