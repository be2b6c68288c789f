//! Shell-word lexing and `$VAR` expansion, with BuildKit's semantics.
//!
//! BuildKit (`frontend/dockerfile/shell/lex.go`) does not run a shell to
//! expand Dockerfile words; it has a small lexer that handles quotes, the
//! escape character and these forms:
//!
//! | form | value |
//! | --- | --- |
//! | `$VAR`, `${VAR}` | the value, or empty when unset |
//! | `${VAR:-word}` / `${VAR-word}` | `word` when unset or empty / unset |
//! | `${VAR:+word}` / `${VAR+word}` | `word` when set and non-empty / set |
//! | `${VAR:?msg}` / `${VAR?msg}` | error when unset or empty / unset |
//! | `${VAR#pat}`, `${VAR##pat}` | shortest / longest prefix matching `pat` removed |
//! | `${VAR%pat}`, `${VAR%%pat}` | shortest / longest suffix matching `pat` removed |
//! | `${VAR/pat/repl}`, `${VAR//pat/repl}` | first / every match of `pat` replaced |
//!
//! Patterns know `*`, `?` and escapes of `*`, `?` and `\`. Positional and
//! special parameters (`$1`, `$@`, `$?`...) are never set.
//!
//! Where BuildKit compiles patterns to a Go regular expression, we match them
//! with a small NFA over the pattern's tokens: shortest and longest prefix are
//! then exactly what POSIX shells specify, in linear time per candidate,
//! without a regex dependency.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Nesting of `${...}` deeper than this is refused instead of recursing
/// without bound (a fuzzer-found stack overflow is no way to fail).
const MAX_NESTING: usize = 64;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `'abc`.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// `"abc`.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${a:-b` ...
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${a/b`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:}`, `${{a}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${a:=b}`, `${.}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${a?message}` with `a` unset.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// Its message, or the default one.
        message: String,
    },
    /// `${a#\x}`.
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// The character after the backslash.
        escaped: char,
    },
    /// Too many nested `${...}`.
    #[error("substitutions are nested more than {MAX_NESTING} levels deep")]
    TooDeep,
}

/// Where variables are looked up.
pub trait Lookup {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Lookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<T: Lookup + ?Sized> Lookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text, spaces between words kept.
    pub result: String,
    /// The text split into words after expansion, as `ProcessWords` does.
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced and not set.
    pub unmatched: BTreeSet<String>,
}

/// A configured lexer. The defaults are those of BuildKit's `NewLex`.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters.
    pub skip_quotes: bool,
}

