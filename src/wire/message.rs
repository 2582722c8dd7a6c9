//! The bootstrap protocol: every [`Request`] a client, node or member may send, and every
//! [`Response`]. `docs/protocol.md` describes each with its errors.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::ErrorReply;
use crate::raft::TypeConfig;
use crate::record::{Deregistration, PeerRecord};
use crate::registry::{CommandOutcome, PeerEntry, RegistryCommand};

/// Version of this protocol, reported in [`ClusterInfo`].
pub const WIRE_VERSION: u16 = 1;

/// One frame's body: a caller-chosen id echoed in the reply, and the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

/// A request to a bootstrap member.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// Register or renew a signed record. Replies `Registered`.
    Register { record: PeerRecord },
    /// Remove the caller's own signed record. Replies `Removed`.
    Deregister { deregistration: Deregistration },
    /// A random, subnet-diverse sample of live peers. Replies `Peers`.
    GetPeers {
        /// How many (default 100, at most 1,000).
        limit: Option<u32>,
        /// Addresses left out (the caller's own).
        #[serde(default)]
        exclude: Vec<String>,
        /// Read through the leader after confirming leadership, instead of from local state.
        #[serde(default)]
        linearizable: bool,
    },
    /// Operators only (authenticated): one page of every record, in address order. Replies
    /// `PeerPage`.
    ListPeers {
        after: Option<String>,
        limit: Option<u32>,
    },
    /// The cluster's members and leader. Replies `ClusterInfo`.
    ClusterInfo,
    /// Opens member authentication. Replies `AuthChallenge`.
    AuthHello {
        #[serde(with = "serde_bytes")]
        client_nonce: Vec<u8>,
    },
    /// Completes member authentication. Replies `AuthOk`.
    AuthProof {
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Member only: verified commands forwarded to the leader. Replies `Outcomes`.
    Forward { commands: Vec<RegistryCommand> },
    /// Member only: Raft AppendEntries.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Member only: Raft RequestVote.
    Vote(VoteRequest<u64>),
    /// Member only: one chunk of a Raft snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Admin (authenticated): add a non-voting member. Replies `Done`.
    AddLearner { member_id: u64, addr: String },
    /// Admin (authenticated): make a learner a voter. Replies `Done`.
    Promote { member_id: u64 },
    /// Admin (authenticated): remove a member (voter or learner). Replies `Done`.
    RemoveMember { member_id: u64 },
    /// Member only: this member's wall clock, for cluster time. Replies `ClockReading`.
    ClockProbe,
    /// Admin (authenticated): make voter `member_id` stand for election; any member passes it
    /// on to that member. Replies `Done` once it leads.
    Elect { member_id: u64 },
}

impl Request {
    /// Whether this request needs a connection authenticated with the cluster secret.
    pub fn needs_member_auth(&self) -> bool {
        matches!(
            self,
            Self::Forward { .. }
                | Self::ListPeers { .. }
                | Self::AppendEntries(_)
                | Self::Vote(_)
                | Self::InstallSnapshot(_)
                | Self::AddLearner { .. }
                | Self::Promote { .. }
                | Self::RemoveMember { .. }
                | Self::ClockProbe
                | Self::Elect { .. }
        )
    }
}

/// A reply from a bootstrap member.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    Registered {
        replaced: bool,
        /// The address this node's record was at until now, when the registration moved it
        /// (absent from older members).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved_from: Option<String>,
    },
    Removed,
    Peers {
        peers: Vec<PeerEntry>,
    },
    PeerPage(PeerPage),
    ClusterInfo(ClusterInfo),
    AuthChallenge {
        #[serde(with = "serde_bytes")]
        server_nonce: Vec<u8>,
        #[serde(with = "serde_bytes")]
        server_proof: Vec<u8>,
    },
    AuthOk,
    Outcomes {
        /// Log index of the entry that carried them, so the forwarding member can wait until
        /// it has applied it too (read-your-writes through the same member).
        #[serde(default)]
        log_index: Option<u64>,
        outcomes: Vec<CommandOutcome>,
    },
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Done,
    Error(ErrorReply),
    /// The answering member's wall clock in Unix ms, read when it answered.
    ClockReading {
        unix_ms: u64,
    },
}

/// A page of the full listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerPage {
    pub peers: Vec<PeerEntry>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<String>,
    /// What the registry keeps about each of `peers`, in the same order (empty from a
    /// member that predates it).
    #[serde(default)]
    pub details: Vec<EntryDetail>,
}

/// An upper bound on one [`EntryDetail`]'s MessagePack size (the longest group is an IPv6
/// `/48`); listing pages are sized with it.
pub const MAX_ENCODED_ENTRY_DETAIL: usize = 64;

/// What the operator listing shows beside an entry: whether it is served, and where it
/// counts for subnet fairness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDetail {
    /// A signed record whose node answered a dial-back (or was registered with dial-back
    /// off): it is in node samples. Always `false` for legacy records.
    pub verified: bool,
    /// Its fine subnet group (`a.b.c/24`, `x:y:z::/48`, or `unresolved`).
    pub group: String,
}

/// One bootstrap member as seen by the member answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    /// This member's clock minus the answering member's clock, from the answering member's
    /// latest fresh reading (0 for itself; `None` without a fresh reading).
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// This member's clock minus cluster time (the median of the voters' clocks), as the
    /// answering member measures it; `None` without a reading or without cluster time.
    #[serde(default)]
    pub clock_skew_ms: Option<i64>,
    /// Round trip of the reading behind `clock_offset_ms` (half of it bounds its error).
    #[serde(default)]
    pub clock_rtt_ms: Option<u64>,
}

/// The cluster as seen by the member answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub wire_version: u16,
    pub network_id: String,
    /// The member that answered.
    pub member_id: u64,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub members: Vec<MemberInfo>,
    pub last_applied_index: Option<u64>,
    pub peer_count: u64,
    /// Cluster time (Unix ms) at the answering member when it answered; `None` while it has
    /// fresh clock readings from fewer than a majority of the voters.
    #[serde(default)]
    pub cluster_time_ms: Option<u64>,
    /// Leader only: milliseconds since a quorum last acknowledged it (`None` on followers
    /// and from members before this field).
    #[serde(default)]
    pub millis_since_quorum_ack: Option<u64>,
    /// Whether the answering member is ready (`GET /ready`): it knows a leader whose quorum
    /// is current and has applied what it knows is committed. `None` from older members.
    #[serde(default)]
    pub ready: Option<bool>,
    /// Why it is not ready (empty when ready).
    #[serde(default)]
    pub not_ready_reasons: Vec<String>,
}
