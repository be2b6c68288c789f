//! The facade: [`solve`] runs a [`BuildGraph`] as a [`BuildRequest`] asks
//! (cache import, the steps, outputs, pushes, cache export), and [`explain`]
//! is the same plan against the cache without running anything. Every
//! caller (the CLI, a library user, a test, a remote backend one day) goes
//! through these two, and hears of progress through one [`Reporter`].

use crate::exec::{ExecError, Sandbox};
use crate::image::{self, ImageError};
use crate::layer::Compression;
use crate::registry::{self, RegistryError, RegistryOptions, Transfer};
use crate::store::{ImageRecord, Store};
use strata_frontend::graph::{BuildGraph, Platform};

use super::output::OutputError;
use super::remote::{self, Exported};
use super::request::{BuildRequest, Entitlement};
use super::{BuildContext, BuildError, BuildOptions, Contexts, Event};
use crate::digest::Digest;

/// What a build runs against: the store, and how registries are reached.
#[derive(Debug)]
pub struct Session<'s> {
    /// The store images, layers and the cache live in.
    pub store: &'s Store,
    /// Credentials, TLS and the like for pulls, pushes and remote caches.
    pub registry: RegistryOptions,
}

/// Which kind of blob transfer a [`Reporter::transfer`] is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Base images coming in.
    Pull,
    /// The image going to a registry (one phase per destination).
    Push,
    /// `--cache-to` going out.
    CacheExport,
}

