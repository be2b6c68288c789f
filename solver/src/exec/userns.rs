//! The user namespace strata itself works in, and the id maps of sandboxes.
//!
//! Run by an unprivileged user, strata first moves into a user namespace of
//! its own where it is root: the user's id becomes 0 and, when
//! `/etc/subuid` and `/etc/subgid` give the user a range and `newuidmap`
//! and `newgidmap` are installed, ids 1–65536 map onto that range. Every
//! store operation then happens in there, as podman does: unpacking a
//! snapshot can give files their real owners, committing can read files a
//! RUN made private to another id, and removing a snapshot can delete them.
//! Without a range only 0 is mapped, and changing ownership to another id
//! fails (with a warning up front).
//!
//! Each sandbox gets a further user namespace, nested in that one, with the
//! same ids mapped to themselves (see [`write_identity_maps`]). Run by real
//! root, strata stays where it is and the sandbox's map is the identity over
//! all ids, so the ownership recorded in images is kept on disk unchanged.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::ExecError;
use crate::sys;

/// The ids sandboxes can use, and how they map to the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMode {
    /// strata runs as the host's root: ids in sandboxes are the host's ids.
    Root,
    /// strata runs in a user namespace it did not make itself (under
    /// `unshare -r`, say): its ids are used as they are.
    Inherited {
        /// How many uids the namespace maps.
        ids: u64,
    },
    /// An unprivileged user with subordinate ids: 0 is the user, 1–`count`
    /// are `start`… of the ranges in /etc/subuid and /etc/subgid.
    Subordinate {
        /// The user's uid on the host.
        uid: u32,
        /// First subordinate uid.
        uid_start: u32,
        /// First subordinate gid.
        gid_start: u32,
        /// How many subordinate ids are mapped (at most 65536).
        count: u32,
    },
    /// An unprivileged user alone: only id 0 exists in sandboxes.
    Single {
        /// The user's uid on the host.
        uid: u32,
        /// Why no range is used.
        reason: String,
    },
}

impl IdMode {
    /// The warning to give before running anything, if any.
    pub fn warning(&self) -> Option<String> {
        match self {
            IdMode::Single { reason, .. } => Some(format!(
                "only one id is mapped into sandboxes ({reason}): commands that change \
                 ownership to any id but 0 (chown, adduser, package installs) will fail. \
                 Add a range for this user to /etc/subuid and /etc/subgid \
                 (`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`) \
                 and install newuidmap/newgidmap (Debian's uidmap)"
            )),
            IdMode::Inherited { ids } if *ids < 65536 => Some(format!(
                "strata runs in a user namespace that maps only {ids} id(s): \
                 changing ownership to unmapped ids will fail"
            )),
            _ => None,
        }
    }
}

static MODE: OnceLock<IdMode> = OnceLock::new();

/// The mode [`enter`] settled on, if it ran.
pub fn mode() -> Option<&'static IdMode> {
    MODE.get()
}

/// Move this process into strata's user namespace if it needs one (see the
/// module documentation). Must be called while the process has one thread,
/// first thing in `main`.
///
/// For an unprivileged user this forks: the child makes the namespace and
/// returns from here as root in it; the parent maps its ids, then waits and
/// exits with the child's status, never returning, unless mapping fails,
/// when it returns the error.
pub fn enter() -> Result<&'static IdMode, ExecError> {
    if let Some(mode) = MODE.get() {
        return Ok(mode);
    }
    let uid = Uid::current();
    let map = read_map(Path::new("/proc/self/uid_map"))?;
    let mode = if uid.is_root() {
        if map == [(0, 0, u64::from(u32::MAX))] {
            IdMode::Root
        } else {
            IdMode::Inherited {
                ids: map.iter().map(|(_, _, count)| count).sum(),
            }
        }
    } else {
        let mode = unprivileged_mode(uid);
        enter_new(&mode)?;
        mode
    };
    Ok(MODE.get_or_init(|| mode))
}

