//! Reads outside: an archive or a build context naming a host file must
//! not make strata read it, hash it or print it.

use std::path::{Path, PathBuf};

use crate::support::{Context, StoreDir};

/// A secret outside every root: its content must never show up.
const SECRET: &str = "root:$6$canary-secret-line:19000:0:99999:7:::\n";

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(bytes));
    format!("{digest:x}")
}

/// Write a secret canary (root-only, as /etc/shadow is) at `path`.
fn secret_canary(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, SECRET).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_owned()
}

enum Member<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// A tar archive of `members`, names and link targets exactly as given.
fn archive(path: &Path, members: &[Member<'_>]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    for member in members {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match member {
            Member::File(name, content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                builder.append_data(&mut header, name, *content).unwrap();
            }
            Member::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder.append_link(&mut header, name, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap();
}

/// A config whose only layer is the canary's content, as if the canary
/// were a layer: the old loader hashed the host file, found it matched and
/// stored it as a blob.
fn config_claiming(content: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(content))] },
    }))
    .unwrap()
}

fn manifest(config: &str, layer: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        { "Config": config, "RepoTags": ["evil:1"], "Layers": [layer] }
    ]))
    .unwrap()
}

/// Run strata in `cwd`; its exit code and stderr. Opening a fifo for
/// reading waits for a writer: a deadline makes the old behaviour fail a
/// test instead of hanging it.
fn with_deadline(cwd: &Path, args: &[&str]) -> (i32, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("strata {args:?} waited on a fifo");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Load `tar` into `store`; the run.
fn load(store: &StoreDir, cwd: &Path, tar: &Path) -> crate::support::Run {
    store.strata(cwd, &["load", "-i", tar.to_str().unwrap()])
}

fn assert_not_stored(store: &StoreDir, content: &[u8]) {
    let blob = store.root().join("blobs/sha256").join(sha256_hex(content));
    assert!(
        !blob.exists(),
        "the canary was read and stored as {}",
        blob.display()
    );
    assert!(
        !store
            .ok(store.dir.path(), &["images", "-q"])
            .contains(char::is_alphanumeric),
        "no image was recorded"
    );
}

#[test]
fn docker_archive_layers_naming_host_files_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let store = StoreDir::new();
    // The canary sits three levels above the staging directory the
    // archive is unpacked in (ROOT/tmp/<x>.load), beside the store.
    let canary = secret_canary(&store.dir.path().join("canary"));
    let climbing = "../../../canary";
    let canary_name = canary.to_str().unwrap().to_owned();
    for layer in [
        canary_name.as_str(),
        climbing,
        "/etc/passwd",
        "layers/../../x",
    ] {
        let tar = work.path().join("evil.tar");
        archive(
            &tar,
            &[
                Member::File("config.json", &config_claiming(SECRET.as_bytes())),
                Member::File("manifest.json", &manifest("config.json", layer)),
            ],
        );
        let run = load(&store, work.path(), &tar);
        assert_eq!(
            (run.code, run.stderr),
            (
                1,
                format!(
                    "error: failed to load images from {}\n\nCaused by:\n  manifest.json's Layers \
                     entry `{layer}` is not a path inside the archive (it is empty, absolute or \
                     climbs with `..`): refusing to read it\n",
                    tar.display()
                )
            ),
            "{layer}"
        );
        assert_not_stored(&store, SECRET.as_bytes());
    }
    // The config too.
    for config in [canary_name.as_str(), climbing] {
        let tar = work.path().join("evil-config.tar");
        archive(
            &tar,
            &[Member::File(
                "manifest.json",
                &manifest(config, "layer.tar"),
            )],
        );
        let run = load(&store, work.path(), &tar);
        assert_eq!(
            (run.code, run.stderr),
            (
                1,
                format!(
                    "error: failed to load images from {}\n\nCaused by:\n  manifest.json's Config \
                     `{config}` is not a path inside the archive (it is empty, absolute or climbs \
                     with `..`): refusing to read it\n",
                    tar.display()
                )
            ),
        );
    }
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), SECRET);
}

