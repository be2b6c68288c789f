//! `strata system ...`.

use std::io::Write;

use anyhow::bail;

use super::open_store;

/// `strata system check [--snapshots] [--repair]`.
pub(crate) fn check(
    root: Option<std::path::PathBuf>,
    args: crate::cli::CheckArgs,
) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let mut stdout = std::io::stdout().lock();
    if args.repair {
        let mut repairs = store.repair_blobs()?;
        repairs.extend(store.repair_index()?);
        // Leased: what it unpacks into `tmp/` stays while it works.
        let lease = store.lease("system check")?;
        let snapshots = strata_solver::check::check_snapshots(lease.store(), true)?;
        for broken in &snapshots.broken {
            if snapshots.repaired.contains(&broken.path) {
                repairs.push(format!(
                    "unpacked the snapshot `{}` of layer {} again from its blob",
                    broken.path.display(),
                    broken.layer
                ));
            }
        }
        lease.release()?;
        repairs.extend(store.repair_leftovers()?);
        for repair in &repairs {
            writeln!(stdout, "{repair}")?;
        }
        if repairs.is_empty() {
            writeln!(stdout, "nothing to repair")?;
        }
    }
    let report = store.check()?;
    writeln!(
        stdout,
        "checked {} blobs and {} images",
        report.blobs, report.images
    )?;
    let mut problems = report.problems;
    if args.snapshots || args.repair {
        // Leased (after the check counted the leases): what it unpacks
        // into `tmp/` to compare stays while it works.
        let lease = store.lease("system check")?;
        let snapshots = strata_solver::check::check_snapshots(lease.store(), false)?;
        lease.release()?;
        writeln!(stdout, "checked {} snapshots", snapshots.verified)?;
        if !snapshots.unknown.is_empty() {
            writeln!(
                stdout,
                "{} snapshots of layers no image or cache record has (not verified; removed by prune)",
                snapshots.unknown.len()
            )?;
        }
        problems.extend(snapshots.broken.iter().map(|broken| broken.problem()));
        problems.extend(snapshots.unverifiable);
    }
    if report.leftovers > 0 {
        writeln!(
            stdout,
            "{} temporary files from interrupted writes (harmless; removed by prune)",
            report.leftovers
        )?;
    }
    if !report.abandoned.is_empty() {
        writeln!(
            stdout,
            "{} temporary files left beside their targets by interrupted writes (harmless; removed by prune):",
            report.abandoned.len()
        )?;
        for path in &report.abandoned {
            writeln!(stdout, "  {}", path.display())?;
        }
    }
    if let Some(log) = &report.torn_tags {
        writeln!(
            stdout,
            "the tags log `{}` ends in a line an interrupted write left torn (harmless; ignored, and cut off by the next update)",
            log.display()
        )?;
    }
    if report.leases > 0 {
        writeln!(
            stdout,
            "{} leases of operations in flight (what they hold stays)",
            report.leases
        )?;
    }
    for stale in &report.stale_leases {
        writeln!(
            stdout,
            "stale lease {stale}: its process is gone (harmless; removed by prune)"
        )?;
    }
    if !problems.is_empty() {
        for problem in &problems {
            writeln!(stdout, "problem: {problem}")?;
        }
        bail!("the store has {} problems", problems.len());
    }
    Ok(())
}

