//! `frontend/dockerfile/dockerfile_namedcontext_test.go`: `--build-context
//! NAME=VALUE` (BuildKit's `context:NAME` frontend option): an image, a
//! directory, an OCI layout, a URL or a git repository. The images
//! BuildKit pushes to a registry are built into the store here; gateway
//! inputs (`input:`) have no command line and are not ported.

use super::{Bk, HttpServer, Served, read};
use crate::support::Context;

/// `alpine-like`: busybox with `/etc/alpine-release`, a `FOOBAR` and a
/// `PATH` of its own, as the image testNamedImageContext pushes.
fn with_alpine_like() -> Bk {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox\nRUN echo 3.20.0 > /etc/alpine-release\nENV PATH=/foobar:$PATH\nENV FOOBAR=foobar\n",
    );
    bk.build_ok(&context, &["-t", "alpine-like"]);
    bk
}

/// testNamedImageContext, first and second parts: `FROM busybox` is the
/// named image, its files and its config's environment.
#[test]
fn a_named_image_context_replaces_an_image() {
    let bk = with_alpine_like();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN cat /etc/alpine-release > /out\nRUN env | grep PATH > /env_path\nRUN env | grep FOOBAR > /env_foobar\nFROM scratch\nCOPY --from=base /out /env_path /env_foobar /\n",
    );
    let out = bk.export(
        &context,
        &["--build-context", "busybox=docker-image://alpine-like"],
    );
    assert_eq!(read(&out, "out"), "3.20.0\n");
    assert_eq!(read(&out, "env_foobar"), "FOOBAR=foobar\n");
    assert!(
        read(&out, "env_path").contains("/foobar:"),
        "{}",
        read(&out, "env_path")
    );
}

/// testNamedImageContext, third part: a named context with a stage's name
/// replaces the whole stage (its FROM and its instructions).
#[test]
fn a_named_image_context_replaces_a_stage() {
    let bk = with_alpine_like();
    let context = Context::new().dockerfile(
        "FROM busybox AS parent\nFROM parent AS base\nRUN echo base > /out\nFROM base\nRUN [ -f /etc/alpine-release ]\nRUN [ ! -f /out ]\n",
    );
    bk.build_ok(
        &context,
        &["--build-context", "base=docker-image://alpine-like"],
    );
    // Without it, the stage is built as written: the checks fail.
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("RUN [ -f /etc/alpine-release ]"),
        "{stderr}"
    );
}

/// testNamedImageContextScratch
#[test]
fn a_named_context_of_scratch_is_empty() {
    let bk = Bk::new();
    let context =
        Context::new().dockerfile("FROM busybox AS build\nCOPY <<EOF /out\nhello world!\nEOF\n");
    let out = bk.export(
        &context,
        &["--build-context", "busybox=docker-image://scratch"],
    );
    let names: Vec<String> = std::fs::read_dir(out.path().join("out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out"]);
    assert_eq!(read(&out, "out"), "hello world!\n");
}

/// testEagerNamedContextLookup: a context for a stage the target does not
/// need is never resolved, even if it names nothing.
#[test]
fn named_contexts_of_unused_stages_are_never_resolved() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM broken AS notused\nFROM alpine AS base\nRUN echo base > /foo\nFROM busybox AS otherstage\nFROM scratch\nCOPY --from=base /foo /foo\n",
    );
    let out = bk.export(
        &context,
        &[
            "--pull=never",
            "--build-context",
            "notused=docker-image://nosuchimage",
            "--build-context",
            "busybox=docker-image://dontexist",
        ],
    );
    assert_eq!(read(&out, "foo"), "base\n");
}

/// `COPY --from` and `RUN --mount from=` of an image name go through the
/// named context too (BuildKit makes a stage of each such image).
#[test]
fn copy_from_and_mount_from_an_image_use_the_named_context() {
    let bk = with_alpine_like();
    let context = Context::new().dockerfile(
        "FROM busybox\nCOPY --from=someimage /etc/alpine-release /copied\nRUN --mount=from=someimage,target=/m cp /m/etc/alpine-release /mounted\nFROM scratch\nCOPY --from=0 /copied /mounted /\n",
    );
    let out = bk.export(
        &context,
        &["--build-context", "someimage=docker-image://alpine-like"],
    );
    assert_eq!(read(&out, "copied"), "3.20.0\n");
    assert_eq!(read(&out, "mounted"), "3.20.0\n");
}

