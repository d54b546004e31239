//! hotplex's logs: `tracing` events and spans in the core, and a bridge a
//! binding (or a host without a `tracing` subscriber of its own) installs to
//! receive them as [`LogRecord`]s.
//!
//! A Rust host that has its own subscriber sees hotplex's spans (`session`
//! with `session_id`, `turn`) and events directly and never calls
//! [`set_log_sink`]. Bindings call it: it installs, once per process, a
//! global subscriber whose sink and level can be changed at any time.
//! Records reach the sink through a bounded queue on a thread of its own, so
//! a slow host logger never stalls a session; records refused by a full
//! queue are counted ([`dropped_logs`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::dispatch::Dispatcher;
use crate::contract::telemetry::{LogLevel, LogRecord};
use crate::{Error, Result};

/// Receives hotplex's log records (on hotplex's log thread).
pub type LogSink = Arc<dyn Fn(&LogRecord) + Send + Sync>;

/// The current sink, behind its delivery thread.
static SINK: RwLock<Option<Dispatcher<LogRecord>>> = RwLock::new(None);
/// The least severe level delivered (as `level_rank`); 255: none.
static MIN_LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Sends hotplex's log records at `min` and above to `sink` (`None`: stop
/// logging). The first call installs hotplex's global `tracing` subscriber;
/// it fails with [`Error::InvalidConfig`] if the process already has
/// another one (a Rust host: use that subscriber instead).
pub fn set_log_sink(min: LogLevel, sink: Option<LogSink>) -> Result<()> {
    let installed = *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Bridge);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    });
    if !installed {
        return Err(Error::InvalidConfig(
            "another tracing subscriber is installed in this process: hotplex's spans and events go to it".into(),
        ));
    }
    let dispatcher = sink.map(|s| {
        Dispatcher::spawn(
            "hotplex-log",
            s,
            Arc::new(|| {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }),
        )
    });
    let on = dispatcher.is_some();
    *SINK.write() = dispatcher;
    MIN_LEVEL.store(if on { rank(min) } else { u8::MAX }, Ordering::Release);
    // Callsites cache whether anyone listens; the answer just changed.
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

/// Log records refused because the sink's queue was full.
pub fn dropped_logs() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn rank(l: LogLevel) -> u8 {
    match l {
        LogLevel::Trace => 0,
        LogLevel::Debug => 1,
        LogLevel::Info => 2,
        LogLevel::Warn => 3,
        LogLevel::Error => 4,
    }
}

fn level_of(m: &Metadata<'_>) -> LogLevel {
    match *m.level() {
        tracing::Level::TRACE => LogLevel::Trace,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

/// The session id a span carries, kept in its extensions.
struct SessionId(String);

/// Collects an event's message and fields, and a `session_id` field.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    session_id: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "session_id" => self.session_id = Some(value.to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "session_id" => {
                self.session_id = Some(format!("{value:?}").trim_matches('"').to_owned())
            }
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// The layer that turns events into [`LogRecord`]s for the sink.
struct Bridge;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Bridge {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The level can change at run time: decide per event.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, m: &Metadata<'_>, _: Context<'_, S>) -> bool {
        m.is_span() || rank(level_of(m)) >= MIN_LEVEL.load(Ordering::Acquire)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(sid), Some(span)) = (f.session_id, ctx.span(id)) {
            span.extensions_mut().insert(SessionId(sid));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let sink = SINK.read();
        let Some(sink) = sink.as_ref() else {
            return;
        };
        let mut f = Fields::default();
        event.record(&mut f);
        let session_id = f.session_id.or_else(|| {
            ctx.event_scope(event)?
                .find_map(|span| span.extensions().get::<SessionId>().map(|s| s.0.clone()))
        });
        f.message.push_str(&f.rest);
        sink.send(LogRecord {
            level: level_of(event.metadata()),
            target: event.metadata().target().to_owned(),
            message: f.message,
            session_id,
        });
    }
}
