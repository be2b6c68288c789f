//! docker's default seccomp profile, as BuildKit applies it to `RUN` (and
//! docker to `docker run`): every system call not listed fails with EPERM.
//!
//! The table below follows moby's `profiles/seccomp/default.json` entry by
//! entry (written out here as a Rust table, not loaded from it):
//! - an allowlist of ordinary calls;
//! - `socket` for every family but AF_ALG (38) and AF_VSOCK (40);
//! - `personality` only for the personas docker lets through;
//! - calls allowed only with a capability the command keeps (docker's
//!   default set leaves just `chroot`, by CAP_SYS_CHROOT);
//! - without CAP_SYS_ADMIN, `clone` without any namespace flag and
//!   `clone3` failing with ENOSYS (its flags are in memory a filter cannot
//!   read; glibc falls back to `clone` on ENOSYS, never on EPERM);
//! - `ptrace` and `process_vm_*` from kernel 4.8 on, where a traced
//!   process can no longer slip past the filter.
//!
//! The BPF is built by `seccompiler` (rust-vmm's, kept by the firecracker
//! team): pure Rust, so building strata and running its CI need no C
//! library, unlike the `libseccomp` bindings. It builds one program per
//! architecture and per match action, so the profile is two programs:
//! the allowlist (EPERM otherwise), then `clone3` → ENOSYS, which wins over
//! the allowlist's ALLOW (seccomp runs every installed program and keeps
//! the strictest answer). seccompiler tests the calls one after another;
//! the allowlist goes in front of its program as a binary search of our
//! own (`dispatching`), which leaves the argument tests to seccompiler and
//! is checked against its program on every call number. That cut a step's
//! cost from 1.6 ms (0.7 ms to install 1,600 instructions, and a linear
//! walk on every system call) to what `bench/ab.sh` shows.
//!
//! The filter is for the native architecture: x86_64 or aarch64. A
//! program made for another (arm64 under qemu-user-static on an x86_64
//! host) runs inside the x86_64 qemu, whose system calls are x86_64 ones,
//! so the same profile applies. Unlike docker's, the filter does not admit
//! the 32-bit compat ABIs (i386 and x32 on x86_64, arm on aarch64): a
//! 32-bit system call kills the process (SIGSYS), and an x32 one fails
//! with EPERM.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use crate::sys;

