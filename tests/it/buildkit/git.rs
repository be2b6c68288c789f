//! ADD of a git repository (BuildKit's `dockerfile_addgit_test.go`), the
//! repositories served on 127.0.0.1: over HTTP in git's dumb protocol (a
//! file server, as BuildKit's tests do), in its smart protocol (`git
//! http-backend`), and over the git protocol (`git daemon`).

use std::path::{Path, PathBuf};

use super::{Bk, HttpServer, read};
use crate::support::{Context, require};

/// Run each of `commands` with `sh -c` in `dir` (BuildKit's runShell), git
/// with no configuration but the repository's.
pub(crate) fn shell(dir: &Path, commands: &[&str]) {
    for command in commands {
        let output = std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `git rev-parse REV` in `dir`.
pub(crate) fn rev_parse(dir: &Path, rev: &str) -> String {
    let output = std::process::Command::new(require("git"))
        .args(["rev-parse", rev])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A new repository at `dir` (made), with an identity.
pub(crate) fn init(dir: &Path, options: &str) {
    std::fs::create_dir_all(dir).unwrap();
    shell(
        dir,
        &[
            &format!("git init -q -b master{options}"),
            "git config --local user.email test",
            "git config --local user.name test",
        ],
    );
}

/// `git daemon` serving the repositories under a directory.
pub(crate) struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    pub(crate) fn new(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // git-daemon itself (not `git daemon`, whose child it would be):
        // the process that is killed is the one that listens.
        let child = std::process::Command::new(super::git_exec_path().join("git-daemon"))
            .args([
                "--reuseaddr",
                &format!("--base-path={}", base.display()),
                "--export-all",
                &format!("--port={port}"),
                "--listen=127.0.0.1",
            ])
            .arg(base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "git daemon did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        GitDaemon { child, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("git://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A repository with commits tagged v0.0.1, v0.0.2, v0.0.3, each writing
/// `foo of TAG` to `foo` (testAddGit's), at `dir`.
fn tagged_repository(dir: &Path, options: &str) {
    init(dir, options);
    for tag in ["v0.0.1", "v0.0.2", "v0.0.3"] {
        shell(
            dir,
            &[
                &format!("echo foo of {tag} >foo"),
                "git add foo",
                &format!("git commit -q -m {tag}"),
                &format!("git tag {tag}"),
            ],
        );
    }
    shell(dir, &["git update-server-info"]);
}

/// testAddGit: fetching by tag, --checksum (right, wrong, not hex),
/// --keep-git-dir and --chown, from `url` (the repository at `dir`).
fn add_git(bk: &Bk, dir: &Path, url: &str) {
    let v2 = rev_parse(dir, "v0.0.2");
    let v3 = rev_parse(dir, "v0.0.3");
    // `git status -s` in the image (BuildKit's test installs git there)
    // runs on the export instead: the busybox base has no git.
    let context = Context::new().dockerfile(&format!(
        r#"FROM alpine

# Basic case
ADD {url}#v0.0.1 /x
RUN cd /x && \
  [ "$(cat foo)" = "foo of v0.0.1" ]

# Complicated case
ARG REPO="{url}"
ARG TAG="v0.0.2"
ADD --keep-git-dir=true --chown=4242:8484 --checksum={v2} ${{REPO}}#${{TAG}} /buildkit-chowned
USER 4242
RUN cd /buildkit-chowned && \
  [ "$(cat foo)" = "foo of v0.0.2" ] && \
  [ "$(stat -c %u foo)" = "4242" ] && \
  [ "$(stat -c %g foo)" = "8484" ]
"#
    ));
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "x/foo"), "foo of v0.0.1\n");
    assert!(!out.path().join("out/x/.git").exists());
    assert_eq!(read(&out, "buildkit-chowned/.git/HEAD"), format!("{v2}\n"));
    // BuildKit's `git status -s` is empty, run on the export by the host's
    // git (the files are owned by 4242: trusted here on purpose).
    let status = std::process::Command::new(require("git"))
        .args(["-c", "safe.directory=*", "status", "-s"])
        .current_dir(out.path().join("out/buildkit-chowned"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&status.stdout), "");

    // With --checksum, without --keep-git-dir.
    let context = Context::new().dockerfile(&format!(
        r#"FROM alpine
ARG REPO="{url}"
ARG TAG="v0.0.3"
ADD --checksum={v3} ${{REPO}}#${{TAG}} /nogitdir
RUN [ -f /nogitdir/foo ]
RUN [ "$(cat /nogitdir/foo)" = "foo of v0.0.3" ]
RUN [ ! -d /nogitdir/.git ]
"#
    ));
    bk.build_ok(&context, &[]);

    // The ref fetched before, again, with .git.
    let context = Context::new().dockerfile(&format!(
        r#"FROM alpine
ARG REPO="{url}"
ARG TAG="v0.0.2"
ADD --keep-git-dir --checksum={v2} ${{REPO}}#${{TAG}} /nogitdir
RUN [ -f /nogitdir/foo ]
RUN [ "$(cat /nogitdir/foo)" = "foo of v0.0.2" ]
RUN [ -d /nogitdir/.git ]
"#
    ));
    bk.build_ok(&context, &[]);

    // The commit as both the ref and the checksum.
    let context = Context::new().dockerfile(&format!(
        r#"FROM alpine
ARG REPO="{url}"
ARG COMMIT="{v3}"
ADD --keep-git-dir=true --checksum={v3} ${{REPO}}#${{COMMIT}} /commitdir
RUN [ -f /commitdir/foo ]
RUN [ "$(cat /commitdir/foo)" = "foo of v0.0.3" ]
RUN [ -d /commitdir/.git ]
"#
    ));
    bk.build_ok(&context, &[]);

    // The checksum of another commit.
    let context = Context::new().dockerfile(&format!(
        "FROM alpine\nARG REPO=\"{url}\"\nARG TAG=\"v0.0.3\"\nADD --checksum={v2} ${{REPO}}#${{TAG}} /faildir\n"
    ));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains(&format!("expected checksum to match {v2}, got {v3}")),
        "{stderr}"
    );

    // A checksum that is no hash.
    let context = Context::new().dockerfile(&format!(
        "FROM alpine\nARG REPO=\"{url}\"\nARG TAG=\"v0.0.3\"\nADD --checksum=foobar ${{REPO}}#${{TAG}} /faildir\n"
    ));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("invalid checksum foobar for Git URL, expected hex commit hash"),
        "{stderr}"
    );
}

/// Follows testAddGitSHA1, over git's dumb HTTP protocol as BuildKit's
/// test serves it.
#[test]
fn add_git_sha1() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    tagged_repository(root.path(), "");
    let server = HttpServer::dir(root.path());
    add_git(&bk, root.path(), &server.url("/.git"));
}