/// `(inside, outside, count)` lines of a uid_map or gid_map file.
fn read_map(path: &Path) -> Result<Vec<(u64, u64, u64)>, ExecError> {
    let text = std::fs::read_to_string(path).map_err(ExecError::io("read", path))?;
    Ok(parse_map(&text))
}

fn parse_map(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u64>);
            match (fields.next(), fields.next(), fields.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => {
                    Some((inside, outside, count))
                }
                _ => None,
            }
        })
        .collect()
}

/// The first range for `user` (a name or a uid) in an /etc/subuid-style file.
fn subordinate_range(file: &Path, name: &str, id: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        if owner != name && owner.parse::<u32>().ok() != Some(id) {
            return None;
        }
        let start = fields.next()?.parse().ok()?;
        let count: u32 = fields.next()?.parse().ok()?;
        (count > 0).then_some((start, count))
    })
}

/// A program on PATH (or in /usr/bin, where Debian puts newuidmap).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

fn unprivileged_mode(uid: Uid) -> IdMode {
    let gid = Gid::current();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|user| user.name)
        .unwrap_or_else(|| uid.to_string());
    let single = |reason: String| IdMode::Single {
        uid: uid.as_raw(),
        reason,
    };
    let uids = subordinate_range(Path::new("/etc/subuid"), &name, uid.as_raw());
    let gids = subordinate_range(Path::new("/etc/subgid"), &name, gid.as_raw())
        .or_else(|| subordinate_range(Path::new("/etc/subgid"), &name, uid.as_raw()));
    let (Some((uid_start, uid_count)), Some((gid_start, gid_count))) = (uids, gids) else {
        return single(format!(
            "no range for user {name} in /etc/subuid and /etc/subgid"
        ));
    };
    if find_program("newuidmap").is_none() || find_program("newgidmap").is_none() {
        return single("newuidmap/newgidmap are not installed".to_owned());
    }
    IdMode::Subordinate {
        uid: uid.as_raw(),
        uid_start,
        gid_start,
        count: uid_count.min(gid_count).min(65536),
    }
}

/// Fork; the child unshares a user namespace and returns once its parent
/// has mapped it.
fn enter_new(mode: &IdMode) -> Result<(), ExecError> {
    let (ready_read, ready_write) = std::io::pipe().map_err(ExecError::os("create a pipe"))?;
    let (go_read, go_write) = std::io::pipe().map_err(ExecError::os("create a pipe"))?;
    match sys::fork().map_err(ExecError::os("fork"))? {
        ForkResult::Child => {
            drop((ready_read, go_write));
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
            let unshared = nix::sched::unshare(CloneFlags::CLONE_NEWUSER);
            let mut ready_write = ready_write;
            let _ = ready_write.write_all(if unshared.is_ok() { b"u" } else { b"x" });
            drop(ready_write);
            let mut answer = [0u8; 1];
            let mut go_read = go_read;
            if unshared.is_err() || go_read.read_exact(&mut answer).is_err() || answer != *b"m" {
                // The parent says why.
                sys::exit_child(1);
            }
            Ok(())
        }
        ForkResult::Parent { child } => {
            drop((ready_write, go_read));
            // Signals sent to this process (the pid the user knows) are
            // passed on, so the child cleans up and its status is ours; a
            // terminal's ^C reaches both, and the child sees it twice, to
            // the same effect. (This process forks no more: a thread is
            // safe now.)
            let _ = sys::ignore_signals(&[Signal::SIGQUIT]);
            if let Ok(mut signals) = signal_hook::iterator::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ]) {
                let _ = std::thread::Builder::new()
                    .name("forward-signals".to_owned())
                    .spawn(move || {
                        for signal in signals.forever() {
                            if let Ok(signal) = Signal::try_from(signal) {
                                let _ = nix::sys::signal::kill(child, signal);
                            }
                        }
                    });
            }

            let mut ready = [0u8; 1];
            let mut ready_read = ready_read;
            let unshared = ready_read.read_exact(&mut ready).is_ok() && ready == *b"u";
            let mapped = if unshared {
                map_child(child, mode)
            } else {
                Err(ExecError::Namespace(
                    "could not create a user namespace (unshare(CLONE_NEWUSER) was refused: \
                     check that unprivileged user namespaces are enabled, \
                     kernel.unprivileged_userns_clone=1)"
                        .to_owned(),
                ))
            };
            let mut go_write = go_write;
            let _ = go_write.write_all(if mapped.is_ok() { b"m" } else { b"x" });
            drop(go_write);
            if let Err(error) = mapped {
                let _ = waitpid(child, None);
                return Err(error);
            }
            let code = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => break code,
                    Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break 1,
                }
            };
            std::process::exit(code)
        }
    }
}