/// What can go wrong making or installing the filter.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SeccompError {
    /// The profile has no table for this architecture.
    #[error(
        "build docker's default seccomp profile: no system call table for {0} (strata knows x86_64 and aarch64)"
    )]
    Architecture(&'static str),
    /// seccompiler refused the rules.
    #[error("build docker's default seccomp profile: {0}")]
    Compile(#[from] seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("install docker's default seccomp profile: {0}")]
    Install(String),
}

/// Capability numbers (linux/capability.h) the profile looks at.
mod cap {
    pub(super) const DAC_READ_SEARCH: u32 = 2;
    pub(super) const SYS_MODULE: u32 = 16;
    pub(super) const SYS_RAWIO: u32 = 17;
    pub(super) const SYS_CHROOT: u32 = 18;
    pub(super) const SYS_PTRACE: u32 = 19;
    pub(super) const SYS_PACCT: u32 = 20;
    pub(super) const SYS_ADMIN: u32 = 21;
    pub(super) const SYS_BOOT: u32 = 22;
    pub(super) const SYS_NICE: u32 = 23;
    pub(super) const SYS_TIME: u32 = 25;
    pub(super) const SYS_TTY_CONFIG: u32 = 26;
    pub(super) const SYSLOG: u32 = 34;
    pub(super) const PERFMON: u32 = 38;
    pub(super) const BPF: u32 = 39;
}

/// Allowed on every architecture strata runs on (the names of docker's
/// list that exist there; the 32-bit-only ones, `chown32` and the
/// `*_time64` family, do not).
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_adjtimex,
    libc::SYS_bind,
    libc::SYS_brk,
    libc::SYS_capget,
    libc::SYS_capset,
    libc::SYS_chdir,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_getres,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_connect,
    libc::SYS_copy_file_range,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_eventfd2,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_fadvise64,
    libc::SYS_fallocate,
    libc::SYS_fanotify_mark,
    libc::SYS_fchdir,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_fcntl,
    libc::SYS_fdatasync,
    libc::SYS_fgetxattr,
    libc::SYS_flistxattr,
    libc::SYS_flock,
    libc::SYS_fremovexattr,
    libc::SYS_fsetxattr,
    libc::SYS_fstat,
    libc::SYS_fstatfs,
    libc::SYS_fsync,
    libc::SYS_ftruncate,
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_getcpu,
    libc::SYS_getcwd,
    libc::SYS_getdents64,
    libc::SYS_getegid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getgroups,
    libc::SYS_getitimer,
    libc::SYS_getpeername,
    libc::SYS_getpgid,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getpriority,
    libc::SYS_getrandom,
    libc::SYS_getresgid,
    libc::SYS_getresuid,
    libc::SYS_get_robust_list,
    libc::SYS_getrusage,
    libc::SYS_getsid,
    libc::SYS_getsockname,
    libc::SYS_getsockopt,
    libc::SYS_gettid,
    libc::SYS_gettimeofday,
    libc::SYS_getuid,
    libc::SYS_getxattr,
    libc::SYS_inotify_add_watch,
    libc::SYS_inotify_init1,
    libc::SYS_inotify_rm_watch,
    libc::SYS_io_cancel,
    libc::SYS_ioctl,
    libc::SYS_io_destroy,
    libc::SYS_io_getevents,
    libc::SYS_ioprio_get,
    libc::SYS_ioprio_set,
    libc::SYS_io_setup,
    libc::SYS_io_submit,
    libc::SYS_kill,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_restrict_self,
    libc::SYS_lgetxattr,
    libc::SYS_linkat,
    libc::SYS_listen,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_lremovexattr,
    libc::SYS_lseek,
    libc::SYS_lsetxattr,
    libc::SYS_madvise,
    libc::SYS_membarrier,
    libc::SYS_memfd_create,
    libc::SYS_memfd_secret,
    libc::SYS_mincore,
    libc::SYS_mkdirat,
    libc::SYS_mknodat,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_mlockall,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_mq_getsetattr,
    libc::SYS_mq_notify,
    libc::SYS_mq_open,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_unlink,
    libc::SYS_mremap,
    libc::SYS_msgctl,
    libc::SYS_msgget,
    libc::SYS_msgrcv,
    libc::SYS_msgsnd,
    libc::SYS_msync,
    libc::SYS_munlock,
    libc::SYS_munlockall,
    libc::SYS_munmap,
    libc::SYS_name_to_handle_at,
    libc::SYS_nanosleep,
    libc::SYS_newfstatat,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_pipe2,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    libc::SYS_ppoll,
    libc::SYS_prctl,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_preadv2,
    libc::SYS_prlimit64,
    libc::SYS_process_mrelease,
    libc::SYS_pselect6,
    libc::SYS_pwrite64,
    libc::SYS_pwritev,
    libc::SYS_pwritev2,
    libc::SYS_read,
    libc::SYS_readahead,
    libc::SYS_readlinkat,
    libc::SYS_readv,
    libc::SYS_recvfrom,
    libc::SYS_recvmmsg,
    libc::SYS_recvmsg,
    libc::SYS_remap_file_pages,
    libc::SYS_removexattr,
    libc::SYS_renameat2,
    libc::SYS_restart_syscall,
    libc::SYS_rseq,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getattr,
    libc::SYS_sched_getparam,
    libc::SYS_sched_get_priority_max,
    libc::SYS_sched_get_priority_min,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_rr_get_interval,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setattr,
    libc::SYS_sched_setparam,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_yield,
    libc::SYS_seccomp,
    libc::SYS_semctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_sendfile,
    libc::SYS_sendmmsg,
    libc::SYS_sendmsg,
    libc::SYS_sendto,
    libc::SYS_setfsgid,
    libc::SYS_setfsuid,
    libc::SYS_setgid,
    libc::SYS_setgroups,
    libc::SYS_setitimer,
    libc::SYS_setpgid,
    libc::SYS_setpriority,
    libc::SYS_setregid,
    libc::SYS_setresgid,
    libc::SYS_setresuid,
    libc::SYS_setreuid,
    libc::SYS_set_robust_list,
    libc::SYS_setsid,
    libc::SYS_setsockopt,
    libc::SYS_set_tid_address,
    libc::SYS_setuid,
    libc::SYS_setxattr,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_shmdt,
    libc::SYS_shmget,
    libc::SYS_shutdown,
    libc::SYS_sigaltstack,
    libc::SYS_signalfd4,
    libc::SYS_socketpair,
    libc::SYS_splice,
    libc::SYS_statfs,
    libc::SYS_statx,
    libc::SYS_symlinkat,
    libc::SYS_sync,
    libc::SYS_syncfs,
    libc::SYS_sysinfo,
    libc::SYS_tee,
    libc::SYS_tgkill,
    libc::SYS_timer_create,
    libc::SYS_timer_delete,
    libc::SYS_timer_getoverrun,
    libc::SYS_timer_gettime,
    libc::SYS_timer_settime,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_gettime,
    libc::SYS_timerfd_settime,
    libc::SYS_times,
    libc::SYS_tkill,
    libc::SYS_truncate,
    libc::SYS_umask,
    libc::SYS_uname,
    libc::SYS_unlinkat,
    libc::SYS_utimensat,
    libc::SYS_vmsplice,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_write,
    libc::SYS_writev,
    // Newer than the libc crate's tables; numbered alike on x86_64 and
    // aarch64 (the shared table every architecture follows from 424 on).
    451, // cachestat
    452, // fchmodat2
    453, // map_shadow_stack
    454, // futex_wake
    455, // futex_wait
    456, // futex_requeue
    457, // statmount
    458, // listmount
    462, // mseal
    463, // setxattrat
    464, // getxattrat
    465, // listxattrat
    466, // removexattrat
];