/// testNamedLocalContext: a stage named by a directory context is that
/// directory, less what the directory's own `.dockerignore` leaves out;
/// the stage's instructions do not run.
#[test]
fn a_named_directory_replaces_a_stage() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /o* /\n",
    );
    let dir = Context::new()
        .file("out", "dummy-result")
        .file("out2", "dummy-result")
        .file(".dockerignore", "out2\n");
    let base = format!("base={}", dir.path().display());
    let out = bk.export(&context, &["--build-context", &base]);
    assert_eq!(read(&out, "out"), "dummy-result");
    assert!(!out.path().join("out/out2").exists());
}

/// Ours, after testNamedLocalContext: `COPY --from`, `RUN --mount from=`
/// and `FROM` of a directory context named like an image. The build
/// context's `.dockerignore` does not apply to it, its own does, and the
/// main context is still the main context.
#[test]
fn a_named_directory_is_read_by_copy_mount_and_from() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox AS use\nCOPY --from=assets /a.txt /copied\nRUN --mount=from=assets,target=/m cat /m/a.txt /m/dir/b.txt > /mounted && ! test -e /m/hidden\nCOPY main.txt /\nFROM assets AS snap\nFROM scratch\nCOPY --from=use /copied /mounted /main.txt /\nCOPY --from=snap / /snap/\n",
        )
        .file("main.txt", "main\n")
        .file(".dockerignore", "dir\n");
    let assets = Context::new()
        .file("a.txt", "a\n")
        .file("dir/b.txt", "b\n")
        .file("hidden", "no\n")
        .file(".dockerignore", "hidden\n");
    let named = format!("assets={}", assets.path().display());
    let out = bk.export(&context, &["--build-context", &named]);
    assert_eq!(read(&out, "copied"), "a\n");
    assert_eq!(read(&out, "mounted"), "a\nb\n");
    assert_eq!(read(&out, "main.txt"), "main\n");
    assert_eq!(read(&out, "snap/a.txt"), "a\n");
    assert_eq!(read(&out, "snap/dir/b.txt"), "b\n");
    assert!(!out.path().join("out/snap/hidden").exists());
    // A change in the directory is a change of the steps that read it.
    std::fs::write(assets.path().join("a.txt"), "A\n").unwrap();
    let again = bk.export(&context, &["--build-context", &named]);
    assert_eq!(read(&again, "copied"), "A\n");
    assert_eq!(read(&again, "snap/a.txt"), "A\n");
}

/// Ours: an image built `FROM` a directory context has the directory as
/// its first layer, with a history entry for it, and the config of an
/// empty image (BuildKit's `emptyImage`: `PATH`, `WorkingDir` `/`).
#[test]
fn an_image_from_a_named_directory_has_its_layer_and_history() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM files\nLABEL a=b\n");
    let files = Context::new().file("f", "x");
    let named = format!("files={}", files.path().display());
    let layout = bk.oci(&context, "", &["--build-context", &named]);
    let config = &layout.config;
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        1,
        "{config}"
    );
    assert_eq!(config["config"]["WorkingDir"], "/", "{config}");
    assert_eq!(
        config["config"]["Env"][0],
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    let history: Vec<(&str, bool)> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["created_by"].as_str().unwrap_or_default(),
                entry["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("[context files] load from client", false),
            ("LABEL a=b", true)
        ]
    );
}

