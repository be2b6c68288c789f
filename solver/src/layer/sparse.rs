//! Files with holes: found with `SEEK_DATA`/`SEEK_HOLE`, written to a
//! layer as old-GNU sparse entries and copied leaving the holes.
//!
//! **Which files.** Only a file the filesystem says has a hole before its
//! end is treated as sparse; every other file is written as it always was,
//! so the layer digests of dense files do not change. Of a sparse file, the
//! map is a function of its *content*, not of how it happens to be
//! allocated: the runs of [`BLOCK`]-aligned blocks that hold a byte other
//! than zero (holes are skipped without reading them; data the filesystem
//! has is read and its zero blocks become holes too). The same content
//! gives the same entry on any filesystem that reports a hole.
//!
//! **Why the old GNU format, written here.** The `tar` crate writes sparse
//! entries only through `Builder::append_file`, which makes its own header
//! from the file (its path, owners, mtime, user and group names), while a
//! layer's header is strata's own (numeric owners, clamped mtimes, PAX
//! records: see `write.rs`); and its map follows the allocation, not the
//! content. The header and extension blocks are its types
//! ([`tar::GnuHeader`], [`tar::GnuExtSparseHeader`]), filled here. The old
//! GNU format (type `S`, the map in the header and in 512-byte extension
//! blocks after it, then the data runs) rather than PAX 1.0
//! (`GNU.sparse.major=1`): the `tar` crate reads only the old one, so our
//! own unpacker (and every other reader we know: GNU tar, bsdtar, Go's
//! `archive/tar`, hence docker, containerd and podman) restores it, while a
//! reader without PAX 1.0 support would extract a PAX 1.0 entry as a file
//! holding its map and data.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use nix::unistd::{Whence, lseek};

/// The unit of a hole: a run of this many zero bytes, at an offset that is
/// a multiple of it, is left out. The page size and most filesystems'
/// block size; a multiple of tar's 512-byte block, as the `tar` crate
/// requires of every run but the last.
pub(crate) const BLOCK: u64 = 4096;

/// A tar block.
const TAR_BLOCK: u64 = 512;

/// Map entries in a GNU header, and in each extension block.
const IN_HEADER: usize = 4;
const IN_EXTENSION: usize = 21;

/// The runs of data of a sparse file: (offset, length), in order, apart,
/// each but the last a multiple of [`BLOCK`] long; the file's size after
/// the last (a run of length 0 at the size ends the map of a file that
/// ends in a hole, as GNU tar writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Map {
    pub(crate) runs: Vec<(u64, u64)>,
    pub(crate) size: u64,
}

impl Map {
    /// The bytes of data, what the entry stores.
    pub(crate) fn stored(&self) -> u64 {
        self.runs.iter().map(|(_, length)| length).sum()
    }