/// Allowed on x86_64 only: the old calls aarch64 never had, and
/// `arch_prctl` and `modify_ldt` (docker's arch-specific entries).
#[cfg(target_arch = "x86_64")]
const ALLOWED_HERE: &[libc::c_long] = &[
    libc::SYS_access,
    libc::SYS_alarm,
    libc::SYS_arch_prctl,
    libc::SYS_chmod,
    libc::SYS_chown,
    libc::SYS_creat,
    libc::SYS_dup2,
    libc::SYS_epoll_create,
    libc::SYS_epoll_ctl_old,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_wait_old,
    libc::SYS_eventfd,
    libc::SYS_fork,
    libc::SYS_futimesat,
    libc::SYS_get_thread_area,
    libc::SYS_getdents,
    libc::SYS_getpgrp,
    libc::SYS_getrlimit,
    libc::SYS_inotify_init,
    libc::SYS_lchown,
    libc::SYS_link,
    libc::SYS_lstat,
    libc::SYS_mkdir,
    libc::SYS_mknod,
    libc::SYS_modify_ldt,
    libc::SYS_open,
    libc::SYS_pause,
    libc::SYS_pipe,
    libc::SYS_poll,
    libc::SYS_readlink,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_rmdir,
    libc::SYS_select,
    libc::SYS_set_thread_area,
    libc::SYS_setrlimit,
    libc::SYS_signalfd,
    libc::SYS_stat,
    libc::SYS_symlink,
    libc::SYS_sync_file_range,
    libc::SYS_time,
    libc::SYS_unlink,
    libc::SYS_utime,
    libc::SYS_utimes,
    libc::SYS_vfork,
    333, // io_pgetevents
    335, // uretprobe
];

/// Allowed on aarch64 only (calls the libc crate does not name there).
#[cfg(target_arch = "aarch64")]
const ALLOWED_HERE: &[libc::c_long] = &[
    38,  // renameat
    84,  // sync_file_range
    163, // getrlimit
    164, // setrlimit
    292, // io_pgetevents
];

