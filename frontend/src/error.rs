//! Errors and warnings of the frontend.
//!
//! An [`Error`] is a kind plus the [`Span`] it points at (ruff's
//! `ParseError { error, location }` shape), with an optional hint. The span is
//! attached where the failing word is known, and rendered by
//! [`crate::diagnostic::render`].

use crate::span::Span;

/// A frontend error: what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The source bytes to point at; `None` for errors about the command
    /// line rather than the Dockerfile (an unknown `--target`).
    pub span: Option<Span>,
    /// A suggestion for the user, rendered as `hint: ...`.
    pub hint: Option<String>,
}

impl Error {
    /// An error at `span`, without a hint.
    pub fn new(kind: ErrorKind, span: Span) -> Self {
        Error {
            kind,
            span: Some(span),
            hint: None,
        }
    }

    /// An error that is not about a place in the Dockerfile.
    pub fn unplaced(kind: ErrorKind) -> Self {
        Error {
            kind,
            span: None,
            hint: None,
        }
    }

    /// Add a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every way a Dockerfile can be rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file is not text.
    #[error("the Dockerfile is not valid UTF-8")]
    NotUtf8,
    /// Longer than [`crate::MAX_DOCKERFILE_SIZE`] (BuildKit's limit).
    #[error("the Dockerfile is larger than 16 MiB, the most strata (and BuildKit) reads")]
    TooLarge,
    /// No instruction at all.
    #[error("the Dockerfile has no instructions")]
    NoInstructions,
    /// `# escape=x` with something other than `\` or `` ` ``.
    #[error("invalid escape character `{0}`")]
    InvalidEscape(String),
    /// A parser directive given twice.
    #[error("only one `{0}` parser directive can be used")]
    DuplicateDirective(String),
    /// `CMD ["a", 1]`.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// `ENV a=b c`.
    #[error("syntax error: can't find `=` in `{0}`, it must be of the form name=value")]
    MissingEquals(String),
    /// `ENV PATH`.
    #[error("{instruction} must have two arguments")]
    NeedsTwoArguments {
        /// The instruction, upper-case.
        instruction: &'static str,
    },
    /// A stage's instructions, read a second time to be lowered, are not
    /// those read the first time (a bug: the text is the same).
    #[error("the Dockerfile read differently the second time")]
    Reread,
    /// A heredoc whose terminator line never comes.
    #[error("unterminated heredoc `{0}`")]
    UnterminatedHeredoc(String),
    /// A heredoc delimiter that does not lex.
    #[error("invalid heredoc delimiter: {0}")]
    InvalidHeredoc(String),
    /// `ONBUILD ONBUILD`.
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    NestedOnbuild,
    /// `ONBUILD FROM`, `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    ForbiddenTrigger(String),
    /// An instruction name we do not know.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A flag the instruction does not take.
    #[error("unknown flag `--{flag}` for {instruction}")]
    UnknownFlag {
        /// The instruction, upper-case.
        instruction: String,
        /// The flag name, without dashes.
        flag: String,
    },
    /// A flag given twice where only one is allowed.
    #[error("duplicate flag `--{0}`")]
    DuplicateFlag(String),
    /// `--from` without `=value`.
    #[error("missing a value on flag `--{0}`")]
    FlagMissingValue(String),
    /// A flag value that does not parse.
    #[error("invalid value `{value}` for flag `--{flag}`: {reason}")]
    InvalidFlagValue {
        /// The flag name.
        flag: String,
        /// What was given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// An instruction without the arguments it needs.
    #[error("{instruction} requires {what}")]
    MissingArguments {
        /// The instruction, upper-case.
        instruction: &'static str,
        /// What is missing, e.g. "at least two arguments".
        what: &'static str,
    },
    /// Too many arguments.
    #[error("{instruction} takes {what}")]
    TooManyArguments {
        /// The instruction, upper-case.
        instruction: &'static str,
        /// What it takes.
        what: &'static str,
    },
    /// `FROM a b`.
    #[error("FROM requires either one argument, or three: FROM <source> [AS <name>]")]
    InvalidFrom,
    /// `FROM a AS 1x`.
    #[error(
        "invalid stage name `{0}`: stage names must start with a letter and contain only letters, digits, `_`, `-` and `.`"
    )]
    InvalidStageName(String),
    /// An instruction before the first FROM (other than ARG).
    #[error("{0} comes before the first FROM: only ARG may come before FROM")]
    BeforeFrom(String),
    /// `SHELL echo`.
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// A port that does not parse.
    #[error("invalid port `{0}`")]
    InvalidPort(String),
    /// A duration such as `--interval=5x`.
    #[error("invalid duration `{0}`")]
    InvalidDuration(String),
    /// `HEALTHCHECK FOO`.
    #[error("unknown HEALTHCHECK type `{0}`")]
    UnknownHealthcheckType(String),
    /// `HEALTHCHECK NONE cmd`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    /// Word expansion failed.
    #[error("{0}")]
    Expand(#[from] crate::expand::ExpandError),
    /// A stage name or index that does not exist.
    #[error("stage `{0}` not found")]
    UnknownStage(String),
    /// `--target` naming a stage that does not exist.
    #[error("target stage `{0}` could not be found")]
    UnknownTarget(String),
    /// `COPY --from` a stage defined further down: BuildKit's words.
    #[error(
        "cannot copy from stage \"{from}\", it needs to be defined before current stage \"{current}\""
    )]
    StageNotYetDefined {
        /// The `--from` value.
        from: String,
        /// The stage the COPY is in.
        current: String,
    },
    /// A mount at `/` (no `target`, and the WORKDIR is `/`): BuildKit's
    /// words.
    #[error("invalid mount target \"/\"")]
    MountAtRoot,
    /// `RUN --mount=from=$VAR`: BuildKit's words.
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    MountFromVariable,
    /// A Dockerfile without FROM: BuildKit's words.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// A stage that copies from itself.
    #[error("circular dependency: stage `{0}` refers to itself")]
    CircularDependency(String),
    /// Stages that reference each other too deeply through variables.
    #[error("stages refer to each other more than {0} levels deep")]
    StagesTooDeep(usize),
    /// The RUN steps' environments, one per change, add up to more than
    /// [`crate::graph::MAX_RUN_ENVIRONMENTS`] bytes.
    #[error(
        "the environments of the RUN steps up to here add up to more than {} MiB",
        crate::graph::MAX_RUN_ENVIRONMENTS >> 20
    )]
    EnvironmentsTooLarge,
    /// A `--mount` option that does not parse.
    #[error("invalid mount: {0}")]
    InvalidMount(MountError),
    /// A `--network` value that does not parse.
    #[error("invalid network mode `{0}`: expected `default`, `none` or `host`")]
    InvalidNetwork(String),
    /// A `--security` value that does not parse.
    #[error("invalid security mode `{0}`: expected `sandbox` or `insecure`")]
    InvalidSecurity(String),
    /// `--chmod` that is neither octal nor symbolic.
    #[error("{}", chmod_message(.0))]
    InvalidChmod(String),
    /// A platform string that does not parse.
    #[error("invalid platform `{0}`: expected os/arch[/variant]")]
    InvalidPlatform(String),
    /// `--build-arg` without a name.
    #[error("invalid build argument `{0}`: expected NAME=VALUE or NAME")]
    InvalidBuildArg(String),
    /// `STOPSIGNAL SIGNOPE`.
    #[error("invalid stop signal `{0}`")]
    InvalidSignal(String),
    /// A FROM that names neither an earlier stage nor a valid image
    /// reference (`golang:` from an empty tag): BuildKit's words.
    #[error("failed to parse stage name \"{0}\": invalid reference format")]
    InvalidReference(String),
    /// A FROM whose image name expands to nothing.
    #[error("base name `{0}` should not be blank")]
    BlankBaseName(String),
    /// A global `ARG SOURCE_DATE_EPOCH=` default that is not seconds:
    /// BuildKit's words.
    #[error("invalid SOURCE_DATE_EPOCH: {0}")]
    InvalidSourceDateEpoch(String),
    /// An image name elsewhere than in FROM (`COPY --from`, `--mount
    /// from=`) that is not a reference, as the resolver found it.
    #[error("invalid reference format `{reference}`: {reason}")]
    InvalidImageName {
        /// The name, expanded.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image resolver failed to give an image (a pull that failed):
    /// its own error, at the line that names the image.
    #[error(transparent)]
    ResolveImage(crate::graph::ResolveFailure),
    /// ADD --checksum on a local source, and similar misuse.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A git URL whose query or options contradict each other
    /// (BuildKit's words).
    #[error("{0}")]
    GitSource(String),
    /// `COPY --from=$VAR`: BuildKit's words.
    #[error(
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    )]
    FromVariable,
    /// A `# check=` directive or `BUILDKIT_DOCKERFILE_CHECK` value that does
    /// not parse: BuildKit's words.
    #[error("failed to parse check options: {0}")]
    InvalidCheckOptions(String),
    /// `check=error=true` and checks fired: BuildKit's words, the rules in
    /// the order they first fire in the Dockerfile.
    #[error("lint violation found for rules: {0}")]
    LintViolation(String),
}

