//! Applying a layer tar onto a directory, safely.
//!
//! Every entry's path is reduced to plain components below the target
//! (`/a` and `./a` are `a`; `a/../b` is `b`; a `..` that would climb out of
//! the target is an error). Then each parent is checked with `lstat`, never
//! followed: if one is a symlink, the entry is refused. So is a hardlink
//! whose target is outside the target or reached through a symlink. Symlinks
//! themselves are created as written: images rightly hold links such as
//! `/bin/sh -> busybox` or `/etc/mtab -> /proc/mounts`, and they are
//! harmless as long as nothing follows them while unpacking.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use super::{OPAQUE_MARKER, WHITEOUT_PREFIX};

/// Why an archive was refused or could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A path that would leave the target.
    #[error("refusing `{0}`: the path leaves the target directory")]
    Escape(String),
    /// A path that goes through a symlink.
    #[error("refusing `{entry}`: `{link}` is a symlink, and unpacking never writes through one")]
    ThroughSymlink {
        /// The entry.
        entry: String,
        /// The symlink on its way.
        link: String,
    },
    /// A hardlink pointing outside the target or through a symlink.
    #[error("refusing hardlink `{entry}` to `{target}`: {reason}")]
    BadHardlink {
        /// The entry.
        entry: String,
        /// Where it points.
        target: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The archive itself is malformed (bad header, truncated data).
    #[error("invalid layer archive: {0}")]
    Archive(#[source] io::Error),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::error::PathError),
}

fn io_error<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> UnpackError + 'a {
    crate::error::PathError::at(operation, path)
}

/// What [`unpack`] did besides creating entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackReport {
    /// Entries written.
    pub entries: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// Device nodes and FIFOs not created (no privilege to make them).
    pub skipped_devices: Vec<String>,
    /// Owners that could not be set (not running as root), by path relative
    /// to the target: what the archive said, for a writer to use instead of
    /// what the files on disk show.
    pub unapplied_owners: super::Owners,
}

/// The entry's path as plain components below the target.
fn clean(raw: &Path) -> Result<PathBuf, UnpackError> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in raw.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(UnpackError::Escape(raw.display().to_string()));
                }
            }
            Component::Normal(part) => parts.push(part),
        }
    }
    Ok(parts.iter().collect())
}

/// Check that every existing component of `relative` below `target`, except
/// the last, is a real directory; create missing ones.
fn prepare_parents(target: &Path, relative: &Path, entry: &str) -> Result<(), UnpackError> {
    let mut current = target.to_path_buf();
    let Some(parent) = relative.parent() else {
        return Ok(());
    };
    for component in parent.components() {
        current.push(component);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink {
                    entry: entry.to_owned(),
                    link: current
                        .strip_prefix(target)
                        .unwrap_or(&current)
                        .display()
                        .to_string(),
                });
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                // A file where a directory must be: the layer replaces it.
                std::fs::remove_file(&current).map_err(io_error("replace", &current))?;
                std::fs::create_dir(&current)
                    .map_err(io_error("create the directory", &current))?;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&current)
                    .map_err(io_error("create the directory", &current))?;
            }
            Err(error) => return Err(io_error("inspect", &current)(error)),
        }
    }
    Ok(())
}

/// Remove whatever is at `path` (without following a symlink there).
fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).map_err(io_error("remove", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(io_error("remove", path)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("inspect", path)(error)),
    }
}

fn is_root() -> bool {
    // The effective uid of this process, read without `unsafe`.
    std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
        .unwrap_or(false)
}

/// What to do with whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Delete what they name: the target becomes the merged filesystem.
    Apply,
    /// Keep them as overlayfs whiteouts (`userxattr` form, which needs no
    /// privilege): an empty file with `user.overlay.whiteout`, its directory
    /// marked `user.overlay.opaque=x`; an opaque directory gets
    /// `user.overlay.opaque=y`. The target is then one layer, usable as an
    /// overlay lower directory.
    Overlay,
}

