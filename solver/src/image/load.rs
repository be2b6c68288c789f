//! Reading images in: docker-archive tarballs, OCI archives and OCI layout
//! directories.
//!
//! An archive is first unpacked, with the safe unpacker, into the store's
//! `tmp/`; then its blobs are added to the store, each verified against its
//! digest, and only then is the image recorded. A bad archive leaves the
//! store as it was (apart from blobs, which are content-addressed and
//! collected by prune when unused).
//!
//! Every file an archive names (`manifest.json`'s `Config` and `Layers`,
//! an OCI layout's blobs) is opened inside the archive's directory only:
//! a name that is absolute or climbs with `..` is refused, and the rest is
//! resolved by `pathrs` as if the directory were `/` (`openat2` with
//! `RESOLVE_IN_ROOT`), so a symbolic link the archive carries cannot lead
//! to a host file either. What is opened must be a regular file (not a
//! device node or fifo the archive made). Nothing outside the archive is
//! ever read or hashed.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use super::{ImageError, decompressed, io_error, normalize_tags};
use crate::digest::Digest;
use crate::layer::{self, MEDIA_TYPE_TAR};
use crate::store::{ImageRecord, LayerRecord, Store};

/// The largest JSON document read from an archive (the registry client's
/// limit for configs).
const MAX_DOCUMENT: u64 = 8 << 20;

/// What was loaded: each image with the tags it was given.
pub type Loaded = Vec<(ImageRecord, Vec<String>)>;

/// Load from a tar archive (`reader`) or an OCI layout directory (`path`).
pub fn load(store: &Store, source: LoadSource<'_>) -> Result<Loaded, ImageError> {
    let lease = store.lease("load")?;
    let loaded = load_leased(lease.store(), source)?;
    // Recorded: the lease can go.
    lease.release()?;
    Ok(loaded)
}

