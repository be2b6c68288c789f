//! Real Dockerfiles from public projects (`tests/data/lint-corpus/`, their
//! sources in `SOURCES.md`), each checked with `strata build --check
//! --format json` against BuildKit's verdict in `verdicts.tsv`: one line
//! per warning, `file<TAB>Rule<TAB>line`, `file<TAB>error<TAB>line` when
//! BuildKit refuses the file, or `file<TAB>ok<TAB>0` when it finds nothing.
//! Every difference, a warning missing or one BuildKit would not give, is
//! reported at once.
//!
//! The base images are not pulled (`--pull=never`, no network in tests):
//! a stage on an image whose config is unknown is not checked for
//! UndefinedVar (see the README's Conformance section). The verdicts that
//! depend on an image's ENV have it: [`STAND_INS`], images made here with
//! that ENV (the corpus's `tools/baseenv.json`, from the images' own
//! Dockerfiles), under the names the Dockerfiles use.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{StoreDir, repository};

/// The base images whose ENV decides a verdict: name, and ENV.
const STAND_INS: &[(&str, &str)] = &[
    // 79 (`${UID:-1000}`: alpine defines no UID).
    (
        "alpine:latest",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    // 86 (`ARG USER=$USER`: golang defines no USER, UID or GID).
    (
        "golang:1.23",
        "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOLANG_VERSION=1.23 GOTOOLCHAIN=local GOPATH=/go",
    ),
];

/// (rule or `error`, line) of one file.
type Verdict = BTreeSet<(String, usize)>;

fn verdicts(text: &str) -> BTreeMap<String, Verdict> {
    let mut out: BTreeMap<String, Verdict> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, rule, at] = fields[..] else {
            panic!("verdicts.tsv:{}: expected 3 fields: {line:?}", number + 1);
        };
        let entry = out.entry(file.to_owned()).or_default();
        if rule != "ok" {
            entry.insert((rule.to_owned(), at.parse().unwrap()));
        }
    }
    out
}

#[test]
fn the_corpus_gets_buildkits_verdicts() {
    let dir = repository().join("tests/data/lint-corpus");
    let expected = verdicts(&std::fs::read_to_string(dir.join("verdicts.tsv")).unwrap());
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "{} files", files.len());
    let on_disk: BTreeSet<&String> = files.iter().collect();
    let judged: BTreeSet<&String> = expected.keys().collect();
    assert!(
        on_disk == judged,
        "every Dockerfile has a verdict, and every verdict a Dockerfile: without a verdict {:?}, without a file {:?}",
        on_disk.difference(&judged).collect::<Vec<_>>(),
        judged.difference(&on_disk).collect::<Vec<_>>()
    );
    let store = StoreDir::new();
    for (name, env) in STAND_INS {
        let image = tempfile::tempdir().unwrap();
        std::fs::write(
            image.path().join("Dockerfile"),
            format!("FROM scratch\nENV {env}\n"),
        )
        .unwrap();
        store.ok(image.path(), &["build", "-q", "-t", name, "."]);
    }
    let context = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    for file in &files {
        let path = dir.join(file);
        let run = store.strata(
            context.path(),
            &[
                "build",
                "--check",
                "--pull=never",
                "--format",
                "json",
                "-f",
                path.to_str().unwrap(),
                ".",
            ],
        );
        let json: serde_json::Value = match serde_json::from_str(&run.stdout) {
            Ok(json) => json,
            Err(error) => {
                mismatches.push(format!("{file}: no report ({error}): {}", run.stderr));
                continue;
            }
        };
        let mut got: Verdict = json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|warning| {
                (
                    warning["rule"].as_str().unwrap().to_owned(),
                    warning["line"].as_u64().unwrap() as usize,
                )
            })
            .collect();
        if let Some(error) = json.get("error") {
            got.insert(("error".to_owned(), error["line"].as_u64().unwrap() as usize));
        }
        let want = &expected[file];
        // The exit status is buildx's: 1 when anything was found.
        if run.code != i32::from(!got.is_empty()) {
            mismatches.push(format!("{file}: exit status {}", run.code));
        }
        for missing in want.difference(&got) {
            mismatches.push(format!(
                "{file}: missing {} at line {}",
                missing.0, missing.1
            ));
        }
        for extra in got.difference(want) {
            let message = json["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|warning| warning["rule"] == extra.0.as_str() && warning["line"] == extra.1)
                .map(|warning| warning["message"].to_string())
                .or_else(|| json.get("error").map(|error| error["message"].to_string()))
                .unwrap_or_default();
            mismatches.push(format!(
                "{file}: {} at line {} that BuildKit does not give: {message}",
                extra.0, extra.1
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
