//! Build progress on stderr: `tty`, live lines per running step (elapsed
//! time, the last line of RUN output) with finished and cached steps
//! printed above them; `plain` lines for logs; or `json`, one event per
//! line; and the closing summary.
//!
//! Steps are numbered in the order they start (BuildKit's `#N`); events
//! come from the threads steps run on, so the state sits behind a lock and
//! each event is written whole.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use strata_frontend::graph::{BuildGraph, Vertex};
use strata_solver::registry::Transfer;
use strata_solver::solve::cause::{Cause, Change, ValueChange};
use strata_solver::solve::{Event, Notice, Phase, Reporter};

use crate::commands::registry::TransferProgress;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Live lines on a terminal.
    Tty,
    /// Ordered lines, prefixed `#N`.
    Plain,
    /// One JSON object per line.
    Json,
    /// Nothing but errors.
    Quiet,
    /// `strata cache explain`: what would come from the cache, what would
    /// run and why.
    Explain,
}

#[derive(Default)]
struct State {
    numbers: BTreeMap<usize, usize>,
    cached: usize,
    executed: usize,
    /// Time spent in steps that ran.
    executed_time: Duration,
    /// Live lines of running steps (tty mode).
    bars: BTreeMap<usize, indicatif::ProgressBar>,
    /// Steps that ran because of a change of their own: step number,
    /// description, cause; and how many ran after each.
    misses: Vec<(usize, usize, String, String)>,
    followers: BTreeMap<usize, usize>,
    /// Per step, by step number: what `--metadata-file` reports.
    steps: BTreeMap<usize, serde_json::Value>,
}

/// The progress of one build.
pub(crate) struct Progress<'g> {
    mode: Mode,
    graph: &'g BuildGraph,
    state: Mutex<State>,
    multi: indicatif::MultiProgress,
}

impl<'g> Progress<'g> {
    pub(crate) fn new(mode: Mode, graph: &'g BuildGraph) -> Progress<'g> {
        Progress {
            mode,
            graph,
            state: Mutex::new(State::default()),
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ),
        }
    }

    /// A line above the live ones (tty mode).
    fn above(&self, line: String) {
        let _ = self.multi.println(line);
    }

    fn number(state: &mut State, vertex: &Vertex) -> usize {
        let next = state.numbers.len() + 1;
        *state.numbers.entry(vertex.id).or_insert(next)
    }

    fn step_fields(&self, number: usize, vertex: &Vertex) -> serde_json::Value {
        json!({
            "step": number,
            "vertex": vertex.id,
            "stage": self.graph.stages.get(vertex.stage).map(|stage| stage.label()),
            "description": vertex.description(),
            "line": vertex.origin.map(|origin| origin.line),
        })
    }

    fn write(&self, text: &str) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn json(&self, event: &str, mut fields: serde_json::Value) {
        fields["event"] = json!(event);
        let mut line = serde_json::to_string(&fields).expect("events serialize");
        line.push('\n');
        self.write(&line);
    }

    /// The steps of the build, as `--metadata-file` reports them (see
    /// docs/metadata.schema.json).
    pub(crate) fn steps(&self) -> Vec<serde_json::Value> {
        let state = self.state.lock().expect("progress lock");
        state.steps.values().cloned().collect()
    }