    /// The runs as the header lists them: a trailing hole is a last run of
    /// length 0 at the size.
    fn listed(&self) -> Vec<(u64, u64)> {
        let mut listed: Vec<(u64, u64)> = self
            .runs
            .iter()
            .copied()
            .filter(|(_, length)| *length > 0)
            .collect();
        if listed
            .last()
            .is_none_or(|(offset, length)| offset + length < self.size)
        {
            listed.push((self.size, 0));
        }
        listed
    }
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

/// Fill `header` (a GNU header whose other fields are set) as the sparse
/// entry of `map`: its type, stored size, real size and first runs. The
/// extension blocks [`write_entry`] writes after it hold the rest.
pub(crate) fn prepare(header: &mut tar::Header, map: &Map) {
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_size(map.stored());
    let listed = map.listed();
    let gnu = header.as_gnu_mut().expect("a GNU header");
    gnu.set_real_size(map.size);
    for (slot, (offset, length)) in gnu.sparse.iter_mut().zip(&listed) {
        slot.set_offset(*offset);
        slot.set_length(*length);
    }
    gnu.set_is_extended(listed.len() > IN_HEADER);
}

/// Write the entry of `file` after its `header` ([`prepare`]d, checksum
/// set): the header, the extension blocks, the runs of data, padding.
pub(crate) fn write_entry(
    out: &mut dyn Write,
    header: &tar::Header,
    file: &File,
    map: &Map,
) -> io::Result<()> {
    out.write_all(header.as_bytes())?;
    let listed = map.listed();
    let rest: Vec<&[(u64, u64)]> = listed
        .get(IN_HEADER..)
        .unwrap_or_default()
        .chunks(IN_EXTENSION)
        .collect();
    for (index, chunk) in rest.iter().enumerate() {
        let mut extension = tar::GnuExtSparseHeader::new();
        for (slot, (offset, length)) in extension.sparse.iter_mut().zip(chunk.iter()) {
            slot.set_offset(*offset);
            slot.set_length(*length);
        }
        extension.set_is_extended(index + 1 < rest.len());
        out.write_all(extension.as_bytes())?;
    }
    let mut buffer = vec![0u8; 1 << 20];
    for (offset, length) in &map.runs {
        let mut done = 0;
        while done < *length {
            let want = (length - done).min(buffer.len() as u64) as usize;
            let read = file.read_at(&mut buffer[..want], offset + done)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was archived",
                ));
            }
            out.write_all(&buffer[..read])?;
            done += read as u64;
        }
    }
    let padding = (TAR_BLOCK - map.stored() % TAR_BLOCK) % TAR_BLOCK;
    out.write_all(&[0u8; TAR_BLOCK as usize][..padding as usize])
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
        assert_eq!(map.stored(), 3 * BLOCK);
        // Zeros the filesystem holds as data are holes too: the map is the
        // content's.
        let (_temp, written) = sparse_file(64 * mib, &[(0, b"start"), (10 * mib + 5, b"middle")]);
        written
            .write_all_at(&vec![0u8; mib as usize], 20 * mib)
            .unwrap();
        written.write_all_at(b"end", 64 * mib - 3).unwrap();
        assert_eq!(super::map(&written, 64 * mib).unwrap().unwrap(), map);
        // A trailing hole ends the listed map with a run of length 0.
        let (_temp, file) = sparse_file(3 * BLOCK, &[(0, b"x")]);
        let map = super::map(&file, 3 * BLOCK).unwrap().unwrap();
        assert_eq!(map.runs, vec![(0, BLOCK)]);
        assert_eq!(map.listed(), vec![(0, BLOCK), (3 * BLOCK, 0)]);
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
    fn entries_with_extension_blocks_read_back_through_the_tar_crate() {
        // 30 runs: 4 in the header, 21 in one extension block, 5 in a second.
        let size = 100 * BLOCK + 7;
        let offsets: Vec<u64> = (0..30).map(|index| index * 3 * BLOCK + 11).collect();
        let data: Vec<(u64, &[u8])> = offsets
            .iter()
            .map(|offset| (*offset, &b"data"[..]))
            .collect();
        let (_temp, file) = sparse_file(size, &data);
        let map = map(&file, size).unwrap().unwrap();
        assert_eq!(map.runs.len(), 30);
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"sparse");
        header.set_mode(0o644);
        prepare(&mut header, &map);
        header.set_cksum();
        let mut archive = Vec::new();
        write_entry(&mut archive, &header, &file, &map).unwrap();
        archive.extend_from_slice(&[0u8; 1024]);
        assert_eq!(archive.len() as u64 % TAR_BLOCK, 0);
        // Header, two extension blocks, 30 blocks of data, the end.
        assert_eq!(archive.len() as u64, 3 * TAR_BLOCK + 30 * BLOCK + 1024);
        let mut reader = tar::Archive::new(&archive[..]);
        let mut entries = reader.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.header().entry_type(), tar::EntryType::GNUSparse);
        assert_eq!(entry.size(), size);
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let mut expected = vec![0u8; size as usize];
        for offset in &offsets {
            expected[*offset as usize..*offset as usize + 4].copy_from_slice(b"data");
        }
        assert!(content == expected, "the content read back differs");
        assert!(entries.next().is_none());
        // Restored with its holes, and copied with them.
        let temp = tempfile::NamedTempFile::new().unwrap();
        let mut restored = temp.reopen().unwrap();
        let mut reader = tar::Archive::new(&archive[..]);
        let mut entry = reader.entries().unwrap().next().unwrap().unwrap();
        restore(&mut entry, &mut restored).unwrap();
        assert_eq!(std::fs::read(temp.path()).unwrap(), expected);
        use std::os::unix::fs::MetadataExt;
        let allocated = |file: &File| file.metadata().unwrap().blocks() * 512;
        assert!(
            allocated(&restored) <= 31 * BLOCK,
            "{}",
            allocated(&restored)
        );
        let temp = tempfile::NamedTempFile::new().unwrap();
        let mut copied = temp.reopen().unwrap();
        let mut source = file.try_clone().unwrap();
        copy(&mut source, &mut copied, size).unwrap();
        assert_eq!(std::fs::read(temp.path()).unwrap(), expected);
        assert!(allocated(&copied) <= 31 * BLOCK, "{}", allocated(&copied));
    }
}
