//! Running a build graph: each needed step in dependency order (see
//! [`schedule`]), RUN steps in the sandbox, then the target stage's image
//! assembled from its layers, config edits and history.
//!
//! What runs so far: `FROM` an image in the store (or `scratch`), `RUN`,
//! `COPY` and `ADD` of local files (see [`files`]), `WORKDIR` and every
//! config instruction. ADD of URLs, `RUN --mount` and RUN heredoc files are
//! refused with a clear error until they land; steps run one at a time and
//! nothing is cached yet.

mod config;
pub mod context;
mod files;
pub mod schedule;

pub use context::{BuildContext, Ignore};

use std::time::{Duration, Instant};

use oci_spec::image::ImageConfiguration;
use strata_frontend::graph::{
    BuildGraph, FileOp, ImageConfig, ImageResolver, Network as StepNetwork, Op, Platform, Security,
    Source, Vertex, VertexId,
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
    /// The network of RUN steps that do not choose (`--network`).
    pub network: Network,
    /// Layer compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: Option<u64>,
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
    /// A base image that is not in the store.
    #[error(
        "image `{0}` is not in the store: import or load it first \
         (this version of strata does not pull from registries yet)"
    )]
    MissingImage(String),
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
    /// An invalid config edit (say, a USER of WORKDIR that cannot be
    /// resolved).
    #[error("{0}")]
    Config(String),
    /// A step that cannot do what it says (a COPY source that is missing).
    #[error("{message}")]
    Step {
        /// The step.
        vertex: VertexId,
        /// What is wrong.
        message: String,
    },
}

impl BuildError {
    /// The step the error is about, if any.
    pub fn vertex(&self) -> Option<VertexId> {
        match self {
            BuildError::StepFailed { vertex, .. }
            | BuildError::Unsupported { vertex, .. }
            | BuildError::Step { vertex, .. }
            | BuildError::Exec { vertex, .. } => Some(*vertex),
            _ => None,
        }
    }
}

/// Looks base images up in the store, for the frontend (their ENV, USER,
/// WORKDIR, SHELL and ONBUILD shape the steps built on them).
pub struct StoreResolver<'a>(pub &'a Store);

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Option<ImageConfig> {
        let record = image::resolve(self.0, reference).ok()?;
        let config = image::read_config(self.0, &record).ok()?;
        let inner = config.config().clone().unwrap_or_default();
        Some(ImageConfig {
            env: inner.env().clone().unwrap_or_default(),
            user: inner.user().clone().unwrap_or_default(),
            workdir: inner.working_dir().clone().unwrap_or_default(),
            shell: Vec::new(),
            onbuild: Vec::new(),
        })
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
}

