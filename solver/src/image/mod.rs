//! Images: making them (import), naming them (references, tags) and finding
//! them again (by name, ID, ID prefix or digest).
//!
//! Configs and manifests are `oci-spec` types, written as canonical JSON:
//! keys sorted, no insignificant whitespace, so the same image always has
//! the same ID (the config's digest) and manifest digest.

mod export;
mod load;
pub(crate) mod platform;
mod reference;

pub use export::{save_docker_archive, save_docker_archive_file, save_oci};
pub use load::{LayoutImage, LoadSource, Loaded, load, load_layout_image};
pub use reference::{Reference, normalize_name};

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};
use serde::Serialize;

use crate::digest::Digest;
use crate::layer::{self, Compression, LayerError, UnpackError};
use crate::store::{ImageRecord, LayerRecord, Store, StoreError};

/// OCI's manifest media type.
pub use crate::store::MEDIA_TYPE_MANIFEST;
/// OCI's config media type.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI's index media type.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What went wrong with an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A layer could not be written.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A layer could not be unpacked.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// No image by that name, ID or digest.
    #[error("no such image: `{0}`")]
    UnknownImage(String),
    /// An ID prefix that matches several images.
    #[error("image ID prefix `{prefix}` is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousImage {
        /// The prefix given.
        prefix: String,
        /// The short IDs it matches.
        candidates: Vec<String>,
    },
    /// A name that is not a valid reference.
    #[error("invalid reference `{reference}`: {reason}")]
    InvalidReference {
        /// What was given.
        reference: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A JSON document of an image that does not parse.
    #[error("invalid {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `rmi` by ID of an image with several tags, without force.
    #[error("unable to delete {id} (must be forced): the image is referenced by several tags: {}", tags.join(", "))]
    InUse {
        /// Short ID.
        id: String,
        /// Its tags.
        tags: Vec<String>,
    },
    /// `rmi` of an image a kept container uses, without force.
    #[error("unable to remove image {id} (must be forced): container {container} is using it")]
    UsedByContainer {
        /// Short image ID.
        id: String,
        /// The container's name.
        container: String,
    },
    /// An archive or layout that is not what it claims.
    #[error("{0}")]
    Format(String),
    /// A layer whose content does not hash to the diff_id its image claims:
    /// never unpacked into a snapshot under that name.
    #[error(
        "layer {digest} does not match its image: its content is {found}, the image claims diff_id {claimed}"
    )]
    DiffIdMismatch {
        /// The layer blob.
        digest: crate::digest::Digest,
        /// What the image's config says.
        claimed: crate::digest::Digest,
        /// What the content hashes to.
        found: crate::digest::Digest,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::error::PathError),
}

pub(crate) fn io_error<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> ImageError + 'a {
    crate::error::PathError::at(operation, path)
}

/// `value` as canonical JSON: object keys sorted, compact.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // `serde_json::Value` keeps objects in a BTreeMap: converting through it
    // sorts every key, whatever order the type declares its fields in.
    let value = serde_json::to_value(value).expect("image documents always serialize");
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

/// How `import` makes its layer.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Layer compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: clamps mtimes and sets `created`.
    pub epoch: Option<u64>,
    /// The platform recorded in the config (`os/arch[/variant]`).
    pub platform: (String, String, Option<String>),
    /// Text of the history entry.
    pub created_by: String,
    /// Names to give the image, recorded with it.
    pub tags: Vec<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        let host = strata_frontend::graph::Platform::host();
        ImportOptions {
            compression: Compression::Gzip,
            epoch: None,
            platform: (host.os, host.architecture, host.variant),
            created_by: "strata import".to_owned(),
            tags: Vec::new(),
        }
    }
}

/// [`commit_image`] of a config given as JSON, kept as it is (docker's
/// extensions, such as `Healthcheck` and `OnBuild`, included) once it
/// parses as an OCI config.
pub fn commit_image_json(
    store: &Store,
    config: &serde_json::Value,
    layers: Vec<LayerRecord>,
    tags: &[String],
) -> Result<ImageRecord, ImageError> {
    let parsed: ImageConfiguration =
        serde_json::from_value(config.clone()).map_err(|source| ImageError::Json {
            what: "config".to_owned(),
            source,
        })?;
    let config_bytes = canonical_json(config);
    let config_digest = store.put_bytes(&config_bytes)?;
    record_image(
        store,
        &config_digest,
        config_bytes.len() as u64,
        &parsed,
        layers,
        tags,
    )
}

