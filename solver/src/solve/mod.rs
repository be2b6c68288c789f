//! Solving a build graph: each needed step in dependency order (see
//! [`schedule`]), RUN steps in the sandbox, then the target stage's image
//! assembled from its layers, config edits and history.
//!
//! Every op the graph has runs here: sources (`FROM` an image in the store,
//! `scratch`, the context), `RUN` with its `--mount`s (see `mounts`) and
//! heredoc files, `COPY` and `ADD` (see `files`; URLs through `fetch`),
//! `WORKDIR` and every config instruction. Independent steps run in
//! parallel, and each step is cached: what goes into each op's key is in
//! [`key`], what a key gives back in [`cache`], and why a step missed in
//! [`cause`] (worded by the caller).

mod agent;
pub mod cache;
pub mod cause;
mod config;
pub mod context;
mod error;
mod fetch;
mod files;
mod git;
pub use git::{GitContext, GitError};
pub mod key;
mod mounts;
pub mod output;
pub mod remote;
pub mod request;
pub mod schedule;
mod session;

pub use context::{BuildContext, Contexts, Ignore};
pub use error::{MountError, StepError, StepErrorKind, WorkdirError};
pub use fetch::{FetchError, fetch_url};
pub use files::CopyError;
pub use output::{OutputError, OutputKind, OutputSpec};
pub use request::{
    BuildRequest, CacheFrom, Entitlement, FlagError, Jobs, LabelSpec, SecretSpec, SshSpec,
};
pub use session::{Notice, Phase, Reporter, Session, SolveError, Solved, explain, solve};

use std::time::{Duration, Instant};

use oci_spec::image::ImageConfiguration;
use strata_frontend::graph::{
    BuildGraph, CopySource, FileCopy, FileOp, GitSource, ImageConfig, ImageResolver,
    Network as StepNetwork, Op, Platform, ResolveError, Resolved, Security, Source, Vertex,
    VertexId,
};

use crate::exec::{ExecError, Network, Output, RunSpec, Sandbox};
use crate::image::{self, ImageError};
use crate::layer::Compression;
use crate::store::{ImageRecord, LayerRecord, Store};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Names for the image (`-t`).
    pub tags: Vec<String>,
    /// Labels applied last (`--label`).
    pub labels: Vec<(String, String)>,
    /// `--platform`: the target, which an image built on scratch says it
    /// is for (this machine's without it).
    pub platform: Option<strata_frontend::graph::Platform>,
    /// The network of RUN steps that do not choose (`--network`).
    pub network: Network,
    /// The hostname RUN steps see (`BUILDKIT_SANDBOX_HOSTNAME`); empty for
    /// the sandbox's own.
    pub hostname: String,
    /// `--shm-size`: the size of RUN steps' `/dev/shm`.
    pub shm_size: Option<u64>,
    /// `--ulimit`: RUN steps' resource limits.
    pub ulimits: Vec<crate::exec::Ulimit>,
    /// Layer compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: Option<u64>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--no-cache-filter`: run every step of these stages (indexes).
    pub no_cache_stages: Vec<usize>,
    /// `-j`: steps run at once, at most.
    pub jobs: usize,
    /// The Dockerfile's path (or `<stdin>`), which the cache report uses to
    /// know a step from one build to the next.
    pub dockerfile: String,
    /// `--secret id=ID,src=FILE|env=VAR`, by id.
    pub secrets: std::collections::BTreeMap<String, Secret>,
    /// `--allow security.insecure`: RUN --security=insecure may run.
    pub allow_insecure: bool,
    /// `--ssh ID=SOCKET`: ssh agent sockets, by id.
    pub ssh: std::collections::BTreeMap<String, std::path::PathBuf>,
    /// `--cache-from`: caches read from a registry or a directory, asked
    /// after the store's own.
    pub cache_from: Vec<std::sync::Arc<remote::Imported>>,
}

/// Where a secret comes from. Its content goes only into the sandbox: not
/// into a key, a record, a layer, the progress or the metadata.
#[derive(Debug, Clone)]
pub enum Secret {
    /// A file's content.
    File(std::path::PathBuf),
    /// An environment variable of strata's.
    Env(String),
}

/// What happens during a build, for progress output.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step starts.
    Started(&'a Vertex),
    /// A RUN step wrote this output.
    Output(&'a Vertex, &'a [u8]),
    /// A step finished, with its layer if it made one.
    Finished(&'a Vertex, Option<&'a LayerRecord>, Duration),
    /// A step's result came from the cache.
    Cached(&'a Vertex),
    /// A step will run: why the cache could not answer (for a base image,
    /// that it changed).
    Missed(&'a Vertex, &'a cause::Cause),
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A RUN step exited non-zero.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    StepFailed {
        /// The step.
        vertex: VertexId,
        /// Its command line.
        command: String,
        /// Its exit code.
        code: i32,
        /// Its last lines of output.
        tail: Vec<String>,
    },
    /// A step this version cannot run yet.
    #[error("{what} is not supported by this version of strata yet")]
    Unsupported {
        /// The step.
        vertex: VertexId,
        /// What it needs.
        what: String,
    },
    /// A step reads a named context the build was not given (a graph
    /// lowered with other `--build-context` values than the build's).
    #[error("the build has no context `{name}`: give it with --build-context NAME=DIR")]
    NoContext {
        /// The step.
        vertex: VertexId,
        /// The context's name.
        name: String,
    },
    /// A base image that is not in the store.
    #[error(
        "image `{0}` is not in the store: pull it (`strata pull`, or build with \
         --pull=missing), import it or load it"
    )]
    MissingImage(String),
    /// A base image's layer is not in the store (deleted by hand, a damaged
    /// store): refused before anything is built on it, since the result
    /// could be neither saved nor pushed.
    #[error(
        "image `{reference}` is damaged: its layer `{digest}` is missing from the store; \
         pull it again (`strata pull {reference}`), or remove it (`strata rmi {reference}`) \
         and import or load it again"
    )]
    MissingLayer {
        /// The image's source vertex (its FROM line).
        vertex: VertexId,
        /// The image as the Dockerfile names it.
        reference: String,
        /// The blob that is missing.
        digest: crate::digest::Digest,
    },
    /// Any other error, of the step that met it: what puts it at the step's
    /// Dockerfile line (a full disk while a COPY's layer is written, a
    /// store that went bad under a RUN).
    #[error(transparent)]
    InStep(Box<InStep>),
    /// A step failed to run (not a non-zero exit).
    #[error("failed to run the step")]
    Exec {
        /// The step.
        vertex: VertexId,
        /// Why.
        #[source]
        source: ExecError,
    },
    /// A store or image operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A WORKDIR whose directory cannot be made (say, its USER cannot be
    /// resolved).
    #[error("WORKDIR {path}")]
    Workdir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: WorkdirError,
    },
    /// A step that cannot do what it says (a COPY source that is missing).
    #[error(transparent)]
    Step(#[from] StepError),
}

