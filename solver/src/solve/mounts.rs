//! `RUN --mount`: what each kind becomes in the sandbox.
//!
//! - `type=cache`: a directory in the store (`cache-mounts/`), by id (the
//!   target by default), made with `mode`, `uid` and `gid` the first time,
//!   kept across builds, never in a layer or a key. `sharing=locked` holds
//!   an exclusive lock on it while the step runs (across threads and
//!   processes); `private` takes another instance when the first is in
//!   use; `shared` just mounts it.
//! - `type=secret`: the `--secret` of that id, as a read-only file (0400,
//!   or `mode`, owned by `uid`:`gid`) at the target (`/run/secrets/<id>`)
//!   or as an environment variable (`env=`). Only its id is anywhere else.
//! - `type=bind`: the context (default), a stage or an image, read-only
//!   unless `rw`, whose writes are discarded.
//! - `type=tmpfs`: an empty tmpfs.
//! - `type=ssh`: the agent socket given with `--ssh`, bound in, with
//!   `SSH_AUTH_SOCK` set to it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use strata_frontend::graph::{Exec, MountType, Sharing, Vertex, VertexId};

use super::{BuildError, MountError, Secret, StepError, StepErrorKind};
use crate::exec::SandboxMount;
use crate::image::ImageError;
use crate::store::Store;

/// Where a bind mount's source is.
pub(crate) enum BindSource {
    /// A host path (in the build context), and what `.dockerignore` hides
    /// below it (relative paths).
    Host {
        /// The directory or file.
        path: PathBuf,
        /// Entries below it the mount must not show.
        hidden: Vec<PathBuf>,
    },
    /// Snapshot layers (a stage or an image), top first.
    Layers(Vec<PathBuf>),
}

/// Finds a bind mount's source: the input it names (none: the context) and
/// the path in it.
pub(crate) type FindSource<'f> =
    &'f dyn Fn(Option<VertexId>, Option<&str>) -> Result<BindSource, BuildError>;

