//! `RUN --mount=type=...,target=...` (BuildKit `instructions/commands_runmount.go`).

use serde::Serialize;

use crate::error::MountError;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountType {
    /// A directory from the context, a stage or an image.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A secret file or variable.
    Secret,
    /// An SSH agent socket.
    Ssh,
    /// An empty tmpfs.
    Tmpfs,
}

/// How concurrent users of a cache mount share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Everyone uses the same directory at once.
    #[default]
    Shared,
    /// Each concurrent user gets its own copy.
    Private,
    /// One user at a time.
    Locked,
}

/// One RUN mount, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The kind.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Where it is mounted (absolute).
    pub target: String,
    /// `source`: the path in `from` (bind, cache) or the secret's id default.
    pub source: Option<String>,
    /// `from`: a stage name or index, or an image, as written.
    pub from: Option<String>,
    /// Index into the exec's `inputs` of the filesystem `from` names.
    pub input: Option<usize>,
    /// Read-only.
    pub readonly: bool,
    /// `id` (cache, secret, ssh).
    pub id: Option<String>,
    /// `sharing` (cache).
    pub sharing: Sharing,
    /// `mode`.
    pub mode: Option<u32>,
    /// `uid`.
    pub uid: Option<u32>,
    /// `gid`.
    pub gid: Option<u32>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `env` (secret): expose as this variable instead of a file.
    pub env: Option<String>,
    /// `size` in bytes (tmpfs).
    pub size: Option<u64>,
}

/// Every key a mount takes.
const KEYS: &[&str] = &[
    "type",
    "target",
    "dst",
    "destination",
    "source",
    "src",
    "from",
    "ro",
    "readonly",
    "rw",
    "readwrite",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "required",
    "env",
    "size",
];

impl MountError {
    /// What was likely meant (`typ` for `type`, `tmp` for `tmpfs`), as
    /// BuildKit suggests it.
    pub fn suggestion(&self) -> Option<&'static str> {
        match self {
            MountError::UnexpectedKey(key) => crate::instructions::suggest_within(key, KEYS, 2),
            MountError::UnsupportedType(kind) => crate::instructions::suggest_within(
                kind,
                &["bind", "cache", "secret", "ssh", "tmpfs"],
                2,
            ),
            _ => None,
        }
    }
}

/// Split a flag value on commas, honouring double quotes as CSV does (a
/// quoted field may hold commas, `""` in it is one quote), as docker's CLI
/// reads `--mount` and `--output`. `None` when a quote is left open.
pub fn csv_fields(value: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            ch => field.push(ch),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

fn boolean(key: &str, value: Option<&str>) -> Result<bool, MountError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(MountError::NotBoolean {
            key: key.to_owned(),
            value: other.to_owned(),
        }),
    }
}

