//! The image index: one file per image record, and an append-only log of
//! tags.
//!
//! # On disk
//!
//! ```text
//! images/<id hex>.json   one image record (ImageRecord as JSON), replaced whole
//! tags.log               one JSON line per tag change, appended:
//!                          {"tag":"app:1","image":"sha256:<hex>"}   app:1 now names it
//!                          {"tag":"app:1","image":null}            app:1 is removed
//! ```
//!
//! The tags are what the log's lines say, last line wins.
//!
//! # Cost
//!
//! Recording an image ([`Store::record`]) writes its own record file and
//! appends one line per tag: the same on the 1,000th image as on the
//! first (the store used to rewrite one `images.json` holding everything,
//! which grew by a record per build). The log is compacted (rewritten with
//! one line per live tag) when it has grown to more than twice that plus
//! [`COMPACT_SLACK`] lines, by whichever update reads it whole anyway.
//!
//! # Consistency
//!
//! - A record file is written in `tmp/`, synced, renamed into `images/`
//!   and the directory synced, under the index's lock: it is whole or
//!   absent, and there before any tag line names it, even across a power
//!   loss. Records are written
//!   before the tags that name them and removed after them.
//! - A log line is appended (one `write(2)`, then synced) under the lock.
//!   A crash mid-append leaves a last line without its newline: readers
//!   ignore it (`system check` reports it as a harmless leftover), and the
//!   next writer cuts it off before it appends.
//! - Readers take no lock: they read the log, then list `images/` (so
//!   every image a tag they read names is listed).
//! - A store written by an older strata has `images.json` (records and
//!   tags in one document). Readers read it as long as it is there; the
//!   first update migrates it (records, then the log, then `images.json`
//!   removed, all under the lock), so a reader sees the old file or the
//!   new ones, both saying the same.
//! - What cannot be read (a record that does not parse, a log line in the
//!   middle that does not) is damage: every command that reads the index
//!   names the file and says to run `strata system check --repair`, which
//!   rebuilds what it can (see [`Store::repair_index`]).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::layout::{IMAGES, OLD_INDEX, TAGS, TMP};
use super::{ImageRecord, Index, Store, StoreDir, StoreError};
use crate::digest::Digest;

/// Lines a compacted log may gain beyond twice its live tags before it is
/// compacted again.
pub(crate) const COMPACT_SLACK: usize = 64;

/// A log of this many bytes is read and compacted (if it needs it) by a
/// [`Store::record`], which otherwise never reads it.
const RECORD_COMPACTS_AT: u64 = 1 << 20;

/// The most a record file or the old `images.json` may hold.
const MAX_INDEX_FILE: u64 = 256 << 20;

/// One line of the tags log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TagLine {
    tag: String,
    image: Option<Digest>,
}

/// Something in the index that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub detail: String,
    /// What it is.
    pub kind: DamageKind,
}

/// What a damaged part of the index is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// The old `images.json`, which does not parse.
    OldIndex,
    /// The record file of this image ID (by its name).
    Record(Digest),
    /// A file in `images/` whose name is no image ID's.
    Stray(std::ffi::OsString),
    /// Line `line` (1-based) of the tags log.
    TagLine(usize),
}

/// The index as read, with what was found on the way.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// What could be read.
    pub index: Index,
    /// What could not.
    pub damage: Vec<Damage>,
    /// Whether the log's last line lacks its newline (an interrupted
    /// append): ignored, harmless.
    pub torn: bool,
    /// Lines in the log (whole ones).
    pub(crate) tag_lines: usize,
    /// Bytes of the log up to the end of its last whole line.
    pub(crate) whole: u64,
    /// Whether this came from the old `images.json`.
    pub old: bool,
}

impl Loaded {
    /// The index, or the first damage as [`StoreError::CorruptIndex`].
    pub fn into_index(self) -> Result<Index, StoreError> {
        match self.damage.into_iter().next() {
            None => Ok(self.index),
            Some(damage) => Err(StoreError::CorruptIndex {
                path: damage.path,
                detail: damage.detail,
            }),
        }
    }
}

fn record_name(id: &Digest) -> String {
    format!("{}.json", id.hex())
}

/// The image ID a file in `images/` is the record of.
fn record_id(name: &OsStr) -> Option<Digest> {
    let hex = name.to_str()?.strip_suffix(".json")?;
    format!("sha256:{hex}").parse().ok()
}

fn parse_record(bytes: &[u8], id: &Digest) -> Result<ImageRecord, String> {
    let record: ImageRecord = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    if &record.id != id {
        return Err(format!("it is the record of {}", record.id));
    }
    Ok(record)
}

impl Store {
    /// The index as it is now.
    pub fn index(&self) -> Result<Index, StoreError> {
        self.load_index()?.into_index()
    }

