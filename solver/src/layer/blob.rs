//! A tree written as a layer blob straight into the store: hashed and
//! compressed on the caller's thread, copied to disk on another
//! ([`BackgroundWriter`]), then committed under its digest.

use std::path::{Path, PathBuf};

use super::{Compression, LayerError, Owners, write_layer_with_owners};
use crate::store::{BackgroundWriter, LayerRecord, Store};

/// Bytes a layer write goes between syncs to disk.
const SYNC_EVERY: u64 = 64 << 20;

/// Write the tree under `dir` as a layer blob in the store.
///
/// `owners` overrides the owners read from disk (see
/// [`write_layer_with_owners`]). Also returns what tar cannot hold
/// (sockets), left out.
pub fn store_layer(
    store: &Store,
    dir: &Path,
    compression: Compression,
    epoch: Option<u64>,
    owners: &Owners,
) -> Result<(LayerRecord, Vec<PathBuf>), LayerError> {
    let (file, temp) = store.temp_file()?;
    // Hash and compress here; copy to disk on another thread, which also
    // starts the disk writing every 64 MiB instead of all at the final sync.
    let sink = BackgroundWriter::with_checkpoint(
        file,
        SYNC_EVERY,
        Box::new(|file: &mut fs_err::File| file.sync_data()),
    );
    let outcome = write_layer_with_owners(dir, compression, epoch, owners, sink);
    let (written, background) = match outcome {
        Ok(result) => result,
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    // The last piece: the background writer's queue is drained now.
    crate::fault::point(crate::fault::Kind::Write, &temp);
    let file = match background.finish() {
        Ok(file) => file,
        Err(source) => {
            let _ = std::fs::remove_file(&temp);
            return Err(LayerError::Io(crate::error::PathError {
                operation: "write a layer",
                path: temp,
                source,
            }));
        }
    };
    // Its snapshot is held (by a leased store's lease) before a caller
    // moves the tree it was written from into place as one.
    store.hold_snapshot(&written.diff_id)?;
    store.commit_temp(file, &temp, &written.digest)?;
    let record = LayerRecord {
        digest: written.digest,
        diff_id: written.diff_id,
        size: written.size,
        media_type: written.media_type.to_owned(),
        diff_size: Some(written.diff_size),
    };
    Ok((record, written.skipped))
}
