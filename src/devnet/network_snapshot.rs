//! [`NetworkSnapshot`]: the whole devnet at one moment — every member's view of the cluster,
//! every node's chain and peers — and the events between two snapshots (a leader lost or
//! elected, a process down or back), which the overview page lists as they happen.

use std::time::Duration;

use serde::Serialize;

use super::DevnetConfig;
use crate::client::{BootstrapClient, ClientOptions, NodeStatusQuery};

/// How long one member or node may take to answer a poll.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(400);

/// One member as the overview shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub id: u64,
    pub addr: String,
    /// Its HTTP side port (status page, metrics).
    pub http: String,
    pub up: bool,
    pub role: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub applied: Option<u64>,
    pub ready: bool,
    pub reasons: Vec<String>,
    pub peer_count: u64,
}

/// One node as the overview shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    pub addr: String,
    pub http: String,
    pub up: bool,
    pub height: u64,
    pub tip: String,
    /// Listen addresses of its connected peers, with `true` for the ones it dialed.
    pub peers: Vec<(String, bool)>,
    pub syncing: Option<(u64, u64)>,
    pub bootstrap: Option<String>,
    pub registered: bool,
    pub mining: bool,
    pub blocks_mined: u64,
    /// The last main-chain blocks, tip first: `(height, hash prefix)`.
    pub recent_blocks: Vec<(u64, String)>,
}

/// The devnet at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSnapshot {
    pub taken_ms: u64,
    /// The leader named by a majority of all members, if that member is up and ready.
    pub leader: Option<u64>,
    pub members: Vec<MemberView>,
    pub nodes: Vec<NodeView>,
}

impl NetworkSnapshot {
    /// Asks every member and node of `config`, one after the other, each within
    /// [`POLL_TIMEOUT`].
    pub async fn take(config: &DevnetConfig) -> Self {
        let mut members = Vec::new();
        for (id, addr) in config.bootstrap_addrs() {
            members.push(member_view(id, &addr, config.member_http(id)).await);
        }
        let mut nodes = Vec::new();
        for (i, addr) in config.node_addrs() {
            nodes.push(node_view(i, &addr, config.node_http(i)).await);
        }
        let leader = agreed_leader(&members);
        Self {
            taken_ms: crate::unix_ms(),
            leader,
            members,
            nodes,
        }
    }

    /// What changed since `before`, in words.
    pub fn events_since(&self, before: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.leader != before.leader {
            out.push(match (before.leader, self.leader) {
                (Some(old), None) => format!("leader {old} lost: no leader"),
                (None, Some(new)) => format!("member {new} elected leader"),
                (Some(old), Some(new)) => format!("leader changed from {old} to {new}"),
                (None, None) => String::new(),
            });
        }
        for (now, was) in self.members.iter().zip(&before.members) {
            if now.up != was.up {
                out.push(format!(
                    "member {} {}",
                    now.id,
                    if now.up { "is back" } else { "is DOWN" }
                ));
            }
        }
        for (now, was) in self.nodes.iter().zip(&before.nodes) {
            if now.up != was.up {
                out.push(format!(
                    "{} {}",
                    now.name,
                    if now.up { "is back" } else { "is DOWN" }
                ));
            }
        }
        out
    }
}

/// The leader a majority of all members name, if it is up and ready itself. A member that
/// lost its quorum may still call itself leader; it is not counted then.
fn agreed_leader(members: &[MemberView]) -> Option<u64> {
    let majority = members.len() / 2 + 1;
    members.iter().filter_map(|m| m.leader_id).find(|&l| {
        let named = members.iter().filter(|m| m.leader_id == Some(l)).count();
        let live = members.iter().any(|m| m.id == l && m.up && m.ready);
        named >= majority && live
    })
}

async fn member_view(id: u64, addr: &str, http: String) -> MemberView {
    let options = ClientOptions {
        connect_timeout: POLL_TIMEOUT,
        request_timeout: POLL_TIMEOUT,
        retry_for: Duration::ZERO,
        secret: None,
    };
    let mut client = BootstrapClient::new(vec![addr.to_string()], options);
    let mut view = MemberView {
        id,
        addr: addr.to_string(),
        http,
        up: false,
        role: "down".into(),
        term: 0,
        leader_id: None,
        applied: None,
        ready: false,
        reasons: vec!["not answering".into()],
        peer_count: 0,
    };
    if let Ok(info) = client.cluster_info().await {
        let me = info.members.iter().find(|m| m.id == id);
        view.role = match (info.leader_id == Some(id), me) {
            (true, _) => "leader",
            (false, Some(m)) if m.voter => "follower",
            (false, Some(_)) => "learner",
            (false, None) => "removed",
        }
        .into();
        view.up = true;
        view.term = info.term;
        view.leader_id = info.leader_id;
        view.applied = info.last_applied_index;
        view.ready = info.ready.unwrap_or(info.leader_id.is_some());
        view.reasons = info.not_ready_reasons;
        view.peer_count = info.peer_count;
    }
    view
}

async fn node_view(i: u64, addr: &str, http: String) -> NodeView {
    let mut view = NodeView {
        name: format!("node-{i}"),
        addr: addr.to_string(),
        http,
        up: false,
        height: 0,
        tip: String::new(),
        peers: Vec::new(),
        syncing: None,
        bootstrap: None,
        registered: false,
        mining: false,
        blocks_mined: 0,
        recent_blocks: Vec::new(),
    };
    if let Ok(s) = NodeStatusQuery::fetch(addr, POLL_TIMEOUT).await {
        view.up = true;
        view.height = s.tip.height;
        view.tip = hex::encode(&s.tip.hash[..8]);
        view.peers = s
            .peers
            .iter()
            .map(|p| (p.addr.clone(), p.outbound))
            .collect();
        view.syncing = s.syncing;
        view.bootstrap = s.bootstrap;
        view.registered = s.registered;
        view.mining = s.mining;
        view.blocks_mined = s.blocks_mined;
        view.recent_blocks = s
            .recent_blocks
            .iter()
            .take(8)
            .map(|b| (b.height, hex::encode(&b.hash[..8])))
            .collect();
    }
    view
}
