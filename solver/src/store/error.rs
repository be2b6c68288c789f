//! Errors of the store: each names the operation and the path or digest.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::error::PathError),
    /// Content that does not hash to what it claims.
    #[error("digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// What was expected.
        expected: Digest,
        /// What the content hashes to.
        found: Digest,
    },
    /// A stored blob whose content no longer matches its name.
    #[error("blob {digest} is corrupt: {detail}")]
    CorruptBlob {
        /// The blob.
        digest: Digest,
        /// What reading found.
        detail: String,
    },
    /// A blob in the store whose content no longer matches its digest
    /// (the disk, or a hand, changed it): named with what to do.
    #[error(
        "the blob `{}` is damaged ({detail}): run `strata system check --repair`, which \
         removes it and the images that use it, then pull, load or build them again",
        path.display()
    )]
    DamagedBlob {
        /// Where it is.
        path: PathBuf,
        /// What reading it found.
        detail: String,
    },
    /// A blob the index refers to is missing.
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    /// A store whose root another user owns (see `store::dirs`).
    #[error(
        "refusing to use the store `{}`: it is owned by {owner}, and you are {user}. \
         A store decides what strata reads, runs and deletes as you, so, as git refuses \
         a repository of dubious ownership, strata uses only your own. If you trust its \
         owner, pass --allow-foreign-store (or set STRATA_ALLOW_FOREIGN_STORE=1)",
        path.display()
    )]
    ForeignOwner {
        /// The store's root.
        path: PathBuf,
        /// Who owns it.
        owner: String,
        /// Who we are.
        user: String,
    },
    /// A directory of the store's layout that is not a real directory of
    /// the store's owner.
    #[error(
        "refusing to use the store directory `{}`: it is {what}. A store's directories \
         must be real directories of the store's owner: one replaced by a link or \
         someone else's could make strata write, read or delete outside the store",
        path.display()
    )]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
    /// A part of the image index that cannot be read (see
    /// `store::index`). The message ends with what to do, so what is wrong
    /// is part of it rather than a cause printed after it.
    #[error(
        "the image index `{}` is damaged ({detail}): run `strata system check --repair`",
        path.display()
    )]
    CorruptIndex {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

impl StoreError {
    /// A closure turning an `io::Error` into [`StoreError::Io`].
    pub(crate) fn io<'a>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> StoreError + 'a {
        crate::error::PathError::at(operation, path)
    }

    /// A failed verified read of the stored blob at `path`: damage when
    /// its digest did not match.
    pub(crate) fn stored_blob(source: io::Error, digest: &Digest, path: &Path) -> StoreError {
        match StoreError::mismatch_or_io(source, digest) {
            StoreError::CorruptBlob { detail, .. } => StoreError::DamagedBlob {
                path: path.to_owned(),
                detail,
            },
            other => other,
        }
    }

    /// A failed verified read: corruption when the digest did not match.
    pub(crate) fn mismatch_or_io(source: io::Error, digest: &Digest) -> StoreError {
        let mismatch = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::digest::Mismatch>());
        if let Some(mismatch) = mismatch {
            StoreError::CorruptBlob {
                digest: digest.clone(),
                detail: format!("expected {}, found {}", mismatch.expected, mismatch.found),
            }
        } else if source.kind() == io::ErrorKind::InvalidData {
            StoreError::CorruptBlob {
                digest: digest.clone(),
                detail: source.to_string(),
            }
        } else {
            StoreError::Io(crate::error::PathError {
                operation: "read a blob",
                path: PathBuf::from(digest.to_string()),
                source,
            })
        }
    }
}
