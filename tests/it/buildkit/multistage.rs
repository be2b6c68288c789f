//! `frontend/dockerfile/dockerfile_multistage_test.go`.

use super::{Bk, read};
use crate::support::Context;

/// testMultiStageImplicitFrom
#[test]
fn copy_from_names_an_image_or_a_stage_that_masks_it() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM scratch\nCOPY --from=busybox /etc/passwd test\n");
    assert!(read(&bk.export(&context, &[]), "test").contains("root"));
    // A stage named like an image is the stage.
    bk.store
        .ok(bk.store.dir.path(), &["tag", "busybox", "golang"]);
    let context = Context::new().dockerfile(
        "FROM busybox AS golang\nRUN mkdir -p /usr/bin && echo -n foo > /usr/bin/go\n\nFROM scratch\nCOPY --from=golang /usr/bin/go go\n",
    );
    assert!(read(&bk.export(&context, &[]), "go").contains("foo"));
}

/// testMultiStageCaseInsensitive
#[test]
fn stage_names_are_case_insensitive() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox AS STAge0\nCOPY foo bar\nFROM busybox AS staGE1\nCOPY --from=staGE0 bar baz\nFROM busybox\nCOPY --from=stage1 baz bax\n",
        )
        .file("foo", "foo-contents");
    let out = bk.export(&context, &["--target", "Stage1"]);
    assert!(read(&out, "baz").contains("foo-contents"));
}

/// testOutOfOrderStage
#[test]
fn copy_from_a_later_stage_is_refused() {
    let bk = Bk::new();
    for source in ["/", "/d2"] {
        let context = Context::new().dockerfile(&format!(
            "FROM busybox AS target\nCOPY --from=build {source} /out\n\nFROM alpine AS build\nCOPY /Dockerfile /d2\n\nFROM target\n"
        ));
        let stderr = bk.build_err(&context, &[]);
        assert!(
            stderr.contains("cannot copy from stage")
                && stderr.contains("needs to be defined before current stage"),
            "{stderr}"
        );
    }
}

/// testEmptyStages
#[test]
fn a_dockerfile_without_stages_is_refused() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("ARG foo=bar");
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains("dockerfile contains no stages to build"),
        "{stderr}"
    );
}
