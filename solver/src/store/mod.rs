//! The content store: blobs by digest, image records and tags.
//!
//! # Layout
//!
//! [`layout`] names every path under the root: blobs, snapshots, `tmp/`,
//! the image index and its locks, and the directories of the build cache,
//! cache mounts and kept containers.
//!
//! # Privacy
//!
//! Every directory is 0700 and must be a real directory owned by the
//! store's owner; a store another user owns is refused by the command line.
//! See [`dirs`] for the rule.
//!
//! # Consistency
//!
//! - A blob is written to a fresh file in `tmp/` while it is hashed, synced,
//!   then renamed to its digest. A crash at any instant leaves either nothing
//!   or a whole, correct blob in `blobs/`; a half-written file can only be in
//!   `tmp/`. Renaming over an existing blob is harmless: same content.
//! - The image index ([`index`]: a file per image record and a log of
//!   tags) is changed only under an exclusive lock, after the blobs it
//!   references are in place; records are renamed into place whole, tag
//!   lines appended. Readers need no lock.
//! - Several strata processes may share a root: blob writes never conflict,
//!   and record updates are serialised by the lock.
//! - Deleting blobs races with writers that have written blobs but not yet
//!   recorded the image using them. So writers hold `gc.lock` shared from
//!   their first blob to their record ([`Store::writing`]), and whatever
//!   deletes blobs holds it exclusively ([`Store::collecting`]): a blob
//!   unreferenced then is garbage.
//! - What else holds blobs (the build cache) is above the store: garbage
//!   collection takes it from its caller as [`Roots`] (see [`gc`]).
//! - Operations in flight hold what they write and use with a [`Lease`]
//!   (see [`lease`]): a store handle that carries one adds its temporary
//!   files, staging directories and blobs to it by itself, needs no
//!   `gc.lock` for its whole write ([`Store::writing`] is then a no-op), and
//!   garbage collection keeps everything a live lease holds.
//! - All this is tested by crashing strata at each of its renames, syncs,
//!   unlinks and writes ([`crate::fault`], the tests' `failpoints`
//!   feature) in builds, pulls, loads, prunes and pushes
//!   (`tests/it/faults.rs`).

mod background;
mod dirs;
mod error;
pub mod gc;
pub mod index;
pub mod layout;
pub mod lease;
mod leftovers;
pub mod lock;
mod repair;
mod temp;

pub use background::{BackgroundWriter, Checkpoint};
pub use dirs::StoreDir;
pub use error::StoreError;
pub use gc::{Collecting, Roots};
pub use index::{Damage, DamageKind, Loaded};
pub use layout::{BLOBS, SNAPSHOTS, TMP};
pub use lease::{Held, Holder, Lease, LeaseInfo};
pub use lock::LockWait;
pub use temp::{TempBlob, WrittenTemp};

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs_err as fs;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, VerifyingReader};

use layout::{GC_LOCK, LOCK};

/// OCI's manifest media type: the type of every manifest strata writes.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One layer of an image, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob (compressed, as stored).
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's diff_id).
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Its OCI media type.
    pub media_type: String,
    /// Size of the uncompressed tar, when known (layers strata wrote, or
    /// loaded uncompressed); lets `save` stream it without a temporary file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_size: Option<u64>,
}

/// An image in the store: its manifest, config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: the config's digest, as docker uses.
    pub id: Digest,
    /// The manifest blob.
    pub manifest: Digest,
    /// Size of the manifest blob.
    pub manifest_size: u64,
    /// The config blob (same as `id`).
    pub config: Digest,
    /// Size of the config blob.
    pub config_size: u64,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
    /// The config's `created`, if any.
    pub created: Option<String>,
    /// The manifest's media type when it is not OCI's (a Docker schema 2
    /// manifest pulled from a registry, kept byte for byte so that its
    /// digest stays the registry's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_media_type: Option<String>,
    /// `name@sha256:...`: the digests registries know this image by (the
    /// index's, when it was pulled through one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    /// Every blob the image refers to: manifest, config, layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest, &self.config]
            .into_iter()
            .chain(self.layers.iter().map(|layer| &layer.digest))
    }

    /// The manifest's media type.
    pub fn manifest_type(&self) -> &str {
        self.manifest_media_type
            .as_deref()
            .unwrap_or(MEDIA_TYPE_MANIFEST)
    }

    /// Sum of the layer blob sizes.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|layer| layer.size).sum()
    }
}

