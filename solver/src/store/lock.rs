//! The store's locks (`lock`, `gc.lock`: see [`layout`](super::layout)),
//! and saying so when one makes a command wait.
//!
//! A lock is an `flock` on its file: the kernel releases it when its holder
//! exits, however it exits, so a crashed holder never leaves the store
//! locked. Taking one first tries without waiting; when another process
//! holds it and it is still held after [`PATIENCE`], the store tells its
//! hook ([`Store::on_lock_wait`]) once ([`LockWait`]: which lock, and who holds it),
//! then waits as long as it takes.
//!
//! # Who holds it
//!
//! The holders come from the kernel's own table of locks (`/proc/locks`,
//! matched by the lock file's device and inode), not from a pid written
//! into the lock file: the table is never stale (a holder that died is not
//! in it), and it lists every holder of a shared lock (the builds a prune
//! waits for), where one file could name only the last writer. A holder's
//! command is its `/proc/<pid>/cmdline`. A holder the table does not show
//! (one in another pid namespace) is "another process".
//!
//! # Why a hook
//!
//! The solver prints nothing; the command line decides where words go. A
//! wait happens wherever the store takes a lock (a build, but also `tag`,
//! `rmi`, `load`, a prune), far from any build's `Reporter`, so the store
//! itself carries the hook ([`Store::on_lock_wait`]), set once where the
//! command line opens the store. Without one, waiting is silent.

use std::fmt;
use std::fs::TryLockError;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fs_err as fs;
use fs_err::os::unix::fs::OpenOptionsExt;

use super::{Store, StoreError};

/// How long a lock may keep a command waiting before it says so.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// How often a held lock is tried again until [`PATIENCE`] is over.
const RETRY: Duration = Duration::from_millis(20);

/// Which of the store's locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// `lock`: held while the image index is updated.
    Index,
    /// `gc.lock`: shared by writers, exclusive for garbage collection.
    Gc,
}

/// A process holding a lock another waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its pid (in our pid namespace).
    pub pid: u32,
    /// Its command line, arguments separated by spaces (its `comm` when the
    /// command line is empty; `None` when it exited meanwhile).
    pub command: Option<String>,
}

/// A command waits for a lock: what the hook of [`Store::on_lock_wait`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    /// Which lock.
    pub lock: Lock,
    /// Its file.
    pub path: PathBuf,
    /// Who holds it (empty when the kernel does not show us).
    pub holders: Vec<Holder>,
}

impl fmt::Display for LockWait {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.lock {
            Lock::Index => "the store's index lock",
            Lock::Gc => "the store's garbage-collection lock",
        };
        write!(
            formatter,
            "waiting for {what} `{}`, held by ",
            self.path.display()
        )?;
        if self.holders.is_empty() {
            return formatter.write_str("another process");
        }
        for (n, holder) in self.holders.iter().enumerate() {
            if n > 0 {
                formatter.write_str(", ")?;
            }
            write!(formatter, "pid {}", holder.pid)?;
            if let Some(command) = &holder.command {
                write!(formatter, " (`{command}`)")?;
            }
        }
        Ok(())
    }
}

/// A hook told of a [`LockWait`].
type Hook = Arc<dyn Fn(&LockWait) + Send + Sync>;

/// What a store calls when a lock keeps it waiting (see the module).
#[derive(Clone, Default)]
pub(crate) struct LockWaits(Option<Hook>);

impl fmt::Debug for LockWaits {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(if self.0.is_some() {
            "LockWaits(set)"
        } else {
            "LockWaits(none)"
        })
    }
}

impl Store {
    /// Call `hook` whenever one of the store's locks keeps this store (and
    /// its clones made afterwards) waiting longer than [`PATIENCE`]: once
    /// per wait, before waiting on.
    pub fn on_lock_wait(&mut self, hook: impl Fn(&LockWait) + Send + Sync + 'static) {
        self.lock_waits = LockWaits(Some(Arc::new(hook)));
    }

    /// Open lock file `relative` (one of the layout's) and take `lock` on
    /// it, shared or `exclusive`: held until the file is dropped.
    pub(crate) fn take_lock(
        &self,
        relative: &str,
        lock: Lock,
        exclusive: bool,
    ) -> Result<fs::File, StoreError> {
        let path = self.path(relative);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(StoreError::io("open the store lock", &path))?;
        self.lock_waits
            .lock_file(file.file(), &path, lock, exclusive)?;
        Ok(file)
    }
}

