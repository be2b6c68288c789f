//! Content digests (`sha256:<hex>`) and the readers and writers that compute
//! them while data streams through.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

/// A string that is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest `{0}`: expected sha256:<64 hex digits>")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_raw(Sha256::digest(bytes).into())
    }

    /// A digest from its 32 raw bytes.
    pub fn from_raw(raw: [u8; 32]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in raw {
            hex.push(HEX[usize::from(byte >> 4)] as char);
            hex.push(HEX[usize::from(byte & 0xf)] as char);
        }
        Digest { hex }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Whether `prefix` (hex digits, optionally after `sha256:`) starts this digest.
    pub fn starts_with(&self, prefix: &str) -> bool {
        let prefix = prefix.strip_prefix("sha256:").unwrap_or(prefix);
        self.hex.starts_with(prefix)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Digest, InvalidDigest> {
        let hex = text
            .strip_prefix("sha256:")
            .filter(|hex| {
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
            })
            .ok_or_else(|| InvalidDigest(text.to_owned()))?;
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Hashes and counts what is written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The digest and size of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (
            Digest::from_raw(self.hasher.finalize().into()),
            self.written,
            self.inner,
        )
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts what is read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// Read what is left, at most `limit` bytes more (so that the digest
    /// covers the whole stream), then the digest and size of everything
    /// read; `None` when more than `limit` bytes were left.
    pub fn finish(mut self, limit: u64) -> io::Result<Option<(Digest, u64)>> {
        let left = io::copy(&mut (&mut self).take(limit + 1), &mut io::sink())?;
        if left > limit {
            return Ok(None);
        }
        Ok(Some((
            Digest::from_raw(self.hasher.finalize().into()),
            self.read,
        )))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.read += read as u64;
        Ok(read)
    }
}

/// Hashes what is read through it and fails at the end of the data when the
/// digest is not the one expected: a reader of a blob never sees corrupted
/// content succeed.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: Digest,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Read `inner`, which must hash to `expected`.
    pub fn new(inner: R, expected: Digest) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            expected,
            done: false,
        }
    }
}

/// What a [`VerifyingReader`]'s `InvalidData` error carries: the content
/// is not what its digest says.
#[derive(Debug, thiserror::Error)]
#[error("digest mismatch: expected {expected}, found {found}")]
pub struct Mismatch {
    /// The digest asked for.
    pub expected: Digest,
    /// The digest of what was read.
    pub found: Digest,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if read == 0 && !buffer.is_empty() {
            if !self.done {
                self.done = true;
                let found = Digest::from_raw(self.hasher.clone().finalize().into());
                if found != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        Mismatch {
                            expected: self.expected.clone(),
                            found,
                        },
                    ));
                }
            }
            return Ok(0);
        }
        self.hasher.update(&buffer[..read]);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let digest = Digest::of(b"");
        assert_eq!(
            digest.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(digest.to_string().parse::<Digest>().unwrap(), digest);
        assert!("sha256:E3B0".parse::<Digest>().is_err());
        assert!("md5:abc".parse::<Digest>().is_err());
        assert!(digest.starts_with("e3b0c4") && digest.starts_with("sha256:e3b0"));
    }

    #[test]
    fn verifying_reader_fails_on_mismatch() {
        let mut good = VerifyingReader::new(&b"hello"[..], Digest::of(b"hello"));
        let mut out = Vec::new();
        good.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        let mut bad = VerifyingReader::new(&b"hellO"[..], Digest::of(b"hello"));
        let error = bad.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("digest mismatch: expected sha256:2cf24dba")
        );
    }
}
