//! Syntax tree to typed instructions (BuildKit `instructions/parse.go`).
//!
//! Each [`Node`] becomes one [`Instruction`]: its flags are checked against
//! what the instruction accepts, its arguments against what it needs. Words
//! stay unexpanded here: expansion needs the ARG and ENV values in scope,
//! which only [`crate::graph`] knows.
//!
//! [`from_dockerfile`] also splits the file into stages: the ARGs before the
//! first FROM (the "meta args", visible in FROM lines) and one [`Stage`] per
//! FROM.

mod flags;
mod health;

pub use flags::FlagValue;
pub use health::{Healthcheck, HealthcheckTest};

use crate::ast::{Args, Dockerfile, Heredoc, KeyValue, Node, Word};
use crate::error::{Error, ErrorKind, Warning};
use crate::span::Span;
use flags::{FlagKind, Flags};

/// Every instruction name, upper-case, for suggestions.
pub const INSTRUCTION_NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A command in shell form (run by the stage's SHELL) or exec form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `RUN echo hi`: one string for the shell.
    Shell(Word),
    /// `RUN ["echo", "hi"]`: the argument vector.
    Exec(Vec<Word>),
}

impl Command {
    fn from_args(args: &Args) -> Option<Command> {
        match args {
            Args::String(word) => Some(Command::Shell(word.clone())),
            Args::Json(words) => Some(Command::Exec(words.clone())),
            _ => None,
        }
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image reference (or earlier stage name), unexpanded.
    pub image: Word,
    /// `AS name`, lower-cased.
    pub name: Option<Word>,
    /// `--platform`.
    pub platform: Option<FlagValue>,
}

/// `RUN [--mount=...] [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// Heredocs attached to the command.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values, unparsed (they are expanded first).
    pub mounts: Vec<FlagValue>,
    /// `--network`.
    pub network: Option<FlagValue>,
    /// `--security`.
    pub security: Option<FlagValue>,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `true` for ADD.
    pub add: bool,
    /// Sources, unexpanded; `<<EOF` words name heredocs.
    pub sources: Vec<Word>,
    /// Destination, unexpanded.
    pub destination: Word,
    /// Heredocs used as sources.
    pub heredocs: Vec<Heredoc>,
    /// `--from`.
    pub from: Option<FlagValue>,
    /// `--chown`.
    pub chown: Option<FlagValue>,
    /// `--chmod`.
    pub chmod: Option<FlagValue>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<FlagValue>,
    /// `--parents`.
    pub parents: bool,
    /// ADD `--checksum`.
    pub checksum: Option<FlagValue>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--unpack` (explicit `true`/`false`), when given.
    pub unpack: Option<bool>,
}

/// One `name[=default]` of ARG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDefinition {
    /// The name.
    pub name: Word,
    /// The default, unexpanded.
    pub default: Option<Word>,
}

/// An `ONBUILD` trigger, kept as text for the image config and parsed to
/// check it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as written, e.g. `RUN make`.
    pub expression: String,
    /// The trigger, parsed.
    pub trigger: Box<Instruction>,
}

/// A typed instruction; `span` of the [`Located`] wrapper gives its place.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Instruction {
    // The large variants are boxed: one [`Located`] per instruction is held
    // until the graph is lowered, and the enum is as large as its largest.
    From(Box<From>),
    Run(Box<Run>),
    Cmd(Command),
    Entrypoint(Command),
    Label(Vec<KeyValue>),
    Maintainer(Word),
    Expose(Vec<Word>),
    Env(Vec<KeyValue>),
    Copy(Box<Copy>),
    Volume(Vec<Word>),
    User(Word),
    Workdir(Word),
    Arg(Vec<ArgDefinition>),
    Onbuild(Onbuild),
    StopSignal(Word),
    Healthcheck(Box<Healthcheck>),
    Shell(Vec<Word>),
}

impl Instruction {
    /// The instruction name, upper-case.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Copy(copy) if copy.add => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

impl Instruction {
    /// Whether BuildKit numbers it as a step (convert.go, cmdTotal): the
    /// instructions that change files.
    pub(crate) fn is_step(&self) -> bool {
        matches!(
            self,
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Workdir(_)
        )
    }

    /// The stage references it makes without expansion: a literal (no
    /// `$`) `COPY --from`, a literal `RUN --mount` naming `from=`.
    pub(crate) fn static_references(&self, references: &mut Vec<StaticReference>) {
        let literal = |flag: &&FlagValue| !flag.value.value.contains('$');
        match self {
            Instruction::Copy(copy) => references.extend(
                copy.from
                    .iter()
                    .filter(literal)
                    .map(|flag| StaticReference::CopyFrom(flag.value.value.clone())),
            ),
            Instruction::Run(run) => references.extend(
                run.mounts
                    .iter()
                    .filter(literal)
                    .filter(|flag| flag.value.value.contains("from="))
                    .map(|flag| StaticReference::Mount(flag.value.value.clone())),
            ),
            _ => {}
        }
    }
}

/// A stage reference known without expanding anything (see
/// [`Instruction::static_references`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StaticReference {
    /// The value of `COPY --from`.
    CopyFrom(String),
    /// The whole value of a `RUN --mount` (its `from=` is parsed later).
    Mount(String),
}

/// What the lowering needs to know of a stage before it lowers it, kept
/// instead of its instructions by [`crate::compile_graph`]: holding every
/// typed instruction until it is lowered would take some hundreds of bytes
/// per instruction (260 for `RUN true`), beside vertices meant to take
/// less, so the stage's text is read and typed again, one instruction at
/// a time, when it is lowered ([`crate::parser::Parser::resume`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StageSummary {
    /// The stage's instructions in the text (without byte-order mark):
    /// from the line after FROM to the end of its last instruction.
    pub(crate) body: std::ops::Range<usize>,
    /// The physical lines before `body`.
    pub(crate) line: usize,
    /// How many instructions follow FROM.
    pub(crate) instructions: usize,
    /// How many of them are WORKDIR (two vertices each).
    pub(crate) workdirs: usize,
    /// How many of them are numbered steps ([`Instruction::is_step`]).
    pub(crate) steps: usize,
    /// Their static references, in order.
    pub(crate) references: Vec<StaticReference>,
}

impl StageSummary {
    fn add(&mut self, instruction: &Instruction, end: usize) {
        self.instructions += 1;
        self.workdirs += usize::from(matches!(instruction, Instruction::Workdir(_)));
        self.steps += usize::from(instruction.is_step());
        instruction.static_references(&mut self.references);
        self.body.end = end;
    }
}

/// An instruction with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The instruction.
    pub instruction: Instruction,
    /// The whole instruction in the source.
    pub span: Span,
    /// The instruction as written on its (joined) line, for history entries.
    pub original: String,
    /// 1-based first and last line.
    pub lines: (usize, usize),
}

/// A build stage: its FROM and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The FROM instruction.
    pub from: From,
    /// Where FROM is written.
    pub from_span: Span,
    /// FROM's lines.
    pub from_lines: (usize, usize),
    /// The instructions after FROM.
    pub instructions: Vec<Located>,
}

/// A Dockerfile as stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// ARGs before the first FROM.
    pub meta_args: Vec<Located>,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// Findings worth a warning.
    pub warnings: Vec<Warning>,
    /// The escape character in force (from `# escape=`).
    pub escape: char,
}