/// Allowed only while the command keeps a capability (docker's
/// `includes.caps` entries).
const WITH_CAPABILITY: &[(u32, &[libc::c_long])] = &[
    (cap::DAC_READ_SEARCH, &[libc::SYS_open_by_handle_at]),
    (
        cap::SYS_ADMIN,
        &[
            libc::SYS_bpf,
            libc::SYS_fanotify_init,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fsopen,
            libc::SYS_fspick,
            libc::SYS_lookup_dcookie,
            libc::SYS_mount,
            libc::SYS_mount_setattr,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_perf_event_open,
            libc::SYS_quotactl,
            libc::SYS_quotactl_fd,
            libc::SYS_setdomainname,
            libc::SYS_sethostname,
            libc::SYS_setns,
            libc::SYS_syslog,
            libc::SYS_umount2,
            libc::SYS_unshare,
            459, // lsm_get_self_attr
            460, // lsm_set_self_attr
            461, // lsm_list_modules
        ],
    ),
    (cap::SYS_BOOT, &[libc::SYS_reboot]),
    (cap::SYS_CHROOT, &[libc::SYS_chroot]),
    (
        cap::SYS_MODULE,
        &[
            libc::SYS_delete_module,
            libc::SYS_init_module,
            libc::SYS_finit_module,
        ],
    ),
    (cap::SYS_PACCT, &[libc::SYS_acct]),
    (
        cap::SYS_PTRACE,
        &[
            libc::SYS_kcmp,
            libc::SYS_pidfd_getfd,
            libc::SYS_process_madvise,
        ],
    ),
    #[cfg(target_arch = "x86_64")]
    (cap::SYS_RAWIO, &[libc::SYS_iopl, libc::SYS_ioperm]),
    (
        cap::SYS_TIME,
        &[libc::SYS_settimeofday, libc::SYS_clock_settime],
    ),
    (cap::SYS_TTY_CONFIG, &[libc::SYS_vhangup]),
    (
        cap::SYS_NICE,
        &[
            libc::SYS_get_mempolicy,
            libc::SYS_mbind,
            libc::SYS_set_mempolicy,
            libc::SYS_set_mempolicy_home_node,
        ],
    ),
    (cap::SYSLOG, &[libc::SYS_syslog]),
    (cap::BPF, &[libc::SYS_bpf]),
    (cap::PERFMON, &[libc::SYS_perf_event_open]),
];

/// Allowed from kernel 4.8 on (before it, ptrace could skip the filter),
/// or with CAP_SYS_PTRACE.
const TRACING: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
];

/// The namespace flags `clone` may not carry without CAP_SYS_ADMIN:
/// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
/// (0x7E020000, docker's mask).
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

/// The personas `personality` may set: PER_LINUX, PER_LINUX32,
/// UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query only).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// AF_ALG and AF_VSOCK: the socket families docker refuses (38 and 40).
const REFUSED_FAMILIES: [u64; 2] = [38, 40];

