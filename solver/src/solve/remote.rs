//! The build cache shared between machines: `--cache-to` and
//! `--cache-from`, through a registry or a directory.
//!
//! # Format (version 1)
//!
//! An OCI image manifest whose config is the cache document and whose
//! layers are the cached steps' layers:
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json
//!   artifactType  application/vnd.strata.cache.v1
//!   config  application/vnd.strata.cache.config.v1+json
//!           {"version": 1, "records": [CacheRecord...]}   (canonical JSON)
//!   layers  each record's layer blob, with its own media type, once
//! ```
//!
//! A record is what `cache/<key>.json` holds (key, layer descriptor with
//! diff_id, when the step ran, its description and the inputs of its key),
//! without the local `hits` and `last_used`. In a registry the manifest is
//! tagged by `ref=`; in a directory (`type=local`) it is an OCI image
//! layout whose `index.json` lists it with `org.opencontainers.image.ref.name`
//! `latest`. Keys are the same on every machine (they depend on content,
//! never on paths or times), so a record found is a hit; its layer is
//! fetched only when a build uses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cache::CacheRecord;
use crate::digest::Digest;
use crate::error::PathError;
use crate::image::{ImageError, Reference, canonical_json};
use crate::registry::{self, Client, Progress, RegistryError, RegistryOptions};
use crate::store::Store;

/// The artifact type of a strata cache manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.strata.cache.v1";
/// The media type of the cache document (the manifest's config).
pub const CONFIG_TYPE: &str = "application/vnd.strata.cache.config.v1+json";
/// The format's version.
const VERSION: u32 = 1;

/// Where a cache goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `type=registry,ref=REF`.
    Registry(String),
    /// `type=local,dest=DIR` / `src=DIR`.
    Local(PathBuf),
}

/// `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    /// Where.
    pub location: Location,
    /// `mode=max`: every step; else only the image's own (`mode=min`).
    pub max: bool,
}

/// A `--cache-to` or `--cache-from` value that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum CacheSpecError {
    /// A field without `=`.
    #[error("invalid cache spec `{spec}`: `{field}` is not KEY=VALUE")]
    NotKeyValue {
        /// The whole value.
        spec: String,
        /// The field.
        field: String,
    },
    /// A `mode=` other than min or max.
    #[error("invalid --cache-to `{spec}`: mode is min or max, not `{mode}`")]
    Mode {
        /// The whole value.
        spec: String,
        /// The mode given.
        mode: String,
    },
    /// A key the flag does not know.
    #[error("invalid {flag} `{spec}`: unknown key `{key}`")]
    UnknownKey {
        /// `--cache-to` or `--cache-from`.
        flag: &'static str,
        /// The whole value.
        spec: String,
        /// The key.
        key: String,
    },
    /// A key the type needs (`type=`, `ref=`, `dest=` or `src=`).
    #[error("invalid cache spec `{spec}`: {key}= is missing")]
    Missing {
        /// The whole value.
        spec: String,
        /// The key.
        key: &'static str,
    },
    /// A `type=` other than registry or local.
    #[error("invalid cache spec `{spec}`: type is registry or local, not `{kind}`")]
    Type {
        /// The whole value.
        spec: String,
        /// The type given.
        kind: String,
    },
    /// A `ref=` that is not an image reference.
    #[error(transparent)]
    Reference(ImageError),
}

fn spec_fields(spec: &str) -> Result<BTreeMap<String, String>, CacheSpecError> {
    let mut fields = BTreeMap::new();
    for field in spec.split(',') {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| CacheSpecError::NotKeyValue {
                spec: spec.to_owned(),
                field: field.to_owned(),
            })?;
        fields.insert(key.to_owned(), value.to_owned());
    }
    Ok(fields)
}