    /// The index as it is now, with what of it could not be read (read
    /// without a lock).
    pub fn load_index(&self) -> Result<Loaded, StoreError> {
        let root = self.root_dir()?;
        if let Some(bytes) = root.read(OsStr::new(OLD_INDEX), MAX_INDEX_FILE)? {
            let mut loaded = Loaded {
                old: true,
                ..Loaded::default()
            };
            match serde_json::from_slice(&bytes) {
                Ok(index) => loaded.index = index,
                Err(error) => loaded.damage.push(Damage {
                    path: root.path().join(OLD_INDEX),
                    detail: error.to_string(),
                    kind: DamageKind::OldIndex,
                }),
            }
            return Ok(loaded);
        }
        // The log before the records: a record is in place before any
        // line names it, so every image the tags read name is listed.
        let log = root.read(OsStr::new(TAGS), u64::MAX)?.unwrap_or_default();
        let mut loaded = Loaded::default();
        if let Some(images) = self.open_dir(IMAGES)? {
            for name in images.entries()? {
                let path = images.path().join(&name);
                let Some(id) = record_id(&name) else {
                    loaded.damage.push(Damage {
                        path,
                        detail: "not the record of an image ID".to_owned(),
                        kind: DamageKind::Stray(name),
                    });
                    continue;
                };
                // Removed meanwhile (an rmi): not there.
                let Some(bytes) = images.read(&name, MAX_INDEX_FILE)? else {
                    continue;
                };
                match parse_record(&bytes, &id) {
                    Ok(record) => {
                        loaded.index.images.insert(id, record);
                    }
                    Err(detail) => loaded.damage.push(Damage {
                        path,
                        detail,
                        kind: DamageKind::Record(id),
                    }),
                }
            }
        }
        let whole = log
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |at| at + 1);
        loaded.torn = whole < log.len();
        loaded.whole = whole as u64;
        for (number, line) in log[..whole]
            .split_inclusive(|byte| *byte == b'\n')
            .enumerate()
        {
            let line = &line[..line.len() - 1];
            loaded.tag_lines += 1;
            match serde_json::from_slice::<TagLine>(line) {
                Ok(TagLine {
                    tag,
                    image: Some(id),
                }) => {
                    loaded.index.tags.insert(tag, id);
                }
                Ok(TagLine { tag, image: None }) => {
                    loaded.index.tags.remove(&tag);
                }
                Err(error) => loaded.damage.push(Damage {
                    path: root.path().join(TAGS),
                    detail: format!("line {}: {error}", number + 1),
                    kind: DamageKind::TagLine(number + 1),
                }),
            }
        }
        Ok(loaded)
    }

    /// Change the index under the store's lock: what the closure changed
    /// is written (records added or changed, tag lines appended, records
    /// removed). The closure may fail with its own error type; the index
    /// is then left as it was.
    pub fn update<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut Index) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = self.index_lock()?;
        let loaded = self.migrated()?;
        let (whole, tag_lines, torn) = (loaded.whole, loaded.tag_lines, loaded.torn);
        let before = loaded.into_index()?;
        let mut index = before.clone();
        let outcome = change(&mut index)?;
        self.write_changes(&before, &index, whole, tag_lines, torn)?;
        Ok(outcome)
    }

    /// Record `image` and point `tags` (normalized `name:tag`) at it, in one
    /// update: no moment exists when another process (a prune) could see the
    /// image untagged. Its blobs must already be stored. Costs one record
    /// file and a line per tag, however many images the store has.
    pub fn record(&self, image: &ImageRecord, tags: &[String]) -> Result<(), StoreError> {
        let _lock = self.index_lock()?;
        if self.root_dir()?.stat(OsStr::new(OLD_INDEX)).is_some() {
            self.migrated()?;
        }
        let mut image = image.clone();
        let images = self.layout_dir(IMAGES)?;
        let name = record_name(&image.id);
        // The same image made again (a rebuild, a reload) is still where
        // it was pushed or pulled from. (A damaged record is replaced.)
        let known = images
            .read(OsStr::new(&name), MAX_INDEX_FILE)?
            .and_then(|bytes| parse_record(&bytes, &image.id).ok());
        if let Some(known) = &known {
            for digest in &known.repo_digests {
                if !image.repo_digests.contains(digest) {
                    image.repo_digests.push(digest.clone());
                }
            }
        }
        if known.as_ref() != Some(&image) {
            self.write_record(&images, &image)?;
        }
        let lines: Vec<TagLine> = tags
            .iter()
            .map(|tag| TagLine {
                tag: tag.clone(),
                image: Some(image.id.clone()),
            })
            .collect();
        let root = self.root_dir()?;
        let size = root.size(OsStr::new(TAGS));
        if size >= RECORD_COMPACTS_AT {
            // Rare: read it whole, and compact it if it needs it.
            let loaded = self.load_index()?;
            let (whole, tag_lines, torn) = (loaded.whole, loaded.tag_lines, loaded.torn);
            let before = loaded.into_index()?;
            let mut after = before.clone();
            for line in &lines {
                after.tags.insert(line.tag.clone(), image.id.clone());
            }
            after.images.insert(image.id.clone(), image);
            return self.write_changes(&before, &after, whole, tag_lines, torn);
        }
        self.append_tags(&root, &lines, None)
    }

    /// The index, with an old `images.json` migrated first (under the
    /// index's lock, which the caller holds).
    fn migrated(&self) -> Result<Loaded, StoreError> {
        let loaded = self.load_index()?;
        if !loaded.old {
            return Ok(loaded);
        }
        let index = loaded.into_index()?;
        self.write_whole(&index)?;
        self.root_dir()?.remove(OsStr::new(OLD_INDEX))?;
        self.load_index()
    }

    /// Write `index` as the whole index: every record, and a compacted
    /// log; records no longer in it are removed (under the lock).
    pub(crate) fn write_whole(&self, index: &Index) -> Result<(), StoreError> {
        let images = self.layout_dir(IMAGES)?;
        for record in index.images.values() {
            self.write_record(&images, record)?;
        }
        self.compact_tags(&index.tags)?;
        for name in images.entries()? {
            if record_id(&name).is_none_or(|id| !index.images.contains_key(&id)) {
                images.remove(&name)?;
            }
        }
        Ok(())
    }

    /// Write what changed from `before` to `after` (under the lock).
    fn write_changes(
        &self,
        before: &Index,
        after: &Index,
        whole: u64,
        tag_lines: usize,
        torn: bool,
    ) -> Result<(), StoreError> {
        let images = self.layout_dir(IMAGES)?;
        for (id, record) in &after.images {
            if before.images.get(id) != Some(record) {
                self.write_record(&images, record)?;
            }
        }
        let mut lines = Vec::new();
        for (tag, id) in &after.tags {
            if before.tags.get(tag) != Some(id) {
                lines.push(TagLine {
                    tag: tag.clone(),
                    image: Some(id.clone()),
                });
            }
        }
        for tag in before.tags.keys() {
            if !after.tags.contains_key(tag) {
                lines.push(TagLine {
                    tag: tag.clone(),
                    image: None,
                });
            }
        }
        if tag_lines + lines.len() > 2 * after.tags.len() + COMPACT_SLACK {
            self.compact_tags(&after.tags)?;
        } else if !lines.is_empty() {
            self.append_tags(&self.root_dir()?, &lines, torn.then_some(whole))?;
        }
        for id in before.images.keys() {
            if !after.images.contains_key(id) {
                images.remove(OsStr::new(&record_name(id)))?;
            }
        }
        Ok(())
    }

    /// Replace `images/<id>.json` with `record` (through `tmp/`, synced).
    fn write_record(&self, images: &StoreDir, record: &ImageRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(record).expect("a record always serializes");
        self.replace_from_tmp(
            images,
            &record_name(&record.id),
            &bytes,
            "write an image record",
        )
    }

    /// Replace the log with one line per tag of `tags`.
    fn compact_tags(&self, tags: &BTreeMap<String, Digest>) -> Result<(), StoreError> {
        let mut bytes = Vec::new();
        for (tag, id) in tags {
            serde_json::to_writer(
                &mut bytes,
                &TagLine {
                    tag: tag.clone(),
                    image: Some(id.clone()),
                },
            )
            .expect("a tag line always serializes");
            bytes.push(b'\n');
        }
        self.replace_from_tmp(&self.root_dir()?, TAGS, &bytes, "write the tags log")
    }

    /// Write `bytes` to a fresh file in `tmp/`, sync it and rename it to
    /// `name` in `dir`. Not added to a lease (an add takes `gc.lock`, which
    /// must never be waited for under the index's lock): a collection
    /// takes the index's lock before it sweeps `tmp/`.
    fn replace_from_tmp(
        &self,
        dir: &StoreDir,
        name: &str,
        bytes: &[u8],
        operation: &'static str,
    ) -> Result<(), StoreError> {
        let (mut file, temp) = self.temp_file_named(crate::atomic::unique_name())?;
        let written = file
            .write_all(bytes)
            .and_then(|()| {
                crate::fault::point(crate::fault::Kind::Fsync, &temp);
                file.sync_all()
            })
            .map_err(StoreError::io(operation, &temp));
        drop(file);
        let tmp = self.layout_dir(TMP)?;
        let temp_name = temp.file_name().expect("a temporary file has a name");
        let moved =
            written.and_then(|()| tmp.rename_into(temp_name, dir, OsStr::new(name), operation));
        if moved.is_err() {
            let _ = tmp.remove(temp_name);
        }
        // Its name too, before anything (a tag line) refers to it.
        moved.and_then(|()| dir.sync())
    }

    /// Append `lines` to the log in one write, synced; a torn last line
    /// is cut off first (`whole`: where the last whole line ends, when the
    /// caller knows the log is torn; else its last byte is looked at).
    fn append_tags(
        &self,
        root: &StoreDir,
        lines: &[TagLine],
        whole: Option<u64>,
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let path = root.path().join(TAGS);
        let mut file = root.open_append(OsStr::new(TAGS))?;
        let cut = match whole {
            Some(whole) => Some(whole),
            None => torn_at(&mut file).map_err(StoreError::io("read the tags log", &path))?,
        };
        if let Some(whole) = cut {
            file.set_len(whole).map_err(StoreError::io(
                "cut the torn last line of the tags log",
                &path,
            ))?;
        }
        let mut bytes = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut bytes, line).expect("a tag line always serializes");
            bytes.push(b'\n');
        }
        crate::fault::point(crate::fault::Kind::Write, &path);
        file.write_all(&bytes)
            .and_then(|()| {
                crate::fault::point(crate::fault::Kind::Fsync, &path);
                file.sync_data()
            })
            .map_err(StoreError::io("append to the tags log", &path))
    }
}

