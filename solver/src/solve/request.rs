//! What a caller asks of a build, as typed data: [`BuildRequest`] and one
//! type per flag that is more than a word (`--output`, `--secret`, `--ssh`,
//! `--label`, `--allow`, `--cache-from`, `--cache-to`, `-j`).
//!
//! Each type parses its docker/buildx spelling in its own [`FromStr`], here
//! beside the type, so the CLI hands them to clap as `value_parser`s and a
//! bad flag fails while the command line is read, before anything runs
//! (ripgrep's habit: flags become typed options once, in one place). A
//! library caller builds the same values directly.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;

use super::Secret;
use super::output::OutputSpec;
use super::remote::{CacheTo, Location};
use crate::exec::Network;
use strata_frontend::graph::Platform;

/// A flag's value that does not parse: the message names the flag and the
/// spec as the user wrote them.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// `invalid --secret `SPEC`: REASON` and the like.
    #[error("invalid {flag} `{spec}`: {reason}")]
    Invalid {
        /// The flag as the message names it (`--output`, `label`).
        flag: &'static str,
        /// What was given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `--ssh` agent that cannot be used.
    #[error("--ssh {spec}: {reason}")]
    Ssh {
        /// What was given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `--allow` that is not an entitlement.
    #[error("--allow {0}: the only entitlement is security.insecure")]
    Entitlement(String),
    /// A `--cache-to` or `--cache-from` spec.
    #[error(transparent)]
    Cache(#[from] super::remote::CacheSpecError),
    /// `-j 0`.
    #[error("--jobs must be at least 1")]
    NoJobs,
    /// `--output ''`.
    #[error("--output is empty: give a directory, `-` for standard output, or type=KIND,dest=PATH")]
    EmptyOutput,
    /// A name to push to (`--output type=registry,name=`).
    #[error(transparent)]
    Reference(#[from] crate::image::ImageError),
}

impl FlagError {
    pub(crate) fn invalid(flag: &'static str, spec: &str, reason: impl Into<String>) -> FlagError {
        FlagError::Invalid {
            flag,
            spec: spec.to_owned(),
            reason: reason.into(),
        }
    }
}

/// How many steps run at once, at most (`-j`): one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jobs(NonZeroUsize);

impl Jobs {
    /// One step at a time.
    pub const ONE: Jobs = Jobs(NonZeroUsize::MIN);

    /// `count` steps at once; `None` for 0.
    pub fn new(count: usize) -> Option<Jobs> {
        NonZeroUsize::new(count).map(Jobs)
    }

    /// One step per CPU this process may use.
    pub fn per_cpu() -> Jobs {
        std::thread::available_parallelism().map_or(Jobs::ONE, Jobs)
    }

    /// The number.
    pub fn get(self) -> usize {
        self.0.get()
    }
}

impl FromStr for Jobs {
    type Err = FlagError;

    fn from_str(text: &str) -> Result<Jobs, FlagError> {
        let count: usize = text
            .parse()
            .map_err(|_| FlagError::invalid("--jobs", text, "not a whole number"))?;
        Jobs::new(count).ok_or(FlagError::NoJobs)
    }
}

/// `--secret id=ID,src=FILE` or `id=ID,env=VAR` (docker: with neither,
/// the variable named like the id).
#[derive(Debug, Clone)]
pub struct SecretSpec {
    /// What `RUN --mount=type=secret,id=` names.
    pub id: String,
    /// Where its content comes from.
    pub secret: Secret,
}

impl FromStr for SecretSpec {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<SecretSpec, FlagError> {
        let (mut id, mut secret) = (None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", value)) => id = Some(value.to_owned()),
                Some(("src" | "source", value)) => secret = Some(Secret::File(value.into())),
                Some(("env", value)) => secret = Some(Secret::Env(value.to_owned())),
                Some(("type", "file" | "env")) => {}
                _ => {
                    return Err(FlagError::invalid(
                        "--secret",
                        spec,
                        "expected id=ID,src=FILE or id=ID,env=VAR",
                    ));
                }
            }
        }
        let id = id.ok_or_else(|| FlagError::invalid("--secret", spec, "id= is missing"))?;
        let secret = secret.unwrap_or_else(|| Secret::Env(id.clone()));
        Ok(SecretSpec { id, secret })
    }
}

/// `--ssh ID=SOCKET`, or `ID` alone for `$SSH_AUTH_SOCK`. The socket must
/// exist when the flag is read.
#[derive(Debug, Clone)]
pub struct SshSpec {
    /// What `RUN --mount=type=ssh,id=` names (`default` when it names none).
    pub id: String,
    /// The agent's socket.
    pub socket: PathBuf,
}

impl FromStr for SshSpec {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<SshSpec, FlagError> {
        let fail = |reason: String| FlagError::Ssh {
            spec: spec.to_owned(),
            reason,
        };
        let (id, socket) = match spec.split_once('=') {
            Some((id, socket)) => (id.to_owned(), PathBuf::from(socket)),
            None => (
                spec.to_owned(),
                std::env::var_os("SSH_AUTH_SOCK")
                    .map(PathBuf::from)
                    .ok_or_else(|| fail(format!("SSH_AUTH_SOCK is not set: give {spec}=SOCKET")))?,
            ),
        };
        if !socket.exists() {
            return Err(fail(format!("`{}` does not exist", socket.display())));
        }
        Ok(SshSpec { id, socket })
    }
}

/// `--label KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSpec {
    /// The key; never empty.
    pub key: String,
    /// The value; may be empty.
    pub value: String,
}

impl FromStr for LabelSpec {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<LabelSpec, FlagError> {
        match spec.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(LabelSpec {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
            _ => Err(FlagError::invalid("label", spec, "expected KEY=VALUE")),
        }
    }
}

/// `--allow ENTITLEMENT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `security.insecure`: `RUN --security=insecure` may run.
    SecurityInsecure,
}

impl FromStr for Entitlement {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<Entitlement, FlagError> {
        match spec {
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            other => Err(FlagError::Entitlement(other.to_owned())),
        }
    }
}

impl FromStr for CacheTo {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<CacheTo, FlagError> {
        Ok(CacheTo::parse(spec)?)
    }
}

/// `--cache-from`: where, and the spec as written (a cache that cannot be
/// read is a warning naming it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFrom {
    /// The spec as the user wrote it.
    pub spec: String,
    /// Where the cache is.
    pub location: Location,
}

