//! The build graph: plain data that the solver executes.
//!
//! This is the contract between `strata-frontend` and `strata-solver`, as
//! BuildKit's LLB is between its Dockerfile frontend and its solver: the
//! solver knows nothing of Dockerfiles, only of [`Vertex`]es and their
//! [`Op`]s.
//!
//! # Shape
//!
//! Vertices are stored in dependency order: every input of a vertex comes
//! before it, so iterating [`BuildGraph::vertices`] is a valid schedule.
//! Two kinds of edges exist:
//!
//! - `inputs`: filesystem dependencies. An [`Op::Exec`] or [`Op::File`] has its
//!   parent filesystem as `inputs[0]`, then the sources it reads (the build
//!   context, another stage, an image). Sources have none. [`Op::Config`]
//!   vertices have none either: they do not touch the filesystem.
//! - `previous`: the step before this one in its stage, in Dockerfile order.
//!   Walking `previous` from a stage's `last` vertex gives its image config
//!   edits and history, in reverse.
//!
//! Keeping config edits off the filesystem chain means that `LABEL` or `CMD`
//! above a `RUN` does not change the RUN's digest (as in BuildKit, unlike the
//! classic builder), while ENV, USER, WORKDIR and SHELL do, because the RUN
//! carries the environment, user, directory and argv it resolved.
//!
//! # Digests
//!
//! [`Vertex::digest`] is `sha256` over the [`canonical`] binary encoding (a
//! tag byte before every value, a length before every string: unambiguous
//! without JSON's escaping) of the op and the digests of its inputs (and of
//! `previous`, for config edits). The same Dockerfile and arguments give the
//! same digests; any change that alters what a step does alters its digest
//! and those of its dependents. Spans and labels are not part of it: moving
//! an instruction to another line changes nothing. Fields marked
//! `#[serde(skip)]` are not in it either (proxy variables, and the build
//! args, which `env` already holds); the same `Serialize` gives the plan's
//! JSON (`strata build --dry-run --format json`).

mod builder;
pub mod canonical;
mod git;
mod lower;
pub(crate) mod mount;
mod store;

pub use builder::{GraphBuilder, GraphError};
pub use git::{GitSource, git_url};
pub(crate) use lower::lower_owned;
pub use lower::{
    DEFAULT_PATH, ImageConfig, ImageResolver, MAX_RUN_ENVIRONMENTS, NamedContext, Options,
    Platform, ResolveError, ResolveFailure, Resolved, lower,
};
pub use mount::{Mount, MountType, Sharing, csv_fields};
pub(crate) use store::run_history;

use std::sync::Arc;

use crate::Warning;
use crate::span::Span;
use serde::Serialize;

/// Index of a vertex in [`BuildGraph::vertices`].
pub type VertexId = usize;

/// The whole build: vertices, stages and the target.
///
/// The vertices are kept packed (see `store.rs`: a big Dockerfile has a
/// vertex per line, and a [`Vertex`] is many times the size of its line);
/// [`BuildGraph::vertex`] and [`BuildGraph::vertices`] make them, in
/// dependency order.
#[derive(Debug, Clone)]
pub struct BuildGraph {
    store: store::Store,
    /// Every stage of the Dockerfile; `built` tells which ones the target needs.
    pub stages: Vec<StageInfo>,
    /// Index of the target stage in `stages`.
    pub target: usize,
    /// Warnings found while lowering (undefined variables, unused build args...).
    pub warnings: Vec<Warning>,
    /// The Dockerfile's default `SOURCE_DATE_EPOCH` (a global `ARG
    /// SOURCE_DATE_EPOCH=<seconds>`), when no build arg gives one: the
    /// build's epoch unless the caller has its own (BuildKit's convert.go).
    pub source_date_epoch: Option<u64>,
}

/// The plan's JSON: `vertices`, `stages` and `target`.
impl Serialize for BuildGraph {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut graph = serializer.serialize_struct("BuildGraph", 3)?;
        graph.serialize_field("vertices", &Vertices(self))?;
        graph.serialize_field("stages", &self.stages)?;
        graph.serialize_field("target", &self.target)?;
        graph.end()
    }
}

