//! Pulling: reference → manifest (through an index, to the platform) →
//! config and layers into the store → an image record.

use std::io::Write;

use strata_frontend::graph::Platform;

use super::client::{Body, Client, RegistryOptions, Scope, error_codes, read_small};
use super::net::{self, Expect, ReadError};
use super::{
    DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, Descriptor, Manifest, OCI_INDEX, OCI_MANIFEST,
    Progress, RegistryError, Transfer,
};
use crate::digest::Digest;
use crate::layer::MEDIA_TYPE_TAR;
use crate::store::{ImageRecord, LayerRecord, Store};

/// `--pull`: when FROM images come from their registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Every time (a tag may have moved).
    Always,
    /// When the store does not have the image.
    #[default]
    Missing,
    /// Never: the store must have it.
    Never,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as the registry sent it.
pub(crate) struct Fetched {
    pub(crate) bytes: Vec<u8>,
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
}

/// `GET /v2/REPO/manifests/REF`, verified when `wanted` is a digest.
pub(crate) fn fetch_manifest(
    client: &Client,
    repository: &str,
    wanted: &str,
) -> Result<Fetched, RegistryError> {
    let path = format!("/v2/{repository}/manifests/{wanted}");
    let response = client.send(
        "GET",
        &path,
        &[("Accept", ACCEPT)],
        Body::Empty,
        &Scope::pull(repository),
    )?;
    let status = response.status().as_u16();
    if status == 404 {
        let body = read_small(response).unwrap_or_default();
        let codes = error_codes(&body);
        let what = if codes.iter().any(|code| code == "NAME_UNKNOWN") {
            format!("repository `{repository}`")
        } else if wanted.starts_with("sha256:") {
            format!("manifest {wanted} of repository `{repository}`")
        } else {
            format!("tag `{wanted}` of repository `{repository}`")
        };
        return Err(RegistryError::NotFound {
            reference: client.reference().to_owned(),
            host: client.host().to_owned(),
            what,
            detail: if codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", codes.join(", "))
            },
        });
    }
    if !(200..300).contains(&status) {
        return Err(client.status_error("GET", &path, response, "pull", 1));
    }
    let header_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned());
    let bytes = net::read_limited(response, net::MAX_MANIFEST, "manifests")
        .map_err(|error| client.read_error(format!("reading manifest {wanted}"), error))?;
    let digest = Digest::of(&bytes);
    if let Ok(expected) = wanted.parse::<Digest>()
        && expected != digest
    {
        return Err(RegistryError::DigestMismatch {
            reference: client.reference().to_owned(),
            what: "manifest",
            expected,
            found: digest,
        });
    }
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|error| {
        RegistryError::protocol(
            client.reference(),
            format!("manifest {wanted} is not JSON: {error}"),
        )
    })?;
    let media_type = parsed["mediaType"]
        .as_str()
        .map(str::to_owned)
        .or(header_type)
        .unwrap_or_default();
    let media_type = match media_type.as_str() {
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST => media_type,
        DOCKER_SCHEMA1 | "application/vnd.docker.distribution.manifest.v1+json" => {
            return Err(RegistryError::protocol(
                client.reference(),
                "the registry serves only a Docker schema 1 manifest, which strata does not support \
                 (push the image again with a current tool)",
            ));
        }
        // OCI allows a manifest without mediaType: tell by its shape.
        _ if parsed["manifests"].is_array() => OCI_INDEX.to_owned(),
        _ if parsed["config"].is_object() => OCI_MANIFEST.to_owned(),
        other => {
            return Err(RegistryError::protocol(
                client.reference(),
                format!("manifest {wanted} has unsupported media type `{other}`"),
            ));
        }
    };
    Ok(Fetched {
        bytes,
        media_type,
        digest,
    })
}

/// The index entry for `platform`, or why there is none.
fn select<'m>(
    reference: &str,
    index: &'m Manifest,
    platform: &Platform,
) -> Result<&'m Descriptor, RegistryError> {
    let offered = || {
        index.manifests.iter().map(|entry| {
            let spec = entry.platform.as_ref()?;
            Some((
                spec.os.as_str(),
                spec.architecture.as_str(),
                spec.variant.as_deref(),
            ))
        })
    };
    match crate::image::platform::select(offered(), platform) {
        Some(position) => Ok(&index.manifests[position]),
        None => Err(RegistryError::NoPlatform {
            reference: reference.to_owned(),
            platform: crate::image::platform::text(
                &platform.os,
                &platform.architecture,
                platform.variant.as_deref(),
            ),
            available: crate::image::platform::available(offered()),
        }),
    }
}

