//! [`LeaderLink`]: authenticated connections from this member to whichever member leads, used
//! to forward writes, admin requests and linearizable reads.

use std::time::Duration;

use tokio::sync::Mutex;

use crate::client::{ClientError, FrameConnection};
use crate::raft::raft_network::MEMBER_CONNECT_TIMEOUT;
use crate::raft::ClusterSecret;
use crate::wire::{Request, Response};

/// Connections kept open to the leader for reuse.
const POOL_SIZE: usize = 8;

/// A small pool of member connections to the current leader.
pub struct LeaderLink {
    secret: ClusterSecret,
    idle: Mutex<Vec<FrameConnection>>,
}

impl LeaderLink {
    pub fn new(secret: ClusterSecret) -> Self {
        Self {
            secret,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` to the member at `leader_addr` and returns its reply.
    ///
    /// # Errors
    /// Connection, authentication, timeout and server errors.
    pub async fn call(
        &self,
        leader_addr: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let pooled = {
            let mut idle = self.idle.lock().await;
            idle.retain(|c| c.addr() == leader_addr);
            idle.pop()
        };
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let mut c = FrameConnection::connect(leader_addr, MEMBER_CONNECT_TIMEOUT).await?;
                c.authenticate(&self.secret, timeout).await?;
                c
            }
        };
        let result = conn.call(request, timeout).await;
        match &result {
            Err(e) if e.is_connection() => {}
            _ => {
                let mut idle = self.idle.lock().await;
                if idle.len() < POOL_SIZE {
                    idle.push(conn);
                }
            }
        }
        result
    }
}
