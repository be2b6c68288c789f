//! COPY and ADD: what they read (the build context, another stage, an
//! image), and the layer they make.
//!
//! Sources are found in a [`Tree`]: the context directory read in place
//! (minus what `.dockerignore` excludes), or a stage's layers read through
//! their snapshots without mounting anything. Paths are resolved one
//! element at a time: a symlink in the context that points outside it
//! (absolute, or climbing above its root) is refused; in a stage or image
//! a symlink is followed as it would be inside it (`..` stops at `/`).
//!
//! The copied entries are written into a staging directory in overlayfs's
//! form, existing parent directories replicated as they are, and that
//! directory becomes the layer (and its snapshot). The rules are docker's:
//! a directory source copies its content; the destination is a directory
//! when it ends with `/`, already is one, or several sources are copied
//! (which needs the `/`); files keep their mode and mtime and are owned by
//! root, or by `--chown` (names looked up in the destination's
//! /etc/passwd and /etc/group), and sources from a stage keep their owners.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use regex::Regex;
use strata_frontend::graph::{CopySource, FileCopy};

use super::context::{BuildContext, Ignore};
use super::{BuildError, BuildOptions};
use crate::exec::{copy_lookup, resolve_user};
use crate::image::{self, ImageError};
use crate::store::{LayerRecord, Store};

/// Symlinks followed while resolving one path, at most (as Linux's 40).
const MAX_SYMLINKS: usize = 40;

/// What COPY reads from.
pub(crate) enum Tree<'a> {
    /// The build context.
    Context(&'a BuildContext),
    /// A stage's or image's layers (snapshot directories, top first).
    Layers(Vec<PathBuf>),
}

/// A failure, with the message the user sees.
type Failure = String;

