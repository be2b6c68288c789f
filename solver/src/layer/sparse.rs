//! Files with holes: found with `SEEK_DATA`/`SEEK_HOLE` and copied (a
//! COPY's staging file, which becomes the layer's snapshot), written into
//! a layer as a sparse entry, and restored from one, leaving the holes,
//! with no write of zeros.
//!
//! **Which files.** Only a file the filesystem says has a hole before its
//! end is treated as sparse; every other file is copied and written as it
//! always was. Of a sparse file, the map is a function of its *content*,
//! not of how it happens to be allocated: the runs of [`BLOCK`]-aligned
//! blocks that hold a byte other than zero (holes are skipped without
//! reading them; data the filesystem has is read and its zero blocks become
//! holes too).
//!
//! **Which tar format.** A layer holds a sparse file as a PAX 1.0 sparse
//! entry (`GNU.sparse.major=1`, `GNU.sparse.minor=0`, the real name in
//! `GNU.sparse.name`, the length in `GNU.sparse.realsize`, the map as
//! decimal lines at the start of the data, then the runs' bytes), under a
//! `GNUSparseFile.0/` name, as `tar --sparse --format=pax` writes it. That
//! is the form Go's `archive/tar` (containerd, moby, BuildKit, umoci,
//! podman) restores as a plain file; the old-GNU type `S` is refused by
//! umoci and containerd (`unknown typeflag`). A reader that knows neither
//! gets the map and data under the `GNUSparseFile.0/` name, never a wrong
//! file under the real one. The `tar` crate reads none of the PAX sparse
//! forms, so the unpacker does ([`restore_runs`], [`read_pax_map`]), and
//! the older PAX forms 0.0 and 0.1 (map in the records) too.
//!
//! A file whose map has more than [`MAX_TAR_RUNS`] runs (data and holes
//! alternating every few blocks) is written dense: its map would pass the
//! 1 MiB that readers allow a map, and it saves little.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use nix::unistd::{Whence, lseek};

/// The unit of a hole: a run of this many zero bytes, at an offset that is
/// a multiple of it, is left out. The page size and most filesystems'
/// block size.
pub(crate) const BLOCK: u64 = 4096;

/// The runs of data of a sparse file: (offset, length), in order, apart,
/// each but the last a multiple of [`BLOCK`] long; and the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Map {
    runs: Vec<(u64, u64)>,
    size: u64,
}

impl Map {
    /// The runs of data: (offset, length), in order.
    pub(crate) fn runs(&self) -> &[(u64, u64)] {
        &self.runs
    }

    /// The file's length.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of data in the runs.
    pub(crate) fn data_len(&self) -> u64 {
        self.runs.iter().map(|(_, length)| length).sum()
    }

    /// The map as a PAX 1.0 sparse entry's data begins: the number of
    /// entries, then each offset and length, one decimal number a line,
    /// zero-padded to whole 512-byte blocks. A file that ends in a hole
    /// gets a last entry (its length, 0), as GNU tar writes it.
    pub(crate) fn pax_text(&self) -> Vec<u8> {
        let mut entries: Vec<(u64, u64)> = self.runs.clone();
        if entries
            .last()
            .is_none_or(|(offset, length)| offset + length < self.size)
        {
            entries.push((self.size, 0));
        }
        let mut text = format!("{}\n", entries.len()).into_bytes();
        for (offset, length) in entries {
            text.extend_from_slice(format!("{offset}\n{length}\n").as_bytes());
        }
        text.resize(text.len().div_ceil(TAR_BLOCK) * TAR_BLOCK, 0);
        text
    }
}

/// The most runs of data a sparse tar entry is written with: its map then
/// stays well under 1 MiB, the most Go's `archive/tar` reads of one.
pub(crate) const MAX_TAR_RUNS: usize = 10_000;

/// The most bytes of a PAX 1.0 map read ([`read_pax_map`]), Go's limit too.
const MAX_PAX_MAP: u64 = 1 << 20;

const TAR_BLOCK: usize = 512;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads the data of `map`'s runs of `file`, one after the other: the data
/// of a sparse tar entry after its map.
pub(crate) struct Runs<'f> {
    file: &'f File,
    runs: &'f [(u64, u64)],
    /// Bytes of the first run of `runs` already read.
    done: u64,
}

