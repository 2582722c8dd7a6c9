//! [`StoredEntry`]: what the registry keeps under one address — the entry that is served,
//! plus what only the registry needs: the host's subnet group and whether a member has
//! checked that the signed record's node answers at its address.

use serde::{Deserialize, Serialize};

use super::{HostGroup, PeerEntry, Pool, RegistryError};

/// One row of the `peers` table (MessagePack, named fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub entry: PeerEntry,
    /// The subnet group the entry counts in (its host's IP when it was registered).
    pub group: HostGroup,
    /// For a signed record: a member connected to its address and the node there proved the
    /// record's key (dial-back), or the proposing member ran with dial-back off. Only then is
    /// it in the node pool. Always `false` for legacy records, which never enter that pool.
    pub verified: bool,
}

impl StoredEntry {
    /// The sampling pool the entry is drawn from, if any: unverified signed records are in
    /// none (stored and listed, never sampled).
    pub fn pool(&self) -> Option<Pool> {
        match &self.entry {
            PeerEntry::Legacy(_) => Some(Pool::Legacy),
            PeerEntry::Signed(_) if self.verified => Some(Pool::Node),
            PeerEntry::Signed(_) => None,
        }
    }

    /// Whether a dial-back is still owed: a signed record nobody has verified yet.
    pub fn awaits_dial_back(&self) -> bool {
        matches!(self.entry, PeerEntry::Signed(_)) && !self.verified
    }

    /// The row's bytes.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`] if it cannot be encoded.
    pub fn encode(&self) -> Result<Vec<u8>, RegistryError> {
        rmp_serde::to_vec_named(self).map_err(|e| RegistryError::Corrupt {
            key: self.entry.address().to_string(),
            reason: e.to_string(),
        })
    }

    /// Decodes the row stored under `address`.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`].
    pub fn decode(address: &str, bytes: &[u8]) -> Result<Self, RegistryError> {
        rmp_serde::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
            key: address.to_string(),
            reason: e.to_string(),
        })
    }
}
