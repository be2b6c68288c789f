//! `strata build` and `strata cache explain`: read the Dockerfile, compile
//! it, render its diagnostics, hand the graph to [`solve::solve`] (or
//! [`solve::explain`]) and print what it made. Everything a build does
//! beyond that lives in the solver, behind that one call.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use strata_frontend::diagnostic::{self, Source};
use strata_frontend::graph::{BuildGraph, NamedContext, Options, Platform};
use strata_frontend::span::Span;
use strata_solver::exec;
use strata_solver::solve::{self, BuildError, PullingResolver, Session, SolveError};

use super::Rendered;
use crate::cli::{BuildArgs, CallKind, ContextValue, PlanFormat, ProgressArg};
use crate::dockerfile::{StdinContext, read_dockerfile};
use crate::progress::{self, CliReporter};

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
    // `--call check` is `--check`; `--call targets` is handled once the
    // Dockerfile is read.
    if let Some(call) = args.call
        && call.kind == CallKind::Check
    {
        args.check = true;
        if call.json {
            args.format = Some(PlanFormat::Json);
        }
    }
    // `-`: the context is a tar archive on standard input (or, when what
    // comes is not an archive, it is the Dockerfile and the context is
    // empty), as docker build reads it.
    let mut stdin_context = None;
    if args.context.as_os_str() == "-" {
        if args.file.as_deref() == Some(Path::new("-")) {
            bail!("the build context and the Dockerfile cannot both come from standard input");
        }
        let store = super::open_store(root.clone())?;
        // The context's staging directory is held while the build runs.
        let lease = store.lease("build")?;
        let context = StdinContext::read(lease.store(), args.file.is_none())?;
        args.context = context.dir.clone();
        if let Some(dockerfile) = &context.dockerfile {
            args.file = Some(dockerfile.clone());
            args.dockerfile_shown = Some("<stdin>".to_owned());
        }
        stdin_context = Some((context, lease));
    }
    // A git URL: the repository (a ref, a directory of it) checked out
    // into the store's `tmp/`, held while the build runs, is the context.
    let mut git_context = None;
    if stdin_context.is_none()
        && let Some(text) = args.context.to_str()
        && let Some(source) = strata_frontend::graph::git_url(text)
    {
        let source = source.map_err(anyhow::Error::msg)?;
        let store = super::open_store(root.clone())?;
        let lease = store.lease("build")?;
        let context = strata_solver::solve::GitContext::clone(lease.store(), &source)
            .with_context(|| format!("failed to read the build context {text}"))?;
        args.context = context.root().to_owned();
        git_context = Some((context, lease));
    }
    // An http(s) URL that is not a repository: an archive that is the
    // context, or a Dockerfile with an empty context, as `docker build URL`.
    // `-f` names a file of the archive.
    let mut url_context = None;
    if stdin_context.is_none()
        && git_context.is_none()
        && let Some(url) = args.context.to_str().map(str::to_owned)
        && (url.starts_with("http://") || url.starts_with("https://"))
    {
        let store = super::open_store(root.clone())?;
        let lease = store.lease("build")?;
        let file = solve::fetch_url(lease.store(), &url)
            .with_context(|| format!("failed to read the build context {url}"))?;
        let mut context = StdinContext::read_from(lease.store(), file, true, &url)?;
        args.context = context.dir.clone();
        match &context.dockerfile {
            Some(dockerfile) => {
                args.file = Some(dockerfile.clone());
                args.dockerfile_shown = Some(url.clone());
            }
            None => {
                if let Some(file) = args.file.take() {
                    args.dockerfile_shown = Some(file.display().to_string());
                    args.file = Some(context.copy_dockerfile(lease.store(), &file)?);
                }
            }
        }
        url_context = Some((context, lease));
    }
    let result = build_in(root, args, explain);
    drop(stdin_context);
    drop(git_context);
    drop(url_context);
    result
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
    match (args.format, args.dry_run, args.check) {
        (Some(_), false, false) => bail!("--format needs --dry-run or --check"),
        (Some(PlanFormat::Dot), _, true) => {
            bail!("--check prints text or json, not dot")
        }
        _ => {}
    }
    // Read before anything runs: a budget that does not parse is refused.
    let keep_storage = super::cache::keep_storage()?;
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
    let source = Source::from_string(name, text);
    let text = source.text.as_str();
    match args.call {
        Some(call) if call.kind == CallKind::Targets => return targets(text, &source, call.json),
        Some(call) if call.kind == CallKind::Outline => {
            return outline(text, &source, &args, call.json);
        }
        _ => {}
    }
    let platform = match &args.platform {
        Some(text) => Some(Platform::parse(text).with_context(|| {
            format!("invalid platform `{text}`: expected os/arch[/variant], e.g. linux/amd64")
        })?),
        None => None,
    };
    // A real build reads base images' configs (ENV, USER, WORKDIR) from
    // the store; a plan needs no store.
    // The build's lease, taken before the frontend resolves (and pulls)
    // the base images: they, and all the build writes, stay until it ends
    // whatever prunes run meanwhile.
    // A check resolves base images as a build does (BuildKit's check reads
    // their configs too: their ENV defines variables).
    // An oci-layout:// context is read into the store, a plan's too.
    let layouts = args
        .build_contexts
        .iter()
        .any(|context| matches!(context.value, ContextValue::OciLayout { .. }));
    let lease = if args.dry_run && !explain && !layouts {
        None
    } else {
        Some(super::open_store(root)?.lease("build")?)
    };
    let store = lease.as_ref().map(|lease| lease.store().clone());
    let quiet_transfers = args.quiet || matches!(args.progress, ProgressArg::Json);
    let pulls = progress::Transfers::new(quiet_transfers);
    // Base images are pulled for another target platform too: stages
    // `FROM --platform=$BUILDPLATFORM` run here, and the rest may only
    // copy (the solver refuses a RUN on a platform this machine does not
    // run, `check_steps_platform`).
    let policy = args.pull.policy();
    let registry = super::registry::options(&args.registry)?;
    // CopyIgnoredFile reads the context's `.dockerignore` as the build
    // does; one that cannot be read is the build's to report.
    let ignore = strata_solver::solve::BuildContext::open(
        &args.context,
        args.file.as_deref().filter(|path| *path != Path::new("-")),
    )
    .map(|context| context.ignore)
    .unwrap_or_default();
    let ignored = |source: &str| ignore.copy_source_ignored(source);
    let resolver = store
        .as_ref()
        .map(|store| PullingResolver::new(store, policy, registry.clone(), &pulls));
    // An OCI layout's image is chosen for the target platform.
    let named_contexts = named_contexts(&args, store.as_ref(), platform.as_ref())?;
    let options = Options {
        target: args.target.clone(),
        build_args: {
            let mut build_args: std::collections::BTreeMap<String, String> = args
                .build_args
                .iter()
                .filter_map(|arg| Some((arg.name.clone(), arg.value.clone()?)))
                .collect();
            // buildx passes the environment's SOURCE_DATE_EPOCH as that
            // build arg: ARGs see it, and it wins over the Dockerfile's.
            if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH")
                && !epoch.is_empty()
            {
                build_args
                    .entry("SOURCE_DATE_EPOCH".to_owned())
                    .or_insert(epoch);
            }
            build_args
        },
        platform,
        named_contexts,
        // A plan still refuses names that are not references.
        resolver: Some(match &resolver {
            Some(resolver) => resolver as &dyn strata_frontend::graph::ImageResolver,
            None => &solve::NameResolver,
        }),
        // A check looks at every stage, as BuildKit's does without --target.
        all_stages: args.check && args.target.is_none(),
        ignored: Some(&ignored),
    };
    let report = strata_frontend::compile_checked(text, &options);
    // Every image the Dockerfile names was pulled (or not) while lowering.
    solve::Reporter::transfers_done(&pulls, solve::Phase::Pull);
    if args.check {
        return check(&report, &source, args.format);
    }
    // The warnings found before an error are shown with it.
    let mut stderr = std::io::stderr().lock();
    for warning in &report.warnings {
        write!(stderr, "{}", diagnostic::render_warning(warning, &source))?;
    }
    drop(stderr);
    let graph = match (report.graph, report.error) {
        (Some(graph), None) => graph,
        (_, Some(error)) => {
            return Err(match error.kind {
                // A pull that failed is reported as the registry's error, as it is.
                strata_frontend::ErrorKind::ResolveImage(failure) => anyhow::Error::new(failure),
                _ => Rendered(diagnostic::render(&error, &source)).into(),
            });
        }
        (None, None) => bail!("the Dockerfile gave no build graph"),
    };
    let Some(store) = &store else {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match args.format.unwrap_or(PlanFormat::Text) {
            PlanFormat::Text => crate::plan::text(&graph, &source, &mut out)?,
            PlanFormat::Json => crate::plan::json(&graph, &mut out)?,
            PlanFormat::Dot => crate::plan::dot(&graph, &mut out)?,
        }
        out.flush()?;
        return Ok(());
    };
    let session = Session { store, registry };
    let mut request = args.request(options.platform.clone())?;
    // Neither `--build-arg SOURCE_DATE_EPOCH` nor the environment: the
    // Dockerfile's own default, if it has one.
    if request.epoch.is_none() {
        request.epoch = graph.source_date_epoch;
    }
    let graph = &graph;
    let mode = match (args.quiet, args.progress, explain) {
        (_, ProgressArg::Json, true) => progress::Mode::Json,
        (_, _, true) => progress::Mode::Explain,
        (true, _, false) => progress::Mode::Quiet,
        (false, ProgressArg::Json, false) => progress::Mode::Json,
        (false, ProgressArg::Plain, false) => progress::Mode::Plain,
        (false, ProgressArg::Tty, false) => progress::Mode::Tty,
        (false, ProgressArg::Auto, false)
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) =>
        {
            progress::Mode::Tty
        }
        (false, ProgressArg::Auto, false) => progress::Mode::Plain,
    };
    let reporter = CliReporter::new(progress::Progress::new(mode, graph), quiet_transfers);
    if explain {
        let started = std::time::Instant::now();
        solve::explain(&session, graph, &request, &reporter).map_err(|error| match error {
            SolveError::Build(error) => {
                Rendered(crate::report::build_error(&error, graph, &source)).into()
            }
            other => anyhow::Error::new(other),
        })?;
        reporter.progress.summary("", 0, started.elapsed());
        return Ok(());
    }
    exec::stop_on_signals(&[2, 15, 1])?;
    let solved = solve::solve(&session, graph, &request, &reporter)
        .map_err(|error| failed(error, &reporter, graph, &source))?;
    let image = &solved.image;
    if let Some(path) = &args.metadata_file {
        crate::report::write_metadata(path, &solved, reporter.progress.steps())?;
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, image.id.to_string())
            .with_context(|| format!("failed to write the image ID to `{}`", path.display()))?;
    }
    // The image is recorded (and its outputs written): nothing more to hold.
    if let Some(lease) = lease {
        lease.release()?;
    }
    super::cache::trim(store, keep_storage)?;
    // Standard output carries an archive when an output goes there.
    if !request.outputs.iter().any(|output| output.to_stdout()) {
        writeln!(std::io::stdout().lock(), "{}", image.id)?;
    }
    Ok(())
}