/// The vertices of a graph, serialized one at a time as they are made.
pub struct Vertices<'g>(pub &'g BuildGraph);

impl Serialize for Vertices<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.vertices())
    }
}

/// What the build knows of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageInfo {
    /// Position in the Dockerfile.
    pub index: usize,
    /// `AS name`, if any.
    pub name: Option<String>,
    /// The expanded FROM argument.
    pub base: String,
    /// Whether the target needs this stage.
    pub built: bool,
    /// The vertex holding the stage's final filesystem.
    pub rootfs: Option<VertexId>,
    /// The stage's last step (config and history are reached from it).
    pub last: Option<VertexId>,
    /// Where FROM is written.
    pub span: Span,
}

impl StageInfo {
    /// `name` or the index, as BuildKit shows stages.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// Where a vertex comes from in the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The instruction's bytes.
    pub span: Span,
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line.
    pub end_line: usize,
}

/// One step of the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vertex {
    /// This vertex's index.
    pub id: VertexId,
    /// `sha256:<hex>` over the op and its inputs (see the module docs).
    pub digest: String,
    /// What the step does.
    pub op: Op,
    /// Filesystem inputs: the parent first (for exec and file ops), then sources.
    pub inputs: Vec<VertexId>,
    /// The previous step of the same stage.
    pub previous: Option<VertexId>,
    /// The stage (index in [`BuildGraph::stages`]) the step belongs to.
    pub stage: usize,
    /// The instruction it was lowered from.
    pub origin: Option<Origin>,
    /// For the image history: the `created_by` text, if the step adds an entry.
    pub created_by: Option<String>,
    /// What the step is, for people; its [`Display`](std::fmt::Display) is
    /// the description progress shows, e.g. `[build 2/4] RUN make` (and the
    /// plan's JSON `description`).
    #[serde(rename = "description")]
    pub label: Label,
}

impl Vertex {
    /// The description shown for the step: its [`Label`], as text.
    pub fn description(&self) -> String {
        self.label.to_string()
    }
}

/// What a vertex is, as data: text is made from it at the edges (progress,
/// the plan, cache records) and nothing parses it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The build context: `[context] load build context`.
    Context,
    /// A named context that is not an image (`--build-context NAME=DIR`,
    /// or a URL): `[context NAME] load from client`.
    NamedContext {
        /// Its name.
        name: String,
        /// What is loaded: `load from client`, or the URL.
        text: String,
    },
    /// `FROM scratch`: `[internal] scratch`.
    Scratch,
    /// A base image (`FROM`, `COPY --from`, `RUN --mount from=`):
    /// `[internal] load image REF`.
    Image {
        /// The reference, as written after expansion.
        reference: String,
    },
    /// A Dockerfile instruction: `[build 2/4] RUN make`.
    Step(StepLabel),
}

/// A Dockerfile instruction's place in its stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLabel {
    /// The stage's [`StageInfo::label`]: its name, or `stage-N`; empty in a
    /// Dockerfile of one stage, which BuildKit shows without it.
    pub stage: String,
    /// 1-based position in the stage, counted as BuildKit counts: FROM an
    /// image is 1, then each RUN, COPY, ADD and WORKDIR (the steps that
    /// change files); other instructions, which show no step of their own,
    /// have the number of the step before them. An ONBUILD trigger is 1
    /// of 1.
    pub number: usize,
    /// The steps of the stage counted so.
    pub total: usize,
    /// The instruction as written (continuation lines joined).
    pub instruction: String,
}

impl StepLabel {
    /// The instruction's keyword as written (`RUN`, `copy`, ...).
    pub fn keyword(&self) -> &str {
        self.instruction
            .split_whitespace()
            .next()
            .unwrap_or_default()
    }
}

