//! Removing images, and then the blobs and snapshots nothing holds.
//!
//! Three things hold what is in a store: its image records, the kept
//! containers (the images they run) and the build cache (the layers of its
//! records; `image prune` is not a cache prune). They sit at three levels
//! (`store`, `container`, `solve::cache`), and this module, above all of
//! them, is the one place that asks each: it assembles the roots and hands
//! them to the store's garbage collection ([`Store::collect_garbage`]),
//! which imports none of them.

use std::collections::BTreeSet;

use crate::container::{self, ContainerError};
use crate::digest::Digest;
use crate::image::{ImageError, Reference, resolve};
use crate::store::{Index, Roots, Store};

/// What [`remove_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A tag was removed.
    Untagged(String),
    /// An image record was removed.
    Deleted(Digest),
}

/// What [`prune_images`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Image records removed.
    pub images: Vec<Digest>,
    /// Bytes of blobs and temporary files deleted.
    pub reclaimed: u64,
}

/// What holds blobs besides the image records: the build cache's layers.
fn held(store: &Store) -> Roots {
    crate::solve::cache::roots(store)
}

/// A container listing error as an image error (the listing only reads
/// files).
fn container_error(error: ContainerError) -> ImageError {
    match error {
        ContainerError::Io(error) => ImageError::Io(error),
        other => ImageError::Format(other.to_string()),
    }
}

/// Remove `wanted` as `docker rmi` does: a tag is untagged, and the image
/// goes when no tag is left; an image named by ID goes with its tags, which
/// needs `force` when it has several. Blobs nothing else holds are deleted.
pub fn remove_image(store: &Store, wanted: &str, force: bool) -> Result<Vec<Removal>, ImageError> {
    let image = resolve(store, wanted)?;
    if !force {
        let containers = container::list(store).map_err(container_error)?;
        if let Some(container) = containers
            .iter()
            .find(|container| container.image == image.id)
        {
            return Err(ImageError::UsedByContainer {
                id: image.id.hex()[..12].to_owned(),
                container: container.name.clone(),
            });
        }
    }
    let by_tag = Reference::parse(wanted)
        .ok()
        .filter(|reference| reference.digest.is_none())
        .map(|reference| reference.to_string())
        .filter(|tag| {
            store
                .index()
                .map(|index| index.tags.get(tag) == Some(&image.id))
                .unwrap_or(false)
        });
    let removals = store.update(|index: &mut Index| -> Result<Vec<Removal>, ImageError> {
        let tags: Vec<String> = index
            .tags
            .iter()
            .filter(|(_, id)| **id == image.id)
            .map(|(tag, _)| tag.clone())
            .collect();
        let mut removals = Vec::new();
        let untag: Vec<String> = match &by_tag {
            Some(tag) => vec![tag.clone()],
            None if tags.len() > 1 && !force => {
                return Err(ImageError::InUse {
                    id: image.id.hex()[..12].to_owned(),
                    tags,
                });
            }
            None => tags.clone(),
        };
        for tag in &untag {
            index.tags.remove(tag);
            removals.push(Removal::Untagged(tag.clone()));
        }
        let still_tagged = index.tags.values().any(|id| *id == image.id);
        if !still_tagged {
            index.images.remove(&image.id);
            removals.push(Removal::Deleted(image.id.clone()));
        }
        Ok(removals)
    });
    let removals = removals?;
    if removals
        .iter()
        .any(|removal| matches!(removal, Removal::Deleted(_)))
    {
        let collecting = store.collecting()?;
        store.remove_unused_blobs(&collecting, &image, &held(store))?;
    }
    Ok(removals)
}

/// Remove untagged images (`all`: every image, as `docker image prune -a`
/// does when no container uses them), then every blob no image or cache
/// record holds and the temporary files of interrupted writes.
pub fn prune_images(store: &Store, all: bool) -> Result<PruneReport, ImageError> {
    // No writer is between writing its blobs and recording its image while
    // we hold this: every unreferenced blob and temporary file is garbage.
    let collecting = store.collecting()?;
    let used_by_containers = container::images_in_use(store).map_err(container_error)?;
    // Images an operation in flight uses (a build's base) stay, tags and all.
    let (leased, _) = store.leased(&collecting)?;
    let images = store.update(|index: &mut Index| -> Result<Vec<Digest>, ImageError> {
        if all {
            index.tags.retain(|_, id| leased.images.contains(id));
        }
        let tagged: BTreeSet<Digest> = index.tags.values().cloned().collect();
        let removed: Vec<Digest> = index
            .images
            .keys()
            .filter(|id| {
                !tagged.contains(*id)
                    && !used_by_containers.contains(*id)
                    && !leased.images.contains(*id)
            })
            .cloned()
            .collect();
        for id in &removed {
            index.images.remove(id);
        }
        Ok(removed)
    })?;
    let reclaimed = store.collect_garbage(&collecting, &held(store))?;
    Ok(PruneReport { images, reclaimed })
}
