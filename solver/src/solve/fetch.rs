//! `ADD https://...`: files fetched over HTTP(S), once per build, checked
//! against `--checksum`, kept in the store's `tmp/` until the build ends.
//!
//! Downloads have the limits of every network read (`registry::net`):
//! connect and idle timeouts, a transfer timeout scaled by the size, at
//! most `net::MAX_DOWNLOAD` bytes and exactly the `Content-Length` when
//! there is one, and a signal ends them. The name a download gets comes
//! from the URL's path, decoded and cleaned: never `..`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::Digest as _;

use super::files::Download;
use crate::error::PathError;
use crate::registry::net::{self, Expect, ReadError};
use crate::store::{Store, StoreError};

/// Why `ADD URL` cannot fetch its file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The store's directory for downloads cannot be made (worded as the
    /// store's error alone, as it always was).
    #[error("{0}")]
    Staging(StoreError),
    /// The request or the transfer failed.
    #[error("failed to fetch {url}")]
    Transfer {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// The server answered with an error status.
    #[error(
        "failed to fetch {url}: http status: {status}{}",
        reason.map(|reason| format!(" {reason}")).unwrap_or_default()
    )]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Its canonical reason phrase.
        reason: Option<&'static str>,
    },
    /// The downloaded file cannot be written.
    #[error(transparent)]
    File(#[from] PathError),
    /// A `--checksum` of another algorithm than sha256.
    #[error("--checksum={0}: only sha256:HEX checksums are supported")]
    UnsupportedChecksum(String),
    /// Content that does not match `--checksum`.
    #[error(
        "the content of {url} does not match --checksum: expected sha256:{expected}, got sha256:{found}"
    )]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The hex digest `--checksum` gives.
        expected: String,
        /// The hex digest of what arrived.
        found: String,
    },
}

/// The file at the `http(s)://` `url` (`strata build URL`: an archive
/// that is the context, or a Dockerfile), fetched as ADD fetches: with a
/// deadline, at most [`net::MAX_DOWNLOAD`] bytes, into the store's `tmp/`,
/// where it is removed once opened.
pub fn fetch_url(store: &Store, url: &str) -> Result<std::fs::File, FetchError> {
    let fetcher = Fetcher::new(store);
    let opened = fetcher.fetch(url, None).and_then(|download| {
        std::fs::File::open(&download.path)
            .map_err(PathError::at::<FetchError>("open", &download.path))
    });
    fetcher.cleanup();
    opened
}

/// Fetches for one build.
pub(crate) struct Fetcher {
    store: Store,
    dir: Mutex<Option<PathBuf>>,
    done: Mutex<HashMap<String, Download>>,
}

impl Fetcher {
    pub(crate) fn new(store: &Store) -> Fetcher {
        Fetcher {
            store: store.clone(),
            dir: Mutex::new(None),
            done: Mutex::new(HashMap::new()),
        }
    }

    /// The file at `url`, fetched once per build.
    pub(crate) fn fetch(&self, url: &str, checksum: Option<&str>) -> Result<Download, FetchError> {
        if let Some(known) = self.done.lock().expect("fetch lock").get(url) {
            verify(url, &known.digest, checksum)?;
            return Ok(known.clone());
        }
        let dir = {
            let mut dir = self.dir.lock().expect("fetch lock");
            if dir.is_none() {
                *dir = Some(
                    self.store
                        .staging_dir("downloads")
                        .map_err(FetchError::Staging)?,
                );
            }
            dir.clone().expect("made above")
        };
        let count = self.done.lock().expect("fetch lock").len();
        let path = dir.join(count.to_string());
        let fail = |source: ReadError| FetchError::Transfer {
            url: url.to_owned(),
            source,
        };
        let agent = net::agent(ureq::tls::TlsConfig::default());
        let _watch = net::watch(&agent);
        let response = agent.get(url).call().map_err(|error| {
            fail(match crate::cancel::interrupted() {
                Some(signal) => ReadError::Interrupted(signal),
                None => ReadError::Transport {
                    reason: net::describe(&error),
                    retryable: net::retryable(&error),
                },
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                reason: status.canonical_reason(),
            });
        }
        let modified = response
            .headers()
            .get("last-modified")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date);
        let expect = match net::content_length(&response) {
            Some(length) if length > net::MAX_DOWNLOAD => {
                return Err(fail(ReadError::TooLarge {
                    limit: net::MAX_DOWNLOAD,
                    what: "downloads",
                }));
            }
            Some(length) => Expect::Exactly(length),
            None => Expect::AtMost {
                limit: net::MAX_DOWNLOAD,
                what: "downloads",
            },
        };
        let file =
            std::fs::File::create(&path).map_err(PathError::at::<FetchError>("create", &path))?;
        let mut out = Hashing {
            file,
            hasher: sha2::Sha256::new(),
        };
        match net::copy(response, &mut out, expect) {
            Ok(_) => {}
            Err(ReadError::Write(error)) => {
                return Err(PathError::at::<FetchError>("write", &path)(error));
            }
            Err(error) => return Err(fail(error)),
        }
        let hasher = out.hasher;
        let digest = format!("{:x}", hasher.finalize());
        verify(url, &digest, checksum)?;
        let download = Download {
            path,
            digest,
            modified,
            name: file_name(url),
        };
        self.done
            .lock()
            .expect("fetch lock")
            .insert(url.to_owned(), download.clone());
        Ok(download)
    }

