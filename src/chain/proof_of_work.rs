//! [`mine`]: the nonce search. CPU-bound; callers run it off the actor threads.

use super::block::{header_hash, meets_difficulty};
use super::Block;

/// Searches nonces for a block on top of `parent` until one meets `difficulty`, or until
/// `max_tries` hashes have been tried (so a miner can check for newer tips between rounds).
/// `None` also when `parent` cannot have a child (its index or timestamp is `u64::MAX`).
pub fn mine(
    parent: &Block,
    data: Vec<u8>,
    timestamp_ms: u64,
    difficulty: u32,
    start_nonce: u64,
    max_tries: u64,
) -> Option<Block> {
    // A parent at the largest index or timestamp has no valid child (found by the `blocks`
    // fuzz target: `parent.index + 1` overflowed).
    let index = parent.index.checked_add(1)?;
    let timestamp_ms = timestamp_ms.max(parent.timestamp_ms.checked_add(1)?);
    for nonce in start_nonce..start_nonce.saturating_add(max_tries) {
        let hash = header_hash(index, timestamp_ms, &parent.hash, &data, nonce, difficulty);
        if meets_difficulty(&hash, difficulty) {
            return Some(Block {
                index,
                timestamp_ms,
                prev_hash: parent.hash,
                data,
                nonce,
                difficulty,
                hash,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_at_the_last_index_or_timestamp_has_no_child() {
        let mut parent = crate::chain::genesis("n");
        parent.index = u64::MAX;
        assert_eq!(mine(&parent, Vec::new(), 5, 0, 0, 10), None);
        parent.index = 1;
        parent.timestamp_ms = u64::MAX;
        assert_eq!(mine(&parent, Vec::new(), 5, 0, 0, 10), None);
        parent.timestamp_ms = 7;
        let child = mine(&parent, Vec::new(), 5, 0, 0, 10).expect("difficulty 0");
        assert_eq!((child.index, child.timestamp_ms), (2, 8));
    }
}
