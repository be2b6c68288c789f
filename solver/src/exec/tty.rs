//! A terminal for the sandboxed command, when strata's standard input is
//! one (`strata run` from a shell), and none otherwise.
//!
//! The host's terminal is never handed in: a command holding it, or having
//! it as its controlling terminal, could push input into the user's shell
//! (TIOCSTI) or read what the user types. So the command always starts a
//! session of its own ([`attach`] or [`detach`]), the sandbox has no
//! /dev/tty from the host, and pid 1 lets go of strata's stdio
//! ([`release_stdio`]). With a terminal, the sandbox's pid 1 opens a
//! pseudo-terminal in the sandbox's devpts, makes its other end the
//! command's controlling terminal, stdio and /dev/tty, and passes the
//! master over a socket to the helper, which copies between it and
//! strata's stdio with the host terminal in raw mode, so keys like ^C
//! reach the command as they would at a console.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::sys;

/// A terminal operation that failed in the sandbox.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TtyError {
    /// A call that failed. The errno is worded by its description alone
    /// (nix's `Display` prefixes its name), as every message of the
    /// sandbox's setup is.
    #[error("{operation}: {}", errno.desc())]
    Call {
        /// What was being done.
        operation: String,
        /// Why.
        errno: nix::errno::Errno,
    },
    /// A file operation that failed.
    #[error("{operation}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A failed call's error, for `map_err`.
fn call(operation: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> TtyError {
    let operation = operation.into();
    move |errno| TtyError::Call { operation, errno }
}

/// Open a pseudo-terminal in this mount namespace's /dev/ptmx: (master,
/// slave).
pub(crate) fn open() -> Result<(OwnedFd, OwnedFd), TtyError> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(call("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(call("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(call("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(call("ptsname"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(call(format!("open {name}")))?;
    // /dev/tty: the sandbox's own terminal (what the command's /dev/tty
    // would name anyway, as its controlling terminal).
    let dev_tty = std::path::Path::new("/dev/tty");
    std::fs::File::create(dev_tty).map_err(|source| TtyError::Io {
        operation: "create /dev/tty",
        source,
    })?;
    nix::mount::mount(
        Some(name.as_str()),
        dev_tty,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(call(format!("bind {name} on /dev/tty")))?;
    let master: OwnedFd = master.into();
    Ok((master, slave))
}

/// Start a session of its own with no controlling terminal (in the
/// command's process, before exec): the terminal strata was started from
/// is then out of reach.
pub(crate) fn detach() -> Result<(), TtyError> {
    nix::unistd::setsid()
        .map(drop)
        .map_err(call("start a session of its own (setsid)"))
}

/// Point this process's stdio at /dev/null (pid 1, once the command has its
/// own copies).
pub(crate) fn release_stdio() -> Result<(), TtyError> {
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(call("open /dev/null"))?;
    nix::unistd::dup2_stdin(&null)
        .and_then(|()| nix::unistd::dup2_stdout(&null))
        .and_then(|()| nix::unistd::dup2_stderr(&null))
        .map_err(call("let go of strata's stdio"))
}

/// Send `fd` over `socket`.
pub(crate) fn send(socket: &UnixStream, fd: &OwnedFd) -> Result<(), TtyError> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"t")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(call("pass the terminal to the helper"))
}

/// Receive a descriptor sent with [`send`]; `None` when the other end
/// closed without sending (the sandbox failed first).
pub(crate) fn receive(socket: &UnixStream) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    for control in message.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = control
            && let Some(&fd) = fds.first()
        {
            return Some(sys::adopt_received_fd(fd));
        }
    }
    None
}

/// Make the new session's controlling terminal `slave` and point stdio at
/// it (in the command's process, before exec).
pub(crate) fn attach(slave: &OwnedFd) -> Result<(), TtyError> {
    detach()?;
    sys::set_controlling_terminal(slave.as_raw_fd()).map_err(|source| TtyError::Io {
        operation: "set the controlling terminal",
        source,
    })?;
    let attached = nix::unistd::dup2_stdin(slave)
        .and_then(|()| nix::unistd::dup2_stdout(slave))
        .and_then(|()| nix::unistd::dup2_stderr(slave));
    attached.map_err(call("attach the terminal"))
}

/// The host terminal's settings, to restore.
pub(crate) struct Saved(Option<Termios>);

/// Put strata's stdin terminal in raw mode; the old settings to restore.
pub(crate) fn raw_mode() -> Saved {
    let stdin = std::io::stdin();
    let Ok(saved) = tcgetattr(stdin.as_fd()) else {
        return Saved(None);
    };
    let mut raw = saved.clone();
    cfmakeraw(&mut raw);
    let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
    Saved(Some(saved))
}

/// Save the terminal settings of strata's stdin, if it is a terminal.
pub(crate) fn save() -> Saved {
    Saved(tcgetattr(std::io::stdin().as_fd()).ok())
}

impl Saved {
    /// Put the settings back.
    pub(crate) fn restore(&self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, saved);
        }
    }
}

/// Copy between strata's stdio and `master` until the command's side of
/// the terminal is closed by all.
pub(crate) fn relay(master: &OwnedFd) {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut size = sys::window_size(0).ok();
    if let Some(size) = size {
        let _ = sys::set_window_size(master.as_raw_fd(), size);
    }
    let mut stdin_open = true;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Wake now and then to pass on a resized window (no SIGWINCH
        // handler needed).
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
        let master_events = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_events = fds
            .get(1)
            .and_then(PollFd::revents)
            .unwrap_or(PollFlags::empty());
        if let Ok(now) = sys::window_size(0)
            && Some(now) != size
        {
            size = Some(now);
            let _ = sys::set_window_size(master.as_raw_fd(), now);
        }
        if master_events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master, &mut buffer) {
                // EIO: every slave descriptor is closed, the command is done.
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    if write_all(stdout.as_fd(), &buffer[..read]).is_err() {
                        return;
                    }
                }
            }
        }
        if stdin_events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(read) => {
                    if write_all(master.as_fd(), &buffer[..read]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// strata's stdout or stderr, when a terminal: the command gets a pipe,
/// copied to it by strata (see `Sandbox::spawn_helper`).
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn is_terminal(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    /// Copy everything from `reader` to this stream, as it comes.
    pub(crate) fn copy_from(self, mut reader: std::io::PipeReader) {
        use std::io::{Read, Write};
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let written = match self {
                Stream::Stdout => {
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(&buffer[..read])
                        .and_then(|()| stdout.flush())
                }
                Stream::Stderr => std::io::stderr().write_all(&buffer[..read]),
            };
            if written.is_err() {
                return;
            }
        }
    }
}
