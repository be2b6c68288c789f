//! One instruction at a time, with the stage's state (BuildKit's
//! `dispatch`): the config instructions here, RUN in `run.rs`, COPY and ADD
//! in `copy.rs`.

use super::{Lowerer, State, Step, join_path, shell_prefix};
use crate::ast::KeyValue;
use crate::error::{Error, ErrorKind};
use crate::graph::{ConfigEdit, FileOp, HealthConfig, Op};
use crate::instructions::{Command, HealthcheckTest, Instruction};

impl Lowerer<'_> {
    pub(super) fn dispatch(
        &mut self,
        step: &Step<'_>,
        instruction: &Instruction,
        state: &mut State,
    ) -> Result<(), Error> {
        self.at = step.located.span;
        self.check_instruction(instruction, state);
        match instruction {
            Instruction::From(_) => unreachable!("FROM starts a stage"),
            Instruction::Arg(definitions) => {
                // Its history entry, `ARG a=1 b`, as BuildKit's dispatchArg
                // commits it: each name with the value it took.
                let mut shown = Vec::new();
                for definition in definitions {
                    let name = definition.name.value.clone();
                    let value = if let Some(value) = self.options.build_args.get(&name) {
                        self.used_args.insert(name.clone());
                        Some(value.clone())
                    } else if let Some(default) = &definition.default {
                        Some(self.expand_in(default, state)?)
                    } else {
                        // `ARG NAME` in a stage picks up the global value.
                        self.meta.get(&name).cloned()
                    };
                    shown.push(match &value {
                        Some(value) => format!("{name}={value}"),
                        None => name.clone(),
                    });
                    state.set_arg(name, value);
                }
                self.config(step, state, ConfigEdit::Arg(shown.join(" ")));
            }
            Instruction::Env(pairs) => {
                let pairs = self.expand_pairs(pairs, state, "ENV")?;
                for (key, value) in &pairs {
                    state.set_env(key, value);
                }
                self.config(step, state, ConfigEdit::Env(pairs));
            }
            Instruction::Label(pairs) => {
                let pairs = self.expand_pairs(pairs, state, "LABEL")?;
                self.config(step, state, ConfigEdit::Label(pairs));
            }
            Instruction::Maintainer(word) => {
                self.config(step, state, ConfigEdit::Maintainer(word.value.clone()));
            }
            Instruction::Run(run) => self.run(step, run, state)?,
            Instruction::Cmd(command) | Instruction::Entrypoint(command) => {
                let args = self.command_args(command, state);
                let name = instruction.name();
                let edit = if name == "CMD" {
                    ConfigEdit::Cmd(args)
                } else {
                    ConfigEdit::Entrypoint(args)
                };
                self.config(step, state, edit);
            }
            Instruction::Expose(words) => {
                let mut ports = Vec::new();
                for word in words {
                    // (BuildKit expands EXPOSE without UndefinedVar.)
                    let text = self.expand_quietly_in(word, state)?;
                    for raw in text.split_whitespace() {
                        // `ip:host:port` exposes `port`, with a warning
                        // (ExposeInvalidFormat), as in BuildKit.
                        let (found, port) = crate::lint::expose_checks(raw);
                        for (rule, message) in found {
                            self.warn_once(rule, raw.to_owned(), message, step.located.span);
                        }
                        ports.push(normalize_port(port).ok_or_else(|| {
                            Error::new(ErrorKind::InvalidPort(port.to_owned()), word.span)
                                .with_hint("a port is `N`, `N/tcp`, `N/udp`, `N/sctp` or a range `N-M/proto`")
                        })?);
                    }
                }
                self.config(step, state, ConfigEdit::Expose(ports));
            }
            Instruction::Volume(words) => {
                let mut volumes = Vec::new();
                for word in words {
                    let value = self.expand_in(word, state)?;
                    if value.trim().is_empty() {
                        return Err(Error::new(
                            ErrorKind::MissingArguments {
                                instruction: "VOLUME",
                                what: "non-empty paths",
                            },
                            word.span,
                        ));
                    }
                    volumes.push(value);
                }
                self.config(step, state, ConfigEdit::Volume(volumes));
            }
            Instruction::User(word) => {
                let user = self.expand_in(word, state)?;
                state.user = user.clone();
                self.config(step, state, ConfigEdit::User(user));
            }
            Instruction::Workdir(word) => {
                let value = self.expand_in(word, state)?;
                // Only the first WORKDIR of the build counts: the ones after
                // it are relative to it.
                if !state.lint.workdir_set && !value.starts_with('/') {
                    self.warn_once(
                        "WorkdirRelativePath",
                        String::new(),
                        crate::lint::workdir_relative_path(&value),
                        step.located.span,
                    );
                }
                state.lint.workdir_set = true;
                let path = join_path(&state.workdir, &value);
                state.workdir = path.clone();
                let created_by = format!("WORKDIR {path}");
                let mkdir = Op::File(FileOp::Mkdir {
                    path: path.clone(),
                    user: state.user.clone(),
                });
                let parent = state.fs;
                self.step_vertex(step, state, mkdir, vec![parent], Some(created_by));
                self.config(step, state, ConfigEdit::Workdir(path));
            }
            Instruction::Shell(words) => {
                let shell: Vec<String> = words.iter().map(|word| word.value.clone()).collect();
                state.shell = shell.clone();
                state.lint.shell_set = true;
                self.config(step, state, ConfigEdit::Shell(shell));
            }
            Instruction::StopSignal(word) => {
                let signal = self.expand_in(word, state)?;
                if !is_valid_signal(&signal) {
                    return Err(Error::new(ErrorKind::InvalidSignal(signal), word.span)
                        .with_hint("use a signal name such as `SIGTERM` or `SIGINT`, or a number from 1 to 64"));
                }
                self.config(step, state, ConfigEdit::StopSignal(signal));
            }
            Instruction::Healthcheck(health) => {
                let test = match &health.test {
                    HealthcheckTest::None => vec!["NONE".to_owned()],
                    HealthcheckTest::Command(Command::Shell(word)) => {
                        vec!["CMD-SHELL".to_owned(), word.value.clone()]
                    }
                    HealthcheckTest::Command(Command::Exec(words)) => {
                        std::iter::once("CMD".to_owned())
                            .chain(words.iter().map(|word| word.value.clone()))
                            .collect()
                    }
                };
                let config = HealthConfig {
                    test,
                    interval: health.interval.unwrap_or(0),
                    timeout: health.timeout.unwrap_or(0),
                    start_period: health.start_period.unwrap_or(0),
                    start_interval: health.start_interval.unwrap_or(0),
                    retries: health.retries.unwrap_or(0),
                };
                self.config(step, state, ConfigEdit::Healthcheck(config));
            }
            Instruction::Onbuild(onbuild) => {
                self.config(step, state, ConfigEdit::Onbuild(onbuild.expression.clone()));
                // Also run by the stages built on this one (stage.rs).
                if let Some(triggers) = self.stage_triggers.get_mut(step.stage) {
                    triggers.push(onbuild.expression.clone());
                }
            }
            Instruction::Copy(copy) => self.copy(step, copy, state)?,
        }
        Ok(())
    }

    /// The checks of one instruction that need no expansion.
    fn check_instruction(&mut self, instruction: &Instruction, state: &mut State) {
        let span = self.at;
        let name = instruction.name();
        if matches!(
            instruction,
            Instruction::Cmd(_) | Instruction::Entrypoint(_) | Instruction::Healthcheck(_)
        ) && let Some(before) = state.lint.used_once(name, span)
        {
            // The one overridden is where the warning points.
            self.warn_once(
                "MultipleInstructionsDisallowed",
                String::new(),
                crate::lint::multiple_instructions_disallowed(name),
                before,
            );
        }
        match instruction {
            Instruction::Cmd(Command::Shell(_)) | Instruction::Entrypoint(Command::Shell(_))
                if !state.lint.shell_set =>
            {
                self.warn_once(
                    "JSONArgsRecommended",
                    String::new(),
                    crate::lint::json_args_recommended(name),
                    span,
                );
            }
            Instruction::Env(pairs) | Instruction::Label(pairs) => {
                if pairs.iter().any(|pair| !pair.equals) {
                    self.warn_once(
                        "LegacyKeyValueFormat",
                        String::new(),
                        crate::lint::legacy_key_value_format(name),
                        span,
                    );
                }
                if name == "ENV" {
                    for pair in pairs {
                        self.secret_check("ENV", &pair.key.value, span);
                    }
                }
            }
            Instruction::Arg(definitions) => {
                for definition in definitions {
                    self.secret_check("ARG", &definition.name.value, span);
                }
            }
            _ => {}
        }
    }

    fn secret_check(&mut self, instruction: &str, key: &str, span: crate::span::Span) {
        if crate::lint::is_secret_name(key) {
            self.warn_once(
                "SecretsUsedInArgOrEnv",
                format!("{instruction} {key}"),
                crate::lint::secrets_used_in_arg_or_env(instruction, key),
                span,
            );
        }
    }

    pub(super) fn config(&mut self, step: &Step<'_>, state: &mut State, edit: ConfigEdit) {
        let created_by = edit.history_text();
        self.step_vertex(step, state, Op::Config(edit), Vec::new(), created_by);
    }

    pub(super) fn expand_pairs(
        &mut self,
        pairs: &[KeyValue],
        state: &State,
        instruction: &'static str,
    ) -> Result<Vec<(String, String)>, Error> {
        // All pairs of one instruction see the values from before it
        // (`ENV a=1 b=$a` gives b the old a), as docker does.
        let mut out = Vec::new();
        for pair in pairs {
            let key = self.expand_in(&pair.key, state)?;
            if key.is_empty() {
                return Err(Error::new(
                    ErrorKind::MissingArguments {
                        instruction,
                        what: "a non-empty name before `=`",
                    },
                    pair.key.span.to(pair.value.span),
                ));
            }
            let value = self.expand_in(&pair.value, state)?;
            out.push((key, value));
        }
        Ok(out)
    }

    pub(super) fn command_args(&self, command: &Command, state: &State) -> Vec<String> {
        match command {
            Command::Shell(word) => {
                let mut args = shell_prefix(&state.shell);
                args.push(word.value.clone());
                args
            }
            Command::Exec(words) => words.iter().map(|word| word.value.clone()).collect(),
        }
    }
}

