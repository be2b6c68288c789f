//! Garbage collection: deleting the blobs, snapshots and temporary files
//! nothing holds.
//!
//! The store knows one kind of holder, its own image records (every blob
//! and layer snapshot of every image in the index is kept). The others
//! live above it (the build cache's records hold layers), so the caller
//! names what they hold as [`Roots`]: the store imports none of them.
//!
//! Collecting is only safe while no writer is between writing its blobs
//! and recording what uses them, so it takes the [`Collecting`] guard
//! ([`Store::collecting`]), which the caller takes first, before it reads
//! what its holders hold. Writers with a lease (see [`super::lease`]) are
//! never half-way in that sense: everything they made or use is in their
//! lease, which collecting keeps (and the leases of dead processes, it
//! removes).

use std::collections::BTreeSet;

use super::{GcGuard, ImageRecord, LayerRecord, Store, StoreError, layout};
use crate::digest::Digest;

/// Blobs and snapshots held by something other than the store's image
/// records (which are always held): collecting keeps them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Roots {
    blobs: BTreeSet<Digest>,
    snapshots: BTreeSet<Digest>,
}

impl Roots {
    /// Nothing held.
    pub fn new() -> Roots {
        Roots::default()
    }

    /// Hold a layer: its blob and its snapshot (by diff_id).
    pub fn hold_layer(&mut self, layer: &LayerRecord) {
        self.blobs.insert(layer.digest.clone());
        self.snapshots.insert(layer.diff_id.clone());
    }

    /// Hold an image: its manifest, config and layers.
    pub fn hold_image(&mut self, image: &ImageRecord) {
        self.blobs.extend(image.blobs().cloned());
        self.snapshots
            .extend(image.layers.iter().map(|layer| layer.diff_id.clone()));
    }

    /// Whether blob `digest` is held.
    pub fn holds_blob(&self, digest: &Digest) -> bool {
        self.blobs.contains(digest)
    }

    /// Whether the snapshot of the layer with `diff_id` is held.
    pub fn holds_snapshot(&self, diff_id: &Digest) -> bool {
        self.snapshots.contains(diff_id)
    }
}

/// A held exclusive `gc.lock`: no writer is half-way while it is held.
/// Released when dropped.
#[derive(Debug)]
pub struct Collecting {
    _lock: GcGuard,
}

impl Store {
    /// Held while deleting blobs: no writer is half-way then.
    pub fn collecting(&self) -> Result<Collecting, StoreError> {
        Ok(Collecting {
            _lock: self.gc_lock(true)?,
        })
    }

    /// `held`, what every image record of the index holds and what live
    /// leases hold (stale leases are removed), with the names in `tmp/`
    /// those leases hold.
    fn roots_with_images(
        &self,
        collecting: &Collecting,
        held: &Roots,
    ) -> Result<(Roots, BTreeSet<std::ffi::OsString>), StoreError> {
        let mut roots = held.clone();
        let (leased, _stale) = self.leased(collecting)?;
        roots.blobs.extend(leased.blobs);
        roots.snapshots.extend(leased.snapshots);
        for image in self.index()?.images.values() {
            roots.hold_image(image);
        }
        Ok((roots, leased.paths))
    }

    /// Delete every blob, snapshot and temporary file that neither an
    /// image record, a live lease nor `held` holds, and the leases of dead
    /// processes; the bytes reclaimed (blobs and temporary files).
    ///
    /// Every removal goes through a directory of the store opened without
    /// following links and checked to be the owner's (see `store::dirs`):
    /// a store whose `tmp` or `snapshots` another user replaced with a link
    /// to their victim's files is refused, and removals never follow one.
    pub fn collect_garbage(
        &self,
        collecting: &Collecting,
        held: &Roots,
    ) -> Result<u64, StoreError> {
        let (roots, leased_temps) = self.roots_with_images(collecting, held)?;
        let mut reclaimed = 0;
        if let Some(blobs) = self.open_dir(layout::BLOBS)? {
            for (digest, name) in self.digests_in(layout::BLOBS)? {
                if roots.holds_blob(&digest) {
                    continue;
                }
                let size = blobs.size(&name);
                blobs.remove(&name)?;
                reclaimed += size;
            }
        }
        if let Some(snapshots) = self.open_dir(layout::SNAPSHOTS)? {
            for (diff_id, name) in self.digests_in(layout::SNAPSHOTS)? {
                if !roots.holds_snapshot(&diff_id) {
                    snapshots.remove(&name)?;
                }
            }
        }
        if let Some(tmp) = self.open_dir(layout::TMP)? {
            // No index update is half-way (its temporary file is in no
            // lease) while this is held.
            let _index = self.index_lock()?;
            for name in tmp.entries()? {
                if leased_temps.contains(&name) {
                    continue;
                }
                let size = tmp.size(&name);
                tmp.remove(&name)?;
                reclaimed += size;
            }
        }
        // And what interrupted writes left beside their targets.
        reclaimed += self.remove_abandoned_temp_files()?;
        Ok(reclaimed)
    }

    /// Delete the blobs of `image` (a record just removed) that neither an
    /// image record, a live lease nor `held` holds.
    pub fn remove_unused_blobs(
        &self,
        collecting: &Collecting,
        image: &ImageRecord,
        held: &Roots,
    ) -> Result<(), StoreError> {
        let (roots, _) = self.roots_with_images(collecting, held)?;
        // Through the checked directory: a `blobs` replaced by a link is
        // refused, and nothing is removed through one.
        let Some(blobs) = self.open_dir(layout::BLOBS)? else {
            return Ok(());
        };
        for digest in image.blobs() {
            if !roots.holds_blob(digest) {
                blobs.remove(std::ffi::OsStr::new(&digest.hex()))?;
            }
        }
        Ok(())
    }
}
