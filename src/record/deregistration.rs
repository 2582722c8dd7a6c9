//! [`Deregistration`]: the owner's signed request to drop its record.

use serde::{Deserialize, Serialize};

use super::signature_check::SignatureCheck;
use super::{signing_bytes, NodeId, RecordError};

const DEREGISTER_DOMAIN: &str = "peerchain/deregister/v1";

/// "Remove my record at `address`", signed by the record's key.
///
/// `seq` must be at least the stored record's seq, so a captured deregistration cannot be
/// replayed against a later registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregistration {
    pub node_id: NodeId,
    #[serde(with = "crate::record::hex_bytes")]
    pub public_key: Vec<u8>,
    pub address: String,
    pub seq: u64,
    #[serde(with = "crate::record::hex_bytes")]
    pub signature: Vec<u8>,
}

impl Deregistration {
    /// The bytes the owner signs.
    pub fn signing_bytes(network_id: &str, address: &str, seq: u64) -> Vec<u8> {
        signing_bytes(DEREGISTER_DOMAIN, network_id, address, seq, 0)
    }

    /// Checks the node id and signature for network `network_id`.
    ///
    /// # Errors
    /// The first [`RecordError`] found.
    pub fn verify(&self, network_id: &str) -> Result<(), RecordError> {
        self.signature_check(network_id)?.verify()
    }

    /// Everything [`Self::verify`] checks but the signature equation.
    ///
    /// # Errors
    /// The first [`RecordError`] found.
    pub fn signature_check(&self, network_id: &str) -> Result<SignatureCheck, RecordError> {
        let msg = Self::signing_bytes(network_id, &self.address, self.seq);
        SignatureCheck::new(&self.node_id, &self.public_key, &self.signature, msg)
    }
}
