//! Bytes on their way into the store: written to a temporary file while
//! hashed, then committed as a blob (or kept as a file), and removed if
//! dropped on an error path. One place for what every writer needs.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::{Store, StoreError};
use crate::digest::{Digest, HashingWriter};

/// A temporary file being written and hashed. See [`Store::temp_blob`].
pub struct TempBlob {
    writer: Option<HashingWriter<io::BufWriter<fs::File>>>,
    path: PathBuf,
}

/// A finished temporary file: its digest and size are known.
pub struct WrittenTemp {
    /// The digest of what was written.
    pub digest: Digest,
    /// How many bytes were written.
    pub size: u64,
    file: Option<fs::File>,
    path: PathBuf,
}

impl Store {
    /// Start writing bytes that may become a blob.
    pub fn temp_blob(&self) -> Result<TempBlob, StoreError> {
        let (file, path) = self.temp_file()?;
        Ok(TempBlob {
            writer: Some(HashingWriter::new(io::BufWriter::with_capacity(
                1 << 20,
                file,
            ))),
            path,
        })
    }
}

impl TempBlob {
    /// The temporary file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush, and learn the digest and size.
    pub fn finish(mut self) -> Result<WrittenTemp, StoreError> {
        let writer = self.writer.take().expect("finished once");
        let (digest, size, buffered) = writer.finish();
        let path = std::mem::take(&mut self.path);
        // The last piece: what is still buffered goes out now.
        crate::fault::point(crate::fault::Kind::Write, &path);
        let file = buffered.into_inner().map_err(|error| {
            let _ = std::fs::remove_file(&path);
            crate::error::PathError {
                operation: "write a blob",
                path: path.clone(),
                source: error.into_error(),
            }
        })?;
        Ok(WrittenTemp {
            digest,
            size,
            file: Some(file),
            path,
        })
    }
}

impl Write for TempBlob {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not finished").write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not finished").flush()
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl WrittenTemp {
    /// Sync it and move it into place as the blob of its digest.
    pub fn commit(mut self, store: &Store) -> Result<(), StoreError> {
        let file = self.file.take().expect("committed once");
        store.commit_temp(file, &self.path, &self.digest)
    }

    /// Keep it as a plain temporary file (the caller removes it).
    pub fn keep(mut self) -> PathBuf {
        self.file.take();
        std::mem::take(&mut self.path)
    }
}

impl Drop for WrittenTemp {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
