//! Image references as docker writes them: `[registry/]name[:tag][@digest]`.

use std::fmt;

use super::ImageError;
use crate::digest::Digest;

/// A parsed reference. In the local store, Docker Hub names are kept short
/// (`docker.io/library/busybox` is `busybox`), as `docker images` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `[registry/]path`.
    pub name: String,
    /// The tag; `latest` when neither tag nor digest is given.
    pub tag: Option<String>,
    /// `@sha256:...`.
    pub digest: Option<Digest>,
}

/// Docker Hub spellings reduced to the short form.
pub fn normalize_name(name: &str) -> String {
    for prefix in [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    name.to_owned()
}

fn valid_component(component: &str) -> bool {
    // [a-z0-9]+ separated by `.`, `_`, `__` or `-`s.
    !component.is_empty()
        && component.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && component.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && component.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
        })
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-'))
        && port
            .is_none_or(|port| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()))
}

impl Reference {
    /// The fully qualified spelling, as registries and buildx write it:
    /// `docker.io/library/busybox:latest` for `busybox`.
    pub fn qualified(&self) -> String {
        let first = self.name.split('/').next().unwrap_or_default();
        let has_registry = self.name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let mut out = if has_registry {
            self.name.clone()
        } else if self.name.contains('/') {
            format!("docker.io/{}", self.name)
        } else {
            format!("docker.io/library/{}", self.name)
        };
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }

    /// Where the image lives: the registry host (`docker.io` for Docker
    /// Hub) and the repository path in it (`library/busybox`).
    pub fn registry(&self) -> (String, String) {
        let qualified = self.qualified();
        let name = qualified.split('@').next().unwrap_or_default().to_owned();
        // The tag is after the last `:` that follows the last `/`.
        let last_slash = name.rfind('/').unwrap_or(0);
        let name = match name[last_slash..].rfind(':') {
            Some(at) => name[..last_slash + at].to_owned(),
            None => name,
        };
        let (host, path) = name.split_once('/').unwrap_or(("docker.io", &name));
        (host.to_owned(), path.to_owned())
    }

    /// Parse `text`.
    pub fn parse(text: &str) -> Result<Reference, ImageError> {
        let invalid = |reason| ImageError::InvalidReference {
            reference: text.to_owned(),
            reason,
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(
                    digest
                        .parse::<Digest>()
                        .map_err(|_| invalid("the digest must be sha256:<64 hex digits>"))?,
                ),
            ),
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map(|at| at + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(at) => (&rest[..last_slash + at], Some(&rest[last_slash + at + 1..])),
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name.len() > 255 {
            return Err(invalid("the name is longer than 255 characters"));
        }
        let mut components: Vec<&str> = name.split('/').collect();
        let first = components[0];
        let has_host = components.len() > 1 && (first.contains(['.', ':']) || first == "localhost");
        if has_host {
            if !valid_host(first) {
                return Err(invalid("the registry host is not valid"));
            }
            components.remove(0);
        }
        if !components
            .iter()
            .all(|component| valid_component(component))
        {
            return Err(invalid(
                "names are lowercase letters, digits and separators (`.`, `_`, `-`, `/`)",
            ));
        }
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'));
            if !valid {
                return Err(invalid(
                    "a tag is up to 128 letters, digits, `_`, `.` and `-`",
                ));
            }
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            name: normalize_name(name),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.name)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let parse = |text: &str| Reference::parse(text).map(|reference| reference.to_string());
        assert_eq!(parse("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            parse("docker.io/library/busybox:1.36").unwrap(),
            "busybox:1.36"
        );
        assert_eq!(
            parse("localhost:5000/team/app:v1").unwrap(),
            "localhost:5000/team/app:v1"
        );
        assert_eq!(
            parse("registry.example.com/app").unwrap(),
            "registry.example.com/app:latest"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse(&format!("app@{digest}")).unwrap(),
            format!("app@{digest}")
        );
        let registry = |text: &str| Reference::parse(text).unwrap().registry();
        assert_eq!(
            registry("busybox"),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(
            registry("team/app:1"),
            ("docker.io".into(), "team/app".into())
        );
        assert_eq!(
            registry("localhost:5000/a/b:v1"),
            ("localhost:5000".into(), "a/b".into())
        );
        assert_eq!(
            registry(&format!("127.0.0.1:5000/app@{digest}")),
            ("127.0.0.1:5000".into(), "app".into())
        );
        assert!(parse("App").is_err());
        assert!(parse("app:").is_err());
        assert!(parse("app:-x").is_err());
        assert!(parse("app@sha256:abc").is_err());
        assert!(parse("").is_err());
    }
}
