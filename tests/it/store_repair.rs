//! `strata system check --snapshots` and `--repair`: a damaged index, a
//! damaged snapshot, a stale lease, and a store an older strata wrote
//! (one `images.json`). See: issue 16.

use std::path::{Path, PathBuf};

use crate::support::StoreDir;

/// A store with `base` (busybox) and `app:1` built on it by a COPY and a
/// RUN (so its layers have snapshots of both kinds: the base's unpacked
/// from its blob, the RUN's its step's upper directory), and the context.
fn store_with_app() -> (StoreDir, PathBuf, String) {
    let store = crate::build::store_with_base();
    let ctx = store.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "from the context\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nCOPY f /f\nRUN echo hello > /greeting\n",
    )
    .unwrap();
    let id = build(&store, &ctx, "app:1");
    (store, ctx, id)
}

/// `strata build -q -t TAG CTX`: the image ID, and whether every step
/// came from the cache.
fn build_cached(store: &StoreDir, ctx: &Path, tag: &str) -> (String, bool) {
    let run = store.strata(
        store.dir.path(),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    (
        run.stdout.trim().to_owned(),
        run.stderr.contains("steps: 2 cached, 0 executed"),
    )
}

fn build(store: &StoreDir, ctx: &Path, tag: &str) -> String {
    build_cached(store, ctx, tag).0
}

fn check(store: &StoreDir, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["system", "check"];
    all.extend_from_slice(args);
    store.strata(store.dir.path(), &all)
}

/// `system check` ARGS succeeds, and says exactly `expected`.
fn check_clean(store: &StoreDir, args: &[&str], expected: &str) {
    let run = check(store, args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, expected);
}

fn record_path(store: &StoreDir, id: &str) -> PathBuf {
    store
        .root()
        .join("images")
        .join(format!("{}.json", id.strip_prefix("sha256:").unwrap()))
}

fn images(store: &StoreDir) -> String {
    store.ok(
        store.dir.path(),
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    )
}

#[test]
fn a_damaged_index_is_named_by_check_and_rebuilt_by_repair() {
    let (store, ctx, id) = store_with_app();
    let listed = images(&store);
    let base = store.ok(store.dir.path(), &["inspect", "-f", "{{.Id}}", "base"]);
    let base = base.trim().to_owned();
    let blobs_and_images = "checked 7 blobs and 2 images\n";
    check_clean(&store, &[], blobs_and_images);
    let record = record_path(&store, &id);
    let manifest = store.ok(
        store.dir.path(),
        &["inspect", "-f", "{{.Metadata.ManifestDigest}}", "app:1"],
    );
    let manifest = manifest.trim().to_owned();
    let tags = store.root().join("tags.log");
    let original = std::fs::read(&record).unwrap();
    let original_tags = std::fs::read(&tags).unwrap();
    let truncated = original[..original.len() / 2].to_vec();
    let detail_of = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .err()
            .map(|error| error.to_string())
    };
    let mut garbled_tags = b"garbage\n".to_vec();
    garbled_tags.extend_from_slice(&original_tags);
    let cases: [(&str, &Path, Vec<u8>, String); 3] = [
        (
            "truncated",
            &record,
            truncated.clone(),
            detail_of(&truncated).unwrap(),
        ),
        (
            "garbage",
            &tags,
            garbled_tags,
            "line 1: expected value at line 1 column 1".to_owned(),
        ),
        (
            "corrupted",
            &record,
            br#"{"id": 1}"#.to_vec(),
            "invalid type: integer `1`, expected a string at line 1 column 8".to_owned(),
        ),
    ];
    for (what, path, damaged, detail) in cases {
        std::fs::write(path, &damaged).unwrap();
        let run = check(&store, &[]);
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert_eq!(
            run.stdout,
            format!(
                "checked 7 blobs and {} images\nproblem: the image index `{}` is damaged \
                 ({detail}): run `strata system check --repair`\n",
                if path == tags { 2 } else { 1 },
                path.display()
            ),
            "{what}"
        );
        assert_eq!(run.stderr, "error: the store has 1 problems\n", "{what}");
        // A build says so too, naming the file.
        let run = store.strata(store.dir.path(), &["build", "-q", ctx.to_str().unwrap()]);
        assert_eq!(
            run.stderr,
            format!(
                "error: the image index `{}` is damaged ({detail}): run `strata system check \
                 --repair`\n",
                path.display()
            ),
            "{what}"
        );

        let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
        let repair = if path == tags {
            format!(
                "dropped the unreadable line 1: expected value at line 1 column 1 of the tags \
                 log `{}`: the tag it set or removed is lost\n",
                tags.display()
            )
        } else {
            format!(
                "rebuilt the unreadable image record `{}` ({detail}) from its manifest \
                 {manifest}; the repo digests it had, if any, are lost\n",
                record.display()
            )
        };
        assert_eq!(
            repaired,
            format!("{repair}{blobs_and_images}checked 3 snapshots\n"),
            "{what}"
        );
        check_clean(&store, &[], blobs_and_images);
        // Rebuilt as it was.
        assert_eq!(std::fs::read(&record).unwrap(), original, "{what}");
        assert_eq!(images(&store), listed, "{what}");
        assert_eq!(
            store
                .ok(store.dir.path(), &["inspect", "-f", "{{.Id}}", "base"])
                .trim(),
            base
        );
        // A rebuild is all cached, and the same image.
        assert_eq!(
            build_cached(&store, &ctx, "app:1"),
            (id.clone(), true),
            "{what}"
        );
    }
}

