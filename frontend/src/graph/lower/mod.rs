//! Stages to build graph (BuildKit `dockerfile2llb/convert.go`).
//!
//! 1. The ARGs before the first FROM ("meta args") are evaluated, with the
//!    predefined platform args, and expand every FROM line.
//! 2. The target stage is lowered; a stage it needs (as its base, as a
//!    `COPY --from` or `RUN --mount from=` source) is lowered first, on
//!    demand. Stages the target does not need are never lowered, which is
//!    `--target` pruning; a stage that needs itself is a cycle and an error.
//! 3. Each instruction is dispatched with the stage's state: its ENV, the ARGs
//!    declared in it, USER, WORKDIR and SHELL. Words are expanded where
//!    BuildKit expands them, with ENV winning over ARG.
//!
//! The code follows BuildKit's split of `dockerfile2llb` by concern:
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the state, vertices and their digests, expansion, [`lower`] |
//! | `args.rs` | build args: the platform args and the ARGs before FROM |
//! | `stage.rs` | stages: names, what the target needs, lowering one, ONBUILD, `--from` |
//! | `image.rs` | base images: the [`ImageResolver`] and pinning |
//! | `dispatch.rs` | one instruction at a time; the config instructions |
//! | `run.rs` | RUN: its argv, environment, flags and mounts (`convert_runmount.go`) |
//! | `copy.rs` | COPY and ADD (`convert_copy.go`) |
//! | `platform.rs` | [`Platform`] |
//!
//! What the frontend cannot know alone, the config of a base image (its ENV,
//! USER, WORKDIR and ONBUILD triggers), it asks an [`ImageResolver`] for; the
//! solver provides one that reads the image store (pulling first, as
//! `--pull` says). Each image reference is resolved once per build, and its
//! [`Source::Image`] pins the digest it was lowered with, which is what the
//! solver runs: a tag that moves meanwhile changes nothing (BuildKit pins
//! `ref@digest` the same way). Without a resolver, or for an image the
//! resolver does not know, the image is lowered unpinned with an empty
//! config and the default `PATH`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{
    BuildGraph, CopySource, FileCopy, FileOp, GraphBuilder, Label, Op, Origin, Source, StageInfo,
    StepLabel, Vertex, VertexId,
};
use crate::ast::{Heredoc, Word};
use crate::error::{Error, ErrorKind, Warning};
use crate::expand::{Lexer, Lookup};
use crate::instructions::{Instruction, Located, StageSummary, Stages, StaticReference};
use crate::span::Span;

mod args;
mod copy;
mod dispatch;
mod image;
mod platform;
mod run;
mod stage;

pub use image::{ImageConfig, ImageResolver, ResolveError, ResolveFailure, Resolved};
pub use platform::Platform;

/// `PATH` for images whose config has none (BuildKit `system.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build args every build knows without an ARG line in the global scope.
const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// Proxy args: usable without declaration, kept out of digests and history.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What the lowering needs besides the Dockerfile.
#[derive(Default)]
pub struct Options<'a> {
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--platform`: the target platform (default: the host's).
    pub platform: Option<Platform>,
    /// Where base image configs come from.
    pub resolver: Option<&'a dyn ImageResolver>,
    /// `--build-context NAME=VALUE`: NAME (a stage name, or an image name
    /// in its short form, `busybox` or `busybox:1.36`) is what VALUE names
    /// instead, as BuildKit's named contexts.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// Lower every stage, not only those the target needs, as BuildKit's
    /// check does without `--target` (`strata build --check`): the checks
    /// of each stage's instructions then run on all of them.
    pub all_stages: bool,
    /// Whether a COPY or ADD source from the build context is excluded by
    /// its `.dockerignore`, as BuildKit's CopyIgnoredFile decides (the
    /// solver's `Ignore::copy_source_ignored`): the frontend does not read
    /// the context itself.
    pub ignored: Option<&'a dyn Fn(&str) -> bool>,
}

/// What a `--build-context` gives in place of a stage or an image
/// (BuildKit's `dockerui.NamedContext`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://REF`: the image REF (`scratch` for none). An
    /// `oci-layout://` context is an image too, once the caller has read it
    /// into its store (by ID, which is never pulled).
    Image(String),
    /// A directory: a [`Source::Context`] of the context's name, which the
    /// solver reads as it reads the build context, `.dockerignore` and all.
    /// `FROM` it is a snapshot of the directory as one layer.
    Directory,
    /// An `http(s)://` URL: the file it serves, as `/context` (mode 0600),
    /// as BuildKit's HTTP context; or a git repository (a URL that names
    /// one, checked first as BuildKit does), its tree at `/`.
    Url(String),
}

