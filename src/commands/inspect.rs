//! `strata inspect`.

use std::io::Write;

use anyhow::Context;
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
        "RepoDigests": record.repo_digests,
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
                writeln!(stdout, "{}", super::render(format, document)?)?;
            }
        }
        None => writeln!(stdout, "{}", serde_json::to_string_pretty(&documents)?)?,
    }
    Ok(())
}
