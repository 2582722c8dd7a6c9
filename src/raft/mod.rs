//! The Raft side of a bootstrap member: plain tokio, no actors, testable on its own.
//!
//! Layout:
//! - [`type_config`] — openraft's type parameters for the registry.
//! - [`log_store`] — the Raft log, vote and committed id in `raft-log.redb`.
//! - [`state_machine_store`] — the applied registry in `state.redb`, plus snapshots.
//! - [`checkpoint`] — makes the state machine's non-durable applies durable.
//! - [`snapshot_builder`] — a snapshot: the registry as one read transaction sees it, durable.
//! - [`snapshot_data`] — a snapshot's bytes, written from that view only to be sent.
//! - [`snapshot_dir`] — leftovers in the snapshot directory.
//! - [`snapshot_file`] — the streamed snapshot file format.
//! - [`snapshot_install`] — builds a new registry database from a received snapshot.
//! - [`raft_network`] — RPCs to other members over authenticated frame connections.
//! - [`member_auth`] — the HMAC challenge that proves knowledge of the cluster secret.
//! - [`raft_settings`] — timeouts, including per-member disjoint election windows.

#![allow(clippy::result_large_err)] // openraft fixes the (large) StorageError type of its traits.

pub mod checkpoint;
pub mod log_store;
pub mod member_auth;
pub mod raft_network;
pub mod raft_settings;
pub mod snapshot_builder;
pub mod snapshot_data;
pub mod snapshot_dir;
pub mod snapshot_file;
pub mod snapshot_install;
pub mod state_machine_store;
pub mod type_config;

pub use log_store::LogStore;
pub use member_auth::ClusterSecret;
pub use raft_network::NetworkFactory;
pub use state_machine_store::StateMachineStore;
pub use type_config::{RegistryRaft, RegistryResponse, TypeConfig};

/// A member's Raft id.
pub type MemberId = u64;

/// Wraps a displayable error so openraft's error helpers accept it.
pub(crate) fn any_err(e: impl std::fmt::Display) -> openraft::AnyError {
    openraft::AnyError::error(e.to_string())
}
