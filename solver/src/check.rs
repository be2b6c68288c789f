//! `system check --snapshots` and `system check --repair`: what the store's
//! own check ([`Store::check`]: blobs, the index, leases) cannot see,
//! and rebuilding what can be rebuilt.
//!
//! # Snapshots
//!
//! A snapshot (`snapshots/<diff_id hex>`) is one layer as a directory in
//! overlayfs's form. It is made either by unpacking the layer's blob
//! ([`crate::image::snapshot`]) or, for a layer a step just wrote, by
//! renaming the step's upper directory into place, since the layer was
//! written from it. Either way it must hold what unpacking the blob gives.
//! Re-tarring it would not tell: a layer pulled from a registry was not
//! written by strata's writer, so its bytes differ from what the writer
//! makes of the same tree. So the blob is unpacked again, into `tmp/`, the
//! way snapshots are made, and the two trees are compared entry by entry:
//! the names, each entry's kind (a whiteout in either of overlayfs's forms
//! counts as one kind), a file's content, a link's target, permission
//! bits and a directory's opacity. Owners and times are not compared: a
//! step's upper directory has the times the step gave its files, which the
//! writer may clamp, and an unprivileged unpack cannot set owners. Both
//! trees are walked through descriptors (`confined`), never following a
//! link.
//!
//! A snapshot that differs is repaired by putting the fresh unpack in its
//! place (what any later use would have made of it).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::FileStat;

use crate::confined::{Dir, Root};
use crate::digest::{Digest, HashingWriter};
use crate::image::ImageError;
use crate::layer;
use crate::store::{LayerRecord, SNAPSHOTS, Store, StoreError, TMP};

/// The most differences a problem lists.
const SHOWN_DIFFERENCES: usize = 3;

/// A snapshot that does not hold what its layer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenSnapshot {
    /// Where it is.
    pub path: PathBuf,
    /// Its layer's blob.
    pub layer: Digest,
    /// What differs (`etc/x` is missing, ...), in walk order.
    pub differences: Vec<String>,
}

impl BrokenSnapshot {
    /// The problem, as `system check` prints it.
    pub fn problem(&self) -> String {
        let mut shown: Vec<&str> = self
            .differences
            .iter()
            .take(SHOWN_DIFFERENCES)
            .map(String::as_str)
            .collect();
        let more;
        if self.differences.len() > SHOWN_DIFFERENCES {
            more = format!("and {} more", self.differences.len() - SHOWN_DIFFERENCES);
            shown.push(&more);
        }
        format!(
            "snapshot `{}` of layer {} does not match the layer ({}): run `strata system check --repair`",
            self.path.display(),
            self.layer,
            shown.join(", ")
        )
    }
}

/// What [`check_snapshots`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SnapshotReport {
    /// Snapshots compared with their layers.
    pub verified: usize,
    /// Snapshots no image or cache record names a layer for (not verified;
    /// the next prune removes them).
    pub unknown: Vec<Digest>,
    /// Snapshots that differ from their layers.
    pub broken: Vec<BrokenSnapshot>,
    /// Snapshots whose layer could not be unpacked to compare (its blob
    /// missing or corrupt, which the blob check reports too).
    pub unverifiable: Vec<String>,
    /// Of `broken`, those put right (with `repair`).
    pub repaired: Vec<PathBuf>,
}

/// The layer of every diff_id the store's images and build cache know.
fn known_layers(
    store: &Store,
) -> Result<std::collections::BTreeMap<Digest, LayerRecord>, ImageError> {
    let mut layers = std::collections::BTreeMap::new();
    // What can be read of the index: a damaged part is the index check's.
    for image in store.load_index()?.index.images.values() {
        for layer in &image.layers {
            layers.entry(layer.diff_id.clone()).or_insert(layer.clone());
        }
    }
    for record in crate::solve::cache::records(store) {
        if let Some(layer) = record.layer {
            layers.entry(layer.diff_id.clone()).or_insert(layer);
        }
    }
    Ok(layers)
}

