//! Layer writing and unpacking on real files: determinism, a full round trip,
//! whiteouts, and archives built to escape.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use strata_solver::layer::{Compression, UnpackError, unpack, write_layer};

mod support;
use support::{block, gnu_header, is_root, sparse_tail};

/// A tree with every kind of entry the writer must keep.
fn sample_tree(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/deep/er")).unwrap();
    std::fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(
        root.join("bin/tool"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::write(root.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::hard_link(root.join("bin/tool"), root.join("bin/tool-again")).unwrap();
    symlink("tool", root.join("bin/relative-link")).unwrap();
    symlink("/bin/tool", root.join("bin/absolute-link")).unwrap();
    let long_name = format!("etc/deep/er/{}", "n".repeat(150));
    std::fs::write(root.join(&long_name), b"long").unwrap();
    symlink("x".repeat(120), root.join("etc/long-target")).unwrap();
    xattr::set(root.join("etc/passwd"), "user.strata.test", b"value").unwrap();
    std::fs::set_permissions(
        root.join("etc/deep"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    if is_root() {
        std::os::unix::fs::lchown(root.join("etc/passwd"), Some(1000), Some(1001)).unwrap();
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    owner: (u32, u32),
    content: Vec<u8>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Every entry under `root`: type, mode, owner, content or link target, xattrs.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let (kind, content) = if meta.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else if meta.file_type().is_symlink() {
                (
                    "symlink",
                    std::fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else {
                ("file", std::fs::read(&path).unwrap())
            };
            let xattrs = xattr::list(&path)
                .unwrap()
                .map(|name| {
                    let value = xattr::get(&path, &name).unwrap().unwrap_or_default();
                    (name.to_string_lossy().into_owned(), value)
                })
                .collect();
            let mode = if kind == "symlink" {
                0
            } else {
                meta.mode() & 0o7777
            };
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                Entry {
                    kind,
                    mode,
                    owner: (meta.uid(), meta.gid()),
                    content,
                    xattrs,
                },
            );
        }
    }
    out
}

fn layer_bytes(
    dir: &Path,
    compression: Compression,
    epoch: Option<u64>,
) -> (strata_solver::layer::WrittenLayer, Vec<u8>) {
    write_layer(dir, compression, epoch, Vec::new()).unwrap()
}

#[test]
fn layers_are_deterministic_across_runs_and_compressions() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let mut diff_ids = Vec::new();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (first, first_bytes) = layer_bytes(dir.path(), compression, Some(0));
        let (second, second_bytes) = layer_bytes(dir.path(), compression, Some(0));
        assert_eq!(
            first_bytes, second_bytes,
            "{compression:?} is byte-identical"
        );
        assert_eq!(first, second);
        assert_eq!(first.size, first_bytes.len() as u64);
        assert_eq!(
            first.digest,
            strata_solver::digest::Digest::of(&first_bytes)
        );
        diff_ids.push(first.diff_id);
    }
    assert!(
        diff_ids.windows(2).all(|pair| pair[0] == pair[1]),
        "one diff_id whatever the compression"
    );
    // The uncompressed blob is the tar: its digest is the diff_id.
    let (plain, _) = layer_bytes(dir.path(), Compression::None, Some(0));
    assert_eq!(plain.digest, plain.diff_id);
}

#[test]
fn round_trip_keeps_everything() {
    let source = tempfile::tempdir().unwrap();
    sample_tree(source.path());
    let (_, tar) = layer_bytes(source.path(), Compression::None, None);
    let target = tempfile::tempdir().unwrap();
    let report = unpack(&tar[..], target.path()).unwrap();
    assert!(report.skipped_devices.is_empty());
    assert_eq!(snapshot(source.path()), snapshot(target.path()));
    // The hardlink is a hardlink again.
    let first = std::fs::metadata(target.path().join("bin/tool")).unwrap();
    let second = std::fs::metadata(target.path().join("bin/tool-again")).unwrap();
    assert_eq!(first.ino(), second.ino());
    // mtimes survive.
    let source_mtime = std::fs::metadata(source.path().join("etc/passwd"))
        .unwrap()
        .mtime();
    assert_eq!(
        std::fs::metadata(target.path().join("etc/passwd"))
            .unwrap()
            .mtime(),
        source_mtime
    );
}

#[test]
fn tar_entries_are_sorted_with_pax_for_long_names_and_clamped_times() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (_, tar_bytes) = layer_bytes(dir.path(), Compression::None, Some(1_000));
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        assert!(entry.header().mtime().unwrap() <= 1_000);
        assert_eq!(entry.header().username().unwrap(), Some(""));
        names.push(entry.path().unwrap().display().to_string());
    }
    assert_eq!(
        names[..4],
        ["bin/", "bin/absolute-link", "bin/relative-link", "bin/tool"]
    );
    assert!(
        names.contains(&format!("etc/deep/er/{}", "n".repeat(150))),
        "PAX path kept the long name"
    );
}

/// Create an overlayfs whiteout (a 0/0 character device) with mknod(1).
fn make_whiteout(path: &Path) {
    let status = std::process::Command::new("mknod")
        .arg(path)
        .args(["c", "0", "0"])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn overlay_whiteouts_become_oci_whiteouts_and_apply() {
    if !is_root() {
        #[expect(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!("skipped: making an overlay whiteout (mknod) needs root");
        }
        return;
    }
    // The base: a file to delete, a directory to make opaque.
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("var/cache")).unwrap();
    std::fs::write(base.path().join("var/cache/old"), b"old").unwrap();
    std::fs::write(base.path().join("gone"), b"bye").unwrap();
    std::fs::write(base.path().join("kept"), b"kept").unwrap();
    // An overlay upper: `gone` deleted, `var/cache` replaced.
    let upper = tempfile::tempdir().unwrap();
    make_whiteout(&upper.path().join("gone"));
    std::fs::create_dir_all(upper.path().join("var/cache")).unwrap();
    xattr::set(
        upper.path().join("var/cache"),
        "trusted.overlay.opaque",
        b"y",
    )
    .unwrap();
    std::fs::write(upper.path().join("var/cache/new"), b"new").unwrap();

    let (_, tar_bytes) = layer_bytes(upper.path(), Compression::None, Some(0));
    let names: Vec<String> = tar::Archive::new(&tar_bytes[..])
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            ".wh.gone",
            "var/",
            "var/cache/",
            "var/cache/.wh..wh..opq",
            "var/cache/new"
        ]
    );

    let report = unpack(&tar_bytes[..], base.path()).unwrap();
    assert_eq!(report.whiteouts, 2);
    assert!(!base.path().join("gone").exists());
    assert!(!base.path().join("var/cache/old").exists());
    assert_eq!(
        std::fs::read(base.path().join("var/cache/new")).unwrap(),
        b"new"
    );
    assert_eq!(std::fs::read(base.path().join("kept")).unwrap(), b"kept");
}

