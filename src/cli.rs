//! Command-line definitions (clap derive only; no logic here).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use strata_solver::solve;

/// strata: a daemonless, rootless builder for Dockerfiles.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Where images are stored (default: $STRATA_ROOT, else $XDG_DATA_HOME/strata, else ~/.local/share/strata).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,

    /// Use a store another user owns (refused by default, as git refuses a repository of dubious ownership; also STRATA_ALLOW_FOREIGN_STORE=1).
    #[arg(long, global = true)]
    pub(crate) allow_foreign_store: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Plan (and, with a builder, run) a build from a Dockerfile.
    Build(Box<BuildArgs>),
    /// Make a one-layer image from a rootfs tarball or directory (docker import).
    Import(ImportArgs),
    /// Load images from a docker-archive or OCI archive, or an OCI layout directory.
    Load(LoadArgs),
    /// Save images as a docker-archive (docker save) or an OCI layout.
    Save(SaveArgs),
    /// List images.
    #[command(alias = "ls")]
    Images(ImagesArgs),
    /// Show an image's details as JSON.
    Inspect(InspectArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Remove images (or untag them when they have other tags).
    Rmi(RmiArgs),
    /// Run a command in a sandbox of an image (docker run).
    Run(RunArgs),
    /// Make an image of a kept container's changes (docker commit).
    Commit(CommitArgs),
    /// List kept containers.
    Ps(PsArgs),
    /// Remove kept containers.
    Rm(RmArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push an image to a registry.
    Push(PushArgs),
    /// Log in to a registry (credentials kept in docker's config.json).
    Login(LoginArgs),
    /// Log out of a registry.
    Logout(LogoutArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage the store.
    #[command(subcommand)]
    System(SystemCommand),
}

/// How to reach registries (pull, push, login, build).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Verify TLS certificates. `--tls-verify=false` also allows plain http;
    /// by default only loopback registries (localhost, 127.0.0.1) get either.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) tls_verify: Option<bool>,
    /// The credentials file (default: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<PathBuf>,
    /// A directory of CA certificates (*.crt) to trust for the registry.
    #[arg(long, value_name = "DIR")]
    pub(crate) cert_dir: Option<PathBuf>,
    /// Credentials to use instead of stored ones, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(crate) creds: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The image, [REGISTRY/]NAME[:TAG|@DIGEST].
    pub(crate) image: String,
    /// The platform to pull from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
    /// Print only the image ID.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The image in the store: name, ID or digest.
    pub(crate) image: String,
    /// Where to push, [REGISTRY/]NAME[:TAG] (default: the image's name).
    pub(crate) destination: Option<String>,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Write the pushed manifest's digest to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) digestfile: Option<PathBuf>,
    /// Upload blobs larger than this many bytes in chunks (PATCH) instead of one PUT.
    #[arg(long, value_name = "BYTES")]
    pub(crate) chunk_size: Option<u64>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The registry, HOST[:PORT] (default: docker.io).
    pub(crate) server: Option<String>,
    /// The user name.
    #[arg(short, long)]
    pub(crate) username: Option<String>,
    /// The password (visible to other users in the process list: prefer --password-stdin).
    #[arg(short, long)]
    pub(crate) password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The registry, HOST[:PORT] (default: docker.io).
    pub(crate) server: Option<String>,
    /// The credentials file.
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<PathBuf>,
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PullArg {
    /// Pull every base image, even when the store has it.
    Always,
    /// Pull base images the store lacks (the default).
    Missing,
    /// Never pull: the store must have every base image.
    Never,
    /// Same as always (docker's `--pull`).
    True,
    /// Same as missing.
    False,
}

impl PullArg {
    /// The solver's policy.
    pub(crate) fn policy(self) -> strata_solver::registry::PullPolicy {
        use strata_solver::registry::PullPolicy;
        match self {
            PullArg::Always | PullArg::True => PullPolicy::Always,
            PullArg::Missing | PullArg::False => PullPolicy::Missing,
            PullArg::Never => PullPolicy::Never,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// List cache records: size, created, last used, hits.
    Ls,
    /// Remove cache records (those no image uses; -a for all), then what nothing refers to.
    Prune(CachePruneArgs),
    /// Say which steps of a build would come from the cache and why the others would run, running nothing.
    Explain(Box<BuildArgs>),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CachePruneArgs {
    /// Every record, not only those no image uses.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// `until=DURATION` (e.g. 24h, 90m): only records unused for that long;
    /// `type=exec.cachemount`: only RUN --mount=type=cache directories (-a takes them too).
    #[arg(long = "filter", value_name = "FILTER")]
    pub(crate) filters: Vec<String>,
    /// Keep the most recently used records up to this size (e.g. 2GB, 500MB).
    #[arg(long, value_name = "SIZE")]
    pub(crate) keep_storage: Option<String>,
    /// Accepted for docker's `-f`: strata does not ask.
    #[arg(short, long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Remove untagged images, unreferenced blobs and leftovers of interrupted writes.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Remove all images, not only untagged ones.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SystemCommand {
    /// Verify every blob's digest and every reference in the store.
    Check(CheckArgs),
    /// Show disk use: images, shared layers counted once, and what prune would reclaim.
    Df {
        /// One line per image: its size, what it shares, what is its own.
        #[arg(short, long)]
        verbose: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Also compare every unpacked layer snapshot with its layer's blob.
    #[arg(long)]
    pub(crate) snapshots: bool,
    /// Rebuild what can be rebuilt (the index from the image records and
    /// blobs, snapshots from their blobs), remove dangling entries, release
    /// stale leases and remove leftovers; then check (snapshots too).
    #[arg(long)]
    pub(crate) repair: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// A rootfs tarball (plain, gzip or zstd), a directory, or `-` for standard input.
    pub(crate) source: PathBuf,
    /// The name to give the image, NAME[:TAG].
    pub(crate) name: Option<String>,
    /// Layer compression: gzip, zstd or uncompressed.
    #[arg(long, default_value = "gzip")]
    pub(crate) compression: String,
    /// The platform to record in the image's config, os/arch[/variant] (default: this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The archive or OCI layout directory (default: standard input).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Print only the image IDs.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

/// What `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SaveFormat {
    /// docker save's format (also an OCI layout, readable by OCI tools).
    Docker,
    /// An OCI image layout: a directory, or a tar archive when the output ends in `.tar`.
    Oci,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SaveArgs {
    /// Where to write (default for the docker format: standard output).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    /// The format.
    #[arg(long, value_enum, default_value = "docker")]
    pub(crate) format: SaveFormat,
    /// The images: names, IDs or ID prefixes.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImagesArgs {
    /// Show all images. strata keeps no intermediate images (build steps are
    /// cached apart from images), so this lists the same images as without it.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Print only image IDs.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Show whole IDs.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Show manifest digests.
    #[arg(long)]
    pub(crate) digests: bool,
    /// `json` for one JSON object per line, or a template such as
    /// `{{.Repository}}:{{.Tag}} {{.ID}}` (fields: Repository, Tag, ID, Digest, CreatedAt, Size).
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub(crate) filters: Vec<String>,
    /// Only images of this repository, REPOSITORY[:TAG] (same as --filter reference=).
    pub(crate) repository: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// A Go-template-like selection such as `{{.Id}}` or `{{.Config.Env}}`.
    #[arg(short, long)]
    pub(crate) format: Option<String>,
    /// The images.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// Do not shorten IDs and commands.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Print only the layer digests.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// The image.
    pub(crate) image: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TagArgs {
    /// The image to name.
    pub(crate) source: String,
    /// The new name, NAME[:TAG].
    pub(crate) target: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmiArgs {
    /// Remove even when the image has several tags.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// The images.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
}

/// How `build` shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressArg {
    /// tty on a terminal, else plain.
    Auto,
    /// Live lines per running step.
    Tty,
    /// Ordered lines for logs.
    Plain,
    /// One JSON event per line.
    Json,
}

/// How `--dry-run` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// Stages, steps, dependencies and parallel groups, for people.
    Text,
    /// The whole build graph as JSON.
    Json,
    /// A Graphviz digraph.
    Dot,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The build context: a directory, `-` (an archive or a Dockerfile on
    /// standard input), a git URL, or an http(s) URL (an archive or a
    /// Dockerfile).
    #[arg(default_value = ".")]
    pub(crate) context: PathBuf,

    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,

    /// The stage to build (default: the last one).
    #[arg(long, value_name = "STAGE")]
    pub(crate) target: Option<String>,

    /// A build argument, NAME=VALUE (or NAME to take VALUE from the environment).
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub(crate) build_args: Vec<BuildArg>,

    /// The target platform, os/arch[/variant] (default: this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,

    /// The size of RUN steps' /dev/shm: bytes, or with a unit (k, m, g), as
    /// docker's `--shm-size` (default 64m).
    #[arg(long = "shm-size", value_name = "SIZE", value_parser = parse_shm_size)]
    pub(crate) shm_size: Option<u64>,

    /// A resource limit of RUN steps, NAME=SOFT[:HARD] (`nofile=1024:2048`),
    /// as docker's `--ulimit`.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = strata_solver::exec::Ulimit::parse)]
    pub(crate) ulimits: Vec<strata_solver::exec::Ulimit>,

    /// A named context, NAME=VALUE: the stage or image NAME is VALUE
    /// instead: docker-image://REF (`scratch` for an empty one),
    /// oci-layout://PATH[:TAG][@DIGEST], a URL (a file, as /context, or a
    /// git repository) or a directory.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub(crate) build_contexts: Vec<NamedContext>,

    /// How messages name the Dockerfile when it is not a file the user
    /// named (a URL that served one).
    #[arg(skip)]
    pub(crate) dockerfile_shown: Option<String>,

    /// Name the image, NAME[:TAG] (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub(crate) tags: Vec<String>,

    /// Set a label on the image, KEY=VALUE (repeatable; applied last).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<solve::LabelSpec>,

    /// The network of RUN steps that do not choose with `RUN --network`.
    #[arg(long, value_enum, default_value = "host")]
    pub(crate) network: NetworkArg,

    /// Run every step; use no cached result.
    #[arg(long)]
    pub(crate) no_cache: bool,

    /// Run every step of this stage; use no cached result for it (repeatable).
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub(crate) no_cache_filter: Vec<String>,

    /// Also write the result here: `type=oci|docker|local|tar,dest=PATH` (`-` for
    /// standard output; oci: `tar=false` for a layout directory), with
    /// `compression=gzip|zstd|uncompressed` for the layers the build makes
    /// (uncompressed by default).
    /// `-o DIR` alone is `type=local,dest=DIR`. Repeatable.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub(crate) outputs: Vec<solve::OutputSpec>,

    /// When to pull base images: always, missing (default) or never. `--pull` alone is always.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_value = "missing", default_missing_value = "always", value_name = "POLICY")]
    pub(crate) pull: PullArg,

    /// Push the image to the registry of each -t name.
    #[arg(long)]
    pub(crate) push: bool,

    /// Export the build cache: type=registry,ref=REF or type=local,dest=DIR, with mode=min (the image's steps, the default) or mode=max (every step).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub(crate) cache_to: Vec<solve::remote::CacheTo>,

    /// Import a build cache: type=registry,ref=REF or type=local,src=DIR (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub(crate) cache_from: Vec<solve::CacheFrom>,

    #[command(flatten)]
    pub(crate) registry: RegistryArgs,

    /// Write the result's digests and names here, as JSON (docker buildx's keys).
    #[arg(long, value_name = "FILE")]
    pub(crate) metadata_file: Option<PathBuf>,

    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (repeatable).
    #[arg(long = "secret", value_name = "SPEC")]
    pub(crate) secrets: Vec<solve::SecretSpec>,

    /// Allow an entitlement: `security.insecure` lets RUN --security=insecure keep every capability (of the sandbox's own user namespace).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub(crate) allow: Vec<solve::Entitlement>,

    /// An ssh agent for RUN --mount=type=ssh: `default` ($SSH_AUTH_SOCK), or ID=SOCKET (repeatable).
    #[arg(long = "ssh", value_name = "ID[=SOCKET]")]
    pub(crate) ssh: Vec<solve::SshSpec>,

    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) iidfile: Option<PathBuf>,

    /// Print only the image ID (and errors).
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// How to show progress: tty (live lines; `auto` on a terminal), plain lines, or json (one event per line).
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) progress: ProgressArg,

    /// Steps to run at once, at most (default: the number of CPUs).
    #[arg(short = 'j', long, value_name = "N")]
    pub(crate) jobs: Option<solve::Jobs>,

    /// Print the build plan instead of building.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Run BuildKit's Dockerfile checks on every stage and print what they
    /// find, without building (as `docker build --check`); the exit status
    /// is 1 when a check fires or the Dockerfile is refused.
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) check: bool,

    /// The format of --dry-run's plan (text, json, dot) or of --check's
    /// report (text, json).
    #[arg(long, value_enum)]
    pub(crate) format: Option<PlanFormat>,

    /// What to do instead of building, as buildx's `--call`:
    /// `build` (the default), `check` (as --check), `outline` (the build
    /// args, secrets and ssh agents the target uses) or `targets` (the
    /// stages, their descriptions and the default one); `,format=json`
    /// prints JSON.
    #[arg(
        long,
        value_name = "build|check|outline|targets[,format=text|json]",
        conflicts_with = "dry_run"
    )]
    pub(crate) call: Option<Call>,
}

/// `--call`: what the build does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) kind: CallKind,
    pub(crate) json: bool,
}

/// The kinds of `--call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Build,
    Check,
    Outline,
    Targets,
}

impl std::str::FromStr for Call {
    type Err = String;

    fn from_str(text: &str) -> Result<Call, String> {
        let mut parts = text.split(',');
        let kind = match parts.next().unwrap_or_default() {
            "build" => CallKind::Build,
            "check" => CallKind::Check,
            "targets" => CallKind::Targets,
            "outline" => CallKind::Outline,
            other => {
                return Err(format!(
                    "unknown call `{other}`: expected build, check, outline or targets"
                ));
            }
        };
        let mut json = false;
        for part in parts {
            match part.split_once('=') {
                Some(("format", "json")) => json = true,
                Some(("format", "text")) => json = false,
                _ => {
                    return Err(format!(
                        "unknown option `{part}`: expected format=text or format=json"
                    ));
                }
            }
        }
        Ok(Call { kind, json })
    }
}

/// A sandbox's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NetworkArg {
    /// The host's network.
    Host,
    /// Only loopback.
    None,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Remove the container when it exits (the default). `--rm=false` keeps
    /// its changes as a container for `strata commit`.
    #[arg(
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub(crate) rm: bool,
    /// The kept container's name (default: its short ID).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Set an environment variable, KEY=VALUE (KEY alone takes strata's own value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// The working directory (made if missing).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// The user: name, uid, name:group or uid:gid.
    #[arg(short = 'u', long)]
    pub(crate) user: Option<String>,
    /// The network.
    #[arg(long, value_enum, default_value = "host")]
    pub(crate) network: NetworkArg,
    /// Replace the image's ENTRYPOINT (its CMD is dropped too; `""` for none).
    #[arg(long)]
    pub(crate) entrypoint: Option<String>,
    /// The host name inside (default: the container's short ID).
    #[arg(long)]
    pub(crate) hostname: Option<String>,
    /// Accepted for docker's `-i`: standard input is always attached.
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Accepted for docker's `-t`: a terminal on standard input is passed through as it is.
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// When to pull the image: always, missing (default) or never.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_value = "missing", default_missing_value = "always", value_name = "POLICY")]
    pub(crate) pull: PullArg,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// The image.
    pub(crate) image: String,
    /// The command and its arguments (default: the image's ENTRYPOINT and CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CommitArgs {
    /// A commit message, recorded as the history entry's comment.
    #[arg(short, long)]
    pub(crate) message: Option<String>,
    /// Layer compression: gzip, zstd or uncompressed.
    #[arg(long, default_value = "gzip")]
    pub(crate) compression: String,
    /// The container: name, ID or ID prefix.
    pub(crate) container: String,
    /// The name to give the image, NAME[:TAG].
    pub(crate) name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PsArgs {
    /// Accepted for docker's `-a`: every kept container has exited.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Print only container IDs.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Show whole IDs and commands.
    #[arg(long)]
    pub(crate) no_trunc: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmArgs {
    /// The containers: names, IDs or ID prefixes.
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// `--build-arg NAME=VALUE`, or `NAME` to take the value from the
/// environment (none when unset), as docker does.
#[derive(Debug, Clone)]
pub(crate) struct BuildArg {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
}

/// A `--build-arg` that names nothing.
#[derive(Debug, thiserror::Error)]
#[error("invalid build argument `{0}`: expected NAME=VALUE or NAME")]
pub(crate) struct BuildArgError(String);

impl std::str::FromStr for BuildArg {
    type Err = BuildArgError;

    fn from_str(entry: &str) -> Result<BuildArg, BuildArgError> {
        match entry.split_once('=') {
            Some(("", _)) => Err(BuildArgError(entry.to_owned())),
            Some((name, value)) => Ok(BuildArg {
                name: name.to_owned(),
                value: Some(value.to_owned()),
            }),
            None if entry.is_empty() => Err(BuildArgError(String::new())),
            None => Ok(BuildArg {
                name: entry.to_owned(),
                value: std::env::var(entry).ok(),
            }),
        }
    }
}

/// `--shm-size`: bytes, or a number with `b`, `k`, `m` or `g` (powers of
/// 1024, either case), as docker reads it.
fn parse_shm_size(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let (digits, scale) = match lower.as_bytes().last() {
        Some(b'b') => (&lower[..lower.len() - 1], 1),
        Some(b'k') => (&lower[..lower.len() - 1], 1 << 10),
        Some(b'm') => (&lower[..lower.len() - 1], 1 << 20),
        Some(b'g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1u64),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|value| value.checked_mul(scale))
        .filter(|size| *size > 0)
        .ok_or_else(|| format!("invalid size `{text}`: expected bytes, or a number with k, m or g"))
}

/// `--build-context NAME=VALUE`, as buildx spells it.
#[derive(Debug, Clone)]
pub(crate) struct NamedContext {
    pub(crate) name: String,
    pub(crate) value: ContextValue,
}

/// What a `--build-context` names, as buildx tells them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextValue {
    /// `docker-image://REF`.
    Image(String),
    /// `oci-layout://PATH[:TAG][@DIGEST]`.
    OciLayout {
        path: std::path::PathBuf,
        image: strata_solver::image::LayoutImage,
    },
    /// `http(s)://`, `git://` or `git@`: a file, or a git repository.
    Url(String),
    /// Anything else: a directory.
    Directory(std::path::PathBuf),
}

/// A `--build-context` strata cannot use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NamedContextError {
    #[error("invalid build context `{0}`: expected NAME=VALUE")]
    Syntax(String),
    #[error(
        "build context `{0}`: expected docker-image://REF, oci-layout://PATH[:TAG][@DIGEST], a URL or a directory"
    )]
    Empty(String),
    #[error("build context `{0}`: the oci-layout digest must be sha256:<64 hex digits>")]
    LayoutDigest(String),
}

impl std::str::FromStr for NamedContext {
    type Err = NamedContextError;

    fn from_str(entry: &str) -> Result<NamedContext, NamedContextError> {
        let Some((name, value)) = entry
            .split_once('=')
            .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        else {
            return Err(NamedContextError::Syntax(entry.to_owned()));
        };
        let empty = || NamedContextError::Empty(entry.to_owned());
        let value = if let Some(image) = value.strip_prefix("docker-image://") {
            ContextValue::Image(
                Some(image)
                    .filter(|image| !image.is_empty())
                    .ok_or_else(empty)?
                    .to_owned(),
            )
        } else if let Some(layout) = value.strip_prefix("oci-layout://") {
            // As buildx splits it: the digest after `@`, then a tag after
            // the first `:` (`latest` when none).
            let (rest, digest) = match layout.split_once('@') {
                Some((rest, digest)) => (rest, Some(digest)),
                None => (layout, None),
            };
            let (path, tag) = rest.split_once(':').unwrap_or((rest, "latest"));
            if path.is_empty() {
                return Err(empty());
            }
            let image = match digest {
                Some(digest) => {
                    let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
                        hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
                    });
                    if !valid {
                        return Err(NamedContextError::LayoutDigest(entry.to_owned()));
                    }
                    strata_solver::image::LayoutImage::Digest(digest.to_owned())
                }
                None => strata_solver::image::LayoutImage::Tag(tag.to_owned()),
            };
            ContextValue::OciLayout {
                path: path.into(),
                image,
            }
        } else if ["http://", "https://", "git://", "git@"]
            .iter()
            .any(|scheme| value.starts_with(scheme))
        {
            ContextValue::Url(value.to_owned())
        } else {
            ContextValue::Directory(value.into())
        };
        Ok(NamedContext {
            name: name.to_owned(),
            value,
        })
    }
}

