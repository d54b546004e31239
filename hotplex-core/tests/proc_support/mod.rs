//! Shared helpers for the `proc_*` integration tests: fixture paths, unique
//! tags, and scanners for survivors and zombies. Real processes, no mocks.
#![allow(dead_code)]

use hotplex_core::proc::{supervisor_mode, ContainmentPreference, SpawnOptions, SupervisorLaunch};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Environment variable that marks every process a test starts.
pub const TAG_VAR: &str = "HOTPLEX_TEST_TAG";

/// Path of a fixture agent in `tests/fixtures/agents/` (repo root).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/agents")
        .join(name)
}

/// The supervisor launch modes the containment suites run under: exec (the
/// embedded program) and fork. On Linux the program must be there: a build
/// that silently lost it would otherwise test fork mode twice.
pub fn launches() -> Vec<SupervisorLaunch> {
    if std::env::var("HOTPLEX_SUPERVISOR").as_deref() == Ok("fork") {
        return vec![SupervisorLaunch::Fork];
    }
    assert_eq!(
        supervisor_mode(),
        SupervisorLaunch::Exec,
        "the supervisor program is not embedded or cannot run"
    );
    vec![SupervisorLaunch::Exec, SupervisorLaunch::Fork]
}

/// The environment that makes a re-executed host use `launch`.
pub fn launch_env(launch: SupervisorLaunch) -> (&'static str, &'static str) {
    match launch {
        SupervisorLaunch::Fork => ("HOTPLEX_SUPERVISOR", "fork"),
        _ => ("HOTPLEX_SUPERVISOR", "exec"),
    }
}

/// Re-runs this test binary as a separate host process that runs only the
/// ignored test `test_name`, with the tag, scratch directory, containment
/// preference and `extra` variables in its environment. Returns the child
/// and the lines of its stdout (the host announces readiness there).
pub fn spawn_host(
    test_name: &str,
    t: &Tagged,
    pref: ContainmentPreference,
    extra: &[(&str, &str)],
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("test binary path");
    let mode = if pref == ContainmentPreference::Subreaper {
        "subreaper"
    } else {
        "auto"
    };
    let mut host = std::process::Command::new(exe)
        .args([
            "--exact",
            test_name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(extra.iter().copied())
        .env("HOTPLEX_TEST_HOST_MODE", mode)
        .env(TAG_VAR, &t.tag)
        .env("HOTPLEX_TEST_DIR", &t.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn the host process");
    let stdout = host.stdout.take().expect("host stdout");
    (host, std::io::BufReader::new(stdout).lines())
}

/// A unique tag plus a scratch directory, removed on drop.
pub struct Tagged {
    pub tag: String,
    pub dir: PathBuf,
}

impl Tagged {
    pub fn new(label: &str) -> Tagged {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let tag = format!(
            "{label}-{}-{}-{nanos:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("hotplex-test-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        Tagged { tag, dir }
    }

    /// Spawn options for a fixture: tag and scratch dir in its environment,
    /// short grace periods.
    pub fn opts(&self, program: impl Into<PathBuf>, pref: ContainmentPreference) -> SpawnOptions {
        SpawnOptions::new(program)
            .env(TAG_VAR, &self.tag)
            .env("HOTPLEX_TEST_DIR", &self.dir)
            .grace(Duration::from_millis(200), Duration::from_millis(300))
            .containment(pref)
    }

    /// [`opts`](Self::opts) with the supervisor started by `launch`.
    pub fn opts_launch(
        &self,
        program: impl Into<PathBuf>,
        pref: ContainmentPreference,
        launch: SupervisorLaunch,
    ) -> SpawnOptions {
        self.opts(program, pref).supervisor(launch)
    }

    /// Live processes carrying this tag.
    pub fn survivors(&self) -> Vec<i32> {
        tagged(&self.tag)
    }

    /// Polls until no tagged process is left or `bound` passes. Returns
    /// the survivors (empty on success) and the time it took.
    pub fn wait_gone(&self, bound: Duration) -> (Vec<i32>, Duration) {
        let t0 = Instant::now();
        loop {
            let s = self.survivors();
            if s.is_empty() || t0.elapsed() > bound {
                return (s, t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reads a pid file the fixture wrote into the scratch dir.
    pub fn pid_file(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Pids of live processes whose environment contains `HOTPLEX_TEST_TAG=tag`.
/// (Zombies have no readable environment and are counted separately.)
pub fn tagged(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG_VAR}={tag}").into_bytes();
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|&b| b == 0).any(|kv| kv == needle.as_slice()) {
                out.push(pid);
            }
        }
    }
    out
}

/// `(state, ppid, pgrp, session)` from `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Option<(char, i32, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f[0].chars().next()?,
        f[1].parse().ok()?,
        f[2].parse().ok()?,
        f[3].parse().ok()?,
    ))
}

/// Children of this process that are zombies.
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((state, ppid, _, _)) = stat(pid) {
            if ppid == me && state == 'Z' {
                out.push(pid);
            }
        }
    }
    out
}

/// True while `pid` is our unreaped child (alive or zombie).
pub fn is_our_child(pid: i32) -> bool {
    matches!(stat(pid), Some((_, ppid, _, _)) if ppid == std::process::id() as i32)
}

/// Open descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Reads lines until one equals `want` (within 20 s).
pub async fn expect_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>, want: &str) {
    let fut = async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = r.read_line(&mut line).await.unwrap();
            assert!(n > 0, "EOF before {want:?}");
            if line.trim() == want {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {want:?}"));
}