fn load_leased(store: &Store, source: LoadSource<'_>) -> Result<Loaded, ImageError> {
    let _writing = store.writing()?;
    match source {
        LoadSource::Directory(dir) => load_directory(store, dir),
        LoadSource::Archive(reader) => {
            let dir = store.staging_dir("load")?;
            let outcome = layer::unpack(decompressed(reader)?, &dir)
                .map_err(ImageError::from)
                .and_then(|_| load_directory(store, &dir));
            crate::fault::point(crate::fault::Kind::Unlink, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            outcome
        }
    }
}

/// Where `load` reads from.
pub enum LoadSource<'a> {
    /// A tar stream (docker-archive or OCI archive).
    Archive(Box<dyn Read + 'a>),
    /// An OCI layout directory.
    Directory(&'a Path),
}

/// An archive's directory (unpacked, or an OCI layout), whose files are
/// opened inside it only (see the module documentation).
struct ArchiveDir {
    root: crate::confined::Root,
}

impl ArchiveDir {
    fn open(dir: &Path) -> Result<ArchiveDir, ImageError> {
        // The directory itself is the caller's (a layout the user named may
        // be reached through a link); only what is inside is confined.
        let root = crate::confined::Root::open(dir)
            .map_err(|error| io_error("open the image directory", dir)(error.source))?;
        Ok(ArchiveDir { root })
    }

    /// Open the regular file `name` (as the archive names it; `what` says
    /// which field named it) inside the archive. `None` if it is missing
    /// and `optional`.
    fn open_file(
        &self,
        name: &str,
        what: &str,
        optional: bool,
    ) -> Result<Option<std::fs::File>, ImageError> {
        let climbs = Path::new(name).components().any(|component| {
            matches!(
                component,
                Component::RootDir | Component::ParentDir | Component::Prefix(_)
            )
        });
        if climbs || name.is_empty() {
            return Err(ImageError::Format(format!(
                "{what} `{name}` is not a path inside the archive (it is empty, absolute or climbs with `..`): refusing to read it"
            )));
        }
        match self.root.open_regular(Path::new(name)) {
            Ok(crate::confined::Regular::File(file)) => Ok(Some(file)),
            Ok(crate::confined::Regular::Missing) if optional => Ok(None),
            Ok(crate::confined::Regular::Missing) => Err(ImageError::Io(crate::error::PathError {
                operation: "open (inside the archive)",
                path: PathBuf::from(name),
                source: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
            })),
            // Checked before it is opened: opening a fifo would wait
            // forever, and a device node would read the host's device.
            Ok(crate::confined::Regular::Other) => Err(ImageError::Format(format!(
                "{what} `{name}` is not a regular file in the archive: refusing to read it"
            ))),
            Err(error) => Err(ImageError::Io(crate::error::PathError {
                operation: "open (inside the archive)",
                path: PathBuf::from(name),
                source: error.source,
            })),
        }
    }

    /// [`ArchiveDir::open_file`] of a file that must be there.
    fn file(&self, name: &str, what: &str) -> Result<std::fs::File, ImageError> {
        Ok(self
            .open_file(name, what, false)?
            .expect("a missing file that is not optional is an error"))
    }

    /// Read a JSON document of the archive (`manifest.json`, an index, a
    /// config), at most [`MAX_DOCUMENT`] bytes: a sparse or huge one is
    /// refused rather than read into memory.
    fn read(&self, name: &str, what: &str) -> Result<Vec<u8>, ImageError> {
        let file = self.file(name, what)?;
        Ok(crate::confined::read_bounded(
            file,
            Path::new(name),
            MAX_DOCUMENT,
        )?)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    archive: &ArchiveDir,
    name: &str,
) -> Result<T, ImageError> {
    let bytes = archive.read(name, name)?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
        what: name.to_owned(),
        source,
    })
}

fn load_directory(store: &Store, dir: &Path) -> Result<Loaded, ImageError> {
    let archive = ArchiveDir::open(dir)?;
    if archive
        .open_file("manifest.json", "manifest.json", true)?
        .is_some()
    {
        load_docker(store, &archive)
    } else if archive
        .open_file("index.json", "index.json", true)?
        .is_some()
    {
        load_oci(store, &archive)
    } else {
        Err(ImageError::Format(
            "not an image archive: it has neither `manifest.json` (docker save) nor `index.json` (OCI)".to_owned(),
        ))
    }
}

/// Add the archive's file `name` to the store as blob `digest`, verified.
fn add_blob(
    store: &Store,
    archive: &ArchiveDir,
    name: &str,
    digest: &Digest,
) -> Result<u64, ImageError> {
    let mut file = archive.file(name, "blob")?;
    Ok(store.put_blob_expecting(&mut file, digest)?)
}

/// Which image of an OCI layout a `--build-context NAME=oci-layout://`
/// names: after `@`, a digest in its `index.json`, else after `:` a tag
/// (`org.opencontainers.image.ref.name`), `latest` when neither is given,
/// as buildx reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutImage {
    /// `@sha256:...`.
    Digest(String),
    /// `:TAG`.
    Tag(String),
}

/// Read the one image `which` names of the OCI layout directory `dir`
/// into the store, untagged (a build's named context: held by the
/// build's lease, collected by prune once no build holds it).
pub fn load_layout_image(
    store: &Store,
    dir: &Path,
    which: &LayoutImage,
    platform: &crate::graph::Platform,
) -> Result<ImageRecord, ImageError> {
    let _writing = store.writing()?;
    let archive = ArchiveDir::open(dir)?;
    let index: ImageIndex = read_json(&archive, "index.json")?;
    let found = index.manifests().iter().find(|descriptor| match which {
        LayoutImage::Digest(digest) => descriptor.digest().to_string() == *digest,
        LayoutImage::Tag(tag) => descriptor
            .annotations()
            .as_ref()
            .and_then(|annotations| annotations.get("org.opencontainers.image.ref.name"))
            .is_some_and(|name| name == tag),
    });
    let Some(descriptor) = found else {
        return Err(ImageError::Format(format!(
            "{}: index.json has no image {}",
            dir.display(),
            match which {
                LayoutImage::Digest(digest) => format!("of digest {digest}"),
                LayoutImage::Tag(tag) =>
                    format!("tagged `{tag}` (org.opencontainers.image.ref.name)"),
            }
        )));
    };
    // An index (what buildx exports: the image and its attestations, or
    // several platforms): its image for `platform`.
    let nested;
    let descriptor = if is_index(descriptor) {
        nested = platform_manifest(&archive, descriptor, platform)?;
        &nested
    } else {
        descriptor
    };
    let record = load_oci_manifest(store, &archive, descriptor)?;
    store.record(&record, &[])?;
    Ok(record)
}

