//! Applying a layer tar onto a directory, safely.
//!
//! Every entry's path is reduced to plain components below the target
//! (`/a` and `./a` are `a`; `a/../b` is `b`; a `..` that would climb out of
//! the target is an error). Its directory is then resolved inside the
//! target by [`crate::confined`], symlinks on the way followed as the
//! container will follow them (`var/run -> /run` leads to the target's
//! `run`), and the entry itself is created, chowned, chmodded and timed
//! by name in that directory, never followed. So a symlink an archive
//! plants (`d -> /etc/shadow`) can be replaced or written beside, but never
//! written through: the tar symlink-chmod class of attacks has nothing to
//! act on. Symlinks are created as written: images rightly hold links such
//! as `/bin/sh -> busybox` or `/etc/mtab -> /proc/mounts`.
//!
//! The stream is checked before the `tar` crate buffers it ([`Guard`]: PAX
//! records and long names up to 1 MiB, names up to `PATH_MAX`), GNU sparse
//! files stay sparse, and the whole stream is hashed, so a caller can refuse
//! a layer whose diff_id is not the one it claims.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::guard::Guard;
use super::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::confined::{Dir, Make, Root};
use crate::digest::{Digest, HashingReader};

/// Why an archive was refused or could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A path that would leave the target.
    #[error("refusing `{0}`: the path leaves the target directory")]
    Escape(String),
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
    /// Device nodes and FIFOs not created (no privilege to make them), by
    /// their names in the archive (escaped, see [`crate::name`]).
    pub skipped_devices: Vec<String>,
    /// Owners that could not be set (not running as root), by path relative
    /// to the target: what the archive said, for a writer to use instead of
    /// what the files on disk show.
    pub unapplied_owners: super::Owners,
    /// The sha256 of the whole uncompressed stream: the layer's diff_id.
    /// `None` when more than 1 MiB follows the end of the archive (not
    /// read, so not hashed).
    pub diff_id: Option<Digest>,
}

/// The entry's path as plain components below the target.
fn clean(raw: &Path) -> Result<PathBuf, UnpackError> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in raw.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(UnpackError::Escape(
                        crate::name::escape_path(raw).into_owned(),
                    ));
                }
            }
            Component::Normal(part) => parts.push(part),
        }
    }
    Ok(parts.iter().collect())
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
fn mark_directory(dir: &Dir, value: &[u8]) -> Result<(), UnpackError> {
    let key = std::ffi::OsStr::new(OVERLAY_OPAQUE_XATTR);
    if value == b"x" && matches!(dir.own_xattr(key), Ok(Some(existing)) if existing == b"y") {
        return Ok(());
    }
    dir.set_own_xattr(key, value)
        .map_err(io_error("mark as opaque", dir.shown()))
}

/// The most data read after the end of an archive, to hash it.
const MAX_TRAILING: u64 = 1 << 20;

/// The longest entry name accepted (Linux's `PATH_MAX`).
const MAX_PATH: usize = 4096;

/// The directory an entry goes in, remembered from the entry before: tar
/// streams list a directory's files together. Forgotten whenever anything
/// is removed, since that may have been the directory or one above it.
struct Parents<'r> {
    root: &'r Root,
    last: Option<(PathBuf, Dir)>,
}

impl Parents<'_> {
    /// The directory `relative` is in (made, replacing files, as needed)
    /// and its name.
    fn of(&mut self, relative: &Path) -> Result<(&Dir, std::ffi::OsString), UnpackError> {
        let parent = relative.parent().unwrap_or(Path::new(""));
        let name = relative
            .file_name()
            .map(ToOwned::to_owned)
            .unwrap_or_default();
        if !matches!(&self.last, Some((path, _)) if path == parent) {
            let dir = self
                .root
                .dir(parent, Make::ReplacingFiles)?
                .expect("directories are made");
            self.last = Some((parent.to_owned(), dir));
        }
        let (_, dir) = self.last.as_ref().expect("just set");
        Ok((dir, name))
    }

    fn forget(&mut self) {
        self.last = None;
    }
}

