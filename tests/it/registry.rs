//! Registries: a real one (Debian's docker-registry, started here on
//! 127.0.0.1 with a temporary config: plain, and TLS with htpasswd), skopeo
//! as the independent client, and a small scripted server for the answers a
//! real registry cannot be made to give (429, 403, a token service).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{
    Context, Run, StoreDir, build_json_output, busybox_rootfs, require, run_ok, strata_in,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on 127.0.0.1, stopped when dropped.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// What `Registry::tls` made: the CA to trust, the credentials.
struct Tls {
    ca_dir: PathBuf,
}

impl Registry {
    pub(crate) fn start(extra: &str) -> Registry {
        let binary = require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        Registry::start_in(binary, dir, extra)
    }

    fn start_in(binary: PathBuf, dir: tempfile::TempDir, extra: &str) -> Registry {
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog: {{ level: error }}\n\
             storage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\n\
             http:\n  addr: 127.0.0.1:{port}\n{extra}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry { child, port, dir };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the registry did not start: {}",
                std::fs::read_to_string(registry.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// A registry behind TLS (a certificate signed by a CA made here) with
    /// htpasswd authentication of `tester`/`secret`.
    fn tls() -> (Registry, Tls) {
        let binary = require("docker-registry");
        let openssl = require("openssl");
        let htpasswd = require("htpasswd");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let ca_dir = path.join("ca");
        std::fs::create_dir(&ca_dir).unwrap();
        let ssl = |args: &[&str]| {
            run_ok(Command::new(&openssl).args(args).current_dir(path));
        };
        ssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca/ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=strata test CA",
        ]);
        ssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            path.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca/ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let users = run_ok(Command::new(htpasswd).args(["-Bbn", "tester", "secret"]));
        std::fs::write(path.join("htpasswd"), users).unwrap();
        let extra = format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
            path.join("server.crt").display(),
            path.join("server.key").display(),
            path.join("htpasswd").display()
        );
        (Registry::start_in(binary, dir, &extra), Tls { ca_dir })
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry keeps blob `digest` in.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run strata against `store` with `env`.
fn strata_env(store: &StoreDir, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let root = store.root();
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    strata_in(cwd, &all, None, env)
}

/// A store with busybox imported as `busybox` (mtimes clamped, so every
/// store that imports it gets the same image).
fn store_with_busybox() -> StoreDir {
    let store = StoreDir::new();
    let rootfs = store.dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    store.ok_with_env(
        store.dir.path(),
        &["import", rootfs.to_str().unwrap(), "busybox"],
        &[("SOURCE_DATE_EPOCH", "0")],
    );
    store
}

pub(crate) fn skopeo(args: &[&str]) -> String {
    run_ok(Command::new(require("skopeo")).args(args))
}

/// The manifest (or index) of `reference` as the registry serves it, read
/// by skopeo.
fn raw_manifest(reference: &str) -> String {
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ])
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn push_then_build_from_the_pushed_image_in_an_empty_store() {
    let registry = Registry::start("");
    let host = registry.host();
    let a = store_with_busybox();
    let context = Context::new().dockerfile("FROM busybox\nRUN echo built-by-strata > /built\n");
    let app = format!("{host}/team/app:1");
    let id = last_line(&a.ok(context.path(), &["build", "-q", "-t", &app, "--push", "."]));
    // Pushing again sends nothing new and names the same digest.
    let run = strata_env(&a, a.dir.path(), &["push", &app], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("skipped: already exists").count(),
        3,
        "{}",
        run.stderr
    );
    let digest = run
        .stdout
        .trim()
        .strip_prefix(&format!("Pushed {app} (digest: "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{}", run.stdout))
        .to_owned();
    // skopeo reads it: the manifest digest, the config, and every blob
    // (copy verifies each digest).
    let raw = raw_manifest(&app);
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]))
    .unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let copied = tempfile::tempdir().unwrap();
    let layout = copied.path().join("oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{app}"),
        &format!("oci:{}:x", layout.display()),
    ]);
    let config: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--config",
        &format!("oci:{}:x", layout.display()),
    ]))
    .unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            sha256_hex(&serde_json::to_vec(&config).unwrap())
        )
        .len(),
        71
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);

    // A store that has never seen the image builds FROM the pushed name.
    let b = StoreDir::new();
    let next = Context::new().dockerfile(&format!("FROM {app}\nRUN cat /built > /seen\n"));
    let built = last_line(&b.ok(next.path(), &["build", "-q", "-t", "next", "."]));
    assert_ne!(built, id);
    let seen = b.ok(b.dir.path(), &["run", "next", "cat", "/seen"]);
    assert_eq!(seen, "built-by-strata\n");
    // The pulled image is the pushed one: same ID, and its digest recorded.
    let images = b.ok(b.dir.path(), &["images", "--digests", "--no-trunc"]);
    let line = images
        .lines()
        .find(|line| line.starts_with(&format!("{host}/team/app ")))
        .unwrap_or_else(|| panic!("{images}"));
    assert!(line.contains(&digest), "{line}");
    assert!(line.contains(&id), "{line}");
    let repo_digests = b.ok(
        b.dir.path(),
        &["inspect", "-f", "{{json .RepoDigests}}", &app],
    );
    assert_eq!(
        repo_digests.trim(),
        format!("[\"{host}/team/app@{digest}\"]")
    );
    // `run` pulls what the store lacks, as docker run does.
    let e = StoreDir::new();
    let run = strata_env(&e, e.dir.path(), &["run", &app, "cat", "/built"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "built-by-strata\n");
    assert_eq!(
        run.stderr.matches("Pulling blob").count(),
        3,
        "{}",
        run.stderr
    );
    // Chunked uploads (PATCH with Content-Range), from a store that knows
    // of no repository to mount from; skopeo verifies every blob.
    let d = store_with_busybox();
    let chunked = format!("{host}/chunked:1");
    let run = strata_env(
        &d,
        d.dir.path(),
        &["push", "--chunk-size", "65536", "busybox", &chunked],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("mounted"), "{}", run.stderr);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{chunked}"),
        &format!("dir:{}", copied.path().join("chunked").display()),
    ]);
    // --output type=registry pushes where name= says; blobs the registry
    // has in another repository are mounted, not sent.
    let out = format!("{host}/output:1");
    let run = strata_env(
        &a,
        context.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--output",
            &format!("type=registry,name={out}"),
            ".",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("mounted from team/app").count(),
        3,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("pushed {out} (digest: {digest})")),
        "{}",
        run.stderr
    );
    // --pull=never with a name it lacks fails; with the image there, it builds.
    let c = StoreDir::new();
    let run = strata_env(&c, next.path(), &["build", "-q", "--pull=never", "."], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains(&format!("image `{app}` is not in the store")),
        "{}",
        run.stderr
    );
}