impl<'f> Runs<'f> {
    pub(crate) fn new(file: &'f File, map: &'f Map) -> Self {
        Runs {
            file,
            runs: &map.runs,
            done: 0,
        }
    }
}

impl Read for Runs<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while let Some(&(offset, length)) = self.runs.first() {
            if self.done == length {
                self.runs = &self.runs[1..];
                self.done = 0;
                continue;
            }
            let want = (length - self.done).min(buffer.len() as u64) as usize;
            let read = self.file.read_at(&mut buffer[..want], offset + self.done)?;
            if read == 0 {
                // The file shrank while it was written: the entry's size is
                // already in its header, so this cannot be made right.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was read",
                ));
            }
            self.done += read as u64;
            return Ok(read);
        }
        Ok(0)
    }
}

/// Read the map at the start of a PAX 1.0 sparse entry's data (see
/// [`Map::pax_text`]), leaving `entry` at the first byte of the runs.
pub(crate) fn read_pax_map(entry: &mut impl Read) -> io::Result<Vec<(u64, u64)>> {
    let mut numbers: Vec<u64> = Vec::new();
    // How many numbers follow the count, once it is read.
    let mut wanted: Option<usize> = None;
    let mut current: Option<u64> = None;
    let mut block = [0u8; TAR_BLOCK];
    let mut read: u64 = 0;
    loop {
        if read >= MAX_PAX_MAP {
            return Err(invalid(format!(
                "a sparse file's map is longer than {MAX_PAX_MAP} bytes"
            )));
        }
        entry
            .read_exact(&mut block)
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => {
                    invalid("a sparse file's map is cut short".to_owned())
                }
                _ => error,
            })?;
        read += TAR_BLOCK as u64;
        for byte in block {
            match byte {
                b'0'..=b'9' => {
                    current = Some(
                        current
                            .unwrap_or(0)
                            .checked_mul(10)
                            .and_then(|value| value.checked_add(u64::from(byte - b'0')))
                            .ok_or_else(|| {
                                invalid("a sparse file's map holds a number too large".to_owned())
                            })?,
                    );
                }
                b'\n' => {
                    let Some(number) = current.take() else {
                        return Err(invalid("a sparse file's map has an empty line".to_owned()));
                    };
                    match wanted {
                        None => {
                            // Two numbers of at least two bytes each per
                            // entry: a count the map's bound cannot hold is
                            // refused before anything is allocated for it.
                            if number > MAX_PAX_MAP / 4 {
                                return Err(invalid(format!(
                                    "a sparse file's map claims {number} entries"
                                )));
                            }
                            wanted = Some(2 * number as usize);
                        }
                        Some(_) => numbers.push(number),
                    }
                }
                _ => {
                    return Err(invalid(
                        "a sparse file's map holds something other than numbers".to_owned(),
                    ));
                }
            }
            if wanted == Some(numbers.len()) {
                // The rest of the block is padding.
                return Ok(numbers
                    .chunks_exact(2)
                    .map(|pair| (pair[0], pair[1]))
                    .collect());
            }
        }
    }
}

/// Restore a sparse entry whose data is `runs`' bytes one after another
/// (the rest of `entry`) into `file` (new, empty), `size` bytes long, by
/// writing each run at its offset: holes are never written. The runs must
/// be in order, apart, and inside `size`, and the data must be exactly
/// theirs, as Go's `archive/tar` requires.
pub(crate) fn restore_runs(
    entry: &mut impl Read,
    file: &File,
    runs: &[(u64, u64)],
    size: u64,
) -> io::Result<()> {
    let mut end = 0;
    for &(offset, length) in runs {
        let stop = offset.checked_add(length).filter(|stop| *stop <= size);
        match stop {
            Some(stop) if offset >= end => end = stop,
            _ => {
                return Err(invalid(format!(
                    "a sparse file's map is not in order inside its {size} bytes"
                )));
            }
        }
    }
    let mut buffer = vec![0u8; 1 << 20];
    for &(offset, length) in runs {
        let mut done = 0;
        while done < length {
            let want = (length - done).min(buffer.len() as u64) as usize;
            let read = entry.read(&mut buffer[..want])?;
            if read == 0 {
                return Err(invalid(
                    "a sparse file's data ends before its map does".to_owned(),
                ));
            }
            // Zeros another writer kept as data stay holes here.
            if buffer[..read].iter().any(|byte| *byte != 0) {
                file.write_all_at(&buffer[..read], offset + done)?;
            }
            done += read as u64;
        }
    }
    if entry.read(&mut buffer[..1])? != 0 {
        return Err(invalid(
            "a sparse file has more data than its map says".to_owned(),
        ));
    }
    file.set_len(size)
}