// --- Archives built to escape -------------------------------------------

/// A tar entry with a raw name (no sanitising, unlike `tar::Builder`).
fn raw_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

struct Attack {
    /// The directory unpacked into.
    target: tempfile::TempDir,
    /// A directory beside it that nothing may touch.
    outside: tempfile::TempDir,
}

impl Attack {
    fn new() -> Self {
        let attack = Attack {
            target: tempfile::tempdir().unwrap(),
            outside: tempfile::tempdir().unwrap(),
        };
        let precious = attack.outside.path().join("precious");
        std::fs::write(&precious, b"untouched").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
        attack
    }

    fn run(
        &self,
        build: impl FnOnce(&mut tar::Builder<Vec<u8>>, &Path),
    ) -> Result<(), UnpackError> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder, self.outside.path());
        let bytes = builder.into_inner().unwrap();
        unpack(&bytes[..], self.target.path()).map(|_| ())
    }

    fn outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.outside.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["precious"], "nothing new outside the target");
        let precious = self.outside.path().join("precious");
        assert_eq!(std::fs::read(&precious).unwrap(), b"untouched");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&precious).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "mode kept");
        assert_ne!(meta.mtime(), 0, "time kept");
        assert_ne!(meta.mtime(), 1, "time kept");
    }
}

#[test]
fn dot_dot_entries_are_refused() {
    let attack = Attack::new();
    let error = attack
        .run(|builder, _| raw_entry(builder, "a/../../evil", tar::EntryType::Regular, None, b"x"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "refusing `a/../../evil`: the path leaves the target directory"
    );
    attack.outside_untouched();
    assert!(!attack.target.path().parent().unwrap().join("evil").exists());
}

#[test]
fn absolute_names_stay_inside() {
    let attack = Attack::new();
    let outside = attack.outside.path().join("precious").display().to_string();
    attack
        .run(|builder, _| {
            raw_entry(
                builder,
                &outside,
                tar::EntryType::Regular,
                None,
                b"overwritten?",
            )
        })
        .unwrap();
    attack.outside_untouched();
    let contained = attack.target.path().join(outside.trim_start_matches('/'));
    assert_eq!(std::fs::read(contained).unwrap(), b"overwritten?");
}

#[test]
fn an_absolute_symlink_on_the_way_resolves_inside_the_target() {
    let attack = Attack::new();
    // `link` names the outside directory's path, which inside the target
    // does not exist: the entry fails, and nothing is made outside.
    let error = attack
        .run(|builder, outside| {
            raw_entry(
                builder,
                "link",
                tar::EntryType::Symlink,
                Some(&outside.display().to_string()),
                b"",
            );
            raw_entry(
                builder,
                "link/precious",
                tar::EntryType::Regular,
                None,
                b"pwned",
            );
        })
        .unwrap_err();
    assert!(
        error.to_string().starts_with("failed to resolve `"),
        "{error}"
    );
    assert!(error.to_string().ends_with("/link`"), "{error}");
    attack.outside_untouched();
}

#[test]
fn a_relative_symlink_climbing_out_stops_at_the_target() {
    let attack = Attack::new();
    attack
        .run(|builder, _| {
            raw_entry(
                builder,
                "up",
                tar::EntryType::Symlink,
                Some("../../../../../../.."),
                b"",
            );
            raw_entry(
                builder,
                "up/tmp/evil",
                tar::EntryType::Regular,
                None,
                b"contained",
            );
        })
        .unwrap();
    attack.outside_untouched();
    // `..` stops at the target's root, as it does at a container's `/`.
    assert_eq!(
        std::fs::read(attack.target.path().join("tmp/evil")).unwrap(),
        b"contained"
    );
}

#[test]
fn a_directory_replaced_by_a_symlink_cannot_be_written_through() {
    let attack = Attack::new();
    let error = attack
        .run(|builder, outside| {
            raw_entry(builder, "dir/", tar::EntryType::Directory, None, b"");
            raw_entry(
                builder,
                "dir",
                tar::EntryType::Symlink,
                Some(&outside.display().to_string()),
                b"",
            );
            raw_entry(
                builder,
                "dir/precious",
                tar::EntryType::Regular,
                None,
                b"pwned",
            );
        })
        .unwrap_err();
    assert!(
        error.to_string().starts_with("failed to resolve `"),
        "{error}"
    );
    attack.outside_untouched();
}

/// The tar symlink-chmod class: a directory entry whose mode and time are
/// applied at the end, after a later entry made it a symlink to a host
/// file.
#[test]
fn a_directory_mode_is_never_applied_through_a_later_symlink() {
    let attack = Attack::new();
    let precious = attack.outside.path().join("precious").display().to_string();
    attack
        .run(|builder, _| {
            let mut header = tar::Header::new_ustar();
            header.set_path("d/").unwrap();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o4777);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1);
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, &b""[..]).unwrap();
            raw_entry(builder, "d", tar::EntryType::Symlink, Some(&precious), b"");
        })
        .unwrap();
    attack.outside_untouched();
    assert_eq!(
        std::fs::read_link(attack.target.path().join("d")).unwrap(),
        Path::new(&precious)
    );
}

