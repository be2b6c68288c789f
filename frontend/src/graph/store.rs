//! How a [`BuildGraph`](super::BuildGraph) holds its vertices: packed, and
//! given out as [`Vertex`] values made on demand.
//!
//! A Dockerfile of 16 MiB (the most strata reads) can hold 1.8 million
//! `RUN true` lines, 9 bytes each, and the graph has a vertex for each. A
//! [`Vertex`] as the solver reads it is over 600 bytes once its strings,
//! its boxed op and its argument list are counted, which is 70 times the
//! line it came from; issue 16 bounds compiling to about 20 times the file.
//! So the graph keeps each vertex as a [`Node`] of fixed size (120 bytes)
//! and puts what many vertices share in tables beside it:
//!
//! - the digest as its 32 raw bytes, not `sha256:` and 64 hex digits;
//! - every text (instructions, the last argument of a RUN, history texts,
//!   the strings of config edits, COPY paths and WORKDIR paths) in one
//!   growing string, addressed by offset and length, not one allocation
//!   each, and a text that is part of its vertex's instruction (`true` in
//!   `RUN true`) as a place in it;
//! - a RUN's environment, build args, user and directory, which stay the
//!   same from one RUN to the next until an ENV, ARG, USER or WORKDIR, once
//!   per change (the environment as texts); and its shell (`/bin/sh -c`),
//!   once per SHELL;
//! - a history text that can be made again from the op (a RUN's, a config
//!   edit's) is not kept at all.
//!
//! What is rare (mounts, inline files, URL, git and heredoc sources of
//! COPY, image sources, HEALTHCHECK) stays as it is, boxed.
//! A [`Vertex`] made from a node is the one that was added, field for
//! field: debug builds (every test) check each one as it is added
//! (`GraphBuilder::add`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    ConfigEdit, CopySource, Exec, FileCopy, FileOp, InlineFile, Label, Mount, Network, Op, Origin,
    Security, StepLabel, Vertex, VertexId,
};
use crate::span::Span;

/// `u32` for "none" in the packed fields.
const NONE: u32 = u32::MAX;

/// Where a text is in [`Texts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Text {
    /// Offset in [`Texts::bytes`], or [`NONE`]: `len` is then the index in
    /// [`Texts::spilled`].
    start: u32,
    len: u32,
}

/// Every text of the graph, one after the other. (Offsets are `u32`, to
/// keep nodes small; texts past 4 GiB, which no Dockerfile of 16 MiB
/// reaches without hitting the lowering's own limits first, are kept
/// apart, one allocation each, rather than refused.)
#[derive(Debug, Clone, Default)]
struct Texts {
    bytes: String,
    spilled: Vec<Box<str>>,
    /// The instruction of the vertex being added: most of the op's texts
    /// are part of it (`true` of `RUN true`, the key and value of `LABEL
    /// k=v`, the paths of `COPY a /b/`), and are kept as a place in it
    /// rather than again.
    instruction: Option<Text>,
}

/// Instructions up to this long are searched for the op's texts; longer
/// ones only checked for a text they end with, so that adding a vertex
/// stays linear in its size.
const SEARCHED: usize = 4096;

impl Texts {
    /// Add the instruction of the vertex being added.
    fn push_instruction(&mut self, text: &str) -> Text {
        let text = self.append(text);
        self.instruction = Some(text);
        text
    }

    /// Add a text of the vertex being added: a place in its instruction,
    /// if it is there.
    fn push(&mut self, text: &str) -> Text {
        if let Some(instruction) = self.instruction.filter(|text| text.start != NONE) {
            let within = self.get(instruction);
            let at = if within.ends_with(text) {
                Some(within.len() - text.len())
            } else if within.len() <= SEARCHED {
                within.find(text)
            } else {
                None
            };
            if let Some(at) = at {
                return Text {
                    start: instruction.start + index_u32(at),
                    len: index_u32(text.len()),
                };
            }
        }
        self.append(text)
    }

