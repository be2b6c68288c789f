//! Rebuilding the store's own state (`system check --repair`): the index
//! from what the store keeps, and what interrupted or dead operations left.
//!
//! - An image record that cannot be read is rebuilt from the store's
//!   blobs: the manifest whose config is that image's (every image's
//!   manifest and config are blobs) gives its layers, the config their
//!   diff_ids. What only the record knew, the repo digests it was pushed
//!   or pulled as, is lost, and the repair says so. A record no manifest
//!   rebuilds is removed.
//! - An old `images.json` that cannot be read is rebuilt the same way,
//!   for every manifest in the store; its tags are lost.
//! - A line of the tags log that cannot be read is dropped (the tag it set
//!   or removed is lost); a torn last line is cut off.
//! - A tag that names no image, and an image whose blobs are not all in
//!   the store, are removed.
//! - A blob whose content no longer matches its digest is removed (what
//!   used it is then dangling, and removed as such).
//! - Stale leases are released, and what interrupted writes left in `tmp/`
//!   and beside their targets is removed.
//!
//! Each repair is one line of the result.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use super::index::DamageKind;
use super::layout::{OLD_INDEX, TAGS, TMP};
use super::{ImageRecord, LayerRecord, MEDIA_TYPE_MANIFEST, Store, StoreError};
use crate::digest::Digest;

/// The largest blob read as a possible manifest or config.
const MAX_MANIFEST: u64 = 4 << 20;

/// The media type of an uncompressed layer, whose size is its diff_size.
const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

impl Store {
    /// A small blob as JSON, if it is one (and is intact).
    fn json_blob(&self, digest: &Digest) -> Option<Value> {
        let mut bytes = Vec::new();
        self.open_blob(digest)
            .ok()?
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }

