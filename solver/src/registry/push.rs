//! Pushing: blobs the registry lacks (monolithic `PUT` or chunked `PATCH`,
//! or a cross-repository mount), then the manifest.

use std::io::Read;

use super::client::{Body, Client, RegistryOptions, Scope, read_small};
use super::{Progress, RegistryError, Transfer};
use crate::digest::Digest;
use crate::image::Reference;
use crate::store::{ImageRecord, Store};

fn location(response: &ureq::http::Response<ureq::Body>) -> Option<String> {
    response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn with_query(url: &str, query: &str) -> String {
    if url.contains('?') {
        format!("{url}&{query}")
    } else {
        format!("{url}?{query}")
    }
}

/// Put blob `digest` into `repository`, unless it is there. `mount_from`:
/// a repository of the same registry that has it.
pub(crate) fn upload_blob(
    client: &Client,
    store: &Store,
    repository: &str,
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
    progress: Progress<'_>,
) -> Result<(), RegistryError> {
    let scope = Scope::push(repository);
    let blob_path = format!("/v2/{repository}/blobs/{digest}");
    let head = client.send("HEAD", &blob_path, &[], Body::Empty, &scope)?;
    if head.status().is_success() {
        (progress)(Transfer::Blob {
            digest,
            size,
            present: true,
        });
        return Ok(());
    }
    let uploads = format!("/v2/{repository}/blobs/uploads/");
    let mut started = None;
    if let Some(source) = mount_from.filter(|source| *source != repository) {
        let response = client.send(
            "POST",
            &format!("{uploads}?mount={digest}&from={source}"),
            &[("Content-Length", "0")],
            Body::Empty,
            &Scope::mount(repository, source),
        )?;
        match response.status().as_u16() {
            201 => {
                (progress)(Transfer::Mounted {
                    digest,
                    from: source,
                });
                return Ok(());
            }
            // Not mounted: an upload was started instead.
            202 => started = location(&response),
            _ => {}
        }
    }
    (progress)(Transfer::Blob {
        digest,
        size,
        present: false,
    });
    let mut url = match started {
        Some(url) => url,
        None => {
            let response = client.send(
                "POST",
                &uploads,
                &[("Content-Length", "0")],
                Body::Empty,
                &scope,
            )?;
            if response.status().as_u16() != 202 {
                return Err(client.status_error("POST", &uploads, response, "push", 1));
            }
            location(&response).ok_or_else(|| {
                RegistryError::protocol(
                    client.reference(),
                    "the registry started an upload without a Location",
                )
            })?
        }
    };
    let path = store.blob_path(digest);
    if !path.is_file() {
        return Err(crate::store::StoreError::MissingBlob(digest.clone()).into());
    }
    let chunked = client
        .options()
        .chunk_size
        .filter(|chunk| *chunk > 0 && size > *chunk);
    if let Some(chunk) = chunked {
        let mut file = std::fs::File::open(&path)
            .map_err(crate::error::PathError::at::<RegistryError>("open", &path))?;
        let mut buffer = vec![0u8; usize::try_from(chunk).unwrap_or(usize::MAX).min(64 << 20)];
        let mut offset = 0u64;
        loop {
            let mut filled = 0;
            while filled < buffer.len() {
                let read = file
                    .read(&mut buffer[filled..])
                    .map_err(crate::error::PathError::at::<RegistryError>("read", &path))?;
                if read == 0 {
                    break;
                }
                filled += read;
            }
            if filled == 0 {
                break;
            }
            let range = format!("{}-{}", offset, offset + filled as u64 - 1);
            let length = filled.to_string();
            let response = client.send(
                "PATCH",
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                    ("Content-Length", &length),
                ],
                Body::Bytes(&buffer[..filled]),
                &scope,
            )?;
            if response.status().as_u16() != 202 {
                return Err(client.status_error("PATCH", &uploads, response, "push", 1));
            }
            url = location(&response).unwrap_or(url);
            offset += filled as u64;
            (progress)(Transfer::Bytes(filled as u64));
        }
        let response = client.send(
            "PUT",
            &with_query(&url, &format!("digest={digest}")),
            &[("Content-Length", "0")],
            Body::Empty,
            &scope,
        )?;
        if response.status().as_u16() != 201 {
            return Err(client.status_error("PUT", &uploads, response, "push", 1));
        }
    } else {
        let response = client.send(
            "PUT",
            &with_query(&url, &format!("digest={digest}")),
            &[("Content-Type", "application/octet-stream")],
            Body::File(&path),
            &scope,
        )?;
        if response.status().as_u16() != 201 {
            return Err(client.status_error("PUT", &uploads, response, "push", 1));
        }
        (progress)(Transfer::Bytes(size));
    }
    (progress)(Transfer::Done(digest));
    Ok(())
}