/// Write the config and manifest of an image with `layers` and record it
/// under `tags` (normalized, see [`normalize_tags`]).
pub fn commit_image(
    store: &Store,
    config: &ImageConfiguration,
    layers: Vec<LayerRecord>,
    tags: &[String],
) -> Result<ImageRecord, ImageError> {
    let value = serde_json::to_value(config).expect("configs serialize");
    commit_image_json(store, &value, layers, tags)
}

/// Write the manifest of an image whose config blob is stored, and record
/// the image under `tags`.
pub fn record_image(
    store: &Store,
    config_digest: &Digest,
    config_size: u64,
    config: &ImageConfiguration,
    layers: Vec<LayerRecord>,
    tags: &[String],
) -> Result<ImageRecord, ImageError> {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": layers.iter().map(|layer| serde_json::json!({
            "mediaType": layer.media_type,
            "digest": layer.digest.to_string(),
            "size": layer.size,
        })).collect::<Vec<_>>(),
    });
    // Parse through oci-spec: what we write must be a valid OCI manifest.
    let manifest: ImageManifest =
        serde_json::from_value(manifest).map_err(|source| ImageError::Json {
            what: "manifest".to_owned(),
            source,
        })?;
    let manifest_bytes = canonical_json(&manifest);
    let manifest_digest = store.put_bytes(&manifest_bytes)?;
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest: manifest_digest,
        manifest_size: manifest_bytes.len() as u64,
        config: config_digest.clone(),
        config_size,
        layers,
        created: config.created().clone(),
        manifest_media_type: None,
        repo_digests: Vec::new(),
    };
    store.record(&record, tags)?;
    Ok(record)
}

/// The config of a one-layer image made by import.
fn import_config(
    layer: &LayerRecord,
    options: &ImportOptions,
) -> Result<ImageConfiguration, ImageError> {
    let (os, architecture, variant) = &options.platform;
    let created = options.epoch.map(crate::time::rfc3339);
    let mut history =
        serde_json::json!({ "created_by": options.created_by, "comment": "imported" });
    let mut config = serde_json::json!({
        "architecture": architecture,
        "os": os,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer.diff_id.to_string()] },
    });
    if let Some(variant) = variant {
        config["variant"] = variant.clone().into();
    }
    if let Some(created) = &created {
        config["created"] = created.clone().into();
        history["created"] = created.clone().into();
    }
    config["history"] = serde_json::json!([history]);
    serde_json::from_value(config).map_err(|source| ImageError::Json {
        what: "config".to_owned(),
        source,
    })
}

/// An imported image, and what could not be imported.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The image.
    pub image: ImageRecord,
    /// Entries left out: sockets (tar cannot hold them), and device nodes a
    /// process without privileges could not make while unpacking.
    pub skipped: Vec<String>,
}

/// Make a one-layer image from the tree under `dir` (docker's `import`).
pub fn import_dir(
    store: &Store,
    dir: &Path,
    options: &ImportOptions,
) -> Result<Imported, ImageError> {
    let lease = store.lease("import")?;
    let imported = import_tree(lease.store(), dir, options, &layer::Owners::new())?;
    // Recorded: the lease can go.
    lease.release()?;
    Ok(imported)
}

fn import_tree(
    store: &Store,
    dir: &Path,
    options: &ImportOptions,
    owners: &layer::Owners,
) -> Result<Imported, ImageError> {
    // Bad names fail before any work is done.
    let tags = normalize_tags(&options.tags)?;
    let _writing = store.writing()?;
    if !dir.is_dir() {
        return Err(ImageError::Io(crate::error::PathError {
            operation: "import",
            path: dir.to_owned(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        }));
    }
    let (layer, skipped) =
        layer::store_layer(store, dir, options.compression, options.epoch, owners)?;
    let config = import_config(&layer, options)?;
    let image = commit_image(store, &config, vec![layer], &tags)?;
    Ok(Imported {
        image,
        skipped: skipped
            .iter()
            .map(|path| path.display().to_string())
            .collect(),
    })
}

/// A reader with its compression detected from the first bytes (gzip, zstd,
/// bzip2 and xz are recognised; gzip and zstd are read).
pub fn decompressed<'a>(mut reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut magic = [0u8; 6];
    let mut filled = 0;
    while filled < magic.len() {
        let read = reader
            .read(&mut magic[filled..])
            .map_err(io_error("read", Path::new("the archive")))?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    let head = io::Cursor::new(magic[..filled].to_vec());
    let whole = head.chain(reader);
    Ok(match &magic[..filled] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(
            zstd::Decoder::new(whole)
                .map_err(io_error("start decompressing", Path::new("the archive")))?,
        ),
        [b'B', b'Z', b'h', ..] => Box::new(bzip2::read::MultiBzDecoder::new(whole)),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00] => {
            Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole))
        }
        _ => Box::new(whole),
    })
}