/// testNamedOCILayoutContext: an OCI layout's image, by digest, replaces
/// a stage (`base`) and an image (`foo`, whose `ENV foo=bar` the RUN on
/// it sees). Also by tag, and the errors of a layout that has not got it.
#[test]
fn a_named_oci_layout_replaces_a_stage_and_an_image() {
    let bk = Bk::new();
    let first = Context::new().dockerfile(
        "FROM busybox\nWORKDIR /test\nRUN sh -c \"echo -n first > out\"\nRUN sh -c \"echo -n second > out2\"\nENV foo=bar\n",
    );
    let layouts = tempfile::tempdir().unwrap();
    let layout = layouts.path().join("layout");
    let dest = format!(
        "type=oci,dest={},tar=false,name=example.com/oci:v1",
        layout.display()
    );
    bk.build_ok(&first, &["--output", &dest]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN cat /etc/alpine-release > out\n\nFROM foo AS imported\nRUN echo -n $foo > outfoo\n\nFROM scratch\nCOPY --from=base /test/o* /\nCOPY --from=imported /test/outfoo /\n",
    );
    let by_digest = format!("oci-layout://{}@{digest}", layout.display());
    let out = bk.export(
        &context,
        &[
            "--build-context",
            &format!("base={by_digest}"),
            "--build-context",
            &format!("foo={by_digest}"),
        ],
    );
    assert_eq!(read(&out, "out"), "first");
    assert_eq!(read(&out, "out2"), "second");
    assert_eq!(read(&out, "outfoo"), "bar");
    // By tag, as buildx reads it (`org.opencontainers.image.ref.name`),
    // and never pulled whatever --pull says.
    let by_tag = format!("oci-layout://{}:v1", layout.display());
    let out = bk.export(
        &context,
        &[
            "--pull=always",
            "--build-context",
            &format!("base={by_tag}"),
            "--build-context",
            &format!("foo={by_tag}"),
        ],
    );
    assert_eq!(read(&out, "outfoo"), "bar");
    let stderr = bk.build_err(
        &context,
        &[
            "--build-context",
            &format!("foo=oci-layout://{}", layout.display()),
        ],
    );
    assert!(
        stderr.contains(&format!(
            "build context `foo`: cannot read the OCI layout `{}`",
            layout.display()
        )) && stderr.contains("index.json has no image tagged `latest`"),
        "{stderr}"
    );
    let stderr = bk.build_err(
        &context,
        &[
            "--build-context",
            &format!("foo=oci-layout://{}@sha256:12", layout.display()),
        ],
    );
    assert!(
        stderr.contains("the oci-layout digest must be sha256:<64 hex digits>"),
        "{stderr}"
    );
}

/// Ours, after BuildKit's namedcontext.go: an `http(s)://` context is the
/// file it serves, as `/context` (mode 0600); one that names a git
/// repository is its tree.
#[test]
fn a_named_url_is_a_file_or_a_repository() {
    let bk = Bk::new();
    let server = HttpServer::new(vec![Served {
        path: "/data.bin",
        content: b"served\n".to_vec(),
        last_modified: None,
    }]);
    let context = Context::new().dockerfile(
        "FROM busybox\nCOPY --from=remote /context /got\nRUN stat -c %a /got > /mode\nFROM scratch\nCOPY --from=0 /got /mode /\n",
    );
    let named = format!("remote={}", server.url("/data.bin"));
    let out = bk.export(&context, &["--build-context", &named]);
    assert_eq!(read(&out, "got"), "served\n");
    assert_eq!(read(&out, "mode"), "600\n");

    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    super::git::init(&repo, "");
    super::git::shell(
        &repo,
        &[
            "echo tracked > file",
            "git add file",
            "git commit -q -m one",
        ],
    );
    let git = HttpServer::git(root.path());
    let context = Context::new().dockerfile("FROM src\n");
    let named = format!("src={}#master", git.url("/repo/.git"));
    let out = bk.export(&context, &["--build-context", &named]);
    assert_eq!(read(&out, "file"), "tracked\n");
    assert!(!out.path().join("out/.git").exists());
}

/// What a `--build-context` cannot be is refused by name, not ignored.
#[test]
fn bad_named_contexts_are_refused_clearly() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM base\n");
    let stderr = bk.build_err(&context, &["--build-context", "base=./nosuchdir"]);
    assert!(
        stderr.contains("build context `base`: `./nosuchdir` is not a directory"),
        "{stderr}"
    );
    let stderr = bk.build_err(&context, &["--build-context", "base=docker-image://"]);
    assert!(
        stderr.contains("build context `base=docker-image://`: expected docker-image://REF, oci-layout://PATH[:TAG][@DIGEST], a URL or a directory"),
        "{stderr}"
    );
    let stderr = bk.build_err(&context, &["--build-context", "base"]);
    assert!(
        stderr.contains("invalid build context `base`: expected NAME=VALUE"),
        "{stderr}"
    );
}

