//! Parse + expand + lower arbitrary input: nothing may panic or overflow.
//!
//! Run with `cargo +nightly fuzz run frontend` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use strata_frontend::diagnostic::{Source, render, render_warning};
use strata_frontend::expand::Lexer;
use strata_frontend::graph::Options;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source::new("Dockerfile", text);
    // The text as a Dockerfile, with a build arg and a target that may or
    // may not exist.
    let mut build_args = BTreeMap::new();
    build_args.insert("VERSION".to_owned(), "1.0".to_owned());
    for target in [None, Some("build".to_owned())] {
        let options = Options {
            target,
            build_args: build_args.clone(),
            ..Options::default()
        };
        match strata_frontend::compile(text, &options) {
            Ok(compiled) => {
                for warning in &compiled.warnings {
                    let _ = render_warning(warning, &source);
                }
                let _ = compiled.graph.levels();
                let _ = compiled.file.dump();
            }
            Err(error) => {
                let _ = render(&error, &source);
            }
        }
    }
    // The text as a word to expand, with both escape characters.
    let env: BTreeMap<String, String> =
        [("A".to_owned(), "a b*c".to_owned()), ("E".to_owned(), String::new())].into_iter().collect();
    for escape in ['\\', '`'] {
        let _ = Lexer::new(escape).expand(text, &env);
    }
});
