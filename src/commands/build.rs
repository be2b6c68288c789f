//! `strata build`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use strata_frontend::diagnostic::{self, Source};
use strata_frontend::graph::{
    BuildGraph, ConfigEdit, CopySource, FileOp, Op, Options, Platform, Source as GraphSource,
};
use strata_frontend::span::Span;

use strata_solver::exec::{self, Network, Sandbox};
use strata_solver::layer::Compression;
use strata_solver::solve::{self, BuildError, BuildOptions, Event, PullingResolver, remote};

use super::Rendered;
use crate::cli::{BuildArgs, NetworkArg, PlanFormat, ProgressArg};
use crate::progress;

pub(crate) fn build(root: Option<std::path::PathBuf>, args: BuildArgs) -> anyhow::Result<()> {
    build_or_explain(root, args, false)
}

/// `strata cache explain`: the build's plan against the cache.
pub(crate) fn explain(root: Option<std::path::PathBuf>, args: BuildArgs) -> anyhow::Result<()> {
    build_or_explain(root, args, true)
}

fn build_or_explain(
    root: Option<std::path::PathBuf>,
    mut args: BuildArgs,
    explain: bool,
) -> anyhow::Result<()> {
    // `-`: the context is a tar archive on standard input (or, when what
    // comes is not an archive, it is the Dockerfile and the context is
    // empty), as docker build reads it.
    let mut stdin_context = None;
    if args.context.as_os_str() == "-" {
        if args.file.as_deref() == Some(Path::new("-")) {
            bail!("the build context and the Dockerfile cannot both come from standard input");
        }
        let store = super::open_store(root.clone())?;
        let context = StdinContext::read(&store, args.file.is_none())?;
        args.context = context.dir.clone();
        if let Some(dockerfile) = &context.dockerfile {
            args.file = Some(dockerfile.clone());
        }
        stdin_context = Some(context);
    }
    let result = build_in(root, args, explain);
    drop(stdin_context);
    result
}

/// A build context read from standard input, removed when dropped.
struct StdinContext {
    dir: std::path::PathBuf,
    /// Where the Dockerfile is, when standard input was the Dockerfile.
    dockerfile: Option<std::path::PathBuf>,
}

impl StdinContext {
    fn read(
        store: &strata_solver::store::Store,
        may_be_dockerfile: bool,
    ) -> anyhow::Result<StdinContext> {
        let dir = store.staging_dir("context")?;
        let mut context = StdinContext {
            dir: dir.clone(),
            dockerfile: None,
        };
        let mut head = Vec::new();
        let mut stdin = std::io::stdin().lock();
        (&mut stdin)
            .take(1 << 16)
            .read_to_end(&mut head)
            .context("failed to read the build context from standard input")?;
        let compressed =
            head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
        let reader = std::io::Cursor::new(head.clone()).chain(stdin);
        if compressed || is_tar {
            let reader = strata_solver::image::decompressed(reader)?;
            strata_solver::layer::unpack(reader, &dir)
                .context("failed to unpack the build context from standard input")?;
            Ok(context)
        } else if may_be_dockerfile {
            let mut text = Vec::new();
            let mut reader = reader;
            reader
                .read_to_end(&mut text)
                .context("failed to read the Dockerfile from standard input")?;
            let dockerfile = dir.join(".strata-stdin.Dockerfile");
            std::fs::write(&dockerfile, text)
                .with_context(|| format!("failed to write `{}`", dockerfile.display()))?;
            context.dockerfile = Some(dockerfile);
            Ok(context)
        } else {
            bail!("standard input is not a tar archive: `-` as the context needs one")
        }
    }
}

