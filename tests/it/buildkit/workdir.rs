//! `frontend/dockerfile/dockerfile_workdir_test.go`.

use super::{Bk, lstat};
use crate::support::Context;

/// testWorkdirCreatesDir
#[test]
fn workdir_makes_the_directory_on_scratch() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM scratch\nWORKDIR /foo\nWORKDIR /\n");
    assert!(lstat(&bk.export(&context, &[]), "foo").is_dir());
}

/// The user `user` (1000), as `adduser -D user` makes it (Debian's
/// busybox has no `adduser`).
const ADD_USER: &str = "RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1000:' >> /etc/group";

/// testWorkdirUser
#[test]
fn workdir_is_made_for_the_user() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(&format!(
        "FROM busybox\n{ADD_USER}\nUSER user\nWORKDIR /mydir\nRUN [ \"$(stat -c \"%U %G\" /mydir)\" == \"user user\" ]\n"
    ));
    bk.build_ok(&context, &[]);
}

/// testWorkdirCopyIgnoreRelative
#[test]
fn copy_from_a_stage_reads_from_its_root_not_its_workdir() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nWORKDIR /foo\nCOPY Dockerfile /\nFROM busybox\n# relative path still loaded as absolute\nCOPY --from=base Dockerfile .\n",
    );
    bk.build_ok(&context, &[]);
}

/// testWorkdirExists
#[test]
fn workdir_keeps_the_owner_of_an_existing_directory() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(&format!(
        "FROM busybox\n{ADD_USER}\nRUN mkdir /mydir && chown user:user /mydir\nWORKDIR /mydir\nRUN [ \"$(stat -c \"%U %G\" /mydir)\" == \"user user\" ]\n"
    ));
    bk.build_ok(&context, &[]);
}

/// testWorkdirSourceDateEpochReproducible (the build cache pruned between
/// the builds, as BuildKit's test prunes its own)
#[test]
fn workdir_is_reproducible_with_source_date_epoch() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM alpine\nWORKDIR /mydir\n");
    let epoch = "1673364896"; // 2023-01-10T15:34:56Z
    let index = || {
        let out = tempfile::tempdir().unwrap();
        let dest = format!(
            "type=oci,dest={},tar=false",
            out.path().join("layout").display()
        );
        bk.build_ok(
            &context,
            &[
                "--build-arg",
                &format!("SOURCE_DATE_EPOCH={epoch}"),
                "--output",
                &dest,
            ],
        );
        std::fs::read_to_string(out.path().join("layout/index.json")).unwrap()
    };
    let first = index();
    bk.store.ok(bk.store.dir.path(), &["cache", "prune"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(index(), first);
}
