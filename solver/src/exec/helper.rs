//! The sandbox helper: the process strata starts for each sandbox, running
//! this code before it has any thread.
//!
//! Four processes take part:
//! - the **helper** (started by strata with the spec on a pipe, its
//!   descriptor 3) stays in strata's namespaces. It forks
//! - the **keeper**, which unshares the user, mount, pid, uts and ipc (and,
//!   with `--network none`, net) namespaces, waits for the helper to write
//!   its id maps, and forks
//! - the **init**: pid 1 of the new pid namespace. It mounts the root,
//!   /proc and /dev, pivots into the root, and forks
//! - the **command**, which starts a session of its own (no controlling
//!   terminal, or the sandbox's pty with `strata run -it`), takes its
//!   user, directory and environment, gets docker's default seccomp
//!   profile (not with `--security=insecure`) and executes the step's
//!   program with only fds 0, 1 and 2.
//!
//! The init reaps orphans and exits with the command's status as soon as
//! the command ends; the kernel then kills everything else left in the pid
//! namespace (a daemon the command started included), and with the last
//! process go the namespaces and every mount. Each process asks for SIGKILL
//! when its parent dies, so killing the helper (strata does on SIGINT and
//! SIGTERM) takes the whole sandbox down.
//!
//! Failures before `exec` travel on a close-on-exec pipe as JSON; the
//! helper writes the outcome into the result file strata named.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::{
    HelperResult, HelperSpec, MAX_SPEC, SPEC_FD, Stage, limits, mount, seccomp, tty, user,
};
use crate::sys;
use std::os::unix::net::UnixStream;

/// Capabilities a command keeps (docker's default set; everything else,
/// CAP_SYS_ADMIN first, is dropped from the bounding set).
pub(super) const DEFAULT_CAPABILITIES: [u32; 14] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    27, // CAP_MKNOD
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

/// `PATH` for commands whose environment has none (docker's default).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit code of the helper when it cannot even read its spec.
const HELPER_FAILED: i32 = 125;

/// The helper's `main`. Never returns.
pub fn helper_main() -> ! {
    // Whatever strata inherited (a CI runner's sockets, make's jobserver,
    // a directory a caller left open) stops here: no process of the
    // sandbox holds a descriptor of the host's beyond 0, 1 and 2. The
    // spec's pipe is kept only until it is read.
    if let Err(error) = sys::close_fds_above_stdio(SPEC_FD) {
        let _ = writeln!(
            std::io::stderr(),
            "strata: the sandbox helper could not close inherited descriptors: {error}"
        );
        std::process::exit(HELPER_FAILED)
    }
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "strata: the sandbox helper is internal to strata and needs a spec ({error})"
            );
            std::process::exit(HELPER_FAILED)
        }
    };
    let result = helper(&spec);
    let text = serde_json::to_vec(&result).expect("results serialize");
    // strata reads this after the helper exits; without it, it reports
    // that the helper died.
    let code = match std::fs::write(&spec.result, text) {
        Ok(()) => 0,
        Err(_) => HELPER_FAILED,
    };
    std::process::exit(code)
}

