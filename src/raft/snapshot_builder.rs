//! [`SnapshotBuilder`]: a snapshot is the registry database as one read transaction sees
//! it, made durable by a checkpoint; nothing is copied until a follower needs it (see
//! [`super::snapshot_data`]).
//!
//! The view is taken when openraft asks for the builder, on its state machine worker, so it
//! sits in the order of applies and installs: read later, on the task that builds the
//! snapshot, it could report a state newer than an install whose reply is still pending.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::Snapshot;
use openraft::{LogId, RaftSnapshotBuilder, StorageIOError};
use redb::{ReadTransaction, ReadableDatabase};

use super::checkpoint::Checkpoint;
use super::snapshot_data::SnapshotData;
use super::state_machine_store::{
    Membership, Meta, StorageResult, KEY_APPLIED, KEY_MEMBERSHIP, SM_META,
};
use super::{any_err, MemberId, TypeConfig};
use crate::registry::RegistryDb;

/// Makes the registry view it was created with durable and reports it as a snapshot.
pub struct SnapshotBuilder {
    view: Option<Result<ReadTransaction, String>>,
    db: RegistryDb,
    snapshot_dir: PathBuf,
    checkpoint: Arc<Checkpoint>,
}

impl SnapshotBuilder {
    /// A builder over the registry as it is now (call it on the state machine worker).
    pub(super) fn new(db: RegistryDb, snapshot_dir: PathBuf, checkpoint: Arc<Checkpoint>) -> Self {
        let view = db
            .current()
            .map_err(|e| e.to_string())
            .and_then(|d| d.begin_read().map_err(|e| e.to_string()));
        Self {
            view: Some(view),
            db,
            snapshot_dir,
            checkpoint,
        }
    }
}

/// The snapshot that `txn` sees, after making it durable. Blocking.
///
/// The snapshot may cover only durable state: its meta lets openraft purge the log below
/// it, and the log is what re-applies non-durable applies after a crash. `txn` began before
/// this checkpoint, so all it sees is durable once the checkpoint returns.
pub(super) fn durable_snapshot(
    txn: ReadTransaction,
    db: &RegistryDb,
    checkpoint: &Checkpoint,
    snapshot_dir: &Path,
) -> Result<Snapshot<TypeConfig>, StorageIOError<MemberId>> {
    let err = |e: String| StorageIOError::write_snapshot(None, any_err(e));
    let current = db.current().map_err(|e| err(e.to_string()))?;
    checkpoint
        .run(&current)
        .map_err(|e| err(format!("checkpoint before the snapshot: {e}")))?;
    let (last_applied, last_membership) = applied_in(&txn).map_err(err)?;
    // Named by the state it holds: the registry is a pure function of the log, so every
    // member's view at the same log id has the same bytes, and a transfer that a receiver
    // resumes under the same id gets the same bytes again.
    let snapshot_id = match last_applied {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "0-0-0".to_string(),
    };
    let data = SnapshotData::view(txn, snapshot_dir, &snapshot_id);
    Ok(Snapshot {
        meta: Meta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        },
        snapshot: Box::new(data),
    })
}

/// `last_applied` and `last_membership` as `txn` sees them.
pub(super) fn applied_in(
    txn: &ReadTransaction,
) -> Result<(Option<LogId<MemberId>>, Membership), String> {
    let table = match txn.open_table(SM_META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((None, Membership::default())),
        Err(e) => return Err(e.to_string()),
    };
    let applied = match table.get(KEY_APPLIED).map_err(|e| e.to_string())? {
        Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| e.to_string())?,
        None => None,
    };
    let membership = match table.get(KEY_MEMBERSHIP).map_err(|e| e.to_string())? {
        Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| e.to_string())?,
        None => Membership::default(),
    };
    Ok((applied, membership))
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let err = |e: String| StorageIOError::write_snapshot(None, any_err(e));
        let txn = self
            .view
            .take()
            .ok_or_else(|| err("this builder was used already".into()))?
            .map_err(err)?;
        let (db, dir, checkpoint) = (
            self.db.clone(),
            self.snapshot_dir.clone(),
            self.checkpoint.clone(),
        );
        let snapshot =
            tokio::task::spawn_blocking(move || durable_snapshot(txn, &db, &checkpoint, &dir))
                .await
                .map_err(|e| err(e.to_string()))??;
        tracing::info!(snapshot = %snapshot.meta.snapshot_id, "built snapshot");
        Ok(snapshot)
    }
}
