//! [`LogStore`]: the Raft log in its own redb file, so log appends never wait behind
//! state-machine writes (redb has one writer per file).
//!
//! Every append, truncate, purge and vote is a redb transaction committed with
//! `Durability::Immediate`: openraft is told an append is flushed only after the commit is
//! on disk. The committed log id is not fsynced: openraft's storage-v2 treats it as a hint
//! (a restart that finds an older one learns the rest from the leader, or from the entries'
//! own commit when this member leads), and saving it durably cost one more fsync per entry.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use crate::metrics::StorageMetrics;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

use super::{any_err, MemberId, TypeConfig};

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// Page cache of the log database: recent entries are what is read back (for replication,
/// right after they are appended), and under load an entry is about 30 KB.
const LOG_CACHE_BYTES: usize = 4 * 1024 * 1024;

type StorageResult<T> = Result<T, StorageError<MemberId>>;

/// The durable Raft log of one member. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    metrics: StorageMetrics,
}

impl LogStore {
    /// Opens or creates the log at `path`.
    ///
    /// # Errors
    /// Storage errors from redb (including a file locked by another process).
    pub fn open(path: &Path) -> StorageResult<Self> {
        let db = Database::builder()
            .set_cache_size(LOG_CACHE_BYTES)
            .create(path)
            .map_err(|e| StorageIOError::write_logs(any_err(e)))?;
        let txn = db
            .begin_write()
            .map_err(|e| StorageIOError::write_logs(any_err(e)))?;
        txn.open_table(LOGS)
            .map_err(|e| StorageIOError::write_logs(any_err(e)))?;
        txn.open_table(META)
            .map_err(|e| StorageIOError::write_logs(any_err(e)))?;
        txn.commit()
            .map_err(|e| StorageIOError::write_logs(any_err(e)))?;
        Ok(Self {
            db: Arc::new(db),
            metrics: StorageMetrics::default(),
        })
    }

    /// The same store, timing its appends and noting its commit index in `metrics`.
    pub fn with_metrics(self, metrics: StorageMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Runs blocking redb work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StorageIOError<MemberId>> + Send + 'static,
    ) -> StorageResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StorageIOError::read_logs(any_err(e)))?
            .map_err(StorageError::from)
    }

    async fn write_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> StorageResult<()> {
        let bytes =
            rmp_serde::to_vec_named(value).map_err(|e| StorageIOError::write(any_err(e)))?;
        self.blocking(move |db| {
            let w = |e: redb::Error| StorageIOError::write(any_err(e));
            let mut txn = db.begin_write().map_err(|e| w(e.into()))?;
            txn.set_durability(durability).map_err(|e| w(e.into()))?;
            txn.open_table(META)
                .map_err(|e| w(e.into()))?
                .insert(key, bytes.as_slice())
                .map_err(|e| w(e.into()))?;
            txn.commit().map_err(|e| w(e.into()))
        })
        .await
    }

    async fn read_meta<T: DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> StorageResult<Option<T>> {
        self.blocking(move |db| read_meta_sync(db, key)).await
    }
}