/// The digest an index entry names, when it is one strata reads.
fn index_digest(descriptor: &oci_spec::image::Descriptor) -> Result<Digest, ImageError> {
    descriptor.digest().to_string().parse().map_err(|_| {
        ImageError::Format(format!(
            "unsupported digest `{}` in index.json",
            descriptor.digest()
        ))
    })
}

/// Whether `descriptor` names an index (OCI's, or docker's manifest list).
fn is_index(descriptor: &oci_spec::image::Descriptor) -> bool {
    matches!(
        descriptor.media_type().to_string().as_str(),
        super::MEDIA_TYPE_INDEX | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// The manifest of the index `descriptor` names (read inside the layout,
/// checked against its digest) for `platform`, chosen as a pull chooses
/// ([`super::platform::select`]): attestations (`unknown/unknown`) never.
fn platform_manifest(
    archive: &ArchiveDir,
    descriptor: &oci_spec::image::Descriptor,
    platform: &crate::graph::Platform,
) -> Result<oci_spec::image::Descriptor, ImageError> {
    let digest = index_digest(descriptor)?;
    let bytes = archive.read(&format!("blobs/sha256/{}", digest.hex()), "index")?;
    if Digest::of(&bytes) != digest {
        return Err(ImageError::Format(format!(
            "index {digest} does not match its digest"
        )));
    }
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
        what: format!("index {digest}"),
        source,
    })?;
    // (oci-spec's OS and architecture are enums: their names are made
    // once.) Entries that are indexes themselves are not images.
    let platforms: Vec<Option<(String, String, Option<String>)>> = index
        .manifests()
        .iter()
        .map(|entry| {
            let spec = entry.platform().as_ref().filter(|_| !is_index(entry))?;
            Some((
                spec.os().to_string(),
                spec.architecture().to_string(),
                spec.variant().clone(),
            ))
        })
        .collect();
    let offered = || {
        platforms.iter().map(|entry| {
            let (os, architecture, variant) = entry.as_ref()?;
            Some((os.as_str(), architecture.as_str(), variant.as_deref()))
        })
    };
    match super::platform::select(offered(), platform) {
        Some(position) => Ok(index.manifests()[position].clone()),
        None => Err(ImageError::Format(format!(
            "index {digest} has no image for {platform} (it has {})",
            super::platform::available(offered())
        ))),
    }
}

fn load_oci(store: &Store, dir: &ArchiveDir) -> Result<Loaded, ImageError> {
    let index: ImageIndex = read_json(dir, "index.json")?;
    let mut loaded = Vec::new();
    for descriptor in index.manifests() {
        // An index (buildx's export: the image and its attestations, or
        // several platforms): its image for this machine, named as the
        // index is.
        let record = if is_index(descriptor) {
            let host = crate::graph::Platform::host();
            load_oci_manifest(store, dir, &platform_manifest(dir, descriptor, &host)?)?
        } else {
            load_oci_manifest(store, dir, descriptor)?
        };
        let names: Vec<String> = descriptor
            .annotations()
            .as_ref()
            .and_then(|annotations| {
                annotations.get("io.containerd.image.name").or_else(|| {
                    annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|name| name.contains(':'))
                })
            })
            .cloned()
            .into_iter()
            .collect();
        let tags = normalize_tags(&names)?;
        store.record(&record, &tags)?;
        loaded.push((record, tags));
    }
    Ok(loaded)
}

