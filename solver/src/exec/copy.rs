//! The copy snapshotter, for where overlayfs cannot be mounted in a user
//! namespace (an old kernel, or a store on a filesystem overlayfs refuses
//! as its upper layer, such as another overlayfs).
//!
//! [`merge`] copies the snapshots, bottom first, into one directory that
//! becomes the sandbox's root. File data goes through `std::fs::copy`,
//! which on Linux uses `copy_file_range`: the kernel clones the extents
//! (a reflink) on filesystems that can (btrfs, XFS), and copies otherwise.
//! After the run, [`diff`] compares that directory with the snapshots and
//! writes the differences in the form of an overlay upper directory, the
//! form the layer writer reads. Files are compared by type, mode, owner,
//! size, mtime (to the nanosecond), link target and xattrs, as
//! containerd's and BuildKit's naive differs do: a change that restores
//! all of those is not seen.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::ExecError;
use crate::layer::{
    OVERLAY_OPAQUE_XATTR, OVERLAY_WHITEOUT_XATTR, is_opaque, is_overlay_xattr, is_xattr_whiteout,
};

type Xattrs = Vec<(std::ffi::OsString, Vec<u8>)>;

fn xattrs(path: &Path) -> Result<Xattrs, ExecError> {
    let mut out = Vec::new();
    let names = match xattr::list(path) {
        Ok(names) => names,
        // Filesystems without xattrs have none to copy.
        Err(error) if error.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(out),
        Err(error) => return Err(ExecError::io("list the xattrs of", path)(error)),
    };
    for name in names {
        if is_overlay_xattr(name.as_encoded_bytes()) {
            continue;
        }
        if let Some(value) =
            xattr::get(path, &name).map_err(ExecError::io("read an xattr of", path))?
        {
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

/// What the differ compares.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    rdev: u64,
    link: Option<PathBuf>,
    xattrs: Xattrs,
}

impl Node {
    fn of(path: &Path, meta: &std::fs::Metadata) -> Result<Node, ExecError> {
        let is_dir = meta.is_dir();
        Ok(Node {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            // A directory's size says nothing about its content.
            size: if is_dir { 0 } else { meta.size() },
            mtime: (meta.mtime(), meta.mtime_nsec()),
            rdev: meta.rdev(),
            link: if meta.file_type().is_symlink() {
                Some(std::fs::read_link(path).map_err(ExecError::io("read the link", path))?)
            } else {
                None
            },
            xattrs: if meta.file_type().is_symlink() {
                Vec::new()
            } else {
                xattrs(path)?
            },
        })
    }

    fn is_dir(&self) -> bool {
        self.mode & nix::libc::S_IFMT == nix::libc::S_IFDIR
    }
}

/// The entries of `dir`, sorted by name.
fn children(dir: &Path) -> Result<Vec<std::ffi::OsString>, ExecError> {
    let mut names = std::fs::read_dir(dir)
        .map_err(ExecError::io("read", dir))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ExecError::io("read", dir))?;
    names.sort();
    Ok(names)
}

/// Whether a snapshot entry is an overlay whiteout.
fn is_whiteout(path: &Path, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    (meta.file_type().is_char_device() && meta.rdev() == 0) || is_xattr_whiteout(path, meta)
}

fn remove_any(path: &Path) -> Result<(), ExecError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).map_err(ExecError::io("remove", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(ExecError::io("remove", path)),
        Err(_) => Ok(()),
    }
}

fn times(meta: &std::fs::Metadata) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(meta.atime(), meta.atime_nsec()),
        TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    )
}

fn set_times(path: &Path, (atime, mtime): (TimeSpec, TimeSpec)) -> Result<(), ExecError> {
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|errno| ExecError::io("set the times of", path)(errno.into()))
}

/// Give `target` the owner, mode and xattrs of `source` (times are set by
/// the caller: a directory's change once its content is written).
fn copy_metadata(source: &Path, meta: &std::fs::Metadata, target: &Path) -> Result<(), ExecError> {
    // An id this namespace does not map cannot be given; the file keeps
    // ours, as the unpacker does without privileges.
    let _ = std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()));
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(
            target,
            std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        )
        .map_err(ExecError::io("set the mode of", target))?;
        for (name, value) in xattrs(source)? {
            xattr::set(target, &name, &value).map_err(ExecError::io("set an xattr of", target))?;
        }
    }
    Ok(())
}