impl CacheTo {
    /// Parse `type=registry,ref=REF[,mode=min|max]` or
    /// `type=local,dest=DIR[,mode=...]`.
    pub fn parse(spec: &str) -> Result<CacheTo, CacheSpecError> {
        let fields = spec_fields(spec)?;
        let max = match fields.get("mode").map(String::as_str) {
            None | Some("min") => false,
            Some("max") => true,
            Some(other) => {
                return Err(CacheSpecError::Mode {
                    spec: spec.to_owned(),
                    mode: other.to_owned(),
                });
            }
        };
        let location = location(spec, &fields, "dest")?;
        for key in fields.keys() {
            if ![
                "type",
                "ref",
                "dest",
                "mode",
                "oci-mediatypes",
                "compression",
            ]
            .contains(&key.as_str())
            {
                return Err(CacheSpecError::UnknownKey {
                    flag: "--cache-to",
                    spec: spec.to_owned(),
                    key: key.clone(),
                });
            }
        }
        Ok(CacheTo { location, max })
    }
}

/// Parse a `--cache-from` spec.
pub fn parse_from(spec: &str) -> Result<Location, CacheSpecError> {
    // buildx accepts a bare reference too.
    if !spec.contains('=') {
        return Ok(Location::Registry(spec.to_owned()));
    }
    let fields = spec_fields(spec)?;
    for key in fields.keys() {
        if !["type", "ref", "src"].contains(&key.as_str()) {
            return Err(CacheSpecError::UnknownKey {
                flag: "--cache-from",
                spec: spec.to_owned(),
                key: key.clone(),
            });
        }
    }
    location(spec, &fields, "src")
}

fn location(
    spec: &str,
    fields: &BTreeMap<String, String>,
    path_key: &'static str,
) -> Result<Location, CacheSpecError> {
    let missing = |key| CacheSpecError::Missing {
        spec: spec.to_owned(),
        key,
    };
    match fields.get("type").map(String::as_str) {
        Some("registry") => {
            let reference = fields.get("ref").ok_or_else(|| missing("ref"))?;
            Reference::parse(reference).map_err(CacheSpecError::Reference)?;
            Ok(Location::Registry(reference.clone()))
        }
        Some("local") => fields
            .get(path_key)
            .map(|path| Location::Local(PathBuf::from(path)))
            .ok_or_else(|| missing(path_key)),
        Some(other) => Err(CacheSpecError::Type {
            spec: spec.to_owned(),
            kind: other.to_owned(),
        }),
        None => Err(missing("type")),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Document {
    version: u32,
    records: Vec<CacheRecord>,
}

/// What was exported.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The manifest's digest.
    pub digest: Digest,
    /// Records in it.
    pub records: usize,
    /// Layers in it.
    pub layers: usize,
}

/// Export the records of `keys` (those the store has) to `to`.
pub fn export(
    store: &Store,
    keys: &[super::key::Key],
    to: &CacheTo,
    options: &RegistryOptions,
    progress: Progress<'_>,
) -> Result<Exported, RegistryError> {
    let mut records: Vec<CacheRecord> = Vec::new();
    for key in keys {
        if records.iter().any(|record| &record.key == key) {
            continue;
        }
        if let Some(mut record) = super::cache::get(store, key) {
            record.hits = 0;
            record.last_used = None;
            records.push(record);
        }
    }
    records.sort_by(|a, b| a.key.cmp(&b.key));
    let config = canonical_json(&Document {
        version: VERSION,
        records: records.clone(),
    });
    let config_digest = store.put_bytes(&config)?;
    let mut layers: Vec<serde_json::Value> = Vec::new();
    let mut blobs = vec![(config_digest.clone(), config.len() as u64)];
    for record in &records {
        if let Some(layer) = &record.layer
            && !blobs.iter().any(|(digest, _)| digest == &layer.digest)
        {
            blobs.push((layer.digest.clone(), layer.size));
            layers.push(serde_json::json!({
                "mediaType": layer.media_type,
                "digest": layer.digest.to_string(),
                "size": layer.size,
            }));
        }
    }
    let manifest = canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": registry::OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": CONFIG_TYPE,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layers,
    }));
    let digest = Digest::of(&manifest);
    match &to.location {
        Location::Registry(text) => {
            let (reference, repository, client) = registry::open(text, options)?;
            registry::push::upload_all(
                &client,
                store,
                &repository,
                &blobs,
                &Default::default(),
                progress,
            )?;
            let tag = reference.tag.clone().unwrap_or_else(|| "latest".to_owned());
            registry::push_manifest(
                &client,
                &repository,
                &tag,
                &manifest,
                registry::OCI_MANIFEST,
            )?;
        }
        Location::Local(dir) => {
            write_layout(store, dir, &blobs, &manifest, &digest)?;
        }
    }
    Ok(Exported {
        digest,
        records: records.len(),
        layers: blobs.len() - 1,
    })
}

