//! Why a step cannot do what it says, as data: a COPY source that is
//! missing, a mount source outside the build context, a secret that was
//! not passed. [`BuildError::Step`](super::BuildError::Step) carries one,
//! and the CLI words it with its causes (`COPY failed: …: …`).

use std::path::PathBuf;

use strata_frontend::graph::VertexId;

use super::files::CopyError;
use crate::error::PathError;
use crate::exec::UserError;

/// A step that cannot do what it says, and which step it is.
///
/// It reads as its [`kind`](StepError::kind), causes included: the
/// `#[error(transparent)]` thiserror gives a one-field error, with the step
/// beside it.
#[derive(Debug)]
pub struct StepError {
    /// The step.
    pub vertex: VertexId,
    /// What is wrong.
    pub kind: StepErrorKind,
}

impl StepError {
    /// Step `vertex` cannot do what it says, because of `kind`.
    pub fn new(vertex: VertexId, kind: impl Into<StepErrorKind>) -> StepError {
        StepError {
            vertex,
            kind: kind.into(),
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind.fmt(formatter)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// What is wrong with a step.
#[derive(Debug, thiserror::Error)]
pub enum StepErrorKind {
    /// A COPY or ADD that cannot be done.
    #[error("{} failed", if *add { "ADD" } else { "COPY" })]
    Copy {
        /// ADD rather than COPY.
        add: bool,
        /// Why.
        #[source]
        source: CopyError,
    },
    /// A RUN `--mount` that cannot be prepared.
    #[error("RUN --mount")]
    Mount(#[source] MountError),
    /// The build context's directory cannot be opened.
    #[error("failed to open the build context")]
    OpenContext(#[source] std::io::Error),
    /// Reading the build context for a bind mount's content failed.
    #[error(transparent)]
    Context(#[from] PathError),
    /// A symlink in a bind mount's source that cannot be read (the
    /// message has always been the system's alone).
    #[error(transparent)]
    ContextLink(std::io::Error),
    /// A cache mount owned by an id that strata's user namespace does not
    /// map.
    #[error(
        "RUN --mount=type=cache: the cache cannot be owned by {uid}:{gid}: \
         that id is not mapped in strata's user namespace (see the warning above)"
    )]
    CacheOwner {
        /// The owner asked for.
        uid: u32,
        /// The group asked for.
        gid: u32,
    },
    /// An ssh mount's socket owned by an id that strata's user namespace
    /// does not map.
    #[error(
        "RUN --mount=type=ssh: the agent socket cannot be owned by {uid}:{gid}: \
         that id is not mapped in strata's user namespace (see the warning above)"
    )]
    SshOwner {
        /// The owner asked for.
        uid: u32,
        /// The group asked for.
        gid: u32,
    },
    /// A required secret that was not passed.
    #[error(
        "RUN --mount=type=secret: the secret `{id}` is required: pass it with --secret id={id},src=FILE"
    )]
    SecretRequired {
        /// The secret's id.
        id: String,
    },
    /// A secret file that cannot be read.
    #[error("failed to read the secret `{id}` from `{}`", path.display())]
    SecretRead {
        /// The secret's id.
        id: String,
        /// Its file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret from an environment variable that is not set.
    #[error("the secret `{id}` comes from ${name}, which is not set")]
    SecretUnset {
        /// The secret's id.
        id: String,
        /// The variable.
        name: String,
    },
    /// A required ssh agent that was not passed.
    #[error(
        "RUN --mount=type=ssh: the ssh agent `{id}` is required: pass it with --ssh {id}[=SOCKET]"
    )]
    SshRequired {
        /// The agent's id.
        id: String,
    },
}

impl From<MountError> for StepErrorKind {
    fn from(error: MountError) -> StepErrorKind {
        StepErrorKind::Mount(error)
    }
}

/// Why a RUN `--mount` cannot be prepared: what follows `RUN --mount: `.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A bind source that is not in the build context.
    #[error("`{0}` is not in the build context")]
    NotInContext(String),
    /// A bind source that resolves outside the build context.
    #[error("`{0}` leaves the build context")]
    LeavesContext(String),
    /// What `.dockerignore` hides below a bind source cannot be listed.
    #[error(transparent)]
    Ignored(#[from] CopyError),
    /// The mask hiding what `.dockerignore` excludes cannot be written.
    #[error(transparent)]
    Mask(#[from] PathError),
    /// A cache or secret operation that failed.
    #[error("failed to {operation}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why a WORKDIR's directory cannot be made: what follows `WORKDIR DIR: `.
#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    /// Its owner (the step's USER) cannot be resolved.
    #[error(transparent)]
    User(#[from] UserError),
    /// A path element that is not a directory in the image.
    #[error(
        "/{} is not a directory{}",
        ancestor.display(),
        if *symlink { " (a symlink, which this version of strata does not follow)" } else { "" }
    )]
    NotADirectory {
        /// The element, below the root.
        ancestor: PathBuf,
        /// Whether it is a symlink.
        symlink: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::one_line;
    use crate::solve::BuildError;

    #[test]
    fn a_step_error_reads_as_its_kind_with_its_causes() {
        let missing = PathError {
            operation: "inspect",
            path: PathBuf::from("/context/a"),
            source: std::io::Error::from_raw_os_error(2),
        };
        let error = BuildError::from(StepError::new(
            7,
            StepErrorKind::Copy {
                add: true,
                source: CopyError::Path(missing),
            },
        ));
        assert_eq!(error.vertex(), Some(7));
        assert_eq!(error.to_string(), "ADD failed");
        assert_eq!(
            one_line(&error),
            "ADD failed: failed to inspect `/context/a`: No such file or directory (os error 2)"
        );
        let error = BuildError::from(StepError::new(3, MountError::LeavesContext("..".into())));
        assert_eq!(
            one_line(&error),
            "RUN --mount: `..` leaves the build context"
        );
        let error = BuildError::from(StepError::new(
            3,
            StepErrorKind::SecretUnset {
                id: "token".into(),
                name: "TOKEN".into(),
            },
        ));
        assert_eq!(
            one_line(&error),
            "the secret `token` comes from $TOKEN, which is not set"
        );
    }
}