    /// Add a text at the end.
    fn append(&mut self, text: &str) -> Text {
        let start = u32::try_from(self.bytes.len()).ok();
        let end = u32::try_from(self.bytes.len() + text.len()).ok();
        match (start, end) {
            (Some(start), Some(end)) if end < NONE => {
                self.bytes.push_str(text);
                Text {
                    start,
                    len: end - start,
                }
            }
            _ => {
                self.spilled.push(text.into());
                Text {
                    start: NONE,
                    len: index_u32(self.spilled.len() - 1),
                }
            }
        }
    }

    fn get(&self, text: Text) -> &str {
        if text.start == NONE {
            return &self.spilled[text.len as usize];
        }
        let start = text.start as usize;
        &self.bytes[start..start + text.len as usize]
    }
}

/// A table index as `u32`. No table has more entries than the graph's
/// texts have bytes, and the lowering's limits (a 16 MiB Dockerfile, 256
/// MiB of RUN environments) keep those far below 4 GiB; a graph made by
/// hand would need hundreds of gigabytes before it got here.
pub(super) fn index_u32(index: usize) -> u32 {
    u32::try_from(index).expect("a build graph has fewer than 2^32 vertices")
}

/// What a RUN shares with the RUNs around it.
#[derive(Debug, Clone)]
struct ExecContext {
    /// The environment's entries: `lists[start..start + len]`. (A list
    /// per ENV that a RUN follows, each with every variable: as texts,
    /// half the size of a list of strings.)
    env: (u32, u32),
    user: Text,
    cwd: Text,
    /// The build args and proxy variables, in `exec_args`, or [`NONE`].
    args: u32,
}

/// A RUN's build args and proxy variables (most have none).
type ExecArgs = (Vec<(String, String)>, Vec<String>);

/// The last RUN context added, as the lowering gave it, to know the next
/// RUN's is the same without reading it back from the texts.
#[derive(Debug, Clone)]
struct LastContext {
    env: Arc<[String]>,
    build_args: Vec<(String, String)>,
    proxy_env: Vec<String>,
    user: String,
    cwd: String,
}

impl LastContext {
    /// Whether two RUNs share their context: the environment is compared
    /// by pointer first, as RUNs between two ENVs hold the same list.
    fn same(&self, other: &LastContext) -> bool {
        (Arc::ptr_eq(&self.env, &other.env) || self.env == other.env)
            && self.build_args == other.build_args
            && self.proxy_env == other.proxy_env
            && self.user == other.user
            && self.cwd == other.cwd
    }
}

/// What few RUNs have.
#[derive(Debug, Clone)]
struct ExecExtra {
    mounts: Vec<Mount>,
    files: Vec<InlineFile>,
}

/// A vertex's op, packed.
#[derive(Debug, Clone)]
enum StoredOp {
    /// A RUN: its argument list is `heads[head]` and then `last` (when
    /// `has_last`), the rest is in the tables.
    Exec {
        context: u32,
        head: u32,
        last: Text,
        has_last: bool,
        /// Index in `extras`, or [`NONE`].
        extra: u32,
        network: Network,
        security: Security,
    },
    /// A config edit made of strings (all but HEALTHCHECK): its strings
    /// are `lists[start..start + count]`, a pair's key then its value.
    Config {
        kind: ConfigKind,
        start: u32,
        count: u32,
    },
    /// WORKDIR's directory.
    Mkdir { path: Text, user: Text },
    /// COPY and ADD.
    Copy(Box<PackedCopy>),
    /// Any other op, as it is.
    Other(Box<Op>),
}

/// A [`FileCopy`], its strings in the arena.
#[derive(Debug, Clone)]
struct PackedCopy {
    /// `copy_sources[start..start + len]`.
    sources: (u32, u32),
    destination: Text,
    /// [`ABSENT`] for none, as the two below.
    chown: Text,
    chmod: Text,
    checksum: Text,
    /// `lists[start..start + len]`.
    exclude: (u32, u32),
    add: bool,
    link: bool,
    parents: bool,
    keep_git_dir: bool,
    unpack: Option<bool>,
}

