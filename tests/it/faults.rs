//! Crashes at every point: strata killed at each rename, fsync, unlink and
//! write (`solver/src/fault.rs` names them) of a build, a pull, a load, an
//! image prune, a cache prune and a push, one point per run.
//!
//! For each command: a clean run on a fresh copy of a prepared store gives
//! the expected result (an image ID, a pushed digest, what is left after a
//! prune); a run with `STRATA_FAULT=count` gives the number of points, N.
//! Then for every n in 1..=N, on a fresh copy of the same store:
//!
//! 1. the command with `STRATA_FAULT=n` dies at its n-th point;
//! 2. `system check` finds no problem;
//! 3. the same command, without faults, succeeds and gives the expected
//!    result;
//! 4. `image prune -f` removes whatever the crash left (temporary files,
//!    stale leases): a last `system check` reports none, and the store
//!    holds exactly the paths a clean run and the same prune leave (so a
//!    leftover that neither the check nor the prune knows of shows too).
//!
//! Every point is tried, none sampled. Builds run with `-j 1`, so that the
//! n-th point is the same one in every run. All failures are reported at
//! once, each with its point's kind and path.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::registry::Registry;
use crate::support::{Context, Run, StoreDir, busybox_rootfs, run_ok, strata_in};

/// How a process stopped at a point exits (`strata_solver::fault`).
const CRASH_EXIT: i32 = strata_solver::fault::CRASH_EXIT;

/// How many crash points are tried at once.
const WORKERS: usize = 3;

/// Fixed times, so that a build gives the same image ID in every store.
const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "0");

/// `strata --root STORE ARGS` in `cwd` with `env`.
fn strata_at(store: &Path, cwd: &Path, args: &[String], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--root", store.to_str().unwrap()];
    all.extend(args.iter().map(String::as_str));
    strata_in(cwd, &all, None, env)
}

/// One command to crash at every point.
struct Scenario<'a> {
    name: &'static str,
    /// The store each run starts from (copied, never changed).
    template: &'a StoreDir,
    cwd: &'a Path,
    args: Vec<String>,
    /// What a successful run gave, to compare with a clean run's.
    result: &'a (dyn Fn(&Path, &Run) -> String + Sync),
}

/// A fresh copy of `template`'s store.
fn copy_of(template: &StoreDir) -> StoreDir {
    let copy = StoreDir::new();
    if template.root().exists() {
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(template.root())
                .arg(copy.root()),
        );
    }
    copy
}

/// `system check` on `root`: its output, or why it failed.
fn check(root: &Path, cwd: &Path) -> Result<String, String> {
    let run = strata_at(root, cwd, &["system".into(), "check".into()], &[]);
    if run.code != 0 || run.stdout.contains("problem:") {
        return Err(format!(
            "system check failed ({}):\n{}{}",
            run.code, run.stdout, run.stderr
        ));
    }
    Ok(run.stdout)
}

