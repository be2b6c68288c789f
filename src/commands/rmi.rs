//! `strata rmi`.

use std::io::Write;

use strata_solver::gc::{self, Removal};

use super::open_store;
use crate::cli::RmiArgs;

pub(crate) fn rmi(root: Option<std::path::PathBuf>, args: RmiArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = None;
    for wanted in &args.images {
        match gc::remove_image(&store, wanted, args.force) {
            Ok(removals) => {
                for removal in removals {
                    match removal {
                        Removal::Untagged(tag) => writeln!(stdout, "Untagged: {tag}")?,
                        Removal::Deleted(id) => writeln!(stdout, "Deleted: {id}")?,
                    }
                }
            }
            // Go on with the others, as docker does; fail at the end.
            Err(error) => failed = Some(failed.unwrap_or(error)),
        }
    }
    match failed {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}