fn number(key: &str, value: Option<&str>) -> Result<u32, MountError> {
    let value = value.ok_or_else(|| MountError::NoNumber(key.to_owned()))?;
    value.parse().map_err(|_| MountError::NotNumber {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// Parse a size such as `64m`, `1g` or `4096`.
fn size(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, scale) = match lower.char_indices().last() {
        Some((index, 'k')) => (&lower[..index], 1u64 << 10),
        Some((index, 'm')) => (&lower[..index], 1 << 20),
        Some((index, 'g')) => (&lower[..index], 1 << 30),
        Some((index, 't')) => (&lower[..index], 1 << 40),
        _ => (lower, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// The last element of `path`, as Go's `path.Base`: trailing slashes
/// ignored, `/` for a path of slashes only.
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Parse one `--mount` value (already expanded).
pub(crate) fn parse(value: &str) -> Result<Mount, MountError> {
    let fields = csv_fields(value).ok_or(MountError::UnterminatedQuote)?;
    let mut kind = MountType::Bind;
    let mut pairs = Vec::new();
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.trim().to_ascii_lowercase(), Some(value.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        if key == "type" {
            // BuildKit lower-cases the type, as every key.
            kind = match value.unwrap_or("").to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                "tmpfs" => MountType::Tmpfs,
                _ => return Err(MountError::UnsupportedType(value.unwrap_or("").to_owned())),
            };
        } else if !key.is_empty() {
            pairs.push((key, value));
        }
    }
    let mut mount = Mount {
        kind,
        target: String::new(),
        source: None,
        from: None,
        input: None,
        readonly: matches!(kind, MountType::Bind | MountType::Secret | MountType::Ssh),
        id: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        env: None,
        size: None,
    };
    for (key, value) in pairs {
        let needs = |value: Option<&str>| {
            value
                .map(str::to_owned)
                .ok_or_else(|| MountError::NeedsValue(key.clone()))
        };
        match key.as_str() {
            "target" | "dst" | "destination" => mount.target = needs(value)?,
            "source" | "src" => mount.source = Some(needs(value)?),
            "from" => mount.from = Some(needs(value)?),
            "ro" | "readonly" => mount.readonly = boolean(&key, value)?,
            "rw" | "readwrite" => mount.readonly = !boolean(&key, value)?,
            "id" => mount.id = Some(needs(value)?),
            "sharing" => {
                mount.sharing = match value {
                    Some("shared") => Sharing::Shared,
                    Some("private") => Sharing::Private,
                    Some("locked") => Sharing::Locked,
                    other => {
                        return Err(MountError::InvalidSharing(other.unwrap_or("").to_owned()));
                    }
                }
            }
            "mode" => {
                let text = needs(value)?;
                mount.mode = Some(
                    u32::from_str_radix(&text, 8)
                        .ok()
                        .filter(|mode| *mode <= 0o7777)
                        .ok_or_else(|| MountError::InvalidMode(text.clone()))?,
                );
            }
            "uid" => mount.uid = Some(number(&key, value)?),
            "gid" => mount.gid = Some(number(&key, value)?),
            "required" => mount.required = boolean(&key, value)?,
            "env" => mount.env = Some(needs(value)?),
            "size" => {
                let text = needs(value)?;
                mount.size =
                    Some(size(&text).ok_or_else(|| MountError::InvalidSize(text.clone()))?);
            }
            _ => return Err(MountError::UnexpectedKey(key)),
        }
        let applies = match key.as_str() {
            "sharing" => kind == MountType::Cache,
            "size" => kind == MountType::Tmpfs,
            "required" => matches!(kind, MountType::Secret | MountType::Ssh),
            "env" => kind == MountType::Secret,
            "from" => matches!(kind, MountType::Bind | MountType::Cache),
            "id" => matches!(kind, MountType::Cache | MountType::Secret | MountType::Ssh),
            "mode" | "uid" | "gid" => {
                matches!(kind, MountType::Cache | MountType::Secret | MountType::Ssh)
            }
            _ => true,
        };
        if !applies {
            return Err(MountError::NotApplicable { key, kind });
        }
    }
    match kind {
        MountType::Secret => {
            // BuildKit's dispatchSecret: `source` names the secret, and
            // wins over `id`; without either, the target's base name does.
            // The default target is the id's base name under /run/secrets.
            let id = match mount.source.take().or_else(|| mount.id.take()) {
                Some(id) => id,
                None if !mount.target.is_empty() => base_name(&mount.target).to_owned(),
                None => return Err(MountError::SecretNeedsId),
            };
            if mount.target.is_empty() && mount.env.is_none() {
                mount.target = format!("/run/secrets/{}", base_name(&id));
            }
            mount.id = Some(id);
        }
        MountType::Ssh => {
            mount.id.get_or_insert_with(|| "default".to_owned());
            if mount.target.is_empty() {
                mount.target = "/run/buildkit/ssh_agent.0".to_owned();
            }
        }
        // No target: the WORKDIR, which the lowering fills in (BuildKit's
        // dispatchRunMounts); `/` is refused there.
        _ => {}
    }
    if kind == MountType::Cache && mount.id.is_none() {
        // BuildKit's `path.Clean(target)`, before the WORKDIR is added.
        mount.id = Some(if mount.target.is_empty() {
            ".".to_owned()
        } else {
            mount.target.clone()
        });
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount() {
        let mount = parse("type=cache,target=/root/.cache,sharing=locked,mode=0700").unwrap();
        assert_eq!(mount.kind, MountType::Cache);
        assert_eq!(mount.id.as_deref(), Some("/root/.cache"));
        assert_eq!(mount.sharing, Sharing::Locked);
        assert_eq!(mount.mode, Some(0o700));
        assert!(!mount.readonly);
    }

    #[test]
    fn defaults() {
        let bind = parse("target=/src,rw").unwrap();
        assert_eq!((bind.kind, bind.readonly), (MountType::Bind, false));
        let secret = parse("type=secret,id=npmrc").unwrap();
        assert_eq!(secret.target, "/run/secrets/npmrc");
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse("type=cache").unwrap().target, "");
        assert_eq!(
            parse("type=volume,target=/x").unwrap_err().to_string(),
            "unsupported mount type `volume`: expected bind, cache, secret, ssh or tmpfs"
        );
        assert_eq!(
            parse("target=/x,foo=bar").unwrap_err().to_string(),
            "unexpected key `foo`"
        );
        assert_eq!(
            parse("type=cache,target=/x,sharing=all")
                .unwrap_err()
                .to_string(),
            "invalid sharing `all`: expected shared, private or locked"
        );
        assert_eq!(
            parse("type=bind,target=/x,size=1").unwrap_err().to_string(),
            "`size` does not apply to a bind mount"
        );
    }
}
