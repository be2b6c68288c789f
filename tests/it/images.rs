//! The image store and image commands, checked with independent tools:
//! GNU tar makes inputs; skopeo, umoci, oci-image-tool and podman read what
//! strata writes.

use std::path::Path;
use std::process::Command;

use sha2::Digest as _;

use crate::support::{StoreDir, busybox_rootfs, is_root, require, run_ok, tree};

fn sha256_file(path: &Path) -> String {
    format!(
        "sha256:{:x}",
        sha2::Sha256::digest(std::fs::read(path).unwrap())
    )
}

/// `umoci unpack` the image tagged `tag` of the layout `layout` into `bundle`.
fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    let mut command = Command::new(require("umoci"));
    command.arg("unpack");
    if !is_root() {
        command.arg("--rootless");
    }
    command
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle);
    run_ok(&mut command);
}

#[test]
fn import_save_and_validate_with_skopeo_umoci_and_oci_image_tool() {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    std::fs::hard_link(
        rootfs.join("etc/passwd"),
        rootfs.join("etc/passwd.hardlink"),
    )
    .unwrap();
    let store = StoreDir::new();
    let cwd = work.path();

    // The same tree imported twice is the same image.
    let first = store.ok(cwd, &["import", "rootfs", "busybox:test"]);
    let second = store.ok(cwd, &["import", "rootfs", "busybox:again"]);
    assert_eq!(first, second);
    assert!(first.starts_with("sha256:") && first.len() == 72, "{first}");

    // Saving twice gives the same bytes.
    store.ok(cwd, &["save", "-o", "one.tar", "busybox:test"]);
    store.ok(cwd, &["save", "-o", "two.tar", "busybox:test"]);
    assert_eq!(
        std::fs::read(cwd.join("one.tar")).unwrap(),
        std::fs::read(cwd.join("two.tar")).unwrap()
    );

    // skopeo reads the docker archive, checking digests and diff_ids.
    run_ok(Command::new(require("skopeo")).current_dir(cwd).args([
        "copy",
        "docker-archive:one.tar",
        "oci:from-skopeo:x",
    ]));

    // The OCI layout validates and unpacks to exactly the tree imported.
    store.ok(
        cwd,
        &["save", "--format", "oci", "-o", "layout", "busybox:test"],
    );
    let validate = run_ok(
        Command::new(require("oci-image-tool"))
            .current_dir(cwd)
            .args([
                "validate",
                "--type",
                "image",
                "layout",
                "--ref",
                "name=test",
            ]),
    );
    assert!(validate.contains("Validation succeeded"), "{validate}");
    umoci_unpack(&cwd.join("layout"), "test", &cwd.join("bundle"));
    assert_eq!(tree(&rootfs), tree(&cwd.join("bundle/rootfs")));

    // A store that loaded the OCI layout (gzip layers of unknown
    // uncompressed size) saves a docker archive skopeo accepts too.
    let other = StoreDir::new();
    other.ok(cwd, &["load", "-i", "layout"]);
    other.ok(cwd, &["save", "-o", "from-layout.tar", "busybox:test"]);
    run_ok(Command::new(require("skopeo")).current_dir(cwd).args([
        "copy",
        "docker-archive:from-layout.tar",
        "oci:from-layout-oci:x",
    ]));
    assert_eq!(
        std::fs::read(cwd.join("one.tar")).unwrap(),
        std::fs::read(cwd.join("from-layout.tar")).unwrap(),
        "same image, same archive"
    );

    // The OCI archive form unpacks to the same layout.
    store.ok(
        cwd,
        &[
            "save",
            "--format",
            "oci",
            "-o",
            "layout.tar",
            "busybox:test",
        ],
    );
    std::fs::create_dir(cwd.join("from-archive")).unwrap();
    run_ok(
        Command::new("tar")
            .current_dir(cwd)
            .args(["-xf", "layout.tar", "-C", "from-archive"]),
    );
    assert_eq!(tree(&cwd.join("layout")), tree(&cwd.join("from-archive")));
}

