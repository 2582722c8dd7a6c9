//! The redb tables of the registry. Both the writer and the reader open these.

use redb::TableDefinition;

/// address → MessagePack [`super::PeerEntry`].
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");
/// (expires_at_ms, address): drives expiry without scanning every record.
pub const BY_EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("peers_by_expiry");
/// slot → address, with slots exactly `0..n` for `n` stored entries: a sample draws uniform
/// random slots (see [`super::slot_index`]).
pub const BY_SLOT: TableDefinition<u64, &str> = TableDefinition::new("peers_by_slot");
/// address → slot: the reverse of [`BY_SLOT`], so a removal can free its slot.
pub const SLOT_OF: TableDefinition<&str, u64> = TableDefinition::new("peers_slot_of");
/// node id → address of that node's signed record, so a node holds one record at a time.
pub const BY_NODE: TableDefinition<&[u8], &str> = TableDefinition::new("peers_by_node");
/// node id → (highest seq dropped, expires_at_ms): a node's seq high-water mark that outlives
/// its record (see [`super::tombstones`]).
pub const TOMBSTONES: TableDefinition<&[u8], (u64, u64)> = TableDefinition::new("tombstones");
/// (expires_at_ms, node id): sweeps tombstones the way [`BY_EXPIRY`] sweeps records.
pub const TOMBSTONES_BY_EXPIRY: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("tombstones_by_expiry");
/// Counters ("peer_count").
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("registry_counters");
/// Format marker ("format_version"), so a file written by another layout is refused.
pub const REGISTRY_META: TableDefinition<&str, u64> = TableDefinition::new("registry_meta");

pub const PEER_COUNT: &str = "peer_count";
pub const FORMAT_VERSION_KEY: &str = "format_version";

/// The table layout this build reads and writes. 1 was the layout with `peers_by_sample` and
/// no tombstones (it had no marker); 2 added the slot index and tombstones.
pub const FORMAT_VERSION: u64 = 2;
