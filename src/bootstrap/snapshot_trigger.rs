//! [`SnapshotTrigger`]: asks for a snapshot once the log has grown by [`LOG_BYTES_PER_SNAPSHOT`]
//! since the last one, whatever its entry count.
//!
//! openraft's policy counts entries (`snapshot_every`, default 10,000). With group commit an
//! entry carries from one to 256 registrations, so 10,000 entries are anywhere from 3 MB to
//! 700 MB of log: under a fast fill the log of a member held a million registrations (570 MB)
//! and no snapshot had been taken. A snapshot lets openraft purge the log below it, and the
//! log file's freed pages are reused, so this bounds the log on disk to about this many bytes
//! plus the entries kept after a snapshot. A snapshot costs a checkpoint, not a copy of the
//! registry (see `raft::snapshot_data`), so it can come this often.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::MemberMetrics;
use crate::raft::RegistryRaft;

/// Log bytes appended since the last snapshot that make this member take a new one.
pub const LOG_BYTES_PER_SNAPSHOT: u64 = 8 * 1024 * 1024;
/// How often the log's growth is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Watches one member's log growth and snapshots when it is due.
pub struct SnapshotTrigger {
    raft: RegistryRaft,
    metrics: MemberMetrics,
    cancel: CancellationToken,
}

impl SnapshotTrigger {
    pub fn new(raft: RegistryRaft, metrics: MemberMetrics, cancel: CancellationToken) -> Self {
        Self {
            raft,
            metrics,
            cancel,
        }
    }

    /// Runs until cancelled.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        // Bytes appended when the snapshot this member last saw (or asked for) began.
        let mut baseline = self.metrics.storage.log_appended_bytes.get();
        let mut seen = self.raft.metrics().borrow().snapshot;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let appended = self.metrics.storage.log_appended_bytes.get();
            let snapshot = self.raft.metrics().borrow().snapshot;
            if snapshot != seen {
                // A snapshot finished (ours, one openraft took by entry count, or one the
                // leader installed): the log below it is gone or going.
                seen = snapshot;
                baseline = appended;
                continue;
            }
            if appended.saturating_sub(baseline) < LOG_BYTES_PER_SNAPSHOT {
                continue;
            }
            tracing::info!(
                log_bytes_since_snapshot = appended - baseline,
                "log has grown past {LOG_BYTES_PER_SNAPSHOT} bytes since the last snapshot: taking one"
            );
            if let Err(e) = self.raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "could not ask for a snapshot");
            }
            // Not again until this one is done (or another LOG_BYTES_PER_SNAPSHOT later).
            baseline = appended;
        }
    }
}
