//! `frontend/dockerfile/dockerfile_add_test.go`.

use tar::EntryType;

use super::{Bk, HttpServer, Served, gzip, lstat, read, tar_of};
use crate::support::Context;

/// testDockerfileADDFromURL (the files and times; BuildKit's test also
/// counts its own GET and HEAD requests and its User-Agent, which are
/// BuildKit's)
#[test]
fn add_from_a_url_names_the_file_after_the_url() {
    let server = HttpServer::new(vec![
        Served {
            path: "/foo",
            content: b"content1".to_vec(),
            last_modified: None,
        },
        Served {
            path: "/",
            content: b"content2".to_vec(),
            last_modified: Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        },
    ]);
    let bk = Bk::new();
    let context = Context::new().dockerfile(&format!(
        "FROM scratch\nADD {} /dest/\n",
        server.url("/foo")
    ));
    assert_eq!(read(&bk.export(&context, &[]), "dest/foo"), "content1");
    assert_eq!(server.requests.lock().unwrap()[0], "GET /foo");

    // A URL with no file name: `__unnamed__`, with the server's time.
    let context =
        Context::new().dockerfile(&format!("FROM scratch\nADD {} /dest/\n", server.url("/")));
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "dest/__unnamed__"), "content2");
    let modified = lstat(&out, "dest/__unnamed__").modified().unwrap();
    assert_eq!(
        modified
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        784_111_777
    );
}

/// The archive BuildKit's ADD tests use: `foo` = `content0`.
fn foo_tar() -> Vec<u8> {
    tar_of(&[("foo", EntryType::Regular, b"content0")])
}

/// testDockerfileAddArchive
#[test]
fn add_extracts_local_archives_only() {
    let bk = Bk::new();
    let tar = foo_tar();
    let tgz = gzip(&tar);

    let context = Context::new()
        .dockerfile("FROM busybox\nADD t.tar /\n")
        .file("t.tar", &tar);
    assert_eq!(read(&bk.export(&context, &[]), "foo"), "content0");

    let context = Context::new()
        .dockerfile("FROM busybox\nADD t.tar.gz /\n")
        .file("t.tar.gz", &tgz);
    assert_eq!(read(&bk.export(&context, &[]), "foo"), "content0");

    let context = Context::new()
        .dockerfile("FROM busybox\nADD --unpack=false t.tar.gz /\n")
        .file("t.tar.gz", &tgz);
    let out = bk.export(&context, &[]);
    assert!(!out.path().join("out/foo").exists());
    assert_eq!(std::fs::read(out.path().join("out/t.tar.gz")).unwrap(), tgz);

    // COPY never extracts.
    let context = Context::new()
        .dockerfile("FROM busybox\nCOPY t.tar.gz /\n")
        .file("t.tar.gz", &tgz);
    let out = bk.export(&context, &[]);
    assert_eq!(std::fs::read(out.path().join("out/t.tar.gz")).unwrap(), tgz);

    // Nor does ADD of a URL, unless asked.
    let server = HttpServer::new(vec![Served {
        path: "/t.tar.gz",
        content: tgz.clone(),
        last_modified: None,
    }]);
    let url = server.url("/t.tar.gz");
    let context = Context::new().dockerfile(&format!("FROM busybox\nADD {url} /\n"));
    let out = bk.export(&context, &[]);
    assert_eq!(std::fs::read(out.path().join("out/t.tar.gz")).unwrap(), tgz);

    let context =
        Context::new().dockerfile(&format!("FROM busybox\nADD --unpack=true {url} /dest/\n"));
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "dest/foo"), "content0");
    assert!(!out.path().join("out/dest/t.tar.gz").exists());

    let context = Context::new().dockerfile(&format!("FROM busybox\nADD {url} /newname.tar.gz\n"));
    let out = bk.export(&context, &[]);
    assert_eq!(
        std::fs::read(out.path().join("out/newname.tar.gz")).unwrap(),
        tgz
    );
}