/// Lower typed stages to a build graph.
pub fn lower(stages: &Stages, options: &Options<'_>) -> Result<BuildGraph, Error> {
    let instructions = stages
        .stages
        .iter()
        .map(|stage| Instructions::Borrowed(&stage.instructions))
        .collect();
    lower_with(stages, instructions, options).map_err(|failed| failed.0)
}

/// [`lower`], consuming the stages: each instruction is dropped once it is
/// lowered, so the typed stages and the graph are not both held whole.
/// With `reread`, the stages' instructions are not in `stages` at all
/// (they would be held whole until lowered, some hundreds of bytes each):
/// `reread` is the text they were read from (without byte-order mark) and
/// a summary of each stage, and each stage's instructions are read again
/// from the text, and typed, one at a time as it is lowered.
/// An error comes with the warnings found before it.
pub(crate) fn lower_owned<'a>(
    mut stages: Stages,
    reread: Option<(&'a str, Vec<StageSummary>)>,
    options: &'a Options<'a>,
) -> Result<BuildGraph, Box<(Error, Vec<Warning>)>> {
    let instructions = match reread {
        Some((text, summaries)) if summaries.len() == stages.stages.len() => summaries
            .into_iter()
            .map(|summary| Instructions::Reparse { text, summary })
            .collect(),
        Some((_, _)) => {
            let error = Error::unplaced(ErrorKind::Reread)
                .with_hint("this is a bug in strata: please report it");
            return Err(Box::new((error, Vec::new())));
        }
        None => stages
            .stages
            .iter_mut()
            .map(|stage| Instructions::Owned(std::mem::take(&mut stage.instructions)))
            .collect(),
    };
    lower_with(&stages, instructions, options)
}

/// A stage's instructions, until the stage is lowered.
enum Instructions<'a> {
    Borrowed(&'a [Located]),
    Owned(Vec<Located>),
    /// Not held: read again from `text` when the stage is lowered (see
    /// [`lower_owned`]), and known until then by its summary.
    Reparse {
        text: &'a str,
        summary: StageSummary,
    },
    /// The stage is lowered (or being lowered).
    Taken,
}

impl Instructions<'_> {
    fn as_slice(&self) -> &[Located] {
        match self {
            Instructions::Borrowed(slice) => slice,
            Instructions::Owned(vec) => vec,
            Instructions::Reparse { .. } | Instructions::Taken => &[],
        }
    }

    /// How many instructions follow FROM, and how many are WORKDIR.
    fn counts(&self) -> (usize, usize) {
        match self {
            Instructions::Reparse { summary, .. } => (summary.instructions, summary.workdirs),
            _ => {
                let list = self.as_slice();
                let workdirs = list
                    .iter()
                    .filter(|located| matches!(located.instruction, Instruction::Workdir(_)))
                    .count();
                (list.len(), workdirs)
            }
        }
    }

    /// How many are numbered steps ([`Instruction::is_step`]).
    fn steps(&self) -> usize {
        match self {
            Instructions::Reparse { summary, .. } => summary.steps,
            _ => self
                .as_slice()
                .iter()
                .filter(|located| located.instruction.is_step())
                .count(),
        }
    }

    /// The stage references known without expansion, in order.
    fn static_references(&self) -> Vec<StaticReference> {
        match self {
            Instructions::Reparse { summary, .. } => summary.references.clone(),
            _ => {
                let mut references = Vec::new();
                for located in self.as_slice() {
                    located.instruction.static_references(&mut references);
                }
                references
            }
        }
    }
}

