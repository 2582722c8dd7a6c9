//! [`mine`]: the nonce search. CPU-bound; callers run it off the actor threads.

use super::block::{header_hash, meets_difficulty};
use super::Block;

/// Searches nonces for a block on top of `parent` until one meets `difficulty`, or until
/// `max_tries` hashes have been tried (so a miner can check for newer tips between rounds).
pub fn mine(
    parent: &Block,
    data: Vec<u8>,
    timestamp_ms: u64,
    difficulty: u32,
    start_nonce: u64,
    max_tries: u64,
) -> Option<Block> {
    let index = parent.index + 1;
    let timestamp_ms = timestamp_ms.max(parent.timestamp_ms + 1);
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
