//! The key of a RUN.
//!
//! | part | from |
//! | --- | --- |
//! | definition | [`Vertex::digest`]: argv, env (ENV and the build args that reach it), user, cwd, `--network` as written, `--security`, mounts, heredoc files; not proxy variables |
//! | network | the effective network, as [`network_part`] words it |
//! | parent | the parent step's key |
//! | each bind mount, in order | the digest of the context tree it shows; for a stage or image, what it shows of it by content (`super::file::selected`) when `source` selects a directory or file, else the key of the step it mounts |
//! | the sandbox's settings, each when set | `hostname=NAME` (`BUILDKIT_SANDBOX_HOSTNAME`), `shm-size=BYTES`, `ulimit=NAME=SOFT:HARD` per `--ulimit` (BuildKit's exec op has them too) |
//!
//! Cache, tmpfs, secret and ssh mounts are not in it: what they hold is
//! not the step's input (BuildKit leaves them out too).
//!
//! [`Vertex::digest`]: strata_frontend::graph::Vertex::digest

use strata_frontend::graph::Exec;

use super::{Key, StepInputs, key};
use crate::exec::Network;

/// The word a network mode puts into keys. These are the words every RUN
/// key has held so far (they were once the variants' `Debug`): changing
/// one invalidates every cached RUN that used it.
pub(crate) fn network_part(network: Network) -> &'static str {
    match network {
        Network::Host => "Host",
        Network::None => "None",
    }
}

/// The key of a RUN whose definition digest is `definition`, on the parent
/// whose key is `parent`, with `mounted` the parts of its bind mounts, and
/// `sandbox` those of the build's sandbox settings ([`sandbox_parts`]).
pub(crate) fn key_of(
    definition: &str,
    network: Network,
    sandbox: &[String],
    parent: &str,
    mounted: &[String],
) -> Key {
    let mut parts: Vec<&str> = vec![definition, network_part(network), parent];
    parts.extend(mounted.iter().map(String::as_str));
    parts.extend(sandbox.iter().map(String::as_str));
    key(&parts)
}

/// The parts a build's sandbox settings add to a RUN's key: only those
/// set, so the keys of builds without any stay what they were.
pub(crate) fn sandbox_parts(options: &crate::solve::BuildOptions) -> Vec<String> {
    let mut parts = Vec::new();
    if !options.hostname.is_empty() {
        parts.push(format!("hostname={}", options.hostname));
    }
    if let Some(size) = options.shm_size {
        parts.push(format!("shm-size={size}"));
    }
    parts.extend(
        options
            .ulimits
            .iter()
            .map(|limit| format!("ulimit={limit}")),
    );
    parts
}

/// What of a RUN the cache report compares (bind-mounted files are added
/// by the caller, which reads them).
pub(crate) fn inputs(exec: &Exec, parent: &str) -> StepInputs {
    let args: std::collections::BTreeMap<String, String> =
        exec.build_args.iter().cloned().collect();
    let env = exec
        .env
        .iter()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(name, _)| !args.contains_key(*name))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    StepInputs {
        instruction: exec.args.join(" "),
        args,
        env,
        user: exec.user.clone(),
        workdir: exec.cwd.clone(),
        parent: parent.to_owned(),
        ..StepInputs::default()
    }
}
