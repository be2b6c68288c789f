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
//!
//! Names are bytes (`OsString`) from the directory listing to the layer: a
//! name that is not UTF-8 is copied like any other, matched by globs and
//! `.dockerignore` with each invalid byte as one character, hashed into the
//! key as its bytes (UTF-8 names as they always were) and shown escaped
//! (see [`crate::name`]). Nothing listed is left out without a word: an
//! entry that vanishes is an error, and sockets, devices and fifos, which
//! are not copied (as in BuildKit), are named in a warning.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use regex::Regex;
use strata_frontend::graph::{CopySource, FileCopy, VertexId};

use super::context::{BuildContext, Ignore, IgnoreError, Matched};
use super::fetch::FetchError;
use super::git::{Checkout, GitError};
use super::{BuildError, BuildOptions, StepError, StepErrorKind};
use crate::confined::{Chain, Dir, Root};
use crate::error::PathError;
use crate::exec::{UserError, copy_lookup, resolve_user};
use crate::image::{self, ImageError};
use crate::layer::UnpackError;
use crate::name::{Shown, escape, escape_os, escape_path, match_form};
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

/// Why a COPY or ADD cannot do what it says: what follows `COPY failed: `
/// (the cause, when there is one, after another `: `).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A file operation on a source or in staging failed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A source path whose symlinks go round in circles.
    #[error("`{shown}`: too many levels of symbolic links")]
    SymlinkLoop {
        /// The source as written.
        shown: String,
    },
    /// A source in the build context reached through a symlink that
    /// points outside it.
    #[error("`{shown}` leaves the build context: `{link}` is a symlink to `{target}`")]
    LeavesContext {
        /// The source as written.
        shown: String,
        /// The symlink, in the context.
        link: String,
        /// Where it points.
        target: String,
    },
    /// A source glob that is not a valid pattern.
    #[error("invalid pattern `{pattern}`")]
    Pattern {
        /// The path element.
        pattern: String,
        /// Why.
        #[source]
        source: regex::Error,
    },
    /// A bind mount of a directory that `.dockerignore` hides entirely.
    #[error("`{}` is excluded by .dockerignore", Shown(.0))]
    Excluded(PathBuf),
    /// A source above the build context's root.
    #[error("`{0}` is outside the build context")]
    OutsideContext(String),
    /// `--chown` names a user or group the destination does not have.
    #[error("--chown={spec}")]
    Chown {
        /// The flag's value.
        spec: String,
        /// Why it does not resolve.
        #[source]
        source: UserError,
    },
    /// An `--exclude` pattern that does not parse.
    #[error("--exclude")]
    Exclude(#[source] IgnoreError),
    /// A source that names an input the step does not have.
    #[error("no input {input} for `{path}`")]
    NoInput {
        /// The input's index.
        input: usize,
        /// The source.
        path: String,
    },
    /// A source that matches nothing in the build context.
    #[error("`{0}`: not found in the build context (or excluded by .dockerignore)")]
    NotInContext(String),
    /// A source that matches nothing in a stage or image.
    #[error("`{0}`: not found")]
    NotFound(String),
    /// A source that was matched and then was not there.
    #[error("`{0}` vanished")]
    Vanished(String),
    /// ADD of a URL that could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// ADD of a git repository that could not be cloned.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A destination below a file of the image.
    #[error("cannot copy to `/{}`: it is not a directory", Shown(.0))]
    NotADirectory(PathBuf),
    /// Setting a new directory's or an inline file's owner failed.
    #[error("failed to set the owner of `/{path}`")]
    SetOwner {
        /// The path below the destination's root.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Giving a copied entry its owner failed.
    #[error("failed to give `/{path}` the owner {uid}:{gid}")]
    GiveOwner {
        /// The path below the destination's root.
        path: String,
        /// The owner.
        uid: u32,
        /// The group.
        gid: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An entry with an empty destination path.
    #[error("the destination names no file")]
    NoName,
    // The two below show their cause's own message only, not its causes
    // (which would add the path and system error a second time): the text
    // users have always seen.
    /// An archive ADD cannot decompress.
    #[error("failed to read the archive `{}`: {reason}", Shown(path))]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Why.
        reason: ImageError,
    },
    /// An archive ADD cannot extract.
    #[error("failed to extract `{}`: {reason}", Shown(path))]
    Extract {
        /// The archive.
        path: PathBuf,
        /// Why.
        reason: UnpackError,
    },
}

impl Tree<'_> {
    /// The host path of `parts` (already resolved), if the entry exists.
    fn host(&self, parts: &[OsString]) -> Option<PathBuf> {
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
    fn excluded(&self, parts: &[OsString]) -> bool {
        match self {
            Tree::Context(context) => {
                !parts.is_empty() && context.ignore.excluded_bytes(&joined(parts))
            }
            Tree::Layers(_) => false,
        }
    }

    /// Whether `.dockerignore` hides `parts` entirely: excluded, and for a
    /// directory, nothing below it let back in by an exception.
    fn hidden(&self, parts: &[OsString]) -> bool {
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
    fn children(&self, parts: &[OsString]) -> Result<Vec<OsString>, CopyError> {
        // Byte order (an `OsString` sorts by its bytes): names that are not
        // UTF-8 are names like any other.
        let mut names = std::collections::BTreeSet::new();
        let read = |dir: &Path,
                    names: &mut std::collections::BTreeSet<OsString>|
         -> Result<(), CopyError> {
            let entries = std::fs::read_dir(dir).map_err(io("read", dir))?;
            for entry in entries {
                let entry = entry.map_err(io("read", dir))?;
                names.insert(entry.file_name());
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
        parts: &[OsString],
        follow_last: bool,
        shown: &str,
    ) -> Result<Option<Vec<OsString>>, CopyError> {
        let mut pending: std::collections::VecDeque<OsString> = parts.iter().cloned().collect();
        let mut resolved: Vec<OsString> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            let mut candidate = resolved.clone();
            candidate.push(part.clone());
            let Some(host) = self.host(&candidate) else {
                return Ok(None);
            };
            let meta = std::fs::symlink_metadata(&host).map_err(io("inspect", &host))?;
            let last = pending.is_empty();
            if !meta.file_type().is_symlink() || (last && !follow_last) {
                resolved = candidate;
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINKS {
                return Err(CopyError::SymlinkLoop {
                    shown: shown.to_owned(),
                });
            }
            let target = std::fs::read_link(&host).map_err(io("read the link", &host))?;
            let leaves = || CopyError::LeavesContext {
                shown: shown.to_owned(),
                link: escape(&joined(&candidate)).into_owned(),
                target: escape_os(target.as_os_str()).into_owned(),
            };
            if target.is_absolute() && self.is_context() {
                return Err(leaves());
            }
            let (base, climbed) = link_target(&resolved, &target);
            if climbed && self.is_context() {
                return Err(leaves());
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

/// Where a symlink in directory `dir` (its parts below the root) pointing
/// at `target` leads, as parts below the root: an absolute target from the
/// root, `..` never above it. And whether a `..` tried to go above it
/// (refused by the build context, clamped in an image, as in a container).
fn link_target(dir: &[OsString], target: &Path) -> (Vec<OsString>, bool) {
    let mut parts = if target.is_absolute() {
        Vec::new()
    } else {
        dir.to_vec()
    };
    let mut climbed = false;
    for component in target.as_os_str().as_bytes().split(|byte| *byte == b'/') {
        match component {
            b"" | b"." => {}
            b".." => climbed |= parts.pop().is_none(),
            other => parts.push(OsStr::from_bytes(other).to_owned()),
        }
    }
    (parts, climbed)
}

/// `parts` joined by `/`, as bytes.
fn joined(parts: &[OsString]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// One path element pattern as a regex (`*` and `?` within the element).
fn element_regex(pattern: &str) -> Result<Regex, CopyError> {
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
    Regex::new(&out).map_err(|source| CopyError::Pattern {
        pattern: pattern.to_owned(),
        source,
    })
}

/// What `.dockerignore` hides below `dir` (a directory of the context,
/// resolved inside it): paths relative to `dir`, each hidden whole. A bind
/// mount of the context shows none of them, as BuildKit's does (it mounts
/// the context it was sent, which never held them).
pub(crate) fn ignored_below(context: &BuildContext, dir: &Path) -> Result<Vec<PathBuf>, CopyError> {
    let mut hidden = Vec::new();
    if context.ignore.is_empty() {
        return Ok(hidden);
    }
    let root = std::fs::canonicalize(&context.root).map_err(io("open", &context.root))?;
    let below = dir.strip_prefix(&root).unwrap_or(Path::new(""));
    let parts: Vec<OsString> = below.iter().map(ToOwned::to_owned).collect();
    let tree = Tree::Context(context);
    if tree.hidden(&parts) {
        return Err(CopyError::Excluded(below.to_owned()));
    }
    let mut stack = vec![parts];
    while let Some(parts) = stack.pop() {
        for name in tree.children(&parts)? {
            let mut child = parts.clone();
            child.push(name);
            let is_dir = tree
                .host(&child)
                .and_then(|host| std::fs::symlink_metadata(host).ok())
                .is_some_and(|meta| meta.is_dir());
            if tree.hidden(&child) {
                hidden.push(child[below.iter().count()..].iter().collect());
            } else if is_dir {
                stack.push(child);
            }
        }
    }
    hidden.sort();
    Ok(hidden)
}

/// One entry a source names.
struct Match {
    /// Its path as the source names it (a glob expanded): what the copy
    /// is named after, as in BuildKit (`COPY link /` makes `/link`, with
    /// the content of what `link` points at).
    named: Vec<OsString>,
    /// Its path with every symlink resolved inside the tree: what is read.
    resolved: Vec<OsString>,
}

/// Every entry of `tree` that `source` names (globs expanded), resolved.
/// With `double_star` (`--parents`, whose sources BuildKit matches as
/// include patterns), an element `**` stands for any number of
/// directories, none included.
fn matches(tree: &Tree<'_>, source: &str, double_star: bool) -> Result<Vec<Match>, CopyError> {
    let cleaned = super::context::clean(source.trim_start_matches('/'));
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(CopyError::OutsideContext(source.to_owned()));
    }
    let elements: Vec<String> = if cleaned == "." {
        Vec::new()
    } else {
        cleaned.split('/').map(str::to_owned).collect()
    };
    let mut found: Vec<Vec<OsString>> = vec![Vec::new()];
    for element in &elements {
        let mut next = Vec::new();
        for prefix in &found {
            if double_star && element == "**" {
                let Some(dir) = tree.resolve(prefix, true, source)? else {
                    continue;
                };
                // Real directories only: a symlink below is matched, never
                // walked into (no loops, nothing reached twice).
                let mut stack: Vec<(Vec<OsString>, Vec<OsString>)> = vec![(prefix.clone(), dir)];
                while let Some((named, real)) = stack.pop() {
                    let is_dir = tree
                        .host(&real)
                        .and_then(|host| std::fs::symlink_metadata(host).ok())
                        .is_some_and(|meta| meta.is_dir());
                    if is_dir {
                        for name in tree.children(&real)? {
                            let mut child_named = named.clone();
                            child_named.push(name.clone());
                            let mut child_real = real.clone();
                            child_real.push(name);
                            stack.push((child_named, child_real));
                        }
                    }
                    next.push(named);
                }
            } else if has_glob(element) {
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
                    if regex.is_match(&match_form(name.as_bytes())) {
                        let mut path = prefix.clone();
                        path.push(name);
                        next.push(path);
                    }
                }
            } else {
                let mut path = prefix.clone();
                path.push(OsString::from(element));
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
            resolved.push(Match {
                named: path,
                resolved: canonical,
            });
        }
    }
    Ok(resolved)
}

/// Read the file at `relative` in the merged view of `lowers` (top
/// first), symlinks followed inside that view: a regular file of at most
/// `limit` bytes, opened without following anything more.
pub(crate) fn read_layered(
    lowers: &[PathBuf],
    relative: &Path,
    limit: u64,
) -> Result<Option<Vec<u8>>, crate::error::PathError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tree = Tree::Layers(lowers.to_vec());
    let parts: Vec<OsString> = relative
        .iter()
        .filter(|part| *part != "/")
        .map(ToOwned::to_owned)
        .collect();
    let shown = escape_os(relative.as_os_str()).into_owned();
    let unresolved = |error: CopyError| PathError {
        operation: "resolve",
        path: relative.to_owned(),
        source: std::io::Error::other(error),
    };
    let Some(resolved) = tree.resolve(&parts, true, &shown).map_err(unresolved)? else {
        return Ok(None);
    };
    let Some(host) = tree.host(&resolved) else {
        return Ok(None);
    };
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&host)
        .map_err(PathError::of("open", relative))?;
    crate::confined::read_bounded(file, relative, limit).map(Some)
}

/// The image's /etc/passwd and /etc/group, for `--chown` and WORKDIR's
/// owner: read through the layers, bounded.
pub(crate) fn account_files(lowers: &[PathBuf]) -> Result<(String, String), UserError> {
    let read = |file: &'static str| {
        crate::exec::read_account_file(|path, limit| read_layered(lowers, path, limit), file)
    };
    Ok((read("etc/passwd")?, read("etc/group")?))
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

/// Where an entry comes from: this decides its owner and how its content
/// enters the cache key.
#[derive(Debug, Clone)]
enum Origin {
    /// The build context: owned by root, content hashed.
    Context,
    /// A stage or image: owners kept, covered by that input's key.
    Layers,
    /// A download (ADD of a URL): owned by root, mode 0600, its mtime the
    /// server's Last-Modified, content digest known.
    Download(Download),
    /// A git checkout: owned by root (or `--chown`), modes as git made
    /// them, covered by the commit in the key (see [`Plan::git`]).
    Git,
}

/// A file ADD fetched.
#[derive(Debug, Clone)]
pub(crate) struct Download {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Its sha256 (hex).
    pub(crate) digest: String,
    /// The server's Last-Modified.
    pub(crate) modified: Option<std::time::SystemTime>,
    /// The name it gets in a destination directory (bytes: `%E9` is 0xE9).
    pub(crate) name: OsString,
}

/// Fetches a URL for ADD (once per build), checking `--checksum`.
pub(crate) type Fetch<'f> = &'f dyn Fn(&str, Option<&str>) -> Result<Download, FetchError>;

/// Clones a git repository for ADD (once per build).
pub(crate) type Clone<'f> =
    &'f dyn Fn(&strata_frontend::graph::GitSource) -> Result<Checkout, GitError>;

/// What a plan's key and the ADD of a git repository need from the step:
/// how to fetch URLs and clone repositories.
pub(crate) struct Remote<'f> {
    pub(crate) fetch: Fetch<'f>,
    pub(crate) clone: Clone<'f>,
}

/// One entry a COPY writes: where it comes from and where it goes.
#[derive(Debug)]
struct Entry {
    /// Where it is read from.
    origin: Origin,
    /// Its host path (for an entry of the build context, only named in
    /// messages and the stat cache: it is reached through `parts`).
    host: PathBuf,
    /// Its path in the build context (empty for other entries), opened
    /// one directory at a time from the context's root (see [`Chain`]).
    parts: Vec<OsString>,
    /// Its path below the destination's root (for an archive ADD
    /// extracts: the directory it is extracted into).
    dest: Vec<OsString>,
    /// A tar archive that ADD extracts.
    extract: bool,
}

/// Whether the file at `path` is a tar archive (plain, gzip, bzip2, xz or
/// zstd), which ADD extracts.
fn is_tar_archive(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    // A regular file only: a fifo would block the build forever.
    if !std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file()) {
        return false;
    }
    let Ok(file) = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let Ok(reader) = image::decompressed(std::io::BufReader::new(file)) else {
        return false;
    };
    let mut head = Vec::with_capacity(512);
    if std::io::Read::read_to_end(&mut std::io::Read::take(reader, 512), &mut head).is_err() {
        return false;
    }
    head.len() == 512 && &head[257..262] == b"ustar"
}

/// A source entry COPY does not copy: a device or a fifo (as BuildKit),
/// which the build warns of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Its path in its tree (escaped, see [`crate::name`]).
    pub(crate) path: String,
    /// What it is: `a fifo`, `a device`.
    pub(crate) what: &'static str,
}

/// Everything one COPY or ADD will write, found before anything is
/// written: its cache key is computed from this, and a missing source fails
/// the step with nothing done.
pub(crate) struct Plan<'a> {
    copy: &'a FileCopy,
    /// Whether the destination is a directory.
    into_dir: bool,
    /// Directories to make even if nothing goes in them.
    make: Vec<Vec<OsString>>,
    dest: Vec<OsString>,
    /// In copy order: a directory before its content.
    entries: Vec<Entry>,
    /// Entries that are not copied (devices, fifos), for a warning.
    pub(crate) skipped: Vec<Skipped>,
    /// Several sources went to a destination that is not a directory, each
    /// replacing the one before (BuildKit's way), for a warning.
    pub(crate) replaced: bool,
    inline: Vec<(Vec<OsString>, &'a strata_frontend::graph::InlineFile)>,
    chown: Option<(u32, u32)>,
    /// The destination's layers (none with `--link`).
    lowers: Vec<PathBuf>,
    /// Each git repository copied: where, and the commit (the key's
    /// part for its entries).
    git: Vec<(Vec<OsString>, String)>,
}

impl Plan<'_> {
    /// Whether the plan copies one symbolic link and nothing else (a
    /// source that is a link, which a copy keeps and a mount follows).
    pub(crate) fn is_one_symlink(&self) -> bool {
        match self.entries.as_slice() {
            [entry] => std::fs::symlink_metadata(&entry.host)
                .is_ok_and(|meta| meta.file_type().is_symlink()),
            _ => false,
        }
    }
}

/// A file operation on `path` that failed, as a [`CopyError`].
fn io<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CopyError + 'a {
    PathError::at(operation, path)
}

/// Lists what one matched source copies.
struct Lister<'t, 'c> {
    tree: &'t Tree<'c>,
    exclude: &'t Ignore,
    entries: &'t mut Vec<Entry>,
    skipped: &'t mut Vec<Skipped>,
    /// For the build context: the directories on the way to the entry
    /// being listed, open (each listed and inspected through its parent's
    /// descriptor, never resolved from the root again).
    context: Option<(PathBuf, Chain)>,
    /// The tree is a git checkout (its entries are [`Origin::Git`]).
    git: bool,
}

/// An entry still to be listed: its path in the tree, its path below the
/// matched source (which `--exclude` patterns see) and its destination;
/// what `.dockerignore` and `--exclude` said of them, for its children
/// (`None`: not known yet).
struct Pending {
    parts: Vec<OsString>,
    relative: Vec<OsString>,
    dest: Vec<OsString>,
    ignored: Option<Matched>,
    excluded: Option<Matched>,
}

impl Pending {
    fn new(parts: Vec<OsString>, relative: Vec<OsString>, dest: Vec<OsString>) -> Pending {
        Pending {
            parts,
            relative,
            dest,
            ignored: None,
            excluded: None,
        }
    }
}

impl<'t, 'c> Lister<'t, 'c> {
    fn new(
        tree: &'t Tree<'c>,
        exclude: &'t Ignore,
        entries: &'t mut Vec<Entry>,
        skipped: &'t mut Vec<Skipped>,
    ) -> Result<Lister<'t, 'c>, CopyError> {
        let context = match tree {
            Tree::Context(context) => Some((
                context.root.clone(),
                Chain::new(Root::open(&context.root)?.top()?),
            )),
            Tree::Layers(_) => None,
        };
        Ok(Lister {
            tree,
            exclude,
            entries,
            skipped,
            context,
            git: false,
        })
    }

    /// Where `parts` can be inspected (in the context, through its
    /// parent's descriptor), if it exists.
    fn locate(&mut self, parts: &[OsString]) -> Result<Option<PathBuf>, CopyError> {
        let Some((_, chain)) = &mut self.context else {
            return Ok(self.tree.host(parts));
        };
        let Some((dir, name)) = chain.parent(parts)? else {
            return Ok(None);
        };
        let at = dir.at(name)?;
        Ok(std::fs::symlink_metadata(&at).is_ok().then_some(at))
    }

    /// The names in directory `parts`, sorted by their bytes.
    fn names(&mut self, parts: &[OsString]) -> Result<Vec<OsString>, CopyError> {
        let Some((_, chain)) = &mut self.context else {
            return self.tree.children(parts);
        };
        match chain.dir(parts)? {
            Some(dir) => Ok(dir.list()?),
            None => Err(CopyError::Vanished(escape(&joined(parts)).into_owned())),
        }
    }

    /// Add `first` and, for a directory, everything in it that is not
    /// excluded, depth first, children in byte order. An explicit stack:
    /// a deep tree cannot exhaust the call stack.
    fn entry(&mut self, first: Pending) -> Result<(), CopyError> {
        let mut stack = vec![first];
        while let Some(Pending {
            parts,
            relative,
            dest,
            ignored,
            excluded,
        }) = stack.pop()
        {
            // Listed a moment ago: gone now is an error, never a file left
            // out without a word.
            let vanished = || CopyError::Vanished(escape(&joined(&parts)).into_owned());
            let at = self.locate(&parts)?.ok_or_else(vanished)?;
            let kind = std::fs::symlink_metadata(&at)
                .map_err(|_| vanished())?
                .file_type();
            let is_dir = kind.is_dir();
            use std::os::unix::fs::FileTypeExt;
            if !(is_dir || kind.is_file() || kind.is_symlink() || kind.is_socket()) {
                // Devices and fifos are not copied, as in BuildKit (the
                // writer passes them by); the build says which. They stay
                // in the plan, whose key has always named them. A socket
                // becomes an empty file (see `Writer::write`).
                let what = if kind.is_fifo() { "a fifo" } else { "a device" };
                self.skipped.push(Skipped {
                    path: escape(&joined(&parts)).into_owned(),
                    what,
                });
            }
            let (origin, host, entry_parts) = match &self.context {
                Some((root, _)) => (
                    Origin::Context,
                    root.join(parts.iter().collect::<PathBuf>()),
                    parts.clone(),
                ),
                None if self.git => (Origin::Git, at, Vec::new()),
                None => (Origin::Layers, at, Vec::new()),
            };
            self.entries.push(Entry {
                origin,
                host,
                parts: entry_parts,
                dest: dest.clone(),
                extract: false,
            });
            if is_dir {
                let states = (ignored.as_ref(), excluded.as_ref());
                let children = self.children(&parts, &relative, &dest, states)?;
                stack.extend(children.into_iter().rev());
            }
        }
        Ok(())
    }

    /// What directory `parts` holds that is not excluded, going into
    /// `dest`, in byte order. `states` are what `.dockerignore` and
    /// `--exclude` said of `parts` and `relative` (`None`: found here).
    fn children(
        &mut self,
        parts: &[OsString],
        relative: &[OsString],
        dest: &[OsString],
        states: (Option<&Matched>, Option<&Matched>),
    ) -> Result<Vec<Pending>, CopyError> {
        let ignore = match self.tree {
            Tree::Context(context) if !context.ignore.is_empty() => Some(&context.ignore),
            _ => None,
        };
        // What was said of the directory itself; at the top of the walk,
        // found with all its parents, once.
        let said = |rules: &Ignore, path: &[OsString], known: Option<&Matched>| match known {
            Some(known) => Some(known.clone()),
            None if path.is_empty() => None,
            None => Some(rules.matched(&match_form(&joined(path)), None)),
        };
        let parent_ignored = ignore.and_then(|rules| said(rules, parts, states.0));
        let parent_excluded = if self.exclude.is_empty() {
            None
        } else {
            said(self.exclude, relative, states.1)
        };
        let ignored_of = |child: &[OsString]| {
            ignore.map(|rules| rules.matched(&match_form(&joined(child)), parent_ignored.as_ref()))
        };
        let excluded_of = |child: &[OsString]| {
            (!self.exclude.is_empty()).then(|| {
                self.exclude
                    .matched(&match_form(&joined(child)), parent_excluded.as_ref())
            })
        };
        let mut pending = Vec::new();
        for name in self.names(parts)? {
            let mut child = parts.to_vec();
            child.push(name.clone());
            let mut child_relative = relative.to_vec();
            child_relative.push(name.clone());
            let ignored = ignored_of(&child);
            let excluded = excluded_of(&child_relative);
            // Hidden: excluded, and (with exceptions) nothing below let
            // back in, which only the slow look below can tell.
            let hidden = match (ignore, &ignored) {
                (Some(rules), Some(state)) => {
                    rules.decides(state) && (!rules.has_exceptions() || self.tree.hidden(&child))
                }
                _ => false,
            };
            let skip = hidden
                || excluded
                    .as_ref()
                    .is_some_and(|state| self.exclude.decides(state));
            if !skip {
                let mut child_dest = dest.to_vec();
                child_dest.push(name);
                pending.push(Pending {
                    parts: child,
                    relative: child_relative,
                    dest: child_dest,
                    ignored,
                    excluded,
                });
            }
        }
        Ok(pending)
    }

    /// Everything directory `parts` holds, going into `dest`.
    fn content(&mut self, parts: &[OsString], dest: &[OsString]) -> Result<(), CopyError> {
        for child in self.children(parts, &[], dest, (None, None))? {
            self.entry(child)?;
        }
        Ok(())
    }
}

/// Plan one COPY or ADD.
pub(crate) fn plan<'a>(
    copy: &'a FileCopy,
    trees: &[Tree<'_>],
    destination_lowers: &[PathBuf],
    remote: &Remote<'_>,
) -> Result<Plan<'a>, CopyError> {
    // --link: the layer does not depend on what is below it.
    let lowers: Vec<PathBuf> = if copy.link {
        Vec::new()
    } else {
        destination_lowers.to_vec()
    };
    let chown = match &copy.chown {
        Some(spec) => {
            let chown = |source| CopyError::Chown {
                spec: spec.clone(),
                source,
            };
            let (passwd, group) = account_files(destination_lowers).map_err(chown)?;
            let user = resolve_user(&passwd, &group, spec).map_err(chown)?;
            Some((user.uid, user.gid))
        }
        None => None,
    };
    let exclude = Ignore::parse(&copy.exclude.join("\n")).map_err(CopyError::Exclude)?;
    let mut matched: Vec<(usize, Match, PathBuf, bool, usize)> = Vec::new();
    let mut inline = Vec::new();
    let mut downloads: Vec<Download> = Vec::new();
    let mut checkouts: Vec<Checkout> = Vec::new();
    for source in &copy.sources {
        match source {
            CopySource::Path { input, path } => {
                let tree = trees.get(*input).ok_or_else(|| CopyError::NoInput {
                    input: *input,
                    path: path.clone(),
                })?;
                // `--parents` keeps the path below the pivot, the first
                // `/./` (all of it when there is none), as BuildKit does.
                let keep_from = match path.split_once("/./") {
                    Some((base, _)) if copy.parents => {
                        super::context::clean(base.trim_start_matches('/'))
                            .split('/')
                            .filter(|part| !part.is_empty() && *part != ".")
                            .count()
                    }
                    _ => 0,
                };
                let found = matches(tree, path, copy.parents)?;
                // A pattern that matches nothing copies nothing, as in
                // BuildKit (`COPY package.json package-lock.json* ./`); a
                // plain path must be there.
                if found.is_empty() && !has_glob(path) {
                    return Err(if tree.is_context() {
                        CopyError::NotInContext(path.clone())
                    } else {
                        CopyError::NotFound(path.clone())
                    });
                }
                for found in found {
                    let host = tree
                        .host(&found.resolved)
                        .ok_or_else(|| CopyError::Vanished(path.clone()))?;
                    let is_dir = std::fs::metadata(&host).is_ok_and(|meta| meta.is_dir());
                    matched.push((*input, found, host, is_dir, keep_from));
                }
            }
            CopySource::Inline(file) => inline.push(file),
            CopySource::Url { url } => {
                downloads.push((remote.fetch)(url, copy.checksum.as_deref())?);
            }
            CopySource::Git(source) => checkouts.push((remote.clone)(source)?),
        }
    }
    let dest: Vec<OsString> = copy
        .destination
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(OsString::from)
        .collect();
    let exists_as_dir = dest.is_empty()
        || copy_lookup(&lowers, &dest.iter().collect::<PathBuf>())
            .is_some_and(|found| found.is_dir());
    let into_dir = copy.destination.ends_with('/') || exists_as_dir;
    // Several sources and a destination that is not a directory: BuildKit
    // copies each in turn to the destination, so a file replaces the one
    // before, and once a directory is there the files after it go into it.
    // strata does the same and says so.
    let mut dest_is_dir = into_dir;
    // How many files go to the destination itself: more than one replace
    // each other (archives extracted into it and directories merged with
    // it do not).
    let mut to_dest = 0;
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut make = Vec::new();
    for (input, found, host, is_dir, keep_from) in matched {
        let tree = &trees[input];
        let parts = found.resolved;
        let name = found.named.last().cloned().unwrap_or_default();
        let mut target = dest.clone();
        if copy.parents {
            target.extend(found.named.iter().skip(keep_from).cloned());
        } else if !is_dir && dest_is_dir {
            target.push(name.clone());
        }
        dest_is_dir |= is_dir;
        let mut lister = Lister::new(tree, &exclude, &mut entries, &mut skipped)?;
        if is_dir {
            // A directory's content goes into the destination, made even
            // when the directory is empty.
            make.push(target.clone());
            lister.content(&parts, &target)?;
        } else if copy.add && copy.unpack != Some(false) && is_tar_archive(&host) {
            // ADD extracts a local tar archive into the destination.
            lister.entries.push(Entry {
                origin: if tree.is_context() {
                    Origin::Context
                } else {
                    Origin::Layers
                },
                host,
                parts: Vec::new(),
                dest: if copy.parents { target } else { dest.clone() },
                extract: true,
            });
        } else if !exclude.excluded_bytes(name.as_bytes()) {
            to_dest += usize::from(target == dest);
            lister.entry(Pending::new(parts, vec![name], target))?;
        }
    }
    let mut git = Vec::new();
    for checkout in checkouts {
        // The repository's tree goes into the destination, made even when
        // it is empty (BuildKit copies the git source's `/` there). It is
        // read as a stage is: symlinks are copied as symlinks, never
        // followed out of it.
        let tree = Tree::Layers(vec![checkout.root.clone()]);
        let mut lister = Lister::new(&tree, &exclude, &mut entries, &mut skipped)?;
        lister.git = true;
        make.push(dest.clone());
        lister.content(&[], &dest)?;
        git.push((dest.clone(), checkout.commit));
    }
    if !into_dir {
        to_dest += inline.len()
            + downloads
                .iter()
                .filter(|download| copy.unpack != Some(true) || !is_tar_archive(&download.path))
                .count();
    }
    for download in downloads {
        // A download is extracted only when asked (`--unpack=true`), and
        // only if it is an archive (BuildKit's AttemptUnpack).
        let extract = copy.unpack == Some(true) && is_tar_archive(&download.path);
        let mut target = dest.clone();
        if into_dir && !extract {
            target.push(download.name.clone());
        }
        entries.push(Entry {
            host: download.path.clone(),
            parts: Vec::new(),
            dest: target,
            extract,
            origin: Origin::Download(download),
        });
    }
    let inline = inline
        .into_iter()
        .map(|file| {
            let mut target = dest.clone();
            if into_dir {
                target.push(OsString::from(&file.path));
            }
            (target, file)
        })
        .collect();
    Ok(Plan {
        copy,
        into_dir,
        make,
        dest,
        entries,
        skipped,
        replaced: to_dest > 1,
        inline,
        chown,
        lowers,
        git,
    })
}

