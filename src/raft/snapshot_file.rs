//! The snapshot file: the registry streamed item by item, so that neither building nor
//! installing a snapshot holds the registry in memory.
//!
//! ```text
//! "PCSNAP04"                      8-byte magic (the format version is its last two digits)
//! ( len: u32 BE | item bytes )*   one positional MessagePack SnapshotItem each: every stored
//!                                 entry (its address and its compact row), in address
//!                                 order, then every tombstone
//! 0u32                            end marker
//! count: u64 BE                   number of items
//! sha256: [u8; 32]                over every item's bytes, in order
//! ```
//!
//! Format 01 held bare entries without slots or tombstones, format 02 entries with their
//! slot in the flat sampling index and no group or verified flag, format 03 the rows of
//! registry format 3 (named fields, node id and address in every row); a reader refuses
//! each by name.

use std::io::{self, BufReader, BufWriter, Read, Write};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"PCSNAP04";
/// The start of every format's magic; what follows is the version.
const MAGIC_PREFIX: &[u8; 6] = b"PCSNAP";
/// Largest entry accepted from a snapshot (records are a few hundred bytes).
const MAX_ENTRY_LEN: u32 = 64 * 1024;

/// Writes a snapshot stream.
pub struct SnapshotWriter<W: Write> {
    out: BufWriter<W>,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot on `out`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn new(out: W) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(256 * 1024, out);
        out.write_all(MAGIC)?;
        Ok(Self {
            out,
            hasher: Sha256::new(),
            count: 0,
        })
    }

    /// Appends one entry's stored bytes.
    ///
    /// # Errors
    /// I/O errors, or an entry larger than the format allows.
    pub fn push(&mut self, entry: &[u8]) -> io::Result<()> {
        let len = u32::try_from(entry.len())
            .ok()
            .filter(|l| (1..=MAX_ENTRY_LEN).contains(l))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "snapshot entry size out of range",
                )
            })?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(entry)?;
        self.hasher.update(entry);
        self.count += 1;
        Ok(())
    }

    /// Writes the trailer and flushes; returns the inner writer and the entry count.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.out.write_all(&0u32.to_be_bytes())?;
        self.out.write_all(&self.count.to_be_bytes())?;
        self.out.write_all(&self.hasher.finalize())?;
        let inner = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((inner, self.count))
    }
}

/// Reads a snapshot stream, checking its trailer.
pub struct SnapshotReader<R: Read> {
    input: BufReader<R>,
    hasher: Sha256,
    count: u64,
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Opens a snapshot on `input`, checking the magic.
    ///
    /// # Errors
    /// `InvalidData` if it is not a snapshot; I/O errors.
    pub fn new(input: R) -> io::Result<Self> {
        let mut input = BufReader::with_capacity(256 * 1024, input);
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            if magic.starts_with(MAGIC_PREFIX) {
                return Err(invalid(&format!(
                    "snapshot format {} was written by another peerchain version; this one \
                     reads {}",
                    String::from_utf8_lossy(&magic),
                    String::from_utf8_lossy(MAGIC)
                )));
            }
            return Err(invalid("not a peerchain snapshot"));
        }
        Ok(Self {
            input,
            hasher: Sha256::new(),
            count: 0,
            done: false,
        })
    }

    /// The next entry's bytes, or `None` after the last one once the trailer has checked out.
    ///
    /// # Errors
    /// `InvalidData` on a bad length, count or checksum; `UnexpectedEof` on truncation.
    pub fn next_entry(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len == 0 {
            self.check_trailer()?;
            self.done = true;
            return Ok(None);
        }
        if len > MAX_ENTRY_LEN {
            return Err(invalid("snapshot entry too large"));
        }
        let mut buf = vec![0u8; len as usize];
        self.input.read_exact(&mut buf)?;
        self.hasher.update(&buf);
        self.count += 1;
        Ok(Some(buf))
    }

    fn check_trailer(&mut self) -> io::Result<()> {
        let mut count = [0u8; 8];
        self.input.read_exact(&mut count)?;
        let mut digest = [0u8; 32];
        self.input.read_exact(&mut digest)?;
        if u64::from_be_bytes(count) != self.count {
            return Err(invalid("snapshot entry count does not match its trailer"));
        }
        let ours: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        if ours != digest {
            return Err(invalid("snapshot checksum mismatch"));
        }
        Ok(())
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[&[u8]]) -> Vec<u8> {
        let mut w = SnapshotWriter::new(Vec::new()).expect("new");
        for e in entries {
            w.push(e).expect("push");
        }
        w.finish().expect("finish").0
    }

    #[test]
    fn round_trip() {
        let bytes = build(&[b"one", b"two", b"three"]);
        let mut r = SnapshotReader::new(bytes.as_slice()).expect("open");
        let mut got = Vec::new();
        while let Some(e) = r.next_entry().expect("entry") {
            got.push(e);
        }
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    fn drain(bytes: &[u8]) -> io::Result<usize> {
        let mut r = SnapshotReader::new(bytes)?;
        let mut n = 0;
        while r.next_entry()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    #[test]
    fn corruption_and_truncation_are_detected() {
        let mut bytes = build(&[b"one", b"two"]);
        assert_eq!(drain(&bytes).expect("intact"), 2);
        assert!(drain(&bytes[..bytes.len() - 5]).is_err());
        bytes[13] ^= 0xff;
        assert!(drain(&bytes).is_err());
        assert!(drain(b"NOTASNAP").is_err());
    }

    #[test]
    fn a_snapshot_of_the_older_format_is_refused_by_name() {
        let mut bytes = build(&[b"one"]);
        for old in [b"PCSNAP02", b"PCSNAP03"] {
            bytes[..8].copy_from_slice(old);
            let err = drain(&bytes).expect_err("old format");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let name = String::from_utf8_lossy(old).to_string();
            assert!(err.to_string().contains(&name), "{err}");
        }
    }
}