impl Tree<'_> {
    /// The host path of `parts` (already resolved), if the entry exists.
    fn host(&self, parts: &[String]) -> Option<PathBuf> {
        let relative: PathBuf = parts.iter().collect();
        match self {
            Tree::Context(context) => {
                let path = context.root.join(&relative);
                std::fs::symlink_metadata(&path).ok().map(|_| path)
            }
            Tree::Layers(lowers) => {
                if parts.is_empty() {
                    return lowers.first().cloned();
                }
                copy_lookup(lowers, &relative)
            }
        }
    }

    fn is_context(&self) -> bool {
        matches!(self, Tree::Context(_))
    }

    /// Whether `.dockerignore` leaves `parts` out.
    fn excluded(&self, parts: &[String]) -> bool {
        match self {
            Tree::Context(context) => {
                !parts.is_empty() && context.ignore.excluded(&parts.join("/"))
            }
            Tree::Layers(_) => false,
        }
    }

    /// Whether `.dockerignore` hides `parts` entirely: excluded, and for a
    /// directory, nothing below it let back in by an exception.
    fn hidden(&self, parts: &[String]) -> bool {
        let Tree::Context(context) = self else {
            return false;
        };
        if !self.excluded(parts) {
            return false;
        }
        if !context.ignore.has_exceptions() {
            return true;
        }
        let is_dir = self
            .host(parts)
            .and_then(|host| std::fs::symlink_metadata(host).ok())
            .is_some_and(|meta| meta.is_dir());
        if !is_dir {
            return true;
        }
        let Ok(children) = self.children(parts) else {
            return true;
        };
        let mut child = parts.to_vec();
        for name in children {
            child.push(name);
            if !self.hidden(&child) {
                return false;
            }
            child.pop();
        }
        true
    }

    /// The names in directory `parts`, sorted.
    fn children(&self, parts: &[String]) -> Result<Vec<String>, Failure> {
        let mut names = std::collections::BTreeSet::new();
        let read =
            |dir: &Path, names: &mut std::collections::BTreeSet<String>| -> Result<(), Failure> {
                let entries = std::fs::read_dir(dir)
                    .map_err(|error| format!("failed to read `{}`: {error}", dir.display()))?;
                for entry in entries {
                    let entry = entry
                        .map_err(|error| format!("failed to read `{}`: {error}", dir.display()))?;
                    names.insert(entry.file_name().to_string_lossy().into_owned());
                }
                Ok(())
            };
        match self {
            Tree::Context(context) => {
                read(
                    &context.root.join(parts.iter().collect::<PathBuf>()),
                    &mut names,
                )?;
            }
            Tree::Layers(lowers) => {
                let relative: PathBuf = parts.iter().collect();
                for lower in lowers {
                    let dir = lower.join(&relative);
                    match std::fs::symlink_metadata(&dir) {
                        Ok(meta) if meta.is_dir() => {
                            read(&dir, &mut names)?;
                            if crate::layer::is_opaque(&dir) {
                                break;
                            }
                        }
                        // A file here hides what is below.
                        Ok(_) => break,
                        Err(_) => {}
                    }
                }
                // Whiteouts name deleted entries: keep what still exists.
                names.retain(|name| copy_lookup(lowers, &relative.join(name)).is_some());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Resolve `parts`, following symlinks inside the tree (the last one
    /// too when `follow_last`): the canonical parts, or `None` when absent.
    fn resolve(
        &self,
        parts: &[String],
        follow_last: bool,
        shown: &str,
    ) -> Result<Option<Vec<String>>, Failure> {
        let mut pending: std::collections::VecDeque<String> = parts.iter().cloned().collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            let mut candidate = resolved.clone();
            candidate.push(part.clone());
            let Some(host) = self.host(&candidate) else {
                return Ok(None);
            };
            let meta = std::fs::symlink_metadata(&host)
                .map_err(|error| format!("failed to inspect `{}`: {error}", host.display()))?;
            let last = pending.is_empty();
            if !meta.file_type().is_symlink() || (last && !follow_last) {
                resolved = candidate;
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINKS {
                return Err(format!("`{shown}`: too many levels of symbolic links"));
            }
            let target = std::fs::read_link(&host).map_err(|error| {
                format!("failed to read the link `{}`: {error}", host.display())
            })?;
            let target_text = target.to_string_lossy().into_owned();
            let mut base = if target.is_absolute() {
                if self.is_context() {
                    return Err(format!(
                        "`{shown}` leaves the build context: `{}` is a symlink to `{target_text}`",
                        candidate.join("/")
                    ));
                }
                Vec::new()
            } else {
                resolved.clone()
            };
            for component in target_text.split('/') {
                match component {
                    "" | "." => {}
                    ".." => {
                        if base.pop().is_none() && self.is_context() {
                            return Err(format!(
                                "`{shown}` leaves the build context: `{}` is a symlink to `{target_text}`",
                                candidate.join("/")
                            ));
                        }
                    }
                    other => base.push(other.to_owned()),
                }
            }
            // Resolve the target's elements again (they may be links).
            for component in base.into_iter().rev() {
                pending.push_front(component);
            }
            resolved.clear();
        }
        Ok(Some(resolved))
    }
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// One path element pattern as a regex (`*` and `?` within the element).
fn element_regex(pattern: &str) -> Result<Regex, Failure> {
    let mut out = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let mut class = String::from("[");
                for ch in chars.by_ref() {
                    if ch == ']' {
                        break;
                    }
                    if matches!(ch, '[' | '&' | '~' | '\\') {
                        class.push('\\');
                    }
                    class.push(if ch == '!' && class == "[" { '^' } else { ch });
                }
                class.push(']');
                out.push_str(&class);
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex::escape(&next.to_string()));
                }
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    Regex::new(&out).map_err(|error| format!("invalid pattern `{pattern}`: {error}"))
}

/// Every entry of `tree` that `source` names (globs expanded), resolved.
fn matches(tree: &Tree<'_>, source: &str) -> Result<Vec<Vec<String>>, Failure> {
    let cleaned = super::context::clean(source.trim_start_matches('/'));
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(format!("`{source}` is outside the build context"));
    }
    let elements: Vec<String> = if cleaned == "." {
        Vec::new()
    } else {
        cleaned.split('/').map(str::to_owned).collect()
    };
    let mut found: Vec<Vec<String>> = vec![Vec::new()];
    for element in &elements {
        let mut next = Vec::new();
        for prefix in &found {
            if has_glob(element) {
                let regex = element_regex(element)?;
                let Some(dir) = tree.resolve(prefix, true, source)? else {
                    continue;
                };
                let is_dir = tree
                    .host(&dir)
                    .and_then(|host| std::fs::metadata(host).ok())
                    .is_some_and(|meta| meta.is_dir());
                if !is_dir {
                    continue;
                }
                for name in tree.children(&dir)? {
                    if regex.is_match(&name) {
                        let mut path = prefix.clone();
                        path.push(name);
                        next.push(path);
                    }
                }
            } else {
                let mut path = prefix.clone();
                path.push(element.clone());
                next.push(path);
            }
        }
        found = next;
    }
    let mut resolved = Vec::new();
    for path in found {
        if tree.hidden(&path) {
            continue;
        }
        if let Some(canonical) = tree.resolve(&path, true, source)? {
            if tree.hidden(&canonical) {
                continue;
            }
            resolved.push(canonical);
        }
    }
    Ok(resolved)
}

/// `--chmod`: octal, or symbolic clauses like `u+x,go=r`.
fn apply_chmod(spec: &str, mode: u32, is_dir: bool) -> u32 {
    if let Ok(octal) = u32::from_str_radix(spec, 8) {
        return octal & 0o7777;
    }
    let mut mode = mode & 0o7777;
    for clause in spec.split(',') {
        let who_end = clause.find(['+', '-', '=']).unwrap_or(clause.len());
        let (who, rest) = clause.split_at(who_end);
        let mut mask = 0;
        for ch in who.chars() {
            mask |= match ch {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => 0,
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let mut chars = rest.chars();
        let Some(op) = chars.next() else { continue };
        let mut bits = 0;
        for ch in chars {
            bits |= match ch {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || mode & 0o111 != 0 => 0o111,
                's' => 0o6000,
                't' => 0o1000,
                _ => 0,
            };
        }
        let bits = bits & mask;
        mode = match op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => (mode & !(mask & 0o777)) | bits,
        };
    }
    mode
}

/// Writes the copied entries into the staging directory.
struct Writer<'a> {
    staging: PathBuf,
    /// The destination's layers (top first), for existing parents.
    lowers: &'a [PathBuf],
    chown: Option<(u32, u32)>,
    chmod: Option<&'a str>,
    exclude: Ignore,
    dir_times: Vec<(PathBuf, std::fs::FileTimes)>,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Failure {
    let text = format!("failed to {what} `{}`", path.display());
    move |error| format!("{text}: {error}")
}

impl Writer<'_> {
    /// Make `parts` and its parents in staging: existing ones as the
    /// destination has them, new ones 0755 (owned by `--chown`'s user).
    fn ensure_dir(&mut self, parts: &[String]) -> Result<(), Failure> {
        for count in 1..=parts.len() {
            let relative: PathBuf = parts[..count].iter().collect();
            let target = self.staging.join(&relative);
            if target.is_dir() {
                continue;
            }
            match copy_lookup(self.lowers, &relative) {
                Some(existing) => {
                    let meta = std::fs::metadata(&existing).map_err(io("inspect", &existing))?;
                    if !meta.is_dir() {
                        return Err(format!(
                            "cannot copy to `/{}`: it is not a directory",
                            relative.display()
                        ));
                    }
                    std::fs::create_dir(&target).map_err(io("create", &target))?;
                    let _ = std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()));
                    std::fs::set_permissions(&target, meta.permissions())
                        .map_err(io("set the mode of", &target))?;
                    if let (Ok(accessed), Ok(modified)) = (meta.accessed(), meta.modified()) {
                        self.dir_times.push((
                            target,
                            std::fs::FileTimes::new()
                                .set_accessed(accessed)
                                .set_modified(modified),
                        ));
                    }
                }
                None => {
                    std::fs::create_dir(&target).map_err(io("create", &target))?;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                        .map_err(io("set the mode of", &target))?;
                    let (uid, gid) = self.chown.unwrap_or((0, 0));
                    std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                        .map_err(io("set the owner of", &target))?;
                }
            }
        }
        Ok(())
    }

    /// Copy the entry at `host` (an entry of `tree`, `source_parts` in it)
    /// to `dest` (parts below the root), recursively for directories.
    fn copy(
        &mut self,
        tree: &Tree<'_>,
        source_parts: &[String],
        relative_to_source: &[String],
        host: &Path,
        dest: &[String],
    ) -> Result<(), Failure> {
        let meta = std::fs::symlink_metadata(host).map_err(io("inspect", host))?;
        let target = self.staging.join(dest.iter().collect::<PathBuf>());
        if let Some(parent) = dest.split_last().map(|(_, parent)| parent) {
            self.ensure_dir(parent)?;
        }
        let kind = meta.file_type();
        if target.symlink_metadata().is_ok() && !(kind.is_dir() && target.is_dir()) {
            let _ = std::fs::remove_dir_all(&target).or_else(|_| std::fs::remove_file(&target));
        }
        if kind.is_dir() {
            if !target.is_dir() {
                std::fs::create_dir(&target).map_err(io("create", &target))?;
            }
        } else if kind.is_symlink() {
            let link = std::fs::read_link(host).map_err(io("read the link", host))?;
            std::os::unix::fs::symlink(&link, &target).map_err(io("create", &target))?;
        } else if kind.is_file() {
            std::fs::copy(host, &target).map_err(io("copy", host))?;
        } else {
            // Sockets, devices and fifos are not copied, as BuildKit.
            return Ok(());
        }
        let (uid, gid) = match (self.chown, tree.is_context()) {
            (Some(owner), _) => owner,
            (None, true) => (0, 0),
            (None, false) => (meta.uid(), meta.gid()),
        };
        std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(|error| {
            format!(
                "failed to give `/{}` the owner {uid}:{gid}: {error}",
                dest.join("/")
            )
        })?;
        if !kind.is_symlink() {
            let mode = match self.chmod {
                Some(spec) => apply_chmod(spec, meta.mode(), kind.is_dir()),
                None => meta.mode() & 0o7777,
            };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                .map_err(io("set the mode of", &target))?;
            if let Ok(names) = xattr::list(host) {
                for name in names {
                    if crate::layer::is_overlay_xattr(name.as_encoded_bytes()) {
                        continue;
                    }
                    if let Ok(Some(value)) = xattr::get(host, &name) {
                        let _ = xattr::set(&target, &name, &value);
                    }
                }
            }
        }
        let times = std::fs::FileTimes::new()
            .set_accessed(meta.accessed().map_err(io("inspect", host))?)
            .set_modified(meta.modified().map_err(io("inspect", host))?);
        if kind.is_dir() {
            self.dir_times.push((target, times));
            let mut parts = source_parts.to_vec();
            for name in tree.children(source_parts)? {
                parts.push(name.clone());
                let mut relative = relative_to_source.to_vec();
                relative.push(name.clone());
                let skip = tree.hidden(&parts) || self.exclude.excluded(&relative.join("/"));
                if !skip && let Some(child) = tree.host(&parts) {
                    let mut child_dest = dest.to_vec();
                    child_dest.push(name);
                    self.copy(tree, &parts, &relative, &child, &child_dest)?;
                }
                parts.pop();
            }
        } else if kind.is_file() {
            std::fs::File::options()
                .write(true)
                .open(&target)
                .and_then(|file| file.set_times(times))
                .map_err(io("set the times of", &target))?;
        }
        Ok(())
    }
}

