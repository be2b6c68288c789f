//! Every path under a store's root, named once. Other modules ask
//! [`Store::path`] or [`Store::open_dir`] for one of these, never spell
//! one out.
//!
//! ```text
//! ROOT/
//!   blobs/sha256/<hex>   content, immutable once there          BLOBS
//!   tmp/                 files being written (collected by GC)  TMP
//!   snapshots/<hex>      a layer unpacked (by diff_id)          SNAPSHOTS
//!   images/<hex>.json    one image record (by image ID; index)  IMAGES
//!   tags.log             tag changes, a JSON line each (index)  TAGS
//!   images.json          records and tags as older strata kept  OLD_INDEX
//!                        them (migrated by the first update)
//!   lock                 held while the index is updated        LOCK
//!   gc.lock              shared by writers, exclusive for GC    GC_LOCK
//!   leases/<id>.lease    what operations in flight hold (lease) LEASES
//!   cache/               build cache records (solve::cache)     CACHE
//!   cache-mounts/        RUN --mount=type=cache directories     CACHE_MOUNTS
//!   containers/<id>/     kept containers (container)            CONTAINERS
//!   stub                 the empty tree RUN mounts stand on     STUB
//! ```
//!
//! What is inside `cache/`, `cache-mounts/` and `containers/<id>/`, and
//! the index's files, is the format of the module named beside it.

use std::path::PathBuf;

use super::Store;

/// Where blobs are: `blobs/sha256/<hex>`.
pub const BLOBS: &str = "blobs/sha256";
/// The parent of [`BLOBS`] (one directory per digest algorithm).
pub const BLOBS_PARENT: &str = "blobs";
/// Where temporary files are, while written or left by a crash: all of it
/// is garbage to a collection ([`Store::collect_garbage`]).
pub const TMP: &str = "tmp";
/// Where snapshots are: `snapshots/<diff_id hex>`.
pub const SNAPSHOTS: &str = "snapshots";
/// Image records, one file each, `images/<id hex>.json` (see
/// [`super::index`]).
pub const IMAGES: &str = "images";
/// The tags: an append-only log of JSON lines (see [`super::index`]).
pub const TAGS: &str = "tags.log";
/// The index as older strata wrote it: records and tags in one document,
/// replaced whole on every update. Read while it is there; migrated by
/// the first update.
pub const OLD_INDEX: &str = "images.json";
/// The lock held (flock) while the index ([`IMAGES`], [`TAGS`]) is updated.
pub const LOCK: &str = "lock";
/// The lock writers hold shared and garbage collection exclusively.
pub const GC_LOCK: &str = "gc.lock";
/// Leases of operations in flight: one append-only file each (see
/// [`super::lease`]).
pub const LEASES: &str = "leases";
/// The build cache's records and indexes.
pub const CACHE: &str = "cache";
/// `RUN --mount=type=cache` directories, by id.
pub const CACHE_MOUNTS: &str = "cache-mounts";
/// Kept containers, by id.
pub const CONTAINERS: &str = "containers";
/// The empty tree a sandbox mounts stand on.
pub const STUB: &str = "stub";

/// The directories of the layout, made when a store is opened (parents
/// before children).
pub(crate) const DIRECTORIES: [&str; 9] = [
    BLOBS_PARENT,
    BLOBS,
    TMP,
    SNAPSHOTS,
    IMAGES,
    LEASES,
    CACHE,
    CACHE_MOUNTS,
    CONTAINERS,
];

impl Store {
    /// Where `relative` (one of this module's names) is under the root; it
    /// may not exist. For a directory to work in, prefer
    /// [`Store::open_dir`], which checks it.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }
}
