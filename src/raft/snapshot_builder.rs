//! [`SnapshotBuilder`]: streams the registry, as of one read transaction, into a snapshot
//! file, so that a snapshot never needs the registry in memory and writes go on meanwhile.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::Snapshot;
use openraft::{LogId, RaftSnapshotBuilder, StorageIOError};
use redb::ReadableDatabase;

use super::checkpoint::Checkpoint;
use super::snapshot_dir::{set_current, CurrentSnapshot};
use super::snapshot_file::SnapshotWriter;
use super::state_machine_store::{
    Membership, Meta, StorageResult, KEY_APPLIED, KEY_MEMBERSHIP, SM_META,
};
use super::{any_err, MemberId, TypeConfig};
use crate::registry::{RegistryDb, RegistryError, RegistryReader};

/// Streams the registry, as of one read transaction, into a snapshot file.
#[derive(Clone)]
pub struct SnapshotBuilder {
    pub(super) db: RegistryDb,
    pub(super) snapshot_dir: PathBuf,
    pub(super) checkpoint: Arc<Checkpoint>,
}

impl SnapshotBuilder {
    fn build_sync(&self) -> Result<(Meta, PathBuf), StorageIOError<MemberId>> {
        let err = |e: String| StorageIOError::write_snapshot(None, any_err(e));
        let db = self.db.current().map_err(|e| err(e.to_string()))?;
        let txn = db.begin_read().map_err(|e| err(e.to_string()))?;
        // The snapshot may cover only durable state: openraft purges the log below it, and
        // the log is what re-applies non-durable applies after a crash. Checkpointing after
        // the read began makes all it sees durable.
        self.checkpoint
            .run(&db)
            .map_err(|e| err(format!("checkpoint before the snapshot: {e}")))?;
        let (last_applied, membership) = {
            let table = txn.open_table(SM_META).map_err(|e| err(e.to_string()))?;
            let applied = table.get(KEY_APPLIED).map_err(|e| err(e.to_string()))?;
            let applied: Option<LogId<MemberId>> = match applied {
                Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| err(e.to_string()))?,
                None => None,
            };
            let m = table.get(KEY_MEMBERSHIP).map_err(|e| err(e.to_string()))?;
            let m: Membership = match m {
                Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| err(e.to_string()))?,
                None => Membership::default(),
            };
            (applied, m)
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let snapshot_id = match last_applied {
            Some(l) => format!(
                "{}-{}-{}-{stamp}",
                l.leader_id.term, l.leader_id.node_id, l.index
            ),
            None => format!("0-0-0-{stamp}"),
        };
        let tmp = self.snapshot_dir.join(format!("{snapshot_id}.building"));
        let reader = RegistryReader::open(&txn).map_err(|e| err(e.to_string()))?;
        let mut out = SnapshotWriter::new(File::create(&tmp).map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
        reader
            .for_each_snapshot_item(|bytes| {
                out.push(bytes).map_err(|e| RegistryError::Corrupt {
                    key: String::new(),
                    reason: e.to_string(),
                })
            })
            .map_err(|e| err(e.to_string()))?;
        let (file, _count) = out.finish().map_err(|e| err(e.to_string()))?;
        file.sync_all().map_err(|e| err(e.to_string()))?;
        let name = format!("{snapshot_id}.snap");
        let path = self.snapshot_dir.join(&name);
        fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
        let meta = Meta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        set_current(
            &self.snapshot_dir,
            &CurrentSnapshot {
                meta: meta.clone(),
                file: name,
            },
        )
        .map_err(|e| err(e.to_string()))?;
        Ok((meta, path))
    }
}

pub(super) async fn open_snapshot(
    meta: Meta,
    path: PathBuf,
) -> StorageResult<Snapshot<TypeConfig>> {
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any_err(e)))?;
    Ok(Snapshot {
        meta,
        snapshot: Box::new(file),
    })
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let this = self.clone();
        let (meta, path) = tokio::task::spawn_blocking(move || this.build_sync())
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, any_err(e)))??;
        tracing::info!(snapshot = %meta.snapshot_id, "built snapshot");
        open_snapshot(meta, path).await
    }
}