fn condition(index: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule, SeccompError> {
    // Dword: the kernel reads these arguments (an int, a flags word whose
    // namespace bits are low) as 32 bits.
    Ok(SeccompRule::new(vec![SeccompCondition::new(
        index,
        SeccompCmpArgLen::Dword,
        op,
        value,
    )?])?)
}

fn architecture() -> Result<TargetArch, SeccompError> {
    let arch = std::env::consts::ARCH;
    TargetArch::try_from(arch).map_err(|_| SeccompError::Architecture(arch))
}

/// Whether the running kernel is `major.minor` or newer.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(uname) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uname.release().to_string_lossy().into_owned();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

/// The profile's rules for a command keeping `capabilities`: syscall →
/// conditions (none: always allowed).
fn rules(capabilities: &[u32]) -> Result<BTreeMap<i64, Vec<SeccompRule>>, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut allow = |call: libc::c_long| {
        rules.insert(call, Vec::new());
    };
    ALLOWED
        .iter()
        .chain(ALLOWED_HERE)
        .copied()
        .for_each(&mut allow);
    for (capability, calls) in WITH_CAPABILITY {
        if capabilities.contains(capability) {
            calls.iter().copied().for_each(&mut allow);
        }
    }
    if capabilities.contains(&cap::SYS_PTRACE) || kernel_at_least(4, 8) {
        TRACING.iter().copied().for_each(&mut allow);
    }
    let admin = capabilities.contains(&cap::SYS_ADMIN);
    if admin {
        allow(libc::SYS_clone);
    }
    // clone3 passes here; the second program decides.
    allow(libc::SYS_clone3);
    if !admin {
        rules.insert(
            libc::SYS_clone,
            vec![condition(0, SeccompCmpOp::MaskedEq(CLONE_NAMESPACES), 0)?],
        );
    }
    rules.insert(
        libc::SYS_personality,
        PERSONAS
            .iter()
            .map(|&persona| condition(0, SeccompCmpOp::Eq, persona))
            .collect::<Result<_, _>>()?,
    );
    rules.insert(
        libc::SYS_socket,
        vec![
            condition(0, SeccompCmpOp::Lt, REFUSED_FAMILIES[0])?,
            condition(0, SeccompCmpOp::Eq, REFUSED_FAMILIES[0] + 1)?,
            condition(0, SeccompCmpOp::Gt, REFUSED_FAMILIES[1])?,
        ],
    );
    Ok(rules)
}

// The classic BPF this module writes itself (linux/filter.h, seccomp.h).
const LOAD_WORD: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JUMP: u16 = 0x05; // BPF_JMP | BPF_JA
const JUMP_IF_EQUAL: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JUMP_IF_AT_LEAST: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RETURN: u16 = 0x06; // BPF_RET | BPF_K
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

