//! `strata commit`, `strata ps` and `strata rm`: kept containers.

use std::io::Write;

use anyhow::Context;
use strata_solver::container;

use super::import::source_date_epoch;
use super::open_store;
use crate::cli::{CommitArgs, PsArgs, RmArgs};

pub(crate) fn commit(root: Option<std::path::PathBuf>, args: CommitArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let compression = super::parse_compression(&args.compression)?;
    let tags: Vec<String> = args.name.iter().cloned().collect();
    let image = container::commit(
        &store,
        &args.container,
        &tags,
        args.message.as_deref(),
        compression,
        source_date_epoch()?,
    )
    .with_context(|| format!("failed to commit container `{}`", args.container))?;
    writeln!(std::io::stdout().lock(), "{}", image.id)?;
    Ok(())
}

pub(crate) fn ps(root: Option<std::path::PathBuf>, args: PsArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let mut stdout = std::io::stdout().lock();
    let containers = container::list(&store)?;
    if args.quiet {
        for container in containers {
            let id = if args.no_trunc {
                &container.id[..]
            } else {
                &container.id[..12]
            };
            writeln!(stdout, "{id}")?;
        }
        return Ok(());
    }
    let rows: Vec<[String; 6]> = containers
        .iter()
        .map(|container| {
            let mut command = container.args.join(" ");
            if !args.no_trunc && command.chars().count() > 20 {
                command = command.chars().take(19).collect::<String>() + "…";
            }
            [
                if args.no_trunc {
                    container.id.clone()
                } else {
                    container.id[..12].to_owned()
                },
                container.image_name.clone(),
                format!("\"{command}\""),
                container.created.clone(),
                format!("Exited ({})", container.exit_code),
                container.name.clone(),
            ]
        })
        .collect();
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "NAMES",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   "));
            }
        }
        text
    };
    writeln!(stdout, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(stdout, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

pub(crate) fn rm(root: Option<std::path::PathBuf>, args: RmArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = None;
    for wanted in &args.containers {
        match container::remove(&store, wanted) {
            Ok(_) => writeln!(stdout, "{wanted}")?,
            // Go on with the others, as docker does; fail at the end.
            Err(error) => failed = Some(failed.unwrap_or(error)),
        }
    }
    match failed {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}
