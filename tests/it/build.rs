//! `strata build` running steps: FROM an image in the store, RUN in the
//! sandbox, WORKDIR, and the config instructions.

use std::collections::BTreeMap;

use crate::support::{Context, StoreDir, build_json, busybox_rootfs, strata_in};

/// A store holding the busybox base as `base`, with a user `app` (1000)
/// in group `staff` (50).
pub(crate) fn store_with_base() -> StoreDir {
    let store = StoreDir::new();
    let rootfs = store.dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let passwd = rootfs.join("etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str("app:x:1000:1000:app:/home/app:/bin/sh\n");
    std::fs::write(&passwd, text).unwrap();
    let group = rootfs.join("etc/group");
    let mut text = std::fs::read_to_string(&group).unwrap();
    text.push_str("app:x:1000:\nstaff:x:50:app\n");
    std::fs::write(&group, text).unwrap();
    store.ok(
        store.dir.path(),
        &["import", rootfs.to_str().unwrap(), "base"],
    );
    store
}

fn config_of(store: &StoreDir, image: &str) -> serde_json::Value {
    let text = store.ok(store.dir.path(), &["inspect", "-f", "{{json .}}", image]);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value
}

/// Files of the image, by path, as `strata run` sees them.
pub(crate) fn read_in(store: &StoreDir, image: &str, script: &str) -> String {
    store.ok(
        store.dir.path(),
        &["run", "--entrypoint", "", image, "sh", "-c", script],
    )
}

#[test]
fn a_build_runs_its_steps_and_records_config_and_history() {
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\n\
         ENV GREETING=hello PATH=/usr/bin:/bin\n\
         RUN echo \"$GREETING\" > /greeting && id -u > /root-uid\n\
         WORKDIR /srv/app\n\
         USER app\n\
         RUN id > /tmp/as-app && pwd > /tmp/pwd\n\
         USER 4242:50\n\
         RUN id > /tmp/as-number\n\
         USER root\n\
         RUN cat /tmp/as-app /tmp/as-number /tmp/pwd > /report && rm /tmp/as-app\n\
         LABEL stage=final\n\
         EXPOSE 8080 53/udp\n\
         VOLUME /data\n\
         STOPSIGNAL SIGINT\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
         CMD [\"cat /greeting\"]\n",
    );
    let iidfile = context.path().join("iid");
    let run = store.strata(
        context.path(),
        &[
            "build",
            "-t",
            "app:1",
            "--label",
            "built-by=test",
            "--iidfile",
            iidfile.to_str().unwrap(),
            ".",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.stdout.trim();
    assert!(id.starts_with("sha256:"), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&iidfile).unwrap(), id);
    assert!(
        run.stderr.contains("#2 [2/6] RUN echo \"$GREETING\""),
        "{}",
        run.stderr
    );
    // What the steps did.
    assert_eq!(
        read_in(
            &store,
            "app:1",
            "cat /greeting /root-uid /report; test -e /tmp/as-app || echo gone; stat -c '%U %a' /srv/app"
        ),
        "hello\n0\n\
         uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n\
         uid=4242 gid=50(staff) groups=50(staff)\n\
         /srv/app\n\
         gone\n\
         root 755\n"
    );
    // The image's own command, as configured.
    assert_eq!(store.ok(store.dir.path(), &["run", "app:1"]), "hello\n");
    let inspect = config_of(&store, "app:1");
    let config = &inspect["Config"];
    assert_eq!(
        config["Env"],
        serde_json::json!(["PATH=/usr/bin:/bin", "GREETING=hello"])
    );
    assert_eq!(config["User"], "root");
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(
        config["Labels"],
        serde_json::json!({"stage": "final", "built-by": "test"})
    );
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["StopSignal"], "SIGINT");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(config["Cmd"], serde_json::json!(["cat /greeting"]));
    let layers = inspect["RootFS"]["Layers"].as_array().unwrap().len();
    // The base, 4 RUNs and WORKDIR's directory.
    assert_eq!(layers, 6, "{inspect}");
}

#[test]
fn history_marks_steps_without_layers() {
    let store = store_with_base();
    let context =
        Context::new().dockerfile("FROM base\nENV A=1\nRUN true\nRUN touch /x\nWORKDIR /\n");
    let root = store.root();
    let run = store.strata(context.path(), &["build", "-t", "h", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let blob = {
        let store = strata_solver::store::Store::open(&root).unwrap();
        let image = strata_solver::image::resolve(&store, "h").unwrap();
        let config = strata_solver::image::read_config(&store, &image).unwrap();
        // Every RUN has a layer, `RUN true` an empty one, as in BuildKit
        // (buildkit::image, testExportedHistory).
        assert_eq!(image.layers.len(), 3, "the base and both RUNs");
        config
    };
    let history: Vec<(String, bool)> = blob
        .history()
        .clone()
        .unwrap()
        .iter()
        .skip(1)
        .map(|entry| {
            (
                entry.created_by().clone().unwrap_or_default(),
                entry.empty_layer().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            ("ENV A=1".to_owned(), true),
            ("RUN /bin/sh -c true # buildkit".to_owned(), false),
            ("RUN /bin/sh -c touch /x # buildkit".to_owned(), false),
            ("WORKDIR /".to_owned(), true),
        ]
    );
}

#[test]
fn a_failing_run_names_its_dockerfile_line_exit_code_and_output() {
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\nRUN echo one && \\\n    echo two >&2 && \\\n    exit 3\nRUN echo never\n",
    );
    let root = store.root();
    let run = store.strata(context.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: process \"/bin/sh -c echo one &&     echo two >&2 &&     exit 3\" did not complete successfully: exit code: 3
 --> Dockerfile:2:1
  |
1 | FROM base
2 | RUN echo one && \\
  | ^^^^^^^^^^^^^^^^^
3 |     echo two >&2 && \\
  | ^^^^^^^^^^^^^^^^^^^^^
4 |     exit 3
  | ^^^^^^^^^^

last 2 lines of its output:
  > one
  > two
"
    );
    assert!(run.stdout.is_empty());
    // Nothing of the failed step is left behind.
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn what_cannot_run_yet_is_refused_before_anything_runs() {
    let store = store_with_base();
    let cases: BTreeMap<&str, &str> = [
        (
            "FROM base\nRUN --security=insecure true\n",
            "error: RUN --security=insecure without --allow security.insecure is not supported by this version of strata yet\n --> Dockerfile:2:1\n  |\n1 | FROM base\n2 | RUN --security=insecure true\n  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
        ),
        (
            "FROM nothere:1\nRUN true\n",
            "error: image `nothere:1` is not in the store: pull it (`strata pull`, or build with --pull=missing), import it or load it\n --> Dockerfile:1:1\n  |\n1 | FROM nothere:1\n  | ^^^^^^^^^^^^^^\n",
        ),
    ]
    .into_iter()
    .collect();
    for (dockerfile, expected) in cases {
        let context = Context::new().dockerfile(dockerfile).file("a", "a");
        let run = store.strata(context.path(), &["build", "-q", "--pull=never", "."]);
        assert_eq!(run.code, 1, "{dockerfile}");
        assert_eq!(run.stderr, expected, "{dockerfile}");
    }
}

#[test]
fn each_step_stacks_on_the_last_with_either_snapshotter() {
    for snapshotter in ["overlay", "copy"] {
        let store = store_with_base();
        let context = Context::new().dockerfile(
            "FROM base\n\
             RUN mkdir -p /d/sub && touch /d/a /d/b /d/sub/c && echo 1 > /n\n\
             RUN rm /d/a && rm -r /d/sub && echo 2 >> /n\n\
             RUN ls -A /d > /list && mkdir /d/sub && echo 3 >> /n\n",
        );
        let root = store.root();
        let run = strata_in(
            context.path(),
            &[
                "--root",
                root.to_str().unwrap(),
                "build",
                "-q",
                "-t",
                "stacked",
                ".",
            ],
            None,
            &[("STRATA_SNAPSHOTTER", snapshotter)],
        );
        assert_eq!(run.code, 0, "{snapshotter}: {}", run.stderr);
        assert_eq!(
            read_in(&store, "stacked", "cat /list /n; ls -A /d/sub | wc -l"),
            "b\n1\n2\n3\n0\n",
            "{snapshotter}"
        );
    }
}

/// `stat` of each path: type, mode, owner, size (or link target).
const STAT: &str = "for p in \"$@\"; do if [ -L \"$p\" ]; then echo \"$p link $(readlink \"$p\")\"; \
    elif [ -e \"$p\" ]; then stat -c '%n %F %a %u:%g %s' \"$p\"; else echo \"$p missing\"; fi; done";

fn stat_in(store: &StoreDir, image: &str, paths: &[&str]) -> String {
    let mut args = vec!["run", "--entrypoint", "", image, "sh", "-c", STAT, "stat"];
    args.extend_from_slice(paths);
    store.ok(store.dir.path(), &args)
}

fn build_ok(store: &StoreDir, context: &Context, tag: &str) {
    let run = store.strata(context.path(), &["build", "-q", "-t", tag, "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn copy_follows_dockers_rules() {
    use std::os::unix::fs::PermissionsExt;
    let store = store_with_base();
    let context = Context::new()
        .file("one.txt", "one")
        .file("two.txt", "two")
        .file("dir/a", "a")
        .file("dir/sub/b", "b")
        .file("dir/skip.log", "log")
        .file("secret/key", "k")
        .file("secret/public", "p")
        .file("tool.sh", "#!/bin/sh\n")
        .file(".dockerignore", "secret\n!secret/public\n*.md\n")
        .file("README.md", "ignored")
        .dockerfile(
            "FROM base AS stage\n\
             RUN mkdir /made && echo x > /made/file && chown -R 1000:50 /made\n\
             FROM base\n\
             COPY one.txt /renamed\n\
             COPY one.txt two.txt /multi/\n\
             COPY *.txt /glob/\n\
             COPY dir /contents\n\
             COPY --exclude=*.log dir/ /excluded/\n\
             COPY --chown=app:staff --chmod=640 one.txt /owned/\n\
             COPY --chmod=u+x,go=r tool.sh /tool\n\
             COPY secret/ /secret/\n\
             COPY --from=stage /made /from-stage/\n\
             COPY --parents dir/sub/b /parents/\n\
             WORKDIR /work\n\
             COPY one.txt relative\n\
             COPY <<EOF /inline.txt\n\
             hello $HOSTNAME\n\
             EOF\n",
        );
    std::fs::set_permissions(
        context.path().join("tool.sh"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    build_ok(&store, &context, "copied");
    let out = stat_in(
        &store,
        "copied",
        &[
            "/renamed",
            "/multi/one.txt",
            "/multi/two.txt",
            "/glob/one.txt",
            "/glob/two.txt",
            "/contents/a",
            "/contents/sub/b",
            "/contents/skip.log",
            "/excluded/a",
            "/excluded/skip.log",
            "/owned",
            "/owned/one.txt",
            "/tool",
            "/secret/key",
            "/secret/public",
            "/README.md",
            "/from-stage/file",
            "/parents/dir/sub/b",
            "/work/relative",
            "/inline.txt",
        ],
    );
    // `/owned`, which the COPY makes, gets the octal `--chmod`'s mode, as
    // BuildKit gives it (see buildkit::copy, testCopyChmod).
    assert_eq!(
        out,
        "/renamed regular file 644 0:0 3
/multi/one.txt regular file 644 0:0 3
/multi/two.txt regular file 644 0:0 3
/glob/one.txt regular file 644 0:0 3
/glob/two.txt regular file 644 0:0 3
/contents/a regular file 644 0:0 1
/contents/sub/b regular file 644 0:0 1
/contents/skip.log regular file 644 0:0 3
/excluded/a regular file 644 0:0 1
/excluded/skip.log missing
/owned directory 640 1000:50 4096
/owned/one.txt regular file 640 1000:50 3
/tool regular file 744 0:0 10
/secret/key missing
/secret/public regular file 644 0:0 1
/README.md missing
/from-stage/file regular file 644 1000:50 2
/parents/dir/sub/b regular file 644 0:0 1
/work/relative regular file 644 0:0 3
/inline.txt regular file 644 0:0 7
"
    );
    assert_eq!(read_in(&store, "copied", "cat /inline.txt"), "hello \n");
}

#[test]
fn copy_keeps_mtimes_so_the_same_context_gives_the_same_image() {
    let store = store_with_base();
    let context = Context::new()
        .file("data/f", "content")
        .dockerfile("FROM base\nCOPY data /data\n");
    let root = store.root();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let run = strata_in(
            context.path(),
            &["--root", root.to_str().unwrap(), "build", "-q", "."],
            None,
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        ids.push(run.stdout);
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn copy_refuses_sources_outside_the_context() {
    let store = store_with_base();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "host secret").unwrap();
    for (dockerfile, link, expected) in [
        (
            "FROM base\nCOPY ../secret /x\n",
            None,
            "error: COPY failed: `../secret` is outside the build context\n --> Dockerfile:2:1\n",
        ),
        (
            "FROM base\nCOPY escape /x\n",
            Some(outside.path().join("secret")),
            "error: COPY failed: `escape` leaves the build context: `escape` is a symlink to `",
        ),
        (
            "FROM base\nCOPY up/secret /x\n",
            Some(std::path::PathBuf::from("..")),
            "error: COPY failed: `up/secret` leaves the build context: `up` is a symlink to `..`\n",
        ),
        (
            "FROM base\nCOPY missing /x\n",
            None,
            "error: COPY failed: `missing`: not found in the build context (or excluded by .dockerignore)\n",
        ),
    ] {
        let context = Context::new().dockerfile(dockerfile);
        if let Some(target) = link {
            let name = if dockerfile.contains("up/") {
                "up"
            } else {
                "escape"
            };
            std::os::unix::fs::symlink(target, context.path().join(name)).unwrap();
        }
        let run = store.strata(context.path(), &["build", "-q", "--pull=never", "."]);
        assert_eq!(run.code, 1, "{dockerfile}");
        assert!(
            run.stderr.starts_with(expected),
            "{dockerfile}\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("host secret"));
    }
}

#[test]
fn docker_config_extensions_are_kept_and_a_relative_root_works() {
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD [\"true\"]\n\
         ONBUILD RUN echo child\n\
         MAINTAINER someone\n\
         ENTRYPOINT [\"/bin/echo\"]\n",
    );
    // A store given as a relative path, from the context directory.
    let relative = pathdiff(&store.root(), context.path());
    let run = strata_in(
        context.path(),
        &["--root", &relative, "build", "-q", "-t", "ext", "."],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // (Only the Dockerfile's own warning: no fallback from overlayfs.)
    assert!(!run.stderr.contains("overlayfs"), "{}", run.stderr);
    assert!(
        run.stderr.contains("MAINTAINER instruction is deprecated"),
        "{}",
        run.stderr
    );
    let store_handle = strata_solver::store::Store::open(store.root()).unwrap();
    let image = strata_solver::image::resolve(&store_handle, "ext").unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&store_handle.read_blob(&image.config).unwrap()).unwrap();
    assert_eq!(
        config["config"]["Shell"],
        serde_json::json!(["/bin/sh", "-ec"])
    );
    assert_eq!(
        config["config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Interval": 30_000_000_000u64, "Timeout": 3_000_000_000u64, "Retries": 2})
    );
    assert_eq!(
        config["config"]["OnBuild"],
        serde_json::json!(["RUN echo child"])
    );
    assert_eq!(config["author"], "someone");
}

/// `target` relative to `base` (both absolute).
fn pathdiff(target: &std::path::Path, base: &std::path::Path) -> String {
    let target: Vec<_> = target.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = target.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = base[common..].iter().map(|_| "..".to_owned()).collect();
    parts.extend(
        target[common..]
            .iter()
            .map(|part| part.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// Build `context` and return (image ID, steps cached, steps run).
fn build_counting(
    store: &StoreDir,
    context: &Context,
    extra: &[&str],
) -> (String, Vec<String>, Vec<String>) {
    let root = store.root();
    let mut args = vec!["--root", root.to_str().unwrap(), "build"];
    args.extend_from_slice(extra);
    args.push(".");
    let run = strata_in(context.path(), &args, None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let step = |line: &str| {
        line.split_once("] ")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default()
    };
    let cached = run
        .stderr
        .lines()
        .filter(|line| line.contains(" CACHED "))
        .map(step)
        .collect();
    let mut ran = Vec::new();
    let lines: Vec<&str> = run.stderr.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        // "#N [stage i/n] STEP" followed, later, by "#N DONE".
        if let Some((number, rest)) = line.split_once(" [")
            && !rest.starts_with("internal]")
            && lines[index + 1..]
                .iter()
                .any(|later| later.starts_with(&format!("{number} DONE")))
        {
            ran.push(step(line));
        }
    }
    (run.stdout.trim().to_owned(), cached, ran)
}

#[test]
fn the_cache_hits_what_did_not_change_and_misses_exactly_what_did() {
    let store = store_with_base();
    let context = Context::new()
        .file("app/main.txt", "main v1")
        .file("docs/guide.txt", "guide")
        .dockerfile(
            "FROM base AS docs\n\
             COPY docs /docs\n\
             RUN wc -c /docs/guide.txt > /docs/size\n\
             FROM base\n\
             ARG FLAVOR=plain\n\
             RUN echo \"$FLAVOR\" > /flavor\n\
             COPY app /app\n\
             RUN cat /app/main.txt > /app/copy\n\
             COPY --from=docs /docs/size /size\n",
        );
    let (first, cached, ran) = build_counting(&store, &context, &[]);
    assert!(cached.is_empty(), "{cached:?}");
    assert_eq!(ran.len(), 6, "{ran:?}");
    // The same again: nothing runs, and the image is the same.
    let (second, cached, ran) = build_counting(&store, &context, &[]);
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(cached.len(), 6);
    assert_eq!(first, second);
    // A new mtime is not a change.
    let main = context.path().join("app/main.txt");
    let file = std::fs::File::options().write(true).open(&main).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let (third, _, ran) = build_counting(&store, &context, &[]);
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(third, first);
    // New content misses the COPY that reads it and what follows it, and
    // nothing else.
    std::fs::write(&main, "main v2").unwrap();
    let (fourth, cached, ran) = build_counting(&store, &context, &[]);
    assert_eq!(
        ran,
        [
            "COPY app /app",
            "RUN cat /app/main.txt > /app/copy",
            "COPY --from=docs /docs/size /size"
        ]
    );
    assert_eq!(cached.len(), 3, "{cached:?}");
    assert_ne!(fourth, first);
    // A build argument that reaches a RUN is part of its key.
    let (_, _, ran) = build_counting(&store, &context, &["--build-arg", "FLAVOR=fancy"]);
    assert_eq!(ran.len(), 4, "{ran:?}");
    assert_eq!(ran[0], "RUN echo \"$FLAVOR\" > /flavor");
    // --no-cache runs everything; --no-cache-filter one stage.
    let (_, cached, ran) = build_counting(&store, &context, &["--no-cache"]);
    assert!(cached.is_empty());
    assert_eq!(ran.len(), 6);
    // What reads the stage runs again only if the stage made other content
    // this time: a step is keyed by what its inputs made. Here the files
    // are the same and only their times may differ (a new second).
    let (_, cached, ran) = build_counting(&store, &context, &["--no-cache-filter", "docs"]);
    assert_eq!(
        ran[..2],
        ["COPY docs /docs", "RUN wc -c /docs/guide.txt > /docs/size"]
    );
    assert!(
        ran.len() == 2 || (ran.len() == 3 && ran[2] == "COPY --from=docs /docs/size /size"),
        "{ran:?}"
    );
    assert_eq!(cached.len() + ran.len(), 6);
}

#[test]
fn image_prune_keeps_the_build_cache() {
    let store = store_with_base();
    let context = Context::new().dockerfile("FROM base\nRUN echo cached > /file\n");
    let (_, _, ran) = build_counting(&store, &context, &[]);
    assert_eq!(ran.len(), 1);
    // The image is untagged, then pruned: its layer stays for the cache.
    store.ok(store.dir.path(), &["image", "prune", "-f"]);
    let (_, cached, ran) = build_counting(&store, &context, &[]);
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(cached.len(), 1);
    let check = store.ok(store.dir.path(), &["system", "check"]);
    assert!(!check.contains("error"), "{check}");
}

#[test]
fn independent_stages_run_side_by_side_and_a_failure_stops_its_siblings() {
    let store = store_with_base();
    let root = store.root();
    let context = Context::new().dockerfile(
        "FROM base AS a\nRUN sleep 1 && echo a > /a\n\
         FROM base AS b\nRUN sleep 1 && echo b > /b\n\
         FROM base\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    );
    let run = store.strata(
        context.path(),
        &["build", "-j", "2", "--progress", "json", "."],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let position = |event: &str, needle: &str| {
        events
            .iter()
            .position(|value| {
                value["event"] == event
                    && value["description"]
                        .as_str()
                        .is_some_and(|text| text.contains(needle))
            })
            .unwrap_or_else(|| panic!("no {event} event for {needle}: {}", run.stderr))
    };
    // Both sleeps started before either finished: they ran at once.
    let first_finish = position("finished", "echo a").min(position("finished", "echo b"));
    assert!(
        position("started", "echo a") < first_finish,
        "{}",
        run.stderr
    );
    assert!(
        position("started", "echo b") < first_finish,
        "{}",
        run.stderr
    );
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["executed"], 4);
    assert_eq!(done["image"].as_str().unwrap(), run.stdout.trim());
    // A failing step stops the one running beside it, at once.
    let context = Context::new().dockerfile(
        "FROM base AS slow\nRUN sleep 7791\n\
         FROM base AS broken\nRUN sleep 0.2; exit 9\n\
         FROM base\nCOPY --from=slow /etc/passwd /a\nCOPY --from=broken /etc/passwd /b\n",
    );
    let started = std::time::Instant::now();
    let run = store.strata(context.path(), &["build", "-q", "-j", "2", "."]);
    assert_eq!(run.code, 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        run.stderr.starts_with("error: process \"/bin/sh -c sleep 0.2; exit 9\" did not complete successfully: exit code: 9"),
        "{}",
        run.stderr
    );
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    let sleeping = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| cmdline == b"sleep\x007791\x00")
    });
    assert!(!sleeping, "the sibling step is still running");
}

#[test]
fn outputs_go_where_asked_and_validate() {
    use crate::support::{require, run_ok};
    let store = store_with_base();
    let root = store.root();
    let context = Context::new()
        .dockerfile("FROM base\nRUN mkdir /out && echo made > /out/file && rm /etc/group\n");
    let out = tempfile::tempdir().unwrap();
    let path = |name: &str| out.path().join(name).display().to_string();
    let outputs = [
        format!("type=oci,dest={}", path("oci.tar")),
        format!("type=oci,dest={},tar=false", path("layout")),
        format!("type=docker,dest={}", path("docker.tar")),
        format!("type=local,dest={}", path("rootfs")),
        format!("type=tar,dest={}", path("rootfs.tar")),
    ];
    let mut args = vec![
        "--root",
        root.to_str().unwrap(),
        "build",
        "-q",
        "-t",
        "out:1",
    ];
    for output in &outputs {
        args.extend_from_slice(&["--output", output]);
    }
    args.push(".");
    let run = strata_in(context.path(), &args, None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The filesystem, with the deletion applied.
    let rootfs = out.path().join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("out/file")).unwrap(),
        "made\n"
    );
    assert!(!rootfs.join("etc/group").exists());
    assert!(rootfs.join("bin/busybox").is_file());
    let listing = run_ok(
        std::process::Command::new(require("tar"))
            .arg("-tf")
            .arg(out.path().join("rootfs.tar")),
    );
    assert!(listing.lines().any(|line| line == "out/file"), "{listing}");
    assert!(
        !listing.lines().any(|line| line == "etc/group"),
        "{listing}"
    );
    // Independent readers accept the archives.
    run_ok(
        std::process::Command::new(require("oci-image-tool"))
            .args(["validate", "--type", "image", "--ref", "name=1"])
            .arg(out.path().join("layout")),
    );
    let copied = out.path().join("copied");
    run_ok(
        std::process::Command::new(require("skopeo"))
            .arg("copy")
            .arg(format!("docker-archive:{}", path("docker.tar")))
            .arg(format!("dir:{}", copied.display())),
    );
    run_ok(
        std::process::Command::new(require("skopeo"))
            .arg("copy")
            .arg(format!("oci-archive:{}:1", path("oci.tar")))
            .arg(format!("dir:{}", out.path().join("copied-oci").display())),
    );
    // An archive to standard output, and nothing else there.
    let run = store.strata(
        context.path(),
        &["build", "-q", "--output", "type=tar,dest=-", "."],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("out/file"), "the tar is on stdout");
    assert!(!run.stdout.contains("sha256:"));
}

#[test]
fn context_from_stdin_metadata_file_and_platform() {
    use crate::support::require;
    let store = store_with_base();
    let root = store.root();
    let context = Context::new()
        .file("data.txt", "from a tar")
        .dockerfile("FROM base\nCOPY data.txt /data.txt\n");
    // The context as a tar archive on standard input.
    let tar = std::process::Command::new(require("tar"))
        .arg("-C")
        .arg(context.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let metadata = context.path().join("metadata.json");
    let run = strata_in(
        store.dir.path(),
        &[
            "--root",
            root.to_str().unwrap(),
            "build",
            "-q",
            "-t",
            "stdin:1",
            "--metadata-file",
            metadata.to_str().unwrap(),
            "-",
        ],
        Some(&tar),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read_in(&store, "stdin:1", "cat /data.txt"), "from a tar");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    let inspect = config_of(&store, "stdin:1");
    assert_eq!(written["containerimage.config.digest"], inspect["Id"]);
    assert_eq!(written["image.name"], "docker.io/library/stdin:1");
    assert!(
        written["containerimage.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // A Dockerfile alone on standard input: an empty context.
    let run = strata_in(
        store.dir.path(),
        &["--root", root.to_str().unwrap(), "build", "-q", "-"],
        Some(b"FROM base\nRUN echo ok > /ok\n"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Nothing of either is left in the store.
    assert!(
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    // A RUN on another platform is refused (a COPY is not: BuildKit's
    // testPlatformArgsExplicit, in buildkit/platform.rs).
    let other = if cfg!(target_arch = "aarch64") {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let context = Context::new().dockerfile("FROM base\nCOPY . /\nRUN true\n");
    let run = store.strata(context.path(), &["build", "--platform", other, "."]);
    assert_eq!(run.code, 1);
    // (After BuildKit's InvalidBaseImagePlatform warning: `base` is the
    // host's platform.)
    assert!(
        run.stderr.starts_with(&format!(
            "warning: InvalidBaseImagePlatform: Base image base was pulled with platform \"{}\", expected \"{other}\" for current build\n",
            if other == "linux/arm64" { "linux/amd64" } else { "linux/arm64" }
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("\nerror: building for {other} is not supported")),
        "{}",
        run.stderr
    );
}

#[test]
fn add_extracts_local_archives_of_every_kind() {
    use crate::support::{require, run_ok};
    let store = store_with_base();
    let context = Context::new()
        .file("tree/dir/file.txt", "inside")
        .file("plain.gz.txt", "not an archive");
    let tar = require("tar");
    let mut dockerfile = String::from("FROM base\n");
    for (name, flag) in [
        ("plain.tar", None),
        ("gz.tar.gz", Some("--gzip")),
        ("bz.tar.bz2", Some("--bzip2")),
        ("xz.tar.xz", Some("--xz")),
        ("zst.tar.zst", Some("--zstd")),
    ] {
        let mut command = std::process::Command::new(&tar);
        command
            .arg("-C")
            .arg(context.path().join("tree"))
            .arg("-cf")
            .arg(context.path().join(name));
        if let Some(flag) = flag {
            command.arg(flag);
        }
        run_ok(command.arg("."));
        dockerfile.push_str(&format!("ADD {name} /x/{name}/\n"));
    }
    // Not a tar: copied as it is; and --unpack=false keeps an archive whole.
    dockerfile.push_str("ADD plain.gz.txt /x/\nADD --unpack=false gz.tar.gz /x/kept.tar.gz\n");
    let context = context.dockerfile(&dockerfile);
    build_ok(&store, &context, "added");
    assert_eq!(
        read_in(
            &store,
            "added",
            "for d in plain.tar gz.tar.gz bz.tar.bz2 xz.tar.xz zst.tar.zst; do cat /x/$d/dir/file.txt; echo; done; \
             cat /x/plain.gz.txt; echo; test -f /x/kept.tar.gz && echo kept"
        ),
        "inside\ninside\ninside\ninside\ninside\nnot an archive\nkept\n"
    );
}

/// A tiny HTTP server on 127.0.0.1 for ADD: `/file.txt` serves the shared
/// body with a Last-Modified date; anything else is a 404.
fn http_server(body: std::sync::Arc<std::sync::Mutex<String>>) -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut stream = stream;
            let response = if request.starts_with("GET /file.txt ") {
                let body = body.lock().unwrap().clone();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn add_fetches_urls_checks_checksums_and_caches_by_content() {
    use sha2::Digest as _;
    let store = store_with_base();
    let root = store.root();
    let body = std::sync::Arc::new(std::sync::Mutex::new("from the web\n".to_owned()));
    let port = http_server(body.clone());
    let url = format!("http://127.0.0.1:{port}/file.txt");
    let digest = format!("{:x}", sha2::Sha256::digest(b"from the web\n"));
    let context = Context::new().dockerfile(&format!(
        "FROM base\nADD {url} /web/\nADD --checksum=sha256:{digest} {url} /checked\n"
    ));
    let (_, cached, ran) = build_counting(&store, &context, &["-t", "web"]);
    assert!(cached.is_empty());
    assert_eq!(ran.len(), 2);
    assert_eq!(
        read_in(
            &store,
            "web",
            "cat /web/file.txt; stat -c '%a %u:%g %Y' /web/file.txt /checked"
        ),
        "from the web\n600 0:0 784111777\n600 0:0 784111777\n"
    );
    // Unchanged content: cached. Changed: fetched again, and the checksum
    // no longer matches.
    let (_, cached, ran) = build_counting(&store, &context, &[]);
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(cached.len(), 2);
    *body.lock().unwrap() = "changed\n".to_owned();
    let run = store.strata(context.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1);
    let changed = format!("{:x}", sha2::Sha256::digest(b"changed\n"));
    assert!(
        run.stderr.starts_with(&format!(
            "error: ADD failed: the content of {url} does not match --checksum: expected sha256:{digest}, got sha256:{changed}"
        )),
        "{}",
        run.stderr
    );
    let missing = Context::new().dockerfile(&format!(
        "FROM base\nADD http://127.0.0.1:{port}/nothing /x\n"
    ));
    let run = store.strata(missing.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: ADD failed: failed to fetch http://127.0.0.1:{port}/nothing: http status: 404"
        )),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn target_dockerfile_ignore_network_and_onbuild() {
    let store = store_with_base();
    // --target builds that stage only (and what it needs).
    let context = Context::new()
        .file("keep.txt", "kept")
        .file("drop.txt", "dropped")
        .file("build/app.Dockerfile", "FROM base AS first\nRUN echo first > /stage\nFROM base AS second\nCOPY . /ctx\nRUN echo second > /stage\n")
        .file("build/app.Dockerfile.dockerignore", "drop.txt\nbuild\n")
        .file(".dockerignore", "keep.txt\n");
    let (_, _, ran) = build_counting(
        &store,
        &context,
        &[
            "-f",
            "build/app.Dockerfile",
            "--target",
            "first",
            "-t",
            "first",
        ],
    );
    assert_eq!(ran, ["RUN echo first > /stage"]);
    assert_eq!(read_in(&store, "first", "cat /stage"), "first\n");
    // The Dockerfile's own .dockerignore wins over the context's.
    build_counting(
        &store,
        &context,
        &["-f", "build/app.Dockerfile", "-t", "second"],
    );
    assert_eq!(
        read_in(&store, "second", "ls /ctx; cat /stage"),
        "keep.txt\nsecond\n"
    );
    // --network none for the build; RUN --network=host for one step.
    let context = Context::new().dockerfile(
        "FROM base\nRUN ip -o link | wc -l > /none\nRUN --network=host ip -o link | wc -l > /host\n",
    );
    build_counting(&store, &context, &["--network", "none", "-t", "net"]);
    let host_links = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(
        read_in(&store, "net", "cat /none /host"),
        format!("1\n{host_links}\n")
    );
    // ONBUILD triggers of the base run at the start of a stage built on it.
    let parent = Context::new().dockerfile("FROM base\nONBUILD RUN echo triggered > /onbuild\n");
    build_counting(&store, &parent, &["-t", "parent"]);
    let child = Context::new().dockerfile("FROM parent\nRUN cat /onbuild > /seen\n");
    build_counting(&store, &child, &["-t", "child"]);
    assert_eq!(read_in(&store, "child", "cat /seen"), "triggered\n");
}

#[test]
fn a_terminal_gets_live_progress() {
    use crate::support::require;
    let store = store_with_base();
    let context = Context::new().dockerfile("FROM base\nRUN echo working; sleep 0.3\n");
    let command = format!(
        "'{}' --root '{}' build -t live '{}'",
        env!("CARGO_BIN_EXE_strata"),
        store.root().display(),
        context.path().display()
    );
    let mut child = std::process::Command::new(require("script"))
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(output.status.success());
    let screen = String::from_utf8_lossy(&output.stdout);
    // A live line while it ran (spinner, step, elapsed), then the step done,
    // the summary and the ID.
    assert!(
        screen.contains("#2 [2/2] RUN echo working; sleep 0.3"),
        "{screen}"
    );
    assert!(screen.contains("#2 DONE "), "{screen}");
    assert!(
        screen.contains("1 steps: 0 cached, 1 executed in "),
        "{screen}"
    );
    assert!(
        screen.contains("\u{1b}[2K"),
        "live lines are redrawn: {screen}"
    );
    assert!(
        screen.trim_end().ends_with(
            &strata_solver::image::resolve(
                &strata_solver::store::Store::open(store.root()).unwrap(),
                "live"
            )
            .unwrap()
            .id
            .to_string()
        )
    );
}

fn done(events: &[serde_json::Value]) -> &serde_json::Value {
    events
        .last()
        .filter(|event| event["event"] == "done")
        .expect("a done event last")
}

#[test]
fn a_no_op_rebuild_runs_nothing_and_reads_no_file_again() {
    let store = store_with_base();
    let mut context = Context::new().dockerfile("FROM base\nCOPY . /ctx\nRUN ls /ctx > /listing\n");
    for index in 0..50 {
        context = context.file(&format!("src/file{index}.txt"), format!("content {index}"));
    }
    let first = build_json(&store, &context, &[], &[]);
    assert_eq!(done(&first)["executed"], 2);
    assert_eq!(
        done(&first)["files_hashed"],
        51,
        "the 50 files and the Dockerfile"
    );
    let second = build_json(&store, &context, &[], &[]);
    assert_eq!(done(&second)["executed"], 0);
    assert_eq!(done(&second)["cached"], 2);
    assert_eq!(
        done(&second)["files_hashed"],
        0,
        "known from the stat cache"
    );
    assert!(second.iter().all(|event| {
        event["event"] != "started"
            || event["description"]
                .as_str()
                .unwrap()
                .contains("load image")
    }));
    assert_eq!(done(&first)["image"], done(&second)["image"]);
    // One file changed: one file read.
    std::fs::write(context.path().join("src/file7.txt"), "new").unwrap();
    let third = build_json(&store, &context, &[], &[]);
    assert_eq!(done(&third)["files_hashed"], 1);
    assert_eq!(done(&third)["executed"], 2);
}

#[test]
fn source_date_epoch_makes_builds_reproducible_byte_for_byte() {
    use sha2::Digest as _;
    let store = store_with_base();
    let context = Context::new()
        .file("app.txt", "app")
        .dockerfile("FROM base\nCOPY app.txt /app.txt\nRUN echo built > /built-at && touch /new && mkdir -p /var/new\n");
    let out = tempfile::tempdir().unwrap();
    let mut images = Vec::new();
    let mut archives = Vec::new();
    for round in 0..2 {
        let archive = out.path().join(format!("image{round}.tar"));
        let output = format!("type=docker,dest={}", archive.display());
        let events = build_json(
            &store,
            &context,
            &["--no-cache", "-t", "repro:1", "--output", &output],
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        );
        assert_eq!(done(&events)["executed"], 2);
        images.push(done(&events)["image"].clone());
        archives.push(format!(
            "{:x}",
            sha2::Sha256::digest(std::fs::read(&archive).unwrap())
        ));
        // Let the clock move on between the rounds.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(images[0], images[1]);
    assert_eq!(archives[0], archives[1]);
}

#[test]
fn copy_link_from_images_and_heredocs_in_run() {
    let store = store_with_base();
    let context = Context::new().file("a.txt", "a").dockerfile(
        "FROM base\n\
         RUN mkdir -p /opt && mkdir -m 700 /opt/private\n\
         COPY --link a.txt /opt/private/a.txt\n\
         COPY --from=base /etc/passwd /from-image-passwd\n\
         RUN <<EOF\n\
         set -e\n\
         echo heredoc > /heredoc\n\
         EOF\n",
    );
    build_counting(&store, &context, &["-t", "linked"]);
    // --link made the layer on its own: the directory it names is its
    // own (0755), while without --link the existing one (0700) is kept.
    assert_eq!(
        read_in(
            &store,
            "linked",
            "stat -c '%a' /opt/private; cat /opt/private/a.txt; echo; head -1 /from-image-passwd; cat /heredoc"
        ),
        "755\na\nroot:x:0:0:root:/root:/bin/sh\nheredoc\n"
    );
    // A Dockerfile on standard input, with the context a directory.
    let root = store.root();
    let run = strata_in(
        context.path(),
        &[
            "--root",
            root.to_str().unwrap(),
            "build",
            "-q",
            "-f",
            "-",
            ".",
        ],
        Some(b"FROM base\nCOPY a.txt /stdin-dockerfile\n"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        read_in(&store, run.stdout.trim(), "cat /stdin-dockerfile"),
        "a"
    );
}

#[test]
fn a_killed_build_leaves_the_store_consistent_and_the_next_build_correct() {
    let store = store_with_base();
    let root = store.root();
    let context =
        Context::new().dockerfile("FROM base\nRUN echo partial > /partial && sleep 7801\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--root", root.to_str().unwrap(), "build", "-q", "."])
        .current_dir(context.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sleeping = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline == b"sleep\x007801\x00")
        })
    };
    let start = std::time::Instant::now();
    while !sleeping() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The sandbox goes with strata.
    let start = std::time::Instant::now();
    while sleeping() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the step outlived strata"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let check = store.ok(store.dir.path(), &["system", "check"]);
    assert!(!check.contains("error"), "{check}");
    // Nothing of the killed step is cached or visible.
    let context =
        Context::new().dockerfile("FROM base\nRUN test ! -e /partial && echo clean > /clean\n");
    let (_, cached, ran) = build_counting(&store, &context, &["-t", "after"]);
    assert!(cached.is_empty());
    assert_eq!(ran.len(), 1);
    assert_eq!(read_in(&store, "after", "cat /clean"), "clean\n");
    // prune takes what the killed run left in tmp/.
    store.ok(store.dir.path(), &["image", "prune", "-f"]);
    assert!(
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn copying_never_writes_through_a_symlink_it_copied() {
    let store = store_with_base();
    let outside = tempfile::tempdir().unwrap();
    let context = Context::new()
        .file("second/lib/pwned", "gotcha")
        .dockerfile("FROM base\nCOPY first/ second/ /dest/\n");
    std::fs::create_dir(context.path().join("first")).unwrap();
    std::os::unix::fs::symlink(outside.path(), context.path().join("first/lib")).unwrap();
    build_counting(&store, &context, &["-t", "nothrough"]);
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "a file was written outside the layer"
    );
    assert_eq!(
        read_in(
            &store,
            "nothrough",
            "test -d /dest/lib && ! test -L /dest/lib && cat /dest/lib/pwned"
        ),
        "gotcha"
    );
}

/// The causes of a build's misses, from its json events: step
/// description → cause (own causes only), and how many ran after another.
fn causes(events: &[serde_json::Value]) -> (BTreeMap<String, String>, usize) {
    let mut own = BTreeMap::new();
    let mut after = 0;
    for event in events.iter().filter(|event| event["event"] == "missed") {
        if event["caused_by"].is_null() {
            let step = event["description"].as_str().unwrap();
            let step = step.split_once("] ").map_or(step, |(_, text)| text);
            own.insert(step.to_owned(), event["cause"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(event["cause"], "an earlier step changed");
            after += 1;
        }
    }
    (own, after)
}

#[test]
fn every_miss_names_its_cause() {
    let store = store_with_base();
    let context = Context::new()
        .file("src/a.txt", "a")
        .file("src/b.txt", "b")
        .dockerfile("FROM base\nARG VERSION=1\nENV MODE=fast\nRUN echo $VERSION $MODE > /v\nCOPY src /src\nRUN cat /src/a.txt > /out\n");
    let check = |extra: &[&str], expected: &[(&str, &str)], after: usize| {
        // strata cache explain says the same first, running nothing.
        let predicted = explain_json(&store, &context, extra);
        let events = build_json(&store, &context, extra, &[]);
        assert_eq!(causes(&predicted), causes(&events), "explain {extra:?}");
        let cached = |events: &[serde_json::Value]| {
            events
                .iter()
                .filter(|event| event["event"] == "cached")
                .count()
        };
        assert_eq!(cached(&predicted), cached(&events), "explain {extra:?}");
        let (own, followers) = causes(&events);
        let expected: BTreeMap<String, String> = expected
            .iter()
            .map(|(step, cause)| (step.to_string(), cause.to_string()))
            .collect();
        assert_eq!(own, expected, "{extra:?}");
        assert_eq!(followers, after, "{extra:?}");
    };
    check(
        &[],
        &[
            (
                "RUN echo $VERSION $MODE > /v",
                "no previous build of this step",
            ),
            ("COPY src /src", "no previous build of this step"),
            (
                "RUN cat /src/a.txt > /out",
                "no previous build of this step",
            ),
        ],
        0,
    );
    // Nothing changed: nothing ran.
    check(&[], &[], 0);
    // A build argument: the RUNs it reaches, and what follows.
    check(
        &["--build-arg", "VERSION=2"],
        &[
            (
                "RUN echo $VERSION $MODE > /v",
                "build arg VERSION changed (1 → 2)",
            ),
            (
                "RUN cat /src/a.txt > /out",
                "build arg VERSION changed (1 → 2)",
            ),
        ],
        1,
    );
    // A file's content, then its mode, then a new file; an mtime alone
    // changes nothing.
    std::fs::write(context.path().join("src/a.txt"), "new").unwrap();
    check(
        &["--build-arg", "VERSION=2"],
        &[("COPY src /src", "file changed: src/a.txt")],
        1,
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        context.path().join("src/b.txt"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    check(
        &["--build-arg", "VERSION=2"],
        &[("COPY src /src", "file mode changed: src/b.txt (644 → 755)")],
        1,
    );
    std::fs::write(context.path().join("src/c.txt"), "c").unwrap();
    std::fs::write(context.path().join("src/d.txt"), "d").unwrap();
    std::fs::write(context.path().join("src/e.txt"), "e").unwrap();
    check(
        &["--build-arg", "VERSION=2"],
        &[(
            "COPY src /src",
            "3 files added: src/c.txt, src/d.txt, +1 more",
        )],
        1,
    );
    let file = std::fs::File::options()
        .write(true)
        .open(context.path().join("src/a.txt"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    drop(file);
    check(&["--build-arg", "VERSION=2"], &[], 0);
    std::fs::write(context.path().join(".dockerignore"), "src/e.txt\n").unwrap();
    check(
        &["--build-arg", "VERSION=2"],
        &[("COPY src /src", ".dockerignore now includes src/e.txt")],
        1,
    );
    // The instruction itself.
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM base\nARG VERSION=1\nENV MODE=fast\nRUN echo $VERSION $MODE > /v\nCOPY src /src\nRUN cat /src/b.txt > /out\n",
    )
    .unwrap();
    check(
        &["--build-arg", "VERSION=2"],
        &[("RUN cat /src/b.txt > /out", "instruction changed")],
        0,
    );
    // ENV.
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM base\nARG VERSION=1\nENV MODE=slow\nRUN echo $VERSION $MODE > /v\nCOPY src /src\nRUN cat /src/b.txt > /out\n",
    )
    .unwrap();
    check(
        &["--build-arg", "VERSION=2"],
        &[
            (
                "RUN echo $VERSION $MODE > /v",
                "ENV MODE changed (fast → slow)",
            ),
            (
                "RUN cat /src/b.txt > /out",
                "ENV MODE changed (fast → slow)",
            ),
        ],
        1,
    );
    // --no-cache.
    check(
        &["--build-arg", "VERSION=2", "--no-cache"],
        &[
            ("RUN echo $VERSION $MODE > /v", "--no-cache"),
            ("COPY src /src", "--no-cache"),
            ("RUN cat /src/b.txt > /out", "--no-cache"),
        ],
        0,
    );
    // A new base image: the cause of every miss after it.
    let rootfs = store.dir.path().join("rootfs");
    std::fs::write(rootfs.join("etc/extra"), "x").unwrap();
    store.ok(
        store.dir.path(),
        &["import", rootfs.to_str().unwrap(), "base"],
    );
    let events = build_json(&store, &context, &["--build-arg", "VERSION=2"], &[]);
    let (own, after) = causes(&events);
    let cause = own.get("load image base").expect("the base is named");
    assert!(cause.starts_with("base image changed (sha256:"), "{cause}");
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(after, 3);
}

#[test]
fn cache_explain_predicts_the_build_and_cache_commands_manage_records() {
    let store = store_with_base();
    let context = Context::new().file("src/a.txt", "a").dockerfile(
        "FROM base\nARG V=1\nRUN echo $V > /v\nCOPY src /src\nRUN cat /src/a.txt > /out\n",
    );
    let predict = |extra: &[&str]| cached_or_missed(explain_json(&store, &context, extra));
    let actual = |extra: &[&str]| cached_or_missed(build_json(&store, &context, extra, &[]));
    for (change, extra) in [
        (None, vec![]),
        (None, vec![]),
        (Some(("src/a.txt", "b")), vec![]),
        (None, vec!["--build-arg", "V=2"]),
        (Some(("src/new.txt", "n")), vec!["--build-arg", "V=2"]),
    ] {
        if let Some((path, content)) = change {
            std::fs::write(context.path().join(path), content).unwrap();
        }
        let predicted = predict(&extra);
        assert_eq!(predicted.len(), 3, "{predicted:?}");
        assert_eq!(predicted, actual(&extra), "{change:?} {extra:?}");
    }
    // explain ran and recorded nothing: the last build's records are all.
    let listing = store.ok(store.dir.path(), &["cache", "ls"]);
    assert!(
        listing.starts_with(
            "KEY           SIZE       CREATED               LAST USED             HITS  STEP\n"
        ),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|line| line.contains("RUN cat /src/a.txt > /out")),
        "{listing}"
    );
    // Hits are counted.
    actual(&["--build-arg", "V=2"]);
    let listing = store.ok(store.dir.path(), &["cache", "ls"]);
    assert!(
        listing.lines().any(|line| line.ends_with("COPY src /src")
            && !line.contains(" never ")
            && line.contains(" 1     [")),
        "{listing}"
    );
    // prune -a empties the cache: the next build runs everything.
    let pruned = store.ok(store.dir.path(), &["cache", "prune", "-a"]);
    assert!(pruned.starts_with("Deleted "), "{pruned}");
    assert_eq!(
        store.ok(store.dir.path(), &["cache", "ls"]).lines().count(),
        1
    );
    let after = actual(&["--build-arg", "V=2"]);
    assert!(after.values().all(|cached| !cached), "{after:?}");
    // A bad filter is refused.
    let run = store.strata(
        store.dir.path(),
        &["cache", "prune", "--filter", "until=soon"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: invalid duration `soon`: use numbers with s, m, h or d, e.g. 24h or 1h30m\n"
    );
}

/// A build arg's value is reported as it is, spaces and all: the report
/// reads the step's build args, not its history text (`RUN |1 K=V ...`,
/// which a value with a space makes ambiguous). Issue 14.
#[test]
fn a_build_arg_with_spaces_is_reported_exactly() {
    let store = store_with_base();
    let context = Context::new()
        .dockerfile("FROM base\nARG GREETING\nARG N=1\nRUN echo \"$GREETING\" > /greeting\n");
    let build = |value: &str| {
        let argument = format!("GREETING={value}");
        store.ok(
            context.path(),
            &[
                "build",
                "-q",
                "--build-arg",
                &argument,
                "--build-arg",
                "N=2",
                ".",
            ],
        );
    };
    build("hello world");
    let explained = store.strata(
        context.path(),
        &[
            "cache",
            "explain",
            "--build-arg",
            "GREETING=hi  there, you",
            "--build-arg",
            "N=2",
            ".",
        ],
    );
    assert_eq!(explained.code, 0, "{}", explained.stderr);
    assert_eq!(
        explained.stderr,
        "#1 RUN    [2/2] RUN echo \"$GREETING\" > /greeting: \
         build arg GREETING changed (hello world → hi  there, you)\n\
         1 steps: 0 would come from the cache, 1 would run\n"
    );
    // The build's own report says the same.
    let run = store.strata(
        context.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--build-arg",
            "GREETING=hi  there, you",
            "--build-arg",
            "N=2",
            ".",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "  #2 [2/2] RUN echo \"$GREETING\" > /greeting: \
             build arg GREETING changed (hello world → hi  there, you)\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn the_metadata_file_follows_its_documented_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::repository().join("docs/metadata.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    let store = store_with_base();
    let context = Context::new()
        .file("a.txt", "a")
        .dockerfile("FROM base\nARG V=1\nRUN echo $V > /v\nCOPY a.txt /a\nRUN true\n");
    let metadata = context.path().join("metadata.json");
    let mut documents = Vec::new();
    for extra in [&[][..], &[][..], &["--build-arg", "V=2"][..]] {
        let mut args = vec![
            "--metadata-file",
            metadata.to_str().unwrap(),
            "-t",
            "meta:1",
        ];
        args.extend_from_slice(extra);
        build_counting(&store, &context, &args);
        let document: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{document:#}");
        documents.push(document);
    }
    let steps = |document: &serde_json::Value| -> Vec<(String, bool, Option<String>, Option<u64>)> {
        document["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| {
                (
                    step["instruction"].as_str().unwrap().to_owned(),
                    step["cached"].as_bool().unwrap(),
                    step["cause"].as_str().map(str::to_owned),
                    step["caused_by"].as_u64(),
                )
            })
            .collect()
    };
    assert_eq!(
        steps(&documents[0]),
        vec![
            (
                "RUN echo $V > /v".to_owned(),
                false,
                Some("no previous build of this step".to_owned()),
                None
            ),
            (
                "COPY a.txt /a".to_owned(),
                false,
                Some("no previous build of this step".to_owned()),
                None
            ),
            (
                "RUN true".to_owned(),
                false,
                Some("no previous build of this step".to_owned()),
                None
            ),
        ]
    );
    assert!(
        steps(&documents[1])
            .iter()
            .all(|(_, cached, cause, _)| *cached && cause.is_none())
    );
    assert_eq!(
        steps(&documents[2]),
        vec![
            (
                "RUN echo $V > /v".to_owned(),
                false,
                Some("build arg V changed (1 → 2)".to_owned()),
                None
            ),
            (
                "COPY a.txt /a".to_owned(),
                false,
                Some("an earlier step changed".to_owned()),
                Some(2)
            ),
            (
                "RUN true".to_owned(),
                false,
                Some("build arg V changed (1 → 2)".to_owned()),
                None
            ),
        ]
    );
    assert_eq!(
        documents[2]["image"]["tags"],
        serde_json::json!(["docker.io/library/meta:1"])
    );
    assert_eq!(documents[2]["strata.version"], 1);
    let first = &documents[0]["steps"][1];
    assert!(
        first["layer"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(first["duration_ms"].as_u64().is_some());
}

#[test]
fn run_mounts_cache_secret_bind_and_tmpfs() {
    let store = store_with_base();
    let root = store.root();
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), "file-secret-4711").unwrap();
    let context = Context::new().file("data/f", "ctx").dockerfile(
        "FROM base AS tools\nRUN mkdir /tools && echo tool > /tools/t\n\
         FROM base\n\
         RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /count\n\
         RUN --mount=type=secret,id=file cat /run/secrets/file | wc -c > /secret-size\n\
         RUN --mount=type=secret,id=fromenv,env=TOKEN echo ${#TOKEN} > /env-size\n\
         RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/f > /from-context; \
             touch /mnt/data/new 2>/dev/null || echo read-only > /ro\n\
         RUN --mount=type=bind,source=data,target=/mnt/data,rw touch /mnt/data/new && echo rw-ok > /rw\n\
         RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/t > /from-stage\n\
         RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/x && echo tmpfs-ok > /tmpfs\n",
    );
    let metadata = context.path().join("metadata.json");
    let secret_arg = format!("id=file,src={}", secret_file.path().display());
    let build = |extra: &[&str]| {
        let mut args = vec![
            "--root",
            root.to_str().unwrap(),
            "build",
            "--progress",
            "json",
            "-t",
            "mounted",
            "--secret",
            &secret_arg,
            "--secret",
            "id=fromenv,env=STRATA_TEST_TOKEN",
            "--metadata-file",
            metadata.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(".");
        let run = strata_in(
            context.path(),
            &args,
            None,
            &[("STRATA_TEST_TOKEN", "env-secret-0815")],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run
    };
    let first = build(&[]);
    assert_eq!(
        read_in(
            &store,
            "mounted",
            "cat /count /secret-size /env-size /from-context; echo; cat /ro /rw /from-stage /tmpfs; \
                ls -d /cache /run/secrets /mnt /t /scratch /data/new 2>/dev/null | wc -l; test -e /mnt/data/new || echo discarded"
        ),
        "1\n16\n15\nctx\nread-only\nrw-ok\ntool\ntmpfs-ok\n0\ndiscarded\n"
    );
    // The context was not written through the rw bind.
    assert!(!context.path().join("data/new").exists());
    // Secrets are nowhere but in the sandbox.
    for secret in ["file-secret-4711", "env-secret-0815"] {
        assert!(!first.stderr.contains(secret), "in the progress output");
        assert!(
            !std::fs::read_to_string(&metadata).unwrap().contains(secret),
            "in the metadata"
        );
        let found = std::process::Command::new("grep")
            .args(["-rl", secret])
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            found.stdout.is_empty(),
            "in the store: {}",
            String::from_utf8_lossy(&found.stdout)
        );
    }
    // The cache mount keeps its content, which changes no key: a rebuild
    // is all cached; --no-cache runs again on a cache of its own, empty
    // (BuildKit's testCacheMountModeNoCache).
    let again = build(&[]);
    assert!(
        !again.stderr.contains("\"event\":\"missed\""),
        "{}",
        again.stderr
    );
    build(&["--no-cache"]);
    assert_eq!(read_in(&store, "mounted", "cat /count"), "1\n");
    // A change in a bound source reruns the step that reads it.
    std::fs::write(context.path().join("data/f"), "ctx2").unwrap();
    let changed = build(&[]);
    let missed: Vec<&str> = changed
        .stderr
        .lines()
        .filter(|line| line.contains("\"event\":\"missed\"") && !line.contains("caused_by\":2"))
        .collect();
    assert!(
        missed
            .iter()
            .any(|line| line.contains("file changed: data/f")),
        "{}",
        changed.stderr
    );
    // A required secret that is missing fails, naming it and the line.
    let needy = Context::new()
        .dockerfile("FROM base\nRUN --mount=type=secret,id=needed,required=true true\n");
    let run = store.strata(needy.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: RUN --mount=type=secret: the secret `needed` is required: pass it with --secret id=needed,src=FILE\n --> Dockerfile:2:1"),
        "{}",
        run.stderr
    );
}

#[test]
fn locked_cache_mounts_serialise_parallel_steps_and_private_ones_do_not_share() {
    let store = store_with_base();
    let step = |name: &str, sharing: &str| {
        format!(
            "FROM base AS {name}\n\
             RUN --mount=type=cache,id=common-{sharing},sharing={sharing},target=/cache \
             sh -c 'cut -d\" \" -f1 /proc/uptime > /start; touch /cache/{name}; sleep 0.5; ls /cache > /seen; cut -d\" \" -f1 /proc/uptime > /end'\n"
        )
    };
    // The private steps meet in a shared cache before they look, so that
    // they surely overlap however loaded the machine is (a private cache
    // is a fresh one only while another is in use).
    let private = |name: &str, other: &str| {
        format!(
            "FROM base AS {name}\n\
             RUN --mount=type=cache,id=common-private,sharing=private,target=/cache \
             --mount=type=cache,id=rendezvous,sharing=shared,target=/sync \
             sh -c 'touch /cache/{name} /sync/{name}; i=0; while [ ! -e /sync/{other} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; ls /cache > /seen'\n"
        )
    };
    let dockerfile = format!(
        "{}{}{}{}FROM base\n\
         COPY --from=one /start /one-start\nCOPY --from=one /end /one-end\n\
         COPY --from=two /start /two-start\nCOPY --from=two /end /two-end\n\
         COPY --from=three /seen /three-seen\nCOPY --from=four /seen /four-seen\n",
        step("one", "locked"),
        step("two", "locked"),
        private("three", "four"),
        private("four", "three"),
    );
    let context = Context::new().dockerfile(&dockerfile);
    build_counting(&store, &context, &["-j", "4", "-t", "shared"]);
    let out = read_in(
        &store,
        "shared",
        "cat /one-start /one-end /two-start /two-end; cat /three-seen; echo --; cat /four-seen",
    );
    let lines: Vec<&str> = out.lines().collect();
    // /proc/uptime: the same clock in every sandbox, to the hundredth.
    let times: Vec<f64> = lines[..4]
        .iter()
        .map(|line| line.parse().unwrap())
        .collect();
    let (one, two) = ((times[0], times[1]), (times[2], times[3]));
    // One ran entirely before the other.
    assert!(
        one.1 <= two.0 || two.1 <= one.0,
        "the locked steps overlapped: {one:?} {two:?}"
    );
    // The private ones ran at once, each with a cache of its own.
    let rest = lines[4..].join("\n");
    assert_eq!(rest, "three\n--\nfour", "{out}");
    // Two instances of the private cache and one of each other, with their
    // locks: nothing made in a loop while the first was in use.
    let mounts: Vec<String> = std::fs::read_dir(store.root().join("cache-mounts"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    assert_eq!(mounts.len(), 4, "{mounts:?}");
}

#[test]
fn cache_mounts_are_pruned_on_request() {
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\nRUN --mount=type=cache,target=/c echo x >> /c/log && wc -l < /c/log > /n\n",
    );
    build_counting(&store, &context, &["-t", "m"]);
    let mounts = store.root().join("cache-mounts");
    assert_eq!(
        std::fs::read_dir(&mounts)
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path().is_dir())
            .count(),
        1
    );
    // Records only: the mount stays.
    store.ok(store.dir.path(), &["cache", "prune"]);
    assert!(
        std::fs::read_dir(&mounts)
            .unwrap()
            .any(|entry| entry.unwrap().path().is_dir())
    );
    // Cache mounts only.
    let out = store.ok(
        store.dir.path(),
        &["cache", "prune", "--filter", "type=exec.cachemount"],
    );
    assert!(out.starts_with("Deleted 0 cache records\n"), "{out}");
    assert!(
        !std::fs::read_dir(&mounts)
            .unwrap()
            .any(|entry| entry.unwrap().path().is_dir())
    );
    build_counting(&store, &context, &["--no-cache", "-t", "m"]);
    assert_eq!(
        read_in(&store, "m", "cat /n"),
        "1\n",
        "an empty cache again"
    );
}

#[test]
fn ssh_mounts_forward_the_agent_socket() {
    let store = store_with_base();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let context = Context::new().dockerfile(
        "FROM base\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /agent\n",
    );
    let forwarded = format!("default={}", socket.display());
    build_counting(&store, &context, &["--ssh", &forwarded, "-t", "ssh"]);
    assert_eq!(
        read_in(
            &store,
            "ssh",
            "cat /agent; test -e /run/buildkit || echo no-trace"
        ),
        "/run/buildkit/ssh_agent.0\nno-trace\n"
    );
    // Required and missing: a clear error naming it.
    let needy =
        Context::new().dockerfile("FROM base\nRUN --mount=type=ssh,id=git,required=true true\n");
    let run = store.strata(needy.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: RUN --mount=type=ssh: the ssh agent `git` is required: pass it with --ssh git[=SOCKET]\n --> Dockerfile:2:1"),
        "{}",
        run.stderr
    );
}

#[test]
fn insecure_steps_need_the_entitlement_and_then_keep_capabilities() {
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\nRUN grep CapEff /proc/self/status > /sandboxed\nRUN --security=insecure grep CapEff /proc/self/status > /insecure\n",
    );
    build_counting(
        &store,
        &context,
        &["--allow", "security.insecure", "-t", "caps"],
    );
    let out = read_in(&store, "caps", "cat /sandboxed /insecure");
    let caps: Vec<u64> = out
        .lines()
        .map(|line| u64::from_str_radix(line.split_whitespace().last().unwrap(), 16).unwrap())
        .collect();
    // docker's default set: no CAP_SYS_ADMIN (bit 21); insecure: all.
    assert_eq!(caps[0] & (1 << 21), 0, "{out}");
    assert_ne!(caps[1] & (1 << 21), 0, "{out}");
    let run = store.strata(
        context.path(),
        &["build", "-q", "--allow", "network.host", "."],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: --allow network.host: the only entitlement is security.insecure\n"
    );
}

#[test]
fn a_cache_mount_is_seeded_from_a_stage_the_first_time() {
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base AS seed\nRUN mkdir /deps && echo seeded > /deps/a\n\
         FROM base\nRUN --mount=type=cache,id=deps,target=/c,from=seed,source=/deps cat /c/a > /seen && echo more >> /c/a\n",
    );
    build_counting(&store, &context, &["-t", "seeded"]);
    assert_eq!(read_in(&store, "seeded", "cat /seen"), "seeded\n");
    // Later runs find what the cache holds now, not the seed again (here
    // the step runs again after a new one before it).
    let context = Context::new().dockerfile(
        "FROM base AS seed\nRUN mkdir /deps && echo seeded > /deps/a\n\
         FROM base\nRUN true\nRUN --mount=type=cache,id=deps,target=/c,from=seed,source=/deps cat /c/a > /seen && echo more >> /c/a\n",
    );
    build_counting(&store, &context, &["-t", "seeded"]);
    assert_eq!(read_in(&store, "seeded", "cat /seen"), "seeded\nmore\n");
    // With --no-cache the step gets a cache of its own: the seed again.
    build_counting(&store, &context, &["--no-cache", "-t", "seeded"]);
    assert_eq!(read_in(&store, "seeded", "cat /seen"), "seeded\n");
}

/// `strata cache explain --progress json`: the events.
fn explain_json(store: &StoreDir, context: &Context, extra: &[&str]) -> Vec<serde_json::Value> {
    crate::support::json_events(store, context, &["cache", "explain"], extra, &[]).1
}

/// Each step (but loading the base) → whether it came from the cache.
fn cached_or_missed(events: Vec<serde_json::Value>) -> BTreeMap<String, bool> {
    events
        .into_iter()
        .filter(|event| event["event"] == "cached" || event["event"] == "missed")
        .map(|event| {
            (
                event["description"].as_str().unwrap().to_owned(),
                event["event"] == "cached",
            )
        })
        .filter(|(description, _)| !description.contains("load image"))
        .collect()
}

#[test]
fn no_jobs_and_an_empty_output_are_refused_before_anything_runs() {
    let context = Context::new().dockerfile("FROM scratch\nLABEL a=b\n");
    let root = context.path().join("store");
    let root = root.to_str().unwrap();
    for (flags, expected) in [
        (&["-j", "0"][..], "error: --jobs must be at least 1\n"),
        (&["--jobs=0"][..], "error: --jobs must be at least 1\n"),
        (
            &["--output", ""][..],
            "error: --output is empty: give a directory, `-` for standard output, \
             or type=KIND,dest=PATH\n",
        ),
        (
            &["-o", "type=local,dest="][..],
            "error: invalid --output `type=local,dest=`: dest= is empty\n",
        ),
    ] {
        let mut args = vec!["--root", root, "build", "-t", "refused"];
        args.extend_from_slice(flags);
        args.push(".");
        let run = strata_in(context.path(), &args, None, &[]);
        assert_eq!(run.code, 1, "{flags:?}: {}", run.stderr);
        assert_eq!(run.stderr, expected, "{flags:?}");
        assert_eq!(run.stdout, "", "{flags:?}");
        // Refused while the command line was read: no store was made.
        assert!(!context.path().join("store").exists(), "{flags:?}");
    }
    // One job is a valid count, and builds.
    let run = strata_in(
        context.path(),
        &["--root", root, "build", "-q", "-j", "1", "-t", "one", "."],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("sha256:"), "{}", run.stdout);
}

/// The paths (exact bytes) of the entries of the layer whose diff_id is
/// `diff_id`, read from the store's blob (a build's layers are stored
/// uncompressed: the blob's digest is the diff_id).
fn layer_paths(store: &StoreDir, diff_id: &str) -> Vec<Vec<u8>> {
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(diff_id.strip_prefix("sha256:").unwrap());
    let bytes = std::fs::read(&blob).unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path_bytes().into_owned())
        .collect()
}

#[test]
fn names_that_are_not_utf8_are_copied_cached_explained_and_ignorable() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let store = store_with_base();
    let context = Context::new().dockerfile(
        "FROM base\n\
         COPY . /c/\n\
         RUN ls -1 /c/ /c/d*/ > /listing && find /c | sort > /found\n",
    );
    // `café.txt` in Latin-1, and a directory named by an invalid byte.
    let latin = OsStr::from_bytes(b"caf\xe9.txt");
    let odd = OsStr::from_bytes(b"d\xff");
    std::fs::write(context.path().join(latin), "one").unwrap();
    std::fs::create_dir(context.path().join(odd)).unwrap();
    std::fs::write(context.path().join(odd).join("in"), "two").unwrap();
    let build = || {
        let run = store.strata(
            context.path(),
            &["build", "--progress", "plain", "-t", "odd", "."],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stderr.contains("warning"), "{}", run.stderr);
        run
    };
    let copy_layer = || {
        let inspect = config_of(&store, "odd");
        let layers = inspect["RootFS"]["Layers"].as_array().unwrap().clone();
        layers[1].as_str().unwrap().to_owned()
    };
    let first = build();
    // Both are in the layer, with their exact bytes.
    assert_eq!(
        layer_paths(&store, &copy_layer()),
        [
            b"c/".to_vec(),
            b"c/Dockerfile".to_vec(),
            b"c/caf\xe9.txt".to_vec(),
            b"c/d\xff/".to_vec(),
            b"c/d\xff/in".to_vec(),
        ]
    );
    // RUN sees them: `ls` (busybox's shows an unprintable byte as `?` in a
    // name, but not in a directory's header, which comes back here as
    // U+FFFD, standard output being read lossily), and `find`, read back
    // as hex for the exact bytes.
    assert_eq!(
        read_in(&store, "odd", "cat /listing"),
        "/c/:\nDockerfile\ncaf?.txt\nd?\n\n/c/d\u{fffd}/:\nin\n"
    );
    let found = read_in(&store, "odd", "od -An -v -tx1 /found | tr -d ' \\n'");
    let expected: String = b"/c\n/c/Dockerfile\n/c/caf\xe9.txt\n/c/d\xff\n/c/d\xff/in\n"
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(read_in(&store, "odd", "cat /c/d*/in /c/caf*"), "twoone");
    // A rebuild comes from the cache, the same image.
    let again = build();
    assert!(
        again.stderr.contains("2 cached, 0 executed"),
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout, first.stdout);
    // A change to the file misses, and the report names it escaped.
    std::fs::write(context.path().join(latin), "changed").unwrap();
    let explain = store.strata(context.path(), &["cache", "explain", "."]);
    assert_eq!(explain.code, 0, "{}", explain.stderr);
    assert_eq!(
        format!("{}{}", explain.stdout, explain.stderr),
        "#1 RUN    [2/3] COPY . /c/: file changed: caf\\xe9.txt\n\
         #2 RUN    [3/3] RUN ls -1 /c/ /c/d*/ > /listing && find /c | sort > /found: an earlier step changed (#1)\n\
         2 steps: 0 would come from the cache, 2 would run\n"
    );
    // `.dockerignore` excludes it by a glob (`?` is the invalid byte).
    std::fs::write(context.path().join(".dockerignore"), "caf?.txt\n").unwrap();
    build();
    assert_eq!(
        layer_paths(&store, &copy_layer()),
        [
            b"c/".to_vec(),
            b"c/.dockerignore".to_vec(),
            b"c/Dockerfile".to_vec(),
            b"c/d\xff/".to_vec(),
            b"c/d\xff/in".to_vec(),
        ]
    );
}

#[test]
fn sources_that_cannot_be_copied_are_named_in_a_warning() {
    // Fifos are not copied (as in BuildKit), never silently; a socket
    // becomes an empty file (buildkit::copy, testCopySocket).
    let store = store_with_base();
    let context = Context::new()
        .file("keep.txt", "k")
        .dockerfile("FROM base\nCOPY . /c/\n");
    let _socket = std::os::unix::net::UnixListener::bind(context.path().join("sock")).unwrap();
    std::fs::create_dir(context.path().join("sub")).unwrap();
    crate::support::run_ok(
        std::process::Command::new(crate::support::require("mkfifo"))
            .arg(context.path().join("sub/pipe")),
    );
    let run = store.strata(context.path(), &["build", "--progress", "plain", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        ["warning: [2/2] COPY . /c/: `sub/pipe` is a fifo, which is not copied (as in BuildKit)"]
    );
}