#[test]
fn whiteouts_name_only_entries_of_their_own_directory() {
    for name in [".wh..", ".wh...", "a/.wh..", "a/.wh.."] {
        let attack = Attack::new();
        // A canary beside the target, where `target/..` would reach.
        let error = attack
            .run(|builder, _| {
                raw_entry(builder, "a/", tar::EntryType::Directory, None, b"");
                raw_entry(builder, "a/keep", tar::EntryType::Regular, None, b"k");
                raw_entry(builder, name, tar::EntryType::Regular, None, b"");
            })
            .unwrap_err();
        assert!(
            error.to_string().ends_with("is not a valid whiteout"),
            "{name}: {error}"
        );
        attack.outside_untouched();
        assert!(attack.target.path().join("a/keep").is_file(), "{name}");
    }
}

#[test]
fn a_hardlink_to_a_symlink_links_the_symlink_itself() {
    let attack = Attack::new();
    let precious = attack.outside.path().join("precious").display().to_string();
    attack
        .run(|builder, _| {
            raw_entry(builder, "s", tar::EntryType::Symlink, Some(&precious), b"");
            raw_entry(builder, "h", tar::EntryType::Link, Some("s"), b"");
            // Writing "into" the hardlink replaces it; nothing follows it.
            raw_entry(builder, "h", tar::EntryType::Regular, None, b"over");
        })
        .unwrap();
    attack.outside_untouched();
    assert_eq!(
        std::fs::read(attack.target.path().join("h")).unwrap(),
        b"over"
    );
    assert!(
        std::fs::symlink_metadata(attack.target.path().join("s"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_pax_record_over_the_limit_is_refused_before_it_is_read() {
    // The record claims 1 GiB; the archive is a few bytes. Nothing may
    // allocate what the header claims.
    let mut header = tar::Header::new_ustar();
    header.set_path("././@PaxHeader").unwrap();
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_size(1 << 30);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'a', 4096));
    let target = tempfile::tempdir().unwrap();
    let error = unpack(&bytes[..], target.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid layer archive: a PAX record of 1073741824 bytes is over the limit of 1048576 bytes"
    );
}

#[test]
fn a_long_name_over_path_max_is_refused() {
    let mut header = tar::Header::new_gnu();
    header.set_path("././@LongLink").unwrap();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(8192);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'a', 8192));
    let target = tempfile::tempdir().unwrap();
    let error = unpack(&bytes[..], target.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid layer archive: a name of 8192 bytes is longer than PATH_MAX (4096)"
    );
}

