//! [`StorageMetrics`]: what the Raft storage of a member measures about itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

use super::latency_buckets;

/// `u64::MAX` in [`StorageMetrics::committed_index`] means "nothing committed yet".
const NONE: u64 = u64::MAX;

/// Handles the log store and state machine push into. Clones share their values. The default
/// is a set of unregistered metrics, for stores opened outside a running member (tests,
/// tools).
#[derive(Clone)]
pub struct StorageMetrics {
    /// Time of each durable log append (redb commit with `Durability::Immediate`): the fsync
    /// on every write's latency path, like etcd's `wal_fsync_duration_seconds`.
    pub log_fsync: Histogram,
    /// Time of each state-machine apply (one redb transaction per run of entries).
    pub apply: Histogram,
    /// Time of each checkpoint that made applies durable (an fsync off the write path).
    pub checkpoint: Histogram,
    /// Records and tombstones removed by `Expire` commands applied here.
    pub expired: prometheus_client::metrics::counter::Counter,
    /// Bytes of encoded entries appended to the log (what a snapshot lets the log drop).
    pub log_appended_bytes: prometheus_client::metrics::counter::Counter,
    /// The last commit index openraft saved, which openraft's metrics do not carry.
    committed: Arc<AtomicU64>,
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self {
            log_fsync: Histogram::new(latency_buckets()),
            apply: Histogram::new(latency_buckets()),
            checkpoint: Histogram::new(latency_buckets()),
            expired: Default::default(),
            log_appended_bytes: Default::default(),
            committed: Arc::new(AtomicU64::new(NONE)),
        }
    }
}

impl StorageMetrics {
    /// Records one log append that took `d`.
    pub fn observe_fsync(&self, d: Duration) {
        self.log_fsync.observe(d.as_secs_f64());
    }

    /// Records one apply that took `d`.
    pub fn observe_apply(&self, d: Duration) {
        self.apply.observe(d.as_secs_f64());
    }

    /// Records one checkpoint that took `d`.
    pub fn observe_checkpoint(&self, d: Duration) {
        self.checkpoint.observe(d.as_secs_f64());
    }

    /// Notes the commit index openraft just saved.
    pub fn set_committed(&self, index: Option<u64>) {
        self.committed
            .store(index.unwrap_or(NONE), Ordering::Relaxed);
    }

    /// The last commit index saved on this member, if any.
    pub fn committed_index(&self) -> Option<u64> {
        match self.committed.load(Ordering::Relaxed) {
            NONE => None,
            i => Some(i),
        }
    }
}