impl Label {
    /// The text after the bracket: the instruction for a step, what is
    /// loaded for a source.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Label::Context => "load build context".into(),
            Label::NamedContext { text, .. } => text.as_str().into(),
            Label::Scratch => "scratch".into(),
            Label::Image { reference } => format!("load image {reference}").into(),
            Label::Step(step) => step.instruction.as_str().into(),
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Context => formatter.write_str("[context] ")?,
            Label::NamedContext { name, .. } => write!(formatter, "[context {name}] ")?,
            Label::Scratch | Label::Image { .. } => formatter.write_str("[internal] ")?,
            Label::Step(step) => {
                formatter.write_str("[")?;
                if !step.stage.is_empty() {
                    write!(formatter, "{} ", step.stage)?;
                }
                // The number is as wide as the total, as BuildKit pads it.
                let width = step.total.max(1).to_string().len();
                write!(formatter, "{:>width$}/{}] ", step.number, step.total)?;
            }
        }
        formatter.write_str(&self.text())
    }
}

impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The operation of a vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// A filesystem to start from.
    Source(Source),
    /// Run a command on the parent filesystem. (Boxed, as [`FileOp::Copy`]
    /// is: a graph holds a vertex per instruction, and an [`Op`] is as
    /// large as its largest variant.)
    Exec(Box<Exec>),
    /// Change files on the parent filesystem.
    File(FileOp),
    /// Change the image config.
    Config(ConfigEdit),
}

/// Where a filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// The empty filesystem.
    Scratch,
    /// An image, by reference.
    Image {
        /// The reference as written after expansion.
        reference: String,
        /// The platform to resolve it for.
        platform: String,
        /// The digest (`sha256:...`, the manifest's) the resolver gave when
        /// the graph was lowered: the image the solver runs, whatever
        /// `reference` names by then. `None` when lowered without a
        /// resolver, or for an image it did not know: the solver then looks
        /// the name up. Not in the digest: the step's cache key has the
        /// image's own digest, and leaving it out keeps existing digests.
        #[serde(skip)]
        pinned: Option<String>,
    },
    /// The build context.
    Context {
        /// `context` for the main context, `named:NAME` for the directory
        /// `--build-context NAME=DIR` names (so that no name the user
        /// gives is the main context's).
        name: String,
    },
}

/// Network access of a RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// What the build chose (`--network` on build; host by default).
    #[default]
    Default,
    /// Only loopback.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// The default sandbox.
    #[default]
    Sandbox,
    /// Extra privileges (needs an entitlement).
    Insecure,
}

/// A command to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exec {
    /// The full argument vector (the shell already prepended for shell form).
    pub args: Vec<String>,
    /// `KEY=value` environment: image env, ENV, then the build args in scope.
    /// Shared: the RUNs between two ENVs (with no build arg in scope) hold
    /// one list, not a copy each.
    pub env: Arc<[String]>,
    /// The build args in scope that reach the step (those ENV does not
    /// shadow), in declaration order: also the tail of `env`, and the
    /// `|N K=V ...` of its history text. Not in the digest on its own:
    /// `env` already carries every one of them, and leaving it out keeps
    /// the digests (and so the cache keys) of existing builds.
    #[serde(skip)]
    pub build_args: Vec<(String, String)>,
    /// Proxy variables from `--build-arg` (not part of the digest, as BuildKit).
    #[serde(skip)]
    pub proxy_env: Vec<String>,
    /// `user[:group]`, empty for the image default (root).
    pub user: String,
    /// Working directory (absolute).
    pub cwd: String,
    /// `--network`.
    pub network: Network,
    /// `--security`.
    pub security: Security,
    /// `--mount`s.
    pub mounts: Vec<Mount>,
    /// Files to write before running (heredoc scripts with a `#!` line).
    pub files: Vec<InlineFile>,
}

/// A file made from text in the Dockerfile (a heredoc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    /// Where it goes (absolute, or relative to the destination for COPY).
    pub path: String,
    /// Its content.
    pub content: String,
    /// Its mode.
    pub mode: u32,
}

/// Where a COPY/ADD source comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CopySource {
    /// A path (or glob) in the filesystem of input `input`.
    Path {
        /// Index into the vertex's `inputs`.
        input: usize,
        /// The path, relative to that filesystem's root.
        path: String,
    },
    /// An HTTP(S) URL (ADD only).
    Url {
        /// The URL.
        url: String,
    },
    /// A git repository, cloned (ADD only): its tree (or a directory of
    /// it) is copied into the destination.
    Git(Box<GitSource>),
    /// A heredoc's content.
    Inline(InlineFile),
}

