//! Registries (the OCI distribution API): pulling images, pushing them,
//! credentials.
//!
//! - [`Client`] talks to one registry host: it chooses https (or plain
//!   http, for loopback or `--tls-verify=false` only), answers the
//!   `WWW-Authenticate` challenge (bearer tokens per repository scope, or
//!   basic), and retries what is transient (connection failures, 5xx, 429
//!   with `Retry-After`) with backoff, and nothing else.
//! - [`pull`] resolves a reference (indexes to the platform), downloads
//!   what the store lacks in parallel, verifies every byte against its
//!   digest, and records the image only once every blob is in: an
//!   interrupted pull leaves complete blobs, which the next pull skips.
//! - [`push`] uploads what the registry lacks (HEAD first, cross-repository
//!   mounts where it can), then the manifest.
//! - [`auth`] reads docker's `config.json` (and credential helpers), and
//!   writes it for `strata login`.
//! - [`net`] holds the limits of every network read (timeouts, sizes,
//!   cancellation on signals), for registries and `ADD <url>` alike.

pub mod auth;
mod client;
pub(crate) mod net;
pub(crate) mod pull;
pub(crate) mod push;

pub use client::{Client, RegistryOptions, Scope};
pub use net::ReadError;
pub use pull::{PullPolicy, pull, pull_manifest};
pub use push::{push, push_manifest};

use crate::digest::Digest;
use crate::image::ImageError;
use crate::store::StoreError;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 1 (signed), which nothing should still serve.
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What a transfer is doing, for progress output.
#[derive(Debug, Clone, Copy)]
pub enum Transfer<'a> {
    /// A blob will be transferred (`present`: it need not be, it is there).
    Blob {
        /// Its digest.
        digest: &'a Digest,
        /// Its size.
        size: u64,
        /// Already in the store (pull) or the registry (push).
        present: bool,
    },
    /// A blob was mounted from another repository of the registry.
    Mounted {
        /// Its digest.
        digest: &'a Digest,
        /// The repository it came from.
        from: &'a str,
    },
    /// Bytes of a blob moved.
    Bytes(u64),
    /// A blob is complete.
    Done(&'a Digest),
}

/// Parse `text` and connect to its registry: the reference, its
/// repository there, and a client.
pub(crate) fn open(
    text: &str,
    options: &RegistryOptions,
) -> Result<(crate::image::Reference, String, Client), RegistryError> {
    let reference = crate::image::Reference::parse(text)?;
    let (host, repository) = reference.registry();
    let client = Client::connect(&host, text, options)?;
    Ok((reference, repository, client))
}

/// What to ask a registry's `manifests/` for: the digest if the
/// reference has one, else its tag.
pub(crate) fn manifest_reference(reference: &crate::image::Reference) -> String {
    match (&reference.digest, &reference.tag) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.clone(),
        (None, None) => "latest".to_owned(),
    }
}

/// Blobs transferred at once.
const PARALLEL: usize = 3;

