//! Installing a received snapshot: a complete new registry database built from the
//! snapshot file, item by item, so that the registry never has to fit in memory, then renamed
//! over `state.redb` once it is complete and durable. The received file is deleted after:
//! the new database is the snapshot from then on, and so are the files of transfers that were
//! abandoned before this one.

use std::fs::{self, File};
use std::io::Seek;
use std::path::Path;

use openraft::StorageIOError;
use redb::{Database, Durability};

use super::snapshot_dir::{remove_abandoned_transfers, sync_dir};
use super::snapshot_file::SnapshotReader;
use super::state_machine_store::{put_meta, Meta, KEY_APPLIED, KEY_MEMBERSHIP, SM_META};
use super::{any_err, MemberId};
use crate::registry::registry_db::create_with_tables;
use crate::registry::{RegistryDb, RegistryWriter, SnapshotItem};

/// Replaces the registry at `db_path` (served through `db`) with the snapshot received into
/// `file` at `received`, then deletes the received file. Blocking.
///
/// openraft purges the log up to the snapshot without waiting for this, so the new database
/// is durable (its last commit, the rename and the directory) before this returns.
pub(super) fn install_received(
    db: &RegistryDb,
    db_path: &Path,
    meta: &Meta,
    mut file: File,
    received: &Path,
) -> Result<(), StorageIOError<MemberId>> {
    let sig = meta.signature();
    let err = |e: String| StorageIOError::write_snapshot(Some(sig.clone()), any_err(e));
    file.rewind().map_err(|e| err(e.to_string()))?;
    let new_path = db_path.with_extension("redb.new");
    let _ = fs::remove_file(&new_path);
    let built = build_from_snapshot(&new_path, file, meta).map_err(&err)?;
    fs::rename(&new_path, db_path).map_err(|e| err(e.to_string()))?;
    sync_dir(db_path).map_err(|e| err(e.to_string()))?;
    db.replace(built);
    fs::remove_file(received).map_err(|e| err(e.to_string()))?;
    if let Some(dir) = received.parent() {
        remove_abandoned_transfers(dir, received, std::time::SystemTime::now());
    }
    Ok(())
}

/// Builds a complete registry database at `path` from the snapshot file `snap`.
pub(super) fn build_from_snapshot(
    path: &Path,
    snap: File,
    meta: &Meta,
) -> Result<Database, String> {
    let db = create_with_tables(path).map_err(|e| e.to_string())?;
    let mut reader = SnapshotReader::new(snap).map_err(|e| e.to_string())?;
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