fn lower_with<'a>(
    stages: &'a Stages,
    instructions: Vec<Instructions<'a>>,
    options: &'a Options<'a>,
) -> Result<BuildGraph, Box<(Error, Vec<Warning>)>> {
    let mut lowerer = Lowerer::new(stages, instructions, options);
    match lowerer.lower_all() {
        Ok(target) => lowerer
            .finish(target)
            .map_err(|error| Box::new((error, Vec::new()))),
        Err(error) => Err(Box::new((error, std::mem::take(&mut lowerer.warnings)))),
    }
}

/// The most bytes the RUN steps' environments may add up to (each entry
/// counted with one byte more, as `execve` counts it), in bytes: 256 MiB.
///
/// Each RUN holds its whole environment; RUNs share one until ENV (or a
/// build arg) changes it, so what is counted is each new environment, once.
/// A Dockerfile that sets a new variable before each RUN makes environments
/// that grow with every step, quadratic in its size (16 MiB of `ENV` and
/// `RUN` lines would need terabytes); BuildKit has no limit of its own
/// here, and 256 MiB is thousands of times what real Dockerfiles reach.
pub const MAX_RUN_ENVIRONMENTS: usize = 256 << 20;

/// [`MAX_RUN_ENVIRONMENTS`]; 1 MiB in this crate's unit tests, which check
/// the refusal without making (and hashing) 256 MiB of environments.
const RUN_ENVIRONMENTS_LIMIT: usize = if cfg!(test) {
    1 << 20
} else {
    MAX_RUN_ENVIRONMENTS
};

/// Stage references deeper than this (through `--from=$VARIABLE`) are refused.
const MAX_STAGE_NESTING: usize = 128;

/// Per-stage dispatch state (BuildKit's `dispatchState`).
#[derive(Debug, Clone)]
struct State {
    /// `KEY=value` entries, in the form the image config and every RUN need
    /// them (kept formatted: most steps copy the list, few change it).
    env: Vec<String>,
    /// The environment RUN steps hold (`env`, then the build args in
    /// scope), made once after each change of either (see
    /// [`Lowerer::run_env`]).
    shared_env: Option<Arc<[String]>>,
    args: Vec<(String, Option<String>)>,
    user: String,
    workdir: String,
    shell: Vec<String>,
    fs: VertexId,
    last: VertexId,
    /// What the checks remember of the stage.
    lint: crate::lint::StageLint,
}

/// The key of a `KEY=value` entry.
fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

impl State {
    fn set_env(&mut self, key: &str, value: &str) {
        self.shared_env = None;
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|existing| env_key(existing) == key)
        {
            Some(slot) => *slot = entry,
            None => self.env.push(entry),
        }
    }

    /// Declare build arg `name` in the stage; declared again, it keeps its
    /// place and takes the new value (BuildKit's runCommandString order:
    /// `RUN |2 foo=bar2 bar=123` after `ARG foo=bar`, `ARG bar=123`, `ARG
    /// foo=bar2`).
    fn set_arg(&mut self, name: String, value: Option<String>) {
        self.shared_env = None;
        match self.args.iter_mut().find(|(existing, _)| *existing == name) {
            Some(slot) => slot.1 = value,
            None => self.args.push((name, value)),
        }
    }

    fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|entry| env_key(entry) == key)
            .map(|entry| &entry[key.len() + 1..])
    }
}

/// The variables visible to word expansion: ENV wins over ARG.
struct Scope<'a> {
    state: &'a State,
}

impl Lookup for Scope<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.state.env_value(name).or_else(|| {
            self.state
                .args
                .iter()
                .rev()
                .find(|(arg, _)| arg == name)
                .and_then(|(_, value)| value.as_deref())
        })
    }
}

enum StageStatus {
    Pending,
    InProgress,
    Done(Box<State>),
}

