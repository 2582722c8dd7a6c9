//! [`NodeArgs`]: the `peerchain node` command line, merged over the TOML file.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{NodeConfig, NodeError};
use crate::config_file::load_toml;

/// Flags override the TOML file given with --config; unset flags keep the file's values.
#[derive(Args)]
pub struct NodeArgs {
    /// TOML file with any of the settings below (and more: see docs/operations.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on for peers and status queries.
    #[arg(long)]
    pub listen: Option<String>,
    /// Address other nodes dial (default: the listen address, 0.0.0.0 read as 127.0.0.1).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Bootstrap members to try in order: host:port,host:port,...
    #[arg(long, env = "PEERCHAIN_SEEDS")]
    pub seeds: Option<String>,
    /// Nodes to always dial: host:port,host:port,...
    #[arg(long)]
    pub peers: Option<String>,
    /// Directory for the node key, the chain and the address book.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Network id (must match the bootstrap cluster's and the peers').
    #[arg(long)]
    pub network_id: Option<String>,
    /// Mine blocks.
    #[arg(long)]
    pub mine: bool,
    /// Leading zero bits every block needs (network-wide).
    #[arg(long)]
    pub difficulty: Option<u32>,
    /// Seconds the miner pauses after each block.
    #[arg(long)]
    pub block_interval: Option<f64>,
    /// Outbound connections to keep.
    #[arg(long)]
    pub target_outbound: Option<usize>,
    /// Most inbound connections.
    #[arg(long)]
    pub max_inbound: Option<usize>,
    /// Allow several outbound peers in one /16 (for networks on one machine).
    #[arg(long)]
    pub no_diversity: bool,
    /// Seconds between peer fetches from the bootstrap cluster.
    #[arg(long)]
    pub refresh_interval: Option<f64>,
    /// Seconds a registration lives (renewed after a third).
    #[arg(long)]
    pub record_ttl: Option<f64>,
    /// Serve metrics, health, readiness and a status page over HTTP on this address (off
    /// unless given).
    #[arg(long)]
    pub http: Option<String>,
}

impl NodeArgs {
    /// The file's settings (or the defaults), overridden by the flags given, then validated.
    ///
    /// # Errors
    /// [`NodeError::Config`] with every problem found.
    pub fn into_config(self) -> Result<NodeConfig, NodeError> {
        let mut c: NodeConfig = match &self.config {
            Some(path) => load_toml(path).map_err(NodeError::Config)?,
            None => NodeConfig::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if self.advertise.is_some() {
            c.advertise = self.advertise;
        }
        if let Some(v) = self.seeds {
            c.seeds = NodeConfig::parse_list(&v);
        }
        if let Some(v) = self.peers {
            c.peers = NodeConfig::parse_list(&v);
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.network_id {
            c.network_id = v;
        }
        c.mine |= self.mine;
        if let Some(v) = self.difficulty {
            c.difficulty = v;
        }
        if let Some(v) = self.block_interval {
            c.block_interval = secs(v)?;
        }
        if let Some(v) = self.target_outbound {
            c.target_outbound = v;
        }
        if let Some(v) = self.max_inbound {
            c.max_inbound = v;
        }
        if self.no_diversity {
            c.diverse_outbound = false;
        }
        if let Some(v) = self.refresh_interval {
            c.refresh_interval = secs(v)?;
        }
        if let Some(v) = self.record_ttl {
            c.record_ttl = secs(v)?;
        }
        if self.http.is_some() {
            c.http = self.http;
        }
        c.validate().map_err(NodeError::Config)?;
        Ok(c)
    }
}

fn secs(v: f64) -> Result<Duration, NodeError> {
    Duration::try_from_secs_f64(v).map_err(|e| NodeError::Config(format!("bad duration {v}: {e}")))
}
