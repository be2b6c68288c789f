//! Command-line definitions (clap derive only; no logic here).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// strata: a daemonless, rootless builder for Dockerfiles.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Plan (and, with a builder, run) a build from a Dockerfile.
    Build(BuildArgs),
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
    /// The build context: a directory.
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
    pub(crate) build_args: Vec<String>,

    /// The target platform, os/arch[/variant] (default: this machine's).
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,

    /// Print the build plan instead of building.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// The plan's format, with --dry-run.
    #[arg(long, value_enum, default_value = "text", requires = "dry_run")]
    pub(crate) format: PlanFormat,
}
