//! The one way strata touches a path under a root it does not trust.
//!
//! **The rule.** A layer being unpacked, a snapshot, a staging directory, a
//! sandbox's rootfs, a stage, a build context: anything whose content came
//! from a Dockerfile, a context, an image or a registry is an untrusted
//! root. A path inside one is resolved here, and nowhere else:
//!
//! - `..` and symlinks are resolved as they would be inside a container
//!   whose `/` is the root (`openat2(RESOLVE_IN_ROOT)` through libpathrs,
//!   which falls back to a checked walk on kernels without `openat2`): no
//!   path ever resolves outside the root.
//! - The last component is never followed. Every operation on it is an
//!   `*at` call on the resolved parent's descriptor with
//!   `AT_SYMLINK_NOFOLLOW` or `O_NOFOLLOW`: create, link, unlink, chmod,
//!   chown, times, xattrs. A file swapped for a symlink between two calls
//!   is then acted on as the symlink, never as what it points at.
//! - A name handed to [`Dir`] is one component ([`check_name`]): never
//!   empty, `.`, `..` or holding a `/`.
//!
//! So nothing may `Path::join` a path onto an untrusted root and hand the
//! result to a call that follows links; code review looks for exactly that.
//!
//! Why libpathrs (the `pathrs` crate) rather than `cap-std`: cap-std
//! confines with `RESOLVE_BENEATH` semantics, where an absolute symlink or a
//! `..` above the root is an error. Images are full of absolute symlinks
//! (`/etc/mtab -> /proc/mounts`, `/var/run -> /run`) that must resolve
//! *inside* the root, as the container sees them: that is
//! `RESOLVE_IN_ROOT`, libpathrs's model, written for runc's own path-safety
//! fixes (CVE-2019-19921, CVE-2021-30465) and hardened against races on
//! kernels that lack `openat2`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::PathError;

/// A directory whose content is not trusted, opened once: every path below
/// it resolves inside it.
pub struct Root {
    inner: pathrs::Root,
    path: PathBuf,
}

/// How [`Root::dir`] treats missing directories on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Make {
    /// Make none: a missing one gives `None`.
    Never,
    /// Make missing ones (mode 0755 before the umask).
    Missing,
    /// Make missing ones, and replace a file found where a directory must
    /// be (a layer that turns a file into a directory).
    ReplacingFiles,
}

/// A directory reached inside a [`Root`] (an `O_PATH` descriptor): the
/// operations take one name in it and never follow it.
pub struct Dir {
    fd: OwnedFd,
    /// Where it is, for messages only: never opened by this path.
    path: PathBuf,
}

/// `path` as plain components, `..` resolved lexically and stopping at the
/// root, as a path inside a container: `/a/../../b` is `b`. For paths a
/// build names (a WORKDIR, a mount target), before any lookup.
pub fn clean(path: &Path) -> PathBuf {
    let mut parts: Vec<&OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    parts.iter().collect()
}

/// Refuse a name that is not a single path component.
pub fn check_name(name: &OsStr) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a file name", crate::name::escape_os(name)),
        ));
    }
    Ok(())
}

/// A libpathrs error as the `io::Error` it carries.
pub(crate) fn from_pathrs(error: pathrs::error::Error) -> io::Error {
    match error.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(error.to_string()),
    }
}

fn fail(operation: &'static str, path: PathBuf) -> impl FnOnce(io::Error) -> PathError {
    move |source| PathError {
        operation,
        path,
        source,
    }
}

fn not_a_directory(path: &Path) -> PathError {
    PathError {
        operation: "open the directory",
        path: path.to_owned(),
        source: io::Error::from_raw_os_error(nix::libc::ENOTDIR),
    }
}

/// Whether a stat is of a directory, a symlink.
fn kind(stat: &FileStat) -> nix::libc::mode_t {
    stat.st_mode & nix::libc::S_IFMT
}

impl Root {
    /// Open `path` (itself trusted: a directory strata made or was given)
    /// as a root.
    pub fn open(path: &Path) -> Result<Root, PathError> {
        let inner = pathrs::Root::open(path)
            .map_err(|error| fail("open", path.to_owned())(from_pathrs(error)))?;
        Ok(Root {
            inner,
            path: path.to_owned(),
        })
    }

    /// A directory reached inside another root, as a root of its own.
    pub fn from_dir(dir: Dir) -> Root {
        Root {
            inner: pathrs::Root::from_fd(dir.fd),
            path: dir.path,
        }
    }

