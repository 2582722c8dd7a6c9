//! [`StatusTable`]: one screen of devnet status — members, leader, registry size.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::ProcessGroup;
use crate::client::{BootstrapClient, ClientOptions, NodeStatusQuery};

const QUERY_TIMEOUT: Duration = Duration::from_millis(300);

/// Prints the status of every devnet process.
pub struct StatusTable {
    bootstraps: Vec<(u64, String)>,
    nodes: Vec<(u64, String)>,
    data_dir: PathBuf,
}

impl StatusTable {
    pub fn new(
        bootstraps: Vec<(u64, String)>,
        nodes: Vec<(u64, String)>,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            bootstraps,
            nodes,
            data_dir,
        }
    }

    /// Queries every member and prints the table (redrawn in place on a terminal).
    pub async fn print(&self, group: &mut ProcessGroup) {
        let mut lines = vec![format!(
            "peerchain devnet — data in {} — Ctrl-C stops everything",
            self.data_dir.display()
        )];
        lines.push(format!(
            "{:<12} {:<16} {:<8} {:<6} {:<8} {:<8} {:>8}",
            "BOOTSTRAP", "ADDRESS", "ROLE", "TERM", "LEADER", "APPLIED", "PEERS"
        ));
        for (id, addr) in &self.bootstraps {
            let options = ClientOptions {
                connect_timeout: QUERY_TIMEOUT,
                request_timeout: QUERY_TIMEOUT,
                retry_for: Duration::ZERO,
                secret: None,
            };
            let mut client = BootstrapClient::new(vec![addr.clone()], options);
            let line = match client.cluster_info().await {
                Ok(info) => {
                    let role = match (
                        info.leader_id == Some(*id),
                        info.members.iter().find(|m| m.id == *id),
                    ) {
                        (true, _) => "leader",
                        (false, Some(m)) if m.voter => "follower",
                        (false, Some(_)) => "learner",
                        (false, None) => "removed",
                    };
                    format!(
                        "{:<12} {:<16} {:<8} {:<6} {:<8} {:<8} {:>8}",
                        format!("bootstrap-{id}"),
                        addr,
                        role,
                        info.term,
                        info.leader_id.map_or("-".into(), |l| l.to_string()),
                        info.last_applied_index
                            .map_or("-".into(), |l| l.to_string()),
                        info.peer_count
                    )
                }
                Err(_) => format!(
                    "{:<12} {:<16} {:<8}",
                    format!("bootstrap-{id}"),
                    addr,
                    "DOWN"
                ),
            };
            lines.push(line);
        }
        if !self.nodes.is_empty() {
            lines.push(String::new());
            lines.push(format!(
                "{:<12} {:<16} {:>7} {:<14} {:>6} {:<10} {:>6}",
                "NODE", "ADDRESS", "HEIGHT", "TIP", "PEERS", "SYNC", "MINED"
            ));
        }
        for (i, addr) in &self.nodes {
            let line = match NodeStatusQuery::fetch(addr, QUERY_TIMEOUT * 2).await {
                Ok(s) => format!(
                    "{:<12} {:<16} {:>7} {:<14} {:>6} {:<10} {:>6}",
                    format!("node-{i}"),
                    addr,
                    s.tip.height,
                    hex::encode(&s.tip.hash[..6]),
                    s.peers.len(),
                    match s.syncing {
                        Some((have, target)) => format!("{have}/{target}"),
                        None => "synced".into(),
                    },
                    if s.mining {
                        s.blocks_mined.to_string()
                    } else {
                        "-".into()
                    }
                ),
                Err(_) => format!("{:<12} {:<16} {:>7}", format!("node-{i}"), addr, "DOWN"),
            };
            lines.push(line);
        }
        for (name, status) in group.exited() {
            lines.push(format!(
                "{name} exited: {status} (see its log in the data directory)"
            ));
        }
        let mut out = std::io::stdout().lock();
        if out.is_terminal() {
            let _ = write!(out, "\x1b[2J\x1b[H");
        } else {
            let _ = writeln!(out);
        }
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
    }
}