    /// Note what `event` says of its step, for the metadata.
    fn record(&self, state: &mut State, event: &Event<'_>) {
        let vertex = match event {
            Event::Started(vertex)
            | Event::Cached(vertex)
            | Event::Missed(vertex, _)
            | Event::Finished(vertex, ..)
            | Event::Output(vertex, _) => *vertex,
        };
        if matches!(vertex.op, strata_frontend::graph::Op::Source(_)) {
            return;
        }
        let number = Self::number(state, vertex);
        let root_number = match event {
            Event::Missed(_, Cause::After(root)) => state.numbers.get(root).copied(),
            _ => None,
        };
        let entry = state.steps.entry(number).or_insert_with(|| {
            json!({
                "step": number,
                "vertex": vertex.id,
                "stage": self.graph.stages.get(vertex.stage).map(|stage| stage.label()),
                "instruction": vertex.label.text(),
                "line": vertex.origin.map(|origin| origin.line),
                "cached": false,
                "cause": null,
                "caused_by": null,
                "duration_ms": null,
                "layer": null,
            })
        });
        match event {
            Event::Cached(_) => entry["cached"] = json!(true),
            Event::Missed(_, cause) => {
                entry["cause"] = json!(match root_number {
                    Some(_) => "an earlier step changed".to_owned(),
                    None => cause_text(cause),
                });
                entry["caused_by"] = json!(root_number);
            }
            Event::Finished(_, layer, elapsed) => {
                entry["duration_ms"] = json!(elapsed.as_millis() as u64);
                entry["layer"] = match layer {
                    Some(layer) => {
                        json!({ "digest": layer.digest.to_string(), "size": layer.size })
                    }
                    None => serde_json::Value::Null,
                };
            }
            _ => {}
        }
    }

    /// Show one event.
    pub(crate) fn event(&self, event: Event<'_>) {
        let mut state = self.state.lock().expect("progress lock");
        self.record(&mut state, &event);
        match event {
            Event::Missed(vertex, cause) => {
                let number = Self::number(&mut state, vertex);
                let root = match cause {
                    Cause::After(root) => {
                        *state.followers.entry(*root).or_default() += 1;
                        state.numbers.get(root).copied()
                    }
                    _ => {
                        let text = cause_text(cause);
                        state
                            .misses
                            .push((vertex.id, number, vertex.description(), text));
                        None
                    }
                };
                if self.mode == Mode::Explain {
                    let cause = match root {
                        Some(root) => format!("an earlier step changed (#{root})"),
                        None => cause_text(cause),
                    };
                    self.write(&format!(
                        "#{number} RUN    {}: {cause}\n",
                        vertex.description()
                    ));
                }
                if self.mode == Mode::Json {
                    let mut fields = self.step_fields(number, vertex);
                    fields["cause"] = json!(match root {
                        Some(_) => "an earlier step changed".to_owned(),
                        None => cause_text(cause),
                    });
                    fields["caused_by"] = json!(root);
                    self.json("missed", fields);
                }
            }
            Event::Started(vertex) => {
                let number = Self::number(&mut state, vertex);
                match self.mode {
                    Mode::Tty => {
                        let bar = indicatif::ProgressBar::with_draw_target(
                            None,
                            indicatif::ProgressDrawTarget::hidden(),
                        )
                        .with_style(
                            indicatif::ProgressStyle::with_template(
                                "{spinner} #{prefix} {msg} {elapsed:>4}",
                            )
                            .expect("a valid template"),
                        )
                        .with_prefix(number.to_string())
                        .with_message(vertex.description());
                        let bar = self.multi.add(bar);
                        bar.enable_steady_tick(Duration::from_millis(100));
                        state.bars.insert(vertex.id, bar);
                    }
                    Mode::Plain => self.write(&format!("#{number} {}\n", vertex.description())),
                    Mode::Json => self.json("started", self.step_fields(number, vertex)),
                    Mode::Quiet | Mode::Explain => {}
                }
            }
            Event::Cached(vertex) => {
                let number = Self::number(&mut state, vertex);
                state.cached += 1;
                match self.mode {
                    Mode::Tty => self.above(format!("#{number} CACHED {}", vertex.description())),
                    Mode::Explain => {
                        self.write(&format!("#{number} CACHED {}\n", vertex.description()));
                    }
                    Mode::Plain => {
                        self.write(&format!("#{number} CACHED {}\n", vertex.description()));
                    }
                    Mode::Json => {
                        let mut fields = self.step_fields(number, vertex);
                        fields["cached"] = json!(true);
                        self.json("cached", fields);
                    }
                    Mode::Quiet => {}
                }
            }
            Event::Output(vertex, bytes) => {
                let number = Self::number(&mut state, vertex);
                let text = String::from_utf8_lossy(bytes);
                match self.mode {
                    Mode::Tty => {
                        // The step's line shows its latest output.
                        if let (Some(bar), Some(last)) = (
                            state.bars.get(&vertex.id),
                            text.lines().rev().find(|line| !line.trim().is_empty()),
                        ) {
                            bar.set_message(format!(
                                "{} │ {}",
                                vertex.description(),
                                last.trim_end()
                            ));
                        }
                    }
                    Mode::Plain => {
                        let mut out = String::new();
                        for line in text.split_inclusive('\n') {
                            out.push_str(&format!("#{number} {line}"));
                        }
                        if !text.ends_with('\n') {
                            out.push('\n');
                        }
                        self.write(&out);
                    }
                    Mode::Json => self.json(
                        "log",
                        json!({ "step": number, "vertex": vertex.id, "data": text }),
                    ),
                    Mode::Quiet | Mode::Explain => {}
                }
            }
            Event::Finished(vertex, layer, elapsed) => {
                let number = Self::number(&mut state, vertex);
                if !matches!(vertex.op, strata_frontend::graph::Op::Source(_)) {
                    state.executed += 1;
                    state.executed_time += elapsed;
                }
                match self.mode {
                    Mode::Tty => {
                        if let Some(bar) = state.bars.remove(&vertex.id) {
                            bar.finish_and_clear();
                            self.multi.remove(&bar);
                        }
                        let size = layer
                            .map(|layer| {
                                format!(", layer {}", crate::commands::human_size(layer.size))
                            })
                            .unwrap_or_default();
                        self.above(format!(
                            "#{number} DONE {:.1}s {}{size}",
                            elapsed.as_secs_f64(),
                            vertex.description()
                        ));
                    }
                    Mode::Plain => {
                        let size = layer
                            .map(|layer| {
                                format!(", layer {}", crate::commands::human_size(layer.size))
                            })
                            .unwrap_or_default();
                        self.write(&format!(
                            "#{number} DONE {:.1}s{size}\n",
                            elapsed.as_secs_f64()
                        ));
                    }
                    Mode::Json => {
                        let mut fields = self.step_fields(number, vertex);
                        fields["cached"] = json!(false);
                        fields["duration_ms"] = json!(elapsed.as_millis() as u64);
                        fields["layer"] = match layer {
                            Some(layer) => {
                                json!({ "digest": layer.digest.to_string(), "size": layer.size })
                            }
                            None => serde_json::Value::Null,
                        };
                        self.json("finished", fields);
                    }
                    Mode::Quiet | Mode::Explain => {}
                }
            }
        }
    }