/// `80`, `80/tcp`, `8000-8010/udp` → `port/proto`.
fn normalize_port(port: &str) -> Option<String> {
    let (range, protocol) = match port.split_once('/') {
        Some((range, protocol)) => (range, protocol.to_ascii_lowercase()),
        None => (port, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let valid = |number: &str| number.parse::<u16>().is_ok();
    let ok = match range.split_once('-') {
        Some((start, end)) => {
            valid(start) && valid(end) && start.parse::<u16>().ok()? <= end.parse::<u16>().ok()?
        }
        None => valid(range),
    };
    ok.then(|| format!("{range}/{protocol}"))
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

fn is_valid_signal(signal: &str) -> bool {
    if let Ok(number) = signal.parse::<u32>() {
        return (1..=64).contains(&number);
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"))
    {
        return offset.parse::<u32>().is_ok_and(|offset| offset <= 30);
    }
    SIGNALS.contains(&name) || name == "RTMIN" || name == "RTMAX"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(normalize_port("80").as_deref(), Some("80/tcp"));
        assert_eq!(normalize_port("53/UDP").as_deref(), Some("53/udp"));
        assert_eq!(
            normalize_port("8000-8010/tcp").as_deref(),
            Some("8000-8010/tcp")
        );
        assert_eq!(normalize_port("http"), None);
        assert_eq!(normalize_port("70000"), None);
        assert_eq!(normalize_port("80/icmp"), None);
    }

    #[test]
    fn signals() {
        assert!(is_valid_signal("SIGTERM") && is_valid_signal("kill") && is_valid_signal("9"));
        assert!(is_valid_signal("SIGRTMIN+3"));
        assert!(!is_valid_signal("SIGFOO") && !is_valid_signal("0"));
    }
}
