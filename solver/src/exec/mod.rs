//! The rootless executor: run a command on top of an image's layers in
//! unprivileged namespaces, and turn what it changed into a layer.
//!
//! - [`userns`]: the user namespace strata works in, and sandbox id maps.
//! - `helper`: the process that enters the namespaces and runs the command.
//!   Its spec comes on a pipe; `limits` explains execve's E2BIG.
//! - `mount`: the sandbox's root, /proc, /dev and /etc files.
//! - `copy`: the snapshotter used where overlayfs cannot be mounted.
//!
//! A run is a directory in the store's `tmp/` (see [`Changes`]): the
//! overlay's upper and work directories (or the copied root), the /etc files
//! given to the sandbox, and the helper's result. Dropping [`Changes`]
//! removes it; committing turns it into a layer first; `keep` moves it to
//! `containers/` for `strata commit`.

mod copy;
mod helper;
mod limits;
mod mount;
mod seccomp;
mod tty;
mod user;
pub mod userns;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub(crate) use copy::lookup as copy_lookup;
pub(crate) use copy::merge as merge_layers;
pub use helper::helper_main;
pub use user::UserError;
pub(crate) use user::read_account_file;
pub(crate) use user::resolve_in as resolve_user;

use crate::layer::{Compression, LayerError};
use crate::store::{LayerRecord, Store, StoreError};

/// The first argument that makes strata's `main` run the sandbox helper.
pub const HELPER_ARGUMENT: &str = "__strata-sandbox";

/// The descriptor the helper reads its spec from (JSON, to the end): a
/// pipe strata writes. Not the environment: Linux takes at most 32 pages
/// (MAX_ARG_STRLEN) for one variable, and a spec holds the step's whole
/// environment and arguments.
const SPEC_FD: i32 = 3;

/// The most the helper reads of a spec: only a bound against garbage, far
/// above what execve could take of environment and arguments.
const MAX_SPEC: u64 = 1 << 30;

/// The environment variable that chooses the snapshotter.
pub const SNAPSHOTTER_VARIABLE: &str = "STRATA_SNAPSHOTTER";

/// What can go wrong running a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::error::PathError),
    /// A system call failed.
    #[error("failed to {operation}")]
    Os {
        /// What was being done.
        operation: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The namespaces could not be made.
    #[error("{0}")]
    Namespace(String),
    /// overlayfs could not be mounted (the sandbox falls back to copies).
    #[error("failed to mount the sandbox's root: {0}")]
    Overlay(String),
    /// The sandbox could not be set up (mounts, user, directory).
    #[error("failed to set up the sandbox: {0}")]
    Setup(String),
    /// The command could not be executed.
    #[error("{0}")]
    Exec(String),
    /// The helper process died without saying why.
    #[error("the sandbox helper {0}")]
    HelperDied(String),
    /// strata was told to stop.
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] Box<StoreError>),
    /// A layer could not be written.
    #[error(transparent)]
    Layer(#[from] Box<LayerError>),
}

impl ExecError {
    pub(crate) fn io<'a>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> ExecError + 'a {
        crate::error::PathError::at(operation, path)
    }

    pub(crate) fn os(operation: &'static str) -> impl FnOnce(std::io::Error) -> ExecError {
        move |source| ExecError::Os { operation, source }
    }
}

impl From<StoreError> for ExecError {
    fn from(error: StoreError) -> Self {
        ExecError::Store(Box::new(error))
    }
}

impl From<LayerError> for ExecError {
    fn from(error: LayerError) -> Self {
        ExecError::Layer(Box::new(error))
    }
}

/// A sandbox's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// The host's network (the default, as rootless BuildKit).
    #[default]
    Host,
    /// A network namespace of its own with only loopback, up.
    None,
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// Program and arguments (the shell already prepended for shell form).
    pub args: Vec<String>,
    /// `KEY=value` environment, exactly; `PATH` (docker's default) and
    /// `HOME` (the user's) are added when absent, as runc does.
    pub env: Vec<String>,
    /// `user[:group]` (names or ids), empty for root.
    pub user: String,
    /// Working directory, made when missing; empty for `/`.
    pub cwd: String,
    /// Network.
    pub network: Network,
    /// Host name inside.
    pub hostname: String,
    /// Extra mounts (RUN --mount), in order.
    pub mounts: Vec<SandboxMount>,
    /// `RUN --security=insecure`: keep every capability of the sandbox's
    /// user namespace (no power over the host's).
    pub insecure: bool,
    /// The size of `/dev/shm` in bytes (`--shm-size`); docker's 64 MiB
    /// when none.
    pub shm_size: Option<u64>,
    /// Resource limits the command gets (`--ulimit`).
    pub ulimits: Vec<Ulimit>,
}

