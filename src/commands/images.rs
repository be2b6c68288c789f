//! `strata images`.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context, bail};
use strata_solver::store::{ImageRecord, Store};

use super::{human_size, open_store, short_id};
use crate::cli::ImagesArgs;

/// One row: a tag of an image, or an untagged image.
struct Row<'a> {
    repository: String,
    tag: String,
    image: &'a ImageRecord,
}

impl Row<'_> {
    /// The digest the row's repository knows the image by (the one pulled
    /// or pushed; an index's, when pulled through one), else the manifest's.
    fn digest(&self) -> String {
        self.image
            .repo_digests
            .iter()
            .rev()
            .find_map(|known| {
                let (name, digest) = known.split_once('@')?;
                (name == self.repository).then(|| digest.to_owned())
            })
            .unwrap_or_else(|| self.image.manifest.to_string())
    }
}

/// `path.Match`-style globbing: `*` and `?` never match `/`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text)
                || (text.first().is_some_and(|ch| *ch != b'/') && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(ch)) if *ch != b'/' => glob(&pattern[1..], &text[1..]),
        (Some(expected), Some(ch)) if expected == ch => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

enum Filter {
    Dangling(bool),
    Reference(String),
    Label(String, Option<String>),
    Before(String),
    Since(String),
}

fn parse_filter(store: &Store, text: &str) -> anyhow::Result<Filter> {
    let (key, value) = text
        .split_once('=')
        .with_context(|| format!("invalid filter `{text}`: expected KEY=VALUE"))?;
    // Resolve image references now, for a clear error when they do not exist.
    let created = |wanted: &str| -> anyhow::Result<String> {
        Ok(strata_solver::image::resolve(store, wanted)?
            .created
            .unwrap_or_default())
    };
    Ok(match key {
        "dangling" => match value {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => bail!("invalid filter `{text}`: dangling is true or false"),
        },
        "reference" => Filter::Reference(value.to_owned()),
        "label" => match value.split_once('=') {
            Some((label, wanted)) => Filter::Label(label.to_owned(), Some(wanted.to_owned())),
            None => Filter::Label(value.to_owned(), None),
        },
        "before" => Filter::Before(created(value)?),
        "since" => Filter::Since(created(value)?),
        _ => bail!("unknown filter `{key}`: expected dangling, reference, label, before or since"),
    })
}

fn labels(store: &Store, image: &ImageRecord) -> anyhow::Result<serde_json::Value> {
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.config)?)?;
    Ok(config
        .pointer("/config/Labels")
        .cloned()
        .unwrap_or(serde_json::Value::Null))
}

fn keep(store: &Store, filters: &[Filter], row: &Row<'_>) -> anyhow::Result<bool> {
    let created = row.image.created.clone().unwrap_or_default();
    for filter in filters {
        let kept = match filter {
            Filter::Dangling(wanted) => (row.tag == "<none>") == *wanted,
            Filter::Reference(pattern) => {
                let full = format!("{}:{}", row.repository, row.tag);
                glob(pattern.as_bytes(), full.as_bytes())
                    || glob(pattern.as_bytes(), row.repository.as_bytes())
            }
            Filter::Label(label, wanted) => {
                let labels = labels(store, row.image)?;
                match (labels.get(label), wanted) {
                    (Some(value), Some(wanted)) => value.as_str() == Some(wanted.as_str()),
                    (Some(_), None) => true,
                    (None, _) => false,
                }
            }
            Filter::Before(reference) => created < *reference,
            Filter::Since(reference) => created > *reference,
        };
        if !kept {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn images(root: Option<std::path::PathBuf>, args: ImagesArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let index = store.index()?;
    let mut filters = args
        .filters
        .iter()
        .map(|text| parse_filter(&store, text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(repository) = &args.repository {
        filters.push(Filter::Reference(repository.clone()));
    }
    let mut rows = Vec::new();
    for (tag, id) in &index.tags {
        if let Some(image) = index.images.get(id) {
            let (repository, tag) = tag.rsplit_once(':').unwrap_or((tag, ""));
            rows.push(Row {
                repository: repository.to_owned(),
                tag: tag.to_owned(),
                image,
            });
        }
    }
    for image in index.images.values() {
        if !index.tags.values().any(|id| *id == image.id) {
            rows.push(Row {
                repository: "<none>".to_owned(),
                tag: "<none>".to_owned(),
                image,
            });
        }
    }
    let mut kept = Vec::new();
    for row in rows {
        if keep(&store, &filters, &row)? {
            kept.push(row);
        }
    }
    let rows = kept;
    let mut stdout = std::io::stdout().lock();
    if args.quiet {
        let mut seen = BTreeSet::new();
        for row in &rows {
            if seen.insert(&row.image.id) {
                writeln!(stdout, "{}", short_id(&row.image.id, args.no_trunc))?;
            }
        }
        return Ok(());
    }
    if let Some(format) = &args.format {
        for row in &rows {
            let value = serde_json::json!({
                "Repository": row.repository,
                "Tag": row.tag,
                "ID": short_id(&row.image.id, args.no_trunc),
                "Digest": row.digest(),
                "CreatedAt": row.image.created.clone().unwrap_or_else(|| "N/A".to_owned()),
                "Size": human_size(row.image.size()),
            });
            let line = if format == "json" {
                value.to_string()
            } else {
                super::render(format, &value)?
            };
            writeln!(stdout, "{line}")?;
        }
        return Ok(());
    }
    let id_width = if args.no_trunc { 71 } else { 12 };
    let repository_width = rows
        .iter()
        .map(|row| row.repository.len())
        .max()
        .unwrap_or(0)
        .max(10);
    let tag_width = rows
        .iter()
        .map(|row| row.tag.len())
        .max()
        .unwrap_or(0)
        .max(3);
    let digest_header = if args.digests {
        format!("{:73} ", "DIGEST")
    } else {
        String::new()
    };
    writeln!(
        stdout,
        "{:repository_width$}   {:tag_width$}   {digest_header}{:id_width$}   {:20}   SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    )?;
    for row in &rows {
        let digest = if args.digests {
            format!("{:73} ", row.digest())
        } else {
            String::new()
        };
        writeln!(
            stdout,
            "{:repository_width$}   {:tag_width$}   {digest}{:id_width$}   {:20}   {}",
            row.repository,
            row.tag,
            short_id(&row.image.id, args.no_trunc),
            row.image
                .created
                .clone()
                .unwrap_or_else(|| "N/A".to_owned()),
            human_size(row.image.size())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globbing() {
        assert!(glob(b"busy*", b"busybox:latest"));
        assert!(glob(b"*:1.?", b"app:1.2"));
        assert!(!glob(b"*", b"team/app"));
        assert!(glob(b"team/*", b"team/app"));
    }
}
