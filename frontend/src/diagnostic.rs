//! Rendering errors and warnings with the source line and a caret.
//!
//! ```text
//! error: unknown instruction: RUNN
//!  --> Dockerfile:3:1
//!   |
//! 2 | FROM busybox
//! 3 | RUNN echo hi
//!   | ^^^^
//!
//! hint: did you mean `RUN`?
//! ```
//!
//! The format joins BuildKit's `Source.Print` (numbered context, every line
//! of a multi-line instruction shown), a width-aware caret and uv's hint
//! style. No colour and no terminal queries, so snapshots are stable.

use crate::error::{Error, Warning};
use crate::span::{LineIndex, Span};
use unicode_width::UnicodeWidthChar;

/// Lines of a multi-line span shown before the rest is elided.
const MAX_SPAN_LINES: usize = 6;
/// Characters of one source line shown around the caret.
const MAX_LINE_CHARS: usize = 120;

/// A named source text, with its line index.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name shown in `--> NAME:LINE:COL` (usually the Dockerfile path).
    pub name: String,
    /// The text, byte-order mark removed (as spans expect).
    pub text: String,
    index: LineIndex,
}

impl Source {
    /// A source named `name`.
    pub fn new(name: impl Into<String>, text: &str) -> Self {
        Source::from_string(name, crate::parser::strip_bom(text).to_owned())
    }

    /// A source named `name` that keeps `text` itself instead of a copy
    /// (the CLI compiles [`Source::text`], so a Dockerfile is held once).
    pub fn from_string(name: impl Into<String>, mut text: String) -> Self {
        if let Some(rest) = text.strip_prefix(crate::parser::BOM) {
            text = rest.to_owned();
        }
        let index = LineIndex::new(&text);
        Source {
            name: name.into(),
            text,
            index,
        }
    }

    /// `NAME:LINE:COL` of the start of `span`.
    pub fn location(&self, span: Span) -> String {
        let (line, column) = self.index.line_col(&self.text, span.start);
        format!("{}:{line}:{column}", self.name)
    }

    /// 1-based line of `offset`.
    pub fn line(&self, offset: u32) -> usize {
        self.index.line(offset)
    }

    /// The line index.
    pub fn index(&self) -> &LineIndex {
        &self.index
    }
}

/// Render an error.
pub fn render(error: &Error, source: &Source) -> String {
    match error.span {
        Some(span) => render_message(
            "error",
            &error.kind.to_string(),
            span,
            error.hint.as_deref(),
            source,
        ),
        None => {
            let mut out = format!("error: {}\n", error.kind);
            if let Some(hint) = &error.hint {
                out.push_str(&format!("\nhint: {hint}\n"));
            }
            out
        }
    }
}

/// Render a warning. One of BuildKit's checks is named before its
/// message, and its description and documentation follow, as BuildKit
/// prints them.
pub fn render_warning(warning: &Warning, source: &Source) -> String {
    let (message, hint) = match crate::lint::find(warning.rule) {
        Some(rule) => {
            let hint = if rule.url.is_empty() {
                rule.description.to_owned()
            } else {
                format!("{} ({})", rule.description, rule.url)
            };
            (format!("{}: {}", rule.name, warning.message), Some(hint))
        }
        None => (warning.message.clone(), None),
    };
    match warning.span {
        Some(span) => render_message("warning", &message, span, hint.as_deref(), source),
        None => format!("warning: {message}\n"),
    }
}

/// The summary line of a check, in buildx's words.
pub fn check_summary(warnings: usize) -> String {
    match warnings {
        0 => "Check complete, no warnings found.\n".to_owned(),
        1 => "Check complete, 1 warning has been found!\n".to_owned(),
        count => format!("Check complete, {count} warnings have been found!\n"),
    }
}

/// A check's report for people (`strata build --check`): buildx's summary
/// line first, then each warning rendered, then the error, if any (which
/// buildx prints instead of the "no warnings" line).
pub fn render_check(report: &crate::lint::Report, source: &Source) -> String {
    let mut out = String::new();
    let warnings = check_warnings(report);
    if !warnings.is_empty() || report.error.is_none() {
        out.push_str(&check_summary(warnings.len()));
    }
    for warning in warnings {
        out.push('\n');
        out.push_str(&render_warning(warning, source));
    }
    out
}

/// The warnings a check reports: BuildKit's rules only (strata's own
/// warnings, such as unused build arguments, are not checks).
pub fn check_warnings(report: &crate::lint::Report) -> Vec<&Warning> {
    report
        .warnings
        .iter()
        .filter(|warning| crate::lint::find(warning.rule).is_some())
        .collect()
}

/// A check's report as JSON (`strata build --check --format json`):
/// `{"warnings":[{"rule","description","url","message","file","line","column"}]}`
/// in Dockerfile order, and `"error"` (message, file, line, column) when
/// the Dockerfile was refused. Line and column are 1-based; 0 when the
/// finding has no place.
pub fn check_json(report: &crate::lint::Report, source: &Source) -> String {
    #[derive(serde::Serialize)]
    struct JsonWarning<'a> {
        rule: &'a str,
        description: &'a str,
        url: &'a str,
        message: &'a str,
        file: &'a str,
        line: usize,
        column: usize,
    }
    #[derive(serde::Serialize)]
    struct JsonError<'a> {
        message: String,
        file: &'a str,
        line: usize,
        column: usize,
    }
    #[derive(serde::Serialize)]
    struct JsonReport<'a> {
        warnings: Vec<JsonWarning<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<JsonError<'a>>,
    }
    let place = |span: Option<Span>| match span {
        Some(span) => source.index.line_col(&source.text, span.start),
        None => (0, 0),
    };
    let warnings = check_warnings(report)
        .into_iter()
        .filter_map(|warning| {
            let rule = crate::lint::find(warning.rule)?;
            let (line, column) = place(warning.span);
            Some(JsonWarning {
                rule: rule.name,
                description: rule.description,
                url: rule.url,
                message: &warning.message,
                file: &source.name,
                line,
                column,
            })
        })
        .collect();
    let error = report.error.as_ref().map(|error| {
        let (line, column) = place(error.span);
        JsonError {
            message: error.kind.to_string(),
            file: &source.name,
            line,
            column,
        }
    });
    let out = serde_json::to_string(&JsonReport { warnings, error })
        .expect("strings and numbers serialize");
    format!("{out}\n")
}

