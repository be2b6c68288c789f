//! Which ADD sources are git repositories, and what they ask for
//! (BuildKit's `dfgitutil.ParseGitRef` and `gitutil.ParseURL`).
//!
//! A source is a git repository when it is `git://…`, `ssh://…`, an
//! scp-like `user@host:path`, or an `http(s)://` URL whose path ends in
//! `.git`. What follows `#` is `ref[:subdir]`; a query may give `ref`,
//! `tag`, `branch`, `subdir`, `checksum` (or `commit`), `keep-git-dir`,
//! `submodules`, `mtime` and `fetch-by-commit`. `github.com/org/repo`,
//! which BuildKit takes for a repository only as a build context, is a
//! local path here as in BuildKit's ADD.

use serde::Serialize;

/// A git repository ADD clones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitSource {
    /// The source as written (for messages).
    pub url: String,
    /// What `git` is given: the URL without its fragment and query.
    pub remote: String,
    /// A branch, tag, full ref or commit; empty for the default branch.
    pub reference: String,
    /// A directory of the repository to copy (cleaned, no leading `/`);
    /// empty for all of it.
    pub subdir: String,
    /// The commit (a prefix of its hex) the reference must resolve to:
    /// `--checksum` or the query's `checksum`/`commit`. Not part of the
    /// step's definition (the commit it checks is in its key).
    #[serde(skip)]
    pub checksum: Option<String>,
    /// Keep `.git` (only when the whole repository is copied).
    pub keep_git_dir: bool,
    /// Check out submodules too (BuildKit's default).
    pub submodules: bool,
}

/// What the source text is.
pub(crate) enum Parsed {
    /// Not a git repository: a path or an HTTP URL.
    NotGit,
    /// A repository, and what its fragment and query ask for.
    Git(Box<GitSource>, Option<bool>),
    /// A repository whose query is wrong: the message.
    Invalid(String),
}

const SCHEMES: [&str; 4] = ["http", "https", "ssh", "git"];

/// Parse `text` as BuildKit's ADD does.
pub(crate) fn parse(text: &str) -> Parsed {
    if text.starts_with("./") || text.starts_with("../") || text.starts_with("github.com/") {
        return Parsed::NotGit;
    }
    let (before_fragment, fragment) = match text.split_once('#') {
        Some((before, fragment)) => (before, fragment),
        None => (text, ""),
    };
    let (remote, query) = match before_fragment.split_once('?') {
        Some((remote, query)) => (remote, query),
        None => (before_fragment, ""),
    };
    if let Some((scheme, rest)) = remote.split_once("://") {
        if scheme.is_empty() || !scheme.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Parsed::NotGit;
        }
        let scheme = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Parsed::NotGit;
        }
        if scheme.starts_with("http") {
            // The URL's path, after the host.
            let path = rest.split_once('/').map_or("", |(_, path)| path);
            if !path.ends_with(".git") {
                return Parsed::NotGit;
            }
        }
    } else if !is_scp_like(remote) {
        return Parsed::NotGit;
    }
    let (reference, subdir) = match fragment.split_once(':') {
        Some((reference, subdir)) => (reference, clean(subdir)),
        None => (fragment, String::new()),
    };
    let mut source = GitSource {
        url: text.to_owned(),
        remote: remote.to_owned(),
        reference: reference.to_owned(),
        subdir,
        checksum: None,
        keep_git_dir: false,
        submodules: true,
    };
    match load_query(&mut source, query) {
        Ok(keep) => Parsed::Git(Box::new(source), keep),
        Err(message) => Parsed::Invalid(message),
    }
}

/// `text` as a git repository, if it names one by BuildKit's rules for
/// ADD (which a build context given as a URL follows too): the source
/// (`keep_git_dir` as its query says, else false), or BuildKit's message
/// for a query that is wrong.
pub fn git_url(text: &str) -> Option<Result<GitSource, String>> {
    match parse(text) {
        Parsed::NotGit => None,
        Parsed::Invalid(message) => Some(Err(message)),
        Parsed::Git(mut source, keep) => {
            source.keep_git_dir = keep.unwrap_or(false);
            Some(Ok(*source))
        }
    }
}

