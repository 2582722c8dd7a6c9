//! The genesis block: fixed per network id, so nodes of different networks never share a
//! chain.

use super::block::header_hash;
use super::Block;

/// The first block of network `network_id`.
pub fn genesis(network_id: &str) -> Block {
    let data = format!("peerchain genesis for network {network_id}").into_bytes();
    let hash = header_hash(0, 0, &[0; 32], &data, 0, 0);
    Block {
        index: 0,
        timestamp_ms: 0,
        prev_hash: [0; 32],
        data,
        nonce: 0,
        difficulty: 0,
        hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_fixed_per_network() {
        assert_eq!(genesis("a"), genesis("a"));
        assert_ne!(genesis("a").hash, genesis("b").hash);
        assert_eq!(genesis("a").hash, genesis("a").compute_hash());
    }
}
