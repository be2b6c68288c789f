//! Snapshot poisoning: an image whose layer claims the diff_id of another
//! image's genuine layer. Snapshots are named by diff_id, so without a
//! check the evil content would be run in place of the genuine one, by
//! every image that has it.

use crate::build::read_in;
use crate::support::{StoreDir, busybox_rootfs};

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(bytes));
    format!("{digest:x}")
}

/// A one-layer OCI archive whose layer blob is `layer` (gzip) and whose
/// config claims `diff_id` for it: an OCI layout records no uncompressed
/// digest the loader could check, as a registry does not.
fn archive_claiming(path: &std::path::Path, layer: &[u8], diff_id: &str, tag: &str) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", sha256_hex(layer)),
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&manifest)),
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    }))
    .unwrap();
    let blob = |content: &[u8]| format!("blobs/sha256/{}", sha256_hex(content));
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, content) in [
        (
            "oci-layout".to_owned(),
            &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
        ),
        ("index.json".to_owned(), &index[..]),
        (blob(&manifest), &manifest[..]),
        (blob(&config), &config[..]),
        (blob(layer), layer),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, name, content).unwrap();
    }
    builder.into_inner().unwrap();
}

#[test]
fn a_layer_claiming_another_layers_diff_id_is_never_run() {
    let store = StoreDir::new();
    let work = store.dir.path();
    // The genuine image: busybox and a file saying so.
    let rootfs = work.join("rootfs");
    busybox_rootfs(&rootfs);
    std::fs::write(rootfs.join("whoami"), "genuine\n").unwrap();
    let genuine = work.join("genuine.tar");
    let status = std::process::Command::new("tar")
        .args(["--sort=name", "--numeric-owner", "-C"])
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&genuine)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let genuine_bytes = std::fs::read(&genuine).unwrap();
    let diff_id = format!("sha256:{}", sha256_hex(&genuine_bytes));
    // The evil image: the same busybox, another `whoami`, claiming the
    // genuine layer's diff_id. Loaded first, it would make the snapshot.
    std::fs::write(rootfs.join("whoami"), "evil\n").unwrap();
    let evil_layer = work.join("evil-layer.tar");
    let status = std::process::Command::new("tar")
        .args(["--sort=name", "--numeric-owner", "-C"])
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&evil_layer)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    // Compressed, as registries serve layers: nothing but unpacking it
    // shows what it holds.
    let status = std::process::Command::new("gzip")
        .args(["-n", "-k"])
        .arg(&evil_layer)
        .status()
        .unwrap();
    assert!(status.success());
    let evil = work.join("evil.tar");
    let evil_gzip = std::fs::read(work.join("evil-layer.tar.gz")).unwrap();
    archive_claiming(&evil, &evil_gzip, &diff_id, "evil:1");
    let status = std::process::Command::new("gzip")
        .args(["-n", "-k"])
        .arg(&genuine)
        .status()
        .unwrap();
    assert!(status.success());
    let honest = work.join("honest.tar");
    let genuine_gzip = std::fs::read(work.join("genuine.tar.gz")).unwrap();
    archive_claiming(&honest, &genuine_gzip, &diff_id, "genuine:1");
    store.ok(work, &["load", "-i", evil.to_str().unwrap()]);
    let run = store.strata(work, &["run", "evil:1", "cat", "/whoami"]);
    // docker's code for a failure before the command runs.
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "does not match its image: its content is sha256:{}, the image claims diff_id {diff_id}",
            sha256_hex(&std::fs::read(&evil_layer).unwrap())
        )),
        "{}",
        run.stderr
    );
    assert!(!store.root().join("snapshots").join(&diff_id[7..]).exists());
    // The genuine image, loaded after, runs its own content.
    store.ok(work, &["load", "-i", honest.to_str().unwrap()]);
    assert_eq!(read_in(&store, "genuine:1", "cat /whoami"), "genuine\n");
}
