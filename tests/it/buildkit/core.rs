//! `frontend/dockerfile/dockerfile_core_test.go`.

use super::{Bk, read, symlink, tar_of};
use crate::support::Context;

/// testDockerfileDirs (the context and the Dockerfile in different
/// directories, and both relative to where strata runs)
#[test]
fn the_dockerfile_and_the_context_in_different_directories() {
    let bk = Bk::new();
    let dockerfile = "FROM busybox\nCOPY foo /foo2\nCOPY foo /\nRUN echo -n bar > foo3\nRUN test -f foo\nRUN cmp -s foo foo2\nRUN cmp -s foo foo3\n";
    let context = Context::new().dockerfile(dockerfile).file("foo", "bar");
    bk.build_ok(&context, &[]);
    let apart = tempfile::tempdir().unwrap();
    std::fs::write(apart.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::remove_file(context.path().join("Dockerfile")).unwrap();
    let file = apart.path().join("Dockerfile");
    bk.build_ok(&context, &["-f", file.to_str().unwrap()]);
}

/// testSymlinkedDockerfile
#[test]
fn a_symlinked_dockerfile_is_read() {
    let bk = Bk::new();
    let context = Context::new().file("Dockerfile.web", "FROM scratch\nENV foo bar\n");
    symlink(&context, "Dockerfile.web", "Dockerfile");
    bk.build_ok(&context, &[]);
}

/// testSymlinkDestination
#[test]
fn copy_through_a_dangling_relative_symlink_stays_in_the_root() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n")
        .file("foo", "content0")
        .file(
            "t.tar",
            tar_of(&[("symlink", tar::EntryType::Symlink, b"../tmp/symlink-target")]),
        );
    assert_eq!(
        read(&bk.export(&context, &[]), "tmp/symlink-target/foo"),
        "content0"
    );
}

/// testContextChangeDirToFile
#[test]
fn a_context_directory_that_becomes_a_file() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY foo /\n")
        .file("foo/bar", "contents");
    bk.build_ok(&context, &[]);
    std::fs::remove_dir_all(context.path().join("foo")).unwrap();
    std::fs::write(context.path().join("foo"), "contents2").unwrap();
    assert_eq!(read(&bk.export(&context, &[]), "foo"), "contents2");
}

/// testExposeExpansion
#[test]
fn expose_expands_to_several_ports() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new()
            .dockerfile("FROM scratch\nARG PORTS=\"3000 4000/udp\"\nEXPOSE $PORTS\nEXPOSE 5000\n"),
        &["-t", "expose:1"],
    );
    let ports: Vec<String> = bk.inspect("expose:1")["Config"]["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(ports, ["3000/tcp", "4000/udp", "5000/tcp"]);
}

/// testDockerfileLowercase
#[test]
fn a_lowercase_dockerfile_is_found() {
    let bk = Bk::new();
    let context = Context::new().file("dockerfile", "FROM scratch\n");
    bk.build_ok(&context, &[]);
}

/// testLabels
#[test]
fn labels_from_the_dockerfile_and_the_command_line() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile("FROM scratch\nLABEL foo=bar\n"),
        &["--label", "bar=baz", "-t", "labels:1"],
    );
    let labels = &bk.inspect("labels:1")["Config"]["Labels"];
    assert_eq!(labels["foo"], "bar");
    assert_eq!(labels["bar"], "baz");
}

/// testUserAdditionalGids
#[test]
fn users_get_their_groups() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile(
            "FROM busybox
SHELL [\"/bin/sh\", \"-euxc\"]
RUN [ \"$(id)\" = \"uid=0(root) gid=0(root) groups=0(root),10(wheel)\" ]
USER 1234
RUN [ \"$(id)\" = \"uid=1234 gid=0(root) groups=0(root)\" ]
USER 1234:1234
RUN [ \"$(id)\" = \"uid=1234 gid=1234 groups=1234\" ]
USER daemon
RUN [ \"$(id)\" = \"uid=1(daemon) gid=1(daemon) groups=1(daemon)\" ]
",
        ),
        &[],
    );
}

/// testDockerfileCheckHostname
#[test]
fn the_sandbox_hostname_can_be_set() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox\nRUN cat /etc/hosts | grep foo\nRUN echo $HOSTNAME | grep foo\nRUN echo $(hostname) | grep foo\n",
    );
    bk.build_ok(&context, &["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=foo"]);
}

/// Not a Go test: BuildKit's exec op carries the hostname, so a step run
/// under one hostname is not the cached result for another; and a name the
/// kernel would refuse is refused before anything runs.
#[test]
fn the_sandbox_hostname_is_part_of_the_key_and_checked() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM busybox\nRUN hostname > /h\n");
    for name in ["foo", "bar"] {
        let out = bk.export(
            &context,
            &["--build-arg", &format!("BUILDKIT_SANDBOX_HOSTNAME={name}")],
        );
        assert_eq!(super::read(&out, "h"), format!("{name}\n"));
    }
    let out = bk.export(&context, &[]);
    assert_eq!(super::read(&out, "h"), "strata\n");
    let stderr = bk.build_err(&context, &["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=a/b"]);
    assert!(
        stderr.contains("invalid BUILDKIT_SANDBOX_HOSTNAME `a/b`: a hostname is up to 64 letters, digits, `-`, `.` and `_`"),
        "{stderr}"
    );
}

