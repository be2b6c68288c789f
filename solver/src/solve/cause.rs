//! Why a step ran instead of coming from the cache, as data (cargo's
//! `DirtyReason`): the solver finds the cause, and the reporter words it.
//!
//! When a step's key is new, the index (see [`super::cache`]) gives the
//! latest record of the same step, found by `identity`; [`own_change`]
//! compares the inputs of the two keys and returns the first difference.
//! A step that missed only because an earlier one did is [`Cause::After`]
//! that one.

use std::collections::BTreeMap;

use strata_frontend::graph::{Label, StageInfo, VertexId};

use super::key::StepInputs;

/// Why a step ran instead of coming from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// `--no-cache` or `--no-cache-filter`.
    NoCache,
    /// Nothing is known of this step.
    NoPrevious,
    /// Something of its own changed.
    Changed(Change),
    /// Only its parent changed: the step that missed first, upstream.
    After(VertexId),
}

/// What of a step's own inputs changed since its latest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The base image is another (manifest digests; `None` when unknown).
    BaseImage {
        /// Before.
        before: Option<String>,
        /// Now.
        now: Option<String>,
    },
    /// The instruction as it runs (argv, COPY sources and options...).
    Instruction,
    /// A build arg that reaches the step.
    BuildArg(ValueChange),
    /// An ENV value the step sees.
    Env(ValueChange),
    /// USER.
    User {
        /// Before.
        before: String,
        /// Now.
        now: String,
    },
    /// WORKDIR.
    Workdir {
        /// Before.
        before: String,
        /// Now.
        now: String,
    },
    /// Files whose content (or type) changed, by path, sorted.
    FilesChanged(Vec<String>),
    /// A file whose permission bits changed.
    FileMode {
        /// Its path in the context.
        path: String,
        /// Before.
        before: u32,
        /// Now.
        now: u32,
    },
    /// Files read now that were not before, sorted.
    FilesAdded(Vec<String>),
    /// Files no longer read because `.dockerignore` now excludes them.
    NowIgnored(Vec<String>),
    /// Files no longer read, sorted.
    FilesRemoved(Vec<String>),
    /// The record says no more (one from before inputs were kept, say).
    Inputs,
}

/// A named value that changed; `None` is unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueChange {
    /// Its name.
    pub name: String,
    /// Before.
    pub before: Option<String>,
    /// Now.
    pub now: Option<String>,
}

/// The first of `before` and `now` whose value differs, by name.
fn changed_value(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Option<ValueChange> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    names.into_iter().find_map(|name| {
        let (old, new) = (before.get(name), now.get(name));
        (old != new).then(|| ValueChange {
            name: name.clone(),
            before: old.cloned(),
            now: new.cloned(),
        })
    })
}

/// What of its own changed between `before` and `now`, if anything, in
/// this order: base, instruction, build args, ENV, USER, WORKDIR, file
/// contents, modes, added files, removed ones. `ignored` says whether
/// `.dockerignore` excludes a context path now.
pub fn own_change(
    before: &StepInputs,
    now: &StepInputs,
    ignored: &dyn Fn(&str) -> bool,
) -> Option<Change> {
    if before.base != now.base {
        return Some(Change::BaseImage {
            before: before.base.clone(),
            now: now.base.clone(),
        });
    }
    if before.instruction != now.instruction {
        return Some(Change::Instruction);
    }
    if let Some(change) = changed_value(&before.args, &now.args) {
        return Some(Change::BuildArg(change));
    }
    if let Some(change) = changed_value(&before.env, &now.env) {
        return Some(Change::Env(change));
    }
    if before.user != now.user {
        return Some(Change::User {
            before: before.user.clone(),
            now: now.user.clone(),
        });
    }
    if before.workdir != now.workdir {
        return Some(Change::Workdir {
            before: before.workdir.clone(),
            now: now.workdir.clone(),
        });
    }
    if before.files == now.files {
        return None;
    }
    let changed: Vec<String> = now
        .files
        .iter()
        .filter(|(path, summary)| {
            before
                .files
                .get(*path)
                .is_some_and(|old| old.kind != summary.kind || old.digest != summary.digest)
        })
        .map(|(path, _)| path.clone())
        .collect();
    if !changed.is_empty() {
        return Some(Change::FilesChanged(changed));
    }
    if let Some((path, summary)) = now.files.iter().find(|(path, summary)| {
        before
            .files
            .get(*path)
            .is_some_and(|old| old.mode != summary.mode)
    }) {
        return Some(Change::FileMode {
            path: path.clone(),
            before: before.files[path].mode,
            now: summary.mode,
        });
    }
    let added: Vec<String> = now
        .files
        .keys()
        .filter(|path| !before.files.contains_key(*path))
        .cloned()
        .collect();
    if !added.is_empty() {
        return Some(Change::FilesAdded(added));
    }
    let removed: Vec<String> = before
        .files
        .keys()
        .filter(|path| !now.files.contains_key(*path))
        .cloned()
        .collect();
    let excluded: Vec<String> = removed
        .iter()
        .filter(|path| ignored(path))
        .cloned()
        .collect();
    if !excluded.is_empty() {
        return Some(Change::NowIgnored(excluded));
    }
    if !removed.is_empty() {
        return Some(Change::FilesRemoved(removed));
    }
    None
}

