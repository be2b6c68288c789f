//! `strata cache ls` and `strata cache prune` (`explain` is in `build.rs`).

use std::io::Write;

use anyhow::{Context, bail};

use strata_solver::solve::cache::{self, PruneFilter};

use super::{human_size, open_store};
use crate::cli::CachePruneArgs;

pub(crate) fn ls(root: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let mut records = cache::records(&store);
    records.sort_by(|a, b| {
        let used = |record: &cache::CacheRecord| {
            record
                .last_used
                .clone()
                .unwrap_or_else(|| record.created.clone())
        };
        used(b).cmp(&used(a))
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{:<14}{:<11}{:<22}{:<22}{:<6}STEP",
        "KEY", "SIZE", "CREATED", "LAST USED", "HITS"
    )?;
    for record in records {
        let size = record
            .layer
            .as_ref()
            .map_or("0B".to_owned(), |layer| human_size(layer.size));
        writeln!(
            stdout,
            "{:<14}{:<11}{:<22}{:<22}{:<6}{}",
            &record.key.hex()[..12],
            size,
            record.created,
            record.last_used.as_deref().unwrap_or("never"),
            record.hits,
            record.description
        )?;
    }
    Ok(())
}

/// `90m`, `24h`, `1h30m`, `45s`, `7d`.
fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let invalid = || {
        anyhow::anyhow!(
            "invalid duration `{text}`: use numbers with s, m, h or d, e.g. 24h or 1h30m"
        )
    };
    let mut total = 0u64;
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let value: u64 = number.parse().map_err(|_| invalid())?;
        total += value * unit;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// `500MB`, `2GB`, `1.5GB`, `1024` (bytes), 1000-based as docker.
pub(crate) fn parse_size(text: &str) -> anyhow::Result<u64> {
    let split = text
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("invalid size `{text}`"))?;
    let factor = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        _ => bail!("invalid size `{text}`: use B, KB, MB, GB or TB"),
    };
    Ok((number * factor) as u64)
}

/// The build cache's budget from `STRATA_CACHE_KEEP_STORAGE` (a size, as
/// `--keep-storage` takes), if it is set: read before anything runs, so
/// that one that does not parse is refused.
pub(crate) fn keep_storage() -> anyhow::Result<Option<u64>> {
    match std::env::var("STRATA_CACHE_KEEP_STORAGE") {
        Ok(text) => Ok(Some(
            parse_size(&text).context("invalid STRATA_CACHE_KEEP_STORAGE")?,
        )),
        Err(_) => Ok(None),
    }
}

/// Keep the build cache within its budget (`cache::trim`), after a build
/// or an image prune: `keep`, or BuildKit's default. A failure is a
/// warning: the command has done its work. The bytes reclaimed.
pub(crate) fn trim(store: &strata_solver::store::Store, keep: Option<u64>) -> anyhow::Result<u64> {
    let keep = keep.unwrap_or_else(|| cache::default_keep_storage(store));
    match cache::trim(store, keep) {
        Ok((_, reclaimed)) => Ok(reclaimed),
        Err(error) => {
            writeln!(
                std::io::stderr().lock(),
                "warning: failed to keep the build cache within {keep} bytes: {error}"
            )?;
            Ok(0)
        }
    }
}

pub(crate) fn prune(root: Option<std::path::PathBuf>, args: CachePruneArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    // -a takes cache mounts too, as docker's builder prune -a does.
    let mut filter = PruneFilter {
        all: args.all,
        mounts: args.all,
        ..PruneFilter::default()
    };
    for entry in &args.filters {
        match entry.split_once('=') {
            Some(("until", value)) => filter.unused_for = Some(parse_duration(value)?),
            // BuildKit's name for RUN --mount=type=cache directories.
            Some(("type", "exec.cachemount")) => filter.only_mounts = true,
            _ => {
                bail!("invalid --filter `{entry}`: expected until=DURATION or type=exec.cachemount")
            }
        }
    }
    if let Some(size) = &args.keep_storage {
        filter.keep_storage = Some(parse_size(size)?);
    }
    let (removed, reclaimed) = cache::prune(&store, &filter)?;
    writeln!(
        std::io::stdout().lock(),
        "Deleted {removed} cache records\nTotal reclaimed space: {}",
        human_size(reclaimed)
    )?;
    Ok(())
}
