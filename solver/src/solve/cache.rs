//! The build cache: each step's key, and what a key gives back.
//!
//! A key is sha256 over a version tag and, in this order:
//!
//! | step | what goes into its key |
//! | --- | --- |
//! | `FROM image` | the image's manifest digest (what the name points to now, not the name) |
//! | `FROM scratch` | nothing more |
//! | the build context | nothing: the COPY and ADD that read it hash what they read |
//! | `RUN` | the step's definition digest (argv, env with the build args and ENV that reach it, user, workdir, network, mounts; proxy variables are not in it, as BuildKit), the effective network, and the parent's key |
//! | `WORKDIR` | its definition digest and the parent's key |
//! | `COPY`, `ADD` | the definition digest (sources, destination, `--chown`, `--chmod`, `--exclude`, ...), the parent's key, the keys of `--from` inputs, and for build-context sources every entry copied: destination path, type, mode, link target, xattrs and content digest; never owners or mtimes |
//! | config instructions | not cached: they cost nothing |
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
//! moved, by its text). When a step misses, [`own_change`] compares the two
//! and names the first cause (`build arg VERSION changed (1 → 2)`,
//! `file changed: src/main.rs`, `base image changed (...)`, ...); a step
//! that missed only because an earlier one did is grouped under it.
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

use crate::store::{LayerRecord, Store};

/// Bumped when what goes into keys changes.
const VERSION: &str = "strata-cache-v1";

/// A cache key: sha256 hex.
pub(crate) type Key = String;

/// Hash `parts` into a key.
pub(crate) fn key(parts: &[&str]) -> Key {
    let mut hasher = sha2::Sha256::new();
    hasher.update(VERSION.as_bytes());
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// What a cached step gives back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The key.
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
    /// Keep the most recently used records up to this many bytes of layers.
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
        let lock_path = path.with_extension("lock");
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
    reclaimed
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

/// Remove cache records as `filter` says, then the blobs and snapshots
/// nothing refers to any more: (records removed, bytes reclaimed).
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
    let in_images: std::collections::BTreeSet<crate::digest::Digest> = store
        .index()?
        .images
        .values()
        .flat_map(|image| image.layers.iter().map(|layer| layer.digest.clone()))
        .collect();
    let now = crate::time::now();
    let mut candidates: Vec<(u64, u64, PathBuf)> = Vec::new();
    for record in records(store) {
        let used = record.last_used.as_deref().unwrap_or(&record.created);
        let age = now.saturating_sub(crate::time::parse_rfc3339(used).unwrap_or(0));
        let size = record.layer.as_ref().map_or(0, |layer| layer.size);
        let in_image = record
            .layer
            .as_ref()
            .is_some_and(|layer| in_images.contains(&layer.digest));
        let selected = (filter.all || !in_image)
            && filter
                .unused_for
                .is_none_or(|duration| age >= duration.as_secs());
        if selected {
            candidates.push((age, size, record_path(store, &record.key)));
        }
    }
    // With --keep-storage, the most recently used stay while they fit.
    if let Some(limit) = filter.keep_storage {
        candidates.sort_by_key(|(age, _, _)| *age);
        let mut kept = 0u64;
        candidates.retain(|(_, size, _)| {
            if kept + size <= limit {
                kept += size;
                false
            } else {
                true
            }
        });
    }
    let mut removed = 0;
    // Through the checked directory (never a link; see `store::dirs`).
    if let Some(records) = store.open_dir(crate::store::layout::CACHE)? {
        for (_, _, path) in &candidates {
            if let Some(name) = path.file_name()
                && records.remove(name).is_ok()
            {
                removed += 1;
            }
        }
    }
    let collecting = store.collecting()?;
    let reclaimed = store.collect_garbage(&collecting, &roots(store))?;
    Ok((removed, reclaimed + mounts_reclaimed))
}

/// One file a COPY or ADD read, for comparing builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    /// `file`, `dir`, `symlink`, `url` or `other`.
    pub kind: String,
    /// Content digest (file, url) or link target (symlink).
    pub digest: String,
    /// Permission bits.
    pub mode: u32,
}

/// Files by their path in the build context.
pub type Files = BTreeMap<String, FileSummary>;

