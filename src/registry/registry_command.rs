//! [`RegistryCommand`]: the changes Raft replicates, batched into [`RegistryBatch`] entries.

use serde::{Deserialize, Serialize};

use super::LegacyLimits;
use crate::record::{Deregistration, PeerRecord};
use crate::wire::ErrorReply;

/// One Raft log entry's payload: many commands, group-committed together.
///
/// `now_ms` is stamped by the member that proposed the batch, so that applying it (which
/// compares expiries) gives the same result on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryBatch {
    pub now_ms: u64,
    pub commands: Vec<RegistryCommand>,
}

/// A change to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryCommand {
    /// Register or renew a signed record (verified before it was proposed).
    Register(PeerRecord),
    /// Register an unsigned address from the seed's protocol. `limits` are the proposing
    /// member's quotas, so every replica refuses the same registrations.
    RegisterLegacy {
        address: String,
        source_ip: String,
        expires_at_ms: u64,
        #[serde(default)]
        limits: LegacyLimits,
    },
    /// Remove a signed record, on its owner's signed request.
    Deregister(Deregistration),
    /// Remove an unsigned address, on request from the IP that registered it.
    RemoveLegacy { address: String, source_ip: String },
    /// Drop up to `limit` records whose expiry is at or before the batch's `now_ms`.
    Expire { limit: u32 },
}

/// What applying one command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Stored; `replaced` if it took the place of an older record at that address.
    Registered {
        replaced: bool,
    },
    /// A legacy register found the address already present (its expiry is refreshed if it is
    /// a legacy record; a signed record is left alone).
    AlreadyRegistered,
    Removed,
    Expired {
        removed: u32,
        more: bool,
    },
    Refused(ErrorReply),
}
