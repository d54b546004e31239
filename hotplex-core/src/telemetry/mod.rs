//! Telemetry the host owns: Prometheus metrics, a lifecycle observer and
//! logs. hotplex never opens a port and never touches a global metrics
//! registry: each engine has its own registry, which the host reads as
//! OpenMetrics text ([`crate::Engine::metrics_text`]) or registers into its
//! own `prometheus_client` registry ([`crate::Engine::register_metrics`]).
//!
//! * [`metrics`]: the families and their one description ([`METRICS`]).
//! * [`Observer`]: typed [`LifecycleRecord`]s for hosts with other
//!   monitoring, delivered off the hot path (bounded queue; drops counted
//!   in `hotplex_observer_dropped_total`).
//! * [`logs`]: `tracing` spans and events, and a bridge to a host logger.

pub mod dispatch;
pub mod logs;
pub(crate) mod memory;
pub mod metrics;

use std::sync::Arc;

pub use crate::contract::telemetry::{LifecycleRecord, LogLevel, LogRecord};
use dispatch::Dispatcher;
pub use logs::{set_log_sink, LogSink};
use metrics::Metrics;
pub use metrics::{snapshot_from_text, MetricDoc, MetricKind, METRICS};

/// Receives an engine's lifecycle records, in order, on a thread of the
/// engine's own (never on a session's). Keep it quick: records that find
/// the queue ([`dispatch::QUEUE_CAPACITY`]) full are dropped and counted.
pub type Observer = Arc<dyn Fn(&LifecycleRecord) + Send + Sync>;

/// An engine's metrics and observer.
pub(crate) struct Telemetry {
    pub(crate) metrics: Metrics,
    observer: Dispatcher<LifecycleRecord>,
}

impl Telemetry {
    pub(crate) fn new(observer: Option<Observer>, containment: &'static str) -> Telemetry {
        let metrics = Metrics::new(containment);
        let observer = match observer {
            Some(o) => {
                let dropped = metrics.observer_dropped.clone();
                Dispatcher::spawn(
                    "hotplex-observer",
                    o,
                    Arc::new(move || {
                        dropped.inc();
                    }),
                )
            }
            None => Dispatcher::off(),
        };
        Telemetry { metrics, observer }
    }

    /// Hands a record to the observer; `make` runs only if there is one.
    pub(crate) fn record(&self, make: impl FnOnce() -> LifecycleRecord) {
        if self.observer.is_on() {
            self.observer.send(make());
        }
    }
}
