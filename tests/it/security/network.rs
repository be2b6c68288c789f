//! Network attacks: registries and `ADD` URLs that never end, stall, never
//! answer, send more than they declared, steer credentials to another host
//! or name a file `..`. Each runs the real binary against a scripted
//! server on 127.0.0.1 (and 127.0.0.2 as "another host": both loopback),
//! and checks the exact error, the time it took and that nothing outside
//! its place was touched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Context, Run, StoreDir, busybox_rootfs, strata_in};

/// One request a scripted server received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    /// With its query.
    path: String,
    /// The `Authorization` header, empty if none.
    authorization: String,
}

type Handler = dyn Fn(&Request, &mut TcpStream) + Send + Sync;

/// An HTTP server on `ip`, answering each request with `handler`; every
/// request is logged.
struct Server {
    ip: &'static str,
    port: u16,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(
        ip: &'static str,
        handler: impl Fn(&Request, &mut TcpStream) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (log, handler) = (shared.clone(), handler.clone());
                std::thread::spawn(move || {
                    let Ok(Some(request)) = read_request(&stream) else {
                        return;
                    };
                    log.lock().unwrap().push(request.clone());
                    handler(&request, &mut stream);
                });
            }
        });
        Server { ip, port, log }
    }

    fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

/// The request on `stream`, its body read; `None` for what is not HTTP (a
/// TLS hello, when strata tries https first).
fn read_request(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split(' ');
    let (Some(method), Some(path)) = (words.next(), words.next()) else {
        return Ok(None);
    };
    if !["GET", "HEAD", "PUT", "POST", "PATCH"].contains(&method) {
        return Ok(None);
    }
    let (mut authorization, mut length, mut chunked) = (String::new(), 0usize, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        if header.trim().is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((&header, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = value.to_owned(),
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
        }
    } else {
        std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
    }
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        authorization,
    }))
}

/// Answer `status` with `headers` and `body` (and its length), closing.
fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// Start a chunked body; the caller writes chunks with [`chunk`].
fn start_chunked(stream: &mut TcpStream, kind: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
}

fn chunk(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    write!(stream, "{:x}\r\n", bytes.len())?;
    stream.write_all(bytes)?;
    stream.write_all(b"\r\n")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// An image manifest whose config is `config_size` bytes of digest
/// `sha256:CONFIG`, without layers.
fn manifest_with_config(config: &str, config_size: u64) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config}","size":{config_size}}},"layers":[]}}"#
    )
}

/// Run strata against `store` in its directory, with `env`.
fn strata_env(store: &StoreDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let root = store.root();
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    strata_in(store.dir.path(), &all, None, env)
}

/// Every file below `dir` and its size, for "nothing was left behind".
fn files_below(dir: &Path) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            found.extend(files_below(&entry.path()));
        } else {
            found.push((entry.path().display().to_string(), meta.len()));
        }
    }
    found.sort();
    found
}

/// A registry whose one image (`app:1`) has a config blob of declared
/// `size`, served by `blob`.
fn registry_with_config(
    size: u64,
    blob: impl Fn(&mut TcpStream) + Send + Sync + 'static,
) -> (Server, String) {
    let config = sha256_hex(b"the config");
    let manifest = manifest_with_config(&config, size);
    let wanted = format!("/v2/app/blobs/sha256:{config}");
    let server = Server::start("127.0.0.1", move |request, stream| {
        if request.path == "/v2/" {
            respond(stream, "200 OK", &[], b"{}");
        } else if request.path == "/v2/app/manifests/1" {
            respond(
                stream,
                "200 OK",
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                manifest.as_bytes(),
            );
        } else if request.path == wanted {
            blob(stream);
        } else {
            respond(stream, "404 Not Found", &[], b"");
        }
    });
    (server, config)
}