/// A resource limit, as docker's `--ulimit NAME=SOFT[:HARD]` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// docker's name for it (`nofile`, `nproc`, ...).
    pub name: String,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl Ulimit {
    /// docker's names and the limits they are.
    const NAMES: [(&'static str, nix::sys::resource::Resource); 15] = {
        use nix::sys::resource::Resource::*;
        [
            ("core", RLIMIT_CORE),
            ("cpu", RLIMIT_CPU),
            ("data", RLIMIT_DATA),
            ("fsize", RLIMIT_FSIZE),
            ("locks", RLIMIT_LOCKS),
            ("memlock", RLIMIT_MEMLOCK),
            ("msgqueue", RLIMIT_MSGQUEUE),
            ("nice", RLIMIT_NICE),
            ("nofile", RLIMIT_NOFILE),
            ("nproc", RLIMIT_NPROC),
            ("rss", RLIMIT_RSS),
            ("rtprio", RLIMIT_RTPRIO),
            ("rttime", RLIMIT_RTTIME),
            ("sigpending", RLIMIT_SIGPENDING),
            ("stack", RLIMIT_STACK),
        ]
    };

    /// Parse `NAME=SOFT[:HARD]` (HARD is SOFT when not given; `-1` is
    /// unlimited), as docker does; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Ulimit, String> {
        let Some((name, values)) = text.split_once('=') else {
            return Err(format!(
                "invalid ulimit `{text}`: expected NAME=SOFT[:HARD]"
            ));
        };
        if !Self::NAMES.iter().any(|(known, _)| *known == name) {
            let names: Vec<&str> = Self::NAMES.iter().map(|(name, _)| *name).collect();
            return Err(format!(
                "invalid ulimit `{text}`: `{name}` is not one of {}",
                names.join(", ")
            ));
        }
        let number = |value: &str| -> Result<u64, String> {
            if value == "-1" {
                return Ok(u64::MAX);
            }
            value
                .parse::<u64>()
                .map_err(|_| format!("invalid ulimit `{text}`: `{value}` is not a number"))
        };
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (number(soft)?, number(hard)?),
            None => (number(values)?, number(values)?),
        };
        if soft > hard {
            return Err(format!(
                "invalid ulimit `{text}`: the soft limit is above the hard limit"
            ));
        }
        Ok(Ulimit {
            name: name.to_owned(),
            soft,
            hard,
        })
    }

    /// The limit it sets.
    pub(crate) fn resource(&self) -> Option<nix::sys::resource::Resource> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == self.name)
            .map(|(_, resource)| *resource)
    }
}

impl std::fmt::Display for Ulimit {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |value: u64| match value {
            u64::MAX => "-1".to_owned(),
            value => value.to_string(),
        };
        write!(
            formatter,
            "{}={}:{}",
            self.name,
            shown(self.soft),
            shown(self.hard)
        )
    }
}

/// A mount a RUN asks for, made in the sandbox before `pivot_root`. Its
/// mount point is provided by a layer of its own below the image's, so it
/// never shows in the step's changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SandboxMount {
    /// A host file or directory (the build context, a cache directory, a
    /// secret file). `writable_copy`: writes go to a throwaway upper
    /// directory (a directory source only).
    Bind {
        /// The host path.
        source: PathBuf,
        /// Absolute path inside.
        target: String,
        /// Mounted read-only.
        read_only: bool,
        /// Writes are kept apart and discarded (`rw` on a context bind).
        discard_writes: bool,
    },
    /// A merged view of snapshot layers (a bind from a stage or image):
    /// `source` inside them, at `target`.
    Layers {
        /// Snapshot directories, top first.
        lowers: Vec<PathBuf>,
        /// The path inside the layers.
        source: String,
        /// Absolute path inside the sandbox.
        target: String,
        /// Writes are allowed, and discarded.
        writable: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Absolute path inside.
        target: String,
        /// Size in bytes.
        size: Option<u64>,
    },
}

