//! A writer that hands full buffers to a thread, so that hashing (and
//! compressing) on the caller's thread overlaps with copying into the page
//! cache and with the disk.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Size of one buffer handed over.
const CHUNK: usize = 1 << 20;
/// Buffers in flight: memory stays at most `(DEPTH + 2) * CHUNK`.
const DEPTH: usize = 4;

/// A hook the thread runs on the writer every so many bytes (a file sync,
/// so that the disk works while the caller is still hashing).
pub type Checkpoint<W> = Box<dyn FnMut(&mut W) -> io::Result<()> + Send>;

/// Writes to `W` on a background thread.
pub struct BackgroundWriter<W: Write + Send + 'static> {
    buffer: Vec<u8>,
    sender: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<(W, io::Result<()>)>>,
}

impl<W: Write + Send + 'static> BackgroundWriter<W> {
    /// Start the thread writing to `inner`.
    pub fn new(inner: W) -> Self {
        Self::with_checkpoint(inner, u64::MAX, Box::new(|_| Ok(())))
    }

    /// Start the thread writing to `inner`, running `checkpoint` on it after
    /// every `every` bytes.
    pub fn with_checkpoint(inner: W, every: u64, mut checkpoint: Checkpoint<W>) -> Self {
        let (sender, receiver): (SyncSender<Vec<u8>>, Receiver<Vec<u8>>) = sync_channel(DEPTH);
        let thread = std::thread::spawn(move || {
            let mut inner = inner;
            let mut outcome = Ok(());
            let mut since_checkpoint = 0u64;
            for chunk in receiver {
                if outcome.is_ok() {
                    outcome = inner.write_all(&chunk);
                    since_checkpoint += chunk.len() as u64;
                    if outcome.is_ok() && since_checkpoint >= every {
                        since_checkpoint = 0;
                        outcome = checkpoint(&mut inner);
                    }
                }
            }
            if outcome.is_ok() {
                outcome = inner.flush();
            }
            (inner, outcome)
        });
        BackgroundWriter {
            buffer: Vec::with_capacity(CHUNK),
            sender: Some(sender),
            thread: Some(thread),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let sender = self.sender.as_ref().expect("not finished");
        // A closed channel means the thread stopped: `finish` reports why.
        sender
            .send(chunk)
            .map_err(|_| io::Error::other("the background writer stopped"))
    }

    /// Write what is buffered, stop the thread, and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let sent = self.send();
        drop(self.sender.take());
        let (inner, outcome) = self
            .thread
            .take()
            .expect("not finished")
            .join()
            .map_err(|_| io::Error::other("the background writer panicked"))?;
        outcome?;
        sent?;
        Ok(inner)
    }
}

impl<W: Write + Send + 'static> Write for BackgroundWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(bytes.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Data is on its way; `finish` waits for it.
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for BackgroundWriter<W> {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_in_order() {
        let mut writer = BackgroundWriter::new(Vec::new());
        let data: Vec<u8> = (0..5_000_000u32).map(|value| value as u8).collect();
        for piece in data.chunks(333_333) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), data);
    }

    #[test]
    fn errors_come_back() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writer = BackgroundWriter::new(Full);
        let _ = writer.write_all(&vec![0u8; 3 * CHUNK]);
        let error = writer.finish().err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    }
}