/// Type every instruction and split the file into stages.
pub fn from_dockerfile(file: &Dockerfile) -> Result<Stages, Error> {
    let mut splitter = Splitter::default();
    for node in &file.nodes {
        splitter.push(node, node.original.clone())?;
    }
    splitter.finish(file.escape)
}

/// [`from_dockerfile`] one node at a time, so that a caller that parses
/// one node at a time never holds the whole syntax tree
/// ([`crate::compile_graph`]).
#[derive(Default)]
pub(crate) struct Splitter {
    stages: Vec<Stage>,
    meta_args: Vec<Located>,
    warnings: Vec<Warning>,
    last_span: Span,
    /// With [`Splitter::summarizing`], one per stage; its instructions are
    /// typed (for their errors and warnings) and dropped.
    summaries: Option<Vec<StageSummary>>,
}

impl Splitter {
    /// A splitter that keeps a [`StageSummary`] of each stage instead of
    /// its instructions (see there why); its nodes come with
    /// [`Splitter::push_at`].
    pub(crate) fn summarizing() -> Self {
        Splitter {
            summaries: Some(Vec::new()),
            ..Splitter::default()
        }
    }

    /// [`Splitter::push`] for a splitter [`Splitter::summarizing`]: `after`
    /// is the parser's [`crate::parser::Parser::position`] once `node` is
    /// read.
    pub(crate) fn push_at(
        &mut self,
        node: &Node,
        original: String,
        after: (usize, usize),
    ) -> Result<(), Error> {
        self.push_inner(node, original, after)
    }