    /// The root's host path (for messages and for handing to trusted code).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory itself.
    pub fn top(&self) -> Result<Dir, PathError> {
        let fd = self
            .inner
            .as_fd()
            .try_clone_to_owned()
            .map_err(fail("open", self.path.clone()))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    /// Resolve `relative` inside the root, following symlinks there.
    fn resolve(&self, relative: &Path) -> Result<Dir, PathError> {
        let shown = self.shown(relative);
        let handle = self
            .inner
            .resolve(relative)
            .map_err(|error| fail("resolve", shown.clone())(from_pathrs(error)))?;
        let dir = Dir {
            fd: handle.into(),
            path: shown,
        };
        let stat = nix::sys::stat::fstat(&dir.fd)
            .map_err(|errno| fail("inspect", dir.path.clone())(errno.into()))?;
        if kind(&stat) != nix::libc::S_IFDIR {
            return Err(not_a_directory(&dir.path));
        }
        Ok(dir)
    }

    /// The host path `relative` stands for, for messages.
    fn shown(&self, relative: &Path) -> PathBuf {
        let mut shown = self.path.clone();
        for component in relative.components() {
            if let Component::Normal(part) = component {
                shown.push(part);
            }
        }
        shown
    }

    /// The directory `relative`, resolved inside the root (symlinks and
    /// `..` on the way followed there), made where missing as `make` says.
    /// `None` when it is missing and `make` is [`Make::Never`].
    pub fn dir(&self, relative: &Path, make: Make) -> Result<Option<Dir>, PathError> {
        let mut current = self.top()?;
        // The path as written so far: what libpathrs resolves when a
        // symlink or `..` is met.
        let mut prefix = PathBuf::new();
        for component in relative.components() {
            let name = match component {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                Component::ParentDir => {
                    prefix.push("..");
                    current = self.resolve(&prefix)?;
                    continue;
                }
                Component::Normal(name) => name,
            };
            prefix.push(name);
            current = match current.stat(name)? {
                Some(stat) if kind(&stat) == nix::libc::S_IFDIR => current.open_dir(name)?,
                // A dangling link is an error (libpathrs makes nothing
                // through one), never a path outside.
                Some(stat) if kind(&stat) == nix::libc::S_IFLNK => self.resolve(&prefix)?,
                Some(_) if make == Make::ReplacingFiles => {
                    current.remove(name)?;
                    current.mkdir(name, 0o755)?;
                    current.open_dir(name)?
                }
                Some(_) => return Err(not_a_directory(&current.path(name))),
                None if make == Make::Never => return Ok(None),
                None => {
                    match current.mkdir(name, 0o755) {
                        Ok(()) => {}
                        // Made meanwhile (a parallel step): use it.
                        Err(error) if error.source.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(error) => return Err(error),
                    }
                    current.open_dir(name)?
                }
            };
        }
        Ok(Some(current))
    }

    /// The directory holding `relative` (resolved as [`Root::dir`] does)
    /// and its last name. An error if `relative` names no entry (`/`,
    /// `a/..`).
    pub fn parent(
        &self,
        relative: &Path,
        make: Make,
    ) -> Result<Option<(Dir, OsString)>, PathError> {
        let Some(Component::Normal(name)) = relative.components().next_back() else {
            return Err(PathError {
                operation: "resolve",
                path: self.shown(relative),
                source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no entry"),
            });
        };
        let parent = relative.parent().unwrap_or(Path::new(""));
        Ok(self.dir(parent, make)?.map(|dir| (dir, name.to_owned())))
    }

    /// Open the regular file `relative` for reading, following symlinks
    /// inside the root, and read it whole if it holds at most `limit`
    /// bytes. `None` if it does not exist; an error if it is not a regular
    /// file (a device, a fifo: never read) or is larger.
    pub fn read_file(&self, relative: &Path, limit: u64) -> Result<Option<Vec<u8>>, PathError> {
        let shown = self.shown(relative);
        match self.open_regular(relative)? {
            Regular::File(file) => Ok(Some(read_bounded(file, &shown, limit)?)),
            Regular::Missing => Ok(None),
            Regular::Other => Err(PathError {
                operation: "read",
                path: shown,
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            }),
        }
    }

    /// Open the regular file `relative` for reading, following symlinks
    /// inside the root. What it resolves to is checked on an `O_PATH`
    /// descriptor first: a fifo (which would block) or a device (the
    /// host's) is never opened.
    pub fn open_regular(&self, relative: &Path) -> Result<Regular, PathError> {
        let shown = self.shown(relative);
        let handle = match self.inner.resolve(relative) {
            Ok(handle) => handle,
            Err(error) => {
                let error = from_pathrs(error);
                if error.kind() == io::ErrorKind::NotFound {
                    return Ok(Regular::Missing);
                }
                return Err(fail("open", shown)(error));
            }
        };
        let stat = nix::sys::stat::fstat(&handle)
            .map_err(|errno| fail("inspect", shown.clone())(errno.into()))?;
        if kind(&stat) != nix::libc::S_IFREG {
            return Ok(Regular::Other);
        }
        handle
            .reopen(pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_CLOEXEC)
            .map(Regular::File)
            .map_err(|error| fail("open", shown)(from_pathrs(error)))
    }

    /// The target of the symlink `relative`, if it is one (for messages:
    /// never to be resolved by the caller).
    pub fn read_link(&self, relative: &Path) -> Option<PathBuf> {
        self.inner.readlink(relative).ok()
    }
}

/// What [`Root::open_regular`] found.
pub enum Regular {
    /// A regular file, open for reading.
    File(File),
    /// Nothing there.
    Missing,
    /// Something else (a directory, a fifo, a device): not opened.
    Other,
}

/// An entry resolved inside a root and held by an `O_PATH` descriptor, for
/// calls that only take a path (mount(2)): `/proc/self/fd/N` names the
/// entry itself, so what it resolved to cannot be swapped in between
/// (runc's way of mounting into a container's rootfs, since CVE-2021-30465).
pub struct Pinned {
    fd: OwnedFd,
    path: PathBuf,
    is_dir: bool,
}

impl Pinned {
    /// The path that reaches the entry through the descriptor.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Where it is, for messages only.
    pub fn shown(&self) -> &Path {
        &self.path
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// Where it really is on the host (the descriptor's own link): for a
    /// caller that must hand the path to another process, and that has
    /// checked it lies below a root of its own.
    pub fn real_path(&self) -> Result<PathBuf, PathError> {
        std::fs::read_link(self.proc_path()).map_err(fail("resolve", self.path.clone()))
    }
}

impl Root {
    /// Resolve `relative` inside the root, following every symlink there
    /// (the last one too, as a mount target is): `None` when it is missing.
    pub fn pin(&self, relative: &Path) -> Result<Option<Pinned>, PathError> {
        let shown = self.shown(relative);
        // An empty path is the root itself.
        let relative = if relative.as_os_str().is_empty() {
            Path::new("/")
        } else {
            relative
        };
        let handle = match self.inner.resolve(relative) {
            Ok(handle) => handle,
            Err(error) => {
                let error = from_pathrs(error);
                if error.kind() == io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(fail("resolve", shown)(error));
            }
        };
        let fd: OwnedFd = handle.into();
        let stat = nix::sys::stat::fstat(&fd)
            .map_err(|errno| fail("inspect", shown.clone())(errno.into()))?;
        Ok(Some(Pinned {
            fd,
            path: shown,
            is_dir: kind(&stat) == nix::libc::S_IFDIR,
        }))
    }

