//! The build cache: what a key gives back. What goes into each op's key
//! is in [`super::key`]; why a step missed, in [`super::cause`].
//!
//! A record (`cache/<key>.json` in the store) holds the layer the step
//! made (none for a step that changed nothing) and when it was made, which
//! becomes the history time of a cached step: a rebuild where everything
//! hits gives the same image ID. Blobs of recorded layers count as in use
//! for `image prune`.
//!
//! Each record also keeps the inputs of its key in a comparable form
//! ([`StepInputs`]), and an index knows the latest record of each step (by
//! Dockerfile, stage, position and instruction kind; or, for a step that
//! moved, by its text: `cause::identity`). When a step misses,
//! [`super::cause::own_change`] compares the two and gives the first
//! difference, which the reporter words.
//!
//! File contents are hashed once and remembered by the stat cache
//! ([`StatCache`]): path, size, mtime, ctime, inode and mode → digest, per
//! build context, so an unchanged context is not read again.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

// Records keep these, so that a miss can say what changed.
pub use super::key::{FileSummary, Files, Key, StepInputs};
use super::key::{hex_form, key};
use crate::store::{LayerRecord, Store};

/// What a cached step gives back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The key (its hex digits on disk).
    #[serde(with = "hex_form")]
    pub key: Key,
    /// The layer the step made, if any.
    pub layer: Option<LayerRecord>,
    /// When the step ran (RFC 3339).
    pub created: String,
    /// The step, as the Dockerfile says it.
    pub description: String,
    /// What went into the key, in a form that can be compared (so that a
    /// miss can say what changed).
    #[serde(default)]
    pub inputs: StepInputs,
    /// When a build last took it from the cache (RFC 3339).
    #[serde(default)]
    pub last_used: Option<String>,
    /// How many times builds took it from the cache.
    #[serde(default)]
    pub hits: u64,
}

/// Count a hit on `record` (best effort: a lost count costs nothing).
pub(crate) fn hit(store: &Store, record: &CacheRecord, now: &str) {
    let mut record = record.clone();
    record.hits += 1;
    record.last_used = Some(now.to_owned());
    let _ = put(store, &record);
}

/// What `strata cache prune` removes.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// Every record, not only those no image uses.
    pub all: bool,
    /// Only records last used (or made) longer ago than this.
    pub unused_for: Option<std::time::Duration>,
    /// Keep the most recently used records up to this many bytes (their
    /// layers and their own files).
    pub keep_storage: Option<u64>,
    /// Remove cache mounts (`RUN --mount=type=cache` directories) too,
    /// those not in use.
    pub mounts: bool,
    /// Remove only cache mounts, no record.
    pub only_mounts: bool,
}

/// Remove the cache mounts no running step holds: the bytes reclaimed.
fn prune_mounts(store: &Store) -> u64 {
    let base = store.path(crate::store::layout::CACHE_MOUNTS);
    let Ok(entries) = std::fs::read_dir(&base) else {
        return 0;
    };
    let mut reclaimed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // A locked or private mount in use keeps its lock file locked.
        // (The mount's own lock: `with_extension` took instance 1's,
        // `NAME.1`, for `NAME.lock`, the first instance's.)
        let lock_path = super::mounts::lock_path(&path);
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path);
        let Ok(lock) = lock else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        reclaimed += directory_size(&path);
        // Through the checked directory (never a link; see `store::dirs`).
        let Ok(Some(mounts)) = store.open_dir(crate::store::layout::CACHE_MOUNTS) else {
            return reclaimed;
        };
        if mounts.remove(&entry.file_name()).is_ok()
            && let Some(lock_name) = lock_path.file_name()
        {
            let _ = mounts.remove(lock_name);
        }
    }
    remove_orphan_locks(store, &base);
    reclaimed
}

/// Remove the locks of cache mounts that are gone: a crash between a
/// prune's removal of a mount and of its lock leaves the lock, which no
/// prune looked at again (they go by the mounts). One nobody holds is
/// removed; a held one is a step's that is making its mount.
fn remove_orphan_locks(store: &Store, base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let Ok(Some(mounts)) = store.open_dir(crate::store::layout::CACHE_MOUNTS) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(mount) = name
            .to_str()
            .filter(|name| !name.starts_with('.'))
            .and_then(|name| name.strip_suffix(".lock"))
        else {
            continue;
        };
        if base.join(mount).exists() || !entry.file_type().is_ok_and(|kind| kind.is_file()) {
            continue;
        }
        let Ok(lock) = std::fs::File::options().write(true).open(entry.path()) else {
            continue;
        };
        // Held while it is removed.
        if lock.try_lock().is_ok() {
            let _ = mounts.remove(&name);
        }
    }
}

