//! Telemetry for Node: the engine's metrics, the lifecycle observer and the
//! log bridge.
//!
//! ```js
//! const engine = new Engine({ binary: 'claude', observer: (r) => console.log(r.type, r.sessionId) })
//! engine.metricsText()      // OpenMetrics text, for a `/metrics` route
//! engine.metricsSnapshot()  // the same as [{ name, type, help, samples }]
//! setLogger((r) => console.log(r.level, r.target, r.message, r.sessionId), 'info')
//! ```
//!
//! Design notes:
//!
//! * **Two hops, neither blocking.** The core calls the observer (and the
//!   log sink) on a thread of its own, fed by a bounded queue. From there a
//!   record crosses to the JS thread through a weak threadsafe function with
//!   a bounded queue of its own ([`JS_QUEUE`]), called non-blocking: if the
//!   JS thread is too busy to keep up (its queue is full) or its environment
//!   is gone, the record is dropped at once, so hotplex's observer thread is
//!   never held up by JavaScript.
//! * **Drops are counted.** The core counts the records its own queue
//!   refused in `hotplex_observer_dropped_total`; the records refused at
//!   the JS hop are counted in the same counter (the engine's
//!   `DropCounter`, handed to the core with the options), so the one metric
//!   counts both. (The log bridge's JS-hop drops are not
//!   counted anywhere: the core has no log-drop metric.)
//! * **Exceptions.** Each record is handed over with a completion callback,
//!   which receives (and discards) what the JS function threw: a throwing
//!   observer or logger loses that record only (a plain threadsafe call
//!   would turn the exception into an uncaught one).
//! * **Weak.** Neither the observer nor the logger keeps Node running.
//! * **camelCase.** Records are the core's JSON with their keys camelCased
//!   (`sessionId`, `durationMs`); values (`'turn_finished'`, label names and
//!   values of metrics) stay as they are.

use std::sync::Arc;

use hotplex_core as hc;
use hotplex_core::telemetry::{DropCounter, LifecycleRecord, LogLevel, LogRecord, Observer};
use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{Env, JsValue, Result, Status, ValueType};
use napi_derive::napi;
use serde_json::Value;

use crate::json;
use crate::to_js_error;

/// How many records wait for the JS thread before new ones are dropped (the
/// core's own queue holds as many).
pub(crate) const JS_QUEUE: usize = 1024;

/// A record callback: called on the JS thread with one camelCased record;
/// weak (it does not keep Node running) and bounded (see [`JS_QUEUE`]).
pub(crate) type RecordCallback =
    ThreadsafeFunction<Value, UnknownReturnValue, Value, Status, false, true, JS_QUEUE>;

/// Queues `record` for `cb` without waiting; `false` if it was dropped (the
/// JS queue is full, or the environment is closing).
fn deliver(cb: &RecordCallback, record: Value) -> bool {
    // The completion callback receives what the JS function threw (if it
    // did) and drops it: the record is lost, nothing else.
    let status = cb.call_with_return_value(
        record,
        ThreadsafeFunctionCallMode::NonBlocking,
        |_answer, _env| Ok(()),
    );
    status == Status::Ok
}

/// The core's observer for the JS function `cb`; records the JS hop drops
/// are counted in `dropped`, the engine's `hotplex_observer_dropped_total`.
pub(crate) fn observer(cb: RecordCallback, dropped: DropCounter) -> Observer {
    Arc::new(move |record: &LifecycleRecord| {
        let value = json::camel_keys(serde_json::to_value(record).unwrap_or(Value::Null));
        if !deliver(&cb, value) {
            dropped.add(1);
        }
    })
}

/// Every metric family an engine exposes (`name`, `type`, `labels`,
/// `help`), from the core's one description; `index.js` registers them into
/// a `prom-client` registry.
#[napi(js_name = "__metricFamilies", skip_typescript)]
pub fn metric_families() -> Vec<Value> {
    hc::telemetry::METRICS
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "type": m.kind.as_str(),
                "labels": m.labels,
                "help": m.help,
            })
        })
        .collect()
}

fn log_level(level: &str) -> Option<LogLevel> {
    Some(match level {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => return None,
    })
}

/// Sends hotplex's logs to `logger` (process-wide: every engine, every
/// `Worker`; the last call wins), at `level` and above (default `'info'`;
/// agent stderr lines come at `'debug'`). `setLogger(null)` turns logging
/// off. Records are `{ level, target, message, sessionId }` (`sessionId` is
/// `null` when the record concerns no session), delivered on the JS thread
/// in order, off hotplex's hot path: when the JS thread cannot keep up they
/// are dropped. The logger does not keep Node running; what it throws loses
/// that record only. Throws `HOTPLEX_INVALID_ARGUMENT` for a bad level or
/// a logger that is not a function.
#[napi(
    ts_args_type = "logger: ((record: LogRecord) => void) | null, level?: LogLevel | undefined | null"
)]
pub fn set_logger(env: Env, logger: Option<Unknown>, level: Option<String>) -> Result<()> {
    let invalid = |msg: String| to_js_error(&env, hc::Error::InvalidArgument(msg));
    let min = match level.as_deref() {
        None => LogLevel::Info,
        Some(l) => log_level(l).ok_or_else(|| {
            invalid(format!(
                "level must be 'trace', 'debug', 'info', 'warn' or 'error', got {l:?}"
            ))
        })?,
    };
    let sink = match logger {
        None => None,
        Some(f) => match f.get_type()? {
            ValueType::Null | ValueType::Undefined => None,
            ValueType::Function => {
                // SAFETY: a live function of this env, on its thread.
                let cb = unsafe {
                    <RecordCallback as napi::bindgen_prelude::FromNapiValue>::from_napi_value(
                        env.raw(),
                        f.raw(),
                    )
                }?;
                let sink: hc::telemetry::LogSink = Arc::new(move |r: &LogRecord| {
                    let value = json::camel_keys(serde_json::to_value(r).unwrap_or(Value::Null));
                    // Dropped when the JS thread cannot keep up.
                    deliver(&cb, value);
                });
                Some(sink)
            }
            other => {
                return Err(invalid(format!(
                    "logger must be a function or null, got {other}"
                )))
            }
        },
    };
    hc::telemetry::set_log_sink(min, sink).map_err(|e| to_js_error(&env, e))
}
