//! `--cache-from type=local,src=DIR` and `load` read files an attacker may
//! have laid out: only regular files inside the directory or archive, and
//! only so much of them.

use crate::build::store_with_base;
use crate::support::{Context, block, sparse_tail};

#[test]
fn a_local_cache_is_read_inside_its_directory_and_never_from_a_fifo() {
    let store = store_with_base();
    let context = Context::new().dockerfile("FROM base\nRUN echo hi > /hi\n");
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("index.json"), "{\"canary-secret\": 1}").unwrap();
    for (what, make) in [("a link to a host file", 0), ("a fifo", 1)] {
        let cache = tempfile::tempdir().unwrap();
        let index = cache.path().join("index.json");
        if make == 0 {
            std::os::unix::fs::symlink(secret.path().join("index.json"), &index).unwrap();
        } else {
            let status = std::process::Command::new("mkfifo")
                .arg(&index)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let from = format!("type=local,src={}", cache.path().display());
        let started = std::time::Instant::now();
        let run = store.strata(context.path(), &["build", "-q", "--cache-from", &from, "."]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{what}: the build waited"
        );
        assert!(
            !run.stderr.contains("canary-secret"),
            "{what}: {}",
            run.stderr
        );
        // As docker does with a cache it cannot use: a warning, and the
        // build goes on without it.
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        assert_eq!(
            run.stderr,
            format!(
                "warning: --cache-from {from}: failed to read `{}/index.json`; building without it\n",
                cache.path().display()
            ),
            "{what}"
        );
    }
}

#[test]
fn a_loaded_archives_documents_are_bounded() {
    let store = store_with_base();
    // A sparse manifest.json of 1 GiB: a few bytes in the archive.
    let work = tempfile::tempdir().unwrap();
    let mut bytes = block(&mut sparse_tail("manifest.json", 1 << 30), &[b' '; 512]);
    bytes.extend([0u8; 1024]);
    let archive = work.path().join("sparse.tar");
    std::fs::write(&archive, bytes).unwrap();
    let run = store.strata(work.path(), &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("failed to read `manifest.json`")
            && run
                .stderr
                .contains("larger than the limit of 8388608 bytes"),
        "{}",
        run.stderr
    );
}
