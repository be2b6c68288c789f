//! Writing images out: an OCI image layout (directory or tar), and the
//! docker-archive format of `docker save`.
//!
//! Both are one list of [`LayoutEntry`]s written by one of two sinks, as
//! BuildKit's OCI exporter has one writer with an OCI and a docker variant:
//! the docker archive is the OCI layout plus `manifest.json`, with layers
//! uncompressed (their digests are then the config's diff_ids, which is what
//! `docker load` and `skopeo` check).
//!
//! Archives are deterministic: entries sorted by name, owner 0:0, fixed
//! modes, mtime 0. Saving the same images twice gives the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{
    ImageError, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Reference,
    canonical_json, decompressed, io_error,
};
use crate::digest::{Digest, VerifyingReader};
use crate::layer::MEDIA_TYPE_TAR;
use crate::store::{ImageRecord, Store};

/// Where an entry's bytes come from.
enum Content {
    Bytes(Vec<u8>),
    Blob(Digest),
    File(PathBuf),
    /// A compressed layer, uncompressed while it is written: `size` bytes
    /// that must hash to `diff_id`.
    Uncompressed {
        digest: Digest,
        diff_id: Digest,
        size: u64,
    },
}

struct LayoutEntry {
    name: String,
    content: Content,
}

/// Collects the entries of a layout, deduplicating blobs.
#[derive(Default)]
struct Layout {
    entries: BTreeMap<String, Content>,
}

impl Layout {
    fn blob_name(digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }

    fn add(&mut self, name: String, content: Content) {
        self.entries.entry(name).or_insert(content);
    }

    fn into_entries(self) -> Vec<LayoutEntry> {
        self.entries
            .into_iter()
            .map(|(name, content)| LayoutEntry { name, content })
            .collect()
    }
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn index_json(manifests: Vec<serde_json::Value>) -> Vec<u8> {
    canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": manifests,
    }))
}

fn manifest_descriptor(
    media_type: &str,
    digest: &Digest,
    size: u64,
    tag: Option<&Reference>,
) -> serde_json::Value {
    let mut descriptor = serde_json::json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    if let Some(reference) = tag {
        // `ref.name` holds the tag (what `oci:DIR:TAG` matches, as buildah
        // and docker write it); the full name goes where containerd reads it.
        descriptor["annotations"] = serde_json::json!({
            "org.opencontainers.image.ref.name": reference.tag.clone().unwrap_or_default(),
            // Fully qualified, as BuildKit and docker write it.
            "io.containerd.image.name": reference.qualified(),
        });
    }
    descriptor
}

/// Write the OCI layout of `images` (each with the tags to record) to
/// `destination`: a directory, or a tar archive when `archive` is set.
pub fn save_oci(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    destination: &Path,
    archive: bool,
) -> Result<(), ImageError> {
    let mut layout = Layout::default();
    let mut manifests = Vec::new();
    for (image, tags) in images {
        layout.add(
            Layout::blob_name(&image.manifest),
            Content::Blob(image.manifest.clone()),
        );
        layout.add(
            Layout::blob_name(&image.config),
            Content::Blob(image.config.clone()),
        );
        for layer in &image.layers {
            layout.add(
                Layout::blob_name(&layer.digest),
                Content::Blob(layer.digest.clone()),
            );
        }
        if tags.is_empty() {
            manifests.push(manifest_descriptor(
                image.manifest_type(),
                &image.manifest,
                image.manifest_size,
                None,
            ));
        }
        for tag in tags {
            let reference = Reference::parse(tag)?;
            manifests.push(manifest_descriptor(
                image.manifest_type(),
                &image.manifest,
                image.manifest_size,
                Some(&reference),
            ));
        }
    }
    layout.add(
        "index.json".to_owned(),
        Content::Bytes(index_json(manifests)),
    );
    layout.add("oci-layout".to_owned(), Content::Bytes(OCI_LAYOUT.to_vec()));
    let entries = layout.into_entries();
    if archive {
        write_archive_file(store, &entries, destination)
    } else {
        write_directory(store, &entries, destination)
    }
}

