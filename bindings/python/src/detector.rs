//! `hotplex.Detector`: the command WAF.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use hotplex_core::waf::{self, AuditEvent, CheckKind};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyString};
use pyo3::{PyTraverseError, PyVisit};

use crate::errors::core_error;
use crate::text::text_arg;
use crate::verdict::Verdict;

/// The audit callback, shared between the `Detector` (for the garbage
/// collector) and the closure the core calls.
type AuditSlot = Arc<Mutex<Option<Py<PyAny>>>>;

fn lock(slot: &Mutex<Option<Py<PyAny>>>) -> MutexGuard<'_, Option<Py<PyAny>>> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The text a verdict's byte span indexes, for an audited input: the input
/// itself, or for a tool call the `command` field of its JSON.
fn span_base(kind: CheckKind, input: &str) -> Option<Cow<'_, str>> {
    match kind {
        CheckKind::Tool => tool_command(input).map(Cow::Owned),
        _ => Some(Cow::Borrowed(input)),
    }
}

/// The string `command` field of a tool input object, which is what the core
/// screens (and what spans index) for Bash-like tools.
fn tool_command(input_json: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(input_json) {
        Ok(serde_json::Value::Object(mut map)) => match map.remove("command") {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// Runs the Python audit callback for one event. Called by the core on the
/// checking thread, which has released the GIL: take it back for the call.
/// An exception in the callback is reported through `sys.unraisablehook`
/// and does not affect the check.
fn deliver(slot: &Mutex<Option<Py<PyAny>>>, ev: &AuditEvent<'_>) {
    Python::attach(|py| {
        let Some(callback) = lock(slot).as_ref().map(|cb| cb.clone_ref(py)) else {
            return;
        };
        let base = span_base(ev.kind, ev.input);
        let verdict = Verdict::from_core(ev.verdict.clone(), base.as_deref());
        if let Err(err) = callback.call1(py, (ev.kind.as_str(), ev.input, verdict)) {
            err.write_unraisable(py, Some(callback.bind(py)));
        }
    });
}

/// JSON text for a `check_tool` input given as a mapping.
fn mapping_to_json<'py>(input: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = input.py();
    let dumps = DUMPS.import(py, "json", "dumps")?;
    let obj = if input.is_instance_of::<PyDict>() {
        input.clone()
    } else {
        py.get_type::<PyDict>().call1((input,))?
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("ensure_ascii", false)?;
    dumps.call((obj,), Some(&kwargs))
}

/// An explanation as a plain dict, with the keys of its JSON form; verdicts
/// as `Verdict.to_dict()` gives them (spans in characters of `text`), and
/// each hit with a `level_value` beside its `level`, as verdicts have.
fn explanation_dict<'py>(
    py: Python<'py>,
    e: waf::Explanation,
    text: &str,
) -> PyResult<Bound<'py, PyDict>> {
    // Exhaustive on purpose: a new field must be added here too.
    let waf::Explanation {
        input,
        control,
        commands,
        redirects,
        pipelines,
        code,
        incomplete,
        hits,
        effects,
        verdict,
    } = e;
    let verdict_dict = |v: waf::Verdict| Verdict::from_core(v, Some(text)).to_dict(py);
    let d = PyDict::new(py);
    d.set_item("input", input)?;
    d.set_item("control", control.map(verdict_dict).transpose()?)?;
    d.set_item("commands", commands)?;
    d.set_item("redirects", redirects)?;
    d.set_item("pipelines", pipelines)?;
    d.set_item("code", code)?;
    d.set_item("incomplete", incomplete)?;
    let hit_list = PyList::empty(py);
    for waf::Hit {
        rule_id,
        level,
        category,
        scope,
        text: matched,
    } in hits
    {
        let h = PyDict::new(py);
        h.set_item("rule_id", rule_id)?;
        h.set_item("level", level.as_str())?;
        h.set_item("level_value", level.as_i32())?;
        h.set_item("category", category.as_str())?;
        h.set_item("scope", scope)?;
        h.set_item("text", matched)?;
        hit_list.append(h)?;
    }
    d.set_item("hits", hit_list)?;
    d.set_item("effects", effects)?;
    d.set_item("verdict", verdict_dict(verdict)?)?;
    Ok(d)
}

/// The command WAF: screens shell commands, prompts and Claude Code tool
/// calls before they run.
///
/// rules: custom rule text, in the line format
/// ("pattern|description|level|category[|danger|safe]" per line) or as a
/// JSON array of rule objects; custom rules come after the built-in ones.
/// allow_paths: absolute paths (str or os.PathLike) that file tools may
/// touch even where a rule would object. builtin_rules: False to use only
/// the custom rules. on_audit: a callable receiving (kind, input, verdict)
/// for every non-safe verdict, synchronously and in call order; kind is
/// "command", "prompt" or "tool". An exception in it is reported through
/// sys.unraisablehook and does not affect the check.
///
/// A Detector is immutable and thread-safe; checks release the GIL.
/// Raises InvalidRule for a bad custom rule and InvalidArgument for a
/// relative allow path.
#[pyclass(frozen, module = "hotplex", name = "Detector")]
pub struct Detector {
    inner: waf::Detector,
    audit: AuditSlot,
}

impl Detector {
    /// The core detector (clones share the compiled rules).
    pub fn core(&self) -> &waf::Detector {
        &self.inner
    }

    /// Wraps a core detector (its audit hook, if any, stays in Rust).
    pub fn from_core(inner: waf::Detector) -> Detector {
        Detector {
            inner,
            audit: Arc::new(Mutex::new(None)),
        }
    }
}

#[pymethods]
impl Detector {
    #[new]
    #[pyo3(signature = (rules=None, allow_paths=None, builtin_rules=true, on_audit=None))]
    fn new(
        py: Python<'_>,
        rules: Option<&Bound<'_, PyAny>>,
        allow_paths: Option<&Bound<'_, PyAny>>,
        builtin_rules: bool,
        on_audit: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Detector> {
        let mut builder = waf::Detector::builder();
        builder.builtin_rules(builtin_rules);
        if let Some(rules) = rules {
            let text = text_arg(rules, "rules")?;
            builder
                .rules_from_str(&text)
                .map_err(|e| core_error(py, e))?;
        }
        if let Some(paths) = allow_paths {
            if paths.is_instance_of::<PyString>() || paths.is_instance_of::<PyBytes>() {
                return Err(PyTypeError::new_err(
                    "allow_paths must be an iterable of paths, not a single str or bytes",
                ));
            }
            for item in paths.try_iter()? {
                let path: PathBuf = item?.extract()?;
                builder.allow_path(path).map_err(|e| core_error(py, e))?;
            }
        }
        if let Some(cb) = &on_audit {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("on_audit must be callable"));
            }
        }
        let audit: AuditSlot = Arc::new(Mutex::new(on_audit.map(Bound::unbind)));
        if lock(&audit).is_some() {
            let slot = Arc::clone(&audit);
            builder.on_audit(move |ev| deliver(&slot, ev));
        }
        let inner = py
            .detach(|| builder.build())
            .map_err(|e| core_error(py, e))?;
        Ok(Detector { inner, audit })
    }

    /// Screens a shell command line, as an agent's Bash tool would run it.
    /// command is a str or UTF-8 bytes; raises InvalidUtf8 otherwise.
    fn check_command(&self, py: Python<'_>, command: &Bound<'_, PyAny>) -> PyResult<Verdict> {
        let text = text_arg(command, "command")?;
        let text: &str = &text;
        let inner = &self.inner;
        Ok(py.detach(|| Verdict::from_core(inner.check_command(text), Some(text))))
    }

    /// Screens a natural-language prompt. Prose never blocks; code in it
    /// (fenced blocks, inline code, command lines) is judged as commands.
    /// prompt is a str or UTF-8 bytes; raises InvalidUtf8 otherwise.
    fn check_prompt(&self, py: Python<'_>, prompt: &Bound<'_, PyAny>) -> PyResult<Verdict> {
        let text = text_arg(prompt, "prompt")?;
        let text: &str = &text;
        let inner = &self.inner;
        Ok(py.detach(|| Verdict::from_core(inner.check_prompt(text), Some(text))))
    }

    /// Screens a Claude Code tool call: name is the tool name ("Bash",
    /// "Write", "Edit", "Read", ...), input its input object as a mapping
    /// (serialised with json.dumps) or as JSON text (str or bytes). Raises
    /// InvalidArgument when the input is not a JSON object. For Bash tools,
    /// the verdict's span indexes input["command"].
    fn check_tool(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        input: &Bound<'_, PyAny>,
    ) -> PyResult<Verdict> {
        let name = text_arg(name, "name")?;
        let json;
        let input = if input.is_instance_of::<PyString>() || input.is_instance_of::<PyBytes>() {
            input
        } else if input.is_instance_of::<PyMapping>() {
            json = mapping_to_json(input)?;
            &json
        } else {
            let ty = input.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "tool input must be a mapping or JSON text (str or bytes), not {ty}"
            )));
        };
        let text = text_arg(input, "tool input")?;
        let (name, text): (&str, &str) = (&name, &text);
        let inner = &self.inner;
        py.detach(|| {
            inner.check_tool(name, text).map(|v| {
                let base = tool_command(text);
                Verdict::from_core(v, base.as_deref())
            })
        })
        .map_err(|e| core_error(py, e))
    }

    /// Shows how a command is judged, for debugging rules: a plain dict with
    /// "input", "control" (the control-byte pre-check's verdict dict when it
    /// decided alone, else None), "commands" (canonical simple commands, each
    /// wrapper level on its own), "redirects", "pipelines", "code" (lists of
    /// str), "incomplete" (a parse limit was hit), "hits" (every rule that
    /// matched, in scope order: dicts with "rule_id", "level", "level_value",
    /// "category", "scope" and "text"), "effects" (what the command does, as
    /// the effect model derived it: list of str) and "verdict" (check_command's
    /// verdict, as Verdict.to_dict() gives it). Nothing is audited. command
    /// is a str or UTF-8 bytes; raises InvalidUtf8 otherwise.
    fn explain<'py>(
        &self,
        py: Python<'py>,
        command: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let text = text_arg(command, "command")?;
        let text: &str = &text;
        let inner = &self.inner;
        let e = py.detach(|| inner.explain(text));
        explanation_dict(py, e, text)
    }

    fn __repr__(&self) -> String {
        format!(
            "Detector(rules={}, on_audit={})",
            self.inner.rules().len(),
            if lock(&self.audit).is_some() {
                "True"
            } else {
                "False"
            }
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The lock is only ever held briefly by a thread that holds the GIL,
        // so it is free whenever the collector runs; never block here.
        if let Ok(slot) = self.audit.try_lock() {
            if let Some(cb) = slot.as_ref() {
                visit.call(cb)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let cb = lock(&self.audit).take();
        drop(cb);
    }
}
