//! The README's telemetry example: logs, a lifecycle observer and the
//! metrics of an engine (the agent is `$HOTPLEX_AGENT`, else `claude`).

use std::sync::Arc;

use hotplex_core::telemetry::{set_log_sink, LifecycleRecord, LogLevel, Observer};
use hotplex_core::{Engine, EngineOptions, TurnOptions};

#[tokio::main]
async fn main() -> hotplex_core::Result<()> {
    // hotplex's logs to stderr (a Rust host with a tracing subscriber of
    // its own sees them there instead and skips this).
    set_log_sink(
        LogLevel::Info,
        Some(Arc::new(|r| eprintln!("{:?} {}", r.level, r.message))),
    )?;
    // Lifecycle records, delivered off the hot path.
    let observer: Observer = Arc::new(|r: &LifecycleRecord| {
        if let LifecycleRecord::TurnFinished {
            outcome,
            duration_ms,
            ..
        } = r
        {
            println!("turn {} in {duration_ms:.1} ms", outcome.as_str());
        }
    });
    let agent = std::env::var("HOTPLEX_AGENT").unwrap_or_else(|_| "claude".into());
    let engine = Engine::new(EngineOptions {
        binary: agent.into(),
        observer: Some(observer),
        ..EngineOptions::default()
    })?;
    engine
        .execute("chat-1", "hello", &TurnOptions::default(), |_| {})
        .await?;
    // OpenMetrics text for the host's /metrics ...
    let text = engine.metrics_text();
    for line in text
        .lines()
        .filter(|l| l.starts_with("hotplex_turns_total"))
    {
        println!("{line}");
    }
    // ... or the same families in the host's own prometheus-client registry.
    let mut registry = prometheus_client::registry::Registry::default();
    engine.register_metrics(&mut registry);
    engine.close().await;
    Ok(())
}
