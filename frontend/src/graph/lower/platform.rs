//! The platform a build targets and runs on.

use std::fmt;

/// An OCI platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`...
    pub architecture: String,
    /// `v7`...
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this program runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parse `os/arch[/variant]` (`local` is the host).
    pub fn parse(text: &str) -> Option<Platform> {
        if text == "local" {
            return Some(Platform::host());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        };
        if !parts.iter().all(valid) {
            return None;
        }
        match parts.as_slice() {
            [os, architecture] => Some(Platform {
                os: os.to_ascii_lowercase(),
                architecture: architecture.to_ascii_lowercase(),
                variant: None,
            }),
            [os, architecture, variant] => Some(Platform {
                os: os.to_ascii_lowercase(),
                architecture: architecture.to_ascii_lowercase(),
                variant: Some(variant.to_ascii_lowercase()),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let platform = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(platform.to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux//amd64").is_none());
    }
}
