//! The process model, measured: both supervisor launches (`exec`, the
//! embedded program; `fork`, a copy of the host) side by side in one run.
//!
//! ```text
//! cargo build --release -p hotplex-reference-agent
//! cargo bench -p hotplex-core --bench proc_model            # everything
//! cargo bench -p hotplex-core --bench proc_model -- quick   # smaller sizes
//! ```
//!
//! Each measurement runs in a fresh worker process (this binary re-executed
//! with `HOTPLEX_SUPERVISOR=exec|fork`) that first allocates and touches its
//! "host" memory, then prints one JSON line; the parent prints the table:
//!
//! * **pss**: a 1 GiB host that rewrites its memory before each of 4 session
//!   starts (and once more after): total PSS of supervisors and agents
//!   (`/proc/<pid>/smaps_rollup`) per idle session.
//! * **cold**: cold start (spawn to first answer of the reference agent)
//!   with hosts of 20 MB, 1 GiB and 4 GiB, while another session runs hot
//!   turns back to back: p50/max cold start and that session's slowest turn.
//! * **churn**: spawn + kill with the tree confirmed empty (`sleep 1000`, no
//!   grace) against `std::process::Command` spawn + kill + wait, interleaved;
//!   and the longest a runtime worker spent inside one poll of
//!   `Contained::spawn` (what the worker is blocked for).
//! * **scale**: 10, 100, 1,000 sessions brought up concurrently from Rust
//!   (8 starts at a time), a burst of one hot turn on each, a sequential
//!   sweep; turns/s, p50/p99, host RSS and total PSS per session, and the
//!   host's children left after `close` (exec mode's launcher, which lives
//!   as long as the host, not counted).
//!
//! The agent is `target/release/hotplex-reference-agent` (or
//! `$HOTPLEX_BENCH_AGENT`).

use hotplex_core::proc::{supervisor_mode, Contained, SpawnOptions};
use hotplex_core::{Engine, EngineOptions, TurnOptions};
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

fn agent() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTPLEX_BENCH_AGENT") {
        return p.into();
    }
    // target/release/deps/proc_model-<hash> -> target/release/
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("hotplex-reference-agent");
    assert!(
        p.exists(),
        "{} missing: cargo build --release -p hotplex-reference-agent",
        p.display()
    );
    p
}

/// The host's memory: `bytes` allocated and every page written.
struct HostMemory(Vec<u8>);

impl HostMemory {
    fn new(bytes: usize) -> Self {
        let mut v = vec![0u8; bytes];
        Self::touch(&mut v, 1);
        HostMemory(v)
    }
    fn touch(v: &mut [u8], val: u8) {
        for i in (0..v.len()).step_by(4096) {
            v[i] = val;
        }
    }
    fn rewrite(&mut self, val: u8) {
        Self::touch(&mut self.0, val)
    }
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn kib_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Children of `pid` (every thread).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Total PSS (KiB) of every descendant of this process (supervisors,
/// agents and whatever they started), and how many there are.
fn tree_pss_kib() -> (u64, usize) {
    let mut stack = children(std::process::id() as i32);
    let (mut pss, mut n) = (0, 0);
    while let Some(p) = stack.pop() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            pss += kib_field(&s, "Pss:");
            n += 1;
        }
        stack.extend(children(p));
    }
    (pss, n)
}

fn own_rss_kib() -> u64 {
    kib_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "VmRSS:",
    )
}

fn engine_opts(dir: &std::path::Path, max_sessions: usize) -> EngineOptions {
    EngineOptions {
        binary: agent(),
        default_workdir: Some(dir.to_path_buf()),
        max_sessions,
        max_concurrent_starts: 8,
        kill_grace: (Duration::from_millis(200), Duration::from_millis(200)),
        ..EngineOptions::default()
    }
}

