//! `frontend/dockerfile/dockerfile_parents_test.go` (on busybox instead of
//! alpine).

use super::{Bk, read};
use crate::support::Context;

/// testCopyParents
#[test]
fn copy_parents_keeps_the_source_path() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM scratch\nCOPY --parents foo1/foo2/bar /\n\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n",
        )
        .file("foo1/foo2/bar", "testing")
        .file("foo1/foo2/baz", "testing2");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "foo1/foo2/bar"), "testing");
    assert_eq!(read(&out, "test/foo1/foo2/bar"), "testing");
    assert_eq!(read(&out, "test/foo1/foo2/baz"), "testing2");
}

/// The base stage both tests below copy from.
const BASE: &str = "FROM alpine AS base
WORKDIR /test
RUN <<eot
\tset -ex
\tmkdir -p a/b/c/d/e
\tmkdir -p a/b2/c/d/e
\tmkdir -p a/b/c2/d/e
\tmkdir -p a/b/c2/d/e2
\ttouch a/b/c/d/foo
\ttouch a/b/c/d/e/bay
\ttouch a/b2/c/d/e/bar
\ttouch a/b/c2/d/e/baz
\ttouch a/b/c2/d/e2/baz
eot
";

/// One target: `COPY --from=base --parents SOURCES /out/`, then the shell
/// checks.
fn target(name: &str, sources: &str, checks: &[&str]) -> String {
    format!(
        "\nFROM alpine AS {name}\nCOPY --from=base --parents {sources} /out/\nRUN <<eot\n\tset -ex\n{}\neot\n",
        checks
            .iter()
            .map(|check| format!("\t{check}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// testCopyRelativeParents
#[test]
fn copy_parents_pivots_at_the_first_dot() {
    let targets = [
        (
            "middle",
            "/test/a/b/./c/d",
            &[
                "[ -d /out/c/d/e ]",
                "[ -f /out/c/d/foo ]",
                "[ ! -d /out/a ]",
                "[ ! -d /out/e ]",
            ][..],
        ),
        (
            "end",
            "/test/a/b/c/d/.",
            &["[ -d /out/test/a/b/c/d/e ]", "[ -f /out/test/a/b/c/d/foo ]"][..],
        ),
        (
            "start",
            "./test/a/b/c/d",
            &["[ -d /out/test/a/b/c/d/e ]", "[ -f /out/test/a/b/c/d/foo ]"][..],
        ),
        (
            "double",
            "/test/a/./b/./c",
            &["[ -d /out/b/c/d/e ]", "[ -f /out/b/c/d/foo ]"][..],
        ),
        (
            "wildcard",
            "/test/a/./*/c",
            &["[ -d /out/b/c/d/e ]", "[ -f /out/b2/c/d/e/bar ]"][..],
        ),
        (
            "doublewildcard",
            "/test/a/b*/./c/**/e",
            &[
                "[ -d /out/c/d/e ]",
                "[ -f /out/c/d/e/bay ]",
                "[ -f /out/c/d/e/bar ]",
            ][..],
        ),
        (
            "doubleinputs",
            "/test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar",
            &[
                "[ -f /out/d/e/baz ]",
                "[ ! -f /out/d/e/bay ]",
                "[ -f /out/d/e2/baz ]",
                "[ -f /out/c/d/e/bar ]",
            ][..],
        ),
    ];
    let mut dockerfile = BASE.to_owned();
    for (name, sources, checks) in targets {
        dockerfile.push_str(&target(name, sources, checks));
    }
    let bk = Bk::new();
    let context = Context::new().dockerfile(&dockerfile);
    let mut failed = Vec::new();
    for (name, ..) in targets {
        let run = bk.build(&context, &["--target", name]);
        if run.code != 0 {
            failed.push(format!("{name}: {}", run.stderr));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// testCopyParentsMissingDirectory
#[test]
fn copy_parents_with_missing_sources() {
    let mut dockerfile = "FROM alpine AS base
WORKDIR /test
RUN <<eot
\tset -ex
\tmkdir -p a/b/c/d/e
\ttouch a/b/c/d/foo
\ttouch a/b/c/d/e/bay
eot
"
    .to_owned();
    dockerfile.push_str(&target(
        "normal",
        "/test/a/b/c/d",
        &[
            "[ -d /out/test/a/b/c/d/e ]",
            "[ -f /out/test/a/b/c/d/e/bay ]",
            "[ ! -d /out/e ]",
            "[ ! -d /out/a ]",
        ],
    ));
    dockerfile.push_str(&target(
        "withpivot",
        "/test/a/b/./c/d",
        &[
            "[ -d /out/c/d/e ]",
            "[ -f /out/c/d/foo ]",
            "[ ! -d /out/a ]",
            "[ ! -d /out/e ]",
        ],
    ));
    dockerfile.push_str(
        "\nFROM alpine AS nonexistentfile\nCOPY --from=base --parents /test/nonexistent-file /out/\n",
    );
    dockerfile.push_str(&target(
        "wildcard-nonexistent",
        "/test/a/b2*/c",
        &["[ -d /out ]", "[ ! -d /out/a ]"],
    ));
    dockerfile.push_str(&target(
        "wildcard-afterpivot",
        "/test/a/b/./c2*",
        &["[ -d /out ]", "[ ! -d /out/a ]", "[ ! -d /out/c* ]"],
    ));
    let bk = Bk::new();
    let context = Context::new().dockerfile(&dockerfile);
    let mut failed = Vec::new();
    for name in [
        "normal",
        "withpivot",
        "wildcard-nonexistent",
        "wildcard-afterpivot",
    ] {
        let run = bk.build(&context, &["--target", name]);
        if run.code != 0 {
            failed.push(format!("{name}: {}", run.stderr));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // BuildKit: `failed to calculate checksum of ref ...: "/test/nonexistent-file": not found`.
    let stderr = bk.build_err(&context, &["--target", "nonexistentfile"]);
    assert!(
        stderr.contains("`/test/nonexistent-file`: not found"),
        "{stderr}"
    );
}