impl BuildError {
    /// The step the error is about, if any.
    pub fn vertex(&self) -> Option<VertexId> {
        match self {
            BuildError::StepFailed { vertex, .. }
            | BuildError::Unsupported { vertex, .. }
            | BuildError::NoContext { vertex, .. }
            | BuildError::Step(StepError { vertex, .. })
            | BuildError::Exec { vertex, .. }
            | BuildError::MissingLayer { vertex, .. } => Some(*vertex),
            BuildError::InStep(in_step) => Some(in_step.vertex),
            _ => None,
        }
    }
}

/// A [`BuildError`] and the step it happened in, for errors that do not
/// say so themselves. It reads as the error it holds, causes included.
#[derive(Debug)]
pub struct InStep {
    /// The step.
    pub vertex: VertexId,
    /// What went wrong.
    pub error: BuildError,
}

impl std::fmt::Display for InStep {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, formatter)
    }
}

impl std::error::Error for InStep {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Looks base images up in the store, for the frontend (their ENV, USER,
/// WORKDIR, SHELL and ONBUILD shape the steps built on them), and gives the
/// digest the graph pins.
pub struct StoreResolver<'a>(pub &'a Store);

impl StoreResolver<'_> {
    /// What the store has of `reference`. Whatever fails here is
    /// [`ResolveError::Unknown`]: the image is lowered unpinned and the
    /// solver, looking the name up when the step runs, reports the store's
    /// own error there (the step that needs the image names it).
    fn find(&self, reference: &str) -> Result<Resolved, ResolveError> {
        check_reference(reference)?;
        let unknown = || ResolveError::Unknown(reference.to_owned());
        let record = image::resolve(self.0, reference).map_err(|_| unknown())?;
        // A build's lease holds its bases from here on (and an image whose
        // blobs are missing is not one to build on).
        self.0.hold_image(&record).map_err(|_| unknown())?;
        // The raw JSON: `Shell` and `OnBuild` are docker's, not OCI's.
        let bytes = self.0.read_blob(&record.config).map_err(|_| unknown())?;
        let config: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| unknown())?;
        let inner = &config["config"];
        let strings = |key: &str| -> Vec<String> {
            inner[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |key: &str| inner[key].as_str().unwrap_or_default().to_owned();
        Ok(Resolved {
            reference: reference.to_owned(),
            digest: record.manifest.to_string(),
            config: ImageConfig {
                env: strings("Env"),
                user: text("User"),
                workdir: text("WorkingDir"),
                shell: strings("Shell"),
                onbuild: strings("OnBuild"),
                platform: match (config["os"].as_str(), config["architecture"].as_str()) {
                    (Some(os), Some(architecture))
                        if !os.is_empty() && !architecture.is_empty() =>
                    {
                        Some(Platform {
                            os: os.to_owned(),
                            architecture: architecture.to_owned(),
                            variant: config["variant"]
                                .as_str()
                                .filter(|variant| !variant.is_empty())
                                .map(str::to_owned),
                        })
                    }
                    _ => None,
                },
            },
        })
    }
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<Resolved, ResolveError> {
        self.find(reference)
    }
}

/// [`StoreResolver`] that first pulls base images, as `--pull` says: the
/// frontend asks for every image the Dockerfile names (`FROM`, `COPY
/// --from`, `RUN --mount from=`) while it lowers it, which is when a
/// missing one must arrive. A pull that fails is the resolver's error, so
/// the build stops there.
pub struct PullingResolver<'a> {
    /// The store.
    pub store: &'a Store,
    /// When to pull.
    pub policy: crate::registry::PullPolicy,
    /// How to reach registries.
    pub options: crate::registry::RegistryOptions,
    /// Where transfer progress goes ([`Phase::Pull`]).
    pub reporter: &'a dyn Reporter,
    /// References pulled (or found) already: each is pulled once per build,
    /// whatever platforms ask for it (the store keeps one image per name).
    seen: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl<'a> PullingResolver<'a> {
    /// A resolver for one build.
    pub fn new(
        store: &'a Store,
        policy: crate::registry::PullPolicy,
        options: crate::registry::RegistryOptions,
        reporter: &'a dyn Reporter,
    ) -> PullingResolver<'a> {
        PullingResolver {
            store,
            policy,
            options,
            reporter,
            seen: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Make sure `reference` is in the store, pulling it as the policy
    /// says (once per build).
    fn ensure(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<(), crate::registry::RegistryError> {
        use crate::registry::PullPolicy;
        if !self
            .seen
            .lock()
            .expect("resolver lock")
            .insert(reference.to_owned())
        {
            return Ok(());
        }
        // An image the store does not have is pulled; a store that cannot
        // say (a damaged index) is its own error, not a reason to ask a
        // registry, which would blame the network for it.
        let found = match image::resolve(self.store, reference) {
            Ok(found) => Some(found),
            Err(ImageError::Store(error)) => return Err(error.into()),
            Err(_) => None,
        };
        let present = found.is_some();
        // An ID or ID prefix names an image of the store only.
        let local_only = image::Reference::parse(reference).is_err()
            || found.is_some_and(|image| image.id.starts_with(reference));
        let pull = !local_only
            && match self.policy {
                PullPolicy::Always => true,
                PullPolicy::Missing => !present,
                PullPolicy::Never => false,
            };
        if pull {
            crate::registry::pull(
                self.store,
                reference,
                platform,
                &self.options,
                &|transfer| self.reporter.transfer(Phase::Pull, transfer),
            )?;
        }
        Ok(())
    }
}

/// `Err(ResolveError::Invalid)` when `reference` does not parse as an
/// image reference: asked before anything is looked up or pulled.
fn check_reference(reference: &str) -> Result<(), ResolveError> {
    match image::Reference::parse(reference) {
        Ok(_) => Ok(()),
        Err(image::ImageError::InvalidReference { reason, .. }) => {
            Err(ResolveError::Invalid(reason.to_owned()))
        }
        Err(other) => Err(ResolveError::Invalid(other.to_string())),
    }
}

/// The resolver of a plan (`build --dry-run`): it knows no image, but
/// refuses a name that is not a reference, as a build would.
pub struct NameResolver;

impl ImageResolver for NameResolver {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<Resolved, ResolveError> {
        check_reference(reference)?;
        Err(ResolveError::Unknown(reference.to_owned()))
    }
}

impl ImageResolver for PullingResolver<'_> {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Resolved, ResolveError> {
        check_reference(reference)?;
        self.ensure(reference, platform)
            .map_err(|error| ResolveError::Failed(Box::new(error)))?;
        StoreResolver(self.store).find(reference)
    }
}

/// The filesystem a step produced.
#[derive(Debug, Clone, Default)]
struct Filesystem {
    layers: Vec<LayerRecord>,
}

/// What the build keeps per step.
#[derive(Debug, Clone, Default)]
struct Outcome {
    fs: Filesystem,
    /// The layer this step added, if any.
    layer: Option<LayerRecord>,
    /// For image sources: the image's config.
    config: Option<ImageConfiguration>,
    /// Its cache key (none for config instructions).
    key: Option<cache::Key>,
    /// When its filesystem change was made (now, or when the cached run
    /// was), for history.
    created: Option<String>,
    /// When it ran instead of coming from the cache: the step whose own
    /// change made it run (itself, or one upstream).
    missed: Option<VertexId>,
}

/// What a bind mount shows.
enum Bound<'a> {
    /// A directory of the host: the build context or a named one.
    Context(&'a BuildContext),
    /// The filesystem of a step (a stage, an image).
    Step(VertexId),
}

/// What every step of one build shares.
struct Build<'a> {
    store: &'a Store,
    sandbox: Option<&'a Sandbox>,
    graph: &'a BuildGraph,
    contexts: &'a Contexts,
    options: &'a BuildOptions,
    stats: std::sync::Mutex<cache::StatCache>,
    fetcher: fetch::Fetcher,
    cloner: git::Cloner,
    outcomes: std::sync::Mutex<Vec<Option<Outcome>>>,
    now: String,
    /// `strata cache explain`: compute keys, run and record nothing.
    dry: bool,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image, recorded in the store.
    pub image: ImageRecord,
    /// Context files whose content was read (not known from the stat
    /// cache).
    pub files_hashed: usize,
    /// The cache keys of the steps the image is made of (what
    /// `--cache-to mode=min` exports).
    pub image_keys: Vec<key::Key>,
    /// The cache keys of every step of the build (`mode=max`).
    pub all_keys: Vec<key::Key>,
}