/// Unpack the uncompressed layer tar `reader` into `target`, handling
/// whiteouts as `whiteouts` says. Every path is resolved inside `target`
/// by [`crate::confined`]; the report carries the digest of the whole
/// stream (its diff_id).
pub fn unpack_with(
    reader: impl Read,
    target: &Path,
    whiteouts: Whiteouts,
) -> Result<UnpackReport, UnpackError> {
    unpack_into(reader, &Root::open(target)?, whiteouts)
}

/// [`unpack_with`] into a directory already opened as a [`Root`].
pub fn unpack_into(
    reader: impl Read,
    root: &Root,
    whiteouts: Whiteouts,
) -> Result<UnpackReport, UnpackError> {
    unpack_into_as(reader, root, whiteouts, None)
}

/// [`unpack_into`], every entry given `owner` (uid, gid) instead of the
/// archive's when there is one: `ADD --chown` of a local archive.
pub fn unpack_into_as(
    reader: impl Read,
    root: &Root,
    whiteouts: Whiteouts,
    owner: Option<(u32, u32)>,
) -> Result<UnpackReport, UnpackError> {
    let owner_of = |header: &tar::Header| match owner {
        Some((uid, gid)) => Ok((Some(uid), Some(gid))),
        None => owner_of(header),
    };
    let mut report = UnpackReport::default();
    let as_root = is_root();
    let mut parents = Parents { root, last: None };
    let mut archive = tar::Archive::new(Guard::new(HashingReader::new(reader)));
    // Directories get their mode and times at the end: a read-only
    // directory must still accept the entries that follow it.
    let mut directories: Vec<(PathBuf, u32, u64)> = Vec::new();
    // The lengths of the PAX sparse files so far.
    let mut holes: u64 = 0;
    for entry in archive.entries().map_err(UnpackError::Archive)? {
        let mut entry = entry.map_err(UnpackError::Archive)?;
        let sparse = pax_sparse(&mut entry)?;
        let raw = match sparse.as_ref().and_then(|sparse| sparse.name.as_ref()) {
            Some(name) => PathBuf::from(std::ffi::OsStr::from_bytes(name)),
            None => entry.path().map_err(UnpackError::Archive)?.into_owned(),
        };
        let display = crate::name::escape_path(&raw).into_owned();
        if raw.as_os_str().len() > MAX_PATH {
            return Err(UnpackError::Archive(io::Error::other(format!(
                "an entry's name is {} bytes long, over PATH_MAX ({MAX_PATH})",
                raw.as_os_str().len()
            ))));
        }
        let relative = clean(&raw)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let name_bytes = relative
            .file_name()
            .map(|name| name.as_bytes().to_vec())
            .unwrap_or_default();
        // A whiteout names an entry of its own directory, and only that.
        let hidden = |hidden: &[u8]| -> Result<std::ffi::OsString, UnpackError> {
            let name = std::ffi::OsStr::from_bytes(hidden);
            crate::confined::check_name(name).map_err(|_| {
                UnpackError::Archive(io::Error::other(format!(
                    "`{display}` is not a valid whiteout"
                )))
            })?;
            Ok(name.to_owned())
        };
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            let (dir, _) = parents.of(&relative)?;
            match whiteouts {
                Whiteouts::Overlay => mark_directory(dir, b"y")?,
                Whiteouts::Apply => {
                    for child in dir.list()? {
                        dir.remove(&child)?;
                    }
                }
            }
            parents.forget();
            report.whiteouts += 1;
            continue;
        }
        if let Some(name) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            let name = hidden(name)?;
            let (dir, _) = parents.of(&relative)?;
            dir.remove(&name)?;
            if whiteouts == Whiteouts::Overlay {
                dir.create_file(&name, 0o644)?;
                dir.set_xattr(&name, std::ffi::OsStr::new(OVERLAY_WHITEOUT_XATTR), b"y")
                    .map_err(io_error("mark as a whiteout", &dir.path(&name)))?;
                mark_directory(dir, b"x")?;
            }
            parents.forget();
            report.whiteouts += 1;
            continue;
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().map_err(UnpackError::Archive)? & 0o7777;
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        }
        if let Some(sparse) = &sparse {
            if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
                return Err(UnpackError::Archive(io::Error::other(format!(
                    "`{display}` has sparse records but is not a file"
                ))));
            }
            // The holes cost nothing here, but whatever reads the file
            // later (a RUN, `system check --snapshots`) reads them as zeros.
            holes = holes.saturating_add(sparse.size);
            if holes > MAX_SPARSE_LENGTH {
                return Err(UnpackError::Archive(io::Error::other(format!(
                    "sparse files longer than {MAX_SPARSE_LENGTH} bytes in all (`{display}` is {} bytes long)",
                    sparse.size
                ))));
            }
        }
        let (dir, name) = parents.of(&relative)?;
        let existing = dir.stat(&name)?;
        let is_dir = |stat: &nix::sys::stat::FileStat| {
            stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR
        };
        let keep_dir = existing.as_ref().is_some_and(is_dir) && kind.is_dir();
        if existing.is_some() && !keep_dir {
            dir.remove(&name)?;
            parents.forget();
        }
        let (dir, _) = parents.of(&relative)?;
        match kind {
            tar::EntryType::Directory => {
                if !keep_dir {
                    dir.mkdir(&name, 0o755)?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                // `O_EXCL|O_NOFOLLOW`: fails if anything appeared there.
                let mut file = dir.create_file(&name, 0o600)?;
                let copied = if let Some(sparse) = &sparse {
                    sparse.restore(&mut entry, &file)
                } else if kind == tar::EntryType::GNUSparse {
                    super::sparse::restore(&mut entry, &mut file)
                } else {
                    io::copy(&mut entry, &mut file).map(drop)
                };
                // The rest on the descriptor just written: one call each.
                let shown = dir.path(&name);
                copied.map_err(|error| match error.raw_os_error() {
                    // Writing failed, not the archive: a full disk or
                    // quota is the file's, and says so.
                    Some(
                        nix::libc::ENOSPC | nix::libc::EDQUOT | nix::libc::EFBIG | nix::libc::EROFS,
                    ) => UnpackError::Io(crate::error::PathError {
                        operation: "write",
                        path: shown.clone(),
                        source: error,
                    }),
                    _ => UnpackError::Archive(error),
                })?;
                let (uid, gid) = owner_of(&header)?;
                if let Some((uid, gid)) = uid.zip(gid) {
                    match std::os::unix::fs::fchown(&file, Some(uid), Some(gid)) {
                        Ok(()) => {}
                        Err(error) if unapplied(&error, as_root) => {
                            report.unapplied_owners.insert(relative.clone(), (uid, gid));
                        }
                        Err(error) => return Err(io_error("set the owner of", &shown)(error)),
                    }
                }
                for (key, value) in xattrs_of(&mut entry)? {
                    use xattr::FileExt;
                    if let Err(error) = file.set_xattr(&key, &value)
                        && as_root
                    {
                        return Err(io_error("set an xattr on", &shown)(error));
                    }
                }
                let time = mtime_of(&header)?;
                file.set_times(
                    std::fs::FileTimes::new()
                        .set_accessed(time)
                        .set_modified(time),
                )
                .map_err(io_error("set the times of", &shown))?;
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(io_error("set the mode of", &shown))?;
                report.entries += 1;
                continue;
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
                dir.symlink(&name, &link)?;
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
                    target: crate::name::escape_path(&raw_target).into_owned(),
                    reason,
                };
                let relative_target =
                    clean(&raw_target).map_err(|_| bad("it points outside the target"))?;
                if relative_target.as_os_str().is_empty() {
                    return Err(bad("it points at the target itself"));
                }
                // Its directory is resolved inside the target; the entry
                // itself (a symlink included) is linked, never followed.
                let found = match root.parent(&relative_target, Make::Never) {
                    Ok(found) => found,
                    Err(error)
                        if matches!(
                            error.source.raw_os_error(),
                            Some(nix::libc::ENOENT | nix::libc::ENOTDIR)
                        ) =>
                    {
                        None
                    }
                    Err(error) => return Err(error.into()),
                };
                let Some((source_dir, source_name)) = found else {
                    return Err(bad("its target is not a file in the layer"));
                };
                match source_dir.stat(&source_name)? {
                    Some(stat) if !is_dir(&stat) => {}
                    _ => return Err(bad("its target is not a file in the layer")),
                }
                dir.hard_link(&name, &source_dir, &source_name)?;
                report.entries += 1;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                // Making device nodes needs privileges a rootless build does
                // not have; say so instead of pretending.
                report.skipped_devices.push(display);
                continue;
            }
            other => {
                return Err(UnpackError::Archive(io::Error::other(format!(
                    "entry `{display}` has an unsupported type ({other:?})"
                ))));
            }
        }
        // Ownership and xattrs on the entry itself (a directory or a
        // symlink), by name; a directory's mode and times at the end.
        let (uid, gid) = owner_of(&header)?;
        if let Some((uid, gid)) = uid.zip(gid) {
            match dir.chown(&name, uid, gid) {
                Ok(()) => {}
                Err(error) if unapplied(&error, as_root) => {
                    report.unapplied_owners.insert(relative.clone(), (uid, gid));
                }
                Err(error) => return Err(io_error("set the owner of", &dir.path(&name))(error)),
            }
        }
        for (key, value) in xattrs_of(&mut entry)? {
            if let Err(error) = dir.set_xattr(&name, &key, &value)
                && as_root
            {
                return Err(io_error("set an xattr on", &dir.path(&name))(error));
            }
        }
        if kind.is_dir() {
            let mtime = header.mtime().map_err(UnpackError::Archive)?;
            directories.push((relative.clone(), mode, mtime));
        }
        report.entries += 1;
    }
    // Deepest first, so that a parent's time is set after its children's.
    // Each is found again inside the root: whatever replaced it since (a
    // symlink say) is never followed.
    for (relative, mode, mtime) in directories.iter().rev() {
        if let Some((dir, name)) = root.parent(relative, Make::Never)?
            && dir
                .stat(&name)?
                .is_some_and(|stat| stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
        {
            set_mtime(&dir, &name, *mtime)?;
            dir.chmod(&name, *mode)?;
        }
    }
    // What follows the end-of-archive blocks is padding (tar writes whole
    // 10 KiB records). A decompression bomb would follow them with
    // gigabytes: past a bound the digest is not computed, and a caller
    // that needs it (a snapshot) refuses the layer.
    report.diff_id = archive
        .into_inner()
        .into_inner()
        .finish(MAX_TRAILING)
        .map_err(UnpackError::Archive)?
        .map(|(digest, _)| digest);
    Ok(report)
}

