//! `hotplex.Verdict`: the answer of a WAF check.

use hotplex_core::waf::{self, Category, Level};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::text::char_span;

/// The outcome of screening one command, prompt or tool call.
///
/// When several rules match, the most severe one is reported. `blocked` is
/// true for "critical" and "high": the caller must not run the input.
/// "moderate" means a person should confirm; "safe" means no rule matched.
/// Verdicts are immutable and compare equal when all fields are equal.
#[pyclass(frozen, eq, module = "hotplex", name = "Verdict")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    level: Level,
    blocked: bool,
    rule_id: Option<String>,
    category: Option<Category>,
    reason: String,
    span: Option<(usize, usize)>,
    canonical: Option<String>,
    suggestions: Vec<String>,
}

impl Verdict {
    /// Converts a core verdict. `span_base` is the text the core's byte span
    /// indexes (the checked command or prompt, or a Bash tool's `command`);
    /// the span becomes character offsets into it, or `None` without one.
    pub fn from_core(v: waf::Verdict, span_base: Option<&str>) -> Verdict {
        let span = match (v.span, span_base) {
            (Some(r), Some(text)) => char_span(text, r),
            _ => None,
        };
        Verdict {
            level: v.level,
            blocked: v.blocked,
            rule_id: v.rule_id,
            category: v.category,
            reason: v.reason,
            span,
            canonical: v.canonical,
            suggestions: v.suggestions,
        }
    }
}

#[pymethods]
impl Verdict {
    /// Severity name: "critical", "high", "moderate" or "safe".
    #[getter]
    fn level(&self) -> &'static str {
        self.level.as_str()
    }

    /// Severity number: 1 (critical), 2 (high), 3 (moderate) or -1 (safe).
    #[getter]
    fn level_value(&self) -> i32 {
        self.level.as_i32()
    }

    /// True when the level is "critical" or "high": do not run the input.
    #[getter]
    fn blocked(&self) -> bool {
        self.blocked
    }

    /// Id of the reported rule, e.g. "file_delete.rm_root"; None when safe.
    #[getter]
    fn rule_id(&self) -> Option<&str> {
        self.rule_id.as_deref()
    }

    /// Category of the reported rule, e.g. "file_delete"; None when safe.
    #[getter]
    fn category(&self) -> Option<&'static str> {
        self.category.map(Category::as_str)
    }

    /// Human-readable reason: the rule's description, or "no rule matched".
    #[getter]
    fn reason(&self) -> &str {
        &self.reason
    }

    /// (start, end) character offsets of the matched part of the checked
    /// str (for check_tool: of the Bash tool's "command"), so
    /// text[start:end] is the match; None when safe or unknown.
    #[getter]
    fn span(&self) -> Option<(usize, usize)> {
        self.span
    }

    /// The text the reported rule judged (the canonical command after quote
    /// removal and wrapper stripping, or the raw text); None when safe.
    #[getter]
    fn canonical(&self) -> Option<&str> {
        self.canonical.as_deref()
    }

    /// What to do instead (a new list on every access).
    #[getter]
    fn suggestions(&self) -> Vec<String> {
        self.suggestions.clone()
    }

    /// All fields as a plain dict (JSON-serialisable; span is a tuple or None).
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("level", self.level())?;
        d.set_item("level_value", self.level_value())?;
        d.set_item("blocked", self.blocked)?;
        d.set_item("rule_id", self.rule_id())?;
        d.set_item("category", self.category())?;
        d.set_item("reason", self.reason())?;
        d.set_item("span", self.span)?;
        d.set_item("canonical", self.canonical())?;
        d.set_item("suggestions", self.suggestions())?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |s: &str| -> PyResult<String> {
            Ok(PyString::new(py, s).repr()?.to_cow()?.into_owned())
        };
        let mut out = format!(
            "Verdict(level={}, blocked={}",
            repr(self.level())?,
            if self.blocked { "True" } else { "False" }
        );
        if let Some(id) = &self.rule_id {
            out.push_str(&format!(", rule_id={}", repr(id)?));
        }
        if let Some(c) = self.category {
            out.push_str(&format!(", category={}", repr(c.as_str())?));
        }
        if let Some((s, e)) = self.span {
            out.push_str(&format!(", span=({s}, {e})"));
        }
        out.push_str(&format!(", reason={})", repr(&self.reason)?));
        Ok(out)
    }
}
