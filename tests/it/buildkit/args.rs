//! `frontend/dockerfile/dockerfile_args_test.go`.

use super::{Bk, file_mode, read};
use crate::support::Context;

/// testGlobalArg
#[test]
fn a_build_arg_overrides_a_global_arg_in_from() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("ARG tag=nosuchtag\nFROM busybox:${tag}\n");
    bk.build_ok(&context, &["--build-arg", "tag=latest"]);
}

/// testGlobalArgErrors
#[test]
fn a_required_global_arg_fails_with_its_message() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("ARG FOO=${FOO:?\"custom error\"}\nFROM busybox\n");
    let stderr = bk.build_err(&context, &[]);
    assert!(stderr.contains("FOO: custom error"), "{stderr}");
    bk.build_ok(&context, &["--build-arg", "FOO=bar"]);
}

/// testArgDefaultExpansion
#[test]
fn an_arg_default_is_expanded_only_when_used() {
    let bk = Bk::new();
    let context =
        Context::new().dockerfile("FROM scratch\nARG FOO\nARG BAR=${FOO:?\"foo missing\"}\n");
    let stderr = bk.build_err(&context, &[]);
    assert!(stderr.contains("FOO: foo missing"), "{stderr}");
    bk.build_ok(&context, &["--build-arg", "FOO=123"]);
    bk.build_ok(&context, &["--build-arg", "BAR=123"]);
}

/// testMultiArgs
#[test]
fn several_args_on_one_line() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "ARG a1=\"foo bar\" a2=box\nARG a3=\"$a2-foo\"\nFROM busy$a2 AS build\nARG a3 a4=\"123 456\" a1\nRUN echo -n \"$a1:$a3:$a4\" > /out\nFROM scratch\nCOPY --from=build /out .\n",
    );
    assert_eq!(
        read(&bk.export(&context, &[]), "out"),
        "foo bar:box-foo:123 456"
    );
}

/// testQuotedMetaArgs
#[test]
fn global_args_refer_to_each_other() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "ARG a1=\"box\"\nARG a2=\"$a1-foo\"\nFROM busy$a1 AS build\nARG a2\nARG a3=\"bar-$a2\"\nRUN echo -n $a3 > /out\nFROM scratch\nCOPY --from=build /out .\n",
    );
    assert_eq!(read(&bk.export(&context, &[]), "out"), "bar-box-foo");
}

/// testTargetStageNameArg
#[test]
fn targetstage_is_the_stage_being_built() {
    let bk = Bk::new();
    let mut dockerfile = "FROM alpine AS base
WORKDIR /out
RUN echo -n \"value:$TARGETSTAGE\" > /out/first
ARG TARGETSTAGE
RUN echo -n \"value:$TARGETSTAGE\" > /out/second

FROM scratch AS foo
COPY --from=base /out/ /

FROM scratch
COPY --from=base /out/ /
"
    .to_owned();
    let context = Context::new().dockerfile(&dockerfile);
    let out = bk.export(&context, &["--target", "foo"]);
    assert_eq!(read(&out, "first"), "value:");
    assert_eq!(read(&out, "second"), "value:foo");
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "first"), "value:");
    assert_eq!(read(&out, "second"), "value:default");
    dockerfile.push_str("\nFROM busybox AS final\nCOPY --from=base /out/ /\n");
    let context = Context::new().dockerfile(&dockerfile);
    let out = bk.export(&context, &[]);
    assert_eq!(read(&out, "second"), "value:final");
}

/// testBuiltinArgs
#[test]
fn proxy_args_are_set_and_left_out_of_the_cache_key() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS build\nARG FOO\nARG BAR\nARG BAZ=bazcontent\nRUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAR::$BAZ > /out\nFROM scratch\nCOPY --from=build /out /\n",
    );
    let out = bk.export(
        &context,
        &[
            "--build-arg",
            "FOO=foocontents",
            "--build-arg",
            "http_proxy=hpvalue",
            "--build-arg",
            "NO_PROXY=npvalue",
        ],
    );
    assert_eq!(
        read(&out, "out"),
        "hpvalue::npvalue::foocontents::::bazcontent"
    );
    // Other proxies, the same step: from the cache.
    let out = bk.export(
        &context,
        &[
            "--build-arg",
            "FOO=foocontents",
            "--build-arg",
            "http_proxy=hpvalue2",
        ],
    );
    assert_eq!(
        read(&out, "out"),
        "hpvalue::npvalue::foocontents::::bazcontent"
    );
    let out = bk.export(
        &context,
        &[
            "--build-arg",
            "FOO=foocontents2",
            "--build-arg",
            "http_proxy=hpvalue2",
        ],
    );
    assert_eq!(read(&out, "out"), "hpvalue2::::foocontents2::::bazcontent");
}

/// testDefaultEnvWithArgs
#[test]
fn env_defaults_from_args() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "ARG image=idlebox\nFROM busy${image#idle} AS build\nARG my_arg\nENV my_arg \"my_arg=${my_arg:-def_val}\"\nENV my_trimmed_arg \"${my_arg%%e*}\"\nCOPY myscript.sh myscript.sh\nRUN ./myscript.sh $my_arg $my_trimmed_arg\nFROM scratch\nCOPY --from=build /out /out\n",
    );
    file_mode(
        &context,
        "myscript.sh",
        "\n#!/usr/bin/env sh\necho -n $my_arg $* > /out\n",
        0o700,
    );
    for (args, expected) in [
        (&[][..], "my_arg=def_val my_arg=def_val my_arg=d"),
        (
            &["--build-arg", "my_arg="][..],
            "my_arg=def_val my_arg=def_val my_arg=d",
        ),
        (
            &["--build-arg", "my_arg=override"][..],
            "my_arg=override my_arg=override my_arg=ov",
        ),
    ] {
        assert_eq!(
            read(&bk.export(&context, args), "out"),
            expected,
            "{args:?}"
        );
    }
}

/// testEmptyStringArgInEnv
#[test]
fn an_arg_without_a_value_is_not_in_the_environment() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS build\nARG FOO\nARG BAR=\nRUN env > env.txt\n\nFROM scratch\nCOPY --from=build env.txt .\n",
    );
    let env = read(&bk.export(&context, &[]), "env.txt");
    assert!(env.lines().any(|line| line == "BAR="), "{env}");
    assert!(!env.lines().any(|line| line.starts_with("FOO=")), "{env}");
}

/// testEnvEmptyFormatting
#[test]
fn env_values_are_not_formatted() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM busybox AS build\nENV myenv foo%sbar\nRUN [ \"$myenv\" = 'foo%sbar' ]\n");
    bk.build_ok(&context, &[]);
}

/// Not a Go test of its own: BuildKit's `dispatchState.init` carries a
/// base stage's build args into the stages built on it.
#[test]
fn a_stage_built_on_a_stage_inherits_its_args() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nARG NAME=joe\nFROM base AS child\nRUN echo -n \"hello [$NAME]\" > /out\nFROM scratch\nCOPY --from=child /out /\n",
    );
    assert_eq!(read(&bk.export(&context, &[]), "out"), "hello [joe]");
}