impl SandboxMount {
    fn target(&self) -> &str {
        match self {
            SandboxMount::Bind { target, .. }
            | SandboxMount::Layers { target, .. }
            | SandboxMount::Tmpfs { target, .. } => target,
        }
    }

    /// Whether its mount point is a file (a file or a socket bound).
    fn is_file(&self) -> bool {
        matches!(self, SandboxMount::Bind { source, .. } if !source.is_dir())
    }
}

/// Where the command's output goes.
pub enum Output<'a> {
    /// strata's own stdin, stdout and stderr (`strata run`).
    Inherit,
    /// stdin empty; stdout and stderr, merged, handed to the callback as
    /// they come (a build step).
    Capture(&'a mut dyn FnMut(&[u8])),
}

/// How the root of a sandbox is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshotter {
    /// overlayfs over the snapshots; the upper directory is the change.
    Overlay,
    /// A copy of the snapshots (reflinked where the filesystem can); the
    /// change is found by comparing the copy with them.
    Copy,
}

/// The spec the helper gets.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperSpec {
    /// strata's pid: the helper checks it is still its parent.
    pub(crate) parent: i32,
    pub(crate) rootfs: Rootfs,
    /// Where the root is mounted before `pivot_root`.
    pub(crate) mount_point: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) user: String,
    pub(crate) cwd: String,
    pub(crate) network_none: bool,
    /// Keep every capability (in the sandbox's user namespace).
    pub(crate) insecure: bool,
    /// Give the command a terminal of its own (strata's stdin is one).
    pub(crate) tty: bool,
    /// RUN --mount, with the run directory's scratch space for each.
    pub(crate) mounts: Vec<(SandboxMount, PathBuf)>,
    pub(crate) hostname: String,
    /// `/dev/shm`'s size in bytes.
    pub(crate) shm_size: u64,
    pub(crate) ulimits: Vec<Ulimit>,
    pub(crate) hosts: PathBuf,
    pub(crate) resolv: PathBuf,
    /// Where the helper writes its [`HelperResult`].
    pub(crate) result: PathBuf,
}

/// The root of a sandbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Rootfs {
    /// overlayfs: lower directories `links/0` (top) to `links/{layers-1}`.
    Overlay {
        links: PathBuf,
        layers: usize,
        upper: PathBuf,
        work: PathBuf,
    },
    /// A directory bind-mounted as the root.
    Bind { dir: PathBuf },
}

/// Where a sandbox failed before its command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Stage {
    Namespaces,
    Overlay,
    Setup,
    Exec,
}

/// What the helper reports.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum HelperResult {
    /// The command ran and exited with this code (128 + signal if killed).
    Exited(i32),
    /// It did not run.
    Failed { stage: Stage, message: String },
}

/// A finished command.
#[derive(Debug)]
pub struct Finished {
    /// Its exit code (128 + the signal that killed it).
    pub code: i32,
    /// The last lines of its output (when captured).
    pub tail: Vec<String>,
    /// What it changed.
    pub changes: Changes,
}

/// How many lines of output [`Finished::tail`] keeps.
const TAIL_LINES: usize = 20;

/// The filesystem changes of a finished sandbox: its run directory. Removed
/// when dropped, unless committed or kept.
#[derive(Debug)]
pub struct Changes {
    dir: Option<PathBuf>,
    /// Whether dropping removes the directory (not for a kept container's).
    owned: bool,
    record: ChangesRecord,
    /// Keeps a prune from deleting the run directory, or the snapshots
    /// under it, until the changes are committed or dropped.
    _writing: Option<crate::store::GcGuard>,
}

/// What [`Changes::open`] needs to find a kept run again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesRecord {
    /// How the root was made.
    pub snapshotter: Snapshotter,
    /// The lower directories, top first (for the copy snapshotter's diff).
    pub lowers: Vec<PathBuf>,
}

impl Changes {
    fn dir(&self) -> &Path {
        self.dir
            .as_deref()
            .expect("changes are used before they are consumed")
    }

    /// How to find these changes again (see [`Changes::open`]).
    pub fn record(&self) -> &ChangesRecord {
        &self.record
    }

    /// Changes kept in `dir` by [`Changes::keep`]; dropping them leaves the
    /// directory ([`Changes::discard`] removes it).
    pub fn open(dir: PathBuf, record: ChangesRecord) -> Changes {
        Changes {
            dir: Some(dir),
            owned: false,
            record,
            _writing: None,
        }
    }