/// Write the maps of `child`'s new user namespace for `mode`.
fn map_child(child: Pid, mode: &IdMode) -> Result<(), ExecError> {
    match *mode {
        IdMode::Subordinate {
            uid,
            uid_start,
            gid_start,
            count,
        } => {
            let gid = Gid::current().as_raw();
            let pid = child.to_string();
            for (program, id, start) in
                [("newuidmap", uid, uid_start), ("newgidmap", gid, gid_start)]
            {
                let path = find_program(program)
                    .ok_or_else(|| ExecError::Namespace(format!("{program} is not installed")))?;
                let output = Command::new(&path)
                    .args([&pid, "0", &id.to_string(), "1", "1", &start.to_string()])
                    .arg(count.to_string())
                    .output()
                    .map_err(ExecError::io("run", &path))?;
                if !output.status.success() {
                    return Err(ExecError::Namespace(format!(
                        "{program} {pid} 0 {id} 1 1 {start} {count} failed: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    )));
                }
            }
            Ok(())
        }
        IdMode::Single { uid, .. } => {
            let gid = Gid::current().as_raw();
            let proc = PathBuf::from(format!("/proc/{child}"));
            // An unprivileged user may map only itself, and only once
            // setgroups is denied in the namespace.
            for (file, text) in [
                ("setgroups", "deny".to_owned()),
                ("uid_map", format!("0 {uid} 1")),
                ("gid_map", format!("0 {gid} 1")),
            ] {
                let path = proc.join(file);
                std::fs::write(&path, text).map_err(ExecError::io("write", &path))?;
            }
            Ok(())
        }
        IdMode::Root | IdMode::Inherited { .. } => Ok(()),
    }
}

/// Give `child`'s new user namespace the ids of ours, each mapped to
/// itself. Needs CAP_SETUID and CAP_SETGID here, which strata has as root
/// (real, or in its own namespace).
pub(crate) fn write_identity_maps(child: Pid) -> std::io::Result<()> {
    for file in ["uid_map", "gid_map"] {
        let ours = std::fs::read_to_string(format!("/proc/self/{file}"))?;
        let identity: String = parse_map(&ours)
            .into_iter()
            .map(|(inside, _, count)| format!("{inside} {inside} {count}\n"))
            .collect();
        std::fs::write(format!("/proc/{child}/{file}"), identity)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_and_subordinate_ranges_are_found() {
        assert_eq!(
            parse_map("         0       1000          1\n         1     100000      65536\n"),
            vec![(0, 1000, 1), (1, 100000, 65536)]
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("subuid");
        std::fs::write(&file, "alice:100000:65536\n1001:200000:0\n1002:300000:10\n").unwrap();
        assert_eq!(
            subordinate_range(&file, "alice", 1000),
            Some((100000, 65536))
        );
        assert_eq!(subordinate_range(&file, "bob", 1001), None, "empty range");
        assert_eq!(subordinate_range(&file, "carol", 1002), Some((300000, 10)));
        assert_eq!(subordinate_range(&file, "dave", 1003), None);
    }
}
