//! `strata images`.

use std::collections::BTreeSet;
use std::io::Write;

use super::{human_size, open_store, short_id};
use crate::cli::ImagesArgs;

pub(crate) fn images(root: Option<std::path::PathBuf>, args: ImagesArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let index = store.index()?;
    // One row per tag; images without a tag show as <none>.
    let mut rows: Vec<(String, String, &strata_solver::store::ImageRecord)> = Vec::new();
    for (tag, id) in &index.tags {
        if let Some(record) = index.images.get(id) {
            let (repository, tag) = tag.rsplit_once(':').unwrap_or((tag, ""));
            rows.push((repository.to_owned(), tag.to_owned(), record));
        }
    }
    for record in index.images.values() {
        if !index.tags.values().any(|id| *id == record.id) {
            rows.push(("<none>".to_owned(), "<none>".to_owned(), record));
        }
    }
    let mut stdout = std::io::stdout().lock();
    if args.quiet {
        let mut seen = BTreeSet::new();
        for (_, _, record) in &rows {
            if seen.insert(&record.id) {
                writeln!(stdout, "{}", short_id(&record.id, args.no_trunc))?;
            }
        }
        return Ok(());
    }
    if args.format.as_deref() == Some("json") {
        for (repository, tag, record) in &rows {
            let row = serde_json::json!({
                "Repository": repository,
                "Tag": tag,
                "ID": short_id(&record.id, args.no_trunc),
                "Digest": record.manifest.to_string(),
                "CreatedAt": record.created.clone().unwrap_or_else(|| "N/A".to_owned()),
                "Size": human_size(record.size()),
            });
            writeln!(stdout, "{row}")?;
        }
        return Ok(());
    }
    if let Some(format) = &args.format {
        anyhow::bail!("unsupported --format `{format}`: use `json`");
    }
    let digest_header = if args.digests {
        "DIGEST                                                                    "
    } else {
        ""
    };
    let id_width = if args.no_trunc { 71 } else { 12 };
    let repository_width = rows
        .iter()
        .map(|row| row.0.len())
        .max()
        .unwrap_or(0)
        .max(10);
    let tag_width = rows.iter().map(|row| row.1.len()).max().unwrap_or(0).max(3);
    writeln!(
        stdout,
        "{:repository_width$}   {:tag_width$}   {digest_header}{:id_width$}   {:20}   SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    )?;
    for (repository, tag, record) in &rows {
        let digest = if args.digests {
            format!("{:73} ", record.manifest.to_string())
        } else {
            String::new()
        };
        writeln!(
            stdout,
            "{repository:repository_width$}   {tag:tag_width$}   {digest}{:id_width$}   {:20}   {}",
            short_id(&record.id, args.no_trunc),
            record.created.clone().unwrap_or_else(|| "N/A".to_owned()),
            human_size(record.size())
        )?;
    }
    Ok(())
}
