//! A terminal for the sandboxed command, when strata's standard input is
//! one (`strata run` from a shell).
//!
//! The host's terminal is not handed in: its /dev/pts name would not exist
//! in the sandbox's own devpts, and a command could push input into it
//! (TIOCSTI). Instead the sandbox's pid 1 opens a pseudo-terminal in the
//! sandbox's devpts, makes its other end the command's controlling
//! terminal and stdio, and passes the master over a socket to the helper,
//! which copies between it and strata's stdio with the host terminal in
//! raw mode, so keys like ^C reach the command as they would at a console.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::sys;

/// Open a pseudo-terminal in this mount namespace's /dev/ptmx: (master,
/// slave).
pub(crate) fn open() -> Result<(OwnedFd, OwnedFd), String> {
    let fail = |what: &str, errno: nix::errno::Errno| format!("{what}: {}", errno.desc());
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|errno| fail("open /dev/ptmx", errno))?;
    nix::pty::grantpt(&master).map_err(|errno| fail("grantpt", errno))?;
    nix::pty::unlockpt(&master).map_err(|errno| fail("unlockpt", errno))?;
    let name = nix::pty::ptsname_r(&master).map_err(|errno| fail("ptsname", errno))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| fail(&format!("open {name}"), errno))?;
    let master: OwnedFd = master.into();
    Ok((master, slave))
}

/// Send `fd` over `socket`.
pub(crate) fn send(socket: &UnixStream, fd: &OwnedFd) -> Result<(), String> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"t")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|errno| format!("pass the terminal to the helper: {}", errno.desc()))
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
pub(crate) fn attach(slave: &OwnedFd) -> Result<(), String> {
    nix::unistd::setsid().map_err(|errno| format!("setsid: {}", errno.desc()))?;
    sys::set_controlling_terminal(slave.as_raw_fd())
        .map_err(|error| format!("set the controlling terminal: {error}"))?;
    let attached = nix::unistd::dup2_stdin(slave)
        .and_then(|()| nix::unistd::dup2_stdout(slave))
        .and_then(|()| nix::unistd::dup2_stderr(slave));
    attached.map_err(|errno| format!("attach the terminal: {}", errno.desc()))
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
