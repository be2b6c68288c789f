//! The sandbox's filesystem, set up by its pid 1 inside the new user, mount
//! and pid namespaces: the root (overlayfs, or a bind mount of a copy),
//! /proc, a minimal /dev, /etc/hosts and /etc/resolv.conf, then
//! `pivot_root` into it.
//!
//! The layout follows what runc gives a container (its defaults in
//! `libcontainer/specconv/example.go` and `rootfs_linux.go`), minus /sys,
//! which a user namespace can mount only with its own network namespace.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::{HelperSpec, Rootfs, Stage};
use crate::confined::Root;

/// A failed setup step: which stage, and a message naming the operation.
pub(crate) type SetupError = (Stage, String);

fn failed(stage: Stage, what: String) -> impl FnOnce(nix::errno::Errno) -> SetupError {
    move |errno| (stage, format!("{what}: {}", errno.desc()))
}

fn io_failed(what: String) -> impl FnOnce(std::io::Error) -> SetupError {
    move |error| (Stage::Setup, format!("{what}: {error}"))
}

/// Device nodes bind-mounted from the host (mknod is refused in a user
/// namespace; a bind mount of the host's node works).
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// /proc entries made read-only (writable ones that reach the host kernel).
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];

/// /proc entries hidden behind /dev/null (files) or an empty tmpfs (dirs),
/// as runc's default masked paths.
const PROC_MASKED: [&str; 9] = [
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "acpi",
    "scsi",
    "interrupts",
];

/// Mount the root of the sandbox at `spec.mount_point` and everything in
/// it, then make it `/`.
pub(crate) fn setup(spec: &HelperSpec) -> Result<(), SetupError> {
    // Nothing mounted here may reach back into the namespace we came from.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(failed(Stage::Setup, "make / private".to_owned()))?;
    let root = &spec.mount_point;
    match &spec.rootfs {
        Rootfs::Overlay {
            links,
            layers,
            upper,
            work,
        } => {
            // `lowerdir=` goes through one page of mount data: short
            // relative names (links/0, links/1, ... pointing at the
            // snapshots, as docker's overlay2 `l/` directory) keep a
            // hundred layers well inside it.
            std::env::set_current_dir(links)
                .map_err(|error| (Stage::Setup, format!("enter {}: {error}", links.display())))?;
            let lower: Vec<String> = (0..*layers).map(|index| index.to_string()).collect();
            let mut paths = OptionPaths::default();
            let options = format!(
                "lowerdir={},upperdir={},workdir={},userxattr",
                lower.join(":"),
                paths.add(upper)?,
                paths.add(work)?
            );
            mount(
                Some("overlay"),
                root,
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_str()),
            )
            .map_err(failed(
                Stage::Overlay,
                format!("mount overlayfs on {}", root.display()),
            ))?;
        }
        Rootfs::Bind { dir } => {
            mount(
                Some(dir),
                root,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(failed(
                Stage::Setup,
                format!("bind {} on {}", dir.display(), root.display()),
            ))?;
        }
    }
    // From here on the rootfs holds what the image put there: every path
    // in it is resolved inside it.
    let rootfs = Root::open(root).map_err(|error| (Stage::Setup, error.to_string()))?;
    mount_proc(&rootfs)?;
    mount_dev(&rootfs, spec.shm_size)?;
    for (source, target) in [
        (&spec.hosts, "etc/hosts"),
        (&spec.resolv, "etc/resolv.conf"),
    ] {
        let at = rootfs
            .pin_or_make(Path::new(target), false)
            .map_err(|error| (Stage::Setup, format!("{error}: {}", error.source)))?;
        bind(source, &at.proc_path(), at.shown())?;
    }
    for (mount, scratch) in &spec.mounts {
        run_mount(&rootfs, mount, scratch)?;
    }
    pivot(root)
}

/// Overlay options: lower directories (top first), and an upper one when
/// writes are allowed (and thrown away with the run directory).
/// Directories named in mount options by descriptor. overlayfs splits its
/// options at `,` and its layers at `:`: a path written into them as text
/// (a context directory named `x:/etc`, or `d,upperdir=/tmp/u`) would add
/// a layer or an option of the attacker's choosing. `/proc/self/fd/N` of a
/// descriptor opened here holds neither, whatever the path.
#[derive(Default)]
struct OptionPaths {
    held: Vec<std::os::fd::OwnedFd>,
}

impl OptionPaths {
    /// `path` (a directory) as option text.
    fn add(&mut self, path: &Path) -> Result<String, SetupError> {
        use nix::fcntl::{OFlag, open};
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(failed(Stage::Setup, format!("open {}", path.display())))?;
        let text = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        self.held.push(fd);
        Ok(text)
    }
}