    /// The closing line: "N steps: H cached, M executed in T".
    pub(crate) fn summary(&self, image: &str, files_hashed: usize, elapsed: Duration) {
        let state = self.state.lock().expect("progress lock");
        let steps = state.cached + state.executed;
        if self.mode == Mode::Explain {
            let would_run = state.misses.len() + state.followers.values().sum::<usize>();
            self.write(&format!(
                "{} steps: {} would come from the cache, {would_run} would run\n",
                state.cached + would_run,
                state.cached
            ));
            return;
        }
        let line = format!(
            "{steps} steps: {} cached, {} executed in {:.1}s ({:.1}s in executed steps)",
            state.cached,
            state.executed,
            elapsed.as_secs_f64(),
            state.executed_time.as_secs_f64()
        );
        // Why each step that ran did, and what ran only because of it.
        let mut report = String::new();
        for (vertex, number, description, cause) in &state.misses {
            report.push_str(&format!("  #{number} {description}: {cause}"));
            match state.followers.get(vertex) {
                Some(1) => report.push_str(" (and 1 step after it)"),
                Some(count) => report.push_str(&format!(" (and {count} steps after it)")),
                None => {}
            }
            report.push('\n');
        }
        let line = if report.is_empty() {
            line
        } else {
            format!("{line}; what ran, and why:\n{}", report.trim_end())
        };
        match self.mode {
            Mode::Tty => self.above(line),
            Mode::Plain => self.write(&format!("{line}\n")),
            Mode::Json => self.json(
                "done",
                json!({
                    "image": image,
                    "steps": steps,
                    "cached": state.cached,
                    "executed": state.executed,
                    "files_hashed": files_hashed,
                    "duration_ms": elapsed.as_millis() as u64,
                }),
            ),
            Mode::Quiet | Mode::Explain => {}
        }
    }

