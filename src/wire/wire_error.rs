//! Errors that cross the wire ([`ErrorCode`], [`ErrorReply`]) and errors met while reading it
//! ([`DecodeError`]).

use serde::{Deserialize, Serialize};

/// Why a request was refused; carried in every error reply so that callers can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be decoded, or the message is unknown to this version.
    BadRequest,
    /// A signature did not verify against the record's public key.
    BadSignature,
    /// The record's sequence number is not newer than the stored one.
    StaleSeq,
    /// The address belongs to another node's live signed record.
    NotOwner,
    /// No such record.
    NotFound,
    /// The record is malformed (bad address, node id mismatch, expiry out of range, ...).
    InvalidRecord,
    /// The request needs a connection authenticated with the cluster secret.
    Unauthenticated,
    /// No leader is known right now (election in progress, or no quorum): retry later.
    NoLeader,
    /// This member cannot reach a quorum or the leader in time: retry later.
    Unavailable,
    /// The store refused the write (disk full, I/O error); reads go on.
    Storage,
    /// A membership change was refused.
    Membership,
    /// Anything else that went wrong on the server.
    Internal,
}

impl ErrorCode {
    /// Whether the same request may succeed if retried later (possibly on another member).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::NoLeader | Self::Unavailable | Self::Storage)
    }
}

/// An error reply: a code to branch on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What went wrong while reading or writing frames.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame larger than the {max}-byte limit")]
    FrameTooLarge { max: usize },
    #[error("connection closed in the middle of a frame")]
    TruncatedFrame,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The receiver holds too many bytes of incomplete frames from all its peers together.
    #[error(
        "this member holds {budget} bytes of incomplete frames and lines already (its \
         limit); send the rest of a request promptly, or retry later"
    )]
    OverBudget { budget: u64 },
}
