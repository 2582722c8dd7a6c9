//! What the [`PeerManager`] is told about tips, and the node status it reports to
//! `peerchain ctl status`.

use actix::prelude::*;

use super::PeerManager;
use crate::node::chain_sync::GetChainStatus;
use crate::node::connection::{ConnId, Direction};
use crate::wire::{NodeStatus, PeerStatus, Tip};

/// The chain actor's new tip.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TipChanged(pub Tip);

impl Handler<TipChanged> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: TipChanged, _: &mut Context<Self>) {
        self.last_tip = msg.0;
    }
}

/// A peer's announced height changed (for status).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerHeight {
    pub conn_id: ConnId,
    pub height: u64,
}

impl Handler<PeerHeight> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: PeerHeight, _: &mut Context<Self>) {
        if let Some(p) = self.peers.get_mut(&msg.conn_id) {
            p.tip_height = p.tip_height.max(msg.height);
        }
    }
}

/// The node's status for `peerchain ctl status`.
#[derive(Message)]
#[rtype(result = "NodeStatus")]
pub struct GetNodeStatus;

impl Handler<GetNodeStatus> for PeerManager {
    type Result = ResponseActFuture<Self, NodeStatus>;

    fn handle(&mut self, _: GetNodeStatus, _: &mut Context<Self>) -> Self::Result {
        Box::pin(
            self.chain
                .send(GetChainStatus)
                .into_actor(self)
                .map(|chain, act, _| {
                    let now = crate::unix_ms();
                    let mut peers: Vec<PeerStatus> = act
                        .peers
                        .values()
                        .filter_map(|p| {
                            Some(PeerStatus {
                                node_id: p.node_id?,
                                addr: p
                                    .listen_addr
                                    .clone()
                                    .unwrap_or_else(|| p.remote.to_string()),
                                outbound: matches!(p.direction, Direction::Outbound(_)),
                                tip_height: p.tip_height,
                                ban_score: p.ban_score,
                            })
                        })
                        .collect();
                    peers.sort_by(|a, b| a.addr.cmp(&b.addr));
                    let (tip, recent_blocks, syncing, mining, blocks_mined) = match chain {
                        Ok(c) => (c.tip, c.recent_blocks, c.syncing, c.mining, c.blocks_mined),
                        Err(_) => (act.last_tip, Vec::new(), None, false, 0),
                    };
                    NodeStatus {
                        node_id: act.node.identity.node_id(),
                        network_id: act.node.config.network_id.clone(),
                        listen_addr: act.node.advertised.clone(),
                        tip,
                        recent_blocks,
                        syncing,
                        mining,
                        blocks_mined,
                        peers,
                        known_addresses: act.book.addresses(),
                        banned: act.book.banned(now),
                        bootstrap: act.bootstrap_member.clone(),
                        bootstrap_members: act.book.bootstrap_members().to_vec(),
                        registered: act.registered,
                        book_drops: act.book.drops(),
                    }
                }),
        )
    }
}