/// The image index: image records by ID, and tags (see [`index`] for how
/// it is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Records by image ID.
    pub images: BTreeMap<Digest, ImageRecord>,
    /// `name:tag` → image ID.
    pub tags: BTreeMap<String, Digest>,
}

/// A held `gc.lock` (or nothing, for a leased store's writer); released
/// when dropped.
#[derive(Debug)]
pub struct GcGuard {
    _file: Option<fs::File>,
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The root, opened once: the layout's directories are opened relative
    /// to it, never through a link.
    fd: Arc<OwnedFd>,
    /// Who owns the root (in this process's user namespace).
    owner: u32,
    /// Directories that were readable by others and were made 0700, with
    /// the mode they had.
    tightened: Vec<(PathBuf, u32)>,
    /// Told when a lock keeps this store waiting (see [`lock`]).
    lock_waits: lock::LockWaits,
    /// The lease what this handle writes is added to (see [`Store::lease`]).
    lease: Option<Arc<lease::Active>>,
}

/// Whose store [`Store::open_as`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Only a store whose root the effective user owns, as git accepts
    /// only a repository the user owns (the command line's default).
    Mine,
    /// Any owner's (`--allow-foreign-store`). The layout's directories must
    /// still all be real directories owned by the root's owner.
    Any,
}

