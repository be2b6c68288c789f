//! The build context and `.dockerignore`, with Docker's semantics (moby's
//! `patternmatcher` and `dockerignore` packages): patterns are cleaned and
//! anchored at the context root, `*` and `?` stay within one path element,
//! `**` crosses any number of them, a pattern that matches a directory
//! matches everything in it, `!` makes an exception, and the last pattern
//! that matches decides.
//!
//! Context files are read in place; nothing is copied to a staging area.

use std::path::{Path, PathBuf};

use regex::Regex;

/// One `.dockerignore` line.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    exception: bool,
    /// The pattern, cleaned (BuildKit's CopyIgnoredFile looks at it).
    text: String,
}

/// A parsed `.dockerignore` (or `COPY --exclude` list).
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// `filepath.Clean` of a slash-separated relative path, as Go does it.
pub(crate) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let rooted = path.starts_with('/');
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The regular expression of a cleaned pattern (moby's translation).
fn translate(pattern: &str) -> String {
    let mut out = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let ch = chars[index];
        index += 1;
        match ch {
            '*' if chars.get(index) == Some(&'*') => {
                index += 1;
                // `**/` is `**`.
                if chars.get(index) == Some(&'/') {
                    index += 1;
                }
                if index >= chars.len() {
                    out.push_str(".*");
                } else {
                    out.push_str("(.*/)?");
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '\\' => {
                if let Some(&next) = chars.get(index) {
                    index += 1;
                    out.push_str(&regex::escape(&next.to_string()));
                } else {
                    out.push_str(r"\\");
                }
            }
            '[' => {
                // A character class, copied up to its `]`.
                let mut class = String::from("[");
                let mut closed = false;
                while index < chars.len() {
                    let ch = chars[index];
                    index += 1;
                    match ch {
                        ']' => {
                            class.push(']');
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(&next) = chars.get(index) {
                                index += 1;
                                class.push_str(&regex::escape(&next.to_string()));
                            }
                        }
                        '^' if class == "[" => class.push('^'),
                        '!' if class == "[" => class.push('^'),
                        other => {
                            // Set operators of the regex crate's classes.
                            if matches!(other, '[' | '&' | '~') {
                                class.push('\\');
                            }
                            class.push(other);
                        }
                    }
                }
                if closed {
                    out.push_str(&class);
                } else {
                    out.push_str(&regex::escape(&class));
                }
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    out
}

/// A `.dockerignore` (or `--exclude`) pattern that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern `{line}`")]
pub struct IgnoreError {
    /// The line, trimmed.
    pub line: String,
    /// Why.
    #[source]
    pub source: IgnoreReason,
}

/// Why an ignore pattern is refused.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreReason {
    /// It does not translate to a regular expression.
    #[error(transparent)]
    Regex(#[from] regex::Error),
    /// `!` with nothing after it (moby/patternmatcher's words).
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclusion,
}

/// Why the build context cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// Its `.dockerignore` exists but cannot be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its `.dockerignore` has an invalid pattern.
    #[error("{}", path.display())]
    Ignore {
        /// The file.
        path: PathBuf,
        /// Which pattern, and why.
        #[source]
        source: IgnoreError,
    },
}

impl Ignore {
    /// Parse `.dockerignore` text. Invalid patterns are errors.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                if exception {
                    return Err(IgnoreError {
                        line: line.to_owned(),
                        source: IgnoreReason::LoneExclusion,
                    });
                }
                continue;
            }
            let mut cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let regex = Regex::new(&translate(&cleaned)).map_err(|source| IgnoreError {
                line: line.to_owned(),
                source: source.into(),
            })?;
            patterns.push(Pattern {
                regex,
                exception,
                text: cleaned,
            });
        }
        Ok(Ignore { patterns })
    }

    /// Whether there is no pattern at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (excluded directories must then
    /// be walked into, in case something below them is let back in).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|pattern| pattern.exception)
    }

    /// Whether a COPY or ADD source from the context is excluded, as
    /// BuildKit's CopyIgnoredFile check decides (`validateCopySourcePath`):
    /// never when a pattern is an exception (a file under an excluded
    /// directory may be let back in, which a name alone cannot tell); the
    /// context's root (`.` or `/`) only when a pattern is `*`, `**` or
    /// `**/*`; else when the cleaned source or one of its parents matches.
    pub fn copy_source_ignored(&self, source: &str) -> bool {
        if self.patterns.is_empty() || self.has_exceptions() {
            return false;
        }
        let source = clean(source);
        if source == "." || source == "/" {
            return self
                .patterns
                .iter()
                .any(|pattern| matches!(pattern.text.as_str(), "*" | "**" | "**/*"));
        }
        self.excluded(&source)
    }

    /// [`Ignore::excluded`] of a path given as bytes (a name need not be
    /// UTF-8): each invalid byte is one character that `*` and `?` match
    /// (see [`crate::name::match_form`]).
    pub fn excluded_bytes(&self, relative: &[u8]) -> bool {
        !self.patterns.is_empty() && self.excluded(&crate::name::match_form(relative))
    }

    /// Whether the context-relative path `relative` (slash-separated, no
    /// leading slash) is excluded.
    pub fn excluded(&self, relative: &str) -> bool {
        !self.patterns.is_empty() && self.decides(&self.matched(relative, None))
    }

    /// What each pattern says of `relative` (in match form, see
    /// [`Ignore::excluded_bytes`]): whether it matches it or one of its
    /// parents (a pattern that matches a directory matches everything in
    /// it). `parent` is what [`Ignore::matched`] gave for its parent
    /// directory: a walk then matches each entry's own path once per
    /// pattern, instead of each of its parents' again (which made a walk
    /// of a deep tree cubic in its depth). With `None`, every parent of
    /// `relative` is matched.
    pub fn matched(&self, relative: &str, parent: Option<&Matched>) -> Matched {
        let by_pattern = self
            .patterns
            .iter()
            .enumerate()
            .map(|(index, pattern)| {
                let by_parent = match parent {
                    Some(parent) => parent.by_pattern.get(index).copied().unwrap_or(false),
                    // Each parent is a prefix of `relative`, up to a `/`.
                    None => relative
                        .match_indices('/')
                        .any(|(end, _)| pattern.regex.is_match(&relative[..end])),
                };
                by_parent || pattern.regex.is_match(relative)
            })
            .collect();
        Matched { by_pattern }
    }

    /// Whether what [`Ignore::matched`] gave excludes the path: the last
    /// pattern that matches decides.
    pub fn decides(&self, matched: &Matched) -> bool {
        self.patterns
            .iter()
            .zip(&matched.by_pattern)
            .rev()
            .find(|(_, matched)| **matched)
            .is_some_and(|(pattern, _)| !pattern.exception)
    }
}