    /// [`Root::pin`], making `relative` first where it is missing: a
    /// directory, or an empty file when `dir` is false (a mount point for
    /// a file), its parents made inside the root.
    pub fn pin_or_make(&self, relative: &Path, dir: bool) -> Result<Pinned, PathError> {
        if let Some(pinned) = self.pin(relative)? {
            return Ok(pinned);
        }
        // A dangling symlink at the end: what it names is made, inside the
        // root (link by link, each read here and never followed by a
        // syscall; the final pin checks the result again).
        let mut wanted = clean(relative);
        for _ in 0..40 {
            let Some((parent, name)) = self.parent(&wanted, Make::Missing)? else {
                break;
            };
            match parent.stat(&name)? {
                Some(stat) if kind(&stat) == nix::libc::S_IFLNK => {
                    let link = parent.read_link(&name)?;
                    let base = if link.is_absolute() {
                        PathBuf::new()
                    } else {
                        wanted.parent().map(Path::to_owned).unwrap_or_default()
                    };
                    wanted = clean(&base.join(link));
                }
                Some(_) => break,
                None if dir => {
                    parent.mkdir(&name, 0o755)?;
                    break;
                }
                None => {
                    parent.create_file(&name, 0o644)?;
                    break;
                }
            }
        }
        self.pin(relative)?.ok_or_else(|| PathError {
            operation: "resolve",
            path: self.shown(relative),
            source: io::Error::from(io::ErrorKind::NotFound),
        })
    }
}

/// Read a regular file whole, at most `limit` bytes.
pub fn read_bounded(file: File, shown: &Path, limit: u64) -> Result<Vec<u8>, PathError> {
    use std::io::Read;
    let meta = file.metadata().map_err(fail("inspect", shown.to_owned()))?;
    if !meta.is_file() {
        return Err(PathError {
            operation: "read",
            path: shown.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        });
    }
    let mut content = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut content)
        .map_err(fail("read", shown.to_owned()))?;
    if content.len() as u64 > limit {
        return Err(PathError {
            operation: "read",
            path: shown.to_owned(),
            source: io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than the limit of {limit} bytes"),
            ),
        });
    }
    Ok(content)
}

