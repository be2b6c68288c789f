//! The store's own directories, opened so that nobody else's can stand in
//! for them.
//!
//! # The rule
//!
//! A store is private to the user who owns it, as git treats a repository:
//!
//! - Every directory of the layout is created 0700 (the root too), so that
//!   what a RUN made — a setuid-root file in `snapshots/`, a secret in `tmp/`
//!   — is reachable by nobody else. No other user ever has to traverse a
//!   store: sandboxes see snapshots through overlayfs, which reads its layers
//!   with the credentials of whoever mounted it (the store's owner, or root
//!   in strata's user namespace, which is the same user). So no 0711.
//! - An existing root or layout directory with group or other bits (made by
//!   an older strata) is tightened to 0700 when the store is opened, and the
//!   caller is told ([`Store::tightened`]) so that it can warn.
//! - A store whose root another user owns is refused by the command line
//!   (`--allow-foreign-store`), as git refuses a repository of "dubious
//!   ownership": its content decides what strata reads, runs and deletes.
//! - Whatever the owner, every directory of the layout must be a real
//!   directory owned by the root's owner. They are opened relative to the
//!   root's descriptor with `O_NOFOLLOW`, one component at a time, and a
//!   symbolic link (`tmp -> /root`) is refused. Removals (prune, GC) go
//!   through such a descriptor and `pathrs` (`unlinkat`, never following a
//!   link), so a directory swapped for a link after the check still cannot
//!   make a removal leave the store.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use super::layout::DIRECTORIES;
use super::{Store, StoreError};
use crate::error::PathError;

/// The mode of every directory of the layout.
pub(crate) const PRIVATE: u32 = 0o700;

/// A directory of the store, opened without following links and checked:
/// a real directory owned by the store's owner. Operations on its entries
/// are relative to the descriptor.
#[derive(Debug)]
pub struct StoreDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno(error: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(error as i32)
}

/// The host's uid for `id` in this process's user namespace, if mapped.
fn host_uid(id: u32) -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    map.lines().find_map(|line| {
        let mut fields = line.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        let id = u64::from(id);
        (id >= inside && id < inside + count)
            .then(|| u32::try_from(outside + id - inside).ok())
            .flatten()
    })
}

/// `uid 1000 (alice)`, with the host's uid when strata runs in its own
/// user namespace, or what the kernel shows for an id it cannot map.
pub(crate) fn describe_uid(id: u32) -> String {
    match host_uid(id) {
        Some(host) => {
            let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(host))
                .ok()
                .flatten()
                .map(|user| format!(" ({})", user.name))
                .unwrap_or_default();
            format!("uid {host}{name}")
        }
        None => format!("a user outside strata's user namespace (seen as uid {id})"),
    }
}

/// Open `name` (one component) in `parent` as a directory, never following
/// a link, and check that `owner` owns it. `path` is its full path, for
/// errors.
fn open_checked(
    parent: impl AsFd,
    name: &OsStr,
    path: &Path,
    owner: u32,
) -> Result<Option<OwnedFd>, StoreError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(parent.as_fd(), name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        // O_NOFOLLOW on a link: ELOOP; O_DIRECTORY on a file: ENOTDIR.
        Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
            let kind = nix::sys::stat::fstatat(parent.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|stat| SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT);
            let what = match kind {
                Ok(kind) if kind == SFlag::S_IFLNK => match std::fs::read_link(path) {
                    Ok(target) => format!("a symbolic link to `{}`", target.display()),
                    Err(_) => "a symbolic link".to_owned(),
                },
                _ => "not a directory".to_owned(),
            };
            return Err(StoreError::UnsafeDir {
                path: path.to_owned(),
                what,
            });
        }
        Err(error) => {
            return Err(PathError {
                operation: "open the store directory",
                path: path.to_owned(),
                source: errno(error),
            }
            .into());
        }
    };
    let stat = nix::sys::stat::fstat(&fd).map_err(|error| PathError {
        operation: "inspect the store directory",
        path: path.to_owned(),
        source: errno(error),
    })?;
    if stat.st_uid != owner {
        return Err(StoreError::UnsafeDir {
            path: path.to_owned(),
            what: format!(
                "owned by {}, and the store by {}",
                describe_uid(stat.st_uid),
                describe_uid(owner)
            ),
        });
    }
    Ok(Some(fd))
}

/// Tighten `fd` (a directory we own) to 0700 if it has group or other
/// bits: the mode it had, if it changed.
fn tighten(fd: &OwnedFd, path: &Path) -> Result<Option<u32>, StoreError> {
    let stat = nix::sys::stat::fstat(fd).map_err(|error| PathError {
        operation: "inspect the store directory",
        path: path.to_owned(),
        source: errno(error),
    })?;
    let mode = stat.st_mode & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(PRIVATE)).map_err(|error| PathError {
        operation: "make the store directory private (chmod 700)",
        path: path.to_owned(),
        source: errno(error),
    })?;
    Ok(Some(mode))
}

