//! Snapshots: layers unpacked once, stacked by a real overlayfs mount, give
//! the same tree as applying the layers one after the other.

use std::path::Path;
use std::process::Command;

use strata_solver::image::{self, ImportOptions};
use strata_solver::layer::{Compression, unpack};
use strata_solver::store::Store;

mod support;
use support::is_root;

/// `find`-style listing: path, type, and content for files.
fn listing(root: &Path) -> Vec<String> {
    let output = Command::new("find")
        .arg(".")
        .args(["-printf", "%p %y %s\n"])
        .current_dir(root)
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn snapshots_stack_into_the_merged_tree() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    // The base layer.
    let base = work.path().join("base");
    std::fs::create_dir_all(base.join("etc/conf.d")).unwrap();
    std::fs::write(base.join("etc/conf.d/old"), "old").unwrap();
    std::fs::write(base.join("etc/hosts"), "hosts").unwrap();
    std::fs::write(base.join("gone"), "gone").unwrap();
    let options = ImportOptions {
        compression: Compression::Gzip,
        epoch: Some(0),
        ..ImportOptions::default()
    };
    let first = image::import_dir(&store, &base, &options).unwrap().image;
    // An overlay-style upper dir, written the way an unprivileged overlay
    // writes it: xattr whiteouts and an opaque directory.
    let upper = work.path().join("upper");
    std::fs::create_dir_all(upper.join("etc/conf.d")).unwrap();
    xattr::set(upper.join("etc/conf.d"), "user.overlay.opaque", b"y").unwrap();
    std::fs::write(upper.join("etc/conf.d/new"), "new").unwrap();
    std::fs::write(upper.join("gone"), "").unwrap();
    xattr::set(upper.join("gone"), "user.overlay.whiteout", b"y").unwrap();
    xattr::set(&upper, "user.overlay.opaque", b"x").unwrap();
    std::fs::write(upper.join("added"), "added").unwrap();
    let (second, _) = strata_solver::layer::store_layer(
        &store,
        &upper,
        Compression::Zstd,
        Some(0),
        &Default::default(),
    )
    .unwrap();
    // The layer holds OCI whiteouts, not the overlay xattrs.
    let names: Vec<String> =
        tar::Archive::new(zstd::Decoder::new(store.open_blob(&second.digest).unwrap()).unwrap())
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
    assert_eq!(
        names,
        [
            "added",
            "etc/",
            "etc/conf.d/",
            "etc/conf.d/.wh..wh..opq",
            "etc/conf.d/new",
            ".wh.gone"
        ]
    );

    let config: oci_spec::image::ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": { "type": "layers", "diff_ids": [first.layers[0].diff_id.to_string(), second.diff_id.to_string()] },
    }))
    .unwrap();
    let image = image::commit_image(
        &store,
        &config,
        vec![first.layers[0].clone(), second.clone()],
        &[],
    )
    .unwrap();
    let lowers = image::lower_dirs(&store, &image).unwrap();
    assert_eq!(lowers.len(), 2);
    // Made once: asking again gives the same directories, untouched.
    let mtime = std::fs::metadata(&lowers[0]).unwrap().modified().unwrap();
    assert_eq!(image::lower_dirs(&store, &image).unwrap(), lowers);
    assert_eq!(
        std::fs::metadata(&lowers[0]).unwrap().modified().unwrap(),
        mtime
    );

    // What applying the layers in order gives.
    let expected = work.path().join("expected");
    std::fs::create_dir(&expected).unwrap();
    for layer in &image.layers {
        let reader = image::decompressed(store.open_blob(&layer.digest).unwrap()).unwrap();
        unpack(reader, &expected).unwrap();
    }
    assert!(!expected.join("gone").exists() && !expected.join("etc/conf.d/old").exists());

    if !is_root() {
        #[expect(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!(
                "skipped the mounts: mounting overlayfs here needs root (or the executor's user namespace)"
            );
        }
        return;
    }
    let lowerdir = lowers
        .iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let merged = work.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("lowerdir={lowerdir},userxattr"))
        .arg(&merged)
        .status()
        .unwrap();
    assert!(mount.success());
    let merged_listing = listing(&merged);
    assert!(
        Command::new("umount")
            .arg(&merged)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(merged_listing, listing(&expected));

    // The same inside a new user namespace, as a rootless build mounts it.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={lowerdir},userxattr {0} && cd {0} && find . -printf '%p %y %s\\n' | sort",
        merged.display()
    );
    let output = Command::new("unshare")
        .args(["-Urm", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let in_namespace: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(in_namespace, listing(&expected));
}