    /// A failed build: live lines go (the error is printed after), and a
    /// JSON error event.
    pub(crate) fn failed(&self, message: &str) {
        let mut state = self.state.lock().expect("progress lock");
        for (_, bar) in std::mem::take(&mut state.bars) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let _ = self.multi.clear();
        if self.mode == Mode::Json {
            self.json("error", json!({ "message": message }));
        }
    }
}

/// Why a step ran, in words: the one place a [`Cause`] becomes text (the
/// progress report, `strata cache explain`, `--metadata-file`).
fn cause_text(cause: &Cause) -> String {
    match cause {
        Cause::NoCache => "--no-cache".to_owned(),
        Cause::NoPrevious => "no previous build of this step".to_owned(),
        Cause::After(_) => "an earlier step changed".to_owned(),
        Cause::Changed(change) => change_text(change),
    }
}

fn change_text(change: &Change) -> String {
    match change {
        Change::BaseImage { before, now } => {
            let short = |digest: &Option<String>| {
                digest
                    .as_deref()
                    .map(|digest| digest.chars().take(14).collect::<String>() + "…")
                    .unwrap_or_else(|| "none".to_owned())
            };
            format!("base image changed ({} → {})", short(before), short(now))
        }
        Change::Instruction => "instruction changed".to_owned(),
        Change::BuildArg(value) => value_text("build arg", value),
        Change::Env(value) => value_text("ENV", value),
        Change::User { before, now } => format!("USER changed ({before} → {now})"),
        Change::Workdir { before, now } => format!("WORKDIR changed ({before} → {now})"),
        Change::FilesChanged(paths) => counted("file changed", "files changed", paths),
        Change::FileMode { path, before, now } => {
            format!("file mode changed: {path} ({before:o} → {now:o})")
        }
        Change::FilesAdded(paths) => counted("file added", "files added", paths),
        Change::NowIgnored(paths) => format!(".dockerignore now includes {}", some_of(paths)),
        Change::FilesRemoved(paths) => counted("file removed", "files removed", paths),
        Change::Inputs => "its inputs changed".to_owned(),
    }
}

fn value_text(what: &str, value: &ValueChange) -> String {
    let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "unset".to_owned());
    format!(
        "{what} {} changed ({} → {})",
        value.name,
        show(&value.before),
        show(&value.now)
    )
}

/// `a, b, +N more` of the first two of `items`.
fn some_of(items: &[String]) -> String {
    let mut shown: Vec<String> = items.iter().take(2).cloned().collect();
    if items.len() > 2 {
        shown.push(format!("+{} more", items.len() - 2));
    }
    shown.join(", ")
}

fn counted(one: &str, many: &str, items: &[String]) -> String {
    match items {
        [item] => format!("{one}: {item}"),
        _ => format!("{} {many}: {}", items.len(), some_of(items)),
    }
}

/// Blob transfers on stderr: one [`TransferProgress`] per phase (a push's
/// per destination). On its own it is the reporter of the pulls made while
/// the Dockerfile is lowered, before there is a graph to show steps of.
pub(crate) struct Transfers {
    /// No transfer lines or push messages (`-q`, json progress).
    quiet: bool,
    open: Mutex<Option<(Phase, TransferProgress)>>,
}

impl Transfers {
    pub(crate) fn new(quiet: bool) -> Transfers {
        Transfers {
            quiet,
            open: Mutex::new(None),
        }
    }
}