#[test]
fn a_record_no_manifest_rebuilds_is_removed_with_its_tags_and_a_missing_blob_too() {
    let (store, _ctx, id) = store_with_app();
    let record = record_path(&store, &id);
    let manifest = store.ok(
        store.dir.path(),
        &["inspect", "-f", "{{.Metadata.ManifestDigest}}", "app:1"],
    );
    let manifest_blob = store
        .root()
        .join("blobs/sha256")
        .join(manifest.trim().strip_prefix("sha256:").unwrap());
    std::fs::remove_file(&manifest_blob).unwrap();
    std::fs::write(&record, "garbage").unwrap();
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    assert_eq!(
        repaired,
        format!(
            "removed the unreadable image record `{}` (expected value at line 1 column 1): no \
             manifest in the store is image {id}'s\n\
             removed tag `app:1`: it pointed to {id}, which is not an image \
             in the store\n\
             checked 6 blobs and 1 images\nchecked 3 snapshots\n",
            record.display()
        )
    );
    assert!(!record.exists());
    assert_eq!(images(&store).lines().count(), 1);
}

/// The diff_ids of `image`'s layers, base first, and their blobs.
fn layers(store: &StoreDir, image: &str) -> Vec<(String, String)> {
    let text = store.ok(store.dir.path(), &["inspect", "-f", "{{json .}}", image]);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let diff_ids = value["RootFS"]["Layers"].as_array().unwrap();
    let blobs = value["Metadata"]["Layers"].as_array().unwrap();
    diff_ids
        .iter()
        .zip(blobs)
        .map(|(diff_id, blob)| {
            (
                diff_id.as_str().unwrap().to_owned(),
                blob["Digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_damaged_snapshot_is_found_by_snapshots_and_unpacked_again_by_repair() {
    let (store, _ctx, _id) = store_with_app();
    let layers = layers(&store, "app:1");
    assert_eq!(layers.len(), 3);
    let snapshot = |diff_id: &str| {
        store
            .root()
            .join("snapshots")
            .join(diff_id.strip_prefix("sha256:").unwrap())
    };
    let blobs_and_images = "checked 7 blobs and 2 images\n";
    check_clean(
        &store,
        &["--snapshots"],
        &format!("{blobs_and_images}checked 3 snapshots\n"),
    );
    // The base's (unpacked from its blob): a file deleted. The COPY's and
    // the RUN's (their steps' directories): a file changed, one added.
    let (base, copy, run) = (
        snapshot(&layers[0].0),
        snapshot(&layers[1].0),
        snapshot(&layers[2].0),
    );
    std::fs::remove_file(base.join("etc/group")).unwrap();
    std::fs::write(copy.join("f"), "tampered\n").unwrap();
    std::fs::write(run.join("greeting"), "HELLO\n").unwrap();
    std::fs::write(run.join("extra"), "planted\n").unwrap();
    let mut broken = vec![
        (&layers[0], "`etc/group` is missing"),
        (&layers[1], "`f` was changed"),
        (&layers[2], "`extra` was added, `greeting` was changed"),
    ];
    broken.sort();
    // Without --snapshots, nothing is looked at.
    check_clean(&store, &[], blobs_and_images);
    let result = check(&store, &["--snapshots"]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    let mut expected = format!("{blobs_and_images}checked 3 snapshots\n");
    for ((diff_id, blob), what) in &broken {
        expected.push_str(&format!(
            "problem: snapshot `{}` of layer {blob} does not match the layer ({what}): run \
             `strata system check --repair`\n",
            snapshot(diff_id).display()
        ));
    }
    assert_eq!(result.stdout, expected);
    assert_eq!(result.stderr, "error: the store has 3 problems\n");

    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    let mut expected = String::new();
    for ((diff_id, blob), _) in &broken {
        expected.push_str(&format!(
            "unpacked the snapshot `{}` of layer {blob} again from its blob\n",
            snapshot(diff_id).display()
        ));
    }
    expected.push_str(&format!("{blobs_and_images}checked 3 snapshots\n"));
    assert_eq!(repaired, expected);
    check_clean(
        &store,
        &["--snapshots"],
        &format!("{blobs_and_images}checked 3 snapshots\n"),
    );
    assert!(base.join("etc/group").is_file());
    assert!(!run.join("extra").exists());

    // What uses the snapshots sees the layers' content again.
    let ctx = store.dir.path().join("reader");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM app:1\nRUN cat /greeting /f > /seen && grep -c app /etc/group >> /seen\n",
    )
    .unwrap();
    let out = store.dir.path().join("out");
    store.ok(
        store.dir.path(),
        &[
            "build",
            "-q",
            "--output",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("seen")).unwrap(),
        "hello\nfrom the context\n2\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("greeting")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("f")).unwrap(),
        "from the context\n"
    );
    assert!(!out.join("extra").exists());
}

#[test]
fn a_stale_lease_and_a_torn_tag_line_are_reported_then_repaired() {
    let (store, _ctx, _id) = store_with_app();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let lease = store.root().join("leases/crashed.lease");
    std::fs::write(
        &lease,
        format!(
            "{}\nblob sha256:{}\n",
            serde_json::json!({
                "pid": gone, "start": 1, "boot": boot.trim(),
                "pid_namespace": namespace.display().to_string(),
                "command": "build", "created": "2026-12-01T00:00:00Z",
            }),
            "0".repeat(64)
        ),
    )
    .unwrap();
    // And a tag line an interrupted append left torn.
    let tags = store.root().join("tags.log");
    let mut log = std::fs::read(&tags).unwrap();
    let whole = log.len();
    log.extend_from_slice(b"{\"tag\":\"app:2\",\"ima");
    std::fs::write(&tags, &log).unwrap();
    let described = format!("crashed (pid {gone}, build, since 2026-12-01T00:00:00Z)");
    check_clean(
        &store,
        &[],
        &format!(
            "checked 7 blobs and 2 images\nthe tags log `{}` ends in a line an interrupted write \
             left torn (harmless; ignored, and cut off by the next update)\nstale lease \
             {described}: its process is gone (harmless; removed by prune)\n",
            tags.display()
        ),
    );
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    assert_eq!(
        repaired,
        format!(
            "cut off the torn last line of the tags log `{}` (an interrupted write)\n\
             released stale lease {described}: its process is gone\n\
             checked 7 blobs and 2 images\nchecked 3 snapshots\n",
            tags.display()
        )
    );
    assert!(!lease.exists());
    assert_eq!(std::fs::read(&tags).unwrap().len(), whole);
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    assert_eq!(
        repaired,
        "nothing to repair\nchecked 7 blobs and 2 images\nchecked 3 snapshots\n"
    );
}

/// Turn the store's index back into the format older strata wrote: one
/// `images.json` with every record and tag.
fn to_old_format(store: &StoreDir) -> PathBuf {
    let images_dir = store.root().join("images");
    let mut images = serde_json::Map::new();
    for entry in std::fs::read_dir(&images_dir).unwrap() {
        let path = entry.unwrap().path();
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        images.insert(record["id"].as_str().unwrap().to_owned(), record);
        std::fs::remove_file(&path).unwrap();
    }
    let mut tags = serde_json::Map::new();
    let log = store.root().join("tags.log");
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        tags.insert(
            line["tag"].as_str().unwrap().to_owned(),
            line["image"].clone(),
        );
    }
    std::fs::remove_file(&log).unwrap();
    let old = store.root().join("images.json");
    std::fs::write(
        &old,
        serde_json::to_vec_pretty(&serde_json::json!({ "images": images, "tags": tags })).unwrap(),
    )
    .unwrap();
    old
}

#[test]
fn a_store_an_older_strata_wrote_is_read_then_migrated() {
    let (store, ctx, id) = store_with_app();
    let listed = images(&store);
    let base = store.ok(store.dir.path(), &["inspect", "-f", "{{.Id}}", "base"]);
    let base = base.trim().to_owned();
    let old = to_old_format(&store);
    // Read as it is.
    assert_eq!(images(&store), listed);
    check_clean(&store, &[], "checked 7 blobs and 2 images\n");
    // The first change migrates it.
    assert_eq!(build_cached(&store, &ctx, "app:2"), (id.clone(), true));
    assert!(!old.exists());
    assert!(record_path(&store, &id).is_file());
    let tags: Vec<String> = std::fs::read_to_string(store.root().join("tags.log"))
        .unwrap()
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            line["tag"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(tags, ["app:1", "base:latest", "app:2"]);
    assert_eq!(images(&store).lines().count(), 3);
    check_clean(&store, &[], "checked 7 blobs and 2 images\n");

    // An old index that does not parse is rebuilt from the manifests; its
    // tags are lost.
    let old = to_old_format(&store);
    std::fs::write(&old, "garbage").unwrap();
    let run = check(&store, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        format!(
            "checked 7 blobs and 0 images\nproblem: the image index `{}` is damaged (expected \
             value at line 1 column 1): run `strata system check --repair`\n",
            old.display()
        )
    );
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    assert_eq!(
        repaired,
        format!(
            "rebuilt the unreadable image index `{}` (expected value at line 1 column 1): 2 \
             images from the manifests in the store; its tags are lost\n\
             checked 7 blobs and 2 images\nchecked 3 snapshots\n",
            old.display()
        )
    );
    assert!(!old.exists());
    assert_eq!(
        images(&store)
            .lines()
            .filter(|line| line.starts_with("<none>:<none> "))
            .count(),
        2
    );
    // Tagged again, the base builds the same image, all from the cache.
    store.ok(store.dir.path(), &["tag", &base, "base"]);
    assert_eq!(build_cached(&store, &ctx, "app:1"), (id, true));
}

#[test]
fn a_damaged_blob_is_named_by_the_build_that_meets_it_and_removed_by_repair() {
    let store = crate::build::store_with_base();
    let ctx = store.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base\nRUN cat /etc/group > /g\n",
    )
    .unwrap();
    let base = store.ok(store.dir.path(), &["inspect", "-f", "{{.Id}}", "base"]);
    let base = base.trim().to_owned();
    let (_, blob) = layers(&store, "base").remove(0);
    let path = store
        .root()
        .join("blobs/sha256")
        .join(blob.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let found = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes));
    for snapshot in std::fs::read_dir(store.root().join("snapshots")).unwrap() {
        std::fs::remove_dir_all(snapshot.unwrap().path()).unwrap();
    }
    let damaged = format!(
        "the blob `{}` is damaged (expected {blob}, found sha256:{found:x}): run `strata system \
         check --repair`, which removes it and the images that use it, then pull, load or build \
         them again",
        path.display()
    );
    let run = store.strata(store.dir.path(), &["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!("error: {damaged}\n")),
        "{}",
        run.stderr
    );
    let archive = store.dir.path().join("base.tar");
    let run = store.strata(
        store.dir.path(),
        &["save", "-o", archive.to_str().unwrap(), "base"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: failed to save to `{}`\n\nCaused by:\n  {damaged}\n",
            archive.display()
        )
    );
    let run = check(&store, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        format!("checked 3 blobs and 1 images\nproblem: {damaged}\n")
    );
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    assert_eq!(
        repaired,
        format!(
            "removed the damaged blob `{}` (expected {blob}, found sha256:{found:x})\n\
             removed image {base}: its blob {blob} is missing (pull, load or build it again)\n\
             removed tag `base:latest`: it pointed to {base}, which is not an image in the \
             store\n\
             checked 2 blobs and 0 images\nchecked 0 snapshots\n",
            path.display()
        )
    );
    check_clean(&store, &[], "checked 2 blobs and 0 images\n");
}

#[test]
fn a_lost_record_a_tag_names_is_rebuilt_from_its_manifest() {
    let (store, ctx, id) = store_with_app();
    let listed = images(&store);
    let record = record_path(&store, &id);
    let original = std::fs::read(&record).unwrap();
    std::fs::remove_file(&record).unwrap();
    let run = check(&store, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        format!(
            "checked 7 blobs and 1 images\nproblem: tag `app:1` points to {id}, which is not an \
             image in the store\n"
        )
    );
    let manifest = store.root().join("images");
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    let manifest_digest =
        serde_json::from_slice::<serde_json::Value>(&original).unwrap()["manifest"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(
        repaired,
        format!(
            "rebuilt the missing image record of {id}, which tags name, from its manifest \
             {manifest_digest}\nchecked 7 blobs and 2 images\nchecked 3 snapshots\n"
        )
    );
    assert!(manifest.join(record.file_name().unwrap()).is_file());
    assert_eq!(std::fs::read(&record).unwrap(), original);
    assert_eq!(images(&store), listed);
    assert_eq!(build_cached(&store, &ctx, "app:1"), (id, true));
}

#[test]
fn a_snapshot_replaced_by_a_link_is_never_followed_and_is_unpacked_again() {
    let (store, _ctx, _id) = store_with_app();
    let layers = layers(&store, "app:1");
    let (diff_id, blob) = &layers[1];
    let snapshot = store
        .root()
        .join("snapshots")
        .join(diff_id.strip_prefix("sha256:").unwrap());
    let outside = store.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("f"), "precious\n").unwrap();
    std::fs::remove_dir_all(&snapshot).unwrap();
    std::os::unix::fs::symlink(&outside, &snapshot).unwrap();
    let run = check(&store, &["--snapshots"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        format!(
            "checked 7 blobs and 2 images\nchecked 3 snapshots\nproblem: snapshot `{}` of layer \
             {blob} does not match the layer (it is not a directory): run `strata system check \
             --repair`\n",
            snapshot.display()
        )
    );
    let repaired = store.ok(store.dir.path(), &["system", "check", "--repair"]);
    assert_eq!(
        repaired,
        format!(
            "unpacked the snapshot `{}` of layer {blob} again from its blob\n\
             checked 7 blobs and 2 images\nchecked 3 snapshots\n",
            snapshot.display()
        )
    );
    assert!(!snapshot.is_symlink());
    assert_eq!(
        std::fs::read_to_string(snapshot.join("f")).unwrap(),
        "from the context\n"
    );
    // What the link pointed to is untouched.
    assert_eq!(
        std::fs::read_to_string(outside.join("f")).unwrap(),
        "precious\n"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}
