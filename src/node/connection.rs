//! [`Connection`]: one actor per TCP peer, inbound or outbound. It runs the handshake, keeps
//! the peer alive with pings, turns frames into messages for the [`PeerManager`] and the
//! [`ChainSync`] actor, and writes what they send back.
//!
//! Reads are bounded in size (the frame codec's limit) and in time (handshake timeout, then
//! three missed pings). Writes go through a bounded queue to a writer task; a peer that does
//! not read fast enough fills the queue and is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::SinkExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::chain_sync::PeerDisconnected;
use super::handshake::Handshake;
use super::peer_manager::{Closed, Penalise};
use super::{ChainSync, NodeContext, PeerManager};
use crate::record::NodeId;
use crate::wire::{DecodeError, FrameCodec, Hello, PeerMessage, Tip};

mod handshake_phase;
mod peer_traffic;

/// Connection id, unique within a node's run.
pub type ConnId = u64;

/// Frames queued for a peer before it counts as too slow.
const OUTBOX_FRAMES: usize = 256;
/// Longest a single frame write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the handshake (or a status query) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer gets addresses at most this often.
const GETADDR_EVERY: Duration = Duration::from_secs(30);
/// Most block-range requests served per peer per second. Requests beyond it wait for the
/// next second (a syncing peer, one request in flight, is only slowed, to 10,000 blocks/s);
/// beyond [`MAX_DEFERRED_GETBLOCKS`] waiting ones they are refused and scored.
const GETBLOCKS_PER_SECOND: u32 = 20;
const MAX_DEFERRED_GETBLOCKS: u32 = 10;

/// Where the connection came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// We dialed this address.
    Outbound(String),
    Inbound,
}

enum Phase {
    /// Waiting for the peer's Hello (inbound: or a status query).
    AwaitHello,
    /// The peer's Hello checked; waiting for its proof.
    AwaitProof {
        hello: Box<Hello>,
        node_id: NodeId,
    },
    /// Proof checked; waiting for the peer manager's verdict.
    AwaitVerdict,
    Ready,
}

/// One peer connection.
pub struct Connection {
    id: ConnId,
    direction: Direction,
    remote: SocketAddr,
    node: Arc<NodeContext>,
    manager: Addr<PeerManager>,
    chain: Addr<ChainSync>,
    outbox: mpsc::Sender<PeerMessage>,
    handshake: Handshake,
    /// Our tip when the connection opened (sent in Hello).
    our_tip: Tip,
    phase: Phase,
    last_recv: Instant,
    getaddr_pending: bool,
    last_getaddr_served: Option<Instant>,
    /// Start of the current one-second window of block requests, and the count in it.
    getblocks_window: (Instant, u32),
    /// Block requests waiting for a later window.
    deferred_getblocks: u32,
}

