//! Source positions.
//!
//! A [`Span`] is a pair of byte offsets into the *original* Dockerfile text,
//! after the byte-order mark (if any) has been removed. Line and column are
//! only computed when something is rendered, through a [`LineIndex`].
//!
//! BuildKit tracks whole lines only; we keep byte spans so that a diagnostic
//! can put its caret under the exact word, even when that word sits on a
//! continuation line of a multi-line instruction.

use serde::Serialize;

/// A half-open byte range `[start, end)` into the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from two byte offsets. Offsets past `u32::MAX` saturate: the
    /// parser refuses inputs that large before spans are made.
    pub fn new(start: usize, end: usize) -> Self {
        let clamp = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end.max(start)),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The text the span covers (empty when out of range).
    pub fn slice(self, text: &str) -> &str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

/// Maps byte offsets to 1-based line and column numbers.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<u32>,
}

impl LineIndex {
    /// Index the lines of `text` (lines end at `\n`).
    pub fn new(text: &str) -> Self {
        // Sized first: one more pass over the text, where a list that
        // doubles as it grows would hold up to twice its lines.
        let mut line_starts =
            Vec::with_capacity(text.bytes().filter(|byte| *byte == b'\n').count() + 1);
        line_starts.push(0u32);
        for (offset, byte) in text.bytes().enumerate() {
            if byte == b'\n' {
                line_starts.push(u32::try_from(offset + 1).unwrap_or(u32::MAX));
            }
        }
        LineIndex { line_starts }
    }

    /// The 1-based line holding `offset`.
    pub fn line(&self, offset: u32) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    /// Byte offset of the start of 1-based `line`.
    pub fn line_start(&self, line: usize) -> u32 {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// The text of 1-based `line`, without its line ending.
    pub fn line_text<'a>(&self, text: &'a str, line: usize) -> &'a str {
        let start = self.line_start(line) as usize;
        if start > text.len() {
            return "";
        }
        let end = self
            .line_starts
            .get(line)
            .map(|next| *next as usize)
            .unwrap_or(text.len());
        text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// 1-based line and 1-based column (counted in characters) of `offset`.
    pub fn line_col(&self, text: &str, offset: u32) -> (usize, usize) {
        let line = self.line(offset);
        let start = self.line_start(line) as usize;
        let offset = (offset as usize).min(text.len());
        let column = text
            .get(start..offset)
            .map(|prefix| prefix.chars().count())
            .unwrap_or(0);
        (line, column + 1)
    }

    /// Number of lines.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "FROM a\nRUN b\n  c\n";
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(text, 0), (1, 1));
        assert_eq!(index.line_col(text, 7), (2, 1));
        assert_eq!(index.line_col(text, 11), (2, 5));
        assert_eq!(index.line_col(text, 15), (3, 3));
        assert_eq!(index.line_text(text, 3), "  c");
    }

    #[test]
    fn columns_count_characters() {
        let text = "LABEL é=\"x\"";
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(text, 9), (1, 9));
    }
}