/// `strata build --check`: the report on standard output (buildx prints
/// it there too), the error, if any, on standard error; exit status 1
/// when a check fired or the Dockerfile was refused, as buildx's.
fn check(
    report: &strata_frontend::lint::Report,
    source: &Source,
    format: Option<PlanFormat>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Some(PlanFormat::Json) => write!(out, "{}", diagnostic::check_json(report, source))?,
        _ => write!(out, "{}", diagnostic::render_check(report, source))?,
    }
    out.flush()?;
    drop(out);
    if let Some(error) = &report.error {
        let rendered = match &error.kind {
            strata_frontend::ErrorKind::ResolveImage(failure) => format!("error: {failure}\n"),
            _ => diagnostic::render(error, source),
        };
        return Err(super::Status {
            code: 1,
            error: Some(Rendered(rendered).into()),
        }
        .into());
    }
    if !diagnostic::check_warnings(report).is_empty() {
        return Err(super::Status {
            code: 1,
            error: None,
        }
        .into());
    }
    Ok(())
}

/// What the user sees of a failed solve: a step's failure pointed at its
/// Dockerfile line, an interrupt as 128 + the signal, the rest as errors.
fn failed(
    error: SolveError,
    reporter: &CliReporter<'_>,
    graph: &BuildGraph,
    source: &Source,
) -> anyhow::Error {
    match error {
        SolveError::Interrupted(signal) => super::Status {
            code: (128 + signal) as u8,
            error: Some(anyhow::anyhow!("the build was interrupted")),
        }
        .into(),
        SolveError::Build(error) => {
            // The JSON `error` event says what it always has: a step's
            // failure with its causes, the others by their own message.
            let message = match &error {
                BuildError::Exec { .. } | BuildError::Image(_) => error.to_string(),
                _ => strata_solver::error::one_line(&error),
            };
            reporter.progress.failed(&message);
            Rendered(crate::report::build_error(&error, graph, source)).into()
        }
        other => other.into(),
    }
}

