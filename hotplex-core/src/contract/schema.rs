//! The contract as a JSON Schema (draft 2020-12), generated from the types.
//!
//! The schema is committed (`schema/hotplex.schema.json`) and checked for
//! drift by `hotplex-core/tests/schema.rs`, like the C header. Bindings test
//! their copies against it: a field added to a record here and missing from
//! a binding fails that binding's tests. Besides the type definitions it
//! carries the error table (`x-hotplex-errors`) and the event names
//! (`x-hotplex-events`).

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::errors::ErrorCode;
use super::events::Event;
use super::options::{EngineOptions, TurnOptions};
use super::records::{SessionInfo, SessionStats, Turn};
use crate::verdict::Verdict;

/// The whole contract as one schema document: `$defs` holds `EngineOptions`,
/// `TurnOptions`, `Event`, `Turn`, `SessionInfo`, `SessionStats`, `Verdict`,
/// `LifecycleRecord`, `LogRecord` and what they use. `x-hotplex-metrics`
/// lists the metric families (name, type, labels, help).
pub fn schema() -> Value {
    let mut gen = SchemaSettings::draft2020_12().into_generator();
    let roots = [
        gen.subschema_for::<EngineOptions>(),
        gen.subschema_for::<TurnOptions>(),
        gen.subschema_for::<Event>(),
        gen.subschema_for::<Turn>(),
        gen.subschema_for::<SessionInfo>(),
        gen.subschema_for::<SessionStats>(),
        gen.subschema_for::<Verdict>(),
        gen.subschema_for::<ErrorCode>(),
        gen.subschema_for::<super::telemetry::LifecycleRecord>(),
        gen.subschema_for::<super::telemetry::LogRecord>(),
    ];
    let roots: Vec<Value> = roots.into_iter().map(|s| s.to_value()).collect();
    let defs = gen.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hotplex contract",
        "description": "The types every hotplex binding shares (generated from hotplex-core's contract module; do not edit).",
        "version": crate::VERSION,
        "anyOf": roots,
        "$defs": defs,
        "x-hotplex-errors": ErrorCode::table(),
        "x-hotplex-events": Event::NAMES,
        "x-hotplex-metrics": crate::telemetry::METRICS.iter().map(|m| json!({
            "name": m.name, "type": m.kind.as_str(), "labels": m.labels, "help": m.help,
        })).collect::<Vec<_>>(),
    })
}

/// The schema as the committed file holds it: pretty-printed, ending in a
/// newline.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}