/// Where the entries of a plan are read: an entry of the build context
/// through its parent directory's descriptor, the directories on the way
/// opened once each as the entries come depth first ([`Chain`]); any other
/// entry at its host path.
struct Sources {
    root: PathBuf,
    chain: Option<Chain>,
}

impl Sources {
    fn new(root: &Path) -> Sources {
        Sources {
            root: root.to_owned(),
            chain: None,
        }
    }

    /// A path for `lstat`, `readlink`, `l*xattr` and `open(O_NOFOLLOW)`
    /// of `entry` (see [`Dir::at`]).
    fn at(&mut self, entry: &Entry) -> Result<PathBuf, CopyError> {
        if !matches!(entry.origin, Origin::Context) || entry.parts.is_empty() {
            return Ok(entry.host.clone());
        }
        let chain = match &mut self.chain {
            Some(chain) => chain,
            None => self
                .chain
                .insert(Chain::new(Root::open(&self.root)?.top()?)),
        };
        match chain.parent(&entry.parts)? {
            Some((dir, name)) => Ok(dir.at(name)?),
            None => Err(CopyError::Vanished(
                escape(&joined(&entry.parts)).into_owned(),
            )),
        }
    }
}

/// What a [`Plan`] reads, for its cache key: each entry from the build
/// context by destination path, type, mode, link target, xattrs and
/// content digest (`hash` gives it, from the stat cache when it can);
/// never owners (they become root or `--chown`) nor mtimes. Entries from a
/// stage or image are covered by that input's key.
pub(crate) fn content_digest(
    plan: &Plan<'_>,
    context_root: &Path,
    hash: &mut dyn FnMut(&Path, &Path, &std::fs::Metadata) -> Result<String, PathError>,
) -> Result<(String, super::cache::Files), CopyError> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut files = super::cache::Files::new();
    let mut sources = Sources::new(context_root);
    for (dest, commit) in &plan.git {
        // The commit names the tree (subdirectory and `.git` or not are in
        // the definition).
        hasher.update(joined(dest));
        hasher.update(format!("\0git {commit}\n"));
        files.insert(
            format!("git {commit}"),
            super::cache::FileSummary {
                kind: "git".to_owned(),
                digest: commit.clone(),
                mode: 0,
            },
        );
    }
    for entry in &plan.entries {
        match &entry.origin {
            Origin::Layers | Origin::Git => continue,
            Origin::Download(download) => {
                hasher.update(joined(&entry.dest));
                hasher.update(format!("\0url {}\n", download.digest));
                files.insert(
                    escape_os(&download.name).into_owned(),
                    super::cache::FileSummary {
                        kind: "url".to_owned(),
                        digest: download.digest.clone(),
                        mode: 0o600,
                    },
                );
                continue;
            }
            Origin::Context => {}
        }
        let at = sources.at(entry)?;
        let meta = std::fs::symlink_metadata(&at).map_err(io("inspect", &entry.host))?;
        let described = describe(&entry.host, &at, &meta, hash)?;
        let (kind_name, detail, what, xattrs) = (
            described.kind,
            described.detail,
            described.what,
            described.xattrs,
        );
        // What the cache report names: the path in the context, escaped.
        let shown =
            escape_path(entry.host.strip_prefix(context_root).unwrap_or(&entry.host)).into_owned();
        files.insert(
            shown,
            super::cache::FileSummary {
                kind: kind_name.to_owned(),
                digest: detail,
                mode: meta.mode() & 0o7777,
            },
        );
        hasher.update(joined(&entry.dest));
        hasher.update(b"\0");
        hasher.update(&what);
        hasher.update(format!(
            "\0{:o}\0{}\n",
            meta.mode() & 0o7777,
            xattrs_text(&xattrs)
        ));
    }
    Ok((format!("{:x}", hasher.finalize()), files))
}

