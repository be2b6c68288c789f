//! `frontend/dockerfile/dockerfile_mount_test.go`.

use super::{Bk, read};
use crate::support::Context;

/// Build a Dockerfile on an empty context, expecting success.
fn builds(dockerfile: &str) {
    Bk::new().build_ok(&Context::new().dockerfile(dockerfile), &[]);
}

/// testMountContext
#[test]
fn a_mount_without_a_type_binds_the_context() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nRUN --mount=target=/context [ \"$(cat /context/testfile)\" == \"contents0\" ]\n",
        )
        .file("testfile", "contents0");
    bk.build_ok(&context, &[]);
}

/// testMountTmpfs
#[test]
fn a_tmpfs_mount_is_not_committed() {
    builds(
        "FROM busybox\nRUN --mount=target=/mytmp,type=tmpfs touch /mytmp/foo\nRUN [ ! -f /mytmp/foo ]\n",
    );
}

/// testMountInvalid (strata's words, each with its caret: BuildKit's are
/// `unknown flag: --mont`, `unexpected key 'typ'`, `unsupported mount type
/// "tmp"`, each with `did you mean ...?`)
#[test]
fn invalid_mounts_are_refused_with_a_suggestion() {
    let bk = Bk::new();
    for (dockerfile, expected) in [
        (
            "FROM scratch\nRUN --mont=target=/mytmp,type=tmpfs /bin/true\n",
            &[
                "error: unknown flag `--mont` for RUN\n",
                "hint: did you mean `--mount`?",
            ][..],
        ),
        (
            "FROM scratch\nRUN --mount=typ=tmpfs /bin/true\n",
            &[
                "error: invalid mount: unexpected key `typ`\n",
                "hint: did you mean `type`?",
            ][..],
        ),
        (
            "FROM scratch\nRUN --mount=type=tmp /bin/true\n",
            &[
                "error: invalid mount: unsupported mount type `tmp`: expected bind, cache, secret, ssh or tmpfs\n",
                "hint: did you mean `tmpfs`?",
            ][..],
        ),
    ] {
        let stderr = bk.build_err(&Context::new().dockerfile(dockerfile), &[]);
        for text in expected {
            assert!(stderr.contains(text), "{text}: {stderr}");
        }
    }
}

/// testMountRWCache
#[test]
fn a_read_write_bind_is_cached_by_what_it_mounts() {
    let bk = Bk::new();
    let dockerfile = "from busybox AS build
copy cachebust /
run mkdir out && echo foo > out/foo

from busybox as second
RUN --mount=from=build,src=out,target=/out,rw touch /out/bar && cat /dev/urandom | head -c 100 | sha256sum > /unique

from scratch
COPY --from=second /unique /unique
";
    let context = Context::new().dockerfile(dockerfile).file("cachebust", "0");
    let first = read(&bk.export(&context, &[]), "unique");
    std::fs::write(context.path().join("cachebust"), "1").unwrap();
    assert_eq!(read(&bk.export(&context, &[]), "unique"), first);
}

/// testCacheMountUser
#[test]
fn a_cache_mount_gets_its_owner_and_mode() {
    builds(
        "FROM busybox\nRUN --mount=type=cache,target=/mycache,uid=1001,gid=1002,mode=0751 [ \"$(stat -c \"%u %g %f\" /mycache)\" == \"1001 1002 41e9\" ]\n",
    );
}

/// testCacheMountDefaultID
#[test]
fn a_cache_mount_is_named_after_its_target() {
    builds(
        "FROM busybox\nRUN --mount=type=cache,target=/mycache touch /mycache/foo\nRUN --mount=type=cache,target=/mycache2 [ ! -f /mycache2/foo ]\nRUN --mount=type=cache,target=/mycache [ -f /mycache/foo ]\n",
    );
}

/// testMountEnvVar
#[test]
fn mount_options_expand_env() {
    builds(
        "FROM busybox\nENV SOME_PATH=/mycache\nRUN --mount=type=cache,target=/mycache touch /mycache/foo\nRUN --mount=type=cache,target=$SOME_PATH [ -f $SOME_PATH/foo ]\n",
    );
}

/// testMountArg
#[test]
fn mount_options_expand_args() {
    builds(
        "FROM busybox\nARG MNT_TYPE=cache\nRUN --mount=type=$MNT_TYPE,target=/mycache2 touch /mycache2/foo\nRUN --mount=type=cache,target=/mycache2 [ -f /mycache2/foo ]\n",
    );
}

