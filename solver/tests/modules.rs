//! The solver's module graph: which top-level module uses which.
//!
//! A top-level module (one `mod` of `src/lib.rs`) uses another when a file
//! under it names `crate::<other>` (in a path or a `use crate::{…}`
//! group; comments are not code). The graph must have no cycle, so that
//! each module can be read, tested and changed with only what is below it
//! in mind, and the store must be at the bottom: it reaches none of the
//! modules that build, run or move images.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the store must never reach, directly or through another module.
const ABOVE_THE_STORE: [&str; 6] = ["image", "container", "exec", "solve", "registry", "gc"];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules declared in `lib.rs`.
fn top_level_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(source_dir().join("lib.rs")).unwrap();
    lib.lines()
        .map(str::trim)
        .filter_map(|line| {
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            line.strip_prefix("mod ")?.strip_suffix(';')
        })
        .map(str::to_owned)
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

/// The module names `text` (code, comments removed) refers to as
/// `crate::<name>`, including each name of a `crate::{a, b::c}` group.
fn crate_references(text: &str) -> BTreeSet<String> {
    let identifier = |rest: &str| -> String {
        rest.chars()
            .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (index, _) in text.match_indices("crate::") {
        // Not the tail of a longer path (`strata_crate::`, say).
        let before = text[..index].chars().next_back();
        if before.is_some_and(|character| character.is_ascii_alphanumeric() || character == '_') {
            continue;
        }
        let rest = &text[index + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: those at brace depth 0.
            let mut depth = 0;
            let mut start = true;
            for (offset, character) in group.char_indices() {
                match character {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    character if start && !character.is_whitespace() => {
                        start = false;
                        names.insert(identifier(&group[offset..]));
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(identifier(rest));
        }
    }
    names
}

/// Source text without `//` comments (doc links are not uses).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module → the other top-level modules it uses.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_level_modules();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|module| (module.clone(), BTreeSet::new()))
        .collect();
    let mut files = Vec::new();
    rust_files(&source_dir(), &mut files);
    for file in files {
        let relative = file.strip_prefix(source_dir()).unwrap();
        let first = relative.components().next().unwrap();
        let first = first.as_os_str().to_str().unwrap();
        let module = first.strip_suffix(".rs").unwrap_or(first);
        if module == "lib" {
            continue;
        }
        assert!(
            modules.contains(module),
            "`{}` belongs to no module of lib.rs",
            relative.display()
        );
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for used in crate_references(&code) {
            if used != module && modules.contains(&used) {
                graph.get_mut(module).unwrap().insert(used);
            }
        }
    }
    graph
}

/// Everything `from` reaches in `graph`.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(module) = stack.pop() {
        for next in &graph[&module] {
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    seen
}

/// A cycle of `graph` (its modules in order), if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in &graph[module] {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let code = code_of(
        "use crate::store::{Store, StoreError};\n\
         use crate::{digest::Digest, layer::{self, Owners}, time};\n\
         let x = crate::exec::interrupted(); // crate::image is a comment\n\
         use strata_crate::nothing;",
    );
    let names: Vec<String> = crate_references(&code).into_iter().collect();
    assert_eq!(names, ["digest", "exec", "layer", "store", "time"]);
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph.entry(to.to_string()).or_default();
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        graph
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("store") && graph.contains_key("solve"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the solver's modules use each other in a cycle: {}; move what both \
             need down a level\n{graph:#?}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_store_is_at_the_bottom() {
    let graph = module_graph();
    let reached = reachable(&graph, "store");
    for above in ABOVE_THE_STORE {
        assert!(
            !reached.contains(above),
            "the store reaches `{above}` (it reaches {reached:?}): what the store \
             needs from above is passed in by its callers"
        );
    }
}