impl Drop for StdinContext {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn build_in(
    root: Option<std::path::PathBuf>,
    args: BuildArgs,
    explain: bool,
) -> anyhow::Result<()> {
    if !args.context.is_dir() {
        bail!(
            "build context `{}` is not a directory",
            args.context.display()
        );
    }
    let (name, bytes) = read_dockerfile(&args)?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let source = Source::new(name, &lossy);
            let error = strata_frontend::Error::new(
                strata_frontend::ErrorKind::NotUtf8,
                Span::new(offset, offset + 1),
            )
            .with_hint("save the Dockerfile as UTF-8");
            return Err(Rendered(diagnostic::render(&error, &source)).into());
        }
    };
    let source = Source::new(name, &text);
    let platform = match &args.platform {
        Some(text) => Some(Platform::parse(text).with_context(|| {
            format!("invalid platform `{text}`: expected os/arch[/variant], e.g. linux/amd64")
        })?),
        None => None,
    };
    // A real build reads base images' configs (ENV, USER, WORKDIR) from
    // the store; a plan needs no store.
    let store = if args.dry_run && !explain {
        None
    } else {
        Some(super::open_store(root)?)
    };
    let quiet_transfers = args.quiet || matches!(args.progress, ProgressArg::Json);
    let transfers = super::registry::TransferProgress::new("Pulling", quiet_transfers);
    let on_transfer = |transfer: strata_solver::registry::Transfer<'_>| transfers.event(transfer);
    let host = Platform::host();
    let foreign = platform
        .as_ref()
        .is_some_and(|wanted| wanted.os != host.os || wanted.architecture != host.architecture);
    // A build that will be refused pulls nothing first.
    let policy = if foreign {
        strata_solver::registry::PullPolicy::Never
    } else {
        args.pull.policy()
    };
    let registry_options = super::registry::options(&args.registry)?;
    let resolver = store
        .as_ref()
        .map(|store| PullingResolver::new(store, policy, registry_options.clone(), &on_transfer));
    let options = Options {
        target: args.target.clone(),
        build_args: build_args(&args.build_args)?,
        platform,
        resolver: resolver
            .as_ref()
            .map(|resolver| resolver as &dyn strata_frontend::graph::ImageResolver),
    };
    let compiled = strata_frontend::compile(&text, &options);
    // Every image the Dockerfile names was pulled (or not) while lowering.
    transfers.finish();
    let compiled = compiled.map_err(|error| match error.kind {
        // A pull that failed is reported as the registry's error, as it is.
        strata_frontend::ErrorKind::ResolveImage(failure) => anyhow::Error::new(failure),
        _ => Rendered(diagnostic::render(&error, &source)).into(),
    })?;
    let mut stderr = std::io::stderr().lock();
    for warning in &compiled.warnings {
        write!(stderr, "{}", diagnostic::render_warning(warning, &source))?;
    }
    drop(stderr);
    if let Some(store) = &store {
        if let Some(platform) = options.platform.as_ref().filter(|_| foreign) {
            bail!(
                "building for {} is not supported: strata runs steps on this machine, which is {}",
                platform_text(platform),
                platform_text(&host)
            );
        }
        return run_build(
            store,
            &compiled.graph,
            &source,
            &args,
            explain,
            &registry_options,
        );
    }
    let plan = match args.format {
        PlanFormat::Text => text_plan(&compiled.graph, &source),
        PlanFormat::Json => json_plan(&compiled.graph)?,
        PlanFormat::Dot => dot_plan(&compiled.graph),
    };
    std::io::stdout().lock().write_all(plan.as_bytes())?;
    Ok(())
}

fn read_dockerfile(args: &BuildArgs) -> anyhow::Result<(String, Vec<u8>)> {
    let path = match &args.file {
        Some(path) if path == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("failed to read the Dockerfile from standard input")?;
            return Ok(("<stdin>".to_owned(), bytes));
        }
        Some(path) => path.clone(),
        None => args.context.join("Dockerfile"),
    };
    let bytes = read_inside_its_directory(&path)
        .with_context(|| format!("failed to read Dockerfile `{}`", display_name(&path)))?;
    let name = if path.ends_with(".strata-stdin.Dockerfile") {
        "<stdin>".to_owned()
    } else {
        display_name(&path)
    };
    Ok((name, bytes))
}

