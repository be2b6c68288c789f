//! The deterministic layer writer.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{
    MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD, OPAQUE_MARKER, WHITEOUT_PREFIX,
};
use crate::confined::Chain;
use crate::digest::{Digest, HashingWriter};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (the OCI default).
    Gzip,
    /// zstd.
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE_TAR_GZIP,
            Compression::Zstd => MEDIA_TYPE_TAR_ZSTD,
            Compression::None => MEDIA_TYPE_TAR,
        }
    }

    /// Parse `gzip`, `zstd` or `uncompressed`.
    pub fn parse(text: &str) -> Option<Compression> {
        match text {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            "uncompressed" | "none" => Some(Compression::None),
            _ => None,
        }
    }
}

/// What [`write_layer`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenLayer {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
    /// Digest of the blob as written.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// The blob's media type.
    pub media_type: &'static str,
    /// Sockets, which tar cannot hold, left out (relative paths).
    pub skipped: Vec<PathBuf>,
}

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::error::PathError),
    /// The store failed (writing the blob, see [`super::store_layer`]).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn io_error<'a>(
    operation: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> LayerError + 'a {
    crate::error::PathError::at(operation, path)
}

/// The compressor between the tar stream and the blob.
enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    fn new(compression: Compression, inner: W) -> io::Result<Self> {
        Ok(match compression {
            // A fixed level and flate2's fixed header (mtime 0, OS unknown)
            // keep the blob byte-identical from run to run.
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(inner, 3)?),
            Compression::None => Encoder::None(inner),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
            Encoder::None(inner) => Ok(inner),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(bytes),
            Encoder::Zstd(encoder) => encoder.write(bytes),
            Encoder::None(inner) => inner.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
            Encoder::None(inner) => inner.flush(),
        }
    }
}

/// The xattrs that describe overlayfs itself, never part of a layer.
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// An xattr whiteout (`overlay.whiteout` on an empty regular file).
pub(crate) fn is_xattr_whiteout(path: &Path, meta: &std::fs::Metadata) -> bool {
    meta.is_file()
        && meta.len() == 0
        && ["trusted.overlay.whiteout", "user.overlay.whiteout"]
            .iter()
            .any(|name| matches!(xattr::get(path, name), Ok(Some(_))))
}

pub(crate) fn is_opaque(path: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(xattr::get(path, name), Ok(Some(value)) if value == b"y"))
}

/// Read buffer for file contents.
const COPY_BUFFER: usize = 1 << 20;

/// Name fields of a ustar header hold 100 bytes; longer names go in PAX.
const USTAR_NAME_LENGTH: usize = 100;
/// The largest id a ustar header holds in octal.
const USTAR_MAX_ID: u64 = 0o7777777;

/// One archive entry: `name` as stored, `meta` from lstat (none for
/// synthesised whiteout entries).
struct Item<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    meta: Option<&'a std::fs::Metadata>,
    owner: Option<(u32, u32)>,
    link: Option<&'a [u8]>,
    xattrs: &'a [(Vec<u8>, Vec<u8>)],
    /// PAX records of its own (a sparse file's).
    records: &'a [(&'a [u8], Vec<u8>)],
}

impl<'a> Item<'a> {
    fn new(
        name: &'a [u8],
        kind: tar::EntryType,
        meta: Option<&'a std::fs::Metadata>,
        xattrs: &'a [(Vec<u8>, Vec<u8>)],
    ) -> Self {
        Item {
            name,
            kind,
            meta,
            owner: None,
            link: None,
            xattrs,
            records: &[],
        }
    }

    fn owner(mut self, owner: Option<(u32, u32)>) -> Self {
        self.owner = owner;
        self
    }

    fn link(mut self, link: &'a [u8]) -> Self {
        self.link = Some(link);
        self
    }
}

struct Writer<'o, W: Write> {
    builder: tar::Builder<W>,
    owners: &'o super::Owners,
    epoch: Option<u64>,
    /// (device, inode) of files already written, for hardlinks.
    links: HashMap<(u64, u64), Vec<u8>>,
    skipped: Vec<PathBuf>,
}