impl LockWaits {
    /// Take `lock` on the open lock file `file` (at `path`), shared or
    /// `exclusive`, telling the hook once if that takes longer than
    /// [`PATIENCE`].
    pub(crate) fn lock_file(
        &self,
        file: &std::fs::File,
        path: &std::path::Path,
        lock: Lock,
        exclusive: bool,
    ) -> Result<(), StoreError> {
        let attempt = || {
            if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            }
        };
        let start = Instant::now();
        loop {
            match attempt() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(error)) => {
                    return Err(StoreError::io("lock the store", path)(error));
                }
            }
            if start.elapsed() >= PATIENCE {
                break;
            }
            std::thread::sleep(RETRY);
        }
        if let Some(hook) = &self.0 {
            hook(&LockWait {
                lock,
                holders: holders(file),
                path: path.to_owned(),
            });
        }
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(StoreError::io("lock the store", path))
    }
}

/// The processes holding a lock on `file` (an flock, whose table entry
/// names the process that took it), from `/proc/locks`; waiters (`->`
/// entries) are not holders.
fn holders(file: &std::fs::File) -> Vec<Holder> {
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let device = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
        meta.ino()
    );
    let mut pids: Vec<u32> = table
        .lines()
        .filter_map(|line| holder_in(line, &device))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .map(|pid| Holder {
            pid,
            command: command_of(pid),
        })
        .collect()
}

/// The pid of the holder in one line of `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 1234 fe:00:6513101 0 EOF`) when it is an
/// flock held on `device` (`major:minor:inode`).
fn holder_in(line: &str, device: &str) -> Option<u32> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(1) != Some(&"FLOCK") {
        // A waiter (`1: -> FLOCK ...`), or another kind of lock.
        return None;
    }
    let at = fields.iter().position(|field| *field == device)?;
    fields
        .get(at.checked_sub(1)?)?
        .parse()
        .ok()
        .filter(|pid| *pid != 0)
}

/// What `/proc/<pid>/cmdline` says, arguments joined by spaces (at most
/// 200 characters); `comm` for a process without one.
fn command_of(pid: u32) -> Option<String> {
    const LONGEST: usize = 200;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let line = std::fs::read(proc.join("cmdline"))
        .ok()
        .map(|bytes| {
            bytes
                .split(|byte| *byte == 0)
                .filter(|argument| !argument.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|line| !line.is_empty())
        .or_else(|| {
            let comm = std::fs::read_to_string(proc.join("comm")).ok()?;
            Some(comm.trim_end().to_owned()).filter(|comm| !comm.is_empty())
        })?;
    if line.chars().count() > LONGEST {
        Some(line.chars().take(LONGEST).collect::<String>() + "…")
    } else {
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_holders_of_that_file_are_read_from_the_table() {
        let device = "fe:00:6513101";
        assert_eq!(
            holder_in("1: FLOCK  ADVISORY  WRITE 1234 fe:00:6513101 0 EOF", device),
            Some(1234)
        );
        assert_eq!(
            holder_in("2: FLOCK  ADVISORY  READ 99 fe:00:6513101 0 EOF", device),
            Some(99)
        );
        // A waiter, another file, another kind of lock.
        assert_eq!(
            holder_in(
                "1: -> FLOCK  ADVISORY  WRITE 77 fe:00:6513101 0 EOF",
                device
            ),
            None
        );
        assert_eq!(
            holder_in("3: FLOCK  ADVISORY  WRITE 5 fe:00:1124 0 EOF", device),
            None
        );
        assert_eq!(
            holder_in("4: POSIX  ADVISORY  WRITE 6 fe:00:6513101 0 EOF", device),
            None
        );
    }

    #[test]
    fn a_wait_is_said_once_naming_the_holder_and_the_lock_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&told);
        store.on_lock_wait(move |wait| sink.lock().unwrap().push(wait.clone()));
        let sink = Arc::clone(&told);
        // Another open file description holds it (flock is per description,
        // so this stands for another process; the table names us).
        let held = store
            .take_lock(super::super::layout::GC_LOCK, Lock::Gc, true)
            .unwrap();
        let waiter = store.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            waiter
                .take_lock(super::super::layout::GC_LOCK, Lock::Gc, false)
                .map(drop)
        });
        std::thread::sleep(PATIENCE + Duration::from_millis(500));
        drop(held);
        thread.join().unwrap().unwrap();
        assert!(started.elapsed() >= PATIENCE);
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].lock, Lock::Gc);
        assert_eq!(told[0].path, store.path("gc.lock"));
        let me = std::process::id();
        assert_eq!(
            told[0]
                .holders
                .iter()
                .map(|holder| holder.pid)
                .collect::<Vec<_>>(),
            [me]
        );
        assert_eq!(
            told[0].to_string(),
            format!(
                "waiting for the store's garbage-collection lock `{}`, held by pid {me} (`{}`)",
                store.path("gc.lock").display(),
                told[0].holders[0].command.as_deref().unwrap()
            )
        );
        drop(told);
        // Uncontended: not a word.
        store.take_lock("lock", Lock::Index, true).unwrap();
        assert_eq!(sink.lock().unwrap().len(), 1);
    }
}