#[test]
fn an_endless_blob_is_cut_at_its_declared_size_and_leaves_nothing() {
    // The config says 100 bytes; the body never ends.
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let (server, config) = registry_with_config(100, move |stream| {
        if start_chunked(stream, "application/octet-stream").is_err() {
            return;
        }
        let block = vec![b'x'; 64 << 10];
        while chunk(stream, &block).is_ok() {
            counter.fetch_add(block.len() as u64, Ordering::SeqCst);
        }
    });
    let host = server.host();
    let store = StoreDir::new();
    let run = strata_env(&store, &["pull", &format!("{host}/app:1")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: `{host}/app:1`: reading blob sha256:{config} from registry {host} failed: \
             more than its declared size of 100 bytes arrived"
        ),
        "{}",
        run.stderr
    );
    // strata stopped reading at once: what the server got out is what the
    // sockets' buffers hold, not the disk's worth it wanted to send.
    std::thread::sleep(Duration::from_millis(500));
    let total = sent.load(Ordering::SeqCst);
    assert!(total < 32 << 20, "the server sent {total} bytes");
    // Nothing stays in the store: no partial blob, no temporary file.
    assert_eq!(files_below(&store.root().join("tmp")), vec![]);
    assert!(!store.root().join("blobs/sha256").join(&config).exists());

    // Fewer bytes than declared, in a chunked body that ends cleanly.
    let (short, config) = registry_with_config(100, |stream| {
        let _ = start_chunked(stream, "application/octet-stream")
            .and_then(|()| chunk(stream, b"only ten.."))
            .and_then(|()| stream.write_all(b"0\r\n\r\n"));
    });
    let host = short.host();
    let run = strata_env(&store, &["pull", &format!("{host}/app:1")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: `{host}/app:1`: reading blob sha256:{config} from registry {host} failed: \
             it ended after 10 of its declared 100 bytes"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(files_below(&store.root().join("tmp")), vec![]);

    // Fewer bytes than its Content-Length, then the connection closes.
    let (cut, config) = registry_with_config(100, |stream| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nten bytes."
        );
    });
    let host = cut.host();
    let run = strata_env(&store, &["pull", &format!("{host}/app:1")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: `{host}/app:1`: reading blob sha256:{config} from registry {host} failed: \
             it ended after 10 of its declared 100 bytes"
        ),
        "{}",
        run.stderr
    );
    // A Content-Length above the declared size: refused before reading.
    let (over, config) = registry_with_config(100, |stream| {
        respond(stream, "200 OK", &[], &[b'x'; 1000]);
    });
    let host = over.host();
    let run = strata_env(&store, &["pull", &format!("{host}/app:1")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: `{host}/app:1`: reading blob sha256:{config} from registry {host} failed: \
             more than its declared size of 100 bytes arrived"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(files_below(&store.root().join("tmp")), vec![]);
}

#[test]
fn sigterm_ends_a_stalled_pull_of_a_build() {
    let (server, _) = registry_with_config(100, |stream| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nten bytes."
        );
        let _ = stream.flush();
        std::thread::sleep(Duration::from_secs(120));
    });
    // (The default idle timeout, 30 s: only the signal can end it soon.)
    let host = server.host();
    let store = StoreDir::new();
    let root = store.root();
    let context = Context::new().dockerfile(&format!("FROM {host}/app:1\n"));
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--root", root.to_str().unwrap(), "build", "-q", "."])
        .current_dir(context.path())
        .env_remove("STRATA_NET_IDLE_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !server
        .requests()
        .iter()
        .any(|request| request.path.contains("/blobs/"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no blob was asked for"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(took < Duration::from_secs(2), "{took:?}: {stderr}");
    // Base images are resolved before the build catches signals: SIGTERM
    // ends strata as it would any program, and no image is recorded.
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(output.status.signal(), Some(15), "{stderr}");
    assert_eq!(store.ok(store.dir.path(), &["images", "-q"]), "");
}

#[test]
fn a_stalled_blob_fails_within_the_idle_timeout() {
    let (server, config) = registry_with_config(100, |stream| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nten bytes."
        );
        let _ = stream.flush();
        std::thread::sleep(Duration::from_secs(60));
    });
    let host = server.host();
    let store = StoreDir::new();
    let started = Instant::now();
    let run = strata_env(
        &store,
        &["pull", &format!("{host}/app:1")],
        &[("STRATA_NET_IDLE_TIMEOUT", "1")],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: `{host}/app:1`: reading blob sha256:{config} from registry {host} failed: \
             no data for 1 s (idle timeout)"
        ),
        "{}",
        run.stderr
    );
    // Once: a stall is not retried.
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let asked = server
        .requests()
        .iter()
        .filter(|request| request.path.contains("/blobs/"))
        .count();
    assert_eq!(asked, 1);
    assert_eq!(files_below(&store.root().join("tmp")), vec![]);
}

