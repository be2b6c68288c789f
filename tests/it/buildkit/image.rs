//! `frontend/dockerfile/dockerfile_image_test.go` and
//! `dockerfile_history_test.go` (the config read from an OCI layout export
//! instead of containerd's store).

use super::Bk;
use crate::support::Context;

/// testDockerfileScratchConfig
#[test]
fn a_scratch_image_has_a_whole_config() {
    let bk = Bk::new();
    let layout = bk.oci(
        &Context::new().dockerfile("FROM scratch\nENV foo=bar\n"),
        "",
        &[],
    );
    let config = &layout.config;
    assert_ne!(config["os"], "");
    assert_ne!(config["architecture"], "");
    assert_eq!(config["config"]["WorkingDir"], "/", "{config}");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 0);
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{config}");
    assert!(
        history[0]["created_by"]
            .as_str()
            .unwrap()
            .contains("ENV foo=bar")
    );
    assert_eq!(history[0]["empty_layer"], true);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry.as_str().unwrap())
        .collect();
    assert!(env.contains(&"foo=bar"), "{env:?}");
    assert!(
        env.iter().any(|entry| entry.starts_with("PATH=")),
        "{env:?}"
    );
}

/// testOCILayoutMultiname
#[test]
fn an_oci_layout_names_each_tag() {
    let bk = Bk::new();
    let context = Context::new().dockerfile("FROM scratch\nCOPY <<EOF /foo\nhello\nEOF\n");
    let layout = bk.oci(&context, ",\"name=org/repo:tag1,org/repo:tag2\"", &[]);
    let manifests = layout.index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{}", layout.index);
    for key in ["digest", "platform", "mediaType", "size"] {
        assert_eq!(manifests[0][key], manifests[1][key], "{key}");
    }
    for (manifest, tag) in manifests.iter().zip(["tag1", "tag2"]) {
        let annotations = &manifest["annotations"];
        assert_eq!(
            annotations["io.containerd.image.name"],
            format!("docker.io/org/repo:{tag}")
        );
        assert_eq!(annotations["org.opencontainers.image.ref.name"], tag);
    }
}

/// testExportedHistory
#[test]
fn history_has_an_entry_for_every_instruction() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "FROM busybox AS base\nENV foo=bar\nCOPY foo /foo2\nFROM busybox\nLABEL lbl=val\nCOPY --from=base foo2 foo3\nWORKDIR /\nRUN echo bar > foo4\nRUN [\"ls\"]\nEXPOSE 2375 5000 1234/udp\n",
        )
        .file("foo", "contents0");
    let config = bk.oci(&context, "", &[]).config;
    assert_eq!(config["rootfs"]["type"], "layers");
    // The base's one layer, the COPY and the two RUNs.
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    let history = config["history"].as_array().unwrap();
    // The base's one entry, then the stage's own six.
    assert_eq!(history.len(), 7, "{config}");
    let own = &history[1..];
    for (entry, (text, empty)) in own.iter().zip([
        ("lbl=val", true),
        ("COPY foo2 foo3", false),
        ("WORKDIR /", true),
        ("echo bar > foo4", false),
        ("RUN ls", false),
        ("EXPOSE [1234/udp 2375/tcp 5000/tcp]", true),
    ]) {
        let created_by = entry["created_by"].as_str().unwrap();
        assert!(created_by.contains(text), "{text}: {created_by}");
        assert_eq!(
            entry["empty_layer"].as_bool().unwrap_or(false),
            empty,
            "{created_by}"
        );
        assert!(entry["created"].is_string(), "{entry}");
    }
}

/// testExportedHistoryFlattenArgs
#[test]
fn run_history_flattens_the_args() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile("FROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n");
    let config = bk.oci(&context, "", &[]).config;
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["created_by"].as_str().unwrap())
        .collect();
    let first = history
        .iter()
        .position(|text| *text == "ARG foo=bar")
        .unwrap_or_else(|| panic!("{history:?}"));
    assert!(first > 0);
    assert_eq!(history.len(), first + 4, "{history:?}");
    assert!(history[first + 1].contains("ARG bar=123"));
    assert!(history[first + 2].contains("ARG foo=bar2"));
    let run = history[first + 3];
    assert!(
        run.contains("ls /etc/") && !run.contains("ARG foo=bar"),
        "{run}"
    );
    assert!(run.contains("RUN |2 foo=bar2 bar=123 "), "{run}");
}

/// testPullScratch: an image made on an image made `FROM scratch` has
/// the one layer its COPY made, and the labels of both.
#[test]
fn an_image_on_a_scratch_image_has_its_layer_and_both_labels() {
    let bk = Bk::new();
    bk.build_ok(
        &Context::new().dockerfile("FROM scratch\nLABEL foo=bar\n"),
        &["-t", "docker.io/moby/testpullscratch:latest"],
    );
    let context = Context::new()
        .dockerfile("FROM docker.io/moby/testpullscratch:latest\nLABEL bar=baz\nCOPY foo .\n")
        .file("foo", "foo-contents");
    let config = bk.oci(&context, "", &[]).config;
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        1,
        "{config}"
    );
    assert_eq!(config["config"]["Labels"]["foo"], "bar");
    assert_eq!(config["config"]["Labels"]["bar"], "baz");
}