impl Reporter for Transfers {
    fn event(&self, _: Event<'_>) {}

    fn transfer(&self, phase: Phase, transfer: Transfer<'_>) {
        let mut current = self.open.lock().expect("transfers lock");
        if current.as_ref().is_none_or(|(open, _)| *open != phase) {
            let (verb, quiet) = match phase {
                Phase::Pull => ("Pulling", self.quiet),
                Phase::Push => ("Pushing", self.quiet),
                // The cache's blobs are the image's: not listed again.
                Phase::CacheExport => ("Exporting cache", true),
            };
            *current = Some((phase, TransferProgress::new(verb, quiet)));
        }
        if let Some((_, progress)) = current.as_ref() {
            progress.event(transfer);
        }
    }

    fn transfers_done(&self, phase: Phase) {
        let mut current = self.open.lock().expect("transfers lock");
        if current.as_ref().is_some_and(|(open, _)| *open == phase)
            && let Some((_, progress)) = current.take()
        {
            progress.finish();
        }
    }

    fn notice(&self, notice: Notice<'_>) {
        let mut stderr = std::io::stderr().lock();
        let _ = match notice {
            Notice::Warning(text) => writeln!(stderr, "warning: {text}"),
            Notice::Pushed { .. } | Notice::CacheExported(_) if self.quiet => Ok(()),
            Notice::Pushed { reference, digest } => {
                writeln!(stderr, "pushed {reference} (digest: {digest})")
            }
            Notice::CacheExported(exported) => writeln!(
                stderr,
                "exported the cache: {} records, {} layers ({})",
                exported.records, exported.layers, exported.digest
            ),
            // The steps' summary is the build's reporter's.
            Notice::Built { .. } => Ok(()),
        };
    }
}

/// The CLI's [`Reporter`] for a build: steps go to [`Progress`], which
/// prints the summary when the image is built; transfers and the other
/// notices to [`Transfers`].
pub(crate) struct CliReporter<'g> {
    /// The steps' progress.
    pub(crate) progress: Progress<'g>,
    transfers: Transfers,
}

impl<'g> CliReporter<'g> {
    pub(crate) fn new(progress: Progress<'g>, quiet_transfers: bool) -> CliReporter<'g> {
        CliReporter {
            progress,
            transfers: Transfers::new(quiet_transfers),
        }
    }
}

impl Reporter for CliReporter<'_> {
    fn event(&self, event: Event<'_>) {
        self.progress.event(event);
    }

    fn transfer(&self, phase: Phase, transfer: Transfer<'_>) {
        self.transfers.transfer(phase, transfer);
    }

    fn transfers_done(&self, phase: Phase) {
        self.transfers.transfers_done(phase);
    }

    fn notice(&self, notice: Notice<'_>) {
        match notice {
            Notice::Built {
                image,
                files_hashed,
                elapsed,
            } => self
                .progress
                .summary(&image.id.to_string(), files_hashed, elapsed),
            other => self.transfers.notice(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strata_solver::solve::cache::{FileSummary, Files, StepInputs};
    use strata_solver::solve::cause::own_change;

    use super::change_text;

    // Moved from the solver's cache module with the wording.
    #[test]
    fn causes_read_well() {
        let files = |entries: &[(&str, &str, u32)]| -> Files {
            entries
                .iter()
                .map(|(path, digest, mode)| {
                    (
                        path.to_string(),
                        FileSummary {
                            kind: "file".into(),
                            digest: digest.to_string(),
                            mode: *mode,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        let before = StepInputs {
            files: files(&[
                ("a", "1", 0o644),
                ("b", "2", 0o644),
                ("c", "3", 0o644),
                ("d", "4", 0o644),
            ]),
            ..StepInputs::default()
        };
        let now = StepInputs {
            files: files(&[
                ("a", "9", 0o644),
                ("b", "8", 0o644),
                ("c", "7", 0o644),
                ("d", "4", 0o644),
            ]),
            ..StepInputs::default()
        };
        assert_eq!(
            own_change(&before, &now, &|_: &str| false)
                .map(|change| change_text(&change))
                .as_deref(),
            Some("3 files changed: a, b, +1 more")
        );
        assert_eq!(own_change(&before, &before, &|_: &str| false), None);
    }
}
