//! [`FrameConnection`]: one TCP connection to a bootstrap member.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::ClientError;
use crate::raft::ClusterSecret;
use crate::wire::{DecodeError, Envelope, FrameCodec, Request, Response, DEFAULT_MAX_FRAME_LENGTH};

type Codec = FrameCodec<Envelope<Response>, Envelope<Request>>;

/// A connection that sends requests and waits for their replies, each bounded in time.
pub struct FrameConnection {
    framed: Framed<TcpStream, Codec>,
    addr: String,
    next_id: u64,
}

impl FrameConnection {
    /// Connects to `addr` within `timeout`, with the default frame limit
    /// ([`DEFAULT_MAX_FRAME_LENGTH`]) in both directions.
    ///
    /// # Errors
    /// [`ClientError::Connect`].
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Self, ClientError> {
        Self::connect_with_limit(addr, timeout, DEFAULT_MAX_FRAME_LENGTH).await
    }

    /// Connects to `addr` within `timeout`; frames longer than `max_frame_length` are
    /// neither sent nor accepted (members pass their configured limit).
    ///
    /// # Errors
    /// [`ClientError::Connect`].
    pub async fn connect_with_limit(
        addr: &str,
        timeout: Duration,
        max_frame_length: usize,
    ) -> Result<Self, ClientError> {
        let connect_err = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(format!("timed out after {timeout:?}")))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            framed: Framed::new(stream, Codec::new(max_frame_length)),
            addr: addr.to_string(),
            next_id: 1,
        })
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` and waits up to `timeout` for its reply; an error reply becomes
    /// [`ClientError::Server`].
    ///
    /// # Errors
    /// Connection, timeout, decode and server errors.
    pub async fn call(
        &mut self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let addr = self.addr.clone();
        let exchange = async {
            self.framed
                .send(Envelope { id, body: request })
                .await
                .map_err(|source| match source {
                    // Refused by the encoder before anything was written: the connection
                    // is still usable, the request is not.
                    DecodeError::FrameTooLarge { max } => ClientError::RequestTooLarge { max },
                    source => ClientError::Wire {
                        addr: addr.clone(),
                        source,
                    },
                })?;
            loop {
                match self.framed.next().await {
                    None => return Err(ClientError::Closed { addr: addr.clone() }),
                    Some(Err(source)) => {
                        return Err(ClientError::Wire {
                            addr: addr.clone(),
                            source,
                        })
                    }
                    Some(Ok(env)) if env.id == id => return Ok(env.body),
                    // id 0: the server could not read a request of ours and is closing.
                    Some(Ok(env)) if env.id == 0 => return Ok(env.body),
                    Some(Ok(_stale)) => continue,
                }
            }
        };
        let body = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                addr: self.addr.clone(),
                timeout,
            })??;
        match body {
            Response::Error(reply) => Err(ClientError::Server(reply)),
            other => Ok(other),
        }
    }

    /// Proves knowledge of the cluster secret and checks that the server knows it too.
    ///
    /// # Errors
    /// [`ClientError::Auth`] if either side's proof fails, plus connection errors.
    pub async fn authenticate(
        &mut self,
        secret: &ClusterSecret,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let client_nonce = ClusterSecret::nonce();
        let reply = self
            .call(
                Request::AuthHello {
                    client_nonce: client_nonce.clone(),
                },
                timeout,
            )
            .await?;
        let Response::AuthChallenge {
            server_nonce,
            server_proof,
        } = reply
        else {
            return Err(ClientError::Unexpected(format!("{reply:?}")));
        };
        // While a secret is being rotated, answer with the secret the server proved it knows.
        let Some(key) = secret.server_key(&client_nonce, &server_nonce, &server_proof) else {
            return Err(ClientError::Auth {
                addr: self.addr.clone(),
                reason: "the server does not know the cluster secret".into(),
            });
        };
        let proof = secret.client_proof_with(key, &client_nonce, &server_nonce);
        match self.call(Request::AuthProof { proof }, timeout).await {
            Ok(Response::AuthOk) => Ok(()),
            Ok(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            Err(ClientError::Server(reply)) => Err(ClientError::Auth {
                addr: self.addr.clone(),
                reason: reply.message,
            }),
            Err(e) => Err(e),
        }
    }
}
