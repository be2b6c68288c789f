//! A build graph made by hand, without a Dockerfile, solved through the one
//! facade (`solve::solve` and `solve::explain`) with a reporter that
//! records what it hears: what a library user or a remote frontend does.

use std::io::Read;
use std::sync::Mutex;

use strata_frontend::graph::{
    ConfigEdit, CopySource, FileCopy, FileOp, GraphBuilder, Label, Op, Source, StageInfo,
    StepLabel, Vertex,
};
use strata_frontend::span::Span;
use strata_solver::registry::Transfer;
use strata_solver::solve::cause::Cause;
use strata_solver::solve::{self, BuildRequest, Event, Notice, Phase, Reporter, Session};
use strata_solver::store::Store;

/// What the reporter heard, one line per event, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Reporter for Recorder {
    fn event(&self, event: Event<'_>) {
        let line = match event {
            Event::Started(vertex) => format!("started {}", vertex.description()),
            Event::Output(vertex, _) => format!("output {}", vertex.description()),
            Event::Finished(vertex, layer, _) => format!(
                "finished {} layer={}",
                vertex.description(),
                layer.is_some()
            ),
            Event::Cached(vertex) => format!("cached {}", vertex.description()),
            Event::Missed(vertex, cause) => {
                let why = match cause {
                    Cause::NoCache => "no-cache".to_owned(),
                    Cause::NoPrevious => "no-previous".to_owned(),
                    Cause::Changed(change) => format!("changed {change:?}"),
                    Cause::After(id) => format!("after #{id}"),
                };
                format!("missed {} ({why})", vertex.description())
            }
        };
        self.0.lock().unwrap().push(line);
    }

    fn transfer(&self, phase: Phase, _: Transfer<'_>) {
        self.0.lock().unwrap().push(format!("transfer {phase:?}"));
    }

    fn notice(&self, notice: Notice<'_>) {
        self.0.lock().unwrap().push(format!("notice {notice:?}"));
    }
}

