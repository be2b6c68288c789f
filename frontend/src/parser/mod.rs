//! Dockerfile text to syntax tree.
//!
//! The rules are BuildKit's (`frontend/dockerfile/parser/parser.go`), in the
//! order it applies them:
//!
//! 1. A leading byte-order mark is dropped; lines end at `\n` and any trailing
//!    `\r` is dropped with it.
//! 2. Parser directives (`# escape=`, `# syntax=`, `# check=`) are read from
//!    the top until the first line that is not one.
//! 3. Comment lines (`#` after optional whitespace) and blank lines between
//!    instructions are skipped.
//! 4. A line ending in the escape character (optionally followed by spaces or
//!    tabs) continues on the next line; comment lines inside a continuation are
//!    dropped, and empty ones are dropped with a warning.
//! 5. The joined line is split into instruction name, `--flags` and the rest,
//!    and the rest goes to the instruction's line parser ([`line`]).
//! 6. For RUN, COPY and ADD (and ONBUILD of them) in shell form, `<<WORD`
//!    starts a heredoc whose body is the following lines up to `WORD`.
//!
//! Unlike BuildKit, the joined line keeps a map back to the source
//! ([`Logical`]), so every word carries the byte span it was written at.

mod heredoc;
mod line;

use crate::ast::{Args, Directive, Dockerfile, Node, Word};
use crate::error::{Error, ErrorKind, Warning};
use crate::span::Span;

pub(crate) const BOM: &str = "\u{feff}";

/// Parse a Dockerfile. A leading byte-order mark is ignored; spans are offsets
/// into `text` with the mark removed (see [`strip_bom`]). Text longer than
/// [`crate::MAX_DOCKERFILE_SIZE`] is refused.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    Parser::new(text)?.run()
}

/// `text` without a leading byte-order mark: the text spans refer to.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// One physical line: where it starts and its text without line ending.
#[derive(Debug, Clone, Copy)]
struct PhysicalLine<'a> {
    start: usize,
    text: &'a str,
    /// The line with its line ending, as heredoc bodies keep it.
    raw: &'a str,
}

/// A logical line: physical lines joined, with a map back to the source.
#[derive(Debug, Default)]
pub(crate) struct Logical {
    pub(crate) text: String,
    /// `(offset in text, offset in source)` at the start of each piece.
    segments: Vec<(usize, usize)>,
}

impl Logical {
    fn push(&mut self, piece: &str, source_start: usize) {
        self.segments.push((self.text.len(), source_start));
        self.text.push_str(piece);
    }

    /// The source offset of logical offset `offset`.
    pub(crate) fn source(&self, offset: usize) -> usize {
        let index = match self
            .segments
            .binary_search_by(|(start, _)| start.cmp(&offset))
        {
            Ok(index) => index,
            Err(0) => return offset,
            Err(index) => index - 1,
        };
        // The last segment starting at `offset` wins (empty pieces).
        let mut index = index;
        while index + 1 < self.segments.len() && self.segments[index + 1].0 == offset {
            index += 1;
        }
        let (logical, source) = self.segments[index];
        source + (offset - logical)
    }

    /// The source span of logical range `start..end`.
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let source_start = self.source(start);
        let source_end = if end > start {
            self.source(end - 1) + 1
        } else {
            source_start
        };
        Span::new(source_start, source_end)
    }

    /// A word from logical range `start..end`.
    pub(crate) fn word(&self, start: usize, end: usize) -> Word {
        Word::new(&self.text[start..end], self.span(start, end))
    }
}

/// The parser, which reads physical lines as it goes (none is indexed
/// ahead) and gives one [`Node`] at a time: [`parse`] collects them, and
/// [`crate::compile_graph`] types each as it comes, so that the whole
/// syntax tree is never held.
pub(crate) struct Parser<'a> {
    text: &'a str,
    /// Offset of the next physical line.
    offset: usize,
    /// Physical lines read so far: the 1-based number of the last one.
    line: usize,
    escape: char,
    directives: Vec<Directive>,
    directives_done: bool,
    warnings: Vec<Warning>,
    /// Comment lines since the last instruction.
    comments: Vec<String>,
    /// Whether a node was given.
    any: bool,
}