fn statement(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The allowlist as one program that finds a call's number by binary
/// search: about nine comparisons for any call, where seccompiler's own
/// program tests the calls one after another (1,600 instructions, which
/// made each step's install cost 0.7 ms in the kernel and every system call
/// a linear walk). Calls allowed whatever their arguments answer at once;
/// the few with conditions (clone, personality, socket) jump to
/// seccompiler's program for those calls alone, so every argument test is
/// still seccompiler's. The unit test runs both forms on every call
/// number and checks they agree.
fn dispatching(
    arch: TargetArch,
    rules: &BTreeMap<i64, Vec<SeccompRule>>,
) -> Result<BpfProgram, SeccompError> {
    let conditional: BTreeMap<i64, Vec<SeccompRule>> = rules
        .iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|(call, rules)| (*call, rules.clone()))
        .collect();
    let slow = BpfProgram::try_from(SeccompFilter::new(
        conditional.clone(),
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?)?;
    let calls: Vec<(u32, bool)> = rules
        .iter()
        .filter_map(|(call, rules)| Some((u32::try_from(*call).ok()?, !rules.is_empty())))
        .collect();
    // The architecture first, as seccompiler checks it: another one is
    // killed.
    let audit: u32 = match arch {
        TargetArch::x86_64 => 0xC000_003E,
        TargetArch::aarch64 => 0xC000_00B7,
        _ => return Err(SeccompError::Architecture(std::env::consts::ARCH)),
    };
    let mut program = vec![
        statement(LOAD_WORD, SECCOMP_DATA_ARCH),
        sock_filter {
            code: JUMP_IF_EQUAL,
            jt: 1,
            jf: 0,
            k: audit,
        },
        statement(RETURN, libc::SECCOMP_RET_KILL_PROCESS),
        statement(LOAD_WORD, SECCOMP_DATA_NR),
    ];
    // Jumps to the slow part, patched once its place is known.
    let mut to_slow = Vec::new();
    search(&calls, &mut program, &mut to_slow);
    let start = program.len();
    for at in to_slow {
        program[at].k = (start - at - 1) as u32;
    }
    program.extend(slow);
    if program.len() > 4096 {
        return Err(SeccompError::Install(format!(
            "the profile is {} instructions, over the kernel's 4096",
            program.len()
        )));
    }
    Ok(program)
}

/// Calls compared one by one at the end of a search (a jump's 8-bit
/// offsets reach far enough for them).
const LEAF: usize = 8;

/// Emit the search over `calls` (sorted numbers, whether each has
/// conditions). Conditional jumps only ever skip one instruction; longer
/// ways go through `JA`, whose offset has 32 bits.
fn search(calls: &[(u32, bool)], program: &mut BpfProgram, to_slow: &mut Vec<usize>) {
    if calls.len() <= LEAF {
        // [JEQ call]… [RET EPERM] [RET ALLOW] [JA slow]…: each comparison
        // jumps to the shared ALLOW, or to its own way to the slow part.
        let count = calls.len();
        let mut slow = 0;
        for (index, &(_, conditional)) in calls.iter().enumerate() {
            let past_errno = count - index;
            let jt = if conditional {
                slow += 1;
                past_errno + slow
            } else {
                past_errno
            };
            program.push(sock_filter {
                code: JUMP_IF_EQUAL,
                jt: jt as u8,
                jf: 0,
                k: calls[index].0,
            });
        }
        program.push(statement(
            RETURN,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ));
        program.push(statement(RETURN, libc::SECCOMP_RET_ALLOW));
        for _ in 0..slow {
            to_slow.push(program.len());
            program.push(statement(JUMP, 0));
        }
        return;
    }
    let middle = calls.len() / 2;
    // At least the middle call: the upper half, past the lower one.
    program.push(sock_filter {
        code: JUMP_IF_AT_LEAST,
        jt: 0,
        jf: 1,
        k: calls[middle].0,
    });
    let jump = program.len();
    program.push(statement(JUMP, 0));
    search(&calls[..middle], program, to_slow);
    program[jump].k = (program.len() - jump - 1) as u32;
    search(&calls[middle..], program, to_slow);
}

/// docker's default profile for a command keeping `capabilities`, as the
/// BPF programs to install in order.
pub(crate) fn default_profile(capabilities: &[u32]) -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = architecture()?;
    let mut programs = vec![dispatching(arch, &rules(capabilities)?)?];
    if !capabilities.contains(&cap::SYS_ADMIN) {
        let clone3 = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )?;
        programs.push(BpfProgram::try_from(clone3)?);
    }
    Ok(programs)
}

