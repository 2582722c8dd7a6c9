//! [`TypeConfig`]: openraft's type parameters for the peer registry.

use serde::{Deserialize, Serialize};

use crate::registry::{CommandOutcome, RegistryBatch};

/// The reply to one applied log entry: one outcome per command of its batch (empty for
/// membership and blank entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryResponse {
    pub outcomes: Vec<CommandOutcome>,
}

openraft::declare_raft_types!(
    /// Raft types of the bootstrap cluster: batches of registry commands in, outcomes out,
    /// snapshots as views of the registry, written out only to be sent.
    pub TypeConfig:
        D = RegistryBatch,
        R = RegistryResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = super::snapshot_data::SnapshotData,
);

/// The Raft handle of a bootstrap member.
pub type RegistryRaft = openraft::Raft<TypeConfig>;
