//! The miner's side of [`ChainSync`]: one mining request at a time on the current tip,
//! paused while a sync runs and for a block interval after each block found here.

use std::time::Instant;

use actix::prelude::*;

use super::ChainSync;
use crate::node::miner::MineRequest;

/// Nonces per mining request: small enough that the miner moves to a new tip quickly.
const NONCES_PER_REQUEST: u64 = 50_000;

impl ChainSync {
    /// Sends the miner a request on the current tip if none is in flight and no pause holds.
    pub(super) fn drive_miner(&mut self, ctx: &mut Context<Self>) {
        let Some(miner) = self.miner.clone() else {
            return;
        };
        if self.mining_in_flight || self.sync.is_some() {
            return;
        }
        if self.mining_paused_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.mining_paused_until = None;
        let parent = self.store.tip_block().clone();
        let round = self.mining_round;
        let data = format!(
            "mined by {} at height {}",
            &self.node.identity.node_id().to_string()[..12],
            parent.index + 1
        )
        .into_bytes();
        let request = MineRequest {
            parent,
            data,
            timestamp_ms: crate::unix_ms(),
            difficulty: self.node.config.difficulty,
            start_nonce: rand::random::<u64>() >> 1,
            max_tries: NONCES_PER_REQUEST,
        };
        self.mining_in_flight = true;
        miner
            .send(request)
            .into_actor(self)
            .map(move |result, act, ctx| {
                act.mining_in_flight = false;
                match result {
                    Ok(Some(block)) if act.mining_round == round => {
                        let height = block.index;
                        let hash = block.short_hash();
                        match act.add_blocks(&[block]) {
                            Ok(true) => {
                                act.blocks_mined += 1;
                                tracing::info!(height, %hash, "mined a block");
                                act.mining_paused_until =
                                    Some(Instant::now() + act.node.config.block_interval);
                            }
                            Ok(false) => {}
                            Err(e) => tracing::error!(error = %e, "own block refused"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "miner unavailable"),
                }
                act.drive_miner(ctx);
            })
            .spawn(ctx);
    }
}
