//! Python values to and from JSON: the one converter behind options (in),
//! permission answers (in) and records (out).
//!
//! Options and answers are read by the core (`EngineOptions::from_json`,
//! `Permission::from_answer`), so this converter only translates and never
//! interprets: it accepts exactly the JSON-shaped Python values and names
//! the offending value in every error.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Deeper than this is a reference cycle or a mistake, not an option; the
/// limit keeps a self-containing list from overflowing the stack.
const MAX_DEPTH: usize = 64;

/// JSON to Python objects, through the json module (exact and simple).
pub fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

/// A Python value as JSON: dict (str keys), list, tuple, str, int, float,
/// bool, None and `os.PathLike` (through `os.fspath`). Anything else, a
/// non-finite float or an int beyond 64 bits is an error that starts with
/// `path` (the option's name, e.g. `env.A`), for `InvalidConfig`.
pub fn py_to_json(obj: &Bound<'_, PyAny>, path: &str) -> Result<Value, String> {
    convert(obj, path, 0)
}

fn convert(obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested more than {MAX_DEPTH} levels deep"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: True is an int in Python.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(i.into());
        }
        return obj
            .extract::<u64>()
            .map(Value::from)
            .map_err(|_| format!("{path}: integer {obj} is out of range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| format!("{path}: {v} is not a finite number"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_cow()
            .map(|s| Value::String(s.into_owned()))
            .map_err(|_| format!("{path}: not valid Unicode (a lone surrogate)"));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut out = Map::new();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>().map(|k| k.to_string()) else {
                return Err(format!("{path}: keys must be str, not {}", type_name(&k)));
            };
            let value = convert(&v, &format!("{path}.{key}"), depth + 1)?;
            out.insert(key, value);
        }
        return Ok(Value::Object(out));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj.try_iter().map_err(|e| format!("{path}: {e}"))?;
        let mut out = Vec::new();
        for (i, item) in items.enumerate() {
            let item = item.map_err(|e| format!("{path}[{i}]: {e}"))?;
            out.push(convert(&item, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if obj.hasattr("__fspath__").unwrap_or(false) {
        let p = obj
            .py()
            .import("os")
            .and_then(|os| os.call_method1("fspath", (obj,)))
            .map_err(|e| format!("{path}: {e}"))?;
        if let Ok(b) = p.cast::<PyBytes>() {
            return std::str::from_utf8(b.as_bytes())
                .map(|s| Value::String(s.to_owned()))
                .map_err(|_| format!("{path}: the path is not valid UTF-8"));
        }
        return convert(&p, path, depth + 1);
    }
    Err(format!(
        "{path}: unsupported type {} (expected str, int, float, bool, None, list, tuple, dict or os.PathLike)",
        type_name(obj)
    ))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}
