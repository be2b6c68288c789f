//! `strata load`.

use std::io::Write;

use anyhow::Context;
use strata_solver::image::{self, LoadSource};

use super::open_store;
use crate::cli::LoadArgs;

pub(crate) fn load(root: Option<std::path::PathBuf>, args: LoadArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let (name, loaded) = match &args.input {
        Some(path) if path.is_dir() => (
            path.display().to_string(),
            image::load(&store, LoadSource::Directory(path)),
        ),
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("failed to open `{}`", path.display()))?;
            let reader = Box::new(std::io::BufReader::with_capacity(1 << 20, file));
            (
                path.display().to_string(),
                image::load(&store, LoadSource::Archive(reader)),
            )
        }
        None => (
            "standard input".to_owned(),
            image::load(
                &store,
                LoadSource::Archive(Box::new(std::io::stdin().lock())),
            ),
        ),
    };
    let loaded = loaded.with_context(|| format!("failed to load images from {name}"))?;
    let mut stdout = std::io::stdout().lock();
    for (record, tags) in &loaded {
        if args.quiet || tags.is_empty() {
            writeln!(stdout, "Loaded image ID: {}", record.id)?;
        }
        if !args.quiet {
            for tag in tags {
                writeln!(stdout, "Loaded image: {tag}")?;
            }
        }
    }
    Ok(())
}