/// Follows testAddGitSHA256, over the smart HTTP protocol (`git
/// http-backend`).
#[test]
fn add_git_sha256() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("repo");
    tagged_repository(&dir, " --object-format=sha256");
    assert_eq!(rev_parse(&dir, "v0.0.2").len(), 64);
    let server = HttpServer::git(root.path());
    add_git(&bk, &dir, &server.url("/repo/.git"));
    // The smart protocol was spoken.
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|request| request == "POST /repo/.git/git-upload-pack"),
        "{requests:?}"
    );
}

/// The git protocol (`git daemon`): a branch's subdirectory, and the
/// whole repository with `.git`.
#[test]
fn add_git_over_the_git_protocol() {
    let bk = Bk::new();
    let base = tempfile::tempdir().unwrap();
    let work = base.path().join("work");
    init(&work, "");
    shell(
        &work,
        &[
            "echo base >foo",
            "mkdir -p sub/deeper && echo subfeature >sub/deeper/bar",
            "chmod 755 sub/deeper/bar",
            "git add foo sub",
            "git commit -q -m initial",
            "git branch feature",
            "git clone -q --bare . ../repo.git",
        ],
    );
    let daemon = GitDaemon::new(base.path());
    let url = daemon.url("/repo.git");
    let context = Context::new().dockerfile(&format!(
        "FROM scratch\nADD {url}#feature:sub /sub\nADD --keep-git-dir {url} /all/\n"
    ));
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "sub/deeper/bar"), "subfeature\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = super::lstat(&out, "sub/deeper/bar").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(!out.path().join("out/sub/.git").exists());
    assert_eq!(read(&out, "all/foo"), "base\n");
    assert_eq!(
        read(&out, "all/.git/HEAD"),
        format!("{}\n", rev_parse(&work, "HEAD"))
    );
}

