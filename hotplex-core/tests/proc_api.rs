//! The `proc` API: environment allow-list, rlimits, stdio, errors, the
//! ladder stages, the startup sweep after a host AND its supervisor died.
#![cfg(target_os = "linux")]

mod proc_support;

use hotplex_core::proc::{
    detect_mode, supervisor_mode, sweep_stale, Contained, ContainmentMode, ContainmentPreference,
    LadderStage, Rlimits, SpawnOptions, StdioMode,
};
use hotplex_core::Error;
use proc_support::*;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn output_of(opts: SpawnOptions) -> String {
    let mut c = Contained::spawn(opts).await.unwrap();
    let mut out = String::new();
    c.take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    c.wait().await.unwrap();
    c.kill().await.unwrap();
    out
}

#[tokio::test]
async fn reports_mode() {
    let m = detect_mode();
    eprintln!("containment mode on this system: {m}");
    assert!(matches!(
        m,
        ContainmentMode::Cgroup | ContainmentMode::Subreaper
    ));
    let t = Tagged::new("mode");
    let mut c = Contained::spawn(t.opts("sleep", ContainmentPreference::Auto).arg("1000"))
        .await
        .unwrap();
    assert_eq!(c.mode(), m);
    assert_eq!(c.supervisor_launch(), supervisor_mode());
    eprintln!("supervisor launch on this system: {}", supervisor_mode());
    assert!(c.pid() > 1 && c.supervisor_pid() > 1);
    let r = c.kill_now().await.unwrap();
    assert_eq!(r.stage, LadderStage::Kill);
    assert!(t.survivors().is_empty());
}

#[tokio::test]
async fn environment_is_allow_listed() {
    // A host secret and an unlisted variable must not reach the agent.
    std::env::set_var("ANTHROPIC_API_KEY", "sk-host-secret");
    std::env::set_var("HOTPLEX_TEST_UNLISTED", "x");
    std::env::set_var("LC_HOTPLEX_TEST", "lc");
    let out = output_of(SpawnOptions::new("env").env("EXTRA_ONE", "1")).await;
    assert!(!out.contains("sk-host-secret"), "{out}");
    assert!(!out.contains("HOTPLEX_TEST_UNLISTED"), "{out}");
    assert!(out.contains("LC_HOTPLEX_TEST=lc"), "LC_* passes: {out}");
    assert!(out.contains("EXTRA_ONE=1"));
    assert!(out.contains("HOTPLEX_SESSION_ID="));
    if std::env::var_os("PATH").is_some() {
        assert!(out.lines().any(|l| l.starts_with("PATH=")));
    }
    // Explicitly asked for: passes.
    let out = output_of(SpawnOptions::new("env").allow_env("ANTHROPIC_API_KEY")).await;
    assert!(out.contains("ANTHROPIC_API_KEY=sk-host-secret"));
    let out = output_of(SpawnOptions::new("env").inherit_env(true)).await;
    assert!(out.contains("HOTPLEX_TEST_UNLISTED=x"));
}

#[tokio::test]
async fn rlimits_and_cwd_apply() {
    let opts = SpawnOptions::new("sh")
        .args(["-c", "ulimit -n; ulimit -t; pwd"])
        .cwd("/tmp")
        .rlimits(Rlimits::new().open_files(64).cpu_seconds(100));
    let out = output_of(opts).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["64", "100", "/tmp"]);
}