/// A COPY source: a path in one of the inputs (nearly always), or any
/// other, as it is.
#[derive(Debug, Clone)]
enum PackedSource {
    Path { input: u32, path: Text },
    Other(Box<CopySource>),
}

/// Which [`ConfigEdit`] a [`StoredOp::Config`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigKind {
    Env,
    Label,
    Cmd,
    Entrypoint,
    Workdir,
    User,
    Expose,
    Volume,
    Shell,
    StopSignal,
    Onbuild,
    Arg,
    ClearOnbuild,
    Maintainer,
}

/// A vertex's label, packed.
#[derive(Debug, Clone, Copy)]
enum StoredLabel {
    Context,
    NamedContext {
        name: Text,
        text: Text,
    },
    Scratch,
    Image(Text),
    Step {
        /// Index in `stage_labels`.
        stage: u32,
        number: u32,
        total: u32,
        instruction: Text,
    },
}

/// A vertex's `created_by`: a text, or one of the two [`Text`]s below
/// (whose `len` no spilled text reaches).
type StoredHistory = Text;

/// No text (no `created_by`, no `--chown`).
const ABSENT: Text = Text {
    start: NONE,
    len: NONE,
};

/// The `created_by` is [`derived_history`] of the op.
const DERIVED_HISTORY: Text = Text {
    start: NONE,
    len: NONE - 1,
};

/// One vertex, packed.
#[derive(Debug, Clone)]
struct Node {
    digest: [u8; 32],
    op: StoredOp,
    /// `inputs[start..start + len]` of the store.
    inputs: (u32, u32),
    previous: u32,
    stage: u32,
    /// Span start and end, first and last line; no origin when the first
    /// line is [`NONE`] (lines are saturated below it).
    origin: [u32; 4],
    label: StoredLabel,
    created_by: StoredHistory,
}

/// The vertices of a graph.
#[derive(Debug, Clone, Default)]
pub(super) struct Store {
    nodes: Vec<Node>,
    inputs: Vec<u32>,
    texts: Texts,
    /// The strings of packed config edits, COPY excludes and RUN
    /// environments.
    lists: Vec<Text>,
    copy_sources: Vec<PackedSource>,
    contexts: Vec<ExecContext>,
    last_context: Option<LastContext>,
    exec_args: Vec<ExecArgs>,
    heads: Vec<Arc<[String]>>,
    extras: Vec<ExecExtra>,
    stage_labels: Vec<String>,
    /// Where each stage label is in `stage_labels` (a Dockerfile may have
    /// thousands of stages).
    stage_label_index: HashMap<String, u32>,
}

impl Store {
    pub(super) fn with_capacity(vertices: usize) -> Store {
        Store {
            nodes: Vec::with_capacity(vertices),
            inputs: Vec::with_capacity(vertices),
            ..Store::default()
        }
    }

    /// Give back what the growing tables hold beyond their content: each
    /// doubles as it grows, so up to half of it is room, once the graph
    /// is complete.
    pub(super) fn shrink_to_fit(&mut self) {
        self.nodes.shrink_to_fit();
        self.inputs.shrink_to_fit();
        self.texts.bytes.shrink_to_fit();
        self.lists.shrink_to_fit();
        self.copy_sources.shrink_to_fit();
        self.contexts.shrink_to_fit();
        self.exec_args.shrink_to_fit();
        // Only needed while vertices are added.
        self.last_context = None;
        self.heads.shrink_to_fit();
        self.extras.shrink_to_fit();
    }

    #[cfg(test)]
    pub(super) fn run_contexts(&self) -> usize {
        self.contexts.len()
    }

    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(super) fn digest(&self, id: VertexId) -> &[u8; 32] {
        &self.nodes[id].digest
    }

    pub(super) fn previous(&self, id: VertexId) -> Option<VertexId> {
        let previous = self.nodes[id].previous;
        (previous != NONE).then_some(previous as usize)
    }