    /// Type `node`, whose joined line is `original`, and file it in its stage.
    pub(crate) fn push(&mut self, node: &Node, original: String) -> Result<(), Error> {
        self.push_inner(node, original, (0, 0))
    }

    fn push_inner(
        &mut self,
        node: &Node,
        original: String,
        after: (usize, usize),
    ) -> Result<(), Error> {
        self.last_span = node.span;
        let instruction = parse_node(node, &mut self.warnings)?;
        let located = Located {
            instruction,
            span: node.span,
            original,
            lines: (node.start_line, node.end_line),
        };
        match located.instruction {
            Instruction::From(from) => {
                if let Some(stage) = self.stages.last_mut() {
                    stage.instructions.shrink_to_fit();
                }
                self.stages.push(Stage {
                    from: *from,
                    from_span: node.span,
                    from_lines: (node.start_line, node.end_line),
                    instructions: Vec::new(),
                });
                if let Some(summaries) = &mut self.summaries {
                    summaries.push(StageSummary {
                        body: after.0..after.0,
                        line: after.1,
                        ..StageSummary::default()
                    });
                }
            }
            _ => match self.stages.last_mut() {
                Some(stage) => match &mut self.summaries {
                    Some(summaries) => {
                        if let Some(summary) = summaries.last_mut() {
                            summary.add(&located.instruction, after.0);
                        }
                    }
                    None => stage.instructions.push(located),
                },
                None if matches!(located.instruction, Instruction::Arg(_)) => {
                    self.meta_args.push(located)
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::BeforeFrom(located.instruction.name().to_owned()),
                        node.keyword.span,
                    )
                    .with_hint("add `FROM <image>` (or `FROM scratch`) above it"));
                }
            },
        }
        Ok(())
    }

    /// The warnings so far, taken (for typing that stopped at an error).
    pub(crate) fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// The stages, once every node is in, and for a splitter
    /// [`Splitter::summarizing`] their summaries (their instructions left
    /// empty).
    pub(crate) fn finish_summarized(
        mut self,
        escape: char,
    ) -> Result<(Stages, Vec<StageSummary>), Error> {
        let summaries = self.summaries.take().unwrap_or_default();
        Ok((self.finish(escape)?, summaries))
    }

    /// The stages, once every node is in.
    pub(crate) fn finish(mut self, escape: char) -> Result<Stages, Error> {
        if self.stages.is_empty() {
            return Err(Error::new(ErrorKind::NoStages, self.last_span).with_hint(
                "a Dockerfile starts with `FROM <image>`; only ARG may come before it",
            ));
        }
        if let Some(stage) = self.stages.last_mut() {
            stage.instructions.shrink_to_fit();
        }
        Ok(Stages {
            meta_args: self.meta_args,
            stages: self.stages,
            warnings: self.warnings,
            escape,
        })
    }
}

const NO_FLAGS: flags::FlagSpec = &[];
const FROM_FLAGS: flags::FlagSpec = &[("platform", FlagKind::String)];
const RUN_FLAGS: flags::FlagSpec = &[
    ("mount", FlagKind::List),
    ("network", FlagKind::String),
    ("security", FlagKind::String),
];
const COPY_FLAGS: flags::FlagSpec = &[
    ("from", FlagKind::String),
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("exclude", FlagKind::List),
    ("parents", FlagKind::Bool),
];
const ADD_FLAGS: flags::FlagSpec = &[
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("exclude", FlagKind::List),
    ("checksum", FlagKind::String),
    ("keep-git-dir", FlagKind::Bool),
    ("unpack", FlagKind::Bool),
];
const HEALTHCHECK_FLAGS: flags::FlagSpec = &[
    ("interval", FlagKind::String),
    ("timeout", FlagKind::String),
    ("start-period", FlagKind::String),
    ("start-interval", FlagKind::String),
    ("retries", FlagKind::String),
];

