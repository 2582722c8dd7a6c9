//! The reads that peers and the status page make of a [`ChainStore`]: recent blocks, a
//! locator of our best chain, and the blocks after a peer's locator (bounded in count and
//! bytes).

use redb::{ReadableDatabase, ReadableTable};

use super::{decode, ChainError, ChainStore, BLOCKS, MAIN};
use crate::chain::{Block, BlockHash};
use crate::wire::{RecentBlock, MAX_LOCATOR_HASHES};

impl ChainStore {
    /// The last `n` best-chain blocks, tip first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn recent(&self, n: usize) -> Result<Vec<RecentBlock>, ChainError> {
        let txn = self.db.begin_read().map_err(ChainError::storage)?;
        let main = txn.open_table(MAIN).map_err(ChainError::storage)?;
        let mut out = Vec::with_capacity(n);
        for entry in main.iter().map_err(ChainError::storage)?.rev().take(n) {
            let (height, hash) = entry.map_err(ChainError::storage)?;
            out.push(RecentBlock {
                height: height.value(),
                hash: *hash.value(),
            });
        }
        Ok(out)
    }

    /// A block locator of the best chain: the last ten hashes, then exponentially sparser,
    /// ending with the genesis.
    ///
    /// # Errors
    /// Storage errors.
    pub fn locator(&self) -> Result<Vec<BlockHash>, ChainError> {
        let txn = self.db.begin_read().map_err(ChainError::storage)?;
        let main = txn.open_table(MAIN).map_err(ChainError::storage)?;
        let mut out = Vec::new();
        let mut height = self.tip.block.index;
        let mut step = 1u64;
        loop {
            if let Some(h) = main.get(height).map_err(ChainError::storage)? {
                out.push(*h.value());
            }
            if height == 0 || out.len() + 1 >= MAX_LOCATOR_HASHES {
                break;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step);
        }
        if height != 0 {
            if let Some(h) = main.get(0).map_err(ChainError::storage)? {
                out.push(*h.value());
            }
        }
        Ok(out)
    }

    /// Up to `limit` best-chain blocks (and at most `max_bytes` of them) after the first
    /// locator hash found on the best chain (after the genesis if none is).
    ///
    /// # Errors
    /// Storage errors.
    pub fn blocks_after(
        &self,
        locator: &[BlockHash],
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<Block>, ChainError> {
        let txn = self.db.begin_read().map_err(ChainError::storage)?;
        let main = txn.open_table(MAIN).map_err(ChainError::storage)?;
        let blocks = txn.open_table(BLOCKS).map_err(ChainError::storage)?;
        let mut start = 1;
        for hash in locator {
            if let Some(stored) = blocks.get(hash).map_err(ChainError::storage)? {
                let stored = decode(stored.value())?;
                let height = stored.block.index;
                let on_main = main
                    .get(height)
                    .map_err(ChainError::storage)?
                    .is_some_and(|h| h.value() == hash);
                if on_main {
                    start = height + 1;
                    break;
                }
            }
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in main.range(start..).map_err(ChainError::storage)? {
            if out.len() >= limit as usize {
                break;
            }
            let (_, hash) = entry.map_err(ChainError::storage)?;
            let Some(stored) = blocks.get(hash.value()).map_err(ChainError::storage)? else {
                return Err(ChainError::Corrupt(
                    "main chain names a missing block".into(),
                ));
            };
            bytes += stored.value().len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(decode(stored.value())?.block);
        }
        Ok(out)
    }
}