#[test]
fn podman_loads_what_strata_saves() {
    require("runc");
    let work = tempfile::tempdir().unwrap();
    busybox_rootfs(&work.path().join("rootfs"));
    let store = StoreDir::new();
    let id = store.ok(work.path(), &["import", "rootfs", "busybox:podman"]);
    store.ok(work.path(), &["save", "-o", "image.tar", "busybox:podman"]);
    let podman_root = work.path().join("podman");
    let output = run_ok(
        podman(&podman_root)
            .arg("load")
            .arg("-i")
            .arg(work.path().join("image.tar")),
    );
    assert!(output.contains("busybox:podman"), "{output}");
    let listed = run_ok(podman(&podman_root).args(["images", "--no-trunc", "--format", "{{.ID}}"]));
    assert!(
        listed.contains(id.trim().trim_start_matches("sha256:")),
        "podman has the same image ID: {listed}"
    );
}

/// The podman of [`podman_loads_what_strata_saves`], on a store of its own
/// under `root`.
fn podman(root: &Path) -> Command {
    let mut command = Command::new(require("podman"));
    command
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    command
}

#[test]
fn a_sparse_file_is_a_sparse_entry_that_umoci_and_podman_restore() {
    use std::os::unix::fs::FileExt;
    require("runc");
    const SIZE: u64 = 64 << 20;
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let file = std::fs::File::create(rootfs.join("big")).unwrap();
    file.set_len(SIZE).unwrap();
    file.write_all_at(b"the start", 0).unwrap();
    file.write_all_at(b"the middle", SIZE / 3).unwrap();
    file.write_all_at(b"the end", SIZE - 7).unwrap();
    drop(file);
    let content = std::fs::read(rootfs.join("big")).unwrap();
    let store = StoreDir::new();
    let cwd = work.path();
    store.ok(cwd, &["import", "rootfs", "sparse:test"]);
    store.ok(
        cwd,
        &["save", "--format", "oci", "-o", "layout", "sparse:test"],
    );
    // The holes are not in the blob.
    let blobs: u64 = std::fs::read_dir(cwd.join("layout/blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert!(blobs < 8 << 20, "the layout's blobs are {blobs} bytes");
    // umoci (Go's archive/tar) restores the file under its own name.
    umoci_unpack(&cwd.join("layout"), "test", &cwd.join("bundle"));
    let unpacked = cwd.join("bundle/rootfs");
    assert_eq!(std::fs::read(unpacked.join("big")).unwrap(), content);
    assert!(!unpacked.join("GNUSparseFile.0").exists());
    // podman's storage (tar-split) loads it, and, where it can mount the
    // image, holds the same file.
    store.ok(cwd, &["save", "-o", "image.tar", "sparse:test"]);
    let podman_root = cwd.join("podman");
    let output = run_ok(
        podman(&podman_root)
            .arg("load")
            .arg("-i")
            .arg(cwd.join("image.tar")),
    );
    assert!(output.contains("sparse:test"), "{output}");
    if is_root() {
        let mounted = run_ok(podman(&podman_root).args(["image", "mount", "sparse:test"]));
        let big = Path::new(mounted.trim()).join("big");
        assert_eq!(std::fs::read(&big).unwrap(), content);
        let meta = std::fs::metadata(&big).unwrap();
        assert_eq!(meta.len(), SIZE);
        run_ok(podman(&podman_root).args(["image", "unmount", "sparse:test"]));
    }
}

/// A docker-archive made by hand: busybox, then a layer deleting a file and
/// replacing /etc with an opaque directory.
fn whiteout_archive(work: &Path) -> std::path::PathBuf {
    let archive = work.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let rootfs = work.join("rootfs");
    busybox_rootfs(&rootfs);
    std::fs::write(rootfs.join("root/gone"), "deleted by the second layer").unwrap();
    let upper = work.join("upper");
    std::fs::create_dir_all(upper.join("root")).unwrap();
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("root/.wh.gone"), "").unwrap();
    std::fs::write(upper.join("etc/.wh..wh..opq"), "").unwrap();
    std::fs::write(upper.join("etc/hostname"), "replaced\n").unwrap();
    let gnu_tar = |dir: &Path, out: &str| {
        run_ok(
            Command::new("tar")
                .args([
                    "--sort=name",
                    "--owner=0",
                    "--group=0",
                    "--numeric-owner",
                    "--mtime=@0",
                    "-C",
                ])
                .arg(dir)
                .arg("-cf")
                .arg(archive.join(out))
                .arg("."),
        );
    };
    gnu_tar(&rootfs, "layer1.tar");
    gnu_tar(&upper, "layer2.tar");
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": ["PATH=/bin"], "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": [sha256_file(&archive.join("layer1.tar")), sha256_file(&archive.join("layer2.tar"))] },
        "history": [{ "created_by": "base" }, { "created_by": "whiteouts" }],
    });
    std::fs::write(
        archive.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    // A second image in the same archive shares the first layer.
    let base_config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [sha256_file(&archive.join("layer1.tar"))] },
        "history": [{ "created_by": "base" }],
    });
    std::fs::write(
        archive.join("base.json"),
        serde_json::to_vec(&base_config).unwrap(),
    )
    .unwrap();
    let manifest = serde_json::json!([
        { "Config": "config.json", "RepoTags": ["whiteouts:test"], "Layers": ["layer1.tar", "layer2.tar"] },
        { "Config": "base.json", "RepoTags": ["base-only:1"], "Layers": ["layer1.tar"] },
    ]);
    std::fs::write(
        archive.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&archive)
            .arg("-cf")
            .arg(work.join("whiteouts.tar"))
            .arg("."),
    );
    work.join("whiteouts.tar")
}