#[test]
fn pulls_what_skopeo_pushed_docker_schema_2_and_a_two_platform_index() {
    let registry = Registry::start("");
    let host = registry.host();
    let a = store_with_busybox();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox.tar");
    a.ok(
        a.dir.path(),
        &["save", "-o", archive.to_str().unwrap(), "busybox"],
    );
    // skopeo pushes a Docker schema 2 image (gzip layers).
    let v2s2 = format!("{host}/v2s2:1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{v2s2}"),
    ]);
    let raw = raw_manifest(&v2s2);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let b = StoreDir::new();
    let out = b.ok(b.dir.path(), &["pull", &v2s2]);
    assert_eq!(
        out,
        format!(
            "Digest: sha256:{}\nImage: {v2s2} ({})\n",
            sha256_hex(raw.as_bytes()),
            a.ok(a.dir.path(), &["images", "-q", "--no-trunc", "busybox"])
                .trim()
        )
    );
    assert_eq!(
        b.ok(b.dir.path(), &["run", &v2s2, "echo", "runs"]),
        "runs\n"
    );
    // Saved again, the docker manifest keeps its media type in the layout.
    let saved = work.path().join("saved");
    b.ok(
        b.dir.path(),
        &[
            "save",
            "--format",
            "oci",
            "-o",
            saved.to_str().unwrap(),
            &v2s2,
        ],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(saved.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // A two-platform index: this machine's image and an arm64 one in an OCI
    // layout, under an index made here, pushed by `skopeo copy --all`.
    let rootfs = a.dir.path().join("rootfs");
    let arm_id = last_line(&a.ok_with_env(
        a.dir.path(),
        &[
            "import",
            "--platform",
            "linux/arm64/v8",
            rootfs.to_str().unwrap(),
            "arm",
        ],
        &[("SOURCE_DATE_EPOCH", "0")],
    ));
    let host_id = a.ok(a.dir.path(), &["images", "-q", "--no-trunc", "busybox"]);
    let layout = work.path().join("multi");
    a.ok(
        a.dir.path(),
        &[
            "save",
            "--format",
            "oci",
            "-o",
            layout.to_str().unwrap(),
            "busybox",
            "arm",
        ],
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let platforms = [
        serde_json::json!({"os": "linux", "architecture": "amd64"}),
        serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ];
    let entries: Vec<serde_json::Value> = saved["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(platforms)
        .map(|(entry, platform)| {
            serde_json::json!({
                "mediaType": entry["mediaType"],
                "digest": entry["digest"],
                "size": entry["size"],
                "platform": platform,
            })
        })
        .collect();
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let index_digest = format!("sha256:{}", sha256_hex(&inner));
    std::fs::write(layout.join("blobs/sha256").join(&index_digest[7..]), &inner).unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest,
                "size": inner.len(),
                "annotations": { "org.opencontainers.image.ref.name": "multi" },
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{host}/multi:latest"),
    ]);
    // skopeo sees the index too.
    let listed = raw_manifest(&format!("{host}/multi"));
    assert_eq!(
        format!("sha256:{}", sha256_hex(listed.as_bytes())),
        index_digest
    );
    let c = StoreDir::new();
    let multi = format!("{host}/multi");
    let out = c.ok(
        c.dir.path(),
        &["pull", "-q", &multi, "--platform", "linux/amd64"],
    );
    assert_eq!(out, host_id);
    let out = c.ok(
        c.dir.path(),
        &["pull", "-q", &multi, "--platform", "linux/arm64"],
    );
    assert_eq!(out.trim(), arm_id);
    // By the index's digest: recorded as the image's repo digest.
    let by_digest = format!("{multi}@{index_digest}");
    let out = c.ok(
        c.dir.path(),
        &["pull", "-q", "--platform", "linux/arm64", &by_digest],
    );
    assert_eq!(out.trim(), arm_id);
    let inspect = c.ok(c.dir.path(), &["images", "--digests", "--no-trunc"]);
    assert!(inspect.contains(&index_digest), "{inspect}");
    let run = strata_env(
        &c,
        c.dir.path(),
        &["pull", &multi, "--platform", "linux/s390x"],
        &[],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: `{multi}` has no image for linux/s390x; it has: linux/amd64, linux/arm64/v8\n"
        )
    );
}