#[test]
fn oversized_manifests_configs_and_tokens_are_refused_naming_the_limit() {
    let big = vec![b' '; 5 << 20];
    let config = sha256_hex(b"the config");
    let huge_config = manifest_with_config(&config, 9 << 20);
    let manifest_digest = sha256_hex(huge_config.as_bytes());
    let server = Server::start("127.0.0.1", move |request, stream| {
        match request.path.as_str() {
            "/v2/" => respond(stream, "200 OK", &[], b"{}"),
            // With a Content-Length: refused before a byte is read.
            "/v2/announced/manifests/1" => respond(
                stream,
                "200 OK",
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                &big,
            ),
            // Without one: refused at the first byte past the limit.
            "/v2/chunked/manifests/1" => {
                let _ = start_chunked(stream, "application/vnd.oci.image.manifest.v1+json");
                for piece in big.chunks(1 << 20) {
                    if chunk(stream, piece).is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            }
            "/v2/config/manifests/1" => respond(
                stream,
                "200 OK",
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                huge_config.as_bytes(),
            ),
            _ => respond(stream, "404 Not Found", &[], b""),
        }
    });
    let host = server.host();
    let store = StoreDir::new();
    for name in ["announced", "chunked"] {
        let run = strata_env(&store, &["pull", &format!("{host}/{name}:1")], &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(
            run.stderr,
            format!(
                "error: `{host}/{name}:1`: reading manifest 1 from registry {host} failed: \
                 larger than the 4 MiB limit for manifests\n"
            )
        );
    }
    let run = strata_env(&store, &["pull", &format!("{host}/config:1")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "error: `{host}/config:1`: the config sha256:{config} of manifest sha256:{manifest_digest} \
             is 9437184 bytes, larger than the 8 MiB limit for image configs\n"
        )
    );
    // Nothing asked for the config: it was refused by its descriptor.
    assert!(
        !server
            .requests()
            .iter()
            .any(|request| request.path.contains("/blobs/"))
    );

    // A token service whose answer never ends.
    let tokens = Server::start("127.0.0.1", |request, stream| {
        if request.path.starts_with("/token") {
            if start_chunked(stream, "application/json").is_err() {
                return;
            }
            let block = vec![b' '; 64 << 10];
            while chunk(stream, &block).is_ok() {}
        } else {
            let port = stream.local_addr().unwrap().port();
            let challenge = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"x\"");
            respond(
                stream,
                "401 Unauthorized",
                &[("WWW-Authenticate", &challenge)],
                b"",
            );
        }
    });
    let host = tokens.host();
    let run = strata_env(&store, &["pull", &format!("{host}/app:1")], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "error: `{host}/app:1`: reading a token from http://{host}/token from registry {host} failed: \
             larger than the 1 MiB limit for token answers\n"
        )
    );
}

/// A store with busybox imported as `base`.
fn store_with_base() -> StoreDir {
    let store = StoreDir::new();
    let rootfs = store.dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    store.ok(
        store.dir.path(),
        &["import", rootfs.to_str().unwrap(), "base"],
    );
    store
}

