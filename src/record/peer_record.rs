//! [`PeerRecord`]: the signed claim "node N, key K, listens at A, valid until T, version S".

use std::fmt;

use super::signature_check::SignatureCheck;
use serde::{Deserialize, Serialize};

use super::{signing_bytes, PeerAddress, RecordError};

const RECORD_DOMAIN: &str = "peerchain/record/v1";

/// A node's id: sha256 of its ed25519 public key, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(#[serde(with = "crate::record::hex_bytes")] pub [u8; 32]);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &hex::encode(self.0)[..12])
    }
}

/// A signed peer record, as registered with the bootstrap cluster and handed to other nodes.
///
/// The signature covers (network id, address, seq, expiry) under the key whose sha256 is
/// `node_id`, so a bootstrap (or anyone relaying the record) cannot forge or alter it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub node_id: NodeId,
    #[serde(with = "crate::record::hex_bytes")]
    pub public_key: Vec<u8>,
    pub address: String,
    /// Version of this node's record: a register with a larger seq replaces a smaller one.
    pub seq: u64,
    /// Unix time in milliseconds after which the record is dropped unless renewed.
    pub expires_at_ms: u64,
    #[serde(with = "crate::record::hex_bytes")]
    pub signature: Vec<u8>,
}

impl PeerRecord {
    /// The bytes the owner signs for this record in network `network_id`.
    pub fn signing_bytes(network_id: &str, address: &str, seq: u64, expires_at_ms: u64) -> Vec<u8> {
        signing_bytes(RECORD_DOMAIN, network_id, address, seq, expires_at_ms)
    }

    /// Checks the address, the node id and the signature for network `network_id`.
    ///
    /// # Errors
    /// The first [`RecordError`] found.
    pub fn verify(&self, network_id: &str) -> Result<(), RecordError> {
        self.signature_check(network_id)?.verify()
    }

    /// Everything [`Self::verify`] checks but the signature equation, which the result
    /// checks alone or in a batch ([`super::signature_check::verify_all`]).
    ///
    /// # Errors
    /// The first [`RecordError`] found.
    pub fn signature_check(&self, network_id: &str) -> Result<SignatureCheck, RecordError> {
        PeerAddress::parse(&self.address)?;
        let msg = Self::signing_bytes(network_id, &self.address, self.seq, self.expires_at_ms);
        SignatureCheck::new(&self.node_id, &self.public_key, &self.signature, msg)
    }

    /// Checks that the record is still live at `earliest_ms` and expires no later than
    /// `latest_ms + max_ttl_ms`: the true time is known only to lie between the two (see
    /// `bootstrap::ClusterClock::validity_window`), and only a record wrong at every time in
    /// between is refused.
    ///
    /// # Errors
    /// [`RecordError::BadExpiry`].
    pub fn check_expiry(
        &self,
        earliest_ms: u64,
        latest_ms: u64,
        max_ttl_ms: u64,
    ) -> Result<(), RecordError> {
        if self.expires_at_ms <= earliest_ms
            || self.expires_at_ms > latest_ms.saturating_add(max_ttl_ms)
        {
            return Err(RecordError::BadExpiry { max_ttl_ms });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::NodeIdentity;
    use super::*;

    #[test]
    fn signed_record_verifies_and_tampering_breaks_it() {
        let id = NodeIdentity::generate();
        let rec = id.sign_record("net", "127.0.0.1:7000", 5, 1_000);
        assert_eq!(rec.verify("net"), Ok(()));
        assert_eq!(rec.verify("other-net"), Err(RecordError::BadSignature));
        let mut moved = rec.clone();
        moved.address = "127.0.0.2:7000".into();
        assert_eq!(moved.verify("net"), Err(RecordError::BadSignature));
        let mut bumped = rec.clone();
        bumped.seq = 6;
        assert_eq!(bumped.verify("net"), Err(RecordError::BadSignature));
        let mut other_key = rec.clone();
        other_key.public_key = NodeIdentity::generate().public_key().to_vec();
        assert_eq!(other_key.verify("net"), Err(RecordError::NodeIdMismatch));
        let mut short = rec;
        short.signature.truncate(10);
        assert_eq!(
            short.verify("net"),
            Err(RecordError::BadKeyOrSignatureLength)
        );
    }

    #[test]
    fn expiry_window() {
        let rec = NodeIdentity::generate().sign_record("n", "h:1", 1, 10_000);
        assert!(rec.check_expiry(5_000, 5_000, 60_000).is_ok());
        assert!(rec.check_expiry(10_000, 10_000, 60_000).is_err());
        assert!(rec.check_expiry(0, 0, 5_000).is_err());
        // An uncertain time refuses only what is wrong at both ends of the window.
        assert!(rec.check_expiry(0, 6_000, 5_000).is_ok());
        assert!(rec.check_expiry(10_000, 20_000, 60_000).is_err());
        assert!(rec.check_expiry(0, 4_000, 5_000).is_err());
    }
}
