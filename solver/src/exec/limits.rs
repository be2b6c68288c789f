//! The kernel's limits on what a command is executed with, and what to say
//! when execve refuses with E2BIG: which limit, and how big the value was.
//!
//! strata sets none of its own: a step's arguments and environment reach
//! the sandbox's command whatever their size (the spec travels on a pipe),
//! and only execve can refuse them. It does for one of two reasons
//! (`fs/exec.c`):
//! - one string (`KEY=value` or an argument, with its NUL) is over
//!   MAX_ARG_STRLEN, 32 pages;
//! - all strings (the program's path, the arguments, the environment, each
//!   with its NUL) and a pointer to each are over a quarter of the stack's
//!   size limit (RLIMIT_STACK), capped at 6 MiB (three quarters of the
//!   kernel's default stack limit) and never under ARG_MAX (128 KiB).

/// The kernel's floor for all strings together (`ARG_MAX`).
const ARG_MAX: u64 = 128 << 10;

/// The kernel's cap for all strings together: `_STK_LIM / 4 * 3`.
const STRINGS_CAP: u64 = 6 << 20;

/// The limits in force in this process, which a command it executes gets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The page size.
    page: u64,
    /// The soft stack size limit; `None` when unlimited.
    stack: Option<u64>,
}

impl Limits {
    /// The limits of this process.
    pub(super) fn current() -> Limits {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|page| u64::try_from(page).ok())
            .unwrap_or(4096);
        let stack = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)
            .ok()
            .map(|(soft, _)| soft)
            .filter(|&soft| soft != nix::sys::resource::RLIM_INFINITY);
        Limits { page, stack }
    }

    /// MAX_ARG_STRLEN: the most one string may take, its NUL included.
    fn string_max(self) -> u64 {
        32 * self.page
    }

    /// The most all strings and their pointers may take, and why.
    fn total_max(self) -> (u64, String) {
        let quarter = self.stack.map(|stack| stack / 4);
        match quarter {
            Some(quarter) if quarter < ARG_MAX => (
                ARG_MAX,
                format!(
                    "ARG_MAX, the floor when a quarter of the stack size limit \
                     (RLIMIT_STACK, {} bytes) is less",
                    self.stack.unwrap_or_default()
                ),
            ),
            Some(quarter) if quarter < STRINGS_CAP => (
                quarter,
                format!(
                    "a quarter of the stack size limit (RLIMIT_STACK, {} bytes; \
                     `ulimit -s` raises it)",
                    self.stack.unwrap_or_default()
                ),
            ),
            _ => (
                STRINGS_CAP,
                "the kernel's cap of 6 MiB, whatever the stack size limit".to_owned(),
            ),
        }
    }
}

/// Why execve of `program` with `args` and `env` said E2BIG, as a message.
pub(super) fn explain_too_big(
    limits: Limits,
    program: &[u8],
    args: &[String],
    env: &[String],
) -> String {
    let shown = String::from_utf8_lossy(program);
    let string_max = limits.string_max();
    let taken = |text: &str| text.len() as u64 + 1;
    if let Some(entry) = env.iter().find(|entry| taken(entry) > string_max) {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        return format!(
            "exec {shown}: argument list too long: the environment variable {name} is {} bytes \
             long; the kernel takes at most {string_max} bytes for one string of a command's \
             environment or arguments, its NUL included (MAX_ARG_STRLEN), and {name}=... \
             takes {}",
            value.len(),
            taken(entry),
        );
    }
    if let Some((index, arg)) = args
        .iter()
        .enumerate()
        .find(|(_, arg)| taken(arg) > string_max)
    {
        return format!(
            "exec {shown}: argument list too long: argument {index} is {} bytes long; the \
             kernel takes at most {string_max} bytes for one string of a command's \
             environment or arguments, its NUL included (MAX_ARG_STRLEN), and it takes {}",
            arg.len(),
            taken(arg),
        );
    }
    let pointers = (args.len().max(1) + env.len()) as u64 * std::mem::size_of::<usize>() as u64;
    let strings = program.len() as u64
        + 1
        + args.iter().map(|arg| taken(arg)).sum::<u64>()
        + env.iter().map(|entry| taken(entry)).sum::<u64>();
    let (total_max, why) = limits.total_max();
    if strings + pointers > total_max {
        let environment = env.iter().map(|entry| taken(entry)).sum::<u64>();
        return format!(
            "exec {shown}: argument list too long: the arguments and environment take {} \
             bytes ({} environment variables: {environment}), and the kernel takes at \
             most {total_max} for them, pointers included: {why}",
            strings + pointers,
            env.len(),
        );
    }
    format!(
        "exec {shown}: argument list too long (the arguments and environment take {} bytes, \
         within the kernel's limits of {string_max} for one string and {total_max} for all: \
         an interpreter's `#!` line may add to them)",
        strings + pointers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: Limits = Limits {
        page: 4096,
        stack: Some(8 << 20),
    };

    fn explain(limits: Limits, args: &[&str], env: &[String]) -> String {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        explain_too_big(limits, b"/bin/sh", &args, env)
    }

    #[test]
    fn one_variable_over_max_arg_strlen_is_named_with_its_size() {
        let env = vec![
            "PATH=/bin".to_owned(),
            format!("BIG={}", "x".repeat(200 << 10)),
        ];
        assert_eq!(
            explain(PAGE, &["sh", "-c", "true"], &env),
            "exec /bin/sh: argument list too long: the environment variable BIG is 204800 \
             bytes long; the kernel takes at most 131072 bytes for one string of a command's \
             environment or arguments, its NUL included (MAX_ARG_STRLEN), and BIG=... takes \
             204805"
        );
    }

    #[test]
    fn one_argument_over_max_arg_strlen_is_named_by_position() {
        let long = "y".repeat(131072);
        let message = explain(PAGE, &["sh", "-c", &long], &[]);
        assert!(
            message.contains("argument 2 is 131072 bytes long"),
            "{message}"
        );
    }

    #[test]
    fn the_total_names_the_stack_limit_that_sets_it() {
        // 24 variables of 100 KiB: each under 128 KiB, together over 2 MiB.
        let env: Vec<String> = (0..24)
            .map(|index| format!("V{index}={}", "z".repeat(100 << 10)))
            .collect();
        let message = explain(PAGE, &["sh"], &env);
        assert!(
            message.contains("most 2097152 for them")
                && message.contains("a quarter of the stack size limit (RLIMIT_STACK, 8388608"),
            "{message}"
        );
        let unlimited = Limits {
            stack: None,
            ..PAGE
        };
        let env: Vec<String> = (0..70)
            .map(|index| format!("V{index}={}", "z".repeat(100 << 10)))
            .collect();
        let message = explain(unlimited, &["sh"], &env);
        assert!(
            message.contains("most 6291456 for them") && message.contains("cap of 6 MiB"),
            "{message}"
        );
    }

    #[test]
    fn within_the_limits_says_so() {
        let message = explain(PAGE, &["sh"], &["A=b".to_owned()]);
        assert!(message.contains("within the kernel's limits"), "{message}");
    }
}