/// The inputs of a step's key, comparable between builds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInputs {
    /// The instruction as it runs (expanded): argv for RUN, sources and
    /// destination for COPY and ADD, the path for WORKDIR.
    #[serde(default)]
    pub instruction: String,
    /// Build arguments that reached it.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// ENV that reached it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// USER it runs as.
    #[serde(default)]
    pub user: String,
    /// WORKDIR it runs in.
    #[serde(default)]
    pub workdir: String,
    /// The parent's key.
    #[serde(default)]
    pub parent: String,
    /// For FROM: the image's manifest digest.
    #[serde(default)]
    pub base: Option<String>,
    /// What it read from the build context (or fetched).
    #[serde(default)]
    pub files: Files,
}

/// Why a step ran instead of coming from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// `--no-cache` or `--no-cache-filter`.
    NoCache,
    /// Nothing is known of this step.
    NoPrevious,
    /// Something of its own changed (the text says what).
    Changed(String),
    /// Only its parent changed: the step that missed first, upstream.
    After(strata_frontend::graph::VertexId),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::NoCache => formatter.write_str("--no-cache"),
            Cause::NoPrevious => formatter.write_str("no previous build of this step"),
            Cause::Changed(text) => formatter.write_str(text),
            Cause::After(_) => formatter.write_str("an earlier step changed"),
        }
    }
}

/// `a, b, +N more` of the first two of `items`.
fn some_of(items: &[&String]) -> String {
    let mut shown: Vec<String> = items.iter().take(2).map(|item| item.to_string()).collect();
    if items.len() > 2 {
        shown.push(format!("+{} more", items.len() - 2));
    }
    shown.join(", ")
}

fn counted(count: usize, one: &str, many: &str, items: &[&String]) -> String {
    if count == 1 {
        format!("{one}: {}", items[0])
    } else {
        format!("{count} {many}: {}", some_of(items))
    }
}

fn changed_values(
    what: &str,
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Option<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    for key in keys {
        let (old, new) = (before.get(key), now.get(key));
        if old != new {
            let show = |value: Option<&String>| value.map_or("unset".to_owned(), String::clone);
            return Some(format!(
                "{what} {key} changed ({} → {})",
                show(old),
                show(new)
            ));
        }
    }
    None
}

/// What of its own changed between `before` and `now`, if anything.
/// `ignored` says whether `.dockerignore` excludes a context path now.
pub fn own_change(
    before: &StepInputs,
    now: &StepInputs,
    ignored: &dyn Fn(&str) -> bool,
) -> Option<String> {
    if before.base != now.base {
        let short = |digest: &Option<String>| {
            digest
                .as_deref()
                .map(|digest| digest.chars().take(14).collect::<String>() + "…")
                .unwrap_or_else(|| "none".to_owned())
        };
        return Some(format!(
            "base image changed ({} → {})",
            short(&before.base),
            short(&now.base)
        ));
    }
    if before.instruction != now.instruction {
        return Some("instruction changed".to_owned());
    }
    if let Some(change) = changed_values("build arg", &before.args, &now.args) {
        return Some(change);
    }
    if let Some(change) = changed_values("ENV", &before.env, &now.env) {
        return Some(change);
    }
    if before.user != now.user {
        return Some(format!("USER changed ({} → {})", before.user, now.user));
    }
    if before.workdir != now.workdir {
        return Some(format!(
            "WORKDIR changed ({} → {})",
            before.workdir, now.workdir
        ));
    }
    if before.files != now.files {
        let changed: Vec<&String> = now
            .files
            .iter()
            .filter(|(path, summary)| {
                before
                    .files
                    .get(*path)
                    .is_some_and(|old| old.kind != summary.kind || old.digest != summary.digest)
            })
            .map(|(path, _)| path)
            .collect();
        if !changed.is_empty() {
            return Some(counted(
                changed.len(),
                "file changed",
                "files changed",
                &changed,
            ));
        }
        if let Some((path, summary)) = now.files.iter().find(|(path, summary)| {
            before
                .files
                .get(*path)
                .is_some_and(|old| old.mode != summary.mode)
        }) {
            let old = before.files[path].mode;
            return Some(format!(
                "file mode changed: {path} ({old:o} → {:o})",
                summary.mode
            ));
        }
        let added: Vec<&String> = now
            .files
            .keys()
            .filter(|path| !before.files.contains_key(*path))
            .collect();
        if !added.is_empty() {
            return Some(counted(added.len(), "file added", "files added", &added));
        }
        let removed: Vec<&String> = before
            .files
            .keys()
            .filter(|path| !now.files.contains_key(*path))
            .collect();
        let excluded: Vec<&String> = removed
            .iter()
            .copied()
            .filter(|path| ignored(path))
            .collect();
        if !excluded.is_empty() {
            return Some(format!(".dockerignore now includes {}", some_of(&excluded)));
        }
        if !removed.is_empty() {
            return Some(counted(
                removed.len(),
                "file removed",
                "files removed",
                &removed,
            ));
        }
    }
    None
}

