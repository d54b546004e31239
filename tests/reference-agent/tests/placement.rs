//! Placement across hosts (`EngineOptions.placement`): engines standing in
//! for hosts share one store directory; each has its own configuration
//! directory and workdir path, as separate machines would, and the
//! reference agent keeps CLI-style transcripts there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotplex_core::contract::PlacementOptions;
use hotplex_core::placement::{DirStore, LeaseStore};
use hotplex_core::{Engine, EngineOptions, Error};

mod support;
use support::{turn, TempDir, AGENT};

/// One "host": its own config directory and workdir, the shared store.
fn host(root: &TempDir, name: &str, ttl: Duration) -> EngineOptions {
    let config = root.0.join(name).join("config");
    let work = root.0.join(name).join("work dir");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    EngineOptions {
        binary: AGENT.into(),
        env: vec![(
            "CLAUDE_CONFIG_DIR".into(),
            config.to_string_lossy().into_owned(),
        )],
        turn_timeout: Duration::from_secs(20),
        startup_timeout: Duration::from_secs(20),
        kill_grace: (Duration::from_millis(200), Duration::from_millis(200)),
        default_workdir: Some(work),
        state_dir: Some(root.0.join(name).join("state")),
        placement: Some(PlacementOptions {
            owner: name.into(),
            store: root.0.join("store"),
            lease_ttl: ttl,
        }),
        ..EngineOptions::default()
    }
}

fn owner_of(e: Result<hotplex_core::Turn, Error>) -> String {
    match e {
        Err(Error::OwnedElsewhere { owner, .. }) => owner,
        other => panic!("expected OwnedElsewhere, got {:?}", other.map(|t| t.text)),
    }
}

async fn try_turn(engine: &Engine, id: &str, prompt: &str) -> Result<hotplex_core::Turn, Error> {
    engine
        .execute(id, prompt, &Default::default(), |_| {})
        .await
}

const TTL: Duration = Duration::from_secs(10);

