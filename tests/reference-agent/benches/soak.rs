//! Churn soak: does the host keep its memory, file descriptors and threads
//! flat over many session lifetimes? 8 threads, each in a loop: pick one
//! of 200 session ids, run 3 turns on it (the first starts the agent; some
//! are hostile: stray output, a late result, a flood), then stop it. Every
//! 10 s it samples the host's RSS, open fds and threads; at the end it
//! prints the samples and the growth from the 2-minute mark to the end
//! (the target: under 2% each), plus the cycles and turns run. Exits
//! non-zero when a turn returns a wrong answer.
//!
//! `cargo bench -p hotplex-reference-agent --bench soak [-- SECONDS]`
//! (default 480: the 8-minute soak of the turn-integrity issue).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotplex_core::{Engine, EngineOptions, TurnOptions};

const AGENT: &str = env!("CARGO_BIN_EXE_hotplex-reference-agent");
const THREADS: usize = 8;
const IDS: u64 = 200;

/// (RSS KiB, open fds, threads) of this process.
fn sample() -> (u64, usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    (field("VmRSS:"), fds, field("Threads:"))
}

fn growth(from: f64, to: f64) -> f64 {
    if from == 0.0 {
        0.0
    } else {
        (to - from) / from * 100.0
    }
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(480);
    let dir = std::env::temp_dir().join(format!("hotplex-soak-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let (engine, rt) = Engine::with_own_runtime(EngineOptions {
        binary: AGENT.into(),
        env: vec![(
            "HOTPLEX_REF_STATE".into(),
            dir.to_string_lossy().into_owned(),
        )],
        default_workdir: Some(dir.join("work")),
        max_sessions: 256,
        ..EngineOptions::default()
    })
    .expect("engine");
    let engine = Arc::new(engine);
    let rt = Arc::new(rt);
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS as u64)
        .map(|t| {
            let (engine, rt, stop, cycles, wrong) = (
                engine.clone(),
                rt.clone(),
                stop.clone(),
                cycles.clone(),
                wrong.clone(),
            );
            std::thread::spawn(move || {
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    // Threads take disjoint ids (id % THREADS == thread).
                    let id = format!("soak-{}", (n * THREADS as u64 + t) % IDS);
                    n += 1;
                    for k in 0..3 {
                        let prompt = match (n + k) % 4 {
                            0 => format!("after:ok-{n}-{k}"),
                            1 => format!("late:2:ok-{n}-{k}"),
                            2 => format!("double:ok-{n}-{k}"),
                            _ => "flood:20".to_owned(),
                        };
                        let want = prompt.rsplit(':').next().unwrap_or("").to_owned();
                        let got = rt.block_on(engine.execute(
                            &id,
                            &prompt,
                            &TurnOptions::default(),
                            |_| {},
                        ));
                        match got {
                            Ok(t) if prompt.starts_with("flood") || t.text == want => {}
                            other => {
                                wrong.fetch_add(1, Ordering::Relaxed);
                                eprintln!("{id} {prompt}: {other:?}");
                            }
                        }
                    }
                    rt.block_on(engine.stop_session(&id));
                    cycles.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut samples: Vec<(u64, u64, usize, u64)> = Vec::new();
    println!(
        "{:>6} {:>10} {:>6} {:>8} {:>9}",
        "t(s)", "rss(KiB)", "fds", "threads", "cycles"
    );
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(10).min(Duration::from_secs(secs)));
        let (rss, fds, threads) = sample();
        let t = started.elapsed().as_secs();
        let c = cycles.load(Ordering::Relaxed);
        println!("{t:>6} {rss:>10} {fds:>6} {threads:>8} {c:>9}");
        samples.push((t, rss, fds, threads));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let cycles = cycles.load(Ordering::Relaxed);
    // The reference point: the first sample at or after 2 minutes (or the
    // first sample of a shorter run).
    let mark = samples
        .iter()
        .find(|s| s.0 >= 120)
        .or(samples.first())
        .copied()
        .unwrap_or_default();
    let last = samples.last().copied().unwrap_or_default();
    println!(
        "{cycles} cycles ({} turns) in {secs} s by {THREADS} threads over {IDS} ids; wrong answers: {}",
        cycles * 3,
        wrong.load(Ordering::Relaxed)
    );
    println!(
        "growth from {} s to {} s: rss {:+.2}%, fds {:+.2}%, threads {:+.2}%",
        mark.0,
        last.0,
        growth(mark.1 as f64, last.1 as f64),
        growth(mark.2 as f64, last.2 as f64),
        growth(mark.3 as f64, last.3 as f64)
    );
    let rt = Arc::try_unwrap(rt).ok();
    if let Some(rt) = rt {
        rt.block_on(engine.close());
    }
    let _ = std::fs::remove_dir_all(&dir);
    if wrong.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