/// What each pattern of an [`Ignore`] says of a path and its parents, as
/// [`Ignore::matched`] gives it, for its children.
#[derive(Debug, Clone, Default)]
pub struct Matched {
    by_pattern: Vec<bool>,
}

/// The build context: a directory and what `.dockerignore` leaves out.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The directory.
    pub root: PathBuf,
    /// Its `.dockerignore` (or `<Dockerfile>.dockerignore`).
    pub ignore: Ignore,
}

impl BuildContext {
    /// The context at `root`, ignoring what `dockerfile.dockerignore` (when
    /// the Dockerfile has one beside it) or `root/.dockerignore` says.
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<BuildContext, ContextError> {
        // Each is read inside its own directory, as BuildKit reads them (a
        // `.dockerignore -> /etc/shadow` names the context's own file): its
        // patterns are printed in cache reports.
        let specific = match dockerfile {
            Some(path) => {
                let mut name = path.file_name().unwrap_or_default().to_owned();
                name.push(".dockerignore");
                let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
                let dir = dir.unwrap_or(Path::new("."));
                read_inside(dir, &name)
                    .map_err(|source| ContextError::Read {
                        path: dir.join(&name),
                        source,
                    })?
                    .map(|text| (dir.join(&name), text))
            }
            None => None,
        };
        let found = match specific {
            Some(found) => Some(found),
            None => read_inside(root, std::ffi::OsStr::new(".dockerignore"))
                .map_err(|source| ContextError::Read {
                    path: root.join(".dockerignore"),
                    source,
                })?
                .map(|text| (root.join(".dockerignore"), text)),
        };
        let ignore = match found {
            Some((path, text)) => {
                Ignore::parse(&text).map_err(|source| ContextError::Ignore { path, source })?
            }
            None => Ignore::default(),
        };
        Ok(BuildContext {
            root: root.to_path_buf(),
            ignore,
        })
    }
}

