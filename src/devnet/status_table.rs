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
    /// The answer to the last restart, shown under the table.
    notice: Option<String>,
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
            notice: None,
        }
    }

    /// Shows `notice` under the table from now on.
    pub fn set_notice(&mut self, notice: String) {
        self.notice = Some(notice);
    }

    /// Queries every member and node and prints the table (redrawn in place on a terminal).
    pub async fn print(&self, group: &mut ProcessGroup) {
        let mut lines = vec![format!(
            "peerchain devnet — data in {} — Ctrl-C stops everything",
            self.data_dir.display()
        )];
        lines.push(format!(
            "{:<12} {:<16} {:>7} {:<8} {:<6} {:<8} {:<8} {:>8}",
            "BOOTSTRAP", "ADDRESS", "PID", "ROLE", "TERM", "LEADER", "APPLIED", "PEERS"
        ));
        for (id, addr) in &self.bootstraps {
            let name = format!("bootstrap-{id}");
            let pid = group.pid_of(&name).map_or("-".into(), |p| p.to_string());
            lines.push(member_line(*id, &name, addr, &pid).await);
        }
        if !self.nodes.is_empty() {
            lines.push(String::new());
            lines.push(format!(
                "{:<12} {:<16} {:>7} {:>7} {:<14} {:>6} {:<17} {:>6}",
                "NODE", "ADDRESS", "PID", "HEIGHT", "TIP", "PEERS", "SYNC", "MINED"
            ));
        }
        for (i, addr) in &self.nodes {
            let name = format!("node-{i}");
            let pid = group.pid_of(&name).map_or("-".into(), |p| p.to_string());
            lines.push(node_line(&name, addr, &pid).await);
        }
        for (name, status) in group.exited() {
            lines.push(format!(
                "{name} exited: {status} (log: {}/{name}.log)",
                self.data_dir.display()
            ));
        }
        lines.push(String::new());
        lines.push(format!(
            "restart a member or node: type its number (or node-N) and Enter here, or run \
             `peerchain devnet --data-dir {} --restart N` in another terminal",
            self.data_dir.display()
        ));
        if let Some(n) = &self.notice {
            lines.push(n.clone());
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

/// One member's row: its role as it sees the cluster, or DOWN.
async fn member_line(id: u64, name: &str, addr: &str, pid: &str) -> String {
    let options = ClientOptions {
        connect_timeout: QUERY_TIMEOUT,
        request_timeout: QUERY_TIMEOUT,
        retry_for: Duration::ZERO,
        secret: None,
    };
    let mut client = BootstrapClient::new(vec![addr.to_string()], options);
    match client.cluster_info().await {
        Ok(info) => {
            let role = match (
                info.leader_id == Some(id),
                info.members.iter().find(|m| m.id == id),
            ) {
                (true, _) => "leader",
                (false, Some(m)) if m.voter => "follower",
                (false, Some(_)) => "learner",
                (false, None) => "removed",
            };
            format!(
                "{name:<12} {addr:<16} {pid:>7} {role:<8} {:<6} {:<8} {:<8} {:>8}",
                info.term,
                info.leader_id.map_or("-".into(), |l| l.to_string()),
                info.last_applied_index
                    .map_or("-".into(), |l| l.to_string()),
                info.peer_count
            )
        }
        Err(_) => format!("{name:<12} {addr:<16} {pid:>7} DOWN"),
    }
}

/// One node's row. A node with no peer is "waiting for peers", never "synced".
async fn node_line(name: &str, addr: &str, pid: &str) -> String {
    match NodeStatusQuery::fetch(addr, QUERY_TIMEOUT * 2).await {
        Ok(s) => format!(
            "{name:<12} {addr:<16} {pid:>7} {:>7} {:<14} {:>6} {:<17} {:>6}",
            s.tip.height,
            hex::encode(&s.tip.hash[..6]),
            s.peers.len(),
            match s.syncing {
                Some((have, target)) => format!("{have}/{target}"),
                None if s.peers.is_empty() => "waiting for peers".into(),
                None => "synced".into(),
            },
            if s.mining {
                s.blocks_mined.to_string()
            } else {
                "-".into()
            }
        ),
        Err(_) => format!("{name:<12} {addr:<16} {pid:>7} DOWN"),
    }
}