#[test]
fn tls_and_htpasswd_login_push_pull_logout() {
    let (registry, tls) = Registry::tls();
    let host = registry.host();
    let config = tempfile::tempdir().unwrap();
    let docker_config = config.path().to_str().unwrap().to_owned();
    let env = [("DOCKER_CONFIG", docker_config.as_str())];
    let a = store_with_busybox();
    let app = format!("{host}/secure/app:1");
    a.ok(a.dir.path(), &["tag", "busybox", &app]);
    let ca = tls.ca_dir.to_str().unwrap().to_owned();
    let verified = ["--tls-verify=true", "--cert-dir", ca.as_str()];

    // No credentials: 401, and what to do.
    let mut args = vec!["push", app.as_str()];
    args.extend(verified);
    let run = strata_env(&a, a.dir.path(), &args, &env);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: `{app}`: registry {host} refused access (401 Unauthorized): it needs \
             credentials: run `strata login {host}`\n"
        )
    );
    // Verification on, without the CA: the certificate is refused.
    let run = strata_env(&a, a.dir.path(), &["pull", "--tls-verify=true", &app], &env);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot reach registry {host} for `{app}`: "
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("UnknownIssuer"), "{}", run.stderr);
    // A wrong password is refused, and nothing is written.
    let login = |password: &str| {
        let root = a.root();
        let mut all = vec![
            "--root",
            root.to_str().unwrap(),
            "login",
            "-u",
            "tester",
            "--password-stdin",
        ];
        all.extend(verified);
        all.push(&host);
        strata_in(a.dir.path(), &all, Some(password.as_bytes()), &env)
    };
    let run = login("wrong\n");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: `{host}`: registry {host} refused access (401 Unauthorized): the credentials \
             of `tester` were refused; check them with `strata login {host}`\n"
        )
    );
    assert!(!config.path().join("config.json").exists());
    let run = login("secret\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("config.json")).unwrap()).unwrap();
    // base64("tester:secret")
    assert_eq!(written["auths"][&host]["auth"], "dGVzdGVyOnNlY3JldA==");
    // Logged in: push, and skopeo reads it with the same credentials.
    let run = strata_env(&a, a.dir.path(), &args, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    skopeo(&[
        "inspect",
        "--creds",
        "tester:secret",
        "--cert-dir",
        &ca,
        &format!("docker://{app}"),
    ]);
    let b = StoreDir::new();
    let mut pull = vec!["pull", "-q", app.as_str()];
    pull.extend(verified);
    let run = strata_env(&b, b.dir.path(), &pull, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // --creds without a login works too.
    let c = StoreDir::new();
    let run = strata_env(
        &c,
        c.dir.path(),
        &["pull", "-q", "--creds", "tester:secret", &app],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Logged out: refused again.
    let out = strata_env(&a, a.dir.path(), &["logout", &host], &env);
    assert_eq!(
        out.stdout,
        format!("Removed login credentials for {host}\n")
    );
    let run = strata_env(&StoreDir::new(), a.dir.path(), &pull, &env);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("401 Unauthorized"), "{}", run.stderr);
    let out = strata_env(&a, a.dir.path(), &["logout", &host], &env);
    assert_eq!(out.stderr, format!("error: not logged in to {host}\n"));
}

#[test]
fn a_credential_helper_keeps_the_login() {
    let (registry, _tls) = Registry::tls();
    let host = registry.host();
    let config = tempfile::tempdir().unwrap();
    // A helper speaking docker's protocol, keeping what it is given in a file.
    let bin = config.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let kept = config.path().join("kept.json");
    let helper = bin.join("docker-credential-strata-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  store) cat > {kept} ;;\n  get) read server; \
             [ -f {kept} ] || {{ echo 'credentials not found in native keychain'; exit 1; }}; \
             sed 's/\"ServerURL\":\"[^\"]*\",//' {kept} ;;\n  erase) rm -f {kept} ;;\nesac\n",
            kept = kept.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"credsStore":"strata-test"}"#,
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let docker_config = config.path().to_str().unwrap().to_owned();
    let env = [
        ("DOCKER_CONFIG", docker_config.as_str()),
        ("PATH", path.as_str()),
    ];
    let a = store_with_busybox();
    let root = a.root();
    let run = strata_in(
        a.dir.path(),
        &[
            "--root",
            root.to_str().unwrap(),
            "login",
            "-u",
            "tester",
            "--password-stdin",
            &host,
        ],
        Some(b"secret"),
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("Login Succeeded (credentials for {host} kept in docker-credential-strata-test)\n")
    );
    let kept_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(kept_json["Username"], "tester");
    assert_eq!(kept_json["Secret"], "secret");
    // config.json holds no password.
    let text = std::fs::read_to_string(config.path().join("config.json")).unwrap();
    assert!(
        !text.contains("secret") && !text.contains("c2VjcmV0"),
        "{text}"
    );
    let app = format!("{host}/helped:1");
    let run = strata_env(&a, a.dir.path(), &["push", "busybox", &app], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    strata_env(&a, a.dir.path(), &["logout", &host], &env);
    assert!(!kept.exists());
}

/// Build `context` in `store` with json progress: the image ID, the
/// manifest digest (from --metadata-file) and the events.
fn build_with_metadata(
    store: &StoreDir,
    context: &Context,
    extra: &[&str],
) -> (String, String, Vec<serde_json::Value>) {
    let metadata = store.dir.path().join("metadata.json");
    let mut args = vec!["--metadata-file", metadata.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (stdout, events) = build_json_output(store, context, &args, &[]);
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    let manifest = metadata["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (last_line(&stdout), manifest, events)
}

fn events_named<'e>(events: &'e [serde_json::Value], name: &str) -> Vec<&'e str> {
    events
        .iter()
        .filter(|event| event["event"] == name)
        .map(|event| event["description"].as_str().unwrap())
        .collect()
}

#[test]
fn a_cache_exported_by_one_store_gives_hits_in_an_empty_one() {
    let registry = Registry::start("");
    let host = registry.host();
    let a = store_with_busybox();
    let base = format!("{host}/base:1");
    a.ok(a.dir.path(), &["push", "busybox", &base]);
    let dockerfile = format!(
        "FROM {base} AS tools\nRUN echo tool > /tool\n\
         FROM {base}\nRUN echo one > /one\nCOPY a /a\nCOPY --from=tools /tool /tool\n\
         RUN cat /one /a /tool > /all\n"
    );
    let context = Context::new().dockerfile(&dockerfile).file("a", "a\n");
    let cache = format!("{host}/cache:main");
    let local = tempfile::tempdir().unwrap();
    let local_dir = local.path().join("cache");
    let (id_a, manifest_a, _) = build_with_metadata(
        &a,
        &context,
        &[
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            "--cache-to",
            &format!("type=local,dest={},mode=max", local_dir.display()),
        ],
    );
    // The cache is an OCI artifact skopeo can read.
    let raw = raw_manifest(&cache);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.strata.cache.v1");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.strata.cache.config.v1+json"
    );
    // Five layers, one made twice (RUN echo tool and the COPY of its file
    // are the same tar), stored once.
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);
    let records = |reference: &str| {
        let document: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--config",
            "--raw",
            &format!("docker://{reference}"),
        ]))
        .unwrap();
        assert_eq!(document["version"], 1);
        let mut steps: Vec<String> = document["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| record["description"].as_str().unwrap().to_owned())
            .collect();
        steps.sort();
        steps
    };
    assert_eq!(records(&cache).len(), 6);
    let runs = [
        "[tools 2/2] RUN echo tool > /tool",
        "[stage-1 2/5] RUN echo one > /one",
        "[stage-1 3/5] COPY a /a",
        "[stage-1 4/5] COPY --from=tools /tool /tool",
        "[stage-1 5/5] RUN cat /one /a /tool > /all",
    ];
    for from in [
        format!("type=registry,ref={cache}"),
        format!("type=local,src={}", local_dir.display()),
    ] {
        // An empty store: every step comes from the imported cache, and
        // the image is the same.
        let b = StoreDir::new();
        let (id_b, manifest_b, events) =
            build_with_metadata(&b, &context, &["--cache-from", &from]);
        let mut cached = events_named(&events, "cached");
        cached.sort();
        let mut expected = runs.to_vec();
        expected.sort();
        assert_eq!(cached, expected, "{from}");
        assert!(
            events_named(&events, "started")
                .iter()
                .all(|step| !step.contains("RUN"))
        );
        assert_eq!(id_b, id_a, "{from}");
        assert_eq!(manifest_b, manifest_a, "{from}");
        // What it made runs.
        assert_eq!(
            b.ok(b.dir.path(), &["run", &id_b, "cat", "/all"]),
            "one\na\ntool\n"
        );
    }
    // mode=min exports only the image's own steps; a changed file runs
    // what depends on it and takes the rest from the cache.
    let min = format!("{host}/cache:min");
    build_with_metadata(
        &a,
        &context,
        &["--cache-to", &format!("type=registry,ref={min}")],
    );
    let raw = raw_manifest(&min);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);
    let min_records = records(&min);
    assert_eq!(min_records.len(), 5);
    assert!(
        !min_records.iter().any(|step| step.starts_with("[tools")),
        "{min_records:?}"
    );
    let changed = Context::new().dockerfile(&dockerfile).file("a", "b\n");
    let c = StoreDir::new();
    let (_, _, events) = build_with_metadata(
        &c,
        &changed,
        &["--cache-from", &format!("type=registry,ref={cache}")],
    );
    let mut cached = events_named(&events, "cached");
    cached.sort();
    assert_eq!(
        cached,
        vec![
            "[stage-1 2/5] RUN echo one > /one",
            "[tools 2/2] RUN echo tool > /tool"
        ]
    );
    // A cache that is not there is a warning, not a failure.
    let d = StoreDir::new();
    let run = strata_env(
        &d,
        context.path(),
        &[
            "build",
            "-q",
            "--cache-from",
            &format!("type=registry,ref={host}/nocache:1"),
            ".",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "warning: --cache-from type=registry,ref={host}/nocache:1: `{host}/nocache:1`: \
             tag `1` of repository `nocache` not found in registry {host} (MANIFEST_UNKNOWN); \
             building without it\n"
        )
    );
}

