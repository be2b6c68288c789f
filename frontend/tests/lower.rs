//! What lowering produces: the resolved steps, their digests and the stages
//! a target needs.

use std::collections::BTreeMap;

use strata_frontend::graph::{
    BuildGraph, ConfigEdit, CopySource, Exec, FileOp, ImageConfig, ImageResolver, Op, Options,
    Platform, ResolveError, Resolved, Source,
};

fn compile_with(dockerfile: &str, options: &Options<'_>) -> BuildGraph {
    match strata_frontend::compile(dockerfile, options) {
        Ok(compiled) => compiled.graph,
        Err(error) => {
            let source = strata_frontend::diagnostic::Source::new("Dockerfile", dockerfile);
            panic!("{}", strata_frontend::diagnostic::render(&error, &source));
        }
    }
}

fn compile(dockerfile: &str) -> BuildGraph {
    compile_with(dockerfile, &Options::default())
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The exec steps of the target stage's chain, in order.
fn execs(graph: &BuildGraph) -> Vec<Exec> {
    let last = graph.target_stage().last.unwrap();
    graph
        .chain(last)
        .into_iter()
        .filter_map(|id| match graph.vertex(id).op {
            Op::Exec(exec) => Some(*exec),
            _ => None,
        })
        .collect()
}

fn env_of<'e>(exec: &'e Exec, name: &str) -> Option<&'e str> {
    exec.env
        .iter()
        .rev()
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
}

fn config_edits(graph: &BuildGraph) -> Vec<ConfigEdit> {
    let last = graph.target_stage().last.unwrap();
    graph
        .chain(last)
        .into_iter()
        .filter_map(|id| match graph.vertex(id).op {
            Op::Config(edit) => Some(edit),
            _ => None,
        })
        .collect()
}

fn digests(graph: &BuildGraph) -> Vec<String> {
    graph
        .vertices()
        .map(|vertex| vertex.digest.clone())
        .collect()
}

#[test]
fn meta_args_reach_from_but_not_the_stage() {
    let graph = compile("ARG BASE=alpine:3.20\nARG VERSION=1\nFROM $BASE\nRUN echo $VERSION\n");
    assert_eq!(graph.target_stage().base, "alpine:3.20");
    let exec = &execs(&graph)[0];
    assert_eq!(
        env_of(exec, "VERSION"),
        None,
        "meta ARGs need redeclaring in the stage"
    );
}

#[test]
fn redeclared_arg_inherits_the_global_value_and_build_args_override() {
    let dockerfile = "ARG VERSION=1\nFROM busybox\nARG VERSION\nARG OTHER=x-$VERSION\nRUN true\n";
    let exec_env =
        |graph: &BuildGraph, name: &str| env_of(&execs(graph)[0], name).map(str::to_owned);
    let graph = compile(dockerfile);
    assert_eq!(exec_env(&graph, "VERSION").as_deref(), Some("1"));
    assert_eq!(exec_env(&graph, "OTHER").as_deref(), Some("x-1"));
    let options = Options {
        build_args: args(&[("VERSION", "2"), ("OTHER", "given")]),
        ..Options::default()
    };
    let graph = compile_with(dockerfile, &options);
    assert_eq!(exec_env(&graph, "VERSION").as_deref(), Some("2"));
    assert_eq!(exec_env(&graph, "OTHER").as_deref(), Some("given"));
    assert!(
        graph
            .warnings
            .iter()
            .all(|warning| warning.rule != "UnusedBuildArg")
    );
}

#[test]
fn env_wins_over_arg() {
    let graph = compile("FROM busybox\nARG MODE=arg\nENV MODE=env\nWORKDIR /$MODE\nRUN true\n");
    let exec = &execs(&graph)[0];
    assert_eq!(exec.cwd, "/env");
    assert_eq!(
        exec.env
            .iter()
            .filter(|entry| entry.starts_with("MODE="))
            .count(),
        1
    );
    assert_eq!(env_of(exec, "MODE"), Some("env"));
}

#[test]
fn env_pairs_see_values_from_before_the_instruction() {
    let graph = compile("FROM busybox\nENV A=1\nENV A=2 B=$A\nRUN true\n");
    let exec = &execs(&graph)[0];
    assert_eq!(env_of(exec, "A"), Some("2"));
    assert_eq!(env_of(exec, "B"), Some("1"));
    assert_eq!(
        env_of(exec, "PATH"),
        Some(strata_frontend::graph::DEFAULT_PATH)
    );
}