    pub(super) fn inputs(&self, id: VertexId) -> impl ExactSizeIterator<Item = VertexId> + '_ {
        let (start, len) = self.nodes[id].inputs;
        self.inputs[start as usize..(start + len) as usize]
            .iter()
            .map(|input| *input as usize)
    }

    pub(super) fn stage(&self, id: VertexId) -> usize {
        self.nodes[id].stage as usize
    }

    /// Whether the vertex edits the image config (it has no filesystem).
    pub(super) fn is_config(&self, id: VertexId) -> bool {
        match &self.nodes[id].op {
            StoredOp::Config { .. } => true,
            StoredOp::Other(op) => matches!(**op, Op::Config(_)),
            _ => false,
        }
    }

    /// Whether the vertex is a RUN.
    pub(super) fn is_exec(&self, id: VertexId) -> bool {
        match &self.nodes[id].op {
            StoredOp::Exec { .. } => true,
            StoredOp::Other(op) => matches!(**op, Op::Exec(_)),
            _ => false,
        }
    }

    /// The name of the build context the vertex is, if it is one.
    pub(super) fn context_name(&self, id: VertexId) -> Option<&str> {
        match &self.nodes[id].op {
            StoredOp::Other(op) => match &**op {
                Op::Source(super::Source::Context { name }) => Some(name),
                _ => None,
            },
            _ => None,
        }
    }

    /// The input indexes the op names (COPY sources, mounts), to check
    /// that each is one of the vertex's inputs.
    pub(super) fn named_inputs(&self, id: VertexId) -> Vec<usize> {
        match &self.nodes[id].op {
            StoredOp::Exec { extra, .. } if *extra != NONE => self.extras[*extra as usize]
                .mounts
                .iter()
                .filter_map(|mount| mount.input)
                .collect(),
            StoredOp::Copy(copy) => self
                .copy_sources(copy)
                .iter()
                .filter_map(|source| match source {
                    PackedSource::Path { input, .. } => Some(*input as usize),
                    PackedSource::Other(_) => None,
                })
                .collect(),
            StoredOp::Exec { .. }
            | StoredOp::Config { .. }
            | StoredOp::Mkdir { .. }
            | StoredOp::Other(_) => Vec::new(),
        }
    }

    /// Add `vertex` with its `digest`; its id is the next one.
    pub(super) fn push(&mut self, vertex: Vertex, digest: [u8; 32]) -> u32 {
        let id = index_u32(self.nodes.len());
        let derived = match &vertex.created_by {
            Some(text) => derived_history(&vertex.op).as_deref() == Some(text.as_str()),
            None => false,
        };
        let start = index_u32(self.inputs.len());
        self.inputs
            .extend(vertex.inputs.iter().map(|input| index_u32(*input)));
        // The label first: its instruction is where the op's texts are
        // looked for (see [`Texts::push`]).
        let label = self.pack_label(vertex.label);
        let op = self.pack_op(vertex.op);
        let history = match &vertex.created_by {
            None => ABSENT,
            Some(_) if derived => DERIVED_HISTORY,
            Some(text) => self.texts.push(text),
        };
        let origin = match vertex.origin {
            Some(origin) => [
                origin.span.start,
                origin.span.end,
                saturate(origin.line),
                saturate(origin.end_line),
            ],
            None => [0, 0, NONE, 0],
        };
        self.nodes.push(Node {
            digest,
            op,
            inputs: (start, index_u32(vertex.inputs.len())),
            previous: vertex.previous.map_or(NONE, index_u32),
            stage: index_u32(vertex.stage),
            origin,
            label,
            created_by: history,
        });
        id
    }

    fn pack_op(&mut self, op: Op) -> StoredOp {
        let exec = match op {
            Op::Exec(exec) => exec,
            Op::Config(edit) => match self.pack_config(&edit) {
                Some(packed) => return packed,
                None => return StoredOp::Other(Box::new(Op::Config(edit).clone())),
            },
            Op::File(FileOp::Copy(copy)) => return StoredOp::Copy(Box::new(self.pack_copy(*copy))),
            Op::File(FileOp::Mkdir { path, user }) => {
                return StoredOp::Mkdir {
                    path: self.texts.push(&path),
                    user: self.texts.push(&user),
                };
            }
            // A clone, not the op itself: the lowering builds strings with
            // room to spare (an expanded word has the capacity of its
            // buffer), and a clone is exactly as long as its content.
            op => return StoredOp::Other(Box::new(op.clone())),
        };
        let Exec {
            mut args,
            env,
            build_args,
            proxy_env,
            user,
            cwd,
            network,
            security,
            mounts,
            files,
        } = *exec;
        let incoming = LastContext {
            env,
            build_args,
            proxy_env,
            user,
            cwd,
        };
        // RUNs come stage by stage, so the one before shares most often.
        let context = match &self.last_context {
            Some(last) if last.same(&incoming) => self.contexts.len() - 1,
            _ => {
                let start = index_u32(self.lists.len());
                for entry in incoming.env.iter() {
                    let text = self.texts.append(entry);
                    self.lists.push(text);
                }
                let env = (start, index_u32(self.lists.len()) - start);
                let args = if incoming.build_args.is_empty() && incoming.proxy_env.is_empty() {
                    NONE
                } else {
                    self.exec_args
                        .push((incoming.build_args.clone(), incoming.proxy_env.clone()));
                    index_u32(self.exec_args.len() - 1)
                };
                self.contexts.push(ExecContext {
                    env,
                    user: self.texts.append(&incoming.user),
                    cwd: self.texts.append(&incoming.cwd),
                    args,
                });
                self.last_context = Some(incoming);
                self.contexts.len() - 1
            }
        };
        let last = args.pop();
        let head = match self.heads.last() {
            Some(head) if **head == *args => self.heads.len() - 1,
            _ => {
                self.heads.push(args.into());
                self.heads.len() - 1
            }
        };
        let extra = if mounts.is_empty() && files.is_empty() {
            NONE
        } else {
            self.extras.push(ExecExtra { mounts, files });
            index_u32(self.extras.len() - 1)
        };
        StoredOp::Exec {
            context: index_u32(context),
            head: index_u32(head),
            last: match &last {
                Some(last) => self.texts.push(last),
                None => Text { start: 0, len: 0 },
            },
            has_last: last.is_some(),
            extra,
            network,
            security,
        }
    }

    fn pack_copy(&mut self, copy: FileCopy) -> PackedCopy {
        let start = index_u32(self.copy_sources.len());
        for source in copy.sources {
            let packed = match source {
                CopySource::Path { input, path } => PackedSource::Path {
                    input: index_u32(input),
                    path: self.texts.push(&path),
                },
                other => PackedSource::Other(Box::new(other.clone())),
            };
            self.copy_sources.push(packed);
        }
        let sources = (start, index_u32(self.copy_sources.len()) - start);
        let start = index_u32(self.lists.len());
        for pattern in &copy.exclude {
            let text = self.texts.push(pattern);
            self.lists.push(text);
        }
        let exclude = (start, index_u32(self.lists.len()) - start);
        let destination = self.texts.push(&copy.destination);
        let mut optional = |text: &Option<String>| match text {
            Some(text) => self.texts.push(text),
            None => ABSENT,
        };
        PackedCopy {
            sources,
            destination,
            chown: optional(&copy.chown),
            chmod: optional(&copy.chmod),
            checksum: optional(&copy.checksum),
            exclude,
            add: copy.add,
            link: copy.link,
            parents: copy.parents,
            keep_git_dir: copy.keep_git_dir,
            unpack: copy.unpack,
        }
    }

    fn copy_sources(&self, copy: &PackedCopy) -> &[PackedSource] {
        let (start, len) = copy.sources;
        &self.copy_sources[start as usize..(start + len) as usize]
    }

    /// The [`FileCopy`] [`Store::pack_copy`] packed.
    fn copy(&self, copy: &PackedCopy) -> FileCopy {
        let optional = |text: Text| (text != ABSENT).then(|| self.texts.get(text).to_owned());
        let (start, len) = copy.exclude;
        FileCopy {
            add: copy.add,
            sources: self
                .copy_sources(copy)
                .iter()
                .map(|source| match source {
                    PackedSource::Path { input, path } => CopySource::Path {
                        input: *input as usize,
                        path: self.texts.get(*path).to_owned(),
                    },
                    PackedSource::Other(source) => (**source).clone(),
                })
                .collect(),
            destination: self.texts.get(copy.destination).to_owned(),
            chown: optional(copy.chown),
            chmod: optional(copy.chmod),
            link: copy.link,
            exclude: self.lists[start as usize..(start + len) as usize]
                .iter()
                .map(|text| self.texts.get(*text).to_owned())
                .collect(),
            parents: copy.parents,
            checksum: optional(copy.checksum),
            keep_git_dir: copy.keep_git_dir,
            unpack: copy.unpack,
        }
    }

    /// A config edit as texts, or `None` for HEALTHCHECK (rare, and not
    /// only strings), which stays boxed.
    fn pack_config(&mut self, edit: &ConfigEdit) -> Option<StoredOp> {
        let start = index_u32(self.lists.len());
        let mut push = |text: &str| {
            let text = self.texts.push(text);
            self.lists.push(text);
        };
        let kind = match edit {
            ConfigEdit::Env(pairs) | ConfigEdit::Label(pairs) => {
                for (key, value) in pairs {
                    push(key);
                    push(value);
                }
                match edit {
                    ConfigEdit::Env(_) => ConfigKind::Env,
                    _ => ConfigKind::Label,
                }
            }
            ConfigEdit::Cmd(items)
            | ConfigEdit::Entrypoint(items)
            | ConfigEdit::Expose(items)
            | ConfigEdit::Volume(items)
            | ConfigEdit::Shell(items) => {
                items.iter().for_each(|item| push(item));
                match edit {
                    ConfigEdit::Cmd(_) => ConfigKind::Cmd,
                    ConfigEdit::Entrypoint(_) => ConfigKind::Entrypoint,
                    ConfigEdit::Expose(_) => ConfigKind::Expose,
                    ConfigEdit::Volume(_) => ConfigKind::Volume,
                    _ => ConfigKind::Shell,
                }
            }
            ConfigEdit::Workdir(text)
            | ConfigEdit::User(text)
            | ConfigEdit::StopSignal(text)
            | ConfigEdit::Onbuild(text)
            | ConfigEdit::Arg(text)
            | ConfigEdit::Maintainer(text) => {
                push(text);
                match edit {
                    ConfigEdit::Workdir(_) => ConfigKind::Workdir,
                    ConfigEdit::User(_) => ConfigKind::User,
                    ConfigEdit::StopSignal(_) => ConfigKind::StopSignal,
                    ConfigEdit::Onbuild(_) => ConfigKind::Onbuild,
                    ConfigEdit::Arg(_) => ConfigKind::Arg,
                    _ => ConfigKind::Maintainer,
                }
            }
            ConfigEdit::ClearOnbuild => ConfigKind::ClearOnbuild,
            ConfigEdit::Healthcheck(_) => return None,
        };
        Some(StoredOp::Config {
            kind,
            start,
            count: index_u32(self.lists.len()) - start,
        })
    }

    /// The config edit [`Store::pack_config`] packed.
    fn config(&self, kind: ConfigKind, start: u32, count: u32) -> ConfigEdit {
        let mut items = self.lists[start as usize..(start + count) as usize]
            .iter()
            .map(|text| self.texts.get(*text).to_owned());
        let mut pairs = || {
            let mut pairs = Vec::with_capacity(count as usize / 2);
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                pairs.push((key, value));
            }
            pairs
        };
        match kind {
            ConfigKind::Env => ConfigEdit::Env(pairs()),
            ConfigKind::Label => ConfigEdit::Label(pairs()),
            ConfigKind::ClearOnbuild => ConfigEdit::ClearOnbuild,
            list @ (ConfigKind::Cmd
            | ConfigKind::Entrypoint
            | ConfigKind::Expose
            | ConfigKind::Volume
            | ConfigKind::Shell) => {
                let items: Vec<String> = items.collect();
                match list {
                    ConfigKind::Cmd => ConfigEdit::Cmd(items),
                    ConfigKind::Entrypoint => ConfigEdit::Entrypoint(items),
                    ConfigKind::Expose => ConfigEdit::Expose(items),
                    ConfigKind::Volume => ConfigEdit::Volume(items),
                    _ => ConfigEdit::Shell(items),
                }
            }
            single => {
                let text = items.next().unwrap_or_default();
                match single {
                    ConfigKind::Workdir => ConfigEdit::Workdir(text),
                    ConfigKind::User => ConfigEdit::User(text),
                    ConfigKind::StopSignal => ConfigEdit::StopSignal(text),
                    ConfigKind::Onbuild => ConfigEdit::Onbuild(text),
                    ConfigKind::Arg => ConfigEdit::Arg(text),
                    _ => ConfigEdit::Maintainer(text),
                }
            }
        }
    }

    fn pack_label(&mut self, label: Label) -> StoredLabel {
        if !matches!(label, Label::Step(_)) {
            // No instruction: the op's texts are added whole.
            self.texts.instruction = None;
        }
        match label {
            Label::Context => StoredLabel::Context,
            Label::NamedContext { name, text } => StoredLabel::NamedContext {
                name: self.texts.push(&name),
                text: self.texts.push(&text),
            },
            Label::Scratch => StoredLabel::Scratch,
            Label::Image { reference } => StoredLabel::Image(self.texts.push(&reference)),
            Label::Step(step) => {
                let stage = match self.stage_label_index.get(&step.stage) {
                    Some(index) => *index,
                    None => {
                        let index = index_u32(self.stage_labels.len());
                        self.stage_label_index.insert(step.stage.clone(), index);
                        self.stage_labels.push(step.stage);
                        index
                    }
                };
                StoredLabel::Step {
                    stage,
                    number: saturate(step.number),
                    total: saturate(step.total),
                    instruction: self.texts.push_instruction(&step.instruction),
                }
            }
        }
    }

    /// Vertex `id`, as it was added (with its id and digest).
    pub(super) fn vertex(&self, id: VertexId) -> Vertex {
        let node = &self.nodes[id];
        let op = self.op(node);
        let created_by = match node.created_by {
            ABSENT => None,
            DERIVED_HISTORY => derived_history(&op),
            text => Some(self.texts.get(text).to_owned()),
        };
        Vertex {
            id,
            digest: super::builder::digest_string(&node.digest),
            op,
            inputs: self.inputs(id).collect(),
            previous: self.previous(id),
            stage: node.stage as usize,
            origin: match node.origin {
                [_, _, NONE, _] => None,
                [start, end, line, end_line] => Some(Origin {
                    span: Span { start, end },
                    line: line as usize,
                    end_line: end_line as usize,
                }),
            },
            created_by,
            label: self.label(node.label),
        }
    }

    fn op(&self, node: &Node) -> Op {
        match &node.op {
            StoredOp::Other(op) => (**op).clone(),
            StoredOp::Config { kind, start, count } => {
                Op::Config(self.config(*kind, *start, *count))
            }
            StoredOp::Copy(copy) => Op::File(FileOp::Copy(Box::new(self.copy(copy)))),
            StoredOp::Mkdir { path, user } => Op::File(FileOp::Mkdir {
                path: self.texts.get(*path).to_owned(),
                user: self.texts.get(*user).to_owned(),
            }),
            StoredOp::Exec {
                context,
                head,
                last,
                has_last,
                extra,
                network,
                security,
            } => {
                let context = &self.contexts[*context as usize];
                let (start, len) = context.env;
                let env: Arc<[String]> = self.lists[start as usize..(start + len) as usize]
                    .iter()
                    .map(|text| self.texts.get(*text).to_owned())
                    .collect();
                let (build_args, proxy_env) = match self.exec_args.get(context.args as usize) {
                    Some((build_args, proxy_env)) => (build_args.clone(), proxy_env.clone()),
                    None => (Vec::new(), Vec::new()),
                };
                let head = &self.heads[*head as usize];
                let mut args = Vec::with_capacity(head.len() + 1);
                args.extend(head.iter().cloned());
                if *has_last {
                    args.push(self.texts.get(*last).to_owned());
                }
                let (mounts, files) = match self.extras.get(*extra as usize) {
                    Some(extra) => (extra.mounts.clone(), extra.files.clone()),
                    None => (Vec::new(), Vec::new()),
                };
                Op::Exec(Box::new(Exec {
                    args,
                    env,
                    build_args,
                    proxy_env,
                    user: self.texts.get(context.user).to_owned(),
                    cwd: self.texts.get(context.cwd).to_owned(),
                    network: *network,
                    security: *security,
                    mounts,
                    files,
                }))
            }
        }
    }

    fn label(&self, label: StoredLabel) -> Label {
        match label {
            StoredLabel::Context => Label::Context,
            StoredLabel::NamedContext { name, text } => Label::NamedContext {
                name: self.texts.get(name).to_owned(),
                text: self.texts.get(text).to_owned(),
            },
            StoredLabel::Scratch => Label::Scratch,
            StoredLabel::Image(text) => Label::Image {
                reference: self.texts.get(text).to_owned(),
            },
            StoredLabel::Step {
                stage,
                number,
                total,
                instruction,
            } => Label::Step(StepLabel {
                stage: self.stage_labels[stage as usize].clone(),
                number: number as usize,
                total: total as usize,
                instruction: self.texts.get(instruction).to_owned(),
            }),
        }
    }
}