/// Make a one-layer image from a rootfs tarball (plain, gzip or zstd).
///
/// The archive is unpacked with the safe unpacker into the store's `tmp/`,
/// then written again as a deterministic layer: the same tree gives the same
/// image, however the tarball was made.
pub fn import_tar(
    store: &Store,
    reader: impl Read,
    options: &ImportOptions,
) -> Result<Imported, ImageError> {
    let lease = store.lease("import")?;
    let store = lease.store();
    let _writing = store.writing()?;
    let dir = store.staging_dir("rootfs")?;
    let outcome = layer::unpack(decompressed(reader)?, &dir)
        .map_err(ImageError::from)
        .and_then(|report| {
            // Without privileges the files are ours on disk; the layer keeps
            // the owners the archive gave them.
            let mut imported = import_tree(store, &dir, options, &report.unapplied_owners)?;
            imported.skipped.extend(report.skipped_devices);
            Ok(imported)
        });
    crate::fault::point(crate::fault::Kind::Unlink, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let imported = outcome?;
    lease.release()?;
    Ok(imported)
}

/// Read an image's config.
pub fn read_config(store: &Store, image: &ImageRecord) -> Result<ImageConfiguration, ImageError> {
    let bytes = store.read_blob(&image.config)?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
        what: format!("config of image {}", image.id),
        source,
    })
}

/// Find an image by `name[:tag]`, `name@sha256:...`, full ID or unique ID prefix.
pub fn resolve(store: &Store, wanted: &str) -> Result<ImageRecord, ImageError> {
    let index = store.index()?;
    if let Ok(reference) = Reference::parse(wanted) {
        if let Some(digest) = &reference.digest {
            if let Some(image) = index.images.values().find(|image| {
                &image.manifest == digest
                    || &image.id == digest
                    || image.repo_digests.iter().any(|known| {
                        known.split_once('@').is_some_and(|(name, known)| {
                            name == reference.name && known == digest.to_string()
                        })
                    })
            }) {
                return Ok(image.clone());
            }
        } else if let Some(id) = index.tags.get(&reference.to_string())
            && let Some(image) = index.images.get(id)
        {
            return Ok(image.clone());
        }
    }
    let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    if !hex.is_empty() && hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        let matches: Vec<&ImageRecord> = index
            .images
            .values()
            .filter(|image| image.id.starts_with(hex))
            .collect();
        match matches.as_slice() {
            [image] => return Ok((*image).clone()),
            [] => {}
            several => {
                return Err(ImageError::AmbiguousImage {
                    prefix: wanted.to_owned(),
                    candidates: several
                        .iter()
                        .map(|image| image.id.hex()[..12].to_owned())
                        .collect(),
                });
            }
        }
    }
    Err(ImageError::UnknownImage(wanted.to_owned()))
}

/// Parse and normalize names for tagging (`busybox` → `busybox:latest`).
pub fn normalize_tags(names: &[String]) -> Result<Vec<String>, ImageError> {
    names
        .iter()
        .map(|name| {
            let reference = Reference::parse(name)?;
            if reference.digest.is_some() {
                return Err(ImageError::InvalidReference {
                    reference: name.clone(),
                    reason: "a tag cannot contain a digest",
                });
            }
            Ok(reference.to_string())
        })
        .collect()
}

/// Tag an image (replacing what the tag pointed to).
pub fn tag(store: &Store, image: &ImageRecord, name: &str) -> Result<String, ImageError> {
    let reference = Reference::parse(name)?;
    if reference.digest.is_some() {
        return Err(ImageError::InvalidReference {
            reference: name.to_owned(),
            reason: "a tag cannot contain a digest",
        });
    }
    let tag = reference.to_string();
    let id = image.id.clone();
    let stored = tag.clone();
    store.update(move |index| {
        index.tags.insert(stored, id);
        Ok::<_, StoreError>(())
    })?;
    Ok(tag)
}

