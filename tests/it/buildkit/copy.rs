//! `frontend/dockerfile/dockerfile_copy_test.go`.

use super::{Bk, dir, file_mode, lstat, read, symlink};
use crate::support::Context;

/// testDockerfileCopyFromArgs
#[test]
fn copy_from_refuses_variables() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM scratch\nCOPY --from=$FOO . .\n");
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
        ),
        "{stderr}"
    );
}

/// testEmptyDestDir
#[test]
fn empty_destination_is_the_workdir() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nENV empty=\"\"\nCOPY testfile $empty\nRUN [ \"$(cat testfile)\" == \"contents0\" ]\n",
        )
        .file("testfile", "contents0");
    bk.build_ok(&context, &[]);
}

/// testPreserveDestDirSlash
#[test]
fn destination_slash_makes_a_directory() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nCOPY testfile /sample/\nRUN [ \"$(cat /sample/testfile)\" == \"contents0\" ]\n",
        )
        .file("testfile", "contents0");
    bk.build_ok(&context, &[]);
}

/// testCopyLinkDotDestDir
#[test]
fn copy_link_to_dot_is_the_workdir() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nWORKDIR /var/www\nCOPY --link testfile .\nRUN [ \"$(cat testfile)\" == \"contents0\" ]\n",
        )
        .file("testfile", "contents0");
    bk.build_ok(&context, &[]);
}

/// testCopyLinkEmptyDestDir
#[test]
fn copy_link_to_an_empty_destination_is_the_workdir() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nWORKDIR /var/www\nENV empty=\"\"\nCOPY --link testfile $empty\nRUN [ \"$(cat testfile)\" == \"contents0\" ]\n",
        )
        .file("testfile", "contents0");
    bk.build_ok(&context, &[]);
}

/// One `RUN` line that fails unless `path` is owned by `expected`.
fn owner_check(path: &str, expected: &str) -> String {
    format!(
        "e=\"{expected}\"; p=\"{path}\"; a=`stat -c \"%u:%g\" \"$p\"`; if [ \"$a\" != \"$e\" ]; then echo \"incorrect ownership on $p. expected $e, got $a\"; exit 1; fi"
    )
}

/// testCopyChownExistingDir
#[test]
fn copy_keeps_owners_of_existing_directories() {
    let checks = |file: &str, new: &str| {
        [
            ("/file", file),
            ("/dir", new),
            ("/dir/subdir", if new == "0:0" { "101:201" } else { new }),
            (
                "/dir/subdir/nestedfile",
                if new == "0:0" { "102:202" } else { new },
            ),
            ("/existingdir", "500:600"),
            ("/existingdir/existingsubdir", "501:601"),
            ("/existingdir/existingfile", "501:601"),
            (
                "/existingdir/subdir",
                if new == "0:0" { "101:201" } else { new },
            ),
            (
                "/existingdir/subdir/nestedfile",
                if new == "0:0" { "102:202" } else { new },
            ),
        ]
        .iter()
        .map(|(path, owner)| owner_check(path, owner))
        .collect::<Vec<_>>()
        .join(" \\\n && ")
    };
    let dockerfile = format!(
        "FROM busybox AS source
RUN touch /file && chown 100:200 /file \\
 && mkdir -p /dir/subdir \\
 && touch /dir/subdir/nestedfile \\
 && chown 100:200 /dir \\
 && chown 101:201 /dir/subdir \\
 && chown 102:202 /dir/subdir/nestedfile

FROM busybox AS test_base
RUN mkdir -p /existingdir/existingsubdir \\
 && touch /existingdir/existingfile \\
 && chown 500:600 /existingdir \\
 && chown 501:601 /existingdir/existingsubdir \\
 && chown 501:601 /existingdir/existingfile

FROM test_base AS copy_from
COPY --from=source /file .
COPY --from=source /dir /dir
COPY --from=source /dir/. /existingdir
RUN {}

FROM test_base AS copy_from_chowned
COPY --from=source --chown=300:400 /file .
COPY --from=source --chown=300:400 /dir /dir
COPY --from=source --chown=300:400 /dir/. /existingdir
RUN {}
",
        checks("100:200", "0:0"),
        checks("300:400", "300:400"),
    );
    let bk = Bk::new();
    let context = Context::new().file("Dockerfile.web", dockerfile);
    super::symlink(&context, "Dockerfile.web", "Dockerfile");
    bk.build_ok(&context, &[]);
    bk.build_ok(&context, &["--target", "copy_from"]);
}

