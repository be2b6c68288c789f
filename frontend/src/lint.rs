//! BuildKit's Dockerfile checks (`frontend/dockerfile/linter`).
//!
//! One table, [`RULES`], holds every rule BuildKit has, with its name,
//! description and documentation URL; the functions below it format each
//! rule's message in BuildKit's words. The rules fire where BuildKit fires
//! them, which decides the line they report:
//!
//! | where | rules |
//! | --- | --- |
//! | [`crate::parser`] | NoEmptyContinuation (at the instruction's last line, as BuildKit counts) |
//! | [`crate::instructions`] | StageNameCasing, FromAsCasing, MaintainerDeprecated |
//! | [`Linter`], node by node | ConsistentInstructionCasing, DuplicateStageName, ReservedStageName, InvalidDefinitionDescription |
//! | [`crate::graph`], every FROM | UndefinedArgInFrom, InvalidDefaultArgInFrom, RedundantTargetPlatform, FromPlatformFlagConstDisallowed |
//! | [`crate::graph`], each stage lowered | UndefinedVar, JSONArgsRecommended, MultipleInstructionsDisallowed, LegacyKeyValueFormat, WorkdirRelativePath, SecretsUsedInArgOrEnv, ExposeProtoCasing, ExposeInvalidFormat |
//!
//! A build lowers only the stages its target needs, so the last group fires
//! only there, as in BuildKit; a check (`strata build --check`, BuildKit's
//! lint subrequest) lowers every stage.
//!
//! What runs is configured as BuildKit does: the `# check=` parser directive
//! or, replacing it, the `BUILDKIT_DOCKERFILE_CHECK` build argument
//! (`skip=A,B`, `skip=all`, `experimental=A`, `error=true`), and a
//! `# check=` comment right above an instruction adds to that for the
//! warnings of that instruction. [`finish`] applies it to the warnings
//! found.

use std::collections::BTreeSet;

use crate::ast::{Args, Node};
use crate::error::{Error, ErrorKind, Warning};
use crate::span::Span;

/// One of BuildKit's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The name, as `# check=skip=` takes it.
    pub name: &'static str,
    /// BuildKit's one-line description.
    pub description: &'static str,
    /// The documentation page (empty for InvalidBaseImagePlatform, which
    /// BuildKit gives none).
    pub url: &'static str,
    /// Runs only when `experimental=` names it (or `experimental=all`).
    pub experimental: bool,
}

const fn rule(name: &'static str, description: &'static str, url: &'static str) -> Rule {
    Rule {
        name,
        description,
        url,
        experimental: false,
    }
}

/// Every rule BuildKit's linter has (`linter/ruleset.go`), in its order.
pub const RULES: &[Rule] = &[
    rule(
        "StageNameCasing",
        "Stage names should be lowercase",
        "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
    ),
    rule(
        "FromAsCasing",
        "The 'as' keyword should match the case of the 'from' keyword",
        "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
    ),
    rule(
        "NoEmptyContinuation",
        "Empty continuation lines will become errors in a future release",
        "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
    ),
    rule(
        "ConsistentInstructionCasing",
        "All commands within the Dockerfile should use the same casing (either upper or lower)",
        "https://docs.docker.com/go/dockerfile/rule/consistent-instruction-casing/",
    ),
    rule(
        "DuplicateStageName",
        "Stage names should be unique",
        "https://docs.docker.com/go/dockerfile/rule/duplicate-stage-name/",
    ),
    rule(
        "ReservedStageName",
        "Reserved words should not be used as stage names",
        "https://docs.docker.com/go/dockerfile/rule/reserved-stage-name/",
    ),
    rule(
        "JSONArgsRecommended",
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
        "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
    ),
    rule(
        "MaintainerDeprecated",
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/",
    ),
    rule(
        "UndefinedArgInFrom",
        "FROM command must use declared ARGs",
        "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/",
    ),
    rule(
        "WorkdirRelativePath",
        "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
        "https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/",
    ),
    rule(
        "UndefinedVar",
        "Variables should be defined before their use",
        "https://docs.docker.com/go/dockerfile/rule/undefined-var/",
    ),
    rule(
        "MultipleInstructionsDisallowed",
        "Multiple instructions of the same type should not be used in the same stage",
        "https://docs.docker.com/go/dockerfile/rule/multiple-instructions-disallowed/",
    ),
    rule(
        "LegacyKeyValueFormat",
        "Legacy key/value format with whitespace separator should not be used",
        "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/",
    ),
    rule(
        "InvalidBaseImagePlatform",
        "Base image platform does not match expected target platform",
        "",
    ),
    rule(
        "RedundantTargetPlatform",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
        "https://docs.docker.com/go/dockerfile/rule/redundant-target-platform/",
    ),
    rule(
        "SecretsUsedInArgOrEnv",
        "Sensitive data should not be used in the ARG or ENV commands",
        "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/",
    ),
    rule(
        "InvalidDefaultArgInFrom",
        "Default value for global ARG results in an empty or invalid base image name",
        "https://docs.docker.com/go/dockerfile/rule/invalid-default-arg-in-from/",
    ),
    rule(
        "FromPlatformFlagConstDisallowed",
        "FROM --platform flag should not use a constant value",
        "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/",
    ),
    rule(
        "CopyIgnoredFile",
        "Attempting to Copy file that is excluded by .dockerignore",
        "https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/",
    ),
    Rule {
        name: "InvalidDefinitionDescription",
        description: "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
        url: "https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/",
        experimental: true,
    },
    rule(
        "ExposeProtoCasing",
        "Protocol in EXPOSE instruction should be lowercase",
        "https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/",
    ),
    rule(
        "ExposeInvalidFormat",
        "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
        "https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/",
    ),
];

