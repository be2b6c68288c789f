//! Helpers: run the `strata` binary and build throwaway contexts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The result of one run of `strata`.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Run `strata ARGS...` in `dir` with `stdin` as standard input.
pub(crate) fn strata_in(
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("failed to start strata");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Run `strata ARGS...` at the repository root.
pub(crate) fn strata(args: &[&str]) -> Run {
    strata_in(&repository(), args, None, &[])
}

pub(crate) fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary build context.
pub(crate) struct Context {
    pub(crate) dir: tempfile::TempDir,
}

impl Context {
    pub(crate) fn new() -> Self {
        Context {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn file(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub(crate) fn dockerfile(self, content: &str) -> Self {
        self.file("Dockerfile", content)
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run `strata ARGS...` inside the context directory.
    pub(crate) fn strata(&self, args: &[&str]) -> Run {
        strata_in(self.path(), args, None, &[])
    }
}
