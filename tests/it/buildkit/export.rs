//! `frontend/dockerfile/dockerfile_export_test.go` and
//! `dockerfile_source_date_epoch_test.go` (the parts that need no
//! BuildKit-only exporter attribute).

use super::Bk;
use crate::support::Context;

/// testTarExporterBasic
#[test]
fn a_tar_output_holds_the_files() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM scratch\nCOPY foo foo\n")
        .file("foo", "data");
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("out.tar");
    bk.build_ok(
        &context,
        &["--output", &format!("type=tar,dest={}", tar.display())],
    );
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut found = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().as_os_str() == "foo" {
            let mut data = String::new();
            std::io::Read::read_to_string(&mut entry, &mut data).unwrap();
            found = Some(data);
        }
    }
    assert_eq!(found.as_deref(), Some("data"));
}

/// testSourceDateEpochWithoutExporter
#[test]
fn source_date_epoch_as_a_build_arg_sets_every_time() {
    let bk = Bk::new();
    let context =
        Context::new().dockerfile("FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n");
    let config = bk
        .oci(
            &context,
            "",
            &["--build-arg", "SOURCE_DATE_EPOCH=1700000001"],
        )
        .config;
    let expected = "2023-11-14T22:13:21Z";
    assert_eq!(config["created"], expected, "{config}");
    for entry in config["history"].as_array().unwrap() {
        assert_eq!(entry["created"], expected, "{entry}");
    }
}

/// The image of `dockerfile` (on a context holding just it) exported as
/// OCI with `args`: its config's `created`, and whether every history
/// entry has that time too.
fn created(dockerfile: &str, args: &[&str]) -> String {
    let bk = Bk::new();
    let context = Context::new().dockerfile(dockerfile);
    let config = bk.oci(&context, "", args).config;
    let created = config["created"].as_str().unwrap().to_owned();
    for entry in config["history"].as_array().unwrap() {
        assert_eq!(entry["created"], created.as_str(), "{entry}");
    }
    created
}

/// testSourceDateEpochDockerfileDefault (BuildKit checks the rewritten
/// layer timestamps' annotation, which strata does not write: the times
/// are checked instead)
#[test]
fn a_global_arg_source_date_epoch_is_the_default_epoch() {
    assert_eq!(
        created(
            "ARG SOURCE_DATE_EPOCH=1445412480\nFROM scratch\nCOPY Dockerfile .\n",
            &[]
        ),
        "2015-10-21T07:28:00Z"
    );
}

/// testSourceDateEpochDockerfileDefaultOverride
#[test]
fn a_source_date_epoch_build_arg_wins_over_the_dockerfile_default() {
    assert_eq!(
        created(
            "ARG SOURCE_DATE_EPOCH=1700000001\nFROM scratch\nCOPY Dockerfile .\n",
            &["--build-arg", "SOURCE_DATE_EPOCH=1700000002"]
        ),
        "2023-11-14T22:13:22Z"
    );
}

/// testSourceDateEpochDockerfileDefaultInvalid
#[test]
fn an_invalid_default_source_date_epoch_fails_at_its_arg() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("\nARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\nCOPY Dockerfile .\n");
    let stderr = bk.build_err(&context, &[]);
    assert_eq!(
        stderr,
        "error: invalid SOURCE_DATE_EPOCH: not-a-timestamp\n --> Dockerfile:2:5\n  |\n1 | \n2 | ARG SOURCE_DATE_EPOCH=not-a-timestamp\n  |     ^^^^^^^^^^^^^^^^^\n\nhint: SOURCE_DATE_EPOCH is a number of seconds since 1970\n"
    );
}