/// Where the last whole line of `file` ends, if its last byte is not a
/// newline (a torn append); `None` if it is whole.
fn torn_at(file: &mut std::fs::File) -> std::io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(None);
    }
    let mut end = length;
    let mut buffer = vec![0u8; 4096];
    let mut last = true;
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if last {
            if chunk.last() == Some(&b'\n') {
                return Ok(None);
            }
            last = false;
        }
        if let Some(at) = chunk.iter().rposition(|byte| *byte == b'\n') {
            return Ok(Some(start + at as u64 + 1));
        }
        end = start;
    }
    Ok(Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seed: &[u8]) -> ImageRecord {
        let id = Digest::of(seed);
        ImageRecord {
            id: id.clone(),
            manifest: Digest::of(&[seed, b"m"].concat()),
            manifest_size: 1,
            config: id,
            config_size: 1,
            layers: Vec::new(),
            created: None,
            manifest_media_type: None,
            repo_digests: Vec::new(),
        }
    }

    #[test]
    fn an_old_images_json_is_read_then_migrated_by_the_first_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (record(b"a"), record(b"b"));
        let mut old = Index::default();
        old.images.insert(a.id.clone(), a.clone());
        old.tags.insert("a:1".into(), a.id.clone());
        std::fs::write(
            dir.path().join(OLD_INDEX),
            serde_json::to_vec_pretty(&old).unwrap(),
        )
        .unwrap();
        assert_eq!(store.index().unwrap(), old);
        store.record(&b, &["b:1".into()]).unwrap();
        assert!(!dir.path().join(OLD_INDEX).exists());
        let index = store.index().unwrap();
        assert_eq!(index.images.len(), 2);
        assert_eq!(index.tags["a:1"], a.id);
        assert_eq!(index.tags["b:1"], b.id);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(TAGS)).unwrap(),
            format!(
                "{{\"tag\":\"a:1\",\"image\":\"{}\"}}\n{{\"tag\":\"b:1\",\"image\":\"{}\"}}\n",
                a.id, b.id
            )
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_then_cut_off_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = record(b"a");
        store.record(&a, &["a:1".into()]).unwrap();
        let log = dir.path().join(TAGS);
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"{\"tag\":\"a:2\",\"ima").unwrap();
        let loaded = store.load_index().unwrap();
        assert!(loaded.torn && loaded.damage.is_empty());
        assert_eq!(loaded.index.tags.len(), 1);
        store.record(&a, &["a:3".into()]).unwrap();
        let loaded = store.load_index().unwrap();
        assert!(!loaded.torn);
        assert_eq!(loaded.index.tags.keys().collect::<Vec<_>>(), ["a:1", "a:3"]);
        // A line in the middle that does not parse is damage.
        file.write_all(b"garbage\n").unwrap();
        store.record(&a, &["a:4".into()]).unwrap();
        let error = store.index().unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "the image index `{}` is damaged (line 3: expected value at line 1 column 1): \
                 run `strata system check --repair`",
                log.display()
            )
        );
    }

    #[test]
    fn the_log_is_compacted_once_it_has_grown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (record(b"a"), record(b"b"));
        for round in 0..200 {
            let image = if round % 2 == 0 { &a } else { &b };
            store.record(image, &["app:1".into()]).unwrap();
        }
        // Records append; an update compacts what has grown.
        store.update(|_| Ok::<_, StoreError>(())).unwrap();
        store
            .update(|index| {
                index.tags.insert("other:1".into(), a.id.clone());
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(TAGS)).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(store.index().unwrap().tags["app:1"], b.id);
    }
}