/// Write an OCI layout holding the cache manifest and its blobs (those
/// already there are kept: they are content-addressed).
fn write_layout(
    store: &Store,
    dir: &Path,
    blobs: &[(Digest, u64)],
    manifest: &[u8],
    digest: &Digest,
) -> Result<(), RegistryError> {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir)
        .map_err(PathError::at::<RegistryError>("create", &blob_dir))?;
    let write_atomically = |path: &Path, bytes: &[u8]| -> Result<(), RegistryError> {
        Ok(crate::atomic::write(path, bytes, Default::default())?)
    };
    for (blob, _) in blobs {
        let target = blob_dir.join(blob.hex());
        if target.is_file() {
            continue;
        }
        let source = store.blob_path(blob);
        crate::atomic::write_with(&target, Default::default(), |file| {
            let mut blob = std::fs::File::open(&source)
                .map_err(PathError::at::<RegistryError>("copy a blob from", &source))?;
            std::io::copy(&mut blob, file)
                .map_err(PathError::at::<RegistryError>("copy a blob to", &target))?;
            Ok::<(), RegistryError>(())
        })?;
    }
    write_atomically(&blob_dir.join(digest.hex()), manifest)?;
    write_atomically(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": registry::OCI_INDEX,
        "manifests": [{
            "mediaType": registry::OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": digest.to_string(),
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "latest" },
        }],
    }));
    write_atomically(&dir.join("index.json"), &index)
}

/// Where an imported cache's layers come from.
enum Source {
    Registry {
        client: Box<Client>,
        repository: String,
    },
    Local(PathBuf),
}

/// A cache read by `--cache-from`: its records, and how to fetch a
/// layer when a build uses one.
pub struct Imported {
    records: BTreeMap<super::key::Key, CacheRecord>,
    source: Source,
    /// What it was read from, for messages.
    pub name: String,
}

impl std::fmt::Debug for Imported {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "Imported({}, {} records)",
            self.name,
            self.records.len()
        )
    }
}

/// Read the cache at `from`.
pub fn import(
    store: &Store,
    from: &Location,
    options: &RegistryOptions,
) -> Result<Imported, RegistryError> {
    let (manifest, source, name) = match from {
        Location::Registry(text) => {
            let (reference, repository, client) = registry::open(text, options)?;
            let wanted = registry::manifest_reference(&reference);
            let fetched = registry::pull::fetch_manifest(&client, &repository, &wanted)?;
            (
                fetched.bytes,
                Source::Registry {
                    client: Box::new(client),
                    repository,
                },
                text.clone(),
            )
        }
        Location::Local(dir) => {
            let index_path = dir.join("index.json");
            let index: registry::Manifest = serde_json::from_slice(&read_local(
                dir,
                Path::new("index.json"),
                MAX_LOCAL_DOCUMENT,
            )?)
            .map_err(|error| {
                RegistryError::Image(crate::image::ImageError::Format(format!(
                    "`{}` is not an OCI index: {error}",
                    index_path.display()
                )))
            })?;
            let entry = index.manifests.first().ok_or_else(|| {
                RegistryError::Image(crate::image::ImageError::Format(format!(
                    "`{}` lists no cache",
                    index_path.display()
                )))
            })?;
            let digest = entry.digest(&dir.display().to_string())?;
            let bytes = read_verified(dir, &digest)?;
            (bytes, Source::Local(dir.clone()), dir.display().to_string())
        }
    };
    let manifest: registry::Manifest =
        serde_json::from_slice(&manifest).map_err(|error| RegistryError::Protocol {
            reference: name.clone(),
            message: format!("the cache manifest is not valid: {error}"),
        })?;
    let config = manifest
        .config
        .filter(|config| config.media_type == CONFIG_TYPE)
        .ok_or_else(|| RegistryError::Protocol {
            reference: name.clone(),
            message: format!("not a strata cache (its config is not {CONFIG_TYPE})"),
        })?;
    let config_digest = config.digest(&name)?;
    let bytes = match &source {
        Source::Registry { client, repository } => {
            if !store.has_blob(&config_digest) {
                registry::pull::download_blob(
                    client,
                    store,
                    repository,
                    &config_digest,
                    config.size,
                    &|_| {},
                )?;
            }
            store.read_blob(&config_digest)?
        }
        Source::Local(dir) => read_verified(dir, &config_digest)?,
    };
    let document: Document =
        serde_json::from_slice(&bytes).map_err(|error| RegistryError::Protocol {
            reference: name.clone(),
            message: format!("the cache document is not valid: {error}"),
        })?;
    if document.version != VERSION {
        return Err(RegistryError::Protocol {
            reference: name,
            message: format!(
                "cache format version {} is not supported (this strata reads version {VERSION})",
                document.version
            ),
        });
    }
    Ok(Imported {
        records: document
            .records
            .into_iter()
            .map(|record| (record.key.clone(), record))
            .collect(),
        source,
        name,
    })
}