    /// A directory in the form of an overlay upper directory (whiteouts,
    /// opaque directories) holding exactly the changes.
    fn upper(&self) -> Result<PathBuf, ExecError> {
        let dir = self.dir();
        match self.record.snapshotter {
            Snapshotter::Overlay => Ok(dir.join("upper")),
            Snapshotter::Copy => {
                let diff = dir.join("diff");
                if diff.exists() {
                    std::fs::remove_dir_all(&diff).map_err(ExecError::io("remove", &diff))?;
                }
                copy::diff(&self.record.lowers, &dir.join("rootfs"), &diff)?;
                Ok(diff)
            }
        }
    }

    /// Write the changes as a layer, for `strata commit`; `None` when
    /// nothing changed (`docker commit` then adds no layer, only an empty
    /// history entry). A build's RUN always has its layer: [`Changes::commit`].
    pub fn layer(
        &self,
        store: &Store,
        compression: Compression,
        epoch: Option<u64>,
    ) -> Result<Option<LayerRecord>, ExecError> {
        let upper = self.upper()?;
        let empty = std::fs::read_dir(&upper)
            .map_err(ExecError::io("read", &upper))?
            .next()
            .is_none();
        if empty {
            return Ok(None);
        }
        Self::write_layer(&upper, store, compression, epoch)
    }

    fn write_layer(
        upper: &Path,
        store: &Store,
        compression: Compression,
        epoch: Option<u64>,
    ) -> Result<Option<LayerRecord>, ExecError> {
        let _writing = store.writing()?;
        let (layer, _skipped) = crate::layer::store_layer(
            store,
            upper,
            compression,
            epoch,
            &crate::layer::Owners::new(),
        )?;
        Ok(Some(layer))
    }

    /// Write the changes as a build step's layer, an empty one when nothing
    /// changed (BuildKit gives every RUN its layer), then remove the run
    /// directory. The directory of
    /// changes becomes the layer's snapshot when it has none yet: it is in
    /// overlayfs's form already, so the next step can stack on it without
    /// unpacking the layer just written.
    pub fn commit(
        self,
        store: &Store,
        compression: Compression,
        epoch: Option<u64>,
    ) -> Result<Option<LayerRecord>, ExecError> {
        let upper = self.upper()?;
        let layer = Self::write_layer(&upper, store, compression, epoch)?;
        if let Some(layer) = &layer {
            let snapshot = store.snapshot_path(&layer.diff_id);
            if !snapshot.exists()
                && let Some(parent) = snapshot.parent()
            {
                std::fs::create_dir_all(parent).map_err(ExecError::io("create", parent))?;
                // Another build may have made it meanwhile: theirs is as good.
                crate::fault::point(crate::fault::Kind::Rename, &snapshot);
                let _ = std::fs::rename(&upper, &snapshot);
            }
        }
        self.discard()?;
        Ok(layer)
    }

    /// Move the run directory to `target` (a container's directory).
    pub fn keep(mut self, target: &Path) -> Result<(), ExecError> {
        let dir = self.dir.take().expect("changes are kept once");
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(ExecError::io("create", parent))?;
        }
        crate::fault::point(crate::fault::Kind::Rename, target);
        std::fs::rename(&dir, target).map_err(ExecError::io("move", &dir))
    }

    /// Remove the run directory now.
    pub fn discard(mut self) -> Result<(), ExecError> {
        match self.dir.take() {
            Some(dir) => remove_run_dir(&dir),
            None => Ok(()),
        }
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && self.owned
        {
            let _ = remove_run_dir(&dir);
        }
    }
}

/// Remove a run directory. A sandbox killed a moment ago may still be
/// writing into it while the kernel tears its processes down: retry briefly.
fn remove_run_dir(dir: &Path) -> Result<(), ExecError> {
    crate::fault::point(crate::fault::Kind::Unlink, dir);
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => return Err(ExecError::io("remove", dir)(error)),
        }
    }
}

/// Runs commands in sandboxes over a store's snapshots.
#[derive(Debug)]
pub struct Sandbox {
    store: Store,
    helper: PathBuf,
    snapshotter: Mutex<Snapshotter>,
    /// Set when [`SNAPSHOTTER_VARIABLE`] chose: no automatic fallback.
    forced: bool,
    notices: Mutex<Vec<String>>,
}

