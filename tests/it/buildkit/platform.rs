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
