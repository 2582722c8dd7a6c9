//! [`NodeStatusQuery`]: asks a node for its status over the node protocol (used by
//! `peerchain ctl status`, `peerchain health --node` and the devnet's table).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::ClientError;
use crate::wire::{FrameCodec, NodeStatus, PeerMessage};

/// Largest status reply accepted (a node's status lists its address book).
const MAX_STATUS_FRAME: usize = 4 * 1024 * 1024;

/// A one-shot status query to a node.
pub struct NodeStatusQuery;

impl NodeStatusQuery {
    /// Connects to the node at `addr` and returns its status, all within `timeout`.
    ///
    /// # Errors
    /// Connection, timeout and decode errors, or an unexpected reply.
    pub async fn fetch(addr: &str, timeout: Duration) -> Result<NodeStatus, ClientError> {
        tokio::time::timeout(timeout, Self::fetch_inner(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.to_string(),
                timeout,
            })?
    }

    async fn fetch_inner(addr: &str) -> Result<NodeStatus, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let mut framed = Framed::new(
            stream,
            FrameCodec::<PeerMessage, PeerMessage>::new(MAX_STATUS_FRAME),
        );
        let wire = |source| ClientError::Wire {
            addr: addr.to_string(),
            source,
        };
        framed.send(PeerMessage::GetStatus).await.map_err(wire)?;
        match framed.next().await {
            Some(Ok(PeerMessage::Status(status))) => Ok(*status),
            Some(Ok(other)) => Err(ClientError::Unexpected(format!("{other:?}"))),
            Some(Err(e)) => Err(wire(e)),
            None => Err(ClientError::Closed {
                addr: addr.to_string(),
            }),
        }
    }
}
