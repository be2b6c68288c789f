//! Helpers: run the `strata` binary and build throwaway contexts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The result of one run of `strata`.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Run `strata ARGS...` in `dir` with `stdin` as standard input.
pub(crate) fn strata_in(
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("failed to start strata");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Run `strata ARGS...` at the repository root.
pub(crate) fn strata(args: &[&str]) -> Run {
    strata_in(&repository(), args, None, &[])
}

pub(crate) fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary build context.
pub(crate) struct Context {
    pub(crate) dir: tempfile::TempDir,
}

impl Context {
    pub(crate) fn new() -> Self {
        Context {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn file(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub(crate) fn dockerfile(self, content: &str) -> Self {
        self.file("Dockerfile", content)
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run `strata ARGS...` inside the context directory.
    pub(crate) fn strata(&self, args: &[&str]) -> Run {
        strata_in(self.path(), args, None, &[])
    }
}

// `is_root` and the tar header builders, shared with the solver's own
// integration tests (see that file for why a file).
#[path = "../../solver/tests/support/mod.rs"]
mod shared;
pub(crate) use shared::{block, is_root, sparse_tail};

/// The path of a tool the tests need; a clear failure when it is missing.
pub(crate) fn require(tool: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let path = Path::new(dir).join(tool);
        if path.is_file() {
            return path;
        }
    }
    panic!("`{tool}` is needed by this test: install it (.ci/run lists the Debian packages)");
}

/// Run a command; panic with its output when it fails.
pub(crate) fn run_ok(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("failed to run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A busybox root filesystem made from Debian's busybox-static: the binary,
/// its applets as symlinks, /etc/passwd and /etc/group, a sticky /tmp.
pub(crate) fn busybox_rootfs(root: &Path) {
    let busybox = require("busybox");
    for dir in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    let applets = run_ok(Command::new(&busybox).arg("--list"));
    for applet in applets.lines().filter(|applet| *applet != "busybox") {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// A throwaway store and a way to run strata against it.
pub(crate) struct StoreDir {
    pub(crate) dir: tempfile::TempDir,
}

impl StoreDir {
    pub(crate) fn new() -> Self {
        StoreDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Run `strata ARGS...` with `--root` set to this store, in `cwd`.
    pub(crate) fn strata(&self, cwd: &Path, args: &[&str]) -> Run {
        let root = self.root();
        let mut all = vec!["--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        strata_in(cwd, &all, None, &[])
    }

    /// The same, expecting success; returns stdout.
    pub(crate) fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        self.ok_with_env(cwd, args, &[])
    }

    /// `ok` with extra environment variables.
    pub(crate) fn ok_with_env(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
        let root = self.root();
        let mut all = vec!["--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        let run = strata_in(cwd, &all, None, env);
        assert_eq!(run.code, 0, "strata {args:?} failed:\n{}", run.stderr);
        run.stdout
    }
}

/// Build `context` in `store` with `--progress json`, the flags `extra`
/// and the environment `env`, expecting success: the events (every line of
/// standard error is one).
pub(crate) fn build_json(
    store: &StoreDir,
    context: &Context,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    build_json_output(store, context, extra, env).1
}

/// [`build_json`], with standard output too.
pub(crate) fn build_json_output(
    store: &StoreDir,
    context: &Context,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (String, Vec<serde_json::Value>) {
    json_events(store, context, &["build"], extra, env)
}

/// Run `command` (`build`, `cache explain`) on the context with
/// `--progress json`, expecting success: its standard output and its
/// events, every stderr line one of them.
pub(crate) fn json_events(
    store: &StoreDir,
    context: &Context,
    command: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (String, Vec<serde_json::Value>) {
    let root = store.root();
    let mut args = vec!["--root", root.to_str().unwrap()];
    args.extend_from_slice(command);
    args.extend_from_slice(&["--progress", "json"]);
    args.extend_from_slice(extra);
    args.push(".");
    let run = strata_in(context.path(), &args, None, env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    (run.stdout, events)
}

/// Every entry below `root`: type, mode, owner, content (or link target),
/// and which entries are hardlinks of each other.
pub(crate) fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut inodes: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.file_type().is_symlink() {
                format!(
                    "symlink -> {}",
                    std::fs::read_link(&path).unwrap().display()
                )
            } else {
                let content = std::fs::read(&path).unwrap();
                let digest = sha2::Digest::finalize(
                    <sha2::Sha256 as sha2::Digest>::new_with_prefix(&content),
                );
                let link = if meta.nlink() > 1 {
                    let first = inodes.entry(meta.ino()).or_insert_with(|| name.clone());
                    format!(" hardlink-group={first}")
                } else {
                    String::new()
                };
                format!("file {:x}{link}", digest)
            };
            let mode = if meta.file_type().is_symlink() {
                0
            } else {
                meta.mode() & 0o7777
            };
            out.insert(
                name,
                format!("{what} mode={mode:o} owner={}:{}", meta.uid(), meta.gid()),
            );
        }
    }
    out
}
