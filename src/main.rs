//! The `strata` command.
//!
//! Thin by design: parse the command line, call the libraries, print. Errors
//! are printed once, to stderr, and the exit code is non-zero.

mod cli;
mod commands;
mod dockerfile;
mod plan;
mod progress;
mod report;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

// The build holds many small strings (words, paths, environments) that live
// and die together; mimalloc frees and reuses them markedly faster than the
// system allocator (the frontend benchmark measures with it too). uv and
// ruff make the same choice.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The sandbox helper is this same program: it must start before
    // anything else, in a process with one thread.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(strata_solver::exec::HELPER_ARGUMENT))
    {
        strata_solver::exec::helper_main();
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return flag_error(error),
    };
    // Commands that run sandboxes or delete what they made work in strata's
    // user namespace (see strata_solver::exec::userns); entering it forks,
    // so it happens here, before any thread exists.
    let needs_namespace = matches!(
        &cli.command,
        cli::Command::Build(args) if !args.dry_run
    ) || matches!(
        cli.command,
        cli::Command::Run(_)
            | cli::Command::Commit(_)
            | cli::Command::Rm(_)
            | cli::Command::Rmi(_)
            | cli::Command::Cache(cli::CacheCommand::Prune(_) | cli::CacheCommand::Explain(_))
            | cli::Command::Image(cli::ImageCommand::Prune(_))
    );
    if needs_namespace && let Err(error) = strata_solver::exec::userns::enter() {
        return report(anyhow::Error::new(error));
    }
    let root = cli.root.clone();
    commands::ALLOW_FOREIGN_STORE.store(
        cli.allow_foreign_store,
        std::sync::atomic::Ordering::Relaxed,
    );
    let result = match cli.command {
        cli::Command::Build(args) => commands::build::build(root, *args),
        cli::Command::Import(args) => commands::import::import(root, args),
        cli::Command::Load(args) => commands::load::load(root, args),
        cli::Command::Save(args) => commands::save::save(root, args),
        cli::Command::Images(args) => commands::images::images(root, args),
        cli::Command::Inspect(args) => commands::inspect::inspect(root, args),
        cli::Command::History(args) => commands::history::history(root, args),
        cli::Command::Tag(args) => commands::tag::tag(root, args),
        cli::Command::Rmi(args) => commands::rmi::rmi(root, args),
        cli::Command::Run(args) => commands::run::run(root, args),
        cli::Command::Commit(args) => commands::container::commit(root, args),
        cli::Command::Ps(args) => commands::container::ps(root, args),
        cli::Command::Rm(args) => commands::container::rm(root, args),
        cli::Command::Pull(args) => commands::registry::pull(root, args),
        cli::Command::Push(args) => commands::registry::push(root, args),
        cli::Command::Login(args) => commands::registry::login(args),
        cli::Command::Logout(args) => commands::registry::logout(args),
        cli::Command::Cache(cli::CacheCommand::Ls) => commands::cache::ls(root),
        cli::Command::Cache(cli::CacheCommand::Prune(args)) => commands::cache::prune(root, args),
        cli::Command::Cache(cli::CacheCommand::Explain(args)) => {
            commands::build::explain(root, *args)
        }
        cli::Command::Image(cli::ImageCommand::Prune(args)) => commands::system::prune(root, args),
        cli::Command::System(cli::SystemCommand::Check(args)) => {
            commands::system::check(root, args)
        }
        cli::Command::System(cli::SystemCommand::Df { verbose }) => {
            commands::system::df(root, verbose)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(error),
    }
}

/// A command line clap refuses. A value one of our own parsers refused
/// (`--output`, `--secret`, `--build-arg`...) is reported as strata always
/// has, `error: MESSAGE` and exit code 1, where the message names the flag
/// and the value; everything else as clap reports it.
fn flag_error(error: clap::Error) -> ExitCode {
    use std::error::Error as _;
    let ours = error.source().filter(|source| {
        source.is::<strata_solver::solve::FlagError>() || source.is::<cli::BuildArgError>()
    });
    match ours {
        Some(source) if error.kind() == clap::error::ErrorKind::ValueValidation => {
            let _ = writeln!(std::io::stderr(), "error: {source}");
            ExitCode::FAILURE
        }
        _ => error.exit(),
    }
}

/// Print `error` once, to stderr; the exit code to end with.
fn report(error: anyhow::Error) -> ExitCode {
    // Writing to a closed pipe (`strata ... | head`) is not a failure.
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    // A command's own status to pass on (`strata run`), maybe with an error.
    let (code, error) = match error.downcast::<commands::Status>() {
        Ok(commands::Status { code, error: None }) => return ExitCode::from(code),
        Ok(commands::Status {
            code,
            error: Some(error),
        }) => (ExitCode::from(code), error),
        Err(error) => (ExitCode::FAILURE, error),
    };
    let mut stderr = std::io::stderr().lock();
    let _ = match error.downcast_ref::<commands::Rendered>() {
        Some(rendered) => write!(stderr, "{rendered}"),
        None => {
            let mut text = format!("error: {error}\n");
            for cause in error.chain().skip(1) {
                text.push_str(&format!("\nCaused by:\n  {cause}\n"));
            }
            write!(stderr, "{text}")
        }
    };
    code
}