#[test]
fn sparse_entries_stay_sparse() {
    // A GNU sparse entry of 1 GiB holding one 512-byte block of data.
    let mut header = tar::Header::new_gnu();
    header.set_path("sparse").unwrap();
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(512);
    {
        let gnu = header.as_gnu_mut().unwrap();
        let real: u64 = 1 << 30;
        gnu.realsize = *format!("{real:011o}\0").as_bytes().first_chunk().unwrap();
        let block = &mut gnu.sparse[0];
        block.offset = *format!("{:011o}\0", real - 512)
            .as_bytes()
            .first_chunk()
            .unwrap();
        block.numbytes = *format!("{:011o}\0", 512).as_bytes().first_chunk().unwrap();
    }
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 512));
    bytes.extend([0u8; 1024]);
    let target = tempfile::tempdir().unwrap();
    unpack(&bytes[..], target.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(target.path().join("sparse")).unwrap();
    assert_eq!(meta.len(), 1 << 30);
    // Blocks of 512 bytes actually allocated: far less than the length.
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
}

#[test]
fn the_report_carries_the_stream_digest() {
    let mut builder = tar::Builder::new(Vec::new());
    raw_entry(&mut builder, "a", tar::EntryType::Regular, None, b"a");
    let bytes = builder.into_inner().unwrap();
    let target = tempfile::tempdir().unwrap();
    let report = unpack(&bytes[..], target.path()).unwrap();
    assert_eq!(
        report.diff_id,
        Some(strata_solver::digest::Digest::of(&bytes))
    );
}

#[test]
fn a_file_over_a_symlink_replaces_the_symlink() {
    let attack = Attack::new();
    let precious = attack.outside.path().join("precious").display().to_string();
    attack
        .run(|builder, _| {
            raw_entry(builder, "f", tar::EntryType::Symlink, Some(&precious), b"");
            raw_entry(
                builder,
                "f",
                tar::EntryType::Regular,
                None,
                b"replaced the link, not its target",
            );
        })
        .unwrap();
    attack.outside_untouched();
    let inside = attack.target.path().join("f");
    assert!(
        !std::fs::symlink_metadata(&inside)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn hardlinks_outside_are_refused() {
    let attack = Attack::new();
    let error = attack
        .run(|builder, _| {
            raw_entry(
                builder,
                "h",
                tar::EntryType::Link,
                Some("../../../../etc/passwd"),
                b"",
            )
        })
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "refusing hardlink `h` to `../../../../etc/passwd`: it points outside the target"
    );
    let attack = Attack::new();
    let precious = attack.outside.path().display().to_string();
    let error = attack
        .run(|builder, _| {
            raw_entry(
                builder,
                "out",
                tar::EntryType::Symlink,
                Some(&precious),
                b"",
            );
            raw_entry(
                builder,
                "h",
                tar::EntryType::Link,
                Some("out/precious"),
                b"",
            );
        })
        .unwrap_err();
    assert!(matches!(error, UnpackError::BadHardlink { .. }), "{error}");
    attack.outside_untouched();
    assert_eq!(
        std::fs::metadata(attack.outside.path().join("precious"))
            .unwrap()
            .nlink(),
        1
    );
}

#[test]
fn truncated_and_oversized_archives_are_errors() {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("big"), vec![7u8; 100_000]).unwrap();
    let (_, tar_bytes) = layer_bytes(source.path(), Compression::None, Some(0));
    let target = tempfile::tempdir().unwrap();
    let error = unpack(&tar_bytes[..20_000], target.path()).unwrap_err();
    assert!(matches!(error, UnpackError::Archive(_)), "{error}");
    // A header whose size field claims far more than the archive holds.
    let mut forged = tar_bytes.clone();
    forged[124..136].copy_from_slice(b"77777777777\0");
    let mut header = tar::Header::from_byte_slice(&forged[..512]).clone();
    header.set_cksum();
    forged[..512].copy_from_slice(header.as_bytes());
    let error = unpack(&forged[..], tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(matches!(error, UnpackError::Archive(_)), "{error}");
    // A header with a broken checksum.
    let mut broken = tar_bytes;
    broken[148] ^= 0x01;
    let error = unpack(&broken[..], tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(
        error.to_string().starts_with("invalid layer archive"),
        "{error}"
    );
}

#[test]
fn layers_stream_into_any_writer() {
    // A 64 MiB file written to writers that keep nothing: sizes and
    // digests come from the stream itself.
    let dir = tempfile::tempdir().unwrap();
    // Zeros written, not a hole: a file with holes is a sparse entry.
    std::fs::write(dir.path().join("big"), vec![0u8; 64 << 20]).unwrap();
    let (layer, _) = write_layer(dir.path(), Compression::Zstd, Some(0), std::io::sink()).unwrap();
    assert!(layer.size > 0 && layer.size < 1 << 20, "zeros compress");
    let mut tar_size = 0u64;
    let (plain, _) = write_layer(
        dir.path(),
        Compression::None,
        Some(0),
        CountingSink(&mut tar_size),
    )
    .unwrap();
    assert_eq!(plain.size, tar_size);
    assert!(tar_size > 64 << 20);
}

struct CountingSink<'a>(&'a mut u64);

impl std::io::Write for CountingSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        *self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// GHSA-3cv2-h65g-fgmm's scenario: a PAX `size` followed by a GNU long
/// name applies to the file after the long name, not to the long name. The
/// file's data holds what looks like a huge PAX header: a guard reading the
/// stream differently from the tar crate would take it for one and fail.
#[test]
fn the_stream_guard_parses_extension_headers_as_the_tar_crate_does() {
    let mut fake = tar::Header::new_ustar();
    fake.set_path("fake").unwrap();
    fake.set_entry_type(tar::EntryType::XHeader);
    fake.set_size(1 << 30);
    fake.set_cksum();
    let data = fake.as_bytes().to_vec();
    // A PAX record is `<length> size=<n>\n`, its length counting itself.
    let body = format!(" size={}\n", data.len());
    let mut length = body.len() + 1;
    while format!("{length}{body}").len() != length {
        length += 1;
    }
    let record = format!("{length}{body}");
    let mut bytes = Vec::new();
    let mut pax = tar::Header::new_ustar();
    pax.set_path("././@PaxHeader").unwrap();
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_size(record.len() as u64);
    pax.set_cksum();
    bytes.extend_from_slice(pax.as_bytes());
    bytes.extend_from_slice(record.as_bytes());
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    let name = b"long-name.txt\0";
    let mut long = tar::Header::new_gnu();
    long.set_path("././@LongLink").unwrap();
    long.set_entry_type(tar::EntryType::GNULongName);
    long.set_size(name.len() as u64);
    long.set_cksum();
    bytes.extend_from_slice(long.as_bytes());
    bytes.extend_from_slice(name);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    let mut file = tar::Header::new_gnu();
    file.set_path("short").unwrap();
    file.set_entry_type(tar::EntryType::Regular);
    file.set_mode(0o644);
    file.set_uid(0);
    file.set_gid(0);
    file.set_mtime(0);
    // The header says 0; the PAX record says the real size.
    file.set_size(0);
    file.set_cksum();
    bytes.extend_from_slice(file.as_bytes());
    bytes.extend_from_slice(&data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    let mut builder = tar::Builder::new(Vec::new());
    raw_entry(
        &mut builder,
        "after",
        tar::EntryType::Regular,
        None,
        b"after",
    );
    bytes.extend_from_slice(&builder.into_inner().unwrap());
    let target = tempfile::tempdir().unwrap();
    unpack(&bytes[..], target.path()).unwrap();
    assert_eq!(
        std::fs::read(target.path().join("long-name.txt")).unwrap(),
        data
    );
    assert_eq!(
        std::fs::read(target.path().join("after")).unwrap(),
        b"after"
    );
}

#[test]
fn a_stream_that_goes_on_after_the_archive_gets_no_digest() {
    let mut builder = tar::Builder::new(Vec::new());
    raw_entry(&mut builder, "a", tar::EntryType::Regular, None, b"a");
    let mut bytes = builder.into_inner().unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 2 << 20));
    let target = tempfile::tempdir().unwrap();
    let report = unpack(&bytes[..], target.path()).unwrap();
    assert_eq!(report.diff_id, None);
    assert_eq!(std::fs::read(target.path().join("a")).unwrap(), b"a");
}

