//! Contexts that are not a directory: an archive or a Dockerfile served
//! over HTTP (`strata build URL`, BuildKit's HTTP context in
//! `dockerfile_git_http_test.go`) and an archive on standard input
//! (`dockerfile_export_test.go`'s tar contexts).

use super::{Bk, HttpServer, Served, read, tar_of};
use crate::support::{Context, Run, strata_in};

impl Bk {
    /// `strata build ARGS... CONTEXT` in an empty directory, with `stdin`.
    fn build_from(&self, context: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let cwd = Context::new();
        let root = self.store.root();
        let mut all = vec!["--root", root.to_str().unwrap(), "build", "-q"];
        all.extend_from_slice(args);
        all.push(context);
        strata_in(cwd.path(), &all, stdin, &[])
    }

    /// [`Bk::build_from`] exporting the result, expecting success.
    fn export_from(&self, context: &str, args: &[&str], stdin: Option<&[u8]>) -> tempfile::TempDir {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().join("out").display());
        let mut all = vec!["--output", &dest];
        all.extend_from_slice(args);
        let run = self.build_from(context, &all, stdin);
        assert_eq!(run.code, 0, "{}", run.stderr);
        out
    }
}

fn served(path: &'static str, content: Vec<u8>) -> HttpServer {
    HttpServer::new(vec![Served {
        path,
        content,
        last_modified: None,
    }])
}

/// testHTTPDockerfile: a URL that serves a Dockerfile is the Dockerfile,
/// with an empty context; `-f` names nothing then.
#[test]
fn a_url_serving_a_dockerfile_is_the_dockerfile() {
    let bk = Bk::new();
    let server = served(
        "/df",
        b"FROM busybox\nRUN echo -n \"foo-contents\" > /foo\nFROM scratch\nCOPY --from=0 /foo /foo\n"
            .to_vec(),
    );
    let out = bk.export_from(&server.url("/df"), &["-f", "mydockerfile"], None);
    assert_eq!(read(&out, "foo"), "foo-contents");
}

/// testDockerfileFromHTTP: a URL that serves an archive is the context,
/// and `-f` names a file of it.
#[test]
fn a_url_serving_an_archive_is_the_context() {
    let bk = Bk::new();
    let archive = tar_of(&[
        (
            "mydockerfile",
            tar::EntryType::Regular,
            b"FROM scratch\nCOPY foo bar\n",
        ),
        ("foo", tar::EntryType::Regular, b"foo-contents"),
    ]);
    let server = served("/myurl", archive);
    let out = bk.export_from(&server.url("/myurl"), &["-f", "mydockerfile"], None);
    assert_eq!(read(&out, "bar"), "foo-contents");
    // Compressed, with the default name.
    let archive = super::gzip(&tar_of(&[
        (
            "Dockerfile",
            tar::EntryType::Regular,
            b"FROM scratch\nCOPY . /\n",
        ),
        ("foo", tar::EntryType::Regular, b"foo-contents"),
    ]));
    let server = served("/ctx.tar.gz", archive);
    let out = bk.export_from(&server.url("/ctx.tar.gz"), &[], None);
    assert_eq!(read(&out, "foo"), "foo-contents");
    assert_eq!(read(&out, "Dockerfile"), "FROM scratch\nCOPY . /\n");
}

/// Ours: `-f` of an archive from a URL is resolved inside it: a link to a
/// host file names the archive's own, and a missing one is an error that
/// names it; a URL that fails names the URL.
#[test]
fn a_url_contexts_dockerfile_stays_inside_it() {
    let bk = Bk::new();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.Dockerfile");
    std::fs::write(&secret, "FROM scratch\nLABEL canary=host\n").unwrap();
    let archive = tar_of(&[(
        "df",
        tar::EntryType::Symlink,
        secret.to_str().unwrap().as_bytes(),
    )]);
    let server = served("/ctx.tar", archive);
    let run = bk.build_from(&server.url("/ctx.tar"), &["-f", "df"], None);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("failed to read Dockerfile `df`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("canary"), "{}", run.stderr);
    let run = bk.build_from(&server.url("/missing"), &[], None);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(&format!(
            "failed to read the build context {}",
            server.url("/missing")
        )),
        "{}",
        run.stderr
    );
}

/// testTarContext: an archive on standard input is the context, its
/// Dockerfile included.
#[test]
fn an_archive_on_standard_input_is_the_context() {
    let bk = Bk::new();
    let archive = tar_of(&[
        (
            "Dockerfile",
            tar::EntryType::Regular,
            b"FROM scratch\nCOPY foo /\n",
        ),
        ("foo", tar::EntryType::Regular, b"contents"),
    ]);
    let out = bk.export_from("-", &[], Some(&archive));
    assert_eq!(read(&out, "foo"), "contents");
}

/// Ours: a Dockerfile that came alone (on standard input, or from a URL)
/// has an empty context: `COPY . /` copies nothing, not the Dockerfile.
#[test]
fn a_dockerfile_that_came_alone_is_not_in_its_context() {
    let bk = Bk::new();
    let dockerfile = b"FROM scratch\nCOPY . /\n";
    let server = served("/df", dockerfile.to_vec());
    for (context, stdin) in [("-", Some(&dockerfile[..])), (&*server.url("/df"), None)] {
        let out = bk.export_from(context, &[], stdin);
        let names: Vec<_> = std::fs::read_dir(out.path().join("out"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{context}: {names:?}");
    }
}
