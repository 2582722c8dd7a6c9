//! [`Connection`]: one accepted TCP connection. Its first byte picks the protocol: `{` is the
//! seed chapter's JSON lines, anything else is length-prefixed MessagePack frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use super::{legacy_protocol, Member, RequestHandler};
use crate::metrics::FrameRefusal;
use crate::wire::{DecodeError, Envelope, ErrorCode, ErrorReply, FrameCodec, Request, Response};

/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing one reply may take before a slow reader is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one connection handled at once (pipelining depth).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

type ReqCodec = FrameCodec<Envelope<Request>, Envelope<Response>>;

/// One client or member connection.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    member: Arc<Member>,
    cancel: CancellationToken,
}

impl Connection {
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        member: Arc<Member>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            stream,
            peer,
            member,
            cancel,
        }
    }

    /// Serves the connection until the peer closes it, misbehaves, idles out or the member
    /// shuts down.
    pub async fn run(self) {
        let _ = self.stream.set_nodelay(true);
        let mut first = [0u8; 1];
        let peeked = tokio::select! {
            _ = self.cancel.cancelled() => return,
            r = tokio::time::timeout(
                FIRST_BYTE_TIMEOUT.min(self.member.config.idle_timeout),
                self.stream.peek(&mut first),
            ) => r,
        };
        match peeked {
            Ok(Ok(1)) if first[0] == b'{' => {
                legacy_protocol::serve(self.stream, self.peer, self.member, self.cancel).await;
            }
            Ok(Ok(1)) => self.serve_frames().await,
            _ => {}
        }
    }

    async fn serve_frames(self) {
        let Self {
            stream,
            peer,
            member,
            cancel,
        } = self;
        let idle = member.config.idle_timeout;
        let (rd, wr) = stream.into_split();
        // One limit for every frame of this connection, read or written, member or client.
        let max_frame = member.config.max_frame_length;
        let mut reader = FramedRead::new(rd, ReqCodec::new(max_frame));
        let (tx, rx) = mpsc::channel::<Envelope<Response>>(MAX_IN_FLIGHT_PER_CONNECTION);
        let writer = tokio::spawn(write_replies(
            FramedWrite::new(wr, ReqCodec::new(max_frame)),
            rx,
        ));
        let mut handler = RequestHandler::new(member.clone(), peer.ip());
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
        loop {
            // Members heartbeat every few hundred ms; clients get the configured idle timeout.
            let frame = tokio::select! {
                _ = cancel.cancelled() => break,
                f = tokio::time::timeout(idle, reader.next()) => f,
            };
            let env = match frame {
                Err(_) => {
                    tracing::debug!(%peer, "closing idle connection");
                    break;
                }
                Ok(None) => break,
                Ok(Some(Ok(env))) => env,
                Ok(Some(Err(e))) => {
                    member.metrics.refused(match e {
                        DecodeError::FrameTooLarge { .. } => FrameRefusal::TooLarge,
                        _ => FrameRefusal::Malformed,
                    });
                    reply_and_close(&tx, 0, decode_reply(&e)).await;
                    tracing::debug!(%peer, error = %e, "bad frame");
                    break;
                }
            };
            let Envelope { id, body } = env;
            if let Some(resp) = handler.handle_auth(&body) {
                let failed = matches!(resp, Response::Error(_));
                if failed {
                    member.metrics.refused(FrameRefusal::AuthFailed);
                }
                if tx.send(Envelope { id, body: resp }).await.is_err() || failed {
                    break;
                }
                continue;
            }
            if body.needs_member_auth() && !handler.is_authenticated() {
                tracing::warn!(%peer, "member-only request on an unauthenticated connection");
                member.metrics.refused(FrameRefusal::Unauthenticated);
                let e = ErrorReply::new(
                    ErrorCode::Unauthenticated,
                    "this request needs the cluster secret",
                );
                reply_and_close(&tx, id, e).await;
                break;
            }
            let is_raft = matches!(
                body,
                Request::AppendEntries(_) | Request::Vote(_) | Request::InstallSnapshot(_)
            );
            if is_raft {
                // Raft RPCs of one connection are answered in order.
                let resp = RequestHandler::handle(member.clone(), body).await;
                if tx.send(Envelope { id, body: resp }).await.is_err() {
                    break;
                }
                continue;
            }
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (member, tx) = (member.clone(), tx.clone());
            tokio::spawn(async move {
                let resp = RequestHandler::handle(member, body).await;
                let _ = tx.send(Envelope { id, body: resp }).await;
                drop(permit);
            });
        }
        drop(tx);
        let _ = writer.await;
    }
}

fn decode_reply(e: &DecodeError) -> ErrorReply {
    ErrorReply::new(ErrorCode::BadRequest, e.to_string())
}

async fn reply_and_close(tx: &mpsc::Sender<Envelope<Response>>, id: u64, e: ErrorReply) {
    let _ = tx
        .send(Envelope {
            id,
            body: Response::Error(e),
        })
        .await;
}

async fn write_replies(
    mut out: FramedWrite<tokio::net::tcp::OwnedWriteHalf, ReqCodec>,
    mut rx: mpsc::Receiver<Envelope<Response>>,
) {
    while let Some(env) = rx.recv().await {
        let id = env.id;
        match tokio::time::timeout(WRITE_TIMEOUT, out.send(env)).await {
            Ok(Ok(())) => {}
            Ok(Err(DecodeError::FrameTooLarge { max })) => {
                let e = ErrorReply::new(
                    ErrorCode::Internal,
                    format!("reply larger than the {max}-byte frame limit"),
                );
                let body = Response::Error(e);
                if !matches!(
                    tokio::time::timeout(WRITE_TIMEOUT, out.send(Envelope { id, body })).await,
                    Ok(Ok(()))
                ) {
                    return;
                }
            }
            Ok(Err(_)) | Err(_) => return,
        }
    }
    let _ = out.close().await;
}