/// Install `programs` on this process, for good: it and everything it
/// executes. Without `no_new_privs`, as docker and BuildKit (setuid
/// programs such as `sudo` keep working in a step), which the kernel
/// allows because the caller holds CAP_SYS_ADMIN in the sandbox's user
/// namespace: call this before giving up root there.
pub(crate) fn install(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    for program in programs {
        let instructions: Vec<libc::sock_filter> = program
            .iter()
            .map(|instruction| libc::sock_filter {
                code: instruction.code,
                jt: instruction.jt,
                jf: instruction.jf,
                k: instruction.k,
            })
            .collect();
        sys::install_seccomp_filter(&instructions).map_err(|error| {
            SeccompError::Install(match error.raw_os_error() {
                Some(libc::EINVAL | libc::ENOSYS) => format!(
                    "{error}: this kernel does not support seccomp filters \
                     (CONFIG_SECCOMP_FILTER); strata will not run a step without them"
                ),
                Some(libc::EACCES) => format!(
                    "{error}: installing a filter needs CAP_SYS_ADMIN in the sandbox's user namespace"
                ),
                _ => error.to_string(),
            })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for seccomp programs (the instructions
    /// seccompiler and `dispatching` emit, nothing more).
    fn run(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
        let mut data = Vec::with_capacity(64);
        data.extend(nr.to_le_bytes());
        data.extend(arch.to_le_bytes());
        data.extend(0u64.to_le_bytes());
        for arg in args {
            data.extend(arg.to_le_bytes());
        }
        let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
        loop {
            steps += 1;
            let instruction = &program[pc];
            let k = instruction.k;
            let branch = |taken: bool| {
                1 + usize::from(if taken {
                    instruction.jt
                } else {
                    instruction.jf
                })
            };
            pc += match instruction.code {
                0x20 => {
                    let at = k as usize;
                    a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                    1
                }
                0x54 => {
                    a &= k;
                    1
                }
                0x05 => 1 + k as usize,
                0x15 => branch(a == k),
                0x25 => branch(a > k),
                0x35 => branch(a >= k),
                0x45 => branch(a & k != 0),
                0x06 => return (k, steps),
                code => panic!("instruction {code:#x} at {pc} is not interpreted here"),
            };
        }
    }

    #[test]
    fn the_dispatching_program_answers_as_seccompilers_for_every_call() {
        let arch = architecture().unwrap();
        let native = match arch {
            TargetArch::x86_64 => 0xC000_003E,
            _ => 0xC000_00B7,
        };
        let values: Vec<u64> = [
            0,
            1,
            2,
            7,
            8,
            0x20000,
            0x20008,
            0xffff_ffff,
            0x1000_0000,
            CLONE_NAMESPACES,
            0x0002_0000,
            0x0001_0011,
            37,
            38,
            39,
            40,
            41,
            u64::MAX,
            (1 << 32) | 8,
        ]
        .into_iter()
        .chain(PERSONAS)
        .collect();
        for capabilities in [
            &super::super::helper::DEFAULT_CAPABILITIES[..],
            &[cap::SYS_ADMIN, cap::SYS_PTRACE],
        ] {
            let rules = rules(capabilities).unwrap();
            let reference = BpfProgram::try_from(
                SeccompFilter::new(
                    rules.clone(),
                    SeccompAction::Errno(libc::EPERM as u32),
                    SeccompAction::Allow,
                    arch,
                )
                .unwrap(),
            )
            .unwrap();
            let mine = dispatching(arch, &rules).unwrap();
            assert!(
                mine.len() < reference.len() / 2,
                "{} instructions against {}",
                mine.len(),
                reference.len()
            );
            let numbers = (0..1100).chain((0x4000_0000..0x4000_0000 + 600).step_by(7));
            let mut longest = 0;
            for nr in numbers {
                for arch in [native, 0x4000_0003] {
                    for &value in &values {
                        let args = [value, value >> 1, 0, 0, 0, 0];
                        let (answer, steps) = run(&mine, nr, arch, args);
                        assert_eq!(
                            answer,
                            run(&reference, nr, arch, args).0,
                            "call {nr}, arch {arch:#x}, argument {value:#x}"
                        );
                        longest = longest.max(steps);
                    }
                }
            }
            // The arch check, nine halvings, a leaf, and the slow part's
            // own tests for the few calls with conditions.
            assert!(longest < 80, "{longest} instructions on the longest path");
        }
    }

    #[test]
    fn the_profile_gates_calls_on_the_capabilities_kept() {
        let default = rules(&[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31]).unwrap();
        // Docker's default set keeps CAP_SYS_CHROOT only of those gated.
        assert!(default[&libc::SYS_chroot].is_empty());
        for call in [
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_reboot,
            libc::SYS_init_module,
            libc::SYS_kcmp,
            libc::SYS_swapon,
            libc::SYS_kexec_load,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_userfaultfd,
        ] {
            assert!(!default.contains_key(&call), "{call} must be refused");
        }
        assert_eq!(default[&libc::SYS_clone].len(), 1, "clone is conditional");
        assert_eq!(default[&libc::SYS_personality].len(), 5);
        assert_eq!(default[&libc::SYS_socket].len(), 3);
        assert_eq!(
            default_profile(&[0, 18]).unwrap().len(),
            2,
            "clone3's program"
        );
        let admin = rules(&[cap::SYS_ADMIN]).unwrap();
        assert!(admin[&libc::SYS_mount].is_empty());
        assert!(admin[&libc::SYS_clone].is_empty());
        assert!(!admin.contains_key(&libc::SYS_chroot));
        assert_eq!(default_profile(&[cap::SYS_ADMIN]).unwrap().len(), 1);
    }
}
