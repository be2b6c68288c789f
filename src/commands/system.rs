//! `strata system ...`.

use std::io::Write;

use anyhow::bail;

use super::open_store;

/// `strata system check`.
pub(crate) fn check(root: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let report = store.check()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "checked {} blobs and {} images",
        report.blobs, report.images
    )?;
    if report.leftovers > 0 {
        writeln!(
            stdout,
            "{} temporary files from interrupted writes (harmless; removed by prune)",
            report.leftovers
        )?;
    }
    if !report.problems.is_empty() {
        for problem in &report.problems {
            writeln!(stdout, "problem: {problem}")?;
        }
        bail!("the store has {} problems", report.problems.len());
    }
    Ok(())
}