impl<W: Write> Writer<'_, W> {
    /// Append one entry, with its data and size for regular files.
    fn entry(&mut self, item: Item<'_>, data: Option<(&mut dyn io::Read, u64)>) -> io::Result<()> {
        let Item {
            name,
            kind,
            meta,
            owner,
            link,
            xattrs,
            records,
        } = item;
        let (data, size) = match data {
            Some((data, size)) => (Some(data), size),
            None => (None, 0),
        };
        // PAX records are bytes, keys too: a name or an xattr's name that
        // is not UTF-8 goes in as it is.
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if name.len() > USTAR_NAME_LENGTH {
            pax.push((b"path".to_vec(), name.to_vec()));
        }
        if let Some(link) = link
            && link.len() > USTAR_NAME_LENGTH
        {
            pax.push((b"linkpath".to_vec(), link.to_vec()));
        }
        let (uid, gid) = match (owner, meta) {
            (Some((uid, gid)), _) => (u64::from(uid), u64::from(gid)),
            (None, Some(meta)) => (u64::from(meta.uid()), u64::from(meta.gid())),
            (None, None) => (0, 0),
        };
        if uid > USTAR_MAX_ID {
            pax.push((b"uid".to_vec(), uid.to_string().into_bytes()));
        }
        if gid > USTAR_MAX_ID {
            pax.push((b"gid".to_vec(), gid.to_string().into_bytes()));
        }
        for (key, value) in xattrs {
            let mut record = b"SCHILY.xattr.".to_vec();
            record.extend_from_slice(key);
            pax.push((record, value.clone()));
        }
        pax.extend(
            records
                .iter()
                .map(|(key, value)| (key.to_vec(), value.clone())),
        );
        if !pax.is_empty() {
            self.append_pax(&pax)?;
        }
        let mut header = tar::Header::new_ustar();
        {
            let fields = header.as_old_mut();
            let length = name.len().min(USTAR_NAME_LENGTH);
            fields.name[..length].copy_from_slice(&name[..length]);
            if let Some(link) = link {
                let length = link.len().min(USTAR_NAME_LENGTH);
                fields.linkname[..length].copy_from_slice(&link[..length]);
            }
        }
        header.set_entry_type(kind);
        let mode = meta.map(|meta| meta.mode() & 0o7777).unwrap_or(0o600);
        header.set_mode(mode);
        header.set_uid(uid.min(USTAR_MAX_ID));
        header.set_gid(gid.min(USTAR_MAX_ID));
        let mtime = meta.map(|meta| meta.mtime().max(0) as u64).unwrap_or(0);
        header.set_mtime(match self.epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        });
        if let (Some(meta), tar::EntryType::Char | tar::EntryType::Block) = (meta, kind) {
            let rdev = meta.rdev();
            header
                .set_device_major(((rdev >> 8) & 0xfff) as u32 | ((rdev >> 32) & !0xfff) as u32)?;
            header.set_device_minor((rdev & 0xff) as u32 | ((rdev >> 12) & !0xff) as u32)?;
        }
        header.set_size(size);
        header.set_cksum();
        match data {
            Some(data) => self.builder.append(&header, data),
            None => self.builder.append(&header, io::empty()),
        }
    }

    /// A regular file with holes, `map` its runs, as a PAX 1.0 sparse entry
    /// (see [`super::sparse`]): the map and the runs' data are stored, the
    /// holes are not.
    fn sparse_file(
        &mut self,
        item: Item<'_>,
        file: &std::fs::File,
        map: &super::sparse::Map,
    ) -> io::Result<()> {
        // `dir/GNUSparseFile.0/name`, as GNU tar names it (with 0 for its
        // process id: the layer stays the same from run to run).
        let real = item.name;
        let split = real.iter().rposition(|byte| *byte == b'/');
        let mut name = Vec::with_capacity(real.len() + 16);
        if let Some(split) = split {
            name.extend_from_slice(&real[..=split]);
        }
        name.extend_from_slice(b"GNUSparseFile.0/");
        name.extend_from_slice(&real[split.map_or(0, |split| split + 1)..]);
        let records: [(&[u8], Vec<u8>); 4] = [
            (b"GNU.sparse.major", b"1".to_vec()),
            (b"GNU.sparse.minor", b"0".to_vec()),
            (b"GNU.sparse.name", real.to_vec()),
            (b"GNU.sparse.realsize", map.size().to_string().into_bytes()),
        ];
        let text = map.pax_text();
        let size = text.len() as u64 + map.data_len();
        let mut data = io::BufReader::with_capacity(
            COPY_BUFFER.min(size as usize).max(8192),
            io::Read::chain(text.as_slice(), super::sparse::Runs::new(file, map)),
        );
        self.entry(
            Item {
                name: &name,
                records: &records,
                ..item
            },
            Some((&mut data, size)),
        )
    }

    /// A PAX extended header holding `records`: what
    /// `tar::Builder::append_pax_extensions` writes, byte for byte, with
    /// keys that need not be UTF-8.
    fn append_pax(&mut self, records: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        let mut data: Vec<u8> = Vec::new();
        for (key, value) in records {
            // `<length> <key>=<value>\n`, the length counting itself.
            let rest = 3 + key.len() + value.len();
            let mut digits = 1;
            let mut bound = 10;
            while rest + digits >= bound {
                digits += 1;
                bound *= 10;
            }
            data.extend_from_slice((rest + digits).to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(key);
            data.push(b'=');
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_cksum();
        self.builder.append(&header, data.as_slice())
    }

    fn walk(&mut self, root: &Path) -> Result<(), LayerError> {
        // Depth-first, children in byte order; an explicit stack so that a
        // deep tree cannot exhaust the call stack. Each directory is opened
        // once, in its parent (`crate::confined::Chain`), and each entry is
        // reached through its parent's descriptor: no path is resolved from
        // the root again (which cost the kernel a walk of the whole path per
        // call, and failed past `PATH_MAX`), and nothing is followed.
        let mut chain = Chain::new(crate::confined::Root::open(root)?.top()?);
        let mut stack: Vec<PathBuf> = sorted_children(&mut chain, root, Path::new(""))?
            .into_iter()
            .rev()
            .collect();
        while let Some(relative) = stack.pop() {
            let path = root.join(&relative);
            let parts: Vec<OsString> = relative.iter().map(OsStr::to_owned).collect();
            let at = match chain.parent(&parts)? {
                Some((dir, name)) => dir.at(name)?,
                None => {
                    return Err(io_error("inspect", &path)(io::Error::from(
                        io::ErrorKind::NotFound,
                    )));
                }
            };
            let meta = std::fs::symlink_metadata(&at).map_err(io_error("inspect", &path))?;
            let kind = meta.file_type();
            let name = relative.as_os_str().as_bytes();
            let xattrs = read_xattrs(&at, &path)?;
            let owner = self.owners.get(&relative).copied();
            let written = if kind.is_dir() {
                let mut name = name.to_vec();
                name.push(b'/');
                self.entry(
                    Item::new(&name, tar::EntryType::Directory, Some(&meta), &xattrs).owner(owner),
                    None,
                )
                .map_err(io_error("write the entry for", &path))?;
                if is_opaque(&at) {
                    name.extend_from_slice(OPAQUE_MARKER.as_bytes());
                    self.entry(Item::new(&name, tar::EntryType::Regular, None, &[]), None)
                        .map_err(io_error("write the opaque marker for", &path))?;
                }
                for child in sorted_children(&mut chain, root, &relative)?
                    .into_iter()
                    .rev()
                {
                    stack.push(child);
                }
                Ok(())
            } else if (kind.is_char_device() && meta.rdev() == 0) || is_xattr_whiteout(&at, &meta) {
                // An overlayfs whiteout: the file was deleted.
                let whiteout = whiteout_name(&relative);
                self.entry(
                    Item::new(&whiteout, tar::EntryType::Regular, None, &[]),
                    None,
                )
            } else if kind.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1
                    && let Some(target) = self.links.get(&key).cloned()
                {
                    self.entry(
                        Item::new(name, tar::EntryType::Link, Some(&meta), &xattrs)
                            .owner(owner)
                            .link(&target),
                        None,
                    )
                } else {
                    if meta.nlink() > 1 {
                        self.links.insert(key, name.to_vec());
                    }
                    use std::os::unix::fs::OpenOptionsExt;
                    let file = std::fs::File::options()
                        .read(true)
                        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
                        .open(&at)
                        .map_err(io_error("open", &path))?;
                    let item =
                        Item::new(name, tar::EntryType::Regular, Some(&meta), &xattrs).owner(owner);
                    let map = super::sparse::map(&file, meta.len())
                        .map_err(io_error("find the holes of", &path))?
                        .filter(|map| map.runs().len() <= super::sparse::MAX_TAR_RUNS);
                    if let Some(map) = map {
                        self.sparse_file(item, &file, &map)
                            .map_err(io_error("write the entry for", &path))?;
                        continue;
                    }
                    // A large buffer makes `io::copy` inside tar move 1 MiB
                    // at a time (it reads straight from a BufReader's buffer),
                    // instead of 8 KiB: fewer, larger hash updates and writes.
                    let mut file = io::BufReader::with_capacity(
                        COPY_BUFFER.min(meta.len() as usize).max(8192),
                        file,
                    );
                    self.entry(item, Some((&mut file, meta.len())))
                }
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&at).map_err(io_error("read the link", &path))?;
                let target = target.as_os_str().as_bytes().to_vec();
                self.entry(
                    Item::new(name, tar::EntryType::Symlink, Some(&meta), &xattrs)
                        .owner(owner)
                        .link(&target),
                    None,
                )
            } else if kind.is_char_device() {
                self.entry(
                    Item::new(name, tar::EntryType::Char, Some(&meta), &xattrs).owner(owner),
                    None,
                )
            } else if kind.is_block_device() {
                self.entry(
                    Item::new(name, tar::EntryType::Block, Some(&meta), &xattrs).owner(owner),
                    None,
                )
            } else if kind.is_fifo() {
                self.entry(
                    Item::new(name, tar::EntryType::Fifo, Some(&meta), &xattrs).owner(owner),
                    None,
                )
            } else {
                // A socket: tar has no way to hold one (docker skips them too).
                self.skipped.push(relative.clone());
                Ok(())
            };
            written.map_err(io_error("write the entry for", &path))?;
        }
        Ok(())
    }
}