impl<'a> Parser<'a> {
    /// A parser of `text` (a byte-order mark dropped); text longer than
    /// [`crate::MAX_DOCKERFILE_SIZE`] is refused.
    pub(crate) fn new(text: &'a str) -> Result<Self, Error> {
        let text = strip_bom(text);
        if text.len() > crate::MAX_DOCKERFILE_SIZE {
            return Err(Error::new(ErrorKind::TooLarge, Span::default()));
        }
        Ok(Parser {
            text,
            offset: 0,
            line: 0,
            escape: '\\',
            directives: Vec::new(),
            directives_done: false,
            warnings: Vec::new(),
            comments: Vec::new(),
            any: false,
        })
    }

    /// A parser of `text[body]` alone, for reading one stage's instructions
    /// a second time ([`crate::compile_graph`] keeps no typed instruction
    /// between typing and lowering, for memory): `text` is the whole text
    /// as the first parser read it (byte-order mark already dropped), so
    /// spans are offsets into it as before; `line` is the number of
    /// physical lines before `body.start`, so line numbers are as before;
    /// `escape` is the one the directives set. No directive is read: they
    /// come before the first instruction, and `body` starts after one.
    pub(crate) fn resume(
        text: &'a str,
        body: std::ops::Range<usize>,
        line: usize,
        escape: char,
    ) -> Result<Self, Error> {
        let reread = || {
            Error::new(ErrorKind::Reread, Span::new(body.start, body.start))
                .with_hint("this is a bug in strata: please report it")
        };
        let text = text.get(..body.end).ok_or_else(reread)?;
        if text.get(body.start..).is_none() {
            return Err(reread());
        }
        Ok(Parser {
            text,
            offset: body.start,
            line,
            escape,
            directives: Vec::new(),
            directives_done: true,
            warnings: Vec::new(),
            comments: Vec::new(),
            any: true,
        })
    }