impl Sandbox {
    /// A sandbox runner whose helper is this very program: its `main` must
    /// call [`helper_main`] when its first argument is [`HELPER_ARGUMENT`].
    pub fn new(store: &Store) -> Result<Sandbox, ExecError> {
        // /proc/self/exe, not the path it names: it starts this very
        // program even when the file was replaced or deleted meanwhile (a
        // rebuild, a package upgrade).
        Sandbox::with_helper(store, PathBuf::from("/proc/self/exe"))
    }

    /// A sandbox runner using `helper` as the helper program.
    pub fn with_helper(store: &Store, helper: PathBuf) -> Result<Sandbox, ExecError> {
        let (snapshotter, forced) = match std::env::var(SNAPSHOTTER_VARIABLE).ok().as_deref() {
            None | Some("") => (Snapshotter::Overlay, false),
            Some("overlay") => (Snapshotter::Overlay, true),
            Some("copy") => (Snapshotter::Copy, true),
            Some(other) => {
                return Err(ExecError::Setup(format!(
                    "{SNAPSHOTTER_VARIABLE}={other} is not a snapshotter: use overlay or copy"
                )));
            }
        };
        let mut notices = Vec::new();
        if let Some(warning) = userns::mode().and_then(userns::IdMode::warning) {
            notices.push(warning);
        }
        Ok(Sandbox {
            store: store.clone(),
            helper,
            snapshotter: Mutex::new(snapshotter),
            forced,
            notices: Mutex::new(notices),
        })
    }

