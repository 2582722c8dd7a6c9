//! [`ChainSync`]: holds the node's chain and keeps it on the connected peers' best chain. It
//! compares tips when a peer connects, asks the best peer for missing blocks in bounded
//! ranges (one request in flight), validates them, adopts the chain with the most cumulative
//! work (reorganising if needed), announces new blocks (never the whole chain) and drives
//! the miner. Runs on an arbiter of its own: its redb writes never stall the network actors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::chain_store::{ChainError, ChainStore};
use super::connection::{ConnId, Deliver};
use super::peer_manager::{PeerHeight, Penalise, TipChanged};
use super::{Connection, Miner, NodeContext, PeerManager};
use crate::chain::{Block, BlockHash};
use crate::wire::{PeerMessage, Tip, MAX_BLOCKS_PER_MESSAGE, MAX_LOCATOR_HASHES};

mod chain_status;
mod mining;
mod peer_events;

pub use chain_status::{ChainStatus, GetChainStatus};
pub use peer_events::{
    BlockAnnounced, BlocksArrived, PeerConnected, PeerDisconnected, ServeBlocks,
};

/// A block-range request unanswered for this long is given up (and the peer penalised).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Penalties (the ban threshold is 100 by default).
const INVALID_BLOCK_PENALTY: u32 = 34;
const INVALID_RANGE_PENALTY: u32 = 50;
const STALL_PENALTY: u32 = 20;
const UNSOLICITED_PENALTY: u32 = 10;
/// Main-chain blocks listed in a status reply.
const RECENT_IN_STATUS: usize = 16;
/// Sync progress is logged at most this often (every range when ranges are slower).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

struct SyncPeer {
    addr: Addr<Connection>,
    tip: Tip,
}

struct SyncJob {
    conn_id: ConnId,
    target: Tip,
    requested_at: Instant,
    start_height: u64,
    received: u64,
    last_progress_log: Instant,
}

/// The chain actor.
pub struct ChainSync {
    node: Arc<NodeContext>,
    store: ChainStore,
    manager: Addr<PeerManager>,
    miner: Option<Addr<Miner>>,
    peers: HashMap<ConnId, SyncPeer>,
    sync: Option<SyncJob>,
    /// Bumped whenever the tip changes, so that a mining result for an old tip is dropped.
    mining_round: u64,
    mining_paused_until: Option<Instant>,
    mining_in_flight: bool,
    blocks_mined: u64,
}

impl ChainSync {
    pub fn new(
        node: Arc<NodeContext>,
        store: ChainStore,
        manager: Addr<PeerManager>,
        miner: Option<Addr<Miner>>,
    ) -> Self {
        Self {
            node,
            store,
            manager,
            miner,
            peers: HashMap::new(),
            sync: None,
            mining_round: 0,
            mining_paused_until: None,
            mining_in_flight: false,
            blocks_mined: 0,
        }
    }

    fn penalise(&self, conn_id: ConnId, score: u32, reason: String) {
        self.manager.do_send(Penalise {
            conn_id,
            score,
            reason,
        });
    }

    /// Starts a sync with the peer whose chain has the most work, if it has more than ours.
    fn maybe_sync(&mut self) {
        if self.sync.is_some() {
            return;
        }
        let ours = self.store.tip().total_work;
        let best = self
            .peers
            .iter()
            .filter(|(_, p)| p.tip.total_work > ours)
            .max_by_key(|(_, p)| p.tip.total_work)
            .map(|(id, p)| (*id, p.tip));
        if let Some((conn_id, target)) = best {
            self.start_sync(conn_id, target);
        }
    }

    fn start_sync(&mut self, conn_id: ConnId, target: Tip) {
        let start_height = self.store.tip().height;
        if target.height > start_height + 100 {
            tracing::info!(
                from = start_height,
                to = target.height,
                "syncing {} blocks from a peer",
                target.height - start_height
            );
        }
        self.sync = Some(SyncJob {
            conn_id,
            target,
            requested_at: Instant::now(),
            start_height,
            received: 0,
            last_progress_log: Instant::now() - PROGRESS_EVERY,
        });
        self.request_blocks(conn_id, None);
    }

