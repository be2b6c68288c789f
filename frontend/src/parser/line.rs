//! Line parsers: the per-instruction rules that turn the rest of a logical
//! line into [`Args`] (BuildKit `parser/line_parsers.go`).
//!
//! | instruction | rule |
//! | --- | --- |
//! | ADD, COPY, VOLUME | JSON array, else whitespace-separated words |
//! | CMD, ENTRYPOINT, RUN, SHELL | JSON array, else the whole rest as one string |
//! | ARG | shell-like words (quotes kept) |
//! | ENV, LABEL | `k=v` pairs, or the legacy `KEY value` |
//! | EXPOSE, FROM | whitespace-separated words |
//! | HEALTHCHECK | a type word, then as CMD |
//! | MAINTAINER, STOPSIGNAL, USER, WORKDIR | the whole rest as one string |
//! | ONBUILD | a whole instruction |
//!
//! Positions are byte offsets into the [`Logical`] line; words get their
//! source spans from it.

use super::Logical;
use crate::ast::{Args, KeyValue, Node, Word};
use crate::error::{Error, ErrorKind};
use crate::span::Span;

/// `[\t\v\f\r ]`, the separator of BuildKit's whitespace-delimited parsers.
fn is_separator(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\x0b' | b'\x0c' | b'\r' | b' ')
}

/// Parse the whole logical line as one instruction.
pub(super) fn node_from_logical(
    logical: &Logical,
    escape: char,
    depth: usize,
) -> Result<Node, Error> {
    node_from_range(logical, 0, logical.text.len(), escape, depth)
}

fn node_from_range(
    logical: &Logical,
    start: usize,
    end: usize,
    escape: char,
    depth: usize,
) -> Result<Node, Error> {
    let text = &logical.text;
    let (start, end) = trim_range(text, start, end);
    let bytes = text.as_bytes();
    let keyword_end = (start..end)
        .find(|&index| is_separator(bytes[index]))
        .unwrap_or(end);
    let keyword = logical.word(start, keyword_end);
    let mut rest_start = keyword_end;
    while rest_start < end && is_separator(bytes[rest_start]) {
        rest_start += 1;
    }
    let (flags, args_start) = if keyword_end < end {
        extract_flags(logical, rest_start, end)
    } else {
        (Vec::new(), end)
    };
    let (args_start, args_end) = trim_range(text, args_start, end);
    let name = keyword.value.to_ascii_lowercase();
    let range = Range {
        logical,
        start: args_start,
        end: args_end,
    };
    let (args, json) = match name.as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(range)?,
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(range)?,
        "arg" => (words_or_none(shell_words(range, escape)), false),
        "env" => (name_value(range, escape, "ENV")?, false),
        "label" => (name_value(range, escape, "LABEL")?, false),
        "expose" | "from" => (words_or_none(split_whitespace(range)), false),
        "healthcheck" => health(range)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => (string(range), false),
        "onbuild" => {
            if depth > 0 {
                return Err(Error::new(ErrorKind::NestedOnbuild, keyword.span));
            }
            if range.is_empty() {
                (Args::None, false)
            } else {
                let mut trigger =
                    node_from_range(logical, range.start, range.end, escape, depth + 1)?;
                trigger.span = range.span();
                trigger.original = range.text().to_owned();
                (Args::Trigger(Box::new(trigger)), false)
            }
        }
        // Unknown instructions parse with no arguments; the instruction
        // layer rejects them with a suggestion.
        _ => (Args::None, false),
    };
    Ok(Node {
        keyword,
        flags,
        args,
        json,
        heredocs: Vec::new(),
        span: logical.span(start, end),
        original: text[start..end].to_owned(),
        start_line: 0,
        end_line: 0,
        comments: Vec::new(),
    })
}

/// A range of the logical line.
#[derive(Clone, Copy)]
struct Range<'a> {
    logical: &'a Logical,
    start: usize,
    end: usize,
}