/// The rule named `name`, if BuildKit has one by that name.
pub fn find(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.name == name)
}

// The messages, in BuildKit's words (its `Format` functions).

pub(crate) fn stage_name_casing(stage: &str) -> String {
    format!("Stage name '{stage}' should be lowercase")
}

pub(crate) fn from_as_casing(from: &str, keyword: &str) -> String {
    format!("'{keyword}' and '{from}' keywords' casing do not match")
}

pub(crate) fn no_empty_continuation() -> String {
    "Empty continuation line".to_owned()
}

fn consistent_instruction_casing(command: &str, casing: &str) -> String {
    format!("Command '{command}' should match the case of the command majority ({casing})")
}

fn duplicate_stage_name(stage: &str) -> String {
    format!(
        "Duplicate stage name {}, stage names should be unique",
        quote(stage)
    )
}

fn reserved_stage_name(stage: &str) -> String {
    format!(
        "Stage name should not use the same name as reserved stage {}",
        quote(stage)
    )
}

pub(crate) fn json_args_recommended(instruction: &str) -> String {
    format!(
        "JSON arguments recommended for {instruction} to prevent unintended behavior related to OS signals"
    )
}

pub(crate) fn maintainer_deprecated() -> String {
    "Maintainer instruction is deprecated in favor of using label".to_owned()
}

pub(crate) fn undefined_arg_in_from(arg: &str, suggestion: Option<&str>) -> String {
    let mut out = format!("FROM argument '{arg}' is not declared");
    if let Some(near) = suggestion {
        out.push_str(&format!(" (did you mean {near}?)"));
    }
    out
}

pub(crate) fn workdir_relative_path(workdir: &str) -> String {
    format!(
        "Relative workdir {} can have unexpected results if the base image changes",
        quote(workdir)
    )
}

pub(crate) fn undefined_var(name: &str, suggestion: Option<&str>) -> String {
    let mut out = format!("Usage of undefined variable '${name}'");
    if let Some(near) = suggestion {
        out.push_str(&format!(" (did you mean ${near}?)"));
    }
    out
}

pub(crate) fn multiple_instructions_disallowed(instruction: &str) -> String {
    format!(
        "Multiple {instruction} instructions should not be used in the same stage because only the last one will be used"
    )
}

pub(crate) fn legacy_key_value_format(instruction: &str) -> String {
    format!(
        "\"{instruction} key=value\" should be used instead of legacy \"{instruction} key value\" format"
    )
}

pub(crate) fn invalid_base_image_platform(image: &str, expected: &str, actual: &str) -> String {
    format!(
        "Base image {image} was pulled with platform {}, expected {} for current build",
        quote(actual),
        quote(expected)
    )
}