impl FromStr for CacheFrom {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<CacheFrom, FlagError> {
        Ok(CacheFrom {
            spec: spec.to_owned(),
            location: super::remote::parse_from(spec)?,
        })
    }
}

/// Everything a build is asked for beyond its graph, typed.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// `--build-context NAME=DIR`: the directories the graph's named
    /// [`strata_frontend::graph::Source::Context`]s are, by name.
    pub named_contexts: std::collections::BTreeMap<String, PathBuf>,
    /// The Dockerfile's path when it is not `CONTEXT/Dockerfile` (`-f`;
    /// its `.dockerignore` beside it wins, as BuildKit's does).
    pub dockerfile: Option<PathBuf>,
    /// How the cache report knows this Dockerfile from one build to the
    /// next: its canonical path, or `<stdin>` (by default the context's
    /// path: set it when one context serves several graphs).
    pub dockerfile_id: String,
    /// Names for the image (`-t`).
    pub tags: Vec<String>,
    /// Labels applied last (`--label`).
    pub labels: Vec<LabelSpec>,
    /// Where the result also goes (`--output`).
    pub outputs: Vec<OutputSpec>,
    /// `--push`: push the image to each tag's registry.
    pub push: bool,
    /// `--secret`s.
    pub secrets: Vec<SecretSpec>,
    /// `--ssh` agents.
    pub ssh: Vec<SshSpec>,
    /// `--allow`ed entitlements.
    pub entitlements: Vec<Entitlement>,
    /// Caches to read (`--cache-from`), asked after the store's own.
    pub cache_from: Vec<CacheFrom>,
    /// Caches to write (`--cache-to`).
    pub cache_to: Vec<CacheTo>,
    /// The network of RUN steps that do not choose one.
    pub network: Network,
    /// The hostname of RUN steps (BuildKit's `BUILDKIT_SANDBOX_HOSTNAME`
    /// build arg); empty for the sandbox's own, `strata`.
    pub hostname: String,
    /// `--shm-size`: the size of RUN steps' `/dev/shm` in bytes (docker's
    /// 64 MiB when none).
    pub shm_size: Option<u64>,
    /// `--ulimit`: RUN steps' resource limits.
    pub ulimits: Vec<crate::exec::Ulimit>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--no-cache-filter`: stages by name or index.
    pub no_cache_filter: Vec<String>,
    /// Steps run at once, at most (`-j`).
    pub jobs: Jobs,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: Option<u64>,
    /// `--platform`: the platform the graph was lowered for, when one was
    /// asked (only this machine's can run).
    pub platform: Option<Platform>,
}

impl BuildRequest {
    /// A request with defaults: no names, outputs or caches, the host
    /// network, one step per CPU.
    pub fn new(context: impl Into<PathBuf>) -> BuildRequest {
        let context = context.into();
        BuildRequest {
            dockerfile_id: context.display().to_string(),
            context,
            named_contexts: Default::default(),
            dockerfile: None,
            tags: Vec::new(),
            labels: Vec::new(),
            outputs: Vec::new(),
            push: false,
            secrets: Vec::new(),
            ssh: Vec::new(),
            entitlements: Vec::new(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            network: Network::Host,
            hostname: String::new(),
            shm_size: None,
            ulimits: Vec::new(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            jobs: Jobs::per_cpu(),
            epoch: None,
            platform: None,
        }
    }
}
