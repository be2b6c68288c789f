//! The stages a Dockerfile defines, for `strata build --call targets`
//! (BuildKit's `frontend.targets` subrequest, `dockerfile2llb.ListTargets`):
//! each stage's name, the base its FROM names (as written), its
//! `--platform` (as written), its description and where it is. The last
//! stage is the default. Nothing is expanded or resolved.

use serde::Serialize;

use crate::error::Error;

/// One stage, as BuildKit's `targets.Target` has it in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// `AS name`, lower-cased; none for an unnamed stage.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether it is the default target (the last stage).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// The comment above FROM that starts with the stage's name, after it
    /// (`# build compiles the binary` above `FROM ... AS build`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The image or stage FROM names, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base: String,
    /// `--platform`, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    /// FROM's lines.
    pub location: Location,
}

/// Where an instruction is, as BuildKit's `pb.Location` in JSON: the
/// source (always the one Dockerfile, 0) and the lines, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The ranges.
    pub ranges: Vec<Range>,
}

/// Lines `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Range {
    /// The first line.
    pub start: Position,
    /// The last line.
    pub end: Position,
}

/// A line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    /// The line.
    pub line: usize,
}

/// The stages of the Dockerfile `text`, in order.
pub fn targets(text: &str) -> Result<Vec<Target>, Error> {
    let file = crate::parse(text)?;
    let stages = crate::instructions::from_dockerfile(&file)?;
    let mut froms = file
        .nodes
        .iter()
        .filter(|node| node.name() == "from")
        .map(|node| &node.comments);
    let count = stages.stages.len();
    Ok(stages
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            let comments = froms.next().map(Vec::as_slice).unwrap_or_default();
            let name = stage
                .from
                .name
                .as_ref()
                .map(|name| name.value.clone())
                .unwrap_or_default();
            let description = match name.as_str() {
                "" => String::new(),
                name => comments
                    .iter()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                    .unwrap_or_default()
                    .to_owned(),
            };
            let (start, end) = stage.from_lines;
            Target {
                name,
                default: index + 1 == count,
                description,
                base: stage.from.image.value.clone(),
                platform: stage
                    .from
                    .platform
                    .as_ref()
                    .map(|flag| flag.value.value.clone())
                    .unwrap_or_default(),
                location: Location {
                    ranges: vec![Range {
                        start: Position { line: start },
                        end: Position { line: end },
                    }],
                },
            }
        })
        .collect())
}

/// The text table buildx prints for `--call targets`: the name (with
/// `(default)`) and the description, in columns.
pub fn targets_table(targets: &[Target]) -> String {
    let names: Vec<String> = targets
        .iter()
        .map(|target| match (target.name.as_str(), target.default) {
            ("", true) => "(default)".to_owned(),
            (name, true) => format!("{name} (default)"),
            (name, false) => name.to_owned(),
        })
        .collect();
    let width = names
        .iter()
        .map(String::len)
        .chain(["TARGET".len()])
        .max()
        .unwrap_or_default();
    let mut out = format!("{:<width$} DESCRIPTION\n", "TARGET");
    for (name, target) in names.iter().zip(targets) {
        out.push_str(format!("{name:<width$} {}", target.description).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Dockerfile of BuildKit's testTargetsList.
    const DOCKERFILE: &str = "
# build defines stage for compiling the binary
FROM alpine AS build
RUN true
FROM busybox as second
RUN false
FROM alpine
RUN false
# binary returns the compiled binary
FROM second AS binary
";

    #[test]
    fn stages_are_listed_with_their_descriptions_and_lines() {
        let list = targets(DOCKERFILE).unwrap();
        let summary: Vec<(&str, &str, &str, bool, usize)> = list
            .iter()
            .map(|target| {
                (
                    target.name.as_str(),
                    target.base.as_str(),
                    target.description.as_str(),
                    target.default,
                    target.location.ranges[0].start.line,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "build",
                    "alpine",
                    "defines stage for compiling the binary",
                    false,
                    3
                ),
                ("second", "busybox", "", false, 5),
                ("", "alpine", "", false, 7),
                ("binary", "second", "returns the compiled binary", true, 10),
            ]
        );
        assert_eq!(
            targets_table(&list),
            "TARGET           DESCRIPTION\nbuild            defines stage for compiling the binary\nsecond\n\nbinary (default) returns the compiled binary\n"
        );
    }
}
