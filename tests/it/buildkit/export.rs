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
