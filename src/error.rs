//! The one error type of the pure-Rust core. It carries plain data (no pyo3 types); the bindings
//! layer maps each variant to a Python exception in exactly one place (`python::errors`).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Called from time to time by long core loops (grid builds, directory scans); an `Err` ends the
/// work with that error. The bindings check for Ctrl-C here; the index worker for `close()`.
pub type Check<'a> = &'a dyn Fn() -> Result<()>;

/// A `Check` that never stops anything.
pub fn never() -> Result<()> {
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameters tree that cannot become a grid. `path` is the dotted parameter path
    /// (empty for the root).
    #[error("{}{message}", at(path))]
    Spec { path: String, message: String },

    /// A constraint expression that does not parse or does not type-check. `column` is 1-based.
    #[error("constraint {expr:?}, column {column}: {message}")]
    Expr {
        expr: String,
        column: usize,
        message: String,
    },

    /// A size or index that does not fit the requested integer type.
    #[error("{0}")]
    Overflow(String),

    /// An index outside the sequence.
    #[error("index {index} out of range for {what} of size {len}")]
    IndexOutOfRange {
        index: String,
        len: String,
        what: &'static str,
    },

    /// A value that was looked up and is not there (a point not in a grid).
    #[error("{0}")]
    NotFound(String),

    /// A path that could not be merged into a config tree.
    #[error("{}{message}", at(path))]
    Merge { path: String, message: String },

    /// A results-file pattern that cannot be used.
    #[error("pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },

    /// Filesystem errors, with the path involved.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A blocking wait ran out of time.
    #[error("{0}")]
    Timeout(String),

    /// An object used after `close()`.
    #[error("{0}")]
    Closed(String),

    /// Anything else that is a caller mistake (bad argument value).
    #[error("{0}")]
    Invalid(String),
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl Error {
    pub fn spec(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Spec {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