fn index_path(store: &Store, kind: &str, identity: &str) -> PathBuf {
    dir(store).join(kind).join(&key(&[identity])[..32])
}

/// Remember `key` as the latest record of the step known by `identity`
/// (and by `text`, the fallback when the step moved).
pub(crate) fn remember(store: &Store, identity: &str, text: &str, key: &str) {
    for (kind, name) in [("steps", identity), ("texts", text)] {
        let path = index_path(store, kind, name);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_ok()
        {
            let _ = crate::atomic::write(&path, key.as_bytes(), Default::default());
        }
    }
}

/// The latest record of the step known by `identity`, else by `text`.
pub(crate) fn previous(store: &Store, identity: &str, text: &str) -> Option<CacheRecord> {
    [("steps", identity), ("texts", text)]
        .iter()
        .find_map(|(kind, name)| {
            let key = std::fs::read_to_string(index_path(store, kind, name)).ok()?;
            let bytes = std::fs::read(record_path(store, key.trim())).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
}

fn dir(store: &Store) -> PathBuf {
    store.path(crate::store::layout::CACHE)
}

fn record_path(store: &Store, key: &str) -> PathBuf {
    dir(store).join(format!("{key}.json"))
}

/// The record of `key`, if there is one whose layer is still in the store.
pub(crate) fn get(store: &Store, key: &str) -> Option<CacheRecord> {
    let bytes = std::fs::read(record_path(store, key)).ok()?;
    let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
    match &record.layer {
        Some(layer) if !store.has_blob(&layer.digest) => None,
        _ => Some(record),
    }
}

/// Record a step (atomically: a reader sees the whole record or none).
pub(crate) fn put(store: &Store, record: &CacheRecord) -> std::io::Result<()> {
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
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect()
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

/// Content digests of a build context's files, remembered between builds
/// by their stat.
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
        let name = key(&[&root.display().to_string()]);
        let path = dir(store)
            .join("stat")
            .join(format!("{}.json", &name[..32]));
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

    /// The sha256 of the file at `path`, whose metadata is `meta`.
    pub fn digest(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<String, crate::error::PathError> {
        let name = path.display().to_string();
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
        let mut file =
            std::fs::File::open(path).map_err(crate::error::PathError::of("open", path))?;
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
        let digest = format!("{:x}", hasher.finalize());
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
    fn times_round_trip_and_causes_read_well() {
        for seconds in [0, 784_111_777, 1_700_000_000, 4_102_444_800] {
            assert_eq!(
                crate::time::parse_rfc3339(&crate::time::rfc3339(seconds)),
                Some(seconds)
            );
        }
        let files = |entries: &[(&str, &str, u32)]| -> Files {
            entries
                .iter()
                .map(|(path, digest, mode)| {
                    (
                        path.to_string(),
                        FileSummary {
                            kind: "file".into(),
                            digest: digest.to_string(),
                            mode: *mode,
                        },
                    )
                })
                .collect()
        };
        let before = StepInputs {
            files: files(&[
                ("a", "1", 0o644),
                ("b", "2", 0o644),
                ("c", "3", 0o644),
                ("d", "4", 0o644),
            ]),
            ..StepInputs::default()
        };
        let now = StepInputs {
            files: files(&[
                ("a", "9", 0o644),
                ("b", "8", 0o644),
                ("c", "7", 0o644),
                ("d", "4", 0o644),
            ]),
            ..StepInputs::default()
        };
        assert_eq!(
            own_change(&before, &now, &|_: &str| false).as_deref(),
            Some("3 files changed: a, b, +1 more")
        );
        assert_eq!(own_change(&before, &before, &|_: &str| false), None);
    }
}