/// The most bytes the PAX sparse files of one archive may hold in all
/// (their lengths, holes included): ours, generous (a layer of ours holds
/// a file with holes this way), and far below what would make reading
/// them back endless. Go's `archive/tar` has no such bound.
const MAX_SPARSE_LENGTH: u64 = 1 << 40;

/// What an entry's PAX records say of a sparse file (formats 0.0, 0.1 and
/// 1.0 of GNU tar, all of which Go's `archive/tar` reads).
struct PaxSparse {
    /// The file's real name (`GNU.sparse.name`), when given.
    name: Option<Vec<u8>>,
    /// Its length, holes included.
    size: u64,
    /// The runs of data, when the records hold them (0.0 and 0.1); 1.0
    /// keeps them at the start of the data.
    runs: Option<Vec<(u64, u64)>>,
}

impl PaxSparse {
    fn restore(&self, entry: &mut impl Read, file: &std::fs::File) -> io::Result<()> {
        let runs = match &self.runs {
            Some(runs) => runs.clone(),
            None => super::sparse::read_pax_map(entry)?,
        };
        super::sparse::restore_runs(entry, file, &runs, self.size)
    }
}

/// The sparse file an entry's PAX records describe, if any.
fn pax_sparse(entry: &mut tar::Entry<'_, impl Read>) -> Result<Option<PaxSparse>, UnpackError> {
    let Some(extensions) = entry.pax_extensions().map_err(UnpackError::Archive)? else {
        return Ok(None);
    };
    let bad = |what: String| UnpackError::Archive(io::Error::other(what));
    let number = |key: &[u8], value: &[u8]| {
        std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                bad(format!(
                    "the PAX record `{}` is not a number",
                    String::from_utf8_lossy(key)
                ))
            })
    };
    let (mut major, mut minor, mut name, mut size, mut realsize) = (None, None, None, None, None);
    let (mut map, mut offsets, mut any) = (None, Vec::new(), false);
    for extension in extensions {
        let extension = extension.map_err(UnpackError::Archive)?;
        let Some(key) = extension.key_bytes().strip_prefix(b"GNU.sparse.") else {
            continue;
        };
        any = true;
        let value = extension.value_bytes();
        match key {
            b"major" => major = Some(value.to_vec()),
            b"minor" => minor = Some(value.to_vec()),
            b"name" => name = Some(value.to_vec()),
            b"size" => size = Some(number(extension.key_bytes(), value)?),
            b"realsize" => realsize = Some(number(extension.key_bytes(), value)?),
            b"map" => map = Some(value.to_vec()),
            // 0.0: one record each, in pairs.
            b"offset" | b"numbytes" => offsets.push(number(extension.key_bytes(), value)?),
            _ => {}
        }
    }
    if !any {
        return Ok(None);
    }
    let runs = if major.as_deref() == Some(b"1") && minor.as_deref() == Some(b"0") {
        None
    } else if let Some(map) = map {
        // 0.1: `offset,length,offset,length…` in one record.
        let numbers = if map.is_empty() {
            Vec::new()
        } else {
            map.split(|byte| *byte == b',')
                .map(|value| number(b"GNU.sparse.map", value))
                .collect::<Result<Vec<_>, _>>()?
        };
        if numbers.len() % 2 != 0 {
            return Err(bad(
                "the PAX record `GNU.sparse.map` is not in pairs".to_owned()
            ));
        }
        Some(
            numbers
                .chunks_exact(2)
                .map(|pair| (pair[0], pair[1]))
                .collect(),
        )
    } else if !offsets.is_empty() || size.is_some() {
        if offsets.len() % 2 != 0 {
            return Err(bad(
                "the PAX records `GNU.sparse.offset` and `GNU.sparse.numbytes` are not in pairs"
                    .to_owned(),
            ));
        }
        Some(
            offsets
                .chunks_exact(2)
                .map(|pair| (pair[0], pair[1]))
                .collect(),
        )
    } else {
        return Err(bad(format!(
            "a GNU sparse format strata does not know ({}.{})",
            String::from_utf8_lossy(major.as_deref().unwrap_or(b"?")),
            String::from_utf8_lossy(minor.as_deref().unwrap_or(b"?"))
        )));
    };
    // 1.0 gives `realsize`; the older forms `size` (Go reads either).
    let Some(size) = size.or(realsize) else {
        return Err(bad("a GNU sparse file without its length".to_owned()));
    };
    Ok(Some(PaxSparse { name, size, runs }))
}

