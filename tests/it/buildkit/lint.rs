//! `frontend/dockerfile/dockerfile_check_test.go`: BuildKit's Dockerfile
//! checks.
//!
//! BuildKit's harness (`checkLinterWarnings`) runs each case twice: as a
//! build, whose warnings cover the stages the target needs, and as a check
//! (`docker build --check`), which covers every stage. Each case here does
//! the same: `strata build` and its stderr's warnings, then
//! `strata build --check --format json`. Both compare rule names, exact
//! messages and lines, sorted by line then message as BuildKit's harness
//! sorts them, and the check's exit status (1 when a warning or an error
//! is found, as buildx's).

use super::Bk;
use crate::support::Context;

/// A finding: rule, message, line.
type Found = (String, String, usize);

fn found(rule: &str, message: &str, line: usize) -> Found {
    (rule.to_owned(), message.to_owned(), line)
}

fn sorted(mut list: Vec<Found>) -> Vec<Found> {
    list.sort_by(|a, b| (a.2, &a.1).cmp(&(b.2, &b.1)));
    list
}

/// The checks' warnings a build printed to stderr: `warning: Rule: message`
/// followed by ` --> Dockerfile:LINE:COL`.
fn build_warnings(stderr: &str) -> Vec<Found> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("warning: ") else {
            continue;
        };
        let Some((rule, message)) = rest.split_once(": ") else {
            continue;
        };
        if strata_rule(rule).is_none() {
            continue;
        }
        let place = lines
            .get(index + 1)
            .and_then(|next| next.trim_start().strip_prefix("--> Dockerfile:"))
            .unwrap_or_else(|| panic!("no place after {line:?}:\n{stderr}"));
        let number = place.split(':').next().unwrap().parse().unwrap();
        out.push((rule.to_owned(), message.to_owned(), number));
    }
    out
}

/// The rule's name if it is one of BuildKit's (the rest are strata's own
/// warnings).
fn strata_rule(name: &str) -> Option<&str> {
    const RULES: &[&str] = &[
        "StageNameCasing",
        "FromAsCasing",
        "NoEmptyContinuation",
        "ConsistentInstructionCasing",
        "DuplicateStageName",
        "ReservedStageName",
        "JSONArgsRecommended",
        "MaintainerDeprecated",
        "UndefinedArgInFrom",
        "WorkdirRelativePath",
        "UndefinedVar",
        "MultipleInstructionsDisallowed",
        "LegacyKeyValueFormat",
        "InvalidBaseImagePlatform",
        "RedundantTargetPlatform",
        "SecretsUsedInArgOrEnv",
        "InvalidDefaultArgInFrom",
        "FromPlatformFlagConstDisallowed",
        "CopyIgnoredFile",
        "InvalidDefinitionDescription",
        "ExposeProtoCasing",
        "ExposeInvalidFormat",
    ];
    RULES.iter().copied().find(|rule| *rule == name)
}

/// What `strata build --check --format json` reported.
struct Checked {
    code: i32,
    warnings: Vec<Found>,
    /// The error's message and line.
    error: Option<(String, usize)>,
    json: serde_json::Value,
}

fn check(bk: &Bk, context: &Context, args: &[&str]) -> Checked {
    let mut all = vec!["build", "--check", "--format", "json"];
    all.extend_from_slice(args);
    all.push(".");
    let run = bk.store.strata(context.path(), &all);
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}\n{}", run.stdout, run.stderr));
    let warnings = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| {
            // Each carries its rule's description and documentation.
            assert!(!warning["description"].as_str().unwrap().is_empty());
            if warning["rule"] != "InvalidBaseImagePlatform" {
                assert!(
                    warning["url"]
                        .as_str()
                        .unwrap()
                        .starts_with("https://docs.docker.com/go/dockerfile/rule/")
                );
            }
            assert_eq!(warning["file"], "Dockerfile");
            (
                warning["rule"].as_str().unwrap().to_owned(),
                warning["message"].as_str().unwrap().to_owned(),
                warning["line"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let error = json.get("error").map(|error| {
        (
            error["message"].as_str().unwrap().to_owned(),
            error["line"].as_u64().unwrap() as usize,
        )
    });
    Checked {
        code: run.code,
        warnings,
        error,
        json,
    }
}

/// One of BuildKit's cases: the Dockerfile, its build arguments, the
/// warnings of the build and of the check, and the error both end with.
struct Case<'a> {
    dockerfile: &'a str,
    args: &'a [&'a str],
    /// The build's warnings (BuildKit's `Warnings`).
    build: Vec<Found>,
    /// The check's, when they differ (BuildKit's `UnmarshalWarnings`).
    check: Option<Vec<Found>>,
    /// Text the error contains (build and check).
    error: Option<&'a str>,
    /// Text the build's error contains, when only the build fails.
    build_error: Option<&'a str>,
}