fn whiteout_name(relative: &Path) -> Vec<u8> {
    let mut name = Vec::new();
    if let Some(parent) = relative
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        name.extend_from_slice(parent.as_os_str().as_bytes());
        name.push(b'/');
    }
    name.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
    name.extend_from_slice(
        relative
            .file_name()
            .map(|name| name.as_bytes())
            .unwrap_or_default(),
    );
    name
}

/// The entries of directory `relative` (below `root`, for messages),
/// sorted by their bytes.
fn sorted_children(
    chain: &mut Chain,
    root: &Path,
    relative: &Path,
) -> Result<Vec<PathBuf>, LayerError> {
    let parts: Vec<OsString> = relative.iter().map(OsStr::to_owned).collect();
    let Some(dir) = chain.dir(&parts)? else {
        return Err(io_error("list", &root.join(relative))(
            io::Error::from_raw_os_error(nix::libc::ENOTDIR),
        ));
    };
    // `Dir::list` sorts by bytes.
    Ok(dir
        .list()?
        .into_iter()
        .map(|name| relative.join(name))
        .collect())
}

/// Extended attributes as (name, value) pairs, sorted by name.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The xattrs of the entry at `at` (a path that does not follow it),
/// `path` in messages.
fn read_xattrs(at: &Path, path: &Path) -> Result<Xattrs, LayerError> {
    let names = match xattr::list(at) {
        Ok(names) => names,
        // A filesystem without xattrs has none to keep.
        Err(error) if error.raw_os_error() == Some(95) => return Ok(Vec::new()),
        Err(error) => return Err(io_error("list the xattrs of", path)(error)),
    };
    let mut xattrs = Vec::new();
    for name in names {
        let key = name.as_bytes().to_vec();
        if is_overlay_xattr(&key) {
            continue;
        }
        if let Some(value) = xattr::get(at, &name).map_err(io_error("read the xattrs of", path))? {
            xattrs.push((key, value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// The blob end of the pipeline: hashed when compressed; when not, the blob
/// is the tar itself, whose digest is already being computed, so it is only
/// counted (hashing the same bytes twice would halve the throughput).
enum BlobSink<W: Write> {
    Hashing(HashingWriter<W>),
    Counting(W, u64),
}

impl<W: Write> Write for BlobSink<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            BlobSink::Hashing(writer) => writer.write(bytes),
            BlobSink::Counting(writer, count) => {
                let written = writer.write(bytes)?;
                *count += written as u64;
                Ok(written)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlobSink::Hashing(writer) => writer.flush(),
            BlobSink::Counting(writer, _) => writer.flush(),
        }
    }
}

/// Write the tree under `dir` as a layer blob into `out`.
///
/// `epoch` is `SOURCE_DATE_EPOCH`: later mtimes are clamped to it.
pub fn write_layer<W: Write>(
    dir: &Path,
    compression: Compression,
    epoch: Option<u64>,
    out: W,
) -> Result<(WrittenLayer, W), LayerError> {
    write_layer_with_owners(dir, compression, epoch, &super::Owners::new(), out)
}

/// [`write_layer`], with the owners of some paths given instead of read from
/// disk: a tree unpacked without privileges keeps the archive's owners.
pub fn write_layer_with_owners<W: Write>(
    dir: &Path,
    compression: Compression,
    epoch: Option<u64>,
    owners: &super::Owners,
    out: W,
) -> Result<(WrittenLayer, W), LayerError> {
    let blob = match compression {
        Compression::None => BlobSink::Counting(out, 0),
        _ => BlobSink::Hashing(HashingWriter::new(out)),
    };
    let encoder =
        Encoder::new(compression, blob).map_err(io_error("start compressing for", dir))?;
    let tar_stream = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, encoder));
    let mut writer = Writer {
        builder: tar::Builder::new(tar_stream),
        owners,
        epoch,
        links: HashMap::new(),
        skipped: Vec::new(),
    };
    writer.builder.mode(tar::HeaderMode::Complete);
    writer.walk(dir)?;
    let skipped = std::mem::take(&mut writer.skipped);
    let tar_stream = writer
        .builder
        .into_inner()
        .map_err(io_error("finish the tar for", dir))?;
    let (diff_id, diff_size, buffered) = tar_stream.finish();
    let encoder = buffered.into_inner().map_err(|error| {
        LayerError::Io(crate::error::PathError {
            operation: "write the layer for",
            path: dir.to_owned(),
            source: error.into_error(),
        })
    })?;
    let blob = encoder
        .finish()
        .map_err(io_error("finish compressing for", dir))?;
    let (digest, size, out) = match blob {
        BlobSink::Hashing(writer) => writer.finish(),
        BlobSink::Counting(out, size) => (diff_id.clone(), size, out),
    };
    Ok((
        WrittenLayer {
            diff_id,
            diff_size,
            digest,
            size,
            media_type: compression.media_type(),
            skipped,
        },
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_are_what_the_tar_crate_writes() {
        // UTF-8 keys give the bytes they always gave (layers stay
        // byte-identical); other keys go in as they are.
        let records: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"path".to_vec(), "n".repeat(150).into_bytes()),
            (b"SCHILY.xattr.user.a".to_vec(), vec![0, 1, 2]),
            (b"uid".to_vec(), b"99999999".to_vec()),
            // Lengths around a power of ten.
            (b"k".to_vec(), vec![b'v'; 3]),
            (b"k".to_vec(), vec![b'v'; 4]),
            (b"k".to_vec(), vec![b'v'; 93]),
            (b"k".to_vec(), vec![b'v'; 94]),
        ];
        let owners = crate::layer::Owners::new();
        let mut ours = Writer {
            builder: tar::Builder::new(Vec::new()),
            owners: &owners,
            epoch: None,
            links: HashMap::new(),
            skipped: Vec::new(),
        };
        ours.append_pax(&records).unwrap();
        let mut theirs = tar::Builder::new(Vec::new());
        theirs
            .append_pax_extensions(
                records
                    .iter()
                    .map(|(key, value)| (std::str::from_utf8(key).unwrap(), value.as_slice())),
            )
            .unwrap();
        assert_eq!(
            ours.builder.into_inner().unwrap(),
            theirs.into_inner().unwrap()
        );
    }
}
