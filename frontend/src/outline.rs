//! What a build target takes, for `strata build --call outline` (BuildKit's
//! `frontend.outline` subrequest, `dockerfile2llb/outline.go`): the build
//! arguments, secrets and ssh agents that the target and the stages it
//! needs use, each with its value or whether it is required, its
//! description and where it is declared. Nothing is built or resolved.
//!
//! As BuildKit counts them: every ARG of a stage the target needs (its
//! base, and the stages its COPY `--from` and RUN `--mount from=` name),
//! the ARGs before the first FROM that such a stage's FROM uses, and those
//! their defaults use in turn; the last declaration of a name is where it
//! is. Secrets are named by `id`, else by the target's file name; ssh by
//! `id`, else `default`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::expand::Lexer;
use crate::graph::MountType;
use crate::instructions::{ArgDefinition, Instruction, Stages};
use crate::targets::{Location, Position, Range};

/// A target's outline, as BuildKit's `outline.Outline` in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// The target's name (empty for an unnamed last stage).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its description (the comment above its FROM).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The build arguments it uses, in Dockerfile order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    /// The secrets its RUN steps mount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Required>,
    /// The ssh agents its RUN steps mount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<Required>,
}

/// A build argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// Its name.
    pub name: String,
    /// Its value, with the build's `--build-arg`s.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// The comment above its ARG that starts with its name, after it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where it is declared.
    pub location: Location,
}

/// A secret or an ssh agent a RUN mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Required {
    /// Its id.
    pub name: String,
    /// Whether the build fails without it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The RUN that mounts it.
    pub location: Location,
}

/// One declaration of an argument, as the outline knows it.
#[derive(Debug, Clone)]
struct Declared {
    value: String,
    description: String,
    lines: (usize, usize),
    /// The arguments its default uses.
    deps: BTreeSet<String>,
}

/// What one stage uses.
#[derive(Debug, Clone, Default)]
struct Capture {
    declared: HashMap<String, Declared>,
    used: BTreeSet<String>,
    secrets: Vec<(String, Required)>,
    ssh: Vec<(String, Required)>,
}