/// `strata image prune`.
pub(crate) fn prune(
    root: Option<std::path::PathBuf>,
    args: crate::cli::PruneArgs,
) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    let store = open_store(root)?;
    let keep_storage = super::cache::keep_storage()?;
    if !args.force {
        let what = if args.all {
            "all images"
        } else {
            "all untagged images"
        };
        if !std::io::stdin().is_terminal() {
            bail!("this removes {what}: pass -f to confirm without a prompt");
        }
        let mut stderr = std::io::stderr().lock();
        write!(
            stderr,
            "This removes {what} and every blob they alone use.\nAre you sure you want to continue? [y/N] "
        )?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let mut report = strata_solver::gc::prune_images(&store, args.all)?;
    // The images gone, the build cache's records of their layers count
    // against its budget.
    report.reclaimed += super::cache::trim(&store, keep_storage)?;
    let mut stdout = std::io::stdout().lock();
    if !report.images.is_empty() {
        writeln!(stdout, "Deleted Images:")?;
        for id in &report.images {
            writeln!(stdout, "deleted: {id}")?;
        }
        writeln!(stdout)?;
    }
    writeln!(
        stdout,
        "Total reclaimed space: {}",
        super::human_size(report.reclaimed)
    )?;
    Ok(())
}

/// `strata system df`.
pub(crate) fn df(root: Option<std::path::PathBuf>, verbose: bool) -> anyhow::Result<()> {
    use std::collections::{BTreeMap, BTreeSet};
    let store = open_store(root)?;
    let index = store.index()?;
    let size_of = |digest: &strata_solver::digest::Digest| {
        std::fs::metadata(store.blob_path(digest))
            .map(|meta| meta.len())
            .unwrap_or(0)
    };
    // How many images use each blob.
    let mut users: BTreeMap<strata_solver::digest::Digest, usize> = BTreeMap::new();
    for image in index.images.values() {
        for digest in image.blobs().cloned().collect::<BTreeSet<_>>() {
            *users.entry(digest).or_default() += 1;
        }
    }
    let tagged: BTreeSet<&strata_solver::digest::Digest> = index.tags.values().collect();
    let used_by_tagged: BTreeSet<strata_solver::digest::Digest> = index
        .images
        .values()
        .filter(|image| tagged.contains(&image.id))
        .flat_map(|image| image.blobs().cloned())
        .collect();
    let total: u64 = users.keys().map(size_of).sum();
    let all_blobs: u64 = store.blobs()?.iter().map(size_of).sum();
    let leftovers: u64 = store
        .temp_files()?
        .iter()
        .map(|path| {
            std::fs::symlink_metadata(path)
                .map(|meta| meta.len())
                .unwrap_or(0)
        })
        .sum();
    let reclaimable = users
        .keys()
        .filter(|digest| !used_by_tagged.contains(*digest))
        .map(size_of)
        .sum::<u64>()
        + (all_blobs - total)
        + leftovers;
    let percent = if total + (all_blobs - total) + leftovers == 0 {
        0
    } else {
        reclaimable * 100 / (all_blobs + leftovers)
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "TYPE      TOTAL   ACTIVE   SIZE        RECLAIMABLE")?;
    writeln!(
        stdout,
        "Images    {:<7} {:<8} {:<11} {} ({percent}%)",
        index.images.len(),
        index.images.keys().filter(|id| tagged.contains(id)).count(),
        super::human_size(all_blobs + leftovers),
        super::human_size(reclaimable)
    )?;
    if verbose {
        writeln!(
            stdout,
            "\nREPOSITORY:TAG                  IMAGE ID       SIZE        SHARED SIZE   UNIQUE SIZE"
        )?;
        for image in index.images.values() {
            let blobs: BTreeSet<_> = image.blobs().cloned().collect();
            let size: u64 = blobs.iter().map(size_of).sum();
            let shared: u64 = blobs
                .iter()
                .filter(|digest| users.get(*digest).copied().unwrap_or(0) > 1)
                .map(size_of)
                .sum();
            let names: Vec<&String> = index
                .tags
                .iter()
                .filter(|(_, id)| **id == image.id)
                .map(|(tag, _)| tag)
                .collect();
            let name = names
                .first()
                .map(|name| name.as_str())
                .unwrap_or("<none>:<none>");
            writeln!(
                stdout,
                "{name:<31} {}   {:<11} {:<13} {}",
                super::short_id(&image.id, false),
                super::human_size(size),
                super::human_size(shared),
                super::human_size(size - shared)
            )?;
        }
    }
    Ok(())
}