/// The largest index or cache record blob read from a local cache.
const MAX_LOCAL_DOCUMENT: u64 = 64 << 20;

/// Read `relative` in the local cache `dir`: resolved inside it (a link in
/// it never reaches a host file), a regular file (a fifo never blocks the
/// build), at most `limit` bytes.
fn read_local(dir: &Path, relative: &Path, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let root = crate::confined::Root::open(dir)?;
    root.read_file(relative, limit)?.ok_or_else(|| {
        RegistryError::from(PathError {
            operation: "read",
            path: dir.join(relative),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    })
}

fn read_verified(dir: &Path, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
    let relative = Path::new("blobs/sha256").join(digest.hex());
    let bytes = read_local(dir, &relative, MAX_LOCAL_DOCUMENT)?;
    let found = Digest::of(&bytes);
    if &found != digest {
        return Err(RegistryError::DigestMismatch {
            reference: dir.display().to_string(),
            what: "cache blob",
            expected: digest.clone(),
            found,
        });
    }
    Ok(bytes)
}

impl Imported {
    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record of `key`, as it is (for `strata cache explain`).
    pub(crate) fn peek(&self, key: &super::key::Key) -> Option<CacheRecord> {
        self.records.get(key).cloned()
    }

    /// The record of `key`, with its layer brought into the store; `None`
    /// if there is none or the layer cannot be had (the step then runs).
    pub(crate) fn take(&self, store: &Store, key: &super::key::Key) -> Option<CacheRecord> {
        let record = self.records.get(key)?;
        // A prune must not take the layer between its arrival and the
        // record that keeps it.
        let _writing = store.writing().ok()?;
        if let Some(layer) = &record.layer
            && !store.has_blob(&layer.digest)
        {
            let fetched = match &self.source {
                Source::Registry { client, repository } => registry::pull::download_blob(
                    client,
                    store,
                    repository,
                    &layer.digest,
                    layer.size,
                    &|_| {},
                )
                .map(drop),
                Source::Local(dir) => {
                    let relative = Path::new("blobs/sha256").join(layer.digest.hex());
                    let path = dir.join(&relative);
                    crate::confined::Root::open(dir)
                        .and_then(|root| root.open_regular(&relative))
                        .map_err(RegistryError::from)
                        .and_then(|found| match found {
                            crate::confined::Regular::File(file) => Ok(file),
                            _ => Err(RegistryError::from(PathError {
                                operation: "open",
                                path,
                                source: std::io::Error::new(
                                    std::io::ErrorKind::NotFound,
                                    "not a regular file there",
                                ),
                            })),
                        })
                        .and_then(|mut file| {
                            store
                                .put_blob_expecting(&mut file, &layer.digest)
                                .map(drop)
                                .map_err(RegistryError::from)
                        })
                }
            };
            fetched.ok()?;
        }
        super::cache::put(store, record).ok()?;
        Some(record.clone())
    }
}