/// A file operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileOp {
    /// COPY or ADD.
    Copy(Box<FileCopy>),
    /// Make a directory and its parents (WORKDIR).
    Mkdir {
        /// Absolute path.
        path: String,
        /// The owner, `user[:group]` resolved in the image; empty for root.
        user: String,
    },
}

/// COPY and ADD, resolved. The default copies nothing, with no flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct FileCopy {
    /// ADD semantics (archives extracted, URLs fetched).
    pub add: bool,
    /// The sources.
    pub sources: Vec<CopySource>,
    /// The destination; absolute, ends with `/` when written so.
    pub destination: String,
    /// `--chown`, expanded.
    pub chown: Option<String>,
    /// `--chmod`, expanded and checked.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// ADD `--checksum`.
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--unpack`.
    pub unpack: Option<bool>,
}

/// An edit to the image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "set", content = "value", rename_all = "snake_case")]
pub enum ConfigEdit {
    /// ENV: pairs added or replaced.
    Env(Vec<(String, String)>),
    /// LABEL.
    Label(Vec<(String, String)>),
    /// CMD.
    Cmd(Vec<String>),
    /// ENTRYPOINT (resets a CMD inherited from the base image, as docker).
    Entrypoint(Vec<String>),
    /// WORKDIR.
    Workdir(String),
    /// USER.
    User(String),
    /// EXPOSE, as `port/proto`.
    Expose(Vec<String>),
    /// VOLUME.
    Volume(Vec<String>),
    /// SHELL.
    Shell(Vec<String>),
    /// STOPSIGNAL.
    StopSignal(String),
    /// HEALTHCHECK.
    Healthcheck(HealthConfig),
    /// ONBUILD: a trigger for images built from this one.
    Onbuild(String),
    /// ARG: no change to the config, only its history entry (`ARG a=1 b`).
    Arg(String),
    /// The triggers a stage inherits from the stage it is built on, which
    /// it runs instead of passing on (BuildKit clears them so).
    ClearOnbuild,
    /// MAINTAINER: the author field.
    Maintainer(String),
}

impl ConfigEdit {
    /// The image history's `created_by` for this edit, as docker writes it;
    /// `None` for WORKDIR, whose history entry goes with its mkdir step.
    pub fn history_text(&self) -> Option<String> {
        let pairs = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        Some(match self {
            ConfigEdit::Env(values) => format!("ENV {}", pairs(values)),
            ConfigEdit::Label(values) => format!("LABEL {}", pairs(values)),
            ConfigEdit::Cmd(args) => format!("CMD {}", go_list(args)),
            ConfigEdit::Entrypoint(args) => format!("ENTRYPOINT {}", go_list(args)),
            ConfigEdit::Workdir(_) | ConfigEdit::ClearOnbuild => return None,
            ConfigEdit::User(user) => format!("USER {user}"),
            // Go's `%v` of BuildKit's sorted port list.
            ConfigEdit::Expose(ports) => {
                let mut sorted = ports.clone();
                sorted.sort();
                format!("EXPOSE [{}]", sorted.join(" "))
            }
            ConfigEdit::Volume(paths) => format!("VOLUME {}", go_list(paths)),
            ConfigEdit::Shell(args) => format!("SHELL {}", go_list(args)),
            ConfigEdit::StopSignal(signal) => format!("STOPSIGNAL {signal}"),
            ConfigEdit::Healthcheck(health) => format!("HEALTHCHECK {}", go_list(&health.test)),
            ConfigEdit::Onbuild(trigger) => format!("ONBUILD {trigger}"),
            ConfigEdit::Arg(args) => format!("ARG {args}"),
            ConfigEdit::Maintainer(name) => format!("MAINTAINER {name}"),
        })
    }
}

/// Go's `%q` of a `[]string` (`["a" "b"]`), as docker's history shows lists.
fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|item| crate::ast::go_quote(item))
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// The image config's `Healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// Nanoseconds; 0 inherits.
    pub interval: u64,
    /// Nanoseconds; 0 inherits.
    pub timeout: u64,
    /// Nanoseconds; 0 inherits.
    pub start_period: u64,
    /// Nanoseconds; 0 inherits.
    pub start_interval: u64,
    /// 0 inherits.
    pub retries: u64,
}

