//! `strata build --dry-run`: the build plan, as text (one line per step,
//! what it waits for, the parallel groups), JSON or Graphviz dot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use strata_frontend::diagnostic::Source;
use strata_frontend::graph::{
    BuildGraph, ConfigEdit, CopySource, FileOp, Op, Source as GraphSource,
};

/// One line per step, with what it waits for, then the parallel groups.
pub(crate) fn text(graph: &BuildGraph, source: &Source) -> String {
    let mut out = String::new();
    let target = graph.target_stage();
    let built: Vec<String> = graph
        .stages
        .iter()
        .filter(|stage| stage.built)
        .map(|stage| stage.label())
        .collect();
    let skipped: Vec<String> = graph
        .stages
        .iter()
        .filter(|stage| !stage.built)
        .map(|stage| stage.label())
        .collect();
    let _ = writeln!(
        out,
        "target: {} ({} of {} stages built)",
        target.label(),
        built.len(),
        graph.stages.len()
    );
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "skipped (not needed by the target): {}",
            skipped.join(", ")
        );
    }
    let levels = graph.levels();
    let _ = writeln!(out, "\nsources:");
    for vertex in &graph.vertices {
        let Op::Source(source) = &vertex.op else {
            continue;
        };
        let what = match source {
            GraphSource::Scratch => "scratch (empty filesystem)".to_owned(),
            GraphSource::Image {
                reference,
                platform,
                ..
            } => format!("image {reference} ({platform})"),
            GraphSource::Context { name } => format!("build context `{name}`"),
        };
        let _ = writeln!(out, "  #{:<3} {what}", vertex.id);
    }
    for stage in graph.stages.iter().filter(|stage| stage.built) {
        let line = source.line(stage.span.start);
        let _ = write!(
            out,
            "\nstage {} FROM {} ({}:{line})",
            stage.label(),
            stage.base,
            source.name
        );
        let Some(last) = stage.last else { continue };
        let chain = graph.chain(last);
        // Steps inherited from a base stage (or shared with another stage)
        // are listed where they were first lowered.
        let own: Vec<usize> = chain
            .iter()
            .copied()
            .filter(|id| graph.vertices[*id].stage == stage.index)
            .collect();
        let start = chain
            .iter()
            .rev()
            .find(|id| graph.vertices[**id].stage != stage.index)
            .or(chain.first());
        match start {
            Some(start) => {
                let _ = writeln!(out, ", starts from #{start}");
            }
            None => out.push('\n'),
        }
        for id in own {
            let vertex = &graph.vertices[id];
            if matches!(vertex.op, Op::Source(_)) {
                continue;
            }
            let kind = match &vertex.op {
                Op::Source(_) => continue,
                Op::Exec(_) => "exec",
                Op::File(FileOp::Copy(_)) => "copy",
                Op::File(FileOp::Mkdir { .. }) => "mkdir",
                Op::Config(_) => "config",
            };
            let needs: Vec<String> = vertex
                .inputs
                .iter()
                .map(|input| format!("#{input}"))
                .collect();
            let needs = if needs.is_empty() {
                String::new()
            } else {
                format!("  needs {}", needs.join(" "))
            };
            let _ = writeln!(
                out,
                "  #{id:<3} {kind:<6} {}  {}{needs}",
                short_digest(&vertex.digest),
                one_line(&vertex.description(), 100)
            );
            if let Op::Exec(exec) = &vertex.op {
                for mount in &exec.mounts {
                    let _ = writeln!(out, "         mount {:?} at {}", mount.kind, mount.target);
                }
            }
            if let Op::File(FileOp::Copy(copy)) = &vertex.op {
                for copy_source in &copy.sources {
                    let from = match copy_source {
                        CopySource::Path { input, path } => {
                            format!("{path} from #{}", vertex.inputs[*input])
                        }
                        CopySource::Url { url } => url.clone(),
                        CopySource::Inline(file) => format!("heredoc {}", file.path),
                    };
                    let _ = writeln!(out, "         {from} -> {}", copy.destination);
                }
            }
            if let Op::Config(ConfigEdit::Onbuild(trigger)) = &vertex.op {
                let _ = writeln!(out, "         trigger: {trigger}");
            }
        }
    }
    // Steps that touch the filesystem, grouped by depth: a group's steps do
    // not depend on each other and can run at the same time.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for vertex in &graph.vertices {
        if !matches!(vertex.op, Op::Config(_)) {
            groups.entry(levels[vertex.id]).or_default().push(vertex.id);
        }
    }
    let _ = writeln!(
        out,
        "\nparallel groups (steps in one group can run at once):"
    );
    for (level, ids) in groups {
        let ids: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
        let _ = writeln!(out, "  {level}: {}", ids.join(" "));
    }
    out
}

fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn one_line(text: &str, limit: usize) -> String {
    let flat: String = text
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect();
    if flat.chars().count() <= limit {
        flat
    } else {
        let cut: String = flat.chars().take(limit).collect();
        format!("{cut}...")
    }
}

pub(crate) fn json(graph: &BuildGraph) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Plan<'g> {
        target: &'g str,
        stages: &'g [strata_frontend::graph::StageInfo],
        vertices: &'g [strata_frontend::graph::Vertex],
        levels: Vec<usize>,
    }
    let target = graph.target_stage().label();
    let plan = Plan {
        target: &target,
        stages: &graph.stages,
        vertices: &graph.vertices,
        levels: graph.levels(),
    };
    let mut text = serde_json::to_string_pretty(&plan)?;
    text.push('\n');
    Ok(text)
}

pub(crate) fn dot(graph: &BuildGraph) -> String {
    let mut out =
        String::from("digraph build {\n  rankdir=LR;\n  node [shape=box, fontname=monospace];\n");
    let escape = |text: &str| {
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    for vertex in &graph.vertices {
        let shape = match vertex.op {
            Op::Source(_) => ", shape=ellipse",
            Op::Config(_) => ", style=dashed",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  v{} [label=\"#{} {}\"{shape}];",
            vertex.id,
            vertex.id,
            escape(&one_line(&vertex.description(), 60))
        );
        for input in &vertex.inputs {
            let _ = writeln!(out, "  v{input} -> v{};", vertex.id);
        }
        if let Some(previous) = vertex.previous
            && !vertex.inputs.contains(&previous)
        {
            let _ = writeln!(out, "  v{previous} -> v{} [style=dotted];", vertex.id);
        }
    }
    out.push_str("}\n");
    out
}
