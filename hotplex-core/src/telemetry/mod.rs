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

/// Lifecycle records lost on their way to a host, counted in the engine's
/// `hotplex_observer_dropped_total` (the core counts what its own queue
/// refuses). A binding whose observer hands records on through a queue of
/// its own (Node's hop to the JS thread) counts its losses here too: it
/// makes one, keeps a clone for its observer and passes it as
/// [`crate::EngineOptions::observer_drops`]. Clones share one count.
#[derive(Clone, Debug, Default)]
pub struct DropCounter(prometheus_client::metrics::counter::Counter);

impl DropCounter {
    /// A count at zero.
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// Counts `n` more lost records.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// An engine's metrics and observer.
pub(crate) struct Telemetry {
    pub(crate) metrics: Metrics,
    observer: Dispatcher<LifecycleRecord>,
}

impl Telemetry {
    pub(crate) fn new(
        observer: Option<Observer>,
        drops: Option<DropCounter>,
        containment: &'static str,
    ) -> Telemetry {
        let metrics = Metrics::new(containment, drops.unwrap_or_default().0);
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
