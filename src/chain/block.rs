//! [`Block`]: index, timestamp, previous hash, data, nonce, difficulty and the sha256 that
//! proves the work.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A block hash (sha256).
pub type BlockHash = [u8; 32];

/// One block of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub index: u64,
    /// Unix time in milliseconds, as claimed by the miner.
    pub timestamp_ms: u64,
    #[serde(with = "crate::record::hex_bytes")]
    pub prev_hash: BlockHash,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub nonce: u64,
    /// Required leading zero bits of `hash`.
    pub difficulty: u32,
    #[serde(with = "crate::record::hex_bytes")]
    pub hash: BlockHash,
}

impl Block {
    /// The sha256 of every field but `hash`, in a fixed byte layout.
    pub fn compute_hash(&self) -> BlockHash {
        header_hash(
            self.index,
            self.timestamp_ms,
            &self.prev_hash,
            &self.data,
            self.nonce,
            self.difficulty,
        )
    }

    /// Work this block represents: the expected number of hashes to find it, 2^difficulty.
    pub fn work(&self) -> u128 {
        work_of(self.difficulty)
    }

    /// Short hex form of the hash for logs.
    pub fn short_hash(&self) -> String {
        hex::encode(&self.hash[..6])
    }
}

/// The hash of a block header with the given fields.
pub fn header_hash(
    index: u64,
    timestamp_ms: u64,
    prev_hash: &BlockHash,
    data: &[u8],
    nonce: u64,
    difficulty: u32,
) -> BlockHash {
    let mut h = Sha256::new();
    h.update(b"peerchain/block/v1");
    h.update(index.to_be_bytes());
    h.update(timestamp_ms.to_be_bytes());
    h.update(prev_hash);
    h.update((data.len() as u64).to_be_bytes());
    h.update(data);
    h.update(nonce.to_be_bytes());
    h.update(difficulty.to_be_bytes());
    h.finalize().into()
}

/// 2^difficulty, saturating.
pub fn work_of(difficulty: u32) -> u128 {
    1u128.checked_shl(difficulty.min(127)).unwrap_or(u128::MAX)
}

/// Whether `hash` starts with at least `bits` zero bits.
pub fn meets_difficulty(hash: &BlockHash, bits: u32) -> bool {
    let mut remaining = bits;
    for byte in hash {
        if remaining == 0 {
            return true;
        }
        if remaining >= 8 {
            if *byte != 0 {
                return false;
            }
            remaining -= 8;
        } else {
            return byte.leading_zeros() >= remaining;
        }
    }
    remaining == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_counts_leading_zero_bits() {
        let mut h = [0xffu8; 32];
        assert!(meets_difficulty(&h, 0));
        assert!(!meets_difficulty(&h, 1));
        h[0] = 0;
        h[1] = 0x1f;
        assert!(meets_difficulty(&h, 11));
        assert!(!meets_difficulty(&h, 12));
        assert!(meets_difficulty(&[0u8; 32], 256));
    }

    #[test]
    fn hash_covers_every_field() {
        let base = header_hash(1, 2, &[3; 32], b"d", 4, 5);
        assert_ne!(base, header_hash(2, 2, &[3; 32], b"d", 4, 5));
        assert_ne!(base, header_hash(1, 3, &[3; 32], b"d", 4, 5));
        assert_ne!(base, header_hash(1, 2, &[4; 32], b"d", 4, 5));
        assert_ne!(base, header_hash(1, 2, &[3; 32], b"e", 4, 5));
        assert_ne!(base, header_hash(1, 2, &[3; 32], b"d", 5, 5));
        assert_ne!(base, header_hash(1, 2, &[3; 32], b"d", 4, 6));
        assert_eq!(work_of(3), 8);
    }
}