/// The outline of `target` (the last stage when `None`) of the Dockerfile
/// `text`, with `build_args`.
pub fn outline(
    text: &str,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<Outline, Error> {
    let file = crate::parse(text)?;
    let stages = crate::instructions::from_dockerfile(&file)?;
    let comments: HashMap<usize, &[String]> = file
        .nodes
        .iter()
        .map(|node| (node.start_line, node.comments.as_slice()))
        .collect();
    let lexer = Lexer::new(stages.escape);
    let description = |lines: (usize, usize), name: &str| -> String {
        comments
            .get(&lines.0)
            .and_then(|comments| {
                comments
                    .iter()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            })
            .unwrap_or_default()
            .to_owned()
    };
    // The ARGs before the first FROM, in order.
    let mut meta_values: BTreeMap<String, String> = BTreeMap::new();
    let mut global = Capture::default();
    for located in &stages.meta_args {
        let Instruction::Arg(definitions) = &located.instruction else {
            continue;
        };
        for definition in definitions {
            let (value, mut deps) = argument_value(&lexer, definition, &meta_values, build_args)?;
            let name = definition.name.value.clone();
            // `ARG FOO=${FOO}x` uses what the FOO before it used.
            if deps.remove(&name)
                && let Some(before) = global.declared.get(&name)
            {
                deps.extend(before.deps.iter().cloned());
            }
            let about = description(located.lines, &name);
            declare(
                &mut global.declared,
                &mut meta_values,
                name,
                value,
                about,
                located.lines,
                deps,
            );
        }
    }
    let names: HashMap<String, usize> = stages
        .stages
        .iter()
        .enumerate()
        .filter_map(|(index, stage)| Some((stage.from.name.as_ref()?.value.clone(), index)))
        .collect();
    let target_index = match target {
        None => stages.stages.len().saturating_sub(1),
        Some(wanted) => *names
            .get(&wanted.to_ascii_lowercase())
            .ok_or_else(|| Error::unplaced(ErrorKind::UnknownTarget(wanted.to_owned())))?,
    };
    if stages.stages.is_empty() {
        return Ok(Outline::default());
    }
    // Each needed stage's capture, the target first, then (depth first)
    // its base and the stages it reads.
    let mut order = Vec::new();
    let mut stack = vec![target_index];
    let mut seen = BTreeSet::new();
    while let Some(index) = stack.pop() {
        if !seen.insert(index) {
            continue;
        }
        order.push(index);
        let stage = &stages.stages[index];
        let mut next: Vec<usize> = Vec::new();
        if let Some(base) = names.get(&stage.from.image.value.to_ascii_lowercase())
            && *base < index
        {
            next.push(*base);
        }
        for reference in stage_references(&stages, index) {
            if let Some(found) = names
                .get(&reference.to_ascii_lowercase())
                .copied()
                .or_else(|| reference.parse::<usize>().ok())
                .filter(|found| *found < stages.stages.len() && *found != index)
            {
                next.push(found);
            }
        }
        stack.extend(next.into_iter().rev());
    }
    let mut args_seen = BTreeSet::new();
    let mut secrets_seen = BTreeSet::new();
    let mut ssh_seen = BTreeSet::new();
    let mut outline = Outline {
        name: stages.stages[target_index]
            .from
            .name
            .as_ref()
            .map(|name| name.value.clone())
            .unwrap_or_default(),
        ..Outline::default()
    };
    if !outline.name.is_empty() {
        outline.description = description(stages.stages[target_index].from_lines, &outline.name);
    }
    for index in order {
        let mut capture = stage_capture(
            &lexer,
            &stages,
            index,
            &global,
            &meta_values,
            build_args,
            &description,
        )?;
        // What the used ones use, transitively.
        let mut pending: Vec<String> = capture.used.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            if let Some(declared) = capture.declared.get(&name) {
                for dep in &declared.deps {
                    if capture.used.insert(dep.clone()) {
                        pending.push(dep.clone());
                    }
                }
            }
        }
        for name in &capture.used {
            if let Some(declared) = capture.declared.get(name)
                && args_seen.insert(name.clone())
            {
                outline.args.push(Arg {
                    name: name.clone(),
                    value: declared.value.clone(),
                    description: declared.description.clone(),
                    location: location(declared.lines),
                });
            }
        }
        for (name, secret) in capture.secrets.drain(..) {
            if secrets_seen.insert(name) {
                outline.secrets.push(secret);
            }
        }
        for (name, ssh) in capture.ssh.drain(..) {
            if ssh_seen.insert(name) {
                outline.ssh.push(ssh);
            }
        }
    }
    let line = |location: &Location| location.ranges[0].start.line;
    outline.args.sort_by_key(|arg| line(&arg.location));
    outline.secrets.sort_by_key(|secret| line(&secret.location));
    outline.ssh.sort_by_key(|ssh| line(&ssh.location));
    Ok(outline)
}

/// Record the declaration of `name` at `lines`, and its value, when it has
/// one, in `scope` (what later defaults expand with).
fn declare(
    declared: &mut HashMap<String, Declared>,
    scope: &mut BTreeMap<String, String>,
    name: String,
    value: Option<String>,
    description: String,
    lines: (usize, usize),
    deps: BTreeSet<String>,
) {
    if let Some(value) = &value {
        scope.insert(name.clone(), value.clone());
    }
    let value = value.unwrap_or_default();
    declared.insert(
        name,
        Declared {
            value,
            description,
            lines,
            deps,
        },
    );
}

/// The value of an ARG (a build argument wins over its default, which is
/// then not expanded), and the names its default used.
fn argument_value(
    lexer: &Lexer,
    definition: &ArgDefinition,
    scope: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
) -> Result<(Option<String>, BTreeSet<String>), Error> {
    if let Some(value) = build_args.get(&definition.name.value) {
        return Ok((Some(value.clone()), BTreeSet::new()));
    }
    match &definition.default {
        Some(word) => {
            let expansion = lexer
                .expand(&word.value, scope)
                .map_err(|error| Error::new(ErrorKind::Expand(error), word.span))?;
            Ok((Some(expansion.result), expansion.matched))
        }
        None => Ok((None, BTreeSet::new())),
    }
}

/// The literal stage references of stage `index` (`COPY --from`, `RUN
/// --mount from=`).
fn stage_references(stages: &Stages, index: usize) -> Vec<String> {
    let mut references = Vec::new();
    for located in &stages.stages[index].instructions {
        let mut found = Vec::new();
        located.instruction.static_references(&mut found);
        for reference in found {
            match reference {
                crate::instructions::StaticReference::CopyFrom(from) => references.push(from),
                crate::instructions::StaticReference::Mount(value) => {
                    if let Ok(mount) = crate::graph::mount::parse(&value)
                        && let Some(from) = mount.from
                    {
                        references.push(from);
                    }
                }
            }
        }
    }
    references
}

