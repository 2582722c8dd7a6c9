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
        if let Some(conn) = pooled {
            match self.call_on(conn, request.clone(), timeout).await {
                // A pooled connection may have been closed by the leader meanwhile (idle
                // timeout, restart): retry once on a fresh one. Not after a timeout: the
                // request may have been carried out, and a retry would run it twice.
                Err(ClientError::Closed { .. } | ClientError::Wire { .. }) => {}
                other => return other,
            }
        }
        let mut conn = FrameConnection::connect(leader_addr, MEMBER_CONNECT_TIMEOUT).await?;
        conn.authenticate(&self.secret, timeout).await?;
        self.call_on(conn, request, timeout).await
    }

    /// Sends `request` to the member at `addr` on a new authenticated connection, closed
    /// afterwards: for a rare call to a member that need not lead (an election request),
    /// which must not evict the pooled connections to the leader.
    ///
    /// # Errors
    /// Connection, authentication, timeout and server errors.
    pub async fn call_once(
        &self,
        addr: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let mut conn = FrameConnection::connect(addr, MEMBER_CONNECT_TIMEOUT).await?;
        conn.authenticate(&self.secret, timeout).await?;
        conn.call(request, timeout).await
    }

    async fn call_on(
        &self,
        mut conn: FrameConnection,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let result = conn.call(request, timeout).await;
        if !matches!(&result, Err(e) if e.is_connection()) {
            let mut idle = self.idle.lock().await;
            if idle.len() < POOL_SIZE {
                idle.push(conn);
            }
        }
        result
    }
}
