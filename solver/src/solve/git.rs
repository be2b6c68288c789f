//! `ADD <git URL>`: a repository cloned by the system `git`, as BuildKit's
//! git source does, once per build, into the store's `tmp/` (a staging
//! directory, held like every temporary file and removed when the build
//! ends; one a crash leaves is found by `system check` and prune).
//!
//! How (BuildKit's `source/git`): the reference is resolved with
//! `ls-remote` (the default branch when none is given; a branch before a
//! tag of the same name; a full commit hash as it is), checked against the
//! checksum (a prefix of the commit, or of an annotated tag's object), then
//! fetched with depth 1 (in full where the server cannot, as git's dumb
//! HTTP protocol) and checked out detached, submodules too unless asked
//! not. `.git` is kept only with `--keep-git-dir` and no subdirectory.
//! The step's key is the commit the reference resolves to (see
//! `files::content_digest`), found by `ls-remote` alone ([`Cloner::resolve`]):
//! a new commit invalidates it, the same commit hits and fetches nothing;
//! on a miss the clone must check out that commit.
//!
//! `git` runs as a child that trusts nothing of the host's or the
//! repository's configuration: an empty environment but `PATH` and the
//! proxy variables, an empty `HOME`, no system or global configuration, no
//! prompts, no hooks, no fsmonitor, no credential helper, the `file`,
//! `ext` and `ssh` transports refused (a submodule cannot name a host path
//! nor use the user's ssh keys; an ssh URL is refused before git runs),
//! stdin
//! from /dev/null, no descriptor of strata's, each file it writes bounded,
//! its own process group, killed when the operation's time is up or the
//! build is interrupted. Every network read of git's has an idle timeout
//! (`http.lowSpeedTime`). The checkout is read as an untrusted tree: a
//! subdirectory must be directories all the way (never through a symlink,
//! as BuildKit), and symlinks in it are copied as symlinks.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_frontend::graph::GitSource;

use crate::error::PathError;
use crate::store::{Store, StoreError};

/// The longest one clone may take, all its git commands together.
const TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Seconds without a byte received after which git drops a transfer.
const IDLE_SECONDS: &str = "60";
/// The largest file git may write (RLIMIT_FSIZE).
const MAX_FILE: u64 = crate::registry::net::MAX_DOWNLOAD;
/// The most of git's standard output kept (ls-remote of a few refs, a hash).
const MAX_OUTPUT: usize = 1 << 20;
/// The most of git's standard error kept for a message.
const MAX_STDERR: usize = 64 << 10;

/// Why `ADD <git URL>` cannot clone.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The store's staging directory cannot be made.
    #[error("{0}")]
    Staging(StoreError),
    /// A file operation on the checkout failed.
    #[error(transparent)]
    File(#[from] PathError),
    /// `git` is not there or cannot be run.
    #[error("cannot clone {url}: the git command cannot be run ({reason}); install git")]
    NoGit {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An ssh URL: ssh would authenticate with the user's own keys, which
    /// a Dockerfile must not get without being given them (BuildKit needs
    /// `--ssh` for it, which strata does not pass to git sources yet).
    #[error(
        "cannot clone {url}: cloning over ssh is not supported yet (it would need the user's ssh keys); use an https:// or git:// URL"
    )]
    Ssh {
        /// The URL.
        url: String,
    },
    /// A git command failed: what it did, and git's own message.
    #[error("failed to {operation} {url}: {stderr}")]
    Failed {
        /// The URL.
        url: String,
        /// `resolve the default branch of`, `fetch`, `check out`...
        operation: &'static str,
        /// git's standard error, trimmed.
        stderr: String,
    },
    /// The clone took longer than [`TIMEOUT`].
    #[error("failed to {operation} {url}: timed out after {seconds} seconds")]
    TimedOut {
        /// The URL.
        url: String,
        /// What it was doing.
        operation: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// A signal ended the build.
    #[error("failed to {operation} {url}: interrupted by signal {signal}")]
    Interrupted {
        /// The URL.
        url: String,
        /// What it was doing.
        operation: &'static str,
        /// The signal.
        signal: i32,
    },
    /// The reference is no branch or tag of the repository (BuildKit's
    /// words).
    #[error("repository does not contain ref {reference}, output: {output:?}")]
    NoRef {
        /// The reference.
        reference: String,
        /// What ls-remote said.
        output: String,
    },
    /// A checksum that is not hex (BuildKit's words).
    #[error("invalid checksum {0} for Git URL, expected hex commit hash")]
    InvalidChecksum(String),
    /// The reference resolves to another commit (BuildKit's words).
    #[error("expected checksum to match {expected}, got {found}")]
    ChecksumMismatch {
        /// The checksum.
        expected: String,
        /// The commit (and annotated tag) found.
        found: String,
    },
    /// The reference moved between the step's key and its clone.
    #[error(
        "the ref {reference:?} of {url} moved from {from} to {to} during the build; build again"
    )]
    Moved {
        /// The URL.
        url: String,
        /// The reference (empty: the default branch).
        reference: String,
        /// The commit the key has.
        from: String,
        /// The commit cloned.
        to: String,
    },
    /// A subdirectory that is not a directory of the repository, or
    /// reached through something else (BuildKit's words).
    #[error("invalid subdir {subdir}: {reason}")]
    Subdir {
        /// The subdirectory.
        subdir: String,
        /// Why.
        reason: String,
    },
}

