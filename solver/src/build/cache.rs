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
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("cache")
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
    let temp = dir.join(format!(".{}.{}.tmp", record.key, std::process::id()));
    std::fs::write(
        &temp,
        serde_json::to_vec(record).expect("records serialize"),
    )?;
    std::fs::rename(&temp, &path)
}

/// Every record (for `image prune`, which keeps their layers).
pub fn records(store: &Store) -> Vec<CacheRecord> {
    let Ok(entries) = std::fs::read_dir(dir(store)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
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
    pub fn digest(&mut self, path: &Path, meta: &std::fs::Metadata) -> Result<String, String> {
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
        let mut file = std::fs::File::open(path)
            .map_err(|error| format!("failed to open `{}`: {error}", path.display()))?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = file
                .read(&mut buffer)
                .map_err(|error| format!("failed to read `{}`: {error}", path.display()))?;
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
            let temp = self
                .path
                .with_extension(format!("{}.tmp", std::process::id()));
            let written = std::fs::write(
                &temp,
                serde_json::to_vec(&self.entries).expect("stats serialize"),
            )
            .and_then(|()| std::fs::rename(&temp, &self.path));
            if written.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
        }
    }
}
