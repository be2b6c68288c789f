//! BuildKit's own parser and word-expansion data, run against our frontend.
//!
//! The data lives in `../shared/conformance/buildkit/` beside the checkout
//! (see that folder's README for the formats); `STRATA_CONFORMANCE` may point
//! elsewhere. A missing folder fails the tests: they are never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_frontend::ast::Dockerfile;
use strata_frontend::expand::Lexer;
use strata_frontend::instructions;

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("STRATA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/buildkit")
        });
    assert!(
        dir.is_dir(),
        "conformance data not found at `{}`: check out `shared/` beside the repository or set STRATA_CONFORMANCE",
        dir.display()
    );
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("failed to read `{}`: {error}", path.display()))
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("failed to list `{}`: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Parse and also build typed instructions, as a real build would.
fn parse_fully(text: &str) -> Result<Dockerfile, strata_frontend::Error> {
    let file = strata_frontend::parse(text)?;
    instructions::from_dockerfile(&file)?;
    Ok(file)
}

#[test]
fn parser_cases_dump_like_buildkit() {
    let dirs = case_dirs(&data_dir().join("parser/testfiles"));
    assert_eq!(dirs.len(), 33, "expected BuildKit's 33 parser cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let text = read(&dir.join("Dockerfile"));
        let expected = read(&dir.join("result"));
        match strata_frontend::parse(&text) {
            Ok(file) => {
                if file.dump() != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{}",
                        dir.display(),
                        file.dump()
                    ));
                }
            }
            Err(error) => failures.push(format!("{}: {error}", dir.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn negative_cases_are_rejected() {
    let dirs = case_dirs(&data_dir().join("parser/testfiles-negative"));
    assert_eq!(dirs.len(), 4);
    for dir in &dirs {
        let text = read(&dir.join("Dockerfile"));
        let error = parse_fully(&text).expect_err(&dir.display().to_string());
        let name = dir.file_name().unwrap().to_str().unwrap();
        let expected = match name {
            "empty_dockerfile" | "only_comments" => "the Dockerfile has no instructions",
            "env_no_value" => "ENV must have two arguments",
            "shykes-nested-json" => {
                "when using JSON array syntax, arrays must be comprised of strings only"
            }
            other => panic!("unexpected negative case {other}"),
        };
        assert_eq!(error.to_string(), expected, "{name}");
    }
}

#[test]
fn line_numbers_cover_continuations() {
    let text = read(&data_dir().join("parser/testfile-line/Dockerfile"));
    let file = strata_frontend::parse(&text).unwrap();
    let lines: Vec<(usize, usize)> = file
        .nodes
        .iter()
        .map(|node| (node.start_line, node.end_line))
        .collect();
    assert_eq!(lines, vec![(5, 5), (11, 12), (17, 31)]);
}

#[test]
fn env_var_table() {
    let text = read(&data_dir().join("shell/envVarTest"));
    let env: BTreeMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut ran = 0;
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 3, "at line {}: {line}", number + 1);
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        // `W` cases are for Windows, where variable names are case-insensitive.
        if platform == "W" {
            continue;
        }
        ran += 1;
        let got = lexer.expand_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(value), expected) => value == expected,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "at line {}: {input:?}: expected {expected:?}, got {got:?}",
                number + 1
            ));
        }
    }
    assert!(ran > 200, "only {ran} cases ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_table() {
    let text = read(&data_dir().join("shell/wordsTest"));
    let mut env = BTreeMap::new();
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut ran = 0;
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            let assignment = assignment.trim_start_matches(' ');
            let (key, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.insert(key.to_owned(), value.to_owned());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "at line {}: {line}", number + 1);
        let input = fields[0].trim();
        let expected: Vec<String> = fields[1]
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_owned)
            .collect();
        ran += 1;
        let got = lexer
            .expand_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_owned()]);
        if got != expected {
            failures.push(format!(
                "at line {}: {input:?}: expected {expected:?}, got {got:?}",
                number + 1
            ));
        }
    }
    assert!(ran > 20, "only {ran} cases ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