    /// Asks `conn_id` for the blocks after `after` (a block just received) or our tip.
    fn request_blocks(&mut self, conn_id: ConnId, after: Option<BlockHash>) {
        let mut locator = match self.store.locator() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "reading the chain failed; sync stopped");
                self.sync = None;
                return;
            }
        };
        if let Some(h) = after {
            locator.insert(0, h);
            locator.truncate(MAX_LOCATOR_HASHES);
        }
        if let Some(job) = &mut self.sync {
            job.requested_at = Instant::now();
        }
        if let Some(peer) = self.peers.get(&conn_id) {
            peer.addr.do_send(Deliver(PeerMessage::GetBlocks {
                locator,
                limit: MAX_BLOCKS_PER_MESSAGE,
            }));
        }
    }

    /// Adds blocks (received or mined here). Returns whether the tip changed.
    fn add_blocks(&mut self, blocks: &[Block]) -> Result<bool, ChainError> {
        let before = self.store.tip();
        let outcome = self.store.insert(blocks, crate::unix_ms());
        let after = self.store.tip();
        if after != before {
            self.on_tip_changed(before, after);
        }
        outcome.map(|_| after != before)
    }

    fn on_tip_changed(&mut self, before: Tip, after: Tip) {
        self.mining_round += 1;
        self.manager.do_send(TipChanged(after));
        let fork = self.store.main_hash(before.height).ok().flatten() != Some(before.hash);
        if fork {
            tracing::info!(
                old_height = before.height,
                new_height = after.height,
                "switched to a chain with more work (reorg)"
            );
        }
        let syncing = self.sync.is_some();
        if !syncing {
            // The peer it came from too: the echo of its own block is how that peer learns
            // that this node holds it (a node ignores a block it has), so its status shows
            // our height as it is.
            self.announce_tip(None);
        }
    }

    /// Tells every peer but `except` about our tip block.
    fn announce_tip(&self, except: Option<ConnId>) {
        let block = self.store.tip_block().clone();
        for (id, p) in &self.peers {
            if Some(*id) != except && p.tip.total_work < self.store.tip().total_work {
                p.addr.do_send(Deliver(PeerMessage::NewBlock {
                    block: block.clone(),
                }));
            }
        }
    }

    fn sync_finished(&mut self) {
        if let Some(job) = self.sync.take() {
            if job.received > 0 {
                tracing::info!(
                    height = self.store.tip().height,
                    blocks = job.received,
                    "sync finished"
                );
            }
            self.announce_tip(Some(job.conn_id));
        }
        self.maybe_sync();
    }

    fn on_blocks(&mut self, conn_id: ConnId, blocks: Vec<Block>, tip: Tip) {
        if let Some(p) = self.peers.get_mut(&conn_id) {
            p.tip = tip;
        }
        self.manager.do_send(PeerHeight {
            conn_id,
            height: tip.height,
        });
        let solicited = self.sync.as_ref().is_some_and(|j| j.conn_id == conn_id);
        if !solicited {
            self.penalise(conn_id, UNSOLICITED_PENALTY, "unsolicited blocks".into());
            return;
        }
        if let Some(job) = &mut self.sync {
            job.target = tip;
        }
        if blocks.is_empty() {
            self.sync_finished();
            return;
        }
        if blocks.len() > MAX_BLOCKS_PER_MESSAGE as usize {
            self.penalise(conn_id, INVALID_RANGE_PENALTY, "too many blocks".into());
            self.sync = None;
            return;
        }
        let last = blocks.last().map(|b| b.hash);
        match self.add_blocks(&blocks) {
            Ok(_) => {}
            Err(ChainError::Invalid(e)) => {
                self.node.metrics.block_rejected();
                tracing::warn!(error = %e, "peer sent an invalid block during sync");
                self.penalise(conn_id, 100, format!("invalid block in range: {e}"));
                self.sync = None;
                self.maybe_sync();
                return;
            }
            Err(e @ (ChainError::UnknownParent { .. } | ChainError::NotConsecutive)) => {
                self.penalise(
                    conn_id,
                    INVALID_RANGE_PENALTY,
                    format!("bad block range: {e}"),
                );
                self.sync = None;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "storing blocks failed; sync stopped");
                self.sync = None;
                return;
            }
        }
        let height = self.store.tip().height;
        if let Some(job) = &mut self.sync {
            job.received += blocks.len() as u64;
            if job.target.height > job.start_height + u64::from(MAX_BLOCKS_PER_MESSAGE)
                && job.last_progress_log.elapsed() >= PROGRESS_EVERY
            {
                job.last_progress_log = Instant::now();
                tracing::info!(
                    "synced {} / {} blocks",
                    group_digits(height.saturating_sub(job.start_height)),
                    group_digits(job.target.height.saturating_sub(job.start_height))
                );
            }
        }
        if last == Some(tip.hash) {
            self.sync_finished();
        } else {
            self.request_blocks(conn_id, last);
        }
    }

    fn on_announced(&mut self, conn_id: ConnId, block: Block) {
        self.manager.do_send(PeerHeight {
            conn_id,
            height: block.index,
        });
        match self.store.contains(&block.hash) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading the chain failed");
                return;
            }
        }
        let parent_known = self.store.contains(&block.prev_hash).unwrap_or(false);
        if !parent_known {
            // We are missing blocks before it: fetch them from this peer, now or after the
            // sync in progress. Its chain's work is unknown until it answers a range request
            // (whose reply carries its tip), so it counts as the most for now.
            let target = Tip {
                height: block.index,
                hash: block.hash,
                total_work: u128::MAX,
            };
            if let Some(p) = self.peers.get_mut(&conn_id) {
                p.tip = target;
            }
            if self.sync.is_none() {
                self.start_sync(conn_id, target);
            }
            return;
        }
        let height = block.index;
        match self.add_blocks(std::slice::from_ref(&block)) {
            Ok(_) => {
                let ours = self.store.tip();
                if let Some(p) = self.peers.get_mut(&conn_id) {
                    if ours.hash == block.hash {
                        p.tip = ours;
                    }
                }
            }
            Err(ChainError::Invalid(e)) => {
                self.node.metrics.block_rejected();
                tracing::warn!(height, error = %e, "invalid block announced; rejected");
                self.penalise(
                    conn_id,
                    INVALID_BLOCK_PENALTY,
                    format!("invalid block: {e}"),
                );
            }
            Err(e) => tracing::error!(error = %e, "storing an announced block failed"),
        }
    }
}

/// `12345` → `12,345`.
fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Actor for ChainSync {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tip = self.store.tip();
        tracing::info!(height = tip.height, hash = %hex::encode(&tip.hash[..6]), "chain loaded");
        self.manager.do_send(TipChanged(tip));
        ctx.run_interval(Duration::from_millis(200), |act, ctx| {
            let stalled = act
                .sync
                .as_ref()
                .filter(|j| j.requested_at.elapsed() > REQUEST_TIMEOUT)
                .map(|j| j.conn_id);
            if let Some(conn_id) = stalled {
                act.penalise(conn_id, STALL_PENALTY, "block request timed out".into());
                act.sync = None;
                act.maybe_sync();
            }
            act.drive_miner(ctx);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::group_digits;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(3000), "3,000");
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
