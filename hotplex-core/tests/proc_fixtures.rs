//! Containment of misbehaving agents (fixtures a-h in tests/fixtures/agents/).
//!
//! Every fixture runs under both supervisor launches (the exec'd program and
//! a fork of the host), both Linux modes (whatever `Auto` detects, and
//! forced `Subreaper`) and three endings: an explicit `kill()`, dropping the
//! handle, and `kill -9` of a separate host process that owned the session
//! (this test binary re-executed as the `host_process` test). Each ends with
//! zero tagged survivors.
#![cfg(target_os = "linux")]

mod proc_support;

use hotplex_core::proc::{
    detect_mode, Contained, ContainmentMode, ContainmentPreference, SupervisorLaunch,
};
use proc_support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, BufReader};

const MODES: [ContainmentPreference; 2] = [
    ContainmentPreference::Auto,
    ContainmentPreference::Subreaper,
];

fn expected_mode(pref: ContainmentPreference) -> ContainmentMode {
    match pref {
        ContainmentPreference::Subreaper => ContainmentMode::Subreaper,
        _ => detect_mode(),
    }
}

/// Fixture-specific checks that the misbehaviour really happened (so a pass
/// means something), run once the fixture said "ready".
fn check_escape(name: &str, t: &Tagged, c: &Contained) {
    match name {
        "setsid_daemon.sh" => {
            let pid = t.pid_file("daemon.pid");
            let (_, _, pgrp, sid) = stat(pid).expect("daemon alive");
            assert_eq!(sid, pid, "daemon is a session leader");
            assert_ne!(pgrp, c.pgid(), "daemon left the agent's group");
        }
        "double_fork.sh" => {
            let pid = t.pid_file("orphan.pid");
            let (_, ppid, _, sid) = stat(pid).expect("orphan alive");
            assert_ne!(sid, c.pid(), "orphan left the agent's session");
            assert_ne!(ppid, c.pid(), "orphan is not the agent's child");
        }
        "fork_grandchild.sh" => {
            let pid = t.pid_file("grandchild.pid");
            assert!(stat(pid).is_some());
        }
        _ => {}
    }
    assert!(
        !t.survivors().is_empty(),
        "{name}: nothing tagged is running"
    );
}

async fn start(
    name: &str,
    t: &Tagged,
    pref: ContainmentPreference,
    launch: SupervisorLaunch,
) -> Contained {
    let mut c = Contained::spawn(t.opts_launch(fixture(name), pref, launch))
        .await
        .unwrap();
    assert_eq!(c.mode(), expected_mode(pref));
    assert_eq!(c.supervisor_launch(), launch);
    assert_eq!(c.pgid(), c.pid());
    if name == "exit_error.sh" {
        return c;
    }
    let mut out = BufReader::new(c.take_stdout().unwrap());
    expect_line(&mut out, "ready").await;
    if name == "close_stdout.sh" {
        // stdout reaches EOF while the agent keeps running.
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), out.read_to_end(&mut rest))
            .await
            .expect("stdout closed")
            .unwrap();
        assert!(stat(c.pid()).is_some(), "agent still running");
    }
    check_escape(name, t, &c);
    c
}

async fn case_kill(name: &str, pref: ContainmentPreference, launch: SupervisorLaunch) {
    let t = Tagged::new("kill");
    let mut c = start(name, &t, pref, launch).await;
    if name == "exit_error.sh" {
        let st = c.wait().await.unwrap();
        assert_eq!(st.code(), Some(3));
        let mut err = String::new();
        c.take_stderr()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        assert!(err.contains("fixture failed on purpose"));
    }
    let sup = c.supervisor_pid();
    let report = c.kill().await.unwrap();
    // kill() returns only after the supervisor confirmed an empty tree.
    assert_eq!(
        t.survivors(),
        Vec::<i32>::new(),
        "{name} {pref:?} {launch}: {report:?}"
    );
    assert!(!is_our_child(sup), "supervisor reaped");
    if name == "ignore_term.sh" {
        assert_eq!(report.stage, hotplex_core::proc::LadderStage::Kill);
    }
    if c.mode() == ContainmentMode::Cgroup {
        assert!(!cgroup_dir_exists(c.session_id()), "cgroup removed");
    }
    // Idempotent.
    assert_eq!(c.kill().await.unwrap(), report);
}

fn cgroup_dir_exists(session: &str) -> bool {
    let name = format!("hotplex-{session}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| walk_find(std::path::Path::new(m), &name, 3))
}

fn walk_find(dir: &std::path::Path, name: &str, depth: u32) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if e.file_name().to_str() == Some(name) {
                return true;
            }
            if depth > 0 && walk_find(&e.path(), name, depth - 1) {
                return true;
            }
        }
    }
    false
}

