//! [`Connection`]: one accepted TCP connection. Its first byte picks the protocol: `{` is the
//! seed chapter's JSON lines, anything else is length-prefixed MessagePack frames.
//!
//! Until a framed connection authenticates, its frames are at most [`PREAUTH_MAX_FRAME`]
//! bytes, its partial frames are charged to the member's [`super::frame_budget`], and each
//! request takes a token from its source's buckets ([`super::request_quota`]). A connection
//! admitted into a slot reserved for members must authenticate within
//! [`MEMBER_AUTH_TIMEOUT`] and may send nothing else first.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{Encoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use super::connection_quota::{Admission, ConnectionRefusal};
use super::frame_budget::{BudgetedDecoder, PREAUTH_MAX_FRAME};
use super::{legacy_protocol, Member, RequestHandler};
use crate::metrics::FrameRefusal;
use crate::wire::{DecodeError, Envelope, ErrorCode, ErrorReply, FrameCodec, Request, Response};

/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing one reply may take before a slow reader is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one connection handled at once (pipelining depth).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;
/// How long a connection in a slot reserved for members has to authenticate.
pub const MEMBER_AUTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes of what a refused client already sent that are read and dropped before closing,
/// so that the close is a FIN after the error rather than a reset that could discard it.
const REFUSE_DRAIN_BYTES: usize = 16 * 1024;

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
    /// shuts down. `admission` is its connection slot, freed when this returns.
    pub async fn run(self, admission: Admission) {
        let reserved = matches!(admission, Admission::Reserved(_));
        let _ = self.stream.set_nodelay(true);
        let mut first = [0u8; 1];
        let mut wait = FIRST_BYTE_TIMEOUT.min(self.member.config.idle_timeout);
        if reserved {
            wait = wait.min(MEMBER_AUTH_TIMEOUT);
        }
        let peeked = tokio::select! {
            _ = self.cancel.cancelled() => return,
            r = tokio::time::timeout(wait, self.stream.peek(&mut first)) => r,
        };
        match peeked {
            // Members speak frames only: a reserved slot is not for the seed's protocol.
            Ok(Ok(1)) if first[0] == b'{' && !reserved => {
                legacy_protocol::serve(self.stream, self.peer, self.member, self.cancel).await;
            }
            Ok(Ok(1)) if first[0] != b'{' => self.serve_frames(reserved).await,
            _ => {}
        }
        drop(admission);
    }

    async fn serve_frames(self, reserved: bool) {
        let Self {
            stream,
            peer,
            member,
            cancel,
        } = self;
        let idle = member.config.idle_timeout;
        let (rd, wr) = stream.into_split();
        // Replies may be as large as the frame limit; requests only once authenticated.
        let max_frame = member.config.max_frame_length;
        let mut reader = preauth_reader(rd, &member);
        let (tx, rx) = mpsc::channel::<Envelope<Response>>(MAX_IN_FLIGHT_PER_CONNECTION);
        let writer = tokio::spawn(write_replies(
            FramedWrite::new(wr, ReqCodec::new(max_frame)),
            rx,
        ));
        let mut handler = RequestHandler::new(member.clone(), peer.ip());
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
        let auth_deadline = reserved.then(|| Instant::now() + MEMBER_AUTH_TIMEOUT);
        let from_member = member.quotas.member_ips.contains(peer.ip());
        loop {
            // Members heartbeat every few hundred ms; clients get the configured idle timeout.
            let deadline = match auth_deadline.filter(|_| !handler.is_authenticated()) {
                Some(d) => d.min(Instant::now() + idle),
                None => Instant::now() + idle,
            };
            let frame = tokio::select! {
                _ = cancel.cancelled() => break,
                f = tokio::time::timeout_at(deadline, reader.next()) => f,
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
                        DecodeError::OverBudget { .. } => FrameRefusal::OverBudget,
                        _ => FrameRefusal::Malformed,
                    });
                    reply_and_close(&tx, 0, decode_reply(&e)).await;
                    tracing::debug!(%peer, error = %e, "bad frame");
                    break;
                }
            };
            let Envelope { id, body } = env;
            if !handler.is_authenticated() {
                if let Some(e) = rate_refusal(&member, peer, from_member, &body) {
                    let body = Response::Error(e);
                    if tx.send(Envelope { id, body }).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
            if let Some(resp) = handler.handle_auth(&body) {
                let failed = matches!(resp, Response::Error(_));
                if failed {
                    member.metrics.refused(FrameRefusal::AuthFailed);
                }
                if matches!(resp, Response::AuthOk) {
                    // A member or operator: full-size frames, and strangers' partial frames
                    // no longer count against it.
                    let decoder = reader.decoder_mut();
                    decoder.exempt();
                    decoder.inner_mut().set_max_frame_length(max_frame);
                }
                if tx.send(Envelope { id, body: resp }).await.is_err() || failed {
                    break;
                }
                continue;
            }
            let must_auth = body.needs_member_auth() || reserved;
            if must_auth && !handler.is_authenticated() {
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

/// Reads requests of at most [`PREAUTH_MAX_FRAME`] bytes, partial ones charged to the
/// member's budget, until the connection authenticates.
fn preauth_reader(
    rd: tokio::net::tcp::OwnedReadHalf,
    member: &Member,
) -> FramedRead<tokio::net::tcp::OwnedReadHalf, BudgetedDecoder<ReqCodec>> {
    let codec = ReqCodec::new(PREAUTH_MAX_FRAME.min(member.config.max_frame_length));
    FramedRead::new(
        rd,
        BudgetedDecoder::new(codec, member.quotas.frame_budget.clone()),
    )
}

/// The refusal of a request on an unauthenticated connection whose source's buckets are
/// empty, if they are. A member's handshake is never refused: strangers on its /24 must not
/// be able to lock it out of the cluster by draining the subnet's bucket.
fn rate_refusal(
    member: &Member,
    peer: SocketAddr,
    from_member: bool,
    body: &Request,
) -> Option<ErrorReply> {
    let handshake = matches!(body, Request::AuthHello { .. } | Request::AuthProof { .. });
    if handshake && from_member {
        return None;
    }
    let refusal = member.quotas.requests.check(peer.ip()).err()?;
    member.metrics.refused(FrameRefusal::RateLimited);
    member
        .quotas
        .refusals
        .refused(peer.ip(), "request", &refusal);
    Some(ErrorReply::new(ErrorCode::Unavailable, refusal.to_string()))
}

fn decode_reply(e: &DecodeError) -> ErrorReply {
    match e {
        DecodeError::OverBudget { .. } => ErrorReply::new(ErrorCode::Unavailable, e.to_string()),
        DecodeError::FrameTooLarge { max } if *max == PREAUTH_MAX_FRAME => ErrorReply::new(
            ErrorCode::BadRequest,
            format!("{e} for a connection that has not authenticated with the cluster secret"),
        ),
        _ => ErrorReply::new(ErrorCode::BadRequest, e.to_string()),
    }
}

/// Tells a connection refused at accept why, if that can be written at once, and closes
/// it. Never waits: the reply is one short line (the seed's protocol, if its first byte is
/// already there) or one error frame, written only if the socket buffer takes it.
pub fn refuse(stream: TcpStream, reason: &ConnectionRefusal) {
    let Ok(std) = stream.into_std() else {
        return;
    };
    let mut first = [0u8; 1];
    let legacy = matches!(std.peek(&mut first), Ok(1) if first[0] == b'{');
    let reply = if legacy {
        format!("Error: {reason}\n").into_bytes()
    } else {
        let env = Envelope {
            id: 0,
            body: Response::Error(ErrorReply::new(ErrorCode::Unavailable, reason.to_string())),
        };
        let mut buf = bytes::BytesMut::new();
        if ReqCodec::default().encode(env, &mut buf).is_err() {
            return;
        }
        buf.to_vec()
    };
    let _ = (&std).write(&reply);
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSE_DRAIN_BYTES {
        match (&std).read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
    let _ = std.shutdown(std::net::Shutdown::Both);
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
