//! The engine's telemetry against the reference agent: a scripted scenario
//! (2 sessions, 5 ok turns, 1 WAF-blocked prompt, 1 timeout, 1 crash,
//! 1 eviction) moves each metric exactly as expected, the observer sees the
//! same story, and the host's own registry gets the same families.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotplex_core::telemetry::{LifecycleRecord, Observer, METRICS};
use hotplex_core::{Engine, EngineOptions, Error, TurnOptions};
use parking_lot::Mutex;

const AGENT: &str = env!("CARGO_BIN_EXE_hotplex-reference-agent");

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hotplex-telemetry-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn options(dir: &std::path::Path) -> EngineOptions {
    EngineOptions {
        binary: AGENT.into(),
        env: vec![(
            "HOTPLEX_REF_STATE".into(),
            dir.to_string_lossy().into_owned(),
        )],
        default_workdir: Some(dir.join("work")),
        interrupt_grace: Duration::from_secs(2),
        kill_grace: (Duration::from_millis(200), Duration::from_millis(200)),
        ..EngineOptions::default()
    }
}

/// Every sample of the text as `name{sorted labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for f in hotplex_core::telemetry::snapshot_from_text(text)
        .as_array()
        .unwrap()
    {
        for s in f["samples"].as_array().unwrap() {
            let labels: Vec<String> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let key = if labels.is_empty() {
                s["name"].as_str().unwrap().to_owned()
            } else {
                format!("{}{{{}}}", s["name"].as_str().unwrap(), labels.join(","))
            };
            out.insert(key, s["value"].as_f64().unwrap());
        }
    }
    out
}

