//! The syntax tree: one [`Node`] per instruction, as BuildKit's parser sees it.
//!
//! Nothing here knows what an instruction *means*; that is the job of
//! [`crate::instructions`]. The tree keeps every word with the [`Span`] it
//! came from, and [`Dockerfile::dump`] prints it in the S-expression format of
//! BuildKit's `Node.Dump()`, which is how the conformance data is written.

use crate::span::Span;

/// A parsed Dockerfile: parser directives, instructions and parse warnings.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// Parser directives found at the top (`# escape=`, `# syntax=`, `# check=`).
    pub directives: Vec<Directive>,
    /// The escape character in force (`\` or `` ` ``).
    pub escape: char,
    /// The instructions, in order.
    pub nodes: Vec<Node>,
    /// Warnings the parser found (empty continuation lines, ...).
    pub warnings: Vec<crate::Warning>,
}

/// A parser directive such as `# escape=\``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `escape`, `syntax` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// Where the directive's line is.
    pub span: Span,
}

/// A word of an instruction and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, with quotes and escapes kept as written (they are removed
    /// later by word expansion, as in BuildKit).
    pub value: String,
    /// The source bytes the word covers.
    pub span: Span,
}

impl Word {
    pub(crate) fn new(value: impl Into<String>, span: Span) -> Self {
        Word {
            value: value.into(),
            span,
        }
    }
}

/// One `key=value` pair of ENV or LABEL (or the legacy `KEY value` form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, as written.
    pub key: Word,
    /// The value, as written (quotes kept).
    pub value: Word,
    /// `true` for `key=value`, `false` for the legacy `KEY value` form.
    pub equals: bool,
}

/// The arguments of an instruction, in the shape its line parser produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Nothing after the instruction name (and its flags).
    None,
    /// The rest of the line as one string (shell form, USER, WORKDIR, ...).
    String(Word),
    /// A JSON array of strings (exec form).
    Json(Vec<Word>),
    /// Whitespace-separated words (FROM, EXPOSE, COPY/ADD/VOLUME shell form, ARG).
    Words(Vec<Word>),
    /// ENV and LABEL pairs.
    KeyValues(Vec<KeyValue>),
    /// HEALTHCHECK: a type word (`CMD`, `NONE`) and its command.
    Health {
        /// `CMD`, `NONE` or whatever was written.
        kind: Word,
        /// The command, shell or JSON form; [`Args::None`] when absent.
        command: Box<Args>,
    },
    /// ONBUILD: the trigger instruction.
    Trigger(Box<Node>),
}

/// A heredoc attached to an instruction (`RUN <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, unquoted.
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// Whether variables in the body are expanded (delimiter not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
    /// The body, lines with their line endings, without the terminator line.
    pub content: String,
    /// Where `<<EOF` is written in the instruction line.
    pub span: Span,
    /// The body's bytes in the source.
    pub content_span: Span,
}

/// One instruction of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction name as written (`run`, `RUN`, `Run`...).
    pub keyword: Word,
    /// Builder flags (`--from=build`), as written.
    pub flags: Vec<Word>,
    /// The arguments.
    pub args: Args,
    /// Whether the arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredocs attached to the instruction.
    pub heredocs: Vec<Heredoc>,
    /// The whole instruction, continuation and heredoc lines included.
    pub span: Span,
    /// The logical line after joining continuations, as BuildKit's `Original`.
    pub original: String,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line (continuation and heredoc lines included).
    pub end_line: usize,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// The instruction name, lower-cased.
    pub fn name(&self) -> String {
        self.keyword.value.to_ascii_lowercase()
    }

    /// BuildKit's S-expression dump of this node, without the parentheses.
    pub fn dump(&self) -> String {
        let mut out = self.name();
        if !self.flags.is_empty() {
            out.push_str(" [");
            for (index, flag) in self.flags.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                out.push_str(&go_quote(&flag.value));
            }
            out.push(']');
        }
        dump_args(&self.args, &mut out);
        out
    }
}

fn dump_args(args: &Args, out: &mut String) {
    let mut push = |value: &str| {
        out.push(' ');
        out.push_str(&go_quote(value));
    };
    match args {
        Args::None => {}
        Args::String(word) => push(&word.value),
        Args::Json(words) | Args::Words(words) => {
            for word in words {
                push(&word.value);
            }
        }
        Args::KeyValues(pairs) => {
            for pair in pairs {
                push(&pair.key.value);
                push(&pair.value.value);
                push(if pair.equals { "=" } else { "" });
            }
        }
        Args::Health { kind, command } => {
            push(&kind.value);
            dump_args(command, out);
        }
        Args::Trigger(node) => {
            out.push_str(" (");
            out.push_str(&node.dump());
            out.push(')');
        }
    }
}

impl Dockerfile {
    /// The whole tree in BuildKit's dump format: one `(instruction ...)` per line.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push('(');
            out.push_str(&node.dump());
            out.push_str(")\n");
        }
        out
    }

    /// The value of a parser directive, if present.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|directive| directive.name == name)
            .map(|directive| directive.value.as_str())
    }
}

/// Quote a string the way Go's `strconv.Quote` does, so dumps compare
/// byte-for-byte with BuildKit's.
pub fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            ch if (ch as u32) < 0x20 || ch == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", ch as u32));
            }
            ch if ch.is_control() || ch == '\u{feff}' => {
                if (ch as u32) > 0xffff {
                    out.push_str(&format!("\\U{:08x}", ch as u32));
                } else {
                    out.push_str(&format!("\\u{:04x}", ch as u32));
                }
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\t♥"), r#""\x00\t♥""#);
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
    }
}