fn step(number: usize, instruction: &str) -> Label {
    Label::Step(StepLabel {
        stage: "app".to_owned(),
        number,
        total: 3,
        instruction: instruction.to_owned(),
    })
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

/// `COPY hello DESTINATION`, `hello` being in input 1 (the context).
fn copy_hello(destination: &str) -> Op {
    Op::File(FileOp::Copy(Box::new(FileCopy {
        add: false,
        sources: vec![CopySource::Path {
            input: 1,
            path: "hello".to_owned(),
        }],
        destination: destination.to_owned(),
        chown: None,
        chmod: None,
        link: false,
        exclude: Vec::new(),
        parents: false,
        checksum: None,
        keep_git_dir: false,
        unpack: None,
    })))
}

/// `FROM scratch`, `COPY hello /greeting`, `ENV GREETING=hello`: by hand.
fn graph() -> strata_frontend::graph::BuildGraph {
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
    let mut copy = vertex(
        copy_hello("/greeting"),
        vec![scratch, context],
        Some(scratch),
        step(2, "COPY hello /greeting"),
    );
    copy.created_by = Some("COPY hello /greeting # buildkit".to_owned());
    let copy = graph.add(copy);
    let mut env = vertex(
        Op::Config(ConfigEdit::Env(vec![(
            "GREETING".to_owned(),
            "hello".to_owned(),
        )])),
        vec![],
        Some(copy),
        step(3, "ENV GREETING=hello"),
    );
    env.created_by = Some("ENV GREETING=hello".to_owned());
    let env = graph.add(env);
    assert_eq!(graph.vertex(copy).id, copy);
    assert!(graph.vertex(copy).digest.starts_with("sha256:"));
    graph
        .finish(
            vec![StageInfo {
                index: 0,
                name: Some("app".to_owned()),
                base: "scratch".to_owned(),
                built: true,
                rootfs: Some(copy),
                last: Some(env),
                span: Span::new(0, 0),
            }],
            0,
        )
        .expect("the graph holds together")
}

#[test]
fn a_graph_made_by_hand_solves_through_the_facade() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("hello"), "hello, world\n").unwrap();
    let graph = graph();
    let session = Session {
        store: &store,
        registry: Default::default(),
    };
    let mut request = BuildRequest::new(&context);
    request.dockerfile_id = "by-hand".to_owned();
    request.tags = vec!["by-hand:1".to_owned()];
    request.epoch = Some(0);
    let recorder = Recorder::default();

    // `explain` first: the plan against an empty cache, nothing run.
    solve::explain(&session, &graph, &request, &recorder).unwrap();
    let heard = recorder.take();
    assert!(
        heard.contains(&"missed [app 2/3] COPY hello /greeting (no-previous)".to_owned()),
        "{heard:#?}"
    );
    assert!(
        !heard.iter().any(|line| line.starts_with("finished")),
        "{heard:#?}"
    );
    assert!(strata_solver::image::resolve(&store, "by-hand:1").is_err());

    let solved = solve::solve(&session, &graph, &request, &recorder).unwrap();
    let heard = recorder.take();
    let copy: Vec<&String> = heard
        .iter()
        .filter(|line| line.contains("COPY hello /greeting"))
        .collect();
    assert_eq!(
        copy,
        [
            "missed [app 2/3] COPY hello /greeting (no-previous)",
            "started [app 2/3] COPY hello /greeting",
            "finished [app 2/3] COPY hello /greeting layer=true",
        ],
        "{heard:#?}"
    );

    // What was made: one layer holding the file, the ENV in the config,
    // recorded under its name.
    assert_eq!(solved.tags, ["by-hand:1"]);
    assert_eq!(
        strata_solver::image::resolve(&store, "by-hand:1")
            .unwrap()
            .id,
        solved.image.id
    );
    assert_eq!(solved.image.layers.len(), 1);
    let mut archive = tar::Archive::new(store.open_blob(&solved.image.layers[0].digest).unwrap());
    let mut found = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("greeting") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            found = Some(text);
        }
    }
    assert_eq!(found.as_deref(), Some("hello, world\n"));
    let mut config = String::new();
    store
        .open_blob(&solved.image.config)
        .unwrap()
        .read_to_string(&mut config)
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!([
            format!("PATH={}", strata_frontend::graph::DEFAULT_PATH),
            "GREETING=hello"
        ])
    );

    // Again: every step from the cache, the same image.
    let again = solve::solve(&session, &graph, &request, &recorder).unwrap();
    let heard = recorder.take();
    assert!(
        heard.contains(&"cached [app 2/3] COPY hello /greeting".to_owned()),
        "{heard:#?}"
    );
    assert!(
        !heard.iter().any(|line| line.starts_with("started")),
        "{heard:#?}"
    );
    assert_eq!(again.image.id, solved.image.id);
}

#[test]
fn a_graph_that_does_not_hold_together_is_refused_before_anything_runs() {
    // A COPY naming its input 1 while it has only its parent.
    let broken = |last_offset: usize| {
        let mut graph = GraphBuilder::new();
        let scratch = graph.add(vertex(
            Op::Source(Source::Scratch),
            vec![],
            None,
            Label::Scratch,
        ));
        let copy = graph.add(vertex(
            copy_hello("/"),
            vec![scratch],
            Some(scratch),
            step(2, "COPY hello /"),
        ));
        let stage = StageInfo {
            index: 0,
            name: None,
            base: "scratch".to_owned(),
            built: true,
            rootfs: Some(copy),
            last: Some(copy + last_offset),
            span: Span::new(0, 0),
        };
        graph.finish(vec![stage], 0).unwrap_err().to_string()
    };
    assert_eq!(
        broken(1),
        "stage stage-0 names vertex 2, which is not in the graph"
    );
    assert_eq!(
        broken(0),
        "vertex 1 reads its input 1, which it does not have"
    );
}
