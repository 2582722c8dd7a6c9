//! [`validate_block`]: everything a block must satisfy relative to its parent, as pure code
//! with a typed error per rule.

use super::block::meets_difficulty;
use super::Block;

/// Largest block data accepted.
pub const MAX_BLOCK_DATA: usize = 64 * 1024;
/// How far in the future a block's timestamp may be.
pub const MAX_FUTURE_DRIFT_MS: u64 = 2 * 60 * 1000;

/// The network's consensus parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationRules {
    /// Every block after genesis must carry exactly this difficulty.
    pub difficulty: u32,
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("block {index} does not follow parent {parent_index}")]
    BadIndex { index: u64, parent_index: u64 },
    #[error("block {index} does not link to its parent's hash")]
    BadLink { index: u64 },
    #[error("block {index} hash does not match its contents")]
    BadHash { index: u64 },
    #[error("block {index} has difficulty {got}, network requires {want}")]
    WrongDifficulty { index: u64, got: u32, want: u32 },
    #[error("block {index} hash does not meet its difficulty")]
    InsufficientWork { index: u64 },
    #[error("block {index} timestamp is not after its parent's")]
    TimestampNotIncreasing { index: u64 },
    #[error("block {index} timestamp is too far in the future")]
    TimestampInFuture { index: u64 },
    #[error("block {index} data is {len} bytes, more than {MAX_BLOCK_DATA}")]
    DataTooLarge { index: u64, len: usize },
}

/// Checks `block` as the child of `parent`, at local time `now_ms`.
///
/// # Errors
/// The first rule the block breaks.
pub fn validate_block(
    block: &Block,
    parent: &Block,
    rules: ValidationRules,
    now_ms: u64,
) -> Result<(), ValidationError> {
    let index = block.index;
    if parent.index.checked_add(1) != Some(index) {
        return Err(ValidationError::BadIndex {
            index,
            parent_index: parent.index,
        });
    }
    if block.prev_hash != parent.hash {
        return Err(ValidationError::BadLink { index });
    }
    if block.data.len() > MAX_BLOCK_DATA {
        return Err(ValidationError::DataTooLarge {
            index,
            len: block.data.len(),
        });
    }
    if block.difficulty != rules.difficulty {
        return Err(ValidationError::WrongDifficulty {
            index,
            got: block.difficulty,
            want: rules.difficulty,
        });
    }
    if block.timestamp_ms <= parent.timestamp_ms {
        return Err(ValidationError::TimestampNotIncreasing { index });
    }
    if block.timestamp_ms > now_ms.saturating_add(MAX_FUTURE_DRIFT_MS) {
        return Err(ValidationError::TimestampInFuture { index });
    }
    if block.compute_hash() != block.hash {
        return Err(ValidationError::BadHash { index });
    }
    if !meets_difficulty(&block.hash, block.difficulty) {
        return Err(ValidationError::InsufficientWork { index });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{genesis, mine};
    use super::*;

    const RULES: ValidationRules = ValidationRules { difficulty: 8 };

    fn child(parent: &Block) -> Block {
        mine(
            parent,
            b"tx".to_vec(),
            parent.timestamp_ms + 10,
            8,
            0,
            1 << 20,
        )
        .expect("mined")
    }

    #[test]
    fn mined_blocks_validate_and_each_rule_is_enforced() {
        let g = genesis("net");
        let b1 = child(&g);
        assert_eq!(validate_block(&b1, &g, RULES, 1_000), Ok(()));
        let b2 = child(&b1);
        assert_eq!(validate_block(&b2, &b1, RULES, 1_000), Ok(()));
        assert!(matches!(
            validate_block(&b2, &g, RULES, 1_000),
            Err(ValidationError::BadIndex { .. })
        ));

        let mut bad = b1.clone();
        bad.prev_hash[0] ^= 1;
        assert!(matches!(
            validate_block(&bad, &g, RULES, 1_000),
            Err(ValidationError::BadLink { .. })
        ));
        let mut bad = b1.clone();
        bad.data = b"other".to_vec();
        assert!(matches!(
            validate_block(&bad, &g, RULES, 1_000),
            Err(ValidationError::BadHash { .. })
        ));
        let mut weak = b1.clone();
        while meets_difficulty(&weak.hash, 8) {
            weak.nonce += 1;
            weak.hash = weak.compute_hash();
        }
        assert!(matches!(
            validate_block(&weak, &g, RULES, 1_000),
            Err(ValidationError::InsufficientWork { .. })
        ));
        assert!(matches!(
            validate_block(&b1, &g, ValidationRules { difficulty: 9 }, 1_000),
            Err(ValidationError::WrongDifficulty { .. })
        ));
        let future = mine(&g, vec![], 10_000_000, 8, 0, 1 << 20).expect("mined");
        assert!(matches!(
            validate_block(&future, &g, RULES, 0),
            Err(ValidationError::TimestampInFuture { .. })
        ));
        let mut stale = b1.clone();
        stale.timestamp_ms = 0;
        stale.hash = stale.compute_hash();
        assert!(matches!(
            validate_block(&stale, &g, RULES, 1_000),
            Err(ValidationError::TimestampNotIncreasing { .. })
        ));
        let big = mine(&g, vec![0; MAX_BLOCK_DATA + 1], 5, 8, 0, 1 << 20).expect("mined");
        assert!(matches!(
            validate_block(&big, &g, RULES, 1_000),
            Err(ValidationError::DataTooLarge { .. })
        ));
    }
}
