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
    /// A contained process could not be started (program not found, exec
    /// failed, the supervisor could not be forked, ...).
    #[error("spawn failed: {0}")]
    Spawn(String),
    /// An operating-system call failed (pipes, sockets, files in the state
    /// directory, ...). Holds the rendered `std::io::Error`.
    #[error("i/o error: {0}")]
    Io(String),
    /// Containment could not be confirmed: the supervisor of a session died
    /// before reporting that its process tree was empty.
    #[error("containment failure: {0}")]
    Containment(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// `Result` with [`enum@Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
