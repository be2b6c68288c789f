//! Cache keys: what each op kind puts into its key, next to the code that
//! does it (BuildKit's `CacheMap`: an op computes its cache key from its
//! typed fields and the keys of its inputs; nothing is parsed from text).
//!
//! A key is sha256 over the version tag `strata-cache-v1` and, each after
//! a NUL byte, the parts its op gives, in this order:
//!
//! | op | parts of its key | module |
//! | --- | --- | --- |
//! | `FROM image` | `image`, the image's manifest digest (what was pinned, not the name) | `source` |
//! | `FROM scratch` | `scratch` | `source` |
//! | the build context | `context`: the COPY and ADD that read it hash what they read | `source` |
//! | `RUN` | the step's definition digest¹, the effective network², the parent's key, then per bind mount in order: the digest of the context tree it shows, what it shows of a stage or image by content ([`file::selected`]) when it selects a directory or file of it, else the key of the step it mounts | `exec` |
//! | `WORKDIR` | the definition digest¹, the parent's key | `file` |
//! | `COPY`, `ADD` | the definition digest¹, the content digest³ of what it copies, then the key of each input (parent first, then the `--from` source: a stage or image by what is read of it, [`file::selected`]) | `file` |
//! | config instructions | not cached: they cost nothing | |
//!
//! 1. [`Vertex::digest`](strata_frontend::graph::Vertex::digest): the op's
//!    typed fields (argv, env with the build args and ENV that reach it,
//!    user, workdir, `--network` as written, mounts; for COPY sources,
//!    destination, `--chown`, `--chmod`, `--exclude`, ...) and the digests
//!    of its inputs. Proxy variables are not in it, as in BuildKit.
//! 2. The network the step gets once `--network` of the build is applied,
//!    as a fixed word per mode (`key::exec::network_part`): renaming a type
//!    never changes a key.
//! 3. For build-context sources every entry copied: destination path,
//!    type, mode, link target, xattrs and content digest; never owners or
//!    mtimes. See `files::content_digest`.
//!
//! "The key of" a step, as an input of another, is its key and, when it
//! made a layer, that layer's diff_id ([`after`]): a step that ran again
//! and made other content (`--no-cache`, a step whose output is not
//! reproducible) changes the keys of everything after it, and one that
//! made the same content leaves them as they were.
//!
//! Each op also gives its key's inputs in a comparable form
//! ([`StepInputs`]), which the record keeps so that a later miss can say
//! what changed (see [`super::cause`]).
//!
//! On disk and in exported caches a key is its 64 hex digits (no
//! `sha256:`), the name of its record `cache/<hex>.json`; `hex_form`
//! keeps that form.

pub(crate) mod exec;
pub(crate) mod file;
pub(crate) mod source;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::digest::Digest;

/// Bumped when what goes into keys changes.
const VERSION: &str = "strata-cache-v1";

/// A cache key.
pub type Key = Digest;

/// The key a step that reads the result of the step keyed `key` puts in
/// its own, when that step made the layer `diff_id`: so what follows a step
/// is keyed by what the step made, not only by what it was asked to do.
pub(crate) fn after(key: &Key, diff_id: &Digest) -> Key {
    self::key(&["after", key.hex(), &diff_id.to_string()])
}

/// Hash `parts` into a key.
pub(crate) fn key(parts: &[&str]) -> Key {
    let mut hasher = sha2::Sha256::new();
    hasher.update(VERSION.as_bytes());
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    Digest::from_raw(hasher.finalize().into())
}

/// The hex of `key`, or the empty string for an input that has no key (a
/// part every key has had in that case, so it stays).
pub(crate) fn hex_or_empty(key: Option<&Key>) -> &str {
    key.map_or("", Key::hex)
}

/// Serde for a key as its 64 hex digits, the form records have always had.
pub(crate) mod hex_form {
    use super::Key;

    /// Write the hex digits.
    pub(crate) fn serialize<S: serde::Serializer>(
        key: &Key,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(key.hex())
    }

    /// Read the hex digits.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Key, D::Error> {
        let hex = <String as serde::Deserialize>::deserialize(deserializer)?;
        format!("sha256:{hex}")
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One file a COPY or ADD read, for comparing builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    /// `file`, `dir`, `symlink`, `url` or `other`.
    pub kind: String,
    /// Content digest (file, url) or link target (symlink).
    pub digest: String,
    /// Permission bits.
    pub mode: u32,
}

/// Files by their path in the build context.
pub type Files = BTreeMap<String, FileSummary>;

/// The inputs of a step's key, comparable between builds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInputs {
    /// The instruction as it runs (expanded): argv for RUN, sources and
    /// destination for COPY and ADD, the path for WORKDIR.
    #[serde(default)]
    pub instruction: String,
    /// Build arguments that reached it.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// ENV that reached it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// USER it runs as.
    #[serde(default)]
    pub user: String,
    /// WORKDIR it runs in.
    #[serde(default)]
    pub workdir: String,
    /// The parent's key (hex).
    #[serde(default)]
    pub parent: String,
    /// For FROM: the image's manifest digest.
    #[serde(default)]
    pub base: Option<String>,
    /// What it read from the build context (or fetched).
    #[serde(default)]
    pub files: Files,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_written_as_the_hex_it_always_was() {
        // The key of `scratch` since strata-cache-v1: records and imported
        // caches name keys by these digits.
        let scratch = key(&["scratch"]);
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"strata-cache-v1\0scratch");
        assert_eq!(scratch.hex(), format!("{:x}", hasher.finalize()));
        #[derive(Serialize, Deserialize)]
        struct Record {
            #[serde(with = "hex_form")]
            key: Key,
        }
        let text = serde_json::to_string(&Record {
            key: scratch.clone(),
        })
        .unwrap();
        assert_eq!(text, format!("{{\"key\":\"{}\"}}", scratch.hex()));
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.key, scratch);
    }
}
