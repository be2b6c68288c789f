//! `strata build --dry-run`: the plan, and the errors and warnings around it.

use serde_json::Value;

use crate::support::{Context, strata, strata_in};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}):\n{text}"))
}

#[test]
fn json_plan_of_the_multistage_example() {
    let run = strata(&[
        "build",
        "--dry-run",
        "--format",
        "json",
        "examples/multistage",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = json(&run.stdout);
    let built: Vec<(Option<&str>, bool)> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| (stage["name"].as_str(), stage["built"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        built,
        vec![
            (Some("build"), true),
            (Some("docs"), true),
            (Some("test"), false),
            (None, true)
        ]
    );
    let vertices = plan["vertices"].as_array().unwrap();
    let levels = plan["levels"].as_array().unwrap();
    assert_eq!(vertices.len(), levels.len());
    // The two RUNs of the parallel stages are at the same depth.
    let runs: Vec<&Value> = vertices
        .iter()
        .filter(|vertex| vertex["op"]["kind"] == "exec")
        .collect();
    assert_eq!(runs.len(), 2);
    let depth = |vertex: &Value| {
        levels[vertex["id"].as_u64().unwrap() as usize]
            .as_u64()
            .unwrap()
    };
    assert_eq!(runs[0]["op"]["args"][0], "/bin/sh");
    assert_eq!(
        depth(runs[0]) - 1,
        depth(runs[1]),
        "build's RUN comes after its COPY"
    );
    // Every vertex has a sha256 digest and a Dockerfile line where it has an origin.
    for vertex in vertices {
        let digest = vertex["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
    }
    let entrypoint = vertices
        .iter()
        .find(|vertex| vertex["op"]["set"] == "entrypoint")
        .unwrap();
    assert_eq!(
        entrypoint["op"]["value"],
        serde_json::json!(["/usr/local/bin/greet"])
    );
    assert_eq!(entrypoint["origin"]["line"], 27);
}

#[test]
fn text_plan_lists_stages_steps_and_parallel_groups() {
    let run = strata(&["build", "--dry-run", "examples/multistage"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(
            "target: stage-3 (3 of 4 stages built)\nskipped (not needed by the target): test\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  #0   image busybox:latest ("),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(
        "stage docs FROM busybox:latest (examples/multistage/Dockerfile:13), starts from #0\n"
    ));
    assert!(
        run.stdout.contains(
            "parallel groups (steps in one group can run at once):\n  0: #0 #3\n  1: #1 #6\n"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn dot_plan() {
    let run = strata(&[
        "build",
        "--dry-run",
        "--format",
        "dot",
        "--target",
        "docs",
        "examples/multistage",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("digraph build {\n"));
    assert!(run.stdout.contains("[docs 3/3] RUN printf"));
    assert!(
        !run.stdout.contains("[build"),
        "only the docs stage is planned"
    );
    assert!(run.stdout.ends_with("}\n"));
}

#[test]
fn build_args_change_the_plan() {
    let digests = |args: &[&str], env: &[(&str, &str)]| -> Vec<String> {
        let mut all = vec!["build", "--dry-run", "--format", "json"];
        all.extend_from_slice(args);
        all.push("examples/heredoc-args");
        let run = strata_in(&crate::support::repository(), &all, None, env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        json(&run.stdout)["vertices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|vertex| vertex["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let default = digests(&[], &[]);
    assert_eq!(default, digests(&["--build-arg", "VERSION=1.0"], &[]));
    let changed = digests(&["--build-arg", "VERSION=2.0"], &[]);
    assert_ne!(default, changed);
    // `--build-arg NAME` takes the value from the environment, as docker does.
    assert_eq!(
        changed,
        digests(&["--build-arg", "VERSION"], &[("VERSION", "2.0")])
    );
}

#[test]
fn dockerfile_from_stdin_and_from_a_path() {
    let context = Context::new().file("build/app.Dockerfile", "FROM scratch\nCOPY a /a\n");
    let run = strata_in(
        context.path(),
        &["build", "--dry-run", "-f", "-", "."],
        Some(b"FROM scratch\nCOPY a /a\n"),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("scratch (empty filesystem)"));
    let from_path = context.strata(&["build", "--dry-run", "-f", "build/app.Dockerfile", "."]);
    assert_eq!(
        from_path.stdout,
        run.stdout.replace("<stdin>", "build/app.Dockerfile")
    );
}

#[test]
fn dockerfile_errors_are_printed_once_with_their_location() {
    let context = Context::new().dockerfile("FROM busybox\nRUN echo hi\nCOPPY a b\n");
    let run = context.strata(&["build", "--dry-run", "."]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: unknown instruction: COPPY\n --> Dockerfile:3:1\n  |\n2 | RUN echo hi\n3 | COPPY a b\n  | ^^^^^\n\nhint: did you mean `COPY`?\n"
    );
}

/// BuildKit parses every base name (resolveBaseImage: `failed to parse
/// stage name "golang:": invalid reference format`), pulled or not; a plan
/// accepted `golang:` and `COPY --from=Bad/x`.
#[test]
fn a_name_that_is_not_a_reference_fails_the_plan_at_its_place() {
    let context = Context::new().dockerfile("FROM golang:\n");
    let run = context.strata(&["build", "--dry-run", "."]);
    assert_eq!(run.code, 1);
    // After BuildKit's warning for it (InvalidDefaultArgInFrom).
    assert!(
        run.stderr.starts_with("warning: InvalidDefaultArgInFrom: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.ends_with(
            "error: failed to parse stage name \"golang:\": invalid reference format\n --> Dockerfile:1:6\n  |\n1 | FROM golang:\n  |      ^^^^^^^\n"
        ),
        "{}",
        run.stderr
    );
    let context = Context::new().dockerfile("FROM busybox\nCOPY --from=Bad/x / /\n");
    let run = context.strata(&["build", "--dry-run", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(
            "error: invalid reference format `Bad/x`: names are lowercase letters, digits and separators (`.`, `_`, `-`, `/`)\n --> Dockerfile:2:13\n"
        ),
        "{}",
        run.stderr
    );
    // With `--pull=never` (nothing is pulled, and nothing is in the store),
    // the same error, not "not in the store".
    let store = crate::support::StoreDir::new();
    let run = store.strata(context.path(), &["build", "--pull=never", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: invalid reference format `Bad/x`"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_target_names_the_stages() {
    let run = strata(&[
        "build",
        "--dry-run",
        "--target",
        "tests",
        "examples/multistage",
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: target stage `tests` could not be found\n\nhint: did you mean `test`?\n"
    );
}

#[test]
fn warnings_go_to_stderr_and_do_not_fail() {
    let context = Context::new().dockerfile("FROM busybox\nMAINTAINER me\nCMD echo hi\n");
    let run = context.strata(&["build", "--dry-run", "--build-arg", "UNUSED=1", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("target: stage-0"));
    assert!(run.stderr.contains("warning: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n --> Dockerfile:2:1\n"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: JSONArgsRecommended: JSON arguments recommended for CMD")
    );
    assert!(
        run.stderr
            .ends_with("warning: one or more build args were not consumed: UNUSED\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn file_and_argument_errors_name_the_path() {
    let context = Context::new();
    let missing = context.strata(&["build", "--dry-run", "."]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "error: failed to read Dockerfile `Dockerfile`\n\nCaused by:\n  No such file or directory (os error 2)\n"
    );
    let no_context = context.strata(&["build", "--dry-run", "does-not-exist"]);
    assert_eq!(
        no_context.stderr,
        "error: build context `does-not-exist` is not a directory\n"
    );
    let bad_arg = strata(&[
        "build",
        "--dry-run",
        "--build-arg",
        "=x",
        "examples/multistage",
    ]);
    assert_eq!(
        bad_arg.stderr,
        "error: invalid build argument `=x`: expected NAME=VALUE or NAME\n"
    );
    let bad_platform = strata(&[
        "build",
        "--dry-run",
        "--platform",
        "linux",
        "examples/multistage",
    ]);
    assert_eq!(
        bad_platform.stderr,
        "error: invalid platform `linux`: expected os/arch[/variant], e.g. linux/amd64\n"
    );
}

#[test]
fn not_utf8_is_reported_at_the_byte() {
    let context = Context::new().file("Dockerfile", b"FROM busybox\nRUN echo \xff\n");
    let run = context.strata(&["build", "--dry-run", "."]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: the Dockerfile is not valid UTF-8\n --> Dockerfile:2:10\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn building_without_a_base_image_says_where_to_get_it() {
    let store = crate::support::StoreDir::new();
    let run = store.strata(
        &crate::support::repository(),
        &["build", "--pull=never", "examples/multistage"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "#1 [internal] load image busybox:latest\n\
         error: image `busybox:latest` is not in the store: pull it (`strata pull`, \
         or build with --pull=missing), import it or load it\n \
         --> examples/multistage/Dockerfile:6:1\n  |\n5 | \n6 | FROM ${BASE} AS build\n  \
         | ^^^^^^^^^^^^^^^^^^^^^\n"
    );
}

/// A Dockerfile over BuildKit's 16 MiB limit is refused on its size, before
/// it is read (the file here is sparse: nothing is written or read).
/// See: issue 16, "Memory in proportion".
#[test]
fn dockerfiles_over_16_mib_are_refused_unread() {
    let context = Context::new();
    let path = context.path().join("big.Dockerfile");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 << 20).unwrap();
    let run = context.strata(&["build", "--dry-run", "-f", "big.Dockerfile", "."]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: Dockerfile `big.Dockerfile` is 100.0 MiB (104857600 bytes); strata reads \
         Dockerfiles up to 16 MiB\n\nhint: 16 MiB is BuildKit's limit too: its frontends read \
         the Dockerfile in one gRPC message, and those stop at 16 MiB\n"
    );
    let over_stdin = strata_in(
        context.path(),
        &["build", "--dry-run", "-f", "-", "."],
        Some("#".repeat((16 << 20) + 1).as_bytes()),
        &[],
    );
    assert_eq!(over_stdin.code, 1);
    assert!(
        over_stdin
            .stderr
            .starts_with("error: Dockerfile `<stdin>` is more than 16 MiB; strata reads Dockerfiles up to 16 MiB\n"),
        "{}",
        over_stdin.stderr
    );
}
