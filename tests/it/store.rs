//! The store under stress from outside: a damaged index, another command
//! holding its locks, and what crashed writers leave behind.

use crate::support::StoreDir;

/// A store with the image `base:1` (one file), and a context that builds
/// on it.
fn store_with_base() -> (StoreDir, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("base")).unwrap();
    std::fs::write(work.path().join("base/f"), "base\n").unwrap();
    std::fs::create_dir(work.path().join("ctx")).unwrap();
    std::fs::write(
        work.path().join("ctx/Dockerfile"),
        "FROM base:1\nCOPY Dockerfile /d\n",
    )
    .unwrap();
    let store = StoreDir::new();
    store.ok(work.path(), &["import", "base", "base:1"]);
    (store, work)
}

#[test]
fn a_damaged_index_is_named_with_its_repair_not_blamed_on_the_network() {
    let (store, work) = store_with_base();
    let index = store.root().join("images.json");
    std::fs::write(&index, "garbage").unwrap();
    let expected = format!(
        "error: the image index `{}` is damaged (expected value at line 1 column 1): \
         restore it from a backup, or remove it to start again with no images (their \
         blobs stay in the store until a prune), then run `strata system check`\n",
        index.display()
    );
    // With pulls allowed (the default, which used to ask the registry and
    // report that it could not be reached) and without.
    for extra in [&[][..], &["--pull=never"][..]] {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        args.push("ctx");
        let run = store.strata(work.path(), &args);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.stderr, expected, "{extra:?}");
    }
    // Other commands say the same.
    let run = store.strata(work.path(), &["images"]);
    assert_eq!(run.stderr, expected);
}