/// testDockerfileAddArchiveWithImpliedParentDir
#[test]
fn add_extracts_an_archive_whose_parents_are_implied() {
    let bk = Bk::new();
    let tgz = gzip(&tar_of(&[
        ("etc/dnf/", EntryType::Directory, b""),
        ("etc/dnf/dnf.conf", EntryType::Regular, b"content0"),
    ]));
    let context = Context::new()
        .dockerfile("FROM busybox\nADD t.tar.gz /\n")
        .file("t.tar.gz", tgz);
    assert_eq!(
        read(&bk.export(&context, &[]), "etc/dnf/dnf.conf"),
        "content0"
    );
}

/// testDockerfileAddArchiveThroughAbsoluteSymlink
#[test]
fn add_extracts_through_an_absolute_symlink_inside_the_root() {
    use std::os::unix::fs::MetadataExt;
    let bk = Bk::new();
    let rootfs = tar_of(&[
        ("run/", EntryType::Directory, b""),
        ("var/", EntryType::Directory, b""),
        ("var/run", EntryType::Symlink, b"/run"),
    ]);
    let payload = tar_of(&[
        ("var/run/act/", EntryType::Directory, b""),
        ("var/run/act/actions/", EntryType::Directory, b""),
        ("var/run/act/actions/broad/", EntryType::Directory, b""),
        ("var/run/act/actions/broad/.git/", EntryType::Directory, b""),
        (
            "var/run/act/actions/broad/.git/HEAD",
            EntryType::Regular,
            b"ref: refs/heads/main\n",
        ),
        (
            "var/run/act/actions/broad/.git/HEAD.link",
            EntryType::Link,
            b"var/run/act/actions/broad/.git/HEAD",
        ),
    ]);
    let context = Context::new()
        .dockerfile("FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n")
        .file("rootfs.tar", rootfs)
        .file("payload.tar", payload);
    let out = bk.export(&context, &[]);
    assert!(lstat(&out, "var/run").file_type().is_symlink());
    let head = "run/act/actions/broad/.git/HEAD";
    let link = "run/act/actions/broad/.git/HEAD.link";
    assert_eq!(read(&out, head), "ref: refs/heads/main\n");
    assert_eq!(read(&out, link), "ref: refs/heads/main\n");
    assert_eq!(lstat(&out, head).ino(), lstat(&out, link).ino());
}

/// testDockerfileAddChownArchive
#[test]
fn add_chown_applies_to_extracted_files_and_the_destination() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nADD --chown=100:200 t.tar /out/\n")
        .file("t.tar", foo_tar());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("out.tar");
    bk.build_ok(
        &context,
        &["--output", &format!("type=tar,dest={}", dest.display())],
    );
    let mut archive = tar::Archive::new(std::fs::File::open(&dest).unwrap());
    let mut seen = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let header = entry.header().clone();
        let mut data = String::new();
        std::io::Read::read_to_string(&mut entry, &mut data).unwrap();
        seen.insert(path, (header.uid().unwrap(), header.gid().unwrap(), data));
    }
    assert_eq!(
        seen.get("out/foo"),
        Some(&(100, 200, "content0".to_owned())),
        "{seen:?}"
    );
    let dir = seen
        .get("out/")
        .or_else(|| seen.get("out"))
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!((dir.0, dir.1), (100, 200));
}

/// testDockerfileAddArchiveWildcard
#[test]
fn add_extracts_every_archive_a_pattern_matches() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nADD *.tar /dest\n")
        .file("t.tar", foo_tar())
        .file("b.tar", tar_of(&[("bar", EntryType::Regular, b"content1")]));
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().join("out").display());
    let run = bk.build(&context, &["--output", &dest]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read(&out, "dest/foo"), "content0");
    assert_eq!(read(&out, "dest/bar"), "content1");
    // Extracted into `/dest`, not one over the other: no warning.
    assert!(!run.stderr.contains("several sources"), "{}", run.stderr);
}

