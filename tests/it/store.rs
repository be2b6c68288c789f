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

/// The record file of the image `reference` (`images/<id hex>.json`).
pub(crate) fn record_file(
    store: &StoreDir,
    work: &std::path::Path,
    reference: &str,
) -> std::path::PathBuf {
    let id = store.ok(work, &["inspect", "-f", "{{.Id}}", reference]);
    let id = id.trim().strip_prefix("sha256:").unwrap().to_owned();
    store.root().join("images").join(format!("{id}.json"))
}

#[test]
fn a_damaged_index_is_named_with_its_repair_not_blamed_on_the_network() {
    let (store, work) = store_with_base();
    let record = record_file(&store, work.path(), "base:1");
    std::fs::write(&record, "garbage").unwrap();
    let expected = format!(
        "error: the image index `{}` is damaged (expected value at line 1 column 1): \
         run `strata system check --repair`\n",
        record.display()
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
    for args in [
        &["images"][..],
        &["image", "prune", "-f"][..],
        &["tag", "base:1", "b:2"][..],
    ] {
        let run = store.strata(work.path(), args);
        assert_eq!(run.stderr, expected, "{args:?}");
    }
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

#[test]
fn temporary_files_left_beside_their_targets_are_listed_and_pruned_unless_their_writer_lives() {
    let (store, work) = store_with_base();
    store.ok(work.path(), &["build", "-t", "app:1", "ctx"]);
    let cache = store.root().join("cache");
    // A writer that crashed (its pid is no process now), as a crash
    // between creating and renaming leaves them: a record, the step and
    // text indexes, the stat cache, and the older `.KEY.PID.tmp` form.
    let mut crashed = std::process::Command::new("true").spawn().unwrap();
    let gone = crashed.id();
    crashed.wait().unwrap();
    let plant = || {
        let planted = [
            cache.join(format!(".{}.json.{gone}-0-12345.tmp", "ab".repeat(32))),
            cache.join(format!(".{}.json.{gone}.tmp", "cd".repeat(32))),
            cache.join(format!("steps/.{}.{gone}-1-678.tmp", "ef".repeat(16))),
            cache.join(format!("texts/.{}.{gone}-2-9.tmp", "01".repeat(16))),
            cache.join(format!("stat/.{}.json.{gone}-3-10.tmp", "23".repeat(16))),
        ];
        for path in &planted {
            std::fs::write(path, "{\"partial").unwrap();
        }
        planted
    };
    // A writer that is still at it.
    let mut live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let writing = cache.join(format!(".{}.json.{}-0-1.tmp", "45".repeat(32), live.id()));
    std::fs::write(&writing, "{\"being written").unwrap();

    let planted = plant();
    let mut listed = planted.to_vec();
    listed.sort();
    let check = store.ok(work.path(), &["system", "check"]);
    let mut expected = String::from(
        "checked 6 blobs and 2 images\n\
         5 temporary files left beside their targets by interrupted writes (harmless; removed by prune):\n",
    );
    for path in &listed {
        expected.push_str(&format!("  {}\n", path.display()));
    }
    assert_eq!(check, expected);

    // Both prunes remove them, and leave the live writer's file.
    for prune in [&["image", "prune", "-f"][..], &["cache", "prune"][..]] {
        let planted = plant();
        store.ok(work.path(), prune);
        for path in &planted {
            assert!(!path.exists(), "{prune:?} left {}", path.display());
        }
        assert!(writing.exists(), "{prune:?} removed a live writer's file");
        let check = store.ok(work.path(), &["system", "check"]);
        assert!(check.starts_with("checked "), "{check}");
        assert!(!check.contains("temporary"), "{check}");
    }
    live.kill().unwrap();
    live.wait().unwrap();
    // Its writer gone, the last one goes too.
    let check = store.ok(work.path(), &["system", "check"]);
    assert!(
        check.contains(&format!("  {}\n", writing.display())),
        "{check}"
    );
    store.ok(work.path(), &["cache", "prune"]);
    assert!(!writing.exists());
}

#[test]
fn a_base_image_whose_layer_is_gone_is_refused_before_anything_is_built_on_it() {
    let (store, work) = store_with_base();
    let inspect = store.ok(work.path(), &["inspect", "-f", "{{json .}}", "base:1"]);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let id = inspect["Id"].as_str().unwrap().to_owned();
    // The layer blob the image record names (import keeps it gzip'd: read
    // the record, not the diff_id).
    let record = record_file(&store, work.path(), "base:1");
    let image: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(image["id"], id.as_str());
    let digest = image["layers"][0]["digest"].as_str().unwrap().to_owned();
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    std::fs::remove_file(&blob).unwrap();
    for extra in [&[][..], &["--no-cache"][..]] {
        let mut args = vec!["build", "-q", "-t", "on-a-damaged-base"];
        args.extend_from_slice(extra);
        args.push("ctx");
        let run = store.strata(work.path(), &args);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!(
                "error: image `base:1` is damaged: its layer `{digest}` is missing from the \
                 store; pull it again (`strata pull base:1`), or remove it (`strata rmi \
                 base:1`) and import or load it again\n"
            )),
            "{extra:?}: {}",
            run.stderr
        );
        // Pointed at the FROM line.
        assert!(run.stderr.contains("FROM base:1"), "{}", run.stderr);
        assert!(
            store
                .strata(work.path(), &["inspect", "on-a-damaged-base"])
                .code
                != 0
        );
    }
}

