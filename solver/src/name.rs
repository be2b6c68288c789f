//! File names are bytes on Linux, and strata keeps them so: context
//! walking, COPY, the layer writer and reader all carry `OsStr`s. Where a
//! name must become text (the cache report, JSON, a record's file map, the
//! stat cache, error messages) it is written in the escaped form below,
//! which loses nothing and leaves every ordinary UTF-8 name as it is.
//!
//! # The escaped form
//!
//! - Valid UTF-8 is kept as it is.
//! - Each byte of an invalid UTF-8 sequence becomes `\x` and two lowercase
//!   hex digits: `caf\xe9.txt` for the Latin-1 `café.txt`.
//! - A backslash is doubled only where it would otherwise read as the
//!   start of an escape: when what follows it is `x` or another backslash
//!   (or an escaped byte, which starts with one). `a\b` stays `a\b`;
//!   `a\x41` becomes `a\\x41`.
//!
//! [`unescape`] reverses it: `\\` is one backslash, `\x` with two hex
//! digits is that byte, any other backslash is itself. So a name's text
//! differs from `String::from_utf8_lossy` (which loses the bytes) only for
//! invalid bytes and the rare `\x` or `\\` in a name.
//!
//! Cache keys hash the raw bytes, never this text: for UTF-8 names they are
//! what they have always been.
//!
//! Matching a name against a pattern (`.dockerignore`, a COPY glob) uses
//! [`match_form`]: each invalid byte is one U+FFFD, as Go (and so docker
//! and BuildKit) sees it: `?` and `*` match it, a literal cannot.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The escaped text of the name (or path) `bytes`.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.contains('\\')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut chars = valid.chars().peekable();
        while let Some(ch) = chars.next() {
            out.push(ch);
            if ch == '\\' {
                // What the output holds next: the next character, or an
                // escaped byte (`\x..`) when the valid text ends here.
                let next = match chars.peek() {
                    Some(next) => Some(*next),
                    None if !chunk.invalid().is_empty() => Some('\\'),
                    None => None,
                };
                if matches!(next, Some('x' | '\\')) {
                    out.push('\\');
                }
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    Cow::Owned(out)
}

/// The escaped text of `name`.
pub fn escape_os(name: &OsStr) -> Cow<'_, str> {
    escape(name.as_bytes())
}

/// The escaped text of `path`.
pub fn escape_path(path: &Path) -> Cow<'_, str> {
    escape(path.as_os_str().as_bytes())
}

/// The bytes an escaped text stands for (the inverse of [`escape`]).
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            match bytes.get(index + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    index += 2;
                    continue;
                }
                Some(b'x') => {
                    let hex = bytes.get(index + 2..index + 4).and_then(|hex| {
                        std::str::from_utf8(hex)
                            .ok()
                            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    });
                    if let Some(byte) = hex {
                        out.push(byte);
                        index += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    out
}

/// `bytes` as text for pattern matching: each byte of an invalid UTF-8
/// sequence is one U+FFFD (Go's reading of such bytes, one rune each).
pub fn match_form(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    Cow::Owned(out)
}

/// A path as the shown text of an error message (escaped, see the module).
pub struct Shown<'a>(pub &'a Path);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&escape_path(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_are_kept_and_invalid_bytes_escaped() {
        for (bytes, text) in [
            (&b"plain.txt"[..], "plain.txt"),
            ("café/ü".as_bytes(), "café/ü"),
            (b"caf\xe9.txt", "caf\\xe9.txt"),
            (b"\xff\xfe", "\\xff\\xfe"),
            // A truncated sequence: each byte on its own.
            (b"a\xe2\x82", "a\\xe2\\x82"),
            (b"a\\b", "a\\b"),
            (b"win\\dows\\", "win\\dows\\"),
            (b"a\\x41", "a\\\\x41"),
            (b"a\\\\", "a\\\\\\"),
            (b"a\\\xff", "a\\\\\\xff"),
        ] {
            assert_eq!(escape(bytes), text, "{bytes:?}");
            assert_eq!(unescape(text), bytes, "{text}");
        }
    }

    #[test]
    fn escaping_loses_nothing() {
        // Every name of up to three bytes from an alphabet of the bytes
        // that matter comes back as it was.
        let alphabet = [b'\\', b'x', b'4', b'1', b'a', 0xe9, 0xc3, 0xa9, 0xff];
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..3 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .flat_map(|name| {
                    alphabet.iter().map(move |byte| {
                        let mut name = name.clone();
                        name.push(*byte);
                        name
                    })
                })
                .collect();
            names.extend(longer);
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &names {
            let text = escape(name);
            assert_eq!(&unescape(&text), name, "{text}");
            seen.insert(text.into_owned());
        }
        assert_eq!(
            seen.len(),
            names
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }

    #[test]
    fn invalid_bytes_match_as_one_character_each() {
        assert_eq!(match_form(b"caf\xe9.txt"), "caf\u{fffd}.txt");
        assert_eq!(match_form(b"\xe2\x82"), "\u{fffd}\u{fffd}");
        assert_eq!(match_form("café".as_bytes()), "café");
    }
}
