//! Target `snapshot_file`: arbitrary bytes as a snapshot file (as a member installing a
//! snapshot from the leader reads it), each entry decoded as a [`SnapshotItem`] and an
//! entry's row as a [`StoredEntry`] (what the install does with it); and entries cut from
//! the input written by [`SnapshotWriter`] must read back unchanged.

use crate::raft::snapshot_file::{SnapshotReader, SnapshotWriter};
use crate::registry::{SnapshotItem, StoredEntry};

/// Most entries read from or written for one input.
const MAX_ENTRIES: usize = 256;

/// The target body.
pub fn snapshot_file(data: &[u8]) {
    if let Ok(mut reader) = SnapshotReader::new(data) {
        for _ in 0..MAX_ENTRIES {
            match reader.next_entry() {
                Ok(Some(entry)) => {
                    if let Ok(SnapshotItem::Entry { address, row }) =
                        crate::wire::decode_body::<SnapshotItem>(&entry)
                    {
                        let _ = StoredEntry::decode(&address, &row);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    write_then_read(data);
}

/// The input cut at every 0xff byte into non-empty entries, written then read back.
fn write_then_read(data: &[u8]) {
    let entries: Vec<&[u8]> = data
        .split(|b| *b == 0xff)
        .filter(|e| !e.is_empty())
        .take(MAX_ENTRIES)
        .collect();
    let mut writer = SnapshotWriter::new(Vec::new()).expect("writing to memory");
    for e in &entries {
        writer.push(e).expect("writing to memory");
    }
    let (file, count) = writer.finish().expect("writing to memory");
    assert_eq!(count, entries.len() as u64);
    let mut reader = SnapshotReader::new(file.as_slice()).expect("our own magic");
    for e in &entries {
        let read = reader.next_entry().expect("our own file reads");
        assert_eq!(read.as_deref(), Some(*e));
    }
    assert_eq!(reader.next_entry().expect("trailer checks out"), None);
}