/// testCopyWildcardCache
#[test]
fn a_wildcard_copy_is_cached_by_what_it_matched() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox AS base\nCOPY foo* files/\nRUN cat /dev/urandom | head -c 100 | sha256sum > unique\nCOPY bar files/\nFROM scratch\nCOPY --from=base unique /\n",
        )
        .file("foo1", "foo1-data")
        .file("foo2", "foo2-data")
        .file("bar", "bar-data");
    let first = read(&bk.export(&context, &[]), "unique");
    std::fs::write(context.path().join("bar"), "bar-data-mod").unwrap();
    assert_eq!(read(&bk.export(&context, &[]), "unique"), first);
    std::fs::write(context.path().join("foo2"), "foo2-data-mod").unwrap();
    assert_ne!(read(&bk.export(&context, &[]), "unique"), first);
}

/// testEmptyWildcard
#[test]
fn a_wildcard_that_matches_nothing_copies_nothing() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY foo nomatch* /\n")
        .file("foo", "contents0");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "foo"), "contents0");
}

/// testCopyChownCreateDest (Debian's busybox has no `adduser`: the users
/// are added to the files it would write)
#[test]
fn chown_applies_to_the_directory_copy_creates() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox
ARG group
ENV owner user01
RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1000:' >> /etc/group
RUN echo 'user01:x:1001:1001::/home/user01:/bin/sh' >> /etc/passwd && echo 'user01:x:1001:' >> /etc/group
COPY --chown=user:user . /dest
COPY --chown=${owner}:${group} . /dest01
RUN [ \"$(stat -c \"%U %G\" /dest)\" == \"user user\" ]
RUN [ \"$(stat -c \"%U %G\" /dest01)\" == \"user01 user\" ]
",
    );
    bk.build_ok(&context, &["--build-arg", "group=user"]);
}

/// testCopyThroughSymlinkContext
#[test]
fn copy_through_a_symlinked_directory_in_the_context() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY link/foo .\n")
        .file("sub/foo", "contents");
    symlink(&context, "sub", "link");
    assert_eq!(read(&bk.export(&context, &[]), "foo"), "contents");
}

/// testCopyThroughSymlinkMultiStage
#[test]
fn copy_through_symlinks_in_a_stage() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS build
RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n \"data\" > /sub/foo
FROM scratch
COPY --from=build /sub/foo .
COPY --from=build /sub2/foo bar
",
    );
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "foo"), "data");
    assert_eq!(read(&out, "bar"), "data");
}

/// testCopySocket
#[test]
fn a_socket_becomes_a_regular_file() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM scratch\nCOPY . /\n");
    let _socket =
        std::os::unix::net::UnixListener::bind(context.path().join("socket.sock")).unwrap();
    let out = bk.export(&context, &[]);
    let meta = lstat(&out, "socket.sock");
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(meta.len(), 0);
}

/// testCopyFollowAllSymlinks
#[test]
fn copy_follows_symlinks_below_a_source() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY foo /\nCOPY foo/sub bar\n")
        .file("bar", "bar-contents");
    dir(&context, "foo", 0o700);
    symlink(&context, "../bar", "foo/sub");
    let out = bk.export(&context, &[]);
    // `foo/sub` is copied as the link it is; `COPY foo/sub bar` follows it.
    assert_eq!(
        std::fs::read_link(out.path().join("out/sub")).unwrap(),
        std::path::Path::new("../bar")
    );
    assert_eq!(read(&out, "bar"), "bar-contents");
}

/// testCopySymlinks
#[test]
fn a_symlinked_source_keeps_its_own_name() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\n")
        .file("bar", "bar-contents")
        .file("sub/lfile", "lfile-contents")
        .file("sub/subfile", "subfile-contents")
        .file("sub/baz", "baz-contents");
    symlink(&context, "bar", "foo");
    symlink(&context, "subfile", "sub/l0");
    symlink(&context, "second", "sub/l1");
    symlink(&context, "baz", "sub/second");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "foo"), "bar-contents");
    assert!(lstat(&out, "foo").file_type().is_file());
    assert_eq!(read(&out, "alllinks/l0"), "subfile-contents");
    assert_eq!(read(&out, "alllinks/lfile"), "lfile-contents");
    assert_eq!(read(&out, "alllinks/l1"), "baz-contents");
    // Nothing under the targets' names.
    assert!(!out.path().join("out/bar").exists());
    assert!(!out.path().join("out/alllinks/subfile").exists());
    assert!(!out.path().join("out/alllinks/baz").exists());
}