/// Compare every snapshot with its layer's blob (see the module); with
/// `repair`, replace each that differs with the blob unpacked afresh.
/// `store` should be leased: what it unpacks into `tmp/` is held then.
pub fn check_snapshots(store: &Store, repair: bool) -> Result<SnapshotReport, ImageError> {
    let mut report = SnapshotReport::default();
    let layers = known_layers(store)?;
    for diff_id in store.snapshots()? {
        let Some(layer) = layers.get(&diff_id) else {
            report.unknown.push(diff_id);
            continue;
        };
        // Held while it is compared (and replaced): a prune leaves it.
        store.hold_layer(layer)?;
        let staging = store.staging_dir("verify")?;
        let outcome = verify(store, layer, &staging);
        let keep = match outcome {
            Ok(differences) if differences.is_empty() => {
                report.verified += 1;
                false
            }
            Ok(differences) => {
                report.verified += 1;
                let path = store.snapshot_path(&diff_id);
                let replaced = repair && replace(store, &diff_id, &staging).is_ok();
                if replaced {
                    report.repaired.push(path.clone());
                }
                report.broken.push(BrokenSnapshot {
                    path,
                    layer: layer.digest.clone(),
                    differences,
                });
                replaced
            }
            Err(error) => {
                report.unverifiable.push(format!(
                    "snapshot `{}` of layer {} cannot be verified: {error}",
                    store.snapshot_path(&diff_id).display(),
                    layer.digest
                ));
                false
            }
        };
        if !keep && let Some(tmp) = store.open_dir(TMP)? {
            let name = staging.file_name().unwrap_or_default();
            tmp.remove(name)?;
        }
    }
    Ok(report)
}

/// Put the fresh unpack `staging` in place of the snapshot of `diff_id`.
fn replace(store: &Store, diff_id: &Digest, staging: &Path) -> Result<(), ImageError> {
    let (Some(snapshots), Some(tmp)) = (store.open_dir(SNAPSHOTS)?, store.open_dir(TMP)?) else {
        return Ok(());
    };
    let name = OsString::from(diff_id.hex());
    snapshots.remove(&name)?;
    tmp.rename_into(
        staging.file_name().unwrap_or_default(),
        &snapshots,
        &name,
        "move the snapshot into place",
    )?;
    Ok(())
}

/// Unpack `layer` into `staging` and compare the snapshot with it: the
/// differences.
fn verify(store: &Store, layer: &LayerRecord, staging: &Path) -> Result<Vec<String>, ImageError> {
    let missing = |path: PathBuf| crate::error::PathError {
        operation: "open the directory",
        path,
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    // Both trees through the store's checked directories, never a link.
    let tmp = store
        .open_dir(TMP)?
        .ok_or_else(|| missing(store.path(TMP)))?;
    let staging_name = staging.file_name().unwrap_or_default();
    let open_staging = || {
        tmp.confined_dir(staging_name)?
            .ok_or_else(|| ImageError::from(missing(staging.to_owned())))
    };
    let reader = crate::image::decompressed(store.open_blob(&layer.digest)?)?;
    let unpacked = layer::unpack_into(
        reader,
        &Root::from_dir(open_staging()?),
        layer::Whiteouts::Overlay,
    )?;
    if unpacked.diff_id.as_ref() != Some(&layer.diff_id) {
        return Err(ImageError::Format(format!(
            "its blob does not unpack to diff_id {}",
            layer.diff_id
        )));
    }
    let expected = open_staging()?;
    let snapshots = store
        .open_dir(SNAPSHOTS)?
        .ok_or_else(|| missing(store.path(SNAPSHOTS)))?;
    let snapshot = match snapshots.confined_dir(OsStr::new(&layer.diff_id.hex())) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Err(missing(store.snapshot_path(&layer.diff_id)).into()),
        // A file or a link in its place (never followed).
        Err(StoreError::Io(error))
            if matches!(
                error.source.raw_os_error(),
                Some(nix::libc::ENOTDIR | nix::libc::ELOOP)
            ) =>
        {
            return Ok(vec!["it is not a directory".to_owned()]);
        }
        Err(error) => return Err(error.into()),
    };
    let mut differences = Vec::new();
    compare(expected, snapshot, &mut differences)?;
    Ok(differences)
}

/// What an entry is, as far as a snapshot's meaning goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
    Symlink,
    Whiteout,
    Device(nix::libc::mode_t, u64),
    Fifo,
    Socket,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Directory => "a directory",
            Kind::File => "a file",
            Kind::Symlink => "a symbolic link",
            Kind::Whiteout => "a whiteout",
            Kind::Device(..) => "a device",
            Kind::Fifo => "a fifo",
            Kind::Socket => "a socket",
        }
    }
}

