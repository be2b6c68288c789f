//! The layer unpacker against a fresh root, with a canary beside it.
//!
//! Each input describes a tar archive entry by entry (kinds, names and
//! link targets drawn from an alphabet of the dangerous ones: `..`, `.`,
//! absolute paths, whiteout names, the canary's own path), so that every
//! input is a valid archive and the fuzzer spends its time on the
//! unpacker's logic, not on tar checksums. After each input, nothing
//! outside the root may have changed: no new entry beside it, and the
//! canary's content, mode and mtime as they were.
#![no_main]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Entry {
    kind: u8,
    path: Vec<u8>,
    link: Vec<u8>,
    mode: u16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    overlay: bool,
    entries: Vec<Entry>,
}

const PARTS: [&str; 11] = [
    "a", "b", "..", ".", "", "d", ".wh.a", ".wh..wh..opq", ".wh..", ".wh...", "CANARY",
];

fn join(indices: &[u8], canary: &Path) -> String {
    let parts: Vec<String> = indices
        .iter()
        .take(6)
        .map(|index| match PARTS[*index as usize % PARTS.len()] {
            "CANARY" => canary.display().to_string(),
            part => part.to_owned(),
        })
        .collect();
    parts.join("/")
}

fn state(dir: &Path) -> Vec<(String, u32, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = if meta.is_file() {
            std::fs::read(&path).unwrap()
        } else {
            Vec::new()
        };
        out.push((path.display().to_string(), meta.mode(), meta.mtime(), content));
    }
    out
}

fuzz_target!(|input: Input| {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let canary = base.path().join("canary");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("file"), b"canary").unwrap();
    std::fs::set_permissions(canary.join("file"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = (state(base.path()), state(&canary));
    let mut builder = tar::Builder::new(Vec::new());
    for entry in input.entries.iter().take(24) {
        let mut header = tar::Header::new_gnu();
        let name = join(&entry.path, &canary);
        let link = join(&entry.link, &canary);
        let (kind, data): (tar::EntryType, &[u8]) = match entry.kind % 6 {
            0 => (tar::EntryType::Directory, b""),
            1 => (tar::EntryType::Regular, b"pwned"),
            2 => (tar::EntryType::Symlink, b""),
            3 => (tar::EntryType::Link, b""),
            4 => (tar::EntryType::Fifo, b""),
            _ => (tar::EntryType::Char, b""),
        };
        header.set_entry_type(kind);
        header.set_mode(u32::from(entry.mode) & 0o7777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1);
        header.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            let _ = builder.append_link(&mut header, &name, &link);
        } else {
            // Raw names (with `..`) go straight into the header.
            let bytes = name.as_bytes();
            if bytes.len() >= 100 {
                continue;
            }
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_cksum();
            let _ = builder.append(&header, data);
        }
    }
    let Ok(archive) = builder.into_inner() else {
        return;
    };
    let whiteouts = if input.overlay {
        strata_solver::layer::Whiteouts::Overlay
    } else {
        strata_solver::layer::Whiteouts::Apply
    };
    let _ = strata_solver::layer::unpack_with(&archive[..], &root, whiteouts);
    let after = (state(base.path()), state(&canary));
    assert_eq!(before.1, after.1, "the canary changed");
    // The root itself may change (its mtime, its mode from a `./` entry):
    // only compare what is beside it.
    let beside = |state: &[(String, u32, i64, Vec<u8>)]| -> Vec<String> {
        state.iter().map(|(path, ..)| path.clone()).collect()
    };
    assert_eq!(beside(&before.0), beside(&after.0), "an entry appeared beside the root");
});