/// The snapshot directory of `layer`: its content unpacked once, whiteouts
/// kept in overlayfs's `userxattr` form, usable as an overlay lower
/// directory. Made on first use: unpacked into `tmp/`, then renamed into
/// `snapshots/<diff_id hex>`, so a snapshot is either complete or absent.
pub fn snapshot(store: &Store, layer: &LayerRecord) -> Result<PathBuf, ImageError> {
    // Held before it is looked for (a leased store's): what is there now
    // stays, and a collection is not half-way through removing it.
    store.hold_layer(layer)?;
    let path = store.snapshot_path(&layer.diff_id);
    if path.is_dir() {
        return Ok(path);
    }
    let _writing = store.writing()?;
    let staging = store.staging_dir("snapshot")?;
    // Snapshots are named by diff_id, so the name is checked against the
    // content: a layer that claims another's diff_id would otherwise be run
    // in place of it by every image that has the genuine one.
    let unpacked = decompressed(store.open_blob(&layer.digest)?).and_then(|reader| {
        let report = layer::unpack_with(reader, &staging, layer::Whiteouts::Overlay)?;
        match report.diff_id {
            Some(found) if found == layer.diff_id => Ok(()),
            Some(found) => Err(ImageError::DiffIdMismatch {
                digest: layer.digest.clone(),
                claimed: layer.diff_id.clone(),
                found,
            }),
            None => Err(ImageError::Format(format!(
                "layer {}: more than 1 MiB of data follows the end of its archive",
                layer.digest
            ))),
        }
    });
    if let Err(error) = unpacked {
        let _ = std::fs::remove_dir_all(&staging);
        // A damaged blob is named as such, with its repair, rather than as
        // an archive that does not parse.
        if let Err(damaged @ StoreError::DamagedBlob { .. }) = store.verify_blob(&layer.digest) {
            return Err(damaged.into());
        }
        return Err(error);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    }
    crate::fault::point(crate::fault::Kind::Rename, &path);
    match std::fs::rename(&staging, &path) {
        Ok(()) => Ok(path),
        // Another process made it first: theirs is as good as ours.
        Err(_) if path.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(path)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(io_error("move the snapshot into place", &path)(error))
        }
    }
}

/// The overlay lower directories of `image`, top layer first (the order of
/// overlayfs's `lowerdir=`), making any snapshot that is missing.
pub fn lower_dirs(store: &Store, image: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
    lower_dirs_of(store, &image.layers)
}

/// [`lower_dirs`] of a list of layers (base first).
pub fn lower_dirs_of(store: &Store, layers: &[LayerRecord]) -> Result<Vec<PathBuf>, ImageError> {
    let mut dirs = layers
        .iter()
        .map(|layer| snapshot(store, layer))
        .collect::<Result<Vec<_>, _>>()?;
    dirs.reverse();
    Ok(dirs)
}

/// Write the filesystem of `image` (its layers applied in order) into
/// `destination`, a new or empty directory (`--output type=local`).
pub fn export_rootfs(
    store: &Store,
    image: &ImageRecord,
    destination: &Path,
) -> Result<(), ImageError> {
    let lowers = lower_dirs(store, image)?;
    std::fs::create_dir_all(destination).map_err(io_error("create", destination))?;
    crate::exec::merge_layers(&lowers, destination)
        .map_err(|error| ImageError::Format(format!("failed to export the filesystem: {error}")))
}

/// Write the filesystem of `image` as one tar archive to `out`
/// (`--output type=tar`).
pub fn export_rootfs_tar(
    store: &Store,
    image: &ImageRecord,
    out: impl io::Write,
    epoch: Option<u64>,
) -> Result<(), ImageError> {
    let staging = store.staging_dir("rootfs")?;
    let result = export_rootfs(store, image, &staging).and_then(|()| {
        layer::write_layer(&staging, Compression::None, epoch, out)
            .map(drop)
            .map_err(ImageError::from)
    });
    crate::fault::point(crate::fault::Kind::Unlink, &staging);
    let _ = std::fs::remove_dir_all(&staging);
    result
}
