//! Crash points for the fault-injection tests (`tests/it/faults.rs`):
//! strata killed at one chosen rename, fsync, unlink or write, so that the
//! tests can show every crash leaves a store `system check` accepts and
//! the next run puts right.
//!
//! # Compiled for tests only
//!
//! The points exist only with the `failpoints` feature, which the root
//! package's dev-dependencies turn on: `cargo test` builds the binary with
//! it, `cargo build` and `cargo build --release` without. Without it
//! `point` and `point_at` are empty and inlined, and no label is ever
//! made (`point_at` joins its path only when the feature is on), so a
//! release binary has neither the code nor the variable's name in it.
//!
//! Our own module rather than the `fail` crate: all we need is "die at the
//! n-th point", counted across all kinds and threads, with the point's name
//! written down first; `fail` names each point and configures them one by
//! one, which is the wrong shape for enumerating every point of a run. An
//! LD_PRELOAD shim would also count the libraries' and the sandbox's own
//! calls, which are not ours to make crash-safe.
//!
//! # At run time
//!
//! - `STRATA_FAULT=count`: every point reached appends a line
//!   `<kind> <label>` to the file `STRATA_FAULT_LOG`, so the number of
//!   lines is the number of points of the run.
//! - `STRATA_FAULT=<n>` (from 1): at the n-th point the process writes that
//!   point's line to `STRATA_FAULT_LOG` and ends at once with
//!   [`CRASH_EXIT`] through `_exit(2)`: no destructor, no unwinding, no
//!   buffered data flushed, no lock released but by the kernel closing the
//!   descriptors, as when the process is killed. (The page cache survives,
//!   as it does a killed process: this is a process crash, not a power
//!   cut.)
//!
//! The sandbox helper and the commands a RUN runs never see the variable
//! (their environment is built from nothing, `exec::Sandbox`), so only
//! strata's own process counts.
//!
//! # Where the points are
//!
//! Before each operation that changes the store, at the layer that does
//! it: a rename into place, a sync, an unlink (a file, a directory tree,
//! a lease) and a write, one point per file written (before its first
//! byte, and once more before its last for blobs, whose bytes go out in
//! pieces), not per buffer: a tree unpacked into a staging directory is
//! one point, since until its rename nothing outside `tmp/` sees it. So
//! a build has some hundred points, not some hundred thousand.

use std::ffi::OsStr;
use std::path::Path;

/// What the operation at a point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A rename (a file or directory moved into place).
    Rename,
    /// An fsync or fdatasync.
    Fsync,
    /// An unlink or the removal of a directory tree.
    Unlink,
    /// A write of a file (its creation, or a piece of it).
    Write,
}

impl Kind {
    #[cfg_attr(not(feature = "failpoints"), expect(dead_code))]
    fn name(self) -> &'static str {
        match self {
            Kind::Rename => "rename",
            Kind::Fsync => "fsync",
            Kind::Unlink => "unlink",
            Kind::Write => "write",
        }
    }
}

/// The exit status of a process stopped at a point.
pub const CRASH_EXIT: i32 = 86;

/// A point before an operation of `kind` on `path`.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn point(_kind: Kind, _path: &Path) {}

/// A point before an operation of `kind` on `name` in `dir`.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn point_at(_kind: Kind, _dir: &Path, _name: &OsStr) {}

/// A point before an operation of `kind` on `path`.
#[cfg(feature = "failpoints")]
pub(crate) fn point(kind: Kind, path: &Path) {
    armed::reach(kind, path);
}

/// A point before an operation of `kind` on `name` in `dir`.
#[cfg(feature = "failpoints")]
pub(crate) fn point_at(kind: Kind, dir: &Path, name: &OsStr) {
    armed::reach(kind, &dir.join(name));
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{CRASH_EXIT, Kind};

    /// What `STRATA_FAULT` asks for.
    enum Mode {
        Off,
        Count(PathBuf),
        CrashAt(u64, PathBuf),
    }

    static MODE: OnceLock<Mode> = OnceLock::new();
    /// Points reached so far by this process.
    static REACHED: AtomicU64 = AtomicU64::new(0);

    fn mode() -> &'static Mode {
        MODE.get_or_init(|| {
            let Some(asked) = std::env::var_os("STRATA_FAULT") else {
                return Mode::Off;
            };
            let log = std::env::var_os("STRATA_FAULT_LOG")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/dev/null"));
            match asked.to_str() {
                Some("count") => Mode::Count(log),
                Some(number) => match number.parse() {
                    Ok(n) if n > 0 => Mode::CrashAt(n, log),
                    _ => Mode::Off,
                },
                None => Mode::Off,
            }
        })
    }

    fn log(log: &Path, kind: Kind, path: &Path) {
        let line = format!("{} {}\n", kind.name(), path.display());
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }

    pub(super) fn reach(kind: Kind, path: &Path) {
        match mode() {
            Mode::Off => {}
            Mode::Count(file) => {
                REACHED.fetch_add(1, Ordering::SeqCst);
                log(file, kind, path);
            }
            Mode::CrashAt(n, file) => {
                if REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *n {
                    log(file, kind, path);
                    // `_exit(2)`, as a forked child ends: nothing of the
                    // process runs after it.
                    crate::sys::exit_child(CRASH_EXIT);
                }
            }
        }
    }
}
