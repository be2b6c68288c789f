//! `strata inspect`.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::Value;
use strata_solver::image;

use super::open_store;
use crate::cli::InspectArgs;

/// The docker-like inspect document of one image.
fn document(store: &strata_solver::store::Store, wanted: &str) -> anyhow::Result<Value> {
    let record = image::resolve(store, wanted)?;
    let config: Value = serde_json::from_slice(&store.read_blob(&record.config)?)
        .with_context(|| format!("the config of {} is not valid JSON", record.id))?;
    let index = store.index()?;
    let tags: Vec<&String> = index
        .tags
        .iter()
        .filter(|(_, id)| **id == record.id)
        .map(|(tag, _)| tag)
        .collect();
    Ok(serde_json::json!({
        "Id": record.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": [],
        "Created": config.get("created").cloned().unwrap_or(Value::Null),
        "Author": config.get("author").cloned().unwrap_or(Value::String(String::new())),
        "Architecture": config.get("architecture").cloned().unwrap_or(Value::Null),
        "Os": config.get("os").cloned().unwrap_or(Value::Null),
        "Variant": config.get("variant").cloned().unwrap_or(Value::Null),
        "Config": config.get("config").cloned().unwrap_or(Value::Null),
        "Size": record.size(),
        "RootFS": {
            "Type": "layers",
            "Layers": record.layers.iter().map(|layer| layer.diff_id.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": {
            "ManifestDigest": record.manifest.to_string(),
            "Layers": record.layers.iter().map(|layer| serde_json::json!({
                "Digest": layer.digest.to_string(), "MediaType": layer.media_type, "Size": layer.size,
            })).collect::<Vec<_>>(),
        },
    }))
}

/// Render `{{.A.B}}` and `{{json .A}}` placeholders against `value`.
fn render(template: &str, value: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            bail!("unterminated `{{{{` in --format")
        };
        let action = rest[start + 2..start + end].trim();
        let (as_json, path) = match action.strip_prefix("json ") {
            Some(path) => (true, path.trim()),
            None => (false, action),
        };
        let Some(path) = path.strip_prefix('.') else {
            bail!(
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
            Value::String(text) if !as_json => out.push_str(text),
            Value::Null if !as_json => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) fn inspect(root: Option<std::path::PathBuf>, args: InspectArgs) -> anyhow::Result<()> {
    let store = open_store(root)?;
    let documents = args
        .images
        .iter()
        .map(|wanted| document(&store, wanted))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut stdout = std::io::stdout().lock();
    match &args.format {
        Some(format) => {
            for document in &documents {
                writeln!(stdout, "{}", render(format, document)?)?;
            }
        }
        None => writeln!(stdout, "{}", serde_json::to_string_pretty(&documents)?)?,
    }
    Ok(())
}
