//! [`SnapshotItem`]: one item of a snapshot stream, so a snapshot carries everything the
//! registry needs to be rebuilt exactly: stored entries (with their subnet group and verified
//! flag, from which the sampling index is rebuilt), and tombstones.

use serde::{Deserialize, Serialize};

use super::tombstones::Tombstone;
use super::RegistryError;
use crate::record::NodeId;

/// One item of a snapshot, MessagePack-encoded with named fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotItem {
    /// A stored entry: its stored bytes (a MessagePack [`super::StoredEntry`]).
    Entry {
        #[serde(with = "serde_bytes")]
        entry: Vec<u8>,
    },
    /// A node's tombstone.
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
        rmp_serde::to_vec_named(self).map_err(|e| RegistryError::Corrupt {
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
