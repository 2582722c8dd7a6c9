//! [`StateMachineStore`]: applies committed batches to the registry database; its snapshots
//! are views of that database (see [`super::snapshot_data`]).
//!
//! The last applied log id and membership are written in the same redb transaction as the
//! registry changes they cover, so the database is always a consistent point of the log.
//! Applies commit without fsync; [`Checkpoint`] says why that loses nothing and when they are
//! made durable.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use serde::Serialize;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::checkpoint::{Checkpoint, CHECKPOINT_INTERVAL};
use super::snapshot_builder::{applied_in, durable_snapshot, SnapshotBuilder};
use super::snapshot_data::SnapshotData;
use super::snapshot_dir::{remove_leftovers, RECEIVING_SUFFIX};
use super::snapshot_install::install_received;
use super::{any_err, MemberId, RegistryResponse, TypeConfig};
use crate::metrics::StorageMetrics;
use crate::registry::{CommandOutcome, RegistryDb, RegistryError, RegistryWriter};

/// `last_applied` and `last_membership`, written with the registry changes they cover.
pub(super) const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
pub(super) const KEY_APPLIED: &str = "last_applied";
pub(super) const KEY_MEMBERSHIP: &str = "last_membership";

pub(super) type StorageResult<T> = Result<T, StorageError<MemberId>>;
pub(super) type Membership = StoredMembership<MemberId, BasicNode>;
pub(super) type Meta = SnapshotMeta<MemberId, BasicNode>;

/// The state machine of one member. Clones share the database.
#[derive(Clone)]
pub struct StateMachineStore {
    db: RegistryDb,
    db_path: PathBuf,
    snapshot_dir: PathBuf,
    metrics: StorageMetrics,
    checkpoint: Arc<Checkpoint>,
}

impl StateMachineStore {
    /// Opens the registry at `data_dir/state.redb` with snapshots in `data_dir/snapshots`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(data_dir: &Path) -> StorageResult<Self> {
        let snapshot_dir = data_dir.join("snapshots");
        fs::create_dir_all(&snapshot_dir).map_err(|e| StorageIOError::write(any_err(e)))?;
        let db_path = data_dir.join("state.redb");
        // A half-built replacement from an interrupted snapshot install is just dropped.
        let _ = fs::remove_file(db_path.with_extension("redb.new"));
        remove_leftovers(&snapshot_dir);
        let db = RegistryDb::open(&db_path)
            .map_err(|e| StorageIOError::write_state_machine(any_err(e)))?;
        let create_meta = || -> Result<(), redb::Error> {
            let current = db
                .current()
                .map_err(|e| redb::Error::Io(io::Error::other(e)))?;
            let txn = current.begin_write()?;
            txn.open_table(SM_META)?;
            txn.commit()?;
            Ok(())
        };
        create_meta().map_err(|e| StorageIOError::write_state_machine(any_err(e)))?;
        Ok(Self {
            db,
            db_path,
            snapshot_dir,
            metrics: StorageMetrics::default(),
            checkpoint: Arc::default(),
        })
    }

    /// Makes every apply so far durable (see [`Checkpoint`]). Blocking.
    ///
    /// # Errors
    /// Storage errors.
    pub fn checkpoint(&self) -> Result<bool, String> {
        let db = self.db.current().map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let done = self.checkpoint.run(&db).map_err(|e| e.to_string())?;
        if done {
            self.metrics.observe_checkpoint(started.elapsed());
        }
        Ok(done)
    }

    /// Checkpoints every [`CHECKPOINT_INTERVAL`] while anything is not durable, and once more
    /// when `cancel` fires (a clean shutdown leaves nothing to re-apply).
    pub async fn run_checkpoints(self, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = cancel.cancelled() => true,
                _ = tick.tick() => false,
            };
            if stopping || self.checkpoint.is_dirty() {
                let this = self.clone();
                match tokio::task::spawn_blocking(move || this.checkpoint()).await {
                    Ok(Ok(_)) => {}
                    // A failing disk also fails the next apply, which stops Raft and says so.
                    Ok(Err(e)) => tracing::warn!(error = %e, "registry checkpoint failed"),
                    Err(e) => tracing::warn!(error = %e, "registry checkpoint task failed"),
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// The registry database, for request handlers to read from.
    pub fn registry(&self) -> RegistryDb {
        self.db.clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateMachineStore) -> Result<T, StorageIOError<MemberId>> + Send + 'static,
    ) -> StorageResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| StorageIOError::write_state_machine(any_err(e)))?
            .map_err(StorageError::from)
    }

    /// The same store, timing its applies and counting expiries in `metrics`.
    pub fn with_metrics(self, metrics: StorageMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Applies `entries`. If that fails, the handle is reopened before the error goes to
    /// openraft (which stops this member's Raft): a failed redb write would otherwise fail
    /// every later read too. The reopened file is at its last checkpoint, so reads go on from
    /// a slightly older state until the restart re-applies the log.
    fn apply_sync(
        &self,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Result<Vec<RegistryResponse>, StorageIOError<MemberId>> {
        let w = |e: RegistryError| StorageIOError::write_state_machine(any_err(e));
        let db = self.db.current().map_err(w)?;
        let started = std::time::Instant::now();
        let result = Self::apply_entries(&db, entries);
        if result.is_ok() {
            self.checkpoint.mark_dirty();
        }
        self.metrics.observe_apply(started.elapsed());
        if let Ok(responses) = &result {
            let expired: u64 = responses
                .iter()
                .flat_map(|r| &r.outcomes)
                .map(|o| match o {
                    CommandOutcome::Expired { removed, .. } => u64::from(*removed),
                    _ => 0,
                })
                .sum();
            self.metrics.expired.inc_by(expired);
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "applying to the registry failed");
            if let Err(e) = self.db.reopen(db) {
                tracing::error!(error = %e, "registry cannot be read either");
            }
        }
        result
    }

    fn apply_entries(
        db: &Database,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Result<Vec<RegistryResponse>, StorageIOError<MemberId>> {
        let w = |e: RegistryError| StorageIOError::write_state_machine(any_err(e));
        let mut txn = db.begin_write().map_err(|e| w(RegistryError::db(e)))?;
        // Not durable: the log is (see `Checkpoint`).
        txn.set_durability(Durability::None)
            .map_err(|e| w(RegistryError::db(e)))?;
        let mut responses = Vec::with_capacity(entries.len());
        let mut last: Option<(LogId<MemberId>, Option<Membership>)> = None;
        {
            let mut writer = RegistryWriter::open(&txn).map_err(w)?;
            for entry in entries {
                let mut membership = None;
                let response = match entry.payload {
                    EntryPayload::Blank => RegistryResponse::default(),
                    EntryPayload::Normal(batch) => {
                        let outcomes = batch
                            .commands
                            .iter()
                            .map(|c| writer.apply(batch.now_ms, c))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| StorageIOError::apply(entry.log_id, any_err(e)))?;
                        RegistryResponse { outcomes }
                    }
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), m));
                        RegistryResponse::default()
                    }
                };
                let keep = last.and_then(|(_, m)| m);
                last = Some((entry.log_id, membership.or(keep)));
                responses.push(response);
            }
        }
        if let Some((log_id, membership)) = last {
            let mut meta = txn
                .open_table(SM_META)
                .map_err(|e| w(RegistryError::db(e)))?;
            put_meta(&mut meta, KEY_APPLIED, &Some(log_id))?;
            if let Some(m) = membership {
                put_meta(&mut meta, KEY_MEMBERSHIP, &m)?;
            }
        }
        txn.commit().map_err(|e| w(RegistryError::db(e)))?;
        Ok(responses)
    }
}

