//! `strata history`.

use std::io::Write;

use anyhow::Context;
use serde_json::Value;
use strata_solver::image;

use super::{human_size, open_store, short_id};
use crate::cli::HistoryArgs;

pub(crate) fn history(root: Option<std::path::PathBuf>, args: HistoryArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let record = image::resolve(&store, &args.image)?;
    let config: Value = serde_json::from_slice(&store.read_blob(&record.config)?)
        .with_context(|| format!("the config of {} is not valid JSON", record.id))?;
    let entries = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Entries that made a layer take the layers in order.
    let mut layers = record.layers.iter();
    let mut rows = Vec::new();
    for entry in &entries {
        let empty = entry
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers.next().map(|layer| layer.size).unwrap_or(0)
        };
        let text = |key: &str| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        rows.push((text("created"), text("created_by"), size, text("comment")));
    }
    rows.reverse();
    let mut stdout = std::io::stdout().lock();
    if args.quiet {
        for (position, _) in rows.iter().enumerate() {
            let id = if position == 0 {
                short_id(&record.id, args.no_trunc)
            } else {
                "<missing>".to_owned()
            };
            writeln!(stdout, "{id}")?;
        }
        return Ok(());
    }
    let id_width = if args.no_trunc { 71 } else { 12 };
    writeln!(
        stdout,
        "{:id_width$}   {:20}   {:45}   {:10}   COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    )?;
    for (position, (created, created_by, size, comment)) in rows.iter().enumerate() {
        let id = if position == 0 {
            short_id(&record.id, args.no_trunc)
        } else {
            "<missing>".to_owned()
        };
        let created_by = if args.no_trunc || created_by.chars().count() <= 45 {
            created_by.clone()
        } else {
            created_by.chars().take(44).collect::<String>() + "…"
        };
        let created = if created.is_empty() { "N/A" } else { created };
        writeln!(
            stdout,
            "{id:id_width$}   {created:20}   {created_by:45}   {:10}   {comment}",
            human_size(*size)
        )?;
    }
    Ok(())
}
