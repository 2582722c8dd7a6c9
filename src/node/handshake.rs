//! [`Handshake`]: the checks that open a peer connection (pure, no I/O). Each side sends a
//! [`Hello`] with a random challenge and proves its key by signing the other side's challenge.

use crate::chain::BlockHash;
use crate::record::{verify_signed_by, NodeId, NodeIdentity};
use crate::wire::{Hello, Tip, PEER_PROTOCOL_VERSION};

const DOMAIN: &[u8] = b"peerchain/handshake/v1";

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("peer speaks protocol version {0}, we speak {PEER_PROTOCOL_VERSION}")]
    WrongVersion(u16),
    #[error("peer is on network {0:?}")]
    WrongNetwork(String),
    #[error("peer has a different genesis block")]
    WrongGenesis,
    #[error("peer requires difficulty {0}, we require {1}")]
    WrongDifficulty(u32, u32),
    #[error("connected to ourselves")]
    SelfConnection,
    #[error("peer's proof of its key does not verify")]
    BadProof,
}

/// One side of a handshake: our identity, the challenge we sent, what we expect.
pub struct Handshake {
    network_id: String,
    genesis: BlockHash,
    difficulty: u32,
    challenge: [u8; 32],
}

impl Handshake {
    /// A handshake for `network_id` (with its genesis and difficulty) with a fresh random
    /// challenge.
    pub fn new(network_id: &str, genesis: BlockHash, difficulty: u32) -> Self {
        Self {
            network_id: network_id.to_string(),
            genesis,
            difficulty,
            challenge: rand::random(),
        }
    }

    /// Our `Hello`.
    pub fn hello(&self, identity: &NodeIdentity, listen_addr: Option<String>, tip: Tip) -> Hello {
        Hello {
            version: PEER_PROTOCOL_VERSION,
            network_id: self.network_id.clone(),
            public_key: identity.public_key(),
            listen_addr,
            tip,
            genesis: self.genesis,
            difficulty: self.difficulty,
            challenge: self.challenge,
        }
    }

    /// Checks the peer's `Hello`; returns its node id.
    ///
    /// # Errors
    /// Another version, network or genesis, or our own key.
    pub fn check_hello(
        &self,
        hello: &Hello,
        identity: &NodeIdentity,
    ) -> Result<NodeId, HandshakeError> {
        if hello.version != PEER_PROTOCOL_VERSION {
            return Err(HandshakeError::WrongVersion(hello.version));
        }
        if hello.network_id != self.network_id {
            return Err(HandshakeError::WrongNetwork(hello.network_id.clone()));
        }
        if hello.genesis != self.genesis {
            return Err(HandshakeError::WrongGenesis);
        }
        if hello.difficulty != self.difficulty {
            return Err(HandshakeError::WrongDifficulty(
                hello.difficulty,
                self.difficulty,
            ));
        }
        if hello.public_key == identity.public_key() {
            return Err(HandshakeError::SelfConnection);
        }
        Ok(crate::record::node_id_of(&hello.public_key))
    }

    /// Our proof for the peer: a signature over its challenge.
    pub fn prove(&self, identity: &NodeIdentity, peer: &Hello) -> Vec<u8> {
        identity
            .sign(&proof_bytes(
                &self.network_id,
                &peer.challenge,
                &identity.public_key(),
            ))
            .to_vec()
    }

    /// Checks the peer's signature over our challenge.
    ///
    /// # Errors
    /// [`HandshakeError::BadProof`].
    pub fn verify_proof(&self, peer: &Hello, signature: &[u8]) -> Result<(), HandshakeError> {
        let msg = proof_bytes(&self.network_id, &self.challenge, &peer.public_key);
        verify_signed_by(&peer.public_key, signature, &msg)
            .map(|_| ())
            .map_err(|_| HandshakeError::BadProof)
    }
}

fn proof_bytes(network_id: &str, challenge: &[u8; 32], public_key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + network_id.len() + 72);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&(network_id.len() as u32).to_be_bytes());
    out.extend_from_slice(network_id.as_bytes());
    out.extend_from_slice(challenge);
    out.extend_from_slice(public_key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip() -> Tip {
        Tip {
            height: 0,
            hash: [0; 32],
            total_work: 1,
        }
    }

    #[test]
    fn proofs_verify_only_for_the_right_challenge_key_and_network() {
        let (a, b) = (NodeIdentity::generate(), NodeIdentity::generate());
        let ha = Handshake::new("net", [1; 32], 8);
        let hb = Handshake::new("net", [1; 32], 8);
        let hello_a = ha.hello(&a, Some("127.0.0.1:1".into()), tip());
        let hello_b = hb.hello(&b, None, tip());
        assert_eq!(hb.check_hello(&hello_a, &b), Ok(a.node_id()));
        assert_eq!(
            ha.check_hello(&hello_a, &a),
            Err(HandshakeError::SelfConnection)
        );
        let proof_b = hb.prove(&b, &hello_a);
        assert_eq!(ha.verify_proof(&hello_b, &proof_b), Ok(()));
        // A proof made for another challenge (replayed from another connection) fails.
        let other = Handshake::new("net", [1; 32], 8);
        assert_eq!(
            other.verify_proof(&hello_b, &proof_b),
            Err(HandshakeError::BadProof)
        );
        // Someone claiming b's key without it fails.
        let mallory = NodeIdentity::generate();
        let forged = hb.prove(&mallory, &hello_a);
        assert_eq!(
            ha.verify_proof(&hello_b, &forged),
            Err(HandshakeError::BadProof)
        );
        let wrong_net = Handshake::new("other", [1; 32], 8).hello(&b, None, tip());
        assert!(matches!(
            ha.check_hello(&wrong_net, &a),
            Err(HandshakeError::WrongNetwork(_))
        ));
        let wrong_gen = Handshake::new("net", [2; 32], 8).hello(&b, None, tip());
        assert_eq!(
            ha.check_hello(&wrong_gen, &a),
            Err(HandshakeError::WrongGenesis)
        );
        let harder = Handshake::new("net", [1; 32], 9).hello(&b, None, tip());
        assert_eq!(
            ha.check_hello(&harder, &a),
            Err(HandshakeError::WrongDifficulty(9, 8))
        );
    }
}
