//! Spawn-to-exit-confirmed cycles: hotplex containment vs plain
//! `std::process::Command` spawn + kill + wait, in the same run.
//!
//! `cargo bench -p hotplex-core --bench proc` runs two criterion benchmarks
//! and then an interleaved throughput comparison that prints cycles per
//! second for both and the ratio (hotplex / plain). The agent in both cases
//! is `sleep 1000`; the hotplex cycle is `Contained::spawn` + `kill()` with
//! zero grace periods (SIGTERM to the tree, then confirmation that the tree
//! is empty, the supervisor reaped and, in cgroup mode, the cgroup removed).

use criterion::Criterion;
use hotplex_core::proc::{detect_mode, Contained, SpawnOptions};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn plain_cycle() {
    let mut child = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sleep");
    child.kill().expect("kill");
    child.wait().expect("wait");
}

async fn hotplex_cycle() {
    let opts = SpawnOptions::new("sleep")
        .arg("1000")
        .grace(Duration::ZERO, Duration::ZERO);
    let mut c = Contained::spawn(opts).await.expect("spawn");
    c.kill().await.expect("kill");
}

/// Where the time goes: spawn and kill, per containment preference.
fn breakdown(rt: &tokio::runtime::Runtime) {
    use hotplex_core::proc::ContainmentPreference as P;
    for pref in [P::Auto, P::Subreaper] {
        let (mut sp, mut kl) = (Duration::ZERO, Duration::ZERO);
        let n = 200;
        rt.block_on(async {
            for _ in 0..n {
                let opts = SpawnOptions::new("sleep")
                    .arg("1000")
                    .grace(Duration::ZERO, Duration::ZERO)
                    .containment(pref);
                let t = Instant::now();
                let mut c = Contained::spawn(opts).await.expect("spawn");
                sp += t.elapsed();
                let t = Instant::now();
                c.kill().await.expect("kill");
                kl += t.elapsed();
            }
        });
        println!(
            "{pref:?}: spawn {:?}/cycle, kill {:?}/cycle",
            sp / n,
            kl / n
        );
    }
}

fn main() {
    if std::env::var_os("HOTPLEX_BENCH_BREAKDOWN").is_some() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        breakdown(&rt);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut crit = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    crit.bench_function("proc/plain_command_spawn_kill_wait", |b| {
        b.iter(plain_cycle)
    });
    crit.bench_function("proc/hotplex_spawn_kill_confirmed", |b| {
        b.iter(|| rt.block_on(hotplex_cycle()))
    });
    crit.final_summary();

    // Interleaved rounds so machine noise hits both sides alike.
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 100;
    let (mut plain, mut hot) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..PER_ROUND {
            plain_cycle();
        }
        plain += t.elapsed();
        let t = Instant::now();
        rt.block_on(async {
            for _ in 0..PER_ROUND {
                hotplex_cycle().await;
            }
        });
        hot += t.elapsed();
    }
    let n = (ROUNDS * PER_ROUND) as f64;
    let plain_rate = n / plain.as_secs_f64();
    let hot_rate = n / hot.as_secs_f64();
    println!();
    println!("containment mode: {}", detect_mode());
    println!("plain std::process::Command spawn+kill+wait: {plain_rate:.0} cycles/s");
    println!("hotplex spawn+kill (tree confirmed empty):   {hot_rate:.0} cycles/s");
    println!(
        "ratio hotplex/plain: {:.2} (target >= 0.50)",
        hot_rate / plain_rate
    );
}