/// The span just after the instruction name, where a missing argument goes.
fn after(node: &Node) -> Span {
    let end = node.span.end;
    Span {
        start: node.keyword.span.start,
        end: end.max(node.keyword.span.end),
    }
}

fn missing(node: &Node, instruction: &'static str, what: &'static str) -> Error {
    Error::new(
        ErrorKind::MissingArguments { instruction, what },
        after(node),
    )
}

/// Type one node.
pub fn parse_node(node: &Node, warnings: &mut Vec<Warning>) -> Result<Instruction, Error> {
    let name = node.name();
    let spec = match name.as_str() {
        "from" => FROM_FLAGS,
        "run" => RUN_FLAGS,
        "copy" => COPY_FLAGS,
        "add" => ADD_FLAGS,
        "healthcheck" => HEALTHCHECK_FLAGS,
        known
            if INSTRUCTION_NAMES
                .iter()
                .any(|name| name.eq_ignore_ascii_case(known)) =>
        {
            NO_FLAGS
        }
        _ => {
            let mut error = Error::new(
                ErrorKind::UnknownInstruction(node.keyword.value.to_ascii_uppercase()),
                node.keyword.span,
            );
            if let Some(near) = suggest(&node.keyword.value.to_ascii_uppercase(), INSTRUCTION_NAMES)
            {
                error = error.with_hint(format!("did you mean `{near}`?"));
            }
            return Err(error);
        }
    };
    let flags = Flags::parse(&name, &node.flags, spec)?;
    let words = || match &node.args {
        Args::Words(words) | Args::Json(words) => words.clone(),
        Args::String(word) => vec![word.clone()],
        _ => Vec::new(),
    };
    Ok(match name.as_str() {
        "from" => {
            let words = words();
            let (image, stage) = match words.as_slice() {
                [] => {
                    return Err(missing(
                        node,
                        "FROM",
                        "a base image: FROM <image> [AS <name>]",
                    ));
                }
                [image] => (image.clone(), None),
                [image, keyword, stage] if keyword.value.eq_ignore_ascii_case("as") => {
                    // BuildKit's doesFromCaseMatchAsCase: a FROM in mixed
                    // case is ConsistentInstructionCasing's to report.
                    let from = &node.keyword.value;
                    let mismatch = if *from == from.to_ascii_lowercase() {
                        keyword.value != keyword.value.to_ascii_lowercase()
                    } else if *from == from.to_ascii_uppercase() {
                        keyword.value != keyword.value.to_ascii_uppercase()
                    } else {
                        false
                    };
                    if mismatch {
                        warnings.push(crate::lint::warning(
                            "FromAsCasing",
                            crate::lint::from_as_casing(from, &keyword.value),
                            node.span,
                        ));
                    }
                    (image.clone(), Some(stage.clone()))
                }
                [_, keyword, ..] if !keyword.value.eq_ignore_ascii_case("as") => {
                    return Err(Error::new(ErrorKind::InvalidFrom, keyword.span)
                        .with_hint("to name the stage write `FROM <image> AS <name>`"));
                }
                [_, rest @ ..] => {
                    let span = rest.first().unwrap().span.to(rest.last().unwrap().span);
                    return Err(Error::new(ErrorKind::InvalidFrom, span));
                }
            };
            let name = match stage {
                Some(stage) => {
                    if !is_valid_stage_name(&stage.value) {
                        return Err(Error::new(
                            ErrorKind::InvalidStageName(stage.value.clone()),
                            stage.span,
                        ));
                    }
                    if stage.value != stage.value.to_ascii_lowercase() {
                        warnings.push(crate::lint::warning(
                            "StageNameCasing",
                            crate::lint::stage_name_casing(&stage.value),
                            node.span,
                        ));
                    }
                    Some(Word::new(stage.value.to_ascii_lowercase(), stage.span))
                }
                None => None,
            };
            Instruction::From(Box::new(From {
                image,
                name,
                platform: flags.string("platform"),
            }))
        }
        "run" => {
            let command = match Command::from_args(&node.args) {
                Some(command) => command,
                None => return Err(missing(node, "RUN", "at least one argument")),
            };
            Instruction::Run(Box::new(Run {
                command,
                heredocs: node.heredocs.clone(),
                mounts: flags.list("mount"),
                network: flags.string("network"),
                security: flags.string("security"),
            }))
        }
        "cmd" | "entrypoint" => {
            // (JSONArgsRecommended is the lowering's: it depends on SHELL.)
            let command = Command::from_args(&node.args).unwrap_or(Command::Exec(Vec::new()));
            if name == "cmd" {
                Instruction::Cmd(command)
            } else {
                Instruction::Entrypoint(command)
            }
        }
        "label" | "env" => {
            let Args::KeyValues(pairs) = &node.args else {
                let instruction = if name == "env" { "ENV" } else { "LABEL" };
                return Err(missing(node, instruction, "at least one argument"));
            };
            if name == "env" {
                Instruction::Env(pairs.clone())
            } else {
                Instruction::Label(pairs.clone())
            }
        }
        "maintainer" => {
            let Args::String(word) = &node.args else {
                return Err(missing(node, "MAINTAINER", "exactly one argument"));
            };
            warnings.push(crate::lint::warning(
                "MaintainerDeprecated",
                crate::lint::maintainer_deprecated(),
                node.span,
            ));
            Instruction::Maintainer(word.clone())
        }
        "expose" => {
            let words = words();
            if words.is_empty() {
                return Err(missing(node, "EXPOSE", "at least one argument"));
            }
            Instruction::Expose(words)
        }
        "copy" | "add" => parse_copy(node, &flags, name == "add")?,
        "volume" => {
            let words = words();
            if words.is_empty() {
                return Err(missing(node, "VOLUME", "at least one argument"));
            }
            if let Some(empty) = words.iter().find(|word| word.value.trim().is_empty()) {
                return Err(Error::new(
                    ErrorKind::MissingArguments {
                        instruction: "VOLUME",
                        what: "non-empty paths",
                    },
                    empty.span,
                ));
            }
            Instruction::Volume(words)
        }
        "user" | "workdir" | "stopsignal" => {
            let instruction = match name.as_str() {
                "user" => "USER",
                "workdir" => "WORKDIR",
                _ => "STOPSIGNAL",
            };
            let Args::String(word) = &node.args else {
                return Err(missing(node, instruction, "exactly one argument"));
            };
            match name.as_str() {
                "user" => Instruction::User(word.clone()),
                "workdir" => Instruction::Workdir(word.clone()),
                _ => Instruction::StopSignal(word.clone()),
            }
        }
        "arg" => {
            let words = words();
            if words.is_empty() {
                return Err(missing(node, "ARG", "at least one argument"));
            }
            let definitions = words
                .into_iter()
                .map(|word| match word.value.split_once('=') {
                    Some((name, default)) => {
                        let name_end = word.span.start + name.len() as u32;
                        ArgDefinition {
                            name: Word::new(
                                name,
                                Span {
                                    start: word.span.start,
                                    end: name_end.min(word.span.end),
                                },
                            ),
                            default: Some(Word::new(
                                default,
                                Span {
                                    start: (name_end + 1).min(word.span.end),
                                    end: word.span.end,
                                },
                            )),
                        }
                    }
                    None => ArgDefinition {
                        name: word,
                        default: None,
                    },
                })
                .collect::<Vec<_>>();
            if let Some(bad) = definitions
                .iter()
                .find(|definition| definition.name.value.is_empty())
            {
                return Err(Error::new(
                    ErrorKind::MissingArguments {
                        instruction: "ARG",
                        what: "a name before `=`",
                    },
                    bad.name.span.to(bad
                        .default
                        .as_ref()
                        .map(|word| word.span)
                        .unwrap_or(bad.name.span)),
                ));
            }
            Instruction::Arg(definitions)
        }
        "onbuild" => {
            let Args::Trigger(trigger) = &node.args else {
                return Err(missing(node, "ONBUILD", "an instruction to run later"));
            };
            let trigger_name = trigger.name();
            if matches!(trigger_name.as_str(), "onbuild") {
                return Err(Error::new(ErrorKind::NestedOnbuild, trigger.keyword.span));
            }
            if matches!(trigger_name.as_str(), "from" | "maintainer") {
                return Err(Error::new(
                    ErrorKind::ForbiddenTrigger(trigger_name.to_ascii_uppercase()),
                    trigger.keyword.span,
                ));
            }
            let mut trigger_warnings = Vec::new();
            let typed = parse_node(trigger, &mut trigger_warnings)?;
            // The trigger's text keeps its heredoc bodies, each followed by
            // its terminator, as BuildKit's `parseOnBuild` writes it: the
            // image built from this one parses the text again.
            let mut expression = trigger.original.clone();
            let heredocs = if trigger.heredocs.is_empty() {
                &node.heredocs
            } else {
                &trigger.heredocs
            };
            for heredoc in heredocs {
                expression.push('\n');
                expression.push_str(&heredoc.content);
                expression.push_str(&heredoc.name);
            }
            Instruction::Onbuild(Onbuild {
                expression,
                trigger: Box::new(typed),
            })
        }
        "healthcheck" => Instruction::Healthcheck(Box::new(health::parse(node, &flags)?)),
        "shell" => match &node.args {
            Args::Json(words) if !words.is_empty() => Instruction::Shell(words.clone()),
            Args::None | Args::Json(_) => {
                return Err(missing(node, "SHELL", "at least one argument"));
            }
            _ => {
                let span = match &node.args {
                    Args::String(word) => word.span,
                    _ => node.span,
                };
                return Err(Error::new(ErrorKind::ShellNotJson, span)
                    .with_hint("write it as a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]"));
            }
        },
        other => unreachable!("instruction `{other}` is in INSTRUCTION_NAMES but not handled"),
    })
}

