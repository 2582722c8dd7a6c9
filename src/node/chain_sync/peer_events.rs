//! What the connections tell [`ChainSync`]: a peer connected or went away, asks for blocks,
//! answered our request or announced a block.

use actix::prelude::*;

use super::{ChainSync, SyncPeer, UNSOLICITED_PENALTY};
use crate::chain::{Block, BlockHash};
use crate::node::connection::{ConnId, Deliver};
use crate::node::peer_manager::PeerHeight;
use crate::node::Connection;
use crate::wire::{PeerMessage, Tip, MAX_BLOCKS_PER_MESSAGE, MAX_LOCATOR_HASHES};

/// A peer completed its handshake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerConnected {
    pub conn_id: ConnId,
    pub addr: Addr<Connection>,
    pub tip: Tip,
}

impl Handler<PeerConnected> for ChainSync {
    type Result = ();

    fn handle(&mut self, msg: PeerConnected, _: &mut Context<Self>) {
        let ours = self.store.tip();
        if msg.tip.total_work < ours.total_work {
            // It is behind: let it know our tip so it syncs from us.
            msg.addr.do_send(Deliver(PeerMessage::NewBlock {
                block: self.store.tip_block().clone(),
            }));
        }
        self.peers.insert(
            msg.conn_id,
            SyncPeer {
                addr: msg.addr,
                tip: msg.tip,
            },
        );
        self.maybe_sync();
    }
}

/// A peer went away.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerDisconnected {
    pub conn_id: ConnId,
}

impl Handler<PeerDisconnected> for ChainSync {
    type Result = ();

    fn handle(&mut self, msg: PeerDisconnected, _: &mut Context<Self>) {
        self.peers.remove(&msg.conn_id);
        if self.sync.as_ref().is_some_and(|j| j.conn_id == msg.conn_id) {
            self.sync = None;
            self.maybe_sync();
        }
    }
}

/// A peer asks for blocks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ServeBlocks {
    pub conn_id: ConnId,
    pub addr: Addr<Connection>,
    pub locator: Vec<BlockHash>,
    pub limit: u32,
}

impl Handler<ServeBlocks> for ChainSync {
    type Result = ();

    fn handle(&mut self, msg: ServeBlocks, _: &mut Context<Self>) {
        if msg.locator.len() > MAX_LOCATOR_HASHES {
            self.penalise(msg.conn_id, UNSOLICITED_PENALTY, "oversized locator".into());
            return;
        }
        let limit = msg.limit.min(MAX_BLOCKS_PER_MESSAGE);
        // Leave room in the frame for the envelope.
        let max_bytes = self.node.config.max_frame_length * 3 / 4;
        match self.store.blocks_after(&msg.locator, limit, max_bytes) {
            Ok(blocks) => {
                // The peer holds the chain up to what it asked after, and soon what we send.
                if let Some(last) = blocks.last() {
                    self.manager.do_send(PeerHeight {
                        conn_id: msg.conn_id,
                        height: last.index,
                    });
                }
                self.node.metrics.blocks_served(blocks.len());
                msg.addr.do_send(Deliver(PeerMessage::Blocks {
                    blocks,
                    tip: self.store.tip(),
                }));
            }
            Err(e) => tracing::error!(error = %e, "reading blocks for a peer failed"),
        }
    }
}

/// Blocks a peer sent in answer to our request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BlocksArrived {
    pub conn_id: ConnId,
    pub blocks: Vec<Block>,
    pub tip: Tip,
}

impl Handler<BlocksArrived> for ChainSync {
    type Result = ();

    fn handle(&mut self, msg: BlocksArrived, _: &mut Context<Self>) {
        self.node.metrics.blocks_received(msg.blocks.len());
        self.on_blocks(msg.conn_id, msg.blocks, msg.tip);
    }
}

/// A block a peer announced.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BlockAnnounced {
    pub conn_id: ConnId,
    pub block: Block,
}

impl Handler<BlockAnnounced> for ChainSync {
    type Result = ();

    fn handle(&mut self, msg: BlockAnnounced, _: &mut Context<Self>) {
        self.node.metrics.blocks_received(1);
        self.on_announced(msg.conn_id, msg.block);
    }
}