/// Run one COPY or ADD: its layer, if it made one.
pub(crate) fn copy_layer(
    store: &Store,
    copy: &FileCopy,
    trees: &[Tree<'_>],
    destination_lowers: &[PathBuf],
    options: &BuildOptions,
) -> Result<Option<LayerRecord>, BuildError> {
    let instruction = if copy.add { "ADD" } else { "COPY" };
    let fail = |message: String| BuildError::Config(format!("{instruction} failed: {message}"));
    // --link: the layer does not depend on what is below it.
    let lowers: Vec<PathBuf> = if copy.link {
        Vec::new()
    } else {
        destination_lowers.to_vec()
    };
    let read = |file: &str| {
        copy_lookup(destination_lowers, Path::new(file))
            .and_then(|found| std::fs::read_to_string(found).ok())
            .unwrap_or_default()
    };
    let chown = match &copy.chown {
        Some(spec) => {
            let user = resolve_user(&read("etc/passwd"), &read("etc/group"), spec)
                .map_err(|message| fail(format!("--chown={spec}: {message}")))?;
            Some((user.uid, user.gid))
        }
        None => None,
    };
    let exclude = Ignore::parse(&copy.exclude.join("\n"))
        .map_err(|error| fail(format!("--exclude: {error}")))?;
    // Everything the sources name, found first: nothing is written when
    // one is missing.
    let mut found: Vec<(usize, Vec<String>, PathBuf, bool)> = Vec::new();
    let mut inline = Vec::new();
    for source in &copy.sources {
        match source {
            CopySource::Path { input, path } => {
                let tree = trees
                    .get(*input)
                    .ok_or_else(|| fail(format!("no input {input} for `{path}`")))?;
                let matched = matches(tree, path).map_err(fail)?;
                if matched.is_empty() {
                    let hint = if tree.is_context() {
                        " (or excluded by .dockerignore)"
                    } else {
                        ""
                    };
                    return Err(fail(format!(
                        "`{path}`: not found{}{hint}",
                        if tree.is_context() {
                            " in the build context"
                        } else {
                            ""
                        }
                    )));
                }
                for parts in matched {
                    let host = tree
                        .host(&parts)
                        .ok_or_else(|| fail(format!("`{path}` vanished")))?;
                    let is_dir = std::fs::metadata(&host).is_ok_and(|meta| meta.is_dir());
                    found.push((*input, parts, host, is_dir));
                }
            }
            CopySource::Inline(file) => inline.push(file),
            CopySource::Url { url } => {
                return Err(BuildError::Config(format!(
                    "ADD {url}: downloading URLs is not supported by this version of strata yet"
                )));
            }
        }
    }
    let destination = copy.destination.trim_start_matches('/');
    let dest_parts: Vec<String> = destination
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(str::to_owned)
        .collect();
    let exists_as_dir = dest_parts.is_empty()
        || copy_lookup(&lowers, &dest_parts.iter().collect::<PathBuf>())
            .is_some_and(|found| found.is_dir());
    let several = found.len() + inline.len() > 1;
    let into_dir = copy.destination.ends_with('/') || exists_as_dir;
    if several && !into_dir {
        return Err(fail(format!(
            "when copying more than one source, the destination must be a directory and end with a /: `{}`",
            copy.destination
        )));
    }
    let staging = store.staging_dir("copy").map_err(ImageError::from)?;
    let mut writer = Writer {
        staging: staging.clone(),
        lowers: &lowers,
        chown,
        chmod: copy.chmod.as_deref(),
        exclude,
        dir_times: Vec::new(),
    };
    let written = (|| -> Result<(), Failure> {
        if into_dir {
            writer.ensure_dir(&dest_parts)?;
        }
        for (input, parts, host, is_dir) in &found {
            let tree = &trees[*input];
            let target: Vec<String> = if *is_dir {
                // A directory's content goes into the destination.
                let mut target = dest_parts.clone();
                if copy.parents {
                    target.extend(parts.iter().cloned());
                }
                writer.ensure_dir(&target)?;
                for name in tree.children(parts)? {
                    let mut child = parts.clone();
                    child.push(name.clone());
                    if tree.hidden(&child) || writer.exclude.excluded(&name) {
                        continue;
                    }
                    if let Some(child_host) = tree.host(&child) {
                        let mut child_dest = target.clone();
                        child_dest.push(name.clone());
                        writer.copy(tree, &child, &[name], &child_host, &child_dest)?;
                    }
                }
                continue;
            } else if into_dir {
                let mut target = dest_parts.clone();
                if copy.parents {
                    target.extend(parts.iter().cloned());
                } else if let Some(name) = parts.last() {
                    target.push(name.clone());
                }
                target
            } else {
                dest_parts.clone()
            };
            let name = parts.last().cloned().unwrap_or_default();
            if writer.exclude.excluded(&name) {
                continue;
            }
            writer.copy(tree, parts, &[name], host, &target)?;
        }
        for file in &inline {
            let mut target = dest_parts.clone();
            if into_dir {
                target.push(file.path.clone());
            }
            if let Some((_, parent)) = target.split_last() {
                writer.ensure_dir(parent)?;
            }
            let path = staging.join(target.iter().collect::<PathBuf>());
            std::fs::write(&path, &file.content).map_err(io("write", &path))?;
            let mode = match writer.chmod {
                Some(spec) => apply_chmod(spec, file.mode, false),
                None => file.mode,
            };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(io("set the mode of", &path))?;
            let (uid, gid) = writer.chown.unwrap_or((0, 0));
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(io("set the owner of", &path))?;
        }
        for (dir, times) in writer.dir_times.drain(..).rev() {
            std::fs::File::open(&dir)
                .and_then(|file| file.set_times(times))
                .map_err(io("set the times of", &dir))?;
        }
        Ok(())
    })();
    if let Err(message) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(fail(message));
    }
    let stored = image::store_layer(
        store,
        &staging,
        options.compression,
        options.epoch,
        &crate::layer::Owners::new(),
    );
    let layer = match stored {
        Ok((layer, _)) => layer,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error.into());
        }
    };
    // The staging directory is the layer's snapshot already.
    let snapshot = store.snapshot_path(&layer.diff_id);
    if let Some(parent) = snapshot.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if snapshot.exists() || std::fs::rename(&staging, &snapshot).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(Some(layer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_takes_octal_and_symbolic_modes() {
        assert_eq!(apply_chmod("0755", 0o600, false), 0o755);
        assert_eq!(apply_chmod("u+x,go=r", 0o600, false), 0o744);
        assert_eq!(apply_chmod("a+X", 0o644, true), 0o755);
        assert_eq!(apply_chmod("a+X", 0o644, false), 0o644);
        assert_eq!(apply_chmod("go-w", 0o666, false), 0o644);
        assert_eq!(apply_chmod("u+s", 0o755, false), 0o4755);
    }
}
