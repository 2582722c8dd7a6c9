//! [`ChainStore`]: every block a node has accepted, and which of them form its best chain, in
//! redb (`chain.redb`), so that a restarted node resumes at its tip.
//!
//! Tables: `blocks` (hash → block + cumulative work) holds the main chain and side branches;
//! `main` (height → hash) is the best chain. Adding blocks and switching the best chain (a
//! reorg) happen in one write transaction, so a crash leaves either the old or the new chain.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::chain::{genesis, validate_block, Block, BlockHash, ValidationError, ValidationRules};
use crate::wire::Tip;

mod chain_queries;

const BLOCKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blocks");
const MAIN: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("main");

/// Page cache of the chain database.
const CHAIN_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Why blocks could not be added.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("invalid block: {0}")]
    Invalid(#[from] ValidationError),
    #[error("block {index} builds on an unknown parent")]
    UnknownParent { index: u64 },
    #[error("blocks in a batch are not consecutive")]
    NotConsecutive,
    #[error("chain storage: {0}")]
    Storage(String),
    #[error("corrupt chain data: {0}")]
    Corrupt(String),
    #[error("this data directory holds the chain of another network (genesis differs)")]
    WrongNetwork,
}

impl ChainError {
    fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }
}

/// A block with its place in the block tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredBlock {
    block: Block,
    total_work: u128,
}

/// What adding a batch of blocks did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Blocks not seen before.
    pub added: usize,
    /// The new best tip, if the best chain changed.
    pub new_tip: Option<Tip>,
    /// Main-chain blocks replaced by the switch (0 when the chain only grew).
    pub reorg_depth: u64,
    /// The last block of the batch that is stored (valid), for continuing a sync.
    pub last_stored: Option<BlockHash>,
}

/// The chain database of one node.
pub struct ChainStore {
    db: Database,
    network_id: String,
    rules: ValidationRules,
    tip: StoredBlock,
}

impl ChainStore {
    /// Opens (or creates with the genesis of `network_id`) the chain database at `path`.
    ///
    /// # Errors
    /// Storage errors, corrupt data, or a database of another network.
    pub fn open(path: &Path, network_id: &str, rules: ValidationRules) -> Result<Self, ChainError> {
        let db = Database::builder()
            .set_cache_size(CHAIN_CACHE_BYTES)
            .create(path)
            .map_err(|e| ChainError::Storage(format!("opening {}: {e}", path.display())))?;
        let genesis = genesis(network_id);
        let txn = db.begin_write().map_err(ChainError::storage)?;
        {
            let mut main = txn.open_table(MAIN).map_err(ChainError::storage)?;
            let mut blocks = txn.open_table(BLOCKS).map_err(ChainError::storage)?;
            let existing = main
                .get(0)
                .map_err(ChainError::storage)?
                .map(|g| *g.value());
            match existing {
                Some(hash) if hash != genesis.hash => return Err(ChainError::WrongNetwork),
                Some(_) => {}
                None => {
                    let stored = StoredBlock {
                        total_work: genesis.work(),
                        block: genesis.clone(),
                    };
                    blocks
                        .insert(&genesis.hash, encode(&stored)?.as_slice())
                        .map_err(ChainError::storage)?;
                    main.insert(0, &genesis.hash).map_err(ChainError::storage)?;
                }
            }
        }
        txn.commit().map_err(ChainError::storage)?;
        let tip = read_tip(&db)?;
        Ok(Self {
            db,
            network_id: network_id.to_string(),
            rules,
            tip,
        })
    }

    pub fn network_id(&self) -> &str {
        &self.network_id
    }

    /// The best chain's tip.
    pub fn tip(&self) -> Tip {
        tip_of(&self.tip)
    }

    pub fn tip_block(&self) -> &Block {
        &self.tip.block
    }

