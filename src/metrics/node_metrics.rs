//! [`NodeMetrics`]: everything a node exports on `/metrics`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::encode_registry;
use crate::wire::NodeStatus;

type Label = [(&'static str, String); 1];

/// Gauges read from the node's status at scrape time (see [`NodeMetrics::set_status`]).
#[derive(Default)]
pub struct NodeGauges {
    pub peers: Family<[(&'static str, &'static str); 1], Gauge>,
    pub address_book: Gauge,
    pub banned: Gauge,
    pub height: Gauge,
    pub total_work: Gauge<f64, AtomicU64>,
    pub syncing: Gauge,
    pub sync_target_height: Gauge,
    pub blocks_mined: Gauge,
    pub registered: Gauge,
    pub ready: Gauge,
    pub bootstrap_member: Family<Label, Gauge>,
}

/// The handle a node's actors push into; clones share the values.
#[derive(Clone)]
pub struct NodeMetrics {
    registry: Arc<Registry>,
    gauges: Arc<NodeGauges>,
    blocks_received: Counter,
    blocks_served: Counter,
    blocks_rejected: Counter,
    bans: Counter,
    failovers: Counter,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// Every node metric, registered under the `peerchain_node_` prefix.
    pub fn new() -> Self {
        let mut m = Self {
            registry: Arc::new(Registry::default()),
            gauges: Arc::new(NodeGauges::default()),
            blocks_received: Counter::default(),
            blocks_served: Counter::default(),
            blocks_rejected: Counter::default(),
            bans: Counter::default(),
            failovers: Counter::default(),
        };
        let mut r = Registry::with_prefix("peerchain_node");
        let g = &m.gauges;
        register!(r;
            "peers", "Connected peers, by direction (inbound, outbound)" => g.peers,
            "address_book_size", "Addresses in the address book" => g.address_book,
            "banned_addresses", "Addresses banned right now" => g.banned,
            "bans", "Peers banned for misbehaviour since start" => m.bans,
            "chain_height", "Height of the best chain's tip" => g.height,
            "chain_total_work", "Expected hashes behind the best chain (its total work)" => g.total_work,
            "syncing", "1 while catching up with a peer" => g.syncing,
            "sync_target_height", "Height being synced to (the tip's height when not syncing)" => g.sync_target_height,
            "blocks_mined", "Blocks this node mined since start" => g.blocks_mined,
            "blocks_received", "Blocks received from peers (announced or in ranges)" => m.blocks_received,
            "blocks_served", "Blocks sent to peers in answer to range requests" => m.blocks_served,
            "blocks_rejected", "Blocks from peers refused as invalid" => m.blocks_rejected,
            "registered", "1 if the last registration or renewal with the bootstrap cluster succeeded" => g.registered,
            "ready", "1 if /ready answers 200 (a peer, not syncing)" => g.ready,
            "bootstrap_member", "1 for the bootstrap member this node last talked to" => g.bootstrap_member,
            "bootstrap_failovers", "Times the node moved to another bootstrap member" => m.failovers,
        );
        m.registry = Arc::new(r);
        m
    }

    /// `n` blocks arrived from a peer.
    pub fn blocks_received(&self, n: usize) {
        self.blocks_received.inc_by(n as u64);
    }

    /// `n` blocks were sent to a peer.
    pub fn blocks_served(&self, n: usize) {
        self.blocks_served.inc_by(n as u64);
    }

    /// A block from a peer was invalid.
    pub fn block_rejected(&self) {
        self.blocks_rejected.inc();
    }

    /// A peer was banned.
    pub fn banned(&self) {
        self.bans.inc();
    }

    /// The node now talks to another bootstrap member than before.
    pub fn bootstrap_failover(&self) {
        self.failovers.inc();
    }

    /// Sets the scrape-time gauges from the node's status.
    pub fn set_status(&self, s: &NodeStatus, ready: bool) {
        let g = &self.gauges;
        let outbound = s.peers.iter().filter(|p| p.outbound).count();
        g.peers
            .get_or_create(&[("direction", "outbound")])
            .set(outbound as i64);
        g.peers
            .get_or_create(&[("direction", "inbound")])
            .set((s.peers.len() - outbound) as i64);
        g.address_book.set(s.known_addresses.len() as i64);
        g.banned.set(s.banned.len() as i64);
        g.height
            .set(i64::try_from(s.tip.height).unwrap_or(i64::MAX));
        g.total_work.set(s.tip.total_work as f64);
        g.syncing.set(i64::from(s.syncing.is_some()));
        let target = s.syncing.map_or(s.tip.height, |(_, t)| t);
        g.sync_target_height
            .set(i64::try_from(target).unwrap_or(i64::MAX));
        g.blocks_mined
            .set(i64::try_from(s.blocks_mined).unwrap_or(i64::MAX));
        g.registered.set(i64::from(s.registered));
        g.ready.set(i64::from(ready));
        g.bootstrap_member.clear();
        if let Some(b) = &s.bootstrap {
            g.bootstrap_member
                .get_or_create(&[("member", b.clone())])
                .set(1);
        }
    }

    /// Every metric in the text format.
    pub fn encode(&self) -> String {
        encode_registry(&self.registry)
    }
}