#[test]
fn unused_build_args_are_reported() {
    let options = Options {
        build_args: args(&[("NOPE", "1"), ("HTTP_PROXY", "http://proxy:3128")]),
        ..Options::default()
    };
    let graph = compile_with("FROM busybox\nRUN true\n", &options);
    let unused: Vec<&str> = graph
        .warnings
        .iter()
        .filter(|warning| warning.rule == "UnusedBuildArg")
        .map(|warning| warning.message.as_str())
        .collect();
    assert_eq!(
        unused,
        vec!["one or more build args were not consumed: NOPE"]
    );
}

#[test]
fn proxy_args_reach_run_but_not_the_digest() {
    let dockerfile = "FROM busybox\nRUN wget example.org\n";
    let plain = compile(dockerfile);
    let options = Options {
        build_args: args(&[("HTTP_PROXY", "http://proxy:3128")]),
        ..Options::default()
    };
    let proxied = compile_with(dockerfile, &options);
    assert_eq!(
        execs(&proxied)[0].proxy_env,
        // Both cases, as BuildKit's executor sets them.
        vec![
            "HTTP_PROXY=http://proxy:3128",
            "http_proxy=http://proxy:3128"
        ]
    );
    assert_eq!(digests(&plain), digests(&proxied));
}

#[test]
fn platform_args() {
    let options = Options {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..Options::default()
    };
    let graph = compile_with(
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETARCH\nRUN echo $TARGETARCH\nFROM busybox\nCOPY --from=build /x /x\n",
        &options,
    );
    let build = &graph.stages[0];
    let Op::Source(Source::Image { platform, .. }) =
        graph.vertex(graph.chain(build.last.unwrap())[0]).op
    else {
        panic!("stage starts from an image");
    };
    assert_eq!(platform, Platform::host().to_string());
    let exec = graph
        .vertices()
        .find_map(|vertex| match vertex.op {
            Op::Exec(exec) => Some(exec),
            _ => None,
        })
        .unwrap();
    assert_eq!(env_of(&exec, "TARGETARCH"), Some("arm64"));
}

#[test]
fn target_prunes_unneeded_stages() {
    let dockerfile = "FROM busybox AS deps\nRUN echo deps\nFROM busybox AS test\nRUN echo test\nFROM busybox AS app\nCOPY --from=deps /d /d\n";
    let graph = compile(dockerfile);
    let built: Vec<bool> = graph.stages.iter().map(|stage| stage.built).collect();
    assert_eq!(built, vec![true, false, true]);
    assert!(
        !graph
            .vertices()
            .any(|vertex| vertex.description().contains("echo test"))
    );

    let options = Options {
        target: Some("TEST".to_owned()),
        ..Options::default()
    };
    let graph = compile_with(dockerfile, &options);
    assert_eq!(graph.target_stage().name.as_deref(), Some("test"));
    let built: Vec<bool> = graph.stages.iter().map(|stage| stage.built).collect();
    assert_eq!(built, vec![false, true, false]);
}

#[test]
fn copy_from_index_and_image() {
    let graph = compile(
        "FROM busybox\nRUN echo > /a\nFROM busybox\nCOPY --from=0 /a /a\nCOPY --from=alpine:3.20 /etc/os-release /\n",
    );
    let copies: Vec<(FileOp, Vec<usize>)> = graph
        .vertices()
        .filter_map(|vertex| match vertex.op {
            Op::File(op @ FileOp::Copy(_)) => Some((op, vertex.inputs)),
            _ => None,
        })
        .collect();
    assert_eq!(copies.len(), 2);
    let first_input = copies[0].1[1];
    assert!(matches!(graph.vertex(first_input).op, Op::Exec(_)));
    let second_input = copies[1].1[1];
    assert!(matches!(
        &graph.vertex(second_input).op,
        Op::Source(Source::Image { reference, .. }) if reference == "alpine:3.20"
    ));
}

