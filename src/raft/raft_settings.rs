//! Raft timing for bootstrap members.
//!
//! openraft 0.9 draws a member's election timeout once, at start. If two survivors draw
//! close values they can split votes again and again; giving each member id its own window,
//! disjoint from every other id's, makes the member with the smaller id always time out first.

use std::sync::Arc;

use openraft::{Config, SnapshotPolicy};

use super::MemberId;

/// Leader heartbeat interval.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// Start of member 1's election window; larger ids start later.
///
/// A failover takes up to two of these windows, not one: openraft 0.9 gives every member a
/// leader lease as long as its own largest election timeout, during which it refuses to
/// vote, so the first candidate is usually refused by the survivor with the later window and
/// wins on its second try. With windows at 600 + 250·slot ms (width 200) a leader kill cost
/// 1.5–2.3 s before the first acknowledged write; these windows halve that.
pub const ELECTION_BASE_MS: u64 = 400;
/// Distance between consecutive ids' windows.
pub const ELECTION_STEP_MS: u64 = 150;
/// Width of each window (smaller than the step, so windows never overlap).
pub const ELECTION_WIDTH_MS: u64 = 100;
/// Ids wrap after this many windows, keeping timeouts bounded for large ids. Two members
/// whose ids share a window (e.g. 1 and 9) are refused: see [`shares_election_window`].
pub const ELECTION_WINDOWS: u64 = 8;
/// Entries per AppendEntries RPC.
pub const MAX_PAYLOAD_ENTRIES: u64 = 64;
/// Room in a frame for an InstallSnapshot request's fields other than its chunk.
const SNAPSHOT_CHUNK_HEADROOM: u64 = 4 * 1024;
/// How long a follower may take to take in one snapshot chunk, in milliseconds.
pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 2_000;
/// Log entries kept after a snapshot, so slightly lagging followers catch up from the log.
/// Under load an entry carries about a hundred registrations, so this is a few seconds of
/// writes (a follower further behind gets the snapshot); at 1,000 the kept log alone was
/// about 30 MB of every member's disk.
pub const LOGS_KEPT_AFTER_SNAPSHOT: u64 = 256;

/// The election window `[min, max)` in milliseconds of member `id`.
pub fn election_window(id: MemberId) -> (u64, u64) {
    let min = ELECTION_BASE_MS + election_slot(id) * ELECTION_STEP_MS;
    (min, min + ELECTION_WIDTH_MS)
}

fn election_slot(id: MemberId) -> u64 {
    id.saturating_sub(1) % ELECTION_WINDOWS
}

/// Whether members `a` and `b` (different ids) would draw their election timeouts from the
/// same window, so that, as the only two survivors, they could split votes forever.
pub fn shares_election_window(a: MemberId, b: MemberId) -> bool {
    a != b && election_slot(a) == election_slot(b)
}

/// The largest snapshot chunk that fits in a `max_frame_length` frame. openraft's chunk is
/// a `Vec<u8>`, which MessagePack writes as an array: up to 2 bytes per byte.
pub fn snapshot_chunk_bytes(max_frame_length: usize) -> u64 {
    (max_frame_length as u64 / 2).saturating_sub(SNAPSHOT_CHUNK_HEADROOM)
}

/// The openraft config for member `id`, snapshotting every `snapshot_every` applied entries,
/// with snapshot chunks that fit in `max_frame_length` frames.
///
/// # Errors
/// openraft's own validation errors.
pub fn raft_config(
    id: MemberId,
    snapshot_every: u64,
    max_frame_length: usize,
) -> Result<Arc<Config>, openraft::ConfigError> {
    let (min, max) = election_window(id);
    let config = Config {
        cluster_name: "peerchain-bootstrap".to_string(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min: min,
        election_timeout_max: max,
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        snapshot_max_chunk_size: snapshot_chunk_bytes(max_frame_length),
        max_in_snapshot_log_to_keep: LOGS_KEPT_AFTER_SNAPSHOT.min(snapshot_every),
        install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
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
        assert!(raft_config(3, 100, crate::wire::DEFAULT_MAX_FRAME_LENGTH).is_ok());
    }

    #[test]
    fn ids_a_window_apart_are_flagged() {
        assert!(shares_election_window(1, 1 + ELECTION_WINDOWS));
        assert!(shares_election_window(11, 3));
        assert!(!shares_election_window(1, 2));
        assert!(!shares_election_window(4, 4));
        for a in 1..=ELECTION_WINDOWS {
            for b in 1..=ELECTION_WINDOWS {
                assert!(!shares_election_window(a, b));
            }
        }
    }

    #[test]
    fn a_full_snapshot_chunk_fits_in_a_frame() {
        use crate::wire::{DEFAULT_MAX_FRAME_LENGTH, MIN_MAX_FRAME_LENGTH};
        for max in [MIN_MAX_FRAME_LENGTH, DEFAULT_MAX_FRAME_LENGTH] {
            let chunk = snapshot_chunk_bytes(max);
            // Worst case: every byte >= 0x80, two bytes each in a MessagePack array.
            let data = vec![0xffu8; chunk as usize];
            let encoded = rmp_serde::to_vec_named(&data).expect("encode");
            assert!(encoded.len() + 1024 < max, "{} vs {max}", encoded.len());
        }
    }
}