    /// Notices for the user since the last call (the fallback to copies,
    /// the single-id warning).
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().expect("notices lock"))
    }

    /// The snapshotter in use.
    pub fn snapshotter(&self) -> Snapshotter {
        *self.snapshotter.lock().expect("snapshotter lock")
    }

    /// Run `spec` on top of `lowers` (snapshot directories, top first).
    pub fn run(
        &self,
        lowers: &[PathBuf],
        spec: &RunSpec,
        mut output: Output<'_>,
    ) -> Result<Finished, ExecError> {
        loop {
            let snapshotter = self.snapshotter();
            match self.run_with(snapshotter, lowers, spec, &mut output) {
                Err(ExecError::Overlay(message))
                    if snapshotter == Snapshotter::Overlay && !self.forced =>
                {
                    *self.snapshotter.lock().expect("snapshotter lock") = Snapshotter::Copy;
                    self.notices.lock().expect("notices lock").push(format!(
                        "overlayfs cannot be used in a user namespace here ({message}); \
                         using copies of the layers instead, which is slower \
                         ({SNAPSHOTTER_VARIABLE}=copy chooses this directly)"
                    ));
                }
                result => return result,
            }
        }
    }

    fn run_with(
        &self,
        snapshotter: Snapshotter,
        lowers: &[PathBuf],
        spec: &RunSpec,
        output: &mut Output<'_>,
    ) -> Result<Finished, ExecError> {
        let writing = self.store.writing()?;
        let dir = self.store.staging_dir("run")?;
        let mut changes = Changes {
            dir: Some(dir.clone()),
            owned: true,
            record: ChangesRecord {
                snapshotter,
                lowers: lowers.to_vec(),
            },
            _writing: Some(writing),
        };
        let mount_point = dir.join("rootfs");
        let make = |path: &Path| std::fs::create_dir(path).map_err(ExecError::io("create", path));
        make(&mount_point)?;
        let stub = self.stub()?;
        // Mount points for RUN --mount, in a layer of their own at the
        // bottom (after the stub), so the step's changes never hold them.
        let mut lowers = lowers.to_vec();
        let mut mounts = Vec::new();
        if !spec.mounts.is_empty() {
            let points = dir.join("mountpoints");
            make(&points)?;
            let points_root = crate::confined::Root::open(&points)?;
            for (index, mount) in spec.mounts.iter().enumerate() {
                // `..` stops at `/`, as in the container: a target never
                // names a path outside this layer.
                let relative = crate::confined::clean(Path::new(mount.target()));
                if relative.as_os_str().is_empty() {
                    return Err(ExecError::Setup(format!(
                        "RUN --mount: the target `{}` is the root directory",
                        mount.target()
                    )));
                }
                points_root.pin_or_make(&relative, !mount.is_file())?;
                let scratch = dir.join(format!("mount-{index}"));
                make(&scratch)?;
                mounts.push((mount.clone(), scratch));
            }
            lowers.push(points);
        }
        let lowers = lowers.as_slice();
        let rootfs = match snapshotter {
            Snapshotter::Overlay => {
                let links = dir.join("links");
                let (upper, work) = (dir.join("upper"), dir.join("work"));
                for path in [&links, &upper, &work] {
                    make(path)?;
                }
                for (index, lower) in lowers.iter().chain([&stub]).enumerate() {
                    let link = links.join(index.to_string());
                    std::os::unix::fs::symlink(lower, &link)
                        .map_err(ExecError::io("create", &link))?;
                }
                Rootfs::Overlay {
                    links,
                    layers: lowers.len() + 1,
                    upper,
                    work,
                }
            }
            Snapshotter::Copy => {
                let mut all = lowers.to_vec();
                all.push(stub);
                copy::merge(&all, &mount_point)?;
                // The differ compares with everything merged, stub included.
                changes.record.lowers = all;
                Rootfs::Bind {
                    dir: mount_point.clone(),
                }
            }
        };
        let hostname = if spec.hostname.is_empty() {
            "strata".to_owned()
        } else {
            spec.hostname.clone()
        };
        let (hosts, resolv) = mount::etc_files(&dir, &hostname)
            .map_err(ExecError::io("write the /etc files of", &dir))?;
        let result = dir.join("result.json");
        let helper_spec = HelperSpec {
            parent: std::process::id() as i32,
            rootfs,
            mount_point,
            args: spec.args.clone(),
            env: spec.env.clone(),
            user: spec.user.clone(),
            cwd: spec.cwd.clone(),
            network_none: spec.network == Network::None,
            insecure: spec.insecure,
            mounts,
            tty: matches!(output, Output::Inherit)
                && nix::unistd::isatty(std::io::stdin()).unwrap_or(false),
            hostname,
            shm_size: spec.shm_size.unwrap_or(64 << 20),
            ulimits: spec.ulimits.clone(),
            hosts,
            resolv,
            result: result.clone(),
        };
        let (code, tail) = self.spawn_helper(&helper_spec, output)?;
        if let Some(signal) = interrupted() {
            return Err(ExecError::Interrupted(signal));
        }
        let report = std::fs::read(&result).map_err(|error| {
            ExecError::HelperDied(format!(
                "ended (status {code}) without a result ({} : {error})",
                result.display()
            ))
        })?;
        let report: HelperResult = serde_json::from_slice(&report).map_err(|error| {
            ExecError::HelperDied(format!("wrote an unreadable result: {error}"))
        })?;
        match report {
            HelperResult::Exited(code) => Ok(Finished {
                code,
                tail,
                changes,
            }),
            HelperResult::Failed { stage, message } => Err(match stage {
                Stage::Namespaces => ExecError::Namespace(message),
                Stage::Overlay => ExecError::Overlay(message),
                Stage::Setup => ExecError::Setup(message),
                Stage::Exec => ExecError::Exec(message),
            }),
        }
    }

    /// Start the helper and wait for it; its exit status and the tail of
    /// the captured output.
    fn spawn_helper(
        &self,
        spec: &HelperSpec,
        output: &mut Output<'_>,
    ) -> Result<(i32, Vec<String>), ExecError> {
        let mut command = Command::new(&self.helper);
        command.arg(HELPER_ARGUMENT).env_clear();
        let (spec_reader, mut spec_writer) =
            std::io::pipe().map_err(ExecError::os("create a pipe"))?;
        crate::sys::pass_fd(&mut command, spec_reader.into(), SPEC_FD);
        let reader = match output {
            Output::Inherit => None,
            Output::Capture(_) => {
                let (reader, writer) = std::io::pipe().map_err(ExecError::os("create a pipe"))?;
                let second = writer
                    .try_clone()
                    .map_err(ExecError::os("duplicate a pipe"))?;
                command.stdin(Stdio::null()).stdout(writer).stderr(second);
                Some(reader)
            }
        };
        // Without a terminal of its own the command gets none of strata's
        // either: a stdout or stderr that is one is copied from a pipe
        // (as `docker run` without -t), so the command cannot read what
        // the user types from it, nor set it up.
        let mut relayed = Vec::new();
        if matches!(output, Output::Inherit) && !spec.tty {
            for stream in [tty::Stream::Stdout, tty::Stream::Stderr] {
                if stream.is_terminal() {
                    let (reader, writer) =
                        std::io::pipe().map_err(ExecError::os("create a pipe"))?;
                    match stream {
                        tty::Stream::Stdout => command.stdout(writer),
                        tty::Stream::Stderr => command.stderr(writer),
                    };
                    relayed.push((stream, reader));
                }
            }
        }
        // The helper puts a terminal in raw mode; whatever becomes of the
        // helper, the terminal is put back.
        let terminal = spec.tty.then(tty::save);
        let mut child = command
            .spawn()
            .map_err(ExecError::io("start", &self.helper))?;
        // Our copies of the pipe's write end must go, or reading never ends.
        drop(command);
        let relays: Vec<_> = relayed
            .into_iter()
            .map(|(stream, reader)| std::thread::spawn(move || stream.copy_from(reader)))
            .collect();
        let pid = child.id() as i32;
        register_helper(pid);
        // The helper reads all of it before anything else (and writes
        // nothing before, but a line about a spec it cannot read), so this
        // cannot block on its output. A helper that died early makes the
        // write fail; its status and missing result then tell why.
        let text = serde_json::to_vec(spec).expect("specs serialize");
        let _ = std::io::Write::write_all(&mut spec_writer, &text);
        drop(spec_writer);
        let mut tail = Tail::default();
        if let (Some(mut reader), Output::Capture(callback)) = (reader, output) {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => {
                        callback(&buffer[..read]);
                        tail.push(&buffer[..read]);
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let status = child.wait();
        for relay in relays {
            let _ = relay.join();
        }
        unregister_helper(pid);
        if let Some(terminal) = terminal {
            terminal.restore();
        }
        let status = status.map_err(ExecError::os("wait for the sandbox helper"))?;
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .or_else(|| status.signal().map(|signal| 128 + signal))
            .unwrap_or(255);
        Ok((code, tail.lines()))
    }

    /// The stub lower directory (see `mount::write_stub`), made once.
    fn stub(&self) -> Result<PathBuf, ExecError> {
        let path = self.store.path(crate::store::layout::STUB);
        if path.is_dir() {
            return Ok(path);
        }
        let staging = self.store.staging_dir("stub")?;
        mount::write_stub(&staging).map_err(ExecError::io("write", &staging))?;
        crate::fault::point(crate::fault::Kind::Rename, &path);
        match std::fs::rename(&staging, &path) {
            Ok(()) => Ok(path),
            Err(_) if path.is_dir() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(path)
            }
            Err(error) => Err(ExecError::io("move into place", &path)(error)),
        }
    }
}

