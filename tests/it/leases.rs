//! Leases: prunes running at any moment never take what builds in flight
//! hold, and the leases of dead processes are reported and removed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::build::store_with_base;
use crate::support::{Context, StoreDir};

/// `strata --root ROOT ARGS...` in `cwd`, not waited for.
fn spawn(store: &StoreDir, cwd: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(store.root())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to start strata")
}

fn lease_files(store: &StoreDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(store.root().join("leases"))
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// A pid no process has (above the kernel's largest).
const NO_SUCH_PID: u32 = 4_194_304 + 17;

#[test]
fn a_dead_process_lease_is_reported_then_removed_by_prune() {
    let store = StoreDir::new();
    let cwd = store.dir.path();
    store.ok(cwd, &["system", "check"]);
    let root = store.root();
    // What a build killed with SIGKILL leaves: its lease, and a staging
    // directory in tmp/ the lease holds.
    std::fs::create_dir(root.join("tmp/1-0-1.copy")).unwrap();
    let lease = root.join("leases/1-0-1.lease");
    std::fs::write(
        &lease,
        format!(
            "{{\"pid\":{NO_SUCH_PID},\"start\":12345,\"command\":\"build\",\"created\":\"2026-01-01T00:00:00Z\"}}\n\
             path 1-0-1.copy\n"
        ),
    )
    .unwrap();
    let check = store.ok(cwd, &["system", "check"]);
    assert!(
        check.contains(&format!(
            "stale lease 1-0-1 (pid {NO_SUCH_PID}, build, since 2026-01-01T00:00:00Z): its process is gone"
        )),
        "{check}"
    );
    store.ok(cwd, &["image", "prune", "-f"]);
    assert!(!lease.exists(), "the stale lease is removed");
    assert!(
        !root.join("tmp/1-0-1.copy").exists(),
        "what it held is garbage"
    );
    let check = store.ok(cwd, &["system", "check"]);
    assert!(!check.contains("stale lease"), "{check}");
}

#[test]
fn a_live_process_lease_keeps_what_it_holds_from_every_prune() {
    let store = StoreDir::new();
    let cwd = store.dir.path();
    store.ok(cwd, &["system", "check"]);
    let root = store.root();
    // A holder that runs: this test's own process (its start time from
    // /proc, as strata records it).
    let pid = std::process::id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let blob = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(b"held"));
    std::fs::write(root.join("blobs/sha256").join(&blob), "held").unwrap();
    std::fs::create_dir(root.join("tmp/9-0-9.run")).unwrap();
    std::fs::write(root.join("tmp/9-0-10"), "half a blob").unwrap();
    std::fs::write(root.join("tmp/unheld"), "garbage").unwrap();
    let lease = root.join("leases/9-0-9.lease");
    std::fs::write(
        &lease,
        format!(
            "{{\"pid\":{pid},\"start\":{start},\"command\":\"build\"}}\n\
             path 9-0-9.run\npath 9-0-10\nblob sha256:{blob}\n"
        ),
    )
    .unwrap();
    let check = store.ok(cwd, &["system", "check"]);
    assert!(
        check.contains("1 leases of operations in flight"),
        "{check}"
    );
    store.ok(cwd, &["image", "prune", "-a", "-f"]);
    store.ok(cwd, &["cache", "prune", "-a", "-f"]);
    assert!(lease.exists());
    assert!(root.join("tmp/9-0-9.run").is_dir());
    assert!(root.join("tmp/9-0-10").is_file());
    assert!(root.join("blobs/sha256").join(&blob).is_file());
    assert!(
        !root.join("tmp/unheld").exists(),
        "what no lease holds goes"
    );
    // Released: garbage at the next prune.
    std::fs::remove_file(&lease).unwrap();
    store.ok(cwd, &["image", "prune", "-f"]);
    assert!(!root.join("tmp/9-0-9.run").exists());
    assert!(!root.join("blobs/sha256").join(&blob).exists());
}

/// A build whose RUN waits (for `gate/go` in its context) until the test
/// says, with layers made before and after the wait.
fn waiting_context() -> Context {
    Context::new()
        .file("a.txt", "copied before the wait\n")
        .file("gate/.keep", "")
        .dockerfile(
            "FROM base\n\
             COPY a.txt /a.txt\n\
             RUN echo made-before > /before\n\
             RUN --mount=type=bind,source=gate,target=/gate \
                 echo waiting-for-go && while [ ! -e /gate/go ]; do sleep 0.05; done\n\
             RUN echo made-after > /after\n",
        )
}

/// Start `strata build` of `context` and return once its RUN waits.
fn start_waiting_build(store: &StoreDir, context: &Context, tag: &str) -> Child {
    let mut child = spawn(
        store,
        context.path(),
        &["build", "--progress", "plain", "-t", tag, "."],
    );
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut said = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !said && line.contains("waiting-for-go") && !line.contains("echo") {
                said = true;
                let _ = sender.send(());
            }
        }
    });
    receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the build reaches its waiting RUN");
    child
}