/// What a key says of one entry: its kind, what identifies its content
/// (the link target, the file's digest), as text for the cache report and
/// as bytes for the digest, and its xattrs.
struct Described {
    kind: &'static str,
    detail: String,
    /// The kind, then a space and the detail's bytes when there is one.
    what: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// [`Described`] of the entry `host` (its name), inspected at `at`, whose
/// metadata is `meta`; `hash` gives a regular file's digest.
fn describe(
    host: &Path,
    at: &Path,
    meta: &std::fs::Metadata,
    hash: &mut dyn FnMut(&Path, &Path, &std::fs::Metadata) -> Result<String, PathError>,
) -> Result<Described, CopyError> {
    let kind = meta.file_type();
    // The kind and what identifies its content, kept apart for the cache
    // report (as text) and joined for the digest (as bytes: a link target
    // is any bytes; UTF-8 ones are hashed as they always were).
    let (kind_name, detail, detail_bytes) = if kind.is_dir() {
        ("dir", String::new(), Vec::new())
    } else if kind.is_symlink() {
        let link = std::fs::read_link(at).map_err(io("read the link", host))?;
        let bytes = link.into_os_string().into_vec();
        ("symlink", escape(&bytes).into_owned(), bytes)
    } else if kind.is_file() {
        let digest = hash(host, at, meta)?;
        let bytes = digest.clone().into_bytes();
        ("file", digest, bytes)
    } else {
        ("other", String::new(), Vec::new())
    };
    let mut what = kind_name.as_bytes().to_vec();
    if !detail_bytes.is_empty() {
        what.push(b' ');
        what.extend_from_slice(&detail_bytes);
    }
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if !kind.is_symlink()
        && let Ok(names) = xattr::list(at)
    {
        for name in names {
            if let Ok(Some(value)) = xattr::get(at, &name) {
                xattrs.push((name.into_vec(), value));
            }
        }
        xattrs.sort();
    }
    Ok(Described {
        kind: kind_name,
        detail,
        what,
        xattrs,
    })
}

/// What a [`Plan`] reads from a stage or an image, for a key by content
/// instead of by the steps that made it (BuildKit's content checksums of
/// a copy's sources and of a mount's selector): each such entry by
/// destination path, type, mode, owner, link target, xattrs and content
/// digest; never mtimes, as BuildKit's checksums. `hash` gives a regular
/// file's digest.
pub(crate) fn layers_digest(
    plan: &Plan<'_>,
    hash: &mut dyn FnMut(&Path, &Path, &std::fs::Metadata) -> Result<String, PathError>,
) -> Result<String, CopyError> {
    use sha2::Digest as _;
    use std::os::unix::fs::MetadataExt;
    let mut hasher = sha2::Sha256::new();
    for entry in plan
        .entries
        .iter()
        .filter(|entry| matches!(entry.origin, Origin::Layers))
    {
        let meta = std::fs::symlink_metadata(&entry.host).map_err(io("inspect", &entry.host))?;
        let described = describe(&entry.host, &entry.host, &meta, hash)?;
        hasher.update(joined(&entry.dest));
        hasher.update(b"\0");
        hasher.update(&described.what);
        hasher.update(format!(
            "\0{:o}\0{}:{}\0{}\n",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid(),
            xattrs_text(&described.xattrs)
        ));
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The xattrs of a context entry as its key has them: the `Debug` text of
/// their (name, value) list, a name as a quoted string when it is UTF-8
/// (as it always was) and as its list of bytes when not.
fn xattrs_text(xattrs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let items: Vec<String> = xattrs
        .iter()
        .map(|(name, value)| match std::str::from_utf8(name) {
            Ok(name) => format!("({name:?}, {value:?})"),
            Err(_) => format!("({name:?}, {value:?})"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Access and modification times, to the nanosecond.
type Times = ((i64, i64), (i64, i64));

fn times_of(meta: &std::fs::Metadata) -> Times {
    (
        (meta.atime(), meta.atime_nsec()),
        (meta.mtime(), meta.mtime_nsec()),
    )
}

fn unix_time(time: std::time::SystemTime) -> (i64, i64) {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => (since.as_secs() as i64, i64::from(since.subsec_nanos())),
        Err(_) => (0, 0),
    }
}

/// The xattrs of a source (overlayfs's own left out), for its copy.
fn source_xattrs(host: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let Ok(names) = xattr::list(host) else {
        return Vec::new();
    };
    names
        .filter(|key| !crate::layer::is_overlay_xattr(key.as_encoded_bytes()))
        .filter_map(|key| match xattr::get(host, &key) {
            Ok(Some(value)) => Some((key, value)),
            _ => None,
        })
        .collect()
}

/// Writes a plan into a staging directory. Staging is an untrusted root:
/// a source may have put a symlink anywhere in it (pointing at a host path
/// even), so every write goes through [`crate::confined`] and acts on the
/// entry itself, never on what a symlink there points at.
struct Writer<'a> {
    lowers: &'a [PathBuf],
    chown: Option<(u32, u32)>,
    chmod: Option<&'a str>,
    dir_times: Vec<(Vec<OsString>, Times)>,
    /// The directories the last entry went in, kept open: entries come
    /// depth first, so each directory is opened once (see [`Chain`]).
    chain: Chain,
    /// Where the entries are read.
    sources: Sources,
    /// Where archives are extracted before they are moved into staging
    /// (see [`Writer::extract`]); made only for a copy that extracts one.
    scratch: Option<Root>,
}

impl Writer<'_> {
    /// Make `parts` and its parents in staging: existing ones as the
    /// destination has them, new ones with [`Writer::new_dir_mode`] (owned
    /// by `--chown`'s user). A symlink of the destination's layers on the
    /// way is followed inside the root, as the container will see it (an
    /// absolute target from the root, `..` never above it: BuildKit
    /// resolves a destination so), so that `COPY f /var/run/` on an image
    /// where `/var/run -> /run` writes `/run/f`. Anything else in the way
    /// (a file, a symlink this copy wrote) is replaced, never followed.
    /// The directory is [`Chain::last`] after; the path made, once
    /// symlinks are followed, is returned.
    fn ensure_dir(&mut self, parts: &[OsString]) -> Result<Vec<OsString>, CopyError> {
        let mut parts = parts.to_vec();
        let mut hops = 0;
        'resolve: loop {
            let shared = self.chain.keep(&parts);
            for count in shared + 1..=parts.len() {
                let relative: PathBuf = parts[..count].iter().collect();
                let name = std::ffi::OsStr::new(&parts[count - 1]);
                let current = self.chain.last();
                match current.stat(name)? {
                    Some(stat) if stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR => {
                        let dir = current.open_dir(name)?;
                        self.chain.push(name, dir);
                        continue;
                    }
                    Some(_) => current.remove(name)?,
                    None => {}
                }
                match copy_lookup(self.lowers, &relative) {
                    Some(existing) => {
                        let meta = std::fs::symlink_metadata(&existing)
                            .map_err(io("inspect", &existing))?;
                        if meta.file_type().is_symlink() {
                            hops += 1;
                            if hops > MAX_SYMLINKS {
                                return Err(CopyError::SymlinkLoop {
                                    shown: escape_path(&relative).into_owned(),
                                });
                            }
                            let target = std::fs::read_link(&existing)
                                .map_err(io("read the link", &existing))?;
                            let (mut next, _) = link_target(&parts[..count - 1], &target);
                            next.extend_from_slice(&parts[count..]);
                            parts = next;
                            continue 'resolve;
                        }
                        if !meta.is_dir() {
                            return Err(CopyError::NotADirectory(relative));
                        }
                        current.mkdir(name, 0o700)?;
                        let _ = current.chown(name, meta.uid(), meta.gid());
                        current.chmod(name, meta.mode() & 0o7777)?;
                        self.dir_times
                            .push((parts[..count].to_vec(), times_of(&meta)));
                    }
                    None => {
                        current.mkdir(name, 0o700)?;
                        current.chmod(name, self.new_dir_mode())?;
                        let (uid, gid) = self.chown.unwrap_or((0, 0));
                        current
                            .chown(name, uid, gid)
                            .map_err(|source| CopyError::SetOwner {
                                path: escape_path(&relative).into_owned(),
                                source,
                            })?;
                    }
                }
                let dir = self.chain.last().open_dir(name)?;
                self.chain.push(name, dir);
            }
            return Ok(parts);
        }
    }

    /// Extract the archive `host` into `dest`: into a scratch directory
    /// first, then moved into staging entry by entry, each directory on
    /// the way found as [`Writer::ensure_dir`] finds it. So an archive's
    /// `var/run/x` goes where the image's `var/run` symlink points, as
    /// BuildKit extracts on the image's own filesystem, instead of a
    /// directory that would hide the link.
    fn extract(&mut self, host: &Path, dest: &[OsString]) -> Result<(), CopyError> {
        let scratch = self.scratch.as_ref().ok_or(CopyError::NoName)?;
        let file = std::fs::File::open(host).map_err(io("open", host))?;
        let reader = image::decompressed(std::io::BufReader::new(file)).map_err(|reason| {
            CopyError::Archive {
                path: host.to_path_buf(),
                reason,
            }
        })?;
        let top = scratch.top()?;
        for name in top.list()? {
            top.remove(&name)?;
        }
        crate::layer::unpack_into_as(reader, scratch, crate::layer::Whiteouts::Apply, self.chown)
            .map_err(|reason| CopyError::Extract {
            path: host.to_path_buf(),
            reason,
        })?;
        let dest = self.ensure_dir(dest)?;
        self.graft(&top, &dest)
    }

    /// Move what `from` holds into the staging directory `dest` (already
    /// resolved): files by rename (hardlinks stay one inode), directories
    /// merged with what is there, with the archive's mode, owner and time.
    fn graft(&mut self, from: &Dir, dest: &[OsString]) -> Result<(), CopyError> {
        for name in from.list()? {
            let Some(stat) = from.stat(&name)? else {
                continue;
            };
            let mut target = dest.to_vec();
            target.push(name.clone());
            if stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR {
                let resolved = self.ensure_dir(&target)?;
                self.graft(&from.open_dir(&name)?, &resolved)?;
                if let Some((dir, last)) = self.chain.parent(&resolved)? {
                    let _ = dir.chown(last, stat.st_uid, stat.st_gid);
                    dir.chmod(last, stat.st_mode & 0o7777)?;
                }
                self.dir_times.push((
                    resolved,
                    (
                        (stat.st_atime, stat.st_atime_nsec),
                        (stat.st_mtime, stat.st_mtime_nsec),
                    ),
                ));
            } else {
                self.ensure_dir(dest)?;
                let dir = self.chain.last();
                dir.remove(&name)?;
                from.rename_to(&name, dir, &name)?;
            }
        }
        Ok(())
    }

    /// The mode of a directory the copy makes: an octal `--chmod`'s, as
    /// BuildKit gives it (`COPY --chmod=770 f /new/f` makes `/new` 0770),
    /// otherwise 0755 (a symbolic `--chmod` too).
    fn new_dir_mode(&self) -> u32 {
        self.chmod
            .and_then(|spec| u32::from_str_radix(spec, 8).ok())
            .filter(|mode| *mode <= 0o7777)
            .unwrap_or(0o755)
    }

    /// The directory `dest` goes in, made, and its name there. Writing an
    /// entry removes at most that entry, never a directory above it, so
    /// the open ones stay the right ones.
    fn place(&mut self, dest: &[OsString]) -> Result<(&Dir, std::ffi::OsString), CopyError> {
        let Some((name, parent)) = dest.split_last() else {
            return Err(CopyError::NoName);
        };
        self.ensure_dir(parent)?;
        Ok((self.chain.last(), name.into()))
    }

    /// Write one planned entry (its parents made first).
    fn write(&mut self, entry: &Entry) -> Result<(), CopyError> {
        let from_context = !matches!(entry.origin, Origin::Layers);
        let host = &entry.host;
        let dest = &entry.dest;
        if entry.extract {
            // The archive may replace any directory below: keep none.
            return self.extract(host, dest);
        }
        let at = self.sources.at(entry)?;
        let meta = std::fs::symlink_metadata(&at).map_err(io("inspect", host))?;
        let kind = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        // A socket becomes an empty regular file with its mode, as in
        // BuildKit (a layer cannot hold a socket, and a COPY that drops
        // one would leave a path a program expects missing).
        let socket = kind.is_socket();
        if !(kind.is_dir() || kind.is_symlink() || kind.is_file() || socket) {
            // Devices and fifos are not copied, as BuildKit.
            return Ok(());
        }
        let (uid, gid) = match (self.chown, from_context) {
            (Some(owner), _) => owner,
            (None, true) => (0, 0),
            (None, false) => (meta.uid(), meta.gid()),
        };
        let mode = match entry.origin {
            // Downloads are private to root, as in BuildKit.
            Origin::Download(_) => 0o600,
            _ => meta.mode() & 0o7777,
        };
        let mode = match self.chmod {
            Some(spec) => apply_chmod(spec, mode, kind.is_dir()),
            None => mode,
        };
        let (accessed, mut modified) = times_of(&meta);
        if let Origin::Download(Download {
            modified: Some(time),
            ..
        }) = &entry.origin
        {
            modified = unix_time(*time);
        }
        let owner_error = |source| CopyError::GiveOwner {
            path: escape(&joined(dest)).into_owned(),
            uid,
            gid,
            source,
        };
        let (dir, name) = self.place(dest)?;
        let existing = dir.stat(&name)?;
        let existing_dir = existing
            .as_ref()
            .is_some_and(|stat| stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR);
        if existing.is_some() && !(kind.is_dir() && existing_dir) {
            dir.remove(&name)?;
        }
        if kind.is_dir() {
            if !existing_dir {
                dir.mkdir(&name, 0o700)?;
            }
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&at).map_err(io("read the link", host))?;
            dir.symlink(&name, &link)?;
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            let mut target = dir.create_file(&name, 0o600)?;
            if !socket {
                // The source was resolved to a file; `O_NOFOLLOW` keeps it
                // one.
                let mut source = std::fs::File::options()
                    .read(true)
                    .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
                    .open(&at)
                    .map_err(io("open", host))?;
                // A file with holes keeps them (only its data is written);
                // any other goes by `io::copy`, which is `copy_file_range`
                // from file to file: a reflink where the filesystem can.
                crate::layer::sparse::copy(&mut source, &mut target, meta.len())
                    .map_err(io("copy", host))?;
            }
            // The rest on the descriptor just written: one call each.
            let shown = dir.path(&name);
            std::os::unix::fs::fchown(&target, Some(uid), Some(gid)).map_err(owner_error)?;
            use std::os::unix::fs::PermissionsExt;
            target
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io("set the mode of", &shown))?;
            for (key, value) in source_xattrs(&at) {
                use xattr::FileExt;
                let _ = target.set_xattr(&key, &value);
            }
            let time = |(seconds, nanoseconds): (i64, i64)| {
                std::time::UNIX_EPOCH
                    + std::time::Duration::new(seconds.max(0) as u64, nanoseconds as u32)
            };
            target
                .set_times(
                    std::fs::FileTimes::new()
                        .set_accessed(time(accessed))
                        .set_modified(time(modified)),
                )
                .map_err(io("set the times of", &shown))?;
            return Ok(());
        }
        dir.chown(&name, uid, gid).map_err(owner_error)?;
        if kind.is_dir() {
            dir.chmod(&name, mode)?;
            for (key, value) in source_xattrs(&at) {
                let _ = dir.set_xattr(&name, &key, &value);
            }
            self.dir_times.push((dest.to_vec(), (accessed, modified)));
        }
        Ok(())
    }

    /// Write an inline (heredoc) file.
    fn write_inline(
        &mut self,
        dest: &[OsString],
        file: &strata_frontend::graph::InlineFile,
    ) -> Result<(), CopyError> {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt;
        let mode = match self.chmod {
            Some(spec) => apply_chmod(spec, file.mode, false),
            None => file.mode,
        };
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        let (dir, name) = self.place(dest)?;
        let shown = dir.path(&name);
        dir.remove(&name)?;
        let mut out = dir.create_file(&name, 0o600)?;
        out.write_all(file.content.as_bytes())
            .map_err(io("write", &shown))?;
        std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|source| {
            CopyError::SetOwner {
                path: escape(&joined(dest)).into_owned(),
                source,
            }
        })?;
        out.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io("set the mode of", &shown))
    }

    /// Directory times, last (deepest first), on whatever is a directory
    /// there now; never through a symlink.
    fn finish(&mut self) -> Result<(), CopyError> {
        for (relative, (accessed, modified)) in
            std::mem::take(&mut self.dir_times).into_iter().rev()
        {
            if let Some((dir, name)) = self.chain.parent(&relative)?
                && dir
                    .stat(name)?
                    .is_some_and(|stat| stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
            {
                dir.set_times(name, accessed, modified)?;
            }
        }
        Ok(())
    }
}