fn directory_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The layers of every image in the index, by blob digest.
fn image_layers(
    store: &Store,
) -> Result<std::collections::BTreeSet<crate::digest::Digest>, crate::store::StoreError> {
    Ok(store
        .index()?
        .images
        .values()
        .flat_map(|image| image.layers.iter().map(|layer| layer.digest.clone()))
        .collect())
}

/// Whether an image in the index keeps a record of `layer`: it has that
/// layer, and the layer is not the empty one, which every RUN that changed
/// nothing shares (a record of it would be kept by any image with one).
fn kept_by_image(
    layer: &LayerRecord,
    in_images: &std::collections::BTreeSet<crate::digest::Digest>,
) -> bool {
    layer.diff_id.to_string() != crate::layer::EMPTY_LAYER_DIFF_ID
        && in_images.contains(&layer.digest)
}

/// Remove cache records as `filter` says, then what nothing refers to any
/// more: (records removed, bytes reclaimed).
///
/// **What a record is needed for, and so what stays.** A record is kept
/// while one of these needs it, and removed otherwise:
///
/// 1. a live build, pull or load holds it in its lease (it made or hit
///    it), whatever the filter says;
/// 2. without `-a`, an image in the index has its layer (not the empty
///    layer, see [`kept_by_image`]): that image's
///    rebuild hits it (docker's `builder prune` keeps such shared records
///    unless `--all`); `--filter until=` and `--keep-storage` may still
///    remove it.
///
/// A record whose layer's blob is no longer in the store gives nothing
/// back ([`get`] refuses it) and goes whatever the filter says, unless
/// leased. Then what the records refer to: the step indexes (`steps/`,
/// `texts/`) that name no record left, the stat cache's entries (per
/// context, `stat/`) whose digest no record left read, and the blobs and
/// snapshots nothing holds.
pub fn prune(
    store: &Store,
    filter: &PruneFilter,
) -> Result<(usize, u64), crate::image::ImageError> {
    let mounts_reclaimed = if filter.mounts || filter.only_mounts {
        prune_mounts(store)
    } else {
        0
    };
    if filter.only_mounts {
        return Ok((0, mounts_reclaimed));
    }
    // Taken before the records are read: a build that holds a record in
    // its lease (one it made or hit) has added it before this returns, or
    // adds it after this collection.
    let collecting = store.collecting()?;
    let (leased, _) = store.leased(&collecting)?;
    let in_images = image_layers(store)?;
    let now = crate::time::now();
    let mut candidates: Vec<(u64, u64, PathBuf)> = Vec::new();
    let mut useless: Vec<PathBuf> = Vec::new();
    let mut kept: Vec<CacheRecord> = Vec::new();
    for (record, bytes) in records_with_sizes(store) {
        if leased.records.contains(&record.key) {
            kept.push(record);
            continue;
        }
        if record
            .layer
            .as_ref()
            .is_some_and(|layer| !store.has_blob(&layer.digest))
        {
            useless.push(record_path(store, &record.key));
            continue;
        }
        let used = record.last_used.as_deref().unwrap_or(&record.created);
        let age = now.saturating_sub(crate::time::parse_rfc3339(used).unwrap_or(0));
        let size = record.layer.as_ref().map_or(0, |layer| layer.size) + bytes;
        let in_image = record
            .layer
            .as_ref()
            .is_some_and(|layer| kept_by_image(layer, &in_images));
        let selected = (filter.all || !in_image)
            && filter
                .unused_for
                .is_none_or(|duration| age >= duration.as_secs());
        if selected {
            candidates.push((age, size, record_path(store, &record.key)));
        }
        kept.push(record);
    }
    // With --keep-storage, the most recently used stay while they fit.
    if let Some(limit) = filter.keep_storage {
        candidates.sort_by_key(|(age, _, _)| *age);
        let mut fits = 0u64;
        candidates.retain(|(_, size, _)| {
            if fits + size <= limit {
                fits += size;
                false
            } else {
                true
            }
        });
    }
    let mut removed = 0;
    let mut gone = std::collections::BTreeSet::new();
    // Through the checked directory (never a link; see `store::dirs`).
    if let Some(records) = store.open_dir(crate::store::layout::CACHE)? {
        for path in candidates
            .iter()
            .map(|(_, _, path)| path)
            .chain(useless.iter())
        {
            if let Some(name) = path.file_name()
                && records.remove(name).is_ok()
            {
                gone.insert(path.clone());
                removed += 1;
            }
        }
    }
    kept.retain(|record| !gone.contains(&record_path(store, &record.key)));
    let mut keys: std::collections::BTreeSet<String> = kept
        .iter()
        .map(|record| record.key.hex().to_owned())
        .collect();
    keys.extend(leased.records.iter().map(|key| key.hex().to_owned()));
    prune_indexes(store, &keys)?;
    let digests: std::collections::BTreeSet<&str> = kept
        .iter()
        .flat_map(|record| record.inputs.files.values())
        .map(|file| file.digest.as_str())
        .collect();
    let reclaimed = prune_stats(store, &digests)?
        + prune_content(store)?
        + store.collect_garbage(&collecting, &roots(store))?;
    Ok((removed, reclaimed + mounts_reclaimed))
}

