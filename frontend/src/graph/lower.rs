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
use std::fmt;

use sha2::{Digest, Sha256};

use super::mount::{self, MountType};
use super::{
    BuildGraph, ConfigEdit, CopySource, Exec, FileCopy, FileOp, HealthConfig, InlineFile, Label,
    Network, Op, Origin, Security, Source, StageInfo, StepLabel, Vertex, VertexId,
};
use crate::ast::{Heredoc, KeyValue, Word};
use crate::error::{Error, ErrorKind, Warning};
use crate::expand::{Lexer, Lookup};
use crate::instructions::{
    self, Command, Copy, FlagValue, HealthcheckTest, Instruction, Located, Run, Stages,
};
use crate::span::Span;

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

/// An OCI platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`...
    pub architecture: String,
    /// `v7`...
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this program runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parse `os/arch[/variant]` (`local` is the host).
    pub fn parse(text: &str) -> Option<Platform> {
        if text == "local" {
            return Some(Platform::host());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        };
        if !parts.iter().all(valid) {
            return None;
        }
        match parts.as_slice() {
            [os, architecture] => Some(Platform {
                os: os.to_ascii_lowercase(),
                architecture: architecture.to_ascii_lowercase(),
                variant: None,
            }),
            [os, architecture, variant] => Some(Platform {
                os: os.to_ascii_lowercase(),
                architecture: architecture.to_ascii_lowercase(),
                variant: Some(variant.to_ascii_lowercase()),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

/// The parts of a base image's config that lowering needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// `User`.
    pub user: String,
    /// `WorkingDir`.
    pub workdir: String,
    /// `Shell` (docker extension), empty for the default.
    pub shell: Vec<String>,
    /// `OnBuild` triggers, run at the start of a stage built on the image.
    pub onbuild: Vec<String>,
}

/// A base image, as an [`ImageResolver`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The reference it resolved, as the resolver names it.
    pub reference: String,
    /// The digest the graph pins (`sha256:...`, the manifest's): what the
    /// solver runs, whatever the name points to by then.
    pub digest: String,
    /// What lowering needs of its config.
    pub config: ImageConfig,
}

/// Why an [`ImageResolver`] gave no image.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver has no such image and does not fetch it (`--pull=never`
    /// without it in the store). Not an error of the Dockerfile: the image
    /// is lowered unpinned with an empty config, and the solver reports it
    /// missing when the step runs.
    #[error("image `{0}` is unknown")]
    Unknown(String),
    /// Resolving failed (a pull that failed): lowering stops with
    /// [`ErrorKind::ResolveImage`] at the line that names the image.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// The error of a resolver that failed, carried by
/// [`ErrorKind::ResolveImage`]: shared, so that frontend errors stay
/// `Clone`; two are equal when they are the same error.
#[derive(Debug, Clone)]
pub struct ResolveFailure(pub std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Display for ResolveFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, formatter)
    }
}

impl std::error::Error for ResolveFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for ResolveFailure {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ResolveFailure {}

/// Looks up base images: their digest and config.
pub trait ImageResolver {
    /// The image `reference` names for `platform`. Called once per
    /// reference and platform in a build.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Resolved, ResolveError>;
}

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
}

/// Lower typed stages to a build graph.
pub fn lower(stages: &Stages, options: &Options<'_>) -> Result<BuildGraph, Error> {
    let mut lowerer = Lowerer::new(stages, options)?;
    let target = lowerer.target()?;
    // Lower the stages the target needs by name, dependencies first, without
    // recursion: a chain of thousands of `FROM previous` stages must not
    // exhaust the stack. References that need expansion (`--from=$STAGE`)
    // are resolved during lowering, with bounded recursion.
    for index in lowerer.static_order(target) {
        let span = stages.stages[index].from_span;
        lowerer.lower_stage(index, span)?;
    }
    lowerer.finish(target)
}

/// Stage references deeper than this (through `--from=$VARIABLE`) are refused.
const MAX_STAGE_NESTING: usize = 128;

/// Per-stage dispatch state (BuildKit's `dispatchState`).
#[derive(Debug, Clone)]
struct State {
    /// `KEY=value` entries, in the form the image config and every RUN need
    /// them (kept formatted: most steps copy the list, few change it).
    env: Vec<String>,
    args: Vec<(String, Option<String>)>,
    user: String,
    workdir: String,
    shell: Vec<String>,
    fs: VertexId,
    last: VertexId,
}

/// The key of a `KEY=value` entry.
fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

impl State {
    fn set_env(&mut self, key: &str, value: &str) {
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
    options: &'a Options<'a>,
    escape: char,
    target_platform: Platform,
    build_platform: Platform,
    meta: BTreeMap<String, String>,
    infos: Vec<StageInfo>,
    /// Stage name to index.
    names: HashMap<String, usize>,
    status: Vec<StageStatus>,
    vertices: Vec<Vertex>,
    /// Dedupes vertices: the same op on the same inputs after the same step.
    known: HashMap<([u8; 32], Option<VertexId>), VertexId, DigestHash>,
    context: Option<VertexId>,
    used_args: BTreeSet<String>,
    warnings: Vec<Warning>,
    warned: BTreeSet<(String, Span)>,
    nesting: usize,
    /// Reused buffer for the canonical encoding of each vertex.
    encoding: Vec<u8>,
    /// Images resolved so far, by reference and platform: one answer per
    /// build, so that every step naming an image gets the same one.
    resolved: HashMap<(String, String), (Option<String>, ImageConfig)>,
}

/// Hashes a `(digest, previous)` key by the digest's first eight bytes: a
/// SHA-256 output is already uniformly random, so running SipHash over it
/// again (the default) only costs time.
#[derive(Default, Clone, Copy)]
struct DigestHash;

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Writes come as: the array's length (a constant), the 32 digest
        // bytes (the first eight are used), then the previous step's id.
        let mut word = [0u8; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }
}