/// Read the Dockerfile at `path` as BuildKit does: its directory (the
/// context, or the directory `-f` names) is the root, and the file is
/// resolved inside it, symbolic links included (`strata_solver::confined`: `openat2` with
/// `RESOLVE_IN_ROOT`): `Dockerfile -> /etc/shadow` names the directory's own
/// `etc/shadow`, never the host's, and `..` stops at the directory. Only a
/// regular file is read. The directory itself is the user's to name.
fn read_inside_its_directory(path: &Path) -> anyhow::Result<Vec<u8>> {
    use strata_solver::confined::{Regular, Root};
    let Some(name) = path.file_name() else {
        bail!("it is not a file name");
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let root = Root::open(dir)
        .map_err(|error| error.source)
        .with_context(|| format!("failed to open its directory `{}`", dir.display()))?;
    let missing = |error: std::io::Error| -> anyhow::Error {
        match root.read_link(Path::new(name)) {
            Some(target) => anyhow::Error::new(error).context(format!(
                "it is a symbolic link to `{}`, which is resolved inside `{}` (the Dockerfile's \
                 directory), as BuildKit resolves it, and is not there",
                target.display(),
                dir.display()
            )),
            None => error.into(),
        }
    };
    let mut file = match root.open_regular(Path::new(name)) {
        Ok(Regular::File(file)) => file,
        Ok(Regular::Missing) => {
            // ENOENT, as a missing Dockerfile has always been reported.
            return Err(missing(std::io::Error::from_raw_os_error(2)));
        }
        // Checked before it is opened: a fifo would wait forever, a device
        // would be the host's.
        Ok(Regular::Other) => bail!("it is not a regular file"),
        Err(error) => return Err(missing(error.source)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn display_name(path: &Path) -> String {
    path.strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `--build-arg NAME=VALUE`, or `NAME` to take the value from the
/// environment (skipped when unset), as docker does.
fn build_args(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for entry in raw {
        match entry.split_once('=') {
            Some(("", _)) => bail!("invalid build argument `{entry}`: expected NAME=VALUE or NAME"),
            Some((name, value)) => {
                args.insert(name.to_owned(), value.to_owned());
            }
            None if entry.is_empty() => {
                bail!("invalid build argument ``: expected NAME=VALUE or NAME")
            }
            None => {
                if let Ok(value) = std::env::var(entry) {
                    args.insert(entry.clone(), value);
                }
            }
        }
    }
    Ok(args)
}

/// One line per step, with what it waits for, then the parallel groups.
fn text_plan(graph: &BuildGraph, source: &Source) -> String {
    let mut out = String::new();
    let target = graph.target_stage();
    let built: Vec<String> = graph
        .stages
        .iter()
        .filter(|stage| stage.built)
        .map(|stage| stage.label())
        .collect();
    let skipped: Vec<String> = graph
        .stages
        .iter()
        .filter(|stage| !stage.built)
        .map(|stage| stage.label())
        .collect();
    let _ = writeln!(
        out,
        "target: {} ({} of {} stages built)",
        target.label(),
        built.len(),
        graph.stages.len()
    );
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "skipped (not needed by the target): {}",
            skipped.join(", ")
        );
    }
    let levels = graph.levels();
    let _ = writeln!(out, "\nsources:");
    for vertex in &graph.vertices {
        let Op::Source(source) = &vertex.op else {
            continue;
        };
        let what = match source {
            GraphSource::Scratch => "scratch (empty filesystem)".to_owned(),
            GraphSource::Image {
                reference,
                platform,
                ..
            } => format!("image {reference} ({platform})"),
            GraphSource::Context { name } => format!("build context `{name}`"),
        };
        let _ = writeln!(out, "  #{:<3} {what}", vertex.id);
    }
    for stage in graph.stages.iter().filter(|stage| stage.built) {
        let line = source.line(stage.span.start);
        let _ = write!(
            out,
            "\nstage {} FROM {} ({}:{line})",
            stage.label(),
            stage.base,
            source.name
        );
        let Some(last) = stage.last else { continue };
        let chain = graph.chain(last);
        // Steps inherited from a base stage (or shared with another stage)
        // are listed where they were first lowered.
        let own: Vec<usize> = chain
            .iter()
            .copied()
            .filter(|id| graph.vertices[*id].stage == stage.index)
            .collect();
        let start = chain
            .iter()
            .rev()
            .find(|id| graph.vertices[**id].stage != stage.index)
            .or(chain.first());
        match start {
            Some(start) => {
                let _ = writeln!(out, ", starts from #{start}");
            }
            None => out.push('\n'),
        }
        for id in own {
            let vertex = &graph.vertices[id];
            if matches!(vertex.op, Op::Source(_)) {
                continue;
            }
            let kind = match &vertex.op {
                Op::Source(_) => continue,
                Op::Exec(_) => "exec",
                Op::File(FileOp::Copy(_)) => "copy",
                Op::File(FileOp::Mkdir { .. }) => "mkdir",
                Op::Config(_) => "config",
            };
            let needs: Vec<String> = vertex
                .inputs
                .iter()
                .map(|input| format!("#{input}"))
                .collect();
            let needs = if needs.is_empty() {
                String::new()
            } else {
                format!("  needs {}", needs.join(" "))
            };
            let _ = writeln!(
                out,
                "  #{id:<3} {kind:<6} {}  {}{needs}",
                short_digest(&vertex.digest),
                one_line(&vertex.description(), 100)
            );
            if let Op::Exec(exec) = &vertex.op {
                for mount in &exec.mounts {
                    let _ = writeln!(out, "         mount {:?} at {}", mount.kind, mount.target);
                }
            }
            if let Op::File(FileOp::Copy(copy)) = &vertex.op {
                for copy_source in &copy.sources {
                    let from = match copy_source {
                        CopySource::Path { input, path } => {
                            format!("{path} from #{}", vertex.inputs[*input])
                        }
                        CopySource::Url { url } => url.clone(),
                        CopySource::Inline(file) => format!("heredoc {}", file.path),
                    };
                    let _ = writeln!(out, "         {from} -> {}", copy.destination);
                }
            }
            if let Op::Config(ConfigEdit::Onbuild(trigger)) = &vertex.op {
                let _ = writeln!(out, "         trigger: {trigger}");
            }
        }
    }
    // Steps that touch the filesystem, grouped by depth: a group's steps do
    // not depend on each other and can run at the same time.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for vertex in &graph.vertices {
        if !matches!(vertex.op, Op::Config(_)) {
            groups.entry(levels[vertex.id]).or_default().push(vertex.id);
        }
    }
    let _ = writeln!(
        out,
        "\nparallel groups (steps in one group can run at once):"
    );
    for (level, ids) in groups {
        let ids: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
        let _ = writeln!(out, "  {level}: {}", ids.join(" "));
    }
    out
}

fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn one_line(text: &str, limit: usize) -> String {
    let flat: String = text
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect();
    if flat.chars().count() <= limit {
        flat
    } else {
        let cut: String = flat.chars().take(limit).collect();
        format!("{cut}...")
    }
}

fn json_plan(graph: &BuildGraph) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Plan<'g> {
        target: &'g str,
        stages: &'g [strata_frontend::graph::StageInfo],
        vertices: &'g [strata_frontend::graph::Vertex],
        levels: Vec<usize>,
    }
    let target = graph.target_stage().label();
    let plan = Plan {
        target: &target,
        stages: &graph.stages,
        vertices: &graph.vertices,
        levels: graph.levels(),
    };
    let mut text = serde_json::to_string_pretty(&plan)?;
    text.push('\n');
    Ok(text)
}

