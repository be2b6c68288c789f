//! `frontend/dockerfile/dockerfile_targets_test.go`: the `frontend.targets`
//! subrequest, which `docker buildx build --call targets` makes (here
//! `strata build --call targets`).

use super::Bk;
use crate::support::Context;

/// testTargetsList
#[test]
fn call_targets_lists_the_stages() {
    let bk = Bk::new();
    let dockerfile = "
# build defines stage for compiling the binary
FROM alpine AS build
RUN true

FROM busybox as second
RUN false

FROM alpine
RUN false

# binary returns the compiled binary
FROM second AS binary
";
    let context = Context::new().dockerfile(dockerfile);
    let run = bk.build(&context, &["--call", "targets,format=json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let sources = list["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    use base64::Engine as _;
    let source = base64::engine::general_purpose::STANDARD
        .decode(sources[0].as_str().unwrap())
        .unwrap();
    assert_eq!(source, dockerfile.as_bytes());
    let targets = list["targets"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, bool, u64)> = targets
        .iter()
        .map(|target| {
            (
                target["name"].as_str().unwrap_or_default(),
                target["base"].as_str().unwrap_or_default(),
                target["description"].as_str().unwrap_or_default(),
                target["default"].as_bool().unwrap_or(false),
                target["location"]["ranges"][0]["start"]["line"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "build",
                "alpine",
                "defines stage for compiling the binary",
                false,
                3
            ),
            ("second", "busybox", "", false, 6),
            ("", "alpine", "", false, 9),
            ("binary", "second", "returns the compiled binary", true, 13),
        ]
    );
    // As text, buildx's table; nothing was built.
    let run = bk.build(&context, &["--call", "targets"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "TARGET           DESCRIPTION\nbuild            defines stage for compiling the binary\nsecond\n\nbinary (default) returns the compiled binary\n"
    );
    // `--call check` is `--check`: `as` in `FROM busybox as second` is
    // FromAsCasing's.
    let run = bk.build(&context, &["--call", "check"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("FromAsCasing"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = bk.build(&context, &["--call", "nosuch"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("unknown call `nosuch`: expected build, check, outline or targets"),
        "{}",
        run.stderr
    );
}