    /// The block with `hash`, on any branch.
    ///
    /// # Errors
    /// Storage errors.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        Ok(self.stored(hash)?.map(|s| s.block))
    }

    /// Whether a block with `hash` is stored (on any branch).
    ///
    /// # Errors
    /// Storage errors.
    pub fn contains(&self, hash: &BlockHash) -> Result<bool, ChainError> {
        Ok(self.stored(hash)?.is_some())
    }

    fn stored(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, ChainError> {
        let txn = self.db.begin_read().map_err(ChainError::storage)?;
        let blocks = txn.open_table(BLOCKS).map_err(ChainError::storage)?;
        let value = blocks.get(hash).map_err(ChainError::storage)?;
        value.map(|v| decode(v.value())).transpose()
    }

    /// The hash of the best chain's block at `height`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn main_hash(&self, height: u64) -> Result<Option<BlockHash>, ChainError> {
        let txn = self.db.begin_read().map_err(ChainError::storage)?;
        let main = txn.open_table(MAIN).map_err(ChainError::storage)?;
        let value = main.get(height).map_err(ChainError::storage)?;
        Ok(value.map(|v| *v.value()))
    }

    /// Validates and stores `batch` (consecutive blocks, the first building on a stored block)
    /// and switches the best chain if the batch's last valid block has more cumulative work
    /// than the current tip. Valid blocks before an invalid one are kept.
    ///
    /// # Errors
    /// The first invalid block (after storing the valid ones), an unknown parent, or storage.
    pub fn insert(&mut self, batch: &[Block], now_ms: u64) -> Result<InsertOutcome, ChainError> {
        let Some(first) = batch.first() else {
            return Ok(InsertOutcome::default());
        };
        let txn = self.db.begin_write().map_err(ChainError::storage)?;
        let mut outcome = InsertOutcome::default();
        let mut failure = None;
        let mut new_tip = None;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(ChainError::storage)?;
            let mut main = txn.open_table(MAIN).map_err(ChainError::storage)?;
            let parent = blocks
                .get(&first.prev_hash)
                .map_err(ChainError::storage)?
                .map(|v| decode(v.value()))
                .transpose()?;
            let Some(mut parent) = parent else {
                return Err(ChainError::UnknownParent { index: first.index });
            };
            for block in batch {
                if block.prev_hash != parent.block.hash {
                    failure = Some(ChainError::NotConsecutive);
                    break;
                }
                let known = blocks
                    .get(&block.hash)
                    .map_err(ChainError::storage)?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                let stored = match known {
                    Some(stored) => stored,
                    None => {
                        if let Err(e) = validate_block(block, &parent.block, self.rules, now_ms) {
                            failure = Some(ChainError::Invalid(e));
                            break;
                        }
                        let stored = StoredBlock {
                            total_work: parent.total_work.saturating_add(block.work()),
                            block: block.clone(),
                        };
                        blocks
                            .insert(&block.hash, encode(&stored)?.as_slice())
                            .map_err(ChainError::storage)?;
                        outcome.added += 1;
                        stored
                    }
                };
                outcome.last_stored = Some(stored.block.hash);
                parent = stored;
            }
            // `parent` is now the last stored block of the batch.
            if outcome.last_stored.is_some() && parent.total_work > self.tip.total_work {
                outcome.reorg_depth = switch_main(&mut main, &blocks, &parent, &self.tip)?;
                new_tip = Some(parent);
            }
        }
        txn.commit().map_err(ChainError::storage)?;
        if let Some(tip) = new_tip {
            outcome.new_tip = Some(tip_of(&tip));
            self.tip = tip;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }
}

/// Makes the chain ending at `new_tip` the main chain; returns how many old main-chain blocks
/// were replaced.
fn switch_main(
    main: &mut redb::Table<u64, &[u8; 32]>,
    blocks: &redb::Table<&[u8; 32], &[u8]>,
    new_tip: &StoredBlock,
    old_tip: &StoredBlock,
) -> Result<u64, ChainError> {
    // Walk back from the new tip until a block that is already on the main chain.
    let mut cursor = new_tip.block.clone();
    let mut fork_height = 0;
    loop {
        let on_main = main
            .get(cursor.index)
            .map_err(ChainError::storage)?
            .is_some_and(|h| *h.value() == cursor.hash);
        if on_main {
            fork_height = cursor.index;
            break;
        }
        main.insert(cursor.index, &cursor.hash)
            .map_err(ChainError::storage)?;
        if cursor.index == 0 {
            break;
        }
        let parent = blocks
            .get(&cursor.prev_hash)
            .map_err(ChainError::storage)?
            .map(|v| decode(v.value()))
            .transpose()?;
        match parent {
            Some(p) => cursor = p.block,
            None => {
                return Err(ChainError::Corrupt(
                    "a stored block's parent is missing".into(),
                ))
            }
        }
    }
    // Drop old main-chain entries above the new tip.
    let mut h = new_tip.block.index + 1;
    while h <= old_tip.block.index {
        main.remove(h).map_err(ChainError::storage)?;
        h += 1;
    }
    Ok(old_tip.block.index.saturating_sub(fork_height))
}