/// Build `graph`'s target stage into the store.
pub(crate) fn build_graph(
    store: &Store,
    sandbox: &Sandbox,
    graph: &BuildGraph,
    contexts: &Contexts,
    options: &BuildOptions,
    events: &dyn Reporter,
) -> Result<Built, BuildError> {
    run(
        store,
        Some(sandbox),
        graph,
        contexts,
        options,
        events,
        false,
    )
    .map(|built| built.expect("a real build makes an image"))
}

/// `strata cache explain`: the events a build would give (which steps
/// would come from the cache, which would run and why), computing every
/// key and running nothing. A step after one that would run is predicted
/// from its key too: keys do not depend on what a step makes.
pub(crate) fn explain_graph(
    store: &Store,
    graph: &BuildGraph,
    contexts: &Contexts,
    options: &BuildOptions,
    events: &dyn Reporter,
) -> Result<(), BuildError> {
    run(store, None, graph, contexts, options, events, true).map(drop)
}

fn run(
    store: &Store,
    sandbox: Option<&Sandbox>,
    graph: &BuildGraph,
    contexts: &Contexts,
    options: &BuildOptions,
    events: &dyn Reporter,
    dry: bool,
) -> Result<Option<Built>, BuildError> {
    let mut scheduler = schedule::Scheduler::new(graph);
    // Refuse what cannot run before running anything.
    for vertex in (0..graph.len())
        .filter(|id| scheduler.needs(*id))
        .map(|id| graph.vertex(id))
    {
        if let Some(what) = unsupported(&vertex, options.allow_insecure) {
            return Err(BuildError::Unsupported {
                vertex: vertex.id,
                what,
            });
        }
    }
    let build = Build {
        store,
        sandbox,
        graph,
        contexts,
        options,
        // One for all the contexts: it knows files by their host path.
        stats: std::sync::Mutex::new(cache::StatCache::open(store, &contexts.main.root)),
        fetcher: fetch::Fetcher::new(store),
        cloner: git::Cloner::new(store),
        outcomes: std::sync::Mutex::new(vec![None; graph.len()]),
        now: crate::time::rfc3339(options.epoch.unwrap_or_else(crate::time::now)),
        dry,
    };
    let jobs = if dry { 1 } else { options.jobs.max(1) };
    let mut failure: Option<BuildError> = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::channel();
        let mut running = 0;
        loop {
            while failure.is_none() && running < jobs {
                let Some(id) = scheduler.start_next() else {
                    break;
                };
                let vertex = graph.vertex(id);
                if matches!(vertex.op, Op::Config(_)) {
                    // Nothing to run: done at once.
                    build.set(id, Outcome::default());
                    scheduler.done(id);
                    continue;
                }
                let sender = sender.clone();
                let build = &build;
                running += 1;
                // One thread per running step: each waits on its sandbox
                // (which must stay its parent while it runs, for
                // PR_SET_PDEATHSIG).
                scope.spawn(move || {
                    let result = build.step(&vertex, events);
                    let _ = sender.send((id, result));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((id, result)) = receiver.recv() else {
                break;
            };
            running -= 1;
            match result {
                Ok(outcome) => {
                    build.set(id, outcome);
                    scheduler.done(id);
                }
                Err(error) => {
                    if failure.is_none() {
                        // Every failure names its step.
                        failure = Some(match error.vertex() {
                            Some(_) => error,
                            None => BuildError::InStep(Box::new(InStep { vertex: id, error })),
                        });
                        // Stop the steps still running; their own errors
                        // are consequences of this one.
                        crate::exec::stop_running();
                    }
                }
            }
        }
    });
    build.fetcher.cleanup();
    build.cloner.cleanup();
    // What was hashed stays known, whether or not the build succeeded.
    let stats = build.stats.into_inner().expect("no step panicked");
    stats.save();
    if let Some(error) = failure {
        return Err(error);
    }
    let outcomes = build.outcomes.into_inner().expect("no step panicked");
    if dry {
        return Ok(None);
    }
    let stage = graph.target_stage();
    let chain = stage.last.map(|last| graph.chain(last)).unwrap_or_default();
    let key_of = |id: VertexId| {
        outcomes[id]
            .as_ref()
            .and_then(|outcome| outcome.key.clone())
    };
    Ok(Some(Built {
        image: assemble(store, graph, &outcomes, options)?,
        files_hashed: stats.hashed,
        image_keys: chain.iter().filter_map(|&id| key_of(id)).collect(),
        all_keys: (0..outcomes.len()).filter_map(key_of).collect(),
    }))
}

/// What in `vertex` this version cannot do, if anything. (The build
/// context is refused through the COPY or ADD that reads it, which names a
/// line.)
fn unsupported(vertex: &Vertex, allow_insecure: bool) -> Option<String> {
    match &vertex.op {
        Op::Exec(exec) if exec.security == Security::Insecure && !allow_insecure => {
            Some("RUN --security=insecure without --allow security.insecure".to_owned())
        }
        _ => None,
    }
}

fn outcome(outcomes: &[Option<Outcome>], id: VertexId) -> &Outcome {
    outcomes[id]
        .as_ref()
        .expect("the scheduler runs dependencies first")
}

impl<'a> Build<'a> {
    fn outcome(&self, id: VertexId) -> Outcome {
        outcome(&self.outcomes.lock().expect("outcomes lock"), id).clone()
    }

    fn set(&self, id: VertexId, outcome: Outcome) {
        self.outcomes.lock().expect("outcomes lock")[id] = Some(outcome);
    }

    /// The filesystem of the step's parent (its first input).
    fn parent(&self, vertex: &Vertex) -> Filesystem {
        vertex
            .inputs
            .first()
            .map(|&input| self.outcome(input).fs)
            .unwrap_or_default()
    }

    /// The key of the step's parent (its first input), as the hex its
    /// key and inputs hold; empty when it has none.
    fn parent_key(&self, vertex: &Vertex) -> String {
        self.input_key(vertex.inputs.first().copied())
    }

    /// What a step that reads `input` keys it by, as the hex keys hold
    /// (empty when there is none): its key and, when it made a layer, that
    /// layer's diff_id ([`key::after`]). With the key alone, a step run
    /// again (`--no-cache`, `--no-cache-filter`) that made other content
    /// left what follows it to hit records of the content before.
    fn input_key(&self, input: Option<VertexId>) -> String {
        let outcome = input.map(|input| self.outcome(input));
        let key = outcome.as_ref().and_then(|outcome| {
            let key = outcome.key.clone()?;
            Some(match &outcome.layer {
                Some(layer) => key::after(&key, &layer.diff_id),
                None => key,
            })
        });
        key::hex_or_empty(key.as_ref()).to_owned()
    }

    /// Whether the cache may answer for `vertex`.
    fn may_use_cache(&self, vertex: &Vertex) -> bool {
        !self.options.no_cache && !self.options.no_cache_stages.contains(&vertex.stage)
    }

    /// Run one step, from the cache when it can.
    fn step(&self, vertex: &Vertex, events: &dyn Reporter) -> Result<Outcome, BuildError> {
        match &vertex.op {
            Op::Config(_) => Ok(Outcome::default()),
            Op::Source(source) => self.source(vertex, source, events),
            _ => {
                let (key, inputs) = self.key(vertex)?;
                let (identity, text) = self.identity(vertex);
                let mut fs = self.parent(vertex);
                if self.may_use_cache(vertex)
                    && let Some(record) = cache::get(self.store, &key).or_else(|| {
                        self.options.cache_from.iter().find_map(|imported| {
                            if self.dry {
                                imported.peek(&key)
                            } else {
                                imported.take(self.store, &key)
                            }
                        })
                    })
                {
                    if !self.dry {
                        cache::remember(self.store, &identity, &text, &key);
                        cache::hit(self.store, &record, &self.now);
                    }
                    events.event(Event::Cached(vertex));
                    fs.layers.extend(record.layer.clone());
                    return Ok(Outcome {
                        fs,
                        layer: record.layer,
                        config: None,
                        key: Some(key),
                        created: Some(record.created),
                        missed: None,
                    });
                }
                let cause = self.cause(vertex, &inputs, &identity, &text);
                let missed = match cause {
                    cause::Cause::After(root) => root,
                    _ => vertex.id,
                };
                events.event(Event::Missed(vertex, &cause));
                if self.dry {
                    // What it would make is unknown: what follows stands on
                    // its parent, which keys do not need.
                    return Ok(Outcome {
                        fs,
                        layer: None,
                        config: None,
                        key: Some(key),
                        created: None,
                        missed: Some(missed),
                    });
                }
                events.event(Event::Started(vertex));
                let start = Instant::now();
                let layer = self.execute(vertex, &fs, events)?;
                events.event(Event::Finished(vertex, layer.as_ref(), start.elapsed()));
                let record = cache::CacheRecord {
                    key: key.clone(),
                    layer: layer.clone(),
                    created: self.now.clone(),
                    description: vertex.description(),
                    inputs,
                    last_used: None,
                    hits: 0,
                };
                // A cache that cannot be written costs the next build time,
                // not this one its result.
                let _ = cache::put(self.store, &record);
                cache::remember(self.store, &identity, &text, &key);
                fs.layers.extend(layer.clone());
                Ok(Outcome {
                    fs,
                    layer,
                    config: None,
                    key: Some(key),
                    created: Some(self.now.clone()),
                    missed: Some(missed),
                })
            }
        }
    }

    fn source(
        &self,
        vertex: &Vertex,
        source: &Source,
        events: &dyn Reporter,
    ) -> Result<Outcome, BuildError> {
        match source {
            Source::Scratch => Ok(Outcome {
                key: Some(key::source::scratch()),
                ..Outcome::default()
            }),
            // Read in place by the COPY and ADD steps that use it, which
            // hash what they read.
            Source::Context { .. } => Ok(Outcome {
                key: Some(key::source::context()),
                ..Outcome::default()
            }),
            Source::Image {
                reference, pinned, ..
            } => {
                if !self.dry {
                    events.event(Event::Started(vertex));
                }
                let start = Instant::now();
                let record = self.base_image(reference, pinned.as_deref())?;
                // Held by the build's lease until it ends; a layer that is
                // gone is refused here, at the FROM line, not found missing
                // when the result is saved.
                self.store
                    .hold_image(&record)
                    .map_err(|error| match error {
                        crate::store::StoreError::MissingBlob(digest)
                            if record.layers.iter().any(|layer| layer.digest == digest) =>
                        {
                            BuildError::MissingLayer {
                                vertex: vertex.id,
                                reference: reference.clone(),
                                digest,
                            }
                        }
                        other => ImageError::from(other).into(),
                    })?;
                let config = image::read_config(self.store, &record)?;
                if !self.dry {
                    events.event(Event::Finished(vertex, None, start.elapsed()));
                }
                // The base is recorded too: when it changes, that is the
                // cause of every miss that follows from it.
                let (key, inputs) = key::source::image(reference, &record.manifest.to_string());
                let (identity, text) = self.identity(vertex);
                let previous = cache::previous(self.store, &identity, &text);
                let mut missed = None;
                if let Some(previous) = previous
                    && let Some(change) =
                        cause::own_change(&previous.inputs, &inputs, &|_: &str| false)
                {
                    events.event(Event::Missed(vertex, &cause::Cause::Changed(change)));
                    missed = Some(vertex.id);
                }
                if !self.dry {
                    let _ = cache::put(
                        self.store,
                        &cache::CacheRecord {
                            key: key.clone(),
                            layer: None,
                            created: self.now.clone(),
                            description: vertex.description(),
                            inputs,
                            last_used: None,
                            hits: 0,
                        },
                    );
                    cache::remember(self.store, &identity, &text, &key);
                }
                Ok(Outcome {
                    fs: Filesystem {
                        layers: record.layers.clone(),
                    },
                    layer: None,
                    key: Some(key),
                    created: config.created().clone(),
                    config: Some(config),
                    missed,
                })
            }
        }
    }

    /// The image a source runs: exactly the one the graph pinned when it
    /// was lowered (by manifest digest, never by its name again: a tag that
    /// moved meanwhile changes nothing), or, for an unpinned source (a graph
    /// lowered without a resolver), what `reference` names now.
    fn base_image(&self, reference: &str, pinned: Option<&str>) -> Result<ImageRecord, BuildError> {
        let missing = || BuildError::MissingImage(reference.to_owned());
        let record = match pinned {
            None => image::resolve(self.store, reference).map_err(|error| match error {
                ImageError::UnknownImage(_) => missing(),
                other => other.into(),
            })?,
            Some(pinned) => {
                let pinned: crate::digest::Digest = pinned.parse().map_err(|_| missing())?;
                self.store
                    .index()
                    .map_err(ImageError::from)?
                    .images
                    .into_values()
                    .find(|image| image.manifest == pinned)
                    // Pruned since the graph was lowered.
                    .ok_or_else(missing)?
            }
        };
        Ok(record)
    }

    /// The trees a COPY reads, by input.
    fn trees(&self, vertex: &Vertex) -> Result<Vec<files::Tree<'a>>, BuildError> {
        let mut trees = Vec::new();
        for &input in &vertex.inputs {
            trees.push(match self.graph.context_name(input) {
                Some(name) => files::Tree::Context(self.context(vertex, name)?),
                None => files::Tree::Layers(image::lower_dirs_of(
                    self.store,
                    &self.outcome(input).fs.layers,
                )?),
            });
        }
        Ok(trees)
    }

    /// The step's cache key and its inputs, comparable: each op kind's
    /// key is made in [`key`] from its typed fields; this reads what those
    /// need from outside the graph (the keys of inputs, the content of
    /// what a step reads from the context).
    fn key(&self, vertex: &Vertex) -> Result<(key::Key, cache::StepInputs), BuildError> {
        let parent = self.parent_key(vertex);
        match &vertex.op {
            Op::Exec(exec) => {
                let mut inputs = key::exec::inputs(exec, &parent);
                let mounted = self.bind_mount_parts(vertex, exec, &mut inputs.files)?;
                let key = key::exec::key_of(
                    &vertex.digest,
                    self.network(vertex),
                    &key::exec::sandbox_parts(self.options),
                    &parent,
                    &mounted,
                );
                Ok((key, inputs))
            }
            Op::File(FileOp::Mkdir { path, user }) => Ok((
                key::file::mkdir(&vertex.digest, &parent),
                key::file::mkdir_inputs(path, user, &parent),
            )),
            Op::File(FileOp::Copy(copy)) => {
                let mut inputs = key::file::copy_inputs(copy, &parent);
                let (content, files, selected) = {
                    let trees = self.trees(vertex)?;
                    let destination =
                        image::lower_dirs_of(self.store, &self.parent(vertex).layers)?;
                    let fetch =
                        |url: &str, checksum: Option<&str>| self.fetcher.fetch(url, checksum);
                    // The key needs only the commit: a hit fetches nothing.
                    let clone = |source: &GitSource| self.cloner.resolve(source);
                    let remote = files::Remote {
                        fetch: &fetch,
                        clone: &clone,
                    };
                    let plan = files::plan(copy, &trees, &destination, &remote)
                        .map_err(|message| step_error(vertex, copy.add, message))?;
                    let root = &self.copy_context(vertex)?.root;
                    let mut stats = self.stats.lock().expect("stat cache lock");
                    let (content, files) =
                        files::content_digest(&plan, root, &mut |path, at, meta| {
                            stats.digest(path, at, meta)
                        })
                        .map_err(|message| step_error(vertex, copy.add, message))?;
                    drop(stats);
                    // A stage or image it reads from stands by what it reads.
                    let selected = match self.layers_source(vertex, copy) {
                        Some(index) => Some((
                            index,
                            self.selected_digest(&vertex.digest, vertex.inputs[index], || {
                                files::layers_digest(&plan, &mut |path, at, _| {
                                    cache::file_sha256(path, at)
                                })
                            })
                            .map_err(|message| step_error(vertex, copy.add, message))?,
                        )),
                        None => None,
                    };
                    (content, files, selected)
                };
                inputs.files = files;
                let input_keys: Vec<String> = vertex
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(index, &input)| match &selected {
                        Some((read, digest)) if *read == index => key::file::selected(digest),
                        _ => self.input_key(Some(input)),
                    })
                    .collect();
                let input_keys: Vec<&str> = input_keys.iter().map(String::as_str).collect();
                Ok((
                    key::file::copy(&vertex.digest, &content, &input_keys),
                    inputs,
                ))
            }
            _ => unreachable!("sources and config instructions have no step key"),
        }
    }

    /// The input (its index) a COPY reads paths from, when that is a stage
    /// or an image rather than a context.
    fn layers_source(&self, vertex: &Vertex, copy: &FileCopy) -> Option<usize> {
        copy.sources
            .iter()
            .find_map(|source| match source {
                CopySource::Path { input, .. } => Some(*input),
                _ => None,
            })
            .filter(|index| {
                vertex
                    .inputs
                    .get(*index)
                    .is_some_and(|input| !self.graph.is_context(*input))
            })
    }

    /// What `selection` reads of `input`'s filesystem, by content: the
    /// digest remembered for the same selection of the same layers, or
    /// `compute`'s, then remembered.
    fn selected_digest<E>(
        &self,
        selection: &str,
        input: VertexId,
        compute: impl FnOnce() -> Result<String, E>,
    ) -> Result<String, E> {
        let layers = &self.outcome(input).fs.layers;
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|layer| layer.diff_id.to_string())
            .collect();
        let diff_ids: Vec<&str> = diff_ids.iter().map(String::as_str).collect();
        let memo = key::file::content_memo(selection, &diff_ids);
        if let Some(known) = cache::content_memo(self.store, &memo) {
            return Ok(known);
        }
        let digest = compute()?;
        if !self.dry {
            cache::remember_content(self.store, &memo, &digest);
        }
        Ok(digest)
    }

    /// The key parts of a RUN's bind mounts, in order: what a mount of the
    /// context shows is read (its files go to `files`, for the report);
    /// a mount of a stage or image is its key. Cache, tmpfs, secret and
    /// ssh mounts have none.
    fn bind_mount_parts(
        &self,
        vertex: &Vertex,
        exec: &strata_frontend::graph::Exec,
        files: &mut cache::Files,
    ) -> Result<Vec<String>, BuildError> {
        let mut mounted = Vec::new();
        for mount in &exec.mounts {
            if mount.kind != strata_frontend::graph::MountType::Bind {
                continue;
            }
            let input = mount
                .input
                .and_then(|index| vertex.inputs.get(index))
                .copied();
            match self.bound(vertex, input)? {
                Bound::Context(context) => {
                    let path = self.context_path(vertex, context, mount.source.as_deref())?;
                    let mut stats = self.stats.lock().expect("stat cache lock");
                    let (digest, tree) = tree_digest(&path, &context.root, &mut stats)
                        .map_err(|kind| StepError::new(vertex.id, kind))?;
                    files.extend(tree);
                    mounted.push(digest);
                }
                Bound::Step(input) => {
                    mounted.push(self.mounted_key(input, mount.source.as_deref()))
                }
            }
        }
        Ok(mounted)
    }

    /// What a bind mount of `source` in stage or image `input` stands for
    /// in the RUN's key: what it shows, by content, when it selects a
    /// directory or file of it (BuildKit's content checksum of a mount's
    /// selector); the input's key for the whole filesystem, a source that
    /// is a symlink (which the mount follows and a copy would not), or one
    /// that cannot be read as a copy reads it (the mount reports it).
    fn mounted_key(&self, input: VertexId, source: Option<&str>) -> String {
        let whole = || self.input_key(Some(input));
        let Some(source) = source.filter(|source| !matches!(source.trim_matches('/'), "" | "."))
        else {
            return whole();
        };
        let selection = format!("mount {source}");
        let digest = self.selected_digest(&selection, input, || {
            let lowers =
                image::lower_dirs_of(self.store, &self.outcome(input).fs.layers).map_err(|_| ())?;
            let copy = FileCopy {
                sources: vec![CopySource::Path {
                    input: 1,
                    path: source.to_owned(),
                }],
                destination: "/".to_owned(),
                ..FileCopy::default()
            };
            let trees = [files::Tree::Layers(Vec::new()), files::Tree::Layers(lowers)];
            // (Never called: the copy has paths only.)
            let fetch = |url: &str, checksum: Option<&str>| self.fetcher.fetch(url, checksum);
            let clone = |source: &GitSource| self.cloner.resolve(source);
            let remote = files::Remote {
                fetch: &fetch,
                clone: &clone,
            };
            let plan = files::plan(&copy, &trees, &[], &remote).map_err(|_| ())?;
            if plan.is_one_symlink() {
                return Err(());
            }
            files::layers_digest(&plan, &mut |path, at, _| cache::file_sha256(path, at))
                .map_err(|_| ())
        });
        match digest {
            Ok(digest) => key::file::selected(&digest),
            Err(()) => whole(),
        }
    }

    /// How the cache index knows this step from one build to the next (see
    /// [`cause::identity`]).
    fn identity(&self, vertex: &Vertex) -> (String, String) {
        cause::identity(
            &self.options.dockerfile,
            self.graph.stages.get(vertex.stage),
            &vertex.label,
        )
    }

    /// Why `vertex`, whose key is new, must run.
    fn cause(
        &self,
        vertex: &Vertex,
        inputs: &cache::StepInputs,
        identity: &str,
        text: &str,
    ) -> cause::Cause {
        if !self.may_use_cache(vertex) {
            return cause::Cause::NoCache;
        }
        let Some(previous) = cache::previous(self.store, identity, text) else {
            return cause::Cause::NoPrevious;
        };
        // Paths of the file map are escaped text (see `crate::name`).
        let ignored = |path: &str| {
            self.contexts
                .main
                .ignore
                .excluded_bytes(&crate::name::unescape(path))
        };
        if let Some(change) = cause::own_change(&previous.inputs, inputs, &ignored) {
            return cause::Cause::Changed(change);
        }
        // Only what it stands on changed: name the step upstream that did.
        vertex
            .inputs
            .iter()
            .find_map(|&input| self.outcome(input).missed)
            .map_or_else(
                // A record from before inputs were kept, say.
                || cause::Cause::Changed(cause::Change::Inputs),
                cause::Cause::After,
            )
    }

    /// The context `name` that `vertex` reads.
    fn context(&self, vertex: &Vertex, name: &str) -> Result<&'a BuildContext, BuildError> {
        self.contexts
            .get(name)
            .ok_or_else(|| BuildError::NoContext {
                vertex: vertex.id,
                name: name.to_owned(),
            })
    }

    /// The context a COPY reads its paths from (the build context when it
    /// reads none).
    fn copy_context(&self, vertex: &Vertex) -> Result<&'a BuildContext, BuildError> {
        match vertex
            .inputs
            .iter()
            .find_map(|&input| self.graph.context_name(input))
        {
            Some(name) => self.context(vertex, name),
            None => Ok(&self.contexts.main),
        }
    }

    /// What a bind mount of `input` shows: a context (the build context
    /// when it names no input), or a stage or image.
    fn bound(&self, vertex: &Vertex, input: Option<VertexId>) -> Result<Bound<'a>, BuildError> {
        match input {
            None => Ok(Bound::Context(&self.contexts.main)),
            Some(input) => match self.graph.context_name(input) {
                Some(name) => self.context(vertex, name).map(Bound::Context),
                None => Ok(Bound::Step(input)),
            },
        }
    }

    /// The host path of a bind mount's source in `context`, refused when
    /// it leaves the context.
    fn context_path(
        &self,
        vertex: &Vertex,
        context: &BuildContext,
        source: Option<&str>,
    ) -> Result<std::path::PathBuf, BuildError> {
        let source = source.unwrap_or(".");
        let root = std::fs::canonicalize(&context.root)
            .map_err(|error| StepError::new(vertex.id, StepErrorKind::OpenContext(error)))?;
        let path = std::fs::canonicalize(root.join(source.trim_start_matches('/')))
            .map_err(|_| StepError::new(vertex.id, MountError::NotInContext(source.to_owned())))?;
        if !path.starts_with(&root) {
            return Err(
                StepError::new(vertex.id, MountError::LeavesContext(source.to_owned())).into(),
            );
        }
        Ok(path)
    }

    /// The sandbox mounts of a RUN, with what must live as long as it runs
    /// (cache locks, secret files).
    fn mounts(
        &self,
        vertex: &Vertex,
        exec: &strata_frontend::graph::Exec,
        env: &mut Vec<String>,
    ) -> Result<mounts::Prepared, BuildError> {
        mounts::prepare(
            self.store,
            vertex,
            exec,
            env,
            self.options,
            &|input, source| match self.bound(vertex, input)? {
                Bound::Context(context) => {
                    let path = self.context_path(vertex, context, source)?;
                    let hidden = files::ignored_below(context, &path)
                        .map_err(|error| StepError::new(vertex.id, MountError::from(error)))?;
                    Ok(mounts::BindSource::Host { path, hidden })
                }
                Bound::Step(input) => Ok(mounts::BindSource::Layers(image::lower_dirs_of(
                    self.store,
                    &self.outcome(input).fs.layers,
                )?)),
            },
            !self.may_use_cache(vertex),
        )
    }

    fn network(&self, vertex: &Vertex) -> Network {
        match &vertex.op {
            Op::Exec(exec) => match exec.network {
                StepNetwork::Default => self.options.network,
                StepNetwork::None => Network::None,
                StepNetwork::Host => Network::Host,
            },
            _ => self.options.network,
        }
    }

    /// Run a step for real: its layer, if it made one.
    fn execute(
        &self,
        vertex: &Vertex,
        fs: &Filesystem,
        events: &dyn Reporter,
    ) -> Result<Option<LayerRecord>, BuildError> {
        let lowers = image::lower_dirs_of(self.store, &fs.layers)?;
        match &vertex.op {
            Op::File(FileOp::Copy(copy)) => {
                let trees = self.trees(vertex)?;
                let fetch = |url: &str, checksum: Option<&str>| self.fetcher.fetch(url, checksum);
                let clone = |source: &GitSource| self.cloner.clone(source);
                let remote = files::Remote {
                    fetch: &fetch,
                    clone: &clone,
                };
                let plan = files::plan(copy, &trees, &lowers, &remote)
                    .map_err(|message| step_error(vertex, copy.add, message))?;
                for skipped in &plan.skipped {
                    events.notice(Notice::Warning(&format!(
                        "{}: `{}` is {}, which is not copied (as in BuildKit)",
                        vertex.description(),
                        skipped.path,
                        skipped.what
                    )));
                }
                if plan.replaced {
                    events.notice(Notice::Warning(&format!(
                        "{}: several sources go to `{}`, which is not a directory, so each replaces the one before (as in BuildKit); end the destination with `/` to copy them into a directory",
                        vertex.description(),
                        copy.destination
                    )));
                }
                files::write_layer(
                    self.store,
                    vertex.id,
                    &plan,
                    &self.copy_context(vertex)?.root,
                    self.options,
                )
            }
            Op::File(FileOp::Mkdir { path, user }) => {
                config::mkdir_layer(self.store, &lowers, path, user, self.options)
            }
            Op::Exec(exec) => {
                let mut env = exec.env.to_vec();
                env.extend(exec.proxy_env.iter().cloned());
                let prepared = self.mounts(vertex, exec, &mut env)?;
                let spec = RunSpec {
                    args: exec.args.clone(),
                    env,
                    user: exec.user.clone(),
                    cwd: exec.cwd.clone(),
                    network: self.network(vertex),
                    hostname: self.options.hostname.clone(),
                    mounts: prepared.mounts.clone(),
                    insecure: exec.security == Security::Insecure,
                    shm_size: self.options.shm_size,
                    ulimits: self.options.ulimits.clone(),
                };
                let mut on_output = |bytes: &[u8]| events.event(Event::Output(vertex, bytes));
                let finished = self
                    .sandbox
                    .expect("a real build has a sandbox")
                    .run(&lowers, &spec, Output::Capture(&mut on_output))
                    .map_err(|source| BuildError::Exec {
                        vertex: vertex.id,
                        source,
                    })?;
                if finished.code != 0 {
                    return Err(BuildError::StepFailed {
                        vertex: vertex.id,
                        command: exec.args.join(" "),
                        code: finished.code,
                        tail: finished.tail,
                    });
                }
                finished
                    .changes
                    .commit(self.store, self.options.compression, self.options.epoch)
                    .map_err(|source| BuildError::Exec {
                        vertex: vertex.id,
                        source,
                    })
            }
            _ => unreachable!("only COPY, ADD, WORKDIR and RUN execute"),
        }
    }
}

