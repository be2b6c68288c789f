//! One full RUN cycle, side by side with `buildah run` on the same base.
//!
//! `cargo bench -p strata-solver --bench run` imports a busybox base (made
//! from Debian's busybox-static) and times, `STRATA_BENCH_RUNS` times each
//! (default 100), in the same run:
//!
//! - strata `RUN true`: set up the sandbox (run directory, helper process,
//!   namespaces, overlay, /proc, /dev, pivot_root), run, tear down, commit
//!   the empty change (no layer); with `--network none` as buildah is run,
//!   and with the host's network, strata's default;
//! - strata `RUN echo x > /f`: the same, committing a one-file layer
//!   (gzip, written and synced into the store);
//! - `buildah run` of the same two commands in a working container of the
//!   same base (`--isolation oci --runtime runc --network none`), the
//!   second followed by `buildah commit` so that both sides end with a layer
//!   in a store; when buildah is installed.
//!
//! Medians and 90th percentiles in milliseconds, and the ratio to buildah.
//! This program is its own sandbox helper, as the `strata` binary is.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on stdout"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use strata_solver::exec::{self, Network, Output, RunSpec, Sandbox};
use strata_solver::image::{self, ImportOptions};
use strata_solver::layer::Compression;
use strata_solver::store::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn busybox_rootfs(root: &Path) {
    for dir in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("install busybox-static: the benchmark's base is made from /bin/busybox");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
    )
}

fn time(runs: usize, mut once: impl FnMut()) -> (f64, f64) {
    once(); // warm-up: snapshots, page cache
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            once();
            start.elapsed()
        })
        .collect();
    stats(samples)
}

fn strata_cycle(
    store: &Store,
    sandbox: &Sandbox,
    lowers: &[PathBuf],
    script: &str,
    network: Network,
    layer: bool,
) {
    let spec = RunSpec {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        network,
        ..RunSpec::default()
    };
    let finished = sandbox
        .run(lowers, &spec, Output::Capture(&mut |_| {}))
        .expect("the sandbox runs");
    assert_eq!(finished.code, 0, "{:?}", finished.tail);
    let committed = finished
        .changes
        .commit(store, Compression::Gzip, None)
        .expect("the change commits");
    assert_eq!(committed.is_some(), layer, "{script}");
}

struct Buildah {
    root: PathBuf,
    container: String,
}

impl Buildah {
    fn command(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(self.root.join("root"))
            .arg("--runroot")
            .arg(self.root.join("runroot"))
            .args(["--storage-driver", "overlay"]);
        command
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("buildah runs");
        assert!(
            output.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn new(dir: &Path, layout: &Path) -> Option<Buildah> {
        if Command::new("buildah").arg("--version").output().is_err() {
            eprintln!("buildah is not installed: strata's figures only");
            return None;
        }
        let mut buildah = Buildah {
            root: dir.to_path_buf(),
            container: String::new(),
        };
        let source = format!("oci:{}:latest", layout.display());
        let id = buildah.ok(&["pull", "--quiet", &source]);
        buildah.container = buildah.ok(&["from", "--pull=never", &id]);
        Some(buildah)
    }

    fn run(&self, script: &str) {
        self.ok(&[
            "run",
            "--runtime",
            "runc",
            "--isolation",
            "oci",
            "--network",
            "none",
            &self.container,
            "--",
            "/bin/sh",
            "-c",
            script,
        ]);
    }
}

fn main() {
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(exec::HELPER_ARGUMENT)) {
        exec::helper_main();
    }
    exec::userns::enter().expect("strata's user namespace");
    // `cargo bench` passes `--bench`; nothing else is expected.
    let runs: usize = std::env::var("STRATA_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(100);
    // Lowercase: buildah names images after `oci:` paths.
    let dir = tempfile::Builder::new()
        .prefix(&format!("strata-bench-run-{}", std::process::id()))
        .rand_bytes(0)
        .tempdir_in(std::env::var_os("STRATA_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let store = Store::open(dir.path().join("store")).unwrap();
    let imported = image::import_dir(
        &store,
        &rootfs,
        &ImportOptions {
            tags: vec!["bench:latest".into()],
            ..ImportOptions::default()
        },
    )
    .unwrap();
    let lowers = image::lower_dirs(&store, &imported.image).unwrap();
    let sandbox = Sandbox::new(&store).unwrap();
    println!(
        "full RUN cycle on a busybox base, {runs} runs each (median / p90, ms); snapshotter: {:?}",
        sandbox.snapshotter()
    );
    // Both sides with no network (a network namespace of their own), as
    // buildah is given; strata's default, the host's network, too.
    let strata_true = time(runs, || {
        strata_cycle(&store, &sandbox, &lowers, "true", Network::None, false)
    });
    let strata_host = time(runs, || {
        strata_cycle(&store, &sandbox, &lowers, "true", Network::Host, false)
    });
    let strata_file = time(runs, || {
        strata_cycle(
            &store,
            &sandbox,
            &lowers,
            "echo x > /f",
            Network::None,
            true,
        )
    });
    println!(
        "strata  RUN true            {:7.2} / {:7.2}",
        strata_true.0, strata_true.1
    );
    println!(
        "strata  RUN true (host net) {:7.2} / {:7.2}",
        strata_host.0, strata_host.1
    );
    println!(
        "strata  RUN echo x > /f     {:7.2} / {:7.2}   (commits a one-file layer)",
        strata_file.0, strata_file.1
    );
    let layout = dir.path().join("layout");
    image::save_oci(
        &store,
        &[(imported.image.clone(), vec!["bench:latest".to_owned()])],
        &layout,
        false,
    )
    .unwrap();
    if let Some(buildah) = Buildah::new(&dir.path().join("buildah"), &layout) {
        let buildah_true = time(runs, || buildah.run("true"));
        let buildah_file = time(runs, || {
            buildah.run("echo x > /f");
            buildah.ok(&["commit", "--quiet", &buildah.container, "bench-out"]);
        });
        println!(
            "buildah run true            {:7.2} / {:7.2}   strata is {:.1}x faster",
            buildah_true.0,
            buildah_true.1,
            buildah_true.0 / strata_true.0
        );
        println!(
            "buildah run + commit        {:7.2} / {:7.2}   strata is {:.1}x faster",
            buildah_file.0,
            buildah_file.1,
            buildah_file.0 / strata_file.0
        );
        let _ = buildah.command().args(["rm", "--all"]).output();
        let _ = buildah.command().args(["rmi", "--all", "--force"]).output();
        // buildah's overlay store leaves mounts behind its root.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(dir.path().join("buildah/root/overlay"))
            .output();
    }
}