/// The step indexes of the build cache (see [`remember`]).
const INDEXES: [&str; 2] = ["steps", "texts"];
/// The stat caches, one per build context (see [`StatCache`]).
const STATS: &str = "stat";
/// An index names one key (hex); more is not one of ours.
const INDEX_LIMIT: u64 = 1024;
/// A stat cache larger than this is left as it is.
const STATS_LIMIT: u64 = 1 << 30;

/// Remove the step indexes that name a record not in `keys` (hex).
fn prune_indexes(
    store: &Store,
    keys: &std::collections::BTreeSet<String>,
) -> Result<(), crate::image::ImageError> {
    for kind in INDEXES {
        let Some(dir) = store.open_dir(&format!("{}/{kind}", crate::store::layout::CACHE))? else {
            continue;
        };
        for name in dir.entries()? {
            let named = dir.read_small(&name, INDEX_LIMIT).unwrap_or_default();
            if !keys.contains(String::from_utf8_lossy(&named).trim()) {
                dir.remove(&name)?;
            }
        }
    }
    Ok(())
}

/// Drop the stat caches' entries whose digest is not in `digests` (what
/// the records left read), and the files left empty: the bytes reclaimed.
fn prune_stats(
    store: &Store,
    digests: &std::collections::BTreeSet<&str>,
) -> Result<u64, crate::image::ImageError> {
    let Some(dir) = store.open_dir(&format!("{}/{STATS}", crate::store::layout::CACHE))? else {
        return Ok(0);
    };
    let mut reclaimed = 0;
    for name in dir.entries()? {
        let path = dir.path().join(&name);
        let Some(bytes) = dir.read_small(&name, STATS_LIMIT) else {
            continue;
        };
        let mut entries: BTreeMap<String, Stat> =
            serde_json::from_slice(&bytes).unwrap_or_default();
        let before = entries.len();
        entries.retain(|_, stat| digests.contains(stat.digest.as_str()));
        if entries.is_empty() {
            dir.remove(&name)?;
            reclaimed += bytes.len() as u64;
        } else if entries.len() < before {
            let smaller = serde_json::to_vec(&entries).expect("stats serialize");
            reclaimed += (bytes.len() - smaller.len().min(bytes.len())) as u64;
            crate::atomic::write(&path, &smaller, Default::default())?;
        }
    }
    Ok(reclaimed)
}

fn index_path(store: &Store, kind: &str, identity: &str) -> PathBuf {
    debug_assert!(INDEXES.contains(&kind));
    dir(store).join(kind).join(&key(&[identity]).hex()[..32])
}

/// Remember `key` as the latest record of the step known by `identity`
/// (and by `text`, the fallback when the step moved).
pub(crate) fn remember(store: &Store, identity: &str, text: &str, key: &Key) {
    for (kind, name) in [("steps", identity), ("texts", text)] {
        let path = index_path(store, kind, name);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_ok()
        {
            let _ = crate::atomic::write(&path, key.hex().as_bytes(), Default::default());
        }
    }
}