#[test]
fn a_tampered_blob_is_refused_and_the_next_pull_resumes() {
    let registry = Registry::start("");
    let host = registry.host();
    let a = store_with_busybox();
    let context = Context::new().dockerfile("FROM busybox\nRUN echo top > /top\n");
    let app = format!("{host}/tampered:1");
    a.ok(context.path(), &["build", "-q", "-t", &app, "--push", "."]);
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]))
    .unwrap();
    let layers: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer.as_str().unwrap().to_owned())
        .collect();
    let file = registry.blob_file(&layers[1]);
    let original = std::fs::read(&file).unwrap();
    let mut tampered = original.clone();
    let last = tampered.len() - 700;
    tampered[last] ^= 0xff;
    std::fs::write(&file, &tampered).unwrap();
    let b = StoreDir::new();
    let run = strata_env(&b, b.dir.path(), &["pull", &app], &[]);
    assert_eq!(run.code, 1);
    let error = run.stderr.lines().last().unwrap().to_owned();
    assert_eq!(
        error,
        format!(
            "error: `{app}`: blob does not match its digest: expected {}, got sha256:{}",
            layers[1],
            sha256_hex(&tampered)
        )
    );
    // No image, no half-written blob; the complete ones are kept.
    assert_eq!(b.ok(b.dir.path(), &["images", "-q"]), "");
    let check = b.ok(b.dir.path(), &["system", "check"]);
    assert!(check.contains("0 images"), "{check}");
    let blobs = b.root().join("blobs/sha256");
    assert!(
        blobs
            .join(layers[0].strip_prefix("sha256:").unwrap())
            .is_file()
    );
    assert!(
        !blobs
            .join(layers[1].strip_prefix("sha256:").unwrap())
            .exists()
    );
    assert_eq!(std::fs::read_dir(b.root().join("tmp")).unwrap().count(), 0);
    // Repaired: the next pull takes only what it lacks.
    std::fs::write(&file, &original).unwrap();
    let run = strata_env(&b, b.dir.path(), &["pull", &app], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let short = |digest: &str| format!("sha256:{}", &digest[7..19]);
    assert!(
        run.stderr.contains(&format!(
            "Copying blob {} skipped: already exists",
            short(&layers[0])
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("Copying blob {} done", short(&layers[1]))),
        "{}",
        run.stderr
    );
    assert_eq!(b.ok(b.dir.path(), &["run", &app, "cat", "/top"]), "top\n");
}

/// A scripted registry: answers by path, logs every request line with its
/// Authorization header.
struct Scripted {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, port, &log);
                });
            }
        });
        Scripted { port, log }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }
}