/// A PAX record giving `size`.
fn pax_size_record(size: u64) -> Vec<u8> {
    let body = format!(" size={size}\n");
    let mut length = body.len() + 1;
    while format!("{length}{body}").len() != length {
        length += 1;
    }
    format!("{length}{body}").into_bytes()
}

/// A GNU long name header claiming 2 MiB (its data is not there: the
/// guard must refuse it from the header alone).
fn huge_long_name() -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("././@LongLink").unwrap();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(2 << 20);
    header.set_cksum();
    header.as_bytes().to_vec()
}

fn regular(name: &str, size_field: u64) -> tar::Header {
    let mut header = gnu_header(name, tar::EntryType::Regular);
    header.set_size(size_field);
    header
}

fn refused_long_name(bytes: &[u8]) {
    let target = tempfile::tempdir().unwrap();
    let error = unpack(bytes, target.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid layer archive: a GNU long name of 2097152 bytes is over the limit of 1048576 bytes"
    );
}

/// The three ways found to make the guard read the stream differently from
/// the crate, each used to slip a huge long name past it.
#[test]
fn the_guard_cannot_be_desynchronised_from_the_tar_crate() {
    // A GNU sparse header with `isextended` 2: the crate reads no
    // extension header (it wants exactly 1).
    let mut sparse = gnu_header("s", tar::EntryType::GNUSparse);
    sparse.as_gnu_mut().unwrap().isextended[0] = 2;
    sparse.as_gnu_mut().unwrap().realsize = *b"00000000000\0";
    let mut bytes = block(&mut sparse, b"");
    bytes.extend(huge_long_name());
    refused_long_name(&bytes);
    // An old-style (v7) `x` header is a plain entry to the crate: the size
    // its record gives applies to nothing.
    let mut old = tar::Header::new_old();
    old.as_old_mut().name[..4].copy_from_slice(b"pax1");
    old.set_entry_type(tar::EntryType::XHeader);
    old.set_mode(0o644);
    old.set_uid(0);
    old.set_gid(0);
    old.set_mtime(0);
    let mut bytes = block(&mut old, &pax_size_record(1024));
    bytes.extend(block(&mut regular("f", 0), b""));
    bytes.extend(huge_long_name());
    refused_long_name(&bytes);
    // A ustar `x` record spent on an old-style `L` entry after it.
    let mut pax = tar::Header::new_ustar();
    pax.set_path("pax2").unwrap();
    pax.set_entry_type(tar::EntryType::XHeader);
    let mut bytes = block(&mut pax, &pax_size_record(1024));
    let mut old_long = tar::Header::new_old();
    old_long.as_old_mut().name[..5].copy_from_slice(b"long1");
    old_long.set_entry_type(tar::EntryType::GNULongName);
    old_long.set_mode(0o644);
    old_long.set_uid(0);
    old_long.set_gid(0);
    old_long.set_mtime(0);
    bytes.extend(block(&mut old_long, b"x"));
    bytes.extend(block(&mut regular("g", 0), b""));
    bytes.extend(huge_long_name());
    refused_long_name(&bytes);
}

