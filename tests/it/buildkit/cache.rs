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