/// The digest of a tree in the build context (a bind mount's source), and
/// its files for the cache report.
fn tree_digest(
    path: &std::path::Path,
    root: &std::path::Path,
    stats: &mut cache::StatCache,
) -> Result<(String, cache::Files), StepErrorKind> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut files = cache::Files::new();
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut stack = vec![path.to_path_buf()];
    while let Some(current) = stack.pop() {
        let meta = std::fs::symlink_metadata(&current)
            .map_err(crate::error::PathError::of("inspect", &current))?;
        // Hashed as bytes (UTF-8 names as they always were), shown escaped.
        use std::os::unix::ffi::OsStrExt;
        let relative = current.strip_prefix(&root).unwrap_or(&current);
        let (kind, digest, digest_bytes) = if meta.is_dir() {
            let mut children = Vec::new();
            // Every entry, or an error: none is left out without a word.
            for entry in std::fs::read_dir(&current)
                .map_err(crate::error::PathError::of("read", &current))?
            {
                let entry = entry.map_err(crate::error::PathError::of("read", &current))?;
                children.push(entry.path());
            }
            children.sort();
            stack.extend(children.into_iter().rev());
            ("dir", String::new(), Vec::new())
        } else if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&current).map_err(StepErrorKind::ContextLink)?;
            let bytes = link.as_os_str().as_bytes().to_vec();
            ("symlink", crate::name::escape(&bytes).into_owned(), bytes)
        } else {
            let digest = stats.digest(&current, &current, &meta)?;
            let bytes = digest.clone().into_bytes();
            ("file", digest, bytes)
        };
        use std::os::unix::fs::MetadataExt;
        hasher.update(relative.as_os_str().as_bytes());
        hasher.update(format!("\0{kind}\0"));
        hasher.update(&digest_bytes);
        hasher.update(format!("\0{:o}\n", meta.mode() & 0o7777));
        files.insert(
            crate::name::escape_path(relative).into_owned(),
            cache::FileSummary {
                kind: kind.to_owned(),
                digest,
                mode: meta.mode() & 0o7777,
            },
        );
    }
    Ok((format!("{:x}", hasher.finalize()), files))
}