/// Upload `blobs` (digest, size), a few at a time; `mounts` names, for
/// some, a repository of the same registry that has them.
pub(crate) fn upload_all(
    client: &Client,
    store: &Store,
    repository: &str,
    blobs: &[(Digest, u64)],
    mounts: &std::collections::HashMap<Digest, String>,
    progress: Progress<'_>,
) -> Result<(), RegistryError> {
    let mut unique: Vec<&(Digest, u64)> = Vec::new();
    for blob in blobs {
        if !unique.iter().any(|known| known.0 == blob.0) {
            unique.push(blob);
        }
    }
    super::each_in_parallel(&unique, |(digest, size)| {
        let mount_from = mounts.get(digest).map(String::as_str);
        upload_blob(
            client, store, repository, digest, *size, mount_from, progress,
        )
    })
}

/// For each blob of the images the store knows to be in other repositories
/// of `host` (pulled from or pushed to there), one such repository: the
/// registry can mount the blob from it instead of receiving it again.
fn mount_sources(
    store: &Store,
    host: &str,
    repository: &str,
) -> Result<std::collections::HashMap<Digest, String>, RegistryError> {
    let mut sources = std::collections::HashMap::new();
    for image in store.index()?.images.values() {
        let source = image.repo_digests.iter().find_map(|known| {
            let name = known.split('@').next()?;
            let (known_host, known_repository) = Reference::parse(name).ok()?.registry();
            (known_host == host && known_repository != repository).then_some(known_repository)
        });
        if let Some(source) = source {
            for digest in image.blobs().skip(1) {
                sources
                    .entry(digest.clone())
                    .or_insert_with(|| source.clone());
            }
        }
    }
    Ok(sources)
}

/// `PUT` a manifest under `tag_or_digest`; returns its digest, checked
/// against what the registry says it stored.
pub fn push_manifest(
    client: &Client,
    repository: &str,
    tag_or_digest: &str,
    bytes: &[u8],
    media_type: &str,
) -> Result<Digest, RegistryError> {
    let path = format!("/v2/{repository}/manifests/{tag_or_digest}");
    let response = client.send(
        "PUT",
        &path,
        &[("Content-Type", media_type)],
        Body::Bytes(bytes),
        &Scope::push(repository),
    )?;
    if response.status().as_u16() != 201 && !response.status().is_success() {
        return Err(client.status_error("PUT", &path, response, "push", 1));
    }
    let digest = Digest::of(bytes);
    let said = response
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<Digest>().ok());
    let _ = read_small(response);
    if let Some(said) = said
        && said != digest
    {
        return Err(RegistryError::DigestMismatch {
            reference: client.reference().to_owned(),
            what: "pushed manifest",
            expected: digest,
            found: said,
        });
    }
    Ok(digest)
}

/// Push `image` to `text` (`[registry/]name[:tag]`); returns the manifest
/// digest, which is recorded in the image's repo digests.
pub fn push(
    store: &Store,
    image: &ImageRecord,
    text: &str,
    options: &RegistryOptions,
    progress: Progress<'_>,
) -> Result<Digest, RegistryError> {
    let (reference, repository, client) = super::open(text, options)?;
    // What is pushed stays while it is read.
    let lease = store.lease("push")?;
    let store = lease.store();
    store.hold_image(image)?;
    let host = client.host().to_owned();
    let mut blobs = vec![(image.config.clone(), image.config_size)];
    blobs.extend(
        image
            .layers
            .iter()
            .map(|layer| (layer.digest.clone(), layer.size)),
    );
    let mounts = mount_sources(store, &host, &repository)?;
    upload_all(&client, store, &repository, &blobs, &mounts, progress)?;
    let bytes = store.read_blob(&image.manifest)?;
    let target = match (&reference.tag, &reference.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(digest)) => digest.to_string(),
        (None, None) => "latest".to_owned(),
    };
    let digest = push_manifest(&client, &repository, &target, &bytes, image.manifest_type())?;
    let repo_digest = format!("{}@{digest}", reference.name);
    let id = image.id.clone();
    store.update(|index| {
        if let Some(record) = index.images.get_mut(&id)
            && !record.repo_digests.contains(&repo_digest)
        {
            record.repo_digests.push(repo_digest.clone());
        }
        Ok::<_, crate::store::StoreError>(())
    })?;
    lease.release()?;
    Ok(digest)
}
