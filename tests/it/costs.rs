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
