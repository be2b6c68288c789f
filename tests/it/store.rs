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

/// Hold the store lock `name` from another process (`flock(1)`, which
/// keeps it while its `sleep` runs) until it is surely held; returns the
/// child and its command line.
fn hold(store: &StoreDir, name: &str, seconds: &str) -> (std::process::Child, String) {
    let flock = crate::support::require("flock");
    let path = store.root().join(name);
    let child = std::process::Command::new(&flock)
        .arg("-x")
        .arg(&path)
        .args(["sleep", seconds])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        if file.try_lock().is_err() {
            break;
        }
        drop(file);
        assert!(std::time::Instant::now() < deadline, "flock never took it");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let command = format!("{} -x {} sleep {seconds}", flock.display(), path.display());
    (child, command)
}

#[test]
fn a_command_kept_waiting_by_a_lock_says_once_who_holds_it() {
    let (store, work) = store_with_base();
    // The garbage-collection lock, as a prune holds it: the build waits
    // before it writes its layer. Then the index lock: it waits to record.
    for (name, what) in [
        ("gc.lock", "the store's garbage-collection lock"),
        ("lock", "the store's index lock"),
    ] {
        let (mut holder, command) = hold(&store, name, "2");
        let run = store.strata(work.path(), &["build", "--no-cache", "-t", "app:1", "ctx"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let expected = format!(
            "waiting for {what} `{}`, held by pid {} (`{command}`)",
            store.root().join(name).display(),
            holder.id()
        );
        let said: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| line.starts_with("waiting"))
            .collect();
        assert_eq!(said, [expected.as_str()], "{}", run.stderr);
        holder.wait().unwrap();
    }
    // Nobody holding it: not a word.
    let run = store.strata(work.path(), &["build", "--no-cache", "-t", "app:1", "ctx"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("waiting"), "{}", run.stderr);
    store.ok(work.path(), &["system", "check"]);
}
