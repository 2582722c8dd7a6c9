//! [`SnapshotItem`]: one item of a snapshot stream, so a snapshot carries everything the
//! registry needs to be rebuilt exactly: stored entries (with their subnet group and verified
//! flag, from which the sampling index is rebuilt), and tombstones.

use serde::{Deserialize, Serialize};

use super::tombstones::Tombstone;
use super::RegistryError;
use crate::record::NodeId;

/// One item of a snapshot, positional MessagePack (a snapshot holds a million of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotItem {
    /// A stored entry: its address and its row's bytes (see [`super::StoredEntry`]).
    /// (One-letter names: rmp-serde writes the variant's name in every item.)
    #[serde(rename = "e")]
    Entry {
        address: String,
        #[serde(with = "serde_bytes")]
        row: Vec<u8>,
    },
    /// A node's tombstone.
    #[serde(rename = "t")]
    Tombstone {
        node_id: NodeId,
        tombstone: Tombstone,
    },
}

impl SnapshotItem {
    /// The item's bytes in a snapshot.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`] if it cannot be encoded.
    pub fn encode(&self) -> Result<Vec<u8>, RegistryError> {
        rmp_serde::to_vec(self).map_err(|e| RegistryError::Corrupt {
            key: "<snapshot item>".to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads an item from a snapshot.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`] if the bytes are not an item.
    pub fn decode(bytes: &[u8]) -> Result<Self, RegistryError> {
        rmp_serde::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
            key: "<snapshot item>".to_string(),
            reason: e.to_string(),
        })
    }
}