/// Every path in the store (what snapshots and cache mounts hold too).
fn inventory(root: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.symlink_metadata().unwrap().is_dir() {
                stack.push(path.clone());
            }
            paths.insert(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
    paths
}

/// The paths in one inventory and not the other, a few of each.
fn difference(found: &BTreeSet<String>, expected: &BTreeSet<String>) -> Option<String> {
    let extra: Vec<&String> = found.difference(expected).take(8).collect();
    let missing: Vec<&String> = expected.difference(found).take(8).collect();
    (!extra.is_empty() || !missing.is_empty()).then(|| format!("left {extra:?}, lacks {missing:?}"))
}

/// `image prune -f` on `root`, expecting success.
fn prune(root: &Path, cwd: &Path) -> Result<(), String> {
    let args = ["image".into(), "prune".into(), "-f".into()];
    let run = strata_at(root, cwd, &args, &[]);
    if run.code != 0 {
        return Err(format!("prune failed:\n{}", run.stderr));
    }
    Ok(())
}

/// What a check says a prune must remove.
fn leftovers(check: &str) -> Vec<&str> {
    check
        .lines()
        .filter(|line| {
            line.contains("interrupted writes")
                || line.starts_with("stale lease")
                || line.contains("leases of operations in flight")
        })
        .collect()
}

impl Scenario<'_> {
    /// Run the command once on a copy of the template: its result, and the
    /// store's paths after a prune.
    fn clean(&self) -> (String, BTreeSet<String>) {
        let store = copy_of(self.template);
        let run = strata_at(&store.root(), self.cwd, &self.args, &[EPOCH]);
        assert_eq!(
            run.code, 0,
            "{}: clean run failed:\n{}",
            self.name, run.stderr
        );
        let result = (self.result)(&store.root(), &run);
        prune(&store.root(), self.cwd).unwrap();
        (result, inventory(&store.root()))
    }

    /// The points of a run, as `STRATA_FAULT=count` lists them.
    fn points(&self, expected: &str) -> Vec<String> {
        let store = copy_of(self.template);
        let log = store.dir.path().join("points");
        let run = strata_at(
            &store.root(),
            self.cwd,
            &self.args,
            &[
                EPOCH,
                ("STRATA_FAULT", "count"),
                ("STRATA_FAULT_LOG", log.to_str().unwrap()),
            ],
        );
        assert_eq!(
            run.code, 0,
            "{}: counting run failed:\n{}",
            self.name, run.stderr
        );
        assert_eq!(
            (self.result)(&store.root(), &run),
            expected,
            "{}",
            self.name
        );
        let points: Vec<String> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(
            !points.is_empty(),
            "{}: no crash point reached (is strata built with the `failpoints` feature?)",
            self.name
        );
        points
    }

    /// Crash at point `n`, then check, rerun and prune: what went wrong,
    /// if anything.
    fn crash_at(&self, n: usize, expected: &str, paths: &BTreeSet<String>) -> Result<(), String> {
        let store = copy_of(self.template);
        let root = store.root();
        let log = store.dir.path().join("point");
        let number = n.to_string();
        let run = strata_at(
            &root,
            self.cwd,
            &self.args,
            &[
                EPOCH,
                ("STRATA_FAULT", &number),
                ("STRATA_FAULT_LOG", log.to_str().unwrap()),
            ],
        );
        let point = std::fs::read_to_string(&log).unwrap_or_default();
        let point = point.trim();
        let fail = |what: String| Err(format!("point {n} ({point}): {what}"));
        if run.code != CRASH_EXIT {
            return fail(format!(
                "did not stop there (exit {}):\n{}",
                run.code, run.stderr
            ));
        }
        let after_crash = match check(&root, self.cwd) {
            Ok(output) => output,
            Err(error) => return fail(format!("after the crash: {error}")),
        };
        let rerun = strata_at(&root, self.cwd, &self.args, &[EPOCH]);
        if rerun.code != 0 {
            return fail(format!(
                "the rerun failed ({}):\n{}",
                rerun.code, rerun.stderr
            ));
        }
        let result = (self.result)(&root, &rerun);
        if result != expected {
            return fail(format!(
                "the rerun gave {result:?}, a clean store {expected:?}"
            ));
        }
        if let Err(error) = prune(&root, self.cwd) {
            return fail(error);
        }
        let after_prune = match check(&root, self.cwd) {
            Ok(output) => output,
            Err(error) => return fail(format!("after the prune: {error}")),
        };
        if !leftovers(&after_prune).is_empty() {
            return fail(format!(
                "prune left {:?} (after the crash: {:?})",
                leftovers(&after_prune),
                leftovers(&after_crash)
            ));
        }
        match difference(&inventory(&root), paths) {
            None => Ok(()),
            Some(difference) => fail(format!(
                "after the rerun and a prune the store is not a clean run's: {difference}"
            )),
        }
    }

    /// Crash at every point: the number of points, and the failures.
    fn run(&self) -> (usize, Vec<String>) {
        let (expected, paths) = self.clean();
        let points = self.points(&expected);
        // A few at once: each run waits on its syncs more than it computes.
        let next = AtomicUsize::new(1);
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..WORKERS {
                scope.spawn(|| {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n > points.len() {
                            break;
                        }
                        if let Err(error) = self.crash_at(n, &expected, &paths) {
                            failures
                                .lock()
                                .unwrap()
                                .push((n, format!("{}: {error}", self.name)));
                        }
                    }
                });
            }
        });
        let mut failures = failures.into_inner().unwrap();
        failures.sort();
        let failures: Vec<String> = failures.into_iter().map(|(_, failure)| failure).collect();
        (points.len(), failures)
    }
}

/// The image `reference` names in `root`, by full ID.
fn image_id(root: &Path, cwd: &Path, reference: &str) -> String {
    let run = strata_at(
        root,
        cwd,
        &[
            "images".into(),
            "-q".into(),
            "--no-trunc".into(),
            reference.into(),
        ],
        &[],
    );
    run.stdout.trim().to_owned()
}