    /// Remove what was fetched.
    pub(crate) fn cleanup(&self) {
        if let Some(dir) = self.dir.lock().expect("fetch lock").take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A file that hashes what is written to it.
struct Hashing {
    file: std::fs::File,
    hasher: sha2::Sha256,
}

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn verify(url: &str, digest: &str, checksum: Option<&str>) -> Result<(), FetchError> {
    let Some(checksum) = checksum else {
        return Ok(());
    };
    let Some(expected) = checksum.strip_prefix("sha256:") else {
        return Err(FetchError::UnsupportedChecksum(checksum.to_owned()));
    };
    if expected != digest {
        return Err(FetchError::ChecksumMismatch {
            url: url.to_owned(),
            expected: expected.to_owned(),
            found: digest.to_owned(),
        });
    }
    Ok(())
}

/// The name a download gets in a destination directory: the last element
/// of the URL's path, percent-decoded first (as Go's `url.Parse` does for
/// BuildKit) and then cleaned as a rooted path (`.` and empty elements
/// dropped, `..` taking the element before it away). What remains is never
/// `.` or `..` and holds no `/`; a URL with no name left (`http://h/`,
/// `http://h/..`, `http://h/a/%2e%2e`) gets BuildKit's `__unnamed__`, and
/// so does a name with a NUL byte. The name is bytes: `%E9` is the byte
/// 0xE9, a name that is not UTF-8 (as Go keeps it).
fn file_name(url: &str) -> std::ffi::OsString {
    const UNNAMED: &str = "__unnamed__";
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, path)| path);
    let decoded = percent_decode(path);
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in decoded.split(|byte| *byte == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let name: &std::ffi::OsStr = match parts.last() {
        Some(name) if !name.contains(&0) => std::os::unix::ffi::OsStrExt::from_bytes(name),
        _ => std::ffi::OsStr::new(UNNAMED),
    };
    name.to_owned()
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits is kept.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let Some(hex) = bytes.get(at + 1..at + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate).
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut fields = text.split_whitespace().skip(1);
    let day: i64 = fields.next()?.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|name| Some(*name) == fields.clone().next())? as i64
        + 1;
    fields.next();
    let year: i64 = fields.next()?.parse().ok()?;
    let mut clock = fields
        .next()?
        .split(':')
        .map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let seconds = crate::time::unix_seconds(year, month, day, hour, minute, second)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_names() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz?x=1"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("http://127.0.0.1:8080/"), "__unnamed__");
        assert_eq!(file_name("http://127.0.0.1:8080"), "__unnamed__");
    }

    #[test]
    fn names_never_climb() {
        for url in [
            "http://h/..",
            "http://h/../",
            "http://h/a/..",
            "http://h/%2e%2e",
            "http://h/a/%2E%2e",
            "http://h/a/.%2e/",
            "http://h/%2e",
            "http://h/a%2f..",
            "http://h/x%00",
            "http://h/..?name=x",
        ] {
            assert_eq!(file_name(url), "__unnamed__", "{url}");
        }
        assert_eq!(file_name("http://h/a/b/.."), "a");
        assert_eq!(file_name("http://h/x/%2e%2e/y"), "y");
        assert_eq!(file_name("http://h/a%2Fb"), "b");
        assert_eq!(file_name("http://h/a%20b.txt"), "a b.txt");
        assert_eq!(file_name("http://h/100%"), "100%");
        assert_eq!(
            std::os::unix::ffi::OsStrExt::as_bytes(file_name("http://h/caf%E9.txt").as_os_str()),
            b"caf\xe9.txt"
        );
        assert_eq!(file_name("http://h/..a"), "..a");
    }
}