/// How the index knows a step from one build to the next: by the
/// Dockerfile, the stage, the position in it and the instruction's
/// keyword; and, for a step that moved, by the Dockerfile and its text.
///
/// The strings are those the index has been written with (its file names
/// are their hashes): a source's position is `[internal` or `[context`
/// and its keyword that of its label's text, as when they were read back
/// from the description.
pub(crate) fn identity(
    dockerfile: &str,
    stage: Option<&StageInfo>,
    label: &Label,
) -> (String, String) {
    let stage = stage.map(StageInfo::label).unwrap_or_default();
    let text = label.text();
    let (position, keyword) = match label {
        Label::Step(step) => (step.number.to_string(), step.keyword()),
        Label::Context | Label::NamedContext { .. } => (
            "[context".to_owned(),
            text.split_whitespace().next().unwrap_or_default(),
        ),
        Label::Scratch | Label::Image { .. } => (
            "[internal".to_owned(),
            text.split_whitespace().next().unwrap_or_default(),
        ),
    };
    (
        format!("{dockerfile}\0{stage}\0{position}\0{keyword}"),
        format!("{dockerfile}\0{text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::key::{FileSummary, Files};
    use strata_frontend::graph::StepLabel;

    #[test]
    fn the_first_own_change_is_named() {
        let files = |entries: &[(&str, &str, u32)]| -> Files {
            entries
                .iter()
                .map(|(path, digest, mode)| {
                    (
                        path.to_string(),
                        FileSummary {
                            kind: "file".into(),
                            digest: digest.to_string(),
                            mode: *mode,
                        },
                    )
                })
                .collect()
        };
        let before = StepInputs {
            files: files(&[("a", "1", 0o644), ("b", "2", 0o644), ("c", "3", 0o644)]),
            ..StepInputs::default()
        };
        let now = StepInputs {
            files: files(&[("a", "9", 0o644), ("b", "2", 0o600), ("d", "4", 0o644)]),
            ..StepInputs::default()
        };
        let never = |_: &str| false;
        assert_eq!(
            own_change(&before, &now, &never),
            Some(Change::FilesChanged(vec!["a".into()]))
        );
        assert_eq!(own_change(&before, &before, &never), None);
        let with_args = |value: &str| StepInputs {
            args: [("GREETING".to_owned(), value.to_owned())].into(),
            ..StepInputs::default()
        };
        assert_eq!(
            own_change(&with_args("hello world"), &with_args("hi there"), &never),
            Some(Change::BuildArg(ValueChange {
                name: "GREETING".into(),
                before: Some("hello world".into()),
                now: Some("hi there".into()),
            }))
        );
    }

    #[test]
    fn identities_are_those_read_from_descriptions_before() {
        let stage = StageInfo {
            index: 0,
            name: Some("build".into()),
            base: "busybox".into(),
            built: true,
            rootfs: None,
            last: None,
            span: strata_frontend::Span::new(0, 1),
        };
        let step = Label::Step(StepLabel {
            stage: "build".into(),
            number: 2,
            total: 4,
            instruction: "RUN make all".into(),
        });
        assert_eq!(
            identity("Dockerfile", Some(&stage), &step),
            (
                "Dockerfile\0build\u{0}2\0RUN".to_owned(),
                "Dockerfile\0RUN make all".to_owned()
            )
        );
        let image = Label::Image {
            reference: "busybox".into(),
        };
        assert_eq!(
            identity("Dockerfile", Some(&stage), &image),
            (
                "Dockerfile\0build\0[internal\0load".to_owned(),
                "Dockerfile\0load image busybox".to_owned()
            )
        );
    }
}
