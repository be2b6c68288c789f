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
    // `.dockerignore` is matched down the walk too (each pattern against
    // each path once, not against every parent of each path again).
    let context = Context::new()
        .dockerfile("FROM base\nCOPY . /c/\n")
        .file(".dockerignore", "**/*.log\n!**/keep.log\n");
    let mut deep = context.path().to_path_buf();
    let mut inside = String::from("c");
    for _ in 0..DEPTH {
        deep.push("d");
        inside.push_str("/d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom.txt"), "at the bottom\n").unwrap();
    std::fs::write(deep.join("skip.log"), "ignored\n").unwrap();
    std::fs::write(deep.join("keep.log"), "let back in\n").unwrap();
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
    let logs: Vec<_> = entries
        .iter()
        .filter(|(path, _, _)| path.ends_with(b".log"))
        .map(|(path, _, _)| {
            String::from_utf8_lossy(path)
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(logs, ["keep.log"]);
    // Every directory on the way is in the layer, once, in order.
    let dirs: Vec<_> = entries
        .iter()
        .filter(|(_, kind, _)| *kind == tar::EntryType::Directory)
        .map(|(path, _, _)| path.len())
        .collect();
    assert_eq!(dirs.len(), DEPTH + 1, "c/ and each d/");
    assert!(dirs.windows(2).all(|pair| pair[0] < pair[1]), "depth first");
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
fn a_sparse_file_stays_sparse_in_the_snapshot_and_a_run_reads_it_whole() {
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
    // Uncompressed (the default), and the layer is small all the same: it
    // holds a sparse entry, the data without the holes.
    store.ok(context.path(), &["build", "-q", "-t", "sparse", "."]);
    let layers = diff_ids(&store, "sparse");
    let copy_layer = &layers[layers.len() - 2];
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(copy_layer.strip_prefix("sha256:").unwrap());
    let blob_size = std::fs::metadata(&blob).unwrap().len();
    assert!(blob_size < MIB, "the layer is {blob_size} bytes");
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
    let sum = crate::build::read_in(&store, "sparse", "cat /sum");
    assert_eq!(sum, format!("{digest}  /c/big\n{SIZE}\n"));
}

/// The build cache's files under `cache/` by kind: records (`*.json` at
/// the top), `steps`, `texts`, and the stat caches' entries.
#[derive(Debug, PartialEq, Eq)]
struct CacheFiles {
    records: usize,
    steps: usize,
    texts: usize,
    stat_entries: Vec<String>,
}

fn cache_files(store: &StoreDir) -> CacheFiles {
    let cache = store.root().join("cache");
    let count = |dir: &str| {
        std::fs::read_dir(cache.join(dir))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    let records = std::fs::read_dir(&cache)
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .count();
    let mut stat_entries = Vec::new();
    if let Ok(entries) = std::fs::read_dir(cache.join("stat")) {
        for entry in entries {
            let text = std::fs::read(entry.unwrap().path()).unwrap();
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&text).unwrap();
            stat_entries.extend(map.keys().map(|key| {
                // The context's path is a temporary directory: its last
                // element is the file's name.
                key.rsplit('/').next().unwrap().to_owned()
            }));
        }
    }
    stat_entries.sort();
    CacheFiles {
        records,
        steps: count("steps"),
        texts: count("texts"),
        stat_entries,
    }
}

#[test]
fn prunes_leave_only_what_a_retained_image_or_build_needs() {
    let store = store_with_base();
    let context = Context::new()
        .file("one", "first")
        .file("two", "second")
        .dockerfile(
            "FROM base\n\
             COPY . /c/\n\
             RUN cat /c/one /c/t* > /all\n\
             RUN true\n",
        );
    let build = || store.ok(context.path(), &["build", "-q", "-t", "app", "."]);
    build();
    // `two` becomes `three`, with other content: new COPY and RUN layers.
    std::fs::remove_file(context.path().join("two")).unwrap();
    std::fs::write(context.path().join("three"), "third").unwrap();
    build();
    let before = cache_files(&store);
    assert_eq!(
        before.stat_entries,
        ["Dockerfile", "one", "three", "two"],
        "{before:?}"
    );
    // The first build's image is dangling: `image prune` removes it, and
    // `cache prune` every record its layers alone needed.
    store.ok(context.path(), &["image", "prune", "-f"]);
    store.ok(context.path(), &["cache", "prune", "-f"]);
    let layers = diff_ids(&store, "app");
    let after = cache_files(&store);
    // Left: the COPY and the first RUN of `app` (its layers); `RUN true`
    // made no layer, which no image holds. The stat cache keeps what those
    // records read: not `two`.
    assert_eq!(
        after,
        CacheFiles {
            records: 2,
            steps: 2,
            texts: 2,
            stat_entries: vec!["Dockerfile".into(), "one".into(), "three".into()],
        }
    );
    let kept: Vec<serde_json::Value> = std::fs::read_dir(store.root().join("cache"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
        .collect();
    for record in &kept {
        let diff_id = record["layer"]["diff_id"].as_str().unwrap();
        assert!(layers.iter().any(|layer| layer == diff_id), "{record}");
    }
    // Nothing retained: nothing left.
    store.ok(context.path(), &["image", "prune", "-a", "-f"]);
    store.ok(context.path(), &["cache", "prune", "-f"]);
    assert_eq!(
        cache_files(&store),
        CacheFiles {
            records: 0,
            steps: 0,
            texts: 0,
            stat_entries: Vec::new(),
        }
    );
    let blobs = std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "every image and record is gone");
    // And a rebuild (on the base imported again) works, and caches again.
    let rootfs = store.dir.path().join("rootfs");
    store.ok(
        store.dir.path(),
        &["import", rootfs.to_str().unwrap(), "base"],
    );
    build();
    assert_eq!(cache_files(&store).records, 4, "FROM, COPY and both RUNs");
    let sum = crate::build::read_in(&store, "app", "cat /all");
    assert_eq!(sum, "firstthird");
}

#[test]
fn the_build_cache_keeps_within_its_budget_what_no_image_needs() {
    let store = store_with_base();
    let context = Context::new().file("f", "0").dockerfile(
        "FROM base\n\
         COPY f /f\n\
         RUN true\n\
         RUN cp /f /g\n",
    );
    let build = |budget: &[(&str, &str)]| {
        store.ok_with_env(context.path(), &["build", "-q", "-t", "app", "."], budget);
        store.ok_with_env(context.path(), &["image", "prune", "-f"], budget);
    };
    for round in 1..=3 {
        std::fs::write(context.path().join("f"), round.to_string()).unwrap();
        build(&[]);
    }
    // The default budget (10% of the disk) keeps every record.
    assert_eq!(
        cache_files(&store).records,
        1 + 3 * 3,
        "FROM, then 3 per build"
    );
    // A budget of one byte keeps only what `app` needs: its two layers'
    // records, whatever was built before.
    for round in 4..=6 {
        std::fs::write(context.path().join("f"), round.to_string()).unwrap();
        build(&[("STRATA_CACHE_KEEP_STORAGE", "1")]);
        let layers = diff_ids(&store, "app");
        let files = cache_files(&store);
        assert_eq!(files.records, 2, "round {round}: {files:?}");
        assert_eq!(files.steps, 2, "round {round}: {files:?}");
        assert_eq!(files.stat_entries, ["f"], "round {round}: {files:?}");
        // Blobs: base's and app's layers, configs and manifests only.
        let blobs = std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, layers.len() + 2 * 2, "round {round}");
    }
    assert_eq!(crate::build::read_in(&store, "app", "cat /g"), "6");
    // A budget that does not parse is refused before anything runs.
    let root = store.root();
    let run = crate::support::strata_in(
        context.path(),
        &["--root", root.to_str().unwrap(), "build", "-q", "."],
        None,
        &[("STRATA_CACHE_KEEP_STORAGE", "lots")],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: invalid STRATA_CACHE_KEEP_STORAGE\n\nCaused by:\n  invalid size `lots`\n\nCaused by:\n  cannot parse float from empty string\n"
    );
}
