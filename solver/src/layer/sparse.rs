//! Files with holes: found with `SEEK_DATA`/`SEEK_HOLE` and copied (a
//! COPY's staging file, which becomes the layer's snapshot) or restored (an
//! unpacked GNU sparse entry) leaving the holes, with no write of zeros.
//!
//! **Which files.** Only a file the filesystem says has a hole before its
//! end is treated as sparse; every other file is copied as it always was.
//! Of a sparse file, the map is a function of its *content*, not of how it
//! happens to be allocated: the runs of [`BLOCK`]-aligned blocks that hold
//! a byte other than zero (holes are skipped without reading them; data the
//! filesystem has is read and its zero blocks become holes too).
//!
//! **Why layers still hold a sparse file whole.** A layer could store only
//! the runs, as an old-GNU sparse entry (type `S`): the `tar` crate (our
//! unpacker) and GNU tar restore it, but umoci refuses it (`unknown
//! typeflag 'S'`, checked with `bench/sparse.sh`), as containerd's and
//! moby's extractors refuse any type they do not know, so an image holding
//! one would not run elsewhere. The format those read through Go's
//! `archive/tar` is PAX 1.0 (`GNU.sparse.major=1`, the map in the data
//! area, under a `GNUSparseFile.0/` name), which the `tar` crate does not
//! read: our unpacker would need it first. Until then the blob is dense
//! (and byte-identical to what it always was); with `compression=gzip` or
//! `zstd` its zeros cost little.

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