/// testCopyChown
#[test]
fn chown_takes_names_ids_and_variables() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox AS base
ENV owner 1000
RUN mkdir -m 0777 /out
COPY --chown=daemon foo /
COPY --chown=1000:nobody bar /baz
ARG group
COPY --chown=${owner}:${group} foo /foobis
RUN stat -c \"%U %G\" /foo  > /out/fooowner
RUN stat -c \"%u %G\" /baz/sub  > /out/subowner
RUN stat -c \"%u %G\" /foobis  > /out/foobisowner
FROM scratch
COPY --from=base /out /
",
        )
        .file("foo", "foo-contents")
        .file("bar/sub", "");
    let out = bk.export(&context, &["--build-arg", "group=nobody"]);
    assert_eq!(read(&out, "fooowner"), "daemon daemon\n");
    assert_eq!(read(&out, "subowner"), "1000 nobody\n");
    assert_eq!(read(&out, "foobisowner"), "1000 nobody\n");
}

/// testCopyChmod
#[test]
fn chmod_applies_to_files_and_the_parents_copy_makes() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base

RUN mkdir -m 0777 /out
COPY --chmod=0644 foo /
COPY --chmod=777 bar /baz
COPY --chmod=0 foo /foobis
COPY --chmod=777 foo /parent/foo
COPY --chmod=770 foo /parent/sub/foo

ARG mode
COPY --chmod=${mode} foo /footer

RUN stat -c \"%04a\" /foo  > /out/fooperm
RUN stat -c \"%04a\" /baz  > /out/barperm
RUN stat -c \"%04a\" /foobis  > /out/foobisperm
RUN stat -c \"%04a\" /parent  > /out/parentperm
RUN stat -c \"%04a\" /parent/sub  > /out/subparentperm
RUN stat -c \"%04a\" /footer  > /out/footerperm
FROM scratch
COPY --from=base /out /
",
    );
    file_mode(&context, "foo", "foo-contents", 0o600);
    file_mode(&context, "bar", "bar-contents", 0o700);
    let out = bk.export(&context, &["--build-arg", "mode=755"]);
    assert_eq!(read(&out, "fooperm"), "0644\n");
    assert_eq!(read(&out, "barperm"), "0777\n");
    assert_eq!(read(&out, "foobisperm"), "0000\n");
    assert_eq!(read(&out, "parentperm"), "0777\n");
    assert_eq!(read(&out, "subparentperm"), "0770\n");
    assert_eq!(read(&out, "footerperm"), "0755\n");
}

/// testCopyInvalidChmod
#[test]
fn an_invalid_chmod_is_refused() {
    super::assert_invalid_chmod("COPY");
}

/// testCopyOverrideFiles
#[test]
fn copying_over_the_same_files_again() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM scratch AS base
COPY sub sub
COPY sub sub
COPY files/foo.go dest/foo.go
COPY files/foo.go dest/foo.go
COPY files dest
",
        )
        .file("sub/dir1/dir2/foo", "foo-contents")
        .file("files/foo.go", "foo.go-contents");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "sub/dir1/dir2/foo"), "foo-contents");
    assert_eq!(read(&out, "dest/foo.go"), "foo.go-contents");
}

/// testCopyVarSubstitution
#[test]
fn copy_sources_are_expanded() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch AS base\nENV FOO bar\nCOPY $FOO baz\n")
        .file("bar", "bar-contents");
    assert_eq!(read(&bk.export(&context, &[]), "baz"), "bar-contents");
}