/// Follows testAddGitChecksumCache: adding --checksum does not change the
/// step's key.
#[test]
fn add_git_checksum_cache() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    tagged_repository(root.path(), "");
    let commit = rev_parse(root.path(), "v0.0.2");
    let server = HttpServer::dir(root.path());
    let url = server.url("/.git");
    let unique = |checksum: &str| {
        let context = Context::new().dockerfile(&format!(
            "FROM alpine AS src\nADD --keep-git-dir {checksum}{url}#v0.0.2 /repo\nRUN head -c 16 /dev/urandom | base64 > /repo/unique.txt\n\nFROM scratch\nCOPY --from=src /repo/unique.txt /\n"
        ));
        read(&bk.export(&context, &[]), "unique.txt")
    };
    let first = unique("");
    let second = unique(&format!("--checksum={commit} "));
    assert_eq!(first, second, "the cache should match");
}

/// Ours: the step's key is the commit the reference resolves to, so a
/// new commit on the branch runs it (and what follows) again, and the same
/// commit is a hit.
#[test]
fn add_git_key_follows_the_commit() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("repo");
    init(&dir, "");
    shell(
        &dir,
        &["echo one >foo", "git add foo", "git commit -q -m one"],
    );
    let server = HttpServer::git(root.path());
    let url = server.url("/repo/.git");
    let context = Context::new().dockerfile(&format!(
        "FROM alpine AS src\nADD {url}#master /repo\nRUN head -c 16 /dev/urandom | base64 > /repo/unique.txt\n\nFROM scratch\nCOPY --from=src /repo/ /\n"
    ));
    let posts = || {
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| request.starts_with("POST "))
            .count()
    };
    let first = bk.export(&context, &[]);
    let cloned = posts();
    let again = bk.export(&context, &[]);
    assert_eq!(read(&first, "foo"), "one\n");
    assert_eq!(read(&first, "unique.txt"), read(&again, "unique.txt"));
    // The hit asked only what master is (one request of the v2 protocol's
    // ls-refs); the clone had fetched too.
    assert_eq!(posts() - cloned, 1, "{:?}", server.requests.lock().unwrap());
    assert!(cloned > 2, "{:?}", server.requests.lock().unwrap());
    shell(
        &dir,
        &["echo two >foo", "git add foo", "git commit -q -m two"],
    );
    let changed = bk.export(&context, &[]);
    assert_eq!(read(&changed, "foo"), "two\n");
    assert_ne!(read(&first, "unique.txt"), read(&changed, "unique.txt"));
}

/// The repository of testGitQueryString: branches base and feature, tags
/// v0.0.1, v0.0.2 and latest, a submodule; its directory, v0.0.2's and
/// latest's commits.
struct QueryRepository {
    dir: PathBuf,
    v2: String,
    latest: String,
}

fn query_repository(root: &Path, submodule_url: &str) -> QueryRepository {
    let dir = root.to_owned();
    init(&dir, "");
    std::fs::write(
        dir.join("Dockerfile"),
        "\nFROM scratch AS withgit\nCOPY .git/HEAD out\n\nFROM scratch as withsubmod\nCOPY submod/file out\n\nFROM scratch\nCOPY foo out\n",
    )
    .unwrap();
    shell(
        &dir,
        &[
            "echo base >foo",
            &format!("git submodule --quiet add {submodule_url} submod"),
            "git add Dockerfile foo submod",
            "git commit -q -m initial",
            "git tag v0.0.1",
            "git branch base",
            "echo feature >foo",
            "mkdir sub",
            "echo subfeature >sub/foo",
            "cp Dockerfile sub/",
            "git add foo sub",
            "git commit -q -m feature",
            "git branch feature",
            "git checkout -q -B master base",
            "echo v0.0.2 >foo",
            "git add foo",
            "git commit -q -m v0.0.2",
            "git tag v0.0.2",
            "echo latest >foo",
            "git add foo",
            "git commit -q -m latest",
            "git tag latest",
            "git update-server-info",
        ],
    );
    let v2 = rev_parse(&dir, "v0.0.2");
    let latest = rev_parse(&dir, "latest");
    assert_ne!(v2, latest);
    QueryRepository { dir, v2, latest }
}