/// Overlay options: lower directories (top first), and an upper one when
/// writes are allowed (and thrown away with the run directory).
fn overlay(
    target: &Path,
    lowers: &[PathBuf],
    scratch: &Path,
    writable: bool,
) -> Result<(), SetupError> {
    let mut paths = OptionPaths::default();
    let lower = lowers
        .iter()
        .map(|path| paths.add(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = format!("lowerdir={},userxattr", lower.join(":"));
    if writable {
        let (upper, work) = (scratch.join("upper"), scratch.join("work"));
        for dir in [&upper, &work] {
            std::fs::create_dir_all(dir).map_err(io_failed(format!("create {}", dir.display())))?;
        }
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            paths.add(&upper)?,
            paths.add(&work)?
        ));
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(failed(
        Stage::Setup,
        format!("mount the layers on {}", target.display()),
    ))
}

/// One RUN --mount. Its target is resolved inside the assembled rootfs
/// (an image's symlink on the way leads where it leads inside, never to a
/// host path), made there if missing, and mounted onto through its
/// descriptor; a source from a stage or image is resolved inside the
/// merged layers the same way.
fn run_mount(
    rootfs: &Root,
    wanted: &super::SandboxMount,
    scratch: &Path,
) -> Result<(), SetupError> {
    use super::SandboxMount;
    let confined = |error: crate::error::PathError| {
        (
            Stage::Setup,
            format!("RUN --mount: {error}: {}", error.source),
        )
    };
    let point = |target: &str, dir: bool| {
        rootfs
            .pin_or_make(&crate::confined::clean(Path::new(target)), dir)
            .map_err(confined)
    };
    // What `target` resolves to after something was mounted there: the
    // mount's own root, for a remount.
    let mounted = |target: &str| {
        rootfs
            .pin(&crate::confined::clean(Path::new(target)))
            .map_err(confined)?
            .ok_or_else(|| (Stage::Setup, format!("RUN --mount: `{target}` vanished")))
    };
    match wanted {
        SandboxMount::Bind {
            source,
            target,
            read_only,
            discard_writes,
        } => {
            let is_dir = source.is_dir();
            let at = point(target, is_dir)?;
            if *discard_writes && is_dir {
                overlay(&at.proc_path(), std::slice::from_ref(source), scratch, true)
            } else {
                bind(source, &at.proc_path(), at.shown())?;
                if *read_only {
                    read_only_remount(&mounted(target)?)?;
                }
                Ok(())
            }
        }
        SandboxMount::Layers {
            lowers,
            source,
            target,
            writable,
        } => {
            // The merged layers go to scratch space; the path asked for is
            // found inside them and bound from there.
            let merged = scratch.join("merged");
            std::fs::create_dir_all(&merged)
                .map_err(io_failed(format!("create {}", merged.display())))?;
            overlay(&merged, lowers, scratch, *writable)?;
            let layers = Root::open(&merged).map_err(confined)?;
            let Some(found) = layers
                .pin(&crate::confined::clean(Path::new(source)))
                .map_err(confined)?
            else {
                return Err((
                    Stage::Setup,
                    format!(
                        "RUN --mount: `{source}` does not exist in the stage or image it is mounted from"
                    ),
                ));
            };
            let at = point(target, found.is_dir())?;
            bind(&found.proc_path(), &at.proc_path(), at.shown())?;
            if !*writable {
                read_only_remount(&mounted(target)?)?;
            }
            Ok(())
        }
        SandboxMount::Tmpfs { target, size } => {
            let at = point(target, true)?;
            let data = size.map(|size| format!("size={size}")).unwrap_or_default();
            mount(
                Some("tmpfs"),
                &at.proc_path(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(data.as_str()),
            )
            .map_err(failed(
                Stage::Setup,
                format!("mount tmpfs on {}", at.shown().display()),
            ))
        }
    }
}

/// Bind `source` on `target` (`shown` names it in messages).
fn bind(source: &Path, target: &Path, shown: &Path) -> Result<(), SetupError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(failed(
        Stage::Setup,
        format!("bind {} on {}", source.display(), shown.display()),
    ))
}

/// Make the mount at `at` read-only.
fn read_only_remount(at: &crate::confined::Pinned) -> Result<(), SetupError> {
    mount(
        None::<&str>,
        &at.proc_path(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(failed(
        Stage::Setup,
        format!("make {} read-only", at.shown().display()),
    ))
}

/// A bind mount of a path strata chose itself (/proc's entries, /dev's
/// nodes), with `extra` flags applied by a remount.
fn bind_own(source: &Path, target: &Path, extra: MsFlags) -> Result<(), SetupError> {
    bind(source, target, target)?;
    let what = format!("bind {} on {}", source.display(), target.display());
    if !extra.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
            None::<&str>,
        )
        .map_err(failed(Stage::Setup, format!("{what} (remount {extra:?})")))?;
    }
    Ok(())
}

/// A fresh filesystem of strata's own (`fstype`) on `name` in the rootfs,
/// resolved there as [`run_mount`] resolves targets; then the mount itself,
/// whose content is the kernel's, not the image's.
fn mount_fresh(
    rootfs: &Root,
    name: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<crate::confined::Pinned, SetupError> {
    let confined =
        |error: crate::error::PathError| (Stage::Setup, format!("{error}: {}", error.source));
    let at = rootfs
        .pin_or_make(Path::new(name), true)
        .map_err(confined)?;
    mount(Some(fstype), &at.proc_path(), Some(fstype), flags, data).map_err(failed(
        Stage::Setup,
        format!("mount {fstype} on {}", at.shown().display()),
    ))?;
    rootfs
        .pin(Path::new(name))
        .map_err(confined)?
        .ok_or_else(|| (Stage::Setup, format!("{} vanished", at.shown().display())))
}

fn mount_proc(rootfs: &Root) -> Result<(), SetupError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // Mounted by the new pid namespace's pid 1: it shows that namespace.
    let mounted = mount_fresh(rootfs, "proc", "proc", flags, None)?;
    let proc = mounted.proc_path();
    for entry in PROC_READ_ONLY {
        let path = proc.join(entry);
        if path.exists() {
            bind_own(&path, &path, flags | MsFlags::MS_RDONLY)?;
        }
    }
    for entry in PROC_MASKED {
        let path = proc.join(entry);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                flags | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(failed(Stage::Setup, format!("mask {}", path.display())))?,
            Ok(_) => bind_own(Path::new("/dev/null"), &path, MsFlags::empty())?,
            Err(_) => {}
        }
    }
    Ok(())
}

