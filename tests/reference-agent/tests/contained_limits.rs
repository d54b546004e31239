//! The engine's own resource limits (`EngineOptions.limits`) on a contained
//! session: a fork bomb inside an agent is capped by the session's process
//! limit while another session keeps answering, and nothing is left after.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotplex_core::contract::SessionLimits;
use hotplex_core::proc::{detect_mode, ContainmentMode};
use hotplex_core::Engine;

mod support;
use support::{options, turn, TempDir, AGENT};

const TAG_VAR: &str = "HOTPLEX_TEST_TAG";

/// Live (non-zombie) processes whose environment carries `TAG_VAR=tag`.
fn tagged(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG_VAR}={tag}").into_bytes();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|&b| b == 0).any(|kv| kv == needle.as_slice()) {
                out.push(pid);
            }
        }
    }
    out
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/agents")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_is_capped_by_the_session_process_limit_and_the_host_stays_responsive() {
    if detect_mode() != ContainmentMode::Cgroup {
        eprintln!("skipped: no per-session cgroup on this system (the limit is best effort)");
        return;
    }
    const LIMIT: u64 = 48;
    let dir = TempDir::new("bomb");
    let tag = format!("bomb-{}", std::process::id());
    let mut opts = options(&dir);
    opts.binary = fixture("fork_bomb_agent.sh");
    opts.env.extend([
        (TAG_VAR.into(), tag.clone()),
        ("HOTPLEX_TEST_DIR".into(), dir.0.to_string_lossy().into()),
        ("HOTPLEX_TEST_AGENT".into(), AGENT.into()),
    ]);
    opts.limits = SessionLimits {
        max_processes: Some(LIMIT),
        ..SessionLimits::default()
    };
    let bombs = Engine::new(opts).unwrap();
    let calm = Engine::new(options(&dir)).unwrap();

    // The bombing session answers its first turn, then the bomb runs.
    let t = turn(&bombs, "bomb", "hello").await;
    assert_eq!(t.text, "echo: hello");
    let t0 = Instant::now();
    while !dir.0.join("bomb.pid").exists() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let it push against the limit; meanwhile the other session answers.
    let mut peak = 0;
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let t = Instant::now();
        let r = turn(&calm, "calm", &format!("still there {i}")).await;
        worst = worst.max(t.elapsed());
        assert_eq!(r.text, format!("echo: still there {i}"));
        peak = peak.max(tagged(&tag).len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("fork bomb: at most {peak} processes (limit {LIMIT}); slowest other turn {worst:?}");
    // The supervisor is outside the limit (and tagged through the agent's
    // environment in exec mode): at most one more than the limit.
    assert!(
        peak as u64 <= LIMIT + 1,
        "{peak} processes with a limit of {LIMIT}"
    );
    assert!(peak >= 10, "the bomb did start ({peak} processes)");
    assert!(
        worst < Duration::from_secs(2),
        "the host stayed responsive: {worst:?}"
    );

    bombs.close().await;
    calm.close().await;
    let t0 = Instant::now();
    while !tagged(&tag).is_empty() && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        tagged(&tag),
        Vec::<i32>::new(),
        "the tree is gone after close"
    );
}