/// A walk down a tree one branch at a time, such as a depth-first walk
/// makes: the directories of the last path asked for stay open, and the
/// next path reuses the part it shares with it. Each directory is opened
/// once, relative to its parent's descriptor and never through a symlink
/// (`O_NOFOLLOW | O_DIRECTORY`): nothing is resolved from the top again,
/// so a walk costs one `openat` per directory whatever the depth (a walk
/// that resolved every entry from the top cost depth² calls, see
/// `bench/deep-context.sh`), and a directory swapped for a symlink during
/// the walk is an error, never followed.
pub struct Chain {
    top: Dir,
    /// The open directories below `top`, each with its name.
    open: Vec<(OsString, Dir)>,
}

impl Chain {
    /// A walk below `top`.
    pub fn new(top: Dir) -> Chain {
        Chain {
            top,
            open: Vec::new(),
        }
    }

    /// Keep open only the part of the last path that `parts` begins with:
    /// how many of `parts` are open.
    pub fn keep(&mut self, parts: &[OsString]) -> usize {
        let shared = self
            .open
            .iter()
            .zip(parts)
            .take_while(|((open, _), part)| open == *part)
            .count();
        self.open.truncate(shared);
        shared
    }

    /// The deepest open directory (the top when none is).
    pub fn last(&self) -> &Dir {
        self.open.last().map_or(&self.top, |(_, dir)| dir)
    }

    /// Descend into `dir`, the directory `name` in [`Chain::last`].
    pub fn push(&mut self, name: &OsStr, dir: Dir) {
        self.open.push((name.to_owned(), dir));
    }

    /// Forget the open directories below depth `depth`.
    pub fn truncate(&mut self, depth: usize) {
        self.open.truncate(depth);
    }

    /// The directory `parts` below the top, each element that is not open
    /// yet opened in its parent ([`Dir::open_dir`]: a symlink is refused).
    /// `None` when one is missing, or is not a directory.
    pub fn dir(&mut self, parts: &[OsString]) -> Result<Option<&Dir>, PathError> {
        let shared = self.keep(parts);
        for name in &parts[shared..] {
            match self.last().stat(name)? {
                Some(stat) if kind(&stat) == nix::libc::S_IFDIR => {}
                _ => return Ok(None),
            }
            let dir = self.last().open_dir(name)?;
            self.push(name, dir);
        }
        Ok(Some(self.last()))
    }

    /// The directory holding `parts` ([`Chain::dir`] of all but the last)
    /// and the last name.
    pub fn parent<'p>(
        &mut self,
        parts: &'p [OsString],
    ) -> Result<Option<(&Dir, &'p OsStr)>, PathError> {
        let Some((name, parent)) = parts.split_last() else {
            return Ok(None);
        };
        Ok(self.dir(parent)?.map(|dir| (dir, name.as_os_str())))
    }
}

impl Dir {
    /// A directory the caller opened itself (through checked descriptors,
    /// never following a link); `path` is for messages.
    pub(crate) fn from_fd(fd: OwnedFd, path: PathBuf) -> Dir {
        Dir { fd, path }
    }

