//! [`Member`]: the state one bootstrap member shares among its connections.

use std::sync::Arc;

use openraft::error::Fatal;
use openraft::{BasicNode, RaftMetrics, ServerState};
use tokio_util::sync::CancellationToken;

use super::free_space::FreeSpace;
use super::{BootstrapConfig, ClientQuotas, ClusterClock, LeaderLink, MemberHealth, Proposer};
use crate::metrics::MemberMetrics;
use crate::raft::{ClusterSecret, MemberId, RegistryRaft};
use crate::registry::{RegistryDb, RegistryError, MAX_ENCODED_PEER_ENTRY};
use crate::wire::{ClusterInfo, ErrorCode, ErrorReply, MemberInfo, WIRE_VERSION};

/// Everything a connection handler needs.
pub struct Member {
    pub config: BootstrapConfig,
    pub raft: RegistryRaft,
    pub registry: RegistryDb,
    pub secret: ClusterSecret,
    pub proposer: Proposer,
    pub leader_link: Arc<LeaderLink>,
    /// Cluster time: what decides expiry and validity instead of this machine's clock.
    pub clock: Arc<ClusterClock>,
    /// Counters and histograms served on the HTTP side port's `/metrics`.
    pub metrics: MemberMetrics,
    /// Per-source limits on clients.
    pub quotas: Arc<ClientQuotas>,
    /// Free space on the data disk, read on a timer rather than per write.
    pub free_space: Arc<FreeSpace>,
    /// Verifies the signatures of concurrent requests in batches.
    pub signatures: super::signature_batcher::SignatureBatcher,
    /// Samples of a large registry, drawn ahead (see [`super::sample_reservoir`]).
    pub reservoir: Arc<super::sample_reservoir::SampleReservoir>,
}

/// Room in a reply frame for what surrounds its entries (envelope, cursor).
const REPLY_HEADROOM: usize = 2048;

impl Member {
    pub fn id(&self) -> MemberId {
        self.config.id
    }

    /// How many registry entries one reply may carry within the frame limit (a page or a
    /// sample is cut to this, so a member with a small `max_frame_length` still answers).
    pub fn entries_per_reply(&self) -> usize {
        (self.config.max_frame_length.saturating_sub(REPLY_HEADROOM) / MAX_ENCODED_PEER_ENTRY)
            .max(1)
    }

    /// How many entries one page of the operator listing may carry: each also carries its
    /// [`crate::wire::EntryDetail`].
    pub fn listed_entries_per_reply(&self) -> usize {
        let per_entry = MAX_ENCODED_PEER_ENTRY + crate::wire::MAX_ENCODED_ENTRY_DETAIL;
        (self.config.max_frame_length.saturating_sub(REPLY_HEADROOM) / per_entry).max(1)
    }

    /// The current leader's id and address, as this member knows it.
    pub fn leader(&self) -> Option<(MemberId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// Whether this member currently leads.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Why this member's Raft has stopped on its own (a storage failure), if it has.
    pub fn raft_failure(&self) -> Option<String> {
        raft_failure(&self.raft.metrics().borrow())
    }

    /// Members, leader and registry size as this member sees them.
    ///
    /// # Errors
    /// A storage error reading the registry size.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ErrorReply> {
        let (leader_id, term, mut members, last_applied_index) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            // A stopped Raft keeps its last metrics: it no longer knows who leads.
            let leader = m.current_leader.filter(|_| raft_failure(&m).is_none());
            let membership = m.membership_config.membership();
            let voters: Vec<MemberId> = membership.voter_ids().collect();
            let members = membership
                .nodes()
                .map(|(id, node)| MemberInfo {
                    id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                    clock_offset_ms: None,
                    clock_skew_ms: None,
                    clock_rtt_ms: None,
                })
                .collect::<Vec<_>>();
            (
                leader,
                m.current_term,
                members,
                m.last_applied.map(|l| l.index),
            )
        };
        self.add_clock_readings(&mut members);
        let leader_addr =
            leader_id.and_then(|id| members.iter().find(|m| m.id == id).map(|m| m.addr.clone()));
        let health = MemberHealth::capture(self).await;
        let peer_count = self
            .registry
            .read(|r| r.count())
            .await
            .map_err(storage_reply)?;
        Ok(ClusterInfo {
            wire_version: WIRE_VERSION,
            network_id: self.config.network_id.clone(),
            member_id: self.id(),
            leader_id,
            leader_addr,
            term,
            members,
            last_applied_index,
            peer_count,
            cluster_time_ms: self.clock.now(),
            millis_since_quorum_ack: health.millis_since_quorum_ack,
            ready: Some(health.ready),
            not_ready_reasons: health.reasons,
        })
    }

    /// Puts this member's latest measurement of each member's clock into `members`.
    fn add_clock_readings(&self, members: &mut [MemberInfo]) {
        for c in self.clock.members() {
            if let Some(m) = members.iter_mut().find(|m| m.id == c.id) {
                m.clock_offset_ms = Some(c.offset_ms);
                m.clock_skew_ms = c.skew_ms;
                m.clock_rtt_ms = Some(c.rtt_ms);
            }
        }
    }

    /// Refuses writes while this member cannot store them: its Raft stopped on a storage
    /// failure, or its data directory's disk is below `min_free_disk` (the first line of
    /// defence, so that a filling disk need not stop Raft at all; measured every
    /// [`super::free_space::REFRESH`]). Reads go on either way.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn check_storage(&self) -> Result<(), ErrorReply> {
        if let Some(cause) = self.raft_failure() {
            return Err(storage_failed(&cause));
        }
        match self.free_space.bytes() {
            Some(free) if free < self.config.min_free_disk => Err(ErrorReply::new(
                ErrorCode::Storage,
                format!(
                    "disk nearly full ({free} bytes free, {} needed): writes refused, reads go on",
                    self.config.min_free_disk
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// A registry read error as a reply.
pub fn storage_reply(e: RegistryError) -> ErrorReply {
    ErrorReply::new(ErrorCode::Storage, e.to_string())
}

/// The reply to a write on a member whose Raft stopped because its storage failed.
pub fn storage_failed(cause: &dyn std::fmt::Display) -> ErrorReply {
    ErrorReply::new(
        ErrorCode::Storage,
        format!(
            "storage failed on this member (disk full or I/O error: {cause}): it refuses writes \
             until restarted with free disk space; reads go on from its local state"
        ),
    )
}

/// Why Raft stopped, unless it is running or was shut down on purpose.
///
/// Takes metrics already borrowed: a second `borrow()` of the same watch while the first is
/// held deadlocks once openraft waits to publish new metrics (parking_lot's read lock is
/// fair to the waiting writer), and that froze a whole member under the chaos suite.
pub(crate) fn raft_failure(m: &RaftMetrics<MemberId, BasicNode>) -> Option<String> {
    match &m.running_state {
        Ok(()) | Err(Fatal::Stopped) => None,
        Err(f) => Some(f.to_string()),
    }
}

/// Logs, once, that this member's Raft has stopped on a storage failure and what an operator
/// does about it. Ends at `cancel` or when it has logged.
pub async fn report_raft_failure(raft: RegistryRaft, cancel: CancellationToken) {
    let mut metrics = raft.metrics();
    loop {
        if let Some(cause) = raft_failure(&metrics.borrow()) {
            tracing::error!(
                error = %cause,
                "storage failed: this member's raft has stopped; writes are refused with \
                 `storage`, reads go on from local state. Free disk space and restart the member"
            );
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}