/// A tmpfs of `size` mounted at a fresh directory, unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn new(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let mount = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(mount.success(), "mount a tmpfs (the test needs root)");
        SmallFs { dir }
    }

    fn resize(&self, size: &str) {
        let remount = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(remount.success());
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_step_naming_enospc_and_the_next_build_succeeds_once_there_is_room() {
    if !crate::support::is_root() {
        #[expect(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!("skipped: mounting a tmpfs needs root");
        }
        return;
    }
    let fs = SmallFs::new("24m");
    let root = fs.dir.path().join("store");
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("base")).unwrap();
    std::fs::write(work.path().join("base/f"), "base\n").unwrap();
    std::fs::create_dir_all(work.path().join("ctx")).unwrap();
    std::fs::write(
        work.path().join("ctx/Dockerfile"),
        "FROM base:1\nCOPY big /big\n",
    )
    .unwrap();
    // 15 MB that do not compress: the COPY's staging fits, its layer does not.
    let mut big = vec![0u8; 15_000_000];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for byte in big.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    std::fs::write(work.path().join("ctx/big"), &big).unwrap();
    let strata = |args: &[&str]| {
        let mut all = vec!["--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        crate::support::strata_in(work.path(), &all, None, &[])
    };
    assert_eq!(strata(&["import", "base", "base:1"]).code, 0);

    let run = strata(&["build", "-q", "-t", "big", "ctx"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let first = run.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "error: failed to write a layer `{}/tmp/",
            root.display()
        )) && first.ends_with("No space left on device (os error 28)"),
        "{}",
        run.stderr
    );
    // At the COPY's line.
    assert!(
        run.stderr
            .contains(" --> ctx/Dockerfile:2:1\n  |\n1 | FROM base:1\n2 | COPY big /big\n"),
        "{}",
        run.stderr
    );
    // Nothing half-written stays: the store checks clean and holds no image.
    let check = strata(&["system", "check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(check.stdout, "checked 3 blobs and 1 images\n");
    assert_ne!(strata(&["inspect", "big"]).code, 0);

    // An archive too big to import: the disk's fault, not the archive's.
    std::fs::create_dir_all(work.path().join("bigdir")).unwrap();
    std::fs::write(work.path().join("bigdir/big"), &big).unwrap();
    std::fs::write(work.path().join("bigdir/more"), &big).unwrap();
    let tar = std::process::Command::new(crate::support::require("tar"))
        .arg("-C")
        .arg(work.path().join("bigdir"))
        .arg("-cf")
        .arg(work.path().join("big.tar"))
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let run = strata(&["import", "big.tar", "big:archive"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("No space left on device") && !run.stderr.contains("invalid"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("failed to write `{}/tmp/", root.display())),
        "{}",
        run.stderr
    );
    let check = strata(&["system", "check"]);
    assert_eq!(check.stdout, "checked 3 blobs and 1 images\n");

    fs.resize("64m");
    let run = strata(&["build", "-q", "-t", "big", "ctx"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(strata(&["inspect", "big"]).code, 0);
    let check = strata(&["system", "check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
}
