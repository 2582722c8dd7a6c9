//! The redb tables of the registry. Both the writer and the reader open these.

use redb::TableDefinition;
use sha2::{Digest, Sha256};

/// address → MessagePack [`super::PeerEntry`].
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");
/// (expires_at_ms, address): drives expiry without scanning every record.
pub const BY_EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("peers_by_expiry");
/// (sample key, address): a random-looking order to draw samples from.
pub const BY_SAMPLE: TableDefinition<(u64, &str), ()> = TableDefinition::new("peers_by_sample");
/// node id → address of that node's signed record, so a node holds one record at a time.
pub const BY_NODE: TableDefinition<&[u8], &str> = TableDefinition::new("peers_by_node");
/// Counters ("peer_count").
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("registry_counters");

pub const PEER_COUNT: &str = "peer_count";

/// The position of `address` in the sampling order: the first 8 bytes of its sha256, so it is
/// uniformly spread and the same on every replica.
pub fn sample_key(address: &str) -> u64 {
    let digest = Sha256::digest(address.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}
