//! One module per subcommand.

pub(crate) mod build;
pub(crate) mod history;
pub(crate) mod images;
pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod load;
pub(crate) mod rmi;
pub(crate) mod save;
pub(crate) mod system;
pub(crate) mod tag;

use std::path::PathBuf;

use anyhow::Context;
use strata_solver::store::Store;

/// Open the store at `--root`, or the default root.
pub(crate) fn open_store(root: Option<PathBuf>) -> anyhow::Result<Store> {
    let root = match root {
        Some(root) => root,
        None => Store::default_root()
            .context("cannot tell where to keep images: set --root, STRATA_ROOT or HOME")?,
    };
    Ok(Store::open(root)?)
}

/// `sha256:abc...` as docker shows IDs: 12 hex digits unless `whole`.
pub(crate) fn short_id(digest: &strata_solver::digest::Digest, whole: bool) -> String {
    if whole {
        digest.to_string()
    } else {
        digest.hex()[..12].to_owned()
    }
}

/// Human sizes as docker prints them (1000-based).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + UNITS[unit]
    }
}

/// An error already rendered in full (a Dockerfile diagnostic with its
/// snippet): printed as it is, not wrapped in `error:` again.
#[derive(Debug)]
pub(crate) struct Rendered(pub(crate) String);

impl std::fmt::Display for Rendered {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Rendered {}