#[test]
fn load_applies_whiteouts_and_opaque_directories() {
    let work = tempfile::tempdir().unwrap();
    let archive = whiteout_archive(work.path());
    let store = StoreDir::new();
    let loaded = store.ok(work.path(), &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        loaded,
        "Loaded image: whiteouts:test\nLoaded image: base-only:1\n"
    );
    store.ok(
        work.path(),
        &["save", "--format", "oci", "-o", "layout", "whiteouts:test"],
    );
    umoci_unpack(
        &work.path().join("layout"),
        "test",
        &work.path().join("bundle"),
    );
    let unpacked = work.path().join("bundle/rootfs");
    assert!(
        !unpacked.join("root/gone").exists(),
        "the whiteout deleted the file"
    );
    assert!(
        !unpacked.join("etc/passwd").exists(),
        "the opaque marker emptied /etc"
    );
    assert_eq!(
        std::fs::read_to_string(unpacked.join("etc/hostname")).unwrap(),
        "replaced\n"
    );
    assert!(unpacked.join("bin/busybox").is_file());
    // And the history shows both steps, newest first.
    let history = store.ok(work.path(), &["history", "--no-trunc", "whiteouts:test"]);
    // Columns: IMAGE CREATED CREATED-BY SIZE COMMENT (one word each here).
    let steps: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(steps, ["whiteouts", "base"]);
}

