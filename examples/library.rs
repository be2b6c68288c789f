//! strata as a library: a build graph made by hand (no Dockerfile), solved
//! through `strata_solver::solve`, with a reporter of our own.
//!
//!     cargo run --example library -- [STORE]
//!
//! It builds `FROM scratch` + `COPY hello /hello` + `CMD ["/hello"]` from a
//! context it writes into a temporary directory, twice (the second time
//! from the cache), and prints what the reporter heard and the image ID.
//! STORE defaults to a temporary directory, removed at the end.

// An example's job is to print.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::sync::Mutex;

use strata_frontend::graph::{
    BuildGraph, ConfigEdit, CopySource, FileCopy, FileOp, GraphBuilder, Label, Op, Source,
    StageInfo, StepLabel, Vertex,
};
use strata_frontend::span::Span;
use strata_solver::solve::{self, BuildRequest, Event, Notice, Reporter, Session};
use strata_solver::store::Store;

/// Prints each step's fate as it happens.
struct Printer(Mutex<()>);

impl Reporter for Printer {
    fn event(&self, event: Event<'_>) {
        let _line = self.0.lock();
        match event {
            Event::Cached(vertex) => eprintln!("cached   {}", vertex.description()),
            Event::Missed(vertex, cause) => {
                eprintln!("runs     {} ({cause:?})", vertex.description())
            }
            Event::Finished(vertex, layer, took) => eprintln!(
                "done     {} in {took:?}{}",
                vertex.description(),
                if layer.is_some() { ", one layer" } else { "" }
            ),
            Event::Started(_) | Event::Output(..) => {}
        }
    }

    fn notice(&self, notice: Notice<'_>) {
        eprintln!("notice   {notice:?}");
    }
}

fn vertex(op: Op, inputs: Vec<usize>, previous: Option<usize>, label: Label) -> Vertex {
    Vertex {
        id: 0,
        digest: String::new(),
        op,
        inputs,
        previous,
        stage: 0,
        origin: None,
        created_by: None,
        label,
    }
}

fn step(number: usize, instruction: &str) -> Label {
    Label::Step(StepLabel {
        stage: "hello".to_owned(),
        number,
        total: 3,
        instruction: instruction.to_owned(),
    })
}

/// The graph a three-line Dockerfile would lower to.
fn graph() -> BuildGraph {
    let mut graph = GraphBuilder::new();
    let scratch = graph.add(vertex(
        Op::Source(Source::Scratch),
        vec![],
        None,
        Label::Scratch,
    ));
    let context = graph.add(vertex(
        Op::Source(Source::Context {
            name: "context".to_owned(),
        }),
        vec![],
        None,
        Label::Context,
    ));
    let copy = graph.add(vertex(
        Op::File(FileOp::Copy(Box::new(FileCopy {
            add: false,
            sources: vec![CopySource::Path {
                input: 1,
                path: "hello".to_owned(),
            }],
            destination: "/hello".to_owned(),
            chown: None,
            chmod: Some("755".to_owned()),
            link: false,
            exclude: Vec::new(),
            parents: false,
            checksum: None,
            keep_git_dir: false,
            unpack: None,
        }))),
        vec![scratch, context],
        Some(scratch),
        step(2, "COPY --chmod=755 hello /hello"),
    ));
    let cmd = graph.add(vertex(
        Op::Config(ConfigEdit::Cmd(vec!["/hello".to_owned()])),
        vec![],
        Some(copy),
        step(3, "CMD [\"/hello\"]"),
    ));
    graph
        .finish(
            vec![StageInfo {
                index: 0,
                name: Some("hello".to_owned()),
                base: "scratch".to_owned(),
                built: true,
                rootfs: Some(copy),
                last: Some(cmd),
                span: Span::new(0, 0),
            }],
            0,
        )
        .expect("the graph holds together")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let store_dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| work.path().join("store"), Into::into);
    let store = Store::open(store_dir)?;
    let context = work.path().join("context");
    std::fs::create_dir_all(&context)?;
    std::fs::write(context.join("hello"), "#!/bin/sh\necho hello\n")?;

    let session = Session {
        store: &store,
        registry: Default::default(),
    };
    let mut request = BuildRequest::new(&context);
    request.dockerfile_id = "examples/library.rs".to_owned();
    request.tags = vec!["library-example:latest".to_owned()];
    let graph = graph();
    let printer = Printer(Mutex::new(()));
    for _ in 0..2 {
        let solved = solve::solve(&session, &graph, &request, &printer)?;
        println!("{}", solved.image.id);
    }
    Ok(())
}