fn read_tip(db: &Database) -> Result<StoredBlock, ChainError> {
    let txn = db.begin_read().map_err(ChainError::storage)?;
    let main = txn.open_table(MAIN).map_err(ChainError::storage)?;
    let blocks = txn.open_table(BLOCKS).map_err(ChainError::storage)?;
    let Some((_, hash)) = main.last().map_err(ChainError::storage)? else {
        return Err(ChainError::Corrupt("empty main chain".into()));
    };
    let Some(stored) = blocks.get(hash.value()).map_err(ChainError::storage)? else {
        return Err(ChainError::Corrupt("tip block missing".into()));
    };
    decode(stored.value())
}

fn tip_of(s: &StoredBlock) -> Tip {
    Tip {
        height: s.block.index,
        hash: s.block.hash,
        total_work: s.total_work,
    }
}

fn encode(s: &StoredBlock) -> Result<Vec<u8>, ChainError> {
    rmp_serde::to_vec_named(s).map_err(|e| ChainError::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<StoredBlock, ChainError> {
    rmp_serde::from_slice(bytes).map_err(|e| ChainError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::mine;

    const RULES: ValidationRules = ValidationRules { difficulty: 4 };

    fn extend(parent: &Block, n: usize, tag: u8) -> Vec<Block> {
        let mut out: Vec<Block> = Vec::new();
        let mut p = parent.clone();
        for _ in 0..n {
            let b = mine(&p, vec![tag], p.timestamp_ms + 1, 4, 0, 1 << 20).expect("mined");
            out.push(b.clone());
            p = b;
        }
        out
    }

    #[test]
    fn grows_reorgs_to_more_work_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chain.redb");
        let mut store = ChainStore::open(&path, "net", RULES).expect("open");
        let g = store.tip_block().clone();
        let a = extend(&g, 5, 1);
        let out = store.insert(&a, u64::MAX / 2).expect("insert");
        assert_eq!(out.added, 5);
        assert_eq!(store.tip().height, 5);
        // A shorter side branch from height 2 does not switch.
        let b = extend(&a[1], 2, 2);
        let out = store.insert(&b, u64::MAX / 2).expect("insert");
        assert_eq!(out.new_tip, None);
        assert_eq!(store.tip().hash, a[4].hash);
        // Extending it past the main chain's work does, replacing 3 blocks.
        let b2 = extend(&b[1], 2, 2);
        let out = store.insert(&b2, u64::MAX / 2).expect("insert");
        assert_eq!(out.reorg_depth, 3);
        assert_eq!(store.tip().hash, b2[1].hash);
        assert_eq!(store.main_hash(3).expect("read"), Some(b[0].hash));
        assert_eq!(store.main_hash(2).expect("read"), Some(a[1].hash));
        // Blocks after a locator on the old branch start at the fork.
        let after = store
            .blocks_after(&[a[4].hash, a[1].hash], 100, usize::MAX)
            .expect("read");
        assert_eq!(after.first().map(|b| b.index), Some(3));
        assert_eq!(after.len(), 4);
        drop(store);
        let store = ChainStore::open(&path, "net", RULES).expect("reopen");
        assert_eq!(store.tip().hash, b2[1].hash);
        assert!(store.locator().expect("locator").len() >= 7);
        let recent = store.recent(3).expect("recent");
        assert_eq!(recent.len(), 3);
        assert_eq!((recent[0].height, recent[0].hash), (6, b2[1].hash));
        assert_eq!((recent[2].height, recent[2].hash), (4, b[1].hash));
        drop(store);
        assert!(matches!(
            ChainStore::open(&path, "other", RULES),
            Err(ChainError::WrongNetwork)
        ));
    }

    #[test]
    fn invalid_block_keeps_the_valid_prefix_and_unknown_parent_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = ChainStore::open(&dir.path().join("c.redb"), "net", RULES).expect("open");
        let g = store.tip_block().clone();
        let mut a = extend(&g, 3, 1);
        a[2].data = b"forged".to_vec();
        let err = store.insert(&a, u64::MAX / 2).expect_err("invalid");
        assert!(matches!(
            err,
            ChainError::Invalid(ValidationError::BadHash { .. })
        ));
        assert_eq!(store.tip().height, 2);
        let orphan = extend(&a[1], 2, 3);
        assert!(matches!(
            store.insert(&orphan[1..], u64::MAX / 2),
            Err(ChainError::UnknownParent { .. })
        ));
    }
}
