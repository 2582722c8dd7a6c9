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

/// An upper bound on one entry's MessagePack size (a signed record with the longest
/// address); replies that carry entries size their pages with it.
pub const MAX_ENCODED_PEER_ENTRY: usize = 768;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::peer_address::MAX_ADDRESS_LEN;
    use crate::record::NodeIdentity;

    #[test]
    fn the_largest_entry_fits_the_bound() {
        let host = "h".repeat(MAX_ADDRESS_LEN - 6);
        let address = format!("{host}:65535");
        assert_eq!(address.len(), MAX_ADDRESS_LEN);
        let id = NodeIdentity::generate();
        let signed =
            PeerEntry::Signed(id.sign_record("a-network-id", &address, u64::MAX, u64::MAX));
        let legacy = PeerEntry::Legacy(LegacyRecord {
            address: address.clone(),
            registered_from: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            expires_at_ms: u64::MAX,
        });
        for entry in [signed, legacy] {
            let len = rmp_serde::to_vec_named(&entry).expect("encode").len();
            assert!(len <= MAX_ENCODED_PEER_ENTRY, "{len} bytes");
        }
    }
}