struct Lowerer<'a> {
    stages: &'a Stages,
    /// Each stage's instructions, taken when it is lowered.
    instructions: Vec<Instructions<'a>>,
    options: &'a Options<'a>,
    escape: char,
    target_platform: Platform,
    build_platform: Platform,
    meta: BTreeMap<String, String>,
    infos: Vec<StageInfo>,
    /// The ONBUILD triggers each stage writes, for the stages built on it.
    stage_triggers: Vec<Vec<String>>,
    /// Stage name to index.
    names: HashMap<String, usize>,
    /// Stages a named context replaces (see [`Options::named_contexts`]).
    replaced: BTreeSet<usize>,
    status: Vec<StageStatus>,
    /// The vertices so far, digested and deduplicated.
    graph: GraphBuilder,
    context: Option<VertexId>,
    used_args: BTreeSet<String>,
    /// See [`BuildGraph::source_date_epoch`].
    source_date_epoch: Option<u64>,
    warnings: Vec<Warning>,
    warned: BTreeSet<(String, Span)>,
    /// The instruction being lowered, where its warnings point (BuildKit
    /// reports the instruction's lines).
    at: Span,
    /// The names the ARGs before FROM declare, with a value or not.
    meta_declared: BTreeSet<String>,
    /// The bytes of the RUN environments made so far (see
    /// [`MAX_RUN_ENVIRONMENTS`]).
    environments: usize,
    nesting: usize,
    /// Images resolved so far, by reference and platform: one answer per
    /// build, so that every step naming an image gets the same one.
    resolved: HashMap<(String, String), (Option<String>, ImageConfig)>,
}

impl<'a> Lowerer<'a> {
    fn new(
        stages: &'a Stages,
        instructions: Vec<Instructions<'a>>,
        options: &'a Options<'a>,
    ) -> Self {
        let build_platform = Platform::host();
        let target_platform = options
            .platform
            .clone()
            .unwrap_or_else(|| build_platform.clone());
        let mut lowerer = Lowerer {
            stages,
            options,
            escape: stages.escape,
            target_platform,
            build_platform,
            meta: BTreeMap::new(),
            infos: Vec::new(),
            stage_triggers: vec![Vec::new(); stages.stages.len()],
            names: HashMap::new(),
            replaced: BTreeSet::new(),
            status: stages.stages.iter().map(|_| StageStatus::Pending).collect(),
            // Room for every vertex, so that the list is never copied to a
            // larger one (twice the size, with both held while it is): one per
            // instruction, two for WORKDIR (its mkdir and its config edit),
            // the stage's base, and the context.
            graph: GraphBuilder::with_capacity(
                instructions
                    .iter()
                    .map(|list| {
                        let (count, workdirs) = list.counts();
                        count + workdirs + 2
                    })
                    .sum::<usize>()
                    + 1,
            ),
            instructions,
            context: None,
            used_args: BTreeSet::new(),
            source_date_epoch: None,
            warnings: stages.warnings.clone(),
            warned: BTreeSet::new(),
            at: Span::default(),
            meta_declared: BTreeSet::new(),
            environments: 0,
            nesting: 0,
            resolved: HashMap::new(),
        };
        lowerer.meta = lowerer.platform_args();
        lowerer
    }

    /// Everything up to the graph: the ARGs before FROM, the FROM lines
    /// and the stages to lower; the target's index.
    fn lower_all(&mut self) -> Result<usize, Error> {
        self.meta_args()?;
        self.stage_infos()?;
        let target = self.target()?;
        // Lower the stages the target needs by name, dependencies first,
        // without recursion: a chain of thousands of `FROM previous` stages
        // must not exhaust the stack. References that need expansion
        // (`--from=$STAGE`) are resolved during lowering, with bounded
        // recursion.
        let mut order = self.static_order(target);
        if self.options.all_stages {
            // Then the others in Dockerfile order: a stage needs only
            // stages above it (a base or `--from` further down is refused),
            // so each finds what it needs lowered already, without
            // recursion, in time linear in the stages.
            let mut placed = vec![false; self.infos.len()];
            for index in &order {
                placed[*index] = true;
            }
            order.extend((0..self.infos.len()).filter(|index| !placed[*index]));
        }
        for index in order {
            let span = self.stages.stages[index].from_span;
            self.lower_stage(index, span)?;
        }
        Ok(target)
    }

