//! [`PeerManager`]: the node's address book and its connections. It dials toward the target
//! number of outbound peers (with backoff and subnet diversity), admits inbound peers up to a
//! cap, refuses self-connections and duplicates, scores misbehaviour and bans past a
//! threshold, and feeds on addresses from the bootstrap cluster and from peers.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::address_book::{ms, AddrSource, AddressBook};
use super::bootstrap_link::LinkCommand;
use super::connection::{ConnId, Direction, Disconnect};
use super::{ChainSync, Connection, NodeContext};
use crate::record::{NodeId, PeerAddress};
use crate::wire::Tip;

mod admission;
mod peer_discovery;
mod status_report;

pub use admission::{HandshakeVerdict, Handshaked, Inbound};
pub use peer_discovery::{AddrsLearned, BootstrapPeers, BootstrapState, SampleAddrs};
pub use status_report::{GetNodeStatus, PeerHeight, TipChanged};

/// How often the manager looks at its connections and dials.
const MAINTAIN_EVERY: Duration = Duration::from_millis(500);
/// How often the address book is written to disk.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

struct Peer {
    addr: Addr<Connection>,
    direction: Direction,
    remote: SocketAddr,
    /// Set once the handshake completed and the manager accepted the peer.
    node_id: Option<NodeId>,
    listen_addr: Option<String>,
    tip_height: u64,
    ban_score: u32,
}

/// The peer manager actor.
pub struct PeerManager {
    node: Arc<NodeContext>,
    book: AddressBook,
    chain: Addr<ChainSync>,
    link: mpsc::Sender<LinkCommand>,
    peers: HashMap<ConnId, Peer>,
    by_node: HashMap<NodeId, ConnId>,
    /// Addresses being dialed right now.
    dialing: HashSet<String>,
    next_id: ConnId,
    bootstrap_member: Option<String>,
    registered: bool,
    last_refresh_request: Option<std::time::Instant>,
    shutting_down: bool,
    /// Our chain tip, as last told by the chain actor (sent in handshakes).
    last_tip: Tip,
}

impl PeerManager {
    pub fn new(
        node: Arc<NodeContext>,
        book: AddressBook,
        chain: Addr<ChainSync>,
        link: mpsc::Sender<LinkCommand>,
        tip: Tip,
    ) -> Self {
        Self {
            node,
            book,
            chain,
            link,
            peers: HashMap::new(),
            by_node: HashMap::new(),
            dialing: HashSet::new(),
            next_id: 1,
            bootstrap_member: None,
            registered: false,
            last_refresh_request: None,
            shutting_down: false,
            last_tip: tip,
        }
    }

    fn outbound_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| matches!(p.direction, Direction::Outbound(_)))
            .count()
            + self.dialing.len()
    }

    fn inbound_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.direction == Direction::Inbound)
            .count()
    }

    /// Addresses we are connected (or connecting) to, by dialed or advertised address.
    fn connected_addrs(&self) -> HashSet<String> {
        let mut out: HashSet<String> = self.dialing.clone();
        for p in self.peers.values() {
            if let Direction::Outbound(a) = &p.direction {
                out.insert(a.clone());
            }
            if let Some(l) = &p.listen_addr {
                out.insert(l.clone());
            }
        }
        out
    }

    fn outbound_groups(&self) -> HashSet<String> {
        self.peers
            .values()
            .filter_map(|p| match &p.direction {
                Direction::Outbound(a) => PeerAddress::parse(a).ok().map(|a| a.subnet_group()),
                Direction::Inbound => None,
            })
            .chain(
                self.dialing
                    .iter()
                    .filter_map(|a| PeerAddress::parse(a).ok().map(|a| a.subnet_group())),
            )
            .collect()
    }

    fn maintain(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let want = self
            .node
            .config
            .target_outbound
            .saturating_sub(self.outbound_count());
        if want > 0 {
            let now = crate::unix_ms();
            let candidates = self.book.candidates(
                now,
                &self.connected_addrs(),
                &self.outbound_groups(),
                self.node.config.diverse_outbound,
                want,
            );
            for addr in candidates {
                self.dial(addr, ctx);
            }
        }
        // Too few addresses to reach the target: ask the bootstrap cluster now.
        if self.book.len() < self.node.config.target_outbound {
            self.request_refresh();
        }
    }

    fn request_refresh(&mut self) {
        let recently = self
            .last_refresh_request
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5));
        if !recently {
            self.last_refresh_request = Some(std::time::Instant::now());
            let _ = self.link.try_send(LinkCommand::RefreshNow);
        }
    }

    fn dial(&mut self, addr: String, ctx: &mut Context<Self>) {
        self.dialing.insert(addr.clone());
        let timeout = self.node.config.connect_timeout;
        let target = addr.clone();
        async move { tokio::time::timeout(timeout, TcpStream::connect(target)).await }
            .into_actor(self)
            .map(move |result, act, ctx| {
                act.dialing.remove(&addr);
                match result {
                    Ok(Ok(stream)) if !act.shutting_down => {
                        let remote = stream
                            .peer_addr()
                            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                        act.start_connection(stream, remote, Direction::Outbound(addr), ctx);
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(%addr, error = %e, "dial failed");
                        act.book.record_failure(&addr, crate::unix_ms());
                    }
                    Err(_) => {
                        tracing::debug!(%addr, "dial timed out");
                        act.book.record_failure(&addr, crate::unix_ms());
                    }
                }
            })
            .spawn(ctx);
    }

    fn start_connection(
        &mut self,
        stream: TcpStream,
        remote: SocketAddr,
        direction: Direction,
        ctx: &mut Context<Self>,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        // The tip in the Hello is refreshed by announcements after the handshake; a
        // slightly old one only delays sync by one announcement.
        let tip = self.last_tip;
        let addr = Connection::start(
            id,
            stream,
            remote,
            direction.clone(),
            self.node.clone(),
            ctx.address(),
            self.chain.clone(),
            tip,
        );
        self.peers.insert(
            id,
            Peer {
                addr,
                direction,
                remote,
                node_id: None,
                listen_addr: None,
                tip_height: 0,
                ban_score: 0,
            },
        );
    }
}