/// Add the image of the index entry `descriptor` (its manifest, config and
/// layers, each verified) to the store's blobs; the caller records it.
fn load_oci_manifest(
    store: &Store,
    dir: &ArchiveDir,
    descriptor: &oci_spec::image::Descriptor,
) -> Result<ImageRecord, ImageError> {
    let manifest_digest = index_digest(descriptor)?;
    let manifest_name = format!("blobs/sha256/{}", manifest_digest.hex());
    add_blob(store, dir, &manifest_name, &manifest_digest)?;
    let manifest: ImageManifest = serde_json::from_slice(&store.read_blob(&manifest_digest)?)
        .map_err(|source| ImageError::Json {
            what: format!("manifest {manifest_digest}"),
            source,
        })?;
    let config_digest: Digest = manifest
        .config()
        .digest()
        .to_string()
        .parse()
        .map_err(|_| {
            ImageError::Format(format!(
                "unsupported config digest in manifest {manifest_digest}"
            ))
        })?;
    add_blob(
        store,
        dir,
        &format!("blobs/sha256/{}", config_digest.hex()),
        &config_digest,
    )?;
    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&config_digest)?)
        .map_err(|source| ImageError::Json {
            what: format!("config {config_digest}"),
            source,
        })?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::Format(format!(
            "manifest {manifest_digest} has {} layers but its config lists {} diff_ids",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let digest: Digest = layer.digest().to_string().parse().map_err(|_| {
            ImageError::Format(format!("unsupported layer digest `{}`", layer.digest()))
        })?;
        let size = add_blob(
            store,
            dir,
            &format!("blobs/sha256/{}", digest.hex()),
            &digest,
        )?;
        let diff_id: Digest = diff_id.parse().map_err(|_| {
            ImageError::Format(format!(
                "invalid diff_id `{diff_id}` in config {config_digest}"
            ))
        })?;
        let diff_size = (layer.media_type().to_string() == MEDIA_TYPE_TAR).then_some(size);
        layers.push(LayerRecord {
            digest,
            diff_id,
            size,
            media_type: layer.media_type().to_string(),
            diff_size,
        });
    }
    let manifest_size = std::fs::metadata(store.blob_path(&manifest_digest))
        .map(|meta| meta.len())
        .unwrap_or(0);
    let config_size = manifest.config().size();
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest: manifest_digest,
        manifest_size,
        config: config_digest,
        config_size,
        layers,
        created: config.created().clone(),
        manifest_media_type: None,
        repo_digests: Vec::new(),
    };
    Ok(record)
}

fn load_docker(store: &Store, dir: &ArchiveDir) -> Result<Loaded, ImageError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = read_json(dir, "manifest.json")?;
    let mut loaded = Vec::new();
    for entry in entries {
        // The config is named by its digest in new archives (blobs/sha256/<hex>)
        // and old ones (<hex>.json): hash the file either way.
        let config_bytes = dir.read(&entry.config, "manifest.json's Config")?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| ImageError::Json {
                what: format!("config `{}`", entry.config),
                source,
            })?;
        let diff_ids = config.rootfs().diff_ids().clone();
        if diff_ids.len() != entry.layers.len() {
            return Err(ImageError::Format(format!(
                "`{}` lists {} layers but its config has {} diff_ids",
                entry.config,
                entry.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (position, (layer_name, diff_id)) in entry.layers.iter().zip(&diff_ids).enumerate() {
            let file = dir.file(layer_name, "manifest.json's Layers entry")?;
            let path = Path::new(layer_name);
            // Store the layer uncompressed, checking that it is what the
            // config says (layers may be compressed in newer archives).
            let mut temp = store.temp_blob()?;
            std::io::copy(&mut decompressed(file)?, &mut temp)
                .map_err(io_error("read (inside the archive)", path))?;
            let written = temp.finish()?;
            let (found, size) = (written.digest.clone(), written.size);
            let expected: Digest = diff_id
                .parse()
                .map_err(|_| ImageError::Format(format!("invalid diff_id `{diff_id}`")))?;
            if found != expected {
                return Err(ImageError::Format(format!(
                    "layer {} (`{layer_name}`) has diff_id {found}, but the config says {expected}",
                    position + 1
                )));
            }
            written.commit(store)?;
            layers.push(LayerRecord {
                digest: found.clone(),
                diff_id: found,
                size,
                media_type: MEDIA_TYPE_TAR.to_owned(),
                diff_size: Some(size),
            });
        }
        // Keep the config byte for byte: the image ID is its digest.
        let config_digest = store.put_bytes(&config_bytes)?;
        let tags = normalize_tags(&entry.repo_tags.unwrap_or_default())?;
        let record = super::record_image(
            store,
            &config_digest,
            config_bytes.len() as u64,
            &config,
            layers,
            &tags,
        )?;
        loaded.push((record, tags));
    }
    Ok(loaded)
}
