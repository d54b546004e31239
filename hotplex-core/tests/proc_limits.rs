//! Per-session limits at the `proc` level, in both supervisor launches: a
//! memory hog is stopped by the memory limit, a fork loop by the process
//! limit, and the mechanism that enforced each is reported.
#![cfg(target_os = "linux")]

mod proc_support;

use hotplex_core::proc::{
    detect_mode, Contained, ContainmentMode, ContainmentPreference, LimitMechanism,
};
use proc_support::*;
use tokio::io::AsyncReadExt;

async fn run(c: &mut Contained) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_stopped_by_the_memory_limit() {
    for launch in launches() {
        for pref in [
            ContainmentPreference::Auto,
            ContainmentPreference::Subreaper,
        ] {
            let t = Tagged::new("memhog");
            // `tail` keeps the whole line it reads: /dev/zero has no newline,
            // so it grows to 512 MiB unless the limit stops it.
            let opts = t
                .opts_launch("sh", pref, launch)
                .args([
                    "-c",
                    "head -c 536870912 /dev/zero | tail >/dev/null; echo \"status $?\"",
                ])
                .memory_max(64 << 20);
            let mut c = Contained::spawn(opts).await.unwrap();
            let how = c.limits().memory;
            let out = run(&mut c).await;
            eprintln!("memory hog {launch} {pref:?}: {how:?} -> {}", out.trim());
            assert!(
                how.is_some(),
                "{pref:?}: the memory limit is enforced somehow"
            );
            assert!(out.starts_with("status "), "{out}");
            assert_ne!(
                out.trim(),
                "status 0",
                "{launch} {pref:?}: the hog was stopped"
            );
            assert!(t.survivors().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_loop_is_capped_by_the_process_limit_in_cgroup_mode() {
    if detect_mode() != ContainmentMode::Cgroup {
        eprintln!("skipped: no per-session cgroup here");
        return;
    }
    for launch in launches() {
        let t = Tagged::new("pids");
        // Counts the `sleep`s it managed to start (dash gives up at the
        // first fork that fails).
        let opts = t
            .opts_launch("sh", ContainmentPreference::Auto, launch)
            .args([
                "-c",
                "i=0; (while [ $i -lt 500 ]; do sleep 1000 >/dev/null & i=$((i+1)); echo $i; done) 2>/dev/null | tail -n 1",
            ])
            .pids_max(20);
        let mut c = Contained::spawn(opts).await.unwrap();
        let how = c.limits().processes;
        assert!(
            matches!(
                how,
                Some(LimitMechanism::CgroupV2 | LimitMechanism::CgroupV1)
            ),
            "{how:?}"
        );
        let out = run(&mut c).await;
        let started: u32 = out.trim().parse().unwrap_or(0);
        eprintln!("fork loop {launch}: {how:?}, {started} sleeps started with pids_max 20");
        assert!(
            started < 20,
            "{launch}: {started} processes with a limit of 20"
        );
        assert!(t.survivors().is_empty());
    }
}