pub(super) fn put_meta<T: Serialize>(
    table: &mut redb::Table<&'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StorageIOError<MemberId>> {
    let bytes = rmp_serde::to_vec_named(value)
        .map_err(|e| StorageIOError::write_state_machine(any_err(e)))?;
    table
        .insert(key, bytes.as_slice())
        .map_err(|e| StorageIOError::write_state_machine(any_err(e)))?;
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<MemberId>>, Membership)> {
        self.blocking(|s| {
            let r = |e: String| StorageIOError::read_state_machine(any_err(e));
            let db = s.db.current().map_err(|e| r(e.to_string()))?;
            let txn = db.begin_read().map_err(|e| r(e.to_string()))?;
            applied_in(&txn).map_err(r)
        })
        .await
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<RegistryResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        self.blocking(move |s| s.apply_sync(entries)).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder::new(
            self.db.clone(),
            self.snapshot_dir.clone(),
            self.checkpoint.clone(),
        )
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<SnapshotData>> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self
            .snapshot_dir
            .join(format!("incoming-{stamp}{RECEIVING_SUFFIX}"));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, any_err(e)))?;
        Ok(Box::new(SnapshotData::receiving(file, path)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotData>,
    ) -> StorageResult<()> {
        let meta = meta.clone();
        let sig = meta.signature();
        let (file, path) = match snapshot.into_received() {
            Ok(received) => received,
            Err(mut other) => {
                // Not data this member received: copy it into a file of its own first.
                let e =
                    |e: io::Error| StorageIOError::write_snapshot(Some(sig.clone()), any_err(e));
                let mut into = self.begin_receiving_snapshot().await?;
                other.seek(io::SeekFrom::Start(0)).await.map_err(e)?;
                tokio::io::copy(&mut other, &mut *into).await.map_err(e)?;
                into.shutdown().await.map_err(e)?;
                into.into_received().map_err(|_| {
                    StorageIOError::write_snapshot(
                        Some(sig.clone()),
                        any_err("begin_receiving_snapshot made no file to receive into"),
                    )
                })?
            }
        };
        let file = file.into_std().await;
        tracing::info!(snapshot = %meta.snapshot_id, "installing snapshot");
        self.blocking(move |s| install_received(&s.db, &s.db_path, &meta, file, &path))
            .await
    }

    /// The registry as it is now, made durable first: openraft also uses this meta at start
    /// (after re-applying the log), and it lets the log below it be purged. Cheap on the
    /// state machine worker: the copy is written only if the data is read (to send it).
    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let err = |e: String| StorageIOError::read_snapshot(None, any_err(e));
        let txn = self
            .db
            .current()
            .map_err(|e| err(e.to_string()))?
            .begin_read()
            .map_err(|e| err(e.to_string()))?;
        let snapshot = self
            .blocking(move |s| durable_snapshot(txn, &s.db, &s.checkpoint, &s.snapshot_dir))
            .await?;
        Ok(snapshot.meta.last_log_id.is_some().then_some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::raft::LogStore;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
        async fn build(&self) -> StorageResult<(tempfile::TempDir, LogStore, StateMachineStore)> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(any_err(e)))?;
            let log = LogStore::open(&dir.path().join("raft-log.redb"))?;
            let sm = StateMachineStore::open(dir.path())?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn storage_passes_openraft_suite() -> Result<(), StorageError<MemberId>> {
        Suite::test_all(Builder)
    }
}
