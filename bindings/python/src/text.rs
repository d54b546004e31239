//! Text arguments: `str | bytes` to UTF-8, and byte spans to character spans.

use std::borrow::Cow;
use std::ops::Range;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::invalid_utf8;

/// Reads a `str` or `bytes` argument as UTF-8.
///
/// A `str` holding lone surrogates, or `bytes` that are not valid UTF-8,
/// raise `hotplex.InvalidUtf8`; any other type raises `TypeError`. `what`
/// names the argument in messages.
pub fn text_arg<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, str>> {
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_cow().map_err(|e| {
            invalid_utf8(
                py,
                format!("{what} is not valid Unicode (it contains a lone surrogate)"),
                Some(e),
            )
        });
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return std::str::from_utf8(b.as_bytes())
            .map(Cow::Borrowed)
            .map_err(|e| invalid_utf8(py, format!("{what} is not valid UTF-8: {e}"), None));
    }
    let ty = obj.get_type();
    let ty_name = ty.name().map_or_else(|_| "?".into(), |n| n.to_string());
    Err(PyTypeError::new_err(format!(
        "{what} must be str or bytes, not {ty_name}"
    )))
}

/// Converts a byte range of `text` into `(start, end)` character offsets, as
/// Python indexes a `str`. `None` if the range is not on character
/// boundaries of `text` (it then belongs to some other text).
pub fn char_span(text: &str, span: Range<usize>) -> Option<(usize, usize)> {
    let head = text.get(..span.start)?;
    let matched = text.get(span)?;
    let start = head.chars().count();
    Some((start, start + matched.chars().count()))
}
