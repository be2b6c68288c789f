//! The Dockerfile frontend of strata.
//!
//! # Brief overview
//!
//! Dockerfile text goes through four layers, each usable on its own:
//!
//! 1. [`parser::parse`]: text to a syntax tree ([`ast::Dockerfile`]) with byte
//!    spans, following BuildKit's parser rules (directives, continuations,
//!    JSON forms, heredocs).
//! 2. [`instructions`]: syntax tree to typed instructions, with flags checked.
//! 3. [`expand`]: BuildKit-compatible shell-word expansion of `$VAR` forms.
//! 4. [`graph`]: stages resolved, ARG scoping applied and the result lowered
//!    to a [`graph::BuildGraph`], plain data that the solver executes.
//!
//! Errors carry a [`Span`]; [`diagnostic::render`] turns one into a
//! `Dockerfile:LINE:COL` message with the source line and a caret.
//!
//! # Example
//!
//! ```
//! use strata_frontend::graph::{Op, Options};
//!
//! let dockerfile = "FROM busybox AS build\nRUN echo hi > /hi\nFROM scratch\nCOPY --from=build /hi /hi\n";
//! let compiled = strata_frontend::compile(dockerfile, &Options::default()).unwrap();
//!
//! // BuildKit's dump of the syntax tree.
//! assert_eq!(compiled.file.dump().lines().nth(1), Some("(run \"echo hi > /hi\")"));
//!
//! // The graph: the RUN is an exec step with the shell prepended.
//! let run = compiled.graph.vertices().find_map(|vertex| match vertex.op {
//!     Op::Exec(exec) => Some(exec),
//!     _ => None,
//! });
//! assert_eq!(run.unwrap().args, ["/bin/sh", "-c", "echo hi > /hi"]);
//!
//! // Errors render with the line, a caret and a hint.
//! let error = strata_frontend::compile("FROM busybox\nRUNN x\n", &Options::default()).unwrap_err();
//! let source = strata_frontend::diagnostic::Source::new("Dockerfile", "FROM busybox\nRUNN x\n");
//! assert!(strata_frontend::diagnostic::render(&error, &source).ends_with("hint: did you mean `RUN`?\n"));
//! ```

pub mod ast;
pub mod diagnostic;
pub mod error;
pub mod expand;
pub mod graph;
pub mod instructions;
pub mod lint;
pub mod outline;
pub mod parser;
pub mod span;
pub mod targets;

pub use error::{Error, ErrorKind, Warning};
pub use parser::parse;
pub use span::{LineIndex, Span};

/// The largest Dockerfile strata reads, in bytes: 16 MiB, BuildKit's own
/// limit. A BuildKit frontend reads the Dockerfile through the gateway's
/// `ReadFile` in one gRPC message, and both ends of that connection stop at
/// containerd's `defaults.DefaultMaxRecvMsgSize` (`16 << 20`;
/// `frontend/gateway/gateway.go`, `frontend/gateway/grpcclient/client.go`).
/// [`parse`] refuses larger text, and the CLI refuses a larger file on its
/// size, before reading it.
pub const MAX_DOCKERFILE_SIZE: usize = 16 << 20;

/// Everything [`compile`] produces.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The syntax tree.
    pub file: ast::Dockerfile,
    /// The typed stages.
    pub stages: instructions::Stages,
    /// The build graph.
    pub graph: graph::BuildGraph,
    /// Every warning, in the order found (parse, instructions, lowering).
    pub warnings: Vec<Warning>,
}

/// Parse, type and lower a Dockerfile as [`compile`] does, keeping only
/// the graph: its `warnings` are all of them, as [`Compiled::warnings`].
///
/// Each instruction is parsed and typed, for its errors and warnings, and
/// dropped; each stage's instructions are parsed and typed again, one at
/// a time, as the stage is lowered. So neither the syntax tree nor the
/// typed stages are held whole beside the graph, and memory stays in
/// proportion to the Dockerfile. Errors are those of [`compile`], and in
/// the same order: a parse error anywhere comes before any instruction's
/// error. [`compile_checked`] is the same with the warnings found before an
/// error kept.
pub fn compile_graph(text: &str, options: &graph::Options<'_>) -> Result<graph::BuildGraph, Error> {
    let report = compile_checked(text, options);
    match (report.graph, report.error) {
        (Some(mut graph), None) => {
            graph.warnings = report.warnings;
            Ok(graph)
        }
        (_, Some(error)) => Err(error),
        (None, None) => unreachable!("a report without a graph has an error"),
    }
}

