//! Keys of file ops: WORKDIR's mkdir, COPY and ADD.
//!
//! | op | parts |
//! | --- | --- |
//! | mkdir (`WORKDIR`) | definition digest (path, owner), the parent's key |
//! | `COPY`, `ADD` | definition digest (sources, destination, `--chown`, `--chmod`, `--link`, `--exclude`, `--parents`, ADD's options), the content digest of what is copied, the key of every input (the parent first, then the source), a stage or image source by [`selected`] |
//!
//! The content digest covers, for each entry copied from the context, its
//! destination path, type, mode, link target, xattrs and content digest
//! (or a URL's content, or the commit a git repository's reference
//! resolves to); never owners or mtimes (`files::content_digest`).
//!
//! A source that is a stage or an image stands in the key by what is read
//! of it ([`selected`], `files::layers_digest`: owners included), not by
//! the steps that made it, as BuildKit's content checksums: a stage made
//! again with the same files leaves the copy, and a RUN that bind-mounts
//! a directory of it, cached (`testMountRWCache`).

use strata_frontend::graph::{CopySource, FileCopy};

use super::{Key, StepInputs, key};

/// The key of a WORKDIR's mkdir.
pub(crate) fn mkdir(definition: &str, parent: &str) -> Key {
    key(&[definition, parent])
}

/// What of a WORKDIR the cache report compares.
pub(crate) fn mkdir_inputs(path: &str, user: &str, parent: &str) -> StepInputs {
    StepInputs {
        instruction: format!("WORKDIR {path}"),
        user: user.to_owned(),
        parent: parent.to_owned(),
        ..StepInputs::default()
    }
}

/// The key of a COPY or ADD: `content` is the digest of what it copies,
/// `inputs` the keys (hex, empty when unknown) of its inputs in order.
pub(crate) fn copy(definition: &str, content: &str, inputs: &[&str]) -> Key {
    let mut parts: Vec<&str> = vec![definition, content];
    parts.extend_from_slice(inputs);
    key(&parts)
}

/// How an input read by content stands among a step's input keys:
/// `digest` is what was read of it (`files::layers_digest`).
pub(crate) fn selected(digest: &str) -> String {
    format!("content {digest}")
}

/// The key a content digest of a stage or image is remembered under
/// (`cache::content_memo`): what selects (`selection`: a copy's definition
/// digest, or a mount's source) and the diff_ids of the layers read.
pub(crate) fn content_memo(selection: &str, diff_ids: &[&str]) -> Key {
    let mut parts: Vec<&str> = vec!["content", selection];
    parts.extend_from_slice(diff_ids);
    key(&parts)
}

/// What of a COPY or ADD the cache report compares (the files are added
/// by the caller, which reads them).
pub(crate) fn copy_inputs(copy: &FileCopy, parent: &str) -> StepInputs {
    StepInputs {
        instruction: instruction(copy),
        parent: parent.to_owned(),
        ..StepInputs::default()
    }
}

/// A COPY or ADD as it runs: `instruction changed` is told when this
/// differs between builds.
fn instruction(copy: &FileCopy) -> String {
    let sources: Vec<String> = copy
        .sources
        .iter()
        .map(|source| match source {
            CopySource::Path { input, path } => format!("{input}:{path}"),
            CopySource::Url { url } => url.clone(),
            // What it resolves to is in the content digest.
            CopySource::Git(git) => format!("{git:?}"),
            CopySource::Inline(file) => format!("<<{}", file.path),
        })
        .collect();
    format!(
        "{} {} {} chown={:?} chmod={:?} link={} parents={} exclude={:?}",
        if copy.add { "ADD" } else { "COPY" },
        sources.join(" "),
        copy.destination,
        copy.chown,
        copy.chmod,
        copy.link,
        copy.parents,
        copy.exclude
    )
}