/// A repository checked out.
#[derive(Debug, Clone)]
pub(crate) struct Checkout {
    /// The tree to copy: the checkout, or its subdirectory.
    pub(crate) root: PathBuf,
    /// The commit checked out (hex).
    pub(crate) commit: String,
}

/// Clones for one build.
pub(crate) struct Cloner {
    store: Store,
    dirs: Mutex<Vec<PathBuf>>,
    /// Done, by what was asked; the lock is held while cloning, so two
    /// steps that ask for the same repository clone it once.
    done: Mutex<HashMap<String, Checkout>>,
    /// Only resolved (for a step's key), by what was asked: the commit,
    /// and an empty tree.
    resolved: Mutex<HashMap<String, Checkout>>,
}

/// What a clone is asked for, as the key of [`Cloner`]'s maps.
fn asked(source: &GitSource) -> String {
    format!(
        "{}\0{}\0{}\0{:?}\0{}\0{}",
        source.remote,
        source.reference,
        source.subdir,
        source.checksum,
        source.keep_git_dir,
        source.submodules
    )
}

impl Cloner {
    pub(crate) fn new(store: &Store) -> Cloner {
        Cloner {
            store: store.clone(),
            dirs: Mutex::new(Vec::new()),
            done: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// The commit `source` resolves to (`ls-remote`, no fetch), with an
    /// empty tree: what a step's key needs, so that a cache hit fetches
    /// nothing (as BuildKit). The clone, on a miss, must check out that
    /// same commit.
    pub(crate) fn resolve(&self, source: &GitSource) -> Result<Checkout, GitError> {
        let asked = asked(source);
        if let Some(known) = self.done.lock().expect("git lock").get(&asked) {
            return Ok(known.clone());
        }
        let mut resolved = self.resolved.lock().expect("git lock");
        if let Some(known) = resolved.get(&asked) {
            return Ok(known.clone());
        }
        let dir = self.staging()?;
        let checkout = Clone::new(source, &dir).resolve_only()?;
        resolved.insert(asked, checkout.clone());
        Ok(checkout)
    }

    /// A staging directory for one git run, removed with the others when
    /// the build ends.
    fn staging(&self) -> Result<PathBuf, GitError> {
        let dir = self.store.staging_dir("git").map_err(GitError::Staging)?;
        self.dirs.lock().expect("git lock").push(dir.clone());
        Ok(dir)
    }

    /// `source` checked out, once per build.
    pub(crate) fn clone(&self, source: &GitSource) -> Result<Checkout, GitError> {
        let asked = asked(source);
        let mut done = self.done.lock().expect("git lock");
        if let Some(known) = done.get(&asked) {
            return Ok(known.clone());
        }
        let dir = self.staging()?;
        let checkout = Clone::new(source, &dir).run()?;
        // The key was made from what the reference resolved to then: a
        // branch pushed to since is not this step's content.
        if let Some(key) = self.resolved.lock().expect("git lock").get(&asked)
            && key.commit != checkout.commit
        {
            return Err(GitError::Moved {
                url: redact(&source.remote),
                reference: source.reference.clone(),
                from: key.commit.clone(),
                to: checkout.commit,
            });
        }
        done.insert(asked, checkout.clone());
        Ok(checkout)
    }

    /// Remove what was cloned.
    pub(crate) fn cleanup(&self) {
        for dir in self.dirs.lock().expect("git lock").drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A repository checked out as the build context (`strata build
/// https://host/repo.git#ref:dir`), in the store's `tmp/` until dropped.
pub struct GitContext {
    cloner: Cloner,
    root: PathBuf,
    commit: String,
}

impl GitContext {
    /// Clone `source` into `store`'s staging area, as ADD would.
    pub fn clone(store: &Store, source: &GitSource) -> Result<GitContext, GitError> {
        let cloner = Cloner::new(store);
        match cloner.clone(source) {
            Ok(checkout) => Ok(GitContext {
                cloner,
                root: checkout.root,
                commit: checkout.commit,
            }),
            Err(error) => {
                cloner.cleanup();
                Err(error)
            }
        }
    }

    /// The directory to build (the checkout, or its subdirectory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The commit checked out (hex).
    pub fn commit(&self) -> &str {
        &self.commit
    }
}

impl Drop for GitContext {
    fn drop(&mut self) {
        self.cloner.cleanup();
    }
}

/// `url` with the password of its user information replaced (BuildKit's
/// RedactCredentials): for messages, and the `origin` a kept `.git` names.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{name}:xxxxx@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// Whether `text` is a full commit hash (SHA-1 or SHA-256).
fn is_commit(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// One clone in progress.
struct Clone<'a> {
    source: &'a GitSource,
    dir: &'a Path,
    deadline: Instant,
}

impl<'a> Clone<'a> {
    /// A run on `source` in `dir`, given [`TIMEOUT`] from now.
    fn new(source: &'a GitSource, dir: &'a Path) -> Self {
        Clone {
            source,
            dir,
            deadline: Instant::now() + TIMEOUT,
        }
    }
}

impl Clone<'_> {
    /// Resolve only: the commit, and an empty directory for a tree.
    fn resolve_only(&self) -> Result<Checkout, GitError> {
        self.prepare()?;
        let (_, commit, _) = self.resolve()?;
        let root = self.dir.join("empty");
        std::fs::create_dir(&root).map_err(PathError::at::<GitError>("create", &root))?;
        Ok(Checkout {
            root,
            commit: commit.unwrap_or_default(),
        })
    }

    /// Refuse what is refused before git runs; make its HOME.
    fn prepare(&self) -> Result<(), GitError> {
        let source = self.source;
        let remote = source.remote.to_ascii_lowercase();
        if remote.starts_with("ssh://") || !remote.contains("://") {
            return Err(GitError::Ssh {
                url: redact(&source.remote),
            });
        }
        if let Some(checksum) = &source.checksum
            && (checksum.is_empty() || !checksum.bytes().all(|byte| byte.is_ascii_hexdigit()))
        {
            return Err(GitError::InvalidChecksum(checksum.clone()));
        }
        let home = self.dir.join("home");
        std::fs::create_dir(&home).map_err(PathError::at::<GitError>("create", &home))?;
        Ok(())
    }

    fn run(&self) -> Result<Checkout, GitError> {
        let source = self.source;
        self.prepare()?;
        let tree = self.dir.join("tree");
        let (fetch, commit, tag) = self.resolve()?;
        let mut init = vec!["init", "-q"];
        if commit.as_ref().is_some_and(|commit| commit.len() == 64) {
            init.push("--object-format=sha256");
        }
        let tree_text = tree.as_os_str();
        // The path is the store's own, absolute: never taken for an option.
        self.git(None, &init, &[tree_text], "initialize a repository for")?;
        let remote = OsStr::new(&source.remote);
        self.git(
            Some(&tree),
            &["remote", "add", "origin", "--"],
            &[remote],
            "add the remote",
        )?;
        self.fetch(&tree, &fetch)?;
        let target = if is_commit(&fetch) {
            fetch.as_str()
        } else {
            "FETCH_HEAD"
        };
        self.git(
            Some(&tree),
            &["checkout", "-q", "--detach", target, "--"],
            &[],
            "check out",
        )?;
        let head = self.output(Some(&tree), &["rev-parse", "HEAD"], "check out")?;
        let head = head.trim().to_owned();
        // A commit given by hash (not resolved by ls-remote) is checked
        // here, where it is known.
        if let Some(checksum) = &source.checksum
            && !head.starts_with(checksum.as_str())
            && !tag
                .as_deref()
                .is_some_and(|tag| tag.starts_with(checksum.as_str()))
        {
            return Err(GitError::ChecksumMismatch {
                expected: checksum.clone(),
                found: head,
            });
        }
        // Looked at, never followed (git refuses a symlinked .gitmodules).
        if source.submodules && std::fs::symlink_metadata(tree.join(".gitmodules")).is_ok() {
            self.submodules(&tree)?;
        }
        let keep = source.keep_git_dir && source.subdir.is_empty();
        let git_dir = tree.join(".git");
        if keep {
            // As BuildKit leaves it: no password in `origin`, no reflog, no
            // FETCH_HEAD.
            let shown = redact(&source.remote);
            if shown != source.remote {
                self.git(
                    Some(&tree),
                    &["remote", "set-url", "origin", "--"],
                    &[OsStr::new(&shown)],
                    "clean up",
                )?;
            }
            self.git(
                Some(&tree),
                &["reflog", "expire", "--all", "--expire=now"],
                &[],
                "clean up",
            )?;
            let fetch_head = git_dir.join("FETCH_HEAD");
            if fetch_head.exists() {
                std::fs::remove_file(&fetch_head)
                    .map_err(PathError::at::<GitError>("remove", &fetch_head))?;
            }
        } else {
            // Our own directory, made by `git init`: remove_dir_all
            // follows no symlink.
            std::fs::remove_dir_all(&git_dir)
                .map_err(PathError::at::<GitError>("remove", &git_dir))?;
        }
        let root = if source.subdir.is_empty() {
            tree
        } else {
            subdir(&tree, &source.subdir)?
        };
        Ok(Checkout { root, commit: head })
    }

    /// What to fetch (a full ref or a commit hash), the commit it is when
    /// known, and the object of an annotated tag; the checksum checked.
    fn resolve(&self) -> Result<(String, Option<String>, Option<String>), GitError> {
        let source = self.source;
        if is_commit(&source.reference) {
            if let Some(checksum) = &source.checksum
                && !source.reference.starts_with(checksum.as_str())
            {
                return Err(GitError::ChecksumMismatch {
                    expected: checksum.clone(),
                    found: source.reference.clone(),
                });
            }
            return Ok((
                source.reference.clone(),
                Some(source.reference.clone()),
                None,
            ));
        }
        let remote = OsStr::new(&source.remote);
        let reference = if source.reference.is_empty() {
            let output = self.output_with(
                None,
                &["ls-remote", "--symref", "--"],
                &[remote, OsStr::new("HEAD")],
                "resolve the default branch of",
            )?;
            output
                .lines()
                .find_map(|line| {
                    let (head, name) = line.strip_prefix("ref: ")?.split_once('\t')?;
                    (name == "HEAD").then(|| head.to_owned())
                })
                .ok_or_else(|| GitError::Failed {
                    url: redact(&source.remote),
                    operation: "resolve the default branch of",
                    stderr: "could not find the default branch".to_owned(),
                })?
        } else {
            source.reference.clone()
        };
        let peeled = format!("{reference}^{{}}");
        let output = self.output_with(
            None,
            &["ls-remote", "--"],
            &[remote, OsStr::new(&reference), OsStr::new(&peeled)],
            "fetch",
        )?;
        // BuildKit's choice among what ls-remote lists: the ref as given
        // under refs/, else a branch, else a tag.
        let bare = reference.strip_prefix("refs/").unwrap_or(&reference);
        let partial = format!("refs/{bare}");
        let head = format!(
            "refs/heads/{}",
            reference.strip_prefix("refs/heads/").unwrap_or(&reference)
        );
        let tag = format!(
            "refs/tags/{}",
            reference.strip_prefix("refs/tags/").unwrap_or(&reference)
        );
        let annotated = format!("{tag}^{{}}");
        let (mut exact, mut branch, mut tagged, mut peeled_tag) = (None, None, None, None);
        for line in output.lines() {
            let Some((sha, name)) = line.split_once('\t') else {
                continue;
            };
            let found = Some(sha.to_owned());
            if name == head {
                branch = found;
            } else if name == tag {
                tagged = found;
            } else if name == annotated {
                peeled_tag = found;
            } else if name == partial {
                exact = found;
            }
        }
        let (sha, used, peeled_tag) = match (exact, branch, tagged) {
            (Some(sha), _, _) => (sha, partial, None),
            (None, Some(sha), _) => (sha, head, None),
            (None, None, Some(sha)) => (sha, tag, peeled_tag),
            (None, None, None) => {
                return Err(GitError::NoRef { reference, output });
            }
        };
        if !is_commit(&sha) {
            return Err(GitError::Failed {
                url: redact(&source.remote),
                operation: "resolve",
                stderr: format!("invalid commit sha {sha:?}"),
            });
        }
        if let Some(checksum) = &source.checksum
            && !sha.starts_with(checksum.as_str())
            && !peeled_tag
                .as_deref()
                .is_some_and(|peeled| peeled.starts_with(checksum.as_str()))
        {
            let found = match &peeled_tag {
                Some(peeled) => format!("{sha} or {peeled}"),
                None => sha,
            };
            return Err(GitError::ChecksumMismatch {
                expected: checksum.clone(),
                found,
            });
        }
        // The tag object stands for the commit it names in the checksum.
        let tag_object = peeled_tag.as_ref().map(|_| sha.clone());
        Ok((used, Some(peeled_tag.unwrap_or(sha)), tag_object))
    }

    /// Fetch `what` into `tree`: depth 1, or all of it where the server
    /// cannot give a shallow clone (git's dumb HTTP) or refuses a commit
    /// that is no ref's tip.
    fn fetch(&self, tree: &Path, what: &str) -> Result<(), GitError> {
        let shallow = self.git(
            Some(tree),
            &["fetch", "-q", "--depth=1", "--no-tags", "--", "origin"],
            &[OsStr::new(what)],
            "fetch",
        );
        let error = match shallow {
            Ok(()) => return Ok(()),
            Err(error @ GitError::Failed { .. }) => error,
            Err(other) => return Err(other),
        };
        if is_commit(what) {
            // Everything, then the commit must be among it.
            self.git(
                Some(tree),
                &[
                    "fetch",
                    "-q",
                    "--tags",
                    "--",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                ],
                &[],
                "fetch",
            )?;
            let object = format!("{what}^{{commit}}");
            return self
                .git(
                    Some(tree),
                    &["cat-file", "-e", "--end-of-options"],
                    &[OsStr::new(&object)],
                    "fetch",
                )
                .map_err(|_| error);
        }
        if !matches!(&error, GitError::Failed { stderr, .. } if stderr.contains("shallow")) {
            return Err(error);
        }
        self.git(
            Some(tree),
            &["fetch", "-q", "--no-tags", "--", "origin"],
            &[OsStr::new(what)],
            "fetch",
        )
    }

    /// Check out the submodules, recursively (depth 1 where the server
    /// can).
    fn submodules(&self, tree: &Path) -> Result<(), GitError> {
        let operation = "update submodules of";
        let shallow = self.git(
            Some(tree),
            &["submodule", "update", "--init", "--recursive", "--depth=1"],
            &[],
            operation,
        );
        match shallow {
            Err(GitError::Failed { stderr, .. }) if stderr.contains("shallow") => self.git(
                Some(tree),
                &["submodule", "update", "--init", "--recursive"],
                &[],
                operation,
            ),
            other => other,
        }
    }

    fn git(
        &self,
        cwd: Option<&Path>,
        args: &[&str],
        more: &[&OsStr],
        operation: &'static str,
    ) -> Result<(), GitError> {
        self.output_with(cwd, args, more, operation).map(drop)
    }

    fn output(
        &self,
        cwd: Option<&Path>,
        args: &[&str],
        operation: &'static str,
    ) -> Result<String, GitError> {
        self.output_with(cwd, args, &[], operation)
    }

    /// Run `git ARGS MORE...` in `cwd` (the staging directory when none),
    /// confined as the module says: its standard output.
    fn output_with(
        &self,
        cwd: Option<&Path>,
        args: &[&str],
        more: &[&OsStr],
        operation: &'static str,
    ) -> Result<String, GitError> {
        let url = &redact(&self.source.remote);
        let mut command = Command::new("git");
        command.env_clear();
        for name in [
            "PATH",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "all_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
        ] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        if std::env::var_os("PATH").is_none() {
            command.env("PATH", "/usr/local/bin:/usr/bin:/bin");
        }
        let home = self.dir.join("home");
        let config = [
            ("protocol.file.allow", "never"),
            ("protocol.ext.allow", "never"),
            // ssh would use the user's keys (`~/.ssh` is found through the
            // password database, not HOME): a submodule must not.
            ("protocol.ssh.allow", "never"),
            ("core.hooksPath", "/dev/null"),
            ("core.fsmonitor", "false"),
            ("credential.helper", ""),
            ("init.defaultBranch", "master"),
            ("advice.detachedHead", "false"),
            ("fetch.recurseSubmodules", "false"),
            ("http.lowSpeedLimit", "1"),
            ("http.lowSpeedTime", IDLE_SECONDS),
        ];
        command
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env(
                "GIT_SSH_COMMAND",
                "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile=none",
            )
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_COUNT", config.len().to_string());
        for (index, (key, value)) in config.iter().enumerate() {
            command
                .env(format!("GIT_CONFIG_KEY_{index}"), key)
                .env(format!("GIT_CONFIG_VALUE_{index}"), value);
        }
        command
            .args(args)
            .args(more)
            .current_dir(cwd.unwrap_or(self.dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        crate::sys::confine_child(&mut command, MAX_FILE);
        let mut child = command.spawn().map_err(|error| GitError::NoGit {
            url: url.clone(),
            reason: error.to_string(),
        })?;
        let reader = |pipe: Option<Box<dyn Read + Send>>, keep: usize| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                if let Some(mut pipe) = pipe {
                    let mut buffer = [0u8; 8192];
                    // Read to the end (git must not block on a full pipe),
                    // keeping the first `keep` bytes.
                    while let Ok(count) = pipe.read(&mut buffer) {
                        if count == 0 {
                            break;
                        }
                        let room = keep.saturating_sub(kept.len()).min(count);
                        kept.extend_from_slice(&buffer[..room]);
                    }
                }
                kept
            })
        };
        let stdout = reader(
            child
                .stdout
                .take()
                .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
            MAX_OUTPUT,
        );
        let stderr = reader(
            child
                .stderr
                .take()
                .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
            MAX_STDERR,
        );
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let kill = || {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(error) => {
                    kill();
                    let _ = child.wait();
                    return Err(GitError::NoGit {
                        url: url.clone(),
                        reason: error.to_string(),
                    });
                }
            }
            if let Some(signal) = crate::cancel::interrupted() {
                kill();
                let _ = child.wait();
                return Err(GitError::Interrupted {
                    url: url.clone(),
                    operation,
                    signal,
                });
            }
            if Instant::now() >= self.deadline {
                kill();
                let _ = child.wait();
                return Err(GitError::TimedOut {
                    url: url.clone(),
                    operation,
                    seconds: TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Whatever git left running in its group (a remote helper) goes
        // with it.
        kill();
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            let text = String::from_utf8_lossy(&stderr);
            let mut stderr = text.trim().to_owned();
            if stderr.is_empty() {
                stderr = format!("git exited with {status}");
            }
            return Err(GitError::Failed {
                url: url.clone(),
                operation,
                stderr,
            });
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }
}

/// The directory `subdir` of the checkout `tree`: every element a
/// directory, none a symlink (BuildKit's validateDirsOnly), so the tree
/// copied is inside the checkout.
fn subdir(tree: &Path, subdir: &str) -> Result<PathBuf, GitError> {
    let root = crate::confined::Root::open(tree)?;
    let mut dir = root.top()?;
    let mut walked = PathBuf::new();
    for part in subdir.split('/').filter(|part| !part.is_empty()) {
        walked.push(part);
        let invalid = |reason: String| GitError::Subdir {
            subdir: subdir.to_owned(),
            reason,
        };
        match dir.stat(OsStr::new(part))? {
            Some(stat) if stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR => {
                dir = dir.open_dir(OsStr::new(part))?;
            }
            Some(_) => {
                return Err(invalid(format!(
                    "git subpath {subdir:?} contains non-directory {:?}",
                    walked.display().to_string()
                )));
            }
            None => {
                return Err(invalid(format!(
                    "failed to lstat {:?}: no such file or directory",
                    walked.display().to_string()
                )));
            }
        }
    }
    Ok(tree.join(walked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("https://user:secret@host/r.git"),
            "https://user:xxxxx@host/r.git"
        );
        assert_eq!(
            redact("https://token@host/r.git"),
            "https://token@host/r.git"
        );
        assert_eq!(redact("git://host/r.git"), "git://host/r.git");
        assert_eq!(
            redact("http://a:b@host:8080/x@y.git"),
            "http://a:xxxxx@host:8080/x@y.git"
        );
    }
}