/// The xattr marking an overlayfs whiteout file (`userxattr` mounts).
pub const OVERLAY_WHITEOUT_XATTR: &str = "user.overlay.whiteout";
/// The xattr marking an opaque directory (`y`), or one holding whiteout
/// files (`x`).
pub const OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Apply the uncompressed layer tar `reader` onto `target`.
pub fn unpack(reader: impl Read, target: &Path) -> Result<UnpackReport, UnpackError> {
    unpack_with(reader, target, Whiteouts::Apply)
}

/// Mark `dir` with `user.overlay.opaque=value`, keeping an existing `y`.
fn mark_directory(dir: &Path, value: &[u8]) -> Result<(), UnpackError> {
    if value == b"x"
        && matches!(xattr::get(dir, OVERLAY_OPAQUE_XATTR), Ok(Some(existing)) if existing == b"y")
    {
        return Ok(());
    }
    xattr::set(dir, OVERLAY_OPAQUE_XATTR, value).map_err(io_error("mark as opaque", dir))
}

/// Unpack the uncompressed layer tar `reader` into `target`, handling
/// whiteouts as `whiteouts` says.
pub fn unpack_with(
    reader: impl Read,
    target: &Path,
    whiteouts: Whiteouts,
) -> Result<UnpackReport, UnpackError> {
    let mut report = UnpackReport::default();
    let as_root = is_root();
    let mut archive = tar::Archive::new(reader);
    // Directories get their mode and times at the end: a read-only
    // directory must still accept the entries that follow it.
    let mut directories: Vec<(PathBuf, u32, u64)> = Vec::new();
    for entry in archive.entries().map_err(UnpackError::Archive)? {
        let mut entry = entry.map_err(UnpackError::Archive)?;
        let raw = entry.path().map_err(UnpackError::Archive)?.into_owned();
        let display = raw.display().to_string();
        let relative = clean(&raw)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let name = relative
            .file_name()
            .map(|name| name.as_bytes())
            .unwrap_or_default();
        prepare_parents(target, &relative, &display)?;
        let path = target.join(&relative);
        // Whiteouts: delete instead of create, or record for overlayfs.
        if whiteouts == Whiteouts::Overlay && name == OPAQUE_MARKER.as_bytes() {
            mark_directory(path.parent().unwrap_or(target), b"y")?;
            report.whiteouts += 1;
            continue;
        }
        if whiteouts == Whiteouts::Overlay
            && let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes())
        {
            let marker = path.with_file_name(std::ffi::OsStr::from_bytes(hidden));
            remove_existing(&marker)?;
            std::fs::File::create(&marker).map_err(io_error("create the whiteout", &marker))?;
            xattr::set(&marker, OVERLAY_WHITEOUT_XATTR, b"y")
                .map_err(io_error("mark as a whiteout", &marker))?;
            mark_directory(marker.parent().unwrap_or(target), b"x")?;
            report.whiteouts += 1;
            continue;
        }
        if name == OPAQUE_MARKER.as_bytes() {
            let dir = path.parent().unwrap_or(target);
            for child in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
                let child = child.map_err(io_error("list", dir))?;
                remove_existing(&child.path())?;
            }
            report.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            let victim = path.with_file_name(std::ffi::OsStr::from_bytes(hidden));
            remove_existing(&victim)?;
            report.whiteouts += 1;
            continue;
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().map_err(UnpackError::Archive)? & 0o7777;
        let existing = std::fs::symlink_metadata(&path).ok();
        match existing {
            Some(meta) if meta.is_dir() && kind.is_dir() => {}
            Some(_) => remove_existing(&path)?,
            None => {}
        }
        match kind {
            tar::EntryType::Directory => {
                if !path.is_dir() {
                    std::fs::create_dir(&path).map_err(io_error("create the directory", &path))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                // `create_new` fails if anything (a planted symlink) appeared.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io_error("create", &path))?;
                io::copy(&mut entry, &mut file).map_err(UnpackError::Archive)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(UnpackError::Archive)?
                    .ok_or_else(|| {
                        UnpackError::Archive(io::Error::other(format!(
                            "symlink `{display}` has no target"
                        )))
                    })?;
                symlink(&link, &path).map_err(io_error("create the symlink", &path))?;
            }
            tar::EntryType::Link => {
                let raw_target = entry
                    .link_name()
                    .map_err(UnpackError::Archive)?
                    .ok_or_else(|| {
                        UnpackError::Archive(io::Error::other(format!(
                            "hardlink `{display}` has no target"
                        )))
                    })?
                    .into_owned();
                let bad = |reason| UnpackError::BadHardlink {
                    entry: display.clone(),
                    target: raw_target.display().to_string(),
                    reason,
                };
                let relative_target =
                    clean(&raw_target).map_err(|_| bad("it points outside the target"))?;
                if relative_target.as_os_str().is_empty() {
                    return Err(bad("it points at the target itself"));
                }
                // Its parents must be real directories inside the target.
                let mut current = target.to_path_buf();
                for component in relative_target
                    .parent()
                    .into_iter()
                    .flat_map(Path::components)
                {
                    current.push(component);
                    match std::fs::symlink_metadata(&current) {
                        Ok(meta) if meta.is_dir() => {}
                        _ => {
                            return Err(bad(
                                "it is reached through a symlink or a missing directory",
                            ));
                        }
                    }
                }
                let source = target.join(&relative_target);
                match std::fs::symlink_metadata(&source) {
                    Ok(meta) if !meta.is_dir() => {}
                    _ => return Err(bad("its target is not a file in the layer")),
                }
                std::fs::hard_link(&source, &path)
                    .map_err(io_error("create the hardlink", &path))?;
                report.entries += 1;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                // Making device nodes needs privileges a rootless build does
                // not have; say so instead of pretending.
                report.skipped_devices.push(display);
                continue;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                return Err(UnpackError::Archive(io::Error::other(format!(
                    "entry `{display}` has an unsupported type ({other:?})"
                ))));
            }
        }
        // Ownership, xattrs, mode, times.
        let uid = header.uid().map_err(UnpackError::Archive)?;
        let gid = header.gid().map_err(UnpackError::Archive)?;
        if let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) {
            match std::os::unix::fs::lchown(&path, Some(uid), Some(gid)) {
                Ok(()) => {}
                // Without privileges (EPERM), or in a user namespace that
                // does not map the id (EINVAL): keep ours, and say so.
                Err(error)
                    if (!as_root
                        && (error.kind() == io::ErrorKind::PermissionDenied
                            || error.raw_os_error() == Some(1)))
                        || error.raw_os_error() == Some(22) =>
                {
                    report.unapplied_owners.insert(relative.clone(), (uid, gid));
                }
                Err(error) => return Err(io_error("set the owner of", &path)(error)),
            }
        }
        if let Some(extensions) = entry.pax_extensions().map_err(UnpackError::Archive)? {
            for extension in extensions {
                let extension = extension.map_err(UnpackError::Archive)?;
                let Some(name) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                let name = std::ffi::OsStr::from_bytes(name);
                if let Err(error) = xattr::set(&path, name, extension.value_bytes())
                    && as_root
                {
                    return Err(io_error("set an xattr on", &path)(error));
                }
            }
        }
        if kind != tar::EntryType::Symlink {
            let mtime = header.mtime().map_err(UnpackError::Archive)?;
            if kind.is_dir() {
                directories.push((path.clone(), mode, mtime));
            } else {
                // Times first: the file is still open to us before its mode
                // (say 0400) is applied.
                set_mtime(&path, mtime)?;
                set_mode(&path, mode)?;
            }
        }
        report.entries += 1;
    }
    // Deepest first, so that a parent's time is set after its children's.
    for (path, mode, mtime) in directories.iter().rev() {
        set_mtime(path, *mtime)?;
        set_mode(path, *mode)?;
    }
    Ok(report)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), UnpackError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("set the mode of", path))
}

fn set_mtime(path: &Path, mtime: u64) -> Result<(), UnpackError> {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    let file = std::fs::File::open(path).map_err(io_error("open", path))?;
    file.set_times(
        std::fs::FileTimes::new()
            .set_modified(time)
            .set_accessed(time),
    )
    .map_err(io_error("set the times of", path))
}
