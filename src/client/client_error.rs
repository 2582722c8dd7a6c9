//! [`ClientError`]: why a call to the bootstrap cluster failed.

use std::time::Duration;

use crate::wire::{DecodeError, ErrorReply};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("no reply from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("connection to {addr} failed: {source}")]
    Wire {
        addr: String,
        #[source]
        source: DecodeError,
    },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("request larger than the {max}-byte frame limit; nothing was sent")]
    RequestTooLarge { max: usize },
    #[error("{0}")]
    Server(ErrorReply),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    #[error("member authentication with {addr} failed: {reason}")]
    Auth { addr: String, reason: String },
    #[error("no bootstrap member reachable (tried {tried}): {last}")]
    AllUnreachable { tried: String, last: String },
}

impl ClientError {
    /// The connection is unusable: try another member.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Wire { .. } | Self::Closed { .. }
        )
    }

    /// Retrying later (or elsewhere) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Server(reply) => reply.code.is_transient(),
            Self::AllUnreachable { .. } => true,
            other => other.is_connection(),
        }
    }
}
