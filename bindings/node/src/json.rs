//! JavaScript's camelCase over the core's snake_case JSON, both ways.
//!
//! Options come in as JS objects: their top-level keys are snake_cased for
//! `EngineOptions::from_json` / `TurnOptions::from_json` (never the keys
//! inside `env`: those are variable names), and an error the core raises
//! names the option back as the user wrote it. Records go out as the core's
//! JSON with every key camelCased, except inside the agent's own payloads (a
//! tool call's `input`), and with a `danger_block` verdict in the shape
//! `Detector` returns.

use std::collections::HashMap;

use hotplex_core as hc;
use serde_json::{Map, Value};

use crate::to_js_verdict;

/// `cost_usd` -> `costUsd`.
pub(crate) fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// `maxSessions` -> `max_sessions`.
pub(crate) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every object key in `v` camelCased, recursively.
pub(crate) fn camel_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(camel_map(m)),
        Value::Array(a) => Value::Array(a.into_iter().map(camel_keys).collect()),
        v => v,
    }
}

fn camel_map(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .map(|(k, v)| (camel(&k), camel_keys(v)))
        .collect()
}

/// The options object as the user wrote its keys, by their wire names: so
/// that `max_sessions: ...` in a core error reads `maxSessions: ...`.
#[derive(Default)]
pub(crate) struct OptionNames(HashMap<String, String>);

impl OptionNames {
    /// The wire name of the user's top-level `key`, remembered for
    /// [`rename`](Self::rename); `None` for a key that is not camelCase
    /// (`max_sessions` is not an option of this API, and must not pass for
    /// `maxSessions`).
    pub(crate) fn wire(&mut self, key: &str) -> Option<String> {
        if key.contains('_') {
            return None;
        }
        let wire = snake(key);
        self.0.insert(wire.clone(), key.to_owned());
        Some(wire)
    }

    fn js<'a>(&'a self, wire: &'a str) -> std::borrow::Cow<'a, str> {
        match self.0.get(wire) {
            Some(k) => k.into(),
            None if is_wire_name(wire) => camel(wire).into(),
            None => wire.into(),
        }
    }

    /// `err` with the option names in its message as JavaScript spells
    /// them: the leading option path (`max_sessions: ...`, `env.A: ...`:
    /// only its first segment, `env`'s keys are variable names) and every
    /// name in backticks (serde's `unknown field `x`, expected one of ...`).
    pub(crate) fn rename(&self, err: hc::Error) -> hc::Error {
        let hc::Error::InvalidConfig(msg) = err else {
            return err;
        };
        let (head, rest) = match msg.split_once(": ") {
            Some((head, rest)) => {
                let cut = head.find(['.', '[']).unwrap_or(head.len());
                let (first, tail) = head.split_at(cut);
                // `session.max_turns` -> `session.maxTurns`; `env.A_B` stays.
                let tail = match first {
                    "session" | "images" | "limits" | "placement" => camel_first_segment(tail),
                    _ => tail.to_owned(),
                };
                (format!("{}{tail}: ", self.js(first)), rest)
            }
            None => (String::new(), msg.as_str()),
        };
        let rest: Vec<String> = rest
            .split('`')
            .enumerate()
            .map(|(i, part)| match i % 2 {
                1 => self.js(part).into_owned(),
                _ => part.to_owned(),
            })
            .collect();
        hc::Error::InvalidConfig(head + &rest.join("`"))
    }
}

/// `v` with every whole number an integer. A JavaScript number is a double,
/// and napi hands over whole numbers past 2^32 as floats, which the core's
/// integer options (`limits.memoryBytes: 8 * 2 ** 30`) would refuse; below
/// 2^53 a whole double is exactly that integer.
pub(crate) fn whole_numbers(v: Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (0.0..=EXACT).contains(&f) => Value::from(f as u64),
            Some(f) if f.fract() == 0.0 && (-EXACT..0.0).contains(&f) => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(whole_numbers).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, whole_numbers(v))).collect())
        }
        v => v,
    }
}

