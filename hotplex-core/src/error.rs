//! The one error type of hotplex-core.
//!
//! Every binding maps these variants once, into its own idiom (a status code in
//! C, exception classes in Python, `Error` with a `code` in Node, `error`
//! values in Go). Keep the variants coarse and stable: bindings key on them.

use thiserror::Error;

/// Everything that can go wrong in hotplex-core.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A custom WAF rule could not be used. `line` is 1-based: the line of a
    /// line-format file, or the array index + 1 of a JSON rule list.
    #[error("invalid rule at line {line}: {message}")]
    InvalidRule {
        /// 1-based line (or JSON element) that holds the bad rule.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// An argument was rejected (malformed JSON tool input, an empty path, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