impl<'a> Case<'a> {
    fn new(dockerfile: &'a str) -> Self {
        Case {
            dockerfile,
            args: &[],
            build: Vec::new(),
            check: None,
            error: None,
            build_error: None,
        }
    }

    fn warns(mut self, warnings: Vec<Found>) -> Self {
        self.build = warnings;
        self
    }

    fn check_warns(mut self, warnings: Vec<Found>) -> Self {
        self.check = Some(warnings);
        self
    }

    fn args(mut self, args: &'a [&'a str]) -> Self {
        self.args = args;
        self
    }

    fn error(mut self, error: &'a str) -> Self {
        self.error = Some(error);
        self
    }

    fn build_fails(mut self, error: &'a str) -> Self {
        self.build_error = Some(error);
        self
    }

    fn run(self, bk: &Bk) {
        let context = Context::new().dockerfile(self.dockerfile);
        self.run_in(bk, &context);
    }

    fn run_in(self, bk: &Bk, context: &Context) {
        let label = self.dockerfile;
        {
            let run = bk.build(context, self.args);
            match self.error.or(self.build_error) {
                Some(error) => {
                    assert_ne!(run.code, 0, "{label}: the build succeeded\n{}", run.stderr);
                    assert!(run.stderr.contains(error), "{label}: {}", run.stderr);
                }
                None => assert_eq!(run.code, 0, "{label}: {}", run.stderr),
            }
            assert_eq!(
                sorted(build_warnings(&run.stderr)),
                sorted(self.build.clone()),
                "{label}: build\n{}",
                run.stderr
            );
        }
        let checked = check(bk, context, self.args);
        let expected = sorted(self.check.unwrap_or(self.build));
        assert_eq!(
            sorted(checked.warnings.clone()),
            expected,
            "{label}: check {}",
            checked.json
        );
        match (self.error, &checked.error) {
            (Some(error), Some((message, _))) => {
                assert!(message.contains(error), "{label}: {message}")
            }
            (None, None) => {}
            (want, got) => panic!("{label}: error {want:?}, check gave {got:?}"),
        }
        let failed = !expected.is_empty() || checked.error.is_some();
        assert_eq!(checked.code, i32::from(failed), "{label}: {}", checked.json);
    }
}

/// testRuleCheckOption
#[test]
fn the_check_directive_and_build_arg_configure_the_checks() {
    let bk = Bk::new();
    let body = "FROM scratch as base\ncopy Dockerfile .\n";
    let casing = || {
        vec![found(
            "FromAsCasing",
            "'as' and 'FROM' keywords' casing do not match",
            2,
        )]
    };
    for directive in [
        "#check=skip=all",
        "#check=skip=all;error=true",
        "#check=skip=ConsistentInstructionCasing,FromAsCasing",
        "#check=skip=ConsistentInstructionCasing,FromAsCasing;error=true",
    ] {
        Case::new(&format!("{directive}\n{body}")).run(&bk);
    }
    Case::new(&format!("#check=skip=ConsistentInstructionCasing\n{body}"))
        .warns(casing())
        .run(&bk);
    Case::new(&format!(
        "#check=skip=ConsistentInstructionCasing;error=true\n{body}"
    ))
    .warns(casing())
    .error("lint violation found for rules: FromAsCasing")
    .run(&bk);
    // The build argument replaces the directive.
    Case::new(&format!("#check=skip=all\n{body}"))
        .args(&[
            "--build-arg",
            "BUILDKIT_DOCKERFILE_CHECK=skip=ConsistentInstructionCasing;error=true",
        ])
        .warns(casing())
        .error("lint violation found for rules: FromAsCasing")
        .run(&bk);
    Case::new(&format!("#check=error=true\n{body}"))
        .args(&["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"])
        .run(&bk);
}