fn dot_plan(graph: &BuildGraph) -> String {
    let mut out =
        String::from("digraph build {\n  rankdir=LR;\n  node [shape=box, fontname=monospace];\n");
    let escape = |text: &str| {
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    for vertex in &graph.vertices {
        let shape = match vertex.op {
            Op::Source(_) => ", shape=ellipse",
            Op::Config(_) => ", style=dashed",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  v{} [label=\"#{} {}\"{shape}];",
            vertex.id,
            vertex.id,
            escape(&one_line(&vertex.description(), 60))
        );
        for input in &vertex.inputs {
            let _ = writeln!(out, "  v{input} -> v{};", vertex.id);
        }
        if let Some(previous) = vertex.previous
            && !vertex.inputs.contains(&previous)
        {
            let _ = writeln!(out, "  v{previous} -> v{} [style=dotted];", vertex.id);
        }
    }
    out.push_str("}\n");
    out
}

/// Run the build: steps in order with plain progress on stderr, then the
/// image ID on stdout.
fn run_build(
    store: &strata_solver::store::Store,
    graph: &BuildGraph,
    source: &Source,
    args: &BuildArgs,
    explain: bool,
    registry_options: &strata_solver::registry::RegistryOptions,
) -> anyhow::Result<()> {
    let labels = args
        .labels
        .iter()
        .map(|label| match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => bail!("invalid label `{label}`: expected KEY=VALUE"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outputs = args
        .outputs
        .iter()
        .map(|spec| Output::parse(spec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Layers a build makes are stored uncompressed unless an output asks
    // otherwise: writing them costs no CPU, and they are compressed where
    // size matters (pushing, an archive asked for with compression=).
    let compression = outputs
        .iter()
        .filter_map(|output| output.compression)
        .next_back()
        .unwrap_or(Compression::None);
    // How the cache report knows this Dockerfile next time.
    let dockerfile = match &args.file {
        Some(path) if path == Path::new("-") => "<stdin>".to_owned(),
        Some(path) => std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string(),
        None => std::fs::canonicalize(args.context.join("Dockerfile"))
            .unwrap_or_else(|_| args.context.join("Dockerfile"))
            .display()
            .to_string(),
    };
    let mut secrets = BTreeMap::new();
    for spec in &args.secrets {
        let (mut id, mut secret) = (None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", value)) => id = Some(value.to_owned()),
                Some(("src" | "source", value)) => secret = Some(solve::Secret::File(value.into())),
                Some(("env", value)) => secret = Some(solve::Secret::Env(value.to_owned())),
                Some(("type", "file" | "env")) => {}
                _ => bail!("invalid --secret `{spec}`: expected id=ID,src=FILE or id=ID,env=VAR"),
            }
        }
        let id = id.with_context(|| format!("invalid --secret `{spec}`: id= is missing"))?;
        // docker: without src or env, the variable named like the id.
        let secret = secret.unwrap_or_else(|| solve::Secret::Env(id.clone()));
        secrets.insert(id, secret);
    }
    let mut ssh = BTreeMap::new();
    for spec in &args.ssh {
        let (id, socket) = match spec.split_once('=') {
            Some((id, socket)) => (id.to_owned(), std::path::PathBuf::from(socket)),
            None => (
                spec.clone(),
                std::env::var_os("SSH_AUTH_SOCK")
                    .map(std::path::PathBuf::from)
                    .with_context(|| {
                        format!("--ssh {spec}: SSH_AUTH_SOCK is not set: give {spec}=SOCKET")
                    })?,
            ),
        };
        if !socket.exists() {
            bail!("--ssh {spec}: `{}` does not exist", socket.display());
        }
        ssh.insert(id, socket);
    }
    for entitlement in &args.allow {
        if entitlement != "security.insecure" {
            bail!("--allow {entitlement}: the only entitlement is security.insecure");
        }
    }
    let cache_to = args
        .cache_to
        .iter()
        .map(|spec| remote::CacheTo::parse(spec).map_err(|message| anyhow::anyhow!(message)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut cache_from = Vec::new();
    for spec in &args.cache_from {
        let location = remote::parse_from(spec).map_err(|message| anyhow::anyhow!(message))?;
        // As buildx: a cache that cannot be read costs time, not the build.
        match remote::import(store, &location, registry_options) {
            Ok(imported) => cache_from.push(std::sync::Arc::new(imported)),
            Err(error) => writeln!(
                std::io::stderr(),
                "warning: --cache-from {spec}: {error}; building without it"
            )?,
        }
    }
    let options = BuildOptions {
        cache_from,
        allow_insecure: args
            .allow
            .iter()
            .any(|entitlement| entitlement == "security.insecure"),
        ssh,
        secrets,
        dockerfile,
        tags: strata_solver::image::normalize_tags(&args.tags)?,
        labels,
        network: match args.network {
            NetworkArg::Host => Network::Host,
            NetworkArg::None => Network::None,
        },
        compression,
        epoch: super::import::source_date_epoch()?,
        no_cache: args.no_cache,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        no_cache_stages: args
            .no_cache_filter
            .iter()
            .map(|wanted| {
                graph
                    .stages
                    .iter()
                    .find(|stage| {
                        stage.name.as_deref() == Some(wanted.as_str())
                            || stage.index.to_string() == *wanted
                    })
                    .map(|stage| stage.index)
                    .with_context(|| format!("--no-cache-filter: no stage named `{wanted}`"))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let dockerfile = args
        .file
        .as_deref()
        .filter(|path| *path != std::path::Path::new("-"));
    let context = solve::BuildContext::open(&args.context, dockerfile)
        .map_err(|message| anyhow::anyhow!(message))?;
    if explain {
        let mode = match args.progress {
            ProgressArg::Json => progress::Mode::Json,
            _ => progress::Mode::Explain,
        };
        let progress = progress::Progress::new(mode, graph);
        let on_event = |event: Event<'_>| progress.event(event);
        let started = std::time::Instant::now();
        solve::explain(store, graph, &context, &options, &on_event)
            .map_err(|error| Rendered(render_build_error(&error, graph, source)))?;
        progress.summary("", 0, started.elapsed());
        return Ok(());
    }
    exec::stop_on_signals(&[2, 15, 1])?;
    let sandbox = Sandbox::new(store)?;
    super::print_notices(&sandbox)?;
    let mode = match (args.quiet, args.progress) {
        (true, _) => progress::Mode::Quiet,
        (false, ProgressArg::Json) => progress::Mode::Json,
        (false, ProgressArg::Plain) => progress::Mode::Plain,
        (false, ProgressArg::Tty) => progress::Mode::Tty,
        (false, ProgressArg::Auto) if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
            progress::Mode::Tty
        }
        (false, ProgressArg::Auto) => progress::Mode::Plain,
    };
    let progress = progress::Progress::new(mode, graph);
    let on_event = |event: Event<'_>| progress.event(event);
    let started = std::time::Instant::now();
    let built = solve::build(store, &sandbox, graph, &context, &options, &on_event);
    super::print_notices(&sandbox)?;
    let built = match built {
        Ok(built) => built,
        Err(error) => {
            if let BuildError::Exec {
                source: exec::ExecError::Interrupted(signal),
                ..
            } = error
            {
                return Err(super::Status {
                    code: (128 + signal) as u8,
                    error: Some(anyhow::anyhow!("the build was interrupted")),
                }
                .into());
            }
            progress.failed(&error.to_string());
            return Err(Rendered(render_build_error(&error, graph, source)).into());
        }
    };
    let image = built.image.clone();
    progress.summary(&image.id.to_string(), built.files_hashed, started.elapsed());
    for output in &outputs {
        output
            .write(store, &image, &options)
            .with_context(|| format!("failed to write the output `{}`", output.spec))?;
    }
    // Pushes: --push sends every -t name; type=registry outputs their names.
    let mut destinations: Vec<String> = Vec::new();
    if args.push {
        if options.tags.is_empty() {
            bail!("--push needs a name to push to: give -t REGISTRY/NAME[:TAG]");
        }
        destinations.extend(options.tags.iter().cloned());
    }
    for output in &outputs {
        if output.push {
            destinations.extend(output.names.iter().cloned());
        }
    }
    let quiet_transfers = args.quiet || matches!(args.progress, ProgressArg::Json);
    let mut pushed = Vec::new();
    for destination in &destinations {
        let transfers = super::registry::TransferProgress::new("Pushing", quiet_transfers);
        let result = strata_solver::registry::push(
            store,
            &image,
            destination,
            registry_options,
            &|transfer| transfers.event(transfer),
        );
        transfers.finish();
        let digest = result?;
        if !quiet_transfers {
            writeln!(
                std::io::stderr(),
                "pushed {} (digest: {digest})",
                strata_solver::image::Reference::parse(destination)?.qualified()
            )?;
        }
        pushed.push(digest);
    }
    for to in &cache_to {
        let keys = if to.max {
            &built.all_keys
        } else {
            &built.image_keys
        };
        let transfers = super::registry::TransferProgress::new("Exporting cache", true);
        let exported = remote::export(store, keys, to, registry_options, &|transfer| {
            transfers.event(transfer)
        })
        .with_context(|| "failed to export the build cache".to_owned())?;
        if !quiet_transfers {
            writeln!(
                std::io::stderr(),
                "exported the cache: {} records, {} layers ({})",
                exported.records,
                exported.layers,
                exported.digest
            )?;
        }
    }
    if let Some(path) = &args.metadata_file {
        // docs/metadata.schema.json describes this document; buildx's
        // three keys come first for tools that read those.
        let names: Vec<String> = options
            .tags
            .iter()
            .filter_map(|tag| strata_solver::image::Reference::parse(tag).ok())
            .map(|reference| reference.qualified())
            .collect();
        let metadata = serde_json::json!({
            "containerimage.digest": image.manifest.to_string(),
            "containerimage.config.digest": image.config.to_string(),
            "image.name": names.join(","),
            "strata.version": METADATA_VERSION,
            "image": {
                "id": image.id.to_string(),
                "manifest": image.manifest.to_string(),
                "config": image.config.to_string(),
                "tags": names,
            },
            "steps": progress.steps(),
        });
        let text = serde_json::to_string_pretty(&metadata)? + "\n";
        std::fs::write(path, text)
            .with_context(|| format!("failed to write the metadata to `{}`", path.display()))?;
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, image.id.to_string())
            .with_context(|| format!("failed to write the image ID to `{}`", path.display()))?;
    }
    // Standard output carries an archive when an output goes there.
    if !outputs
        .iter()
        .any(|output| output.dest.as_deref() == Some(std::path::Path::new("-")))
    {
        writeln!(std::io::stdout().lock(), "{}", image.id)?;
    }
    Ok(())
}

/// A failed build's error: the message, the Dockerfile lines of the step
/// and, for a RUN that failed, the last lines it printed.
fn render_build_error(error: &BuildError, graph: &BuildGraph, source: &Source) -> String {
    let mut message = error.to_string();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    let origin = error
        .vertex()
        .and_then(|id| graph.vertices.get(id))
        .and_then(|vertex| vertex.origin);
    let mut out = match origin {
        Some(origin) => diagnostic::render_message("error", &message, origin.span, None, source),
        None => format!("error: {message}\n"),
    };
    if let BuildError::StepFailed { tail, .. } = error
        && !tail.is_empty()
    {
        out.push_str(&format!("\nlast {} lines of its output:\n", tail.len()));
        for line in tail {
            out.push_str(&format!("  > {line}\n"));
        }
    }
    out
}

/// The version of the `--metadata-file` document (docs/metadata.schema.json).
const METADATA_VERSION: u64 = 1;

/// Where `--output` sends the result.
#[derive(Debug)]
enum OutputKind {
    /// An OCI layout: a tar archive, or a directory with `tar=false`.
    Oci { tar: bool },
    /// docker load's archive.
    Docker,
    /// The final filesystem, as a directory.
    Local,
    /// The final filesystem, as one tar archive.
    Tar,
    /// The local store (always written anyway), pushed with `push=true`.
    Image,
    /// Pushed to a registry (`type=registry,name=REF`).
    Registry,
}

/// One `--output`.
#[derive(Debug)]
struct Output {
    spec: String,
    kind: OutputKind,
    dest: Option<std::path::PathBuf>,
    compression: Option<Compression>,
    /// `name=`: where to push.
    names: Vec<String>,
    /// Whether to push to `names`.
    push: bool,
}

impl Output {
    /// Parse `type=KIND,dest=PATH,...`, `DIR` or `-` (docker's forms).
    fn parse(spec: &str) -> anyhow::Result<Output> {
        if !spec.contains('=') {
            let kind = if spec == "-" {
                OutputKind::Tar
            } else {
                OutputKind::Local
            };
            return Ok(Output {
                spec: spec.to_owned(),
                kind,
                dest: Some(spec.into()),
                compression: None,
                names: Vec::new(),
                push: false,
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut tar = true;
        let mut compression = None;
        let mut names = Vec::new();
        let mut push = None;
        for field in spec.split(',') {
            let (key, value) = field.split_once('=').with_context(|| {
                format!("invalid --output `{spec}`: `{field}` is not KEY=VALUE")
            })?;
            match key {
                "type" => kind = Some(value.to_owned()),
                "dest" => dest = Some(std::path::PathBuf::from(value)),
                "tar" => {
                    tar = match value {
                        "true" => true,
                        "false" => false,
                        _ => bail!("invalid --output `{spec}`: tar is true or false"),
                    }
                }
                "compression" => {
                    compression = Some(Compression::parse(value).with_context(|| {
                        format!(
                            "invalid --output `{spec}`: compression is gzip, zstd or uncompressed"
                        )
                    })?)
                }
                "name" => names.push(value.to_owned()),
                "push" => {
                    push = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => bail!("invalid --output `{spec}`: push is true or false"),
                    })
                }
                "oci-mediatypes" => {}
                other => bail!("invalid --output `{spec}`: unknown key `{other}`"),
            }
        }
        let kind = match kind.as_deref() {
            Some("oci") => OutputKind::Oci { tar },
            Some("docker") => OutputKind::Docker,
            Some("local") => OutputKind::Local,
            Some("tar") => OutputKind::Tar,
            Some("image") => OutputKind::Image,
            Some("registry") => OutputKind::Registry,
            Some(other) => bail!(
                "invalid --output `{spec}`: type `{other}` is not one of oci, docker, local, tar, image, registry"
            ),
            None => bail!("invalid --output `{spec}`: type= is missing"),
        };
        let push = push.unwrap_or(matches!(kind, OutputKind::Registry));
        if dest.is_none() && !matches!(kind, OutputKind::Image | OutputKind::Registry) {
            bail!("invalid --output `{spec}`: dest= is missing");
        }
        if push && names.is_empty() {
            bail!("invalid --output `{spec}`: name= is missing (where to push)");
        }
        for name in &names {
            strata_solver::image::Reference::parse(name)?;
        }
        Ok(Output {
            spec: spec.to_owned(),
            kind,
            dest,
            compression,
            names,
            push,
        })
    }

    fn write(
        &self,
        store: &strata_solver::store::Store,
        image: &strata_solver::store::ImageRecord,
        options: &BuildOptions,
    ) -> anyhow::Result<()> {
        use strata_solver::image;
        let images = [(image.clone(), options.tags.clone())];
        let Some(dest) = &self.dest else {
            return Ok(());
        };
        let stdout = dest.as_os_str() == "-";
        if stdout && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            bail!("refusing to write an archive to a terminal: redirect standard output");
        }
        match self.kind {
            OutputKind::Image | OutputKind::Registry => {}
            OutputKind::Docker if stdout => {
                image::save_docker_archive(store, &images, std::io::stdout().lock())?
            }
            OutputKind::Docker => image::save_docker_archive_file(store, &images, dest)?,
            OutputKind::Oci { .. } if stdout => {
                bail!("type=oci to standard output is not supported: give dest=FILE")
            }
            OutputKind::Oci { tar } => image::save_oci(store, &images, dest, tar)?,
            OutputKind::Local => image::export_rootfs(store, image, dest)?,
            OutputKind::Tar if stdout => {
                image::export_rootfs_tar(store, image, std::io::stdout().lock(), options.epoch)?
            }
            OutputKind::Tar => {
                let file = std::fs::File::create(dest)
                    .with_context(|| format!("failed to create `{}`", dest.display()))?;
                let mut out = std::io::BufWriter::new(file);
                image::export_rootfs_tar(store, image, &mut out, options.epoch)?;
                std::io::Write::flush(&mut out)?;
            }
        }
        Ok(())
    }
}

fn platform_text(platform: &Platform) -> String {
    match &platform.variant {
        Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}