fn parse_copy(node: &Node, flags: &Flags, add: bool) -> Result<Instruction, Error> {
    let instruction = if add { "ADD" } else { "COPY" };
    let words = match &node.args {
        Args::Words(words) | Args::Json(words) => words.clone(),
        _ => Vec::new(),
    };
    if words.len() < 2 {
        let span = words
            .first()
            .map(|word| word.span)
            .unwrap_or_else(|| after(node));
        return Err(Error::new(
            ErrorKind::MissingArguments {
                instruction,
                what: "at least two arguments: a source and a destination",
            },
            span,
        )
        .with_hint(format!("write `{instruction} <source>... <destination>`")));
    }
    let (destination, sources) = words.split_last().expect("two words at least");
    let checksum = flags.string("checksum");
    Ok(Instruction::Copy(Box::new(Copy {
        add,
        sources: sources.to_vec(),
        destination: destination.clone(),
        heredocs: node.heredocs.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        exclude: flags.list("exclude"),
        parents: flags.bool("parents"),
        checksum,
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: node
            .flags
            .iter()
            .any(|flag| flag.value.starts_with("--unpack"))
            .then(|| flags.bool("unpack")),
    })))
}

/// BuildKit's stage-name rule: `^[a-z][a-z0-9-_\.]*$` after lower-casing.
pub fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
}