/// Why the helper has no spec.
#[derive(Debug, thiserror::Error)]
enum SpecError {
    /// Started by hand, not by strata.
    #[error("descriptor {SPEC_FD} is not open: {0}")]
    Missing(std::io::Error),
    /// The pipe broke.
    #[error("reading descriptor {SPEC_FD}: {0}")]
    Read(std::io::Error),
    /// Garbage, not a spec strata wrote.
    #[error("more than {MAX_SPEC} bytes on descriptor {SPEC_FD}")]
    TooLarge,
    /// Not a spec of this version of strata.
    #[error("an unreadable spec: {0}")]
    Json(#[from] serde_json::Error),
}

/// Read the spec strata writes to [`SPEC_FD`], to its end, and close the
/// descriptor: after this the helper holds none but 0, 1 and 2.
fn read_spec() -> Result<HelperSpec, SpecError> {
    let pipe = std::fs::File::from(sys::take_inherited_fd(SPEC_FD).map_err(SpecError::Missing)?);
    let mut text = Vec::new();
    pipe.take(MAX_SPEC + 1)
        .read_to_end(&mut text)
        .map_err(SpecError::Read)?;
    if text.len() as u64 > MAX_SPEC {
        return Err(SpecError::TooLarge);
    }
    Ok(serde_json::from_slice(&text)?)
}

fn failure(stage: Stage, message: impl Into<String>) -> HelperResult {
    HelperResult::Failed {
        stage,
        message: message.into(),
    }
}

fn helper(spec: &HelperSpec) -> HelperResult {
    let _ = nix::sys::prctl::set_name(c"strata-sandbox");
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err()
        || nix::unistd::getppid().as_raw() != spec.parent
    {
        // strata is already gone.
        return failure(Stage::Setup, "strata exited before the sandbox started");
    }
    // ^C on the terminal reaches every process in the foreground group:
    // the command decides what it means, and strata kills us if it must.
    if let Err(error) = sys::ignore_signals(&[Signal::SIGINT, Signal::SIGQUIT]) {
        return failure(Stage::Setup, format!("set signal handlers: {error}"));
    }
    let pipes =
        (|| -> std::io::Result<_> { Ok((std::io::pipe()?, std::io::pipe()?, std::io::pipe()?)) })();
    let ((ready_read, ready_write), (go_read, go_write), (error_read, error_write)) = match pipes {
        Ok(pipes) => pipes,
        Err(error) => return failure(Stage::Setup, format!("create pipes: {error}")),
    };
    let (tty_here, tty_there) = match spec.tty.then(UnixStream::pair).transpose() {
        Ok(Some((here, there))) => (Some(here), Some(there)),
        Ok(None) => (None, None),
        Err(error) => return failure(Stage::Setup, format!("create a socket pair: {error}")),
    };
    let keeper = match sys::fork() {
        Ok(ForkResult::Child) => {
            drop((ready_read, go_write, error_read, tty_here));
            let code = keeper(spec, ready_write, go_read, error_write.into(), tty_there);
            sys::exit_child(code)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => return failure(Stage::Namespaces, format!("fork: {error}")),
    };
    drop((ready_write, go_read, error_write, tty_there));
    let mut ready_read = ready_read;
    let mut byte = [0u8; 1];
    let mut go_write = go_write;
    if ready_read.read_exact(&mut byte).is_ok() {
        // The keeper has unshared: give its user namespace our ids.
        let answer = match super::userns::write_identity_maps(keeper) {
            Ok(()) => b"m",
            Err(error) => {
                let _ = go_write.write_all(b"x");
                let _ = nix::sys::signal::kill(keeper, Signal::SIGKILL);
                let _ = waitpid(keeper, None);
                return failure(
                    Stage::Namespaces,
                    format!("write the id maps of the sandbox's user namespace: {error}"),
                );
            }
        };
        let _ = go_write.write_all(answer);
    }
    drop(go_write);
    // With a terminal: relay it until the command's side closes.
    if let Some(socket) = tty_here
        && let Some(master) = tty::receive(&socket)
    {
        drop(socket);
        let saved = tty::raw_mode();
        tty::relay(&master);
        saved.restore();
    }
    let status = wait_for(keeper);
    let mut report = String::new();
    let mut error_read = error_read;
    let _ = error_read.read_to_string(&mut report);
    if let Some(line) = report.lines().next()
        && let Ok(result) = serde_json::from_str::<HelperResult>(line)
    {
        return result;
    }
    HelperResult::Exited(status)
}

/// Wait for `pid`; its exit code, or 128 + the signal that killed it.
fn wait_for(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// Report a failure to the helper (one JSON line) and give the exit code
/// to use.
fn report(error_pipe: &OwnedFd, stage: Stage, message: String) -> i32 {
    let mut line = serde_json::to_vec(&failure(stage, message)).expect("results serialize");
    line.push(b'\n');
    let _ = nix::unistd::write(error_pipe, &line);
    match stage {
        Stage::Exec => 127,
        _ => 255,
    }
}

fn keeper(
    spec: &HelperSpec,
    mut ready: std::io::PipeWriter,
    mut go: std::io::PipeReader,
    error_pipe: OwnedFd,
    tty: Option<UnixStream>,
) -> i32 {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.network_none {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if let Err(errno) = nix::sched::unshare(flags) {
        return report(
            &error_pipe,
            Stage::Namespaces,
            format!(
                "create the sandbox's namespaces (unshare {flags:?}): {}",
                errno.desc()
            ),
        );
    }
    let mut answer = [0u8; 1];
    if ready.write_all(b"u").is_err() || go.read_exact(&mut answer).is_err() || answer != *b"m" {
        // The helper reported what went wrong.
        return 255;
    }
    drop((ready, go));
    match sys::fork() {
        Ok(ForkResult::Child) => {
            let code = init(spec, error_pipe, tty);
            sys::exit_child(code)
        }
        Ok(ForkResult::Parent { child }) => {
            drop((error_pipe, tty));
            wait_for(child)
        }
        Err(error) => report(&error_pipe, Stage::Namespaces, format!("fork: {error}")),
    }
}

/// pid 1 of the sandbox.
fn init(spec: &HelperSpec, error_pipe: OwnedFd, tty: Option<UnixStream>) -> i32 {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // What `ps` in the sandbox shows for pid 1 (the helper was started as
    // /proc/self/exe, which would read "exe").
    let _ = nix::sys::prctl::set_name(c"strata-init");
    if let Err((stage, message)) = mount::setup(spec) {
        return report(&error_pipe, stage, message);
    }
    if let Err(errno) = nix::unistd::sethostname(&spec.hostname) {
        return report(
            &error_pipe,
            Stage::Setup,
            format!("set the hostname: {}", errno.desc()),
        );
    }
    if spec.network_none
        && let Err(error) = sys::loopback_up()
    {
        return report(
            &error_pipe,
            Stage::Setup,
            format!("bring up the loopback interface: {error}"),
        );
    }
    // The terminal, in the sandbox's devpts: the master goes to the helper.
    let slave = match tty {
        Some(socket) => {
            let opened = tty::open().and_then(|(master, slave)| {
                tty::send(&socket, &master)?;
                Ok(slave)
            });
            match opened {
                Ok(slave) => Some(slave),
                Err(error) => {
                    return report(&error_pipe, Stage::Setup, crate::error::one_line(&error));
                }
            }
        }
        None => None,
    };
    // Pid 1 is strata's own binary. Not dumpable, its /proc entries belong
    // to the host's root: the command cannot open /proc/1/exe (to rewrite
    // strata, CVE-2019-5736's way out of runc), /proc/1/fd or /proc/1/mem.
    // The command's own flag is reset by its execve.
    if let Err(errno) = nix::sys::prctl::set_dumpable(false) {
        return report(
            &error_pipe,
            Stage::Setup,
            format!("make the sandbox's init undumpable: {}", errno.desc()),
        );
    }
    let command = match sys::fork() {
        Ok(ForkResult::Child) => {
            // A session of its own: with a terminal, the sandbox's pty
            // becomes its controlling terminal; without, it has none, so
            // strata's terminal (if any) is out of its reach: no /dev/tty,
            // no TIOCSTI, no keystrokes to read.
            let session = match &slave {
                Some(slave) => tty::attach(slave),
                None => tty::detach(),
            };
            if let Err(error) = session {
                let message = crate::error::one_line(&error);
                sys::exit_child(report(&error_pipe, Stage::Setup, message));
            }
            drop(slave);
            let error = command(spec, &error_pipe);
            sys::exit_child(error)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => return report(&error_pipe, Stage::Setup, format!("fork: {error}")),
    };
    // pid 1 needs no stdio from here on: let go of strata's (a terminal,
    // with `strata run -it`), so nothing in the sandbox can reach it
    // through this process either.
    if let Err(error) = tty::release_stdio() {
        let _ = nix::sys::signal::kill(command, Signal::SIGKILL);
        return report(&error_pipe, Stage::Setup, crate::error::one_line(&error));
    }
    drop((error_pipe, slave));
    // Reap everything until the command itself ends.
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => return code,
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                return 128 + signal as i32;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// The command's process: become the step's user, in its directory, with
/// its environment, and execute. Returns only on failure.
fn command(spec: &HelperSpec, error_pipe: &OwnedFd) -> i32 {
    let fail = |stage, message: String| report(error_pipe, stage, message);
    let user = match user::resolve(Path::new("/"), &spec.user) {
        Ok(user) => user,
        Err(error) => return fail(Stage::Setup, crate::error::one_line(&error)),
    };
    // `--ulimit`, before the user is changed: lowering a limit is always
    // allowed; raising a hard one past what strata has is not (it needs
    // CAP_SYS_RESOURCE on the host), and says so.
    for limit in &spec.ulimits {
        let Some(resource) = limit.resource() else {
            return fail(Stage::Setup, format!("unknown ulimit `{}`", limit.name));
        };
        if let Err(errno) = nix::sys::resource::setrlimit(resource, limit.soft, limit.hard) {
            return fail(
                Stage::Setup,
                format!(
                    "set the ulimit {limit}: {errno} (a hard limit cannot be raised without privileges)"
                ),
            );
        }
    }
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    if let Err(error) = std::fs::create_dir_all(cwd) {
        return fail(
            Stage::Setup,
            format!("create the working directory {cwd}: {error}"),
        );
    }
    if let Err(error) = std::env::set_current_dir(cwd) {
        return fail(
            Stage::Setup,
            format!("enter the working directory {cwd}: {error}"),
        );
    }
    let mut env = spec.env.clone();
    let has = |env: &[String], key: &str| {
        env.iter()
            .any(|entry| entry.split_once('=').map(|(name, _)| name) == Some(key))
    };
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", user.home));
    }
    let Some(program) = spec.args.first() else {
        return fail(Stage::Exec, "no command to run".to_owned());
    };
    let path = match find_executable(program, &env) {
        Ok(path) => path,
        Err(error) => return fail(Stage::Exec, error.to_string()),
    };
    // `RUN --security=insecure` (allowed with --allow security.insecure)
    // keeps every capability of the sandbox's own user namespace (still no
    // power over the host's) and runs unconfined, as BuildKit's.
    if !spec.insecure
        && let Err(error) = sys::drop_bounding_capabilities(&DEFAULT_CAPABILITIES)
    {
        return fail(Stage::Setup, format!("drop capabilities: {error}"));
    }
    let filter = if spec.insecure {
        None
    } else {
        match seccomp::default_profile(&DEFAULT_CAPABILITIES) {
            Ok(programs) => Some(programs),
            Err(error) => return fail(Stage::Setup, error.to_string()),
        }
    };
    let groups: Vec<Gid> = user.groups.iter().copied().map(Gid::from_raw).collect();
    if let Err(errno) = nix::unistd::setgroups(&groups) {
        // With a single mapped id, setgroups is denied in the namespace
        // (the warning said so); the only group there is 0 anyway.
        let denied =
            std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|text| text.trim() == "deny");
        if !denied {
            return fail(
                Stage::Setup,
                format!(
                    "set supplementary groups {:?}: {}",
                    user.groups,
                    errno.desc()
                ),
            );
        }
    }
    let gid = Gid::from_raw(user.gid);
    let uid = Uid::from_raw(user.uid);
    if let Err(errno) = nix::unistd::setresgid(gid, gid, gid) {
        return fail(
            Stage::Setup,
            format!(
                "switch to group {}: {} (is the gid mapped?)",
                user.gid,
                errno.desc()
            ),
        );
    }
    // The seccomp filter goes on last of what needs privilege: installing
    // it without no_new_privs (setuid programs work in a step, as under
    // docker) takes CAP_SYS_ADMIN in the sandbox's user namespace, which
    // the switch to a user other than root gives up. What runs after it
    // (setresuid, umask, sigaction, close_range, execve) is all allowed.
    if let Some(programs) = &filter
        && let Err(error) = seccomp::install(programs)
    {
        return fail(Stage::Setup, error.to_string());
    }
    if let Err(errno) = nix::unistd::setresuid(uid, uid, uid) {
        return fail(
            Stage::Setup,
            format!(
                "switch to user {}: {} (is the uid mapped?)",
                user.uid,
                errno.desc()
            ),
        );
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if let Err(error) = sys::reset_signals() {
        return fail(Stage::Setup, format!("reset signal handlers: {error}"));
    }
    if let Err(error) = sys::close_fds_above_stdio(error_pipe.as_raw_fd()) {
        return fail(
            Stage::Setup,
            format!("close inherited file descriptors: {error}"),
        );
    }
    let to_c = |text: &str| CString::new(text).map_err(|_| CommandError::Nul(text.to_owned()));
    let converted = (|| -> Result<_, CommandError> {
        let path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| CommandError::NulInProgram)?;
        let args = spec
            .args
            .iter()
            .map(|arg| to_c(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let env = env
            .iter()
            .map(|entry| to_c(entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((path, args, env))
    })();
    let (c_path, c_args, c_env) = match converted {
        Ok(converted) => converted,
        Err(error) => return fail(Stage::Exec, error.to_string()),
    };
    // What the limits are is looked up before execve, which may not
    // return; only E2BIG needs them.
    let limits = limits::Limits::current();
    let errno = match nix::unistd::execve(&c_path, &c_args, &c_env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    let message = match errno {
        nix::errno::Errno::E2BIG => {
            limits::explain_too_big(limits, c_path.as_bytes(), &spec.args, &env)
        }
        _ => format!("exec {}: {}", path.display(), errno.desc()),
    };
    fail(Stage::Exec, message)
}

/// The program to execute: `name` itself when it has a slash, else the
/// first executable file of that name in the command's `PATH`, as execvp.
fn find_executable(name: &str, env: &[String]) -> Result<PathBuf, CommandError> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|entry| entry.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| CommandError::NotFound(name.to_owned()))
}

/// Why the command cannot be executed (before execve itself fails).
#[derive(Debug, thiserror::Error)]
enum CommandError {
    /// No executable file of that name in `PATH`.
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    /// The program's path has a NUL byte.
    #[error("the program path contains a NUL byte")]
    NulInProgram,
    /// An argument or environment entry has a NUL byte.
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
}
