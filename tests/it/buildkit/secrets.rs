//! `frontend/dockerfile/dockerfile_secrets_test.go` (secrets from a file,
//! `--secret id=mysecret,src=FILE`, as the docker CLI gives them).

use super::Bk;
use crate::support::Context;

/// A context with `secret` (`pw`) beside its Dockerfile, and the flag
/// naming it.
fn with_secret(dockerfile: &str) -> (Context, String) {
    let context = Context::new().dockerfile(dockerfile).file("secret", "pw");
    let flag = format!(
        "id=mysecret,src={}",
        context.path().join("secret").display()
    );
    (context, flag)
}

/// testSecretFileParams
#[test]
fn a_secret_file_gets_its_mode_and_owner_and_leaves_no_stub() {
    let bk = Bk::new();
    let (context, flag) = with_secret(
        "FROM busybox\nRUN --mount=type=secret,required=false,mode=741,uid=100,gid=102,target=/mysecret [ \"$(stat -c \"%u %g %f\" /mysecret)\" = \"100 102 81e1\" ]\nRUN [ ! -f /mysecret ] # check no stub left behind\n",
    );
    bk.build_ok(&context, &["--secret", &flag]);
}

/// testSecretRequiredWithoutValue
#[test]
fn a_required_secret_that_is_missing_fails() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM busybox \n\t\tRUN --mount=type=secret,required,id=mysecret foo");
    // BuildKit: `secret mysecret: not found`; strata names the flag too.
    let stderr = bk.build_err(&context, &[]);
    assert!(
        stderr.contains(
            "error: RUN --mount=type=secret: the secret `mysecret` is required: pass it with --secret id=mysecret,src=FILE\n"
        ),
        "{stderr}"
    );
}

/// testSecretAsEnviron (without its check of BuildKit's progress names)
#[test]
fn a_secret_as_an_environment_variable() {
    let bk = Bk::new();
    let (context, flag) = with_secret(
        "FROM busybox\nENV SECRET_ENV=foo\nRUN --mount=type=secret,id=mysecret,env=SECRET_ENV [ \"$SECRET_ENV\" == \"pw\" ] && [ ! -f /run/secrets/mysecret ] || false\n",
    );
    bk.build_ok(&context, &["--secret", &flag]);
}

/// testSecretAsEnvironWithFileMount
#[test]
fn a_secret_as_both_a_variable_and_a_file() {
    let bk = Bk::new();
    let (context, flag) = with_secret(
        "FROM busybox\nRUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV [ \"$SECRET_ENV\" == \"pw\" ] && [ -f /run/secrets/secret ] || false\n",
    );
    bk.build_ok(&context, &["--secret", &flag]);
}

/// Not a Go test of its own: dispatchSecret (convert_secrets.go) takes
/// `source=` as the secret's id, over `id=`, and mounts it at
/// `/run/secrets/` and the id's base name. strata used `id=` and ignored
/// `source=`.
#[test]
fn source_names_the_secret_and_wins_over_id() {
    let bk = Bk::new();
    let (context, flag) = with_secret(
        "FROM busybox\nRUN --mount=type=secret,source=mysecret [ \"$(cat /run/secrets/mysecret)\" = pw ]\nRUN --mount=type=secret,id=other,src=mysecret,required [ \"$(cat /run/secrets/mysecret)\" = pw ] && [ ! -e /run/secrets/other ]\n",
    );
    bk.build_ok(&context, &["--secret", &flag]);
}