fn scratch(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hotplex-bench-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn one_turn(e: &Engine, id: &str, prompt: &str) -> Duration {
    let t = Instant::now();
    let turn = e
        .execute(id, prompt, &TurnOptions::default(), |_| {})
        .await
        .unwrap_or_else(|err| panic!("turn on {id}: {err}"));
    assert_eq!(turn.text, format!("echo: {prompt}"));
    t.elapsed()
}

// ---------------------------------------------------------------- workers

async fn worker_pss(host_mib: usize, sessions: usize) -> Value {
    let mut mem = HostMemory::new(host_mib * MIB);
    let dir = scratch("pss");
    let e = Engine::new(engine_opts(&dir, 64)).unwrap();
    for i in 0..sessions {
        mem.rewrite(i as u8 + 2);
        one_turn(&e, &format!("s{i}"), "hello").await;
    }
    mem.rewrite(0xee);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (pss, procs) = tree_pss_kib();
    e.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    json!({"pss_kib_per_session": pss as f64 / sessions as f64, "procs": procs, "sessions": sessions})
}

async fn worker_cold(host_mib: usize, starts: usize) -> Value {
    let _mem = HostMemory::new(host_mib * MIB);
    let dir = scratch("cold");
    let e = Arc::new(Engine::new(engine_opts(&dir, 64)).unwrap());
    one_turn(&e, "hot", "warm").await;
    // Hot turns back to back on another session; the slowest one while
    // the cold starts run is the stall.
    let mut idle_hot = Vec::new();
    for i in 0..50 {
        idle_hot.push(one_turn(&e, "hot", &format!("idle {i}")).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hot = {
        let (e, stop) = (e.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                lat.push(one_turn(&e, "hot", &format!("busy {i}")).await);
                i += 1;
            }
            lat
        })
    };
    let mut cold = Vec::new();
    for i in 0..starts {
        let id = format!("cold{i}");
        cold.push(one_turn(&e, &id, "first").await);
        e.stop_session(&id).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut busy = hot.await.unwrap();
    e.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let idle_p50 = quantile(&mut idle_hot, 0.5);
    json!({
        "cold_p50_ms": ms(quantile(&mut cold, 0.5)),
        "cold_max_ms": ms(quantile(&mut cold, 1.0)),
        "hot_idle_p50_ms": ms(idle_p50),
        "hot_busy_p50_ms": ms(quantile(&mut busy, 0.5)),
        "hot_busy_max_ms": ms(quantile(&mut busy, 1.0)),
        "hot_turns_during": busy.len(),
    })
}

/// CPU time of the calling thread: unlike wall time it does not count the
/// time the thread was preempted by other work on a loaded machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a pointer to a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The longest single poll of a future: wall time and the worker thread's
/// CPU time.
#[derive(Default, Clone, Copy)]
struct Longest {
    wall: Duration,
    cpu: Duration,
}

/// Times every poll of the wrapped future; keeps the longest.
struct Timed<F> {
    f: Pin<Box<F>>,
    longest: Longest,
}

impl<F: Future> Future for Timed<F> {
    type Output = (F::Output, Longest);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (t, c) = (Instant::now(), thread_cpu());
        let r = self.f.as_mut().poll(cx);
        let (wall, cpu) = (t.elapsed(), thread_cpu().saturating_sub(c));
        self.longest.wall = self.longest.wall.max(wall);
        self.longest.cpu = self.longest.cpu.max(cpu);
        r.map(|o| (o, self.longest))
    }
}

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

async fn hotplex_cycle(longest: &mut Longest) {
    let opts = SpawnOptions::new("sleep")
        .arg("1000")
        .grace(Duration::ZERO, Duration::ZERO);
    let (c, l) = Timed {
        f: Box::pin(Contained::spawn(opts)),
        longest: Longest::default(),
    }
    .await;
    longest.wall = longest.wall.max(l.wall);
    longest.cpu = longest.cpu.max(l.cpu);
    c.expect("spawn").kill().await.expect("kill");
}

async fn worker_churn(host_mib: usize, rounds: usize, per_round: usize) -> Value {
    let _mem = HostMemory::new(host_mib * MIB);
    let (mut plain, mut hot) = (Duration::ZERO, Duration::ZERO);
    let mut longest = Longest::default();
    hotplex_cycle(&mut longest).await;
    longest = Longest::default();
    for _ in 0..rounds {
        let t = Instant::now();
        tokio::task::spawn_blocking(move || {
            for _ in 0..per_round {
                plain_cycle();
            }
        })
        .await
        .unwrap();
        plain += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_round {
            hotplex_cycle(&mut longest).await;
        }
        hot += t.elapsed();
    }
    let n = (rounds * per_round) as f64;
    let (p, h) = (n / plain.as_secs_f64(), n / hot.as_secs_f64());
    json!({"plain_per_s": p, "hotplex_per_s": h, "ratio": h / p,
           "longest_spawn_poll_us": longest.wall.as_secs_f64() * 1e6,
           "longest_spawn_poll_cpu_us": longest.cpu.as_secs_f64() * 1e6})
}

async fn worker_scale(n: usize) -> Value {
    let _mem = HostMemory::new(20 * MIB);
    let dir = scratch("scale");
    let rss0 = own_rss_kib();
    let e = Arc::new(Engine::new(engine_opts(&dir, n + 8)).unwrap());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            one_turn(&e, &format!("s{i}"), "hello").await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let bring_up = t.elapsed();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            one_turn(&e, &format!("s{i}"), "burst").await
        }));
    }
    let mut burst = Vec::new();
    for t in tasks {
        burst.push(t.await.unwrap());
    }
    let burst_time = t.elapsed();
    let mut sweep = Vec::new();
    let t = Instant::now();
    for i in 0..n {
        sweep.push(one_turn(&e, &format!("s{i}"), "sweep").await);
    }
    let sweep_time = t.elapsed();
    let rss = own_rss_kib().saturating_sub(rss0);
    let (pss, procs) = tree_pss_kib();
    e.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    // The launcher (exec mode) lives as long as the host: it is no
    // leftover of the sessions.
    let left = children(std::process::id() as i32)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .map_or(true, |c| c.trim() != "hotplex-launch")
        })
        .count();
    json!({
        "bring_up_s": bring_up.as_secs_f64(),
        "burst_turns_per_s": n as f64 / burst_time.as_secs_f64(),
        "burst_p50_ms": ms(quantile(&mut burst, 0.5)),
        "burst_p99_ms": ms(quantile(&mut burst, 0.99)),
        "sweep_turns_per_s": n as f64 / sweep_time.as_secs_f64(),
        "sweep_p50_ms": ms(quantile(&mut sweep, 0.5)),
        "sweep_p99_ms": ms(quantile(&mut sweep, 0.99)),
        "host_rss_kib_per_session": rss as f64 / n as f64,
        "pss_kib_per_session": pss as f64 / n as f64,
        "procs": procs,
        "children_left_after_close": left,
    })
}