/// testCopyWildcards
#[test]
fn wildcards_and_directory_sources() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM scratch AS base
COPY *.go /gofiles/
COPY f*.go foo2.go
COPY sub/* /subdest/
COPY sub/*/dir2/foo /subdest2/
COPY sub/*/dir2/foo /subdest3/bar
COPY . all/
COPY sub/dir1/ subdest4
COPY sub/dir1/. subdest5
COPY sub/dir1 subdest6
",
        )
        .file("foo.go", "foo-contents")
        .file("bar.go", "bar-contents")
        .file("sub/dir1/dir2/foo", "foo-contents");
    let out = bk.export(&context, &[]);
    for (path, content) in [
        ("gofiles/foo.go", "foo-contents"),
        ("gofiles/bar.go", "bar-contents"),
        ("foo2.go", "foo-contents"),
        ("subdest/dir2/foo", "foo-contents"),
        ("subdest2/foo", "foo-contents"),
        ("subdest3/bar", "foo-contents"),
        ("all/foo.go", "foo-contents"),
        ("subdest4/dir2/foo", "foo-contents"),
        ("subdest5/dir2/foo", "foo-contents"),
        ("subdest6/dir2/foo", "foo-contents"),
    ] {
        assert_eq!(read(&out, path), content, "{path}");
    }
}

/// testCopyRelative
#[test]
fn relative_destinations_follow_the_workdir() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox
WORKDIR /test1
WORKDIR test2
RUN sh -c \"[ \"$PWD\" = '/test1/test2' ]\"
COPY foo ./
RUN sh -c \"[ $(cat /test1/test2/foo) = 'hello' ]\"
ADD foo ./bar/baz
RUN sh -c \"[ $(cat /test1/test2/bar/baz) = 'hello' ]\"
COPY foo ./bar/baz2
RUN sh -c \"[ $(cat /test1/test2/bar/baz2) = 'hello' ]\"
WORKDIR ..
COPY foo ./
RUN sh -c \"[ $(cat /test1/foo) = 'hello' ]\"
COPY foo /test3/
RUN sh -c \"[ $(cat /test3/foo) = 'hello' ]\"
WORKDIR /test4
COPY . .
RUN sh -c \"[ $(cat /test4/foo) = 'hello' ]\"
WORKDIR /test5/test6
COPY foo ../
RUN sh -c \"[ $(cat /test5/foo) = 'hello' ]\"
",
        )
        .file("foo", "hello");
    bk.build_ok(&context, &[]);
}

/// testCopyUnicodePath (on busybox instead of alpine)
#[test]
fn unicode_and_percent_names() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nCOPY test-äöü.txt /\nCOPY test-%C3%A4%C3%B6%C3%BC.txt /\nCOPY test+aou.txt /\n",
        )
        .file("test-äöü.txt", "foo")
        .file("test-%C3%A4%C3%B6%C3%BC.txt", "bar")
        .file("test+aou.txt", "baz");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "test-äöü.txt"), "foo");
    assert_eq!(read(&out, "test-%C3%A4%C3%B6%C3%BC.txt"), "bar");
    assert_eq!(read(&out, "test+aou.txt"), "baz");
}

/// testChmodNonOctal (on busybox instead of alpine): symbolic modes give
/// what `chmod` gives on a copy.
#[test]
fn symbolic_chmod_matches_chmod() {
    let cases = [
        ("file", "f1", "go-w", false),
        ("file", "f2", "u=rw,g=r,o=r", false),
        ("file", "f3", "a+X", false),
        ("dir", "d1", "go-w", true),
        ("dir", "d2", "u+rw,g+r,o-x,o+w", true),
        ("dir", "d3", "a+X", true),
    ];
    let mut expected = String::new();
    let mut copies = String::new();
    let mut verify = String::new();
    for (src, dst, mode, is_dir) in cases {
        if is_dir {
            expected.push_str(&format!(
                "RUN mkdir -p /input/dirs/{dst} && cp -a /input/{src} /input/dirs/{dst}/{dst}\n\
                 RUN cp -a /input/dirs/{dst}/. /expected/ && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!(
                "COPY --from=base --chmod={mode} /input/dirs/{dst} /\n"
            ));
        } else {
            expected.push_str(&format!(
                "RUN cp -a /input/{src} /expected/{dst} && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!(
                "COPY --from=base --chmod={mode} /input/{src} /{dst}\n"
            ));
        }
        verify.push_str(&format!(
            "RUN [ \"$(stat -c %A /actual/{dst})\" = \"$(stat -c %A /expected/{dst})\" ]\n"
        ));
    }
    let dockerfile = format!(
        "FROM busybox as base
RUN <<eot
\tset -ex
\tmkdir /input
\ttouch /input/file
\tchmod 666 /input/file
\tmkdir /input/dir
\tchmod 124 /input/dir
\tmkdir /expected
eot
{expected}
FROM scratch as result
{copies}
FROM base
COPY --from=result / /actual/
{verify}
"
    );
    let bk = Bk::new();
    bk.build_ok(&Context::new().dockerfile(&dockerfile), &[]);
}

/// Not a Go test: BuildKit's behaviour when several sources go to a path
/// that is not a directory (moby/buildkit#4550, #1853): each is copied to
/// the destination in turn, so the last file wins. strata does the same
/// and warns.
#[test]
fn several_sources_to_a_file_replace_each_other_with_a_warning() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY foo1 foo2 /x\nCOPY foo* /y\n")
        .file("foo1", "one")
        .file("foo2", "two");
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().join("out").display());
    let run = bk.build(&context, &["--output", &dest]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read(&out, "x"), "two");
    assert_eq!(read(&out, "y"), "two");
    for line in ["[1/2] COPY foo1 foo2 /x", "[2/2] COPY foo* /y"] {
        assert!(
            run.stderr.contains(&format!(
                "warning: {line}: several sources go to `/{}`, which is not a directory, so each replaces the one before (as in BuildKit); end the destination with `/` to copy them into a directory\n",
                &line[line.len() - 1..]
            )),
            "{}",
            run.stderr
        );
    }
}