/// Follows testGitQueryString: the query forms of ref, tag, branch,
/// commit, subdir, keep-git-dir and submodules, with the repository as the
/// build context (`context_*`, building its own Dockerfile) and added
/// (`add_*`).
#[test]
fn git_query_string() {
    let bk = Bk::new();
    let submodule = tempfile::tempdir().unwrap();
    init(submodule.path(), "");
    shell(
        submodule.path(),
        &[
            "echo 123 >file",
            "git add file",
            "git commit -q -m initial",
            "git update-server-info",
        ],
    );
    let submodule_server = HttpServer::dir(submodule.path());
    let root = tempfile::tempdir().unwrap();
    let repo = query_repository(root.path(), &submodule_server.url("/.git"));
    let server = HttpServer::dir(&repo.dir);
    let base = server.url("/.git");
    let (v2, latest) = (&repo.v2, &repo.latest);
    // (name, URL, target, what /repo/foo holds or what the error says)
    let cases: Vec<(&str, String, &str, Result<String, String>)> = vec![
        (
            "tag with invalid commit",
            format!("{base}?tag=v0.0.2&commit={latest}"),
            "",
            Err("expected checksum to match".into()),
        ),
        (
            "old style ref",
            format!("{base}#v0.0.2"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            "querystring ref",
            format!("{base}?ref=base"),
            "",
            Ok("base\n".into()),
        ),
        (
            "querystring branch",
            format!("{base}?branch=base"),
            "",
            Ok("base\n".into()),
        ),
        (
            "querystring invalid branch",
            format!("{base}?branch=invalid"),
            "",
            Err("repository does not contain ref".into()),
        ),
        (
            "tag as branch",
            format!("{base}?branch=v0.0.2"),
            "",
            Err("repository does not contain ref".into()),
        ),
        (
            "allowed mixed refs",
            format!("{base}?tag=v0.0.2#refs/tags/v0.0.2"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            "v2 by commit",
            format!("{base}?commit={latest}"),
            "",
            Ok("latest\n".into()),
        ),
        (
            "v2 by commit (wrong short)",
            format!("{base}?commit={}", &v2[..8]),
            "",
            Err("expected checksum to match".into()),
        ),
        (
            "v2 by commit (short)",
            format!("{base}?commit={}", &latest[..8]),
            "",
            Ok("latest\n".into()),
        ),
        (
            "v2 ref by commit",
            format!("{base}?ref={v2}"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            "v2 ref by commit (short)",
            format!("{base}?ref={}", &v2[..8]),
            "",
            Err("repository does not contain ref".into()),
        ),
        (
            "tag with commit",
            format!("{base}?tag=v0.0.2&commit={v2}"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            "commit with commit",
            format!("{base}?ref={v2}&commit={v2}"),
            "",
            Ok("v0.0.2\n".into()),
        ),
        (
            "latest with commit",
            format!("{base}?commit={latest}"),
            "",
            Ok("latest\n".into()),
        ),
        (
            "mismatch refs",
            format!("{base}?tag=v0.0.2#refs/heads/master"),
            "",
            Err("ref conflicts".into()),
        ),
        (
            "sub old-style",
            format!("{base}#feature:sub"),
            "",
            Ok("subfeature\n".into()),
        ),
        (
            "sub query",
            format!("{base}?subdir=sub&ref=feature"),
            "",
            Ok("subfeature\n".into()),
        ),
        (
            "withgit",
            format!("{base}?keep-git-dir=true"),
            "withgit",
            Ok(format!("{latest}\n")),
        ),
        (
            "withgitandtag",
            format!("{base}?tag=v0.0.2&keep-git-dir=true"),
            "withgit",
            Ok(format!("{v2}\n")),
        ),
        // BuildKit says `"/repo/.git/HEAD": not found`.
        (
            "withgit-default",
            base.clone(),
            "withgit",
            Err("`/repo/.git/HEAD`: not found".into()),
        ),
        (
            "withgit-valueless",
            format!("{base}?keep-git-dir&submodules"),
            "withgit",
            Ok(format!("{latest}\n")),
        ),
        (
            "withgit-forbidden",
            format!("{base}?keep-git-dir=false"),
            "withgit",
            Err("`/repo/.git/HEAD`: not found".into()),
        ),
        ("withsubmod", base.clone(), "withsubmod", Ok("123\n".into())),
        (
            "withsubmodset",
            format!("{base}?submodules=true"),
            "withsubmod",
            Ok("123\n".into()),
        ),
        (
            "withsubmodempty",
            format!("{base}?submodules"),
            "withsubmod",
            Ok("123\n".into()),
        ),
        (
            "withoutsubmod",
            format!("{base}?submodules=false"),
            "withsubmod",
            Err("`/repo/submod/file`: not found".into()),
        ),
    ];
    for (name, url, target, expected) in &cases {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().join("out").display());
        let mut args = vec!["build", "-q", "--output", dest.as_str()];
        if !target.is_empty() {
            args.extend_from_slice(&["--target", target]);
        }
        args.push(url);
        let run = bk.store.strata(out.path(), &args);
        match expected {
            Ok(content) => {
                assert_eq!(run.code, 0, "context {name}: {}", run.stderr);
                assert_eq!(&read(&out, "out"), content, "context {name}");
            }
            Err(message) => {
                // A path of the context, not of the stage /repo.
                let message = message.replace("`/repo/", "`");
                assert_ne!(run.code, 0, "context {name}: the build succeeded");
                assert!(
                    run.stderr.contains(&message),
                    "context {name}: {}",
                    run.stderr
                );
            }
        }
    }
    for (name, url, target, expected) in cases {
        let context = Context::new().dockerfile(&format!(
            "\nFROM scratch AS main\nADD {url} /repo/\n\nFROM scratch as withsubmod\nCOPY --from=main /repo/submod/file /repo/foo\n\nFROM scratch AS withgit\nCOPY --from=main /repo/.git/HEAD /repo/foo\n\nFROM main\n"
        ));
        let mut args = Vec::new();
        if !target.is_empty() {
            args = vec!["--target", target];
        }
        match expected {
            Ok(content) => {
                let out = tempfile::tempdir().unwrap();
                let dest = format!("type=local,dest={}", out.path().join("out").display());
                let mut all = vec!["--output", dest.as_str()];
                all.extend_from_slice(&args);
                let run = bk.build(&context, &all);
                assert_eq!(run.code, 0, "{name}: {}", run.stderr);
                assert_eq!(read(&out, "repo/foo"), content, "{name}");
            }
            Err(message) => {
                let run = bk.build(&context, &args);
                assert_ne!(run.code, 0, "{name}: the build succeeded");
                assert!(run.stderr.contains(&message), "{name}: {}", run.stderr);
            }
        }
    }
}

/// testDockerfileFromGit: the repository at `dir`, served at `url`, is
/// the build context; `#first` builds that branch, no fragment the default.
fn dockerfile_from_git(bk: &Bk, dir: &Path, url: &str) {
    let dockerfile = "\nFROM busybox AS build\nRUN echo -n fromgit > foo\nFROM scratch\nCOPY --from=build foo bar\n";
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    shell(
        dir,
        &[
            "git add Dockerfile",
            "git commit -q -m initial",
            "git branch first",
        ],
    );
    std::fs::write(
        dir.join("Dockerfile"),
        format!("{dockerfile}\nCOPY --from=build foo bar2\n"),
    )
    .unwrap();
    shell(
        dir,
        &[
            "git add Dockerfile",
            "git commit -q -m second",
            "git update-server-info",
        ],
    );
    let build = |context: &str| {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().join("out").display());
        let run = bk
            .store
            .strata(out.path(), &["build", "-q", "--output", &dest, context]);
        assert_eq!(run.code, 0, "{context}: {}", run.stderr);
        out
    };
    let first = build(&format!("{url}#first"));
    assert_eq!(read(&first, "bar"), "fromgit");
    assert!(!first.path().join("out/bar2").exists());
    let default = build(url);
    assert_eq!(read(&default, "bar"), "fromgit");
    assert_eq!(read(&default, "bar2"), "fromgit");
}

/// Follows testDockerfileFromGitSHA1 (dumb HTTP, as BuildKit).
#[test]
fn dockerfile_from_git_sha1() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    init(root.path(), "");
    let server = HttpServer::dir(root.path());
    dockerfile_from_git(&bk, root.path(), &server.url("/.git"));
}

/// Follows testDockerfileFromGitSHA256, over `git http-backend`.
#[test]
fn dockerfile_from_git_sha256() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("repo");
    init(&dir, " --object-format=sha256");
    let server = HttpServer::git(root.path());
    dockerfile_from_git(&bk, &dir, &server.url("/repo/.git"));
}

