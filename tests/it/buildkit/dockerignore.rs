//! `frontend/dockerfile/dockerfile_dockerignore_test.go`.

use super::{Bk, read};
use crate::support::Context;

/// testDockerignore
#[test]
fn dockerignore_excludes_and_reincludes() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY . .\n")
        .file("foo", "foo-contents")
        .file("bar", "bar-contents")
        .file("baz", "baz-contents")
        .file("bay", "bay-contents")
        .file(".dockerignore", "\nba*\nDockerfile\n!bay\n.dockerignore\n");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "foo"), "foo-contents");
    assert_eq!(read(&out, "bay"), "bay-contents");
    for gone in [".dockerignore", "Dockerfile", "bar", "baz"] {
        assert!(!out.path().join("out").join(gone).exists(), "{gone}");
    }
}

/// testDockerignoreInvalid
#[test]
fn an_invalid_dockerignore_fails_at_once() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY . .\n")
        .file(".dockerignore", "!\n");
    let started = std::time::Instant::now();
    let stderr = bk.build_err(&context, &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(
        stderr.contains("invalid pattern `!`")
            && stderr.contains("illegal exclusion pattern: \"!\""),
        "{stderr}"
    );
}

/// testDockerignoreOverride
#[test]
fn a_dockerfiles_own_dockerignore_wins() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM busybox\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n")
        .file(".dockerignore", "\nbar\n")
        .file(
            "Dockerfile2",
            "FROM busybox\nCOPY . .\nRUN [ ! -f foo ] && [ -f bar ]\n",
        )
        .file("Dockerfile2.dockerignore", "\nfoo\n")
        .file("foo", "contents0")
        .file("bar", "contents0");
    bk.build_ok(&context, &[]);
    bk.build_ok(&context, &["-f", "Dockerfile2"]);
}