#[test]
fn a_tampered_blob_is_refused_on_load() {
    let work = tempfile::tempdir().unwrap();
    busybox_rootfs(&work.path().join("rootfs"));
    let store = StoreDir::new();
    store.ok(work.path(), &["import", "rootfs", "busybox:tamper"]);
    store.ok(
        work.path(),
        &["save", "--format", "oci", "-o", "layout", "busybox:tamper"],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("layout/index.json")).unwrap())
            .unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            work.path()
                .join("layout/blobs/sha256")
                .join(&manifest_digest),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let layer_path = work
        .path()
        .join("layout/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&layer_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer_path, bytes).unwrap();
    let fresh = StoreDir::new();
    let run = fresh.strata(work.path(), &["load", "-i", "layout"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(
            "error: failed to load images from layout\n\nCaused by:\n  digest mismatch: expected "
        ),
        "{}",
        run.stderr
    );
    assert!(
        fresh.ok(work.path(), &["images", "-q"]).is_empty(),
        "nothing recorded"
    );
}

#[test]
fn a_malicious_rootfs_tarball_cannot_write_outside() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    // A symlink to a directory outside, then a file written through it.
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    std::os::unix::fs::symlink(&outside, staging.join("escape")).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .arg("-cf")
            .arg(work.path().join("evil.tar"))
            .arg("escape"),
    );
    std::fs::remove_file(staging.join("escape")).unwrap();
    std::fs::create_dir(staging.join("escape")).unwrap();
    std::fs::write(staging.join("escape/pwned"), "x").unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .arg("-rf")
            .arg(work.path().join("evil.tar"))
            .arg("escape/pwned"),
    );
    let store = StoreDir::new();
    let run = store.strata(work.path(), &["import", "evil.tar", "evil:1"]);
    assert_eq!(run.code, 1);
    // `escape` resolves inside the rootfs, where `/<outside>` does not
    // exist: the import fails, and nothing is written outside.
    assert!(
        run.stderr
            .starts_with("error: failed to import `evil.tar`\n\nCaused by:\n  failed to resolve `"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("/escape`\n\nCaused by:\n  No such file or directory (os error 2)\n"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn image_commands_and_their_errors() {
    let work = tempfile::tempdir().unwrap();
    busybox_rootfs(&work.path().join("rootfs"));
    let store = StoreDir::new();
    let cwd = work.path();
    let id = store
        .ok(cwd, &["import", "rootfs", "base:1"])
        .trim()
        .to_owned();
    store.ok(cwd, &["tag", "base:1", "base:2"]);
    let listed = store.ok(cwd, &["images"]);
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][..3],
        ["base", "1", &id["sha256:".len().."sha256:".len() + 12]]
    );
    assert_eq!(store.ok(cwd, &["images", "-q"]).trim(), &id[7..19]);

    // inspect, whole and by field; by tag, ID and ID prefix.
    let inspected: serde_json::Value =
        serde_json::from_str(&store.ok(cwd, &["inspect", "base:1"])).unwrap();
    assert_eq!(inspected[0]["Id"], id.as_str());
    assert_eq!(
        inspected[0]["RepoTags"],
        serde_json::json!(["base:1", "base:2"])
    );
    assert_eq!(
        store
            .ok(cwd, &["inspect", "-f", "{{.Id}} {{.Os}}", &id[7..15]])
            .trim(),
        format!("{id} linux")
    );

    // Errors: unknown image, bad reference, removal of a multiply-tagged image by ID.
    let unknown = store.strata(cwd, &["inspect", "nope:1"]);
    assert_eq!(
        (unknown.code, unknown.stderr.as_str()),
        (1, "error: no such image: `nope:1`\n")
    );
    let bad = store.strata(cwd, &["tag", "base:1", "Bad:Name"]);
    assert_eq!(
        bad.stderr,
        "error: invalid reference `Bad:Name`: names are lowercase letters, digits and separators (`.`, `_`, `-`, `/`)\n"
    );
    let in_use = store.strata(cwd, &["rmi", &id]);
    assert_eq!(
        in_use.stderr,
        format!(
            "error: unable to delete {} (must be forced): the image is referenced by several tags: base:1, base:2\n",
            &id[7..19]
        )
    );
    let missing_file = store.strata(cwd, &["import", "does-not-exist.tar"]);
    assert_eq!(
        missing_file.stderr,
        "error: failed to open `does-not-exist.tar`\n\nCaused by:\n  No such file or directory (os error 2)\n"
    );

    // An ambiguous prefix: import until two IDs share their first digit.
    let mut ids = vec![id.clone()];
    let shared = loop {
        let dir = cwd.join(format!("tree{}", ids.len()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("file"), ids.len().to_string()).unwrap();
        let new = store
            .ok(cwd, &["import", dir.to_str().unwrap()])
            .trim()
            .to_owned();
        if let Some(other) = ids
            .iter()
            .find(|other| other.as_bytes()[7] == new.as_bytes()[7])
        {
            break (other.clone(), new);
        }
        ids.push(new);
    };
    let prefix = &shared.0[7..8];
    let ambiguous = store.strata(cwd, &["inspect", prefix]);
    assert!(
        ambiguous.stderr.starts_with(&format!(
            "error: image ID prefix `{prefix}` is ambiguous: it matches "
        )),
        "{}",
        ambiguous.stderr
    );

    // rmi untags first, then deletes; shared blobs stay for the other image.
    assert_eq!(store.ok(cwd, &["rmi", "base:2"]), "Untagged: base:2\n");
    assert_eq!(
        store.ok(cwd, &["rmi", "base:1"]),
        format!("Untagged: base:1\nDeleted: {id}\n")
    );
    // Left: the images imported in the loop (`ids` without `id`, plus the
    // last one), each with its own manifest, config and layer.
    let remaining = ids.len();
    assert_eq!(
        store.ok(cwd, &["system", "check"]),
        format!("checked {} blobs and {remaining} images\n", remaining * 3)
    );
}

#[test]
fn a_store_killed_mid_write_stays_consistent() {
    let work = tempfile::tempdir().unwrap();
    let tree_dir = work.path().join("big");
    std::fs::create_dir(&tree_dir).unwrap();
    // 256 MiB of data, long enough to kill the import while it writes:
    // written, since a file of holes is now a small sparse entry.
    {
        use std::io::Write;
        let mut file = std::fs::File::create(tree_dir.join("data")).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..256 {
            file.write_all(&chunk).unwrap();
        }
    }
    let store = StoreDir::new();
    let root = store.root();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "import",
            "--compression",
            "uncompressed",
            "big",
            "big:1",
        ])
        .current_dir(work.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the blob is being written, then SIGKILL.
    let tmp = root.join("tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let writing = std::fs::read_dir(&tmp)
            .map(|dir| dir.count() > 0)
            .unwrap_or(false);
        if writing {
            std::thread::sleep(std::time::Duration::from_millis(100));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import never started writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the import was interrupted, not finished"
    );
    let check = store.ok(work.path(), &["system", "check"]);
    assert!(
        check.starts_with("checked 0 blobs and 0 images\n"),
        "{check}"
    );
    assert!(
        check.contains("temporary files from interrupted writes"),
        "{check}"
    );
    // The next import of the same data succeeds, and the store checks clean.
    let id = store.ok(
        work.path(),
        &["import", "--compression", "uncompressed", "big", "big:1"],
    );
    assert!(id.starts_with("sha256:"));
    let check = store.ok(work.path(), &["system", "check"]);
    assert!(
        check.starts_with("checked 3 blobs and 1 images\n"),
        "{check}"
    );
}

#[test]
fn disk_use_counts_shared_layers_once_and_prune_reclaims() {
    let work = tempfile::tempdir().unwrap();
    let archive = whiteout_archive(work.path());
    let store = StoreDir::new();
    let cwd = work.path();
    store.ok(cwd, &["load", "-i", archive.to_str().unwrap()]);
    let layer1 = std::fs::metadata(cwd.join("archive/layer1.tar"))
        .unwrap()
        .len();
    let df = store.ok(cwd, &["system", "df", "-v"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[1].starts_with("Images    2       2        "), "{df}");
    assert!(
        lines[1].ends_with(" 0B (0%)"),
        "nothing is reclaimable while both are tagged: {df}"
    );
    // Each image shows the shared layer in SHARED SIZE.
    let shared_column: Vec<&str> = lines[4..]
        .iter()
        .map(|line| line.split_whitespace().nth(3).unwrap())
        .collect();
    let shown = |bytes: u64| {
        let value = bytes as f64 / 1e6;
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + "MB"
    };
    assert_eq!(shared_column, [shown(layer1), shown(layer1)], "{df}");

    // Untag one: it becomes reclaimable, except the layer the other one uses.
    store.ok(cwd, &["tag", "whiteouts:test", "keep:1"]);
    assert_eq!(
        store.ok(cwd, &["rmi", "whiteouts:test"]),
        "Untagged: whiteouts:test\n"
    );
    store.ok(cwd, &["rmi", "keep:1"]);
    let prune_without_force = store.strata(cwd, &["image", "prune"]);
    assert_eq!(
        prune_without_force.stderr,
        "error: this removes all untagged images: pass -f to confirm without a prompt\n"
    );
    let pruned = store.ok(cwd, &["image", "prune", "-f"]);
    assert_eq!(
        pruned, "Total reclaimed space: 0B\n",
        "rmi already removed the unused blobs"
    );
    assert_eq!(
        store.ok(cwd, &["system", "check"]),
        "checked 3 blobs and 1 images\n"
    );
    let pruned_all = store.ok(cwd, &["image", "prune", "-a", "-f"]);
    assert!(
        pruned_all.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{pruned_all}"
    );
    assert_eq!(
        store.ok(cwd, &["system", "check"]),
        "checked 0 blobs and 0 images\n"
    );
}

#[test]
fn images_filters_and_templates() {
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();
    for (name, content) in [("old", "1"), ("new", "2"), ("loose", "3")] {
        std::fs::create_dir(cwd.join(name)).unwrap();
        std::fs::write(cwd.join(name).join("file"), content).unwrap();
    }
    let store = StoreDir::new();
    let old = store.ok_with_env(
        cwd,
        &["import", "old", "team/old:1"],
        &[("SOURCE_DATE_EPOCH", "100")],
    );
    let new = store.ok_with_env(
        cwd,
        &["import", "new", "team/new:2"],
        &[("SOURCE_DATE_EPOCH", "200")],
    );
    let loose = store.ok_with_env(cwd, &["import", "loose"], &[("SOURCE_DATE_EPOCH", "300")]);
    let short = |id: &str| id.trim()[7..19].to_owned();
    let names = |filters: &[&str]| {
        let mut args = vec![
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.CreatedAt}}",
        ];
        for filter in filters {
            args.extend(["-f", filter]);
        }
        store.ok(cwd, &args)
    };
    assert_eq!(
        store
            .ok(cwd, &["images", "-q", "-f", "dangling=true"])
            .trim(),
        short(&loose)
    );
    assert_eq!(
        names(&["reference=team/n*"]),
        "team/new:2 1970-01-01T00:03:20Z\n"
    );
    assert_eq!(
        names(&["since=team/old:1", "dangling=false"]),
        "team/new:2 1970-01-01T00:03:20Z\n"
    );
    assert_eq!(
        names(&["before=team/new:2"]),
        "team/old:1 1970-01-01T00:01:40Z\n"
    );
    assert_eq!(names(&["label=maintainer"]), "");
    let json = store.ok(
        cwd,
        &["images", "--format", "json", "-f", "reference=team/old:*"],
    );
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["ID"], short(&old));
    assert!(new.starts_with("sha256:"));
    let bad = store.strata(cwd, &["images", "-f", "colour=red"]);
    assert_eq!(
        bad.stderr,
        "error: unknown filter `colour`: expected dangling, reference, label, before or since\n"
    );
    let missing = store.strata(cwd, &["images", "-f", "since=nope:1"]);
    assert_eq!(missing.stderr, "error: no such image: `nope:1`\n");
}