fn read_meta_sync<T: DeserializeOwned>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, StorageIOError<MemberId>> {
    let r = |e: redb::Error| StorageIOError::read(any_err(e));
    let txn = db.begin_read().map_err(|e| r(e.into()))?;
    let table = txn.open_table(META).map_err(|e| r(e.into()))?;
    match table.get(key).map_err(|e| r(e.into()))? {
        None => Ok(None),
        Some(v) => rmp_serde::from_slice(v.value())
            .map(Some)
            .map_err(|e| StorageIOError::read(any_err(e))),
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => Some(e.saturating_add(1)),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let (start, end) = bounds(&range);
        self.blocking(move |db| {
            let r = |e: redb::Error| StorageIOError::read_logs(any_err(e));
            let txn = db.begin_read().map_err(|e| r(e.into()))?;
            let table = txn.open_table(LOGS).map_err(|e| r(e.into()))?;
            let rows = match end {
                Some(end) if end <= start => return Ok(Vec::new()),
                Some(end) => table.range(start..end),
                None => table.range(start..),
            }
            .map_err(|e| r(e.into()))?;
            let mut out = Vec::new();
            for row in rows {
                let (k, v) = row.map_err(|e| r(e.into()))?;
                let entry = rmp_serde::from_slice(v.value())
                    .map_err(|e| StorageIOError::read_log_at_index(k.value(), any_err(e)))?;
                out.push(entry);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<MemberId>> = self.read_meta(KEY_LAST_PURGED).await?;
        let last = self
            .blocking(|db| {
                let r = |e: redb::Error| StorageIOError::read_logs(any_err(e));
                let txn = db.begin_read().map_err(|e| r(e.into()))?;
                let table = txn.open_table(LOGS).map_err(|e| r(e.into()))?;
                let last = match table.last().map_err(|e| r(e.into()))? {
                    None => None,
                    Some((k, v)) => Some(
                        rmp_serde::from_slice::<Entry<TypeConfig>>(v.value())
                            .map(|e| e.log_id)
                            .map_err(|e| {
                                StorageIOError::read_log_at_index(k.value(), any_err(e))
                            })?,
                    ),
                };
                Ok(last)
            })
            .await?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<MemberId>) -> StorageResult<()> {
        self.write_meta(KEY_VOTE, vote, Durability::Immediate).await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<MemberId>>> {
        self.read_meta(KEY_VOTE).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<MemberId>>) -> StorageResult<()> {
        self.write_meta(KEY_COMMITTED, &committed, Durability::None)
            .await?;
        self.metrics.set_committed(committed.map(|c| c.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<MemberId>>> {
        let committed = self
            .read_meta::<Option<LogId<MemberId>>>(KEY_COMMITTED)
            .await?
            .flatten();
        self.metrics.set_committed(committed.map(|c| c.index));
        Ok(committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Positional MessagePack: field names cost a third of an entry of registrations.
        // Reads accept both forms, so a log written with named fields still replays.
        let encoded = entries
            .into_iter()
            .map(|e| {
                rmp_serde::to_vec(&e)
                    .map(|b| (e.log_id.index, b))
                    .map_err(|err| StorageIOError::write_log_entry(e.log_id, any_err(err)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: usize = encoded.iter().map(|(_, b)| b.len()).sum();
        self.metrics.log_appended_bytes.inc_by(bytes as u64);
        let started = std::time::Instant::now();
        let result = self
            .blocking(move |db| {
                let w = |e: redb::Error| StorageIOError::write_logs(any_err(e));
                let mut txn = db.begin_write().map_err(|e| w(e.into()))?;
                txn.set_durability(Durability::Immediate)
                    .map_err(|e| w(e.into()))?;
                {
                    let mut table = txn.open_table(LOGS).map_err(|e| w(e.into()))?;
                    for (index, bytes) in &encoded {
                        table
                            .insert(*index, bytes.as_slice())
                            .map_err(|e| w(e.into()))?;
                    }
                }
                txn.commit().map_err(|e| w(e.into()))
            })
            .await;
        self.metrics.observe_fsync(started.elapsed());
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId<MemberId>) -> StorageResult<()> {
        self.blocking(move |db| {
            let w = |e: redb::Error| StorageIOError::write_logs(any_err(e));
            let txn = db.begin_write().map_err(|e| w(e.into()))?;
            txn.open_table(LOGS)
                .map_err(|e| w(e.into()))?
                .retain_in(log_id.index.., |_, _| false)
                .map_err(|e| w(e.into()))?;
            txn.commit().map_err(|e| w(e.into()))
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<MemberId>) -> StorageResult<()> {
        let bytes =
            rmp_serde::to_vec_named(&log_id).map_err(|e| StorageIOError::write(any_err(e)))?;
        self.blocking(move |db| {
            let w = |e: redb::Error| StorageIOError::write_logs(any_err(e));
            let txn = db.begin_write().map_err(|e| w(e.into()))?;
            txn.open_table(META)
                .map_err(|e| w(e.into()))?
                .insert(KEY_LAST_PURGED, bytes.as_slice())
                .map_err(|e| w(e.into()))?;
            txn.open_table(LOGS)
                .map_err(|e| w(e.into()))?
                .retain_in(..=log_id.index, |_, _| false)
                .map_err(|e| w(e.into()))?;
            txn.commit().map_err(|e| w(e.into()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::registry::RegistryBatch;

    #[test]
    fn entries_written_with_named_fields_still_decode() {
        let entry: Entry<TypeConfig> = Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 7),
            payload: EntryPayload::Normal(RegistryBatch {
                now_ms: 11,
                commands: Vec::new(),
            }),
        };
        for bytes in [
            rmp_serde::to_vec_named(&entry).expect("named"),
            rmp_serde::to_vec(&entry).expect("positional"),
        ] {
            let back: Entry<TypeConfig> = rmp_serde::from_slice(&bytes).expect("decode");
            assert_eq!(back.log_id, entry.log_id);
            assert!(matches!(back.payload, EntryPayload::Normal(ref b) if b.now_ms == 11));
        }
    }
}