/// Counts bytes for progress as they are written.
struct Counting<'p, W> {
    inner: W,
    progress: Progress<'p>,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buffer)?;
        (self.progress)(Transfer::Bytes(written as u64));
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Download blob `digest` of `repository` into the store, verified: it
/// must be exactly `size` bytes (its descriptor's), checked as it streams,
/// so that a body without end stops at the first byte too many.
pub(crate) fn download_blob(
    client: &Client,
    store: &Store,
    repository: &str,
    digest: &Digest,
    size: u64,
    progress: Progress<'_>,
) -> Result<u64, RegistryError> {
    let path = format!("/v2/{repository}/blobs/{digest}");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.send_sized(
            "GET",
            &path,
            &[],
            Body::Empty,
            &Scope::pull(repository),
            size,
        )?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(RegistryError::NotFound {
                reference: client.reference().to_owned(),
                host: client.host().to_owned(),
                what: format!("blob {digest} of repository `{repository}`"),
                detail: String::new(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(client.status_error("GET", &path, response, "pull", attempt));
        }
        let mut temp = store.temp_blob()?;
        let copied = net::copy(
            response,
            &mut Counting {
                inner: &mut temp,
                progress,
            },
            Expect::Exactly(size),
        );
        match copied {
            Ok(_) => {}
            // The connection broke: try again (a temporary file is removed
            // when dropped). A timeout or a wrong size is not retried.
            Err(ReadError::Transport {
                retryable: true, ..
            }) if attempt < 3 => {
                drop(temp);
                continue;
            }
            Err(ReadError::Write(error)) => {
                return Err(crate::error::PathError {
                    operation: "write a blob",
                    path: temp.path().to_owned(),
                    source: error,
                }
                .into());
            }
            Err(error) => {
                return Err(client.read_error(format!("reading blob {digest}"), error));
            }
        }
        let written = temp.finish()?;
        if &written.digest != digest {
            return Err(RegistryError::DigestMismatch {
                reference: client.reference().to_owned(),
                what: "blob",
                expected: digest.clone(),
                found: written.digest.clone(),
            });
        }
        let size = written.size;
        written.commit(store)?;
        (progress)(Transfer::Done(digest));
        return Ok(size);
    }
}

/// Download `blobs` (digest, size) that the store lacks, a few at a time.
pub(crate) fn download_all(
    client: &Client,
    store: &Store,
    repository: &str,
    blobs: &[(Digest, u64)],
    progress: Progress<'_>,
) -> Result<(), RegistryError> {
    let mut missing = Vec::new();
    for (digest, size) in blobs {
        // Held first (by a leased store): one that is there now stays.
        store.hold_blob(digest)?;
        let present = store.has_blob(digest);
        (progress)(Transfer::Blob {
            digest,
            size: *size,
            present,
        });
        if !present && !missing.iter().any(|(known, _)| known == &digest) {
            missing.push((digest, *size));
        }
    }
    super::each_in_parallel(&missing, |(digest, size)| {
        download_blob(client, store, repository, digest, *size, progress).map(drop)
    })
}

/// An image manifest resolved for a platform, and the digest the registry
/// knows the reference by.
pub struct Resolved {
    /// The image manifest.
    pub manifest: Manifest,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// The digest the reference resolved to (the index's, if any).
    pub top: Digest,
}

/// Resolve `reference` to the image manifest for `platform`.
pub fn pull_manifest(
    client: &Client,
    repository: &str,
    wanted: &str,
    platform: &Platform,
) -> Result<Resolved, RegistryError> {
    let mut fetched = fetch_manifest(client, repository, wanted)?;
    let top = fetched.digest.clone();
    if fetched.media_type == OCI_INDEX || fetched.media_type == DOCKER_LIST {
        let index: Manifest = parse(client.reference(), &fetched.bytes)?;
        let entry = select(client.reference(), &index, platform)?;
        let digest = entry.digest(client.reference())?;
        fetched = fetch_manifest(client, repository, &digest.to_string())?;
        if fetched.media_type == OCI_INDEX || fetched.media_type == DOCKER_LIST {
            return Err(RegistryError::protocol(
                client.reference(),
                format!("index entry {digest} is an index again; strata resolves one level"),
            ));
        }
    }
    let manifest: Manifest = parse(client.reference(), &fetched.bytes)?;
    Ok(Resolved {
        manifest,
        bytes: fetched.bytes,
        media_type: fetched.media_type,
        digest: fetched.digest,
        top,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    reference: &str,
    bytes: &[u8],
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes)
        .map_err(|error| RegistryError::protocol(reference, format!("invalid manifest: {error}")))
}

/// Pull `text` into the store for `platform` and tag it as named (a
/// reference by digest only records the digest).
pub fn pull(
    store: &Store,
    text: &str,
    platform: &Platform,
    options: &RegistryOptions,
    progress: Progress<'_>,
) -> Result<ImageRecord, RegistryError> {
    // A build's pulls share its lease (the image stays until it ends).
    let lease = store.lease("pull")?;
    let record = pull_leased(lease.store(), text, platform, options, progress)?;
    lease.release()?;
    Ok(record)
}

fn pull_leased(
    store: &Store,
    text: &str,
    platform: &Platform,
    options: &RegistryOptions,
    progress: Progress<'_>,
) -> Result<ImageRecord, RegistryError> {
    let (reference, repository, client) = super::open(text, options)?;
    let wanted = super::manifest_reference(&reference);
    let resolved = pull_manifest(&client, &repository, &wanted, platform)?;
    let config = resolved.manifest.config.clone().ok_or_else(|| {
        RegistryError::protocol(text, format!("manifest {} has no config", resolved.digest))
    })?;
    let config_digest = config.digest(text)?;
    if config.size > net::MAX_CONFIG {
        return Err(RegistryError::protocol(
            text,
            format!(
                "the config {config_digest} of manifest {} is {} bytes, larger than the {} limit for image configs",
                resolved.digest,
                config.size,
                net::bytes(net::MAX_CONFIG)
            ),
        ));
    }
    let _writing = store.writing()?;
    let mut blobs = vec![(config_digest.clone(), config.size)];
    for layer in &resolved.manifest.layers {
        blobs.push((layer.digest(text)?, layer.size));
    }
    download_all(&client, store, &repository, &blobs, progress)?;
    let config_bytes = store.read_blob(&config_digest)?;
    let parsed: serde_json::Value = parse(text, &config_bytes)?;
    let diff_ids: Vec<Digest> = parsed["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(|id| id.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != resolved.manifest.layers.len() {
        return Err(RegistryError::protocol(
            text,
            format!(
                "manifest {} has {} layers but its config lists {} diff_ids",
                resolved.digest,
                resolved.manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in resolved.manifest.layers.iter().zip(diff_ids) {
        let uncompressed = layer.media_type == MEDIA_TYPE_TAR
            || layer.media_type == "application/vnd.docker.image.rootfs.diff.tar";
        layers.push(LayerRecord {
            digest: layer.digest(text)?,
            diff_id,
            size: layer.size,
            media_type: layer.media_type.clone(),
            diff_size: uncompressed.then_some(layer.size),
        });
    }
    store.put_blob_expecting(&mut resolved.bytes.as_slice(), &resolved.digest)?;
    let repo_digest = format!("{}@{}", reference.name, resolved.top);
    let mut repo_digests = store
        .index()?
        .images
        .get(&config_digest)
        .map(|image| image.repo_digests.clone())
        .unwrap_or_default();
    if !repo_digests.contains(&repo_digest) {
        repo_digests.push(repo_digest);
    }
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest: resolved.digest.clone(),
        manifest_size: resolved.bytes.len() as u64,
        config: config_digest,
        config_size: config_bytes.len() as u64,
        layers,
        created: parsed["created"].as_str().map(str::to_owned),
        manifest_media_type: (resolved.media_type != OCI_MANIFEST).then_some(resolved.media_type),
        repo_digests,
    };
    let tags: Vec<String> = match (&reference.tag, &reference.digest) {
        (Some(_), None) => vec![reference.to_string()],
        _ => Vec::new(),
    };
    store.hold_image(&record)?;
    store.record(&record, &tags)?;
    Ok(record)
}
