//! Every way a user can get a Dockerfile wrong, with the exact message they
//! see: `file:line:col`, the source line, the caret, the hint.
//!
//! One snapshot per case in `tests/snapshots/errors/`. A change in wording,
//! position or hint shows up as a snapshot diff.

use std::collections::BTreeMap;

use strata_frontend::diagnostic::{Source, render, render_warning};
use strata_frontend::graph::Options;

struct Case {
    name: &'static str,
    dockerfile: &'static str,
    target: Option<&'static str>,
    build_args: &'static [(&'static str, &'static str)],
}

const fn case(name: &'static str, dockerfile: &'static str) -> Case {
    Case {
        name,
        dockerfile,
        target: None,
        build_args: &[],
    }
}

const CASES: &[Case] = &[
    case("unknown_instruction", "FROM busybox\nRUNN echo hi\n"),
    case("unknown_instruction_far", "FROM busybox\nFROBNICATE x\n"),
    case(
        "instruction_before_from",
        "# build\nRUN echo hi\nFROM busybox\n",
    ),
    case("only_args", "ARG VERSION=1\n"),
    case("empty_file", ""),
    case("only_comments", "# nothing\n# here\n"),
    case("from_without_image", "FROM\n"),
    case("from_without_as", "FROM busybox base\n"),
    case("from_too_many_words", "FROM busybox AS a b\n"),
    case("invalid_stage_name", "FROM busybox AS 1st\n"),
    // BuildKit's words: an empty tag is no image.
    case("invalid_reference", "ARG TAG\nFROM golang:$TAG AS build\n"),
    case(
        "unknown_copy_flag",
        "FROM busybox\nCOPY --form=build /a /b\n",
    ),
    case("flag_on_cmd", "FROM busybox\nCMD --doit echo hi\n"),
    case(
        "unknown_run_flag",
        "FROM busybox\nRUN --mnt=type=cache,target=/x echo\n",
    ),
    case(
        "duplicate_flag",
        "FROM busybox\nCOPY --chown=1 --chown=2 a b\n",
    ),
    case("flag_missing_value", "FROM busybox\nCOPY --from a b\n"),
    case("bool_flag_value", "FROM busybox\nCOPY --link=maybe a b\n"),
    case("copy_one_argument", "FROM busybox\nCOPY onlyone\n"),
    case("env_without_value", "FROM busybox\nENV PATH\n"),
    case("env_missing_equals", "FROM busybox\nENV a=1 b\n"),
    case("json_not_strings", "FROM busybox\nCMD [\"echo\", 1]\n"),
    case("shell_not_json", "FROM busybox\nSHELL /bin/bash -c\n"),
    case("unterminated_heredoc", "FROM busybox\nRUN <<EOF\necho hi\n"),
    case("unterminated_quote", "FROM busybox\nENV A=\"unterminated\n"),
    case("bad_substitution", "FROM busybox\nWORKDIR /app/${}\n"),
    case(
        "required_variable",
        "FROM busybox\nARG NAME\nLABEL name=\"${NAME:?must be set}\"\n",
    ),
    Case {
        target: Some("biuld"),
        ..case(
            "unknown_target",
            "FROM busybox AS build\nFROM busybox AS app\n",
        )
    },
    case(
        "unknown_stage_index",
        "FROM busybox AS build\nFROM busybox\nCOPY --from=5 /a /b\n",
    ),
    case(
        "stage_name_typo",
        "FROM busybox AS build\nFROM busybox\nCOPY --from=biuld /a /b\n",
    ),
    case(
        "copy_from_itself",
        "FROM busybox AS a\nCOPY --from=a /x /y\n",
    ),
    case(
        "mount_without_target",
        "FROM busybox\nRUN --mount=type=cache make\n",
    ),
    case(
        "mount_unknown_type",
        "FROM busybox\nRUN --mount=type=volume,target=/x make\n",
    ),
    case(
        "mount_on_continuation_line",
        "FROM busybox\nRUN --mount=type=cache,target=/x \\\n    --mount=type=cache,target=/y,sharing=all \\\n    make\n",
    ),
    case(
        "invalid_network",
        "FROM busybox\nRUN --network=bridge make\n",
    ),
    case(
        "invalid_security",
        "FROM busybox\nRUN --security=privileged make\n",
    ),
    case("invalid_escape_directive", "# escape=x\nFROM busybox\n"),
    case(
        "duplicate_directive",
        "# escape=`\n# escape=\\\nFROM busybox\n",
    ),
    case(
        "healthcheck_unknown_type",
        "FROM busybox\nHEALTHCHECK CONNECT TCP 7000\n",
    ),
    case(
        "healthcheck_bad_interval",
        "FROM busybox\nHEALTHCHECK --interval=5x CMD true\n",
    ),
    case(
        "healthcheck_none_with_command",
        "FROM busybox\nHEALTHCHECK NONE true\n",
    ),
    case(
        "healthcheck_cmd_without_command",
        "FROM busybox\nHEALTHCHECK CMD\n",
    ),
    case("invalid_port", "FROM busybox\nEXPOSE 80 http\n"),
    case("invalid_chmod", "FROM busybox\nCOPY --chmod=999 a /b\n"),
    case(
        "onbuild_onbuild",
        "FROM busybox\nONBUILD ONBUILD RUN make\n",
    ),
    case("onbuild_from", "FROM busybox\nONBUILD FROM alpine\n"),
    case("blank_base_name", "ARG BASE\nFROM $BASE\n"),
    case("invalid_platform", "FROM --platform=linux busybox\n"),
    case("invalid_stop_signal", "FROM busybox\nSTOPSIGNAL SIGNOPE\n"),
    case(
        "checksum_on_local_source",
        "FROM busybox\nADD --checksum=sha256:0123 app.tar /\n",
    ),
    case("arg_without_name", "FROM busybox\nARG =x\n"),
    case("workdir_without_path", "FROM busybox\nWORKDIR\n"),
    case("user_without_name", "FROM busybox\nUSER\n"),
    case("run_without_command", "FROM busybox\nRUN\n"),
    case(
        "unknown_instruction_in_onbuild",
        "FROM busybox\nONBUILD RUNN make\n",
    ),
    case(
        "tab_indented_caret",
        "FROM busybox\n\tCOPY\t--chown=a --chown=b x y\n",
    ),
    case(
        "wide_characters_before_caret",
        "FROM busybox\nLABEL 名前=\"値\" bad\n",
    ),
];

