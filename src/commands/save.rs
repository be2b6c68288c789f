//! `strata save`.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, bail};
use strata_solver::image::{self, Reference};
use strata_solver::store::ImageRecord;

use super::open_store;
use crate::cli::{SaveArgs, SaveFormat};

pub(crate) fn save(root: Option<std::path::PathBuf>, args: SaveArgs) -> anyhow::Result<()> {
    // What is saved stays while it is read, whatever prunes run.
    let lease = open_store(root)?.lease("save")?;
    let store = lease.store().clone();
    let index = store.index()?;
    // Each image once, with the tags it was named by (none when named by ID,
    // as docker save does).
    let mut images: BTreeMap<String, (ImageRecord, Vec<String>)> = BTreeMap::new();
    let mut order = Vec::new();
    for wanted in &args.images {
        let record = image::resolve(&store, wanted)?;
        store.hold_image(&record)?;
        let tag = Reference::parse(wanted)
            .ok()
            .map(|reference| reference.to_string())
            .filter(|tag| index.tags.get(tag) == Some(&record.id));
        let key = record.id.to_string();
        if !images.contains_key(&key) {
            order.push(key.clone());
        }
        let entry = images.entry(key).or_insert_with(|| (record, Vec::new()));
        if let Some(tag) = tag
            && !entry.1.contains(&tag)
        {
            entry.1.push(tag);
        }
    }
    let images: Vec<(ImageRecord, Vec<String>)> = order
        .into_iter()
        .filter_map(|key| images.remove(&key))
        .collect();
    let saved = write(&store, &images, &args);
    if saved.is_err() {
        // A damaged blob is named as such, with its repair, rather than as
        // an archive that could not be written.
        for digest in images.iter().flat_map(|(image, _)| image.blobs()) {
            if let Err(damaged @ strata_solver::store::StoreError::DamagedBlob { .. }) =
                store.verify_blob(digest)
            {
                return Err(match &args.output {
                    Some(path) => anyhow::Error::new(damaged)
                        .context(format!("failed to save to `{}`", path.display())),
                    None => damaged.into(),
                });
            }
        }
    }
    saved
}

/// Write `images` as `args` say.
fn write(
    store: &strata_solver::store::Store,
    images: &[(ImageRecord, Vec<String>)],
    args: &SaveArgs,
) -> anyhow::Result<()> {
    match (args.format, &args.output) {
        (SaveFormat::Docker, Some(path)) => {
            image::save_docker_archive_file(store, images, path)
                .with_context(|| format!("failed to save to `{}`", path.display()))?;
        }
        (SaveFormat::Docker, None) => {
            if std::io::stdout().is_terminal() {
                bail!(
                    "refusing to write an image archive to a terminal: use -o FILE or redirect standard output"
                );
            }
            image::save_docker_archive(store, images, std::io::stdout().lock())?;
        }
        (SaveFormat::Oci, Some(path)) => {
            let archive =
                path.extension().is_some_and(|extension| extension == "tar") && !path.is_dir();
            image::save_oci(store, images, path, archive)
                .with_context(|| format!("failed to save to `{}`", path.display()))?;
        }
        (SaveFormat::Oci, None) => {
            bail!("--format oci needs -o DIR (a layout directory) or -o FILE.tar (an archive)")
        }
    }
    Ok(())
}
