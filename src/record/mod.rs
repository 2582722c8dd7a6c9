//! Signed peer records: who a node is (its ed25519 key), where it listens, and how long that
//! claim holds.
//!
//! Layout:
//! - [`node_identity`] — a node's key pair, loaded from or created in its data directory.
//! - [`peer_record`] — the signed record a node registers, and its verification.
//! - [`deregistration`] — the owner's signed request to remove its record.
//! - [`peer_address`] — the `host:port` a peer listens on, validated, and its subnet group.
//! - [`record_error`] — why a record or deregistration was refused.
//! - [`signature_check`] — a signature checked alone or in a batch.
//! - [`source_subnet`] — the /24 or /48 a connection's source address belongs to (quotas).

pub mod deregistration;
pub mod hex_bytes;
pub mod node_identity;
pub mod peer_address;
pub mod peer_record;
pub mod record_error;
pub mod signature_check;
pub mod source_subnet;

pub use deregistration::Deregistration;
pub use node_identity::NodeIdentity;
pub use peer_address::PeerAddress;
pub use peer_record::{NodeId, PeerRecord};
pub use record_error::RecordError;
pub use signature_check::{verify_all, SignatureCheck};
pub use source_subnet::SourceSubnet;

use sha2::{Digest, Sha256};

/// The bytes a signature covers: a domain tag, then every field length-prefixed or fixed-width,
/// so that no two different field lists ever produce the same bytes.
fn signing_bytes(
    domain: &str,
    network_id: &str,
    address: &str,
    seq: u64,
    expires_at_ms: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + network_id.len() + address.len());
    for field in [domain, network_id, address] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&expires_at_ms.to_be_bytes());
    out
}

/// A node's id: the sha256 of its ed25519 public key.
pub fn node_id_of(public_key: &[u8]) -> NodeId {
    NodeId(Sha256::digest(public_key).into())
}

/// Verifies an ed25519 `signature` over `msg` by `public_key`; returns the key's node id.
///
/// # Errors
/// [`RecordError`] for a bad key, length or signature.
pub fn verify_signed_by(
    public_key: &[u8; 32],
    signature: &[u8],
    msg: &[u8],
) -> Result<NodeId, RecordError> {
    let node_id = node_id_of(public_key);
    SignatureCheck::new(&node_id, public_key, signature, msg.to_vec())?.verify()?;
    Ok(node_id)
}