/// Where the filesystem has data at or after `offset`: `None` past the
/// last data.
fn seek(file: &File, offset: u64, whence: Whence) -> io::Result<Option<u64>> {
    match lseek(file, offset as i64, whence) {
        Ok(found) => Ok(Some(found as u64)),
        Err(nix::errno::Errno::ENXIO) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

/// The map of `file` (of `size` bytes) if it has a hole before its end,
/// else `None` (a dense file, or a filesystem that reports no holes). The
/// file's offset is back at 0 after (`SEEK_HOLE` moves it), for a reader
/// of a dense file.
pub(crate) fn map(file: &File, size: u64) -> io::Result<Option<Map>> {
    let map = find(file, size);
    lseek(file, 0, Whence::SeekSet)?;
    map
}

fn find(file: &File, size: u64) -> io::Result<Option<Map>> {
    if size == 0 {
        return Ok(None);
    }
    match seek(file, 0, Whence::SeekHole) {
        Ok(Some(hole)) if hole < size => {}
        // No hole, or no `SEEK_HOLE` here.
        Ok(_) | Err(_) => return Ok(None),
    }
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut position = 0;
    while position < size {
        let Some(data) = seek(file, position, Whence::SeekData)? else {
            break;
        };
        let end = seek(file, data, Whence::SeekHole)?
            .unwrap_or(size)
            .min(size);
        // Whole blocks, from the one `data` is in.
        let mut offset = data - data % BLOCK;
        while offset < end {
            let want = (end - offset).min(buffer.len() as u64) as usize;
            let read = file.read_at(&mut buffer[..want], offset)?;
            if read == 0 {
                // The file shrank: what is left is not there.
                break;
            }
            for (index, block) in buffer[..read].chunks(BLOCK as usize).enumerate() {
                if block.iter().all(|byte| *byte == 0) {
                    continue;
                }
                let start = offset + (index as u64) * BLOCK;
                let stop = (start + block.len() as u64).min(size);
                // A block seen already (a region that began inside it).
                if runs
                    .last()
                    .is_some_and(|(run, length)| start < run + length)
                {
                    continue;
                }
                match runs.last_mut() {
                    Some((run, length)) if *run + *length == start => *length = stop - *run,
                    _ => runs.push((start, stop - start)),
                }
            }
            offset += read as u64;
        }
        position = end.max(position + 1);
    }
    Ok(Some(Map { runs, size }))
}

/// Copy `source` (of `size` bytes) into `target` (new, empty), leaving
/// holes where `source` has them: only the runs of its [`map`] are
/// written. A dense file is copied by `io::copy` as before (a reflink or
/// `copy_file_range` where the filesystem can).
pub(crate) fn copy(source: &mut File, target: &mut File, size: u64) -> io::Result<()> {
    let Some(map) = map(source, size)? else {
        io::copy(source, target)?;
        return Ok(());
    };
    let mut buffer = vec![0u8; 1 << 20];
    for (offset, length) in &map.runs {
        let mut done = 0;
        while done < *length {
            let want = (length - done).min(buffer.len() as u64) as usize;
            let read = source.read_at(&mut buffer[..want], offset + done)?;
            if read == 0 {
                break;
            }
            target.write_all_at(&buffer[..read], offset + done)?;
            done += read as u64;
        }
    }
    target.set_len(size)
}

/// Copy a sparse entry's data (holes read as zeros) into `file`, seeking
/// over every read that is all zeros instead of writing it: the `tar`
/// crate hands a hole as one run of zeros, so each hole stays one.
pub(crate) fn restore(entry: &mut impl Read, file: &mut File) -> io::Result<()> {
    use std::io::Seek;
    let mut buffer = vec![0u8; 1 << 20];
    let mut length: u64 = 0;
    loop {
        let read = entry.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        if buffer[..read].iter().all(|byte| *byte == 0) {
            file.seek(io::SeekFrom::Current(read as i64))?;
        } else {
            file.write_all(&buffer[..read])?;
        }
        length += read as u64;
    }
    file.set_len(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sparse file of `size` bytes with `data` written at each offset.
    fn sparse_file(size: u64, data: &[(u64, &[u8])]) -> (tempfile::NamedTempFile, File) {
        let temp = tempfile::NamedTempFile::new().unwrap();
        let file = temp.reopen().unwrap();
        file.set_len(size).unwrap();
        for (offset, bytes) in data {
            file.write_all_at(bytes, *offset).unwrap();
        }
        (temp, file)
    }

    #[test]
    fn the_map_is_the_blocks_that_hold_data() {
        let mib = 1 << 20;
        let (_temp, file) = sparse_file(
            64 * mib,
            &[
                (0, b"start"),
                (10 * mib + 5, b"middle"),
                (64 * mib - 3, b"end"),
            ],
        );
        let map = map(&file, 64 * mib).unwrap().expect("has holes");
        assert_eq!(
            map.runs,
            vec![(0, BLOCK), (10 * mib, BLOCK), (64 * mib - BLOCK, BLOCK)]
        );
        // Zeros the filesystem holds as data are holes too: the map is the
        // content's.
        let (_temp, written) = sparse_file(64 * mib, &[(0, b"start"), (10 * mib + 5, b"middle")]);
        written
            .write_all_at(&vec![0u8; mib as usize], 20 * mib)
            .unwrap();
        written.write_all_at(b"end", 64 * mib - 3).unwrap();
        assert_eq!(super::map(&written, 64 * mib).unwrap().unwrap(), map);
        // A trailing hole is no run.
        let (_temp, file) = sparse_file(3 * BLOCK, &[(0, b"x")]);
        let map = super::map(&file, 3 * BLOCK).unwrap().unwrap();
        assert_eq!(map.runs, vec![(0, BLOCK)]);
        assert_eq!(map.size, 3 * BLOCK);
    }

    #[test]
    fn dense_files_have_no_map() {
        let temp = tempfile::NamedTempFile::new().unwrap();
        let file = temp.reopen().unwrap();
        assert!(map(&file, 0).unwrap().is_none());
        file.write_all_at(&vec![0u8; 3 * BLOCK as usize], 0)
            .unwrap();
        // Zeros, but allocated: dense, written as it always was.
        assert!(map(&file, 3 * BLOCK).unwrap().is_none());
    }

    #[test]
    fn copies_keep_the_holes_and_the_content() {
        let size = 100 * BLOCK + 7;
        let offsets: Vec<u64> = (0..30).map(|index| index * 3 * BLOCK + 11).collect();
        let data: Vec<(u64, &[u8])> = offsets
            .iter()
            .map(|offset| (*offset, &b"data"[..]))
            .collect();
        let (_temp, file) = sparse_file(size, &data);
        let mut expected = vec![0u8; size as usize];
        for offset in &offsets {
            expected[*offset as usize..*offset as usize + 4].copy_from_slice(b"data");
        }
        use std::os::unix::fs::MetadataExt;
        let allocated = |file: &File| file.metadata().unwrap().blocks() * 512;
        let temp = tempfile::NamedTempFile::new().unwrap();
        let mut copied = temp.reopen().unwrap();
        let mut source = file.try_clone().unwrap();
        copy(&mut source, &mut copied, size).unwrap();
        assert_eq!(std::fs::read(temp.path()).unwrap(), expected);
        assert!(allocated(&copied) <= 31 * BLOCK, "{}", allocated(&copied));
        // Restored from a stream whose holes come as runs of zeros (as the
        // tar crate hands a GNU sparse entry's).
        let temp = tempfile::NamedTempFile::new().unwrap();
        let mut restored = temp.reopen().unwrap();
        let mut stream = io::repeat(0).take(10 * BLOCK).chain(&b"tail"[..]);
        restore(&mut stream, &mut restored).unwrap();
        assert_eq!(restored.metadata().unwrap().len(), 10 * BLOCK + 4);
        assert!(allocated(&restored) <= BLOCK, "{}", allocated(&restored));
    }
}
