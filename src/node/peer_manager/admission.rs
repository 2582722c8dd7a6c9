//! Which connections the [`PeerManager`] keeps: inbound ones up to the cap, and after a
//! handshake, not banned ones, not a second connection to one node, not beyond
//! `max_inbound`.

use std::net::SocketAddr;

use actix::prelude::*;
use tokio::net::TcpStream;

use super::PeerManager;
use crate::node::address_book::AddrSource;
use crate::node::connection::{ConnId, Direction, Disconnect};
use crate::node::Connection;
use crate::record::{NodeId, PeerAddress};

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
