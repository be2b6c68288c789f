//! What a build costs in calls and disk: a walk of the build context or a
//! layer is linear in its entries whatever their depth, sparse files stay
//! sparse, and prunes leave nothing no retained thing needs.
//! See: issue 16.

use crate::build::store_with_base;
use crate::support::{Context, StoreDir};

/// The entries of the layer `diff_id` (a build's layers are stored
/// uncompressed: the blob's digest is the diff_id), by path, with their
/// kind and content.
pub(crate) fn layer_entries(
    store: &StoreDir,
    diff_id: &str,
) -> Vec<(Vec<u8>, tar::EntryType, Vec<u8>)> {
    use std::io::Read;
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(diff_id.strip_prefix("sha256:").unwrap());
    let file = std::fs::File::open(&blob).unwrap();
    let mut archive = tar::Archive::new(file);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = entry.path_bytes().into_owned();
            let kind = entry.header().entry_type();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (path, kind, content)
        })
        .collect()
}

/// The diff_ids of `image`'s layers.
pub(crate) fn diff_ids(store: &StoreDir, image: &str) -> Vec<String> {
    let text = store.ok(
        store.dir.path(),
        &["inspect", "-f", "{{json .RootFS.Layers}}", image],
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_context_a_thousand_directories_deep_is_copied_whole() {
    const DEPTH: usize = 1000;
    let store = store_with_base();
    let context = Context::new().dockerfile("FROM base\nCOPY . /c/\n");
    let mut deep = context.path().to_path_buf();
    let mut inside = String::from("c");
    for _ in 0..DEPTH {
        deep.push("d");
        inside.push_str("/d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom.txt"), "at the bottom\n").unwrap();
    inside.push_str("/bottom.txt");
    let id = store.ok(context.path(), &["build", "-q", "-t", "deep", "."]);
    assert!(id.starts_with("sha256:"), "{id}");
    let layers = diff_ids(&store, "deep");
    let entries = layer_entries(&store, layers.last().unwrap());
    let bottom: Vec<_> = entries
        .iter()
        .filter(|(path, _, _)| path.ends_with(b"bottom.txt"))
        .collect();
    assert_eq!(bottom.len(), 1, "{} entries", entries.len());
    let (path, kind, content) = bottom[0];
    assert_eq!(String::from_utf8_lossy(path), inside);
    assert_eq!(*kind, tar::EntryType::Regular);
    assert_eq!(content, b"at the bottom\n");
    // Every directory on the way is in the layer, once, in order.
    let dirs: Vec<_> = entries
        .iter()
        .filter(|(_, kind, _)| *kind == tar::EntryType::Directory)
        .map(|(path, _, _)| path.len())
        .collect();
    assert_eq!(dirs.len(), DEPTH + 1, "c/ and each d/");
    assert!(dirs.windows(2).all(|pair| pair[0] < pair[1]), "depth first");
}

/// The blob of layer `diff_id` in the store.
fn blob(store: &StoreDir, diff_id: &str) -> std::path::PathBuf {
    store
        .root()
        .join("blobs/sha256")
        .join(diff_id.strip_prefix("sha256:").unwrap())
}

/// Bytes allocated to the file at `path` (`du`, not its length).
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// `sha256sum FILE`'s digest.
fn sha256sum(path: &std::path::Path) -> String {
    let out = crate::support::run_ok(
        std::process::Command::new(crate::support::require("sha256sum")).arg(path),
    );
    out.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_sparse_file_stays_sparse_in_the_layer_the_snapshot_and_a_run() {
    use std::os::unix::fs::FileExt;
    const SIZE: u64 = 256 << 20;
    const MIB: u64 = 1 << 20;
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\n\
         COPY big /c/big\n\
         RUN sha256sum /c/big > /sum && stat -c %s /c/big >> /sum\n",
    );
    let path = context.path().join("big");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(SIZE).unwrap();
    for (offset, data) in [
        (0, &b"the start"[..]),
        (100 * MIB + 12345, b"the middle"),
        (SIZE - 7, b"the end"),
    ] {
        file.write_all_at(data, offset).unwrap();
    }
    drop(file);
    assert!(allocated(&path) < MIB, "the test's file is sparse");
    let digest = sha256sum(&path);
    store.ok(context.path(), &["build", "-q", "-t", "sparse", "."]);
    let layers = diff_ids(&store, "sparse");
    let copy_layer = &layers[layers.len() - 2];
    // The layer holds a GNU sparse entry and little else.
    let copy_blob = blob(&store, copy_layer);
    let size = std::fs::metadata(&copy_blob).unwrap().len();
    assert!(size < MIB, "the COPY's blob is {size} bytes");
    let mut archive = tar::Archive::new(std::fs::File::open(&copy_blob).unwrap());
    let kinds: Vec<_> = archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            (path, entry.header().entry_type(), entry.size())
        })
        .collect();
    assert!(
        kinds.contains(&("c/big".to_owned(), tar::EntryType::GNUSparse, SIZE)),
        "{kinds:?}"
    );
    // The snapshot's file has its holes, and the content.
    let snapshot = store
        .root()
        .join("snapshots")
        .join(copy_layer.strip_prefix("sha256:").unwrap())
        .join("c/big");
    assert_eq!(std::fs::metadata(&snapshot).unwrap().len(), SIZE);
    assert!(allocated(&snapshot) < MIB, "{} bytes", allocated(&snapshot));
    assert_eq!(sha256sum(&snapshot), digest);
    // A RUN reads it whole.
    let run_layer = layers.last().unwrap();
    let sum = layer_entries(&store, run_layer)
        .into_iter()
        .find(|(path, _, _)| path == b"sum")
        .map(|(_, _, content)| String::from_utf8(content).unwrap())
        .unwrap();
    assert_eq!(sum, format!("{digest}  /c/big\n{SIZE}\n"));
    // GNU tar restores it, with its holes.
    let out = tempfile::tempdir().unwrap();
    crate::support::run_ok(
        std::process::Command::new(crate::support::require("tar"))
            .arg("-xf")
            .arg(&copy_blob)
            .arg("-C")
            .arg(out.path()),
    );
    let extracted = out.path().join("c/big");
    assert_eq!(std::fs::metadata(&extracted).unwrap().len(), SIZE);
    assert!(
        allocated(&extracted) < MIB,
        "{} bytes",
        allocated(&extracted)
    );
    assert_eq!(sha256sum(&extracted), digest);
}