/// testLocalCustomSessionID: the Dockerfile, the build context and a
/// named directory (`base`, replacing `FROM scratch AS base`) are three
/// directories.
#[test]
fn the_dockerfile_the_context_and_a_named_directory_are_three_places() {
    let bk = Bk::new();
    let dockerfile = Context::new().dockerfile(
        "FROM scratch AS base\nFROM scratch\nCOPY out /out1\nCOPY --from=base /another /out2\n",
    );
    let context = Context::new().file("out", "contents1");
    let basedir = Context::new().file("another", "contents2");
    let file = dockerfile.path().join("Dockerfile");
    let base = format!("base={}", basedir.path().display());
    let out = bk.export(
        &context,
        &["-f", file.to_str().unwrap(), "--build-context", &base],
    );
    assert_eq!(read(&out, "out1"), "contents1");
    assert_eq!(read(&out, "out2"), "contents2");
}

/// Build `context` as an OCI layout directory (`type=oci,tar=false`): the
/// layout and the digest of its one manifest.
fn layout_of(bk: &Bk, context: &Context) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("type=oci,dest={},tar=false", dir.path().display());
    bk.build_ok(context, &["--output", &dest]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    (dir, digest)
}

/// testNamedOCILayoutContextExport: an image made of nothing but an OCI
/// layout's image has that image's config.
#[test]
fn an_image_from_an_oci_layout_keeps_its_config() {
    let bk = Bk::new();
    let (layout, digest) = layout_of(
        &bk,
        &Context::new().dockerfile("FROM scratch\nWORKDIR /test\nENV foo=bar\n"),
    );
    let context = Context::new().dockerfile("FROM nonexistent AS base\n");
    let named = format!(
        "nonexistent=oci-layout://{}@{digest}",
        layout.path().display()
    );
    let config = bk.oci(&context, "", &["--build-context", &named]).config;
    assert_eq!(config["config"]["WorkingDir"], "/test", "{config}");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("foo=bar")),
        "{config}"
    );
}

/// testOnBuildNamedContext: the ONBUILD trigger of an OCI layout's image
/// copies `--from` a stage of the Dockerfile that uses it.
#[test]
fn an_onbuild_trigger_of_a_named_image_copies_from_this_dockerfiles_stage() {
    let bk = Bk::new();
    let (layout, digest) = layout_of(
        &bk,
        &Context::new()
            .dockerfile("FROM busybox:latest\nONBUILD COPY --from=otherstage /testfile /out/foo\n"),
    );
    let context = Context::new().dockerfile(
        "FROM alpine AS otherstage\nRUN echo -n \"hello\" > /testfile\nFROM base AS inputstage\nFROM scratch\nCOPY --from=inputstage /out/foo /bar\n",
    );
    let named = format!("base=oci-layout://{}@{digest}", layout.path().display());
    let out = bk.export(&context, &["--build-context", &named]);
    assert_eq!(read(&out, "bar"), "hello");
}

/// testNamedImageContextPlatform: a named context is resolved for the
/// platform its FROM names (`$BUILDPLATFORM`), not the target's, so a
/// RUN on it runs here whatever `--platform` says.
#[test]
fn a_named_image_is_resolved_for_the_platform_its_from_names() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile("FROM --platform=$BUILDPLATFORM alpine:latest\n"),
        &["-t", "testnamedimagecontextplatform:latest"],
    );
    let context = Context::new()
        .dockerfile("FROM --platform=$BUILDPLATFORM alpine AS target\nRUN echo hello\n");
    bk.build_ok(
        &context,
        &[
            "--build-context",
            "busybox=docker-image://testnamedimagecontextplatform:latest",
            "--platform",
            "darwin/ppc64le",
        ],
    );
}

