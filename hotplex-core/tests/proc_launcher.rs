//! Exec mode's launcher: the long-lived program that forks each session's
//! supervisor. What a session gets must not depend on it being shared: the
//! host's current directory, a plan too large for one message, a launcher
//! that died in between.
//!
//! Its own test binary (one host process, one launcher), its tests one at a
//! time: one of them kills the launcher.
#![cfg(target_os = "linux")]

mod proc_support;

use hotplex_core::proc::{supervisor_mode, Contained, SpawnOptions, SupervisorLaunch};
use proc_support::*;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The tests of this file, one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// The exec mode this file is about (skipped where the program cannot run,
/// or with `HOTPLEX_SUPERVISOR=fork`).
fn exec_mode() -> bool {
    let exec = supervisor_mode() == SupervisorLaunch::Exec;
    if !exec {
        eprintln!("skipped: supervisors are forked here");
    }
    exec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_starts_in_the_hosts_current_directory() {
    let _one = SERIAL.lock().await;
    // The launcher itself sits in `/`; without a cwd in the options the
    // agent still gets the host's, as a fork of the host would.
    let here = std::env::current_dir().unwrap();
    for launch in launches() {
        let out = output_of(SpawnOptions::new("pwd").supervisor(launch)).await;
        assert_eq!(out.trim(), here.to_str().unwrap(), "{launch}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_larger_than_one_message_reaches_the_agent() {
    let _one = SERIAL.lock().await;
    // Far above the largest plan sent inline, so it travels in a memfd;
    // in several variables, each below the kernel's limit for one string.
    let big = "x".repeat(100 << 10);
    for launch in launches() {
        let mut opts = SpawnOptions::new("sh")
            .args([
                "-c",
                "printf %s \"$BIG_0$BIG_1$BIG_2$BIG_3$BIG_4$BIG_5\" | wc -c",
            ])
            .supervisor(launch);
        for i in 0..6 {
            opts = opts.env(format!("BIG_{i}"), &big);
        }
        let out = output_of(opts).await;
        assert_eq!(out.trim(), (6 * big.len()).to_string(), "{launch}");
    }
}

/// The parent of `pid` and the parent's name.
fn parent_and_name(pid: i32) -> (i32, String) {
    let (_, ppid, _, _) = stat(pid).expect("process alive");
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    (ppid, comm.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_launcher_is_replaced_and_its_sessions_live_on() {
    let _one = SERIAL.lock().await;
    if !exec_mode() {
        return;
    }
    let t = Tagged::new("launcher");
    let opts = || {
        t.opts("sleep", hotplex_core::proc::ContainmentPreference::Auto)
            .arg("1000")
            .grace(Duration::ZERO, Duration::ZERO)
    };
    let mut first = Contained::spawn(opts()).await.unwrap();
    let (launcher, name) = parent_and_name(first.supervisor_pid());
    assert_eq!(name, "hotplex-launch");
    assert!(is_our_child(launcher), "the launcher is the host's child");
    // SAFETY: SIGKILL to our own child, which is still unreaped.
    assert_eq!(unsafe { libc::kill(launcher, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    while !matches!(stat(launcher), Some(('Z', ..)) | None) {
        assert!(t0.elapsed() < Duration::from_secs(10), "launcher dies");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Sessions go on: the next one may still be taken by the spare the
    // dead launcher had forked, then a new launcher starts, and the dead
    // one is reaped.
    let mut second = Contained::spawn(opts()).await.unwrap();
    let t0 = Instant::now();
    let launcher2 = loop {
        assert!(t0.elapsed() < Duration::from_secs(10), "a new launcher");
        let mut c = Contained::spawn(opts()).await.unwrap();
        let (parent, name) = parent_and_name(c.supervisor_pid());
        c.kill().await.unwrap();
        if name == "hotplex-launch" && parent != launcher {
            break parent;
        }
    };
    assert!(
        is_our_child(launcher2),
        "the new launcher is the host's child"
    );
    assert!(!is_our_child(launcher), "the dead launcher was reaped");
    // The session started by the dead launcher is still contained.
    assert!(stat(first.pid()).is_some(), "first agent still running");
    first.kill().await.unwrap();
    second.kill().await.unwrap();
    assert_eq!(t.survivors(), Vec::<i32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_gets_the_hosts_umask_and_limits_at_its_spawn_not_the_launchers() {
    let _one = SERIAL.lock().await;
    // A session first, so a launcher (and its spare) exist with the host's
    // state as it was; then the host changes what a child inherits.
    let script = "umask; ulimit -Sn; ulimit -Hc";
    let before = output_of(SpawnOptions::new("sh").args(["-c", script])).await;
    // SAFETY: umask and setrlimit on this process; the other tests of this
    // binary wait for SERIAL, and the values are restored below.
    let (old_mask, old_nofile, old_core) = unsafe {
        let old_mask = libc::umask(0o027);
        let mut nofile: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile);
        let mut core: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_CORE, &mut core);
        let lower = libc::rlimit {
            rlim_cur: 300.min(nofile.rlim_cur),
            rlim_max: nofile.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lower), 0);
        // A hard limit can only be lowered (without CAP_SYS_RESOURCE): the
        // core limit is restored below only when it was raisable.
        let core_lower = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_CORE, &core_lower), 0);
        (old_mask, nofile, core)
    };
    let mut outs = Vec::new();
    for launch in launches() {
        outs.push((
            launch,
            output_of(
                SpawnOptions::new("sh")
                    .args(["-c", script])
                    .supervisor(launch),
            )
            .await,
        ));
    }
    // SAFETY: restoring what was read above.
    unsafe {
        libc::umask(old_mask);
        libc::setrlimit(libc::RLIMIT_NOFILE, &old_nofile);
        libc::setrlimit(libc::RLIMIT_CORE, &old_core);
    }
    for (launch, out) in outs {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "0027", "{launch}: umask (before: {before:?})");
        assert_eq!(
            lines[1],
            300.min(old_nofile.rlim_cur).to_string(),
            "{launch}: soft open files"
        );
        assert_eq!(lines[2], "0", "{launch}: hard core size");
    }
}