impl<'a> Range<'a> {
    fn text(&self) -> &'a str {
        &self.logical.text[self.start..self.end]
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn span(&self) -> Span {
        self.logical.span(self.start, self.end)
    }
    fn word(&self) -> Word {
        self.logical.word(self.start, self.end)
    }
    fn sub(&self, start: usize, end: usize) -> Range<'a> {
        Range {
            logical: self.logical,
            start: self.start + start,
            end: self.start + end,
        }
    }
}

/// `strings.TrimSpace` on a range.
fn trim_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let slice = &text[start..end];
    let left = slice.len() - slice.trim_start().len();
    let right = slice.trim_end().len();
    if right <= left {
        (end, end)
    } else {
        (start + left, start + right)
    }
}

/// BuildKit's `extractBuilderFlags`: leading `--name[=value]` words, with
/// quotes and backslashes processed. Returns the flags and where the
/// arguments start.
fn extract_flags(logical: &Logical, start: usize, end: usize) -> (Vec<Word>, usize) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(u8),
    }
    let bytes = logical.text.as_bytes();
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut word_start = start;
    let mut blank_ok = false;
    let mut position = start;
    let finish = |word: &[u8], from: usize, to: usize| {
        Word::new(String::from_utf8_lossy(word), logical.span(from, to))
    };
    while position <= end {
        let byte = if position < end { bytes[position] } else { 0 };
        if phase == Phase::Spaces {
            if position == end {
                break;
            }
            if (byte as char).is_ascii_whitespace() || byte == b'\x0b' {
                position += 1;
                continue;
            }
            if byte != b'-' || position + 1 == end || bytes[position + 1] != b'-' {
                return (flags, position);
            }
            phase = Phase::Word;
            word_start = position;
        }
        if position == end {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                flags.push(finish(&word, word_start, position));
            }
            break;
        }
        match phase {
            Phase::Word => {
                if (byte as char).is_ascii_whitespace() || byte == b'\x0b' {
                    phase = Phase::Spaces;
                    if word == b"--" {
                        return (flags, position);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(finish(&word, word_start, position));
                    }
                    word.clear();
                    blank_ok = false;
                    position += 1;
                    continue;
                }
                if byte == b'\'' || byte == b'"' {
                    phase = Phase::Quote(byte);
                    blank_ok = true;
                    position += 1;
                    continue;
                }
                if byte == b'\\' {
                    if position + 1 == end {
                        position += 1;
                        continue;
                    }
                    position += 1;
                }
                word.push(bytes[position]);
            }
            Phase::Quote(quote) => {
                if byte == quote {
                    phase = Phase::Word;
                    position += 1;
                    continue;
                }
                if byte == b'\\' {
                    if position + 1 == end {
                        phase = Phase::Word;
                        position += 1;
                        continue;
                    }
                    position += 1;
                }
                word.push(bytes[position]);
            }
            Phase::Spaces => unreachable!("handled above"),
        }
        position += 1;
    }
    (flags, end)
}

fn words_or_none(words: Vec<Word>) -> Args {
    if words.is_empty() {
        Args::None
    } else {
        Args::Words(words)
    }
}

fn string(range: Range<'_>) -> Args {
    if range.is_empty() {
        Args::None
    } else {
        Args::String(range.word())
    }
}

/// Whitespace-separated words (`[\t\v\f\r ]+`).
fn split_whitespace(range: Range<'_>) -> Vec<Word> {
    let bytes = range.text().as_bytes();
    let mut words = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let start = index;
        while index < bytes.len() && !is_separator(bytes[index]) {
            index += 1;
        }
        words.push(range.sub(start, index).word());
        while index < bytes.len() && is_separator(bytes[index]) {
            index += 1;
        }
    }
    words
}

/// BuildKit's `parseWords`: words separated by whitespace, where quotes
/// group and the escape character protects the next character. Quotes and
/// escapes stay in the words.
fn shell_words(range: Range<'_>, escape: char) -> Vec<Word> {
    #[derive(PartialEq, Clone, Copy)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let text = range.text();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut blank_ok = false;
    let mut chars = text.char_indices().peekable();
    let push = |words: &mut Vec<Word>, word: &str, start: usize, end: usize| {
        words.push(Word::new(word, range.sub(start, end).span()));
    };
    while let Some((position, ch)) = chars.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
            word_start = position;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        push(&mut words, &word, word_start, position);
                    }
                    word.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    let Some((_, next)) = chars.next() else {
                        // An escape at the very end is dropped.
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    let Some((_, next)) = chars.next() else {
                        phase = Phase::Word;
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => unreachable!("handled above"),
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        push(&mut words, &word, word_start, text.len());
    }
    words
}