#[test]
fn an_unprivileged_import_keeps_the_archives_owners_and_says_what_it_skipped() {
    if !is_root() {
        #[expect(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!(
                "skipped: making the archive (owners, a device node) and switching users needs root"
            );
        }
        return;
    }
    let setpriv = require("setpriv");
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(cwd, std::fs::Permissions::from_mode(0o777)).unwrap();
    let rootfs = cwd.join("rootfs");
    busybox_rootfs(&rootfs);
    std::fs::create_dir(rootfs.join("home")).unwrap();
    std::fs::write(rootfs.join("home/user-file"), "mine").unwrap();
    std::os::unix::fs::lchown(rootfs.join("home/user-file"), Some(1000), Some(1000)).unwrap();
    run_ok(
        Command::new("mknod")
            .arg(rootfs.join("dev/null"))
            .args(["c", "1", "3"]),
    );
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-czf")
            .arg(cwd.join("rootfs.tar.gz"))
            .arg("."),
    );
    std::fs::set_permissions(
        cwd.join("rootfs.tar.gz"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let store = cwd.join("store");
    let output = Command::new(&setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(&store)
        .args(["import", "rootfs.tar.gz", "unprivileged:1"])
        .current_dir(cwd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        "warning: 1 entries could not be imported (sockets, or device nodes that need privileges to make): ./dev/null\n"
    );
    // The layer says root owns busybox and 1000 owns the user's file, though
    // on disk, while importing, everything belonged to `nobody`.
    let layout = cwd.join("layout");
    // The store is nobody's: root uses it only when told to trust it.
    let saved = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(&store)
        .arg("--allow-foreign-store")
        .args(["save", "--format", "oci", "-o"])
        .arg(&layout)
        .arg("unprivileged:1")
        .output()
        .unwrap();
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_hex = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(manifest_hex)).unwrap(),
    )
    .unwrap();
    let layer_hex = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let listing = run_ok(
        Command::new("tar")
            .args(["-tvzf"])
            .arg(layout.join("blobs/sha256").join(layer_hex))
            .arg("--numeric-owner"),
    );
    let owner_of = |name: &str| {
        listing
            .lines()
            .find(|line| line.ends_with(name) || line.contains(&format!(" {name} ")))
            .map(|line| line.split_whitespace().nth(1).unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name} not in the layer:\n{listing}"))
    };
    assert_eq!(owner_of("bin/busybox"), "0/0");
    assert_eq!(owner_of("home/user-file"), "1000/1000");
}