/// Render `level: message` with the snippet for `span` and an optional hint.
pub fn render_message(
    level: &str,
    message: &str,
    span: Span,
    hint: Option<&str>,
    source: &Source,
) -> String {
    let text = &source.text;
    let index = &source.index;
    let start = span.start.min(text.len() as u32);
    let end = span.end.clamp(start, text.len() as u32);
    let first_line = index.line(start);
    // A span ending right after a newline does not reach the next line.
    let last_line = if end > start {
        index.line(end - 1)
    } else {
        first_line
    };
    let shown_last = last_line.min(first_line + MAX_SPAN_LINES - 1);
    let context = first_line.saturating_sub(1).max(1);
    let gutter = shown_last.max(context).to_string().len();

    let mut out = format!("{level}: {message}\n");
    out.push_str(&format!(
        "{:gutter$}--> {}\n",
        "",
        source.location(Span { start, end })
    ));
    out.push_str(&format!("{:gutter$} |\n", ""));
    if context < first_line {
        let line = index.line_text(text, context);
        let (shown, _) = window(line, 0, 0);
        out.push_str(&format!("{context:>gutter$} | {shown}\n"));
    }
    for number in first_line..=shown_last {
        let line = index.line_text(text, number);
        let line_start = index.line_start(number) as usize;
        let line_end = line_start + line.len();
        let from = (start as usize).max(line_start) - line_start;
        let to = (end as usize).min(line_end).max(line_start) - line_start;
        let (shown, caret) = window(line, from, to.max(from));
        out.push_str(&format!("{number:>gutter$} | {shown}\n"));
        if !caret.trim().is_empty() || number == first_line {
            out.push_str(&format!("{:gutter$} | {caret}\n", ""));
        }
    }
    if shown_last < last_line {
        out.push_str(&format!(
            "{:gutter$} | ... ({} more lines)\n",
            "",
            last_line - shown_last
        ));
    }
    if let Some(hint) = hint {
        out.push_str(&format!("\nhint: {hint}\n"));
    }
    out
}

/// The part of `line` to show and the caret line under bytes `from..to`.
/// Long lines are cut to a window around the caret; tabs are copied into
/// the caret's indentation so that it lines up in any terminal.
fn window(line: &str, from: usize, to: usize) -> (String, String) {
    let from = floor_char_boundary(line, from.min(line.len()));
    let to = floor_char_boundary(line, to.min(line.len()));
    let chars_before = line[..from].chars().count();
    let skip = if line.len() <= MAX_LINE_CHARS {
        0
    } else {
        chars_before.saturating_sub(MAX_LINE_CHARS / 4)
    };
    let mut shown = String::new();
    let mut caret = String::new();
    if skip > 0 {
        shown.push_str("...");
        caret.push_str("   ");
    }
    let mut truncated = false;
    for (count, (offset, ch)) in line.char_indices().skip(skip).enumerate() {
        if count == MAX_LINE_CHARS {
            truncated = true;
            break;
        }
        shown.push(if ch.is_control() && ch != '\t' {
            ' '
        } else {
            ch
        });
        let width = if ch == '\t' {
            1
        } else {
            ch.width().unwrap_or(0)
        };
        let marker = if offset >= from && offset < to.max(from + 1) {
            '^'
        } else if ch == '\t' {
            '\t'
        } else {
            ' '
        };
        if marker == '^' {
            caret.extend(std::iter::repeat_n('^', width.max(1)));
        } else if offset < from {
            caret.extend(std::iter::repeat_n(
                marker,
                if ch == '\t' { 1 } else { width },
            ));
        }
    }
    if truncated {
        shown.push_str("...");
    }
    if from >= line.len() && !caret.contains('^') {
        caret.push('^');
    }
    (shown, caret.trim_end().to_owned())
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn caret_under_word() {
        let source = Source::new("Dockerfile", "FROM busybox\nRUNN echo hi\n");
        let error = Error::new(
            ErrorKind::UnknownInstruction("RUNN".into()),
            Span::new(13, 17),
        )
        .with_hint("did you mean `RUN`?");
        assert_eq!(
            render(&error, &source),
            "error: unknown instruction: RUNN\n --> Dockerfile:2:1\n  |\n1 | FROM busybox\n2 | RUNN echo hi\n  | ^^^^\n\nhint: did you mean `RUN`?\n"
        );
    }

    #[test]
    fn long_lines_are_windowed() {
        let line = format!("RUN {}x", "a".repeat(10_000));
        let source = Source::new("Dockerfile", &line);
        let at = line.len() - 1;
        let rendered = render_message("error", "here", Span::new(at, at + 1), None, &source);
        assert!(rendered.len() < 600, "{rendered}");
        assert!(rendered.contains("^"));
    }
}
