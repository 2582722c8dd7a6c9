//! [`DevnetArgs`]: the `peerchain devnet` command line.

use std::path::PathBuf;

use clap::Args;

use super::DevnetConfig;

/// What `peerchain devnet` starts; every flag has a default that works out of the box.
#[derive(Args)]
pub struct DevnetArgs {
    /// Data directory (created if absent; reused if present).
    #[arg(long, default_value = "devnet-data")]
    pub data_dir: PathBuf,
    /// Number of bootstrap members.
    #[arg(long, default_value_t = 3)]
    pub bootstraps: u64,
    /// Port of bootstrap member 1; the others use the following ports.
    #[arg(long, default_value_t = 4000)]
    pub base_port: u16,
    /// Number of nodes (node 1 mines).
    #[arg(long, default_value_t = 4)]
    pub nodes: u64,
    /// Port of node 1; the others use the following ports.
    #[arg(long, default_value_t = 7000)]
    pub node_base_port: u16,
    /// Proof-of-work difficulty (leading zero bits).
    #[arg(long, default_value_t = 16)]
    pub difficulty: u32,
    /// Seconds the miner pauses after each block.
    #[arg(long, default_value_t = 2.0)]
    pub block_interval: f64,
    /// Do not start a devnet: ask the one running on `--data-dir` to restart member N
    /// (`2`, `bootstrap-2`) or a node (`node-3`), and exit.
    #[arg(long, value_name = "N")]
    pub restart: Option<String>,
    /// Port of the overview page (open http://127.0.0.1:PORT/); members' HTTP side ports
    /// follow it (PORT+1..), nodes' start at PORT+11.
    #[arg(long, default_value_t = 8080)]
    pub http_base_port: u16,
}

impl DevnetArgs {
    /// The devnet these flags describe, starting its processes from `binary`.
    pub fn into_config(self, binary: PathBuf) -> DevnetConfig {
        DevnetConfig {
            binary,
            data_dir: self.data_dir,
            bootstraps: self.bootstraps,
            base_port: self.base_port,
            nodes: self.nodes,
            node_base_port: self.node_base_port,
            difficulty: self.difficulty,
            block_interval_secs: self.block_interval,
            http_base_port: self.http_base_port,
            ..DevnetConfig::default()
        }
    }
}