/// The candidate nearest to `word` by edit distance, if near enough to be a
/// plausible typo (BuildKit's `suggest` package uses the same idea).
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    suggest_within(word, candidates, (word.chars().count() / 3).clamp(1, 3))
}

/// [`suggest`] with the distance allowed given: BuildKit's own `suggest`
/// allows 2 edits whatever the length (`tmp` for `tmpfs`), which mount
/// options follow.
pub fn suggest_within<'a>(word: &str, candidates: &[&'a str], limit: usize) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|candidate| {
            (
                edit_distance(&word, &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance over characters where swapping two neighbours counts as
/// one edit (optimal string alignment): `biuld` is one typo from `build`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            table[i * width + j] = if i == 0 {
                j
            } else if j == 0 {
                i
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (table[(i - 1) * width + j] + 1)
                    .min(table[i * width + j - 1] + 1)
                    .min(table[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(table[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    table[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("RUNN", INSTRUCTION_NAMES), Some("RUN"));
        assert_eq!(suggest("COPPY", INSTRUCTION_NAMES), Some("COPY"));
        assert_eq!(suggest("WORKDI", INSTRUCTION_NAMES), Some("WORKDIR"));
        assert_eq!(suggest("XYZZY", INSTRUCTION_NAMES), None);
        assert_eq!(suggest("biuld", &["build", "test"]), Some("build"));
    }

    #[test]
    fn stage_names() {
        assert!(is_valid_stage_name("build-1.x_y"));
        assert!(!is_valid_stage_name("1build"));
        assert!(!is_valid_stage_name("a/b"));
    }
}
