//! `frontend/dockerfile/dockerfile_cache_test.go`: what `--no-cache` and
//! `--no-cache-filter` (BuildKit's `no-cache` option, empty or a list of
//! stages) run again.

use super::{Bk, read};
use crate::support::Context;

/// testNoCache
#[test]
fn no_cache_runs_every_step_and_no_cache_filter_only_its_stages() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS s0\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique\nFROM busybox AS s1\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique2\nFROM scratch\nCOPY --from=s0 unique /\nCOPY --from=s1 unique2 /\n",
    );
    let first = bk.export(&context, &[]);
    let second = bk.export(&context, &["--no-cache"]);
    assert_ne!(read(&first, "unique"), read(&second, "unique"));
    assert_ne!(read(&first, "unique2"), read(&second, "unique2"));
    let third = bk.export(&context, &["--no-cache-filter", "s1"]);
    assert_eq!(read(&second, "unique"), read(&third, "unique"));
    assert_ne!(read(&second, "unique2"), read(&third, "unique2"));
    assert_ne!(read(&first, "unique2"), read(&third, "unique2"));
}

/// testCacheMountModeNoCache: a step run with `--no-cache` starts from an
/// empty cache mount of its own, and what it writes there is not kept.
/// strata shared the mount and counted `def` in the third build.
#[test]
fn a_no_cache_build_gets_a_fresh_cache_mount() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nARG FOO=abc\nRUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && ls -l /cache | wc -l > /out\n\nFROM scratch\nCOPY --from=base /out /\n",
    );
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "out"), "2\n");
    let out = bk.export(&context, &["--no-cache", "--build-arg", "FOO=def"]);
    assert_eq!(read(&out, "out"), "2\n");
    let out = bk.export(&context, &["--build-arg", "FOO=ghi"]);
    assert_eq!(read(&out, "out"), "3\n");
    // Nothing of the fresh mount is left behind.
    let check = bk.store.ok(bk.store.dir.path(), &["system", "check"]);
    assert!(!check.contains("temporary"), "{check}");
}

/// testWildcardRenameCache: a COPY by wildcard is keyed by the files it
/// matches, so renaming the only match runs it again (and the RUN after it
/// then fails), where a key of the pattern alone would hit.
#[test]
fn a_wildcard_copy_is_run_again_when_its_match_is_renamed() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM alpine\nCOPY file* /files/\nRUN ls /files/file1\n")
        .file("file1", "foo");
    bk.build_ok(&context, &[]);
    std::fs::rename(context.path().join("file1"), context.path().join("file2")).unwrap();
    let stderr = bk.build_err(&context, &[]);
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
}

/// Ours, after testMountRWCache: `COPY --from` a stage is keyed by what
/// it copies, not by the steps that made it. A stage made again with the
/// same files leaves the copy and what follows it cached; other content,
/// another mode or another owner of a copied file runs them again.
#[test]
fn copy_from_a_stage_is_cached_by_what_it_copies() {
    let bk = Bk::new();
    let dockerfile = |prepare: &str| {
        format!(
            "FROM busybox AS build\nCOPY cachebust /\nRUN mkdir -p /out && echo foo > /out/foo{prepare}\nFROM busybox\nCOPY --from=build /out /in\nRUN cat /dev/urandom | head -c 100 | sha256sum > /unique\nFROM scratch\nCOPY --from=1 /unique /unique\n"
        )
    };
    let context = Context::new()
        .dockerfile(&dockerfile(""))
        .file("cachebust", "0");
    let unique = |context: &Context| read(&bk.export(context, &[]), "unique");
    let first = unique(&context);
    std::fs::write(context.path().join("cachebust"), "1").unwrap();
    assert_eq!(unique(&context), first, "the same files were copied");
    for prepare in [
        " && echo bar > /out/foo",
        " && chmod 600 /out/foo",
        " && chown 1:1 /out/foo",
        " && ln -s foo /out/link",
    ] {
        let context = Context::new()
            .dockerfile(&dockerfile(prepare))
            .file("cachebust", "1");
        assert_ne!(
            unique(&context),
            first,
            "{prepare}: other files were copied"
        );
    }
}

/// Ours, after testMountRWCache: a bind mount of a stage's directory is
/// keyed by what it shows; the whole stage (no `source`) by the stage's
/// steps.
#[test]
fn a_bind_mount_of_a_stage_directory_is_cached_by_what_it_shows() {
    let bk = Bk::new();
    let dockerfile = |prepare: &str, mount: &str| {
        format!(
            "FROM busybox AS build\nCOPY cachebust /\nRUN mkdir -p /out && echo foo > /out/foo{prepare}\nFROM busybox\nRUN --mount=from=build,{mount}target=/m cat /dev/urandom | head -c 100 | sha256sum > /unique\nFROM scratch\nCOPY --from=1 /unique /unique\n"
        )
    };
    let unique = |context: &Context| read(&bk.export(context, &[]), "unique");
    let context = Context::new()
        .dockerfile(&dockerfile("", "source=out,"))
        .file("cachebust", "0");
    let first = unique(&context);
    std::fs::write(context.path().join("cachebust"), "1").unwrap();
    assert_eq!(unique(&context), first, "the mount shows the same files");
    for prepare in [" && echo bar > /out/foo", " && chmod 700 /out"] {
        let context = Context::new()
            .dockerfile(&dockerfile(prepare, "source=out,"))
            .file("cachebust", "1");
        assert_ne!(
            unique(&context),
            first,
            "{prepare}: the mount shows other files"
        );
    }
    // The whole stage: its steps ran again, so the RUN does.
    let context = Context::new()
        .dockerfile(&dockerfile("", ""))
        .file("cachebust", "0");
    let whole = unique(&context);
    std::fs::write(context.path().join("cachebust"), "1").unwrap();
    assert_ne!(unique(&context), whole);
}

/// testReproducibleIDs: the same build under two names is the same image,
/// its ID and its manifest.
#[test]
fn the_same_build_under_two_names_is_the_same_image() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM busybox\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n")
        .file("foo", "foo-contents");
    bk.build_ok(&context, &["-t", "example.com/moby/dockerfileids:test"]);
    bk.build_ok(&context, &["-t", "example.com/moby/dockerfileids2:test"]);
    let first = bk.inspect("example.com/moby/dockerfileids:test");
    let second = bk.inspect("example.com/moby/dockerfileids2:test");
    assert_eq!(first["Id"], second["Id"]);
    assert_eq!(
        first["Metadata"]["ManifestDigest"],
        second["Metadata"]["ManifestDigest"]
    );
    assert!(
        first["Metadata"]["ManifestDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}