#[test]
fn sparse_holes_are_bounded_per_archive() {
    // 8 GiB long, its last 512 bytes data, the rest a hole.
    let mut sparse = sparse_tail("bomb", 8 << 30);
    let mut bytes = block(&mut sparse, &[b'x'; 512]);
    bytes.extend([0u8; 1024]);
    let target = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let error = unpack(&bytes[..], target.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid layer archive: sparse files with more than 4294967296 bytes of holes (this one is 8589934592 bytes long)"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn names_that_are_not_utf8_survive_the_round_trip() {
    // Paths are bytes: a Latin-1 name, a directory named by an invalid
    // byte, a long name (a PAX `path` record) and a long link target (a
    // PAX `linkpath`) that are not UTF-8, and an xattr whose name is not.
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let source = tempfile::tempdir().unwrap();
    let root = source.path();
    let latin = OsStr::from_bytes(b"caf\xe9.txt");
    let odd = OsStr::from_bytes(b"d\xff");
    let mut long = b"l\xe9".to_vec();
    long.extend(std::iter::repeat_n(b'n', 150));
    let long = OsStr::from_bytes(&long);
    let mut target = b"t\xfe".to_vec();
    target.extend(std::iter::repeat_n(b'x', 120));
    let target = OsStr::from_bytes(&target);
    std::fs::write(root.join(latin), b"latin").unwrap();
    std::fs::create_dir(root.join(odd)).unwrap();
    std::fs::write(root.join(odd).join(latin), b"inside").unwrap();
    std::fs::write(root.join(odd).join(long), b"long").unwrap();
    symlink(target, root.join(odd).join("link")).unwrap();
    let xattr_name = OsStr::from_bytes(b"user.strata.\xe9");
    let with_xattr = xattr::set(root.join(latin), xattr_name, b"v").is_ok();
    assert!(with_xattr || !is_root(), "root can set user xattrs here");
    let (_, tar_bytes) = layer_bytes(root, Compression::None, Some(0));

    // The archive holds the exact bytes.
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if let Some(link) = entry.link_name_bytes() {
            assert_eq!(&*link, target.as_bytes());
        }
        if &*entry.path_bytes() == b"caf\xe9.txt" && with_xattr {
            let keys: Vec<Vec<u8>> = entry
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|extension| extension.unwrap().key_bytes().to_vec())
                .collect();
            assert_eq!(keys, [b"SCHILY.xattr.user.strata.\xe9".to_vec()]);
        }
        names.push(entry.path_bytes().into_owned());
    }
    let mut long_path = b"d\xff/".to_vec();
    long_path.extend_from_slice(long.as_bytes());
    assert_eq!(
        names,
        [
            b"caf\xe9.txt".to_vec(),
            b"d\xff/".to_vec(),
            b"d\xff/caf\xe9.txt".to_vec(),
            b"d\xff/link".to_vec(),
            long_path,
        ]
    );

    // And unpacking gives the tree back.
    let unpacked = tempfile::tempdir().unwrap();
    unpack(&tar_bytes[..], unpacked.path()).unwrap();
    assert_eq!(snapshot(root), snapshot(unpacked.path()));
    let back = unpacked.path();
    assert_eq!(
        std::fs::read(back.join(odd).join(latin)).unwrap(),
        b"inside"
    );
    assert_eq!(std::fs::read(back.join(odd).join(long)).unwrap(), b"long");
    assert_eq!(
        std::fs::read_link(back.join(odd).join("link")).unwrap(),
        Path::new(target)
    );
    if with_xattr {
        assert_eq!(
            xattr::get(back.join(latin), xattr_name).unwrap(),
            Some(b"v".to_vec())
        );
    }
}

