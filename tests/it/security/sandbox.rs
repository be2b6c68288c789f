//! The sandbox has no way back to the host, tried as an attacker would: a
//! `RUN` step or `strata run` gets no terminal of strata's (nothing to
//! push keystrokes into with TIOCSTI, nothing to read what the user types
//! from), no descriptor strata inherited, and docker's default seccomp
//! profile, which only `RUN --security=insecure` lifts. In every tier: as
//! root, as a user with subordinate ids and as one without.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sandbox::{Env, TIERS, Tier, chmod, readable_context, wait};
use crate::support::{Run, require};

/// `tiocsti`, a static x86_64 program of 472 bytes: it pushes
/// `touch pwned\n` into a terminal's input queue with TIOCSTI, through
/// `/dev/tty`, then through fds 0, 1 and 2, and exits with a bit set for
/// each way that worked (1: /dev/tty, 2, 4, 8: fds 0, 1, 2). Whatever it
/// pushes into the terminal strata runs on is what the user's shell reads
/// as its next command line. Assembled (`as` and `ld -static -nostdlib -N
/// -s --build-id=none`) from:
///
/// ```text
/// _start: xor %r12d,%r12d ; mov $2,%eax ; lea path(%rip),%rdi ; mov $2,%esi
///         syscall ; test %eax,%eax ; js 1f                  # open("/dev/tty", O_RDWR)
///         mov %eax,%r13d ; mov $1,%r14d ; call inject
/// 1:      xor %r13d,%r13d ; mov $2,%r14d                     # fds 0, 1, 2
/// 2:      call inject ; inc %r13d ; shl %r14d ; cmp $3,%r13d ; jne 2b
///         mov $60,%eax ; mov %r12d,%edi ; syscall            # exit(bits)
/// inject: lea payload(%rip),%r15
/// 3:      cmpb $0,(%r15) ; je 4f
///         mov $16,%eax ; mov %r13d,%edi ; mov $0x5412,%esi ; mov %r15,%rdx
///         syscall ; test %eax,%eax ; jnz 5f                  # ioctl(fd, TIOCSTI, byte)
///         inc %r15 ; jmp 3b
/// 4:      or %r14d,%r12d
/// 5:      ret
/// path:    .asciz "/dev/tty"
/// payload: .asciz "touch pwned\n"
/// ```
const TIOCSTI_TOOL: &[u8] = &[
    0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00, 0x01, 0x00, 0x40, 0x00, 0x03, 0x00, 0x02, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x8e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x45, 0x31, 0xe4, 0xb8, 0x02, 0x00, 0x00, 0x00,
    0x48, 0x8d, 0x3d, 0x69, 0x00, 0x00, 0x00, 0xbe, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x85, 0xc0,
    0x78, 0x0e, 0x41, 0x89, 0xc5, 0x41, 0xbe, 0x01, 0x00, 0x00, 0x00, 0xe8, 0x24, 0x00, 0x00, 0x00,
    0x45, 0x31, 0xed, 0x41, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xe8, 0x16, 0x00, 0x00, 0x00, 0x41, 0xff,
    0xc5, 0x41, 0xd1, 0xe6, 0x41, 0x83, 0xfd, 0x03, 0x75, 0xef, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x44,
    0x89, 0xe7, 0x0f, 0x05, 0x4c, 0x8d, 0x3d, 0x2e, 0x00, 0x00, 0x00, 0x41, 0x80, 0x3f, 0x00, 0x74,
    0x1b, 0xb8, 0x10, 0x00, 0x00, 0x00, 0x44, 0x89, 0xef, 0xbe, 0x12, 0x54, 0x00, 0x00, 0x4c, 0x89,
    0xfa, 0x0f, 0x05, 0x85, 0xc0, 0x75, 0x08, 0x49, 0xff, 0xc7, 0xeb, 0xdf, 0x45, 0x09, 0xf4, 0xc3,
    0x2f, 0x64, 0x65, 0x76, 0x2f, 0x74, 0x74, 0x79, 0x00, 0x74, 0x6f, 0x75, 0x63, 0x68, 0x20, 0x70,
    0x77, 0x6e, 0x65, 0x64, 0x0a, 0x00, 0x00, 0x2e, 0x73, 0x68, 0x73, 0x74, 0x72, 0x74, 0x61, 0x62,
    0x00, 0x2e, 0x74, 0x65, 0x78, 0x74, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// `syscalls PROBE`, a static x86_64 program of 576 bytes: one system call
/// whose arguments docker's profile looks at, exiting with its errno (0 on
/// success). Assembled as `tiocsti`, each probe being
/// `mov $NR,%eax ; mov ARG0,%edi ; mov ARG1,%esi ; syscall`, then
/// `exit(rax < 0 ? -rax : 0)`:
///
/// | probe | call                                 | without a filter  | docker's profile |
/// |-------|--------------------------------------|-------------------|------------------|
/// | a     | clone3(args, size 1)                 | EINVAL (size)     | ENOSYS           |
/// | b     | clone(CLONE_NEWNS \| CLONE_FS)       | EINVAL (the pair) | EPERM            |
/// | c     | clone(CLONE_SIGHAND)                 | EINVAL (no VM)    | EINVAL           |
/// | d     | socket(AF_VSOCK, SOCK_STREAM, 0)     | the kernel's      | EPERM            |
/// | e     | socket(AF_ALG, SOCK_SEQPACKET, 0)    | the kernel's      | EPERM            |
/// | f     | socket(AF_UNIX, SOCK_STREAM, 0)      | 0                 | 0                |
/// | g     | personality(ADDR_NO_RANDOMIZE)       | 0                 | EPERM            |
/// | h     | personality(0xffffffff): a query     | 0                 | 0                |
/// | i     | getpid, i386's, through `int $0x80`  | 0                 | killed (SIGSYS)  |
const SYSCALLS_TOOL: &[u8] = &[
    0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00, 0x01, 0x00, 0x40, 0x00, 0x03, 0x00, 0x02, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xf5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x74, 0x24, 0x10, 0x48, 0x85, 0xf6,
    0x0f, 0x84, 0xd3, 0x00, 0x00, 0x00, 0x0f, 0xb6, 0x0e, 0x31, 0xf6, 0x31, 0xd2, 0x45, 0x31, 0xd2,
    0x45, 0x31, 0xc0, 0x80, 0xf9, 0x61, 0x75, 0x16, 0xb8, 0xb3, 0x01, 0x00, 0x00, 0x48, 0x8d, 0x3d,
    0xc1, 0x00, 0x00, 0x00, 0xbe, 0x01, 0x00, 0x00, 0x00, 0xe9, 0x97, 0x00, 0x00, 0x00, 0x80, 0xf9,
    0x62, 0x75, 0x0f, 0xb8, 0x38, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x02, 0x02, 0x00, 0xe9, 0x83, 0x00,
    0x00, 0x00, 0x80, 0xf9, 0x63, 0x75, 0x0c, 0xb8, 0x38, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x08, 0x00,
    0x00, 0xeb, 0x72, 0x80, 0xf9, 0x64, 0x75, 0x11, 0xb8, 0x29, 0x00, 0x00, 0x00, 0xbf, 0x28, 0x00,
    0x00, 0x00, 0xbe, 0x01, 0x00, 0x00, 0x00, 0xeb, 0x5c, 0x80, 0xf9, 0x65, 0x75, 0x11, 0xb8, 0x29,
    0x00, 0x00, 0x00, 0xbf, 0x26, 0x00, 0x00, 0x00, 0xbe, 0x05, 0x00, 0x00, 0x00, 0xeb, 0x46, 0x80,
    0xf9, 0x66, 0x75, 0x11, 0xb8, 0x29, 0x00, 0x00, 0x00, 0xbf, 0x01, 0x00, 0x00, 0x00, 0xbe, 0x01,
    0x00, 0x00, 0x00, 0xeb, 0x30, 0x80, 0xf9, 0x67, 0x75, 0x0c, 0xb8, 0x87, 0x00, 0x00, 0x00, 0xbf,
    0x00, 0x00, 0x04, 0x00, 0xeb, 0x1f, 0x80, 0xf9, 0x68, 0x75, 0x0c, 0xb8, 0x87, 0x00, 0x00, 0x00,
    0xbf, 0xff, 0xff, 0xff, 0xff, 0xeb, 0x0e, 0x80, 0xf9, 0x69, 0x75, 0x1d, 0xb8, 0x14, 0x00, 0x00,
    0x00, 0xcd, 0x80, 0xeb, 0x02, 0x0f, 0x05, 0x31, 0xff, 0x48, 0x85, 0xc0, 0x79, 0x04, 0x89, 0xc7,
    0xf7, 0xdf, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0xbf, 0x64,
    0x00, 0x00, 0x00, 0x0f, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2e, 0x73,
    0x68, 0x73, 0x74, 0x72, 0x74, 0x61, 0x62, 0x00, 0x2e, 0x74, 0x65, 0x78, 0x74, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xf5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// What the user's shell does after strata returns: read the command lines
/// waiting on its terminal and run them, as an interactive shell would.
const USER_SHELL: &str =
    "while IFS= read -t 2 -r line; do echo \"shell read [$line]\"; eval \"$line\"; done";

/// A shell word for `text`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `command`'s program and arguments as a shell command line.
fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run the bash `script` in `dir` on a new pseudo-terminal that is its
/// controlling terminal (util-linux's `script`), as from a user's terminal
/// emulator. `typed` is typed on the terminal once the output shows
/// `ready`. Line ends are turned back into `\n`.
fn on_terminal(script: &str, dir: &Path, typed: Option<&str>) -> Run {
    let mut child = Command::new(require("script"))
        .args(["-qec", script, "/dev/null"])
        .env("SHELL", require("bash"))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let output = Arc::clone(&output);
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stdout.read(&mut buffer) {
                output.lock().unwrap().extend_from_slice(&buffer[..read]);
            }
        })
    };
    // The terminal's input stays open (and empty but for `typed`) until
    // the script is done.
    let mut stdin = child.stdin.take().unwrap();
    if let Some(typed) = typed {
        let start = Instant::now();
        while !String::from_utf8_lossy(&output.lock().unwrap()).contains("ready") {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "never ready: {}",
                String::from_utf8_lossy(&output.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stdin.write_all(typed.as_bytes()).unwrap();
    }
    let mut run = wait(child, Duration::from_secs(120));
    drop(stdin);
    reader.join().unwrap();
    run.stdout = String::from_utf8_lossy(&output.lock().unwrap()).replace("\r\n", "\n");
    run
}

/// The lines starting with `check: ` (in a build's plain progress, after
/// the step's `#N `), and those of the script around strata (`strata
/// exited`, `shell read`).
fn checks(output: &str) -> Vec<String> {
    output
        .lines()
        .map(|line| match line.split_once(' ') {
            Some((number, rest)) if number.starts_with('#') => rest,
            _ => line,
        })
        .filter(|line| {
            ["check: ", "strata exited", "shell read"]
                .iter()
                .any(|prefix| line.starts_with(prefix))
        })
        .map(str::to_owned)
        .collect()
}

/// A context every tier's user can read: `dockerfile` and the tools.
fn attack_context(dockerfile: &str) -> tempfile::TempDir {
    let context = readable_context(&[("Dockerfile", dockerfile.to_owned())]);
    for (name, tool) in [("tiocsti", TIOCSTI_TOOL), ("syscalls", SYSCALLS_TOOL)] {
        let path = context.path().join(name);
        std::fs::write(&path, tool).unwrap();
        chmod(&path, 0o755);
    }
    context
}

/// The attack works where nothing stops it: the tool run by the user's
/// shell itself fills the shell's next command line. (Without this, the
/// tests below would pass for a tool that does nothing.)
#[cfg(target_arch = "x86_64")]
#[test]
fn the_terminal_attack_works_on_an_unprotected_process() {
    let context = attack_context("");
    let run = on_terminal(
        &format!("./tiocsti; echo \"strata exited $?\"; {USER_SHELL}"),
        context.path(),
        None,
    );
    assert_eq!(
        checks(&run.stdout),
        [
            "strata exited 15",
            "shell read [touch pwned]",
            "shell read [touch pwned]",
            "shell read [touch pwned]",
            "shell read [touch pwned]",
        ],
        "{}",
        run.stdout
    );
    assert!(context.path().join("pwned").exists());
}

/// Steps of a build that look for a way to the terminal strata was started
/// from, and to a file strata inherited open on fd 5.
const TERMINAL_ATTACKS: &str = r#"FROM base
COPY tiocsti /usr/local/bin/tiocsti
RUN echo "check: pid $$ leads session $(cut -d' ' -f6 /proc/$$/stat), terminal $(cut -d' ' -f7 /proc/$$/stat)"
RUN echo "check: $(cat /dev/tty 2>&1)"; echo "check: stdin $(readlink /proc/self/fd/0)"
RUN echo "check: open fds $(ls /proc/self/fd | tr '\n' ' ')"
RUN (echo pwned >&5) 2>/dev/null || echo "check: fd 5 is not there"
RUN tiocsti; echo "check: tiocsti $?"
"#;

#[cfg(target_arch = "x86_64")]
#[test]
fn a_run_step_has_no_terminal_to_type_into_nor_inherited_files() {
    for tier in TIERS {
        let env = Env::new(tier);
        let context = attack_context(TERMINAL_ATTACKS);
        let inherited = context.path().join("inherited");
        std::fs::write(&inherited, "").unwrap();
        let build = env.command(&[
            "build",
            "--progress",
            "plain",
            context.path().to_str().unwrap(),
        ]);
        let run = on_terminal(
            &format!(
                "exec 5>>{}; {}; echo \"strata exited $?\"; {USER_SHELL}",
                quote(&inherited.display().to_string()),
                command_line(&build)
            ),
            context.path(),
            None,
        );
        assert_eq!(
            checks(&run.stdout),
            [
                "check: pid 2 leads session 2, terminal 0",
                "check: cat: can't open '/dev/tty': No such file or directory",
                "check: stdin /dev/null",
                "check: open fds 0 1 2 3 ",
                "check: fd 5 is not there",
                "check: tiocsti 0",
                "strata exited 0",
            ],
            "{tier:?}: {}",
            run.stdout
        );
        assert!(!context.path().join("pwned").exists(), "{tier:?}");
        assert_eq!(std::fs::read_to_string(&inherited).unwrap(), "", "{tier:?}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn strata_run_keeps_the_users_terminal_out_of_reach() {
    for tier in TIERS {
        let env = Env::new(tier);
        let context = attack_context("FROM base\nCOPY tiocsti /usr/local/bin/tiocsti\n");
        env.ok(&[
            "build",
            "-q",
            "-t",
            "attack",
            context.path().to_str().unwrap(),
        ]);
        // Standard input not a terminal: no terminal for the command at
        // all, though strata's stdout and stderr are the user's. It cannot
        // read what the user types there, nor inject into it.
        let run = env.command(&[
            "run",
            "attack",
            "sh",
            "-c",
            "test -t 1 || echo 'check: stdout is no terminal'; echo ready; \
             read -t 5 line <&1; echo \"check: read [$line]\"; \
             read -t 1 line <&2; echo \"check: read [$line]\"; \
             tiocsti; echo \"check: tiocsti $?\"",
        ]);
        let out = on_terminal(
            &format!(
                "stty -echo; {} </dev/null; echo \"strata exited $?\"; {USER_SHELL}",
                command_line(&run)
            ),
            context.path(),
            Some("echo check: typed by the user\n"),
        );
        assert_eq!(
            checks(&out.stdout),
            [
                "check: stdout is no terminal",
                "check: read []",
                "check: read []",
                "check: tiocsti 0",
                "strata exited 0",
                "shell read [echo check: typed by the user]",
                "check: typed by the user",
            ],
            "{tier:?}: {}",
            out.stdout
        );
        // `-it`: a terminal the sandbox owns, which the command may type
        // into all it likes: none of it reaches the user's shell.
        let run = env.command(&[
            "run",
            "-it",
            "attack",
            "sh",
            "-c",
            "echo \"check: $(tty), /dev/tty is $(stat -c %t:%T /dev/tty), session of $$: \
             $(cut -d' ' -f6 /proc/$$/stat)\"; tiocsti; echo \"check: tiocsti $?\"",
        ]);
        let out = on_terminal(
            &format!(
                "{}; echo \"strata exited $?\"; {USER_SHELL}",
                command_line(&run)
            ),
            context.path(),
            None,
        );
        assert_eq!(
            checks(&out.stdout),
            [
                "check: /dev/pts/0, /dev/tty is 88:0, session of 2: 2",
                "check: tiocsti 15",
                "strata exited 0",
            ],
            "{tier:?}: {}",
            out.stdout
        );
        assert!(!context.path().join("pwned").exists(), "{tier:?}");
    }
}

/// System calls docker's default profile refuses, and what busybox says.
const REFUSED: &str = r#"FROM base
RUN echo "check: $(grep -e Seccomp: -e NoNewPrivs: /proc/self/status | tr '\t\n' '  ')"
RUN for call in 'unshare -U true' 'unshare -m true' 'mount -t tmpfs none /tmp' 'swapon /dev/null' 'hostname sandbox'; do echo "check: $($call 2>&1)"; done
RUN chroot / true && linux32 true && echo "check: chroot and linux32 are allowed"
RUN --security=insecure unshare -U true && mount -t tmpfs none /tmp && echo "check: insecure: $(grep Seccomp: /proc/self/status | tr '\t' ' ')"
"#;

#[test]
fn run_steps_get_dockers_seccomp_profile_unless_insecure() {
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[("Dockerfile", REFUSED.to_owned())]);
        let run = env.strata(&[
            "build",
            "--progress",
            "plain",
            "--allow",
            "security.insecure",
            context.path().to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        assert_eq!(
            checks(&run.stderr),
            [
                // No no_new_privs, as under docker: setuid programs work.
                "check: NoNewPrivs: 0 Seccomp: 2 ",
                "check: unshare: unshare(0x10000000): Operation not permitted",
                "check: unshare: unshare(0x20000): Operation not permitted",
                "check: mount: permission denied (are you root?)",
                "check: swapon: /dev/null: Operation not permitted",
                "check: hostname: sethostname: Operation not permitted",
                "check: chroot and linux32 are allowed",
                "check: insecure: Seccomp: 0",
            ],
            "{tier:?}: {}",
            run.stderr
        );
        // `strata run` gets the profile too, as `docker run` does.
        let run = env.strata(&["run", "base", "unshare", "-U", "true"]);
        // (The single-id tier's warning comes first.)
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| !line.starts_with("warning: only one id is mapped"))
            .collect();
        assert_eq!(
            (run.code, errors),
            (
                1,
                vec!["unshare: unshare(0x10000000): Operation not permitted"]
            ),
            "{tier:?}"
        );
    }
}

/// The profile's argument filters, probed one call at a time (see
/// [`SYSCALLS_TOOL`]).
const PROBES: &str = r#"FROM base
COPY syscalls /usr/local/bin/syscalls
RUN for probe in a b c d e f g h i; do syscalls $probe; echo "check: $probe $?"; done
RUN --security=insecure for probe in a b c i; do syscalls $probe; echo "check: insecure $probe $?"; done
"#;

#[cfg(target_arch = "x86_64")]
#[test]
fn the_profile_filters_clone_socket_and_personality_by_their_arguments() {
    let profiled = [
        "check: a 38", // clone3: ENOSYS, so that glibc falls back to clone
        "check: b 1",  // clone with a namespace flag
        "check: c 22", // clone without one reaches the kernel
        "check: d 1",  // AF_VSOCK
        "check: e 1",  // AF_ALG
        "check: f 0",
        "check: g 1", // a persona docker does not allow
        "check: h 0",
        // The 32-bit ABI is no way around the filter: it is refused
        // outright (docker's profile admits it, with its own allowlist).
        "check: i 159",
    ];
    for tier in TIERS {
        let env = Env::new(tier);
        let context = attack_context(PROBES);
        let run = env.strata(&[
            "build",
            "--progress",
            "plain",
            "--allow",
            "security.insecure",
            "-t",
            "probes",
            context.path().to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        let mut expected = profiled.to_vec();
        // Unconfined, each call reaches the kernel (which refuses those
        // clone arguments).
        expected.extend([
            "check: insecure a 22",
            "check: insecure b 22",
            "check: insecure c 22",
            "check: insecure i 0",
        ]);
        assert_eq!(checks(&run.stderr), expected, "{tier:?}: {}", run.stderr);
        // `strata run` has the same filter.
        let out = env.ok(&[
            "run",
            "probes",
            "sh",
            "-c",
            "for probe in a b c d e f g h i; do syscalls $probe; echo \"check: $probe $?\"; done",
        ]);
        assert_eq!(checks(&out), profiled, "{tier:?}");
    }
}

/// `unshare-arm64`, a static aarch64 program of 360 bytes: it calls
/// `unshare(CLONE_NEWUSER)` and exits with the errno (0 on success).
/// Assembled (`aarch64-linux-gnu-as`, `-ld -static -nostdlib -s
/// --build-id=none`) from:
///
/// ```text
/// _start: mov x0, #0x10000000 ; mov x8, #97 ; svc #0   // unshare(CLONE_NEWUSER)
///         neg x0, x0 ; mov x8, #93 ; svc #0            // exit(-ret)
/// ```
const UNSHARE_ARM64: &[u8] = &[
    0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0xb7, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00, 0x01, 0x00, 0x40, 0x00, 0x03, 0x00, 0x02, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa2, 0xd2, 0x28, 0x0c, 0x80, 0xd2,
    0x01, 0x00, 0x00, 0xd4, 0xe0, 0x03, 0x00, 0xcb, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
    0x00, 0x2e, 0x73, 0x68, 0x73, 0x74, 0x72, 0x74, 0x61, 0x62, 0x00, 0x2e, 0x74, 0x65, 0x78, 0x74,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// An arm64 program runs inside the x86_64 qemu-user, whose system calls
/// are the host's: the native profile applies to them. (qemu has threads,
/// so unconfined the kernel answers EINVAL; the profile answers EPERM
/// first.)
#[test]
fn an_arm64_program_under_qemu_user_gets_the_profile_too() {
    let qemu = require("qemu-aarch64-static");
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[(
            "Dockerfile",
            "FROM base\nCOPY qemu-aarch64-static unshare-arm64 /usr/local/bin/\n\
             RUN qemu-aarch64-static /usr/local/bin/unshare-arm64; echo \"check: profiled $?\"\n\
             RUN --security=insecure qemu-aarch64-static /usr/local/bin/unshare-arm64; \
             echo \"check: insecure $?\"\n"
                .to_owned(),
        )]);
        std::fs::copy(&qemu, context.path().join("qemu-aarch64-static")).unwrap();
        std::fs::write(context.path().join("unshare-arm64"), UNSHARE_ARM64).unwrap();
        for name in ["qemu-aarch64-static", "unshare-arm64"] {
            chmod(&context.path().join(name), 0o755);
        }
        let run = env.strata(&[
            "build",
            "--progress",
            "plain",
            "--allow",
            "security.insecure",
            context.path().to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        assert_eq!(
            checks(&run.stderr),
            ["check: profiled 1", "check: insecure 22"],
            "{tier:?}: {}",
            run.stderr
        );
    }
}

/// Runs a program under a seccomp filter of its own that makes every
/// `seccomp()` fail with EINVAL, as on a kernel built without seccomp
/// filters (x86_64 numbers; no_new_privs, as an unprivileged caller needs).
const WITHOUT_SECCOMP: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
# ld nr; jeq SYS_seccomp (317) ? ret ERRNO(EINVAL) : ret ALLOW
program = struct.pack("HBBI" * 4, 0x20, 0, 0, 0, 0x15, 0, 1, 317, 0x06, 0, 0, 0x50016, 0x06, 0, 0, 0x7FFF0000)
buffer = ctypes.create_string_buffer(program, len(program))
class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.syscall(317, 1, 0, ctypes.byref(Program(4, ctypes.addressof(buffer)))) == 0
os.execv(sys.argv[1], sys.argv[1:])
"#;

/// Where seccomp filters cannot be had, a step does not run unconfined: it
/// fails, saying why. (Not for strata-sub: no_new_privs stops newuidmap.)
#[cfg(target_arch = "x86_64")]
#[test]
fn without_seccomp_filters_a_step_fails_clearly_instead_of_running_unconfined() {
    let expected = "failed to set up the sandbox: install docker's default seccomp profile: \
                    Invalid argument (os error 22): this kernel does not support seccomp filters \
                    (CONFIG_SECCOMP_FILTER); strata will not run a step without them";
    for tier in [Tier::Root, Tier::Single] {
        let env = Env::new(tier);
        let context = readable_context(&[("Dockerfile", "FROM base\nRUN touch /ran\n".to_owned())]);
        let under = |args: &[&str]| {
            let inner = env.command(args);
            let mut command = Command::new(require("python3"));
            command
                .arg("-c")
                .arg(WITHOUT_SECCOMP)
                .arg(inner.get_program())
                .args(inner.get_args())
                .current_dir(context.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            wait(command.spawn().unwrap(), Duration::from_secs(60))
        };
        let run = under(&["run", "base", "touch", "/ran"]);
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| !line.starts_with("warning: only one id is mapped"))
            .collect();
        assert_eq!(
            (run.code, errors),
            (125, vec![format!("error: {expected}").as_str()]),
            "{tier:?}"
        );
        let build = under(&["build", "-q", context.path().to_str().unwrap()]);
        assert_eq!(build.code, 1, "{tier:?}: {}", build.stderr);
        assert!(
            build
                .stderr
                .contains(&format!("error: failed to run the step: {expected}\n")),
            "{tier:?}: {}",
            build.stderr
        );
    }
}

/// CVE-2019-5736's way out: the sandbox's pid 1 is strata's own binary,
/// and a step that could open `/proc/1/exe` could rewrite strata on the
/// host (once it stopped running), and its descriptors are the host's.
/// pid 1 is not dumpable, so its exe, fds and memory are out of the
/// step's reach even with every capability of the user namespace; and the
/// helper closed what strata inherited before pid 1 was born.
const PID1: &str = r#"FROM base
RUN head -c 1 /proc/1/exe >/dev/null 2>&1 && echo 'check: exe readable' || echo 'check: exe closed'; \
    ls -l /proc/1/fd/ 2>/dev/null | grep -q -- '->' && echo 'check: fds followed' || echo 'check: fds closed'; \
    readlink /proc/1/cwd >/dev/null 2>&1 && echo 'check: cwd readable' || echo 'check: cwd closed'; \
    head -c 1 /proc/1/mem >/dev/null 2>&1 && echo 'check: mem readable' || echo 'check: mem closed'
RUN --security=insecure \
    head -c 1 /proc/1/exe >/dev/null 2>&1 && echo 'check: insecure: exe readable' || echo 'check: insecure: exe closed'; \
    ls -l /proc/1/fd/ 2>/dev/null | grep -q -- '->' && echo 'check: insecure: fds followed' || echo 'check: insecure: fds closed'; \
    ls /proc/1/fd/9/ >/dev/null 2>&1 && echo 'check: insecure: inherited fd 9 open' || echo 'check: insecure: no fd 9'
"#;

#[test]
fn the_sandboxs_pid_1_is_out_of_the_steps_reach() {
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[("Dockerfile", PID1.to_owned())]);
        // strata starts with a host directory open on fd 9, as a CI
        // runner's or make's descriptors are.
        let build = env.command(&[
            "build",
            "--progress",
            "plain",
            "--allow",
            "security.insecure",
            context.path().to_str().unwrap(),
        ]);
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("exec 9</tmp; exec {}", command_line(&build)))
            .current_dir(context.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        assert_eq!(
            checks(&run.stderr),
            [
                "check: exe closed",
                "check: fds closed",
                "check: cwd closed",
                "check: mem closed",
                // Every capability of the user namespace does not reach a
                // process of the host's: strata's pid 1, with the
                // directory strata inherited on fd 9.
                "check: insecure: exe closed",
                "check: insecure: fds closed",
                "check: insecure: no fd 9",
            ],
            "{tier:?}: {}",
            run.stderr
        );
    }
}