impl Connection {
    /// Starts the actor for `stream`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: ConnId,
        stream: TcpStream,
        remote: SocketAddr,
        direction: Direction,
        node: Arc<NodeContext>,
        manager: Addr<PeerManager>,
        chain: Addr<ChainSync>,
        our_tip: Tip,
    ) -> Addr<Self> {
        let max = node.config.max_frame_length;
        let _ = stream.set_nodelay(true);
        Connection::create(move |ctx| {
            let (read, write) = stream.into_split();
            ctx.add_stream(FramedRead::new(
                read,
                FrameCodec::<PeerMessage, PeerMessage>::new(max),
            ));
            let (outbox, rx) = mpsc::channel(OUTBOX_FRAMES);
            let sink = FramedWrite::new(write, FrameCodec::<PeerMessage, PeerMessage>::new(max));
            actix::spawn(write_loop(sink, rx));
            let handshake = Handshake::new(
                &node.config.network_id,
                node.genesis,
                node.config.difficulty,
            );
            Connection {
                id,
                direction,
                remote,
                node,
                manager,
                chain,
                outbox,
                handshake,
                our_tip,
                phase: Phase::AwaitHello,
                last_recv: Instant::now(),
                getaddr_pending: false,
                last_getaddr_served: None,
                getblocks_window: (Instant::now(), 0),
                deferred_getblocks: 0,
            }
        })
    }

    fn is_outbound(&self) -> bool {
        matches!(self.direction, Direction::Outbound(_))
    }

    /// Queues `msg`; a full queue means the peer does not read: drop it.
    fn send(&mut self, msg: PeerMessage, ctx: &mut Context<Self>) {
        match self.outbox.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(peer = %self.remote, "peer does not read its messages; disconnecting");
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }

    fn goodbye(&mut self, reason: String, ctx: &mut Context<Self>) {
        tracing::debug!(peer = %self.remote, %reason, "closing connection");
        let _ = self.outbox.try_send(PeerMessage::Goodbye { reason });
        ctx.stop();
    }

    fn penalise(&self, score: u32, reason: &str) {
        self.manager.do_send(Penalise {
            conn_id: self.id,
            score,
            reason: reason.to_string(),
        });
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.is_outbound() {
            self.send_hello(ctx);
        }
        ctx.run_later(HANDSHAKE_TIMEOUT, |act, ctx| {
            if !matches!(act.phase, Phase::Ready) {
                act.goodbye("handshake timed out".into(), ctx);
            }
        });
        let interval = self.node.config.ping_interval;
        ctx.run_interval(interval, move |act, ctx| {
            if !matches!(act.phase, Phase::Ready) {
                return;
            }
            if act.last_recv.elapsed() > interval * 3 {
                act.goodbye("peer silent for three ping intervals".into(), ctx);
                return;
            }
            let nonce = rand::random();
            act.send(PeerMessage::Ping { nonce }, ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let was_ready = matches!(self.phase, Phase::Ready);
        self.manager.do_send(Closed {
            conn_id: self.id,
            was_ready,
            self_connection: false,
        });
        if was_ready {
            self.chain.do_send(PeerDisconnected { conn_id: self.id });
        }
    }
}

impl StreamHandler<Result<PeerMessage, DecodeError>> for Connection {
    fn handle(&mut self, item: Result<PeerMessage, DecodeError>, ctx: &mut Context<Self>) {
        let msg = match item {
            Ok(msg) => msg,
            Err(e) => {
                if matches!(self.phase, Phase::Ready) {
                    self.penalise(20, "undecodable frame");
                }
                self.goodbye(format!("bad frame: {e}"), ctx);
                return;
            }
        };
        self.last_recv = Instant::now();
        match (&self.phase, msg) {
            (Phase::Ready, msg) => self.on_ready_message(msg, ctx),
            (Phase::AwaitHello, PeerMessage::Hello(hello)) => self.on_hello(hello, ctx),
            (Phase::AwaitHello, PeerMessage::GetStatus) if !self.is_outbound() => {
                self.on_status_query(ctx);
            }
            (Phase::AwaitProof { .. }, PeerMessage::HelloProof { signature }) => {
                self.on_proof(&signature, ctx);
            }
            (_, PeerMessage::Goodbye { reason }) => {
                tracing::debug!(peer = %self.remote, %reason, "peer refused the handshake");
                ctx.stop();
            }
            (_, _) => self.goodbye("protocol violation during handshake".into(), ctx),
        }
    }
}

/// Sends a message to the peer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub PeerMessage);

impl Handler<Deliver> for Connection {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.send(msg.0, ctx);
    }
}

/// Closes the connection, telling the peer why.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub reason: String,
}

impl Handler<Disconnect> for Connection {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, ctx: &mut Context<Self>) {
        self.goodbye(msg.reason, ctx);
    }
}

/// Writes queued frames until the queue closes or a write fails or stalls.
async fn write_loop(
    mut sink: FramedWrite<tokio::net::tcp::OwnedWriteHalf, FrameCodec<PeerMessage, PeerMessage>>,
    mut rx: mpsc::Receiver<PeerMessage>,
) {
    while let Some(msg) = rx.recv().await {
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write to peer failed");
                break;
            }
            Err(_) => {
                tracing::debug!("write to peer stalled");
                break;
            }
        }
    }
    // Dropping the sink shuts our side down; the reader sees EOF from the peer in turn.
}