impl BuildGraph {
    /// The target stage.
    pub fn target_stage(&self) -> &StageInfo {
        &self.stages[self.target]
    }

    /// How many vertices the graph has.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Vertex `id`.
    ///
    /// # Panics
    ///
    /// If there is no such vertex, as indexing a list does.
    pub fn vertex(&self, id: VertexId) -> Vertex {
        self.store.vertex(id)
    }

    /// Vertex `id`, if there is one.
    pub fn get(&self, id: VertexId) -> Option<Vertex> {
        (id < self.store.len()).then(|| self.store.vertex(id))
    }

    /// Every vertex, in dependency order.
    pub fn vertices(&self) -> impl ExactSizeIterator<Item = Vertex> + '_ {
        (0..self.store.len()).map(|id| self.store.vertex(id))
    }

    /// Vertex `id`'s stage, without making the vertex.
    pub fn stage_of(&self, id: VertexId) -> usize {
        self.store.stage(id)
    }

    /// Vertex `id`'s previous step, without making the vertex.
    pub fn previous_of(&self, id: VertexId) -> Option<VertexId> {
        self.store.previous(id)
    }

    /// Vertex `id`'s inputs, without making the vertex.
    pub fn inputs_of(&self, id: VertexId) -> impl ExactSizeIterator<Item = VertexId> + '_ {
        self.store.inputs(id)
    }

    /// Whether vertex `id` is a RUN ([`Op::Exec`]), without making the
    /// vertex.
    pub fn is_exec(&self, id: VertexId) -> bool {
        self.store.is_exec(id)
    }

    /// Whether vertex `id` is a build context ([`Source::Context`]),
    /// without making the vertex.
    pub fn is_context(&self, id: VertexId) -> bool {
        self.store.context_name(id).is_some()
    }

    /// The name of the build context vertex `id` is (see
    /// [`Source::Context`]), without making the vertex.
    pub fn context_name(&self, id: VertexId) -> Option<&str> {
        self.store.context_name(id)
    }

    /// Whether vertex `id` is a config edit ([`Op::Config`]), without
    /// making the vertex.
    pub fn is_config(&self, id: VertexId) -> bool {
        self.store.is_config(id)
    }

    /// How many RUN contexts (environment, user, directory, build args)
    /// the graph keeps: once per change, however many RUNs share one.
    #[cfg(test)]
    pub(crate) fn run_contexts(&self) -> usize {
        self.store.run_contexts()
    }

    /// For each vertex, its depth in the filesystem graph: 0 for sources,
    /// else one more than its deepest input. Steps of equal depth do not
    /// depend on each other, so they can run in parallel. Config edits take
    /// no time; they get the depth of the step before them.
    ///
    /// `u32`s: a graph has fewer than 2^32 vertices, and a big one has
    /// millions, each with a level while this list is held.
    pub fn levels(&self) -> Vec<u32> {
        let mut levels = vec![0u32; self.store.len()];
        for id in 0..self.store.len() {
            levels[id] = if self.store.is_config(id) {
                self.store
                    .previous(id)
                    .map(|previous| levels[previous])
                    .unwrap_or(0)
            } else {
                self.store
                    .inputs(id)
                    .map(|input| levels[input] + 1)
                    .max()
                    .unwrap_or(0)
            };
        }
        levels
    }

    /// The vertices of the stage chain ending at `last`, first step first.
    pub fn chain(&self, last: VertexId) -> Vec<VertexId> {
        let mut chain: Vec<VertexId> = self.chain_back(last).collect();
        chain.reverse();
        chain
    }

    /// The same chain, from `last` back to the first step: for a caller
    /// that keeps it in a smaller list than [`BuildGraph::chain`]'s (a stage
    /// may have millions of steps).
    pub fn chain_back(&self, last: VertexId) -> impl Iterator<Item = VertexId> + '_ {
        std::iter::successors(Some(last), |current| self.store.previous(*current))
    }
}