/// The mounts of one RUN, and what must live as long as it runs.
pub(crate) struct Prepared {
    pub(crate) mounts: Vec<SandboxMount>,
    /// Held cache locks: released when dropped.
    _locks: Vec<std::fs::File>,
    /// Secret files and whiteout masks, removed when dropped.
    secret_dirs: Vec<PathBuf>,
    /// The step's ssh agent sockets, stopped when dropped.
    agents: Vec<super::agent::AgentProxy>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Before their directories go: each wakes its thread through its
        // socket.
        self.agents.clear();
        for dir in &self.secret_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn step_error(vertex: &Vertex, kind: impl Into<StepErrorKind>) -> BuildError {
    StepError::new(vertex.id, kind).into()
}

/// Fills a new cache directory (at the path given) from a stage or image.
type Seed<'s> = &'s dyn Fn(&std::path::Path) -> std::io::Result<()>;

/// The lock of the cache mount `dir`: `NAME.lock`, `NAME.1.lock`...,
/// appended, not put in place of an extension (`with_extension` made every
/// instance share the first one's lock, so a private mount in use made
/// instance after instance, thousands a second, until the first was free).
pub(crate) fn lock_path(dir: &std::path::Path) -> PathBuf {
    let mut lock_name = dir.file_name().unwrap_or_default().to_owned();
    lock_name.push(".lock");
    dir.with_file_name(lock_name)
}

/// A cache mount's directory: made with its mode and owner the first time.
/// An empty cache mount at `dir`, with its mode and owner.
fn new_cache_dir(dir: &std::path::Path, mode: u32, uid: u32, gid: u32) -> std::io::Result<()> {
    std::fs::create_dir(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
}

fn cache_dir(
    store: &Store,
    id: &str,
    instance: usize,
    mode: u32,
    uid: u32,
    gid: u32,
    seed: Option<Seed<'_>>,
) -> std::io::Result<PathBuf> {
    let name = super::key::key(&["cache-mount", id]).hex().to_owned();
    let base = store.path(crate::store::layout::CACHE_MOUNTS);
    let dir = if instance == 0 {
        base.join(&name[..32])
    } else {
        base.join(format!("{}.{instance}", &name[..32]))
    };
    if !dir.is_dir() {
        std::fs::create_dir_all(&base)?;
        // A name of its own: another build (or thread) making the same
        // mount at once stages beside it, never in it. Named as a
        // temporary file beside its target (`atomic::temp_beside`), so
        // that what a crash before the rename leaves is known for garbage
        // by `system check` and prune (`store::leftovers`); a name of
        // another shape stayed in `cache-mounts/` for ever.
        let staging = crate::atomic::temp_beside(&dir);
        crate::fault::point(crate::fault::Kind::Write, &staging);
        let made = match seed {
            // `from=`: the first content is a directory of a stage or image.
            Some(seed) => seed(&staging),
            None => new_cache_dir(&staging, mode, uid, gid),
        };
        if let Err(error) = made {
            // Nobody else will ever look for this name.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
        crate::fault::point(crate::fault::Kind::Rename, &dir);
        if std::fs::rename(&staging, &dir).is_err() {
            // Made by another build meanwhile.
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    Ok(dir)
}

/// Move `source` of the merged copy `whole` (a directory strata just made)
/// to `staging`: `source` is resolved inside the copy, symlinks followed
/// there, and what it resolves to must be a real directory below `whole`.
/// So a source of `../../x`, or a link to a host path, seeds from inside
/// the copy or fails; nothing but the copy is ever moved.
fn seed_from_copy(
    whole: &std::path::Path,
    source: &str,
    staging: &std::path::Path,
) -> std::io::Result<()> {
    let not_a_directory = || {
        std::io::Error::other(format!(
            "`{source}` is not a directory in the stage or image"
        ))
    };
    let root = crate::confined::Root::open(whole).map_err(std::io::Error::other)?;
    let relative = crate::confined::clean(std::path::Path::new(source));
    let found = root
        .pin(&relative)
        .map_err(std::io::Error::other)?
        .filter(crate::confined::Pinned::is_dir)
        .ok_or_else(not_a_directory)?;
    let real = found.real_path().map_err(std::io::Error::other)?;
    let whole = std::fs::canonicalize(whole)?;
    if real == whole {
        // The whole stage: the copy itself becomes the cache.
        return std::fs::rename(&whole, staging);
    }
    if !real.starts_with(&whole) {
        return Err(not_a_directory());
    }
    std::fs::rename(&real, staging)
}

/// A layer of overlayfs whiteouts (`userxattr` form) hiding `hidden`
/// (relative paths) from the layers below it.
fn write_mask(mask: &std::path::Path, hidden: &[PathBuf]) -> Result<(), crate::error::PathError> {
    let root = crate::confined::Root::open(mask)?;
    let whiteout = std::ffi::OsStr::new(crate::layer::OVERLAY_WHITEOUT_XATTR);
    let opaque = std::ffi::OsStr::new(crate::layer::OVERLAY_OPAQUE_XATTR);
    for path in hidden {
        let Some((dir, name)) = root.parent(path, crate::confined::Make::Missing)? else {
            continue;
        };
        dir.create_file(&name, 0o644)?;
        let shown = dir.path(&name);
        dir.set_xattr(&name, whiteout, b"y")
            .map_err(crate::error::PathError::at("mark as a whiteout", &shown))?;
        // The directory holds whiteouts (`x`): overlayfs looks for them.
        dir.set_own_xattr(opaque, b"x")
            .map_err(crate::error::PathError::at("mark", dir.shown()))?;
    }
    Ok(())
}

/// Translate a RUN's mounts.
pub(crate) fn prepare(
    store: &Store,
    vertex: &Vertex,
    exec: &Exec,
    env: &mut Vec<String>,
    options: &super::BuildOptions,
    bind_source: FindSource<'_>,
    fresh: bool,
) -> Result<Prepared, BuildError> {
    let (secrets, agents) = (&options.secrets, &options.ssh);
    let mut prepared = Prepared {
        mounts: Vec::new(),
        _locks: Vec::new(),
        secret_dirs: Vec::new(),
        agents: Vec::new(),
    };
    let io = |operation: &'static str, source: std::io::Error| {
        step_error(vertex, MountError::Io { operation, source })
    };
    // A RUN heredoc with its own interpreter (`#!`): the script, as a
    // read-only file at its path (`/dev/pipes/NAME`, as BuildKit mounts
    // it), which the command runs.
    for file in &exec.files {
        let dir = store.staging_dir("heredoc").map_err(ImageError::from)?;
        prepared.secret_dirs.push(dir.clone());
        let path = dir.join("script");
        let mut out = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|error| io("write a heredoc script", error))?;
        out.write_all(file.content.as_bytes())
            .map_err(|error| io("write a heredoc script", error))?;
        out.set_permissions(std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(|error| io("write a heredoc script", error))?;
        prepared.mounts.push(SandboxMount::Bind {
            source: path,
            target: file.path.clone(),
            read_only: true,
            discard_writes: false,
        });
    }
    for mount in &exec.mounts {
        let target = mount.target.clone();
        match mount.kind {
            MountType::Tmpfs => prepared.mounts.push(SandboxMount::Tmpfs {
                target,
                size: mount.size,
            }),
            MountType::Cache => {
                let id = mount.id.clone().unwrap_or_else(|| target.clone());
                let (mode, uid, gid) = (
                    mount.mode.unwrap_or(0o755),
                    mount.uid.unwrap_or(0),
                    mount.gid.unwrap_or(0),
                );
                let seed_from = match (&mount.from, mount.input) {
                    (Some(_), Some(index)) => match bind_source(
                        vertex.inputs.get(index).copied(),
                        mount.source.as_deref(),
                    )? {
                        BindSource::Layers(lowers) => Some(lowers),
                        BindSource::Host { .. } => None,
                    },
                    _ => None,
                };
                let source = mount.source.clone().unwrap_or_else(|| "/".to_owned());
                let seed = |staging: &std::path::Path| -> std::io::Result<()> {
                    let lowers = seed_from.as_deref().unwrap_or_default();
                    let whole = staging.with_extension("seed");
                    let _ = std::fs::remove_dir_all(&whole);
                    std::fs::create_dir(&whole)?;
                    crate::exec::merge_layers(lowers, &whole).map_err(std::io::Error::other)?;
                    let moved = seed_from_copy(&whole, &source, staging);
                    let _ = std::fs::remove_dir_all(&whole);
                    moved
                };
                let seed = seed_from
                    .as_ref()
                    .map(|_| &seed as &dyn Fn(&std::path::Path) -> std::io::Result<()>);
                let made = |error: std::io::Error| {
                    if error.raw_os_error() == Some(22) {
                        step_error(vertex, StepErrorKind::CacheOwner { uid, gid })
                    } else {
                        io("make the cache directory", error)
                    }
                };
                if fresh {
                    // `--no-cache`: the step starts from an empty cache (or
                    // its `from=` seed) of its own, which goes when it
                    // ends, as BuildKit's (testCacheMountModeNoCache).
                    let scratch = store.staging_dir("cache-mount").map_err(ImageError::from)?;
                    prepared.secret_dirs.push(scratch.clone());
                    let dir = scratch.join("cache");
                    match seed {
                        Some(seed) => seed(&dir),
                        None => new_cache_dir(&dir, mode, uid, gid),
                    }
                    .map_err(made)?;
                    prepared.mounts.push(SandboxMount::Bind {
                        source: dir,
                        target,
                        read_only: mount.readonly,
                        discard_writes: false,
                    });
                    continue;
                }
                let mut instance = 0;
                let dir = loop {
                    let dir =
                        cache_dir(store, &id, instance, mode, uid, gid, seed).map_err(made)?;
                    if mount.sharing == Sharing::Shared {
                        break dir;
                    }
                    let lock_path = lock_path(&dir);
                    let lock = std::fs::File::options()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&lock_path)
                        .map_err(|error| io("open the cache lock", error))?;
                    match mount.sharing {
                        // One user at a time: wait for it.
                        Sharing::Locked => {
                            lock.lock().map_err(|error| io("lock the cache", error))?;
                            prepared._locks.push(lock);
                            break dir;
                        }
                        // In use: another instance.
                        _ => match lock.try_lock() {
                            Ok(()) => {
                                prepared._locks.push(lock);
                                break dir;
                            }
                            Err(_) => instance += 1,
                        },
                    }
                };
                prepared.mounts.push(SandboxMount::Bind {
                    source: dir,
                    target,
                    read_only: mount.readonly,
                    discard_writes: false,
                });
            }
            MountType::Secret => {
                let id = mount.id.clone().unwrap_or_default();
                let Some(secret) = secrets.get(&id) else {
                    if mount.required {
                        return Err(step_error(vertex, StepErrorKind::SecretRequired { id }));
                    }
                    continue;
                };
                let content = match secret {
                    Secret::File(path) => std::fs::read(path).map_err(|source| {
                        step_error(
                            vertex,
                            StepErrorKind::SecretRead {
                                id: id.clone(),
                                path: path.clone(),
                                source,
                            },
                        )
                    })?,
                    Secret::Env(name) => std::env::var_os(name)
                        .ok_or_else(|| {
                            step_error(
                                vertex,
                                StepErrorKind::SecretUnset {
                                    id: id.clone(),
                                    name: name.clone(),
                                },
                            )
                        })?
                        .into_encoded_bytes(),
                };
                // `env=` alone: a variable only; with `target=` too, both
                // (BuildKit's testSecretAsEnvironWithFileMount).
                if let Some(name) = &mount.env {
                    env.push(format!("{name}={}", String::from_utf8_lossy(&content)));
                    if target.is_empty() {
                        continue;
                    }
                }
                // In a directory only strata can enter, created with its
                // final mode: no other user can open it, not even for an
                // instant before a chmod.
                let dir = store.staging_dir("secret").map_err(ImageError::from)?;
                prepared.secret_dirs.push(dir.clone());
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|error| io("protect the secrets directory", error))?;
                let file = dir.join("secret");
                let mut out = std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .mode(mount.mode.unwrap_or(0o400) & 0o7777)
                    .open(&file)
                    .map_err(|error| io("write a secret", error))?;
                out.write_all(&content)
                    .map_err(|error| io("write a secret", error))?;
                // The mode asked for, whatever the umask took from it.
                out.set_permissions(std::fs::Permissions::from_mode(
                    mount.mode.unwrap_or(0o400) & 0o7777,
                ))
                .map_err(|error| io("write a secret", error))?;
                std::os::unix::fs::fchown(
                    &out,
                    Some(mount.uid.unwrap_or(0)),
                    Some(mount.gid.unwrap_or(0)),
                )
                .map_err(|error| io("write a secret", error))?;
                let target = if target.is_empty() {
                    format!("/run/secrets/{id}")
                } else {
                    target
                };
                prepared.mounts.push(SandboxMount::Bind {
                    source: file,
                    target,
                    read_only: true,
                    discard_writes: false,
                });
            }
            MountType::Bind => {
                let input = mount
                    .input
                    .and_then(|index| vertex.inputs.get(index))
                    .copied();
                match bind_source(input, mount.source.as_deref())? {
                    BindSource::Host { path, hidden } if !hidden.is_empty() => {
                        // The context as BuildKit mounts it, without what
                        // .dockerignore excludes: an overlay whose top layer
                        // holds a whiteout for each.
                        let mask = store.staging_dir("mask").map_err(ImageError::from)?;
                        prepared.secret_dirs.push(mask.clone());
                        write_mask(&mask, &hidden)
                            .map_err(|error| step_error(vertex, MountError::from(error)))?;
                        prepared.mounts.push(SandboxMount::Layers {
                            lowers: vec![mask, path],
                            source: "/".to_owned(),
                            target,
                            writable: !mount.readonly,
                        });
                    }
                    BindSource::Host { path: source, .. } => {
                        prepared.mounts.push(SandboxMount::Bind {
                            source,
                            target,
                            read_only: mount.readonly,
                            discard_writes: !mount.readonly,
                        })
                    }
                    BindSource::Layers(lowers) => prepared.mounts.push(SandboxMount::Layers {
                        lowers,
                        source: mount.source.clone().unwrap_or_else(|| "/".to_owned()),
                        target,
                        writable: !mount.readonly,
                    }),
                }
            }
            MountType::Ssh => {
                // The agent's socket, bound in, and SSH_AUTH_SOCK pointing
                // at it.
                let id = mount.id.clone().unwrap_or_else(|| "default".to_owned());
                let Some(socket) = agents.get(&id) else {
                    if mount.required {
                        return Err(step_error(vertex, StepErrorKind::SshRequired { id }));
                    }
                    continue;
                };
                let (mode, uid, gid) = (
                    mount.mode.unwrap_or(0o600),
                    mount.uid.unwrap_or(0),
                    mount.gid.unwrap_or(0),
                );
                let dir = store.staging_dir("ssh-agent").map_err(ImageError::from)?;
                prepared.secret_dirs.push(dir.clone());
                let path = dir.join("agent.sock");
                let proxy = super::agent::AgentProxy::start(&path, socket, mode, uid, gid)
                    .map_err(|error| {
                        if error.raw_os_error() == Some(22) {
                            step_error(vertex, StepErrorKind::SshOwner { uid, gid })
                        } else {
                            io("make the ssh agent socket", error)
                        }
                    })?;
                prepared.agents.push(proxy);
                env.push(format!("SSH_AUTH_SOCK={target}"));
                prepared.mounts.push(SandboxMount::Bind {
                    source: path,
                    target,
                    read_only: false,
                    discard_writes: false,
                });
            }
        }
    }
    Ok(prepared)
}
