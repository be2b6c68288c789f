//! What a build reports at its end, besides progress: the `--metadata-file`
//! document and a failed step's error, pointed at its Dockerfile line.

use std::path::Path;

use anyhow::Context;
use strata_frontend::diagnostic::{self, Source};
use strata_frontend::graph::BuildGraph;
use strata_solver::solve::{BuildError, Solved};

/// The version of the `--metadata-file` document (docs/metadata.schema.json).
const METADATA_VERSION: u64 = 1;

/// Write the `--metadata-file` document for `solved`, whose steps the
/// progress recorded as `steps`.
pub(crate) fn write_metadata(
    path: &Path,
    solved: &Solved,
    steps: Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    let image = &solved.image;
    // docs/metadata.schema.json describes this document; buildx's three
    // keys come first for tools that read those.
    let names: Vec<String> = solved
        .tags
        .iter()
        .filter_map(|tag| strata_solver::image::Reference::parse(tag).ok())
        .map(|reference| reference.qualified())
        .collect();
    let metadata = serde_json::json!({
        "containerimage.digest": image.manifest.to_string(),
        "containerimage.config.digest": image.config.to_string(),
        "image.name": names.join(","),
        "strata.version": METADATA_VERSION,
        "image": {
            "id": image.id.to_string(),
            "manifest": image.manifest.to_string(),
            "config": image.config.to_string(),
            "tags": names,
        },
        "steps": steps,
    });
    let text = serde_json::to_string_pretty(&metadata)? + "\n";
    std::fs::write(path, text)
        .with_context(|| format!("failed to write the metadata to `{}`", path.display()))
}

/// A failed build's error: the message, the Dockerfile lines of the step
/// and, for a RUN that failed, the last lines it printed.
pub(crate) fn build_error(error: &BuildError, graph: &BuildGraph, source: &Source) -> String {
    let message = strata_solver::error::one_line(error);
    let origin = error
        .vertex()
        .and_then(|id| graph.get(id))
        .and_then(|vertex| vertex.origin);
    let mut out = match origin {
        Some(origin) => diagnostic::render_message("error", &message, origin.span, None, source),
        None => format!("error: {message}\n"),
    };
    if let BuildError::StepFailed { tail, .. } = error
        && !tail.is_empty()
    {
        out.push_str(&format!("\nlast {} lines of its output:\n", tail.len()));
        for line in tail {
            out.push_str(&format!("  > {line}\n"));
        }
    }
    out
}