#[test]
fn concurrent_imports_and_prunes_share_one_store_safely() {
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();
    let store = StoreDir::new();
    let root = store.root();
    for index in 0..6 {
        let dir = cwd.join(format!("tree{index}"));
        std::fs::create_dir(&dir).unwrap();
        // Trees 4 and 5 are the same (mtimes included: a second boundary
        // between the writes would make them differ): two processes write
        // the same blobs.
        std::fs::write(dir.join("file"), vec![index.min(4) as u8; 4 << 20]).unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join("file"))
            .unwrap();
        file.set_modified(when).unwrap();
        drop(file);
        let dir_handle = std::fs::File::open(&dir).unwrap();
        dir_handle.set_modified(when).unwrap();
    }
    let strata = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("--root")
            .arg(&root)
            .args(args)
            .current_dir(cwd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = Vec::new();
    for index in 0..6 {
        children.push(strata(vec![
            "import".into(),
            format!("tree{index}"),
            format!("concurrent:{index}"),
        ]));
        children.push(strata(vec!["image".into(), "prune".into(), "-f".into()]));
    }
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let listed = store.ok(cwd, &["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort();
    assert_eq!(
        tags,
        ["0", "1", "2", "3", "4", "5"],
        "no prune removed an image being imported"
    );
    // Five distinct images (4 and 5 are one), three blobs each.
    assert_eq!(
        store.ok(cwd, &["system", "check"]),
        "checked 15 blobs and 5 images\n"
    );
}
