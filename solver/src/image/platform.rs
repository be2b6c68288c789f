//! Which entry of an index is the image for a platform: one rule for a
//! registry's index and an OCI layout's.

use crate::graph::Platform;

/// One index entry's platform, as `(os, architecture, variant)`.
pub(crate) type Offered<'a> = (&'a str, &'a str, Option<&'a str>);

/// The position of the entry of `offered` (`None` for an entry with no
/// platform) that is the image for `wanted`: the same OS and architecture,
/// and the variant (arm64's is `v8` when none is named); when `wanted`
/// names no variant, else the first of any variant.
pub(crate) fn select<'a>(
    offered: impl IntoIterator<Item = Option<Offered<'a>>>,
    wanted: &Platform,
) -> Option<usize> {
    let variant_of = |architecture: &str, variant: Option<&'a str>| {
        variant.or(match architecture {
            "arm64" => Some("v8"),
            _ => None,
        })
    };
    let wanted_variant = wanted
        .variant
        .as_deref()
        .or(match wanted.architecture.as_str() {
            "arm64" => Some("v8"),
            _ => None,
        });
    let mut fallback = None;
    for (position, entry) in offered.into_iter().enumerate() {
        let Some((os, architecture, variant)) = entry else {
            continue;
        };
        if os != wanted.os || architecture != wanted.architecture {
            continue;
        }
        if variant_of(architecture, variant) == wanted_variant {
            return Some(position);
        }
        if wanted.variant.is_none() && fallback.is_none() {
            fallback = Some(position);
        }
    }
    fallback
}

/// `os/arch[/variant]`.
pub(crate) fn text(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant {
        Some(variant) if !variant.is_empty() => format!("{os}/{architecture}/{variant}"),
        _ => format!("{os}/{architecture}"),
    }
}

/// What an index offers, for an error: its platforms but attestations
/// (`unknown/unknown`), or `no platforms`.
pub(crate) fn available<'a>(offered: impl IntoIterator<Item = Option<Offered<'a>>>) -> String {
    let list: Vec<String> = offered
        .into_iter()
        .flatten()
        .filter(|(os, _, _)| *os != "unknown")
        .map(|(os, architecture, variant)| text(os, architecture, variant))
        .collect();
    if list.is_empty() {
        "no platforms".to_owned()
    } else {
        list.join(", ")
    }
}