fn worker(args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let num = |i: usize| args[i].parse::<usize>().unwrap();
    let out = rt.block_on(async {
        let mut v = match args[0].as_str() {
            "pss" => worker_pss(num(1), num(2)).await,
            "cold" => worker_cold(num(1), num(2)).await,
            "churn" => worker_churn(num(1), num(2), num(3)).await,
            "scale" => worker_scale(num(1)).await,
            other => panic!("unknown worker {other}"),
        };
        v["launch"] = json!(supervisor_mode().as_str());
        v
    });
    println!("RESULT {out}");
}

// ---------------------------------------------------------------- parent

fn run(launch: &str, args: &[String]) -> Value {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--worker")
        .args(args)
        .env("HOTPLEX_SUPERVISOR", launch)
        .stderr(Stdio::inherit())
        .output()
        .expect("run a worker");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("worker {args:?} ({launch}) failed: {}", out.status));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["launch"], launch, "the worker ran in the asked mode");
    v
}

fn both(args: &[&str]) -> (Value, Value) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    (run("exec", &args), run("fork", &args))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        worker(&args[1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("hotplex process model: exec (new) vs fork (old), one run");
    println!(
        "load at start: {}  cpus: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let (gib, big) = if quick { (256, 1024) } else { (1024, 4096) };
    println!("\n[pss] host of {gib} MiB rewritten before each of 4 starts; idle sessions");
    let (e, k) = both(&["pss", &gib.to_string(), "4"]);
    println!(
        "  total PSS per idle session (supervisor+agent): exec {:.0} KiB | fork {:.0} KiB  (target <= 2048 KiB)",
        f(&e, "pss_kib_per_session"),
        f(&k, "pss_kib_per_session")
    );

    println!(
        "\n[cold] spawn to first answer, 20 cold starts, while another session runs hot turns"
    );
    let mut cold20 = (0.0, 0.0);
    for mib in [20, gib, big] {
        let (e, k) = both(&["cold", &mib.to_string(), "20"]);
        if mib == 20 {
            cold20 = (f(&e, "cold_p50_ms"), f(&k, "cold_p50_ms"));
        }
        for (name, v, base) in [("exec", &e, cold20.0), ("fork", &k, cold20.1)] {
            println!(
                "  host {mib:>5} MiB {name}: cold p50 {:.1} ms (x{:.2} of 20 MB), max {:.1} ms; other session's hot turn: idle p50 {:.2} ms, during spawns p50 {:.2} ms max {:.1} ms",
                f(v, "cold_p50_ms"),
                f(v, "cold_p50_ms") / base,
                f(v, "cold_max_ms"),
                f(v, "hot_idle_p50_ms"),
                f(v, "hot_busy_p50_ms"),
                f(v, "hot_busy_max_ms"),
            );
        }
    }
    println!("  targets: 4 GiB within 1.5x of 20 MB; no hot turn stalls > 5 ms during a spawn");

    println!(
        "\n[churn] spawn+kill (tree confirmed empty) vs std::process::Command spawn+kill+wait"
    );
    let (e, k) = both(&["churn", "20", "5", if quick { "40" } else { "100" }]);
    for (name, v) in [("exec", &e), ("fork", &k)] {
        println!(
            "  {name}: hotplex {:.0}/s, plain {:.0}/s, ratio {:.2} (target >= 0.50); longest worker poll in spawn {:.0} us wall, {:.0} us worker CPU",
            f(v, "hotplex_per_s"),
            f(v, "plain_per_s"),
            f(v, "ratio"),
            f(v, "longest_spawn_poll_us"),
            f(v, "longest_spawn_poll_cpu_us"),
        );
    }

    println!("\n[scale] concurrent bring-up from Rust (8 starts at a time), burst, sweep");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    for &n in sizes {
        let (e, k) = both(&["scale", &n.to_string()]);
        for (name, v) in [("exec", &e), ("fork", &k)] {
            println!(
                "  {n:>5} {name}: bring-up {:.2} s; burst {:.0} turns/s p50 {:.1} p99 {:.1} ms; sweep {:.0} turns/s p50 {:.2} p99 {:.2} ms; host RSS {:.0} KiB/session; PSS {:.0} KiB/session; left {}",
                f(v, "bring_up_s"),
                f(v, "burst_turns_per_s"),
                f(v, "burst_p50_ms"),
                f(v, "burst_p99_ms"),
                f(v, "sweep_turns_per_s"),
                f(v, "sweep_p50_ms"),
                f(v, "sweep_p99_ms"),
                f(v, "host_rss_kib_per_session"),
                f(v, "pss_kib_per_session"),
                v["children_left_after_close"],
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nload at end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
