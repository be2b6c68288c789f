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
mod context;
mod copy;
mod core;
mod corpus;
mod dockerignore;
mod errors;
mod exclude;
mod export;
pub(crate) mod git;
mod heredoc;
mod image;
mod lint;
mod mount;
mod multistage;
mod namedcontext;
mod onbuild;
mod outline;
mod parents;
mod platform;
mod resources;
mod runnetwork;
mod runsecurity;
mod secrets;
mod ssh;
mod targets;
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
/// each request's method and path. [`HttpServer::dir`] serves a directory
/// instead (git's dumb protocol, as BuildKit's tests serve a repository
/// with `http.FileServer`), [`HttpServer::git`] runs `git http-backend`
/// (the smart protocol).
pub(crate) struct HttpServer {
    pub(crate) port: u16,
    pub(crate) requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// One request, read whole (tests send small ones).
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    pub(crate) query: String,
    /// Header names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Read one request from `reader`; `None` when it is not one.
fn read_request(reader: &mut impl std::io::BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut body = Vec::new();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<u64>().ok());
    if let Some(length) = length {
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut *reader, length), &mut body)
            .ok()?;
    } else if headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            std::io::Read::read_exact(reader, &mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

impl HttpServer {
    /// A server answering each request with `handle`, which writes the
    /// whole response; connections are closed after one.
    pub(crate) fn with(
        handle: impl Fn(&Request, &mut std::net::TcpStream) + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        let handle = std::sync::Arc::new(handle);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                let handle = handle.clone();
                // A thread each: git keeps one connection open while it
                // opens another.
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let Some(request) = read_request(&mut reader) else {
                        return;
                    };
                    log.lock()
                        .unwrap()
                        .push(format!("{} {}", request.method, request.path));
                    let mut stream = stream;
                    handle(&request, &mut stream);
                });
            }
        });
        HttpServer { port, requests }
    }

    pub(crate) fn new(files: Vec<Served>) -> HttpServer {
        use std::io::Write;
        HttpServer::with(move |request, stream| {
            let Some(file) = files.iter().find(|file| file.path == request.path) else {
                not_found(stream);
                return;
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
            if request.method != "HEAD" {
                let _ = stream.write_all(&file.content);
            }
        })
    }

    /// The files under `root`, by path (the query ignored, as Go's
    /// `http.FileServer`): a repository's `.git` after `git
    /// update-server-info` is served in git's dumb protocol.
    pub(crate) fn dir(root: &Path) -> HttpServer {
        use std::io::Write;
        let root = root.to_owned();
        HttpServer::with(move |request, stream| {
            let relative = request.path.trim_start_matches('/');
            if relative.split('/').any(|part| part == "..") {
                not_found(stream);
                return;
            }
            let Ok(content) = std::fs::read(root.join(relative)) else {
                not_found(stream);
                return;
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                content.len()
            );
            let _ = stream.write_all(head.as_bytes());
            if request.method != "HEAD" {
                let _ = stream.write_all(&content);
            }
        })
    }

    /// The repositories under `root` through `git http-backend` (a CGI
    /// program, run once per request): git's smart protocol, v2 included.
    pub(crate) fn git(root: &Path) -> HttpServer {
        use std::io::{Read, Write};
        let root = root.to_owned();
        let backend = git_exec_path().join("git-http-backend");
        HttpServer::with(move |request, stream| {
            let mut command = std::process::Command::new(&backend);
            command
                .env_clear()
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", &root)
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("PATH_INFO", &request.path)
                .env("QUERY_STRING", &request.query)
                .env("REQUEST_METHOD", &request.method)
                .env("CONTENT_TYPE", request.header("content-type").unwrap_or(""))
                .env("CONTENT_LENGTH", request.body.len().to_string())
                .env("REMOTE_ADDR", "127.0.0.1")
                .env("SERVER_PROTOCOL", "HTTP/1.1")
                .env("GATEWAY_INTERFACE", "CGI/1.1");
            if let Some(encoding) = request.header("content-encoding") {
                command.env("HTTP_CONTENT_ENCODING", encoding);
            }
            if let Some(protocol) = request.header("git-protocol") {
                command.env("GIT_PROTOCOL", protocol);
            }
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let body = request.body.clone();
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(&body);
            });
            let mut output = Vec::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut output)
                .unwrap();
            let _ = child.wait();
            let _ = writer.join();
            // CGI: headers (a `Status:` among them), a blank line, the body.
            let split = output
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
                .map(|at| (at, 4))
                .or_else(|| {
                    output
                        .windows(2)
                        .position(|window| window == b"\n\n")
                        .map(|at| (at, 2))
                });
            let Some((at, skip)) = split else {
                let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            };
            let head = String::from_utf8_lossy(&output[..at]).into_owned();
            let mut status = "200 OK".to_owned();
            let mut headers = String::new();
            for line in head.lines() {
                match line.split_once(':') {
                    Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                        status = value.trim().to_owned();
                    }
                    Some(_) => {
                        headers.push_str(line.trim_end());
                        headers.push_str("\r\n");
                    }
                    None => {}
                }
            }
            let body = &output[at + skip..];
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = stream.write_all(body);
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn not_found(stream: &mut std::net::TcpStream) {
    use std::io::Write;
    let _ = stream
        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Where git's programs are (`git --exec-path`).
pub(crate) fn git_exec_path() -> std::path::PathBuf {
    let output = std::process::Command::new(crate::support::require("git"))
        .arg("--exec-path")
        .output()
        .unwrap();
    assert!(output.status.success());
    std::path::PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
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