/// The frontend's view of each `--build-context`. A directory must be one;
/// an OCI layout's image is read into the store, and named by its ID,
/// which is never pulled.
fn named_contexts(
    args: &BuildArgs,
    store: Option<&strata_solver::store::Store>,
    platform: Option<&Platform>,
) -> anyhow::Result<std::collections::BTreeMap<String, NamedContext>> {
    let mut named = std::collections::BTreeMap::new();
    for context in &args.build_contexts {
        let value = match &context.value {
            ContextValue::Image(image) => NamedContext::Image(image.clone()),
            ContextValue::Url(url) => NamedContext::Url(url.clone()),
            ContextValue::Directory(dir) => {
                if !dir.is_dir() {
                    bail!(
                        "build context `{}`: `{}` is not a directory",
                        context.name,
                        dir.display()
                    );
                }
                NamedContext::Directory
            }
            ContextValue::OciLayout { path, image } => {
                let Some(store) = store else {
                    bail!(
                        "build context `{}`: an OCI layout needs the store",
                        context.name
                    );
                };
                let platform = platform.cloned().unwrap_or_else(Platform::host);
                let record = strata_solver::image::load_layout_image(store, path, image, &platform)
                    .with_context(|| {
                        format!(
                            "build context `{}`: cannot read the OCI layout `{}`",
                            context.name,
                            path.display()
                        )
                    })?;
                NamedContext::Image(record.id.to_string())
            }
        };
        named.insert(context.name.clone(), value);
    }
    Ok(named)
}