/// Copy one entry (not a directory's content).
fn copy_entry(
    source: &Path,
    meta: &std::fs::Metadata,
    target: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ExecError> {
    let kind = meta.file_type();
    if kind.is_dir() {
        std::fs::create_dir(target).map_err(ExecError::io("create", target))?;
    } else if kind.is_symlink() {
        let link = std::fs::read_link(source).map_err(ExecError::io("read the link", source))?;
        std::os::unix::fs::symlink(link, target).map_err(ExecError::io("create", target))?;
    } else if kind.is_file() {
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1
            && let Some(first) = links.get(&key)
        {
            return std::fs::hard_link(first, target).map_err(ExecError::io("link", target));
        }
        std::fs::copy(source, target).map_err(ExecError::io("copy", source))?;
        if meta.nlink() > 1 {
            links.insert(key, target.to_path_buf());
        }
    } else {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            nix::unistd::mkfifo(target, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|errno| ExecError::io("create", target)(errno.into()))?;
        } else {
            // Devices and sockets never reach snapshots (the unpacker
            // skips devices; tar holds no sockets).
            return Ok(());
        }
    }
    copy_metadata(source, meta, target)?;
    if !kind.is_dir() {
        set_times(target, times(meta))?;
    }
    Ok(())
}

/// Copy the snapshots `lowers` (top first) into `target`, applying each
/// one's whiteouts and opaque directories to those below it.
pub(crate) fn merge(lowers: &[PathBuf], target: &Path) -> Result<(), ExecError> {
    let mut dir_times = BTreeMap::new();
    for layer in lowers.iter().rev() {
        let mut links = HashMap::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(relative) = stack.pop() {
            let source = layer.join(&relative);
            for name in children(&source)? {
                let relative = relative.join(&name);
                let source = layer.join(&relative);
                let destination = target.join(&relative);
                let meta = std::fs::symlink_metadata(&source)
                    .map_err(ExecError::io("inspect", &source))?;
                if is_whiteout(&source, &meta) {
                    remove_any(&destination)?;
                    continue;
                }
                let existing = std::fs::symlink_metadata(&destination).ok();
                if meta.is_dir() {
                    match existing {
                        Some(existing) if existing.is_dir() && !is_opaque(&source) => {
                            copy_metadata(&source, &meta, &destination)?;
                        }
                        Some(_) => {
                            remove_any(&destination)?;
                            copy_entry(&source, &meta, &destination, &mut links)?;
                        }
                        None => copy_entry(&source, &meta, &destination, &mut links)?,
                    }
                    dir_times.insert(destination, times(&meta));
                    stack.push(relative);
                } else {
                    if existing.is_some() {
                        remove_any(&destination)?;
                    }
                    copy_entry(&source, &meta, &destination, &mut links)?;
                }
            }
        }
    }
    // Last, once nothing more is written into them (and for those a
    // higher layer did not delete).
    for (dir, times) in dir_times {
        if std::fs::symlink_metadata(&dir).is_ok_and(|meta| meta.is_dir()) {
            set_times(&dir, times)?;
        }
    }
    Ok(())
}

/// The merged view of `lowers` (top first): every path, with the node of
/// the topmost layer that has it.
fn lower_view(lowers: &[PathBuf]) -> Result<BTreeMap<PathBuf, Node>, ExecError> {
    let mut view: BTreeMap<PathBuf, Node> = BTreeMap::new();
    let remove_below = |view: &mut BTreeMap<PathBuf, Node>, path: &Path| {
        let doomed: Vec<PathBuf> = view
            .range(path.to_path_buf()..)
            .take_while(|(key, _)| key.starts_with(path))
            .map(|(key, _)| key.clone())
            .filter(|key| key != path)
            .collect();
        for key in doomed {
            view.remove(&key);
        }
    };
    for layer in lowers.iter().rev() {
        let mut stack = vec![PathBuf::new()];
        while let Some(relative) = stack.pop() {
            for name in children(&layer.join(&relative))? {
                let relative = relative.join(&name);
                let source = layer.join(&relative);
                let meta = std::fs::symlink_metadata(&source)
                    .map_err(ExecError::io("inspect", &source))?;
                if is_whiteout(&source, &meta) {
                    remove_below(&mut view, &relative);
                    view.remove(&relative);
                    continue;
                }
                let replaces_dir = view.get(&relative).is_some_and(Node::is_dir);
                if replaces_dir && (!meta.is_dir() || is_opaque(&source)) {
                    remove_below(&mut view, &relative);
                }
                view.insert(relative.clone(), Node::of(&source, &meta)?);
                if meta.is_dir() {
                    stack.push(relative);
                }
            }
        }
    }
    Ok(view)
}

