//! Limits on a tar stream, enforced before the `tar` crate buffers anything.
//!
//! The `tar` crate reads a PAX record or a GNU long name whole into memory,
//! however large its header says it is: a 10 KiB archive can ask for
//! gigabytes. [`Guard`] sits between the stream and the crate, follows the
//! archive's structure (headers, data, GNU sparse extension headers) and
//! fails the read that completes a header asking for more than
//! [`MAX_EXTENSION`], naming a path longer than Linux's `PATH_MAX`, or
//! bringing the archive's sparse holes over [`MAX_HOLES`].
//! Go's `archive/tar` (which BuildKit and containerd use) has the same 1 MiB
//! limit on these records.

use std::io::{self, Read};

/// The largest PAX record, GNU long name or long link accepted.
pub(super) const MAX_EXTENSION: u64 = 1 << 20;

/// The most bytes of holes in the GNU sparse files of one archive. The
/// `tar` crate hands a hole to its reader as zeros, so a 1.5 KiB archive
/// can otherwise make the unpacker read (and the layer writer write)
/// terabytes.
pub(super) const MAX_HOLES: u64 = 4 << 30;

const BLOCK: usize = 512;

enum State {
    /// Reading a 512-byte header (`filled` bytes so far).
    Header,
    /// Passing `remaining` bytes of an entry's data; a PAX record's data is
    /// kept (it is small: checked) to learn a `size` it overrides.
    Data { remaining: u64, keep: bool },
    /// GNU sparse extension headers follow.
    SparseExtension,
    /// After the end-of-archive block: whatever follows is passed on.
    Done,
}

/// A tar stream checked as it is read (see the module's documentation).
pub(super) struct Guard<R> {
    inner: R,
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    /// Data of the PAX record before the next header.
    pax: Vec<u8>,
    /// The size a PAX record gave the next entry.
    pax_size: Option<u64>,
    /// Bytes of holes in the sparse files so far.
    holes: u64,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A numeric header field as the `tar` crate reads it (`entry_size`):
/// GNU's base-256 from its last 8 bytes, or octal text up to a NUL,
/// trimmed. The guard must agree with the crate byte for byte: a parser
/// differential is itself an attack (GHSA-3cv2-h65g-fgmm).
fn number(field: &[u8]) -> io::Result<u64> {
    if field[0] & 0x80 != 0 {
        let mut value = [0u8; 8];
        value.copy_from_slice(&field[field.len() - 8..]);
        return Ok(u64::from_be_bytes(value));
    }
    let end = field
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end])
        .map_err(|_| invalid("a tar header's size is not a number".to_owned()))?
        .trim();
    u64::from_str_radix(text, 8)
        .map_err(|_| invalid(format!("a tar header's size `{text}` is not octal")))
}

/// The `size` record of PAX data, as the `tar` crate finds it: the first
/// `size` key, and none at all if a record before it is malformed.
fn pax_size(data: &[u8]) -> Option<u64> {
    for extension in tar::PaxExtensions::new(data) {
        let extension = extension.ok()?;
        if extension.key() != Ok("size") {
            continue;
        }
        return extension.value().ok()?.parse().ok();
    }
    None
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

impl<R: Read> Guard<R> {
    /// Check `inner` as it is read.
    pub(super) fn new(inner: R) -> Self {
        Guard {
            inner,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            pax: Vec::new(),
            pax_size: None,
            holes: 0,
        }
    }

    /// The stream it reads.
    pub(super) fn into_inner(self) -> R {
        self.inner
    }

    /// A complete header: check it, and say what follows.
    fn header(&mut self) -> io::Result<State> {
        let block = &self.block;
        if block.iter().all(|byte| *byte == 0) {
            return Ok(State::Done);
        }
        let kind = block[156];
        let size = number(&block[124..136])?;
        // The crate takes `x`, `L` and `K` for extension headers only with
        // ustar or GNU magic; an old-style one is a plain entry, which
        // consumes the PAX record before it as any entry does.
        let magic = (&block[257..263], &block[263..265]);
        let recognized = magic == (b"ustar\0", b"00") || magic == (b"ustar ", b" \0");
        let gnu = magic == (b"ustar ", b" \0");
        match kind {
            b'x' | b'L' | b'K' if recognized => {
                if size > MAX_EXTENSION {
                    let what = match kind {
                        b'x' => "PAX record",
                        b'L' => "GNU long name",
                        _ => "GNU long link name",
                    };
                    return Err(invalid(format!(
                        "a {what} of {size} bytes is over the limit of {MAX_EXTENSION} bytes"
                    )));
                }
                if kind != b'x' && size > 4096 {
                    return Err(invalid(format!(
                        "a name of {size} bytes is longer than PATH_MAX (4096)"
                    )));
                }
                self.pax.clear();
                Ok(State::Data {
                    remaining: padded(size),
                    keep: kind == b'x',
                })
            }
            b'x' | b'g' | b'L' | b'K' => {
                // Returned as an entry (a global header, or an old-style
                // one): its own size, and the PAX record before it is
                // spent on it. The crate never buffers its data.
                self.pax.clear();
                self.pax_size = None;
                Ok(State::Data {
                    remaining: padded(size),
                    keep: false,
                })
            }
            _ => {
                // The size a PAX record gave this entry wins, as in the
                // `tar` crate. A GNU sparse header's size is its data's.
                let size = self.pax_size.take().unwrap_or(size);
                self.pax.clear();
                if kind == b'S' && gnu {
                    // Its holes are read back as zeros: bound them.
                    let real = number(&block[483..495])?;
                    self.holes = self.holes.saturating_add(real.saturating_sub(size));
                    if self.holes > MAX_HOLES {
                        return Err(invalid(format!(
                            "sparse files with more than {MAX_HOLES} bytes of holes (this one is {real} bytes long)"
                        )));
                    }
                }
                if kind == b'S' && gnu && block[482] == 1 {
                    // The data follows the extension headers.
                    self.pax_size = Some(size);
                    Ok(State::SparseExtension)
                } else {
                    Ok(State::Data {
                        remaining: padded(size),
                        keep: false,
                    })
                }
            }
        }
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        match self.state {
            State::Done => self.inner.read(buffer),
            State::Header | State::SparseExtension => {
                let want = (BLOCK - self.filled).min(buffer.len());
                let read = self.inner.read(&mut buffer[..want])?;
                self.block[self.filled..self.filled + read].copy_from_slice(&buffer[..read]);
                self.filled += read;
                if self.filled == BLOCK {
                    self.filled = 0;
                    self.state = match self.state {
                        State::SparseExtension if self.block[504] == 1 => State::SparseExtension,
                        State::SparseExtension => State::Data {
                            remaining: padded(self.pax_size.take().unwrap_or(0)),
                            keep: false,
                        },
                        _ => self.header()?,
                    };
                }
                Ok(read)
            }
            State::Data { remaining: 0, keep } => {
                // An entry with no data: the next read is a header's (an
                // empty read of the stream would stall some decoders).
                if keep {
                    self.pax_size = pax_size(&self.pax);
                }
                self.state = State::Header;
                self.read(buffer)
            }
            State::Data { remaining, keep } => {
                let want = remaining.min(buffer.len() as u64) as usize;
                let read = self.inner.read(&mut buffer[..want])?;
                if keep {
                    self.pax.extend_from_slice(&buffer[..read]);
                }
                let remaining = remaining - read as u64;
                self.state = if remaining == 0 {
                    if keep {
                        self.pax_size = pax_size(&self.pax);
                    }
                    State::Header
                } else {
                    State::Data { remaining, keep }
                };
                Ok(read)
            }
        }
    }
}