impl Store {
    /// Open (creating if needed) the store at `root`, whoever owns it (for
    /// callers that chose the root themselves, such as tests; the command
    /// line uses [`Store::open_as`] with [`Ownership::Mine`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        Store::open_as(root, Ownership::Any)
    }

    /// Open (creating if needed, every directory 0700) the store at `root`,
    /// refusing one another user owns unless `ownership` is
    /// [`Ownership::Any`]. Our own store's directories that others could
    /// read are made 0700 ([`Store::tightened`] lists them).
    pub fn open_as(root: impl Into<PathBuf>, ownership: Ownership) -> Result<Store, StoreError> {
        let mut root = root.into();
        // Absolute: the paths of a store travel to other processes (the
        // sandbox helper, which changes directory) and into mount options.
        if root.is_relative() {
            let cwd = std::env::current_dir()
                .map_err(StoreError::io("find the current directory for", &root))?;
            root = cwd.join(root);
        }
        let opened = dirs::open_root(&root, ownership == Ownership::Any)?;
        Ok(Store {
            root,
            fd: Arc::new(opened.fd),
            owner: opened.owner,
            tightened: opened.tightened,
            lock_waits: lock::LockWaits::default(),
            lease: None,
        })
    }

    /// The directories opening the store made private (0700), each with
    /// the mode it had: worth a warning, since until then other users could
    /// read (and run) what they hold.
    pub fn tightened(&self) -> &[(PathBuf, u32)] {
        &self.tightened
    }

    /// The default root: `$STRATA_ROOT`, else `$XDG_DATA_HOME/strata`, else
    /// `~/.local/share/strata`.
    pub fn default_root() -> Option<PathBuf> {
        if let Some(root) = std::env::var_os("STRATA_ROOT").filter(|root| !root.is_empty()) {
            return Some(PathBuf::from(root));
        }
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|data| !data.is_empty()) {
            return Some(PathBuf::from(data).join("strata"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/strata"))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `digest` lives (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS).join(digest.hex())
    }

    /// Where the snapshot of the layer with `diff_id` lives (it may not exist).
    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join(SNAPSHOTS).join(diff_id.hex())
    }

    /// The diff_ids of the snapshots present.
    pub fn snapshots(&self) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .digests_in(SNAPSHOTS)?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect())
    }

    /// The digests named by the entries of store directory `relative`
    /// (names that are not digests are ignored), with those names.
    pub(crate) fn digests_in(
        &self,
        relative: &str,
    ) -> Result<Vec<(Digest, std::ffi::OsString)>, StoreError> {
        let Some(dir) = self.open_dir(relative)? else {
            return Ok(Vec::new());
        };
        Ok(dir
            .entries()?
            .into_iter()
            .filter_map(|name| {
                let digest = format!("sha256:{}", name.to_str()?).parse().ok()?;
                Some((digest, name))
            })
            .collect())
    }

    /// Whether the store has blob `digest`.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The root as a [`StoreDir`] (its own descriptor).
    fn root_dir(&self) -> Result<StoreDir, StoreError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(StoreError::io("open the store directory", &self.root))?;
        Ok(StoreDir::from_parts(fd, self.root.clone()))
    }

    /// A checked directory of the layout that must exist.
    fn layout_dir(&self, relative: &str) -> Result<StoreDir, StoreError> {
        self.open_dir(relative)?.ok_or_else(|| {
            crate::error::PathError {
                operation: "open the store directory",
                path: self.root.join(relative),
                source: io::Error::from(io::ErrorKind::NotFound),
            }
            .into()
        })
    }

    /// A new, unique temporary file in the store's `tmp/` (made relative to
    /// the checked directory: never through a link); held by the store's
    /// lease, if it has one, before it exists.
    pub fn temp_file(&self) -> Result<(fs::File, PathBuf), StoreError> {
        let name = crate::atomic::unique_name();
        self.hold_temp(&name)?;
        self.temp_file_named(name)
    }

    /// [`Store::temp_file`] named `name`, not added to a lease (the index's,
    /// which collections keep by taking the index's lock).
    fn temp_file_named(&self, name: String) -> Result<(fs::File, PathBuf), StoreError> {
        let tmp = self.layout_dir(TMP)?;
        let file = tmp.create_new(&name)?;
        let path = tmp.path().join(&name);
        Ok((fs::File::from_parts(file, &path), path))
    }

    /// Move a finished temporary file into place as blob `digest` (from
    /// the checked `tmp/` into the checked `blobs/`, never through a link).
    pub fn commit_temp(
        &self,
        file: fs::File,
        temp: &Path,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        crate::fault::point(crate::fault::Kind::Fsync, temp);
        file.sync_all().map_err(StoreError::io("sync", temp))?;
        drop(file);
        // Held before it is in `blobs/`.
        self.hold_blob(digest)?;
        let name = temp
            .file_name()
            .filter(|_| temp.parent() == Some(&self.root.join(TMP)));
        let Some(name) = name else {
            // Not one of ours: moved by path, as before.
            let target = self.blob_path(digest);
            crate::fault::point(crate::fault::Kind::Rename, &target);
            fs::rename(temp, &target).map_err(StoreError::io("move a blob into place", &target))?;
            return Ok(());
        };
        let tmp = self.layout_dir(TMP)?;
        let blobs = self.layout_dir(BLOBS)?;
        tmp.rename_into(
            name,
            &blobs,
            std::ffi::OsStr::new(&digest.hex()),
            "move a blob into place",
        )
    }

    /// Store what `reader` yields; returns its digest and size.
    pub fn put_blob(&self, reader: &mut dyn Read) -> Result<(Digest, u64), StoreError> {
        let mut temp = self.temp_blob()?;
        io::copy(reader, &mut temp).map_err(StoreError::io("write a blob", temp.path()))?;
        let written = temp.finish()?;
        let (digest, size) = (written.digest.clone(), written.size);
        written.commit(self)?;
        Ok((digest, size))
    }

    /// Store `reader`, which must hash to `expected`.
    pub fn put_blob_expecting(
        &self,
        reader: &mut dyn Read,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        // Held before it is looked for: if it is there now, it stays.
        self.hold_blob(expected)?;
        if self.has_blob(expected) {
            // Still read it through, to verify what the caller offers.
            let mut verify = VerifyingReader::new(reader, expected.clone());
            io::copy(&mut verify, &mut io::sink())
                .map_err(|source| StoreError::mismatch_or_io(source, expected))?;
            return Ok(fs::metadata(self.blob_path(expected))
                .map(|meta| meta.len())
                .unwrap_or(0));
        }
        let mut temp = self.temp_blob()?;
        io::copy(reader, &mut temp).map_err(StoreError::io("write a blob", temp.path()))?;
        let written = temp.finish()?;
        if &written.digest != expected {
            // Dropping it removes the temporary file.
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                found: written.digest.clone(),
            });
        }
        let size = written.size;
        written.commit(self)?;
        Ok(size)
    }

    /// Store `bytes`.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let mut reader = bytes;
        self.put_blob(&mut reader).map(|(digest, _)| digest)
    }

    /// Open blob `digest`; reading it fails at the end if its content does
    /// not match the digest.
    pub fn open_blob(
        &self,
        digest: &Digest,
    ) -> Result<VerifyingReader<io::BufReader<fs::File>>, StoreError> {
        let path = self.blob_path(digest);
        let file = fs::File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(digest.clone()),
            _ => StoreError::Io(crate::error::PathError {
                operation: "open a blob",
                path: path.clone(),
                source,
            }),
        })?;
        Ok(VerifyingReader::new(
            io::BufReader::with_capacity(1 << 20, file),
            digest.clone(),
        ))
    }

    /// Read blob `digest` through: an error if it is damaged
    /// ([`StoreError::DamagedBlob`]) or cannot be read.
    pub fn verify_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let mut reader = self.open_blob(digest)?;
        io::copy(&mut reader, &mut io::sink())
            .map(|_| ())
            .map_err(|source| StoreError::stored_blob(source, digest, &self.blob_path(digest)))
    }

    /// Read a whole (small) blob, verified.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::stored_blob(source, digest, &self.blob_path(digest)))?;
        Ok(bytes)
    }

    /// The index's lock (`lock`), held: no update is half-way while it is.
    pub(crate) fn index_lock(&self) -> Result<fs::File, StoreError> {
        self.take_lock(LOCK, lock::Lock::Index, true)
    }

    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<GcGuard, StoreError> {
        Ok(GcGuard {
            _file: Some(self.take_lock(GC_LOCK, lock::Lock::Gc, exclusive)?),
        })
    }

    /// Held while writing blobs that an image record will refer to. A
    /// leased store's writes are held by its lease: nothing is locked then.
    pub fn writing(&self) -> Result<GcGuard, StoreError> {
        if self.lease.is_some() {
            return Ok(GcGuard { _file: None });
        }
        self.gc_lock(false)
    }

    /// A fresh, empty directory in `tmp/` (`extension` says what it is
    /// for), held by the store's lease, if it has one, before it exists.
    pub fn staging_dir(&self, extension: &str) -> Result<PathBuf, StoreError> {
        // A unique name (see `atomic::unique_name`); `mkdir` fails rather
        // than reuse anything there.
        let name = format!("{}.{extension}", crate::atomic::unique_name());
        self.hold_temp(&name)?;
        let dir = self.layout_dir(TMP)?.path().join(name);
        // What is written into it is one point: nothing outside `tmp/`
        // sees it before its rename.
        crate::fault::point(crate::fault::Kind::Write, &dir);
        fs::create_dir(&dir).map_err(StoreError::io("make a staging directory", &dir))?;
        Ok(dir)
    }

    /// Every blob digest in `blobs/` (names that are not digests are ignored).
    pub fn blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let mut digests: Vec<Digest> = self
            .digests_in(BLOBS)?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect();
        digests.sort();
        Ok(digests)
    }

    /// Files in `tmp/`: writes in progress, or left by a crash.
    pub fn temp_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let Some(dir) = self.open_dir(TMP)? else {
            return Ok(Vec::new());
        };
        Ok(dir
            .entries()?
            .into_iter()
            .map(|name| dir.path().join(name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.put_bytes(b"hello").unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
        assert!(store.temp_files().unwrap().is_empty());
        // Corrupt it on disk: reading notices.
        std::fs::write(store.blob_path(&digest), b"hellO").unwrap();
        let error = store.read_blob(&digest).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the blob `{}` is damaged (expected {digest}, found {}): run `strata system \
                 check --repair`, which removes it and the images that use it, then pull, load \
                 or build them again",
                store.blob_path(&digest).display(),
                Digest::of(b"hellO")
            )
        );
    }

    #[test]
    fn expected_digest_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let wrong = Digest::of(b"other");
        let error = store
            .put_blob_expecting(&mut &b"data"[..], &wrong)
            .unwrap_err();
        assert!(matches!(error, StoreError::DigestMismatch { .. }));
        assert!(!store.has_blob(&wrong));
        assert!(
            store.temp_files().unwrap().is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn index_updates_are_atomic_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .update(|index| {
                index.tags.insert("app:1".into(), Digest::of(b"x"));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.index().unwrap().tags["app:1"], Digest::of(b"x"));
    }
}