/// testStepNames
#[test]
fn steps_are_named_as_buildkit_names_them() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nWORKDIR /out\nRUN echo \"base\" > base\nFROM scratch\nCOPY --from=base --chmod=0644 /out /out\n",
    );
    let run = bk
        .store
        .strata(context.path(), &["build", "--progress", "plain", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("[base 3/3] RUN echo \"base\" > base"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[stage-1 1/1] COPY --from=base --chmod=0644 /out /out"),
        "{}",
        run.stderr
    );
}

/// testTargetMistype (strata's words: BuildKit's are `target stage
/// "bulid" could not be found (did you mean build?)`)
#[test]
fn a_mistyped_target_gets_a_suggestion() {
    let bk = Bk::new();
    let stderr = bk.build_err(
        &Context::new()
            .dockerfile("FROM scratch AS build\nFROM scratch\nCOPY --from=build foo bar\n"),
        &["--target", "bulid"],
    );
    assert!(
        stderr.contains("target stage `bulid` could not be found")
            && stderr.contains("did you mean `build`?"),
        "{stderr}"
    );
}

/// testUser: USER by name, by id, with a group by name or id, with the
/// supplementary groups `/etc/group` gives a user when no group is named,
/// and an id that `/etc/passwd` does not know.
#[test]
fn user_and_groups_as_the_image_files_name_them() {
    let bk = Bk::new();
    // Each RUN fails the build unless `id` says what BuildKit's test says.
    let ids = |expected: &str| {
        format!(
            "RUN [ \"$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)\" = '{expected}' ]\n"
        )
    };
    let mut dockerfile = String::from(
        "FROM busybox AS base\nRUN mkdir -m 0777 /out\nRUN id -un > /out/rootuser\n\
         RUN [ \"$(id -u):$(id -g)/$(id -un):$(id -gn)\" = '0:0/root:root' ]\n\
         USER root\nRUN [ \"$(id -G):$(id -Gn)\" = '0 10:root wheel' ]\n\
         RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && echo 'dockerio:x:1001:' >> /etc/group\n\
         USER dockerio\n",
    );
    dockerfile.push_str(&ids("1001:1001/dockerio:dockerio/1001:dockerio"));
    dockerfile.push_str("USER root\n");
    dockerfile.push_str(&ids("0:0/root:root/0 10:root wheel"));
    dockerfile.push_str("RUN echo 'supplementary:x:1002:dockerio' >> /etc/group\n");
    for (user, expected) in [
        (
            "dockerio",
            "1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary",
        ),
        (
            "1001",
            "1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary",
        ),
        (
            "dockerio:dockerio",
            "1001:1001/dockerio:dockerio/1001:dockerio",
        ),
        ("1001:dockerio", "1001:1001/dockerio:dockerio/1001:dockerio"),
        ("dockerio:1001", "1001:1001/dockerio:dockerio/1001:dockerio"),
        ("1001:1001", "1001:1001/dockerio:dockerio/1001:dockerio"),
        (
            "dockerio:supplementary",
            "1001:1002/dockerio:supplementary/1002:supplementary",
        ),
        (
            "dockerio:1002",
            "1001:1002/dockerio:supplementary/1002:supplementary",
        ),
        (
            "1001:supplementary",
            "1001:1002/dockerio:supplementary/1002:supplementary",
        ),
        (
            "1001:1002",
            "1001:1002/dockerio:supplementary/1002:supplementary",
        ),
        ("1042:1043", "1042:1043/1042:1043/1043:1043"),
    ] {
        dockerfile.push_str(&format!("USER {user}\n"));
        dockerfile.push_str(&ids(expected));
    }
    dockerfile.push_str(
        "USER daemon\nRUN id -un > /out/daemonuser\nFROM scratch\nCOPY --from=base /out /\nUSER nobody\n",
    );
    let context = Context::new().dockerfile(&dockerfile);
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "rootuser"), "root\n");
    assert_eq!(read(&out, "daemonuser"), "daemon\n");
    bk.build_ok(&context, &["-t", "user:test"]);
    assert_eq!(bk.inspect("user:test")["Config"]["User"], "nobody");
}
