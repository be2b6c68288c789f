//! RUN: its argv (shell form, exec form, heredocs), its environment and
//! build args, `--network`, `--security` and `--mount`s (BuildKit's
//! `dispatchRun` and `convert_runmount.go`).

use std::sync::Arc;

use super::{
    Lowerer, RUN_ENVIRONMENTS_LIMIT, State, Step, heredoc_content, join_path, shell_prefix,
};
use crate::error::{Error, ErrorKind};
use crate::graph::mount::{self, MountType};
use crate::graph::{Exec, InlineFile, Network, Op, Security};
use crate::instructions::{Command, Run};

/// The environment a RUN sees (see [`Lowerer::run_env`]).
pub(super) struct RunEnv {
    env: Arc<[String]>,
    proxy: Vec<String>,
    build_args: Vec<(String, String)>,
}

impl Lowerer<'_> {
    /// The environment a RUN sees: ENV, then declared build args not
    /// shadowed; its proxy variables; and those build args, as pairs.
    pub(super) fn run_env(&mut self, state: &mut State) -> RunEnv {
        let mut args_used = Vec::new();
        for (name, value) in &state.args {
            let Some(value) = value else { continue };
            if state.env_value(name).is_some() {
                continue;
            }
            args_used.push((name.clone(), value.clone()));
        }
        // Shared by every RUN until ENV or ARG changes it: a copy per RUN
        // would be as large as the environment times the RUNs.
        let env = match &state.shared_env {
            Some(env) => env.clone(),
            None => {
                let mut env = state.env.clone();
                env.extend(
                    args_used
                        .iter()
                        .map(|(name, value)| format!("{name}={value}")),
                );
                let env: Arc<[String]> = env.into();
                self.environments = self
                    .environments
                    .saturating_add(env.iter().map(|entry| entry.len() + 1).sum());
                state.shared_env = Some(env.clone());
                env
            }
        };
        // Each proxy a build arg names, whatever its case (the last in
        // sorted order wins, as in BuildKit), is set in both cases, as
        // BuildKit's executor sets them.
        let mut proxy = Vec::new();
        for kind in [
            "http_proxy",
            "https_proxy",
            "ftp_proxy",
            "no_proxy",
            "all_proxy",
        ] {
            let value = self
                .options
                .build_args
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(kind))
                .map(|(_, value)| value)
                .next_back();
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                proxy.push(format!("{}={value}", kind.to_ascii_uppercase()));
                proxy.push(format!("{kind}={value}"));
            }
        }
        RunEnv {
            env,
            proxy,
            build_args: args_used,
        }
    }

    pub(super) fn run(
        &mut self,
        step: &Step<'_>,
        run: &Run,
        state: &mut State,
    ) -> Result<(), Error> {
        let mut files = Vec::new();
        let args = match (&run.command, run.heredocs.as_slice()) {
            (Command::Shell(word), [heredoc]) if is_only_heredoc(&word.value) => {
                let script = heredoc_content(heredoc);
                if script.starts_with("#!") {
                    // A script with its own interpreter runs as a file.
                    // Cleaned as BuildKit's `path.Join("/dev/pipes/", name)`.
                    let path = join_path("/dev/pipes", &heredoc.name);
                    files.push(InlineFile {
                        path: path.clone(),
                        content: script,
                        mode: 0o755,
                    });
                    // The shell runs it, as in BuildKit (`sh -c PATH`).
                    let mut args = state.shell.clone();
                    args.push(path);
                    args
                } else {
                    let mut args = shell_prefix(&state.shell);
                    args.push(script);
                    args
                }
            }
            (Command::Shell(word), heredocs) if !heredocs.is_empty() => {
                // The shell reads the heredocs itself: give it the whole text.
                let mut script = word.value.clone();
                for heredoc in heredocs {
                    script.push('\n');
                    script.push_str(&heredoc.content);
                    script.push_str(&heredoc.name);
                }
                let mut args = shell_prefix(&state.shell);
                args.push(script);
                args
            }
            (command, _) => self.command_args(command, state),
        };
        let network = match &run.network {
            None => Network::Default,
            Some(flag) => match flag.value.value.as_str() {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidNetwork(other.to_owned()),
                        flag.value.span,
                    ));
                }
            },
        };
        let security = match &run.security {
            None => Security::Sandbox,
            Some(flag) => match flag.value.value.as_str() {
                "sandbox" => Security::Sandbox,
                "insecure" => Security::Insecure,
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidSecurity(other.to_owned()),
                        flag.value.span,
                    ));
                }
            },
        };
        let mut inputs = vec![state.fs];
        let mut mounts = Vec::new();
        for flag in &run.mounts {
            // BuildKit refuses a variable in `from=` before it expands the
            // rest (a `$` at the very end is a plain character).
            let from_variable = flag.value.value.split(',').any(|field| {
                field.split_once('=').is_some_and(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("from")
                        && value.find('$').is_some_and(|at| at + 1 != value.len())
                })
            });
            if from_variable {
                return Err(Error::new(ErrorKind::MountFromVariable, flag.value.span)
                    .with_hint("name the stage with `FROM ... AS name` and use `from=name`"));
            }
            let text = self.expand_in(&flag.value, state)?;
            let mut mount = mount::parse(&text).map_err(|error| {
                let hint = error.suggestion();
                let error = Error::new(ErrorKind::InvalidMount(error), flag.value.span);
                match hint {
                    Some(near) => error.with_hint(format!("did you mean `{near}`?")),
                    None => error,
                }
            })?;
            // A relative target, or none, is in the WORKDIR (a secret with
            // only `env=` has none and needs none).
            let needs_target = !(mount.kind == MountType::Secret && mount.target.is_empty());
            if needs_target && !mount.target.starts_with('/') {
                mount.target = join_path(&state.workdir, &mount.target);
            }
            if needs_target && mount.target == "/" {
                return Err(Error::new(ErrorKind::MountAtRoot, flag.value.span)
                    .with_hint("name where it goes: target=<path in the container>"));
            }
            let source_input = match (mount.kind, &mount.from) {
                (MountType::Bind | MountType::Cache, Some(from)) => {
                    Some(self.resolve_from(from, flag, step, false)?)
                }
                (MountType::Bind, None) => Some(self.context_vertex()),
                _ => None,
            };
            if let Some(input) = source_input {
                mount.input = Some(inputs.len());
                inputs.push(input);
            }
            mounts.push(mount);
        }
        let RunEnv {
            env,
            proxy: proxy_env,
            build_args,
        } = self.run_env(state);
        if self.environments > RUN_ENVIRONMENTS_LIMIT {
            return Err(
                Error::new(ErrorKind::EnvironmentsTooLarge, step.located.span).with_hint(
                    "each RUN holds its whole environment, a new one after each change: \
                     set the variables together, in fewer ENV instructions",
                ),
            );
        }
        let created_by = crate::graph::run_history(&args, &build_args);
        let exec = Exec {
            args,
            env,
            build_args,
            proxy_env,
            user: state.user.clone(),
            cwd: state.workdir.clone(),
            network,
            security,
            mounts,
            files,
        };
        self.step_vertex(
            step,
            state,
            Op::Exec(Box::new(exec)),
            inputs,
            Some(created_by),
        );
        Ok(())
    }
}

/// Whether a RUN's shell form is nothing but a heredoc (`<<EOF`, `<<-"EOF"`).
fn is_only_heredoc(text: &str) -> bool {
    let text = text.trim();
    let rest = text.trim_start_matches(|ch: char| ch.is_ascii_digit());
    rest.starts_with("<<") && !text.contains(char::is_whitespace)
}
