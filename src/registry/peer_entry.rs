//! [`PeerEntry`]: what the registry stores under one address.

use serde::{Deserialize, Serialize};

use crate::record::PeerRecord;

/// An unsigned record registered through the seed chapter's JSON-lines protocol.
///
/// It can never overwrite or remove a signed record, and only the IP that registered it may
/// remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyRecord {
    pub address: String,
    /// The IP address of the connection that registered it.
    pub registered_from: String,
    pub expires_at_ms: u64,
}

/// One registry entry, keyed by its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerEntry {
    Signed(PeerRecord),
    Legacy(LegacyRecord),
}

impl PeerEntry {
    pub fn address(&self) -> &str {
        match self {
            Self::Signed(r) => &r.address,
            Self::Legacy(r) => &r.address,
        }
    }

    pub fn expires_at_ms(&self) -> u64 {
        match self {
            Self::Signed(r) => r.expires_at_ms,
            Self::Legacy(r) => r.expires_at_ms,
        }
    }

    /// Whether the entry is still valid at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms() > now_ms
    }

    pub fn as_signed(&self) -> Option<&PeerRecord> {
        match self {
            Self::Signed(r) => Some(r),
            Self::Legacy(_) => None,
        }
    }
}
