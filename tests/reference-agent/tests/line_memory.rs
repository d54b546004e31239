//! Host memory while agents print enormous lines. Its own test binary
//! (one test), so the process's peak RSS is this scenario's alone.

use std::time::Duration;

use hotplex_core::{Engine, EngineOptions, Event};

mod support;
use support::{options, TempDir};

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS (VmHWM) to the current RSS.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_lines_cost_about_twice_their_size_and_capped_lines_nothing_more() {
    let dir = TempDir::new("linemem");
    // One valid 30 MiB line: its peak cost in the host is about twice its
    // size (read buffer and parsed text; then the event and the stream's
    // copy of it), not five times.
    let engine = Engine::new(EngineOptions {
        max_line_bytes: 64 << 20,
        ..options(&dir)
    })
    .unwrap();
    let t = engine
        .execute("warm", "hi", &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(t.text, "echo: hi");
    tokio::time::sleep(Duration::from_millis(50)).await;
    reset_peak();
    let base = status_kib("VmRSS:");
    let mut len = 0;
    let t = engine
        .execute("warm", "bigline:30", &Default::default(), |e| {
            if let Event::Answer { text } = e {
                len = len.max(text.len());
            }
        })
        .await
        .unwrap();
    assert_eq!(len, 30 << 20);
    let peak = status_kib("VmHWM:") - base;
    let ratio = peak as f64 / (30 << 10) as f64;
    eprintln!("a 30 MiB line: peak +{peak} KiB = {ratio:.2}x its size");
    assert!(ratio < 2.5, "a 30 MiB line cost {ratio:.2}x its size");
    drop(t);
    engine.close().await;

    // Eight sessions each printing a 100 MiB line at once, with the
    // default cap (16 MiB): the lines are drained, counted and dropped.
    let engine = Engine::new(options(&dir)).unwrap();
    reset_peak();
    // Submitted together: the eight turns run at once.
    let streams: Vec<_> = (0..8)
        .map(|i| engine.start(&format!("s{i}"), "bigline:100", &Default::default()))
        .collect();
    for s in streams {
        assert_eq!(s.finish().await.unwrap().text, "printed 100 MiB");
    }
    let peak_mib = status_kib("VmHWM:") / 1024;
    eprintln!("8 sessions x 100 MiB lines: host peak RSS {peak_mib} MiB");
    assert!(peak_mib < 300, "host peak {peak_mib} MiB");
    for i in 0..8 {
        assert_eq!(engine.session_stats(&format!("s{i}")).unwrap().bad_lines, 1);
    }
    engine.close().await;
}
