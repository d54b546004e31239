//! WAF benchmarks: `cargo bench -p hotplex-core --bench waf`.
//!
//! Prints, before criterion's own groups, the p50/p99 latency of one
//! `check_command` over the labelled corpus (each command timed on its own,
//! best of several batches to shed scheduler noise), then measures detector
//! construction, the corpus as a batch, and a 1 MiB heredoc.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use hotplex_core::waf::Detector;

fn corpus() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = root.join("../shared/waf/corpus.jsonl");
    let path = if shared.exists() {
        shared
    } else {
        root.join("tests/fixtures/waf-corpus.jsonl")
    };
    std::fs::read_to_string(path)
        .expect("corpus")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["command"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

fn heredoc_1mib() -> String {
    let line = "lorem ipsum dolor sit amet $(not run) 'quoted' \"double\" rm -rf / x\n";
    let body = line.repeat((1 << 20) / line.len() + 1);
    format!("cat > notes.md <<'EOF'\n{body}EOF\n")
}

/// Per-command latency percentiles over the corpus.
fn percentiles() {
    let d = Detector::new();
    let cmds = corpus();
    const REPS: u32 = 200;
    let mut per_cmd: Vec<Duration> = cmds
        .iter()
        .map(|c| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..REPS {
                        black_box(d.check_command(black_box(c)));
                    }
                    t.elapsed() / REPS
                })
                .min()
                .unwrap_or_default()
        })
        .collect();
    per_cmd.sort();
    let pct = |p: f64| per_cmd[((per_cmd.len() - 1) as f64 * p).round() as usize];
    println!(
        "waf check_command over {} corpus commands: p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
        per_cmd.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        per_cmd[per_cmd.len() - 1]
    );
    let big = heredoc_1mib();
    let t = Instant::now();
    black_box(d.check_command(&big));
    println!("waf 1 MiB quoted heredoc: {:.2?}", t.elapsed());
    let t = Instant::now();
    black_box(Detector::new());
    println!("waf detector build: {:.2?}", t.elapsed());
}

fn benches(c: &mut Criterion) {
    let d = Detector::new();
    let cmds = corpus();
    c.bench_function("waf/detector_build", |b| {
        b.iter(|| black_box(Detector::new()))
    });
    c.bench_function("waf/check_command_corpus_each", |b| {
        b.iter(|| {
            for cmd in &cmds {
                black_box(d.check_command(black_box(cmd)));
            }
        })
    });
    c.bench_function("waf/check_command_rm_rf_root", |b| {
        b.iter(|| black_box(d.check_command(black_box("rm -rf /"))))
    });
    c.bench_function("waf/check_command_ls", |b| {
        b.iter(|| black_box(d.check_command(black_box("ls -la"))))
    });
    c.bench_function("waf/check_prompt_sentence", |b| {
        b.iter(|| {
            black_box(d.check_prompt(black_box(
                "Please refactor the session pool so idle sessions are evicted after 30 minutes.",
            )))
        })
    });
    let big = heredoc_1mib();
    let mut g = c.benchmark_group("waf/large");
    g.sample_size(10);
    g.bench_function("heredoc_1mib", |b| {
        b.iter(|| black_box(d.check_command(black_box(&big))))
    });
    g.finish();
}

criterion_group! {
    name = waf;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = benches
}

fn main() {
    percentiles();
    waf();
    Criterion::default().configure_from_args().final_summary();
}
