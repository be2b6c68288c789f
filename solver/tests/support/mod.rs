//! Test helpers shared by the solver's integration tests and the
//! workspace's `tests/it` binary: one copy of each.
//!
//! Each `solver/tests/*.rs` is a crate of its own and declares `mod
//! support;` (Cargo builds no test from a subdirectory of `tests/`); the
//! `it` binary's `support` module includes this file by `#[path]`. A file
//! rather than a dev-only crate: a handful of functions do not need a
//! workspace member, and the solver, at the bottom of the dependency
//! graph, is where both can reach it.

// Each crate that includes this uses some of the helpers, not all.
#![allow(dead_code)]

/// Whether the tests run as root.
pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|meta| meta.uid() == 0)
        .unwrap_or(false)
}

/// A GNU tar header for `name` of type `kind`: mode 0644, owned by root,
/// mtime 0 (its size and checksum are left to [`block`]).
pub(crate) fn gnu_header(name: &str, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// A GNU sparse header for `name`, a file `real` bytes long whose last 512
/// bytes are data (the block to follow it) and the rest a hole.
pub(crate) fn sparse_tail(name: &str, real: u64) -> tar::Header {
    let mut header = gnu_header(name, tar::EntryType::GNUSparse);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.realsize = *format!("{real:011o}\0").as_bytes().first_chunk().unwrap();
    gnu.sparse[0].offset = *format!("{:011o}\0", real - 512)
        .as_bytes()
        .first_chunk()
        .unwrap();
    gnu.sparse[0].numbytes = *format!("{:011o}\0", 512).as_bytes().first_chunk().unwrap();
    header
}

/// One raw header block (with its size and checksum) and its data, padded.
pub(crate) fn block(header: &mut tar::Header, data: &[u8]) -> Vec<u8> {
    header.set_size(data.len() as u64);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}
