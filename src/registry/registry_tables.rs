//! The redb tables of the registry. Both the writer and the reader open these.

use redb::TableDefinition;

/// address → the compact row of a [`super::StoredEntry`].
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");
/// (expires_at_ms, address): drives expiry without scanning every record.
pub const BY_EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("peers_by_expiry");
/// (scope, slot) → member: the dense sets of the sampling index (see [`super::group_index`]).
pub const GROUP_SLOTS: TableDefinition<(&[u8], u64), &[u8]> = TableDefinition::new("group_slots");
/// (scope, group) → slot: the reverse of [`GROUP_SLOTS`] for the two levels of groups, so a
/// removal can free its slot (an entry's slot is in its row).
pub const GROUP_SLOT_OF: TableDefinition<(&[u8], &[u8]), u64> =
    TableDefinition::new("group_slot_of");
/// scope → number of members (absent when empty).
pub const GROUP_SIZES: TableDefinition<&[u8], u64> = TableDefinition::new("group_sizes");
/// address → (): signed records that no member has verified yet, the leader's dial-back
/// queue (it walks this table; the replicated state says who still needs a dial).
pub const UNVERIFIED: TableDefinition<&str, ()> = TableDefinition::new("peers_unverified");
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
/// no tombstones (it had no marker); 2 added the slot index and tombstones; 3 replaced the
/// flat slot index with the per-pool group index and stores [`super::StoredEntry`] rows
/// (subnet group, verified flag); 4 keeps those rows compact (positional, without the
/// address, node id or a group the address gives) and keys the group index with bytes.
pub const FORMAT_VERSION: u64 = 4;