pub(crate) fn redundant_target_platform(platform: &str) -> String {
    format!(
        "Setting platform to predefined {platform} in FROM is redundant as this is the default behavior"
    )
}

pub(crate) fn secrets_used_in_arg_or_env(instruction: &str, key: &str) -> String {
    format!(
        "Do not use ARG or ENV instructions for sensitive data ({instruction} {})",
        quote(key)
    )
}

pub(crate) fn invalid_default_arg_in_from(base: &str) -> String {
    format!("Default value for ARG {base} results in empty or invalid base image name")
}

pub(crate) fn from_platform_flag_const_disallowed(platform: &str) -> String {
    format!(
        "FROM --platform flag should not use constant value {}",
        quote(platform)
    )
}

pub(crate) fn copy_ignored_file(instruction: &str, file: &str) -> String {
    format!(
        "Attempting to {instruction} file {} that is excluded by .dockerignore",
        quote(file)
    )
}

fn invalid_definition_description(instruction: &str, name: &str) -> String {
    format!("Comment for {instruction} should follow the format: `# {name} <description>`")
}

pub(crate) fn expose_proto_casing(port: &str) -> String {
    format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase")
}

pub(crate) fn expose_invalid_format(port: &str) -> String {
    format!(
        "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
    )
}

/// Go's `%q` for the strings these messages quote: `"` and `\` escaped,
/// control characters as `\n`, `\t` or `\x..`.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ch if ch.is_control() => out.push_str(&format!("\\x{:02x}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// A warning of `rule` at `span`.
pub(crate) fn warning(rule: &'static str, message: String, span: Span) -> Warning {
    Warning {
        rule,
        message,
        span: Some(span),
    }
}