impl Actor for PeerManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let configured = self.node.config.peers.clone();
        self.book
            .add_all(&configured, AddrSource::Config, crate::unix_ms());
        tracing::info!(
            known = self.book.len(),
            "peer manager started; dialing from the address book"
        );
        self.maintain(ctx);
        ctx.run_interval(MAINTAIN_EVERY, |act, ctx| act.maintain(ctx));
        ctx.run_interval(FLUSH_EVERY, |act, _| {
            if let Err(e) = act.book.flush(crate::unix_ms()) {
                tracing::warn!(error = %e, "saving the address book failed; will retry");
            }
        });
    }
}

/// A connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed {
    pub conn_id: ConnId,
    pub was_ready: bool,
    /// The peer turned out to be this node.
    pub self_connection: bool,
}

impl Handler<Closed> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: Closed, _: &mut Context<Self>) {
        let Some(peer) = self.peers.get(&msg.conn_id) else {
            return;
        };
        let now = crate::unix_ms();
        if let Direction::Outbound(a) = &peer.direction {
            if msg.self_connection {
                self.book.mark_own(a);
            } else if !msg.was_ready && peer.node_id.is_none() {
                self.book.record_failure(a, now);
            }
        }
        if msg.self_connection {
            return;
        }
        if let Some(peer) = self.peers.remove(&msg.conn_id) {
            if let Some(id) = peer.node_id {
                if self.by_node.get(&id) == Some(&msg.conn_id) {
                    self.by_node.remove(&id);
                    tracing::info!(
                        peer = %peer.listen_addr.as_deref().unwrap_or("-"),
                        "peer disconnected"
                    );
                }
            }
        }
    }
}

/// Misbehaviour of a peer: past the threshold it is disconnected and banned.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Penalise {
    pub conn_id: ConnId,
    pub score: u32,
    pub reason: String,
}

impl Handler<Penalise> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: Penalise, _: &mut Context<Self>) {
        let Some(peer) = self.peers.get_mut(&msg.conn_id) else {
            return;
        };
        peer.ban_score = peer.ban_score.saturating_add(msg.score);
        tracing::warn!(
            peer = %peer.listen_addr.as_deref().unwrap_or("-"),
            remote = %peer.remote,
            reason = %msg.reason,
            score = peer.ban_score,
            "peer penalised"
        );
        if peer.ban_score >= self.node.config.ban_threshold {
            let until = crate::unix_ms() + ms(self.node.config.ban_duration);
            let dialed = match &peer.direction {
                Direction::Outbound(a) => Some(a.clone()),
                Direction::Inbound => None,
            };
            let listen = peer.listen_addr.clone();
            self.book.ban(listen.as_deref(), peer.node_id, until);
            self.node.metrics.banned();
            if let Some(d) = dialed {
                self.book.ban(Some(&d), None, until);
            }
            tracing::info!(
                peer = %listen.as_deref().unwrap_or("-"),
                reason = %msg.reason,
                "peer banned for {:?}",
                self.node.config.ban_duration
            );
            peer.addr.do_send(Disconnect {
                reason: format!("banned: {}", msg.reason),
            });
        }
    }
}

/// Stops dialing, says goodbye to every peer and saves the address book.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for PeerManager {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        self.shutting_down = true;
        for p in self.peers.values() {
            p.addr.do_send(Disconnect {
                reason: "node shutting down".into(),
            });
        }
        if let Err(e) = self.book.flush(crate::unix_ms()) {
            tracing::warn!(error = %e, "saving the address book at shutdown failed");
        }
    }
}