/// A store with busybox imported as `base`, with fixed times.
fn store_with_base() -> StoreDir {
    let store = StoreDir::new();
    let rootfs = store.dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    store.ok_with_env(
        store.dir.path(),
        &["import", rootfs.to_str().unwrap(), "base"],
        &[EPOCH],
    );
    std::fs::remove_dir_all(&rootfs).unwrap();
    store
}

/// Two stages, a RUN in each, a COPY from the context and one from the
/// other stage.
fn two_stage_context() -> Context {
    Context::new()
        .file("a.txt", "from the context\n")
        .dockerfile(
            "FROM base AS first\n\
             RUN echo one > /one\n\
             FROM base\n\
             COPY a.txt /a.txt\n\
             COPY --from=first /one /one\n\
             RUN --mount=type=cache,target=/cache echo kept > /cache/kept && \
                 test -z \"$STRATA_FAULT$STRATA_FAULT_LOG\" && cat /one /a.txt > /both\n",
        )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

/// The check's first line: how many blobs and images are left.
fn what_is_left(root: &Path, _: &Run) -> String {
    let run = strata_at(root, Path::new("/"), &strings(&["system", "check"]), &[]);
    run.stdout.lines().next().unwrap_or_default().to_owned()
}

#[test]
#[expect(clippy::print_stderr, reason = "the run's figures")]
fn every_crash_point_leaves_a_sound_store_and_the_rerun_gives_the_same_result() {
    let started = std::time::Instant::now();
    let base = store_with_base();
    let context = two_stage_context();
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();

    // What the pull and the push use: the registry, with base pushed, and
    // base saved as a docker archive.
    let registry = Registry::start("");
    let pushed = format!("{}/fault/base:1", registry.host());
    base.ok(cwd, &["push", "base", &pushed]);
    let archive = cwd.join("base.tar");
    base.ok(cwd, &["save", "-o", archive.to_str().unwrap(), "base"]);
    let empty = StoreDir::new();
    // A store after three builds, for the prunes: app:1, app:2, and the
    // image app:2 named before (untagged now, dangling).
    let built = copy_of(&base);
    for (tag, text) in [
        ("app:1", "first\n"),
        ("app:2", "second\n"),
        ("app:2", "third\n"),
    ] {
        let context = two_stage_context().file("a.txt", text);
        built.ok_with_env(context.path(), &["build", "-q", "-t", tag, "."], &[EPOCH]);
    }

    let build_id = |_: &Path, run: &Run| run.stdout.trim().to_owned();
    let pulled = |root: &Path, _: &Run| image_id(root, Path::new("/"), &pushed);
    let loaded = |root: &Path, _: &Run| image_id(root, Path::new("/"), "base");
    let push_digest =
        |_: &Path, run: &Run| run.stdout.lines().last().unwrap_or_default().to_owned();
    let scenarios = [
        Scenario {
            name: "build",
            template: &base,
            cwd: context.path(),
            args: strings(&["build", "-j", "1", "-q", "-t", "app:1", "."]),
            result: &build_id,
        },
        Scenario {
            name: "pull",
            template: &empty,
            cwd,
            args: strings(&["pull", &pushed]),
            result: &pulled,
        },
        Scenario {
            name: "load",
            template: &empty,
            cwd,
            args: strings(&["load", "-i", archive.to_str().unwrap()]),
            result: &loaded,
        },
        Scenario {
            name: "image prune",
            template: &built,
            cwd,
            args: strings(&["image", "prune", "-a", "-f"]),
            result: &what_is_left,
        },
        Scenario {
            name: "cache prune",
            template: &built,
            cwd,
            args: strings(&["cache", "prune", "-a", "-f"]),
            result: &what_is_left,
        },
        Scenario {
            name: "push",
            template: &base,
            cwd,
            args: strings(&[
                "push",
                "base",
                &format!("{}/fault/again:1", registry.host()),
            ]),
            result: &push_digest,
        },
    ];
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let (points, failed) = scenario.run();
        summary.push(format!(
            "{}: {points} points, {} failed",
            scenario.name,
            failed.len()
        ));
        failures.extend(failed);
    }
    eprintln!("{} in {:?}", summary.join("; "), started.elapsed());
    assert!(
        failures.is_empty(),
        "{} crashes went wrong ({}):\n\n{}",
        failures.len(),
        summary.join("; "),
        failures.join("\n\n")
    );
}