/// Every context a build reads: the build context, and each directory a
/// `--build-context NAME=DIR` names, by NAME (its own `.dockerignore`
/// applies to it, as BuildKit reads a named local context).
#[derive(Debug, Clone)]
pub struct Contexts {
    /// The build context (`context`).
    pub main: BuildContext,
    /// The named directories.
    pub named: std::collections::BTreeMap<String, BuildContext>,
}

impl Contexts {
    /// The build context alone.
    pub fn main(main: BuildContext) -> Contexts {
        Contexts {
            main,
            named: Default::default(),
        }
    }

    /// The context a [`strata_frontend::graph::Source::Context`] names:
    /// `context` is the build context, `named:NAME` the directory named
    /// NAME.
    pub fn get(&self, name: &str) -> Option<&BuildContext> {
        match name.strip_prefix("named:") {
            Some(named) => self.named.get(named),
            None => (name == "context").then_some(&self.main),
        }
    }
}

/// The text of the regular file `name` resolved inside `dir` (links and
/// `..` stay in `dir`, see [`crate::confined`]); `None` when it is not
/// there or is not a regular file (which docker ignores too).
fn read_inside(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let root = crate::confined::Root::open(dir).map_err(|error| error.source)?;
    match root
        .open_regular(Path::new(name))
        .map_err(|error| error.source)?
    {
        crate::confined::Regular::File(mut file) => {
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            Ok(Some(text))
        }
        crate::confined::Regular::Missing | crate::confined::Regular::Other => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn dockerignore_follows_docker() {
        let rules =
            ignore("# comment\n*.log\n!keep.log\nbuild/\n/docs/**/*.tmp\n**/cache\nsrc/*/gen\n");
        for (path, expected) in [
            ("a.log", true),
            ("keep.log", false),
            ("dir/a.log", false), // `*` stays in one element, anchored at the root
            ("build", true),
            ("build/out/x", true), // a matched directory takes its content
            ("docs/a.tmp", true),  // `**/` matches zero elements
            ("docs/x/y/a.tmp", true),
            ("docs/x/y/a.txt", false),
            ("cache", true),
            ("deep/down/cache/file", true),
            ("src/lib/gen", true),
            ("src/lib/sub/gen", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(rules.excluded(path), expected, "{path}");
        }
        // The last match decides; exceptions can re-include below an
        // excluded directory.
        let rules = ignore("*\n!src\nsrc/secret\n");
        assert!(rules.excluded("Dockerfile"));
        assert!(!rules.excluded("src/main.rs"));
        assert!(rules.excluded("src/secret/key"));
        assert!(rules.has_exceptions());
        // Cleaning: `./`, duplicate slashes, a leading slash.
        let rules = ignore("./a//b/\n/c\n");
        assert!(rules.excluded("a/b/x"));
        assert!(rules.excluded("c"));
        // Character classes and escapes.
        let rules = ignore("file[0-9].txt\nq\\*\n");
        assert!(rules.excluded("file3.txt"));
        assert!(!rules.excluded("filex.txt"));
        assert!(rules.excluded("q*"));
        assert!(!rules.excluded("qq"));
    }

    #[test]
    fn a_walk_matches_as_each_path_alone_does() {
        let rules = ignore("*\n!src\nsrc/secret\n**/cache\ndocs/**/*.tmp\n");
        for path in [
            "src/a/b/c",
            "src/secret/x/y",
            "docs/x/cache/y/z.tmp",
            "Dockerfile",
            "d/d/d/d/d",
        ] {
            let mut state: Option<Matched> = None;
            let mut walked = String::new();
            for part in path.split('/') {
                if !walked.is_empty() {
                    walked.push('/');
                }
                walked.push_str(part);
                let next = rules.matched(&walked, state.as_ref());
                assert_eq!(rules.decides(&next), rules.excluded(&walked), "{walked}");
                state = Some(next);
            }
        }
    }

    #[test]
    fn cleaning_is_go_filepath_clean() {
        for (input, output) in [
            ("a/./b/../c/", "a/c"),
            ("../x", "../x"),
            ("/../x", "/x"),
            ("", "."),
            ("a//b", "a/b"),
        ] {
            assert_eq!(clean(input), output, "{input}");
        }
    }
}