/// `user@host:path` (git's scp-like syntax), as BuildKit's regular
/// expression `^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)…$` has it.
fn is_scp_like(text: &str) -> bool {
    let Some((user, rest)) = text.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
    user_ok && host_ok
}

/// A subdirectory as BuildKit cleans it (`path.Join("/", dir)` without
/// the leading `/`): never `..` above the repository.
fn clean(dir: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// `%XX` and `+` decoded, as Go's `url.ParseQuery`.
fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let byte = bytes
                    .get(at + 1..at + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| format!("invalid URL escape in query {text:?}"))?;
                out.push(byte);
                at += 3;
            }
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid query {text:?}"))
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Apply the query (BuildKit's `loadQuery`): the `keep-git-dir` it asks
/// for, if any, or BuildKit's message.
fn load_query(source: &mut GitSource, query: &str) -> Result<Option<bool>, String> {
    let mut values: Vec<(String, Vec<String>)> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (unescape(key)?, unescape(value)?);
        match values.iter_mut().find(|(known, _)| *known == key) {
            Some((_, list)) => list.push(value),
            None => values.push((key, vec![value])),
        }
    }
    let mut keep = None;
    let (mut tag, mut branch) = (String::new(), String::new());
    for (key, list) in values {
        if list.len() > 1 {
            return Err(format!("query {key:?} has multiple values"));
        }
        let value = list.into_iter().next().unwrap_or_default();
        let flag = |name: &str| -> Result<bool, String> {
            if value.is_empty() {
                return Ok(true);
            }
            parse_bool(&value).ok_or_else(|| format!("invalid {name} value: {value:?}"))
        };
        if value.is_empty()
            && !matches!(
                key.as_str(),
                "submodules" | "keep-git-dir" | "fetch-by-commit"
            )
        {
            return Err(format!("query {key:?} has no value"));
        }
        match key.as_str() {
            "ref" => {
                if !source.reference.is_empty() && source.reference != value {
                    return Err(format!(
                        "ref conflicts: {:?} vs {value:?}",
                        source.reference
                    ));
                }
                source.reference = value;
            }
            "tag" => tag = value,
            "branch" => branch = value,
            "subdir" => {
                let value = clean(&value);
                if !source.subdir.is_empty() && source.subdir != value {
                    return Err(format!(
                        "subdir conflicts: {:?} vs {value:?}",
                        source.subdir
                    ));
                }
                source.subdir = value;
            }
            "checksum" | "commit" => source.checksum = Some(value),
            "keep-git-dir" => keep = Some(flag("keep-git-dir")?),
            "submodules" => source.submodules = flag("submodules")?,
            "mtime" => match value.as_str() {
                "checkout" => {}
                // Files get the time of the checkout, as BuildKit's
                // default; the commit's time is not done yet.
                "commit" => return Err("mtime=commit is not supported by strata yet".to_owned()),
                _ => {
                    return Err(format!(
                        "invalid mtime value: {value:?} (must be \"checkout\" or \"commit\")"
                    ));
                }
            },
            "fetch-by-commit" => {
                if flag("fetch-by-commit")? {
                    return Err("fetch-by-commit is not supported by strata yet".to_owned());
                }
            }
            _ => return Err(format!("unexpected query {key:?}")),
        }
    }
    if !tag.is_empty() {
        if !tag.starts_with("refs/tags/") {
            tag = format!("refs/tags/{tag}");
        }
        if !source.reference.is_empty() && source.reference != tag {
            return Err(format!("ref conflicts: {:?} vs {tag:?}", source.reference));
        }
        source.reference = tag.clone();
    }
    if !branch.is_empty() {
        if !tag.is_empty() {
            return Err("branch conflicts with tag".to_owned());
        }
        if !branch.starts_with("refs/heads/") {
            branch = format!("refs/heads/{branch}");
        }
        if !source.reference.is_empty() && source.reference != branch {
            return Err(format!(
                "ref conflicts: {:?} vs {branch:?}",
                source.reference
            ));
        }
        source.reference = branch;
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(text: &str) -> GitSource {
        match parse(text) {
            Parsed::Git(source, _) => *source,
            Parsed::NotGit => panic!("{text}: not git"),
            Parsed::Invalid(message) => panic!("{text}: {message}"),
        }
    }

    fn not_git(text: &str) -> bool {
        matches!(parse(text), Parsed::NotGit)
    }

    fn invalid(text: &str) -> String {
        match parse(text) {
            Parsed::Invalid(message) => message,
            _ => panic!("{text}: not refused"),
        }
    }

    // BuildKit's TestParseGitRef, the cases ADD sees.
    #[test]
    fn which_sources_are_git() {
        for text in [
            "https://example.com/",
            "https://example.com/foo",
            "https://example.com/foo.git/",
            "https://example.com/foo.git.bar",
            "github.com/moby/buildkit",
            "custom.xyz/moby/buildkit.git",
            "https://github.com/moby/buildkit",
            "http://github.com/docker/docker.git:#branch",
            "./.git",
            ".git",
            "foo/bar",
        ] {
            assert!(not_git(text), "{text}");
        }
        let source = git("https://example.com/foo.git#release/1.2");
        assert_eq!(source.remote, "https://example.com/foo.git");
        assert_eq!(source.reference, "release/1.2");
        assert_eq!(git("git://example.com/foo").remote, "git://example.com/foo");
        assert_eq!(
            git("git@github.com:moby/buildkit.git").remote,
            "git@github.com:moby/buildkit.git"
        );
        let source = git("https://github.com/foo/bar.git#baz/qux:quux/quuz");
        assert_eq!(
            (source.reference.as_str(), source.subdir.as_str()),
            ("baz/qux", "quux/quuz")
        );
        assert_eq!(
            git("https://github.com/docker/docker.git#:myfolder").subdir,
            "myfolder"
        );
        let source = git("https://github.com/docker/docker.git?ref=v1.0.0&subdir=/subdir");
        assert_eq!(
            (source.reference.as_str(), source.subdir.as_str()),
            ("v1.0.0", "subdir")
        );
        assert_eq!(
            git("https://github.com/moby/buildkit.git?tag=v1.0.0").reference,
            "refs/tags/v1.0.0"
        );
        assert_eq!(
            git("https://github.com/moby/buildkit.git?branch=v1.0").reference,
            "refs/heads/v1.0"
        );
        assert_eq!(
            git("git@github.com:moby/buildkit.git?subdir=/subdir#v1.0.0").reference,
            "v1.0.0"
        );
        assert!(
            invalid("https://github.com/moby/buildkit.git?ref=v1.0.0#v1.2.3")
                .starts_with("ref conflicts")
        );
        assert!(
            invalid("https://github.com/moby/buildkit.git?ref=v1.0.0&tag=v1.2.3")
                .starts_with("ref conflicts")
        );
        assert_eq!(
            invalid("https://github.com/moby/buildkit.git?tag=v1.0.0&branch=v1.0"),
            "branch conflicts with tag"
        );
        assert!(
            invalid("https://github.com/moby/buildkit.git?mtime=invalid")
                .starts_with("invalid mtime value")
        );
        assert_eq!(
            invalid("https://github.com/moby/buildkit.git?foo=bar"),
            "unexpected query \"foo\""
        );
        assert_eq!(
            invalid("https://github.com/moby/buildkit.git?ref="),
            "query \"ref\" has no value"
        );
        let Parsed::Git(source, keep) = parse("https://h/r.git?keep-git-dir&submodules=false")
        else {
            panic!("not git");
        };
        assert_eq!((keep, source.submodules), (Some(true), false));
        assert_eq!(git("https://h/r.git#x:../../etc").subdir, "etc");
    }
}