/// What [`Store::check`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Blobs verified.
    pub blobs: usize,
    /// Images whose references were followed.
    pub images: usize,
    /// Problems: corrupt blobs, missing blobs, dangling tags.
    pub problems: Vec<String>,
    /// Leftover temporary files in `tmp/` (from interrupted writes; harmless).
    pub leftovers: usize,
    /// Temporary files left beside their targets by interrupted writes
    /// whose writer is gone (harmless; see `store::leftovers`).
    pub abandoned: Vec<PathBuf>,
    /// Leases of processes that run.
    pub leases: usize,
    /// Leases whose holder is gone (harmless; the next prune removes
    /// them), described.
    pub stale_leases: Vec<String>,
    /// The tags log ends in a line an interrupted append left torn
    /// (harmless: ignored, and cut off by the next update).
    pub torn_tags: Option<PathBuf>,
}

impl Store {
    /// Verify every blob against its digest and every reference of the index.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        for digest in self.blobs()? {
            report.blobs += 1;
            if let Err(error) = self.verify_blob(&digest) {
                report.problems.push(error.to_string());
            }
        }
        let loaded = self.load_index()?;
        for damage in &loaded.damage {
            report.problems.push(
                StoreError::CorruptIndex {
                    path: damage.path.clone(),
                    detail: damage.detail.clone(),
                }
                .to_string(),
            );
        }
        if loaded.torn {
            report.torn_tags = Some(self.path(layout::TAGS));
        }
        // A tag of an image whose record is damaged is that damage's.
        let damaged: std::collections::BTreeSet<&Digest> = loaded
            .damage
            .iter()
            .filter_map(|damage| match &damage.kind {
                DamageKind::Record(id) => Some(id),
                _ => None,
            })
            .collect();
        let index = &loaded.index;
        for (tag, id) in &index.tags {
            if !index.images.contains_key(id) && !damaged.contains(id) {
                report.problems.push(format!(
                    "tag `{tag}` points to {id}, which is not an image in the store"
                ));
            }
        }
        for image in index.images.values() {
            report.images += 1;
            for digest in image.blobs() {
                if !self.has_blob(digest) {
                    report.problems.push(format!(
                        "image {} refers to blob {digest}, which is missing",
                        image.id
                    ));
                }
            }
        }
        report.leftovers = self.temp_files()?.len();
        report.abandoned = self.abandoned_temp_files()?;
        for lease in self.leases()? {
            if lease.alive() {
                report.leases += 1;
            } else {
                report.stale_leases.push(lease.describe());
            }
        }
        Ok(report)
    }
}
