//! One module per subcommand.

pub(crate) mod build;
pub(crate) mod cache;
pub(crate) mod container;
pub(crate) mod history;
pub(crate) mod images;
pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod load;
pub(crate) mod registry;
pub(crate) mod rmi;
pub(crate) mod run;
pub(crate) mod save;
pub(crate) mod system;
pub(crate) mod tag;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use strata_solver::store::{Ownership, Store};

/// `--allow-foreign-store`: use a store another user owns.
pub(crate) static ALLOW_FOREIGN_STORE: AtomicBool = AtomicBool::new(false);

/// Whether a store another user owns may be used: `--allow-foreign-store`,
/// or `STRATA_ALLOW_FOREIGN_STORE` set to `1` or `true`.
fn foreign_store_allowed() -> bool {
    ALLOW_FOREIGN_STORE.load(Ordering::Relaxed)
        || std::env::var("STRATA_ALLOW_FOREIGN_STORE")
            .is_ok_and(|value| matches!(value.as_str(), "1" | "true"))
}

/// Open the store at `--root`, or the default root: only the user's own,
/// unless `--allow-foreign-store` (as git refuses a repository another user
/// owns). Says so when opening made the store private, and whenever one
/// of its locks keeps the command waiting.
pub(crate) fn open_store(root: Option<PathBuf>) -> anyhow::Result<Store> {
    use std::io::Write;
    let root = match root {
        Some(root) => root,
        None => Store::default_root()
            .context("cannot tell where to keep images: set --root, STRATA_ROOT or HOME")?,
    };
    let ownership = if foreign_store_allowed() {
        Ownership::Any
    } else {
        Ownership::Mine
    };
    let mut store = Store::open_as(root, ownership)?;
    // A lock another command holds (a prune, another build) is said once
    // per wait, on stderr with the other notices, naming who holds it.
    store.on_lock_wait(|wait| {
        let _ = writeln!(std::io::stderr().lock(), "{wait}");
    });
    let mut stderr = std::io::stderr().lock();
    for (path, mode) in store.tightened() {
        writeln!(
            stderr,
            "warning: `{}` was readable by other users (mode {mode:o}): made it private (700)",
            path.display()
        )?;
    }
    Ok(store)
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

/// A command's exit status to pass on, with the error to print first, if
/// any (`strata run` exits with the command's code, or 125–127 as docker).
#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) code: u8,
    pub(crate) error: Option<anyhow::Error>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(error) => write!(formatter, "{error}"),
            None => write!(formatter, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Status {}

/// `--compression`'s value.
pub(crate) fn parse_compression(text: &str) -> anyhow::Result<strata_solver::layer::Compression> {
    strata_solver::layer::Compression::parse(text).ok_or_else(|| {
        anyhow::anyhow!("invalid compression `{text}`: expected gzip, zstd or uncompressed")
    })
}

/// Print the sandbox's notices (fallbacks, warnings) on stderr.
pub(crate) fn print_notices(sandbox: &strata_solver::exec::Sandbox) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    for notice in sandbox.take_notices() {
        writeln!(stderr, "warning: {notice}")?;
    }
    Ok(())
}

/// Render `{{.A.B}}` and `{{json .A}}` placeholders against `value`.
pub(crate) fn render(template: &str, value: &serde_json::Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            anyhow::bail!("unterminated `{{{{` in --format")
        };
        let action = rest[start + 2..start + end].trim();
        let (as_json, path) = match action.strip_prefix("json ") {
            Some(path) => (true, path.trim()),
            None => (false, action),
        };
        let Some(path) = path.strip_prefix('.') else {
            anyhow::bail!(
                "unsupported --format action `{action}`: use {{{{.Field}}}} or {{{{json .Field}}}}"
            )
        };
        let mut current = value;
        for part in path.split('.').filter(|part| !part.is_empty()) {
            current = current
                .get(part)
                .with_context(|| format!("no field `{part}` in `{{{{{action}}}}}`"))?;
        }
        match current {
            serde_json::Value::String(text) if !as_json => out.push_str(text),
            serde_json::Value::Null if !as_json => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
