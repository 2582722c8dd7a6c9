//! [`Pool`]: the two sampling pools that never mix.
//!
//! Native `GetPeers` samples draw only from the node pool (signed records whose address a
//! member verified); the seed chapter's `GET_PEERS` draws only from the legacy pool (its
//! unsigned records), because the chapter's nodes speak the chapter's blockchain protocol,
//! not ours, and ours would only waste a newcomer's connection slots on them.

use serde::{Deserialize, Serialize};

/// A sampling pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Verified signed records: what native `GetPeers` serves.
    Node,
    /// Unsigned records from the seed's protocol: what its `GET_PEERS` serves.
    Legacy,
}

impl Pool {
    /// The scope key of the pool's top level in the group index.
    pub fn key(self) -> &'static [u8] {
        match self {
            Self::Node => b"n",
            Self::Legacy => b"l",
        }
    }
}