/// [`compile_graph`], with the checks configured as the Dockerfile's
/// `# check=` directive (or the `BUILDKIT_DOCKERFILE_CHECK` build
/// argument) says, and the warnings found before an error kept, as
/// BuildKit reports them: those of the instructions typed before an
/// unknown one, of the FROM lines before a bad platform. A parse error
/// (an unterminated heredoc) comes with none, as in BuildKit, whose
/// checks start once the whole file is parsed.
///
/// This is what the CLI uses; `strata build --check` sets
/// [`graph::Options::all_stages`] to check every stage.
pub fn compile_checked(text: &str, options: &graph::Options<'_>) -> lint::Report {
    let mut linter = lint::Linter::default();
    let mut warnings = Vec::new();
    let mut directive = None;
    let outcome = compile_stream(text, options, &mut linter, &mut warnings, &mut directive);
    let build_arg = options
        .build_args
        .get(lint::CHECK_BUILD_ARG)
        .map(String::as_str);
    let config = match lint::config(
        directive
            .as_ref()
            .map(|(value, span): &(String, Span)| (value.as_str(), *span)),
        build_arg,
    ) {
        Ok(config) => config,
        Err(error) => {
            return lint::Report {
                warnings: Vec::new(),
                error: Some(error),
                graph: None,
            };
        }
    };
    let (mut found, overrides) = linter.finish(text);
    found.append(&mut warnings);
    let (mut graph, mut error) = match outcome {
        Ok(mut graph) => {
            found.append(&mut graph.warnings);
            (Some(graph), None)
        }
        Err(error) => (None, Some(error)),
    };
    let warnings = lint::finish(found, &config, &overrides, &mut error);
    if error.is_some() {
        graph = None;
    }
    lint::Report {
        warnings,
        error,
        graph,
    }
}

/// The pipeline of [`compile_checked`]: the warnings of the parser and of
/// the typing go to `warnings` (those of the lowering stay in the graph, or
/// join `warnings` when it fails), the syntax-wide checks to `linter`.
fn compile_stream(
    text: &str,
    options: &graph::Options<'_>,
    linter: &mut lint::Linter,
    warnings: &mut Vec<Warning>,
    directive: &mut Option<(String, Span)>,
) -> Result<graph::BuildGraph, Error> {
    let mut parser = parser::Parser::new(text)?;
    // Two readings: this one parses and types every instruction, for every
    // error and warning in order, but keeps only a summary of each stage;
    // the lowering reads each stage's text again and types it one
    // instruction at a time. Typed instructions held until lowered (260
    // bytes for `RUN true`) would be the most memory held at once, once
    // vertices are smaller than that.
    let mut splitter = instructions::Splitter::summarizing();
    let mut typing_error = None;
    loop {
        let next = parser.next_node();
        *directive = parser
            .directives()
            .iter()
            .find(|directive| directive.name == "check")
            .map(|directive| (directive.value.clone(), directive.span));
        let Some(mut node) = next? else { break };
        linter.node(&node);
        if typing_error.is_none() {
            let original = std::mem::take(&mut node.original);
            if let Err(error) = splitter.push_at(&node, original, parser.position()) {
                // Parsing goes on: a later parse error is the one reported.
                typing_error = Some(error);
            }
        }
    }
    let (escape, mut parsed) = parser.finish()?;
    warnings.append(&mut parsed);
    if let Some(error) = typing_error {
        // BuildKit types the instructions before its file-wide checks:
        // an instruction it cannot type leaves only the warnings of those
        // before it.
        warnings.append(&mut splitter.take_warnings());
        linter.discard_warnings();
        return Err(error);
    }
    let (stages, summaries) = splitter.finish_summarized(escape)?;
    graph::lower_owned(stages, Some((parser.text(), summaries)), options).map_err(|failed| {
        let (error, mut found) = *failed;
        warnings.append(&mut found);
        error
    })
}

/// Parse, type and lower a Dockerfile in one call.
pub fn compile(text: &str, options: &graph::Options<'_>) -> Result<Compiled, Error> {
    let file = parse(text)?;
    let stages = instructions::from_dockerfile(&file)?;
    let graph = graph::lower(&stages, options)?;
    // The same checks as [`compile_checked`], configured the same way.
    let mut linter = lint::Linter::default();
    for node in &file.nodes {
        linter.node(node);
    }
    let (mut found, overrides) = linter.finish(text);
    found.extend(file.warnings.iter().cloned());
    found.extend(graph.warnings.iter().cloned());
    let directive = file
        .directives
        .iter()
        .find(|directive| directive.name == "check")
        .map(|directive| (directive.value.as_str(), directive.span));
    let config = lint::config(
        directive,
        options
            .build_args
            .get(lint::CHECK_BUILD_ARG)
            .map(String::as_str),
    )?;
    let mut error = None;
    let warnings = lint::finish(found, &config, &overrides, &mut error);
    if let Some(error) = error {
        return Err(error);
    }
    Ok(Compiled {
        file,
        stages,
        graph,
        warnings,
    })
}
