//! [`GetChainStatus`]: the chain part of the node's status page and `ctl status`.

use actix::prelude::*;

use super::{ChainSync, RECENT_IN_STATUS};
use crate::wire::{RecentBlock, Tip};

/// The chain part of the node's status.
#[derive(Debug, Clone, MessageResponse)]
pub struct ChainStatus {
    pub tip: Tip,
    pub recent_blocks: Vec<RecentBlock>,
    pub syncing: Option<(u64, u64)>,
    pub mining: bool,
    pub blocks_mined: u64,
}

#[derive(Message)]
#[rtype(result = "ChainStatus")]
pub struct GetChainStatus;

impl Handler<GetChainStatus> for ChainSync {
    type Result = ChainStatus;

    fn handle(&mut self, _: GetChainStatus, _: &mut Context<Self>) -> ChainStatus {
        let tip = self.store.tip();
        ChainStatus {
            tip,
            recent_blocks: self.store.recent(RECENT_IN_STATUS).unwrap_or_default(),
            syncing: self.sync.as_ref().map(|j| (tip.height, j.target.height)),
            mining: self.miner.is_some(),
            blocks_mined: self.blocks_mined,
        }
    }
}