async fn case_drop(name: &str, pref: ContainmentPreference, launch: SupervisorLaunch) {
    let t = Tagged::new("drop");
    let c = start(name, &t, pref, launch).await;
    let sup = c.supervisor_pid();
    drop(c);
    let (left, _) = t.wait_gone(Duration::from_secs(20));
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "{name} {pref:?} {launch}: survivors after drop"
    );
    // The reaper task collects the supervisor.
    let t0 = std::time::Instant::now();
    while is_our_child(sup) && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!is_our_child(sup), "supervisor reaped after drop");
}

/// Spawns this test binary as a separate host owning one session of
/// `name`, waits until the session is ready, SIGKILLs the host and checks
/// that every process of the session (supervisor included: it carries the
/// tag through the host's environment) is gone.
fn case_host_kill(name: &str, pref: ContainmentPreference, launch: SupervisorLaunch) -> Duration {
    let t = Tagged::new("host");
    let (mut host, mut lines) = spawn_host(
        "host_process",
        &t,
        pref,
        &[("HOTPLEX_TEST_HOST_FIXTURE", name), launch_env(launch)],
    );
    let ready = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("HOST-READY") => break l,
            Some(Ok(_)) => continue,
            other => panic!("host ended before ready: {other:?}"),
        }
    };
    assert!(
        !t.survivors().is_empty() || name == "exit_error.sh",
        "{ready}"
    );
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    let (left, took) = t.wait_gone(Duration::from_secs(20));
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "{name} {pref:?} {launch}: survivors after host SIGKILL"
    );
    eprintln!("host-kill {name} {pref:?} {launch}: tree gone {took:?} after the host died");
    took
}

async fn all_cases(name: &str) {
    for launch in launches() {
        for pref in MODES {
            case_kill(name, pref, launch).await;
            case_drop(name, pref, launch).await;
            let name = name.to_string();
            tokio::task::spawn_blocking(move || case_host_kill(&name, pref, launch))
                .await
                .unwrap();
        }
    }
}

macro_rules! fixture_test {
    ($fn:ident, $file:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $fn() {
            all_cases($file).await;
        }
    };
}

fixture_test!(a_fork_grandchild, "fork_grandchild.sh");
fixture_test!(b_setsid_daemon, "setsid_daemon.sh");
fixture_test!(c_double_fork, "double_fork.sh");
fixture_test!(d_ignore_term_and_hup, "ignore_term.sh");
fixture_test!(e_nohup_disown, "nohup_disown.sh");
fixture_test!(f_fork_200_fast, "fork_storm.sh");
fixture_test!(g_close_stdout_keep_running, "close_stdout.sh");
fixture_test!(h_exit_at_once_with_error, "exit_error.sh");

/// Not a test on its own: the separate host process for `case_host_kill`.
/// Runs only when re-executed with `HOTPLEX_TEST_HOST_FIXTURE` set.
#[test]
#[ignore = "helper process for the host-kill cases"]
fn host_process() {
    let Ok(name) = std::env::var("HOTPLEX_TEST_HOST_FIXTURE") else {
        return;
    };
    let pref = match std::env::var("HOTPLEX_TEST_HOST_MODE").as_deref() {
        Ok("subreaper") => ContainmentPreference::Subreaper,
        _ => ContainmentPreference::Auto,
    };
    let tag = std::env::var(TAG_VAR).unwrap();
    let dir = std::env::var("HOTPLEX_TEST_DIR").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Default (long) grace periods: host death must not wait for them.
        let opts = hotplex_core::proc::SpawnOptions::new(fixture(&name))
            .env(TAG_VAR, &tag)
            .env("HOTPLEX_TEST_DIR", &dir)
            .containment(pref);
        let mut c = Contained::spawn(opts).await.unwrap();
        if name != "exit_error.sh" {
            let mut out = BufReader::new(c.take_stdout().unwrap());
            expect_line(&mut out, "ready").await;
        }
        let want = match std::env::var("HOTPLEX_SUPERVISOR").as_deref() {
            Ok("fork") => hotplex_core::proc::SupervisorLaunch::Fork,
            _ => hotplex_core::proc::SupervisorLaunch::Exec,
        };
        assert_eq!(c.supervisor_launch(), want);
        println!("\nHOST-READY {} {}", c.supervisor_pid(), c.pid());
        std::future::pending::<()>().await;
        drop(c);
    });
}