/// The request line and Authorization header of the request on `stream`;
/// `None` for what is not HTTP (a TLS hello).
fn read_request(stream: &TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    if !["GET ", "HEAD ", "PUT ", "POST ", "PATCH "]
        .iter()
        .any(|method| request.starts_with(method))
    {
        return Ok(None);
    }
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some(value) = line
            .strip_prefix("Authorization: ")
            .or(line.strip_prefix("authorization: "))
        {
            authorization = value.trim().to_owned();
        }
    }
    Ok(Some((request.trim().to_owned(), authorization)))
}

fn serve(stream: TcpStream, port: u16, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let Some((request, authorization)) = read_request(&stream)? else {
        return Ok(());
    };
    let path = request.split(' ').nth(1).unwrap_or("").to_owned();
    log.lock()
        .unwrap()
        .push(format!("{request} {authorization}"));
    let count = log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(&path))
        .count();
    let challenge = format!(
        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"scripted\"\r\n"
    );
    let error = |code: &str, message: &str| {
        format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#)
    };
    let (status, headers, body): (&str, String, String) = if path == "/v2/" {
        ("401 Unauthorized", challenge.clone(), String::new())
    } else if let Some(query) = path.strip_prefix("/token?") {
        // The token names its scope, so the registry can check it.
        let scope = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("scope="))
            .unwrap_or("");
        (
            "200 OK",
            String::new(),
            format!(r#"{{"token":"t-{scope}"}}"#),
        )
    } else {
        let repository = path
            .strip_prefix("/v2/")
            .and_then(|rest| rest.split("/manifests/").next())
            .unwrap_or("");
        let expected = format!("Bearer t-repository:{repository}:pull");
        if authorization != expected || repository == "secret/app" {
            (
                "401 Unauthorized",
                challenge.clone(),
                error("UNAUTHORIZED", "authentication required"),
            )
        } else if repository == "forbidden/app" {
            (
                "403 Forbidden",
                String::new(),
                error("DENIED", "requested access to the resource is denied"),
            )
        } else if repository == "missing/app" {
            (
                "404 Not Found",
                String::new(),
                error("NAME_UNKNOWN", "repository name not known to registry"),
            )
        } else if repository == "busy/app" {
            (
                "429 Too Many Requests",
                "Retry-After: 1\r\n".to_owned(),
                error("TOOMANYREQUESTS", "slow down"),
            )
        } else if repository == "flaky/app" && count <= 2 {
            ("503 Service Unavailable", String::new(), String::new())
        } else {
            (
                "404 Not Found",
                String::new(),
                error("MANIFEST_UNKNOWN", "manifest unknown"),
            )
        }
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[test]
fn registry_errors_name_the_reference_and_retry_only_what_is_transient() {
    let scripted = Scripted::start();
    let host = scripted.host();
    let store = StoreDir::new();
    let pull = |name: &str| {
        let run = strata_env(
            &store,
            store.dir.path(),
            &["pull", &format!("{host}/{name}")],
            &[],
        );
        assert_eq!(run.code, 1, "{name}");
        run.stderr
    };
    // The token flow: challenge, token for the repository's scope, then
    // the request with it.
    assert_eq!(
        pull("missing/app:1"),
        format!(
            "error: `{host}/missing/app:1`: repository `missing/app` not found in registry {host} (NAME_UNKNOWN)\n"
        )
    );
    assert_eq!(
        scripted.requests("/token"),
        vec![format!(
            "GET /token?service=scripted&scope=repository:missing/app:pull HTTP/1.1 "
        )]
    );
    assert_eq!(
        scripted.requests("/v2/missing/app/manifests/1"),
        vec![format!(
            "GET /v2/missing/app/manifests/1 HTTP/1.1 Bearer t-repository:missing/app:pull"
        )]
    );
    assert_eq!(
        pull("app:gone"),
        format!(
            "error: `{host}/app:gone`: tag `gone` of repository `app` not found in registry {host} (MANIFEST_UNKNOWN)\n"
        )
    );
    assert_eq!(
        pull("secret/app:1"),
        format!(
            "error: `{host}/secret/app:1`: registry {host} refused access (401 Unauthorized): it needs credentials: run `strata login {host}`\n"
        )
    );
    assert_eq!(
        pull("forbidden/app:1"),
        format!(
            "error: `{host}/forbidden/app:1`: registry {host} denied pull (403 Forbidden): requested access to the resource is denied (DENIED)\n"
        )
    );
    let started = Instant::now();
    assert_eq!(
        pull("busy/app:1"),
        format!(
            "error: `{host}/busy/app:1`: registry {host} is rate limiting requests (429 Too Many Requests); gave up after 4 attempts, it asked to retry after 1s\n"
        )
    );
    // Retry-After was honoured between the four attempts.
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(scripted.requests("/v2/busy/app/manifests/1").len(), 4);
    // 503 is retried (twice here), then the real answer comes.
    assert!(pull("flaky/app:1").contains("tag `1` of repository `flaky/app` not found"));
    assert_eq!(scripted.requests("/v2/flaky/app/manifests/1").len(), 3);
    // A 404 is not retried.
    assert_eq!(scripted.requests("/v2/app/manifests/gone").len(), 1);
    // Nobody listening.
    let port = free_port();
    let run = strata_env(
        &store,
        store.dir.path(),
        &["pull", &format!("127.0.0.1:{port}/app:1")],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot reach registry 127.0.0.1:{port} for `127.0.0.1:{port}/app:1`: "
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
}

#[test]
fn an_interrupted_pull_leaves_no_image_and_resumes_from_complete_blobs() {
    // A two-layer image, served by a registry that stalls half-way through
    // the top layer the first time it is asked for it.
    let a = store_with_busybox();
    let context =
        Context::new().dockerfile("FROM busybox\nRUN head -c 3000000 /dev/urandom > /big\n");
    a.ok(context.path(), &["build", "-q", "-t", "two", "."]);
    let layout = a.dir.path().join("layout");
    a.ok(
        a.dir.path(),
        &[
            "save",
            "--format",
            "oci",
            "-o",
            layout.to_str().unwrap(),
            "two",
        ],
    );
    let blob =
        |digest: &str| std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest_bytes = blob(&manifest_digest);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect();
    let stalled = Arc::new(Mutex::new(false));
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    {
        let (stalled, requests, layout) = (stalled.clone(), requests.clone(), layout.clone());
        let (manifest_bytes, top) = (manifest_bytes.clone(), layers[1].clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (stalled, requests, layout) =
                    (stalled.clone(), requests.clone(), layout.clone());
                let (manifest_bytes, top) = (manifest_bytes.clone(), top.clone());
                std::thread::spawn(move || {
                    let Ok(Some((request, _))) = read_request(&stream) else {
                        return;
                    };
                    let path = request.split(' ').nth(1).unwrap_or("").to_owned();
                    requests.lock().unwrap().push(path.clone());
                    let (kind, body) = if path == "/v2/" {
                        ("application/json", b"{}".to_vec())
                    } else if path == "/v2/int/manifests/1" {
                        ("application/vnd.oci.image.manifest.v1+json", manifest_bytes)
                    } else if let Some(digest) = path.strip_prefix("/v2/int/blobs/") {
                        let bytes =
                            std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
                        ("application/octet-stream", bytes)
                    } else {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        return;
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if path.ends_with(&top)
                        && !std::mem::replace(&mut *stalled.lock().unwrap(), true)
                    {
                        let _ = stream.write_all(&body[..body.len() / 2]);
                        let _ = stream.flush();
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    let _ = stream.write_all(&body);
                });
            }
        });
    }
    let b = StoreDir::new();
    let root = b.root();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "pull",
            &format!("{host}/int:1"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let blobs = root.join("blobs/sha256");
    let start = Instant::now();
    while !(*stalled.lock().unwrap() && blobs.join(&layers[0][7..]).is_file()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the pull never got half-way"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Half of the top layer is in a temporary file; kill the pull there.
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(b.ok(b.dir.path(), &["images", "-q"]), "", "no image");
    assert!(blobs.join(&layers[0][7..]).is_file());
    assert!(
        !blobs.join(&layers[1][7..]).exists(),
        "no blob of the half layer"
    );
    let check = b.strata(b.dir.path(), &["system", "check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    // The next pull asks only for what is missing.
    requests.lock().unwrap().clear();
    let run = strata_env(&b, b.dir.path(), &["pull", &format!("{host}/int:1")], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let asked = requests.lock().unwrap().clone();
    assert!(
        !asked.iter().any(|path| path.ends_with(&layers[0])),
        "{asked:?}"
    );
    assert!(
        asked.iter().any(|path| path.ends_with(&layers[1])),
        "{asked:?}"
    );
    let out = b.ok(
        b.dir.path(),
        &["run", &format!("{host}/int:1"), "wc", "-c", "/big"],
    );
    assert_eq!(out.trim_start(), "3000000 /big\n");
}