/// What runs: BuildKit's `linter.Config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=A,B`.
    pub skip: BTreeSet<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// `experimental=A,B`.
    pub experimental: BTreeSet<String>,
    /// `error=true`: a warning fails the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parse `skip=...;experimental=...;error=...` as BuildKit's
    /// `ParseLintOptions` does; the error is its message.
    pub fn parse(text: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        let text = text.trim();
        if text.is_empty() {
            return Ok(config);
        }
        // BuildKit splits into at most three parts: a fourth `;` stays in
        // the third part's value.
        for part in text.splitn(3, ';') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("invalid check option {}", quote(part)));
            };
            let value = value.trim();
            let names = || {
                value
                    .split(',')
                    .map(|name| name.trim().to_owned())
                    .collect::<BTreeSet<_>>()
            };
            match key.trim() {
                "skip" if value == "all" => config.skip_all = true,
                "skip" => config.skip = names(),
                "experimental" if value == "all" => config.experimental_all = true,
                "experimental" => config.experimental = names(),
                "error" => {
                    config.error = parse_bool(value).ok_or_else(|| {
                        format!(
                            "failed to parse check option {}: strconv.ParseBool: parsing {}: invalid syntax",
                            quote(part),
                            quote(value)
                        )
                    })?
                }
                other => return Err(format!("invalid check option {}", quote(other))),
            }
        }
        Ok(config)
    }

    /// This configuration with `other`'s skips and experiments added (a
    /// `# check=` comment above an instruction); `error` stays.
    fn merged(&self, other: &CheckConfig) -> CheckConfig {
        let mut merged = self.clone();
        merged.skip_all |= other.skip_all;
        merged.experimental_all |= other.experimental_all;
        merged.skip.extend(other.skip.iter().cloned());
        merged
            .experimental
            .extend(other.experimental.iter().cloned());
        merged
    }

    /// Whether `rule` runs. A name that is not one of [`RULES`] (strata's
    /// own warnings) always does: it is not a check.
    pub fn enabled(&self, rule: &str) -> bool {
        match find(rule) {
            None => true,
            Some(rule) if rule.experimental => {
                self.experimental_all || self.experimental.contains(rule.name)
            }
            Some(rule) => !self.skip_all && !self.skip.contains(rule.name),
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The build argument that replaces the `# check=` directive.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// The configuration of a build: the `BUILDKIT_DOCKERFILE_CHECK` build
/// argument if given (BuildKit's dockerui reads it instead of the
/// directive), else the `# check=` directive, else the default.
pub(crate) fn config(
    directive: Option<(&str, Span)>,
    build_arg: Option<&str>,
) -> Result<CheckConfig, Error> {
    if let Some(value) = build_arg {
        return CheckConfig::parse(value).map_err(|message| {
            Error::unplaced(ErrorKind::InvalidCheckOptions(message))
                .with_hint(format!("fix or remove --build-arg {CHECK_BUILD_ARG}"))
        });
    }
    match directive {
        Some((value, span)) => CheckConfig::parse(value)
            .map_err(|message| Error::new(ErrorKind::InvalidCheckOptions(message), span)),
        None => Ok(CheckConfig::default()),
    }
}

/// The rules that look at the whole file's syntax, fed one node at a time
/// (so that a caller streaming nodes never holds the tree).
#[derive(Debug, Default)]
pub(crate) struct Linter {
    /// How many instructions have their keyword written all lower case,
    /// all upper case, and neither (meta ARGs excluded: BuildKit counts
    /// stage instructions only), for ConsistentInstructionCasing. Counts,
    /// not the list of keywords and places: that list would be held for
    /// every instruction until the file ends, beside the graph being
    /// lowered; [`Linter::finish`] reads the text again for the places,
    /// in the files (few) where some instruction is reported.
    casings: [usize; 3],
    stage_names: BTreeSet<String>,
    in_stage: bool,
    warnings: Vec<Warning>,
    /// Instructions with a `# check=` comment above them.
    overrides: Vec<(Span, CheckConfig)>,
}

impl Linter {
    /// Look at one instruction.
    pub(crate) fn node(&mut self, node: &Node) {
        if let Some(config) = comment_config(&node.comments) {
            self.overrides.push((node.span, config));
        }
        let name = node.name();
        if name == "from" {
            self.in_stage = true;
        }
        if self.in_stage {
            self.casings[casing(&node.keyword.value) as usize] += 1;
        }
        match name.as_str() {
            "from" => {
                let words = match &node.args {
                    Args::Words(words) => words.as_slice(),
                    _ => &[],
                };
                if let [_, keyword, stage] = words
                    && keyword.value.eq_ignore_ascii_case("as")
                {
                    let stage = stage.value.to_ascii_lowercase();
                    if matches!(stage.as_str(), "context" | "scratch") {
                        self.warnings.push(warning(
                            "ReservedStageName",
                            reserved_stage_name(&stage),
                            node.span,
                        ));
                    }
                    if !self.stage_names.insert(stage.clone()) {
                        self.warnings.push(warning(
                            "DuplicateStageName",
                            duplicate_stage_name(&stage),
                            node.span,
                        ));
                    }
                    self.definition_description(node, "FROM", &[stage]);
                }
            }
            "arg" => {
                let names: Vec<String> = match &node.args {
                    Args::Words(words) => words
                        .iter()
                        .map(|word| {
                            word.value
                                .split_once('=')
                                .map_or(word.value.as_str(), |(name, _)| name)
                                .to_owned()
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                self.definition_description(node, "ARG", &names);
            }
            _ => {}
        }
    }

    /// InvalidDefinitionDescription: the last comment above a named FROM
    /// or an ARG starts with a name it defines.
    fn definition_description(&mut self, node: &Node, instruction: &str, names: &[String]) {
        let (Some(comment), Some(first)) = (node.comments.last(), names.first()) else {
            return;
        };
        let word = comment.split(' ').next().unwrap_or_default();
        if names.iter().any(|name| name == word) {
            return;
        }
        let example = if names.len() > 1 {
            "<arg_key>"
        } else {
            first.as_str()
        };
        self.warnings.push(warning(
            "InvalidDefinitionDescription",
            invalid_definition_description(instruction, example),
            node.span,
        ));
    }

    /// Forget the warnings found (the `# check=` comments stay).
    pub(crate) fn discard_warnings(&mut self) {
        self.warnings.clear();
        self.casings = [0; 3];
    }

    /// The warnings of the whole file, and the `# check=` comments;
    /// `text` is the file the nodes were read from.
    pub(crate) fn finish(mut self, text: &str) -> (Vec<Warning>, Vec<(Span, CheckConfig)>) {
        // ConsistentInstructionCasing: the majority of the instructions
        // written all lower or all upper case sets the casing (a tie is
        // upper case), and each instruction not in it is reported.
        let [lower, upper, mixed] = self.casings;
        let majority = if lower > upper {
            Casing::Lower
        } else {
            Casing::Upper
        };
        let reported = mixed
            + if majority == Casing::Lower {
                upper
            } else {
                lower
            };
        if reported > 0 {
            // Read again for the places (the nodes were read from this
            // text, so it parses as far as they went).
            let mut in_stage = false;
            if let Ok(mut parser) = crate::parser::Parser::new(text) {
                while let Ok(Some(node)) = parser.next_node() {
                    in_stage |= node.name() == "from";
                    let keyword = &node.keyword.value;
                    let (wanted, written) = match majority {
                        Casing::Lower => ("lowercase", keyword.to_ascii_lowercase()),
                        _ => ("uppercase", keyword.to_ascii_uppercase()),
                    };
                    if !in_stage || *keyword == written {
                        continue;
                    }
                    self.warnings.push(warning(
                        "ConsistentInstructionCasing",
                        consistent_instruction_casing(keyword, wanted),
                        node.span,
                    ));
                }
            }
        }
        (self.warnings, self.overrides)
    }
}

/// How an instruction's keyword is written, for ConsistentInstructionCasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Casing {
    Lower = 0,
    Upper = 1,
    Mixed = 2,
}

fn casing(keyword: &str) -> Casing {
    if keyword == keyword.to_ascii_lowercase() {
        Casing::Lower
    } else if keyword == keyword.to_ascii_uppercase() {
        Casing::Upper
    } else {
        Casing::Mixed
    }
}

/// The first `# check=` comment of an instruction's comments, if it parses
/// (BuildKit ignores one that does not). Text after a space is a remark:
/// `# check=skip=all // only here`.
fn comment_config(comments: &[String]) -> Option<CheckConfig> {
    for comment in comments {
        let line = format!("#{comment}");
        let Some((name, value)) = crate::parser::directive_parts(&line) else {
            continue;
        };
        if !name.eq_ignore_ascii_case("check") {
            continue;
        }
        let value = value.split(' ').next().unwrap_or_default();
        return CheckConfig::parse(value).ok();
    }
    None
}

/// What the checks remember of a stage while it is lowered (BuildKit keeps
/// these in its `dispatchState`).
#[derive(Debug, Clone, Default)]
pub(crate) struct StageLint {
    /// A SHELL instruction, or the base image's config, set the shell:
    /// JSONArgsRecommended is then not reported.
    pub(crate) shell_set: bool,
    /// An absolute WORKDIR came first: WorkdirRelativePath is reported
    /// for the first WORKDIR only.
    pub(crate) workdir_set: bool,
    /// The base image's config is unknown, its ENV with it: UndefinedVar
    /// is not reported.
    pub(crate) env_unknown: bool,
    /// The last CMD, ENTRYPOINT and HEALTHCHECK of this stage.
    pub(crate) cmd: Option<Span>,
    pub(crate) entrypoint: Option<Span>,
    pub(crate) healthcheck: Option<Span>,
}

impl StageLint {
    /// What a stage built `FROM` this one starts with: the shell, the
    /// WORKDIR and the environment carry over; CMD and the others are
    /// the new stage's own.
    pub(crate) fn child(&self) -> StageLint {
        StageLint {
            shell_set: self.shell_set,
            workdir_set: self.workdir_set,
            env_unknown: self.env_unknown,
            ..StageLint::default()
        }
    }

    /// Record `instruction` (CMD, ENTRYPOINT or HEALTHCHECK) at `span`; the
    /// one before it in the stage, which it overrides, is returned: that
    /// is where MultipleInstructionsDisallowed points.
    pub(crate) fn used_once(&mut self, instruction: &str, span: Span) -> Option<Span> {
        let slot = match instruction {
            "CMD" => &mut self.cmd,
            "ENTRYPOINT" => &mut self.entrypoint,
            _ => &mut self.healthcheck,
        };
        slot.replace(span)
    }
}

/// What a build or a check found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The warnings that run, in Dockerfile order (those without a place
    /// last).
    pub warnings: Vec<Warning>,
    /// Why the Dockerfile was refused, if it was: its first error, or
    /// with `error=true` the rules that fired.
    pub error: Option<Error>,
    /// The graph, when there is no error.
    pub graph: Option<crate::graph::BuildGraph>,
}

/// Apply the configuration to `warnings` and put them in Dockerfile order;
/// with `error=true`, the rules that fired become `error` (unless there is
/// one already).
pub(crate) fn finish(
    mut warnings: Vec<Warning>,
    config: &CheckConfig,
    overrides: &[(Span, CheckConfig)],
    error: &mut Option<Error>,
) -> Vec<Warning> {
    warnings.retain(|warning| {
        let local = warning.span.and_then(|span| {
            overrides
                .iter()
                .find(|(at, _)| at.start <= span.start && span.start <= at.end.max(at.start))
        });
        match local {
            Some((_, extra)) => config.merged(extra).enabled(warning.rule),
            None => config.enabled(warning.rule),
        }
    });
    warnings.sort_by_key(|warning| warning.span.map_or(u32::MAX, |span| span.start));
    if config.error && error.is_none() {
        let mut rules: Vec<&str> = Vec::new();
        for warning in &warnings {
            if find(warning.rule).is_some() && !rules.contains(&warning.rule) {
                rules.push(warning.rule);
            }
        }
        if !rules.is_empty() {
            *error = Some(Error::unplaced(ErrorKind::LintViolation(rules.join(", "))));
        }
    }
    warnings
}

/// BuildKit's `suggest.Search` (case-sensitive): the option nearest to
/// `word` by Levenshtein distance, if fewer than 3 edits away; none when
/// one option is `word` itself.
pub(crate) fn suggest<'a>(
    word: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best = None;
    let mut distance = 3;
    for option in options {
        if option == word {
            return None;
        }
        let d = levenshtein(word, option);
        if d < distance {
            distance = d;
            best = Some(option);
        }
    }
    best
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                previous.min(row[j]).min(row[j + 1]) + 1
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// SecretsUsedInArgOrEnv: a name with one of BuildKit's secret words as a
/// whole `_`-separated part (`API_KEY`, `password`), and none of its
/// allowed words (`PUBLIC_KEY`, `PASSWORD_FILE`). Case-insensitive.
pub(crate) fn is_secret_name(name: &str) -> bool {
    const SECRET: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOWED: &[&str] = &["public", "file", "version"];
    // BuildKit's pattern `(?:_|^)(?:word)(?:_|$)` matches a word at the
    // start, at the end or between underscores: the parts of the name.
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('_').collect();
    let has = |words: &[&str]| parts.iter().any(|part| words.contains(part));
    has(SECRET) && !has(ALLOWED)
}

/// An EXPOSE word split as BuildKit's `splitParts` does: `ip:host:port`,
/// `host:port` or `port`; the IP and host parts are empty when absent.
pub(crate) fn split_port(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [port] => ("", "", port),
        [host, port] => ("", host, port),
        [ip, host, port] => (ip, host, port),
        _ => {
            let port_at = raw.rfind(':').unwrap_or(0);
            let host_at = raw[..port_at].rfind(':').unwrap_or(0);
            (
                &raw[..host_at],
                &raw[host_at + 1..port_at],
                &raw[port_at + 1..],
            )
        }
    }
}

/// The EXPOSE checks of one port word (after expansion): ExposeProtoCasing
/// and ExposeInvalidFormat, each with its message; and the part that is
/// exposed (`80/tcp` of `127.0.0.1:8080:80/tcp`).
pub(crate) fn expose_checks(raw: &str) -> (Vec<(&'static str, String)>, &str) {
    let (ip, host, port) = split_port(raw);
    let mut found = Vec::new();
    let protocol = port.split_once('/').map_or("", |(_, protocol)| protocol);
    if protocol != protocol.to_ascii_lowercase() {
        found.push(("ExposeProtoCasing", expose_proto_casing(raw)));
    }
    if !ip.is_empty() || !host.is_empty() {
        found.push(("ExposeInvalidFormat", expose_invalid_format(raw)));
    }
    (found, port)
}

/// Whether `platform` parses as containerd's `platforms.Parse` would take
/// it, giving its OS and architecture (lower-cased, as it normalises).
pub(crate) fn platform_parts(platform: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = platform.split('/').collect();
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
    };
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|part| valid(part)) {
        return None;
    }
    let os = parts[0].to_ascii_lowercase();
    let arch = parts
        .get(1)
        .map(|arch| arch.to_ascii_lowercase())
        .unwrap_or_default();
    Some((os, arch))
}

/// Whether `reference` parses as an image reference, as
/// `reference.ParseNormalizedNamed` takes it: `[host[:port]/]path[:tag][@digest]`
/// with lower-case path components.
pub(crate) fn is_valid_reference(reference: &str) -> bool {
    if reference.is_empty() || reference.len() > 255 + 128 + 72 {
        return false;
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let Some((algorithm, hex)) = digest.split_once(':') else {
            return false;
        };
        if algorithm.is_empty() || hex.len() < 32 || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return false;
        }
    }
    // A tag follows the last `:` after the last `/`.
    let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(at) => (&rest[..last_slash + at], Some(&rest[last_slash + at + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let first_ok = chars
            .next()
            .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !first_ok
            || tag.len() > 128
            || !chars.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
        {
            return false;
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        if is_host {
            let (host, port) = match first.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (first, None),
            };
            if host.is_empty()
                || !host
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-'))
                || port.is_some_and(|port| {
                    port.is_empty() || !port.chars().all(|ch| ch.is_ascii_digit())
                })
            {
                return false;
            }
            components.remove(0);
        }
    }
    !components.is_empty() && components.iter().all(|component| path_component(component))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|byte| byte == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_once_with_its_url() {
        assert_eq!(RULES.len(), 22);
        for rule in RULES {
            assert_eq!(
                RULES.iter().filter(|other| other.name == rule.name).count(),
                1
            );
            if rule.name != "InvalidBaseImagePlatform" {
                // The URL is the kebab-case name.
                let mut kebab = String::new();
                // (The names are ASCII: a char index is a byte index.)
                for (index, ch) in rule.name.char_indices() {
                    let next_lower = rule.name[index + 1..]
                        .chars()
                        .next()
                        .is_some_and(|next| next.is_ascii_lowercase());
                    let previous_lower = index > 0
                        && rule.name[..index]
                            .chars()
                            .last()
                            .is_some_and(|previous| previous.is_ascii_lowercase());
                    if ch.is_ascii_uppercase() && index > 0 && (previous_lower || next_lower) {
                        kebab.push('-');
                    }
                    kebab.push(ch.to_ascii_lowercase());
                }
                assert_eq!(
                    rule.url,
                    format!("https://docs.docker.com/go/dockerfile/rule/{kebab}/")
                );
            }
        }
    }

    #[test]
    fn check_options() {
        let config = CheckConfig::parse("skip=A, B;error=true").unwrap();
        assert!(config.error && config.skip.contains("A") && config.skip.contains("B"));
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert_eq!(
            CheckConfig::parse("skip").unwrap_err(),
            "invalid check option \"skip\""
        );
        assert_eq!(
            CheckConfig::parse("foo=bar").unwrap_err(),
            "invalid check option \"foo\""
        );
        assert!(CheckConfig::parse("error=maybe").is_err());
        let experimental =
            CheckConfig::parse("skip=all;experimental=InvalidDefinitionDescription").unwrap();
        // Skipping all does not turn off an experimental rule asked for.
        assert!(experimental.enabled("InvalidDefinitionDescription"));
        assert!(!experimental.enabled("FromAsCasing"));
        assert!(!CheckConfig::default().enabled("InvalidDefinitionDescription"));
        // strata's own warnings are not checks.
        assert!(experimental.enabled("UnusedBuildArg"));
    }

    #[test]
    fn secrets() {
        for secret in [
            "SECRET_PASSPHRASE",
            "SUPER_Secret",
            "password",
            "auth",
            "apikey",
            "git_key",
            "super_duper_secret_token",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "sunflower",
            "PUBLIC_KEY",
            "public_token",
            "SECRET_PASSPHRASE_FILE",
            "secret_File",
            "AUTH_MODULE_VERSION",
            "keyboard",
            "MONKEY",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(split_port("127.0.0.1:80:80"), ("127.0.0.1", "80", "80"));
        assert_eq!(split_port("[::1]:8080:8080"), ("[::1]", "8080", "8080"));
        assert_eq!(split_port("5000:5000"), ("", "5000", "5000"));
        assert_eq!(split_port("80/tcp"), ("", "", "80/tcp"));
        let (found, port) = expose_checks("8080/TCP");
        assert_eq!(port, "8080/TCP");
        assert_eq!(found[0].0, "ExposeProtoCasing");
    }

    #[test]
    fn references() {
        for good in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:1.36",
            "localhost:5000/a/b",
            "scratch",
            "busybox:stable-musl",
        ] {
            assert!(is_valid_reference(good), "{good}");
        }
        for bad in ["", "busybox:", "Busybox", "busy box", ":latest", "a//b"] {
            assert!(!is_valid_reference(bad), "{bad}");
        }
    }

    fn rules_and_lines(report: &Report, text: &str) -> Vec<(&'static str, usize)> {
        let index = crate::LineIndex::new(text);
        report
            .warnings
            .iter()
            .map(|warning| (warning.rule, index.line(warning.span.unwrap().start)))
            .collect()
    }

    /// The casings are counted, and the places read again: each
    /// instruction not in the majority's casing is still reported, with
    /// its keyword as written, in order; a meta ARG is neither counted nor
    /// reported, as in BuildKit.
    #[test]
    fn casing_with_several_spellings() {
        let text = "ARG V=1\nfrom scratch\nrun a\nRUN b\nRun c\nrun d\nCMD e\nrun f\n";
        let report = crate::compile_checked(text, &Default::default());
        let casing: Vec<(String, usize)> = report
            .warnings
            .iter()
            .filter(|warning| warning.rule == "ConsistentInstructionCasing")
            .map(|warning| {
                let span = warning.span.unwrap();
                let line = crate::LineIndex::new(text).line(span.start);
                (warning.message.clone(), line)
            })
            .collect();
        assert_eq!(
            casing,
            [
                (consistent_instruction_casing("RUN", "lowercase"), 4),
                (consistent_instruction_casing("Run", "lowercase"), 5),
                (consistent_instruction_casing("CMD", "lowercase"), 7),
            ]
        );
    }

    #[test]
    fn warnings_before_an_error_are_kept() {
        let text = "FROM scratch AS Bad\nMAINTAINER me\nBADCMD\n";
        let report = crate::compile_checked(text, &Default::default());
        assert_eq!(
            rules_and_lines(&report, text),
            [("StageNameCasing", 1), ("MaintainerDeprecated", 2)]
        );
        assert!(matches!(
            report.error.map(|error| error.kind),
            Some(ErrorKind::UnknownInstruction(name)) if name == "BADCMD"
        ));
        assert!(report.graph.is_none());
    }

    #[test]
    fn the_directive_the_build_arg_and_comments_configure() {
        let text = "# check=error=true\nFROM scratch as base\n# check=skip=JSONArgsRecommended\nCMD run\nCMD other\n";
        let report = crate::compile_checked(text, &Default::default());
        // The comment skips one rule for one instruction only.
        assert_eq!(
            rules_and_lines(&report, text),
            [
                ("FromAsCasing", 2),
                ("MultipleInstructionsDisallowed", 4),
                ("JSONArgsRecommended", 5)
            ]
        );
        assert_eq!(
            report.error.unwrap().kind.to_string(),
            "lint violation found for rules: FromAsCasing, MultipleInstructionsDisallowed, JSONArgsRecommended"
        );
        // The build argument replaces the directive.
        let options = crate::graph::Options {
            build_args: [(CHECK_BUILD_ARG.to_owned(), "skip=all".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let report = crate::compile_checked(text, &options);
        assert!(report.warnings.is_empty() && report.error.is_none());
        assert!(report.graph.is_some());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("BULIDPLATFORM", ["BUILDPLATFORM", "TARGETOS"]),
            Some("BUILDPLATFORM")
        );
        assert_eq!(
            suggest("DIR_ASSET", ["DIR_BINARIES", "DIR_ASSETS"]),
            Some("DIR_ASSETS")
        );
        assert_eq!(suggest("version", ["tag"]), None);
        assert_eq!(suggest("PATH", ["PATH"]), None);
    }
}