#[test]
fn digests_are_stable_and_follow_semantics() {
    let base = "FROM busybox\nLABEL a=1\nENV X=1\nRUN echo one\nRUN echo two\n";
    let first = compile(base);
    let again = compile(base);
    assert_eq!(digests(&first), digests(&again));

    // Moving instructions to other lines (comments, blank lines) changes nothing.
    let moved = compile(
        "# a comment\n\nFROM busybox\n\nLABEL a=1\nENV X=1\n\nRUN echo one\nRUN echo two\n",
    );
    assert_eq!(digests(&first), digests(&moved));

    let exec_digests = |graph: &BuildGraph| -> Vec<String> {
        graph
            .vertices()
            .filter(|vertex| matches!(vertex.op, Op::Exec(_)))
            .map(|vertex| vertex.digest.clone())
            .collect()
    };
    // A LABEL does not touch the filesystem: the RUNs keep their digests.
    let relabeled = compile(&base.replace("a=1", "a=2"));
    assert_eq!(exec_digests(&first), exec_digests(&relabeled));
    // ENV reaches the RUNs: both change.
    let reenv = compile(&base.replace("X=1", "X=2"));
    let (old, new) = (exec_digests(&first), exec_digests(&reenv));
    assert!(old[0] != new[0] && old[1] != new[1]);
    // Changing the second RUN leaves the first alone.
    let second = compile(&base.replace("echo two", "echo 2"));
    let new = exec_digests(&second);
    assert_eq!(old[0], new[0]);
    assert_ne!(old[1], new[1]);
    // A build arg that reaches a RUN is part of its digest.
    let with_arg = "FROM busybox\nARG V=1\nRUN echo\n";
    let options = Options {
        build_args: args(&[("V", "2")]),
        ..Options::default()
    };
    assert_ne!(
        exec_digests(&compile(with_arg)),
        exec_digests(&compile_with(with_arg, &options))
    );
}

#[test]
fn identical_steps_in_two_stages_are_one_vertex() {
    let graph = compile(
        "FROM busybox AS a\nRUN make\nFROM busybox AS b\nRUN make\nFROM busybox\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n",
    );
    let runs = graph
        .vertices()
        .filter(|vertex| matches!(vertex.op, Op::Exec(_)))
        .count();
    assert_eq!(runs, 1);
    assert_eq!(graph.stages[0].rootfs, graph.stages[1].rootfs);
}

#[test]
fn shell_and_exec_forms() {
    let graph = compile(
        "FROM busybox\nRUN echo $HOME\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN echo hi\nRUN [\"echo\", \"$HOME\"]\n",
    );
    let args: Vec<Vec<String>> = execs(&graph).iter().map(|exec| exec.args.clone()).collect();
    assert_eq!(args[0], ["/bin/sh", "-c", "echo $HOME"]);
    assert_eq!(args[1], ["/bin/bash", "-eu", "-c", "echo hi"]);
    assert_eq!(args[2], ["echo", "$HOME"]);
}

#[test]
fn run_heredocs() {
    let graph = compile(
        "FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<-'EOT'\n\t#!/bin/sh\n\techo three\n\tEOT\nRUN cat <<A > /a && cat <<B > /b\nfirst\nA\nsecond\nB\n",
    );
    let execs = execs(&graph);
    assert_eq!(execs[0].args, ["/bin/sh", "-c", "echo one\necho two\n"]);
    // The shell runs the script, as BuildKit's `sh -c /dev/pipes/EOT`.
    assert_eq!(execs[1].args, ["/bin/sh", "-c", "/dev/pipes/EOT"]);
    assert_eq!(execs[1].files[0].content, "#!/bin/sh\necho three\n");
    assert_eq!(execs[1].files[0].mode, 0o755);
    assert_eq!(
        execs[2].args,
        [
            "/bin/sh",
            "-c",
            "cat <<A > /a && cat <<B > /b\nfirst\nA\nsecond\nB"
        ]
    );
}

#[test]
fn copy_heredocs_expand_unless_quoted() {
    let graph = compile(
        "FROM busybox\nARG NAME=world\nCOPY <<EOF <<'RAW' /etc/\nhello $NAME\nEOF\nhello $NAME\nRAW\n",
    );
    let copy = graph
        .vertices()
        .find_map(|vertex| match vertex.op {
            Op::File(FileOp::Copy(copy)) => Some(copy),
            _ => None,
        })
        .unwrap();
    let contents: Vec<(&str, &str)> = copy
        .sources
        .iter()
        .map(|source| match source {
            CopySource::Inline(file) => (file.path.as_str(), file.content.as_str()),
            other => panic!("expected heredoc sources, got {other:?}"),
        })
        .collect();
    assert_eq!(
        contents,
        vec![("EOF", "hello world\n"), ("RAW", "hello $NAME\n")]
    );
    assert_eq!(copy.destination, "/etc/");
}