/// A file of `size` bytes with `data` at each offset and holes elsewhere.
fn holey(path: &Path, size: u64, data: &[(u64, &[u8])]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
    for (offset, bytes) in data {
        file.write_all_at(bytes, *offset).unwrap();
    }
}

fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

const MIB: u64 = 1 << 20;

/// The sparse file the tests below write: 64 MiB, data at the start, in
/// the middle (across a block boundary) and at the very end.
fn sample_sparse(path: &Path) -> Vec<u8> {
    let data: [(u64, &[u8]); 3] = [
        (0, b"the start"),
        (20 * MIB + 4090, b"the middle, across a block"),
        (64 * MIB - 7, b"the end"),
    ];
    holey(path, 64 * MIB, &data);
    std::fs::read(path).unwrap()
}

#[test]
fn a_file_with_holes_is_a_pax_sparse_entry_and_unpacks_with_its_holes() {
    let source = tempfile::tempdir().unwrap();
    std::fs::create_dir(source.path().join("d")).unwrap();
    let content = sample_sparse(&source.path().join("d/big"));
    // All holes, and a hole at the end only.
    holey(&source.path().join("empty"), 8 * MIB, &[]);
    holey(&source.path().join("tail"), 8 * MIB, &[(0, b"x")]);
    std::fs::write(source.path().join("dense"), vec![b'z'; 10_000]).unwrap();
    let (layer, bytes) = layer_bytes(source.path(), Compression::None, Some(0));
    // The holes are not in the blob.
    assert!(layer.size < MIB, "{} bytes", layer.size);
    // Deterministic, as every layer.
    assert_eq!(
        layer_bytes(source.path(), Compression::None, Some(0)).1,
        bytes
    );
    // What Go's archive/tar (and GNU tar) read as a sparse file: PAX 1.0.
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut records: Vec<(String, String)> = Vec::new();
        if let Some(extensions) = entry.pax_extensions().unwrap() {
            for extension in extensions {
                let extension = extension.unwrap();
                records.push((
                    extension.key().unwrap().to_owned(),
                    extension.value().unwrap().to_owned(),
                ));
            }
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        seen.push((path, entry.header().entry_type(), records, data));
    }
    let big = seen
        .iter()
        .find(|(path, ..)| path == "d/GNUSparseFile.0/big")
        .expect("the sparse entry");
    assert_eq!(big.1, tar::EntryType::Regular);
    let records: Vec<(&str, &str)> = big
        .2
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        records,
        [
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", "d/big"),
            ("GNU.sparse.realsize", "67108864"),
        ]
    );
    // The map (runs of whole 4 KiB blocks holding data), then the data.
    let map = format!(
        "3\n0\n4096\n{}\n8192\n{}\n4096\n",
        20 * MIB,
        64 * MIB - 4096
    );
    assert_eq!(&big.3[..map.len()], map.as_bytes());
    assert_eq!(big.3.len(), 512 + 4 * 4096);
    let empty = seen
        .iter()
        .find(|(path, ..)| path == "GNUSparseFile.0/empty")
        .unwrap();
    assert_eq!(
        &empty.3[..empty.3.iter().position(|b| *b == 0).unwrap()],
        b"1\n8388608\n0\n"
    );
    let tail = seen
        .iter()
        .find(|(path, ..)| path == "GNUSparseFile.0/tail")
        .unwrap();
    assert!(tail.3.starts_with(b"2\n0\n4096\n8388608\n0\n"));
    assert!(seen.iter().any(|(path, ..)| path == "dense"));

    // strata's unpacker restores them, holes and all.
    let target = tempfile::tempdir().unwrap();
    unpack(&bytes[..], target.path()).unwrap();
    let big = target.path().join("d/big");
    assert_eq!(std::fs::read(&big).unwrap(), content);
    assert!(allocated(&big) <= 4 * 4096 + 4096, "{}", allocated(&big));
    assert_eq!(
        std::fs::metadata(target.path().join("empty"))
            .unwrap()
            .len(),
        8 * MIB
    );
    assert_eq!(allocated(&target.path().join("empty")), 0);
    assert_eq!(
        std::fs::read(target.path().join("tail")).unwrap().len() as u64,
        8 * MIB
    );
    assert!(!target.path().join("GNUSparseFile.0").exists());
    assert_eq!(snapshot(source.path()), snapshot(target.path()));

    // GNU tar reads the entry as the file it is.
    let gnu = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(gnu.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), &bytes)?;
            drop(child.stdin.take());
            child.wait()
        })
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(gnu.path().join("d/big")).unwrap(), content);
    assert!(!gnu.path().join("d/GNUSparseFile.0").exists());
}