/// testRuleCheckOption: a value BuildKit cannot parse fails, in its words.
#[test]
fn a_check_directive_that_does_not_parse_fails() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("# check=skip\nFROM scratch\n");
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.starts_with(
            "error: failed to parse check options: invalid check option \"skip\"\n --> Dockerfile:1:1\n"
        ),
        "{stderr}"
    );
    let checked = check(&bk, &context, &[]);
    assert_eq!(checked.code, 1);
    assert_eq!(
        checked.error,
        Some((
            "failed to parse check options: invalid check option \"skip\"".to_owned(),
            1
        ))
    );
}

/// testStageName
#[test]
fn stage_names_are_lowercase_and_as_matches_from() {
    let bk = Bk::new();
    Case::new(
        "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n",
    )
    .warns(vec![
        found("StageNameCasing", "Stage name 'BadStageName' should be lowercase", 4),
        found("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 8),
    ])
    .run(&bk);
    Case::new(
        "\n# warning: 'AS' should match 'from' cmd casing.\n#\nfrom scratch AS base\n\nfrom scratch as base2\n",
    )
    .warns(vec![found(
        "FromAsCasing",
        "'AS' and 'from' keywords' casing do not match",
        4,
    )])
    .run(&bk);
}

/// testNoEmptyContinuation
#[test]
fn an_empty_continuation_line_warns_at_the_instructions_last_line() {
    let bk = Bk::new();
    Case::new(
        "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n",
    )
    .warns(vec![found("NoEmptyContinuation", "Empty continuation line", 6)])
    .run(&bk);
}

/// testConsistentInstructionCasing
#[test]
fn instructions_follow_the_majoritys_casing() {
    let bk = Bk::new();
    let cases = [
        (
            "\n# warning: 'FROM' should be either lowercased or uppercased\n#\nFrom scratch as base\nFROM scratch AS base2\n",
            "Command 'From' should match the case of the command majority (uppercase)",
        ),
        (
            "\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
            "Command 'copy' should match the case of the command majority (uppercase)",
        ),
        (
            "\n# warning: 'frOM' should be either lowercased or uppercased\n#\nfrOM scratch as base\nfrom scratch as base2\n",
            "Command 'frOM' should match the case of the command majority (lowercase)",
        ),
        (
            "\nfrom scratch\n# warning: 'COPY' should match command majority's casing (lowercase)\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
            "Command 'COPY' should match the case of the command majority (lowercase)",
        ),
        (
            "\n# warning: 'from' should match command majority's casing (uppercase)\n#\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n",
            "Command 'from' should match the case of the command majority (uppercase)",
        ),
        (
            "\n# warning: 'FROM' should match command majority's casing (lowercase)\n#\nFROM scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\ncopy Dockerfile /baz\n",
            "Command 'FROM' should match the case of the command majority (lowercase)",
        ),
    ];
    for (dockerfile, message) in cases {
        Case::new(dockerfile)
            .warns(vec![found("ConsistentInstructionCasing", message, 4)])
            .run(&bk);
    }
    Case::new("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n").run(&bk);
    Case::new("\nFROM scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n").run(&bk);
    // A heredoc's body is not instructions.
    Case::new("\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n").run(&bk);
}

/// testDuplicateStageName
#[test]
fn a_stage_name_given_twice_warns_and_builds() {
    let bk = Bk::new();
    Case::new("\nFROM scratch AS b\nFROM scratch AS b\n")
        .warns(vec![found(
            "DuplicateStageName",
            "Duplicate stage name \"b\", stage names should be unique",
            3,
        )])
        .run(&bk);
    Case::new("\nFROM scratch AS b1\nFROM scratch AS b2\n").run(&bk);
}

/// testReservedStageName
#[test]
fn reserved_stage_names_warn() {
    let bk = Bk::new();
    Case::new("\nFROM scratch AS scratch\nFROM scratch AS context\n")
        .warns(vec![
            found(
                "ReservedStageName",
                "Stage name should not use the same name as reserved stage \"scratch\"",
                2,
            ),
            found(
                "ReservedStageName",
                "Stage name should not use the same name as reserved stage \"context\"",
                3,
            ),
        ])
        .run(&bk);
    Case::new("\nFROM scratch\nFROM scratch AS a\n").run(&bk);
}

/// testJSONArgsRecommended
#[test]
fn shell_form_cmd_and_entrypoint_warn_unless_a_shell_is_set() {
    let bk = Bk::new();
    for instruction in ["CMD", "ENTRYPOINT"] {
        let message = format!(
            "JSON arguments recommended for {instruction} to prevent unintended behavior related to OS signals"
        );
        Case::new(&format!("\nFROM scratch\n{instruction} mycommand\n"))
            .warns(vec![found("JSONArgsRecommended", &message, 3)])
            .run(&bk);
        // A SHELL, in the stage or in the stage it is built on, means the
        // shell form is intended.
        Case::new(&format!(
            "\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\n{instruction} mycommand\n"
        ))
        .run(&bk);
        Case::new(&format!(
            "\nFROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\n{instruction} mycommand\n"
        ))
        .run(&bk);
    }
}

/// testMaintainerDeprecated
#[test]
fn maintainer_warns_and_a_check_comment_skips_one_instruction() {
    let bk = Bk::new();
    Case::new("\nFROM scratch\nMAINTAINER me@example.org\n")
        .warns(vec![found(
            "MaintainerDeprecated",
            "Maintainer instruction is deprecated in favor of using label",
            3,
        )])
        .run(&bk);
    Case::new("\nFROM scratch\nLABEL org.opencontainers.image.authors=\"me@example.org\"\n")
        .run(&bk);
    Case::new("\nFROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n").run(&bk);
    Case::new("\nFROM scratch\n# check=skip=JSONArgsRecommended\nENTRYPOINT mycommand\n").run(&bk);
    Case::new("\nFROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n")
        .run(&bk);
}

/// testWarningsBeforeError. strata's error names the instruction in its
/// own words (`unknown instruction: BADCMD` at `Dockerfile:4:1`), where
/// BuildKit prefixes `dockerfile parse error on line 4: `.
#[test]
fn warnings_found_before_an_error_are_reported_with_it() {
    let bk = Bk::new();
    let case = "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n";
    Case::new(case)
        .warns(vec![
            found(
                "StageNameCasing",
                "Stage name 'BadStageName' should be lowercase",
                2,
            ),
            found(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                3,
            ),
        ])
        .error("unknown instruction: BADCMD")
        .run(&bk);
    let checked = check(&bk, &Context::new().dockerfile(case), &[]);
    assert_eq!(
        checked.error,
        Some(("unknown instruction: BADCMD".to_owned(), 4))
    );
}

/// testUndeclaredArg. The platform errors are strata's words (BuildKit's
/// are containerd's): the assertion is on the warning and the failure.
#[test]
fn from_uses_declared_args() {
    let bk = Bk::new();
    for dockerfile in [
        "\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n",
        "\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n",
        "\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n",
        "\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n",
        "\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n",
        "\nARG DEBUG=\"\"\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n",
    ] {
        Case::new(dockerfile).run(&bk);
    }
    Case::new("\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n")
        .warns(vec![found(
            "UndefinedArgInFrom",
            "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)",
            2,
        )])
        .error("invalid platform ``")
        .run(&bk);
    Case::new(
        "\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\nCOPY Dockerfile .\n\t",
    )
    .warns(vec![found(
        "UndefinedArgInFrom",
        "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)",
        4,
    )])
    .error("invalid platform `linux/`")
    .run(&bk);
    Case::new("\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n")
        .warns(vec![found(
            "UndefinedArgInFrom",
            "FROM argument 'version' is not declared",
            3,
        )])
        .run(&bk);
}

/// testWorkdirRelativePath
#[test]
fn the_first_workdir_is_absolute() {
    let bk = Bk::new();
    Case::new("\nFROM scratch\nWORKDIR app/\n")
        .warns(vec![found(
            "WorkdirRelativePath",
            "Relative workdir \"app/\" can have unexpected results if the base image changes",
            3,
        )])
        .run(&bk);
    Case::new("\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n").run(&bk);
    Case::new("\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n").run(&bk);
}

/// testUnmatchedVars. The first case is issue 15's: an ARG declared
/// without a value is defined (empty), not undefined.
#[test]
fn undefined_variables_warn_with_a_suggestion() {
    let bk = Bk::new();
    Case::new("\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n").run(&bk);
    Case::new("\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n").run(&bk);
    Case::new("\nFROM alpine\nRUN echo $PATH\n").run(&bk);
    Case::new("\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n")
        .warns(vec![found(
            "UndefinedVar",
            "Usage of undefined variable '$foo'",
            3,
        )])
        .run(&bk);
    Case::new("\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n\t")
        .warns(vec![found(
            "UndefinedVar",
            "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)",
            6,
        )])
        .run(&bk);
    Case::new("\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n\t\t")
        .warns(vec![found(
            "UndefinedVar",
            "Usage of undefined variable '$PAHT' (did you mean $PATH?)",
            3,
        )])
        .run(&bk);
}

/// testMultipleInstructionsDisallowed
#[test]
fn cmd_entrypoint_and_healthcheck_once_per_stage() {
    let bk = Bk::new();
    let warning = |instruction: &str, line| {
        found(
            "MultipleInstructionsDisallowed",
            &format!(
                "Multiple {instruction} instructions should not be used in the same stage because only the last one will be used"
            ),
            line,
        )
    };
    Case::new("\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n")
        .warns(vec![warning("ENTRYPOINT", 3), warning("CMD", 5), warning("HEALTHCHECK", 7)])
        .run(&bk);
    Case::new("\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nCMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nCOPY <<EOF /a.txt\nHello, World!\nEOF\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n")
        .warns(vec![warning("ENTRYPOINT", 3), warning("CMD", 4), warning("HEALTHCHECK", 5)])
        .run(&bk);
    Case::new("\nFROM scratch AS a\nENTRYPOINT [\"/myapp\"]\nCMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\n\nFROM a AS b\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n")
        .run(&bk);
}

/// testLegacyKeyValueFormat
#[test]
fn env_and_label_use_key_equals_value() {
    let bk = Bk::new();
    let legacy = || {
        vec![
            found(
                "LegacyKeyValueFormat",
                "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
                3,
            ),
            found(
                "LegacyKeyValueFormat",
                "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format",
                4,
            ),
        ]
    };
    Case::new("\nFROM scratch\nENV testkey value\nLABEL key value\n")
        .warns(legacy())
        .run(&bk);
    Case::new("\nFROM scratch\nENV testkey=value\nLABEL key=value\n").run(&bk);
    // In a stage the target does not need, only the check sees them.
    let moved = legacy()
        .into_iter()
        .map(|(rule, message, line)| (rule, message, line + 2))
        .collect();
    Case::new(
        "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n",
    )
    .check_warns(moved)
    .run(&bk);
    Case::new("\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n# check=skip=LegacyKeyValueFormat\nLABEL key value\n")
        .run(&bk);
}

/// testAllTargetUnmarshal
#[test]
fn a_check_covers_every_stage() {
    let bk = Bk::new();
    Case::new("\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n")
        .warns(vec![found(
            "UndefinedVar",
            "Usage of undefined variable '$bar'",
            6,
        )])
        .check_warns(vec![
            found("UndefinedVar", "Usage of undefined variable '$foo'", 3),
            found("UndefinedVar", "Usage of undefined variable '$bar'", 6),
        ])
        .run(&bk);
}

/// testRedundantTargetPlatform
#[test]
fn from_platform_targetplatform_is_redundant() {
    let bk = Bk::new();
    for variable in ["$TARGETPLATFORM", "${TARGETPLATFORM}"] {
        Case::new(&format!("\nFROM --platform={variable} scratch\n"))
            .warns(vec![found(
                "RedundantTargetPlatform",
                &format!(
                    "Setting platform to predefined {variable} in FROM is redundant as this is the default behavior"
                ),
                2,
            )])
            .run(&bk);
    }
    Case::new("\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n")
        .run(&bk);
}

/// testSecretsUsedInArgOrEnv
#[test]
fn secret_names_in_arg_and_env_warn() {
    let bk = Bk::new();
    let secret = |instruction: &str, key: &str, line| {
        found(
            "SecretsUsedInArgOrEnv",
            &format!(
                "Do not use ARG or ENV instructions for sensitive data ({instruction} \"{key}\")"
            ),
            line,
        )
    };
    Case::new("# check=skip=InvalidDefinitionDescription\n\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\nENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n# check=skip=SecretsUsedInArgOrEnv // allow secret in arg\nARG password\n# check=skip=all // is local to only this instruction\nENV alternate_password=bar\n# check=skip=all // is local to only this instruction\nARG alternate_password\n")
        .warns(vec![
            secret("ARG", "SECRET_PASSPHRASE", 4),
            secret("ENV", "SUPER_Secret", 5),
            secret("ENV", "password", 6),
            secret("ENV", "secret", 6),
            secret("ARG", "auth", 7),
            secret("ARG", "super_duper_secret_token", 7),
            secret("ENV", "apikey", 8),
            secret("ENV", "git_key", 9),
        ])
        .run(&bk);
}

/// testInvalidDefaultArgInFrom
#[test]
fn global_arg_defaults_name_an_image() {
    let bk = Bk::new();
    bk.store.ok(
        bk.store.dir.path(),
        &["tag", "busybox", "busybox:stable-musl"],
    );
    let invalid = |base: &str| {
        vec![found(
            "InvalidDefaultArgInFrom",
            &format!("Default value for ARG {base} results in empty or invalid base image name"),
            3,
        )]
    };
    Case::new("\nARG VERSION\nFROM busybox:$VERSION\n")
        .args(&["--build-arg", "VERSION=latest"])
        .warns(invalid("busybox:$VERSION"))
        .run(&bk);
    Case::new("\nARG IMAGE\nFROM $IMAGE\n")
        .args(&["--build-arg", "IMAGE=busybox:latest"])
        .warns(invalid("$IMAGE"))
        .run(&bk);
    Case::new("\nARG SFX=\"box:\"\nFROM busy${SFX}\n")
        .args(&["--build-arg", "SFX=box:latest"])
        .warns(invalid("busy${SFX}"))
        .run(&bk);
    Case::new("\nARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n")
        .args(&["--build-arg", "VERSION=latest"])
        .run(&bk);
    Case::new("\nARG BUSYBOX_VARIANT=\"\"\nFROM busybox:stable${BUSYBOX_VARIANT}\n")
        .args(&["--build-arg", "BUSYBOX_VARIANT=-musl"])
        .run(&bk);
    Case::new("\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t")
        .args(&["--build-arg", "BUSYBOX_VARIANT=-musl"])
        .run(&bk);
}

/// testFromPlatformFlagConstDisallowed
#[test]
fn from_platform_is_not_a_constant() {
    let bk = Bk::new();
    Case::new("\nFROM --platform=linux/amd64 scratch\n")
        .warns(vec![found(
            "FromPlatformFlagConstDisallowed",
            "FROM --platform flag should not use constant value \"linux/amd64\"",
            2,
        )])
        .run(&bk);
    // A stage named for its platform may pin it.
    Case::new("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n").run(&bk);
    Case::new("\nFROM --platform=linux/amd64 scratch AS linux\n").run(&bk);
}

/// testExposeProtoCasing
#[test]
fn expose_protocols_are_lowercase() {
    let bk = Bk::new();
    Case::new("\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n")
        .warns(vec![
            found(
                "ExposeProtoCasing",
                "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
                3,
            ),
            found(
                "ExposeProtoCasing",
                "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase",
                3,
            ),
        ])
        .run(&bk);
}

/// testExposeInvalidFormat. Issue 15: `EXPOSE 5000:5000` failed the build
/// instead of warning.
#[test]
fn expose_with_an_address_or_host_port_warns_and_builds() {
    let bk = Bk::new();
    let invalid = |port: &str| {
        found(
            "ExposeInvalidFormat",
            &format!(
                "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
            ),
            3,
        )
    };
    Case::new("\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n")
        .warns(vec![
            invalid("127.0.0.1:80:80"),
            invalid("[::1]:8080:8080"),
            invalid("5000:5000"),
        ])
        .run(&bk);
}

/// testDefinitionDescription (an experimental rule: on only when asked).
#[test]
fn description_comments_name_what_they_describe() {
    let bk = Bk::new();
    Case::new("# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\nARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n# comment for something other than ARG or FROM\nCOPY Dockerfile .\n")
        .run(&bk);
    let described = |instruction: &str, name: &str, line| {
        found(
            "InvalidDefinitionDescription",
            &format!(
                "Comment for {instruction} should follow the format: `# {name} <description>`"
            ),
            line,
        )
    };
    Case::new("# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n")
        .warns(vec![
            described("ARG", "foo", 3),
            described("FROM", "base", 5),
            described("ARG", "version", 7),
            described("ARG", "<arg_key>", 9),
        ])
        .run(&bk);
    // Off by default.
    Case::new("# bar this is the bar\nARG foo=bar\nFROM scratch\n").run(&bk);
}

/// buildx's `--check` output for people: the summary line (its words),
/// then each warning with its place, caret and documentation; exit 1.
#[test]
fn check_prints_a_summary_and_exits_as_buildx() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM scratch as base\nCOPY Dockerfile .\n");
    let run = bk.store.strata(context.path(), &["build", "--check", "."]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Check complete, 1 warning has been found!\n\nwarning: FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n --> Dockerfile:1:1\n  |\n1 | FROM scratch as base\n  | ^^^^^^^^^^^^^^^^^^^^\n\nhint: The 'as' keyword should match the case of the 'from' keyword (https://docs.docker.com/go/dockerfile/rule/from-as-casing/)\n"
    );
    assert_eq!(run.stderr, "");
    let two = Context::new().dockerfile("FROM scratch as base\ncopy Dockerfile .\n");
    let run = bk.store.strata(two.path(), &["build", "--check", "."]);
    assert!(
        run.stdout
            .starts_with("Check complete, 2 warnings have been found!\n"),
        "{}",
        run.stdout
    );
    let clean = Context::new().dockerfile("FROM scratch\nCOPY Dockerfile .\n");
    let run = bk.store.strata(clean.path(), &["build", "--check", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Check complete, no warnings found.\n");
    // Nothing was built: no image.
    let images = bk.store.ok(bk.store.dir.path(), &["images", "-q"]);
    assert_eq!(images.lines().count(), 1, "{images}");
    // The JSON form, exactly.
    let run = bk.store.strata(
        context.path(),
        &["build", "--check", "--format", "json", "."],
    );
    assert_eq!(
        run.stdout,
        "{\"warnings\":[{\"rule\":\"FromAsCasing\",\"description\":\"The 'as' keyword should match the case of the 'from' keyword\",\"url\":\"https://docs.docker.com/go/dockerfile/rule/from-as-casing/\",\"message\":\"'as' and 'FROM' keywords' casing do not match\",\"file\":\"Dockerfile\",\"line\":1,\"column\":1}]}\n"
    );
    // `--format` needs --dry-run or --check; dot is a plan's.
    let run = bk
        .store
        .strata(context.path(), &["build", "--format", "json", "."]);
    assert_eq!(run.stderr, "error: --format needs --dry-run or --check\n");
    let run = bk.store.strata(
        context.path(),
        &["build", "--check", "--format", "dot", "."],
    );
    assert_eq!(run.stderr, "error: --check prints text or json, not dot\n");
}

/// testCopyIgnoredFiles. The build's error, when the file is excluded, is
/// strata's words (BuildKit's: `failed to calculate checksum of ref ...
/// "/Dockerfile": not found`).
#[test]
fn copying_a_file_dockerignore_excludes_warns() {
    let bk = Bk::new();
    let ignored = |context: &str, instruction: &str, line| {
        found(
            "CopyIgnoredFile",
            &format!(
                "Attempting to {instruction} file \"{context}\" that is excluded by .dockerignore"
            ),
            line,
        )
    };
    let dockerfile = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
    let context = Context::new()
        .dockerfile(dockerfile)
        .file(".dockerignore", "\nDockerfile\n");
    Case::new(dockerfile)
        .warns(vec![
            ignored("Dockerfile", "Copy", 3),
            ignored("Dockerfile", "Add", 4),
        ])
        .build_fails("`Dockerfile`: not found in the build context (or excluded by .dockerignore)")
        .run_in(&bk, &context);
    let skipped =
        "# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
    let context = Context::new()
        .dockerfile(skipped)
        .file(".dockerignore", "\nDockerfile\n");
    Case::new(skipped)
        .build_fails("`Dockerfile`: not found in the build context")
        .run_in(&bk, &context);
    // A stage's own files (`--from`) are not the context's.
    let from = "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n";
    let context = Context::new()
        .dockerfile(from)
        .file(".dockerignore", "\nfoobar\n");
    Case::new(from).run_in(&bk, &context);
    // An exception (`!`) turns the check off: what it lets back in cannot
    // be told from a name.
    for dockerfile in [
        "\nFROM scratch\nCOPY ./Dockerfile .\n",
        "\nFROM scratch\nCOPY . .\n\t",
    ] {
        let context = Context::new()
            .dockerfile(dockerfile)
            .file(".dockerignore", "\n**\n!Dockerfile\n");
        Case::new(dockerfile).run_in(&bk, &context);
    }
}

/// testCopyIgnoredFileContextRoot
#[test]
fn copying_the_context_root_warns_only_when_everything_is_excluded() {
    let bk = Bk::new();
    let dockerfile = "\nFROM scratch\nCOPY . .\n";
    let dotfiles = Context::new()
        .dockerfile(dockerfile)
        .file(".dockerignore", "\n.*\n");
    Case::new(dockerfile).run_in(&bk, &dotfiles);
    let everything = Context::new()
        .dockerfile(dockerfile)
        .file(".dockerignore", "\n*\n");
    Case::new(dockerfile)
        .warns(vec![found(
            "CopyIgnoredFile",
            "Attempting to Copy file \".\" that is excluded by .dockerignore",
            3,
        )])
        .run_in(&bk, &everything);
}

/// testBaseImagePlatformMismatch. BuildKit pushes a scratch image built
/// for the other architecture to a registry; here it is imported with that
/// platform, which is what the check reads: the base image's config.
#[test]
fn a_base_image_of_another_platform_warns() {
    let bk = Bk::new();
    let host = if cfg!(target_arch = "aarch64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let other = if host == "linux/arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::write(rootfs.path().join("foo"), "test").unwrap();
    bk.store.ok(
        bk.store.dir.path(),
        &[
            "import",
            "--platform",
            other,
            rootfs.path().to_str().unwrap(),
            "foreign:latest",
        ],
    );
    Case::new("\nFROM foreign:latest\nENV foo=bar\n\t")
        .warns(vec![found(
            "InvalidBaseImagePlatform",
            &format!(
                "Base image foreign:latest was pulled with platform \"{other}\", expected \"{host}\" for current build"
            ),
            2,
        )])
        .run(&bk);
    // The platform asked for is the image's: nothing to say.
    Case::new("\nFROM busybox\nENV foo=bar\n").run(&bk);
}

/// Which words BuildKit checks for UndefinedVar (those its instructions'
/// `Expand` and `ExpandRaw` take, as NOTES of the corpus found): not
/// EXPOSE's (`convert_expose.go` expands them without the check) nor
/// `--exclude`'s, but a COPY heredoc's body, as COPY's sources.
#[test]
fn undefined_variables_are_checked_where_buildkit_checks_them() {
    let bk = Bk::new();
    Case::new(
        "FROM scratch\nEXPOSE ${PORT}\nCOPY --exclude=$NOPE <<EOF /a\n$UNDEFINED\nEOF\nCOPY <<'EOF' /b\n$QUOTED\nEOF\n",
    )
    .warns(vec![found(
        "UndefinedVar",
        "Usage of undefined variable '$UNDEFINED'",
        3,
    )])
    .run(&bk);
}