/// Run `work` on each of `items`, [`PARALLEL`] at a time; the first error
/// stops the workers from taking more, and is returned.
pub(crate) fn each_in_parallel<T: Sync>(
    items: &[T],
    work: impl Fn(&T) -> Result<(), RegistryError> + Sync,
) -> Result<(), RegistryError> {
    let queue = std::sync::Mutex::new(items.iter());
    let failure: std::sync::Mutex<Option<RegistryError>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL.min(items.len()) {
            scope.spawn(|| {
                loop {
                    if failure.lock().expect("failure lock").is_some() {
                        return;
                    }
                    let Some(item) = queue.lock().expect("queue lock").next() else {
                        return;
                    };
                    if let Err(error) = work(item) {
                        failure.lock().expect("failure lock").get_or_insert(error);
                        return;
                    }
                }
            });
        }
    });
    match failure.into_inner().expect("failure lock") {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Where transfer events go (called from several threads).
pub type Progress<'p> = &'p (dyn Fn(Transfer<'_>) + Sync);

/// What went wrong talking to a registry. Every message names the
/// reference it was about.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made (after retries).
    #[error("cannot reach registry {host} for `{reference}`: {reason}")]
    Unreachable {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// The transport's error.
        reason: String,
    },
    /// A transfer failed half-way: a timeout, a body larger or shorter
    /// than it may be.
    #[error("`{reference}`: {operation} from registry {host} failed: {reason}")]
    Transfer {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// `GET /v2/...`, `reading blob sha256:...`.
        operation: String,
        /// What went wrong.
        reason: String,
    },
    /// SIGINT, SIGTERM or SIGHUP ended a transfer.
    #[error("`{reference}`: the transfer with registry {host} was interrupted by signal {signal}")]
    Interrupted {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// The signal.
        signal: i32,
    },
    /// 401: credentials missing or refused.
    #[error("`{reference}`: registry {host} refused access (401 Unauthorized): {hint}")]
    Unauthorized {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// What to do.
        hint: String,
    },
    /// 403.
    #[error("`{reference}`: registry {host} denied {action} (403 Forbidden){detail}")]
    Forbidden {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// `pull` or `push`.
        action: &'static str,
        /// The registry's own words.
        detail: String,
    },
    /// 404 on a manifest: the repository or the tag does not exist.
    #[error("`{reference}`: {what} not found in registry {host}{detail}")]
    NotFound {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// `repository \`x\``, `tag \`y\``, `manifest sha256:...`.
        what: String,
        /// The registry's own words.
        detail: String,
    },
    /// An index without the platform asked for.
    #[error("`{reference}` has no image for {platform}; it has: {available}")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// `os/arch[/variant]` wanted.
        platform: String,
        /// What the index offers.
        available: String,
    },
    /// Content that does not hash to its digest.
    #[error("`{reference}`: {what} does not match its digest: expected {expected}, got {found}")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// `blob`, `manifest`...
        what: &'static str,
        /// The digest asked for.
        expected: Digest,
        /// What the content hashes to.
        found: Digest,
    },
    /// 429 to the end.
    #[error(
        "`{reference}`: registry {host} is rate limiting requests (429 Too Many Requests); \
         gave up after {attempts} attempts{retry_after}"
    )]
    RateLimited {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// `, it asked to retry after Ns` when it said.
        retry_after: String,
    },
    /// Any other answer the protocol does not expect.
    #[error("`{reference}`: registry {host} answered {status} to {method} {path}{detail}")]
    Status {
        /// The reference.
        reference: String,
        /// `host[:port]`.
        host: String,
        /// The HTTP status.
        status: u16,
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The registry's own words.
        detail: String,
    },
    /// A document that is not what it should be.
    #[error("`{reference}`: {message}")]
    Protocol {
        /// The reference.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// Credentials could not be read or stored.
    #[error("{0}")]
    Credentials(String),
    /// A reference that does not parse, or a store failure.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl From<crate::error::PathError> for RegistryError {
    fn from(error: crate::error::PathError) -> Self {
        RegistryError::Image(error.into())
    }
}

impl From<StoreError> for RegistryError {
    fn from(error: StoreError) -> Self {
        RegistryError::Image(error.into())
    }
}

impl RegistryError {
    fn protocol(reference: &str, message: impl Into<String>) -> RegistryError {
        RegistryError::Protocol {
            reference: reference.to_owned(),
            message: message.into(),
        }
    }
}

/// A descriptor, as manifests and indexes carry them (tolerant: Docker's
/// and OCI's spellings are the same).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Its media type.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:...`.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// For index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    /// Annotations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// An index entry's platform.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct PlatformSpec {
    /// `linux`.
    #[serde(default)]
    pub os: String,
    /// `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A manifest or an index, read tolerantly.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// `schemaVersion`.
    #[serde(default)]
    pub schema_version: u32,
    /// Its media type, when it says.
    #[serde(default)]
    pub media_type: Option<String>,
    /// An image manifest's config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// An image manifest's layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// An index's manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Descriptor {
    /// The digest, parsed.
    pub fn digest(&self, reference: &str) -> Result<Digest, RegistryError> {
        self.digest.parse().map_err(|_| {
            RegistryError::protocol(
                reference,
                format!(
                    "unsupported digest `{}` (only sha256 is supported)",
                    self.digest
                ),
            )
        })
    }
}
