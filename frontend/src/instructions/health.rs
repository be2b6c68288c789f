//! HEALTHCHECK: its type, command and timing options.

use super::flags::{FlagValue, Flags};
use super::{Command, missing};
use crate::ast::{Args, Node};
use crate::error::{Error, ErrorKind};

/// What the health check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthcheckTest {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK CMD ...`.
    Command(Command),
}

/// A HEALTHCHECK instruction. Durations are in nanoseconds, as in the image
/// config; `None` means "inherit / default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test.
    pub test: HealthcheckTest,
    /// `--interval`.
    pub interval: Option<u64>,
    /// `--timeout`.
    pub timeout: Option<u64>,
    /// `--start-period`.
    pub start_period: Option<u64>,
    /// `--start-interval`.
    pub start_interval: Option<u64>,
    /// `--retries`.
    pub retries: Option<u64>,
}

pub(super) fn parse(node: &Node, flags: &Flags) -> Result<Healthcheck, Error> {
    let Args::Health { kind, command } = &node.args else {
        return Err(missing(
            node,
            "HEALTHCHECK",
            "at least one argument: CMD <command> or NONE",
        ));
    };
    let test = match kind.value.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !matches!(**command, Args::None) {
                return Err(Error::new(ErrorKind::HealthcheckNoneArguments, node.span));
            }
            HealthcheckTest::None
        }
        "CMD" => match Command::from_args(command) {
            Some(Command::Exec(words)) if words.is_empty() => {
                return Err(missing(node, "HEALTHCHECK CMD", "a command"));
            }
            Some(command) => HealthcheckTest::Command(command),
            None => return Err(missing(node, "HEALTHCHECK CMD", "a command")),
        },
        _ => {
            return Err(Error::new(
                ErrorKind::UnknownHealthcheckType(kind.value.clone()),
                kind.span,
            )
            .with_hint("the type is `CMD` (followed by a command) or `NONE`"));
        }
    };
    let duration = |name: &str| -> Result<Option<u64>, Error> {
        let Some(flag) = flags.string(name) else {
            return Ok(None);
        };
        let invalid = |reason: &str| {
            Error::new(
                ErrorKind::InvalidFlagValue {
                    flag: name.to_owned(),
                    value: flag.value.value.clone(),
                    reason: reason.to_owned(),
                },
                flag.value.span,
            )
        };
        let nanoseconds = parse_duration(&flag.value.value)
            .ok_or_else(|| invalid("expected a duration such as `30s`, `1m30s` or `500ms`"))?;
        if nanoseconds < 0 {
            return Err(invalid("cannot be less than 0"));
        }
        if nanoseconds != 0 && nanoseconds < 1_000_000 {
            return Err(invalid("cannot be less than 1ms"));
        }
        Ok(Some(nanoseconds as u64))
    };
    let retries = match flags.string("retries") {
        None => None,
        Some(FlagValue { value, .. }) => match value.value.parse::<i64>() {
            Ok(retries) if retries >= 0 => Some(retries as u64),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidFlagValue {
                        flag: "retries".to_owned(),
                        value: value.value.clone(),
                        reason: "expected a whole number, 0 or more".to_owned(),
                    },
                    value.span,
                ));
            }
        },
    };
    Ok(Healthcheck {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })
}

/// Parse a Go duration (`1h2m3.5s`, `300ms`, `-1s`, `0`) to nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|ch: char| ch.is_ascii_digit() || ch == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let total = total.round() as i64;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }
}
