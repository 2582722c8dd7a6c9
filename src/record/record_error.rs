//! [`RecordError`]: why a signed record or deregistration is refused before it reaches Raft.

use crate::wire::{ErrorCode, ErrorReply};

/// Why a record or deregistration is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("public key must be 32 bytes and signature 64 bytes")]
    BadKeyOrSignatureLength,
    #[error("node id is not the sha256 of the public key")]
    NodeIdMismatch,
    #[error("public key is not a valid ed25519 point")]
    BadPublicKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("invalid address {0:?}: expected host:port")]
    BadAddress(String),
    #[error("record expired or expiry too far ahead (max ttl {max_ttl_ms} ms)")]
    BadExpiry { max_ttl_ms: u64 },
}

impl From<RecordError> for ErrorReply {
    fn from(e: RecordError) -> Self {
        let code = match e {
            RecordError::BadSignature | RecordError::BadPublicKey => ErrorCode::BadSignature,
            _ => ErrorCode::InvalidRecord,
        };
        ErrorReply::new(code, e.to_string())
    }
}