/// What opening a store's root found.
pub(crate) struct Opened {
    pub(crate) fd: OwnedFd,
    pub(crate) owner: u32,
    pub(crate) tightened: Vec<(PathBuf, u32)>,
}

/// Open (creating if needed, 0700) the store at `root` and its layout;
/// refuse a root another user owns unless `any_owner`.
pub(crate) fn open_root(root: &Path, any_owner: bool) -> Result<Opened, StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE)
        .create(root)
    {
        Ok(()) => {}
        Err(source) => {
            return Err(PathError {
                operation: "create the store directory",
                path: root.to_owned(),
                source,
            }
            .into());
        }
    }
    // The root itself is the user's choice and may be a link (to another
    // disk, say); what is below it may not.
    let fd = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|error| PathError {
        operation: "open the store directory",
        path: root.to_owned(),
        source: errno(error),
    })?;
    let stat = nix::sys::stat::fstat(&fd).map_err(|error| PathError {
        operation: "inspect the store directory",
        path: root.to_owned(),
        source: errno(error),
    })?;
    let user = nix::unistd::geteuid().as_raw();
    let owner = stat.st_uid;
    if owner != user && !any_owner {
        return Err(StoreError::ForeignOwner {
            path: root.to_owned(),
            owner: describe_uid(owner),
            user: describe_uid(user),
        });
    }
    let ours = owner == user;
    let mut tightened = Vec::new();
    if ours && let Some(mode) = tighten(&fd, root)? {
        tightened.push((root.to_owned(), mode));
    }
    for name in DIRECTORIES {
        let path = root.join(name);
        let (parent, leaf) = match name.rsplit_once('/') {
            Some((parent, leaf)) => (Some(parent), leaf),
            None => (None, name),
        };
        let parent_fd = match parent {
            Some(parent) => open_path(&fd, root, parent, owner)?.ok_or_else(|| PathError {
                operation: "open the store directory",
                path: root.join(parent),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?,
            None => fd.try_clone().map_err(|source| PathError {
                operation: "open the store directory",
                path: root.to_owned(),
                source,
            })?,
        };
        // Someone else's store (trusted): what is missing is not made, as
        // it would be ours, not theirs.
        let made = if ours {
            nix::sys::stat::mkdirat(&parent_fd, leaf, Mode::from_bits_truncate(PRIVATE))
        } else {
            Ok(())
        };
        match made {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(error) => {
                return Err(PathError {
                    operation: "create the store directory",
                    path,
                    source: errno(error),
                }
                .into());
            }
        }
        if let Some(dir) = open_checked(&parent_fd, OsStr::new(leaf), &path, owner)?
            && ours
            && let Some(mode) = tighten(&dir, &path)?
        {
            tightened.push((path, mode));
        }
    }
    Ok(Opened {
        fd,
        owner,
        tightened,
    })
}

/// Open `relative` (components separated by `/`) below the root `fd`, each
/// component checked; `None` if one is missing.
fn open_path(
    fd: &OwnedFd,
    root: &Path,
    relative: &str,
    owner: u32,
) -> Result<Option<OwnedFd>, StoreError> {
    let mut current = fd.try_clone().map_err(|source| PathError {
        operation: "open the store directory",
        path: root.to_owned(),
        source,
    })?;
    let mut path = root.to_owned();
    for component in relative.split('/') {
        path.push(component);
        match open_checked(&current, OsStr::new(component), &path, owner)? {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Whether `name` is one plain component (no `/`, not `.` or `..`).
fn plain_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty() && bytes != b"." && bytes != b".." && !bytes.contains(&b'/')
}

impl Store {
    /// The store directory `relative` (one of the layout's, e.g.
    /// `blobs/sha256`), opened without following links and checked to be
    /// a directory the store's owner owns; `None` if it does not exist.
    pub fn open_dir(&self, relative: &str) -> Result<Option<StoreDir>, StoreError> {
        Ok(
            open_path(&self.fd, &self.root, relative, self.owner)?.map(|fd| StoreDir {
                fd,
                path: self.root.join(relative),
            }),
        )
    }
}

impl StoreDir {
    pub(crate) fn from_parts(fd: OwnedFd, path: PathBuf) -> StoreDir {
        StoreDir { fd, path }
    }

    /// Its path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names in it, sorted.
    pub fn entries(&self) -> Result<Vec<OsString>, StoreError> {
        use std::os::fd::AsRawFd;
        // Listed through the descriptor's magic link, which is the very
        // directory opened (no path is resolved again).
        let via = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let fail = |source| PathError {
            operation: "list",
            path: self.path.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&via).map_err(fail)? {
            names.push(entry.map_err(fail)?.file_name());
        }
        names.sort();
        Ok(names)
    }

    /// The size of entry `name` (its own, not following a link; 0 for
    /// what is gone).
    pub fn size(&self, name: &OsStr) -> u64 {
        nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map(|stat| u64::try_from(stat.st_size).unwrap_or(0))
            .unwrap_or(0)
    }

    /// What entry `name` is (its own stat, not following a link), if it
    /// is there.
    pub(crate) fn stat(&self, name: &OsStr) -> Option<nix::sys::stat::FileStat> {
        nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
    }

    /// The content of the regular file `name` in it (never through a
    /// link), if it is one of at most `limit` bytes (`None` for anything
    /// else: a missing, larger or odd file is skipped by its callers).
    pub(crate) fn read_small(&self, name: &OsStr, limit: u64) -> Option<Vec<u8>> {
        use std::io::Read;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::empty()).ok()?;
        let file = std::fs::File::from(fd);
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > limit {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    /// Create the new file `name` in it (never through a link; fails if
    /// anything is there), for writing.
    pub(crate) fn create_new(&self, name: &str) -> Result<std::fs::File, StoreError> {
        crate::fault::point_at(crate::fault::Kind::Write, &self.path, OsStr::new(name));
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o666))
            .map_err(|error| PathError {
                operation: "create a temporary file",
                path: self.path.join(name),
                source: errno(error),
            })?;
        Ok(std::fs::File::from(fd))
    }

    /// The content of its regular file `name` (never through a link), at
    /// most `limit` bytes; `None` if nothing is there.
    pub(crate) fn read(&self, name: &OsStr, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        use std::io::Read;
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(error) => {
                return Err(PathError {
                    operation: "read",
                    path,
                    source: errno(error),
                }
                .into());
            }
        };
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|source| PathError {
                operation: "read",
                path,
                source,
            })?;
        Ok(Some(bytes))
    }

    /// Its entry `name` as a [`crate::confined::Dir`] (opened without
    /// following a link: a link there is refused), for walking a tree the
    /// store keeps; `None` if nothing is there.
    pub(crate) fn confined_dir(
        &self,
        name: &OsStr,
    ) -> Result<Option<crate::confined::Dir>, StoreError> {
        let path = self.path.join(name);
        if !plain_name(name) {
            return Err(PathError {
                operation: "open the directory",
                path,
                source: io::Error::from(io::ErrorKind::InvalidInput),
            }
            .into());
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(crate::confined::Dir::from_fd(fd, path))),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(error) => Err(PathError {
                operation: "open the directory",
                path,
                source: errno(error),
            }
            .into()),
        }
    }

    /// Sync the directory itself: the renames into it survive a power
    /// loss from now on.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        nix::unistd::fsync(&self.fd).map_err(|error| {
            PathError {
                operation: "sync the directory",
                path: self.path.clone(),
                source: errno(error),
            }
            .into()
        })
    }

    /// Open its file `name` for appending (made 0600 if missing; never
    /// through a link), readable too.
    pub(crate) fn open_append(&self, name: &OsStr) -> Result<std::fs::File, StoreError> {
        let flags =
            OFlag::O_RDWR | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))
            .map_err(|error| PathError {
                operation: "open for appending",
                path: self.path.join(name),
                source: errno(error),
            })?;
        Ok(std::fs::File::from(fd))
    }

    /// Rename its entry `name` to `new_name` in `to`, both relative to the
    /// directories' descriptors.
    pub(crate) fn rename_into(
        &self,
        name: &OsStr,
        to: &StoreDir,
        new_name: &OsStr,
        operation: &'static str,
    ) -> Result<(), StoreError> {
        crate::fault::point_at(crate::fault::Kind::Rename, &to.path, new_name);
        nix::fcntl::renameat(&self.fd, name, &to.fd, new_name).map_err(|error| {
            PathError {
                operation,
                path: to.path.join(new_name),
                source: errno(error),
            }
            .into()
        })
    }

    /// Remove entry `name` and, if it is a directory, all it holds, never
    /// following a link (a link is removed, not what it points to). Gone
    /// already is not an error.
    pub fn remove(&self, name: &OsStr) -> Result<(), StoreError> {
        let path = self.path.join(name);
        if !plain_name(name) {
            return Err(PathError {
                operation: "remove",
                path,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a plain name in the store directory",
                ),
            }
            .into());
        }
        crate::fault::point(crate::fault::Kind::Unlink, &path);
        let fd = self.fd.try_clone().map_err(|source| PathError {
            operation: "remove",
            path: path.clone(),
            source,
        })?;
        // pathrs removes with unlinkat relative to descriptors it opened
        // with O_NOFOLLOW, all the way down.
        match pathrs::Root::from_fd(fd).remove_all(name) {
            Ok(()) => Ok(()),
            Err(error) => {
                let source = crate::confined::from_pathrs(error);
                if source.kind() == io::ErrorKind::NotFound {
                    return Ok(());
                }
                Err(PathError {
                    operation: "remove",
                    path,
                    source,
                }
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn every_directory_of_the_layout_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/store");
        Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        for name in DIRECTORIES {
            assert_eq!(mode(&root.join(name)), 0o700, "{name}");
        }
    }

    #[test]
    fn a_loose_store_is_tightened_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("snapshots")).unwrap();
        for path in [&root, &root.join("snapshots")] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let store = Store::open(&root).unwrap();
        assert_eq!(
            store.tightened(),
            [(root.clone(), 0o755), (root.join("snapshots"), 0o755)]
        );
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("snapshots")), 0o700);
        assert!(Store::open(&root).unwrap().tightened().is_empty());
    }

    #[test]
    fn a_store_directory_swapped_for_a_link_after_opening_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::write(canary.join("precious"), "keep").unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root).unwrap();
        // Opened and checked; now someone swaps `tmp` and `snapshots`.
        for name in [super::super::layout::TMP, super::super::layout::SNAPSHOTS] {
            std::fs::remove_dir(root.join(name)).unwrap();
            std::os::unix::fs::symlink(&canary, root.join(name)).unwrap();
        }
        let collecting = store.collecting().unwrap();
        let error = store
            .collect_garbage(&collecting, &super::super::Roots::new())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "refusing to use the store directory `{}`: it is a symbolic link to `{}`. \
                 A store's directories must be real directories of the store's owner: one \
                 replaced by a link or someone else's could make strata write, read or delete \
                 outside the store",
                root.join("snapshots").display(),
                canary.display()
            )
        );
        assert_eq!(std::fs::read(canary.join("precious")).unwrap(), b"keep");
        // Listing refuses the same way.
        assert!(matches!(
            store.temp_files(),
            Err(StoreError::UnsafeDir { .. })
        ));
        assert_eq!(std::fs::read(canary.join("precious")).unwrap(), b"keep");
    }

    #[test]
    fn writes_never_go_through_a_store_directory_swapped_for_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        std::fs::create_dir(&canary).unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root).unwrap();
        let digest = store.put_bytes(b"before").unwrap();
        for name in [super::super::layout::TMP, super::super::layout::BLOBS] {
            let moved = dir.path().join("moved");
            std::fs::rename(root.join(name), &moved).unwrap();
            std::os::unix::fs::symlink(&canary, root.join(name)).unwrap();
            let error = store.put_bytes(b"attacker-chosen").unwrap_err();
            assert!(
                matches!(&error, StoreError::UnsafeDir { path, .. } if *path == root.join(name)),
                "{error}"
            );
            if name == super::super::layout::TMP {
                // An image record is written through `tmp/` too.
                let record = super::super::ImageRecord {
                    id: digest.clone(),
                    manifest: digest.clone(),
                    manifest_size: 6,
                    config: digest.clone(),
                    config_size: 6,
                    layers: Vec::new(),
                    created: None,
                    manifest_media_type: None,
                    repo_digests: Vec::new(),
                };
                let error = store.record(&record, &[]).unwrap_err();
                assert!(matches!(error, StoreError::UnsafeDir { .. }), "{error}");
            }
            assert_eq!(
                std::fs::read_dir(&canary).unwrap().count(),
                0,
                "nothing was written through the link"
            );
            std::fs::remove_file(root.join(name)).unwrap();
            std::fs::rename(&moved, root.join(name)).unwrap();
        }
        assert_eq!(store.read_blob(&digest).unwrap(), b"before");
    }

    #[test]
    fn removal_takes_only_plain_names_and_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::write(canary.join("precious"), "keep").unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let tmp = store.open_dir(super::super::layout::TMP).unwrap().unwrap();
        std::os::unix::fs::symlink(&canary, tmp.path().join("link")).unwrap();
        tmp.remove(OsStr::new("link")).unwrap();
        assert!(!tmp.path().join("link").exists());
        for bad in ["..", ".", "a/b", ""] {
            let error = tmp.remove(OsStr::new(bad)).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("failed to remove `{}", tmp.path().display())),
                "{error}"
            );
        }
        assert_eq!(std::fs::read(canary.join("precious")).unwrap(), b"keep");
    }
}