#[test]
fn prunes_during_a_build_leave_its_layers_and_its_image_is_whole() {
    let store = store_with_base();
    let cwd = store.dir.path();
    let context = waiting_context();
    let child = start_waiting_build(&store, &context, "waited:1");
    // Every record the build made so far belongs to no image yet.
    store.ok(cwd, &["cache", "prune", "-a", "-f"]);
    store.ok(cwd, &["image", "prune", "-a", "-f"]);
    let check = store.ok(cwd, &["system", "check"]);
    assert!(
        check.contains("1 leases of operations in flight"),
        "{check}"
    );
    std::fs::write(context.path().join("gate/go"), "").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = store.dir.path().join("waited.tar");
    store.ok(cwd, &["save", "-o", saved.to_str().unwrap(), "waited:1"]);
    let files = store.ok(
        cwd,
        &[
            "run",
            "--entrypoint",
            "",
            "waited:1",
            "cat",
            "/a.txt",
            "/before",
            "/after",
        ],
    );
    assert_eq!(files, "copied before the wait\nmade-before\nmade-after\n");
    let check = store.ok(cwd, &["system", "check"]);
    assert!(!check.contains("lease"), "released: {check}");
    assert!(lease_files(&store).is_empty());
}

/// One build of a round: its context and where its output goes.
struct Job {
    context: Context,
    out: PathBuf,
    expected: String,
}

fn job(round: usize, index: usize) -> Job {
    let own = format!("build {index} of round {round}\n");
    let context = Context::new()
        .file("common.txt", "the same in every build\n")
        .file("own.txt", &own)
        .dockerfile(
            "FROM base\n\
             RUN echo shared > /shared\n\
             COPY common.txt /common.txt\n\
             COPY own.txt /own.txt\n\
             RUN cat /own.txt /common.txt /shared > /all\n",
        );
    let out = context.path().join("out");
    Job {
        context,
        out,
        expected: format!("{own}the same in every build\nshared\n"),
    }
}

#[test]
#[expect(clippy::print_stderr, reason = "the run's figures")]
fn four_builds_and_racing_prunes_lose_nothing() {
    let store = store_with_base();
    let cwd = store.dir.path().to_path_buf();
    let rootfs = cwd.join("rootfs");
    let started = Instant::now();
    let rounds = 20;
    let (mut built, mut failed, mut prunes) = (0, 0, 0);
    for round in 0..rounds {
        // The previous round's prunes may have taken the base.
        store.ok(&cwd, &["import", rootfs.to_str().unwrap(), "base"]);
        let jobs: Vec<Job> = (0..4).map(|index| job(round, index)).collect();
        let children: Vec<Child> = jobs
            .iter()
            .enumerate()
            .map(|(index, job)| {
                let tag = format!("app{index}:{round}");
                let output = format!("type=local,dest={}", job.out.display());
                spawn(
                    &store,
                    job.context.path(),
                    &[
                        "build",
                        "-q",
                        "--pull=never",
                        "-t",
                        &tag,
                        "--output",
                        &output,
                        ".",
                    ],
                )
            })
            .collect();
        let done = AtomicBool::new(false);
        let pruned = std::thread::scope(|scope| {
            let pruner = scope.spawn(|| {
                let mut count = 0;
                while !done.load(Ordering::Relaxed) {
                    let args: &[&str] = if count % 2 == 0 {
                        &["image", "prune", "-a", "-f"]
                    } else {
                        &["cache", "prune", "-a", "-f"]
                    };
                    let run = store.strata(&cwd, args);
                    assert_eq!(run.code, 0, "{args:?} failed: {}", run.stderr);
                    count += 1;
                }
                count
            });
            let outputs: Vec<_> = children
                .into_iter()
                .map(|child| child.wait_with_output().unwrap())
                .collect();
            done.store(true, Ordering::Relaxed);
            (pruner.join().unwrap(), outputs)
        });
        let (count, outputs) = pruned;
        prunes += count;
        for (job, output) in jobs.iter().zip(&outputs) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                built += 1;
                let all = std::fs::read_to_string(job.out.join("all")).unwrap_or_else(|error| {
                    panic!("round {round}: the output lacks /all ({error}): {stderr}")
                });
                assert_eq!(all, job.expected, "round {round}");
            } else {
                failed += 1;
                // The one way to fail: a prune took the base before the
                // build found it.
                assert!(
                    stderr.contains("image `base` is not in the store"),
                    "round {round}: a build failed with an unclear error:\n{stderr}"
                );
            }
        }
        let check = store.strata(&cwd, &["system", "check"]);
        assert_eq!(
            check.code, 0,
            "round {round}: {}{}",
            check.stdout, check.stderr
        );
        assert!(!check.stdout.contains("problem"), "{}", check.stdout);
        assert!(lease_files(&store).is_empty(), "round {round}: leases left");
    }
    // Every image left is whole: it can be saved.
    let ids = store.ok(&cwd, &["images", "-q", "--no-trunc"]);
    for id in ids.lines() {
        let saved = cwd.join("saved.tar");
        store.ok(&cwd, &["save", "-o", saved.to_str().unwrap(), id]);
    }
    eprintln!(
        "{rounds} rounds in {:?}: {built} builds succeeded, {failed} failed, {prunes} prunes",
        started.elapsed()
    );
    assert!(built >= rounds * 2, "too few builds succeeded: {built}");
}