    fn warn_once(&mut self, rule: &'static str, key: String, message: String, span: Span) {
        // One warning per rule, name and place (a name used twice in one
        // instruction is reported once).
        if self.warned.insert((format!("{rule} {key}"), span)) {
            self.warnings.push(Warning {
                rule,
                message,
                span: Some(span),
            });
        }
    }

    /// Expand `word` in `env`, with what it used and did not find.
    fn expansion(&self, word: &Word, env: &dyn Lookup) -> Result<crate::expand::Expansion, Error> {
        Lexer::new(self.escape)
            .expand(&word.value, env)
            .map_err(|error| Error::new(ErrorKind::Expand(error), word.span))
    }

    /// Expand `word` in `env`, without checks (ARGs before FROM; FROM lines
    /// are checked by `stage_infos`).
    fn expand(&mut self, word: &Word, env: &dyn Lookup) -> Result<String, Error> {
        Ok(self.expansion(word, env)?.result)
    }

    /// Expand `word` in a stage, warning on undefined variables as
    /// BuildKit's `reportUnmatchedVariables` does: an ARG declared in the
    /// stage without a value is defined (it is empty), and a suggestion
    /// comes from the variables that are set. A stage on an image whose
    /// config is unknown (no store, `--check`) is not checked: the image's
    /// ENV could define any name.
    fn expand_in(&mut self, word: &Word, state: &State) -> Result<String, Error> {
        let expansion = self.expansion(word, &Scope { state })?;
        self.report_unmatched(&expansion.unmatched, state);
        Ok(expansion.result)
    }

    /// [`Lowerer::expand_in`] without the check, for the words BuildKit
    /// expands without it (EXPOSE, `--exclude`).
    fn expand_quietly_in(&mut self, word: &Word, state: &State) -> Result<String, Error> {
        Ok(self.expansion(word, &Scope { state })?.result)
    }

    /// UndefinedVar for each of `unmatched` that the stage does not define.
    fn report_unmatched(&mut self, unmatched: &BTreeSet<String>, state: &State) {
        if state.lint.env_unknown {
            return;
        }
        for name in unmatched {
            if !name.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
                || state.args.iter().any(|(arg, _)| arg == name)
            {
                continue;
            }
            let options = state.env.iter().map(|entry| env_key(entry)).chain(
                state
                    .args
                    .iter()
                    .filter(|(_, value)| value.is_some())
                    .map(|(arg, _)| arg.as_str()),
            );
            let message = crate::lint::undefined_var(name, crate::lint::suggest(name, options));
            self.warn_once("UndefinedVar", name.clone(), message, self.at);
        }
    }

    fn add_vertex(&mut self, vertex: Vertex) -> VertexId {
        self.graph.add(vertex)
    }

    /// Add a source (no inputs, no previous step).
    fn source_vertex(
        &mut self,
        source: Source,
        stage: usize,
        origin: Option<Origin>,
        label: Label,
    ) -> VertexId {
        self.add_vertex(Vertex {
            id: 0,
            digest: String::new(),
            op: Op::Source(source),
            inputs: Vec::new(),
            previous: None,
            stage,
            origin,
            created_by: None,
            label,
        })
    }

    /// Add the vertex of a Dockerfile step after the stage's last one and
    /// advance the state: `last` always, the filesystem `fs` unless the step
    /// only edits the config.
    fn step_vertex(
        &mut self,
        step: &Step<'_>,
        state: &mut State,
        op: Op,
        inputs: Vec<VertexId>,
        created_by: Option<String>,
    ) -> VertexId {
        let edits_filesystem = !matches!(op, Op::Config(_));
        let label = self.label(step);
        let id = self.add_vertex(Vertex {
            id: 0,
            digest: String::new(),
            op,
            inputs,
            previous: Some(state.last),
            stage: step.stage,
            origin: Some(step.origin()),
            created_by,
            label,
        });
        if edits_filesystem {
            state.fs = id;
        }
        state.last = id;
        id
    }