#[test]
fn paths_resolve_against_workdir() {
    let graph = compile(
        "FROM busybox\nWORKDIR /app\nWORKDIR src/../lib\nCOPY a.txt ./\nCOPY b.txt c/\nADD --chmod=0755 --chown=app:app https://example.org/x.sh x.sh\nRUN pwd\n",
    );
    let copies: Vec<strata_frontend::graph::FileCopy> = graph
        .vertices()
        .filter_map(|vertex| match vertex.op {
            Op::File(FileOp::Copy(copy)) => Some(*copy),
            _ => None,
        })
        .collect();
    let destinations: Vec<&str> = copies
        .iter()
        .map(|copy| copy.destination.as_str())
        .collect();
    assert_eq!(
        destinations,
        vec!["/app/lib/", "/app/lib/c/", "/app/lib/x.sh"]
    );
    assert_eq!(
        copies[2].sources,
        vec![CopySource::Url {
            url: "https://example.org/x.sh".to_owned()
        }]
    );
    assert_eq!(copies[2].chmod.as_deref(), Some("0755"));
    assert_eq!(copies[2].chown.as_deref(), Some("app:app"));
    assert_eq!(execs(&graph)[0].cwd, "/app/lib");
    let mkdirs: Vec<String> = graph
        .vertices()
        .filter_map(|vertex| match vertex.op {
            Op::File(FileOp::Mkdir { path, .. }) => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(mkdirs, vec!["/app", "/app/lib"]);
}

#[test]
fn config_edits_in_order() {
    let graph = compile(
        "FROM busybox\nLABEL a=\"x y\" b=2\nEXPOSE 80 53/udp\nUSER app:app\nVOLUME [\"/data\"]\nSTOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\nENTRYPOINT [\"/bin/app\"]\nCMD [\"--help\"]\nONBUILD RUN make\n",
    );
    let edits = config_edits(&graph);
    assert_eq!(
        edits[0],
        ConfigEdit::Label(vec![("a".into(), "x y".into()), ("b".into(), "2".into())])
    );
    assert_eq!(
        edits[1],
        ConfigEdit::Expose(vec!["80/tcp".into(), "53/udp".into()])
    );
    assert_eq!(edits[2], ConfigEdit::User("app:app".into()));
    assert_eq!(edits[3], ConfigEdit::Volume(vec!["/data".into()]));
    assert_eq!(edits[4], ConfigEdit::StopSignal("SIGINT".into()));
    let ConfigEdit::Healthcheck(health) = &edits[5] else {
        panic!()
    };
    assert_eq!(health.test, ["CMD-SHELL", "wget -q localhost"]);
    assert_eq!((health.interval, health.retries), (5_000_000_000, 3));
    assert_eq!(edits[6], ConfigEdit::Entrypoint(vec!["/bin/app".into()]));
    assert_eq!(edits[7], ConfigEdit::Cmd(vec!["--help".into()]));
    assert_eq!(edits[8], ConfigEdit::Onbuild("RUN make".into()));
}

#[test]
fn mounts_resolve_their_sources() {
    let graph = compile(
        "FROM busybox AS tools\nRUN echo > /tool\nFROM busybox\nRUN --mount=type=bind,from=tools,source=/tool,target=/t \\\n    --mount=type=bind,target=/src \\\n    --mount=type=cache,target=.cache \\\n    --mount=type=secret,id=token \\\n    cat /t\n",
    );
    let exec = &execs(&graph)[0];
    let vertex = graph
        .vertices()
        .find(|vertex| matches!(&vertex.op, Op::Exec(e) if **e == *exec))
        .unwrap();
    assert_eq!(exec.mounts.len(), 4);
    let tools = &graph.vertex(vertex.inputs[exec.mounts[0].input.unwrap()]);
    assert!(
        matches!(tools.op, Op::Exec(_)),
        "mount from a stage reads that stage"
    );
    let context = &graph.vertex(vertex.inputs[exec.mounts[1].input.unwrap()]);
    assert!(matches!(context.op, Op::Source(Source::Context { .. })));
    assert_eq!(exec.mounts[2].target, "/.cache");
    assert_eq!(exec.mounts[3].target, "/run/secrets/token");
    assert!(exec.mounts[3].input.is_none());
}

struct FakeRegistry;

impl ImageResolver for FakeRegistry {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<Resolved, ResolveError> {
        if reference != "base:onbuild" {
            return Err(ResolveError::Unknown(reference.to_owned()));
        }
        let config = ImageConfig {
            env: vec!["PATH=/opt/bin:/bin".to_owned(), "LANG=C.UTF-8".to_owned()],
            user: "builder".to_owned(),
            workdir: "/src".to_owned(),
            shell: Vec::new(),
            onbuild: vec![
                "RUN echo triggered".to_owned(),
                "ENV FROM_TRIGGER=yes".to_owned(),
            ],
            platform: None,
        };
        Ok(Resolved {
            reference: reference.to_owned(),
            digest: format!("sha256:{}", "0".repeat(64)),
            config,
        })
    }
}

#[test]
fn base_image_config_and_onbuild_triggers() {
    let resolver = FakeRegistry;
    let options = Options {
        resolver: Some(&resolver),
        ..Options::default()
    };
    let graph = compile_with(
        "FROM base:onbuild\nENV PATH=$PATH:/extra\nRUN make\n",
        &options,
    );
    let execs = execs(&graph);
    assert_eq!(execs[0].args, ["/bin/sh", "-c", "echo triggered"]);
    assert_eq!(execs[0].user, "builder");
    assert_eq!(execs[0].cwd, "/src");
    assert_eq!(env_of(&execs[1], "PATH"), Some("/opt/bin:/bin:/extra"));
    assert_eq!(env_of(&execs[1], "FROM_TRIGGER"), Some("yes"));
    assert_eq!(env_of(&execs[1], "LANG"), Some("C.UTF-8"));
}

#[test]
fn stages_reference_each_other_deeply_without_recursion() {
    // 20,000 stages, each built on the one before.
    let mut dockerfile = String::from("FROM busybox AS s0\n");
    for index in 1..20_000 {
        dockerfile.push_str(&format!(
            "FROM s{} AS s{index}\nRUN echo {index}\n",
            index - 1
        ));
    }
    let graph = compile(&dockerfile);
    assert!(graph.stages.iter().all(|stage| stage.built));
    assert_eq!(execs(&graph).len(), 19_999);
}

#[test]
fn huge_inputs_are_handled() {
    // 100,000 continuation lines in one RUN.
    let mut dockerfile = String::from("FROM busybox\nRUN true");
    for _ in 0..100_000 {
        dockerfile.push_str(" \\\n  && true");
    }
    dockerfile.push('\n');
    let compiled = strata_frontend::compile(&dockerfile, &Options::default()).unwrap();
    let node = &compiled.file.nodes[1];
    assert_eq!((node.start_line, node.end_line), (2, 100_002));
    assert_eq!(
        execs(&compiled.graph)[0].args[2].matches("&& true").count(),
        100_000
    );

    // A 10 MB single line: parsed, and its error rendered compactly.
    let long = format!("FROM busybox\nRUN echo {}\n", "x".repeat(10 * 1024 * 1024));
    assert!(strata_frontend::compile(&long, &Options::default()).is_ok());
    let bad = format!("FROM busybox\nENV A=\"{}\n", "x".repeat(10 * 1024 * 1024));
    let error = strata_frontend::compile(&bad, &Options::default()).unwrap_err();
    let rendered = strata_frontend::diagnostic::render(
        &error,
        &strata_frontend::diagnostic::Source::new("Dockerfile", &bad),
    );
    assert!(rendered.starts_with("error: unexpected end of statement while looking for matching double-quote\n --> Dockerfile:2:7\n"), "{}", &rendered[..200]);
    assert!(rendered.len() < 1000);

    // Deeply nested substitutions are refused, not a stack overflow.
    let nested = format!(
        "FROM busybox\nENV A={}x{}\n",
        "${B:-".repeat(100_000),
        "}".repeat(100_000)
    );
    let error = strata_frontend::compile(&nested, &Options::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "substitutions are nested more than 64 levels deep"
    );
}

#[test]
fn history_entries_as_docker_writes_them() {
    let graph = compile(
        "FROM busybox\nENV A=1 B=2\nARG V=1\nWORKDIR /app\nRUN echo hi\nCOPY a b\nLABEL x=y\nCMD [\"x\"]\n",
    );
    let last = graph.target_stage().last.unwrap();
    let history: Vec<String> = graph
        .chain(last)
        .into_iter()
        .filter_map(|id| graph.vertex(id).created_by)
        .collect();
    assert_eq!(
        history,
        vec![
            "ENV A=1 B=2",
            // BuildKit's ARG entry (testExportedHistoryFlattenArgs).
            "ARG V=1",
            "WORKDIR /app",
            "RUN |1 V=1 /bin/sh -c echo hi # buildkit",
            "COPY a b # buildkit",
            "LABEL x=y",
            "CMD [\"x\"]",
        ]
    );
}

#[test]
fn a_run_carries_its_build_args_as_pairs_and_its_label_as_data() {
    let options = Options {
        build_args: args(&[("GREETING", "hello  world"), ("SHADOWED", "arg")]),
        ..Options::default()
    };
    let graph = compile_with(
        "FROM busybox AS build\nARG GREETING\nARG SHADOWED\nENV SHADOWED=env\nRUN echo \"$GREETING\"\n",
        &options,
    );
    let run = graph
        .vertices()
        .find(|vertex| matches!(vertex.op, Op::Exec(_)))
        .unwrap();
    let Op::Exec(exec) = &run.op else {
        unreachable!()
    };
    // ENV shadows SHADOWED: only GREETING reaches the RUN as a build arg.
    assert_eq!(
        exec.build_args,
        [("GREETING".to_owned(), "hello  world".to_owned())]
    );
    assert_eq!(env_of(exec, "GREETING"), Some("hello  world"));
    assert_eq!(env_of(exec, "SHADOWED"), Some("env"));
    assert_eq!(
        run.created_by.as_deref(),
        Some("RUN |1 GREETING=hello  world /bin/sh -c echo \"$GREETING\" # buildkit")
    );
    let strata_frontend::graph::Label::Step(label) = &run.label else {
        panic!("a RUN has a step label: {:?}", run.label)
    };
    assert_eq!(
        (
            label.stage.as_str(),
            label.number,
            label.total,
            label.keyword()
        ),
        // One stage: no name, as BuildKit; FROM an image and the RUN are
        // its steps (ARG and ENV are none).
        ("", 2, 2, "RUN")
    );
    assert_eq!(run.description(), "[2/2] RUN echo \"$GREETING\"");
}

/// A Dockerfile of 20,000 LABELs compiles in proportion to its size: each
/// LABEL's vertex holds its own pair, not the image's labels so far (which
/// would make the graph quadratic), and the CLI's one-node-at-a-time path
/// makes the same graph.
/// See: issue 16, "Memory in proportion".
#[test]
fn many_labels_stay_linear() {
    const LABELS: usize = 20_000;
    let mut dockerfile = String::from("FROM scratch\n");
    for index in 0..LABELS {
        dockerfile.push_str(&format!("LABEL k{index}=v{index}\n"));
    }
    let graph = compile(&dockerfile);
    assert_eq!(graph.len(), LABELS + 1);
    let pairs: usize = graph
        .vertices()
        .map(|vertex| match &vertex.op {
            Op::Config(ConfigEdit::Label(pairs)) => pairs.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(pairs, LABELS);
    let last = graph.vertex(graph.len() - 1);
    assert_eq!(
        last.op,
        Op::Config(ConfigEdit::Label(vec![("k19999".into(), "v19999".into())]))
    );
    let streamed = strata_frontend::compile_graph(&dockerfile, &Options::default()).unwrap();
    assert!(
        streamed
            .vertices()
            .zip(graph.vertices())
            .all(|(a, b)| a.digest == b.digest)
    );
}

/// Text over BuildKit's 16 MiB is refused before it is parsed.
#[test]
fn dockerfiles_over_16_mib_are_refused() {
    let text = format!(
        "FROM scratch\n{}",
        "#".repeat(strata_frontend::MAX_DOCKERFILE_SIZE)
    );
    for error in [
        strata_frontend::compile(&text, &Options::default()).unwrap_err(),
        strata_frontend::compile_graph(&text, &Options::default()).unwrap_err(),
    ] {
        assert_eq!(error.kind, strata_frontend::ErrorKind::TooLarge);
        assert_eq!(
            error.to_string(),
            "the Dockerfile is larger than 16 MiB, the most strata (and BuildKit) reads"
        );
    }
}

/// A Dockerfile with every kind of line a stage's body can hold: the
/// escape directive, comments and an empty line inside a continuation,
/// heredocs (in RUN, COPY and an ONBUILD trigger), a stage built on
/// another (whose triggers then run) and stages used by `--from`.
const EVERY_KIND_OF_LINE: &str = r#"# escape=`
# syntax=docker/dockerfile:1
ARG BASE=scratch
# comments before FROM
FROM ${BASE} AS base
# a comment before RUN
RUN echo one `
  # a comment inside a continuation
  two `

  three
#
WORKDIR /app
RUN <<EOF
echo from a heredoc
EOF
COPY <<-EOT /greeting
	hello
	EOT
ONBUILD RUN echo triggered
ONBUILD RUN <<EOF
echo an ONBUILD heredoc
EOF

FROM base AS child
RUN --mount=type=bind,from=base,target=/b cat /b/greeting
COPY --from=base /greeting /copied
   # indented comment
FROM scratch
COPY --from=child /copied /final
ENV A=1 `
    B=2
RUN ["echo", "exec"]
WORKDIR sub
RUN echo last"#;

/// `compile_graph` reads each stage's text a second time as it lowers it
/// (it keeps no typed instruction until then, for memory): the graph, its
/// labels, origins and digests, and the warnings are exactly those of
/// `compile`, which lowers the typed stages it holds, whatever the line
/// endings, escape character and byte-order mark.
#[test]
fn lowering_reads_stages_again_as_they_were_read() {
    let backslash = EVERY_KIND_OF_LINE
        .replacen("# escape=`\n", "", 1)
        .replace('`', "\\");
    let mut variants = Vec::new();
    for text in [EVERY_KIND_OF_LINE.to_owned(), backslash] {
        let crlf = text.replace('\n', "\r\n");
        variants.push(format!("\u{feff}{crlf}"));
        variants.push(crlf);
        variants.push(format!("{text}\n"));
        variants.push(text);
    }
    for text in &variants {
        let compiled = strata_frontend::compile(text, &Options::default()).unwrap();
        let streamed = strata_frontend::compile_graph(text, &Options::default()).unwrap();
        assert_eq!(streamed.len(), compiled.graph.len());
        for (streamed, compiled) in streamed.vertices().zip(compiled.graph.vertices()) {
            assert_eq!(streamed, compiled);
        }
        assert_eq!(
            format!("{:?}", streamed.stages),
            format!("{:?}", compiled.graph.stages)
        );
        assert_eq!(streamed.target, compiled.graph.target);
        assert_eq!(
            format!("{:?}", streamed.warnings),
            format!("{:?}", compiled.warnings)
        );
        // What the test means to cover is there: the empty line in the
        // continuation, every stage built, the triggers run in `child`.
        assert!(
            streamed
                .warnings
                .iter()
                .any(|warning| warning.rule == "NoEmptyContinuation")
        );
        assert!(streamed.stages.iter().all(|stage| stage.built));
        let triggered = streamed.vertices().any(|vertex| match &vertex.op {
            Op::Exec(exec) => {
                vertex.stage == 1 && exec.args.iter().any(|arg| arg == "echo triggered")
            }
            _ => false,
        });
        assert!(triggered);
    }
}

/// Without the typed instructions, which stages the target needs comes
/// from each stage's summary: a stage named only by `RUN --mount=from=`
/// or by `COPY --from` is built, one named by neither is not.
#[test]
fn stages_needed_through_mounts_and_copies_are_built() {
    let dockerfile = "FROM scratch AS mounted\nCOPY a /a\n\
                      FROM scratch AS unused\nCOPY b /b\n\
                      FROM scratch AS copied\nCOPY c /c\n\
                      FROM scratch AS unused2\nCOPY d /d\n\
                      FROM busybox\n\
                      RUN --mount=type=bind,from=mounted,target=/m cat /m/a\n\
                      COPY --from=copied /c /c\n";
    for graph in [
        strata_frontend::compile_graph(dockerfile, &Options::default()).unwrap(),
        compile(dockerfile),
    ] {
        let built: Vec<(&str, bool)> = graph
            .stages
            .iter()
            .map(|stage| (stage.name.as_deref().unwrap_or(""), stage.built))
            .collect();
        assert_eq!(
            built,
            [
                ("mounted", true),
                ("unused", false),
                ("copied", true),
                ("unused2", false),
                ("", true)
            ]
        );
        // Dependencies first, in the order the target names them.
        let order: Vec<usize> =
            graph
                .vertices()
                .map(|vertex| vertex.stage)
                .fold(Vec::new(), |mut order, stage| {
                    if !order.contains(&stage) {
                        order.push(stage);
                    }
                    order
                });
        assert_eq!(order, [0, 2, 4]);
    }
}
