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
use super::chain_sync::GetChainStatus;
use super::connection::{ConnId, Direction, Disconnect};
use super::{ChainSync, Connection, NodeContext};
use crate::record::{NodeId, PeerAddress};
use crate::wire::{NodeStatus, PeerStatus, Tip, MAX_ADDRS_PER_MESSAGE};

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

/// A connection accepted by the listener.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound {
    pub stream: TcpStream,
    pub remote: SocketAddr,
}

impl Handler<Inbound> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        // Pending handshakes count against the cap too, so a flood of idle sockets cannot
        // push real peers out. Status queries are short-lived inbound connections as well.
        if self.inbound_count() >= self.node.config.max_inbound + 4 {
            tracing::debug!(remote = %msg.remote, "inbound connection refused: at capacity");
            return;
        }
        self.start_connection(msg.stream, msg.remote, Direction::Inbound, ctx);
    }
}

/// A connection completed its handshake; the manager decides whether to keep it.
#[derive(Message)]
#[rtype(result = "HandshakeVerdict")]
pub struct Handshaked {
    pub conn_id: ConnId,
    pub node_id: NodeId,
    pub listen_addr: Option<String>,
    pub direction: Direction,
    pub remote: SocketAddr,
    pub tip_height: u64,
    pub addr: Addr<Connection>,
}

/// The manager's answer to [`Handshaked`].
#[derive(Debug, Clone, PartialEq, Eq, MessageResponse)]
pub enum HandshakeVerdict {
    Accepted,
    Refused(String),
}

impl Handler<Handshaked> for PeerManager {
    type Result = HandshakeVerdict;

    fn handle(&mut self, msg: Handshaked, _: &mut Context<Self>) -> HandshakeVerdict {
        let now = crate::unix_ms();
        if self.shutting_down {
            return HandshakeVerdict::Refused("node shutting down".into());
        }
        if self.book.is_banned_id(&msg.node_id, now) {
            return HandshakeVerdict::Refused("banned".into());
        }
        if let Some(existing_id) = self.by_node.get(&msg.node_id).copied() {
            // Two connections to one node (typically both dialed each other at once). Both
            // sides keep the one dialed by the smaller node id, so they agree on which.
            let own = self.node.identity.node_id();
            let dialer = |d: &Direction| match d {
                Direction::Outbound(_) => own,
                Direction::Inbound => msg.node_id,
            };
            let existing = self.peers.get(&existing_id).map(|p| p.direction.clone());
            let keep_new = existing.is_some_and(|d| dialer(&msg.direction) < dialer(&d));
            if !keep_new {
                if let Direction::Outbound(a) = &msg.direction {
                    // Known under another address: no need to dial this one again soon.
                    self.book.record_success(a, msg.node_id, now);
                }
                return HandshakeVerdict::Refused("duplicate connection".into());
            }
            if let Some(old) = self.peers.get(&existing_id) {
                old.addr.do_send(Disconnect {
                    reason: "duplicate connection".into(),
                });
            }
            self.by_node.remove(&msg.node_id);
        }
        let ready_inbound = self
            .peers
            .values()
            .filter(|p| p.direction == Direction::Inbound && p.node_id.is_some())
            .count();
        if msg.direction == Direction::Inbound && ready_inbound >= self.node.config.max_inbound {
            return HandshakeVerdict::Refused("too many inbound peers".into());
        }
        if let Direction::Outbound(a) = &msg.direction {
            self.book.record_success(a, msg.node_id, now);
        }
        if let Some(listen) = &msg.listen_addr {
            if PeerAddress::parse(listen).is_ok() {
                self.book.add(listen, AddrSource::Inbound, now);
                self.book.record_success(listen, msg.node_id, now);
            }
        }
        let Some(peer) = self.peers.get_mut(&msg.conn_id) else {
            return HandshakeVerdict::Refused("connection gone".into());
        };
        peer.node_id = Some(msg.node_id);
        peer.listen_addr = msg.listen_addr.clone();
        peer.tip_height = msg.tip_height;
        self.by_node.insert(msg.node_id, msg.conn_id);
        tracing::info!(
            peer = %msg.listen_addr.as_deref().unwrap_or("-"),
            node = %msg.node_id,
            outbound = matches!(msg.direction, Direction::Outbound(_)),
            "peer connected"
        );
        HandshakeVerdict::Accepted
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

/// Addresses a peer told us about.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddrsLearned {
    pub addrs: Vec<String>,
}

impl Handler<AddrsLearned> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: AddrsLearned, _: &mut Context<Self>) {
        let added = self
            .book
            .add_all(&msg.addrs, AddrSource::Gossip, crate::unix_ms());
        if added > 0 {
            tracing::debug!(added, "addresses learned from a peer");
        }
    }
}