    fn context_vertex(&mut self) -> VertexId {
        if let Some(context) = self.context {
            return context;
        }
        let id = self.source_vertex(
            Source::Context {
                name: "context".to_owned(),
            },
            0,
            None,
            Label::Context,
        );
        self.context = Some(id);
        id
    }

    /// The directory named context `name` ([`NamedContext::Directory`]),
    /// read in place (a COPY's source, a bind mount).
    fn named_context_vertex(&mut self, name: &str, stage: usize) -> VertexId {
        self.source_vertex(
            Source::Context {
                name: format!("named:{name}"),
            },
            stage,
            None,
            Label::NamedContext {
                name: name.to_owned(),
                text: "load from client".to_owned(),
            },
        )
    }

    /// The filesystem of named context `name` that is not an image, as a
    /// stage's base or a `--from`: a directory's files as one layer (what
    /// `.dockerignore` leaves), a URL's file as `/context`, or a git
    /// repository's tree. Each is the copy of the context into scratch,
    /// so that it is cached by content as any COPY or ADD.
    fn named_base(
        &mut self,
        name: &str,
        context: &NamedContext,
        stage: usize,
        origin: Option<Origin>,
        span: Span,
    ) -> Result<VertexId, Error> {
        let scratch = self.source_vertex(Source::Scratch, stage, origin, Label::Scratch);
        let mut inputs = vec![scratch];
        let (source, destination, text) = match context {
            NamedContext::Directory => {
                inputs.push(self.named_context_vertex(name, stage));
                let source = CopySource::Path {
                    input: 1,
                    path: "/".to_owned(),
                };
                (source, "/", "load from client".to_owned())
            }
            NamedContext::Url(url) => match super::git::parse(url) {
                super::git::Parsed::Git(mut source, keep) => {
                    source.keep_git_dir = keep.unwrap_or(false);
                    (CopySource::Git(source), "/", url.clone())
                }
                super::git::Parsed::Invalid(message) => {
                    return Err(Error::new(ErrorKind::GitSource(message), span));
                }
                super::git::Parsed::NotGit => (
                    CopySource::Url { url: url.clone() },
                    "/context",
                    url.clone(),
                ),
            },
            NamedContext::Image(image) => {
                let platform = self.target_platform.clone();
                return Ok(self.image_vertex(image, &platform, stage, origin, span)?.0);
            }
        };
        let label = Label::NamedContext {
            name: name.to_owned(),
            text,
        };
        let copy = FileCopy {
            add: !matches!(context, NamedContext::Directory),
            sources: vec![source],
            destination: destination.to_owned(),
            ..FileCopy::default()
        };
        Ok(self.add_vertex(Vertex {
            id: 0,
            digest: String::new(),
            op: Op::File(FileOp::Copy(Box::new(copy))),
            inputs,
            previous: Some(scratch),
            stage,
            origin,
            // The history entry of a layer no instruction made, as
            // BuildKit's exporter writes it: the step's name.
            created_by: Some(label.to_string()),
            label,
        }))
    }

    fn label(&self, step: &Step<'_>) -> Label {
        Label::Step(StepLabel {
            // BuildKit names no stage when there is only one.
            stage: if self.infos.len() == 1 {
                String::new()
            } else {
                self.infos[step.stage].label()
            },
            number: step.number,
            total: step.total,
            instruction: step.located.original.clone(),
        })
    }

