//! Raft timing for bootstrap members.
//!
//! openraft 0.9 draws a member's election timeout once, at start. If two survivors draw
//! close values they can split votes again and again; giving each member id its own window,
//! disjoint from every other id's, makes the member with the smaller id always time out first.

use std::sync::Arc;

use openraft::{Config, SnapshotPolicy};

use super::MemberId;

/// Leader heartbeat interval.
pub const HEARTBEAT_INTERVAL_MS: u64 = 150;
/// Start of member 1's election window; larger ids start later.
pub const ELECTION_BASE_MS: u64 = 600;
/// Distance between consecutive ids' windows.
pub const ELECTION_STEP_MS: u64 = 250;
/// Width of each window (smaller than the step, so windows never overlap).
pub const ELECTION_WIDTH_MS: u64 = 200;
/// Ids wrap after this many windows, keeping timeouts bounded for large ids.
pub const ELECTION_WINDOWS: u64 = 8;
/// Entries per AppendEntries RPC.
pub const MAX_PAYLOAD_ENTRIES: u64 = 64;
/// Bytes per snapshot chunk (well below the member frame limit).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 512 * 1024;
/// Log entries kept after a snapshot, so slightly lagging followers catch up from the log.
pub const LOGS_KEPT_AFTER_SNAPSHOT: u64 = 1000;

/// The election window `[min, max)` in milliseconds of member `id`.
pub fn election_window(id: MemberId) -> (u64, u64) {
    let slot = id.saturating_sub(1) % ELECTION_WINDOWS;
    let min = ELECTION_BASE_MS + slot * ELECTION_STEP_MS;
    (min, min + ELECTION_WIDTH_MS)
}

/// The openraft config for member `id`, snapshotting every `snapshot_every` applied entries.
///
/// # Errors
/// openraft's own validation errors.
pub fn raft_config(
    id: MemberId,
    snapshot_every: u64,
) -> Result<Arc<Config>, openraft::ConfigError> {
    let (min, max) = election_window(id);
    let config = Config {
        cluster_name: "peerchain-bootstrap".to_string(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min: min,
        election_timeout_max: max,
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        max_in_snapshot_log_to_keep: LOGS_KEPT_AFTER_SNAPSHOT.min(snapshot_every),
        install_snapshot_timeout: 2_000,
        ..Config::default()
    };
    config.validate().map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_different_ids_never_overlap() {
        for a in 1..=ELECTION_WINDOWS {
            for b in (a + 1)..=ELECTION_WINDOWS {
                let (a0, a1) = election_window(a);
                let (b0, b1) = election_window(b);
                assert!(a1 <= b0 || b1 <= a0, "{a} and {b} overlap");
            }
        }
        assert!(raft_config(3, 100).is_ok());
    }
}
