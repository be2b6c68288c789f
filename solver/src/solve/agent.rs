//! The ssh agent a `RUN --mount=type=ssh` step sees: a socket of the
//! step's own, with the mount's mode and owner (BuildKit: 0600, root), that
//! forwards each connection to the agent's socket on the host, as
//! BuildKit's sshforward does. The host's socket itself is never bound into
//! the sandbox: a step (root in its namespace, which is its user on the
//! host) could otherwise chmod, chown or replace the user's agent socket.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Connections forwarded at once, at most: each takes two threads, and a
/// step has no business opening more than a few.
const MAX_CONNECTIONS: usize = 64;

/// A listening socket that forwards to an agent, until dropped.
pub(crate) struct AgentProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AgentProxy {
    /// Listen at `path` (in a directory of the step's own), with `mode`
    /// and owner `uid`:`gid`, forwarding to the socket `agent`.
    pub(crate) fn start(
        path: &Path,
        agent: &Path,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<AgentProxy> {
        let listener = UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let agent = agent.to_owned();
        let thread = std::thread::Builder::new()
            .name("ssh-agent-proxy".to_owned())
            .spawn({
                let stop = stop.clone();
                move || {
                    for client in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                            open.fetch_sub(1, Ordering::SeqCst);
                            continue;
                        }
                        let (agent, open) = (agent.clone(), open.clone());
                        let spawned = std::thread::Builder::new()
                            .name("ssh-agent-forward".to_owned())
                            .spawn(move || {
                                forward(client, &agent);
                                open.fetch_sub(1, Ordering::SeqCst);
                            });
                        if spawned.is_err() {
                            // Counted, but never run: let it go.
                            continue;
                        }
                    }
                }
            })?;
        Ok(AgentProxy {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }
}

/// Copy both ways between `client` and a new connection to `agent`, each
/// way until its end closes.
fn forward(client: UnixStream, agent: &Path) {
    let Ok(upstream) = UnixStream::connect(agent) else {
        return;
    };
    let (Ok(mut client_back), Ok(mut upstream_back)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let back = std::thread::spawn(move || {
        let _ = io::copy(&mut upstream_back, &mut client_back);
        let _ = client_back.shutdown(std::net::Shutdown::Write);
    });
    let (mut client, mut upstream) = (client, upstream);
    let _ = io::copy(&mut client, &mut upstream);
    let _ = upstream.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread, which then sees `stop`.
        if UnixStream::connect(&self.path).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn connections_are_forwarded_both_ways_and_the_socket_has_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let agent_path = dir.path().join("agent");
        let agent = UnixListener::bind(&agent_path).unwrap();
        // An agent that answers each line with it reversed, twice.
        let served = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut stream, _) = agent.accept().unwrap();
                let mut asked = String::new();
                stream.read_to_string(&mut asked).unwrap();
                stream
                    .write_all(asked.chars().rev().collect::<String>().as_bytes())
                    .unwrap();
            }
        });
        let path = dir.path().join("step.sock");
        let proxy = AgentProxy::start(&path, &agent_path, 0o741, 0, 0).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o741);
        for question in ["ping", "another"] {
            let mut stream = UnixStream::connect(&path).unwrap();
            stream.write_all(question.as_bytes()).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            assert_eq!(answer, question.chars().rev().collect::<String>());
        }
        served.join().unwrap();
        // Dropping it stops the thread (the test would hang otherwise).
        drop(proxy);
    }
}
