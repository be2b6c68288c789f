//! `frontend/dockerfile/dockerfile_platform_test.go`: the platform
//! arguments, here for the host's platform (multi-platform builds are
//! not in strata yet).

use super::{Bk, read};
use crate::support::Context;

/// testPlatformArgsImplicit: TARGETOS is defined without an ARG in FROM,
/// and names the stage to build on.
#[test]
fn targetos_names_a_stage_in_from_without_an_arg() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM scratch AS build-linux\nCOPY foo bar\nFROM build-${TARGETOS}\nCOPY foo2 bar2\n",
        )
        .file("foo", "d0")
        .file("foo2", "d1");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "bar"), "d0");
    assert_eq!(read(&out, "bar2"), "d1");
}

/// testPlatformArgsExplicit: a stage `FROM --platform=$BUILDPLATFORM`
/// runs on the build's platform whatever the target, and sees the target
/// in TARGETPLATFORM; a build arg overrides TARGETOS.
#[test]
fn a_build_platform_stage_sees_the_target_platform() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETPLATFORM\nARG TARGETOS\nRUN mkdir /out && echo -n $TARGETPLATFORM > /out/platform && echo -n $TARGETOS > /out/os\nFROM scratch\nCOPY --from=build out .\n",
    );
    let out = bk.export(
        &context,
        &[
            "--platform",
            "darwin/ppc64le",
            "--build-arg",
            "TARGETOS=freebsd",
        ],
    );
    assert_eq!(read(&out, "platform"), "darwin/ppc64le");
    assert_eq!(read(&out, "os"), "freebsd");
    // The image, made on scratch, is for the target.
    bk.build_ok(&context, &["--platform", "darwin/ppc64le", "-t", "ppc:1"]);
    let image = bk.inspect("ppc:1");
    assert_eq!(
        (&image["Os"], &image["Architecture"]),
        (&serde_json::json!("darwin"), &serde_json::json!("ppc64le"))
    );
    // A RUN in a stage of the target's platform cannot run here.
    let context = Context::new().dockerfile("FROM busybox\nRUN true\n");
    let stderr = bk.build_err(&context, &["--platform", "darwin/ppc64le"]);
    assert!(
        stderr.contains(
            "error: building for darwin/ppc64le is not supported: strata runs steps on this machine"
        ),
        "{stderr}"
    );
}