/// Ours: what cannot be cloned fails with the URL, what was being done
/// and git's words; COPY of a repository is refused (BuildKit's words); a
/// missing git binary is named.
#[test]
fn add_git_errors() {
    let bk = Bk::new();
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/nothing.git");
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url}#main /x\n"));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains(&format!("failed to fetch {url}: fatal: unable to access")),
        "{stderr}"
    );

    let root = tempfile::tempdir().unwrap();
    tagged_repository(&root.path().join("repo"), "");
    let server = HttpServer::git(root.path());
    let url = server.url("/repo/.git");
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url}#v9 /x\n"));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("repository does not contain ref v9"),
        "{stderr}"
    );

    let context = Context::new().dockerfile(&format!("FROM scratch\nCOPY {url}#v0.0.1 /x\n"));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("source can't be a git ref for COPY"),
        "{stderr}"
    );

    let context = Context::new().dockerfile(&format!(
        "FROM scratch\nADD --keep-git-dir {url}?keep-git-dir=false /x\n"
    ));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("inconsistent keep-git-dir configuration"),
        "{stderr}"
    );

    // A subdirectory that is a file.
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url}#v0.0.1:foo /x\n"));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains(r#"invalid subdir foo: git subpath "foo" contains non-directory "foo""#),
        "{stderr}"
    );

    // ssh is refused before anything runs.
    for url in ["git@127.0.0.1:repo.git", "ssh://git@127.0.0.1/repo.git"] {
        let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url} /x\n"));
        let stderr = bk.build_err(&context, &[]);
        assert!(
            stderr.contains(&format!(
                "cannot clone {url}: cloning over ssh is not supported yet"
            )),
            "{stderr}"
        );
    }

    // No git to run.
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url}#v0.0.1 /x\n"));
    let empty = tempfile::tempdir().unwrap();
    let root_dir = bk.store.root();
    let run = crate::support::strata_in(
        context.path(),
        &["--root", root_dir.to_str().unwrap(), "build", "-q", "."],
        None,
        &[("PATH", empty.path().to_str().unwrap())],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(&format!(
            "cannot clone {url}: the git command cannot be run"
        )),
        "{}",
        run.stderr
    );
}

/// Ours (BuildKit redacts the same way): a password in the URL is not in
/// the `.git` kept, nor in a message.
#[test]
fn add_git_keeps_no_password() {
    let bk = Bk::new();
    let root = tempfile::tempdir().unwrap();
    tagged_repository(&root.path().join("repo"), "");
    let server = HttpServer::git(root.path());
    let url = server
        .url("/repo/.git")
        .replace("http://", "http://user:secret@");
    let context =
        Context::new().dockerfile(&format!("FROM scratch\nADD --keep-git-dir {url} /x/\n"));
    let out = bk.export(&context, &[]);
    let config = read(&out, "x/.git/config");
    assert!(!config.contains("secret"), "{config}");
    assert!(config.contains("user:xxxxx@127.0.0.1"), "{config}");
    let context = Context::new().dockerfile(&format!("FROM scratch\nADD {url}#v9 /x/\n"));
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("repository does not contain ref v9"),
        "{stderr}"
    );
}