    /// The text read (without its byte-order mark: what spans refer to).
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// Where the parser is: the offset of the next physical line, and the
    /// number of physical lines read (see [`Parser::resume`]).
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.offset, self.line)
    }

    /// The next physical line, not consumed.
    fn peek_line(&self) -> Option<PhysicalLine<'a>> {
        let rest = self
            .text
            .get(self.offset..)
            .filter(|rest| !rest.is_empty())?;
        let raw = match rest.find('\n') {
            Some(end) => &rest[..=end],
            None => rest,
        };
        Some(PhysicalLine {
            start: self.offset,
            text: raw.trim_end_matches(['\r', '\n']),
            raw,
        })
    }

    /// The next physical line, consumed.
    fn next_line(&mut self) -> Option<PhysicalLine<'a>> {
        let line = self.peek_line()?;
        self.offset += line.raw.len();
        self.line += 1;
        Some(line)
    }

    fn run(mut self) -> Result<Dockerfile, Error> {
        // Growing a vector of large nodes copies them each time: start near
        // the final size (most Dockerfiles have an instruction every 1-3 lines).
        let lines = self.text.bytes().filter(|byte| *byte == b'\n').count() + 1;
        let mut nodes = Vec::with_capacity(lines / 2 + 1);
        while let Some(node) = self.next_node()? {
            nodes.push(node);
        }
        let (escape, warnings) = self.finish()?;
        Ok(Dockerfile {
            directives: self.directives,
            escape,
            nodes,
            warnings,
        })
    }

    /// After the last node: the escape character and the warnings, or the
    /// error of a Dockerfile without instructions.
    pub(crate) fn finish(&mut self) -> Result<(char, Vec<Warning>), Error> {
        if !self.any {
            let end = self.text.len();
            return Err(Error::new(ErrorKind::NoInstructions, Span::new(end, end))
                .with_hint("a Dockerfile starts with `FROM <image>`"));
        }
        Ok((self.escape, std::mem::take(&mut self.warnings)))
    }

    /// The next instruction, `None` at the end of the text.
    pub(crate) fn next_node(&mut self) -> Result<Option<Node>, Error> {
        while let Some(first) = self.next_line() {
            let start_line = self.line;
            let trimmed = first.text.trim_start();
            let indent = first.text.len() - trimmed.len();
            let directive = self.directive(trimmed, first.start + indent)?;
            if let Some(comment) = trimmed.strip_prefix('#') {
                // BuildKit's `PrevComment`: an empty `#` line ends the
                // comments above an instruction, and directives are not
                // among them.
                let comment = comment.trim();
                if comment.is_empty() {
                    self.comments.clear();
                } else if !directive {
                    self.comments.push(comment.to_owned());
                }
                continue;
            }
            let mut logical = Logical::default();
            let (piece, mut continues) = self.trim_continuation(trimmed);
            if !continues && piece.is_empty() {
                continue;
            }
            logical.push(piece, first.start + indent);
            let mut last = first;
            let mut empty_continuation = None;
            while continues {
                let Some(line) = self.next_line() else { break };
                last = line;
                let left_trimmed = line.text.trim_start();
                if left_trimmed.starts_with('#') {
                    continue;
                }
                if left_trimmed.is_empty() {
                    empty_continuation.get_or_insert(line.start);
                    continue;
                }
                let (piece, more) = self.trim_continuation(line.text);
                logical.push(piece, line.start);
                continues = more;
            }
            let end = last.start + last.text.len();
            let span = Span::new(first.start + indent, end);
            if empty_continuation.is_some() {
                // BuildKit reports the instruction's last line.
                self.warnings.push(crate::lint::warning(
                    "NoEmptyContinuation",
                    crate::lint::no_empty_continuation(),
                    Span::new(last.start, end),
                ));
            }
            let mut node = line::node_from_logical(&logical, self.escape, 0)?;
            node.span = span;
            node.start_line = start_line;
            node.comments = std::mem::take(&mut self.comments);
            self.read_heredocs(&mut node, &logical)?;
            node.end_line = self.line;
            if let Some(heredoc) = node.heredocs.last() {
                node.span = node.span.to(heredoc.content_span);
            }
            self.any = true;
            return Ok(Some(node));
        }
        Ok(None)
    }

    /// BuildKit's `possibleParserDirective`: `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
    /// Whether `line` is a directive.
    fn directive(&mut self, line: &str, offset: usize) -> Result<bool, Error> {
        if self.directives_done {
            return Ok(false);
        }
        let Some((name, value)) = directive_parts(line) else {
            self.directives_done = true;
            return Ok(false);
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            self.directives_done = true;
            return Ok(false);
        }
        let span = Span::new(offset, offset + line.len());
        if self.directives.iter().any(|seen| seen.name == name) {
            return Err(Error::new(ErrorKind::DuplicateDirective(name), span));
        }
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => {
                    let value_offset = offset + (other.as_ptr() as usize - line.as_ptr() as usize);
                    return Err(Error::new(
                        ErrorKind::InvalidEscape(other.to_owned()),
                        Span::new(value_offset, value_offset + other.len()),
                    )
                    .with_hint("the escape character is either `\\` (the default) or `` ` ``"));
                }
            };
        }
        self.directives.push(Directive {
            name,
            value: value.to_owned(),
            span,
        });
        Ok(true)
    }

    /// The parser directives read so far.
    pub(crate) fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// Strip a trailing line-continuation escape: `([^E])E[ \t]*$|^E[ \t]*$`.
    fn trim_continuation<'l>(&self, line: &'l str) -> (&'l str, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(self.escape) else {
            return (line, false);
        };
        if before.ends_with(self.escape) {
            // An escaped escape character is not a continuation.
            return (line, false);
        }
        (before, true)
    }

    fn read_heredocs(&mut self, node: &mut Node, logical: &Logical) -> Result<(), Error> {
        if !can_contain_heredoc(node) {
            return Ok(());
        }
        let mut heredocs = heredoc::from_line(logical)?;
        for heredoc in &mut heredocs {
            let body_start = self.peek_line().map(|line| line.start);
            let mut terminated = false;
            while let Some(line) = self.next_line() {
                let candidate = if heredoc.chomp {
                    line.text.trim_start_matches('\t')
                } else {
                    line.text
                };
                if candidate == heredoc.name {
                    terminated = true;
                    let start = body_start.unwrap_or(line.start);
                    heredoc.content_span = Span::new(start, line.start + line.text.len());
                    break;
                }
                heredoc.content.push_str(line.raw);
            }
            if !terminated {
                return Err(Error::new(
                    ErrorKind::UnterminatedHeredoc(heredoc.name.clone()),
                    heredoc.span,
                )
                .with_hint(format!(
                    "the heredoc that starts here ends at a line holding only `{}`",
                    heredoc.name
                )));
            }
        }
        node.heredocs = heredocs;
        Ok(())
    }
}

