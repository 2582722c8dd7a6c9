//! The node-to-node protocol: [`PeerMessage`]s exchanged between nodes, and the status query
//! that `peerchain ctl status` sends to a node's port.
//!
//! A connection opens with a handshake in both directions:
//!
//! ```text
//!  dialer                                   listener
//!    | --- Hello{key, network, tip, challenge} --> |
//!    | <-- Hello{key, network, tip, challenge} --- |
//!    | --- HelloProof{sig over listener's challenge} --> |
//!    | <-- HelloProof{sig over dialer's challenge} ----- |
//!    |      (both proofs checked: the connection is ready)
//!    | <== Ping/Pong, GetAddr/Addr, GetBlocks/Blocks, NewBlock ==> |
//! ```
//!
//! A connection whose first message is [`PeerMessage::GetStatus`] gets one
//! [`PeerMessage::Status`] and is closed.

use serde::{Deserialize, Serialize};

use crate::chain::{Block, BlockHash};
use crate::record::NodeId;

/// Version of the node protocol, sent in [`PeerMessage::Hello`].
pub const PEER_PROTOCOL_VERSION: u16 = 1;
/// Most addresses in one [`PeerMessage::Addr`].
pub const MAX_ADDRS_PER_MESSAGE: usize = 1000;
/// Most blocks asked for or sent in one [`PeerMessage::Blocks`].
pub const MAX_BLOCKS_PER_MESSAGE: u32 = 500;
/// Most hashes in a block locator.
pub const MAX_LOCATOR_HASHES: usize = 64;

/// A chain tip as announced by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    pub height: u64,
    #[serde(with = "crate::record::hex_bytes")]
    pub hash: BlockHash,
    /// Cumulative work of the chain ending at this block.
    pub total_work: u128,
}

/// One message between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PeerMessage {
    /// Opens the handshake: who I am and a challenge for you to sign.
    Hello(Hello),
    /// Signature over the peer's challenge (see [`crate::node::Handshake`]).
    HelloProof {
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// Keepalive; answered with `Pong` carrying the same nonce.
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// Asks for addresses of other nodes (rate limited per peer).
    GetAddr,
    /// Answer to `GetAddr`: at most [`MAX_ADDRS_PER_MESSAGE`] listen addresses.
    Addr {
        addrs: Vec<String>,
    },
    /// Asks for main-chain blocks after the first locator hash the peer has on its main
    /// chain, at most `limit`.
    GetBlocks {
        #[serde(with = "hash_list")]
        locator: Vec<BlockHash>,
        limit: u32,
    },
    /// Answer to `GetBlocks`, in chain order; empty if there is nothing after the locator.
    /// `tip` is the sender's tip now.
    Blocks {
        blocks: Vec<Block>,
        tip: Tip,
    },
    /// A block the sender just added to its best chain (mined or adopted).
    NewBlock {
        block: Block,
    },
    /// Asks a node (not a peer) for its status; the reply is `Status`, then the node closes.
    GetStatus,
    Status(Box<NodeStatus>),
    /// The sender closes the connection for `reason`.
    Goodbye {
        reason: String,
    },
}

/// The first message of a peer connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub network_id: String,
    #[serde(with = "crate::record::hex_bytes")]
    pub public_key: [u8; 32],
    /// Where the sender accepts connections (`None` for a node that does not listen).
    pub listen_addr: Option<String>,
    pub tip: Tip,
    #[serde(with = "crate::record::hex_bytes")]
    pub genesis: BlockHash,
    /// The proof-of-work difficulty the sender requires (a network-wide rule).
    pub difficulty: u32,
    #[serde(with = "crate::record::hex_bytes")]
    pub challenge: [u8; 32],
}

/// What `peerchain ctl status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub network_id: String,
    pub listen_addr: String,
    pub tip: Tip,
    /// The last main-chain blocks, tip first: `(height, hash)`. Lets an observer check that
    /// nodes reporting different tips are on one chain (one is an ancestor of the other).
    #[serde(default)]
    pub recent_blocks: Vec<RecentBlock>,
    /// `Some((have, target))` while catching up with a peer.
    pub syncing: Option<(u64, u64)>,
    pub mining: bool,
    pub blocks_mined: u64,
    pub peers: Vec<PeerStatus>,
    /// Entries in the address book.
    pub known_addresses: Vec<String>,
    pub banned: Vec<String>,
    /// The bootstrap member last answered, if any.
    pub bootstrap: Option<String>,
    /// Bootstrap members learned from the cluster.
    pub bootstrap_members: Vec<String>,
    pub registered: bool,
    /// Addresses the address book refused, by cap (absent from older nodes: all zero).
    #[serde(default)]
    pub book_drops: BookDrops,
}

/// Counts of addresses the address book refused since the node started, by the cap that
/// refused them (see `node::book_limits`). Shown by `ctl status` so an operator can see a
/// flood being held off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDrops {
    /// The address's /24 (IPv6 /48, or the shared host-name group) was full.
    #[serde(default)]
    pub net_group_full: u64,
    /// The address's /16 (IPv6 /32) was full.
    #[serde(default)]
    pub wide_group_full: u64,
    /// The gossiping peer's /16 (IPv6 /32) had already added its share of the book.
    #[serde(default)]
    pub source_share_full: u64,
    /// The book was full of addresses no worse than this one.
    #[serde(default)]
    pub book_full: u64,
}

/// A main-chain block in [`NodeStatus::recent_blocks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentBlock {
    pub height: u64,
    #[serde(with = "crate::record::hex_bytes")]
    pub hash: BlockHash,
}

/// One connected peer in [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node_id: NodeId,
    /// The peer's listen address (or the socket address if it does not listen).
    pub addr: String,
    pub outbound: bool,
    pub tip_height: u64,
    pub ban_score: u32,
}

/// Serde for a list of 32-byte hashes as MessagePack binaries / hex strings.
mod hash_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct H(#[serde(with = "crate::record::hex_bytes")] [u8; 32]);

    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(|h| H(*h)).collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Ok(Vec::<H>::deserialize(d)?.into_iter().map(|h| h.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameCodec;
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

    #[test]
    fn messages_round_trip_through_frames_including_u128_work() {
        let tip = Tip {
            height: 7,
            hash: [9; 32],
            total_work: u128::MAX - 5,
        };
        let mut codec: FrameCodec<PeerMessage, PeerMessage> = FrameCodec::default();
        let mut buf = BytesMut::new();
        for body in [
            PeerMessage::GetBlocks {
                locator: vec![[1; 32], [2; 32]],
                limit: 10,
            },
            PeerMessage::Blocks {
                blocks: vec![crate::chain::genesis("n")],
                tip,
            },
        ] {
            codec.encode(body, &mut buf).expect("encode");
        }
        match codec.decode(&mut buf).expect("decode") {
            Some(PeerMessage::GetBlocks { locator, limit }) => {
                assert_eq!(locator, vec![[1; 32], [2; 32]]);
                assert_eq!(limit, 10);
            }
            other => panic!("unexpected {other:?}"),
        }
        match codec.decode(&mut buf).expect("decode") {
            Some(PeerMessage::Blocks { blocks, tip: t }) => {
                assert_eq!(blocks, vec![crate::chain::genesis("n")]);
                assert_eq!(t, tip);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