    /// Where `name` in this directory is, for messages.
    pub fn path(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// The directory's own path, for messages.
    pub fn shown(&self) -> &Path {
        &self.path
    }

    fn checked(&self, operation: &'static str, name: &OsStr) -> Result<(), PathError> {
        check_name(name).map_err(fail(operation, self.path(name)))
    }

    /// `lstat` of `name`: `None` if there is nothing there.
    pub fn stat(&self, name: &OsStr) -> Result<Option<FileStat>, PathError> {
        self.checked("inspect", name)?;
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(errno) => Err(fail("inspect", self.path(name))(errno.into())),
        }
    }

    /// The directory `name` (a symlink there is refused, not followed).
    pub fn open_dir(&self, name: &OsStr) -> Result<Dir, PathError> {
        self.checked("open the directory", name)?;
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| fail("open the directory", self.path(name))(errno.into()))?;
        Ok(Dir {
            fd,
            path: self.path(name),
        })
    }

    /// Open the file `name` for reading (a symlink there is refused, not
    /// followed).
    pub fn open_read(&self, name: &OsStr) -> Result<File, PathError> {
        self.checked("open", name)?;
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| fail("open", self.path(name))(errno.into()))?;
        Ok(File::from(fd))
    }

    /// Read the xattr `key` of `name` (of a symlink itself).
    pub fn xattr(&self, name: &OsStr, key: &OsStr) -> io::Result<Option<Vec<u8>>> {
        check_name(name)?;
        // `xattr::get` is `lgetxattr`: the last component is not followed.
        xattr::get(self.proc_path(Some(name)), key)
    }

    /// Make the directory `name`.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> Result<(), PathError> {
        self.checked("create the directory", name)?;
        nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(mode))
            .map_err(|errno| fail("create the directory", self.path(name))(errno.into()))
    }

    /// Create the regular file `name`, which must not exist (a symlink
    /// planted there makes this fail), open for writing.
    pub fn create_file(&self, name: &OsStr, mode: u32) -> Result<File, PathError> {
        self.checked("create", name)?;
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|errno| fail("create", self.path(name))(errno.into()))?;
        Ok(File::from(fd))
    }

    /// Make the symlink `name` pointing at `target` (never followed here).
    pub fn symlink(&self, name: &OsStr, target: &Path) -> Result<(), PathError> {
        self.checked("create the symlink", name)?;
        nix::unistd::symlinkat(target, &self.fd, name)
            .map_err(|errno| fail("create the symlink", self.path(name))(errno.into()))
    }

    /// Read the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> Result<PathBuf, PathError> {
        self.checked("read the link", name)?;
        nix::fcntl::readlinkat(&self.fd, name)
            .map(PathBuf::from)
            .map_err(|errno| fail("read the link", self.path(name))(errno.into()))
    }

    /// Make `name` a hardlink to `source_name` in `source` (a symlink there
    /// is linked itself, not its target).
    pub fn hard_link(
        &self,
        name: &OsStr,
        source: &Dir,
        source_name: &OsStr,
    ) -> Result<(), PathError> {
        self.checked("create the hardlink", name)?;
        source.checked("create the hardlink", source_name)?;
        nix::unistd::linkat(&source.fd, source_name, &self.fd, name, AtFlags::empty())
            .map_err(|errno| fail("create the hardlink", self.path(name))(errno.into()))
    }

    /// Move `name` to `to_name` in `to` (both names checked; neither is
    /// followed, and whatever is at `to_name` is replaced as rename(2)
    /// replaces it).
    pub fn rename_to(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> Result<(), PathError> {
        self.checked("move", name)?;
        to.checked("move", to_name)?;
        nix::fcntl::renameat(&self.fd, name, &to.fd, to_name)
            .map_err(|errno| fail("move", self.path(name))(errno.into()))
    }

    /// Remove whatever `name` is, a directory with all it holds; nothing
    /// there is fine.
    pub fn remove(&self, name: &OsStr) -> Result<(), PathError> {
        let Some(stat) = self.stat(name)? else {
            return Ok(());
        };
        if kind(&stat) == nix::libc::S_IFDIR {
            pathrs::RootRef::from_fd(self.fd.as_fd())
                .remove_all(name)
                .map_err(|error| fail("remove", self.path(name))(from_pathrs(error)))
        } else {
            nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(|errno| fail("remove", self.path(name))(errno.into()))
        }
    }

    /// The names in this directory, sorted.
    pub fn list(&self) -> Result<Vec<OsString>, PathError> {
        let mut names = Vec::new();
        // The magic link names the descriptor's own directory: opening it
        // cannot be redirected by a rename or a symlink.
        let listing =
            std::fs::read_dir(self.proc_path(None)).map_err(fail("list", self.path.clone()))?;
        for entry in listing {
            names.push(entry.map_err(fail("list", self.path.clone()))?.file_name());
        }
        names.sort();
        Ok(names)
    }

    /// `name` in this directory as a path that reaches it through the
    /// descriptor (`/proc/self/fd/N/name`), for calls that take a path and
    /// do not follow the last component (`lstat`, `readlink`, `l*xattr`,
    /// `open` with `O_NOFOLLOW`): nothing above `name` is resolved again,
    /// so no symlink swapped in above it can redirect the call.
    pub fn at(&self, name: &OsStr) -> Result<PathBuf, PathError> {
        self.checked("resolve", name)?;
        Ok(self.proc_path(Some(name)))
    }

    /// A second descriptor of this directory.
    pub fn try_clone(&self) -> Result<Dir, PathError> {
        Ok(Dir {
            fd: self
                .fd
                .try_clone()
                .map_err(fail("open", self.path.clone()))?,
            path: self.path.clone(),
        })
    }

    /// `/proc/self/fd/N[/name]`: this directory (or `name` in it) reached
    /// through the descriptor, for calls that take only a path. With a
    /// name, only `l*` calls (which do not follow it) may be given it.
    fn proc_path(&self, name: Option<&OsStr>) -> PathBuf {
        let mut path = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        if let Some(name) = name {
            path.push(name);
        }
        path
    }

    /// Give `name` an owner, not following it. The raw error, so that the
    /// caller can tell a missing privilege from a failure.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        check_name(name)?;
        nix::unistd::fchownat(
            &self.fd,
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io::Error::from)
    }

    /// Set the mode of `name`; a symlink there is refused, not followed.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> Result<(), PathError> {
        self.checked("set the mode of", name)?;
        // A directory: opened (never through a link) and fchmod'ed, three
        // calls. Anything else, or a directory we may not open: glibc's
        // `fchmodat(AT_SYMLINK_NOFOLLOW)`, which goes through /proc.
        if let Ok(fd) = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            return nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
                .map_err(|errno| fail("set the mode of", self.path(name))(errno.into()));
        }
        nix::sys::stat::fchmodat(
            &self.fd,
            name,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::NoFollowSymlink,
        )
        .map_err(|errno| fail("set the mode of", self.path(name))(errno.into()))
    }

    /// Set the access and modification times of `name` (of a symlink
    /// itself), to the nanosecond.
    pub fn set_times(
        &self,
        name: &OsStr,
        accessed: (i64, i64),
        modified: (i64, i64),
    ) -> Result<(), PathError> {
        self.checked("set the times of", name)?;
        let spec = |(seconds, nanoseconds): (i64, i64)| {
            TimeSpec::new(seconds, nanoseconds as nix::libc::c_long)
        };
        nix::sys::stat::utimensat(
            &self.fd,
            name,
            &spec(accessed),
            &spec(modified),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|errno| fail("set the times of", self.path(name))(errno.into()))
    }

    /// Set an xattr on `name` (on a symlink itself); the raw error.
    pub fn set_xattr(&self, name: &OsStr, key: &OsStr, value: &[u8]) -> io::Result<()> {
        check_name(name)?;
        // `xattr::set` is `lsetxattr`: the last component is not followed.
        xattr::set(self.proc_path(Some(name)), key, value)
    }

    /// This directory opened for reading (an `O_PATH` descriptor takes no
    /// xattr calls).
    fn reopen(&self) -> io::Result<File> {
        openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(io::Error::from)
    }

    /// Read an xattr of this directory itself.
    pub fn own_xattr(&self, key: &OsStr) -> io::Result<Option<Vec<u8>>> {
        use xattr::FileExt;
        self.reopen()?.get_xattr(key)
    }

    /// Set an xattr on this directory itself.
    pub fn set_own_xattr(&self, key: &OsStr, value: &[u8]) -> io::Result<()> {
        use xattr::FileExt;
        self.reopen()?.set_xattr(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_components() {
        for bad in ["", ".", "..", "a/b", "/"] {
            assert!(check_name(OsStr::new(bad)).is_err(), "{bad:?}");
        }
        for good in ["a", "..a", ".wh..", "a b"] {
            assert!(check_name(OsStr::new(good)).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn symlinks_and_dotdot_resolve_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root_dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root_dir.path().join("up")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        for path in ["up/x", "../../x", "up/../../x"] {
            let dir = root
                .dir(Path::new(path), Make::Missing)
                .unwrap_or_else(|error| panic!("{path}: {error:?}"))
                .unwrap();
            dir.create_file(OsStr::new("canary"), 0o644).unwrap();
            dir.remove(OsStr::new("canary")).unwrap();
        }
        // `abs` names `/<outside>` inside the root, which does not exist.
        let error = root.dir(Path::new("abs/x"), Make::Missing).err().unwrap();
        assert_eq!(error.source.kind(), io::ErrorKind::NotFound, "{error:?}");
        std::fs::create_dir_all(
            root_dir
                .path()
                .join(outside.path().strip_prefix("/").unwrap()),
        )
        .unwrap();
        root.dir(Path::new("abs/x"), Make::Missing)
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let inside = root_dir
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("x");
        assert!(inside.is_dir(), "{}", inside.display());
        assert!(root_dir.path().join("x").is_dir());
    }

    #[test]
    fn the_last_component_is_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        let canary = outside.path().join("canary");
        std::fs::write(&canary, b"keep").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&canary, std::fs::Permissions::from_mode(0o600)).unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&canary, root_dir.path().join("link")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let top = root.top().unwrap();
        let link = OsStr::new("link");
        assert!(top.chmod(link, 0o4777).is_err());
        top.set_times(link, (0, 0), (0, 0)).unwrap();
        assert!(top.create_file(link, 0o644).is_err());
        assert!(top.open_dir(link).is_err());
        top.remove(link).unwrap();
        let meta = std::fs::metadata(&canary).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_ne!(
            meta.modified().unwrap(),
            std::time::UNIX_EPOCH,
            "the canary's time was set through the link"
        );
        assert_eq!(std::fs::read(&canary).unwrap(), b"keep");
    }

    #[test]
    fn a_chain_opens_each_directory_once_and_never_through_a_symlink() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(outside.path().join("c")).unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root_dir.path().join("a/b/c")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let mut chain = Chain::new(root.top().unwrap());
        let parts = |path: &str| -> Vec<OsString> { path.split('/').map(OsString::from).collect() };
        let held = chain.dir(&parts("a/b")).unwrap().unwrap();
        held.create_file(OsStr::new("first"), 0o644).unwrap();
        // `a/b` swapped for a link to the outside while the walk is in it:
        // what is open stays the directory it was, wherever it is now.
        std::fs::rename(root_dir.path().join("a/b"), root_dir.path().join("a/moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root_dir.path().join("a/b")).unwrap();
        let below = parts("a/b/c/x");
        let (dir, name) = chain.parent(&below).unwrap().unwrap();
        assert_eq!(name, "x");
        dir.create_file(OsStr::new("second"), 0o644).unwrap();
        assert!(root_dir.path().join("a/moved/c/second").is_file());
        assert!(!outside.path().join("c/second").exists());
        // Reached again from `a`, the link is not followed.
        assert_eq!(chain.keep(&parts("a")), 1);
        assert!(chain.dir(&parts("a/b/c")).unwrap().is_none());
        assert!(chain.parent(&below).unwrap().is_none());
        // `at` names the entry through the descriptor: its `lstat` sees the
        // link itself.
        let top = root.top().unwrap();
        let a = top.open_dir(OsStr::new("a")).unwrap();
        let meta = std::fs::symlink_metadata(a.at(OsStr::new("b")).unwrap()).unwrap();
        assert!(meta.file_type().is_symlink());
        assert!(a.at(OsStr::new("..")).is_err());
    }

    #[test]
    fn reads_are_bounded_and_only_of_regular_files() {
        let root_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(root_dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root_dir.path().join("etc/passwd")).unwrap();
        std::fs::write(root_dir.path().join("big"), vec![b'x'; 100]).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        // `/dev/zero` inside the root does not exist.
        assert!(
            root.read_file(Path::new("etc/passwd"), 10)
                .unwrap()
                .is_none()
        );
        let error = root.read_file(Path::new("big"), 10).unwrap_err();
        assert!(error.to_string().starts_with("failed to read `"), "{error}");
        assert_eq!(
            root.read_file(Path::new("/big"), 100)
                .unwrap()
                .unwrap()
                .len(),
            100
        );
    }
}