/// Write into `out` (a new directory) what differs between the snapshots
/// `lowers` (top first) and `rootfs`, as an overlay upper directory:
/// changed and new entries (files hardlinked from `rootfs`, which is on the
/// same filesystem), whiteouts for deleted ones.
pub(crate) fn diff(lowers: &[PathBuf], rootfs: &Path, out: &Path) -> Result<(), ExecError> {
    let view = lower_view(lowers)?;
    std::fs::create_dir(out).map_err(ExecError::io("create", out))?;
    let mut made: BTreeMap<PathBuf, ()> = BTreeMap::new();
    let mut dir_times = Vec::new();
    // Make `relative`'s parents in `out`, with the metadata they have in
    // `rootfs`.
    let parents = |relative: &Path,
                   made: &mut BTreeMap<PathBuf, ()>,
                   dir_times: &mut Vec<(PathBuf, (TimeSpec, TimeSpec))>|
     -> Result<(), ExecError> {
        let mut ancestors: Vec<&Path> = relative
            .ancestors()
            .skip(1)
            .filter(|path| !path.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for ancestor in ancestors {
            if made.contains_key(ancestor) {
                continue;
            }
            let source = rootfs.join(ancestor);
            let meta =
                std::fs::symlink_metadata(&source).map_err(ExecError::io("inspect", &source))?;
            let target = out.join(ancestor);
            std::fs::create_dir(&target).map_err(ExecError::io("create", &target))?;
            copy_metadata(&source, &meta, &target)?;
            dir_times.push((target, times(&meta)));
            made.insert(ancestor.to_path_buf(), ());
        }
        Ok(())
    };
    let mut present = std::collections::BTreeSet::new();
    let mut present_dirs = std::collections::BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for name in children(&rootfs.join(&relative))? {
            let relative = relative.join(&name);
            let source = rootfs.join(&relative);
            let meta =
                std::fs::symlink_metadata(&source).map_err(ExecError::io("inspect", &source))?;
            let node = Node::of(&source, &meta)?;
            present.insert(relative.clone());
            let before = view.get(&relative);
            if before != Some(&node) {
                parents(&relative, &mut made, &mut dir_times)?;
                let target = out.join(&relative);
                if meta.is_file() {
                    std::fs::hard_link(&source, &target).map_err(ExecError::io("link", &target))?;
                } else {
                    copy_entry(&source, &meta, &target, &mut HashMap::new())?;
                    if meta.is_dir() {
                        dir_times.push((target, times(&meta)));
                        made.insert(relative.clone(), ());
                    }
                }
            }
            if meta.is_dir() {
                present_dirs.insert(relative.clone());
                stack.push(relative);
            }
        }
    }
    for relative in view.keys() {
        let parent_present = relative
            .parent()
            .is_none_or(|parent| parent.as_os_str().is_empty() || present_dirs.contains(parent));
        // Only the topmost deleted path needs a whiteout; a deleted
        // directory's content goes with it.
        if present.contains(relative) || !parent_present {
            continue;
        }
        parents(relative, &mut made, &mut dir_times)?;
        let target = out.join(relative);
        if std::fs::symlink_metadata(&target).is_ok() {
            // Replaced by something of another kind, already written.
            continue;
        }
        std::fs::File::create(&target).map_err(ExecError::io("create", &target))?;
        xattr::set(&target, OVERLAY_WHITEOUT_XATTR, b"")
            .map_err(ExecError::io("mark as a whiteout", &target))?;
        // overlayfs looks for xattr whiteouts only in directories marked
        // `x` (the diff may become a snapshot, an overlay lower directory).
        if let Some(parent) = target.parent()
            && !is_opaque(parent)
        {
            xattr::set(parent, OVERLAY_OPAQUE_XATTR, b"x")
                .map_err(ExecError::io("mark as holding whiteouts", parent))?;
        }
    }
    for (dir, times) in dir_times.into_iter().rev() {
        set_times(&dir, times)?;
    }
    Ok(())
}

/// Where `relative` is in the merged view of `lowers` (top first): the path
/// in the layer that provides it, or `None` when no layer has it or a
/// higher one deleted it (a whiteout, an opaque directory, or a parent
/// that is not a directory).
pub(crate) fn lookup(lowers: &[PathBuf], relative: &Path) -> Option<PathBuf> {
    for lower in lowers {
        // Does this layer hide the path, or a parent of it, from the ones
        // below? Check the parents first, shallowest first.
        let mut hidden = false;
        for ancestor in relative
            .ancestors()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .skip(1)
        {
            let path = lower.join(ancestor);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if is_whiteout(&path, &meta) {
                return None;
            }
            if ancestor == relative {
                return Some(path);
            }
            if !meta.is_dir() {
                return None;
            }
            if is_opaque(&path) {
                hidden = true;
            }
        }
        if hidden {
            return None;
        }
    }
    None
}
