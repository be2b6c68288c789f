//! The one error shape every module uses for a failed file operation: what
//! was being done, and on which path (uv's rule: an I/O error that does not
//! name its path is not actionable).

use std::io;
use std::path::{Path, PathBuf};

/// A file operation that failed (its path shown escaped where it is not
/// UTF-8, see [`crate::name`]).
#[derive(Debug, thiserror::Error)]
#[error("failed to {operation} `{}`", crate::name::Shown(path))]
pub struct PathError {
    /// What was being done, e.g. "write a blob".
    pub operation: &'static str,
    /// On which path.
    pub path: PathBuf,
    /// The system's error.
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// A closure turning an `io::Error` into a `PathError` (or anything a
    /// `PathError` converts into).
    pub fn at<'a, E: From<PathError>>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> E + 'a {
        move |source| {
            PathError {
                operation,
                path: path.to_owned(),
                source,
            }
            .into()
        }
    }

    /// [`PathError::at`] where the error wanted is the `PathError` itself
    /// (which `at` cannot infer when several conversions apply).
    pub fn of<'a>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> PathError + 'a {
        Self::at(operation, path)
    }
}

/// `error` and its causes on one line, `a: b: c`: how an error is worded
/// where it must travel as text (the sandbox helper's error pipe), the way
/// the CLI words a failed build.
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
