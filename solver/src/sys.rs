//! The only module of strata allowed `unsafe`: the few system calls that
//! `nix` offers only as `unsafe` or not at all, each behind a safe wrapper
//! that states and checks what makes it sound.
//!
//! Everything else (unshare, mount, pivot_root, setresuid, execve, ...) is
//! called through `nix`'s safe API where it is used.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::signal::{SigHandler, SigSet, Signal};
use nix::unistd::ForkResult;

/// Whether this process has exactly one thread.
fn single_threaded() -> io::Result<bool> {
    // Each thread is a directory in /proc/self/task.
    Ok(std::fs::read_dir("/proc/self/task")?.take(2).count() == 1)
}

/// `fork()`, refused unless this process has a single thread.
///
/// After a fork in a multithreaded process the child may only call
/// async-signal-safe functions (a lock held by another thread, the
/// allocator's say, stays locked forever in the child). strata forks only in
/// the sandbox helper and at the start of `main`, both single-threaded; the
/// check makes a future mistake an error instead of a rare deadlock.
pub(crate) fn fork() -> io::Result<ForkResult> {
    if !single_threaded()? {
        return Err(io::Error::other(
            "refusing to fork: the process has more than one thread",
        ));
    }
    // SAFETY: the process has one thread (checked just above, and no code
    // of ours starts threads between the check and the call), so the child
    // is a complete copy with no lock held by a vanished thread.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Drop from the capability bounding set every capability not in `keep`,
/// so that no program executed later can gain them.
pub(crate) fn drop_bounding_capabilities(keep: &[u32]) -> io::Result<()> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    for capability in 0..=last {
        if keep.contains(&capability) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes one integer argument and touches no
        // memory of ours.
        let result = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(capability),
                0,
                0,
                0,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Bring the loopback interface of this network namespace up.
pub(crate) fn loopback_up() -> io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is plain data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the
    // `ifreq` we own, which outlives the call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled `ifru_flags`, the union's active field.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads the request.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every file descriptor from 3 up, except `keep`.
///
/// The sandboxed command must get only 0, 1 and 2: whatever else the
/// process inherited (from strata's own parent, say) is closed here.
pub(crate) fn close_fds_above_stdio(keep: RawFd) -> io::Result<()> {
    let keep = u32::try_from(keep).map_err(io::Error::other)?;
    let ranges = if keep >= 3 {
        vec![(3, keep.saturating_sub(1)), (keep + 1, u32::MAX)]
    } else {
        vec![(3, u32::MAX)]
    };
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: close_range closes descriptors; nothing in this process
        // uses them after this point (the caller is about to exec).
        if unsafe { libc::close_range(first, last, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Set `handler` for each of `signals`.
fn set_handlers(signals: &[Signal], handler: SigHandler) -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, sigaction};
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    for &signal in signals {
        // SAFETY: the handlers set here are SIG_IGN and SIG_DFL, which run
        // no code of ours.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// Ignore `signals` (the helper ignores the terminal's ^C: the command in
/// the sandbox decides what it means).
pub(crate) fn ignore_signals(signals: &[Signal]) -> io::Result<()> {
    set_handlers(signals, SigHandler::SigIgn)
}

/// Restore every signal's default action and unblock them all, so that the
/// command starts as from a fresh login (an ignored signal stays ignored
/// across exec).
pub(crate) fn reset_signals() -> io::Result<()> {
    let all: Vec<Signal> = Signal::iterator()
        .filter(|signal| !matches!(signal, Signal::SIGKILL | Signal::SIGSTOP))
        .collect();
    set_handlers(&all, SigHandler::SigDfl)?;
    SigSet::all().thread_unblock()?;
    Ok(())
}

/// End a forked child at once, with `code`: no atexit handlers, no
/// flushing of buffers that are copies of the parent's.
pub(crate) fn exit_child(code: i32) -> ! {
    // SAFETY: _exit only ends the process.
    unsafe { libc::_exit(code) }
}

/// Make the terminal `fd` the controlling terminal of this process (which
/// must lead a session without one).
pub(crate) fn set_controlling_terminal(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's window size (rows, columns, pixel width, pixel height).
pub(crate) type WindowSize = (u16, u16, u16, u16);

/// The window size of the terminal `fd`.
pub(crate) fn window_size(fd: RawFd) -> io::Result<WindowSize> {
    // SAFETY: `winsize` is plain data; all-zero is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the one we own.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((size.ws_row, size.ws_col, size.ws_xpixel, size.ws_ypixel))
}

/// Set the window size of the terminal `fd`.
pub(crate) fn set_window_size(
    fd: RawFd,
    (rows, columns, width, height): WindowSize,
) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: width,
        ws_ypixel: height,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from ours.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Take ownership of a descriptor just received with SCM_RIGHTS.
pub(crate) fn adopt_received_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed `fd` in this process when the message
    // was received, and nothing else refers to it: it is ours to own.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Give the program `command` starts the descriptor `fd` as its descriptor
/// `target` (above 2), open across the exec; every other descriptor of
/// strata's stays close-on-exec. `fd` stays open in strata until `command`
/// is dropped.
pub(crate) fn pass_fd(command: &mut std::process::Command, fd: OwnedFd, target: RawFd) {
    use std::os::unix::process::CommandExt;
    debug_assert!(target > 2, "0, 1 and 2 are the command's stdio");
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called: it calls dup2 and fcntl,
    // and allocates nothing. `fd` is owned by the closure, so it is open
    // in strata (and so in the child) whenever the closure runs.
    unsafe {
        command.pre_exec(move || {
            let source = fd.as_raw_fd();
            // dup2 onto itself would keep close-on-exec: clear it instead.
            let result = if source == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(source, target)
            };
            if result < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// Take ownership of the descriptor `fd` this process inherited (the
/// sandbox helper's spec, given by [`pass_fd`]).
///
/// Called once, at the start of the helper, when nothing in the process
/// refers to `fd`: every inherited descriptor but it was just closed, and
/// no code of ours opened any.
pub(crate) fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with
    // EBADF when `fd` is not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and, as the caller states,
    // nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Install the classic-BPF seccomp filter `program` on this process
/// (`seccomp(SECCOMP_SET_MODE_FILTER)`), without setting `no_new_privs`:
/// the caller must hold CAP_SYS_ADMIN in its user namespace, or the kernel
/// refuses with EACCES. (seccompiler's own `apply_filter` always sets
/// `no_new_privs`, which would stop setuid programs in the sandbox, where
/// docker and BuildKit let them run.)
pub(crate) fn install_seccomp_filter(program: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::other("the seccomp filter has more than 65535 instructions"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` instructions of `program`, which
    // outlives the call; the kernel copies the program and writes nothing
    // into our memory.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_uint,
            &fprog as *const libc::sock_fprog,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Before `command` runs its program: each file it writes at most
/// `max_file` bytes (RLIMIT_FSIZE: a hostile repository cannot fill the
/// disk with one blob), every descriptor above 2 close-on-exec (none of
/// strata's leaks into it, whatever opened it), umask 022, and killed if
/// the thread that started it dies.
pub(crate) fn confine_child(command: &mut std::process::Command, max_file: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called: setrlimit, close_range
    // and prctl are system calls, and it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: max_file,
                rlim_max: max_file,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The modes git gives files are BuildKit's (0644, 0755),
            // whatever the user's umask.
            libc::umask(0o022);
            Ok(())
        })
    };
}
