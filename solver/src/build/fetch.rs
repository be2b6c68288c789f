//! `ADD https://...`: files fetched over HTTP(S), once per build, checked
//! against `--checksum`, kept in the store's `tmp/` until the build ends.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::Digest as _;

use super::files::Download;
use crate::store::Store;

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
    pub(crate) fn fetch(&self, url: &str, checksum: Option<&str>) -> Result<Download, String> {
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
                        .map_err(|error| error.to_string())?,
                );
            }
            dir.clone().expect("made above")
        };
        let count = self.done.lock().expect("fetch lock").len();
        let path = dir.join(count.to_string());
        let response = ureq::get(url)
            .call()
            .map_err(|error| format!("failed to fetch {url}: {error}"))?;
        let modified = response
            .headers()
            .get("last-modified")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date);
        let mut body = response.into_body().into_reader();
        let mut file = std::fs::File::create(&path)
            .map_err(|error| format!("failed to create `{}`: {error}", path.display()))?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let read = body
                .read(&mut buffer)
                .map_err(|error| format!("failed to fetch {url}: {error}"))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])
                .map_err(|error| format!("failed to write `{}`: {error}", path.display()))?;
        }
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

fn verify(url: &str, digest: &str, checksum: Option<&str>) -> Result<(), String> {
    let Some(checksum) = checksum else {
        return Ok(());
    };
    let Some(expected) = checksum.strip_prefix("sha256:") else {
        return Err(format!(
            "--checksum={checksum}: only sha256:HEX checksums are supported"
        ));
    };
    if expected != digest {
        return Err(format!(
            "the content of {url} does not match --checksum: expected sha256:{expected}, got sha256:{digest}"
        ));
    }
    Ok(())
}

/// The name a download gets in a destination directory: the URL path's
/// last element.
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, path)| path);
    path.rsplit('/')
        .find(|part| !part.is_empty())
        .unwrap_or("index.html")
        .to_owned()
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
    let seconds = crate::image::unix_seconds(year, month, day, hour, minute, second)?;
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
        assert_eq!(file_name("http://127.0.0.1:8080/"), "index.html");
    }
}