/// The latest record of the step known by `identity`, else by `text`.
pub(crate) fn previous(store: &Store, identity: &str, text: &str) -> Option<CacheRecord> {
    [("steps", identity), ("texts", text)]
        .iter()
        .find_map(|(kind, name)| {
            let hex = std::fs::read_to_string(index_path(store, kind, name)).ok()?;
            let key: Key = format!("sha256:{}", hex.trim()).parse().ok()?;
            let bytes = std::fs::read(record_path(store, &key)).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
}

fn dir(store: &Store) -> PathBuf {
    store.path(crate::store::layout::CACHE)
}

fn record_path(store: &Store, key: &Key) -> PathBuf {
    dir(store).join(format!("{}.json", key.hex()))
}

/// The record of `key`, if there is one whose layer is still in the store;
/// on a leased store, the record and its layer are held by the lease
/// (before the layer is looked for: what is found stays).
pub(crate) fn get(store: &Store, key: &Key) -> Option<CacheRecord> {
    let bytes = std::fs::read(record_path(store, key)).ok()?;
    let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
    store.hold_record(&record.key).ok()?;
    if let Some(layer) = &record.layer {
        store.hold_layer(layer).ok()?;
    }
    match &record.layer {
        Some(layer) if !store.has_blob(&layer.digest) => None,
        _ => Some(record),
    }
}

/// Record a step (atomically: a reader sees the whole record or none).
pub(crate) fn put(store: &Store, record: &CacheRecord) -> std::io::Result<()> {
    // Held by a leased store's lease before it exists.
    store
        .hold_record(&record.key)
        .map_err(std::io::Error::other)?;
    let dir = dir(store);
    std::fs::create_dir_all(&dir)?;
    let path = record_path(store, &record.key);
    let bytes = serde_json::to_vec(record).expect("records serialize");
    crate::atomic::write(&path, &bytes, Default::default()).map_err(std::io::Error::other)
}

/// What the build cache holds, for garbage collection: its records' layers.
pub fn roots(store: &Store) -> crate::store::Roots {
    let mut roots = crate::store::Roots::new();
    for layer in records(store)
        .iter()
        .filter_map(|record| record.layer.as_ref())
    {
        roots.hold_layer(layer);
    }
    roots
}

/// Every record (for `image prune`, which keeps their layers).
pub fn records(store: &Store) -> Vec<CacheRecord> {
    records_with_sizes(store)
        .into_iter()
        .map(|(record, _)| record)
        .collect()
}

/// Every record, with the bytes of its file.
fn records_with_sizes(store: &Store) -> Vec<(CacheRecord, u64)> {
    let Ok(entries) = std::fs::read_dir(dir(store)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|bytes| {
            let record = serde_json::from_slice(&bytes).ok()?;
            Some((record, bytes.len() as u64))
        })
        .collect()
}

/// [`trim`] frees this fraction of its budget more than it must.
const TRIM_MARGIN: u64 = 5;

/// What the build cache may keep of what no image needs when nothing says
/// otherwise: BuildKit's default, 10% of the filesystem the store is on
/// (2 GB when its size cannot be told).
pub fn default_keep_storage(store: &Store) -> u64 {
    const FALLBACK: u64 = 2_000_000_000;
    match nix::sys::statvfs::statvfs(&store.path("")) {
        Ok(stats) => stats.blocks().saturating_mul(stats.fragment_size()) / 10,
        Err(_) => FALLBACK,
    }
}

/// The build cache's own collection, after every build (BuildKit's garbage
/// collection does the same, which `docker builder prune` need not be run
/// for): when the records no image needs take more than `keep` bytes
/// (their layers and their files), the least recently used go until the
/// rest fit, with what only they referred to ([`prune`] with
/// `--keep-storage`). Without it the cache grows by every step that ran,
/// for ever: `image prune` removes images, never records. The records an
/// image in the index needs are never counted nor removed, nor those a
/// live build holds. (records removed, bytes reclaimed).
pub fn trim(store: &Store, keep: u64) -> Result<(usize, u64), crate::image::ImageError> {
    // A look without the lock first: most builds find the cache within
    // its budget and take no lock.
    let in_images = image_layers(store)?;
    let used: u64 = records_with_sizes(store)
        .iter()
        .filter(|(record, _)| {
            !record
                .layer
                .as_ref()
                .is_some_and(|layer| kept_by_image(layer, &in_images))
        })
        .map(|(record, bytes)| record.layer.as_ref().map_or(0, |layer| layer.size) + bytes)
        .sum();
    if used <= keep {
        return Ok((0, 0));
    }
    // Down to a little below: the next builds fit without a collection
    // each.
    prune(
        store,
        &PruneFilter {
            keep_storage: Some(keep - keep / TRIM_MARGIN),
            ..PruneFilter::default()
        },
    )
}

/// One remembered file: its stat, and its content's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    inode: u64,
    mode: u32,
    digest: String,
}

/// The sha256 (hex) of the regular file at `path` (its name in errors),
/// opened at `at` without following a symlink there.
pub(crate) fn file_sha256(path: &Path, at: &Path) -> Result<String, crate::error::PathError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(at)
        .map_err(crate::error::PathError::of("open", path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(crate::error::PathError::of("read", path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// What a copy or a mount reads of a stage or an image, by content
/// ([`super::files::layers_digest`]), remembered under a key made of what
/// it reads (the diff_ids of the layers, the selection): a build whose
/// stages made the same layers hashes nothing again. Recomputable, so
/// `prune` drops them all.
const CONTENT: &str = "content";

/// The content digest remembered under `key`, if any.
pub(crate) fn content_memo(store: &Store, key: &Key) -> Option<String> {
    let text = std::fs::read_to_string(dir(store).join(CONTENT).join(&key.hex()[..32])).ok()?;
    let text = text.trim();
    (text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())).then(|| text.to_owned())
}

/// Remember `digest` under `key` (best effort: a memo that cannot be
/// written is computed again next time).
pub(crate) fn remember_content(store: &Store, key: &Key, digest: &str) {
    let dir = dir(store).join(CONTENT);
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = crate::atomic::write(
            &dir.join(&key.hex()[..32]),
            digest.as_bytes(),
            Default::default(),
        );
    }
}

/// Drop every content memo: the bytes reclaimed.
fn prune_content(store: &Store) -> Result<u64, crate::image::ImageError> {
    let Some(dir) = store.open_dir(&format!("{}/{CONTENT}", crate::store::layout::CACHE))? else {
        return Ok(0);
    };
    let mut reclaimed = 0;
    for name in dir.entries()? {
        reclaimed += dir
            .read_small(&name, INDEX_LIMIT)
            .map_or(0, |bytes| bytes.len() as u64);
        dir.remove(&name)?;
    }
    Ok(reclaimed)
}

/// Content digests of a build context's files, remembered between builds
/// by their stat, each under its path's text (escaped where it is not
/// UTF-8, see [`crate::name`]).
pub struct StatCache {
    path: PathBuf,
    entries: BTreeMap<String, Stat>,
    changed: bool,
    /// Files read (not served from the cache) this build.
    pub hashed: usize,
}

impl StatCache {
    /// The stat cache of the context at `root` (empty when new or unreadable).
    pub fn open(store: &Store, root: &Path) -> StatCache {
        let name = key(&[&crate::name::escape_path(root)]);
        let path = dir(store)
            .join(STATS)
            .join(format!("{}.json", &name.hex()[..32]));
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        StatCache {
            path,
            entries,
            changed: false,
            hashed: 0,
        }
    }

    /// The sha256 of the file at `path` (its name here), opened at `at`
    /// (without following a symlink there), whose metadata is `meta`.
    pub fn digest(
        &mut self,
        path: &Path,
        at: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<String, crate::error::PathError> {
        // By the path's escaped text: lossless, and for UTF-8 paths what
        // it has always been.
        let name = crate::name::escape_path(path).into_owned();
        let stat = |digest: String| Stat {
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
            mode: meta.mode(),
            digest,
        };
        if let Some(known) = self.entries.get(&name)
            && *known == stat(known.digest.clone())
        {
            return Ok(known.digest.clone());
        }
        let digest = file_sha256(path, at)?;
        self.hashed += 1;
        self.entries.insert(name, stat(digest.clone()));
        self.changed = true;
        Ok(digest)
    }

    /// Write the cache back, if anything changed.
    pub fn save(&self) {
        if !self.changed {
            return;
        }
        if let Some(parent) = self.path.parent()
            && std::fs::create_dir_all(parent).is_ok()
        {
            let bytes = serde_json::to_vec(&self.entries).expect("stats serialize");
            let _ = crate::atomic::write(&self.path, &bytes, Default::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_prune_keeps_what_is_held_by_its_own_lock_and_removes_orphan_locks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let base = store.path(crate::store::layout::CACHE_MOUNTS);
        std::fs::create_dir_all(&base).unwrap();
        for mount in ["free", "busy", "busy.1"] {
            std::fs::create_dir(base.join(mount)).unwrap();
            std::fs::write(base.join(mount).join("file"), "x").unwrap();
        }
        // Instance 1 of `busy` is in use (its own lock, `busy.1.lock`);
        // instance 0 is not.
        let held = std::fs::File::create(base.join("busy.1.lock")).unwrap();
        held.lock().unwrap();
        // What a crash between a prune's two removals left; and the lock
        // of a mount a step is making right now.
        std::fs::write(base.join("gone.lock"), "").unwrap();
        let making = std::fs::File::create(base.join("making.lock")).unwrap();
        making.lock().unwrap();
        prune_mounts(&store);
        let mut left: Vec<String> = std::fs::read_dir(&base)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["busy.1", "busy.1.lock", "making.lock"]);
        drop((held, making));
    }
}
