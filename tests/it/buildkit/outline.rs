//! `frontend/dockerfile/dockerfile_outline_test.go`: the `frontend.outline`
//! subrequest, which `docker buildx build --call outline` makes (here
//! `strata build --call outline`).

use super::Bk;
use crate::support::Context;

/// `strata build --call outline,format=json ARGS...` of `dockerfile`: the
/// outline, after checking that it carries the Dockerfile.
fn outline(dockerfile: &str, args: &[&str]) -> serde_json::Value {
    let bk = Bk::new();
    let context = Context::new().dockerfile(dockerfile);
    let mut all = vec!["--call", "outline,format=json"];
    all.extend_from_slice(args);
    let run = bk.build(&context, &all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outline: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    use base64::Engine as _;
    let sources = outline["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    let source = base64::engine::general_purpose::STANDARD
        .decode(sources[0].as_str().unwrap())
        .unwrap();
    assert_eq!(source, dockerfile.as_bytes());
    outline
}

/// (name, value, description, line) of each of `list`'s args.
fn args(outline: &serde_json::Value) -> Vec<(String, String, String, u64)> {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    outline["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| {
            (
                text(&arg["name"]),
                text(&arg["value"]),
                text(&arg["description"]),
                arg["location"]["ranges"][0]["start"]["line"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str, &str, u64)]) -> Vec<(String, String, String, u64)> {
    list.iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
        .collect()
}

/// testOutlineArgs
#[test]
fn call_outline_lists_the_args_the_target_uses() {
    let dockerfile = r#"
ARG inherited=box
ARG inherited2=box2
ARG unused=abc${inherited2}
# sfx is a suffix
ARG sfx="usy${inherited}"

FROM b${sfx} AS first
# this is not assigned to anything
ARG FOO=123
# BAR is a number
ARG BAR=456
RUN true

FROM alpine${unused} AS second
ARG BAZ
RUN true

FROM scratch AS third
ARG ABC=a
# check=skip=all
ARG password
# alternate_password will show up in the outline
# check=skip=all
ARG alternate_password

# target defines build target
FROM third AS target
COPY --from=first /etc/passwd /

FROM second
"#;
    let outline = outline(
        dockerfile,
        &["--build-arg", "BAR=678", "--target", "target"],
    );
    assert_eq!(outline["name"], "target");
    assert_eq!(outline["description"], "defines build target");
    assert_eq!(
        args(&outline),
        owned(&[
            ("inherited", "box", "", 2),
            ("sfx", "usybox", "is a suffix", 6),
            ("FOO", "123", "", 10),
            ("BAR", "678", "is a number", 12),
            ("ABC", "a", "", 20),
            ("password", "", "", 22),
            ("alternate_password", "", "will show up in the outline", 25),
        ])
    );
}

/// testOutlineSecrets
#[test]
fn call_outline_lists_the_secrets_and_ssh_the_target_uses() {
    let dockerfile = "
FROM busybox AS first
RUN --mount=type=secret,target=/etc/passwd,required=true --mount=type=ssh true
FROM alpine AS second
RUN --mount=type=secret,id=unused --mount=type=ssh,id=ssh2 true
FROM scratch AS third
ARG BAR
RUN --mount=type=secret,id=second${BAR} true
FROM third AS target
COPY --from=first /foo /
RUN --mount=type=ssh,id=ssh3,required true
FROM second
";
    let outline = outline(
        dockerfile,
        &["--build-arg", "BAR=678", "--target", "target"],
    );
    let listed = |key: &str| -> Vec<(String, bool, u64)> {
        outline[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["name"].as_str().unwrap().to_owned(),
                    item["required"].as_bool().unwrap_or(false),
                    item["location"]["ranges"][0]["start"]["line"]
                        .as_u64()
                        .unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        listed("secrets"),
        [
            ("passwd".to_owned(), true, 3),
            ("second678".to_owned(), false, 8)
        ]
    );
    assert_eq!(
        listed("ssh"),
        [
            ("default".to_owned(), false, 3),
            ("ssh3".to_owned(), true, 11)
        ]
    );
}

/// testOutlineRecursiveArgs
#[test]
fn call_outline_follows_args_that_use_args() {
    let dockerfile = "
ARG FOO=123
ARG ABC=abc
ARG DEF=def
ARG FOO=${FOO}${ABC}
ARG BAR=${FOO}456
ARG FOO=${FOO}456${BAR}
FROM scratch
ARG FOO
ARG INFOO=123
ARG INBAR=${INFOO}456
ARG INFOO=${INFOO}456${INBAR}
";
    let outline = outline(dockerfile, &[]);
    let names: Vec<(String, String)> = args(&outline)
        .into_iter()
        .map(|(name, value, _, _)| (name, value))
        .collect();
    let expected: Vec<(String, String)> = [
        ("ABC", "abc"),
        ("BAR", "123abc456"),
        ("FOO", "123abc456123abc456"),
        ("INBAR", "123456"),
        ("INFOO", "123456123456"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    assert_eq!(names, expected);
}

/// Ours: buildx's text of an outline.
#[test]
fn call_outline_prints_buildxs_tables() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "# app builds the app\nFROM scratch AS app\n# VERSION is the release\nARG VERSION=1.0\nARG LONGER_NAME\n",
    );
    let run = bk.build(&context, &["--call", "outline"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "TARGET:      app\nDESCRIPTION: builds the app\n\nBUILD ARG     VALUE   DESCRIPTION\nVERSION       1.0     is the release\nLONGER_NAME\n\n"
    );
}