/// `sha256:<hex>` of a raw digest.
fn digest_string(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in digest {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}

impl<'a> Lowerer<'a> {
    fn new(stages: &'a Stages, options: &'a Options<'a>) -> Result<Self, Error> {
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
            names: HashMap::new(),
            status: stages.stages.iter().map(|_| StageStatus::Pending).collect(),
            vertices: Vec::with_capacity(
                stages
                    .stages
                    .iter()
                    .map(|stage| stage.instructions.len() + 2)
                    .sum::<usize>()
                    + 1,
            ),
            known: HashMap::default(),
            context: None,
            used_args: BTreeSet::new(),
            warnings: stages.warnings.clone(),
            warned: BTreeSet::new(),
            nesting: 0,
            encoding: Vec::new(),
            resolved: HashMap::new(),
        };
        lowerer.meta = lowerer.platform_args();
        lowerer.meta_args()?;
        lowerer.stage_infos()?;
        Ok(lowerer)
    }

    fn platform_args(&self) -> BTreeMap<String, String> {
        let mut args = BTreeMap::new();
        for (prefix, platform) in [
            ("BUILD", &self.build_platform),
            ("TARGET", &self.target_platform),
        ] {
            args.insert(format!("{prefix}PLATFORM"), platform.to_string());
            args.insert(format!("{prefix}OS"), platform.os.clone());
            args.insert(format!("{prefix}ARCH"), platform.architecture.clone());
            args.insert(
                format!("{prefix}VARIANT"),
                platform.variant.clone().unwrap_or_default(),
            );
        }
        args
    }

    /// Evaluate the ARGs before the first FROM.
    fn meta_args(&mut self) -> Result<(), Error> {
        for located in &self.stages.meta_args {
            let Instruction::Arg(definitions) = &located.instruction else {
                continue;
            };
            for definition in definitions {
                let name = definition.name.value.clone();
                let value = match self.options.build_args.get(&name) {
                    Some(value) => {
                        self.used_args.insert(name.clone());
                        Some(value.clone())
                    }
                    None => match &definition.default {
                        Some(default) => {
                            let meta = self.meta.clone();
                            Some(self.expand(default, &meta)?)
                        }
                        None => None,
                    },
                };
                match value {
                    Some(value) => {
                        self.meta.insert(name, value);
                    }
                    None => {
                        // Declared without a value: unset, but known.
                        self.meta.remove(&name);
                    }
                }
            }
        }
        Ok(())
    }

    /// Expand every FROM and check stage names.
    fn stage_infos(&mut self) -> Result<(), Error> {
        let meta = self.meta.clone();
        for (index, stage) in self.stages.stages.iter().enumerate() {
            let base = self.expand(&stage.from.image, &meta)?;
            if base.is_empty() {
                return Err(Error::new(
                    ErrorKind::BlankBaseName(stage.from.image.value.clone()),
                    stage.from.image.span,
                )
                .with_hint("set the variable with `--build-arg` or give the ARG a default"));
            }
            let name = stage.from.name.as_ref().map(|word| word.value.clone());
            if let Some(name_word) = &stage.from.name
                && self.names.insert(name_word.value.clone(), index).is_some()
            {
                return Err(Error::new(
                    ErrorKind::DuplicateStageName(name_word.value.clone()),
                    name_word.span,
                ));
            }
            self.infos.push(StageInfo {
                index,
                name,
                base,
                built: false,
                rootfs: None,
                last: None,
                span: stage.from_span,
            });
        }
        Ok(())
    }

    /// The stage a literal reference (name or index) names, if any.
    fn stage_by_reference(&self, reference: &str) -> Option<usize> {
        self.names
            .get(&reference.to_ascii_lowercase())
            .copied()
            .or_else(|| {
                reference
                    .parse::<usize>()
                    .ok()
                    .filter(|index| *index < self.infos.len())
            })
    }

    /// The earlier stage that stage `index` is built `FROM`, if any.
    fn base_stage(&self, index: usize) -> Option<usize> {
        self.names
            .get(&self.infos[index].base.to_ascii_lowercase())
            .copied()
            .filter(|base| *base < index)
    }

    /// Stages `index` needs, as far as is known without expanding anything.
    fn static_dependencies(&self, index: usize) -> Vec<usize> {
        let mut dependencies: Vec<usize> = self.base_stage(index).into_iter().collect();
        let literal = |value: &str| (!value.contains('$')).then(|| value.to_owned());
        for located in &self.stages.stages[index].instructions {
            let references: Vec<String> = match &located.instruction {
                Instruction::Copy(copy) => copy
                    .from
                    .iter()
                    .filter_map(|flag| literal(&flag.value.value))
                    .collect(),
                Instruction::Run(run) => run
                    .mounts
                    .iter()
                    .filter_map(|flag| literal(&flag.value.value))
                    .filter(|value| value.contains("from="))
                    .filter_map(|value| mount::parse(&value).ok()?.from)
                    .collect(),
                _ => Vec::new(),
            };
            dependencies.extend(
                references
                    .iter()
                    .filter_map(|reference| self.stage_by_reference(reference))
                    .filter(|dependency| *dependency != index),
            );
        }
        dependencies
    }

    /// The stages `target` needs by literal reference, in an order where
    /// each comes after what it needs (iterative depth-first post-order).
    fn static_order(&self, target: usize) -> Vec<usize> {
        let mut order = Vec::new();
        let mut visited = vec![false; self.infos.len()];
        let mut stack = vec![(target, false)];
        while let Some((index, expanded)) = stack.pop() {
            if expanded {
                order.push(index);
                continue;
            }
            if visited[index] {
                continue;
            }
            visited[index] = true;
            stack.push((index, true));
            for dependency in self.static_dependencies(index).into_iter().rev() {
                if !visited[dependency] {
                    stack.push((dependency, false));
                }
            }
        }
        order
    }

    fn stage_list(&self) -> String {
        let names: Vec<String> = self
            .infos
            .iter()
            .map(|info| match &info.name {
                Some(name) => format!("`{name}` ({})", info.index),
                None => format!("{} (unnamed)", info.index),
            })
            .collect();
        names.join(", ")
    }

    fn target(&self) -> Result<usize, Error> {
        let Some(target) = &self.options.target else {
            return Ok(self.infos.len() - 1);
        };
        let wanted = target.to_ascii_lowercase();
        self.infos
            .iter()
            .position(|info| info.name.as_deref() == Some(wanted.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .infos
                    .iter()
                    .filter_map(|info| info.name.as_deref())
                    .collect();
                let error = Error::unplaced(ErrorKind::UnknownTarget(target.clone()));
                match instructions::suggest(&wanted, &names) {
                    Some(near) => error.with_hint(format!("did you mean `{near}`?")),
                    None if names.is_empty() => {
                        error.with_hint("no stage is named: name one with `FROM <image> AS <name>`")
                    }
                    None => error.with_hint(format!("the named stages are {}", names.join(", "))),
                }
            })
    }

    fn warn_once(&mut self, rule: &'static str, key: String, message: String, span: Span) {
        if self.warned.insert((key, span)) {
            self.warnings.push(Warning {
                rule,
                message,
                span: Some(span),
            });
        }
    }

    /// Expand `word` in `env`, warning on undefined variables.
    fn expand(&mut self, word: &Word, env: &dyn Lookup) -> Result<String, Error> {
        let expansion = Lexer::new(self.escape)
            .expand(&word.value, env)
            .map_err(|error| Error::new(ErrorKind::Expand(error), word.span))?;
        for name in expansion.unmatched {
            if !name.starts_with(|ch: char| ch.is_alphabetic() || ch == '_') {
                continue;
            }
            self.warn_once(
                "UndefinedVar",
                name.clone(),
                format!("usage of undefined variable `${name}`"),
                word.span,
            );
        }
        Ok(expansion.result)
    }

    fn expand_in(&mut self, word: &Word, state: &State) -> Result<String, Error> {
        self.expand(word, &Scope { state })
    }

    fn add_vertex(&mut self, mut vertex: Vertex) -> VertexId {
        #[derive(serde::Serialize)]
        struct Definition<'d> {
            op: &'d Op,
            inputs: Vec<&'d str>,
            previous: Option<&'d str>,
        }
        let inputs: Vec<&str> = vertex
            .inputs
            .iter()
            .map(|input| self.vertices[*input].digest.as_str())
            .collect();
        // Only config edits depend on the step before them; filesystem ops
        // depend on their inputs alone (see the module docs of `graph`).
        let previous = match vertex.op {
            Op::Config(_) => vertex
                .previous
                .map(|previous| self.vertices[previous].digest.as_str()),
            _ => None,
        };
        let definition = Definition {
            op: &vertex.op,
            inputs,
            previous,
        };
        // Encode into one reused buffer, then hash it in a single call:
        // cheaper than many small hash updates or a fresh buffer per vertex.
        self.encoding.clear();
        super::canonical::encode(&definition, &mut self.encoding)
            .expect("graph types always encode");
        let raw: [u8; 32] = Sha256::digest(&self.encoding).into();
        let key = (raw, vertex.previous);
        if let Some(existing) = self.known.get(&key) {
            return *existing;
        }
        vertex.digest = digest_string(&raw);
        let id = self.vertices.len();
        vertex.id = id;
        self.known.insert(key, id);
        self.vertices.push(vertex);
        id
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

    /// The pinned digest and the config of image `reference` (the
    /// resolver is asked once per reference and platform). `span` is where
    /// it is named, for a resolver that fails.
    fn resolve_image(
        &mut self,
        reference: &str,
        platform: &Platform,
        span: Span,
    ) -> Result<(Option<String>, ImageConfig), Error> {
        let memo = (reference.to_owned(), platform.to_string());
        if let Some(known) = self.resolved.get(&memo) {
            return Ok(known.clone());
        }
        let answer = match self.options.resolver {
            None => (None, ImageConfig::default()),
            Some(resolver) => match resolver.resolve(reference, platform) {
                Ok(resolved) => (Some(resolved.digest), resolved.config),
                Err(ResolveError::Unknown(_)) => (None, ImageConfig::default()),
                Err(ResolveError::Failed(error)) => {
                    return Err(Error::new(
                        ErrorKind::ResolveImage(ResolveFailure(error.into())),
                        span,
                    ));
                }
            },
        };
        self.resolved.insert(memo, answer.clone());
        Ok(answer)
    }

    /// The vertex of image `reference` (or scratch), pinned to what the
    /// resolver gives, with that image's config.
    fn image_vertex(
        &mut self,
        reference: &str,
        platform: &Platform,
        stage: usize,
        origin: Option<Origin>,
        span: Span,
    ) -> Result<(VertexId, ImageConfig), Error> {
        let (source, config) = if reference.eq_ignore_ascii_case("scratch") {
            (Source::Scratch, ImageConfig::default())
        } else {
            let (pinned, config) = self.resolve_image(reference, platform, span)?;
            let source = Source::Image {
                reference: reference.to_owned(),
                platform: platform.to_string(),
                pinned,
            };
            (source, config)
        };
        let label = match &source {
            Source::Scratch => Label::Scratch,
            _ => Label::Image {
                reference: reference.to_owned(),
            },
        };
        Ok((self.source_vertex(source, stage, origin, label), config))
    }

    /// Lower stage `index` (once) and return its final state.
    fn lower_stage(&mut self, index: usize, referenced_at: Span) -> Result<State, Error> {
        match &self.status[index] {
            StageStatus::Done(state) => return Ok((**state).clone()),
            StageStatus::InProgress => {
                return Err(Error::new(
                    ErrorKind::CircularDependency(self.infos[index].label()),
                    referenced_at,
                ));
            }
            StageStatus::Pending => {}
        }
        if self.nesting >= MAX_STAGE_NESTING {
            return Err(Error::new(
                ErrorKind::StagesTooDeep(MAX_STAGE_NESTING),
                referenced_at,
            ));
        }
        self.nesting += 1;
        let outcome = self.lower_stage_inner(index);
        self.nesting -= 1;
        outcome
    }

    fn lower_stage_inner(&mut self, index: usize) -> Result<State, Error> {
        self.status[index] = StageStatus::InProgress;
        let stages = self.stages;
        let stage = &stages.stages[index];
        let origin = Some(Origin {
            span: stage.from_span,
            line: stage.from_lines.0,
            end_line: stage.from_lines.1,
        });
        let base = self.infos[index].base.clone();
        let platform = match &stage.from.platform {
            Some(flag) => {
                let meta = self.meta.clone();
                let text = self.expand(&flag.value, &meta)?;
                Platform::parse(&text)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidPlatform(text), flag.value.span))?
            }
            None => self.target_platform.clone(),
        };
        let mut state = match self.base_stage(index) {
            Some(base_index) => self.lower_stage(base_index, stage.from.image.span)?,
            None => {
                let (fs, config) =
                    self.image_vertex(&base, &platform, index, origin, stage.from.image.span)?;
                let mut state = State {
                    env: config
                        .env
                        .iter()
                        .map(|entry| {
                            if entry.contains('=') {
                                entry.clone()
                            } else {
                                format!("{entry}=")
                            }
                        })
                        .collect(),
                    args: Vec::new(),
                    user: config.user.clone(),
                    workdir: if config.workdir.is_empty() {
                        "/".to_owned()
                    } else {
                        config.workdir.clone()
                    },
                    shell: if config.shell.is_empty() {
                        vec!["/bin/sh".to_owned(), "-c".to_owned()]
                    } else {
                        config.shell.clone()
                    },
                    fs,
                    last: fs,
                };
                if state.env_value("PATH").is_none() {
                    state.env.insert(0, format!("PATH={DEFAULT_PATH}"));
                }
                self.onbuild_triggers(&config.onbuild, index, &mut state, stage.from_span, origin)?;
                state
            }
        };
        // ARGs are scoped to the stage that declares them.
        state.args.clear();
        let total = stage.instructions.len() + 1;
        for (position, located) in stage.instructions.iter().enumerate() {
            let step = Step {
                stage: index,
                number: position + 2,
                total,
                located,
            };
            self.dispatch(&step, &located.instruction, &mut state)?;
        }
        self.infos[index].built = true;
        self.infos[index].rootfs = Some(state.fs);
        self.infos[index].last = Some(state.last);
        self.status[index] = StageStatus::Done(Box::new(state.clone()));
        Ok(state)
    }

    /// Run the ONBUILD triggers of a base image at the start of a stage.
    fn onbuild_triggers(
        &mut self,
        triggers: &[String],
        index: usize,
        state: &mut State,
        span: Span,
        origin: Option<Origin>,
    ) -> Result<(), Error> {
        for trigger in triggers {
            let in_trigger = |error: Error| Error {
                kind: error.kind,
                span: Some(span),
                hint: Some(format!("in the base image's ONBUILD trigger `{trigger}`")),
            };
            let file = crate::parser::parse(trigger).map_err(in_trigger)?;
            for node in &file.nodes {
                let mut warnings = Vec::new();
                let instruction =
                    instructions::parse_node(node, &mut warnings).map_err(in_trigger)?;
                if matches!(instruction, Instruction::From(_) | Instruction::Onbuild(_)) {
                    return Err(Error::new(
                        ErrorKind::ForbiddenTrigger(instruction.name().to_owned()),
                        span,
                    ));
                }
                let located = Located {
                    instruction: instruction.clone(),
                    span,
                    original: trigger.clone(),
                    lines: origin
                        .map(|origin| (origin.line, origin.end_line))
                        .unwrap_or((0, 0)),
                };
                let step = Step {
                    stage: index,
                    number: 1,
                    total: 1,
                    located: &located,
                };
                // Spans inside the trigger refer to its own text: point at FROM.
                self.dispatch(&step, &instruction, state)
                    .map_err(in_trigger)?;
            }
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        step: &Step<'_>,
        instruction: &Instruction,
        state: &mut State,
    ) -> Result<(), Error> {
        match instruction {
            Instruction::From(_) => unreachable!("FROM starts a stage"),
            Instruction::Arg(definitions) => {
                for definition in definitions {
                    let name = definition.name.value.clone();
                    let value = if let Some(value) = self.options.build_args.get(&name) {
                        self.used_args.insert(name.clone());
                        Some(value.clone())
                    } else if let Some(default) = &definition.default {
                        Some(self.expand_in(default, state)?)
                    } else {
                        // `ARG NAME` in a stage picks up the global value.
                        self.meta.get(&name).cloned()
                    };
                    state.args.retain(|(existing, _)| *existing != name);
                    state.args.push((name, value));
                }
            }
            Instruction::Env(pairs) => {
                let pairs = self.expand_pairs(pairs, state, "ENV")?;
                for (key, value) in &pairs {
                    state.set_env(key, value);
                }
                self.config(step, state, ConfigEdit::Env(pairs));
            }
            Instruction::Label(pairs) => {
                let pairs = self.expand_pairs(pairs, state, "LABEL")?;
                self.config(step, state, ConfigEdit::Label(pairs));
            }
            Instruction::Maintainer(word) => {
                self.config(step, state, ConfigEdit::Maintainer(word.value.clone()));
            }
            Instruction::Run(run) => self.run(step, run, state)?,
            Instruction::Cmd(command) | Instruction::Entrypoint(command) => {
                let args = self.command_args(command, state);
                let name = instruction.name();
                let edit = if name == "CMD" {
                    ConfigEdit::Cmd(args)
                } else {
                    ConfigEdit::Entrypoint(args)
                };
                self.config(step, state, edit);
            }
            Instruction::Expose(words) => {
                let mut ports = Vec::new();
                for word in words {
                    let text = self.expand_in(word, state)?;
                    for port in text.split_whitespace() {
                        ports.push(normalize_port(port).ok_or_else(|| {
                            Error::new(ErrorKind::InvalidPort(port.to_owned()), word.span)
                                .with_hint("a port is `N`, `N/tcp`, `N/udp`, `N/sctp` or a range `N-M/proto`")
                        })?);
                    }
                }
                self.config(step, state, ConfigEdit::Expose(ports));
            }
            Instruction::Volume(words) => {
                let mut volumes = Vec::new();
                for word in words {
                    let value = self.expand_in(word, state)?;
                    if value.trim().is_empty() {
                        return Err(Error::new(
                            ErrorKind::MissingArguments {
                                instruction: "VOLUME",
                                what: "non-empty paths",
                            },
                            word.span,
                        ));
                    }
                    volumes.push(value);
                }
                self.config(step, state, ConfigEdit::Volume(volumes));
            }
            Instruction::User(word) => {
                let user = self.expand_in(word, state)?;
                state.user = user.clone();
                self.config(step, state, ConfigEdit::User(user));
            }
            Instruction::Workdir(word) => {
                let value = self.expand_in(word, state)?;
                let path = join_path(&state.workdir, &value);
                state.workdir = path.clone();
                let created_by = format!("WORKDIR {path}");
                let mkdir = Op::File(FileOp::Mkdir {
                    path: path.clone(),
                    user: state.user.clone(),
                });
                let parent = state.fs;
                self.step_vertex(step, state, mkdir, vec![parent], Some(created_by));
                self.config(step, state, ConfigEdit::Workdir(path));
            }
            Instruction::Shell(words) => {
                let shell: Vec<String> = words.iter().map(|word| word.value.clone()).collect();
                state.shell = shell.clone();
                self.config(step, state, ConfigEdit::Shell(shell));
            }
            Instruction::StopSignal(word) => {
                let signal = self.expand_in(word, state)?;
                if !is_valid_signal(&signal) {
                    return Err(Error::new(ErrorKind::InvalidSignal(signal), word.span)
                        .with_hint("use a signal name such as `SIGTERM` or `SIGINT`, or a number from 1 to 64"));
                }
                self.config(step, state, ConfigEdit::StopSignal(signal));
            }
            Instruction::Healthcheck(health) => {
                let test = match &health.test {
                    HealthcheckTest::None => vec!["NONE".to_owned()],
                    HealthcheckTest::Command(Command::Shell(word)) => {
                        vec!["CMD-SHELL".to_owned(), word.value.clone()]
                    }
                    HealthcheckTest::Command(Command::Exec(words)) => {
                        std::iter::once("CMD".to_owned())
                            .chain(words.iter().map(|word| word.value.clone()))
                            .collect()
                    }
                };
                let config = HealthConfig {
                    test,
                    interval: health.interval.unwrap_or(0),
                    timeout: health.timeout.unwrap_or(0),
                    start_period: health.start_period.unwrap_or(0),
                    start_interval: health.start_interval.unwrap_or(0),
                    retries: health.retries.unwrap_or(0),
                };
                self.config(step, state, ConfigEdit::Healthcheck(config));
            }
            Instruction::Onbuild(onbuild) => {
                self.config(step, state, ConfigEdit::Onbuild(onbuild.expression.clone()));
            }
            Instruction::Copy(copy) => self.copy(step, copy, state)?,
        }
        Ok(())
    }

    fn label(&self, step: &Step<'_>) -> Label {
        Label::Step(StepLabel {
            stage: self.infos[step.stage].label(),
            number: step.number,
            total: step.total,
            instruction: step.located.original.clone(),
        })
    }

    fn config(&mut self, step: &Step<'_>, state: &mut State, edit: ConfigEdit) {
        let created_by = edit.history_text();
        self.step_vertex(step, state, Op::Config(edit), Vec::new(), created_by);
    }

    fn expand_pairs(
        &mut self,
        pairs: &[KeyValue],
        state: &State,
        instruction: &'static str,
    ) -> Result<Vec<(String, String)>, Error> {
        // All pairs of one instruction see the values from before it
        // (`ENV a=1 b=$a` gives b the old a), as docker does.
        let mut out = Vec::new();
        for pair in pairs {
            let key = self.expand_in(&pair.key, state)?;
            if key.is_empty() {
                return Err(Error::new(
                    ErrorKind::MissingArguments {
                        instruction,
                        what: "a non-empty name before `=`",
                    },
                    pair.key.span.to(pair.value.span),
                ));
            }
            let value = self.expand_in(&pair.value, state)?;
            out.push((key, value));
        }
        Ok(out)
    }

    fn command_args(&self, command: &Command, state: &State) -> Vec<String> {
        match command {
            Command::Shell(word) => {
                let mut args = state.shell.clone();
                args.push(word.value.clone());
                args
            }
            Command::Exec(words) => words.iter().map(|word| word.value.clone()).collect(),
        }
    }

    /// The environment a RUN sees: ENV, then declared build args not
    /// shadowed; its proxy variables; and those build args, as pairs.
    fn run_env(&self, state: &State) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
        let mut env = state.env.clone();
        let mut args_used = Vec::new();
        for (name, value) in &state.args {
            let Some(value) = value else { continue };
            if state.env_value(name).is_some() {
                continue;
            }
            env.push(format!("{name}={value}"));
            args_used.push((name.clone(), value.clone()));
        }
        let proxy = PROXY_ARGS
            .iter()
            .filter_map(|name| {
                self.options
                    .build_args
                    .get(*name)
                    .map(|value| format!("{name}={value}"))
            })
            .collect();
        (env, proxy, args_used)
    }

    fn run(&mut self, step: &Step<'_>, run: &Run, state: &mut State) -> Result<(), Error> {
        let mut files = Vec::new();
        let args = match (&run.command, run.heredocs.as_slice()) {
            (Command::Shell(word), [heredoc]) if is_only_heredoc(&word.value) => {
                let script = heredoc_content(heredoc);
                if script.starts_with("#!") {
                    // A script with its own interpreter runs as a file.
                    let path = format!("/dev/pipes/{}", heredoc.name);
                    files.push(InlineFile {
                        path: path.clone(),
                        content: script,
                        mode: 0o755,
                    });
                    vec![path]
                } else {
                    let mut args = state.shell.clone();
                    args.push(script);
                    args
                }
            }
            (Command::Shell(word), heredocs) if !heredocs.is_empty() => {
                // The shell reads the heredocs itself: give it the whole text.
                let mut script = word.value.clone();
                for heredoc in heredocs {
                    script.push('\n');
                    script.push_str(&heredoc.content);
                    script.push_str(&heredoc.name);
                }
                let mut args = state.shell.clone();
                args.push(script);
                args
            }
            (command, _) => self.command_args(command, state),
        };
        let network = match &run.network {
            None => Network::Default,
            Some(flag) => match flag.value.value.as_str() {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidNetwork(other.to_owned()),
                        flag.value.span,
                    ));
                }
            },
        };
        let security = match &run.security {
            None => Security::Sandbox,
            Some(flag) => match flag.value.value.as_str() {
                "sandbox" => Security::Sandbox,
                "insecure" => Security::Insecure,
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidSecurity(other.to_owned()),
                        flag.value.span,
                    ));
                }
            },
        };
        let mut inputs = vec![state.fs];
        let mut mounts = Vec::new();
        for flag in &run.mounts {
            let text = self.expand_in(&flag.value, state)?;
            let mut mount = mount::parse(&text)
                .map_err(|message| Error::new(ErrorKind::InvalidMount(message), flag.value.span))?;
            if !mount.target.starts_with('/') {
                mount.target = join_path(&state.workdir, &mount.target);
            }
            let source_input = match (mount.kind, &mount.from) {
                (MountType::Bind | MountType::Cache, Some(from)) => {
                    Some(self.resolve_from(from, flag, step)?)
                }
                (MountType::Bind, None) => Some(self.context_vertex()),
                _ => None,
            };
            if let Some(input) = source_input {
                mount.input = Some(inputs.len());
                inputs.push(input);
            }
            mounts.push(mount);
        }
        let (env, proxy_env, build_args) = self.run_env(state);
        // BuildKit's history text: `RUN |2 A=1 B=2 cmd # buildkit`. Only
        // for people (and `docker history`): the cache report reads the
        // pairs from `Exec::build_args`, since a value may hold spaces.
        let shown_args = if build_args.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = build_args
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            format!("|{} {} ", build_args.len(), pairs.join(" "))
        };
        let created_by = format!("RUN {shown_args}{} # buildkit", args.join(" "));
        let exec = Exec {
            args,
            env,
            build_args,
            proxy_env,
            user: state.user.clone(),
            cwd: state.workdir.clone(),
            network,
            security,
            mounts,
            files,
        };
        self.step_vertex(step, state, Op::Exec(exec), inputs, Some(created_by));
        Ok(())
    }

    /// Resolve `--from=` (COPY) or `from=` (RUN --mount) to a filesystem.
    fn resolve_from(
        &mut self,
        from: &str,
        flag: &FlagValue,
        step: &Step<'_>,
    ) -> Result<VertexId, Error> {
        let current = step.stage;
        let lowered = from.to_ascii_lowercase();
        let by_name = self.names.get(&lowered).copied();
        let by_index = if !from.is_empty() && from.bytes().all(|byte| byte.is_ascii_digit()) {
            match from
                .parse::<usize>()
                .ok()
                .filter(|index| *index < self.infos.len())
            {
                Some(index) => Some(index),
                None => {
                    return Err(Error::new(
                        ErrorKind::UnknownStage(from.to_owned()),
                        flag.value.span,
                    )
                    .with_hint(format!("the stages are {}", self.stage_list())));
                }
            }
        } else {
            None
        };
        if let Some(index) = by_name.or(by_index) {
            if index == current {
                return Err(Error::new(
                    ErrorKind::CircularDependency(self.infos[index].label()),
                    flag.value.span,
                ));
            }
            return Ok(self.lower_stage(index, flag.value.span)?.fs);
        }
        // Not a stage: an image. A near-miss of a stage name with no registry,
        // tag or digest is far likelier a typo than an image of that name, so
        // it is an error instead of a pull that fails later.
        let names: Vec<&str> = self
            .infos
            .iter()
            .filter_map(|info| info.name.as_deref())
            .collect();
        if !from.contains(['/', ':', '@', '.'])
            && let Some(near) = instructions::suggest(&lowered, &names)
        {
            return Err(
                Error::new(ErrorKind::UnknownStage(from.to_owned()), flag.value.span).with_hint(
                    format!(
                        "did you mean stage `{near}`? the stages are {}",
                        self.stage_list()
                    ),
                ),
            );
        }
        let platform = self.target_platform.clone();
        let (vertex, _) = self.image_vertex(
            from,
            &platform,
            current,
            Some(step.origin()),
            flag.value.span,
        )?;
        Ok(vertex)
    }

    fn copy(&mut self, step: &Step<'_>, copy: &Copy, state: &mut State) -> Result<(), Error> {
        let instruction = if copy.add { "ADD" } else { "COPY" };
        let mut inputs = vec![state.fs];
        let mut sources = Vec::new();
        let mut path_input: Option<usize> = None;
        let mut from_input = |lowerer: &mut Self, state: &State| -> Result<usize, Error> {
            if let Some(index) = path_input {
                return Ok(index);
            }
            let vertex = match &copy.from {
                Some(flag) => {
                    let from = lowerer.expand_in(&flag.value, state)?;
                    lowerer.resolve_from(&from, flag, step)?
                }
                None => lowerer.context_vertex(),
            };
            inputs.push(vertex);
            path_input = Some(inputs.len() - 1);
            Ok(inputs.len() - 1)
        };
        let mut has_url = false;
        for word in &copy.sources {
            if let Some(heredoc) = copy
                .heredocs
                .iter()
                .find(|heredoc| is_heredoc_word(&word.value, &heredoc.name))
            {
                let mut content = heredoc_content(heredoc);
                if heredoc.expand {
                    let lexer = Lexer {
                        skip_quotes: true,
                        ..Lexer::new(self.escape)
                    };
                    content = lexer
                        .expand_word(&content, &Scope { state })
                        .map_err(|error| Error::new(ErrorKind::Expand(error), heredoc.span))?;
                }
                sources.push(CopySource::Inline(InlineFile {
                    path: heredoc.name.clone(),
                    content,
                    mode: 0o644,
                }));
                continue;
            }
            let path = self.expand_in(word, state)?;
            if copy.add && (path.starts_with("http://") || path.starts_with("https://")) {
                if copy.from.is_some() {
                    return Err(Error::new(
                        ErrorKind::Unsupported("ADD of a URL cannot be combined with --from"),
                        word.span,
                    ));
                }
                has_url = true;
                sources.push(CopySource::Url { url: path });
                continue;
            }
            let input = from_input(self, state)?;
            sources.push(CopySource::Path { input, path });
        }
        if let Some(checksum) = &copy.checksum
            && !has_url
        {
            return Err(Error::new(
                ErrorKind::Unsupported("--checksum can only be used with HTTP(S) sources"),
                checksum.span,
            ));
        }
        let destination_text = self.expand_in(&copy.destination, state)?;
        let destination = if destination_text.starts_with('/') {
            destination_text.clone()
        } else {
            let mut joined = join_path(&state.workdir, &destination_text);
            let wants_dir = destination_text.ends_with('/')
                || destination_text == "."
                || destination_text.ends_with("/.");
            if wants_dir && !joined.ends_with('/') {
                joined.push('/');
            }
            joined
        };
        let chown = match &copy.chown {
            Some(flag) => Some(self.expand_in(&flag.value, state)?),
            None => None,
        };
        let chmod = match &copy.chmod {
            Some(flag) => {
                let value = self.expand_in(&flag.value, state)?;
                if !is_valid_chmod(&value) {
                    return Err(Error::new(ErrorKind::InvalidChmod(value), flag.value.span)
                        .with_hint("use octal (`0755`) or symbolic (`u+x,go=r`) modes"));
                }
                Some(value)
            }
            None => None,
        };
        let mut exclude = Vec::new();
        for flag in &copy.exclude {
            exclude.push(self.expand_in(&flag.value, state)?);
        }
        let checksum = match &copy.checksum {
            Some(flag) => Some(self.expand_in(&flag.value, state)?),
            None => None,
        };
        let shown_sources: Vec<String> = sources
            .iter()
            .map(|source| match source {
                CopySource::Path { path, .. } => path.clone(),
                CopySource::Url { url } => url.clone(),
                CopySource::Inline(file) => format!("<<{}", file.path),
            })
            .collect();
        let created_by = format!(
            "{instruction} {} {destination_text} # buildkit",
            shown_sources.join(" ")
        );
        let file_copy = FileCopy {
            add: copy.add,
            sources,
            destination,
            chown,
            chmod,
            link: copy.link,
            exclude,
            parents: copy.parents,
            checksum,
            keep_git_dir: copy.keep_git_dir,
            unpack: copy.unpack,
        };
        self.step_vertex(
            step,
            state,
            Op::File(FileOp::Copy(file_copy)),
            inputs,
            Some(created_by),
        );
        Ok(())
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
        Ok(BuildGraph {
            vertices: self.vertices,
            stages: self.infos,
            target,
            warnings: self.warnings,
        })
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

/// `80`, `80/tcp`, `8000-8010/udp` → `port/proto`.
fn normalize_port(port: &str) -> Option<String> {
    let (range, protocol) = match port.split_once('/') {
        Some((range, protocol)) => (range, protocol.to_ascii_lowercase()),
        None => (port, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let valid = |number: &str| number.parse::<u16>().is_ok();
    let ok = match range.split_once('-') {
        Some((start, end)) => {
            valid(start) && valid(end) && start.parse::<u16>().ok()? <= end.parse::<u16>().ok()?
        }
        None => valid(range),
    };
    ok.then(|| format!("{range}/{protocol}"))
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

fn is_valid_signal(signal: &str) -> bool {
    if let Ok(number) = signal.parse::<u32>() {
        return (1..=64).contains(&number);
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"))
    {
        return offset.parse::<u32>().is_ok_and(|offset| offset <= 30);
    }
    SIGNALS.contains(&name) || name == "RTMIN" || name == "RTMAX"
}

/// Octal up to 07777, or symbolic clauses like `u+x,go-w,a=rX`.
fn is_valid_chmod(mode: &str) -> bool {
    if !mode.is_empty() && mode.bytes().all(|byte| (b'0'..=b'7').contains(&byte)) {
        return u32::from_str_radix(mode, 8).is_ok_and(|mode| mode <= 0o7777);
    }
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let who_end = clause
                .find(|ch| !matches!(ch, 'u' | 'g' | 'o' | 'a'))
                .unwrap_or(clause.len());
            let rest = &clause[who_end..];
            !rest.is_empty()
                && rest.starts_with(['+', '-', '='])
                && rest
                    .chars()
                    .all(|ch| matches!(ch, '+' | '-' | '=' | 'r' | 'w' | 'x' | 'X' | 's' | 't'))
        })
}

/// Whether a RUN's shell form is nothing but a heredoc (`<<EOF`, `<<-"EOF"`).
fn is_only_heredoc(text: &str) -> bool {
    let text = text.trim();
    let rest = text.trim_start_matches(|ch: char| ch.is_ascii_digit());
    rest.starts_with("<<") && !text.contains(char::is_whitespace)
}

/// Whether a COPY source word names heredoc `name` (`<<EOF`, `<<-'EOF'`...).
fn is_heredoc_word(word: &str, name: &str) -> bool {
    let Some(rest) = word
        .trim_start_matches(|ch: char| ch.is_ascii_digit())
        .strip_prefix("<<")
    else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    rest.chars()
        .filter(|ch| *ch != '\'' && *ch != '"')
        .collect::<String>()
        == name
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

    #[test]
    fn paths() {
        assert_eq!(join_path("/", "app"), "/app");
        assert_eq!(join_path("/a/b", "../c/./d"), "/a/c/d");
        assert_eq!(join_path("/a", "/x/"), "/x");
        assert_eq!(join_path("/", ".."), "/");
    }

    #[test]
    fn ports() {
        assert_eq!(normalize_port("80").as_deref(), Some("80/tcp"));
        assert_eq!(normalize_port("53/UDP").as_deref(), Some("53/udp"));
        assert_eq!(
            normalize_port("8000-8010/tcp").as_deref(),
            Some("8000-8010/tcp")
        );
        assert_eq!(normalize_port("http"), None);
        assert_eq!(normalize_port("70000"), None);
        assert_eq!(normalize_port("80/icmp"), None);
    }

    #[test]
    fn modes_and_signals() {
        assert!(is_valid_chmod("0755") && is_valid_chmod("u+x,go=r") && is_valid_chmod("a-w"));
        assert!(!is_valid_chmod("999") && !is_valid_chmod("u+q") && !is_valid_chmod("x"));
        assert!(is_valid_signal("SIGTERM") && is_valid_signal("kill") && is_valid_signal("9"));
        assert!(is_valid_signal("SIGRTMIN+3"));
        assert!(!is_valid_signal("SIGFOO") && !is_valid_signal("0"));
    }

    #[test]
    fn platforms() {
        let platform = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(platform.to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux//amd64").is_none());
    }
}
