//! `strata tag`.

use strata_solver::image;

use super::open_store;
use crate::cli::TagArgs;

pub(crate) fn tag(root: Option<std::path::PathBuf>, args: TagArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let record = image::resolve(&store, &args.source)?;
    image::tag(&store, &record, &args.target)?;
    Ok(())
}