#[test]
fn a_layer_the_archive_links_to_a_host_file_is_resolved_inside_the_archive() {
    let work = tempfile::tempdir().unwrap();
    let store = StoreDir::new();
    let canary = secret_canary(&store.dir.path().join("canary"));
    let canary_name = canary.to_str().unwrap().to_owned();
    for target in [canary_name.as_str(), "../../../canary"] {
        for linked in ["layer.tar", "config.json", "manifest.json"] {
            let tar = work.path().join("linked.tar");
            let config = config_claiming(SECRET.as_bytes());
            let manifest = manifest("config.json", "layer.tar");
            let mut members = vec![Member::Symlink(linked, target)];
            for (name, content) in [
                ("config.json", &config[..]),
                ("manifest.json", &manifest[..]),
            ] {
                if name != linked {
                    members.push(Member::File(name, content));
                }
            }
            archive(&tar, &members);
            let run = load(&store, work.path(), &tar);
            let expected = if linked == "manifest.json" {
                // Not there inside the archive: no manifest at all.
                "not an image archive: it has neither `manifest.json` (docker save) nor \
                 `index.json` (OCI)"
                    .to_owned()
            } else {
                format!(
                    "failed to open (inside the archive) `{linked}`\n\nCaused by:\n  No such file \
                     or directory (os error 2)"
                )
            };
            assert_eq!(
                (run.code, run.stderr),
                (
                    1,
                    format!(
                        "error: failed to load images from {}\n\nCaused by:\n  {expected}\n",
                        tar.display()
                    )
                ),
                "{linked} -> {target}"
            );
            assert_not_stored(&store, SECRET.as_bytes());
        }
    }
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), SECRET);
}

#[test]
fn oci_layout_blobs_are_read_inside_the_layout() {
    let work = tempfile::tempdir().unwrap();
    let store = StoreDir::new();
    let canary = secret_canary(&work.path().join("canary"));
    // A layout whose manifest blob is a link to the canary, claiming the
    // canary's digest.
    let layout = work.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let digest = sha256_hex(SECRET.as_bytes());
    std::os::unix::fs::symlink(&canary, layout.join("blobs/sha256").join(&digest)).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{digest}"),
                "size": SECRET.len(),
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    let run = store.strata(work.path(), &["load", "-i", "layout"]);
    assert_eq!(
        (run.code, run.stderr),
        (
            1,
            format!(
                "error: failed to load images from layout\n\nCaused by:\n  failed to open (inside \
                 the archive) `blobs/sha256/{digest}`\n\nCaused by:\n  No such file or directory \
                 (os error 2)\n"
            )
        )
    );
    assert_not_stored(&store, SECRET.as_bytes());
}

#[test]
fn a_dockerfile_linked_to_a_secret_outside_the_context_is_not_printed() {
    let outside = tempfile::tempdir().unwrap();
    let canary = secret_canary(&outside.path().join("shadow"));
    let context = Context::new();
    let relative = {
        // ../../<tmp>/shadow, climbing out of the context.
        let depth = context.path().components().count();
        format!(
            "{}{}",
            "../".repeat(depth),
            canary.display().to_string().trim_start_matches('/')
        )
    };
    assert_eq!(
        std::fs::canonicalize(context.path().join(&relative)).unwrap(),
        std::fs::canonicalize(&canary).unwrap()
    );
    for target in [canary.to_str().unwrap(), relative.as_str()] {
        let link = context.path().join("Dockerfile");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        let expected = |shown: &str, dir: &str| {
            format!(
                "error: failed to read Dockerfile `{shown}`\n\nCaused by:\n  it is a symbolic link \
                 to `{target}`, which is resolved inside `{dir}` (the Dockerfile's directory), as \
                 BuildKit resolves it, and is not there\n\nCaused by:\n  No such file or directory \
                 (os error 2)\n"
            )
        };
        // The default Dockerfile of the context, a plan or a build.
        for args in [&["build", "--dry-run", "."][..], &["build", "."]] {
            let run = context.strata(args);
            assert_eq!(
                (run.code, run.stderr.as_str()),
                (1, expected("Dockerfile", ".").as_str())
            );
            assert!(!run.stderr.contains("canary-secret") && !run.stdout.contains("canary-secret"));
        }
        // -f naming the link: resolved inside its own directory, as
        // BuildKit shares the -f file's directory and reads the name in it.
        let elsewhere = tempfile::tempdir().unwrap();
        let run = crate::support::strata_in(
            elsewhere.path(),
            &[
                "build",
                "--dry-run",
                "-f",
                link.to_str().unwrap(),
                context.path().to_str().unwrap(),
            ],
            None,
            &[],
        );
        assert_eq!(
            (run.code, run.stderr),
            (
                1,
                expected(link.to_str().unwrap(), context.path().to_str().unwrap())
            )
        );
    }
    // A link that stays inside is followed, as BuildKit follows it; an
    // absolute one names the context's own file.
    let context = Context::new().file("etc/shadow", "FROM scratch\n");
    std::os::unix::fs::symlink("/etc/shadow", context.path().join("Dockerfile")).unwrap();
    let run = context.strata(&["build", "--dry-run", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), SECRET);
}