fn kind_of(dir: &Dir, name: &OsStr, stat: &FileStat) -> Kind {
    let format = stat.st_mode & nix::libc::S_IFMT;
    let whiteout_xattr = || {
        [layer::OVERLAY_WHITEOUT_XATTR, "trusted.overlay.whiteout"]
            .iter()
            .any(|key| matches!(dir.xattr(name, OsStr::new(key)), Ok(Some(_))))
    };
    match format {
        nix::libc::S_IFDIR => Kind::Directory,
        nix::libc::S_IFLNK => Kind::Symlink,
        nix::libc::S_IFREG if stat.st_size == 0 && whiteout_xattr() => Kind::Whiteout,
        nix::libc::S_IFREG => Kind::File,
        nix::libc::S_IFCHR if stat.st_rdev == 0 => Kind::Whiteout,
        nix::libc::S_IFCHR | nix::libc::S_IFBLK => Kind::Device(format, stat.st_rdev),
        nix::libc::S_IFIFO => Kind::Fifo,
        _ => Kind::Socket,
    }
}

fn opaque(dir: &Dir) -> bool {
    [layer::OVERLAY_OPAQUE_XATTR, "trusted.overlay.opaque"]
        .iter()
        .any(|key| matches!(dir.own_xattr(OsStr::new(key)), Ok(Some(value)) if value == b"y"))
}

fn content_digest(dir: &Dir, name: &OsStr) -> Result<Digest, ImageError> {
    let mut file = dir.open_read(name)?;
    let mut hasher = HashingWriter::new(std::io::sink());
    let path = dir.path(name);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read =
            file.read(&mut buffer).map_err(
                crate::error::PathError::at::<crate::error::PathError>("read", &path),
            )?;
        if read == 0 {
            break;
        }
        std::io::Write::write_all(&mut hasher, &buffer[..read]).map_err(
            crate::error::PathError::at::<crate::error::PathError>("read", &path),
        )?;
    }
    Ok(hasher.finish().0)
}

/// `a/b`, for messages (escaped where it is not UTF-8).
fn shown(relative: &Path) -> String {
    format!("`{}`", crate::name::escape_path(relative))
}

/// Compare the tree `snapshot` with `expected`, pushing what differs.
fn compare(expected: Dir, snapshot: Dir, differences: &mut Vec<String>) -> Result<(), ImageError> {
    let mut stack: Vec<(PathBuf, Dir, Dir)> = vec![(PathBuf::new(), expected, snapshot)];
    while let Some((relative, expected, snapshot)) = stack.pop() {
        let wanted = expected.list()?;
        let found = snapshot.list()?;
        let mut names: Vec<&OsString> = wanted.iter().chain(&found).collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names.dedup();
        for name in names {
            let path = relative.join(name);
            let want = expected.stat(name)?;
            let have = snapshot.stat(name)?;
            let (want, have) = match (want, have) {
                (None, None) => continue,
                (Some(_), None) => {
                    differences.push(format!("{} is missing", shown(&path)));
                    continue;
                }
                (None, Some(have)) => {
                    // A socket a step left: never part of a layer.
                    if kind_of(&snapshot, name, &have) != Kind::Socket {
                        differences.push(format!("{} was added", shown(&path)));
                    }
                    continue;
                }
                (Some(want), Some(have)) => (want, have),
            };
            let (want_kind, have_kind) = (
                kind_of(&expected, name, &want),
                kind_of(&snapshot, name, &have),
            );
            if want_kind != have_kind {
                differences.push(format!(
                    "{} is {}, the layer has {}",
                    shown(&path),
                    have_kind.name(),
                    want_kind.name()
                ));
                continue;
            }
            let changed = match want_kind {
                Kind::File => {
                    want.st_size != have.st_size
                        || content_digest(&expected, name)? != content_digest(&snapshot, name)?
                }
                Kind::Symlink => expected.read_link(name)? != snapshot.read_link(name)?,
                _ => false,
            };
            if changed {
                differences.push(format!("{} was changed", shown(&path)));
                continue;
            }
            let (want_mode, have_mode) = (want.st_mode & 0o7777, have.st_mode & 0o7777);
            if !matches!(want_kind, Kind::Symlink | Kind::Whiteout) && want_mode != have_mode {
                differences.push(format!(
                    "{} has mode {have_mode:o}, the layer {want_mode:o}",
                    shown(&path)
                ));
            }
            if want_kind == Kind::Directory {
                let (inner_expected, inner_snapshot) =
                    (expected.open_dir(name)?, snapshot.open_dir(name)?);
                if opaque(&inner_expected) != opaque(&inner_snapshot) {
                    differences.push(format!(
                        "{} is {}opaque, the layer's is {}",
                        shown(&path),
                        if opaque(&inner_snapshot) { "" } else { "not " },
                        if opaque(&inner_expected) {
                            "opaque"
                        } else {
                            "not"
                        }
                    ));
                }
                stack.push((path, inner_expected, inner_snapshot));
            }
        }
    }
    Ok(())
}
