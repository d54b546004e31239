//! Helpers shared by the engine tests that drive the reference agent.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::time::Duration;

use hotplex_core::{Engine, EngineOptions, TurnOptions};

pub const AGENT: &str = env!("CARGO_BIN_EXE_hotplex-reference-agent");

/// A private temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "hotplex-pool-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options for the reference agent with short timeouts; transcripts in `state`.
pub fn options(state: &TempDir) -> EngineOptions {
    EngineOptions {
        binary: AGENT.into(),
        env: vec![(
            "HOTPLEX_REF_STATE".into(),
            state.0.to_string_lossy().into_owned(),
        )],
        turn_timeout: Duration::from_secs(20),
        startup_timeout: Duration::from_secs(20),
        interrupt_grace: Duration::from_secs(2),
        kill_grace: (Duration::from_millis(200), Duration::from_millis(200)),
        default_workdir: Some(state.0.join("work")),
        ..EngineOptions::default()
    }
}

pub fn turn_opts() -> TurnOptions {
    TurnOptions::default()
}

pub fn timeout_ms(ms: u64) -> TurnOptions {
    TurnOptions {
        timeout: Some(Duration::from_millis(ms)),
        ..TurnOptions::default()
    }
}

/// Runs a turn that must succeed.
pub async fn turn(engine: &Engine, id: &str, prompt: &str) -> hotplex_core::Turn {
    engine
        .execute(id, prompt, &turn_opts(), |_| {})
        .await
        .unwrap_or_else(|e| panic!("turn {prompt:?} on {id:?}: {e}"))
}

pub fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}