fn mount_dev(rootfs: &Root, shm_size: u64) -> Result<(), SetupError> {
    let mounted = mount_fresh(
        rootfs,
        "dev",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    let dev = mounted.proc_path();
    for device in DEVICES {
        let target = dev.join(device);
        std::fs::File::create(&target)
            .map_err(io_failed(format!("create {}", target.display())))?;
        bind_own(&Path::new("/dev").join(device), &target, MsFlags::empty())?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        let link = dev.join(name);
        std::os::unix::fs::symlink(target, &link)
            .map_err(io_failed(format!("create {}", link.display())))?;
    }
    let shm = format!("mode=1777,size={}k", shm_size.div_ceil(1024).max(1));
    for (name, fstype, data, flags) in [
        (
            "shm",
            "tmpfs",
            shm.as_str(),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        ),
        (
            "pts",
            "devpts",
            "newinstance,ptmxmode=0666,mode=0620",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        ),
        (
            "mqueue",
            "mqueue",
            "",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        ),
    ] {
        let target = dev.join(name);
        std::fs::create_dir(&target).map_err(io_failed(format!("create {}", target.display())))?;
        mount(Some(fstype), &target, Some(fstype), flags, Some(data)).map_err(failed(
            Stage::Setup,
            format!("mount {fstype} on {}", target.display()),
        ))?;
    }
    Ok(())
}

/// Make `root` the root directory and detach the old one entirely.
fn pivot(root: &Path) -> Result<(), SetupError> {
    std::env::set_current_dir(root)
        .map_err(|error| (Stage::Setup, format!("enter {}: {error}", root.display())))?;
    // pivot_root(".", ".") stacks the old root on top of the new one, so no
    // directory for it has to be made in the image (runc does the same).
    nix::unistd::pivot_root(".", ".").map_err(failed(Stage::Setup, "pivot_root".to_owned()))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(failed(Stage::Setup, "detach the old root".to_owned()))?;
    std::env::set_current_dir("/").map_err(|error| (Stage::Setup, format!("enter /: {error}")))?;
    Ok(())
}

/// The stub directory: the lowest layer of every sandbox's overlay, so that
/// the mount points it needs (/proc, /dev, /etc/hosts, /etc/resolv.conf)
/// exist without being written into the step's changes. Where the image has
/// them, its own entries hide these.
pub(crate) fn write_stub(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["proc", "dev", "etc"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    for file in ["etc/hosts", "etc/resolv.conf"] {
        let path = dir.join(file);
        std::fs::write(&path, b"")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Files of the sandbox's /etc made by strata.
pub(crate) fn etc_files(dir: &Path, hostname: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        ),
    )?;
    let resolv = dir.join("resolv.conf");
    // The host's resolver configuration, as BuildKit gives RUN with host
    // networking; with no network it is harmless.
    let host = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(&resolv, host)?;
    Ok((hosts, resolv))
}
