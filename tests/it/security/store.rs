//! Store exposure: a store is private to its owner, another user's store is
//! refused, and a prune never deletes through a store directory someone
//! replaced with a link. Run as root (CI does): the attacks switch to
//! `strata-plain` (made by `.ci/install`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::support::{Run, busybox_rootfs, is_root, require, run_ok};

/// The unprivileged user the attacks run as (or against).
const OTHER: &str = "strata-plain";

/// The layout's directories, all of which must be 0700.
const LAYOUT: [&str; 8] = [
    "",
    "blobs",
    "blobs/sha256",
    "tmp",
    "snapshots",
    "cache",
    "cache-mounts",
    "containers",
];

/// A directory every user can traverse, holding a copy of strata every
/// user can run (the test binary's target directory may be private).
fn shared() -> &'static (tempfile::TempDir, PathBuf) {
    static SHARED: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    SHARED.get_or_init(|| {
        assert!(
            is_root(),
            "the store tests switch users: run them as root (CI does)"
        );
        let known = Command::new("id").arg(OTHER).output().unwrap();
        assert!(
            known.status.success(),
            "user {OTHER} is missing: run `bash .ci/install` as root first"
        );
        let dir = tempfile::Builder::new()
            .prefix("strata-security-")
            .tempdir()
            .unwrap();
        chmod(dir.path(), 0o755);
        let binary = dir.path().join("strata");
        std::fs::copy(env!("CARGO_BIN_EXE_strata"), &binary).unwrap();
        chmod(&binary, 0o755);
        (dir, binary)
    })
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fresh directory every user can traverse (and `owner` owns).
fn open_dir(owner: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("case-")
        .tempdir_in(shared().0.path())
        .unwrap();
    chmod(dir.path(), 0o755);
    if let Some(user) = owner {
        run_ok(Command::new("chown").arg(user).arg(dir.path()));
    }
    dir
}

/// Run `program args`, as `user` when given.
fn run_as(user: Option<&str>, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = match user {
        None => Command::new(program),
        Some(user) => {
            let mut command = Command::new(require("setpriv"));
            command
                .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
                .arg(program);
            command
        }
    };
    command
        .args(args)
        .current_dir(shared().0.path())
        .stdin(Stdio::null())
        .env_remove("STRATA_ALLOW_FOREIGN_STORE");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Run strata on the store at `root`, as `user` when given.
fn strata(user: Option<&str>, root: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    run_as(user, &shared().1, &all, env)
}

fn ok(user: Option<&str>, root: &Path, args: &[&str]) -> String {
    let run = strata(user, root, args, &[]);
    assert_eq!(
        run.code, 0,
        "strata {args:?} failed:\n{}{}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// A canary directory holding a file, outside every store.
fn canary(parent: &Path) -> PathBuf {
    let canary = parent.join("canary");
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("precious"), "keep me").unwrap();
    canary
}

fn assert_canary(canary: &Path) {
    assert_eq!(
        std::fs::read_to_string(canary.join("precious")).unwrap(),
        "keep me",
        "the canary outside the store was touched"
    );
}

#[test]
fn store_directories_are_private_and_a_setuid_file_a_run_made_is_out_of_reach() {
    let dir = open_dir(None);
    let root = dir.path().join("store");
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    ok(None, &root, &["import", rootfs.to_str().unwrap(), "base"]);
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM base\nRUN cp /bin/busybox /suid && chmod 4755 /suid\n",
    )
    .unwrap();
    ok(
        None,
        &root,
        &["build", "-t", "suid", context.to_str().unwrap()],
    );
    // Running it makes the snapshot of the layer the RUN wrote.
    ok(None, &root, &["run", "suid", "true"]);
    for name in LAYOUT {
        assert_eq!(mode(&root.join(name)), 0o700, "store directory `{name}`");
    }
    let snapshot = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("suid"))
        .find(|path| path.exists())
        .expect("a snapshot holds the setuid file");
    assert_eq!(mode(&snapshot), 0o4755, "the RUN made it setuid");
    assert_eq!(std::fs::metadata(&snapshot).unwrap().uid(), 0);
    // The other user reaches a file beside the store (so nothing but the
    // store's own modes stands in the way)...
    let beside = dir.path().join("beside");
    std::fs::write(&beside, "public").unwrap();
    chmod(&beside, 0o644);
    let cat = Path::new("cat");
    let control = run_as(Some(OTHER), cat, &[beside.to_str().unwrap()], &[]);
    assert_eq!((control.code, control.stdout.as_str()), (0, "public"));
    // ...but neither reads nor runs the setuid file.
    let read = run_as(Some(OTHER), cat, &[snapshot.to_str().unwrap()], &[]);
    assert_eq!(
        (read.code, read.stderr),
        (
            1,
            format!("cat: {}: Permission denied\n", snapshot.display())
        )
    );
    // (Through a shell: setpriv itself would execute it while it still
    // holds root's capabilities.)
    let exec = run_as(
        Some(OTHER),
        Path::new("sh"),
        &["-c", "exec \"$1\" id -u", "sh", snapshot.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        (exec.code, exec.stdout.as_str(), exec.stderr),
        (
            126,
            "",
            format!("sh: 1: exec: {}: Permission denied\n", snapshot.display())
        )
    );
}

#[test]
fn an_older_store_readable_by_others_is_made_private_with_a_warning() {
    let dir = open_dir(None);
    let root = dir.path().join("store");
    ok(None, &root, &["images", "-q"]);
    chmod(&root, 0o755);
    chmod(&root.join("snapshots"), 0o755);
    let run = strata(None, &root, &["images", "-q"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "warning: `{}` was readable by other users (mode 755): made it private (700)\n\
             warning: `{}/snapshots` was readable by other users (mode 755): made it private (700)\n",
            root.display(),
            root.display()
        )
    );
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("snapshots")), 0o700);
    // Once private, nothing more to say.
    assert_eq!(strata(None, &root, &["images", "-q"], &[]).stderr, "");
}