/// A server that reads each request and never answers.
fn silent() -> Server {
    Server::start("127.0.0.1", |_, _| {
        std::thread::sleep(Duration::from_secs(120));
    })
}

#[test]
fn add_of_a_url_that_never_answers_times_out() {
    let server = silent();
    let url = format!("http://{}/never", server.host());
    let store = StoreDir::new();
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x\n"));
    let started = Instant::now();
    let root = store.root();
    let run = strata_in(
        context.path(),
        &["--root", root.to_str().unwrap(), "build", "-q", "."],
        None,
        &[("STRATA_NET_IDLE_TIMEOUT", "1")],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        format!("error: ADD failed: failed to fetch {url}: no data for 1 s (idle timeout)"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(files_below(&root.join("tmp")), vec![]);
}

#[test]
fn sigterm_ends_a_stalled_add_at_once() {
    let server = silent();
    let url = format!("http://{}/never", server.host());
    let store = StoreDir::new();
    let root = store.root();
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x\n"));
    // The default timeouts (30 s): only the signal can end it soon.
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--root", root.to_str().unwrap(), "build", "-q", "."])
        .current_dir(context.path())
        .env_remove("STRATA_NET_IDLE_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.requests().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "no request came");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(took < Duration::from_secs(2), "{took:?}: {stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!("error: ADD failed: failed to fetch {url}: interrupted by signal 15"),
        "{stderr}"
    );
    assert_eq!(files_below(&root.join("tmp")), vec![]);
}

#[test]
fn add_urls_naming_dot_dot_stay_in_place() {
    let server = Server::start("127.0.0.1", |_, stream| {
        respond(stream, "200 OK", &[], b"payload\n");
    });
    let host = server.host();
    let store = store_with_base();
    let root = store.root();
    // Where `staging/..` would land: the store's tmp/, shared by every
    // build in flight.
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::write(root.join("tmp/canary"), "alive").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("canary"), "alive").unwrap();
    let urls = [
        "/..",
        "/a/..",
        "/a/%2e%2e",
        "/%2E%2e/%2e%2e/",
        "/a%2f..",
        "/x/%2e%2e/named",
    ];
    let mut dockerfile = "FROM base\n".to_owned();
    for (at, path) in urls.iter().enumerate() {
        dockerfile.push_str(&format!("ADD http://{host}{path} /d{at}/\n"));
    }
    dockerfile.push_str(&format!("ADD http://{host}/.. /\n"));
    let context = Context::new().dockerfile(&dockerfile);
    let run = strata_in(
        context.path(),
        &[
            "--root",
            root.to_str().unwrap(),
            "build",
            "-q",
            "-t",
            "dots",
            ".",
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listing = store.ok(
        store.dir.path(),
        &[
            "run",
            "dots",
            "sh",
            "-c",
            "for d in /d0 /d1 /d2 /d3 /d4 /d5; do echo $d: $(ls -A $d); done; cat /__unnamed__",
        ],
    );
    assert_eq!(
        listing,
        "/d0: __unnamed__\n/d1: __unnamed__\n/d2: __unnamed__\n/d3: __unnamed__\n\
         /d4: __unnamed__\n/d5: named\npayload\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("tmp/canary")).unwrap(),
        "alive"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("canary")).unwrap(),
        "alive"
    );
    assert_eq!(
        files_below(&root.join("tmp")),
        vec![(root.join("tmp/canary").display().to_string(), 5)]
    );
}

/// Another host that wants credentials: a 401 whose bearer challenge names
/// its own token service, which answers anything.
fn greedy(request: &Request, stream: &mut TcpStream) {
    if request.path.starts_with("/token") {
        respond(stream, "200 OK", &[], br#"{"token":"stolen"}"#);
        return;
    }
    let here = stream.local_addr().unwrap();
    let challenge = format!("Bearer realm=\"http://{here}/token\",service=\"greedy\"");
    respond(
        stream,
        "401 Unauthorized",
        &[("WWW-Authenticate", &challenge)],
        b"",
    );
}

/// A store with a small image `img` (one file, from scratch).
fn store_with_image() -> StoreDir {
    let store = StoreDir::new();
    let context = Context::new()
        .file("f", "content\n")
        .dockerfile("FROM scratch\nCOPY f /f\n");
    let root = store.root();
    let run = strata_in(
        context.path(),
        &[
            "--root",
            root.to_str().unwrap(),
            "build",
            "-q",
            "-t",
            "img",
            ".",
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    store
}

const CREDENTIALS: &str = "user:secret";
/// `Basic base64(user:secret)`.
const BASIC: &str = "Basic dXNlcjpzZWNyZXQ=";

/// A registry on 127.0.0.1 that wants basic authentication and starts
/// uploads whose `Location` is on `elsewhere`.
fn registry_uploading_to(elsewhere: &Server) -> Server {
    let location = format!("http://{}/upload/1", elsewhere.host());
    Server::start("127.0.0.1", move |request, stream| {
        if request.authorization != BASIC {
            respond(
                stream,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"scripted\"")],
                b"",
            );
        } else if request.method == "HEAD" {
            respond(stream, "404 Not Found", &[], b"");
        } else if request.method == "POST" {
            respond(stream, "202 Accepted", &[("Location", &location)], b"");
        } else if request.method == "PUT" && request.path.contains("/manifests/") {
            respond(stream, "201 Created", &[], b"");
        } else {
            respond(stream, "404 Not Found", &[], b"");
        }
    })
}

#[test]
fn an_upload_location_on_another_host_gets_no_credentials() {
    let store = store_with_image();
    // The other host takes the upload.
    let taker = Server::start("127.0.0.2", |_, stream| {
        respond(stream, "201 Created", &[], b"");
    });
    let registry = registry_uploading_to(&taker);
    let host = registry.host();
    let run = strata_env(
        &store,
        &[
            "push",
            "-q",
            "--creds",
            CREDENTIALS,
            "img",
            &format!("{host}/app:1"),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let uploads = taker.requests();
    // The config and the layer.
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    for upload in &uploads {
        assert_eq!(upload.method, "PUT");
        assert!(
            upload.path.starts_with("/upload/1?digest=sha256:"),
            "{upload:?}"
        );
        assert_eq!(upload.authorization, "", "{upload:?}");
    }
    assert!(
        registry
            .requests()
            .iter()
            .any(|request| request.path == "/v2/app/manifests/1" && request.authorization == BASIC)
    );

    // The other host asks for credentials: it gets none, the push fails.
    let asker = Server::start("127.0.0.2", greedy);
    let registry = registry_uploading_to(&asker);
    let host = registry.host();
    let run = strata_env(
        &store,
        &[
            "push",
            "-q",
            "--creds",
            CREDENTIALS,
            "img",
            &format!("{host}/app:1"),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: `{host}/app:1`: registry {host} refused access (401 Unauthorized): \
             the credentials of `user` were refused; check them with `strata login {host}`"
        ),
        "{}",
        run.stderr
    );
    assert!(!asker.requests().is_empty());
    assert!(
        !asker
            .requests()
            .iter()
            .any(|request| request.path.starts_with("/token")),
        "{:?}",
        asker.requests()
    );
    assert!(
        asker
            .requests()
            .iter()
            .all(|request| request.authorization.is_empty()),
        "{:?}",
        asker.requests()
    );
}

#[test]
fn a_redirect_to_another_host_gets_no_credentials() {
    // A real image, saved as an OCI layout, served by a registry that
    // wants basic authentication and redirects blobs to another host.
    let store = store_with_image();
    let layout = store.dir.path().join("layout");
    store.ok(
        store.dir.path(),
        &[
            "save",
            "--format",
            "oci",
            "-o",
            layout.to_str().unwrap(),
            "img",
        ],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let blobs = layout.join("blobs/sha256");
    let manifest = std::fs::read(blobs.join(&manifest_digest[7..])).unwrap();
    for refuse in [false, true] {
        let dir = blobs.clone();
        let storage = Server::start("127.0.0.2", move |request, stream| {
            if refuse {
                greedy(request, stream);
                return;
            }
            let hex = request.path.rsplit(':').next().unwrap();
            match std::fs::read(dir.join(hex)) {
                Ok(bytes) => respond(stream, "200 OK", &[], &bytes),
                Err(_) => respond(stream, "404 Not Found", &[], b""),
            }
        });
        let storage_host = storage.host();
        let manifest = manifest.clone();
        let registry = Server::start("127.0.0.1", move |request, stream| {
            if request.authorization != BASIC {
                respond(
                    stream,
                    "401 Unauthorized",
                    &[("WWW-Authenticate", "Basic realm=\"scripted\"")],
                    b"",
                );
            } else if request.path == "/v2/" {
                respond(stream, "200 OK", &[], b"{}");
            } else if request.path == "/v2/app/manifests/1" {
                respond(
                    stream,
                    "200 OK",
                    &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                    &manifest,
                );
            } else if let Some(digest) = request.path.strip_prefix("/v2/app/blobs/") {
                let location = format!("http://{storage_host}/storage/{digest}");
                respond(
                    stream,
                    "307 Temporary Redirect",
                    &[("Location", &location)],
                    b"",
                );
            } else {
                respond(stream, "404 Not Found", &[], b"");
            }
        });
        let host = registry.host();
        let fresh = StoreDir::new();
        let run = strata_env(
            &fresh,
            &[
                "pull",
                "-q",
                "--creds",
                CREDENTIALS,
                &format!("{host}/app:1"),
            ],
            &[],
        );
        if refuse {
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert_eq!(
                run.stderr.lines().last().unwrap(),
                format!(
                    "error: `{host}/app:1`: registry {host} refused access (401 Unauthorized): \
                     the credentials of `user` were refused; check them with `strata login {host}`"
                ),
                "{}",
                run.stderr
            );
        } else {
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        let fetched = storage.requests();
        assert!(!fetched.is_empty());
        assert!(
            !fetched
                .iter()
                .any(|request| request.path.starts_with("/token")),
            "{fetched:?}"
        );
        assert!(
            fetched
                .iter()
                .all(|request| request.authorization.is_empty()),
            "{fetched:?}"
        );
        assert!(
            registry
                .requests()
                .iter()
                .any(|request| request.path.contains("/blobs/") && request.authorization == BASIC)
        );
    }
}

/// A listener that never accepts, its queue filled by connections held
/// open: a further connect waits for an answer to its SYN that never
/// comes. The held connections go with it.
fn unanswered() -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mut held = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
        held.push(stream);
        assert!(held.len() < 5000, "the listen queue never filled");
    }
    (listener, held)
}

#[test]
fn a_connect_that_never_completes_times_out_or_ends_on_sigterm() {
    let (listener, _held) = unanswered();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x\n"));
    let store = StoreDir::new();
    let root = store.root();
    let started = Instant::now();
    let run = strata_in(
        context.path(),
        &["--root", root.to_str().unwrap(), "build", "-q", "."],
        None,
        &[("STRATA_NET_CONNECT_TIMEOUT", "1")],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        format!(
            "error: ADD failed: failed to fetch {url}: no connection within 1 s (connect timeout)"
        ),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The default connect timeout (30 s): only the signal ends it soon.
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--root", root.to_str().unwrap(), "build", "-q", "."])
        .current_dir(context.path())
        .env_remove("STRATA_NET_CONNECT_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(took < Duration::from_secs(2), "{took:?}: {stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!("error: ADD failed: failed to fetch {url}: interrupted by signal 15"),
        "{stderr}"
    );
}