/// Write a plan, step `vertex`'s, as a layer (and its snapshot).
pub(crate) fn write_layer(
    store: &Store,
    vertex: VertexId,
    plan: &Plan<'_>,
    context_root: &Path,
    options: &BuildOptions,
) -> Result<Option<LayerRecord>, BuildError> {
    let staging = store.staging_dir("copy").map_err(ImageError::from)?;
    // On the same filesystem as staging: extracted entries move by rename.
    let scratch = if plan.entries.iter().any(|entry| entry.extract) {
        Some(store.staging_dir("extract").map_err(ImageError::from)?)
    } else {
        None
    };
    let written = (|| -> Result<(), CopyError> {
        let mut writer = Writer {
            chain: Chain::new(Root::open(&staging)?.top()?),
            sources: Sources::new(context_root),
            lowers: &plan.lowers,
            chown: plan.chown,
            chmod: plan.copy.chmod.as_deref(),
            dir_times: Vec::new(),
            scratch: scratch.as_deref().map(Root::open).transpose()?,
        };
        if plan.into_dir {
            writer.ensure_dir(&plan.dest)?;
        }
        for dir in &plan.make {
            writer.ensure_dir(dir)?;
        }
        for entry in &plan.entries {
            writer.write(entry)?;
        }
        for (target, file) in &plan.inline {
            writer.write_inline(target, file)?;
        }
        writer.finish()
    })();
    if let Some(scratch) = &scratch {
        let _ = std::fs::remove_dir_all(scratch);
    }
    if let Err(source) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(StepError::new(
            vertex,
            StepErrorKind::Copy {
                add: plan.copy.add,
                source,
            },
        )
        .into());
    }
    let stored = crate::layer::store_layer(
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
            return Err(ImageError::from(error).into());
        }
    };
    // The staging directory is the layer's snapshot already.
    let snapshot = store.snapshot_path(&layer.diff_id);
    if let Some(parent) = snapshot.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    crate::fault::point(crate::fault::Kind::Rename, &snapshot);
    if snapshot.exists() || std::fs::rename(&staging, &snapshot).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(Some(layer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_all() -> FileCopy {
        FileCopy {
            add: false,
            sources: vec![CopySource::Path {
                input: 0,
                path: ".".to_owned(),
            }],
            destination: "/c/".to_owned(),
            chown: None,
            chmod: None,
            link: false,
            exclude: Vec::new(),
            parents: false,
            checksum: None,
            keep_git_dir: false,
            unpack: None,
        }
    }

    fn plan_of<'a>(copy: &'a FileCopy, context: &BuildContext) -> Plan<'a> {
        let trees = [Tree::Context(context)];
        let fetch =
            |_: &str, _: Option<&str>| -> Result<Download, FetchError> { unreachable!("no URL") };
        let clone = |_: &strata_frontend::graph::GitSource| -> Result<Checkout, GitError> {
            unreachable!("no git")
        };
        let remote = Remote {
            fetch: &fetch,
            clone: &clone,
        };
        plan(copy, &trees, &[], &remote).unwrap()
    }

    #[test]
    fn utf8_names_hash_as_they_always_did() {
        // The content digest of a context of UTF-8 names is the one the
        // text formula gave before names became bytes: caches still hit.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/café.txt"), "x").unwrap();
        std::fs::write(root.join("a\\b"), "y").unwrap();
        std::os::unix::fs::symlink("sub/café.txt", root.join("link")).unwrap();
        for name in ["sub", "sub/café.txt", "a\\b"] {
            let mode = if name == "sub" { 0o755 } else { 0o644 };
            std::fs::set_permissions(root.join(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        let context = BuildContext {
            root: root.to_owned(),
            ignore: Ignore::default(),
        };
        let copy = copy_all();
        let plan = plan_of(&copy, &context);
        let (digest, files) = content_digest(&plan, root, &mut |path, _, _| {
            Ok(format!("digest-of-{}", path.file_name().unwrap().display()))
        })
        .unwrap();
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        let empty: Vec<(String, Vec<u8>)> = Vec::new();
        for (dest, what, mode) in [
            ("c/a\\b", "file digest-of-a\\b".to_owned(), 0o644),
            ("c/link", "symlink sub/café.txt".to_owned(), 0o777),
            ("c/sub", "dir".to_owned(), 0o755),
            (
                "c/sub/café.txt",
                "file digest-of-café.txt".to_owned(),
                0o644,
            ),
        ] {
            hasher.update(format!("{dest}\0{what}\0{mode:o}\0{empty:?}\n"));
        }
        assert_eq!(digest, format!("{:x}", hasher.finalize()));
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["a\\b", "link", "sub", "sub/café.txt"]);
    }

    #[test]
    fn names_that_are_not_utf8_are_planned_and_shown_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let latin = OsStr::from_bytes(b"caf\xe9.txt");
        let odd_dir = OsStr::from_bytes(b"d\xff");
        std::fs::write(root.join(latin), "x").unwrap();
        std::fs::create_dir(root.join(odd_dir)).unwrap();
        std::fs::write(root.join(odd_dir).join(latin), "y").unwrap();
        let context = BuildContext {
            root: root.to_owned(),
            ignore: Ignore::default(),
        };
        let copy = copy_all();
        let plan = plan_of(&copy, &context);
        let dests: Vec<Vec<u8>> = plan
            .entries
            .iter()
            .map(|entry| joined(&entry.dest))
            .collect();
        assert_eq!(
            dests,
            [
                b"c/caf\xe9.txt".to_vec(),
                b"c/d\xff".to_vec(),
                b"c/d\xff/caf\xe9.txt".to_vec()
            ]
        );
        let (_, files) = content_digest(&plan, root, &mut |_, _, _| Ok("0".to_owned())).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["caf\\xe9.txt", "d\\xff", "d\\xff/caf\\xe9.txt"]);
        // `.dockerignore` globs see an invalid byte as one character.
        let context = BuildContext {
            root: root.to_owned(),
            ignore: Ignore::parse("d?/caf?.txt\n").unwrap(),
        };
        let plan = plan_of(&copy, &context);
        let dests: Vec<Vec<u8>> = plan
            .entries
            .iter()
            .map(|entry| joined(&entry.dest))
            .collect();
        assert_eq!(dests, [b"c/caf\xe9.txt".to_vec(), b"c/d\xff".to_vec()]);
    }

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