/// Something the user should hear of that is not a step.
#[derive(Debug)]
pub enum Notice<'a> {
    /// A warning (a cache that cannot be read, a sandbox fallback).
    Warning(&'a str),
    /// The image was pushed to `reference` (qualified) as `digest`.
    Pushed {
        /// Where, fully qualified.
        reference: &'a str,
        /// The manifest's digest there.
        digest: &'a Digest,
    },
    /// The image is built and recorded, before its outputs, pushes and
    /// cache export: `files_hashed` context files were read (the rest were
    /// known from the stat cache), in `elapsed`.
    Built {
        /// The image.
        image: &'a ImageRecord,
        /// Context files whose content was read.
        files_hashed: usize,
        /// How long the steps took.
        elapsed: std::time::Duration,
    },
    /// `--cache-to` was written.
    CacheExported(&'a Exported),
}

/// Where everything a solve has to say goes, from the threads its steps run
/// on: step events, blob transfers and notices. The CLI has one per
/// progress mode (tty, plain, json); a test records.
pub trait Reporter: Sync {
    /// A step started, wrote output, came from the cache, missed it, finished.
    fn event(&self, event: Event<'_>);

    /// A blob transfer of `phase` moved.
    fn transfer(&self, phase: Phase, transfer: Transfer<'_>) {
        let _ = (phase, transfer);
    }

    /// The transfers of one `phase` are over (a bar may close).
    fn transfers_done(&self, phase: Phase) {
        let _ = phase;
    }

    /// Something else worth saying.
    fn notice(&self, notice: Notice<'_>);
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Solved {
    /// The image, recorded in the store.
    pub image: ImageRecord,
    /// The names it was recorded under (normalized `-t`s).
    pub tags: Vec<String>,
    /// Context files whose content was read (not known from the stat cache).
    pub files_hashed: usize,
    /// Where it was pushed (qualified reference) and the manifest's digest.
    pub pushed: Vec<(String, Digest)>,
    /// What `--cache-to` wrote.
    pub exported: Vec<Exported>,
}

/// Why a solve failed.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// A signal stopped the build (see `exec::stop_on_signals`): the
    /// sandboxes were killed and cleaned up.
    #[error("the build was interrupted")]
    Interrupted(i32),
    /// A step failed, or the image could not be assembled.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// `--platform` names one this machine cannot run.
    #[error(
        "building for {wanted} is not supported: strata runs steps on this machine, which is {host}"
    )]
    ForeignPlatform {
        /// What was asked.
        wanted: String,
        /// This machine.
        host: String,
    },
    /// `--no-cache-filter` names no stage.
    #[error("--no-cache-filter: no stage named `{0}`")]
    NoStage(String),
    /// The context cannot be read: worded on one line with its causes, as
    /// it always has been.
    #[error("{}", crate::error::one_line(.0))]
    Context(super::context::ContextError),
    /// The sandbox cannot start.
    #[error(transparent)]
    Sandbox(#[from] ExecError),
    /// A name is not a reference.
    #[error(transparent)]
    Reference(#[from] ImageError),
    /// `--push` without a name.
    #[error("--push needs a name to push to: give -t REGISTRY/NAME[:TAG]")]
    PushWithoutName,
    /// An `--output` failed.
    #[error("failed to write the output `{spec}`")]
    Output {
        /// The output as written.
        spec: String,
        /// Why.
        #[source]
        source: OutputError,
    },
    /// A push failed.
    #[error(transparent)]
    Push(Box<RegistryError>),
    /// `--cache-to` failed.
    #[error("failed to export the build cache")]
    CacheExport(#[source] Box<RegistryError>),
}

/// A build error as the facade reports it: an interrupt is its own case.
fn interrupted(error: BuildError) -> SolveError {
    match error {
        BuildError::Exec {
            source: ExecError::Interrupted(signal),
            ..
        } => SolveError::Interrupted(signal),
        other => SolveError::Build(other),
    }
}

/// Whether this machine does not run `platform`.
fn foreign(platform: &Platform) -> bool {
    let host = Platform::host();
    platform.os != host.os || platform.architecture != host.architecture
}

/// Refuse a build one of whose RUN steps would run on a platform this
/// machine does not run (strata runs every step here; emulated builds
/// come with multi-platform support). Only RUN runs anything: a target
/// platform of another machine is built when its stages only copy files
/// and edit the config, and a stage `FROM --platform=$BUILDPLATFORM` runs
/// here whatever the target (BuildKit's `testPlatformArgsExplicit`). A
/// RUN runs on the platform of the image its stage starts from, and on
/// `wanted` (or this machine) on scratch.
fn check_steps_platform(graph: &BuildGraph, wanted: Option<&Platform>) -> Result<(), SolveError> {
    use strata_frontend::graph::{Op, Source};
    let needed = super::schedule::needed(graph);
    // Each vertex's first source, in one pass: vertices come after their
    // inputs, and a step's filesystem is its first input.
    let mut roots = vec![0u32; graph.len()];
    for id in 0..graph.len() {
        roots[id] = match graph.inputs_of(id).next() {
            Some(parent) => roots[parent],
            None => u32::try_from(id).expect("a graph has fewer than 2^32 vertices"),
        };
    }
    for id in (0..graph.len()).filter(|id| needed[*id] && graph.is_exec(*id)) {
        let platform = match graph.vertex(roots[id] as usize).op {
            Op::Source(Source::Image { platform, .. }) => Platform::parse(&platform),
            _ => wanted.cloned(),
        };
        if let Some(platform) = platform.filter(foreign) {
            return Err(SolveError::ForeignPlatform {
                wanted: platform.to_string(),
                host: Platform::host().to_string(),
            });
        }
    }
    Ok(())
}

/// The solver's options and context for `request`: flags resolved against
/// the graph, remote caches imported (one that cannot be read is a
/// warning, as buildx has it: it costs time, not the build).
fn prepare(
    session: &Session<'_>,
    graph: &BuildGraph,
    request: &BuildRequest,
    reporter: &dyn Reporter,
) -> Result<(BuildOptions, Contexts), SolveError> {
    let mut cache_from = Vec::new();
    for from in &request.cache_from {
        match remote::import(session.store, &from.location, &session.registry) {
            Ok(imported) => cache_from.push(std::sync::Arc::new(imported)),
            Err(error) => reporter.notice(Notice::Warning(&format!(
                "--cache-from {}: {error}; building without it",
                from.spec
            ))),
        }
    }
    let tags = image::normalize_tags(&request.tags)?;
    let no_cache_stages = request
        .no_cache_filter
        .iter()
        .map(|wanted| {
            graph
                .stages
                .iter()
                .find(|stage| {
                    stage.name.as_deref() == Some(wanted.as_str())
                        || stage.index.to_string() == *wanted
                })
                .map(|stage| stage.index)
                .ok_or_else(|| SolveError::NoStage(wanted.clone()))
        })
        .collect::<Result<_, _>>()?;
    // Layers a build makes are stored uncompressed unless an output asks
    // otherwise: writing them costs no CPU, and they are compressed where
    // size matters (pushing, an archive asked for with compression=).
    let compression = request
        .outputs
        .iter()
        .filter_map(|output| output.compression)
        .next_back()
        .unwrap_or(Compression::None);
    let options = BuildOptions {
        tags,
        labels: request
            .labels
            .iter()
            .map(|label| (label.key.clone(), label.value.clone()))
            .collect(),
        network: request.network,
        platform: request.platform.clone(),
        hostname: request.hostname.clone(),
        shm_size: request.shm_size,
        ulimits: request.ulimits.clone(),
        compression,
        epoch: request.epoch,
        no_cache: request.no_cache,
        no_cache_stages,
        jobs: request.jobs.get(),
        dockerfile: request.dockerfile_id.clone(),
        secrets: request
            .secrets
            .iter()
            .map(|spec| (spec.id.clone(), spec.secret.clone()))
            .collect(),
        allow_insecure: request
            .entitlements
            .contains(&Entitlement::SecurityInsecure),
        ssh: request
            .ssh
            .iter()
            .map(|spec| (spec.id.clone(), spec.socket.clone()))
            .collect(),
        cache_from,
    };
    let main = BuildContext::open(&request.context, request.dockerfile.as_deref())
        .map_err(SolveError::Context)?;
    let mut contexts = Contexts::main(main);
    for (name, dir) in &request.named_contexts {
        // Its own `.dockerignore`, never the Dockerfile's.
        let context = BuildContext::open(dir, None).map_err(SolveError::Context)?;
        contexts.named.insert(name.clone(), context);
    }
    Ok((options, contexts))
}

fn warn_notices(sandbox: &Sandbox, reporter: &dyn Reporter) {
    for notice in sandbox.take_notices() {
        reporter.notice(Notice::Warning(&notice));
    }
}

/// Build `graph`'s target as `request` asks, into the session's store, then
/// write its outputs, push it and export its cache.
pub fn solve(
    session: &Session<'_>,
    graph: &BuildGraph,
    request: &BuildRequest,
    reporter: &dyn Reporter,
) -> Result<Solved, SolveError> {
    check_steps_platform(graph, request.platform.as_ref())?;
    // Everything the build writes and uses is held by its lease (the
    // caller's, when it took one already: the CLI does, before the
    // frontend resolves the base images) until the image is recorded and
    // its outputs, pushes and cache exports are done.
    let lease = session
        .store
        .lease("build")
        .map_err(|error| SolveError::Build(BuildError::Image(error.into())))?;
    let store = lease.store();
    let leased = Session {
        store,
        registry: session.registry.clone(),
    };
    let session = &leased;
    let (options, contexts) = prepare(session, graph, request, reporter)?;
    if request.push && options.tags.is_empty() {
        return Err(SolveError::PushWithoutName);
    }
    let sandbox = Sandbox::new(store)?;
    warn_notices(&sandbox, reporter);
    let started = std::time::Instant::now();
    let built = super::build_graph(store, &sandbox, graph, &contexts, &options, reporter);
    warn_notices(&sandbox, reporter);
    let built = built.map_err(interrupted)?;
    let image = built.image;
    reporter.notice(Notice::Built {
        image: &image,
        files_hashed: built.files_hashed,
        elapsed: started.elapsed(),
    });
    for output in &request.outputs {
        output
            .write(store, &image, &options.tags, options.epoch)
            .map_err(|source| SolveError::Output {
                spec: output.spec.clone(),
                source,
            })?;
    }
    // --push sends every -t name; type=registry outputs their names.
    let mut destinations: Vec<&str> = Vec::new();
    if request.push {
        destinations.extend(options.tags.iter().map(String::as_str));
    }
    for output in &request.outputs {
        if output.push {
            destinations.extend(output.names.iter().map(String::as_str));
        }
    }
    let mut pushed = Vec::new();
    for destination in destinations {
        let result = registry::push(store, &image, destination, &session.registry, &|transfer| {
            reporter.transfer(Phase::Push, transfer)
        });
        reporter.transfers_done(Phase::Push);
        let digest = result.map_err(|error| SolveError::Push(Box::new(error)))?;
        let reference = image::Reference::parse(destination)?.qualified();
        reporter.notice(Notice::Pushed {
            reference: &reference,
            digest: &digest,
        });
        pushed.push((reference, digest));
    }
    let mut exported = Vec::new();
    for to in &request.cache_to {
        let keys = if to.max {
            &built.all_keys
        } else {
            &built.image_keys
        };
        let result = remote::export(store, keys, to, &session.registry, &|transfer| {
            reporter.transfer(Phase::CacheExport, transfer)
        });
        reporter.transfers_done(Phase::CacheExport);
        let done = result.map_err(|error| SolveError::CacheExport(Box::new(error)))?;
        reporter.notice(Notice::CacheExported(&done));
        exported.push(done);
    }
    lease
        .release()
        .map_err(|error| SolveError::Build(BuildError::Image(error.into())))?;
    Ok(Solved {
        image,
        tags: options.tags,
        files_hashed: built.files_hashed,
        pushed,
        exported,
    })
}

/// `strata cache explain`: the events `solve` would give (which steps would
/// come from the cache, which would run and why), computing every key and
/// running nothing.
pub fn explain(
    session: &Session<'_>,
    graph: &BuildGraph,
    request: &BuildRequest,
    reporter: &dyn Reporter,
) -> Result<(), SolveError> {
    check_steps_platform(graph, request.platform.as_ref())?;
    let (options, contexts) = prepare(session, graph, request, reporter)?;
    super::explain_graph(session.store, graph, &contexts, &options, reporter).map_err(interrupted)
}
