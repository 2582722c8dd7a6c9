//! The peer registry: the replicated state that Raft commands change, kept in redb tables so
//! that millions of records never have to sit in memory.
//!
//! Layout:
//! - [`peer_entry`] — what is served per address (a signed record, or a legacy unsigned one).
//! - [`stored_entry`] — what is stored per address: the entry, its subnet group, verified.
//! - [`host_group`] — the subnet groups an address counts in (names by resolved address).
//! - [`pool`] — the node and legacy sampling pools, which never mix.
//! - [`registry_command`] — the commands Raft replicates and their outcomes.
//! - [`registry_writer`] — applies commands inside a redb write transaction (deterministic).
//! - [`entry_store`] — an address's rows and every index over them, changed together.
//! - [`group_index`] — per pool, dense slots over coarse groups, fine groups and entries,
//!   kept by the writer, drawn from by samples.
//! - [`legacy_quota`] — legacy records held per source IP and subnet, and their limits.
//! - [`tombstones`] — a node's seq high-water mark after its record is gone (replay defence).
//! - [`registry_reader`] — sampling, paging and lookups inside a redb read transaction.
//! - [`peer_sampler`] — the sampling algorithm: a group, a group within it, an entry.
//! - [`exclude_set`] — a sample's capped exclude list.
//! - [`snapshot_item`] — what a snapshot stream carries (entries with slots, tombstones).
//! - [`registry_db`] — the shared, swappable handle to the registry database.
//! - [`registry_tables`] — the table definitions and the format version.
//! - [`registry_census`] — signed/legacy counts and addresses per subnet group, for
//!   metrics and the status page.

pub mod entry_store;
pub mod exclude_set;
pub mod group_index;
pub mod host_group;
pub mod legacy_quota;
pub mod peer_entry;
pub mod peer_sampler;
pub mod pool;
pub mod registry_census;
pub mod registry_command;
pub mod registry_db;
pub mod registry_reader;
pub mod registry_tables;
pub mod registry_writer;
pub mod snapshot_item;
pub mod stored_entry;
pub mod tombstones;

#[cfg(test)]
mod tests;

pub use exclude_set::{ExcludeError, ExcludeSet, MAX_EXCLUDE};
pub use host_group::HostGroup;
pub use legacy_quota::{LegacyLimits, LegacyQuota};
pub use peer_entry::{LegacyRecord, PeerEntry, MAX_ENCODED_PEER_ENTRY};
pub use pool::Pool;
pub use registry_census::RegistryCensus;
pub use registry_command::{CommandOutcome, RegistryBatch, RegistryCommand};
pub use registry_db::RegistryDb;
pub use registry_reader::RegistryReader;
pub use registry_writer::RegistryWriter;
pub use snapshot_item::SnapshotItem;
pub use stored_entry::StoredEntry;
pub use tombstones::Tombstone;

/// Default number of peers in a GET_PEERS sample.
pub const DEFAULT_SAMPLE_SIZE: usize = 100;
/// Largest GET_PEERS sample served.
pub const MAX_SAMPLE_SIZE: usize = 1000;
/// Largest page of the operator listing.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A registry read or write failed in the store underneath.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry storage error: {0}")]
    Storage(#[from] redb::Error),
    #[error("corrupt registry entry {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The database was written with another table layout (an older peerchain).
    #[error(
        "registry database has format {found}, this peerchain reads format {expected}: it was \
         written by another peerchain version; run that version, or move the data directory \
         aside and start afresh"
    )]
    Format { found: u64, expected: u64 },
    /// The database could not be opened again after a storage failure.
    #[error("registry storage failed and could not be reopened: {0}")]
    Reopen(String),
}

impl RegistryError {
    /// Wraps any redb error.
    pub fn db(e: impl Into<redb::Error>) -> Self {
        Self::Storage(e.into())
    }

    /// Whether the handle itself has failed (an earlier write failed, or it was closed by a
    /// reopen): opening the file again may help, retrying on the same handle never does.
    pub fn is_failed_handle(&self) -> bool {
        matches!(
            self,
            Self::Storage(redb::Error::PreviousIo | redb::Error::DatabaseClosed)
        )
    }
}
