//! Files replaced atomically: written to a temporary file beside their
//! target, then renamed over it, so that a reader (another thread, another
//! strata, the next run after a crash) sees the old file or the whole new
//! one, never a part of it.
//!
//! Every temporary name of the solver comes from [`unique_name`]: the
//! process id, a process-wide counter and the clock's nanoseconds. Two
//! processes differ by pid; two threads, or two calls on one thread, by
//! the counter; a process that reuses the pid of one that crashed mid-write
//! by the nanoseconds. So no two writers ever share a temporary file, and
//! a writer never removes another's.
//!
//! Two shapes use it:
//!
//! - The store's own files (blobs, image records) are written in the
//!   store's `tmp/` as `<unique>` (and staging directories as
//!   `<unique>.<purpose>`), then renamed into place through the store's
//!   checked directories (`Store::temp_file`, `Store::commit_temp`,
//!   `store::index`). What a crash leaves is in `tmp/`, which `system
//!   check` counts and garbage collection removes whole.
//! - Any other file ([`write`], [`write_with`]) is written beside its
//!   target as `.<name>.<unique>.tmp`: hidden, so that the listings that
//!   skip dot-files (the build cache's records, cache mounts) never take
//!   it for a finished one, and on the target's filesystem, so that the
//!   rename is atomic. What a crash leaves there is known by its name: in
//!   the store, `system check` lists those whose writer is gone
//!   ([`abandoned`]) and garbage collection removes them
//!   (`store::leftovers`).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::PathError;

/// Temporary names made by this process so far.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer uses at the same time: `<pid>-<counter>-<nanos>`.
pub(crate) fn unique_name() -> String {
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        crate::time::subsec_nanos()
    )
}

/// The temporary file beside `path` that [`write_with`] renames to it:
/// `.<name>.<unique>.tmp`.
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", unique_name()));
    path.with_file_name(name)
}

/// How long a temporary file beside its target may stay untouched before
/// it is taken for abandoned even though a process with its writer's pid
/// is alive (pids are reused, and within containers soon): every such
/// file is written in one go, in well under a second.
pub(crate) const ABANDONED: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The pid of the writer of `name`, when it is a temporary file
/// [`temp_beside`] names (`.<name>.<pid>-<counter>-<nanos>.tmp`, or
/// `.<name>.<pid>.tmp` as older versions named them).
pub(crate) fn writer_of(name: &std::ffi::OsStr) -> Option<u32> {
    let inner = name.to_str()?.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (target, unique) = inner.rsplit_once('.')?;
    let pid = unique.split('-').next()?;
    if target.is_empty() || pid.is_empty() || !pid.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `name`, last modified at `modified`, is a temporary file beside
/// its target that nobody will rename any more: its writer is no live
/// process, or it has been left for [`ABANDONED`]. Such a file is garbage
/// (a crash between creating it and renaming it left it).
pub(crate) fn abandoned(name: &std::ffi::OsStr, modified: std::time::SystemTime) -> bool {
    let Some(pid) = writer_of(name) else {
        return false;
    };
    let alive = i32::try_from(pid).is_ok_and(|pid| {
        // Signal 0 checks only: EPERM is another user's live process.
        !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
    });
    let untouched = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    !alive || untouched >= ABANDONED
}

/// How a file is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// Sync the file's data before the rename, so that the new name never
    /// points at data still only in memory when the machine stops (for the
    /// files that must survive that: credentials). Without it, a crash may
    /// leave the file empty, which its readers treat as absent.
    pub(crate) sync: bool,
    /// The new file's mode (before the umask).
    pub(crate) mode: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: false,
            mode: 0o666,
        }
    }
}

/// Replace `path` with what `write` writes into the file it is given
/// (a fresh temporary file beside it, created with `options.mode`); on any
/// error the temporary file is removed and `path` is left as it was.
pub(crate) fn write_with<E: From<PathError>>(
    path: &Path,
    options: Options,
    write: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<(), E> {
    let temp = temp_beside(path);
    crate::fault::point(crate::fault::Kind::Write, &temp);
    // `create_new` (O_EXCL): never through a link, never someone else's.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(options.mode)
        .open(&temp)
        .map_err(PathError::at::<E>("create", &temp))?;
    let written = write(&mut file).and_then(|()| {
        if options.sync {
            crate::fault::point(crate::fault::Kind::Fsync, &temp);
            file.sync_all().map_err(PathError::at::<E>("sync", &temp))
        } else {
            Ok(())
        }
    });
    drop(file);
    let replaced = written.and_then(|()| {
        crate::fault::point(crate::fault::Kind::Rename, path);
        std::fs::rename(&temp, path).map_err(PathError::at("replace", path))
    });
    if replaced.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    replaced
}

/// Replace `path` with `bytes` (see [`write_with`]).
pub(crate) fn write(path: &Path, bytes: &[u8], options: Options) -> Result<(), PathError> {
    write_with(path, options, |file| {
        file.write_all(bytes).map_err(PathError::at("write", path))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_never_repeat_across_threads() {
        let names: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| (0..1000).map(|_| unique_name()).collect::<Vec<_>>()))
                .collect();
            threads
                .into_iter()
                .flat_map(|thread| thread.join().unwrap())
                .collect()
        });
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        let pid = std::process::id().to_string();
        assert!(
            names
                .iter()
                .all(|name| name.split('-').next() == Some(&pid))
        );
    }

    #[test]
    fn a_file_is_replaced_whole_and_nothing_is_left_beside_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write(&path, b"old", Options::default()).unwrap();
        let private = Options {
            sync: true,
            mode: 0o600,
        };
        // Many writers at once: each renames its own temporary file.
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| write(&path, b"new", private).unwrap());
            }
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["record.json"]);
        // A failed write leaves the old file and no temporary one.
        let failed = write_with(&path, Options::default(), |file| {
            file.write_all(b"partial")
                .map_err(PathError::at("write", &path))?;
            Err(PathError::at::<PathError>("write", &path)(
                std::io::Error::other("full"),
            ))
        });
        assert_eq!(
            failed.unwrap_err().to_string(),
            format!("failed to write `{}`", path.display())
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let temp = temp_beside(&path);
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".record.json.") && name.ends_with(".tmp"),
            "{name}"
        );
    }

    #[test]
    fn a_temporary_file_whose_writer_is_gone_is_abandoned() {
        use std::ffi::OsStr;
        use std::time::{Duration, SystemTime};
        let now = SystemTime::now();
        let ours = temp_beside(Path::new("/cache/steps/0123abcd"));
        let ours = ours.file_name().unwrap();
        assert_eq!(writer_of(ours), Some(std::process::id()));
        assert_eq!(writer_of(OsStr::new(".0123.json.77.tmp")), Some(77));
        for other in [
            "0123.json",
            ".0123.json",
            ".x.tmp",
            "..1-2-3.tmp",
            ".a.b-1.tmp",
        ] {
            assert_eq!(writer_of(OsStr::new(other)), None, "{other}");
        }
        // Our own, fresh: a live writer's. Left for a day: abandoned.
        assert!(!abandoned(ours, now));
        assert!(abandoned(ours, now - ABANDONED - Duration::from_secs(1)));
        // A writer that exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let name = format!(".0123.json.{gone}-0-0.tmp");
        assert!(abandoned(OsStr::new(&name), now));
        // Not a temporary file: never.
        assert!(!abandoned(OsStr::new("0123.json"), now - ABANDONED * 2));
    }
}