    /// The record of the image the manifest blob `manifest` describes, if
    /// it is a manifest whose config and diff_ids are in the store.
    fn record_from_manifest(&self, manifest: &Digest, value: &Value) -> Option<ImageRecord> {
        let config: Digest = value["config"]["digest"].as_str()?.parse().ok()?;
        let layers = value["layers"].as_array()?;
        let config_value = self.json_blob(&config)?;
        let diff_ids = config_value["rootfs"]["diff_ids"].as_array()?;
        if diff_ids.len() != layers.len() {
            return None;
        }
        let layers = layers
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| {
                let media_type = layer["mediaType"].as_str()?.to_owned();
                let size = layer["size"].as_u64()?;
                Some(LayerRecord {
                    digest: layer["digest"].as_str()?.parse().ok()?,
                    diff_id: diff_id.as_str()?.parse().ok()?,
                    size,
                    diff_size: (media_type == MEDIA_TYPE_TAR).then_some(size),
                    media_type,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let manifest_media_type = value["mediaType"]
            .as_str()
            .filter(|kind| *kind != MEDIA_TYPE_MANIFEST)
            .map(str::to_owned);
        Some(ImageRecord {
            id: config.clone(),
            manifest: manifest.clone(),
            manifest_size: self.blob_size(manifest),
            config_size: self.blob_size(&config),
            config,
            layers,
            created: config_value["created"].as_str().map(str::to_owned),
            manifest_media_type,
            repo_digests: Vec::new(),
        })
    }

    fn blob_size(&self, digest: &Digest) -> u64 {
        std::fs::symlink_metadata(self.blob_path(digest))
            .map(|meta| meta.len())
            .unwrap_or(0)
    }

    /// Every image a manifest blob in the store describes, by ID.
    fn records_from_manifests(&self) -> Result<BTreeMap<Digest, ImageRecord>, StoreError> {
        let mut records = BTreeMap::new();
        for digest in self.blobs()? {
            if self.blob_size(&digest) > MAX_MANIFEST {
                continue;
            }
            let Some(value) = self.json_blob(&digest) else {
                continue;
            };
            if !value["config"].is_object() || !value["layers"].is_array() {
                continue;
            }
            if let Some(record) = self.record_from_manifest(&digest, &value) {
                records.entry(record.id.clone()).or_insert(record);
            }
        }
        Ok(records)
    }

    /// Rebuild the index from what the store keeps (see the module); a
    /// line per repair.
    pub fn repair_index(&self) -> Result<Vec<String>, StoreError> {
        let _lock = self.index_lock()?;
        let loaded = self.load_index()?;
        let mut repairs = Vec::new();
        let mut index = loaded.index.clone();
        let mut manifests: Option<BTreeMap<Digest, ImageRecord>> = None;
        let mut changed = loaded.old || loaded.torn || !loaded.damage.is_empty();
        for damage in &loaded.damage {
            let path = damage.path.display();
            match &damage.kind {
                DamageKind::OldIndex => {
                    let found = manifests.get_or_insert(self.records_from_manifests()?);
                    index.images.extend(found.clone());
                    repairs.push(format!(
                        "rebuilt the unreadable image index `{path}` ({}): {} images from the \
                         manifests in the store; its tags are lost",
                        damage.detail,
                        found.len()
                    ));
                }
                DamageKind::Record(id) => {
                    if manifests.is_none() {
                        manifests = Some(self.records_from_manifests()?);
                    }
                    let found = manifests.as_ref().and_then(|found| found.get(id));
                    match found {
                        Some(record) => {
                            index.images.insert(id.clone(), record.clone());
                            repairs.push(format!(
                                "rebuilt the unreadable image record `{path}` ({}) from its \
                                 manifest {}; the repo digests it had, if any, are lost",
                                damage.detail, record.manifest
                            ));
                        }
                        None => repairs.push(format!(
                            "removed the unreadable image record `{path}` ({}): no manifest \
                             in the store is image {id}'s",
                            damage.detail
                        )),
                    }
                }
                DamageKind::Stray(_) => {
                    repairs.push(format!("removed `{path}`: it is not an image record"))
                }
                DamageKind::TagLine(_) => repairs.push(format!(
                    "dropped the unreadable {} of the tags log `{path}`: the tag it set or \
                     removed is lost",
                    damage.detail
                )),
            }
        }
        if loaded.torn {
            repairs.push(format!(
                "cut off the torn last line of the tags log `{}` (an interrupted write)",
                self.path(TAGS).display()
            ));
        }
        let broken: Vec<(Digest, Digest)> = index
            .images
            .values()
            .filter_map(|image| {
                let missing = image.blobs().find(|digest| !self.has_blob(digest))?;
                Some((image.id.clone(), missing.clone()))
            })
            .collect();
        for (id, missing) in broken {
            index.images.remove(&id);
            changed = true;
            repairs.push(format!(
                "removed image {id}: its blob {missing} is missing (pull, load or build it again)"
            ));
        }
        // A tag whose image has no record (its file lost): rebuilt when a
        // manifest in the store is that image's.
        let unrecorded: Vec<Digest> = index
            .tags
            .values()
            .filter(|id| !index.images.contains_key(*id))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for id in unrecorded {
            if manifests.is_none() {
                manifests = Some(self.records_from_manifests()?);
            }
            let found = manifests.as_ref().and_then(|found| found.get(&id));
            if let Some(record) = found
                && record.blobs().all(|digest| self.has_blob(digest))
            {
                index.images.insert(id.clone(), record.clone());
                changed = true;
                repairs.push(format!(
                    "rebuilt the missing image record of {id}, which tags name, from its \
                     manifest {}",
                    record.manifest
                ));
            }
        }
        let dangling: Vec<(String, Digest)> = index
            .tags
            .iter()
            .filter(|(_, id)| !index.images.contains_key(*id))
            .map(|(tag, id)| (tag.clone(), id.clone()))
            .collect();
        for (tag, id) in dangling {
            index.tags.remove(&tag);
            changed = true;
            repairs.push(format!(
                "removed tag `{tag}`: it pointed to {id}, which is not an image in the store"
            ));
        }
        // What a rebuilt record cannot know from its blobs (the size of a
        // compressed layer uncompressed), another image with that layer may.
        let sizes: BTreeMap<Digest, u64> = index
            .images
            .values()
            .flat_map(|image| &image.layers)
            .filter_map(|layer| Some((layer.digest.clone(), layer.diff_size?)))
            .collect();
        for image in index.images.values_mut() {
            for layer in &mut image.layers {
                if layer.diff_size.is_none() {
                    layer.diff_size = sizes.get(&layer.digest).copied();
                }
            }
        }
        if changed {
            self.write_whole(&index)?;
            if loaded.old {
                self.root_dir()?.remove(std::ffi::OsStr::new(OLD_INDEX))?;
            }
        }
        Ok(repairs)
    }

    /// Remove every blob whose content no longer matches its digest
    /// (nothing can rebuild it: the images that use it are then dangling,
    /// which [`Store::repair_index`] removes); a line per blob.
    pub fn repair_blobs(&self) -> Result<Vec<String>, StoreError> {
        let mut repairs = Vec::new();
        let _collecting = self.collecting()?;
        let Some(blobs) = self.open_dir(super::layout::BLOBS)? else {
            return Ok(repairs);
        };
        for digest in self.blobs()? {
            if let Err(StoreError::DamagedBlob { path, detail }) = self.verify_blob(&digest) {
                blobs.remove(std::ffi::OsStr::new(&digest.hex()))?;
                repairs.push(format!(
                    "removed the damaged blob `{}` ({detail})",
                    path.display()
                ));
            }
        }
        Ok(repairs)
    }

    /// Release stale leases and remove what interrupted writes left (in
    /// `tmp/`, unless a live lease holds it, and beside their targets); a
    /// line per repair.
    pub fn repair_leftovers(&self) -> Result<Vec<String>, StoreError> {
        let mut repairs = Vec::new();
        let collecting = self.collecting()?;
        let (held, stale) = self.leased(&collecting)?;
        for lease in stale {
            repairs.push(format!(
                "released stale lease {}: its process is gone",
                lease.describe()
            ));
        }
        if let Some(tmp) = self.open_dir(TMP)? {
            // No index update is half-way while this is held.
            let _index = self.index_lock()?;
            let mut removed = 0;
            for name in tmp.entries()? {
                if held.paths.contains(&name) {
                    continue;
                }
                tmp.remove(&name)?;
                removed += 1;
            }
            if removed > 0 {
                repairs.push(format!(
                    "removed {removed} temporary files of interrupted writes from `{}`",
                    tmp.path().display()
                ));
            }
        }
        for path in self.abandoned_temp_files()? {
            repairs.push(format!(
                "removed `{}`, left beside its target by an interrupted write",
                path.display()
            ));
        }
        self.remove_abandoned_temp_files()?;
        drop(collecting);
        Ok(repairs)
    }
}