impl Lexer {
    /// A lexer with `escape` as the escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// Expand `word` against `env`.
    pub fn expand(&self, word: &str, env: &dyn Lookup) -> Result<Expansion, ExpandError> {
        // Most words hold nothing to expand: without `$`, quotes or the escape
        // character, the lexer would copy the text and split it on spaces.
        let special = |ch: char| ch == '$' || ch == '\'' || ch == '"' || ch == self.escape;
        if !word.contains(special) {
            return Ok(Expansion {
                result: word.to_owned(),
                words: word
                    .split(char::is_whitespace)
                    .filter(|part| !part.is_empty())
                    .map(str::to_owned)
                    .collect(),
                matched: BTreeSet::new(),
                unmatched: BTreeSet::new(),
            });
        }
        let mut state = State {
            lexer: *self,
            text: word,
            position: 0,
            env,
            raw_escapes: self.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (result, words) = state.until(None, self.raw_escapes)?;
        Ok(Expansion {
            result,
            words,
            matched: state.matched,
            unmatched: state.unmatched,
        })
    }

    /// The expanded text of `word`.
    pub fn expand_word(&self, word: &str, env: &dyn Lookup) -> Result<String, ExpandError> {
        self.expand(word, env).map(|expansion| expansion.result)
    }

    /// The words of `word` after expansion.
    pub fn expand_words(&self, word: &str, env: &dyn Lookup) -> Result<Vec<String>, ExpandError> {
        self.expand(word, env).map(|expansion| expansion.words)
    }
}

/// Splits expanded text into words the way BuildKit's `wordsStruct` does:
/// spaces from variables split, quoted text never does.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        for ch in text.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct State<'a> {
    lexer: Lexer,
    text: &'a str,
    /// Byte offset of the next character.
    position: usize,
    env: &'a dyn Lookup,
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.position..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.position += ch.len_utf8();
        Some(ch)
    }

    fn get(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(value) => {
                self.matched.insert(name.to_owned());
                Some(value.to_owned())
            }
            None => {
                self.unmatched.insert(name.to_owned());
                None
            }
        }
    }

    /// Process until `stop` (consumed) or the end of input.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExpandError::TooDeep);
        }
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let outcome = self.until_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        outcome
    }

    fn until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            if ch == '$' {
                let value = self.dollar()?;
                result.push_str(&value);
                words.add_string(&value);
            } else if ch == '\'' && !self.lexer.skip_quotes {
                let value = self.single_quoted()?;
                result.push_str(&value);
                words.add_raw_string(&value);
            } else if ch == '"' && !self.lexer.skip_quotes {
                let value = self.double_quoted()?;
                result.push_str(&value);
                words.add_raw_string(&value);
            } else {
                self.next();
                if ch == self.lexer.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // The escape character escapes anything, except at the end.
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                } else {
                    words.add_char(ch);
                    result.push(ch);
                }
            }
        }
        match stop {
            Some('\'') => Err(ExpandError::UnterminatedSingleQuote),
            Some('"') => Err(ExpandError::UnterminatedDoubleQuote),
            Some('/') => Err(ExpandError::MissingSlash),
            Some(_) => Err(ExpandError::MissingBrace),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        // Everything up to the next single quote is literal: there is no way
        // to escape a single quote inside single quotes (sh(1)).
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        // Literal except `$`, and the escape character before `"`, `$` or
        // itself (sh(1): "The backslash inside double quotes is historically
        // weird").
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                ch = next;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(digit) = self.peek().filter(|ch| ch.is_numeric()) {
                    self.next();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_parameter(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.get(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut modifier) = self.next() else {
            return Err(ExpandError::MissingBrace);
        };
        let mut written = modifier.to_string();
        match modifier {
            '}' => Ok(match self.get(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = modifier == ':';
                if null_is_unset {
                    let Some(next) = self.next() else {
                        return Err(ExpandError::MissingBrace);
                    };
                    modifier = next;
                    written.push(next);
                }
                let raw = modifier == '#' || modifier == '%';
                let (mut word, _) = self.until(Some('}'), raw)?;
                let value = self.get(&name);
                if self.lexer.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{written}{word}}}"));
                }
                let empty = value.as_deref().is_none_or(str::is_empty);
                match modifier {
                    '-' => Ok(match value {
                        Some(value) if !(null_is_unset && value.is_empty()) => value,
                        _ => word,
                    }),
                    '+' => Ok(if value.is_none() || (null_is_unset && empty) {
                        String::new()
                    } else {
                        word
                    }),
                    '?' => match value {
                        None => Err(required(name, word, "is not allowed to be unset")),
                        Some(value) if null_is_unset && value.is_empty() => {
                            Err(required(name, word, "is not allowed to be empty"))
                        }
                        Some(value) => Ok(value),
                    },
                    '#' | '%' => {
                        let greedy = word.starts_with(modifier);
                        if greedy {
                            word.remove(0);
                        }
                        let pattern = Pattern::parse(&word)?;
                        let value = value.unwrap_or_default();
                        Ok(if modifier == '#' {
                            pattern.trim_prefix(&value, greedy)
                        } else {
                            pattern.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(ExpandError::UnsupportedModifier(written)),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern_text, _) = self.until(Some('/'), true)?;
                let (replacement, _) = self.until(Some('}'), true)?;
                let value = self.get(&name);
                let Some(value) = value else {
                    if self.lexer.skip_unset {
                        return Ok(format!("${{{name}/{pattern_text}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let pattern = Pattern::parse(&pattern_text)?;
                Ok(pattern.replace(&value, &replacement, all))
            }
            _ => Err(ExpandError::UnsupportedModifier(written)),
        }
    }
}

fn required(name: String, word: String, default: &str) -> ExpandError {
    ExpandError::Required {
        name,
        message: if word.is_empty() {
            default.to_owned()
        } else {
            word
        },
    }
}

fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// A shell pattern: `*`, `?` and literal characters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Literal(char),
}

#[derive(Debug)]
struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, ExpandError> {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            tokens.push(match ch {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => match chars.peek().copied() {
                    // `}` and `/` are escaped for the `${}` syntax; the escape
                    // is not part of the pattern.
                    Some('}' | '/') => continue,
                    Some(escaped @ ('*' | '?' | '\\')) => {
                        chars.next();
                        Token::Literal(escaped)
                    }
                    Some(escaped) => {
                        return Err(ExpandError::InvalidPattern {
                            pattern: text.to_owned(),
                            escaped,
                        });
                    }
                    None => Token::Literal('\\'),
                },
                ch => Token::Literal(ch),
            });
        }
        Ok(Pattern { tokens })
    }

    fn reversed(&self) -> Pattern {
        Pattern {
            tokens: self.tokens.iter().rev().cloned().collect(),
        }
    }

    /// The lengths (in chars) of the prefixes of `text` the whole pattern
    /// matches, found in one pass of an NFA over the tokens.
    fn prefix_matches(&self, text: impl Iterator<Item = char>) -> Vec<usize> {
        let size = self.tokens.len();
        let mut active = vec![false; size + 1];
        active[0] = true;
        self.close(&mut active);
        let mut lengths = Vec::new();
        if active[size] {
            lengths.push(0);
        }
        let mut next = vec![false; size + 1];
        for (index, ch) in text.enumerate() {
            next.iter_mut().for_each(|state| *state = false);
            let mut any = false;
            for (state, token) in self.tokens.iter().enumerate() {
                if !active[state] {
                    continue;
                }
                match token {
                    Token::Star => next[state] = true,
                    Token::Any => next[state + 1] = true,
                    Token::Literal(literal) if *literal == ch => next[state + 1] = true,
                    Token::Literal(_) => continue,
                }
                any = true;
            }
            if !any {
                break;
            }
            std::mem::swap(&mut active, &mut next);
            self.close(&mut active);
            if active[size] {
                lengths.push(index + 1);
            }
        }
        lengths
    }

    fn close(&self, active: &mut [bool]) {
        for (state, token) in self.tokens.iter().enumerate() {
            if active[state] && *token == Token::Star {
                active[state + 1] = true;
            }
        }
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let lengths = self.prefix_matches(value.chars());
        let chosen = if greedy {
            lengths.last()
        } else {
            lengths.first()
        };
        match chosen {
            Some(length) => value.chars().skip(*length).collect(),
            None => value.to_owned(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let lengths = self.reversed().prefix_matches(value.chars().rev());
        let chosen = if greedy {
            lengths.last()
        } else {
            lengths.first()
        };
        match chosen {
            Some(length) => {
                let keep = value.chars().count() - length;
                value.chars().take(keep).collect()
            }
            None => value.to_owned(),
        }
    }

    /// Replace the leftmost-longest match (or every match) of the pattern.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut start = 0;
        let mut replaced = false;
        while start <= chars.len() {
            if replaced && !all {
                break;
            }
            let longest = self
                .prefix_matches(chars[start..].iter().copied())
                .last()
                .copied();
            match longest {
                Some(length) => {
                    out.push_str(replacement);
                    replaced = true;
                    if length == 0 {
                        if let Some(ch) = chars.get(start) {
                            out.push(*ch);
                        }
                        start += 1;
                    } else {
                        start += length;
                    }
                }
                None => {
                    if let Some(ch) = chars.get(start) {
                        out.push(*ch);
                    }
                    start += 1;
                }
            }
        }
        out.extend(chars.iter().skip(start));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("A", "abc.tar.gz"), ("P", "/usr/local/bin"), ("E", "")]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    fn expand(word: &str) -> Result<String, ExpandError> {
        Lexer::new('\\').expand_word(word, &env())
    }

    #[test]
    fn prefix_and_suffix_removal() {
        assert_eq!(expand("${A#*.}").unwrap(), "tar.gz");
        assert_eq!(expand("${A##*.}").unwrap(), "gz");
        assert_eq!(expand("${A%.*}").unwrap(), "abc.tar");
        assert_eq!(expand("${A%%.*}").unwrap(), "abc");
        assert_eq!(expand("${P#/usr}").unwrap(), "/local/bin");
        assert_eq!(expand("${A%x}").unwrap(), "abc.tar.gz");
        assert_eq!(expand("${A#a?c}").unwrap(), ".tar.gz");
    }

    #[test]
    fn replacement() {
        assert_eq!(expand("${P/\\//:}").unwrap(), ":usr/local/bin");
        assert_eq!(expand("${P//\\//:}").unwrap(), ":usr:local:bin");
        assert_eq!(expand("${A/t*r/X}").unwrap(), "abc.X.gz");
        assert_eq!(expand("${MISSING/a/b}").unwrap(), "");
    }

    #[test]
    fn errors() {
        assert_eq!(
            expand("${A#\\x}"),
            Err(ExpandError::InvalidPattern {
                pattern: "\\x".into(),
                escaped: 'x'
            })
        );
        assert_eq!(
            expand("${E:?must be set}").unwrap_err().to_string(),
            "E: must be set"
        );
        assert_eq!(expand("${A/a"), Err(ExpandError::MissingSlash));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let word = "${a:-".repeat(10_000) + &"}".repeat(10_000);
        assert_eq!(expand(&word), Err(ExpandError::TooDeep));
    }

    #[test]
    fn skip_unset_keeps_references() {
        let lexer = Lexer {
            skip_unset: true,
            ..Lexer::new('\\')
        };
        assert_eq!(
            lexer.expand_word("$X ${Y} ${Z:-d} $A", &env()).unwrap(),
            "$X ${Y} ${Z:-d} abc.tar.gz"
        );
    }
}