/// Build `graph`'s target stage into the store.
pub fn build(
    store: &Store,
    sandbox: &Sandbox,
    graph: &BuildGraph,
    context: &BuildContext,
    options: &BuildOptions,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<ImageRecord, BuildError> {
    let mut scheduler = schedule::Scheduler::new(graph);
    // Refuse what cannot run before running anything.
    for vertex in &graph.vertices {
        if scheduler.needs(vertex.id)
            && let Some(what) = unsupported(vertex)
        {
            return Err(BuildError::Unsupported {
                vertex: vertex.id,
                what,
            });
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; graph.vertices.len()];
    while let Some(id) = scheduler.start_next() {
        let vertex = &graph.vertices[id];
        let start = Instant::now();
        let is_step = !matches!(vertex.op, Op::Config(_));
        if is_step {
            events(Event::Started(vertex));
        }
        let outcome = run_step(
            store, sandbox, graph, context, vertex, &outcomes, options, events,
        )?;
        if is_step {
            events(Event::Finished(
                vertex,
                outcome.layer.as_ref(),
                start.elapsed(),
            ));
        }
        outcomes[id] = Some(outcome);
        scheduler.done(id);
    }
    assemble(store, graph, &outcomes, options)
}

/// What in `vertex` this version cannot do, if anything. (The build
/// context is refused through the COPY or ADD that reads it, which names a
/// line.)
fn unsupported(vertex: &Vertex) -> Option<String> {
    match &vertex.op {
        Op::File(FileOp::Copy(copy))
            if copy
                .sources
                .iter()
                .any(|source| matches!(source, strata_frontend::graph::CopySource::Url { .. })) =>
        {
            Some("ADD of a URL".to_owned())
        }
        Op::Exec(exec) if !exec.mounts.is_empty() => Some("RUN --mount".to_owned()),
        Op::Exec(exec) if !exec.files.is_empty() => {
            Some("a RUN heredoc with its own interpreter (#!)".to_owned())
        }
        Op::Exec(exec) if exec.security == Security::Insecure => {
            Some("RUN --security=insecure".to_owned())
        }
        _ => None,
    }
}

fn outcome(outcomes: &[Option<Outcome>], id: VertexId) -> &Outcome {
    outcomes[id]
        .as_ref()
        .expect("the scheduler runs dependencies first")
}

#[expect(clippy::too_many_arguments, reason = "one step's whole world")]
fn run_step(
    store: &Store,
    sandbox: &Sandbox,
    graph: &BuildGraph,
    context: &BuildContext,
    vertex: &Vertex,
    outcomes: &[Option<Outcome>],
    options: &BuildOptions,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, BuildError> {
    let parent = || {
        vertex
            .inputs
            .first()
            .map(|&input| outcome(outcomes, input).fs.clone())
            .unwrap_or_default()
    };
    match &vertex.op {
        Op::Source(Source::Scratch) => Ok(Outcome::default()),
        Op::Source(Source::Image { reference, .. }) => {
            let record = image::resolve(store, reference).map_err(|error| match error {
                ImageError::UnknownImage(_) => BuildError::MissingImage(reference.clone()),
                other => other.into(),
            })?;
            let config = image::read_config(store, &record)?;
            Ok(Outcome {
                fs: Filesystem {
                    layers: record.layers.clone(),
                },
                layer: None,
                config: Some(config),
            })
        }
        // Read in place by the COPY and ADD steps that use it.
        Op::Source(Source::Context { .. }) => Ok(Outcome::default()),
        Op::File(FileOp::Copy(copy)) => {
            let mut fs = parent();
            let destination = image::lower_dirs_of(store, &fs.layers)?;
            let mut trees = Vec::new();
            for &input in &vertex.inputs {
                trees.push(match &graph.vertices[input].op {
                    Op::Source(Source::Context { .. }) => files::Tree::Context(context),
                    _ => files::Tree::Layers(image::lower_dirs_of(
                        store,
                        &outcome(outcomes, input).fs.layers,
                    )?),
                });
            }
            let layer =
                files::copy_layer(store, copy, &trees, &destination, options).map_err(|error| {
                    match error {
                        BuildError::Config(message) => BuildError::Step {
                            vertex: vertex.id,
                            message,
                        },
                        other => other,
                    }
                })?;
            fs.layers.extend(layer.clone());
            Ok(Outcome {
                fs,
                layer,
                config: None,
            })
        }
        Op::File(FileOp::Mkdir { path, user }) => {
            let fs = parent();
            let lowers = image::lower_dirs_of(store, &fs.layers)?;
            let layer = config::mkdir_layer(store, &lowers, path, user, options)?;
            let mut fs = fs;
            fs.layers.extend(layer.clone());
            Ok(Outcome {
                fs,
                layer,
                config: None,
            })
        }
        Op::Exec(exec) => {
            let mut fs = parent();
            let lowers = image::lower_dirs_of(store, &fs.layers)?;
            let mut env = exec.env.clone();
            env.extend(exec.proxy_env.iter().cloned());
            let spec = RunSpec {
                args: exec.args.clone(),
                env,
                user: exec.user.clone(),
                cwd: exec.cwd.clone(),
                network: match exec.network {
                    StepNetwork::Default => options.network,
                    StepNetwork::None => Network::None,
                    StepNetwork::Host => Network::Host,
                },
                hostname: String::new(),
            };
            let mut on_output = |bytes: &[u8]| events(Event::Output(vertex, bytes));
            let finished = sandbox
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
            let layer = finished
                .changes
                .commit(store, options.compression, options.epoch)
                .map_err(|source| BuildError::Exec {
                    vertex: vertex.id,
                    source,
                })?;
            fs.layers.extend(layer.clone());
            Ok(Outcome {
                fs,
                layer,
                config: None,
            })
        }
        Op::Config(_) => Ok(Outcome::default()),
    }
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
    let created = image::rfc3339(options.epoch.unwrap_or_else(crate::container::now));
    let mut assembly = config::Assembly::new(base, &created);
    for &id in chain.iter().skip(1) {
        let vertex = &graph.vertices[id];
        let step = outcome(outcomes, id);
        if let Op::Config(edit) = &vertex.op {
            assembly.edit(edit);
        }
        if let Some(created_by) = &vertex.created_by {
            assembly.history(
                created_by,
                step.layer.is_none() || matches!(vertex.op, Op::Config(_)),
            );
        }
    }
    assembly.labels(&options.labels);
    let config = assembly.finish(&layers);
    Ok(image::commit_image_json(
        store,
        &config,
        layers,
        &options.tags,
    )?)
}