/// testNamedImageContextTimestamps: an image built on a named image is
/// created when it is built, not when the named image was.
#[test]
fn an_image_on_a_named_image_has_its_own_creation_time() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM alpine\nRUN echo foo >> /test\n");
    bk.build_ok(&context, &["-t", "timestamps:latest"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    bk.build_ok(
        &context,
        &[
            "--build-context",
            "alpine=docker-image://timestamps:latest",
            "-t",
            "derived:latest",
        ],
    );
    let created = |image: &str| {
        let text = bk.inspect(image)["Created"].as_str().unwrap().to_owned();
        strata_solver::time::parse_rfc3339(&text).unwrap_or_else(|| panic!("{text}"))
    };
    let (base, derived) = (created("timestamps:latest"), created("derived:latest"));
    assert!(derived > base, "{base} then {derived}");
    assert!(derived - base < 600, "{base} then {derived}");
}

/// Ours: a directory context named `context` is that directory, not the
/// build context.
#[test]
fn a_directory_named_context_is_not_the_build_context() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY --from=context /which /from-named\nCOPY which /from-main\n")
        .file("which", "main");
    let named = Context::new().file("which", "named");
    let value = format!("context={}", named.path().display());
    let out = bk.export(&context, &["--build-context", &value]);
    assert_eq!(read(&out, "from-named"), "named");
    assert_eq!(read(&out, "from-main"), "main");
}

/// Ours: an OCI layout whose entry is an index (what buildx exports: an
/// image with its attestations, or several platforms) gives its image for
/// the build's platform, never an attestation; a platform it has not got
/// is an error that lists those it has.
#[test]
fn a_named_oci_layout_index_gives_the_image_of_the_build_platform() {
    use sha2::Digest as _;
    let bk = Bk::new();
    let (layout, here) = layout_of(
        &bk,
        &Context::new().dockerfile("FROM scratch\nCOPY <<EOF /which\nhere\nEOF\n"),
    );
    let (other_layout, there) = layout_of(
        &bk,
        &Context::new().dockerfile("FROM scratch\nCOPY <<EOF /which\nthere\nEOF\n"),
    );
    // One layout with both images' blobs.
    for entry in std::fs::read_dir(other_layout.path().join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let _ = std::fs::copy(
            entry.path(),
            layout.path().join("blobs/sha256").join(entry.file_name()),
        );
    }
    let size = |digest: &str| {
        std::fs::metadata(
            layout
                .path()
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
        .len()
    };
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let entry = |digest: &str, os: &str, architecture: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size(digest),
            "platform": {"os": os, "architecture": architecture},
        })
    };
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            entry(&there, "unknown", "unknown"),
            entry(&here, "linux", arch),
            entry(&there, "linux", "s390x"),
        ],
    }))
    .unwrap();
    let nested_digest = format!("sha256:{:x}", sha2::Sha256::digest(&nested));
    std::fs::write(
        layout
            .path()
            .join("blobs/sha256")
            .join(nested_digest.trim_start_matches("sha256:")),
        &nested,
    )
    .unwrap();
    std::fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": nested_digest,
                "size": nested.len(),
                "annotations": {
                    "org.opencontainers.image.ref.name": "multi",
                    "io.containerd.image.name": "docker.io/library/multi-loaded:latest",
                },
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    let context = Context::new().dockerfile("FROM base\n");
    let named = format!("base=oci-layout://{}:multi", layout.path().display());
    let out = bk.export(&context, &["--build-context", &named]);
    assert_eq!(read(&out, "which"), "here\n");
    let out = bk.export(
        &context,
        &["--build-context", &named, "--platform", "linux/s390x"],
    );
    assert_eq!(read(&out, "which"), "there\n");
    // `strata load` of the layout takes this machine's image too.
    bk.store.ok(
        bk.store.dir.path(),
        &["load", "-i", layout.path().to_str().unwrap()],
    );
    let out = bk.export(
        &Context::new().dockerfile(
            "FROM multi-loaded
",
        ),
        &[],
    );
    assert_eq!(read(&out, "which"), "here\n");
    let stderr = bk.build_err(
        &context,
        &["--build-context", &named, "--platform", "linux/riscv64"],
    );
    assert!(
        stderr.contains(&format!(
            "has no image for linux/riscv64 (it has linux/{arch}, linux/s390x)"
        )),
        "{stderr}"
    );
}
