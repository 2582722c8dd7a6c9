//! Installing a snapshot: a complete new registry database built from a snapshot file,
//! item by item, so that the registry never has to fit in memory. The caller renames it over
//! `state.redb` once it is complete and durable.

use std::fs::File;
use std::path::Path;

use redb::{Database, Durability};

use super::snapshot_file::SnapshotReader;
use super::state_machine_store::{put_meta, Meta, KEY_APPLIED, KEY_MEMBERSHIP, SM_META};
use crate::registry::registry_db::create_with_tables;
use crate::registry::{RegistryWriter, SnapshotItem};

/// Builds a complete registry database at `path` from the snapshot file `snap`.
pub(super) fn build_from_snapshot(
    path: &Path,
    snap: &Path,
    meta: &Meta,
) -> Result<Database, String> {
    let db = create_with_tables(path).map_err(|e| e.to_string())?;
    let mut reader = SnapshotReader::new(File::open(snap).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    const CHUNK: usize = 10_000;
    loop {
        let mut txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(Durability::None)
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        let mut finished = false;
        {
            let mut writer = RegistryWriter::open(&txn).map_err(|e| e.to_string())?;
            while n < CHUNK {
                match reader.next_entry().map_err(|e| e.to_string())? {
                    Some(bytes) => {
                        let item = SnapshotItem::decode(&bytes).map_err(|e| e.to_string())?;
                        writer.restore(&item).map_err(|e| e.to_string())?;
                        n += 1;
                    }
                    None => {
                        finished = true;
                        break;
                    }
                }
            }
        }
        if finished {
            let mut t = txn.open_table(SM_META).map_err(|e| e.to_string())?;
            put_meta(&mut t, KEY_APPLIED, &meta.last_log_id).map_err(|e| e.to_string())?;
            put_meta(&mut t, KEY_MEMBERSHIP, &meta.last_membership).map_err(|e| e.to_string())?;
            drop(t);
            txn.set_durability(Durability::Immediate)
                .map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())?;
            return Ok(db);
        }
        txn.commit().map_err(|e| e.to_string())?;
    }
}