#[tokio::test]
async fn spawn_errors() {
    let e = Contained::spawn(SpawnOptions::new("/nonexistent/agent"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Spawn(_)), "{e}");
    let e = Contained::spawn(SpawnOptions::new("no-such-program-hotplex"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Spawn(_)), "{e}");
    let e = Contained::spawn(SpawnOptions::new("sh").cwd("/nonexistent-dir-hotplex"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("working directory"), "{e}");
    let e = Contained::spawn(SpawnOptions::new("sh").arg("a\0b"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[tokio::test]
async fn stdio_roundtrip_and_eof_stage() {
    let mut c = Contained::spawn(SpawnOptions::new("cat")).await.unwrap();
    let mut stdin = c.take_stdin().unwrap();
    let mut out = BufReader::new(c.take_stdout().unwrap());
    stdin.write_all(b"hello hotplex\n").await.unwrap();
    let mut line = String::new();
    out.read_line(&mut line).await.unwrap();
    assert_eq!(line, "hello hotplex\n");
    drop(stdin);
    // cat exits on EOF: the ladder stops at its first step at the latest
    // (`None` when cat was already gone before the kill request arrived).
    let r = c.kill().await.unwrap();
    assert!(
        matches!(r.stage, LadderStage::Eof | LadderStage::None),
        "{r:?}"
    );
    assert_eq!((r.terminated, r.killed), (0, 0));
    assert_eq!(r.exit_status.unwrap().code(), Some(0));
}

#[tokio::test]
async fn term_stage_and_null_stdio() {
    let t = Tagged::new("term");
    let opts = t
        .opts("sleep", ContainmentPreference::Auto)
        .arg("1000")
        .stdio(StdioMode::Null, StdioMode::Null, StdioMode::Null)
        .grace(Duration::ZERO, Duration::from_secs(5));
    let mut c = Contained::spawn(opts).await.unwrap();
    assert!(c.take_stdout().is_none());
    let r = c.kill().await.unwrap();
    assert_eq!(r.stage, LadderStage::Term, "{r:?}");
    assert_eq!(r.terminated, 1);
    assert!(t.survivors().is_empty());
}

#[tokio::test]
async fn leader_exit_cleans_leftovers() {
    // The agent starts a background daemon and exits: the supervisor cleans
    // up what it left as soon as it exits.
    let t = Tagged::new("leader");
    let opts = t.opts("sh", ContainmentPreference::Auto).args([
        "-c",
        "setsid sleep 1000 </dev/null >/dev/null 2>&1 & exit 7",
    ]);
    let mut c = Contained::spawn(opts).await.unwrap();
    assert_eq!(c.wait().await.unwrap().code(), Some(7));
    let (left, _) = t.wait_gone(Duration::from_secs(10));
    assert!(left.is_empty());
    c.kill().await.unwrap();
}

/// A host AND its supervisor are SIGKILLed at once (what an OOM kill of the
/// whole host cgroup could do): the lifeline cannot help, the orphaned
/// setsid daemon survives, and the next host's sweep must kill it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_kills_leftovers_of_a_dead_host() {
    for (launch, pref) in launches().into_iter().flat_map(|l| {
        [
            (l, ContainmentPreference::Auto),
            (l, ContainmentPreference::Subreaper),
        ]
    }) {
        let t = Tagged::new("sweep");
        let state = t.dir.join("state");
        let (mut host, mut lines) = spawn_host(
            "sweep_host_process",
            &t,
            pref,
            &[("HOTPLEX_TEST_SWEEP_HOST", "1"), launch_env(launch)],
        );
        let sup: i32 = loop {
            let l = lines.next().expect("host output").unwrap();
            if let Some(rest) = l.split("SWEEP-READY ").nth(1) {
                break rest.trim().parse().unwrap();
            }
        };
        let daemon = t.pid_file("daemon.pid");
        // SIGKILL supervisor and host together.
        unsafe_kill(sup);
        host.kill().unwrap();
        host.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Without the supervisor nobody is left to clean up; in subreaper
        // mode the daemon is orphaned for good (cgroup mode: still contained
        // in the cgroup, also alive).
        assert!(t.survivors().contains(&daemon), "daemon outlived its host");
        let report = tokio::task::spawn_blocking(move || sweep_stale(&state))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.stale, 1, "{report:?}");
        assert!(
            report.killed >= 1 || detect_mode() == ContainmentMode::Cgroup,
            "{report:?}"
        );
        let (left, _) = t.wait_gone(Duration::from_secs(5));
        assert_eq!(
            left,
            Vec::<i32>::new(),
            "{pref:?} {launch}: sweep left survivors"
        );
        assert!(std::fs::read_dir(t.dir.join("state"))
            .unwrap()
            .next()
            .is_none());
    }
}

fn unsafe_kill(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

/// A live host's records are left alone by another host's sweep.
#[tokio::test]
async fn sweep_skips_live_hosts() {
    let t = Tagged::new("live");
    let state = t.dir.join("state");
    let mut c = Contained::spawn(
        t.opts("sleep", ContainmentPreference::Auto)
            .arg("1000")
            .state_dir(&state),
    )
    .await
    .unwrap();
    let r = sweep_stale(&state).unwrap();
    assert_eq!((r.records, r.live, r.stale, r.killed), (1, 1, 0, 0));
    assert!(!t.survivors().is_empty());
    c.kill_now().await.unwrap();
    // The record is removed with the session.
    assert!(std::fs::read_dir(&state).unwrap().next().is_none());
}

/// Helper process for `sweep_kills_leftovers_of_a_dead_host`.
#[test]
#[ignore = "helper process for the sweep test"]
fn sweep_host_process() {
    if std::env::var_os("HOTPLEX_TEST_SWEEP_HOST").is_none() {
        return;
    }
    let pref = match std::env::var("HOTPLEX_TEST_HOST_MODE").as_deref() {
        Ok("subreaper") => ContainmentPreference::Subreaper,
        _ => ContainmentPreference::Auto,
    };
    let tag = std::env::var(TAG_VAR).unwrap();
    let dir = std::path::PathBuf::from(std::env::var("HOTPLEX_TEST_DIR").unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let opts = SpawnOptions::new(fixture("setsid_daemon.sh"))
            .env(TAG_VAR, &tag)
            .env("HOTPLEX_TEST_DIR", &dir)
            .state_dir(dir.join("state"))
            .containment(pref);
        let mut c = Contained::spawn(opts).await.unwrap();
        let mut out = BufReader::new(c.take_stdout().unwrap());
        expect_line(&mut out, "ready").await;
        println!("\nSWEEP-READY {}", c.supervisor_pid());
        std::future::pending::<()>().await;
    });
}
