//! Builder flags (`--from=build`, `--link`), checked against what each
//! instruction accepts (BuildKit `instructions/bflag.go`).

use crate::ast::Word;
use crate::error::{Error, ErrorKind};
use crate::span::Span;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    String,
    /// `--mount=...`, any number of times.
    List,
}

/// The flags one instruction accepts.
pub(crate) type FlagSpec = &'static [(&'static str, FlagKind)];

/// A flag value with the span of the whole `--flag=value` word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValue {
    /// The value, quotes already removed by the parser.
    pub value: Word,
    /// The whole flag as written.
    pub span: Span,
}

/// The parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(&'static str, FlagValue)>,
    bools: Vec<(&'static str, bool, Span)>,
}

impl Flags {
    /// Check `words` against `spec`.
    pub(crate) fn parse(instruction: &str, words: &[Word], spec: FlagSpec) -> Result<Flags, Error> {
        let mut flags = Flags::default();
        for word in words {
            let text = word.value.strip_prefix("--").unwrap_or(&word.value);
            let (name, value) = match text.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (text, None),
            };
            let name_span = Span {
                start: word.span.start,
                end: (word.span.start + 2 + name.len() as u32).min(word.span.end),
            };
            let Some((known, kind)) = spec.iter().find(|(known, _)| *known == name) else {
                let mut error = Error::new(
                    ErrorKind::UnknownFlag {
                        instruction: instruction.to_ascii_uppercase(),
                        flag: name.to_owned(),
                    },
                    name_span,
                );
                let names: Vec<&str> = spec.iter().map(|(known, _)| *known).collect();
                error = match super::suggest(name, &names) {
                    Some(near) => error.with_hint(format!("did you mean `--{near}`?")),
                    None if names.is_empty() => error.with_hint(format!(
                        "{} takes no flags",
                        instruction.to_ascii_uppercase()
                    )),
                    None => error.with_hint(format!(
                        "{} takes {}",
                        instruction.to_ascii_uppercase(),
                        names
                            .iter()
                            .map(|name| format!("`--{name}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                return Err(error);
            };
            let seen = flags.values.iter().any(|(seen, _)| seen == known)
                || flags.bools.iter().any(|(seen, _, _)| seen == known);
            if seen && *kind != FlagKind::List {
                return Err(Error::new(
                    ErrorKind::DuplicateFlag(name.to_owned()),
                    word.span,
                ));
            }
            let value_span = Span {
                start: (name_span.end + 1).min(word.span.end),
                end: word.span.end,
            };
            match kind {
                FlagKind::Bool => {
                    let on = match value {
                        None => true,
                        Some(value) if value.eq_ignore_ascii_case("true") => true,
                        Some(value) if value.eq_ignore_ascii_case("false") => false,
                        Some(value) => {
                            return Err(Error::new(
                                ErrorKind::InvalidFlagValue {
                                    flag: name.to_owned(),
                                    value: value.to_owned(),
                                    reason: "expected `true` or `false`".to_owned(),
                                },
                                value_span,
                            ));
                        }
                    };
                    flags.bools.push((known, on, word.span));
                }
                FlagKind::String | FlagKind::List => {
                    let Some(value) = value else {
                        return Err(Error::new(
                            ErrorKind::FlagMissingValue(name.to_owned()),
                            word.span,
                        )
                        .with_hint(format!("write `--{name}=<value>`")));
                    };
                    flags.values.push((
                        known,
                        FlagValue {
                            value: Word::new(value, value_span),
                            span: word.span,
                        },
                    ));
                }
            }
        }
        Ok(flags)
    }

    /// The value of a string flag.
    pub(crate) fn string(&self, name: &str) -> Option<FlagValue> {
        self.values
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.clone())
    }

    /// All values of a list flag, in order.
    pub(crate) fn list(&self, name: &str) -> Vec<FlagValue> {
        self.values
            .iter()
            .filter(|(known, _)| *known == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// A boolean flag (false when absent).
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.bools
            .iter()
            .find(|(known, _, _)| *known == name)
            .is_some_and(|(_, on, _)| *on)
    }
}
