//! [`Member`]: the state one bootstrap member shares among its connections.

use std::sync::Arc;

use openraft::ServerState;

use super::{BootstrapConfig, LeaderLink, Proposer};
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

    /// Members, leader and registry size as this member sees them.
    ///
    /// # Errors
    /// A storage error reading the registry size.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ErrorReply> {
        let (leader_id, term, members, last_applied_index) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let voters: Vec<MemberId> = membership.voter_ids().collect();
            let members = membership
                .nodes()
                .map(|(id, node)| MemberInfo {
                    id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                })
                .collect::<Vec<_>>();
            (
                m.current_leader,
                m.current_term,
                members,
                m.last_applied.map(|l| l.index),
            )
        };
        let leader_addr =
            leader_id.and_then(|id| members.iter().find(|m| m.id == id).map(|m| m.addr.clone()));
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
        })
    }

    /// Refuses writes while the data directory's disk is nearly full, so that a full disk
    /// never stops Raft itself; reads go on.
    ///
    /// # Errors
    /// [`ErrorCode::Storage`].
    pub fn check_disk(&self) -> Result<(), ErrorReply> {
        match fs4::available_space(&self.config.data_dir) {
            Ok(free) if free < self.config.min_free_disk => Err(ErrorReply::new(
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
