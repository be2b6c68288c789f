//! `strata import`.

use std::io::Write;

use anyhow::Context;
use strata_solver::image::{self, ImportOptions};

use super::open_store;
use crate::cli::ImportArgs;

/// `SOURCE_DATE_EPOCH`, when set.
pub(crate) fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.is_empty() => parse_epoch(&value).map(Some),
        _ => Ok(None),
    }
}

/// A `SOURCE_DATE_EPOCH` value: seconds since 1970.
pub(crate) fn parse_epoch(value: &str) -> anyhow::Result<u64> {
    value.parse().with_context(|| {
        format!("invalid SOURCE_DATE_EPOCH `{value}`: expected seconds since 1970")
    })
}

pub(crate) fn import(root: Option<std::path::PathBuf>, args: ImportArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let compression = super::parse_compression(&args.compression)?;
    let mut options = ImportOptions {
        compression,
        epoch: source_date_epoch()?,
        tags: args.name.iter().cloned().collect(),
        ..ImportOptions::default()
    };
    if let Some(text) = &args.platform {
        let platform = super::registry::parse_platform(Some(text))?;
        options.platform = (platform.os, platform.architecture, platform.variant);
    }
    let source = &args.source;
    let imported = if source.as_os_str() == "-" {
        image::import_tar(&store, std::io::stdin().lock(), &options)
    } else if source.is_dir() {
        image::import_dir(&store, source, &options)
    } else {
        let file = std::fs::File::open(source)
            .with_context(|| format!("failed to open `{}`", source.display()))?;
        image::import_tar(&store, std::io::BufReader::new(file), &options)
    };
    let imported = imported.with_context(|| format!("failed to import `{}`", source.display()))?;
    if !imported.skipped.is_empty() {
        let mut stderr = std::io::stderr().lock();
        writeln!(
            stderr,
            "warning: {} entries could not be imported (sockets, or device nodes that need privileges to make): {}",
            imported.skipped.len(),
            imported.skipped.join(", ")
        )?;
    }
    writeln!(std::io::stdout().lock(), "{}", imported.image.id)?;
    Ok(())
}
