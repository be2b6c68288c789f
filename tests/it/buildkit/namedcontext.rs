//! `frontend/dockerfile/dockerfile_namedcontext_test.go`: `--build-context
//! NAME=docker-image://REF` (BuildKit's `context:NAME` frontend option).
//! The images BuildKit pushes to a registry are built into the store here;
//! directory, OCI layout and gateway-input contexts are not supported yet
//! (README, Conformance).

use super::{Bk, read};
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

/// What strata cannot take yet is refused by name, not ignored.
#[test]
fn other_kinds_of_named_context_are_refused_clearly() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM base\n");
    for value in [
        "base=./dir",
        "base=oci-layout://layout",
        "base=https://example.com/x.tar",
    ] {
        let stderr = bk.build_err(&context, &["--build-context", value]);
        assert!(
            stderr.contains(&format!(
                "build context `{value}`: strata takes docker-image://REF contexts; a directory, oci-layout://, an archive URL or a git repository is not supported yet"
            )),
            "{stderr}"
        );
    }
    let stderr = bk.build_err(&context, &["--build-context", "base"]);
    assert!(
        stderr.contains("invalid build context `base`: expected NAME=VALUE"),
        "{stderr}"
    );
}