#[test]
fn a_dockerfile_that_is_a_fifo_is_refused_without_waiting() {
    let context = Context::new();
    crate::support::run_ok(
        std::process::Command::new(crate::support::require("mkfifo"))
            .arg(context.path().join("Dockerfile")),
    );
    assert_eq!(
        with_deadline(context.path(), &["build", "--dry-run", "."]),
        (
            1,
            "error: failed to read Dockerfile `Dockerfile`\n\nCaused by:\n  it is not a regular file\n"
                .to_owned()
        )
    );
}

#[test]
fn a_dockerignore_linked_to_a_host_file_is_resolved_inside_the_context() {
    // Read from the host, the secret's lines would be ignore patterns, and
    // which files a build gets would tell what the secret holds.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "canary-secret-name\n").unwrap();
    let secret = outside.path().join("secret");
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY . /\n")
        .file("canary-secret-name", "x")
        .file("other", "y");
    std::os::unix::fs::symlink(&secret, context.path().join(".dockerignore")).unwrap();
    let store = StoreDir::new();
    let out = store.dir.path().join("out");
    let output = format!("type=local,dest={}", out.display());
    store.ok(context.path(), &["build", "--output", &output, "."]);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".dockerignore", "Dockerfile", "canary-secret-name", "other"],
        "the host file's line must not have excluded a file"
    );
    // Inside the context, the same link names the context's own file.
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY . /\n")
        .file("canary-secret-name", "x")
        .file(
            secret.strip_prefix("/").unwrap().to_str().unwrap(),
            "canary-secret-name\n",
        );
    std::os::unix::fs::symlink(&secret, context.path().join(".dockerignore")).unwrap();
    let out = store.dir.path().join("out-inside");
    let output = format!("type=local,dest={}", out.display());
    store.ok(context.path(), &["build", "--output", &output, "."]);
    assert!(out.join("Dockerfile").exists());
    assert!(!out.join("canary-secret-name").exists());
}

#[test]
fn an_oci_layout_blob_that_is_a_fifo_is_refused_without_waiting() {
    let work = tempfile::tempdir().unwrap();
    let store = StoreDir::new();
    let layout = work.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let digest = sha256_hex(b"never read");
    crate::support::run_ok(
        std::process::Command::new(crate::support::require("mkfifo"))
            .arg(layout.join("blobs/sha256").join(&digest)),
    );
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{digest}"),
                "size": 10,
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    let output = with_deadline(
        work.path(),
        &[
            "--root",
            store.root().to_str().unwrap(),
            "load",
            "-i",
            "layout",
        ],
    );
    assert_eq!(
        output,
        (
            1,
            format!(
                "error: failed to load images from layout\n\nCaused by:\n  blob \
                 `blobs/sha256/{digest}` is not a regular file in the archive: refusing to read it\n"
            )
        )
    );
}

/// A `--build-context NAME=DIR` directory is read as the build context
/// is: a symlink in it (or its `.dockerignore`) that names a host path is
/// resolved inside the directory by COPY and `FROM`, and a bind mount
/// through one that leaves it is refused.
#[test]
fn a_named_directory_context_is_read_inside_it() {
    let outside = tempfile::tempdir().unwrap();
    secret_canary(&outside.path().join("secret"));
    let named = Context::new().file("canary-secret-name", "x");
    std::os::unix::fs::symlink(outside.path(), named.path().join("link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        named.path().join(".dockerignore"),
    )
    .unwrap();
    let store = crate::build::store_with_base();
    let ctx = format!("ctx={}", named.path().display());
    // COPY through the link: resolved inside, where there is no secret.
    let context = Context::new().dockerfile("FROM scratch\nCOPY --from=ctx /link/secret /got\n");
    let run = store.strata(
        context.path(),
        &["build", "-q", "--build-context", &ctx, "."],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("canary-secret-line"), "{}", run.stderr);
    // FROM it: the link is a link, and the host file's line excluded
    // nothing.
    let context = Context::new().dockerfile("FROM ctx\n");
    let out = store.dir.path().join("out");
    let output = format!("type=local,dest={}", out.display());
    store.ok(
        context.path(),
        &[
            "build",
            "-q",
            "--build-context",
            &ctx,
            "--output",
            &output,
            ".",
        ],
    );
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        outside.path()
    );
    assert!(out.join("canary-secret-name").exists());
    assert!(!out.join("secret").exists());
    // A bind mount through the link leaves the directory: refused.
    let context = Context::new()
        .dockerfile("FROM base\nRUN --mount=from=ctx,source=link,target=/m cat /m/secret\n");
    let run = store.strata(
        context.path(),
        &["build", "-q", "--build-context", &ctx, "."],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("canary-secret-line"), "{}", run.stderr);
    assert!(run.stderr.contains("link"), "{}", run.stderr);
}
