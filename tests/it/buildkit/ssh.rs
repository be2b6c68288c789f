//! `frontend/dockerfile/dockerfile_ssh_test.go`. BuildKit's test forwards
//! an agent made from a key file; strata forwards agent sockets
//! (`--ssh ID=SOCKET`), so a listening socket stands in for the agent.

use super::Bk;
use crate::support::Context;

/// testSSHSocketParams: the step's socket has the mount's mode and owner
/// (strata bound the host's socket in as it was).
#[test]
fn the_agent_socket_gets_the_mounts_mode_and_owner() {
    let bk = Bk::new();
    let agent_dir = tempfile::tempdir().unwrap();
    let agent = agent_dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    let before = std::fs::metadata(&agent).unwrap();
    let context = Context::new().dockerfile(
        "FROM busybox\nRUN --mount=type=ssh,mode=741,uid=100,gid=102 [ \"$(stat -c \"%u %g %f\" $SSH_AUTH_SOCK)\" = \"100 102 c1e1\" ]\nRUN --mount=type=ssh [ \"$(stat -c \"%u %g %a\" $SSH_AUTH_SOCK)\" = \"0 0 600\" ] && chmod 777 $SSH_AUTH_SOCK\n",
    );
    bk.build_ok(
        &context,
        &["--ssh", &format!("default={}", agent.display())],
    );
    // The host's socket is untouched by the step's chmod.
    use std::os::unix::fs::MetadataExt;
    let after = std::fs::metadata(&agent).unwrap();
    assert_eq!(
        (after.mode(), after.uid(), after.gid()),
        (before.mode(), before.uid(), before.gid())
    );
}
