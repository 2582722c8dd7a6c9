//! How the [`PeerManager`] learns addresses: ADDR gossip from peers (capped per source
//! subnet by the address book), GET_ADDR answers, and what the bootstrap cluster returns.

use std::net::IpAddr;

use actix::prelude::*;

use super::PeerManager;
use crate::node::address_book::AddrSource;
use crate::wire::MAX_ADDRS_PER_MESSAGE;

/// Addresses a peer told us about (an answer to our GET_ADDR).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddrsLearned {
    pub addrs: Vec<String>,
    /// The IP address of the peer that sent them: what it adds counts in the share of its
    /// /16 (IPv6 /32), so one peer or subnet cannot fill the book.
    pub from: IpAddr,
}

impl Handler<AddrsLearned> for PeerManager {
    type Result = ();

    fn handle(&mut self, msg: AddrsLearned, _: &mut Context<Self>) {
        let before = self.book.drops();
        let added = self.book.add_gossip(&msg.addrs, msg.from, crate::unix_ms());
        let after = self.book.drops();
        tracing::debug!(
            added,
            offered = msg.addrs.len(),
            from = %msg.from,
            subnet_full = (after.net_group_full + after.wide_group_full)
                - (before.net_group_full + before.wide_group_full),
            source_share_full = after.source_share_full - before.source_share_full,
            "addresses learned from a peer"
        );
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