    fn finish(mut self, target: usize) -> Result<BuildGraph, Error> {
        let unused: Vec<&String> = self
            .options
            .build_args
            .keys()
            .filter(|name| {
                !self.used_args.contains(*name)
                    && !PROXY_ARGS.contains(&name.as_str())
                    && !PLATFORM_ARGS.contains(&name.as_str())
                    // The exporter's, whether or not an ARG declares it.
                    && name.as_str() != "SOURCE_DATE_EPOCH"
                    // BuildKit's frontend options (BUILDKIT_SANDBOX_HOSTNAME,
                    // BUILDKIT_DOCKERFILE_CHECK, ...), read as build args.
                    && !name.starts_with("BUILDKIT_")
            })
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|name| name.as_str()).collect();
            self.warnings.push(Warning {
                rule: "UnusedBuildArg",
                message: format!(
                    "one or more build args were not consumed: {}",
                    names.join(", ")
                ),
                span: None,
            });
        }
        let mut graph = self
            .graph
            .finish(self.infos, target)
            .expect("the lowering makes graphs that hold together");
        graph.warnings = self.warnings;
        graph.source_date_epoch = self.source_date_epoch;
        Ok(graph)
    }
}

/// A step being dispatched, for descriptions and origins.
struct Step<'s> {
    stage: usize,
    number: usize,
    total: usize,
    located: &'s Located,
}

impl Step<'_> {
    fn origin(&self) -> Origin {
        Origin {
            span: self.located.span,
            line: self.located.lines.0,
            end_line: self.located.lines.1,
        }
    }
}

/// The shell's argv with room for the command after it: a clone then a
/// push would double the list (the vector of every shell-form RUN).
fn shell_prefix(shell: &[String]) -> Vec<String> {
    let mut args = Vec::with_capacity(shell.len() + 1);
    args.extend_from_slice(shell);
    args
}

/// `base` joined with `path` and cleaned, as an absolute path.
fn join_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A heredoc's body, leading tabs removed for `<<-`.
fn heredoc_content(heredoc: &Heredoc) -> String {
    if !heredoc.chomp {
        return heredoc.content.clone();
    }
    heredoc
        .content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new variable before each RUN makes environments that grow with
    /// every step, quadratic in the Dockerfile's size: lowering stops with
    /// an error at the limit instead of running out of memory.
    /// See: issue 16, "Memory in proportion".
    #[test]
    fn growing_environments_are_refused() {
        let value = "v".repeat(10_000);
        let mut dockerfile = String::from("FROM scratch\n");
        for index in 0..100 {
            dockerfile.push_str(&format!("ENV K{index}={value}\nRUN true\n"));
        }
        let error = crate::compile_graph(&dockerfile, &Options::default()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::EnvironmentsTooLarge);
        // The 14th RUN, line 29: the environments of the first 13 (PATH
        // and 1..13 variables of 10,004 bytes) are 911,222 bytes, and the
        // 14th's 140,122 more pass 1,048,576.
        let line = crate::LineIndex::new(&dockerfile).line(error.span.unwrap().start);
        assert_eq!(line, 2 * 14 + 1);
        // Shared, the same environment (build args included) for many RUNs
        // counts once: 1,000 copies would be 20 MB.
        let runs = "RUN true\n".repeat(1000);
        let shared = format!("FROM scratch\nENV A={value}\nARG B={value}\n{runs}");
        let graph = crate::compile_graph(&shared, &Options::default()).unwrap();
        let envs: Vec<Arc<[String]>> = graph
            .vertices()
            .filter_map(|vertex| match vertex.op {
                crate::graph::Op::Exec(exec) => Some(exec.env),
                _ => None,
            })
            .collect();
        assert_eq!(envs.len(), 1000);
        assert!(envs.iter().all(|env| *env == envs[0]));
        assert_eq!(envs[0].len(), 3);
        // And the graph keeps it once.
        assert_eq!(graph.run_contexts(), 1);
    }

    #[test]
    fn paths() {
        assert_eq!(join_path("/", "app"), "/app");
        assert_eq!(join_path("/a/b", "../c/./d"), "/a/c/d");
        assert_eq!(join_path("/a", "/x/"), "/x");
        assert_eq!(join_path("/", ".."), "/");
    }
}