/// BuildKit's words for a `--chmod` that looks numeric (`64a`, `10000`);
/// ours for a symbolic mode that does not parse.
fn chmod_message(value: &str) -> String {
    if value.starts_with(|ch: char| ch.is_ascii_digit()) {
        format!(
            "invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
        )
    } else {
        format!("invalid chmod `{value}`")
    }
}

/// A non-fatal finding, printed to stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Short identifier, as BuildKit's lint rule names (`JSONArgsRecommended`).
    pub rule: &'static str,
    /// What was found.
    pub message: String,
    /// Where, when the finding is about a place in the Dockerfile.
    pub span: Option<Span>,
}

/// Why a `RUN --mount` value does not parse: what follows `invalid mount: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A `"` that is not closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// An option that takes a value, given none.
    #[error("`{0}` needs a value: {0}=<value>")]
    NeedsValue(String),
    /// A numeric option given none.
    #[error("`{0}` needs a value")]
    NoNumber(String),
    /// A boolean option that is not true or false.
    #[error("invalid value `{value}` for `{key}`: expected true or false")]
    NotBoolean {
        /// The option.
        key: String,
        /// Its value.
        value: String,
    },
    /// A numeric option that is not a number.
    #[error("invalid value `{value}` for `{key}`: expected a number")]
    NotNumber {
        /// The option.
        key: String,
        /// Its value.
        value: String,
    },
    /// A `type=` strata does not know.
    #[error("unsupported mount type `{0}`: expected bind, cache, secret, ssh or tmpfs")]
    UnsupportedType(String),
    /// A `sharing=` other than shared, private or locked.
    #[error("invalid sharing `{0}`: expected shared, private or locked")]
    InvalidSharing(String),
    /// A `mode=` that is not an octal mode.
    #[error("invalid mode `{0}`: expected octal, e.g. 0755")]
    InvalidMode(String),
    /// A `size=` that is not a size.
    #[error("invalid size `{0}`")]
    InvalidSize(String),
    /// An option strata does not know.
    #[error("unexpected key `{0}`")]
    UnexpectedKey(String),
    /// An option of another mount type.
    #[error("`{key}` does not apply to a {} mount", format!("{kind:?}").to_lowercase())]
    NotApplicable {
        /// The option.
        key: String,
        /// The mount's type.
        kind: crate::graph::MountType,
    },
    /// A secret mount with neither `id`, `source` nor `target`.
    #[error("a secret mount needs `id`, `source` or `target`")]
    SecretNeedsId,
}