/// `--call targets`: the stages, as a table or as BuildKit's JSON
/// (`targets` and `sources`, the Dockerfile in base64).
fn targets(text: &str, source: &Source, json: bool) -> anyhow::Result<()> {
    let list = strata_frontend::targets::targets(text)
        .map_err(|error| Rendered(diagnostic::render(&error, source)))?;
    let document = serde_json::json!({ "targets": list });
    let table = strata_frontend::targets::targets_table(&list);
    print_call(text, document, &table, json)
}

/// `--call outline`: what the target takes, as buildx's text or as
/// BuildKit's JSON (with `sources`, the Dockerfile in base64).
fn outline(text: &str, source: &Source, args: &BuildArgs, json: bool) -> anyhow::Result<()> {
    let build_args: std::collections::BTreeMap<String, String> = args
        .build_args
        .iter()
        .filter_map(|arg| Some((arg.name.clone(), arg.value.clone()?)))
        .collect();
    let outline = strata_frontend::outline::outline(text, args.target.as_deref(), &build_args)
        .map_err(|error| Rendered(diagnostic::render(&error, source)))?;
    let document = serde_json::to_value(&outline)?;
    let table = strata_frontend::outline::outline_text(&outline);
    print_call(text, document, &table, json)
}

/// A `--call` result: `document` with the Dockerfile as `sources` (as
/// BuildKit's subrequests give it) when `json`, else `table`.
fn print_call(
    text: &str,
    mut document: serde_json::Value,
    table: &str,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        use base64::Engine as _;
        document["sources"] =
            serde_json::json!([base64::engine::general_purpose::STANDARD.encode(text)]);
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    } else {
        write!(out, "{table}")?;
    }
    out.flush()?;
    Ok(())
}