/// The last lines of a stream of bytes.
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > TAIL_LINES {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < 4096 {
                self.partial.push(byte);
            }
        }
    }

    fn lines(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            self.push(b"\n");
        }
        self.lines.into()
    }
}

static HELPERS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn register_helper(pid: i32) {
    crate::cancel::on_interrupt(stop_running);
    HELPERS.lock().expect("helpers lock").push(pid);
    // A signal that came just before registration still stops it.
    if interrupted().is_some() {
        kill_helper(pid);
    }
}

fn unregister_helper(pid: i32) {
    HELPERS
        .lock()
        .expect("helpers lock")
        .retain(|&other| other != pid);
}

fn kill_helper(pid: i32) {
    // The helper's children get SIGKILL when it dies (PR_SET_PDEATHSIG),
    // and the sandbox's pid 1 with them, which ends everything in it.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Kill every sandbox running now (a build stops the siblings of a step
/// that failed); their runs return errors and clean up.
pub fn stop_running() {
    for &pid in HELPERS.lock().expect("helpers lock").iter() {
        kill_helper(pid);
    }
}

pub use crate::cancel::interrupted;

/// On any of `signals`, kill every running sandbox and make [`interrupted`]
/// say so; the runs then clean up and return [`ExecError::Interrupted`]
/// (see [`crate::cancel`], where the interrupt lives).
pub fn stop_on_signals(signals: &[i32]) -> Result<(), ExecError> {
    crate::cancel::stop_on_signals(signals).map_err(ExecError::os("install signal handlers"))
}