/// ENV and LABEL: `KEY value` or `k=v k2=v2`.
fn name_value(range: Range<'_>, escape: char, instruction: &'static str) -> Result<Args, Error> {
    let words = shell_words(range, escape);
    let Some(first) = words.first() else {
        return Ok(Args::None);
    };
    if !first.value.contains('=') {
        // Legacy form: the key, then the whole rest as the value.
        let bytes = range.text().as_bytes();
        let key_end = bytes.iter().position(|byte| is_separator(*byte));
        let Some(key_end) = key_end else {
            return Err(
                Error::new(ErrorKind::NeedsTwoArguments { instruction }, range.span())
                    .with_hint(format!("write `{instruction} {}=<value>`", range.text())),
            );
        };
        let mut value_start = key_end;
        while value_start < bytes.len() && is_separator(bytes[value_start]) {
            value_start += 1;
        }
        return Ok(Args::KeyValues(vec![KeyValue {
            key: range.sub(0, key_end).word(),
            value: range.sub(value_start, bytes.len()).word(),
            equals: false,
        }]));
    }
    let mut pairs = Vec::new();
    for word in words {
        let Some((key, value)) = word.value.split_once('=') else {
            return Err(
                Error::new(ErrorKind::MissingEquals(word.value.clone()), word.span).with_hint(
                    "every word must be of the form name=value; quote values that contain spaces",
                ),
            );
        };
        let key_len = key.len() as u32;
        let key_span = Span {
            start: word.span.start,
            end: (word.span.start + key_len).min(word.span.end),
        };
        let value_span = Span {
            start: (key_span.end + 1).min(word.span.end),
            end: word.span.end,
        };
        pairs.push(KeyValue {
            key: Word::new(key, key_span),
            value: Word::new(value, value_span),
            equals: true,
        });
    }
    Ok(Args::KeyValues(pairs))
}

/// A JSON array of strings, if `range` is one.
fn json_array(range: Range<'_>) -> Result<Option<Vec<Word>>, Error> {
    let text = range.text().trim_start();
    if !text.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(text) else {
        return Ok(None);
    };
    let span = range.span();
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(value) => Ok(Word::new(value, span)),
            _ => Err(Error::new(ErrorKind::NotStringArray, span).with_hint(
                "write every element as a \"string\", or drop the brackets to use shell form",
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(range: Range<'_>) -> Result<(Args, bool), Error> {
    if range.is_empty() {
        return Ok((Args::None, false));
    }
    Ok(match json_array(range)? {
        Some(words) => (Args::Json(words), true),
        None => (Args::String(range.word()), false),
    })
}

fn maybe_json_to_list(range: Range<'_>) -> Result<(Args, bool), Error> {
    Ok(match json_array(range)? {
        Some(words) => (Args::Json(words), true),
        None => (words_or_none(split_whitespace(range)), false),
    })
}

/// HEALTHCHECK: the first word is the type, the rest is parsed like CMD.
///
/// BuildKit looks for the end of the type word byte by byte, so a UTF-8
/// continuation byte 0x85 or 0xA0 counts as a space there; we look at
/// characters, which only differs on such (invalid) type words.
fn health(range: Range<'_>) -> Result<(Args, bool), Error> {
    let text = range.text();
    let separator = text.find(char::is_whitespace).unwrap_or(text.len());
    if separator == 0 {
        return Ok((Args::None, false));
    }
    let command_start = text[separator..]
        .find(|ch: char| !ch.is_whitespace())
        .map(|at| separator + at)
        .unwrap_or(text.len());
    let (command, json) = maybe_json(range.sub(command_start, text.len()))?;
    Ok((
        Args::Health {
            kind: range.sub(0, separator).word(),
            command: Box::new(command),
        },
        json,
    ))
}