/// testMountEnvAcrossStages
#[test]
fn mount_options_expand_env_inherited_from_a_stage() {
    builds(
        "FROM busybox as stage1

ENV MNT_ID=mycache
ENV MNT_TYPE2=cache
RUN --mount=type=cache,id=mycache,target=/abcabc touch /abcabc/foo
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]

FROM stage1
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ]
",
    );
}

/// testMountMetaArg
#[test]
fn mount_options_expand_global_args() {
    builds(
        "ARG META_PATH=/tmp/meta\n\nFROM busybox\nARG META_PATH\nRUN --mount=type=cache,id=mycache,target=/tmp/meta touch /tmp/meta/foo\nRUN --mount=type=cache,id=mycache,target=$META_PATH [ -f /tmp/meta/foo ]\n",
    );
}

/// testMountFromError
#[test]
fn mount_from_refuses_variables() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox as test\nRUN touch /tmp/test\n\nFROM busybox\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n",
    );
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("'from' doesn't support variable expansion, define alias stage instead"),
        "{stderr}"
    );
}

/// testMountTmpfsSize
#[test]
fn a_tmpfs_mount_gets_its_size() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN --mount=type=tmpfs,target=/dev/shm,size=128m mount | grep /dev/shm > /tmpfssize\nFROM scratch\nCOPY --from=base /tmpfssize /\n",
    );
    let mounts = read(&bk.export(&context, &[]), "tmpfssize");
    assert!(mounts.contains("size=131072k"), "{mounts}");
}

/// testMountDuplicate
#[test]
fn two_binds_of_the_context_follow_its_changes() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox AS base\nRUN --mount=source=.,target=/tmp/test \\\n  --mount=source=b.txt,target=/tmp/b.txt \\\n  cat /tmp/test/a.txt /tmp/b.txt > /combined.txt\nFROM scratch\nCOPY --from=base /combined.txt /\n",
        )
        .file("b.txt", "bar\n");
    for text in ["foo\n", "updated\n"] {
        std::fs::write(context.path().join("a.txt"), text).unwrap();
        assert_eq!(
            read(&bk.export(&context, &[]), "combined.txt"),
            format!("{text}bar\n")
        );
    }
}

/// testCacheMountParallel (5 rounds instead of 20: the 2-core CI machine)
#[test]
fn nested_cache_mounts_in_parallel_stages() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM alpine AS b1\nRUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 1\n\nFROM alpine AS b2\nRUN --mount=type=cache,target=/foo/bar --mount=type=cache,target=/foo/bar/baz echo 2\n\nFROM scratch\nCOPY --from=b1 /etc/passwd p1\nCOPY --from=b2 /etc/passwd p2\n",
    );
    for _ in 0..5 {
        bk.build_ok(&context, &["--no-cache"]);
    }
}

/// testCacheMountSourceEscape
#[test]
fn a_cache_source_through_a_link_out_of_the_cache_fails() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS init
RUN --mount=type=cache,id=sourceescape,target=/cache mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt

FROM init AS link
RUN --mount=type=cache,id=sourceescape,target=/cache rm -rf /cache/sel && ln -s /etc /cache/sel

FROM link AS victim
RUN --mount=type=cache,id=sourceescape,source=sel,target=/victim cat /victim/hostname

FROM scratch
COPY --from=victim /etc/hostname /hostname
",
    );
    bk.build_err(&context, &["--no-cache"]);
}

/// Not a Go test of its own: a mount without `target` goes to the WORKDIR
/// (BuildKit's dispatchRunMounts), and one that would cover `/` is refused.
#[test]
fn a_mount_without_a_target_goes_to_the_workdir() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nWORKDIR /src\nRUN --mount=type=bind,source=dir cat /src/go.mod > /seen\nFROM scratch\nCOPY --from=0 /seen /\n",
        )
        .file("dir/go.mod", "module y\n");
    assert_eq!(read(&bk.export(&context, &[]), "seen"), "module y\n");
    let stderr = bk.build_err(
        &Context::new().dockerfile("FROM busybox\nRUN --mount=type=cache true\n"),
        &[],
    );
    assert!(
        stderr.contains("error: invalid mount target \"/\"\n"),
        "{stderr}"
    );
}

/// Not a Go test of its own: parseMount (commands_runmount.go) lower-cases
/// keys and the mount type, so `TYPE=CACHE` is a cache mount. strata
/// refused it with "did you mean `cache`".
#[test]
fn mount_types_and_keys_are_case_insensitive() {
    builds(
        "FROM busybox\nRUN --mount=TYPE=CACHE,Target=/c,ID=shared echo hi > /c/f\nRUN --mount=type=cache,target=/d,id=shared [ \"$(cat /d/f)\" = hi ]\n",
    );
}