/// A COPY or ADD that cannot do what it says.
fn step_error(vertex: &Vertex, add: bool, source: CopyError) -> BuildError {
    StepError::new(vertex.id, StepErrorKind::Copy { add, source }).into()
}

/// The target stage's image: its layers, its base's config with the
/// stage's edits, and history for every step.
fn assemble(
    store: &Store,
    graph: &BuildGraph,
    outcomes: &[Option<Outcome>],
    options: &BuildOptions,
) -> Result<ImageRecord, BuildError> {
    let stage = graph.target_stage();
    let layers = stage
        .rootfs
        .map(|id| outcome(outcomes, id).fs.layers.clone())
        .unwrap_or_default();
    let chain = stage.last.map(|last| graph.chain(last)).unwrap_or_default();
    let base = chain
        .first()
        .and_then(|&first| outcome(outcomes, first).config.clone());
    // History times: when each filesystem step ran (from the cache record
    // for a cached one), and for a config instruction the time of the step
    // before it, so that a rebuild where everything hits makes the same
    // image, ID included.
    let now = crate::time::rfc3339(options.epoch.unwrap_or_else(crate::time::now));
    // A base without a time (scratch, an image imported without one): the
    // first time a step has, so that a config instruction before any step
    // (an ARG's entry) is not dated now, which changed the image of a
    // rebuild where everything hit.
    let mut time = match options.epoch {
        Some(_) => now.clone(),
        None => chain
            .iter()
            .find_map(|&id| outcome(outcomes, id).created.clone())
            .unwrap_or_else(|| now.clone()),
    };
    let mut assembly = config::Assembly::new(base, options.platform.as_ref());
    for &id in chain.iter().skip(1) {
        let vertex = &graph.vertex(id);
        let step = outcome(outcomes, id);
        if options.epoch.is_none()
            && let Some(created) = &step.created
        {
            time = created.clone();
        }
        if let Op::Config(edit) = &vertex.op {
            assembly.edit(edit);
        }
        if let Some(created_by) = &vertex.created_by {
            assembly.history(
                created_by,
                step.layer.is_none() || matches!(vertex.op, Op::Config(_)),
                &time,
            );
        }
    }
    assembly.labels(&options.labels);
    let config = assembly.finish(&layers, &time);
    Ok(image::commit_image_json(
        store,
        &config,
        layers,
        &options.tags,
    )?)
}
