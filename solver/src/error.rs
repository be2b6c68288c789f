//! The one error shape every module uses for a failed file operation: what
//! was being done, and on which path (uv's rule: an I/O error that does not
//! name its path is not actionable).

use std::io;
use std::path::{Path, PathBuf};

/// A file operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to {operation} `{}`", path.display())]
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
}