/// The owner an entry gives, where it fits in an id.
fn owner_of(header: &tar::Header) -> Result<(Option<u32>, Option<u32>), UnpackError> {
    let uid = header.uid().map_err(UnpackError::Archive)?;
    let gid = header.gid().map_err(UnpackError::Archive)?;
    Ok((u32::try_from(uid).ok(), u32::try_from(gid).ok()))
}

/// Whether a failed chown only means the owner cannot be given here:
/// without privileges (EPERM), or in a user namespace that does not map
/// the id (EINVAL). The files keep ours, and the report says so.
fn unapplied(error: &io::Error, as_root: bool) -> bool {
    (!as_root && error.raw_os_error() == Some(nix::libc::EPERM))
        || error.raw_os_error() == Some(nix::libc::EINVAL)
}

/// The xattrs an entry's PAX records carry.
fn xattrs_of(
    entry: &mut tar::Entry<'_, impl Read>,
) -> Result<Vec<(std::ffi::OsString, Vec<u8>)>, UnpackError> {
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry.pax_extensions().map_err(UnpackError::Archive)? {
        for extension in extensions {
            let extension = extension.map_err(UnpackError::Archive)?;
            if let Some(key) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((
                    std::ffi::OsStr::from_bytes(key).to_owned(),
                    extension.value_bytes().to_vec(),
                ));
            }
        }
    }
    Ok(xattrs)
}

/// An entry's mtime as a time.
fn mtime_of(header: &tar::Header) -> Result<std::time::SystemTime, UnpackError> {
    let seconds = header.mtime().map_err(UnpackError::Archive)?;
    Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

fn set_mtime(dir: &Dir, name: &std::ffi::OsStr, mtime: u64) -> Result<(), UnpackError> {
    let seconds = i64::try_from(mtime).unwrap_or(i64::MAX);
    Ok(dir.set_times(name, (seconds, 0), (seconds, 0))?)
}