/// Session `id`'s owner "froze": its lease is made to lapse behind its back
/// (as if it had not renewed for a TTL), and `taker` adopts the session.
/// Returns the shared store and the frozen owner's lease.
fn take_over_from_a_frozen_owner(
    root: &TempDir,
    taker: &Engine,
    id: &str,
) -> (DirStore, hotplex_core::placement::Lease) {
    let store = DirStore::new(root.0.join("store")).unwrap();
    let held = store.holder(id).unwrap().unwrap();
    store.renew(&held, Duration::ZERO).unwrap();
    taker.adopt(id, None).unwrap();
    (store, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_session_continues_on_another_host_with_its_history() {
    let root = TempDir::new("placement-move");
    let a = Engine::new(host(&root, "host-a", TTL)).unwrap();
    let b = Engine::new(host(&root, "host-b", TTL)).unwrap();
    turn(&a, "s1", "apples").await;
    turn(&a, "s1", "pears").await;
    assert!(a.owns("s1").unwrap());
    assert!(!b.owns("s1").unwrap());
    assert_eq!(owner_of(try_turn(&b, "s1", "steal").await), "host-a");

    assert!(a.release("s1").await.unwrap());
    assert!(!a.owns("s1").unwrap());
    assert!(a.sessions().is_empty(), "its process is gone");
    let moved = turn(&b, "s1", "recall").await;
    assert!(
        moved.resumed,
        "the conversation was taken up, not started anew"
    );
    assert_eq!(moved.text, "history: apples | pears");
    assert!(b.owns("s1").unwrap());
    assert_eq!(owner_of(try_turn(&a, "s1", "back").await), "host-b");
    // The transcript in the store holds each turn once.
    let again = turn(&b, "s1", "recall").await;
    assert_eq!(again.text, "history: apples | pears | recall");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_lease_lapsed_loses_the_session_and_its_late_writes_are_fenced() {
    let root = TempDir::new("placement-fence");
    let ttl = Duration::from_millis(600);
    let a = Engine::new(host(&root, "host-a", ttl)).unwrap();
    let b = Engine::new(host(&root, "host-b", ttl)).unwrap();
    let first = turn(&a, "s", "one").await;
    // Host a "freezes" and host b takes the session over.
    let (store, held) = take_over_from_a_frozen_owner(&root, &b, "s");
    let on_b = turn(&b, "s", "recall").await;
    assert_eq!(on_b.text, "history: one");
    // Host a notices at its next renewal: its process is killed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::alive(first.pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !support::alive(first.pid),
        "the old owner's agent was killed"
    );
    assert!(!a.owns("s").unwrap());
    assert_eq!(owner_of(try_turn(&a, "s", "late").await), "host-b");
    // A save under the old epoch is rejected; the store keeps b's turn.
    let late = hotplex_core::placement::Transcript {
        main: b"stale\n".to_vec(),
        subagents: Vec::new(),
    };
    assert!(matches!(
        hotplex_core::placement::TranscriptStore::save(&store, "s", held.epoch, &late),
        Err(Error::Fenced(_))
    ));
    assert_eq!(turn(&b, "s", "recall").await.text, "history: one | recall");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_ends_after_a_takeover_fails_as_fenced_and_its_process_is_killed() {
    let root = TempDir::new("placement-fence-turn");
    // A long TTL: the renewer does not run during the test, so the check
    // before the answer goes out is what notices.
    let ttl = Duration::from_secs(60);
    let a = Engine::new(host(&root, "host-a", ttl)).unwrap();
    let b = Engine::new(host(&root, "host-b", ttl)).unwrap();
    let first = turn(&a, "s", "one").await;
    let running = {
        let a = a.clone();
        tokio::spawn(async move { try_turn(&a, "s", "stall:1500").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Host a "froze" mid-turn past its TTL; host b took the session over.
    take_over_from_a_frozen_owner(&root, &b, "s");
    match running.await.unwrap() {
        Err(Error::Fenced(_)) => {}
        other => panic!("expected Fenced, got {:?}", other.map(|t| t.text)),
    }
    assert!(
        !support::alive(first.pid),
        "the old owner's agent was killed"
    );
    assert!(!a.owns("s").unwrap());
    // The answer host a never gave is not in the conversation host b has.
    assert_eq!(turn(&b, "s", "recall").await.text, "history: one");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_engine_frees_its_sessions_for_other_hosts_at_once() {
    let root = TempDir::new("placement-close");
    let a = Engine::new(host(&root, "host-a", TTL)).unwrap();
    let b = Engine::new(host(&root, "host-b", TTL)).unwrap();
    turn(&a, "c", "kept").await;
    a.close().await;
    // No wait for the TTL: the lease was released with the close.
    let t = turn(&b, "c", "recall").await;
    assert_eq!((t.text.as_str(), t.resumed), ("history: kept", true));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_finishes_running_turns_and_hands_every_session_over() {
    let root = TempDir::new("placement-drain");
    let a = Engine::new(host(&root, "host-a", TTL)).unwrap();
    let b = Engine::new(host(&root, "host-b", TTL)).unwrap();
    for i in 0..3 {
        turn(&a, &format!("d{i}"), &format!("hello {i}")).await;
    }
    let running = a.submit("d0", "stall:400", &Default::default()).unwrap();
    let load = a.load();
    assert_eq!((load.sessions, load.busy + load.queued >= 1), (3, true));
    assert!(load.agent_memory_bytes > 0);
    let released = a.drain(Duration::from_secs(10)).await.unwrap();
    assert_eq!(released, ["d0", "d1", "d2"]);
    assert_eq!(
        running.finish().await.unwrap().text,
        "stalled 400 ms",
        "no turn lost"
    );
    assert!(a.load().draining);
    assert!(matches!(
        try_turn(&a, "new", "x").await,
        Err(Error::CapacityExceeded(_))
    ));
    for i in 0..3 {
        let t = turn(&b, &format!("d{i}"), "recall").await;
        let want = if i == 0 {
            "history: hello 0 | stall:400".to_string()
        } else {
            format!("history: hello {i}")
        };
        assert_eq!(t.text, want);
        assert!(t.resumed);
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_calls_need_placement_and_a_bad_owner_is_refused() {
    let root = TempDir::new("placement-plain");
    let plain = EngineOptions {
        binary: AGENT.into(),
        default_workdir: Some(root.0.clone()),
        ..EngineOptions::default()
    };
    let e = Engine::new(plain).unwrap();
    assert!(
        e.owns("anything").unwrap(),
        "without placement every session is local"
    );
    assert!(matches!(e.adopt("s", None), Err(Error::InvalidConfig(_))));
    assert!(matches!(e.release("s").await, Err(Error::InvalidConfig(_))));
    e.close().await;
    let mut bad = host(&root, "x", TTL);
    bad.placement.as_mut().unwrap().owner = "two words".into();
    assert!(matches!(Engine::new(bad), Err(Error::InvalidConfig(_))));
    let _ = PathBuf::new();
}

/// The `redis-server` helper of hotplex-core's store tests.
#[path = "../../../hotplex-core/tests/redis_server/mod.rs"]
mod redis_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_hosts_through_a_redis_store() {
    let root = TempDir::new("placement-redis");
    let Some(redis) = redis_server::Server::start() else {
        return;
    };
    let url = redis.url();
    let on_redis = |name: &str| {
        let mut o = host(&root, name, TTL);
        o.placement.as_mut().unwrap().store = PathBuf::from(&url);
        o
    };
    let a = Engine::new(on_redis("host-a")).unwrap();
    let b = Engine::new(on_redis("host-b")).unwrap();
    turn(&a, "s1", "apples").await;
    turn(&a, "s1", "pears").await;
    assert!(a.owns("s1").unwrap());
    assert_eq!(owner_of(try_turn(&b, "s1", "steal").await), "host-a");
    assert!(
        !root.0.join("store").exists(),
        "nothing went to a directory"
    );

    assert!(a.release("s1").await.unwrap());
    let moved = turn(&b, "s1", "recall").await;
    assert!(moved.resumed);
    assert_eq!(moved.text, "history: apples | pears");
    assert_eq!(owner_of(try_turn(&a, "s1", "back").await), "host-b");
    let again = turn(&b, "s1", "recall").await;
    assert_eq!(again.text, "history: apples | pears | recall");
    // The store holds the lease and the transcript, as another host sees them.
    let store = hotplex_core::placement::RedisStore::new(&url).unwrap();
    let lease = store.holder("s1").unwrap().unwrap();
    assert_eq!((lease.owner.as_str(), lease.epoch), ("host-b", 2));
    a.close().await;
    b.close().await;
    // A Redis store that cannot be reached stops the engine at its start.
    drop(redis);
    assert!(matches!(
        Engine::new(on_redis("host-c")),
        Err(Error::InvalidConfig(_))
    ));
}