/// Write `images` in docker's `save` format to `out`.
pub fn save_docker_archive(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    out: impl Write,
) -> Result<(), ImageError> {
    let mut layout = Layout::default();
    let mut manifests = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut temporaries = Vec::new();
    let outcome = (|| {
        for (image, tags) in images {
            layout.add(
                Layout::blob_name(&image.config),
                Content::Blob(image.config.clone()),
            );
            let mut layer_paths = Vec::new();
            let mut descriptors = Vec::new();
            for layer in &image.layers {
                // Uncompressed, so that its digest is its diff_id.
                let (path, size) = if layer.media_type == MEDIA_TYPE_TAR {
                    let size = std::fs::metadata(store.blob_path(&layer.digest))
                        .map_err(io_error("inspect", &store.blob_path(&layer.digest)))?
                        .len();
                    layout.add(
                        Layout::blob_name(&layer.diff_id),
                        Content::Blob(layer.digest.clone()),
                    );
                    (Layout::blob_name(&layer.diff_id), size)
                } else if let Some(size) = layer.diff_size {
                    layout.add(
                        Layout::blob_name(&layer.diff_id),
                        Content::Uncompressed {
                            digest: layer.digest.clone(),
                            diff_id: layer.diff_id.clone(),
                            size,
                        },
                    );
                    (Layout::blob_name(&layer.diff_id), size)
                } else {
                    // Size unknown (a compressed layer loaded from elsewhere):
                    // uncompress once to learn it.
                    let (path, size) = decompress_to_temp(store, &layer.digest, &layer.diff_id)?;
                    temporaries.push(path.clone());
                    layout.add(Layout::blob_name(&layer.diff_id), Content::File(path));
                    (Layout::blob_name(&layer.diff_id), size)
                };
                descriptors.push(serde_json::json!({
                    "mediaType": MEDIA_TYPE_TAR,
                    "digest": layer.diff_id.to_string(),
                    "size": size,
                }));
                layer_paths.push(path);
            }
            let manifest = canonical_json(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_MANIFEST,
                "config": { "mediaType": MEDIA_TYPE_CONFIG, "digest": image.config.to_string(), "size": image.config_size },
                "layers": descriptors,
            }));
            let manifest_digest = Digest::of(&manifest);
            let parsed: Vec<Reference> = tags
                .iter()
                .map(|tag| Reference::parse(tag))
                .collect::<Result<_, _>>()?;
            if parsed.is_empty() {
                manifests.push(manifest_descriptor(
                    MEDIA_TYPE_MANIFEST,
                    &manifest_digest,
                    manifest.len() as u64,
                    None,
                ));
            }
            for reference in &parsed {
                manifests.push(manifest_descriptor(
                    MEDIA_TYPE_MANIFEST,
                    &manifest_digest,
                    manifest.len() as u64,
                    Some(reference),
                ));
            }
            layout.add(
                Layout::blob_name(&manifest_digest),
                Content::Bytes(manifest),
            );
            docker_manifest.push(serde_json::json!({
                "Config": Layout::blob_name(&image.config),
                "RepoTags": parsed.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "Layers": layer_paths,
            }));
        }
        layout.add(
            "index.json".to_owned(),
            Content::Bytes(index_json(manifests)),
        );
        layout.add("oci-layout".to_owned(), Content::Bytes(OCI_LAYOUT.to_vec()));
        layout.add(
            "manifest.json".to_owned(),
            Content::Bytes(serde_json::to_vec(&docker_manifest).expect("JSON values serialize")),
        );
        write_archive(store, &std::mem::take(&mut layout).into_entries(), out)
    })();
    for path in temporaries {
        let _ = std::fs::remove_file(path);
    }
    outcome
}

/// Decompress a stored layer into a temporary file, checking its diff_id.
fn decompress_to_temp(
    store: &Store,
    digest: &Digest,
    diff_id: &Digest,
) -> Result<(PathBuf, u64), ImageError> {
    let mut temp = store.temp_blob()?;
    let mut reader = decompressed(store.open_blob(digest)?)?;
    io::copy(&mut reader, &mut temp).map_err(io_error("decompress a layer into", temp.path()))?;
    let written = temp.finish()?;
    if &written.digest != diff_id {
        return Err(ImageError::Format(format!(
            "layer {digest} uncompresses to {}, but the image says its diff_id is {diff_id}",
            written.digest
        )));
    }
    let size = written.size;
    Ok((written.keep(), size))
}

