//! Finding heredocs (`<<EOF`, `<<-EOF`, `3<<"EOF"`) in an instruction line.
//!
//! As BuildKit does, the line is split into shell words with quotes and
//! escapes kept; each word of the form `[fd]<<[-]WORD` starts a heredoc. The
//! delimiter is unquoted to get its name, and the body is expanded only when
//! no part of the delimiter was quoted.

use super::Logical;
use crate::ast::Heredoc;
use crate::error::{Error, ErrorKind};
use crate::expand::Lexer;
use crate::span::Span;
use std::collections::BTreeMap;

/// The heredocs started on `line`, bodies still empty.
pub(super) fn from_line(line: &Logical) -> Result<Vec<Heredoc>, Error> {
    // Heredoc delimiters are only possible where `<<` is written at all: the
    // cheap check keeps lexing off the hot path of ordinary RUN lines.
    if !line.text.contains("<<") {
        return Ok(Vec::new());
    }
    let lexer = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let empty = BTreeMap::new();
    // A line that does not lex has no heredocs (BuildKit ignores the error).
    let Ok(words) = lexer.expand_words(&line.text, &empty) else {
        return Ok(Vec::new());
    };
    let mut heredocs = Vec::new();
    let mut cursor = 0;
    for word in words {
        if !word.contains("<<") {
            continue;
        }
        // Point at where the word is written; searched only for heredoc
        // words, so a long line of other words costs nothing here.
        let found = line.text[cursor..]
            .find(word.as_str())
            .map(|at| at + cursor);
        let span = match found {
            Some(start) => {
                cursor = start + word.len();
                line.span(start, start + word.len())
            }
            None => line.span(0, line.text.len()),
        };
        if let Some(heredoc) = parse_heredoc(&word, span)? {
            heredocs.push(heredoc);
        }
    }
    Ok(heredocs)
}

/// Match `^(\d*)<<(-?)([^<]*)$` and read the delimiter.
fn parse_heredoc(word: &str, span: Span) -> Result<Option<Heredoc>, Error> {
    let digits = word.len()
        - word
            .trim_start_matches(|ch: char| ch.is_ascii_digit())
            .len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let file_descriptor = word[..digits].parse::<u32>().unwrap_or(0);
    let empty = BTreeMap::new();
    let lex = |raw_quotes: bool| {
        let lexer = Lexer {
            raw_quotes,
            skip_unset: true,
            ..Lexer::new('\\')
        };
        lexer
            .expand_words(rest, &empty)
            .map_err(|error| Error::new(ErrorKind::InvalidHeredoc(error.to_string()), span))
    };
    let words = lex(false)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lex(true)?;
    let quotes = |text: &str| text.chars().filter(|ch| *ch == '\'' || *ch == '"').count();
    let expand = raw.first().is_some_and(|raw| quotes(raw) == quotes(name));
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor,
        expand,
        chomp,
        content: String::new(),
        span,
        content_span: span,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heredoc(word: &str) -> Option<Heredoc> {
        parse_heredoc(word, Span::default()).unwrap()
    }

    #[test]
    fn delimiters() {
        let plain = heredoc("<<EOF").unwrap();
        assert_eq!(
            (plain.name.as_str(), plain.expand, plain.chomp),
            ("EOF", true, false)
        );
        let quoted = heredoc("<<'EOF'").unwrap();
        assert_eq!((quoted.name.as_str(), quoted.expand), ("EOF", false));
        let partly = heredoc("<<E\"O\"F").unwrap();
        assert_eq!((partly.name.as_str(), partly.expand), ("EOF", false));
        let chomped = heredoc("3<<-END").unwrap();
        assert_eq!((chomped.file_descriptor, chomped.chomp), (3, true));
        assert!(heredoc("<<").is_none());
        assert!(heredoc("a<<EOF").is_none());
        assert!(heredoc("<<<EOF").is_none());
    }
}
