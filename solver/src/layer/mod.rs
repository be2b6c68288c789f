//! Layers: directory trees to deterministic tar blobs, and tar blobs back to
//! trees, safely.
//!
//! # Writing ([`write_layer`])
//!
//! The same tree always gives the same bytes: entries in name order, numeric
//! owners only, no user or group names, modes and xattrs kept, mtimes
//! clamped to `SOURCE_DATE_EPOCH` when given, PAX records for long names and
//! xattrs. The uncompressed digest (the diff_id) and the compressed digest
//! (the blob) are computed in the same single pass that writes the blob, so
//! memory does not grow with the layer.
//!
//! An overlayfs directory is translated as it is written: a whiteout
//! (character device 0/0, or an empty file with an `overlay.whiteout`
//! xattr) becomes `.wh.<name>`, an opaque directory
//! (`trusted.overlay.opaque` or `user.overlay.opaque` = `y`) gets a
//! `.wh..wh..opq` entry.
//!
//! # Reading ([`unpack`])
//!
//! Applies a layer onto a directory: whiteouts delete, opaque markers empty
//! a directory. Nothing in the archive can reach outside the target: `..`
//! that would climb out is refused, absolute names are taken relative to the
//! target, symlinks on an entry's way resolve inside the target, and the
//! entry itself is never followed (see `unpack.rs`). The stream's digest is
//! computed on the way, for the caller to check against the diff_id.

mod blob;
mod guard;
pub(crate) mod sparse;
mod unpack;
mod write;

/// The diff_id of an empty layer (the 1,024 zero bytes that end a tar),
/// which every RUN that changed nothing has, as in BuildKit and docker.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

pub use blob::store_layer;
pub use unpack::{
    OVERLAY_OPAQUE_XATTR, OVERLAY_WHITEOUT_XATTR, UnpackError, UnpackReport, Whiteouts, unpack,
    unpack_into, unpack_into_as, unpack_with,
};
pub use write::{Compression, LayerError, WrittenLayer, write_layer, write_layer_with_owners};
pub(crate) use write::{is_opaque, is_overlay_xattr, is_xattr_whiteout};

/// Owners (uid, gid) by path relative to a layer's root, overriding what
/// the files on disk show (see [`write_layer`]).
pub type Owners = std::collections::BTreeMap<std::path::PathBuf, (u32, u32)>;

/// OCI's name for an uncompressed layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI's name for a gzip layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI's name for a zstd layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The prefix of whiteout entries.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
