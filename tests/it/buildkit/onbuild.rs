//! `frontend/dockerfile/dockerfile_onbuild_test.go` (images kept in the
//! store instead of pushed to a registry: the triggers travel in the image
//! config either way).

use super::{Bk, read};
use crate::support::Context;

/// testOnBuildCleared
#[test]
fn a_trigger_runs_once_in_the_child_and_not_in_the_grandchild() {
    let bk = Bk::new();
    let base = Context::new()
        .dockerfile("FROM busybox\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n");
    bk.build_ok(&base, &["-t", "onbuild:base"]);
    bk.build_ok(
        &Context::new().dockerfile("FROM onbuild:base\n"),
        &["-t", "onbuild:child"],
    );
    let grandchild = Context::new()
        .dockerfile("FROM onbuild:child AS base\nFROM scratch\nCOPY --from=base /out /\n");
    assert_eq!(read(&bk.export(&grandchild, &[]), "foo"), "11");
}

/// testOnBuildWithChildStage
#[test]
fn a_trigger_does_not_run_again_in_a_stage_built_on_a_stage() {
    let bk = Bk::new();
    let base = Context::new()
        .dockerfile("FROM busybox\nONBUILD RUN mkdir -p /out && echo -n yes >> /out/didrun\n");
    bk.build_ok(&base, &["-t", "onbuild:stage"]);
    let context = Context::new().dockerfile(
        "FROM onbuild:stage AS base
RUN [ -f /out/didrun ] && touch /step1
RUN rm /out/didrun
RUN [ ! -f /out/didrun ] && touch /step2

FROM base AS child
RUN [ ! -f /out/didrun ] && touch /step3

FROM scratch
COPY --from=child /step* /
",
    );
    let out = bk.export(&context, &[]);
    for step in ["step1", "step2", "step3"] {
        assert!(out.path().join("out").join(step).exists(), "{step}");
    }
}

/// testOnBuildInheritedStageRun
#[test]
fn a_stages_trigger_runs_in_a_stage_built_from_it() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n\nFROM base AS mid\nRUN cp /out/foo /out/bar\n\nFROM scratch\nCOPY --from=mid /out/bar /\n",
    );
    assert_eq!(read(&bk.export(&context, &[]), "bar"), "11");
}

/// testOnBuildInheritedStageWithFrom
#[test]
fn a_stages_trigger_copies_from_another_stage() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM alpine AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\n\nFROM busybox AS base\nONBUILD COPY --from=src /in/file /out/foo\n\nFROM base AS mid\nRUN cp /out/foo /out/bar\n\nFROM scratch\nCOPY --from=mid /out/bar /\n",
    );
    assert_eq!(read(&bk.export(&context, &[]), "bar"), "12");
}

/// testOnBuildWithCacheMount
#[test]
fn a_trigger_shares_a_cache_mount_with_later_steps() {
    let bk = Bk::new();
    let base = Context::new().dockerfile(
        "FROM busybox\nONBUILD RUN --mount=type=cache,target=/cache echo -n 42 >> /cache/foo && echo -n 11 >> /bar\n",
    );
    bk.build_ok(&base, &["-t", "onbuild:cache"]);
    let child = Context::new().dockerfile(
        "FROM onbuild:cache\nRUN --mount=type=cache,target=/cache [ \"$(cat /cache/foo)\" = \"42\" ] && [ \"$(cat /bar)\" = \"11\" ]\n",
    );
    bk.build_ok(&child, &[]);
}

/// testOnBuildNewDeps: a trigger may copy from an image the child's
/// Dockerfile never names; it is resolved when the trigger runs.
#[test]
fn a_trigger_copies_from_an_image_the_child_does_not_name() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile("FROM busybox\nRUN echo 3.20.0 > /etc/alpine-release\n"),
        &["-t", "alpine"],
    );
    bk.build_ok(
        &Context::new().dockerfile(
            "FROM busybox\nONBUILD COPY --from=alpine /etc/alpine-release /out/alpine-release2\n",
        ),
        &["-t", "testonbuilddeps:base"],
    );
    let context = Context::new().dockerfile(
        "FROM testonbuilddeps:base AS base\nRUN cat /out/alpine-release2 > /out/alpine-release3\nFROM scratch\nCOPY --from=base /out /\n",
    );
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "alpine-release3"), "3.20.0\n");
}
