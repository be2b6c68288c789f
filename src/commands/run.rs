//! `strata run`.

use anyhow::Context;
use strata_solver::container::{self, Container, RunOptions};
use strata_solver::exec::{self, ExecError, Network, Output, Sandbox};
use strata_solver::image;

use super::{Status, open_store, print_notices};
use crate::cli::{NetworkArg, RunArgs};
use strata_solver::registry::PullPolicy;

/// docker's exit code when the runtime itself fails.
const FAILED_TO_RUN: u8 = 125;
/// docker's exit code when the command cannot be found.
const NOT_FOUND: u8 = 127;

fn fail(code: u8, error: impl Into<anyhow::Error>) -> anyhow::Error {
    Status {
        code,
        error: Some(error.into()),
    }
    .into()
}

/// The image, pulled first as `--pull` says (docker run pulls what is
/// missing).
fn resolve_or_pull(
    store: &strata_solver::store::Store,
    args: &RunArgs,
) -> anyhow::Result<strata_solver::store::ImageRecord> {
    let found = image::resolve(store, &args.image);
    let pull = match (&found, args.pull.policy()) {
        (_, PullPolicy::Always) => true,
        (Err(image::ImageError::UnknownImage(_)), PullPolicy::Missing) => {
            image::Reference::parse(&args.image).is_ok()
        }
        _ => false,
    };
    if !pull {
        return Ok(found?);
    }
    let progress = super::registry::TransferProgress::new("Pulling", false);
    let pulled = strata_solver::registry::pull(
        store,
        &args.image,
        &strata_solver::graph::Platform::host(),
        &super::registry::options(&args.registry)?,
        &|transfer| progress.event(transfer),
    );
    progress.finish();
    Ok(pulled?)
}

pub(crate) fn run(root: Option<std::path::PathBuf>, args: RunArgs) -> anyhow::Result<()> {
    // The image and the run's directory are held while it runs (a prune
    // meanwhile leaves them, and does not wait for the command to end).
    let lease = open_store(root)
        .and_then(|store| Ok(store.lease("run")?))
        .map_err(|error| fail(FAILED_TO_RUN, error))?;
    let store = lease.store().clone();
    let image = resolve_or_pull(&store, &args).map_err(|error| fail(FAILED_TO_RUN, error))?;
    store
        .hold_image(&image)
        .map_err(|error| fail(FAILED_TO_RUN, error))?;
    let config = image::read_config(&store, &image).map_err(|error| fail(FAILED_TO_RUN, error))?;
    let id = container::new_id().map_err(|error| fail(FAILED_TO_RUN, error))?;
    let env = args
        .env
        .iter()
        .filter_map(|entry| match entry.contains('=') {
            true => Some(entry.clone()),
            // docker: `-e KEY` passes strata's own value, or nothing.
            false => std::env::var(entry)
                .ok()
                .map(|value| format!("{entry}={value}")),
        })
        .collect();
    let options = RunOptions {
        command: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        network: match args.network {
            NetworkArg::Host => Network::Host,
            NetworkArg::None => Network::None,
        },
        hostname: Some(args.hostname.clone().unwrap_or_else(|| id[..12].to_owned())),
    };
    let spec =
        container::spec_for(&config, &options).map_err(|error| fail(FAILED_TO_RUN, error))?;
    // Any of these stops the sandbox, cleans up and exits with 128 + the
    // signal. (With a terminal, ^C is a key for the command, not a signal.)
    exec::stop_on_signals(&[
        libc_signal::SIGINT,
        libc_signal::SIGTERM,
        libc_signal::SIGHUP,
    ])
    .map_err(|error| fail(FAILED_TO_RUN, error))?;
    let sandbox = Sandbox::new(&store).map_err(|error| fail(FAILED_TO_RUN, error))?;
    print_notices(&sandbox)?;
    let lowers = image::lower_dirs(&store, &image).map_err(|error| fail(FAILED_TO_RUN, error))?;
    let outcome = sandbox.run(&lowers, &spec, Output::Inherit);
    print_notices(&sandbox)?;
    let finished = match outcome {
        Ok(finished) => finished,
        Err(ExecError::Interrupted(signal)) => {
            return Err(Status {
                code: (128 + signal) as u8,
                error: None,
            }
            .into());
        }
        Err(error @ ExecError::Exec(_)) => return Err(fail(NOT_FOUND, error)),
        Err(error) => return Err(fail(FAILED_TO_RUN, error)),
    };
    let code = finished.code;
    if !args.rm {
        let name = args.name.clone().unwrap_or_else(|| id[..12].to_owned());
        let record = Container {
            id: id.clone(),
            name: name.clone(),
            image: image.id.clone(),
            image_name: args.image.clone(),
            args: spec.args.clone(),
            created: strata_solver::time::rfc3339(strata_solver::time::now()),
            exit_code: code,
            changes: finished.changes.record().clone(),
        };
        container::keep(&store, &record, finished.changes)
            .with_context(|| format!("failed to keep container {name}"))
            .map_err(|error| fail(FAILED_TO_RUN, error))?;
        eprintln_kept(&name)?;
    }
    match u8::try_from(code) {
        Ok(0) => Ok(()),
        Ok(code) => Err(Status { code, error: None }.into()),
        Err(_) => Err(Status {
            code: FAILED_TO_RUN,
            error: None,
        }
        .into()),
    }
}

fn eprintln_kept(name: &str) -> anyhow::Result<()> {
    use std::io::Write;
    writeln!(
        std::io::stderr().lock(),
        "kept container {name}: `strata commit {name} IMAGE` makes an image of it, `strata rm {name}` removes it"
    )?;
    Ok(())
}

/// Signal numbers (Linux).
mod libc_signal {
    pub(super) const SIGHUP: i32 = 1;
    pub(super) const SIGINT: i32 = 2;
    pub(super) const SIGTERM: i32 = 15;
}
