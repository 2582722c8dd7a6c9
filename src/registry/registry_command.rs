//! [`RegistryCommand`]: the changes Raft replicates, batched into [`RegistryBatch`] entries.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::LegacyLimits;
use crate::record::{Deregistration, NodeId, PeerRecord};
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
    /// Register or renew a signed record (its signature checked before it was proposed),
    /// with no resolved host and not verified: what an older member proposed. New members
    /// propose [`RegistryCommand::RegisterSigned`].
    Register(PeerRecord),
    /// Register or renew a signed record (its signature checked before it was proposed).
    RegisterSigned {
        record: PeerRecord,
        /// What the proposing member resolved the record's host name to (`None` for an IP
        /// literal or a name that did not resolve): apply never resolves, so that every
        /// replica puts the entry in the same subnet group.
        #[serde(default)]
        resolved: Option<IpAddr>,
        /// Serve it in node samples without a dial-back (the proposing member runs with
        /// dial-back off). A renewal by the same node at the same address keeps an earlier
        /// verification either way.
        #[serde(default)]
        verified: bool,
    },
    /// Register an unsigned address from the seed's protocol. `limits` are the proposing
    /// member's quotas, so every replica refuses the same registrations.
    RegisterLegacy {
        address: String,
        source_ip: String,
        expires_at_ms: u64,
        /// What the proposing member resolved the host name to (see `RegisterSigned`).
        #[serde(default)]
        resolved: Option<IpAddr>,
        #[serde(default)]
        limits: LegacyLimits,
    },
    /// The leader's dial-back reached `address` and the node there proved `node_id`'s key:
    /// the record (if that node still holds `address` with at least `seq`) joins the node
    /// pool.
    MarkVerified {
        address: String,
        node_id: NodeId,
        seq: u64,
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
    /// Stored; `replaced` if it took the place of an older record at that address;
    /// `moved_from` names the address the same node held until now (a node holds one record,
    /// so registering elsewhere drops it).
    Registered {
        replaced: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved_from: Option<String>,
    },
    /// A legacy register found the address already present (its expiry is refreshed if it is
    /// a legacy record; a signed record is left alone).
    AlreadyRegistered,
    Removed,
    /// A `MarkVerified` found its record and put it in the node pool (or it was already).
    Verified,
    Expired {
        removed: u32,
        more: bool,
    },
    Refused(ErrorReply),
}