fn render_case(case: &Case) -> String {
    let build_args: BTreeMap<String, String> = case
        .build_args
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let options = Options {
        target: case.target.map(str::to_owned),
        build_args,
        ..Options::default()
    };
    let source = Source::new("Dockerfile", case.dockerfile);
    let rendered = match strata_frontend::compile(case.dockerfile, &options) {
        Ok(_) => panic!("case `{}` compiled, but it must fail", case.name),
        Err(error) => render(&error, &source),
    };
    // The CLI's path (one node at a time) fails the same way.
    match strata_frontend::compile_graph(case.dockerfile, &options) {
        Ok(_) => panic!("case `{}` compiled one node at a time", case.name),
        Err(error) => assert_eq!(render(&error, &source), rendered, "{}", case.name),
    }
    rendered
}

#[test]
fn error_messages() {
    assert!(CASES.len() >= 30);
    let mut names = std::collections::BTreeSet::new();
    for case in CASES {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        let rendered = render_case(case);
        insta::with_settings!({
            snapshot_path => "snapshots/errors",
            prepend_module_to_snapshot => false,
            description => case.dockerfile,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(case.name, rendered);
        });
    }
}

/// Warnings that BuildKit gives; none of them fails the build.
#[test]
fn warning_messages() {
    // (The last stage is on scratch, whose config is known to be empty:
    // on an image without a resolver, UndefinedVar cannot know its ENV.)
    let dockerfile = "FROM busybox AS Build\nMAINTAINER someone\nRUN echo a \\\n\n  b\nCMD echo hi\nfrom scratch AS final\nCOPY $UNDEFINED /x\n";
    let options = Options {
        build_args: [("UNUSED".to_owned(), "1".to_owned())]
            .into_iter()
            .collect(),
        ..Options::default()
    };
    let compiled =
        strata_frontend::compile(dockerfile, &options).expect("warnings do not fail the build");
    let source = Source::new("Dockerfile", dockerfile);
    let graph = strata_frontend::compile_graph(dockerfile, &options).expect("it compiles");
    assert_eq!(graph.warnings, compiled.warnings);
    let rendered: String = compiled
        .warnings
        .iter()
        .map(|warning| format!("[{}] {}", warning.rule, render_warning(warning, &source)))
        .collect();
    insta::with_settings!({
        snapshot_path => "snapshots/errors",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("warnings", rendered);
    });
}