async fn ok(engine: &Engine, id: &str) {
    engine
        .execute(id, "hello", &TurnOptions::default(), |_| {})
        .await
        .unwrap_or_else(|e| panic!("turn on {id}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_scenario_moves_every_counter_exactly() {
    let dir = tempdir("scenario");
    let records: Arc<Mutex<Vec<LifecycleRecord>>> = Arc::default();
    let sink = records.clone();
    let observer: Observer = Arc::new(move |r| sink.lock().push(r.clone()));
    let engine = Engine::new(EngineOptions {
        max_sessions: 1,
        observer: Some(observer),
        ..options(&dir)
    })
    .unwrap();

    ok(&engine, "a").await; // 1: a starts fresh
    ok(&engine, "a").await; // 2
    ok(&engine, "a").await; // 3
    let blocked = engine
        .execute("a", "run this: rm -rf /", &TurnOptions::default(), |_| {})
        .await;
    assert!(matches!(blocked, Err(Error::DangerBlocked(_))));
    let short = TurnOptions {
        timeout: Some(Duration::from_millis(300)),
        ..TurnOptions::default()
    };
    let timeout = engine.execute("a", "stall:5000", &short, |_| {}).await;
    assert!(matches!(timeout, Err(Error::TurnTimeout(_))), "{timeout:?}");
    let crash = engine
        .execute("a", "crash", &TurnOptions::default(), |_| {})
        .await;
    assert!(matches!(crash, Err(Error::SessionDead(_))), "{crash:?}");
    ok(&engine, "a").await; // 4: a resumes
    ok(&engine, "b").await; // 5: b starts fresh and evicts a (max_sessions 1)

    let m = samples(&engine.metrics_text());
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    assert_eq!(get("hotplex_turns_total{outcome=ok}"), 5.0, "{m:#?}");
    assert_eq!(get("hotplex_turns_total{outcome=blocked}"), 1.0);
    assert_eq!(get("hotplex_turns_total{outcome=timeout}"), 1.0);
    assert_eq!(get("hotplex_turns_total{outcome=dead}"), 1.0);
    assert_eq!(get("hotplex_turns_total{outcome=failed}"), 0.0);
    assert_eq!(get("hotplex_session_starts_total{mode=fresh}"), 2.0);
    assert_eq!(get("hotplex_session_starts_total{mode=resume}"), 1.0);
    assert_eq!(get("hotplex_session_exits_total{reason=crashed}"), 1.0);
    assert_eq!(get("hotplex_session_exits_total{reason=evicted}"), 1.0);
    assert_eq!(get("hotplex_capacity_rejections_total"), 0.0);
    assert_eq!(get("hotplex_waf_checks_total{source=prompt}"), 8.0);
    assert_eq!(
        get("hotplex_waf_blocks_total{category=file_delete,level=critical,source=prompt}"),
        1.0
    );
    // Turns that ran: 5 ok + timeout + crash.
    assert_eq!(get("hotplex_turn_duration_seconds_count"), 7.0);
    assert_eq!(get("hotplex_cold_start_seconds_count"), 3.0);
    assert!(
        (get("hotplex_cost_usd_total") - 0.005).abs() < 1e-9,
        "{m:#?}"
    );
    assert_eq!(get("hotplex_sessions{status=ready}"), 1.0);
    assert_eq!(get("hotplex_sessions{status=busy}"), 0.0);
    assert!(get("hotplex_agent_memory_bytes") > 0.0);
    assert!(m.keys().any(|k| k.starts_with("hotplex_build_info{")));
    assert!(get("hotplex_tokens_total{kind=input}") > 0.0);

    engine.close().await;
    let m = samples(&engine.metrics_text());
    assert_eq!(m["hotplex_session_exits_total{reason=closed}"], 1.0);
    assert_eq!(m["hotplex_sessions{status=ready}"], 0.0);

    // The observer saw the same story, in order, off the hot path.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // Records arrive off the hot path: wait for the last one (the close's
    // exit), not for a count that other records may reach first.
    let closed = |r: &LifecycleRecord| matches!(r, LifecycleRecord::SessionExited { reason, .. } if reason.as_str() == "closed");
    while !records.lock().iter().any(closed) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recs = records.lock().clone();
    let outcomes: Vec<&str> = recs
        .iter()
        .filter_map(|r| match r {
            LifecycleRecord::TurnFinished { outcome, .. } => Some(outcome.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "ok", "ok", "blocked", "timeout", "dead", "ok", "ok"]
    );
    let exits: Vec<&str> = recs
        .iter()
        .filter_map(|r| match r {
            LifecycleRecord::SessionExited { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(exits, ["crashed", "evicted", "closed"]);
    assert!(recs
        .iter()
        .any(|r| matches!(r, LifecycleRecord::WafVerdict { blocked: true, .. })));
    // The prompt is judged before the agent starts.
    let json = serde_json::to_value(&recs[0]).unwrap();
    assert_eq!(
        (json["type"].as_str(), json["source"].as_str()),
        (Some("waf_verdict"), Some("prompt"))
    );
    assert_eq!(
        serde_json::to_value(&recs[1]).unwrap()["type"],
        "session_started"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_family_is_exposed_and_the_host_registry_gets_them() {
    let dir = tempdir("families");
    let engine = Engine::new(options(&dir)).unwrap();
    ok(&engine, "s").await;
    // The families with open-ended labels appear with their first sample.
    let t = engine
        .execute("s", "tool:ls", &TurnOptions::default(), |_| {})
        .await;
    assert_eq!(t.unwrap().text, "tool ran: ls");
    let _ = engine
        .execute("s", "run this: rm -rf /", &TurnOptions::default(), |_| {})
        .await;
    let text = engine.metrics_text();
    for doc in METRICS {
        assert!(
            text.contains(&format!(
                "# TYPE {} {}",
                base_name(doc.name, doc.kind),
                doc.kind.as_str()
            )),
            "{} missing from:\n{text}",
            doc.name
        );
    }
    let mut host = prometheus_client::registry::Registry::default();
    engine.register_metrics(&mut host);
    let mut host_text = String::new();
    prometheus_client::encoding::text::encode(&mut host_text, &host).unwrap();
    assert!(
        host_text.contains("hotplex_turns_total{outcome=\"ok\"} 2"),
        "{host_text}"
    );
    assert!(
        host_text.contains("hotplex_tool_calls_total{tool=\"Bash\"} 1"),
        "{host_text}"
    );
    engine.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `# TYPE` name of a family (OpenMetrics drops `_total` and `_info`).
fn base_name(name: &str, kind: hotplex_core::telemetry::MetricKind) -> &str {
    use hotplex_core::telemetry::MetricKind::*;
    match kind {
        Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// `promtool check metrics` (Prometheus' own linter, from Debian's
/// `prometheus` package, which the test command installs) finds nothing to
/// complain about. Skipped, saying so, where promtool is not installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_no_problem_in_the_metrics() {
    use std::io::Write;
    let Ok(promtool) = which("promtool") else {
        eprintln!("promtool not installed: skipped (tests/run-all.sh installs it)");
        return;
    };
    let dir = tempdir("promtool");
    let engine = Engine::new(options(&dir)).unwrap();
    ok(&engine, "s").await;
    let _ = engine
        .execute("s", "tool:ls", &TurnOptions::default(), |_| {})
        .await;
    let _ = engine
        .execute("s", "run this: rm -rf /", &TurnOptions::default(), |_| {})
        .await;
    // promtool (2.42) reads the Prometheus text format, not OpenMetrics.
    let text = engine.metrics_text_prometheus();
    engine.close().await;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool:\n{report}\non:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