impl BuildArgs {
    /// The solver's request from the command line's flags (already typed by
    /// clap through the solver's own parsers).
    pub(crate) fn request(
        &self,
        platform: Option<strata_frontend::graph::Platform>,
    ) -> anyhow::Result<solve::BuildRequest> {
        // How the cache report knows this Dockerfile next time.
        let canonical = |path: &std::path::Path| {
            std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_owned())
                .display()
                .to_string()
        };
        let dockerfile_id = match &self.file {
            Some(path) if path == std::path::Path::new("-") => "<stdin>".to_owned(),
            Some(path) => canonical(path),
            None => canonical(&crate::dockerfile::default_dockerfile(&self.context)),
        };
        let mut request = solve::BuildRequest::new(&self.context);
        request.dockerfile = self
            .file
            .clone()
            .filter(|path| path != std::path::Path::new("-"));
        request.dockerfile_id = dockerfile_id;
        request.named_contexts = self
            .build_contexts
            .iter()
            .filter_map(|context| match &context.value {
                ContextValue::Directory(dir) => Some((context.name.clone(), dir.clone())),
                _ => None,
            })
            .collect();
        request.tags = self.tags.clone();
        request.labels = self.labels.clone();
        request.outputs = self.outputs.clone();
        request.push = self.push;
        request.secrets = self.secrets.clone();
        request.ssh = self.ssh.clone();
        request.entitlements = self.allow.clone();
        request.cache_from = self.cache_from.clone();
        request.cache_to = self.cache_to.clone();
        request.network = match self.network {
            NetworkArg::Host => strata_solver::exec::Network::Host,
            NetworkArg::None => strata_solver::exec::Network::None,
        };
        request.no_cache = self.no_cache;
        request.no_cache_filter = self.no_cache_filter.clone();
        if let Some(jobs) = self.jobs {
            request.jobs = jobs;
        }
        // `--build-arg SOURCE_DATE_EPOCH=...` sets the epoch as BuildKit
        // takes it from its build argument; else the environment's, which
        // buildx passes as that build argument.
        let from_arg = self
            .build_args
            .iter()
            .rev()
            .find(|arg| arg.name == "SOURCE_DATE_EPOCH")
            .and_then(|arg| arg.value.as_deref())
            .filter(|value| !value.is_empty());
        // BuildKit's `BUILDKIT_SANDBOX_HOSTNAME` build arg: the hostname RUN
        // steps see, checked here so that a bad one is not a failed RUN.
        if let Some(hostname) = self
            .build_args
            .iter()
            .rev()
            .find(|arg| arg.name == "BUILDKIT_SANDBOX_HOSTNAME")
            .and_then(|arg| arg.value.as_deref())
            .filter(|value| !value.is_empty())
        {
            let valid = hostname.len() <= 64
                && hostname
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'));
            if !valid {
                anyhow::bail!(
                    "invalid BUILDKIT_SANDBOX_HOSTNAME `{hostname}`: a hostname is up to 64 letters, digits, `-`, `.` and `_`"
                );
            }
            request.hostname = hostname.to_owned();
        }
        request.shm_size = self.shm_size;
        request.ulimits = self.ulimits.clone();
        request.epoch = match from_arg {
            Some(value) => Some(crate::commands::import::parse_epoch(value)?),
            None => crate::commands::import::source_date_epoch()?,
        };
        request.platform = platform;
        Ok(request)
    }
}
