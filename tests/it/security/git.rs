//! ADD of a hostile git repository: symlinks in it never lead the copy
//! out of the checkout, a subdirectory is never reached through one
//! (BuildKit's validateDirsOnly, and its words), a tree that names the
//! same path as a symlink and a directory writes nothing outside, and a
//! submodule cannot clone a repository of the host's.

use super::Canary;
use crate::buildkit::Bk;
use crate::buildkit::git::{GitDaemon, init, shell};
use crate::support::Context;

/// A commit of `tree` (from `git mktree` lines) on master in `dir`.
fn commit_tree(dir: &std::path::Path, lines: &str) {
    let mktree = std::process::Command::new("sh")
        .args(["-c", &format!("printf '{lines}' | git mktree")])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        mktree.status.success(),
        "{}",
        String::from_utf8_lossy(&mktree.stderr)
    );
    let tree = String::from_utf8(mktree.stdout).unwrap();
    shell(
        dir,
        &[&format!(
            "git update-ref refs/heads/master $(git commit-tree -m hostile {})",
            tree.trim()
        )],
    );
}

/// A blob of `content` in `dir`'s repository: its hash.
fn blob(dir: &std::path::Path, content: &str) -> String {
    let output = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("printf '%s' '{content}' | git hash-object -w --stdin"),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_repository_symlink_never_leads_add_outside() {
    let canary = Canary::new();
    let bk = Bk::new();
    let base = tempfile::tempdir().unwrap();
    let work = base.path().join("work");
    init(&work, "");
    std::os::unix::fs::symlink(canary.path(), work.join("evil")).unwrap();
    std::fs::create_dir(work.join("dir")).unwrap();
    std::os::unix::fs::symlink("../../../../../..", work.join("dir/up")).unwrap();
    std::fs::write(work.join("ok"), "ok\n").unwrap();
    shell(
        &work,
        &[
            "git add evil dir ok",
            "git commit -q -m hostile",
            "git clone -q --bare . ../repo.git",
        ],
    );
    let daemon = GitDaemon::new(base.path());
    let url = daemon.url("/repo.git");

    // A subdirectory that is a symlink, or below one: refused, as BuildKit.
    for (subdir, through) in [("evil", "evil"), ("evil/dir", "evil"), ("dir/up", "dir/up")] {
        let context =
            Context::new().dockerfile(&format!("FROM scratch\nADD {url}#master:{subdir} /x\n"));
        let stderr = bk.build_err(&context, &[]);
        assert!(
            stderr.contains(&format!(
                "invalid subdir {subdir}: git subpath \"{subdir}\" contains non-directory \"{through}\""
            )),
            "{stderr}"
        );
    }

    // The whole repository: its symlinks are copied as symlinks, nothing
    // they point at is read.
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x/\n"));
    let out = bk.export(&context, &[]);
    let evil = out.path().join("out/x/evil");
    assert!(
        std::fs::symlink_metadata(&evil)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&evil).unwrap(), canary.path());
    assert_eq!(
        std::fs::read_link(out.path().join("out/x/dir/up")).unwrap(),
        std::path::Path::new("../../../../../..")
    );
    assert_eq!(crate::buildkit::read(&out, "x/ok"), "ok\n");
    canary.untouched();
}

#[test]
fn a_tree_naming_a_path_as_symlink_and_directory_writes_nothing_outside() {
    let canary = Canary::new();
    let bk = Bk::new();
    let base = tempfile::tempdir().unwrap();
    let work = base.path().join("repo.git");
    init(&work, "");
    // `evil` is both a symlink to the canary and a directory holding
    // `file`: a checkout that followed the link would overwrite the
    // canary's file.
    let link = blob(&work, &canary.path().display().to_string());
    let planted = blob(&work, "planted");
    let inner = {
        let output = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("printf '100644 blob {planted}\\tfile\\n' | git mktree"),
            ])
            .current_dir(&work)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    commit_tree(
        &work,
        &format!("120000 blob {link}\\tevil\\n040000 tree {inner}\\tevil\\n"),
    );
    let daemon = GitDaemon::new(base.path());
    let url = daemon.url("/repo.git");
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x/\n"));
    // git checks the directory out (the later entry of the name), never
    // the link; the canary is as it was and nothing of it is in the image.
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().join("out").display());
    let run = bk.build(&context, &["--output", &dest]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let evil = out.path().join("out/x/evil");
    assert!(std::fs::symlink_metadata(&evil).unwrap().is_dir());
    assert_eq!(
        std::fs::read_to_string(evil.join("file")).unwrap(),
        "planted"
    );
    canary.untouched();
}

#[test]
fn a_submodule_naming_a_host_repository_is_not_cloned() {
    let bk = Bk::new();
    // A repository of the host's, outside everything the build is given.
    let host = tempfile::tempdir().unwrap();
    init(host.path(), "");
    shell(
        host.path(),
        &[
            "echo host-secret >secret",
            "git add secret",
            "git commit -q -m secret",
        ],
    );
    let base = tempfile::tempdir().unwrap();
    let work = base.path().join("repo.git");
    init(&work, "");
    shell(
        &work,
        &[
            &format!(
                "git -c protocol.file.allow=always submodule --quiet add {} sub",
                host.path().display()
            ),
            "git commit -q -m with-a-host-submodule",
        ],
    );
    let daemon = GitDaemon::new(base.path());
    let url = daemon.url("/repo.git");
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x/\n"));
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().join("out").display());
    let run = bk.build(&context, &["--output", &dest]);
    assert_ne!(run.code, 0, "the host repository was cloned");
    assert!(
        run.stderr.contains("failed to update submodules of")
            && run.stderr.contains("transport 'file' not allowed"),
        "{}",
        run.stderr
    );
    assert!(!out.path().join("out/x/sub/secret").exists());
}