#[test]
fn gnu_tar_sparse_archives_of_every_pax_version_unpack_with_their_holes() {
    let source = tempfile::tempdir().unwrap();
    std::fs::create_dir(source.path().join("in")).unwrap();
    let content = sample_sparse(&source.path().join("in/big"));
    for version in ["0.0", "0.1", "1.0"] {
        let archive = source.path().join(format!("{version}.tar"));
        let status = std::process::Command::new("tar")
            .args([
                "--sparse",
                "--format=pax",
                "--sparse-version",
                version,
                "-cf",
            ])
            .arg(&archive)
            .arg("-C")
            .arg(source.path().join("in"))
            .arg("big")
            .status()
            .unwrap();
        assert!(status.success(), "{version}");
        let bytes = std::fs::read(&archive).unwrap();
        assert!(
            (bytes.len() as u64) < MIB,
            "{version}: {} bytes",
            bytes.len()
        );
        let target = tempfile::tempdir().unwrap();
        unpack(&bytes[..], target.path()).unwrap();
        let big = target.path().join("big");
        assert_eq!(std::fs::read(&big).unwrap(), content, "{version}");
        assert!(allocated(&big) < MIB, "{version}: {}", allocated(&big));
        assert_eq!(
            std::fs::read_dir(target.path()).unwrap().count(),
            1,
            "{version}: only the file, under its own name"
        );
    }
}

/// A PAX 1.0 sparse entry named `s` of `size` bytes whose data is `data`
/// (its map and runs, as written).
fn pax_sparse(size: u64, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let size_text = size.to_string();
    builder
        .append_pax_extensions([
            ("GNU.sparse.major", &b"1"[..]),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"s"),
            ("GNU.sparse.realsize", size_text.as_bytes()),
        ])
        .unwrap();
    let mut bytes = builder.into_inner().unwrap();
    // Without the end-of-archive blocks `into_inner` adds.
    bytes.truncate(bytes.len() - 1024);
    bytes.extend(block(
        &mut gnu_header("GNUSparseFile.0/s", tar::EntryType::Regular),
        data,
    ));
    bytes.extend([0u8; 1024]);
    bytes
}

fn map_block(text: &str) -> Vec<u8> {
    let mut data = text.as_bytes().to_vec();
    data.resize(512, 0);
    data
}

#[test]
fn malformed_sparse_maps_are_refused_and_nothing_is_written_outside() {
    let with = |map: &str, data: &[u8]| {
        let mut bytes = map_block(map);
        bytes.extend_from_slice(data);
        bytes
    };
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "out of order",
            with("2\n100\n1\n0\n1\n", b"ab"),
            "invalid layer archive: a sparse file's map is not in order inside its 4096 bytes",
        ),
        (
            "past the end",
            with("1\n4096\n1\n", b"a"),
            "invalid layer archive: a sparse file's map is not in order inside its 4096 bytes",
        ),
        (
            "less data than the map",
            with("1\n0\n100\n", b"short"),
            "invalid layer archive: a sparse file's data ends before its map does",
        ),
        (
            "more data than the map",
            with("1\n0\n1\n", b"more"),
            "invalid layer archive: a sparse file has more data than its map says",
        ),
        (
            "a huge count",
            with("99999999999\n", b""),
            "invalid layer archive: a sparse file's map claims 99999999999 entries",
        ),
        (
            "not a number",
            with("1\n0\nx\n", b""),
            "invalid layer archive: a sparse file's map holds something other than numbers",
        ),
    ];
    for (what, data, message) in cases {
        let target = tempfile::tempdir().unwrap();
        let error = unpack(&pax_sparse(4096, &data)[..], target.path()).unwrap_err();
        assert_eq!(error.to_string(), message, "{what}");
    }
    // A map cut short by the end of the entry.
    let target = tempfile::tempdir().unwrap();
    let error = unpack(&pax_sparse(4096, b"3\n0\n")[..], target.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid layer archive: a sparse file's map is cut short"
    );
    // A sparse name that climbs out is refused as any name.
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_pax_extensions([
            ("GNU.sparse.major", &b"1"[..]),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"../../escaped"),
            ("GNU.sparse.realsize", b"1"),
        ])
        .unwrap();
    let mut bytes = builder.into_inner().unwrap();
    // Without the end-of-archive blocks `into_inner` adds.
    bytes.truncate(bytes.len() - 1024);
    bytes.extend(block(
        &mut gnu_header("GNUSparseFile.0/s", tar::EntryType::Regular),
        &with("1\n0\n1\n", b"x"),
    ));
    bytes.extend([0u8; 1024]);
    let target = tempfile::tempdir().unwrap();
    let inner = target.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let error = unpack(&bytes[..], &inner).unwrap_err();
    assert_eq!(
        error.to_string(),
        "refusing `../../escaped`: the path leaves the target directory"
    );
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 1);
    // Sparse files longer than 1 TiB in all are refused before anything is
    // made of them.
    let error = unpack(
        &pax_sparse(2 << 40, &with("1\n0\n1\n", b"x"))[..],
        tempfile::tempdir().unwrap().path(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid layer archive: sparse files longer than 1099511627776 bytes in all (`s` is 2199023255552 bytes long)"
    );
}