/// Match a parser directive line, returning its name and value.
pub(crate) fn directive_parts(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_end = rest
        .char_indices()
        .find(|(_, ch)| !ch.is_ascii_alphanumeric())
        .map(|(index, _)| index)
        .unwrap_or(rest.len());
    let name = &rest[..name_end];
    if !name.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[name_end..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.args {
        Args::Trigger(trigger) if node.name() == "onbuild" => trigger,
        _ => node,
    };
    matches!(node.name().as_str(), "run" | "copy" | "add") && !node.json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        assert_eq!(directive_parts("# escape = `"), Some(("escape", "`")));
        assert_eq!(
            directive_parts("#syntax=docker/dockerfile:1 "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(directive_parts("# not a directive"), None);
        assert_eq!(directive_parts("# 1x=y"), None);
    }

    #[test]
    fn spans_follow_continuations() {
        let text = "FROM a\nRUN echo \\\n  hello \\\n  world\n";
        let file = parse(text).unwrap();
        let run = &file.nodes[1];
        assert_eq!(run.start_line, 2);
        assert_eq!(run.end_line, 4);
        let Args::String(word) = &run.args else {
            panic!()
        };
        assert_eq!(word.value, "echo   hello   world");
        assert_eq!(word.span.slice(text), "echo \\\n  hello \\\n  world");
    }

    #[test]
    fn crlf_and_bom() {
        let file = parse("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
        assert_eq!(file.dump(), "(from \"a\")\n(run \"b  c\")\n");
    }

    /// A stage read again gives the nodes of the first reading, spans and
    /// line numbers included; a range that is not in the text is an
    /// error, not a panic.
    #[test]
    fn resumed_parsers_read_as_the_first() {
        let text = "# escape=`\r\nFROM a\r\n# c\r\nRUN b `\r\n\r\n c\r\nRUN <<E\r\nx\r\nE\r\n";
        let mut first = Parser::new(text).unwrap();
        first.next_node().unwrap().unwrap();
        let (start, line) = first.position();
        let mut nodes = Vec::new();
        while let Some(node) = first.next_node().unwrap() {
            nodes.push(node);
        }
        let end = first.position().0;
        let mut again = Parser::resume(first.text(), start..end, line, '`').unwrap();
        for node in &nodes {
            assert_eq!(again.next_node().unwrap().as_ref(), Some(node));
        }
        assert_eq!(again.next_node().unwrap(), None);
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..2;
        for range in [end..end + 1, backwards, 0..text.len() + 1] {
            let error = Parser::resume(text, range, 0, '\\').err().unwrap();
            assert_eq!(error.kind, ErrorKind::Reread);
        }
        let error = Parser::resume("\u{e9}", 1..2, 0, '\\').err().unwrap();
        assert_eq!(error.kind, ErrorKind::Reread);
    }

    #[test]
    fn heredoc_body() {
        let text = "FROM a\nRUN <<EOF\necho hi\nEOF\nRUN x\n";
        let file = parse(text).unwrap();
        let heredoc = &file.nodes[1].heredocs[0];
        assert_eq!(heredoc.content, "echo hi\n");
        assert!(heredoc.expand);
        assert_eq!(file.nodes[1].end_line, 4);
        assert_eq!(file.nodes[2].start_line, 5);
    }
}