fn open_content(store: &Store, content: &Content) -> Result<(Box<dyn Read>, u64), ImageError> {
    Ok(match content {
        Content::Bytes(bytes) => (Box::new(io::Cursor::new(bytes.clone())), bytes.len() as u64),
        Content::Blob(digest) => {
            let path = store.blob_path(digest);
            let size = std::fs::metadata(&path)
                .map_err(io_error("inspect", &path))?
                .len();
            (Box::new(store.open_blob(digest)?), size)
        }
        Content::File(path) => {
            let file = std::fs::File::open(path).map_err(io_error("open", path))?;
            let size = file.metadata().map_err(io_error("inspect", path))?.len();
            (Box::new(io::BufReader::new(file)), size)
        }
        Content::Uncompressed {
            digest,
            diff_id,
            size,
        } => {
            // Exactly `size` bytes, checked against the diff_id: a layer
            // that uncompresses to anything else fails the write instead of
            // producing an archive whose header lies about its entry.
            let reader = decompressed(store.open_blob(digest)?)?.take(*size);
            (
                Box::new(VerifyingReader::new(reader, diff_id.clone())),
                *size,
            )
        }
    })
}

fn write_directory(
    store: &Store,
    entries: &[LayoutEntry],
    destination: &Path,
) -> Result<(), ImageError> {
    for entry in entries {
        let path = destination.join(&entry.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        }
        // Existing blobs are content-addressed: the same name is the same bytes.
        if entry.name.starts_with("blobs/") && path.is_file() {
            continue;
        }
        let (mut reader, _) = open_content(store, &entry.content)?;
        let mut file = std::fs::File::create(&path).map_err(io_error("create", &path))?;
        io::copy(&mut reader, &mut file).map_err(|source| copy_error(source, &path))?;
    }
    Ok(())
}

fn write_archive_file(
    store: &Store,
    entries: &[LayoutEntry],
    destination: &Path,
) -> Result<(), ImageError> {
    write_file_atomically(destination, |out| write_archive(store, entries, out))
}

/// Write `destination` beside it first and rename it into place: a failed
/// save never leaves a truncated archive where a good one was expected.
fn write_file_atomically(
    destination: &Path,
    write: impl FnOnce(io::BufWriter<&mut std::fs::File>) -> Result<(), ImageError>,
) -> Result<(), ImageError> {
    crate::atomic::write_with(destination, Default::default(), |file| {
        write(io::BufWriter::with_capacity(1 << 20, file))
    })
}

/// [`save_docker_archive`] into the file `destination`, atomically.
pub fn save_docker_archive_file(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    destination: &Path,
) -> Result<(), ImageError> {
    write_file_atomically(destination, |out| save_docker_archive(store, images, out))
}

fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(name)
        .expect("layout names are short and relative");
    header.set_entry_type(kind);
    header.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_cksum();
    header
}

fn write_archive(
    store: &Store,
    entries: &[LayoutEntry],
    out: impl Write,
) -> Result<(), ImageError> {
    let archive_path = Path::new("the archive");
    let mut builder = tar::Builder::new(out);
    let mut directories = std::collections::BTreeSet::new();
    for entry in entries {
        // Parent directories first, once each.
        let mut parent = String::new();
        for component in entry
            .name
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            parent.push_str(component);
            parent.push('/');
            if directories.insert(parent.clone()) {
                builder
                    .append(&header(&parent, tar::EntryType::Directory, 0), io::empty())
                    .map_err(io_error("write", archive_path))?;
            }
        }
        let (reader, size) = open_content(store, &entry.content)?;
        builder
            .append(&header(&entry.name, tar::EntryType::Regular, size), reader)
            .map_err(|source| copy_error(source, archive_path))?;
    }
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(io_error("finish", archive_path))
}

/// A failed copy: a corrupt blob is reported as such, not as an I/O error.
fn copy_error(source: io::Error, path: &Path) -> ImageError {
    if source.kind() == io::ErrorKind::InvalidData {
        ImageError::Format(format!("refusing to export a corrupt blob: {source}"))
    } else {
        io_error("write", path)(source)
    }
}