/// What stage `index` uses: what its FROM expands, its ARGs, and the
/// secrets and ssh agents its RUN steps mount.
fn stage_capture(
    lexer: &Lexer,
    stages: &Stages,
    index: usize,
    global: &Capture,
    meta_values: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
    description: &dyn Fn((usize, usize), &str) -> String,
) -> Result<Capture, Error> {
    let stage = &stages.stages[index];
    let mut capture = Capture {
        declared: global.declared.clone(),
        ..Capture::default()
    };
    for word in std::iter::once(&stage.from.image)
        .chain(stage.from.platform.as_ref().map(|flag| &flag.value))
    {
        if let Ok(expansion) = lexer.expand(&word.value, meta_values) {
            capture.used.extend(expansion.matched);
        }
    }
    let mut scope: BTreeMap<String, String> = BTreeMap::new();
    for located in &stage.instructions {
        match &located.instruction {
            Instruction::Arg(definitions) => {
                for definition in definitions {
                    let name = definition.name.value.clone();
                    capture.used.insert(name.clone());
                    // A bare ARG of a name declared before the first FROM,
                    // with no build argument, takes that one's value; it
                    // is declared there.
                    if definition.default.is_none()
                        && !build_args.contains_key(&name)
                        && let Some(value) = meta_values.get(&name)
                    {
                        scope.insert(name, value.clone());
                        continue;
                    }
                    // (A stage's ARG is used whatever its default uses, as
                    // BuildKit keeps no dependencies for it.)
                    let (value, _) = argument_value(lexer, definition, &scope, build_args)?;
                    let about = description(located.lines, &name);
                    let deps = BTreeSet::new();
                    declare(
                        &mut capture.declared,
                        &mut scope,
                        name,
                        value,
                        about,
                        located.lines,
                        deps,
                    );
                }
            }
            Instruction::Run(run) => {
                for flag in &run.mounts {
                    let Ok(value) = lexer.expand_word(&flag.value.value, &scope) else {
                        continue;
                    };
                    let Ok(mount) = crate::graph::mount::parse(&value) else {
                        continue;
                    };
                    let name = match mount.kind {
                        MountType::Secret => mount.id.clone().unwrap_or_else(|| {
                            mount
                                .target
                                .rsplit('/')
                                .next()
                                .unwrap_or_default()
                                .to_owned()
                        }),
                        MountType::Ssh => mount.id.clone().unwrap_or_else(|| "default".to_owned()),
                        _ => continue,
                    };
                    let required = Required {
                        name: name.clone(),
                        required: mount.required,
                        location: location(located.lines),
                    };
                    match mount.kind {
                        MountType::Secret => capture.secrets.push((name, required)),
                        _ => capture.ssh.push((name, required)),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(capture)
}

fn location(lines: (usize, usize)) -> Location {
    Location {
        ranges: vec![Range {
            start: Position { line: lines.0 },
            end: Position { line: lines.1 },
        }],
    }
}

/// The text buildx prints for `--call outline`.
pub fn outline_text(outline: &Outline) -> String {
    let mut out = String::new();
    if !outline.name.is_empty() || !outline.description.is_empty() {
        let name = if outline.name.is_empty() {
            "(default)"
        } else {
            &outline.name
        };
        let mut rows = vec![vec!["TARGET:".to_owned(), name.to_owned()]];
        if !outline.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".to_owned(), outline.description.clone()]);
        }
        out.push_str(&columns(&rows, 1));
        out.push('\n');
    }
    if !outline.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_owned(),
            "VALUE".to_owned(),
            "DESCRIPTION".to_owned(),
        ]];
        rows.extend(
            outline
                .args
                .iter()
                .map(|arg| vec![arg.name.clone(), arg.value.clone(), arg.description.clone()]),
        );
        out.push_str(&columns(&rows, 3));
        out.push('\n');
    }
    for (title, list) in [("SECRET", &outline.secrets), ("SSH", &outline.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![vec![title.to_owned(), "REQUIRED".to_owned()]];
        rows.extend(list.iter().map(|item| {
            vec![
                item.name.clone(),
                if item.required { "true" } else { "" }.to_owned(),
            ]
        }));
        out.push_str(&columns(&rows, 3));
        out.push('\n');
    }
    out
}

/// `rows` in columns as Go's tabwriter lays them out: each column but the
/// last as wide as its widest cell plus `padding`; trailing spaces dropped.
fn columns(rows: &[Vec<String>], padding: usize) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or_default();
    let widths: Vec<usize> = (0..count)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or_default()
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if column + 1 < row.len() {
                let pad = widths[column] - cell.chars().count() + padding;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
