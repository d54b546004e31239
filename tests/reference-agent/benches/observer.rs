//! Does a slow lifecycle observer slow turns down? Two engines on the
//! reference agent, one without an observer and one whose observer sleeps
//! 100 ms per record, run hot turns in alternating blocks (A B A B ...) so
//! the machine's noise falls on both alike; prints the median per-turn
//! latency of each, their ratio, and the records the slow observer lost
//! (`hotplex_observer_dropped_total`).
//!
//! `cargo bench -p hotplex-reference-agent --bench observer [-- BLOCKS TURNS]`
//! (defaults: 20 blocks of 100 turns per side).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotplex_core::telemetry::Observer;
use hotplex_core::{Engine, EngineOptions, TurnOptions};

const AGENT: &str = env!("CARGO_BIN_EXE_hotplex-reference-agent");

fn engine(dir: &std::path::Path, observer: Option<Observer>) -> Engine {
    Engine::new(EngineOptions {
        binary: AGENT.into(),
        env: vec![(
            "HOTPLEX_REF_STATE".into(),
            dir.to_string_lossy().into_owned(),
        )],
        default_workdir: Some(dir.join("work")),
        observer,
        ..EngineOptions::default()
    })
    .expect("engine")
}

async fn block(engine: &Engine, turns: usize, out: &mut Vec<Duration>) {
    for _ in 0..turns {
        let t0 = Instant::now();
        engine
            .execute("bench", "hello", &TurnOptions::default(), |_| {})
            .await
            .expect("turn");
        out.push(t0.elapsed());
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let blocks = args.first().copied().unwrap_or(20);
    let turns = args.get(1).copied().unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir =
            std::env::temp_dir().join(format!("hotplex-bench-observer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let slow: Observer = Arc::new(|_| std::thread::sleep(Duration::from_millis(100)));
        let plain = engine(&dir.join("a"), None);
        let observed = engine(&dir.join("b"), Some(slow));
        // Warm both (cold start) outside the measurement.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        block(&plain, 5, &mut Vec::new()).await;
        block(&observed, 5, &mut Vec::new()).await;
        for _ in 0..blocks {
            block(&plain, turns, &mut a).await;
            block(&observed, turns, &mut b).await;
        }
        let (ma, mb) = (median(&mut a), median(&mut b));
        let dropped = observed
            .metrics_text()
            .lines()
            .find(|l| l.starts_with("hotplex_observer_dropped_total"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        println!(
            "hot turns: {} per side in {blocks} alternating blocks of {turns}",
            a.len()
        );
        println!(
            "no observer:           median {:.3} ms",
            ma.as_secs_f64() * 1e3
        );
        println!(
            "slow observer (100 ms): median {:.3} ms",
            mb.as_secs_f64() * 1e3
        );
        println!(
            "ratio slow/none: {:.3}",
            mb.as_secs_f64() / ma.as_secs_f64()
        );
        println!("records dropped by the slow observer's queue: {dropped}");
        plain.close().await;
        observed.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
