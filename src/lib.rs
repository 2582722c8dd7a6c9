//! peerchain: blockchain nodes that find each other through a Raft-replicated cluster of
//! bootstrap servers.
//!
//! # Layout
//! - [`wire`] — length-prefixed MessagePack frames and the bootstrap protocol's messages.
//! - [`record`] — node identities and ed25519-signed peer records.
//! - [`registry`] — the peer registry kept in redb tables, and the commands that change it.
//! - [`raft`] — openraft storage (log, state machine, snapshots) and the member network.
//! - [`bootstrap`] — a bootstrap member: accept loop, per-IP and per-subnet client quotas,
//!   request handling, group commit, expiry on cluster time (the voters' median clock), the
//!   seed chapter's JSON-lines protocol.
//! - [`chain`] — proof-of-work blocks and their validation (pure, I/O-free).
//! - [`client`] — the one bootstrap client, with fallback across members.
//! - [`ctl`] — the operator commands behind `peerchain ctl`.
//! - [`node`] — a blockchain node: actix actors for peers, chain sync and mining.
//! - [`devnet`] — a whole local network on loopback (`peerchain devnet`).
//! - [`bench`] — `peerchain bench`, the load generator behind `scripts/bench`.
//! - [`health`] — `peerchain health`, the bounded probe behind container healthchecks.
//! - [`metrics`] — Prometheus metrics of members and nodes (prometheus-client).
//! - [`http`] — the HTTP side port: `/metrics`, `/health`, `/ready`, status pages (axum).
//! - [`config_file`] — reading a `--config` TOML file.

pub mod bench;
pub mod bootstrap;
pub mod chain;
pub mod client;
pub mod config_file;
pub mod ctl;
pub mod devnet;
pub mod health;
pub mod http;
pub mod metrics;
pub mod node;
pub mod raft;
pub mod record;
pub mod registry;
pub mod wire;

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