/// testDockerfileAddChownExpand
#[test]
fn add_chown_is_expanded() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox\nARG group\nENV owner 1000\nADD --chown=${owner}:${group} foo /\nRUN [ \"$(stat -c \"%u %G\" /foo)\" == \"1000 nobody\" ]\n",
        )
        .file("foo", "foo-contents");
    bk.build_ok(&context, &["--build-arg", "group=nobody"]);
}

/// testAddURLChmod
#[test]
fn add_chmod_applies_to_downloads() {
    let server = HttpServer::new(vec![Served {
        path: "/foo",
        content: b"content1".to_vec(),
        last_modified: None,
    }]);
    let url = server.url("/foo");
    let bk = Bk::new();
    let context = Context::new().dockerfile(&format!(
        "FROM busybox AS build
ADD --chmod=644 {url} /tmp/foo1
ADD --chmod=755 {url} /tmp/foo2
ADD --chmod=0413 {url} /tmp/foo3

ARG mode
ADD --chmod=${{mode}} {url} /tmp/foo4

RUN stat -c \"%04a\" /tmp/foo1 >> /dest && \\
\tstat -c \"%04a\" /tmp/foo2 >> /dest && \\
\tstat -c \"%04a\" /tmp/foo3 >> /dest && \\
\tstat -c \"%04a\" /tmp/foo4 >> /dest

FROM scratch
COPY --from=build /dest /dest
"
    ));
    let out = bk.export(&context, &["--build-arg", "mode=400"]);
    assert_eq!(read(&out, "dest"), "0644\n0755\n0413\n0400\n");
}

/// testAddInvalidChmod
#[test]
fn add_refuses_an_invalid_chmod() {
    super::assert_invalid_chmod("ADD");
}

/// testAddChecksum (BuildKit's test asserts only that the bad ones fail;
/// these assert strata's messages)
#[test]
fn add_checksum_is_verified() {
    use sha2::Digest as _;
    let server = HttpServer::new(vec![Served {
        path: "/foo",
        content: b"content1".to_vec(),
        last_modified: None,
    }]);
    let url = server.url("/foo");
    let hex = format!("{:x}", sha2::Sha256::digest(b"content1"));
    let bk = Bk::new();
    // Valid.
    let context = Context::new().dockerfile(&format!(
        "FROM busybox\nADD --checksum=sha256:{hex} {url} /tmp/foo\n"
    ));
    bk.build_ok(&context, &[]);
    // DigestFromEnv.
    let context = Context::new().dockerfile(&format!(
        "FROM busybox\nENV DIGEST=sha256:{hex}\nENV LINK={url}\nADD --checksum=${{DIGEST}} ${{LINK}} /tmp/foo\n"
    ));
    bk.build_ok(&context, &[]);
    let empty = format!("{:x}", sha2::Sha256::digest(b""));
    for (checksum, expected) in [
        (format!("sha256:{empty}"), "does not match --checksum"),
        (
            "md5:7e55db001d319a94b0b713529a756623".to_owned(),
            "only sha256:HEX checksums are supported",
        ),
        (
            format!("unknown:{hex}"),
            "only sha256:HEX checksums are supported",
        ),
        (hex.clone(), "only sha256:HEX checksums are supported"),
    ] {
        let context = Context::new().dockerfile(&format!(
            "FROM busybox\nADD --checksum={checksum} {url} /tmp/foo\n"
        ));
        let stderr = bk.build_err(&context, &[]);
        assert!(stderr.contains(expected), "{checksum}: {stderr}");
    }
    // NonHTTPSource.
    let local = format!("{:x}", sha2::Sha256::digest(b"local file"));
    let context = Context::new()
        .dockerfile(&format!(
            "FROM busybox\nADD --checksum=sha256:{local} foo /tmp/foo\n"
        ))
        .file("foo", "local file");
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("checksum requires HTTP(S) or Git sources"),
        "{stderr}"
    );
}