fn foreign_refusal(root: &Path) -> String {
    let uid = run_ok(Command::new("id").args(["-u", OTHER]));
    format!(
        "error: refusing to use the store `{}`: it is owned by uid {} ({OTHER}), and you are \
         uid 0 (root). A store decides what strata reads, runs and deletes as you, so, as git \
         refuses a repository of dubious ownership, strata uses only your own. If you trust \
         its owner, pass --allow-foreign-store (or set STRATA_ALLOW_FOREIGN_STORE=1)\n",
        root.display(),
        uid.trim()
    )
}

#[test]
fn a_store_another_user_owns_is_refused_unless_allowed() {
    let dir = open_dir(Some(OTHER));
    let root = dir.path().join("store");
    ok(Some(OTHER), &root, &["images", "-q"]);
    assert_eq!(mode(&root), 0o700);
    let before = crate::support::tree(&root);
    for args in [
        &["images"][..],
        &["image", "prune", "-f"],
        &["system", "df"],
    ] {
        let run = strata(None, &root, args, &[]);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr),
            (1, "", foreign_refusal(&root)),
            "{args:?}"
        );
    }
    assert_eq!(crate::support::tree(&root), before, "nothing was changed");
    // Trusted explicitly, by flag or environment, it is used.
    let header = "REPOSITORY   TAG   IMAGE ID   CREATED   SIZE\n";
    let flag = strata(None, &root, &["--allow-foreign-store", "images"], &[]);
    assert_eq!((flag.code, flag.stderr.as_str()), (0, ""));
    assert_eq!(
        flag.stdout.split_whitespace().collect::<Vec<_>>(),
        header.split_whitespace().collect::<Vec<_>>()
    );
    let env = strata(
        None,
        &root,
        &["images", "-q"],
        &[("STRATA_ALLOW_FOREIGN_STORE", "1")],
    );
    assert_eq!((env.code, env.stderr.as_str()), (0, ""));
    // Its modes are the owner's business: a trusted foreign store is not
    // changed.
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), {
        let uid = run_ok(Command::new("id").args(["-u", OTHER]));
        uid.trim().parse::<u32>().unwrap()
    });
}

#[test]
fn root_pruning_a_store_whose_directories_another_user_replaced_deletes_nothing_outside() {
    for replaced in ["tmp", "snapshots", "blobs", "blobs/sha256"] {
        let dir = open_dir(Some(OTHER));
        let root = dir.path().join("store");
        ok(Some(OTHER), &root, &["images", "-q"]);
        // The victim's files: root's, outside the store.
        let victim = open_dir(None);
        let canary = canary(victim.path());
        // The other user swaps a store directory for a link to them.
        let swap = format!(
            "rm -rf '{0}' && ln -s '{1}' '{0}'",
            root.join(replaced).display(),
            canary.display()
        );
        let swapped = run_as(Some(OTHER), &require("sh"), &["-c", &swap], &[]);
        assert_eq!(swapped.code, 0, "{}", swapped.stderr);
        // Not trusted: refused outright.
        let run = strata(None, &root, &["image", "prune", "-f"], &[]);
        assert_eq!((run.code, run.stderr), (1, foreign_refusal(&root)));
        assert_canary(&canary);
        // Trusted by mistake: the link is refused, not followed.
        for args in [
            &["--allow-foreign-store", "image", "prune", "-f"][..],
            &["--allow-foreign-store", "image", "prune", "-a", "-f"],
            &["--allow-foreign-store", "cache", "prune", "-f"],
        ] {
            let run = strata(None, &root, args, &[]);
            assert_eq!(
                (run.code, run.stderr),
                (
                    1,
                    format!(
                        "error: refusing to use the store directory `{}`: it is a symbolic link \
                         to `{}`. A store's directories must be real directories of the store's \
                         owner: one replaced by a link or someone else's could make strata \
                         write, read or delete outside the store\n",
                        root.join(replaced).display(),
                        canary.display()
                    )
                ),
                "{replaced}: {args:?}"
            );
            assert_canary(&canary);
        }
    }
}

#[test]
fn a_store_directory_another_user_owns_is_refused_even_in_ones_own_store() {
    // A root whose store a careless mode left open: another user slips in
    // their own `tmp`.
    let dir = open_dir(None);
    let root = dir.path().join("store");
    ok(None, &root, &["images", "-q"]);
    std::fs::remove_dir(root.join("tmp")).unwrap();
    std::fs::create_dir(root.join("tmp")).unwrap();
    run_ok(Command::new("chown").arg(OTHER).arg(root.join("tmp")));
    let uid = run_ok(Command::new("id").args(["-u", OTHER]));
    let run = strata(None, &root, &["image", "prune", "-f"], &[]);
    assert_eq!(
        (run.code, run.stderr),
        (
            1,
            format!(
                "error: refusing to use the store directory `{}/tmp`: it is owned by uid {} \
                 ({OTHER}), and the store by uid 0 (root). A store's directories must \
                 be real directories of the store's owner: one replaced by a link or someone \
                 else's could make strata write, read or delete outside the store\n",
                root.display(),
                uid.trim()
            )
        )
    );
}
