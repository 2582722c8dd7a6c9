//! [`BookEntry`]: what the address book remembers about one address, and [`AddrSource`],
//! how it was learned (which decides whether caps apply and whether it may be forgotten).

use serde::{Deserialize, Serialize};

use crate::record::NodeId;

/// How an address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrSource {
    /// `--peers` in the configuration: never forgotten, never refused by a cap.
    Config,
    /// GET_PEERS from the bootstrap cluster.
    Bootstrap,
    /// An ADDR message from a peer.
    Gossip,
    /// A peer that connected to us and told its listen address.
    Inbound,
}

/// What the book remembers about one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    pub node_id: Option<NodeId>,
    pub source: AddrSource,
    pub added_ms: u64,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    pub failures: u32,
    /// Not dialed before this time (backoff after failures).
    pub next_attempt_ms: u64,
    /// For gossip: the /16 (IPv6 /32) of the peer that told us, whose share it counts in.
    #[serde(default)]
    pub learned_from: Option<String>,
}

impl BookEntry {
    /// A fresh entry, never dialed.
    pub fn new(source: AddrSource, learned_from: Option<String>, now_ms: u64) -> Self {
        Self {
            node_id: None,
            source,
            added_ms: now_ms,
            last_success_ms: None,
            last_failure_ms: None,
            failures: 0,
            next_attempt_ms: 0,
            learned_from,
        }
    }

    /// Worth replacing by a newcomer of its group: never reached and already failing.
    pub(crate) fn is_terrible(&self) -> bool {
        self.source != AddrSource::Config && self.last_success_ms.is_none() && self.failures > 0
    }
}
