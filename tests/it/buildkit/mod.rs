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

mod add;
mod args;
mod cache;
mod cmd;
mod copy;
mod core;
mod corpus;
mod dockerignore;
mod exclude;
mod export;
mod heredoc;
mod image;
mod lint;
mod mount;
mod multistage;
mod namedcontext;
mod onbuild;
mod parents;
mod resources;
mod secrets;
mod ssh;
mod workdir;

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
        // The tests that use `alpine` need only its shell.
        store.ok(store.dir.path(), &["tag", "busybox", "alpine"]);
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

/// One file an [`HttpServer`] serves.
pub(crate) struct Served {
    pub(crate) path: &'static str,
    pub(crate) content: Vec<u8>,
    /// `Last-Modified`, as HTTP writes it.
    pub(crate) last_modified: Option<&'static str>,
}

/// An HTTP server on 127.0.0.1 (BuildKit's `httpserver.NewTestServer`):
/// each path its content, with an ETag; anything else a 404. It records
/// each request's method and path.
pub(crate) struct HttpServer {
    pub(crate) port: u16,
    pub(crate) requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpServer {
    pub(crate) fn new(files: Vec<Served>) -> HttpServer {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut words = request.split_whitespace();
                let method = words.next().unwrap_or_default().to_owned();
                let path = words.next().unwrap_or_default().to_owned();
                log.lock().unwrap().push(format!("{method} {path}"));
                let mut stream = stream;
                let Some(file) = files.iter().find(|file| file.path == path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let mut head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"{}\"\r\nConnection: close\r\n",
                    file.content.len(),
                    file.content.len()
                );
                if let Some(date) = file.last_modified {
                    head.push_str(&format!("Last-Modified: {date}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                if method != "HEAD" {
                    let _ = stream.write_all(&file.content);
                }
            }
        });
        HttpServer { port, requests }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A tar archive of `entries`: (path, type, content or link target).
pub(crate) fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(*kind);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match *kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                header.set_size(0);
                builder
                    .append_link(&mut header, path, std::str::from_utf8(data).unwrap())
                    .unwrap();
            }
            _ => {
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// `data` gzipped by Debian's gzip.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::support::require("gzip"))
        .args(["-c", "-n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    output.stdout
}

impl Bk {
    /// `strata inspect` of `image`, as docker's JSON.
    pub(crate) fn inspect(&self, image: &str) -> serde_json::Value {
        let text = self.store.ok(
            self.store.dir.path(),
            &["inspect", "-f", "{{json .}}", image],
        );
        serde_json::from_str(&text).unwrap()
    }
}

/// What an OCI layout export holds: its index, the first manifest, and
/// that manifest's config.
pub(crate) struct OciLayout {
    pub(crate) index: serde_json::Value,
    pub(crate) config: serde_json::Value,
}

impl Bk {
    /// Build with `--output type=oci,dest=DIR,tar=false` plus `extra`
    /// output options, and read the layout.
    pub(crate) fn oci(&self, context: &Context, output: &str, args: &[&str]) -> OciLayout {
        let out = tempfile::tempdir().unwrap();
        let layout = out.path().join("layout");
        let dest = format!("type=oci,dest={},tar=false{output}", layout.display());
        let mut all = vec!["--output", &dest];
        all.extend_from_slice(args);
        self.build_ok(context, &all);
        let json = |path: std::path::PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
        };
        let blob = |digest: &serde_json::Value| {
            let digest = digest.as_str().unwrap();
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        };
        let index = json(layout.join("index.json"));
        let manifest = json(blob(&index["manifests"][0]["digest"]));
        let config = json(blob(&manifest["config"]["digest"]));
        OciLayout { index, config }
    }
}

/// `INSTRUCTION --chmod=MODE foo /` fails for the modes BuildKit's
/// testCopyInvalidChmod and testAddInvalidChmod try, in BuildKit's words.
pub(crate) fn assert_invalid_chmod(instruction: &str) {
    let bk = Bk::new();
    for mode in ["64a", "10000"] {
        let context = Context::new()
            .dockerfile(&format!(
                "FROM scratch\n{instruction} --chmod={mode} foo /\n"
            ))
            .file("foo", "foo-contents");
        let stderr = bk.build_err(&context, &[]);
        assert!(
            stderr.contains(&format!(
                "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
            )),
            "{stderr}"
        );
    }
}