/// A step number or line as `u32`: a Dockerfile of 16 MiB has fewer lines
/// than that; a graph made by hand with more shows the largest.
fn saturate(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(NONE - 1)
}

/// The history text a RUN or a config edit has when lowered from a
/// Dockerfile (BuildKit's): a node whose text is this keeps none.
fn derived_history(op: &Op) -> Option<String> {
    match op {
        Op::Exec(exec) => Some(run_history(&exec.args, &exec.build_args)),
        Op::Config(edit) => edit.history_text(),
        _ => None,
    }
}

/// The history text of a RUN, as BuildKit writes it: `RUN |2 A=1 B=2 cmd
/// # buildkit`, the build args in scope first. Only for people (and
/// `docker history`): the cache report reads the pairs from
/// `Exec::build_args`, since a value may hold spaces.
pub(crate) fn run_history(args: &[String], build_args: &[(String, String)]) -> String {
    let mut text = String::from("RUN ");
    if !build_args.is_empty() {
        text.push_str(&format!("|{} ", build_args.len()));
        for (name, value) in build_args {
            text.push_str(&format!("{name}={value} "));
        }
    }
    text.push_str(&args.join(" "));
    text.push_str(" # buildkit");
    text
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes the memory bound rests on (see the module docs): a node
    /// and its op stay this small, or `bench/big-dockerfile.sh` grows.
    #[test]
    fn nodes_stay_small() {
        assert!(std::mem::size_of::<Node>() <= 120);
        assert!(std::mem::size_of::<StoredOp>() <= 24);
    }

    #[test]
    fn spilled_texts_are_found() {
        let mut texts = Texts::default();
        let first = texts.push("RUN true");
        texts.spilled.push("spilled".into());
        let spilled = Text {
            start: NONE,
            len: 0,
        };
        assert_eq!(texts.get(first), "RUN true");
        assert_eq!(texts.get(spilled), "spilled");
    }
}