/// Addresses to send to a peer that asked (at most [`MAX_ADDRS_PER_MESSAGE`]).
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct SampleAddrs {
    /// The asking peer's own address, left out.
    pub exclude: Option<String>,
}

impl Handler<SampleAddrs> for PeerManager {
    type Result = MessageResult<SampleAddrs>;

    fn handle(&mut self, msg: SampleAddrs, _: &mut Context<Self>) -> Self::Result {
        let mut addrs = self.book.sample(MAX_ADDRS_PER_MESSAGE, crate::unix_ms());
        addrs.retain(|a| Some(a) != msg.exclude.as_ref());
        addrs.truncate(MAX_ADDRS_PER_MESSAGE - 1);
        // We are a peer worth knowing too.
        addrs.push(self.node.advertised.clone());
        MessageResult(addrs)
    }
}

/// Peers the bootstrap cluster returned.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BootstrapPeers {
    pub addrs: Vec<String>,
}

impl Handler<BootstrapPeers> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: BootstrapPeers, ctx: &mut Context<Self>) {
        let added = self
            .book
            .add_all(&msg.addrs, AddrSource::Bootstrap, crate::unix_ms());
        if added > 0 {
            tracing::info!(
                added,
                known = self.book.len(),
                "peers learned from the bootstrap cluster"
            );
            self.maintain(ctx);
        }
    }
}

/// What the bootstrap link last achieved.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BootstrapState {
    pub member: Option<String>,
    pub registered: bool,
    /// The cluster's members, if just learned.
    pub members: Option<Vec<String>>,
}

impl Handler<BootstrapState> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: BootstrapState, _: &mut Context<Self>) {
        self.bootstrap_member = msg.member;
        self.registered = msg.registered;
        if let Some(members) = msg.members {
            self.book.set_bootstrap_members(members);
        }
    }
}

/// The chain actor's new tip.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TipChanged(pub Tip);

impl Handler<TipChanged> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: TipChanged, _: &mut Context<Self>) {
        self.last_tip = msg.0;
    }
}

/// A peer's announced height changed (for status).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerHeight {
    pub conn_id: ConnId,
    pub height: u64,
}

impl Handler<PeerHeight> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: PeerHeight, _: &mut Context<Self>) {
        if let Some(p) = self.peers.get_mut(&msg.conn_id) {
            p.tip_height = p.tip_height.max(msg.height);
        }
    }
}

/// The node's status for `peerchain ctl status`.
#[derive(Message)]
#[rtype(result = "NodeStatus")]
pub struct GetNodeStatus;

impl Handler<GetNodeStatus> for PeerManager {
    type Result = ResponseActFuture<Self, NodeStatus>;

    fn handle(&mut self, _: GetNodeStatus, _: &mut Context<Self>) -> Self::Result {
        Box::pin(
            self.chain
                .send(GetChainStatus)
                .into_actor(self)
                .map(|chain, act, _| {
                    let now = crate::unix_ms();
                    let mut peers: Vec<PeerStatus> = act
                        .peers
                        .values()
                        .filter_map(|p| {
                            Some(PeerStatus {
                                node_id: p.node_id?,
                                addr: p
                                    .listen_addr
                                    .clone()
                                    .unwrap_or_else(|| p.remote.to_string()),
                                outbound: matches!(p.direction, Direction::Outbound(_)),
                                tip_height: p.tip_height,
                                ban_score: p.ban_score,
                            })
                        })
                        .collect();
                    peers.sort_by(|a, b| a.addr.cmp(&b.addr));
                    let (tip, recent_blocks, syncing, mining, blocks_mined) = match chain {
                        Ok(c) => (c.tip, c.recent_blocks, c.syncing, c.mining, c.blocks_mined),
                        Err(_) => (act.last_tip, Vec::new(), None, false, 0),
                    };
                    NodeStatus {
                        node_id: act.node.identity.node_id(),
                        network_id: act.node.config.network_id.clone(),
                        listen_addr: act.node.advertised.clone(),
                        tip,
                        recent_blocks,
                        syncing,
                        mining,
                        blocks_mined,
                        peers,
                        known_addresses: act.book.addresses(),
                        banned: act.book.banned(now),
                        bootstrap: act.bootstrap_member.clone(),
                        bootstrap_members: act.book.bootstrap_members().to_vec(),
                        registered: act.registered,
                    }
                }),
        )
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
