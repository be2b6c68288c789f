//! `strata build --dry-run`: the build plan, as text (one line per step,
//! what it waits for, the parallel groups), JSON or Graphviz dot.

use std::io::{self, Write};

use strata_frontend::diagnostic::Source;
use strata_frontend::graph::{
    BuildGraph, ConfigEdit, CopySource, FileOp, Op, Source as GraphSource,
};

// Each renderer writes as it goes: a plan is several times the size of its
// Dockerfile (a line per step), and is never held whole.

/// One line per step, with what it waits for, then the parallel groups.
pub(crate) fn text(graph: &BuildGraph, source: &Source, out: &mut dyn Write) -> io::Result<()> {
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
    writeln!(
        out,
        "target: {} ({} of {} stages built)",
        target.label(),
        built.len(),
        graph.stages.len()
    )?;
    if !skipped.is_empty() {
        writeln!(
            out,
            "skipped (not needed by the target): {}",
            skipped.join(", ")
        )?;
    }
    writeln!(out, "\nsources:")?;
    for vertex in graph.vertices() {
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
        writeln!(out, "  #{:<3} {what}", vertex.id)?;
    }
    for stage in graph.stages.iter().filter(|stage| stage.built) {
        let line = source.line(stage.span.start);
        write!(
            out,
            "\nstage {} FROM {} ({}:{line})",
            stage.label(),
            stage.base,
            source.name
        )?;
        let Some(last) = stage.last else { continue };
        // The chain as u32s, half of `graph.chain`'s list: a stage may have
        // millions of steps.
        let mut chain: Vec<u32> = graph
            .chain_back(last)
            .map(|id| u32::try_from(id).expect("a graph has fewer than 2^32 vertices"))
            .collect();
        chain.reverse();
        // Steps inherited from a base stage (or shared with another stage)
        // are listed where they were first lowered.
        let start = chain
            .iter()
            .rev()
            .find(|id| graph.stage_of(**id as usize) != stage.index)
            .or(chain.first());
        match start {
            Some(start) => {
                writeln!(out, ", starts from #{start}")?;
            }
            None => writeln!(out)?,
        }
        for id in chain
            .iter()
            .copied()
            .map(|id| id as usize)
            .filter(|id| graph.stage_of(*id) == stage.index)
        {
            let vertex = &graph.vertex(id);
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
            writeln!(
                out,
                "  #{id:<3} {kind:<6} {}  {}{needs}",
                short_digest(&vertex.digest),
                one_line(&vertex.description(), 100)
            )?;
            if let Op::Exec(exec) = &vertex.op {
                for mount in &exec.mounts {
                    writeln!(out, "         mount {:?} at {}", mount.kind, mount.target)?;
                }
            }
            if let Op::File(FileOp::Copy(copy)) = &vertex.op {
                for copy_source in &copy.sources {
                    let from = match copy_source {
                        CopySource::Path { input, path } => {
                            format!("{path} from #{}", vertex.inputs[*input])
                        }
                        CopySource::Url { url } => url.clone(),
                        CopySource::Git(git) => git.url.clone(),
                        CopySource::Inline(file) => format!("heredoc {}", file.path),
                    };
                    writeln!(out, "         {from} -> {}", copy.destination)?;
                }
            }
            if let Op::Config(ConfigEdit::Onbuild(trigger)) = &vertex.op {
                writeln!(out, "         trigger: {trigger}")?;
            }
        }
    }
    // Steps that touch the filesystem, grouped by depth: a group's steps do
    // not depend on each other and can run at the same time. One list of
    // ids sorted by depth, not a list per depth (a chain of RUNs has as
    // many depths as steps), of u32s: a graph can have millions of
    // vertices, and the depths and this list are held beside it.
    let levels = graph.levels();
    let level = |id: u32| levels[id as usize];
    let mut steps: Vec<u32> = (0..graph.len())
        .filter(|id| !graph.is_config(*id))
        .map(|id| u32::try_from(id).expect("a graph has fewer than 2^32 vertices"))
        .collect();
    steps.sort_unstable_by_key(|id| (level(*id), *id));
    writeln!(
        out,
        "\nparallel groups (steps in one group can run at once):"
    )?;
    for group in steps.chunk_by(|a, b| level(*a) == level(*b)) {
        write!(out, "  {}:", level(group[0]))?;
        for id in group {
            write!(out, " #{id}")?;
        }
        writeln!(out)?;
    }
    Ok(())
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

pub(crate) fn json(graph: &BuildGraph, out: &mut dyn Write) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Plan<'g> {
        target: &'g str,
        stages: &'g [strata_frontend::graph::StageInfo],
        vertices: strata_frontend::graph::Vertices<'g>,
        levels: Vec<u32>,
    }
    let target = graph.target_stage().label();
    let plan = Plan {
        target: &target,
        stages: &graph.stages,
        vertices: strata_frontend::graph::Vertices(graph),
        levels: graph.levels(),
    };
    serde_json::to_writer_pretty(&mut *out, &plan)?;
    writeln!(out)
}

pub(crate) fn dot(graph: &BuildGraph, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"digraph build {\n  rankdir=LR;\n  node [shape=box, fontname=monospace];\n")?;
    let escape = |text: &str| {
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    for vertex in graph.vertices() {
        let shape = match vertex.op {
            Op::Source(_) => ", shape=ellipse",
            Op::Config(_) => ", style=dashed",
            _ => "",
        };
        writeln!(
            out,
            "  v{} [label=\"#{} {}\"{shape}];",
            vertex.id,
            vertex.id,
            escape(&one_line(&vertex.description(), 60))
        )?;
        for input in &vertex.inputs {
            writeln!(out, "  v{input} -> v{};", vertex.id)?;
        }
        if let Some(previous) = vertex.previous
            && !vertex.inputs.contains(&previous)
        {
            writeln!(out, "  v{previous} -> v{} [style=dotted];", vertex.id)?;
        }
    }
    out.write_all(b"}\n")
}
