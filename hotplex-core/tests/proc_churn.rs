//! Churn: 2,000 spawn-and-kill cycles (both supervisor launches, both
//! containment modes) leave zero zombies, zero leftover
//! processes, no leftover cgroups and no leaked file descriptors.
//! Its own test binary, so it runs in parallel with the other proc tests and
//! its zombie/fd accounting sees only its own children.
#![cfg(target_os = "linux")]

mod proc_support;

use hotplex_core::proc::{Contained, ContainmentPreference, SpawnOptions};
use proc_support::*;
use std::time::{Duration, Instant};

const CYCLES: usize = 2000;

#[test]
fn churn_2000_cycles() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let t = Tagged::new("churn");
        // Warm up once so lazily created process-wide state (runtime fds,
        // the cgroup probe) is not counted as a leak.
        let mut c = Contained::spawn(t.opts("true", ContainmentPreference::Auto))
            .await
            .unwrap();
        c.kill().await.unwrap();
        let launches = launches();
        let fds_before = fd_count();
        let t0 = Instant::now();
        for i in 0..CYCLES {
            let launch = launches[(i / 2) % launches.len()];
            let pref = if i % 2 == 0 {
                ContainmentPreference::Auto
            } else {
                ContainmentPreference::Subreaper
            };
            let opts: SpawnOptions = match i % 10 {
                // A small tree: a background child that setsids.
                0 => t.opts("sh", pref).args([
                    "-c",
                    "setsid sleep 1000 </dev/null >/dev/null 2>&1 & exec sleep 1000",
                ]),
                // Exits at once.
                1 => t.opts("true", pref),
                _ => t.opts("sleep", pref).arg("1000"),
            }
            .grace(Duration::ZERO, Duration::ZERO)
            .supervisor(launch);
            let mut c = Contained::spawn(opts).await.unwrap();
            if i % 4 == 3 {
                drop(c); // non-blocking; the supervisor finishes alone
            } else {
                c.kill().await.unwrap();
            }
        }
        let took = t0.elapsed();
        // Let dropped sessions finish and be reaped.
        let (left, _) = t.wait_gone(Duration::from_secs(30));
        assert_eq!(left, Vec::<i32>::new(), "leftover processes");
        let deadline = Instant::now() + Duration::from_secs(30);
        while (!zombie_children().is_empty() || fd_count() != fds_before)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(zombie_children(), Vec::<i32>::new(), "zombies");
        assert_eq!(fd_count(), fds_before, "leaked file descriptors");
        let leftover_cgroups = count_session_cgroups();
        assert_eq!(leftover_cgroups, 0, "leftover session cgroups");
        eprintln!(
            "churn: {CYCLES} cycles in {took:?} ({:.0} cycles/s)",
            CYCLES as f64 / took.as_secs_f64()
        );
    });
}

/// Session cgroups (`hotplex-<id>` where id starts with our pid) still present.
fn count_session_cgroups() -> usize {
    let prefix = format!("hotplex-{:x}-", std::process::id());
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let Some(rel) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return 0;
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(mnt) = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .find_map(|l| l.split(' ').nth(4).map(str::to_string))
    else {
        return 0;
    };
    let dir = std::path::Path::new(&mnt).join(rel.trim_start_matches('/'));
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0)
}
