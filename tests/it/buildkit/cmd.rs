//! `frontend/dockerfile/dockerfile_cmd_test.go`.

use super::Bk;
use crate::support::Context;

/// testCmdShell
#[test]
fn entrypoint_resets_an_inherited_cmd_and_uses_the_shell() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile("FROM scratch\nCMD [\"test\"]\n"),
        &["-t", "cmd:a"],
    );
    bk.build_ok(
        &Context::new().dockerfile("FROM cmd:a\nSHELL [\"ls\"]\nENTRYPOINT my entrypoint\n"),
        &["-t", "cmd:b"],
    );
    let config = &bk.inspect("cmd:b")["Config"];
    assert!(config["Cmd"].is_null(), "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["ls", "my entrypoint"])
    );
}

/// testIgnoreEntrypoint
#[test]
fn run_ignores_the_entrypoint() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile("FROM busybox\nENTRYPOINT [\"/nosuchcmd\"]\nRUN [\"ls\"]\n"),
        &[],
    );
}

/// testInvalidJSONCommands
#[test]
fn invalid_json_is_the_shell_form() {
    let bk = Bk::new();
    let stderr = bk.build_err(
        &Context::new().dockerfile("FROM alpine\nRUN [\"echo\", \"hello\"]this is invalid\n"),
        &[],
    );
    assert!(stderr.contains("this is invalid"), "{stderr}");
    bk.build_ok(
        &Context::new().dockerfile("FROM scratch\nENTRYPOINT []random string\n"),
        &["-t", "cmd:json"],
    );
    assert_eq!(
        bk.inspect("cmd:json")["Config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "[]random string"])
    );
}

/// testDockerfileInvalidCommand
#[test]
fn a_failing_run_names_its_command() {
    let bk = Bk::new();
    let stderr = bk.build_err(
        &Context::new().dockerfile("FROM busybox\nRUN invalidcmd\n"),
        &[],
    );
    assert!(
        stderr.contains(
            "process \"/bin/sh -c invalidcmd\" did not complete successfully: exit code: 127"
        ),
        "{stderr}"
    );
}

/// testDockerfileInvalidInstruction (BuildKit's suggestion is in the same
/// sentence, `(did you mean ENTRYPOINT?)`; strata's is a hint below the
/// caret)
#[test]
fn an_unknown_instruction_gets_a_suggestion() {
    let bk = Bk::new();
    let stderr = bk.build_err(
        &Context::new().dockerfile(
            "FROM scratch\nFNTRYPOINT [\"/bin/sh\", \"-c\", \"echo invalidinstruction\"]\n",
        ),
        &[],
    );
    assert!(
        stderr.starts_with("error: unknown instruction: FNTRYPOINT\n")
            && stderr.contains("hint: did you mean `ENTRYPOINT`?"),
        "{stderr}"
    );
}
