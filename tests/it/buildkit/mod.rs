//! BuildKit's own Dockerfile integration tests (moby/buildkit,
//! `frontend/dockerfile/*_test.go`), ported as ours: each test names the
//! Go test it follows, builds the same Dockerfile on the same context, and
//! asserts what BuildKit's test asserts, on what strata produced.
//!
//! What differs from BuildKit's harness, and why:
//! - `busybox` is the busybox base the tests make from Debian's
//!   `busybox-static` (see [`Bk::new`]), with the users and groups of the
//!   `busybox` image on Docker Hub, so `--chown=daemon` and `nobody` mean
//!   what they mean there. Tests that use `alpine` only for a shell use it
//!   too.
//! - A local export is `--output type=local,dest=DIR`.
//! - Windows variants are left out.

mod copy;

use std::path::Path;

use crate::support::{Context, Run, StoreDir, busybox_rootfs};

/// The users of Docker Hub's `busybox` image.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
";

/// Its groups.
const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nobody:x:65534:
";

/// A store with `busybox` in it, and a way to build in it.
pub(crate) struct Bk {
    pub(crate) store: StoreDir,
}

impl Bk {
    pub(crate) fn new() -> Bk {
        let store = StoreDir::new();
        let rootfs = store.dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
        std::fs::write(rootfs.join("etc/shadow"), "root:*:0:0:99999:7:::\n").unwrap();
        store.ok(
            store.dir.path(),
            &["import", rootfs.to_str().unwrap(), "busybox"],
        );
        Bk { store }
    }

    /// `strata build ARGS... .` in `context`.
    pub(crate) fn build(&self, context: &Context, args: &[&str]) -> Run {
        let mut all = vec!["build", "-q"];
        all.extend_from_slice(args);
        all.push(".");
        self.store.strata(context.path(), &all)
    }

    /// Build, expecting success.
    pub(crate) fn build_ok(&self, context: &Context, args: &[&str]) {
        let run = self.build(context, args);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    /// Build and export the result's filesystem, expecting success: the
    /// directory it went to.
    pub(crate) fn export(&self, context: &Context, args: &[&str]) -> tempfile::TempDir {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().join("out").display());
        let mut all = vec!["--output", &dest];
        all.extend_from_slice(args);
        self.build_ok(context, &all);
        out
    }

    /// Build, expecting failure: standard error.
    pub(crate) fn build_err(&self, context: &Context, args: &[&str]) -> String {
        let run = self.build(context, args);
        assert_ne!(run.code, 0, "the build succeeded:\n{}", run.stderr);
        run.stderr
    }
}

/// The content of `path` under an export.
pub(crate) fn read(out: &tempfile::TempDir, path: &str) -> String {
    let full = out.path().join("out").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{}: {error}", full.display()))
}

/// A symlink at `link` in the context, to `target`.
pub(crate) fn symlink(context: &Context, target: &str, link: &str) {
    let path = context.path().join(link);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// A directory at `path` in the context with `mode`.
pub(crate) fn dir(context: &Context, path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = context.path().join(path);
    std::fs::create_dir_all(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A file with `mode`.
pub(crate) fn file_mode(context: &Context, path: &str, content: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = context.path().join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The export's entry at `path`, without following it.
pub(crate) fn lstat(out: &tempfile::TempDir, path: &str) -> std::fs::Metadata {
    let full: &Path = &out.path().join("out").join(path);
    std::fs::symlink_metadata(full).unwrap_or_else(|error| panic!("{}: {error}", full.display()))
}