/// The wire form of option `key`'s JSON `value` for the options whose own
/// keys are camelCase too (one level down, never deeper: `session.env`
/// holds variable names, `session.jsonSchema` a schema): `session`
/// (`maxTurns` -> `max_turns`), the engine's `limits` (`maxProcesses` ->
/// `max_processes`) and `placement` (`leaseTtl` -> `lease_ttl`), and each
/// of `images` (`mediaType` -> `media_type`). A
/// snake_case key there is an unknown option, as at the top level.
pub(crate) fn nested_wire(key: &str, value: Value) -> hc::Result<Value> {
    let snake_keys = |path: &str, v: Value| -> hc::Result<Value> {
        let Value::Object(m) = v else { return Ok(v) };
        let mut out = Map::new();
        for (k, v) in m {
            if k.contains('_') {
                return Err(hc::Error::InvalidConfig(format!(
                    "{path}: unknown field `{k}` (options are camelCase)"
                )));
            }
            out.insert(snake(&k), v);
        }
        Ok(Value::Object(out))
    };
    match (key, value) {
        ("session", v) => snake_keys("session", v),
        ("limits", v) => snake_keys("limits", v),
        ("placement", v) => snake_keys("placement", v),
        ("prewarm", Value::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| prewarm_wire(&format!("prewarm[{i}]"), v))
            .collect::<hc::Result<Vec<_>>>()
            .map(Value::Array),
        ("images", Value::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| snake_keys(&format!("images[{i}]"), v))
            .collect::<hc::Result<Vec<_>>>()
            .map(Value::Array),
        (_, v) => Ok(v),
    }
}

/// The wire form of a prewarm profile as JavaScript writes it (`{ spares,
/// workdir, session: { maxTurns } }`, at `path`): its keys snake_cased,
/// and its `session`'s as [`nested_wire`] does. What is not an object is
/// left for the core to refuse.
pub(crate) fn prewarm_wire(path: &str, value: Value) -> hc::Result<Value> {
    let Value::Object(m) = value else {
        return Ok(value);
    };
    let mut out = Map::new();
    for (k, v) in m {
        if k.contains('_') {
            return Err(hc::Error::InvalidConfig(format!(
                "{path}: unknown field `{k}` (options are camelCase)"
            )));
        }
        let v = nested_wire(&k, v)?;
        out.insert(snake(&k), v);
    }
    Ok(Value::Object(out))
}

/// `tail` of an option path (`.max_turns`, `[0].media_type`) with its first
/// named segment camelCased (`.maxTurns`, `[0].mediaType`); deeper
/// segments are the user's own keys and stay.
fn camel_first_segment(tail: &str) -> String {
    if let Some(rest) = tail.strip_prefix('.') {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (seg, after) = rest.split_at(end);
        if is_wire_name(seg) {
            return format!(".{}{after}", camel(seg));
        }
    } else if tail.starts_with('[') {
        if let Some(close) = tail.find(']') {
            let (index, after) = tail.split_at(close + 1);
            return format!("{index}{}", camel_first_segment(after));
        }
    }
    tail.to_owned()
}

/// Whether `s` looks like an option's wire name (`turn_timeout`), not a
/// value or a phrase.
fn is_wire_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Converts a turn's events to their JS shape `{ type, data }`, in order:
/// a `danger_block` verdict's `span` indexes the text it judged (the
/// prompt, or the command of the tool call before it) in UTF-16 offsets,
/// like every verdict `Detector` returns.
pub(crate) struct Events {
    prompt: std::sync::Arc<str>,
    command: Option<String>,
}

impl Events {
    /// For the events of a turn on `prompt`.
    pub(crate) fn new(prompt: std::sync::Arc<str>) -> Events {
        Events {
            prompt,
            command: None,
        }
    }

    /// The next event, as JS sees it.
    pub(crate) fn js(&mut self, e: &hc::Event) -> Value {
        let mut data = match e.data() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        // The agent's payload, kept exactly as it was sent.
        let input = data.remove("input");
        if let Some(input) = &input {
            let cmd = input.get("command").and_then(Value::as_str);
            self.command = cmd.map(str::to_owned);
        }
        data.remove("verdict");
        let mut data = camel_map(data);
        if let Some(input) = input {
            data.insert("input".into(), input);
        }
        if let hc::Event::DangerBlock { verdict } = e {
            let text = self.command.as_deref().unwrap_or(&self.prompt);
            let v = serde_json::to_value(to_js_verdict(verdict, text)).unwrap_or(Value::Null);
            data.insert("verdict".into(), v);
        }
        let mut out = Map::new();
        out.insert("type".into(), e.name().into());
        out.insert("data".into(), Value::Object(data));
        Value::Object(out)
    }
}

/// A finished turn on `prompt`, as JS sees it: camelCase keys, except in
/// the agent's payloads (tool inputs, `structuredOutput`, the value the
/// session's JSON Schema shaped).
pub(crate) fn turn(t: &hc::Turn, prompt: &std::sync::Arc<str>) -> Value {
    let mut events = Events::new(prompt.clone());
    let events: Vec<Value> = t.events.iter().map(|e| events.js(e)).collect();
    let mut v = t.to_json();
    let mut structured = Value::Null;
    if let Some(o) = v.as_object_mut() {
        o.remove("events");
        structured = o.remove("structured_output").unwrap_or(Value::Null);
    }
    let mut v = camel_keys(v);
    if let Some(o) = v.as_object_mut() {
        o.insert("events".into(), Value::Array(events));
        o.insert("structuredOutput".into(), structured);
    }
    v
}
