//! [`DevnetConfig`]: what `peerchain devnet` starts.

use std::path::PathBuf;

use crate::bootstrap::bootstrap_config::{DEFAULT_NETWORK_ID, DEFAULT_PORT};

/// A local network on loopback.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The `peerchain` binary to start members from (normally the running one).
    pub binary: PathBuf,
    /// Where every process keeps its data and log.
    pub data_dir: PathBuf,
    /// Number of bootstrap members (1–7; 3 or 5 in practice).
    pub bootstraps: u64,
    /// Member 1 listens on this port (4000, so the seed chapter's client.go finds it), the
    /// others on the ports after it.
    pub base_port: u16,
    pub network_id: String,
    /// Nodes started (node 1 mines).
    pub nodes: u64,
    /// Port of node 1; the others use the following ports.
    pub node_base_port: u16,
    /// Proof-of-work difficulty of the devnet's chain (leading zero bits).
    pub difficulty: u32,
    /// Seconds the miner pauses after each block.
    pub block_interval_secs: f64,
    /// The overview page's port; member `id` serves its HTTP side port on
    /// `http_base_port + id`, node `i` on `http_base_port + HTTP_NODE_OFFSET + i`.
    pub http_base_port: u16,
}

/// Node `i`'s HTTP port is `http_base_port + HTTP_NODE_OFFSET + i`: past the 7 members at
/// most, with a gap so the numbers read apart (8080 overview, 8081.. members, 8091.. nodes).
pub const HTTP_NODE_OFFSET: u64 = 10;
/// Default port of the devnet's overview page.
pub const DEFAULT_HTTP_BASE_PORT: u16 = 8080;

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("peerchain"),
            data_dir: PathBuf::from("devnet-data"),
            bootstraps: 3,
            base_port: DEFAULT_PORT,
            network_id: DEFAULT_NETWORK_ID.to_string(),
            nodes: 4,
            node_base_port: crate::node::node_config::DEFAULT_NODE_PORT,
            difficulty: 16,
            block_interval_secs: 2.0,
            http_base_port: DEFAULT_HTTP_BASE_PORT,
        }
    }
}

impl DevnetConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A readable reason.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=7).contains(&self.bootstraps) {
            return Err("bootstraps must be between 1 and 7".into());
        }
        if u32::from(self.base_port) + self.bootstraps as u32 > 65_535 {
            return Err("base port too high".into());
        }
        if self.nodes > 64 {
            return Err("at most 64 nodes".into());
        }
        if u32::from(self.node_base_port) + self.nodes as u32 > 65_535 {
            return Err("node base port too high".into());
        }
        let b = u32::from(self.base_port)..u32::from(self.base_port) + self.bootstraps as u32;
        let n = u32::from(self.node_base_port)..u32::from(self.node_base_port) + self.nodes as u32;
        if b.start < n.end && n.start < b.end {
            return Err("bootstrap and node ports overlap".into());
        }
        let h_end = u64::from(self.http_base_port) + HTTP_NODE_OFFSET + self.nodes + 1;
        if h_end > 65_535 {
            return Err("HTTP base port too high".into());
        }
        let h = u32::from(self.http_base_port)..h_end as u32;
        if (h.start < b.end && b.start < h.end) || (h.start < n.end && n.start < h.end) {
            return Err("HTTP ports overlap the bootstrap or node ports".into());
        }
        Ok(())
    }

    /// `(id, address)` of every bootstrap member.
    pub fn bootstrap_addrs(&self) -> Vec<(u64, String)> {
        (1..=self.bootstraps)
            .map(|id| {
                (
                    id,
                    format!("127.0.0.1:{}", u64::from(self.base_port) + id - 1),
                )
            })
            .collect()
    }

    /// `(index, address)` of every node.
    pub fn node_addrs(&self) -> Vec<(u64, String)> {
        (1..=self.nodes)
            .map(|i| {
                (
                    i,
                    format!("127.0.0.1:{}", u64::from(self.node_base_port) + i - 1),
                )
            })
            .collect()
    }

    /// Node `i`'s seed list: every bootstrap, starting at a different one per node, so that
    /// the nodes spread over the members and fall back in different orders.
    pub fn seeds_of(&self, i: u64) -> String {
        let addrs = self.bootstrap_addrs();
        let n = addrs.len();
        (0..n)
            .map(|k| addrs[(k + (i as usize - 1)) % n].1.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Address of the overview page.
    pub fn overview_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http_base_port)
    }

    /// `--http` address of member `id`.
    pub fn member_http(&self, id: u64) -> String {
        format!("127.0.0.1:{}", u64::from(self.http_base_port) + id)
    }

    /// `--http` address of node `i`.
    pub fn node_http(&self, i: u64) -> String {
        format!(
            "127.0.0.1:{}",
            u64::from(self.http_base_port) + HTTP_NODE_OFFSET + i
        )
    }

    /// The `--initial-cluster` value.
    pub fn initial_cluster(&self) -> String {
        self.bootstrap_addrs()
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}
