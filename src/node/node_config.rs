//! [`NodeConfig`]: everything a node is started with. The same fields may come from flags or
//! a TOML file (`peerchain node --config node.toml`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bootstrap::bootstrap_config::humantime_secs;
use crate::bootstrap::DEFAULT_NETWORK_ID;
use crate::record::PeerAddress;

/// Default port of a node.
pub const DEFAULT_NODE_PORT: u16 = 7000;

/// Configuration of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address the binary binds (the library is handed a bound listener).
    pub listen: String,
    /// Address other nodes dial, registered with the bootstrap cluster and sent in the
    /// handshake (default: `listen`, with an unspecified host replaced by 127.0.0.1).
    pub advertise: Option<String>,
    /// Bootstrap members to try in order (the static seed list).
    pub seeds: Vec<String>,
    /// Nodes always dialed, besides those discovered.
    pub peers: Vec<String>,
    /// Holds the node key, the chain and the address book.
    pub data_dir: PathBuf,
    pub network_id: String,
    /// Mine blocks.
    pub mine: bool,
    /// Leading zero bits every block's hash needs (a network-wide rule: all nodes of a
    /// network must agree).
    pub difficulty: u32,
    /// Pause of the miner after each block it finds (keeps a devnet from burning every core).
    #[serde(with = "humantime_secs")]
    pub block_interval: Duration,
    /// Outbound connections the node keeps.
    pub target_outbound: usize,
    /// Most inbound connections.
    pub max_inbound: usize,
    /// At most one outbound connection per /16 (IPv4) or /32 (IPv6) group. Switch off for
    /// test networks where every node is on loopback.
    pub diverse_outbound: bool,
    /// TCP connect timeout for bootstrap members and peers.
    #[serde(with = "humantime_secs")]
    pub connect_timeout: Duration,
    /// Lifetime of the node's registration; it is renewed after a third of it.
    #[serde(with = "humantime_secs")]
    pub record_ttl: Duration,
    /// How often the node asks the bootstrap cluster for peers (sooner when the address book
    /// runs low).
    #[serde(with = "humantime_secs")]
    pub refresh_interval: Duration,
    /// Ping interval; a peer silent for three intervals is dropped.
    #[serde(with = "humantime_secs")]
    pub ping_interval: Duration,
    /// Misbehaviour score at which a peer is disconnected and banned.
    pub ban_threshold: u32,
    #[serde(with = "humantime_secs")]
    pub ban_duration: Duration,
    /// Largest frame accepted from or sent to a peer, in bytes.
    pub max_frame_length: usize,
    /// Address of the HTTP side port (`/metrics`, `/health`, `/ready`, the status page); off
    /// when unset.
    pub http: Option<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: format!("0.0.0.0:{DEFAULT_NODE_PORT}"),
            advertise: None,
            seeds: Vec::new(),
            peers: Vec::new(),
            data_dir: PathBuf::from("node-data"),
            network_id: DEFAULT_NETWORK_ID.to_string(),
            mine: false,
            difficulty: 16,
            block_interval: Duration::from_secs(2),
            target_outbound: 8,
            max_inbound: 32,
            diverse_outbound: true,
            connect_timeout: Duration::from_secs(1),
            record_ttl: Duration::from_secs(300),
            refresh_interval: Duration::from_secs(60),
            ping_interval: Duration::from_secs(10),
            ban_threshold: 100,
            ban_duration: Duration::from_secs(600),
            max_frame_length: 2 * 1024 * 1024,
            http: None,
        }
    }
}

impl NodeConfig {
    /// The address other nodes dial.
    pub fn advertised(&self) -> String {
        match &self.advertise {
            Some(a) => a.clone(),
            None => self
                .listen
                .replace("0.0.0.0", "127.0.0.1")
                .replace("[::]", "[::1]"),
        }
    }

    /// Checks the configuration, listing every problem found.
    ///
    /// # Errors
    /// One line per problem.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if PeerAddress::parse(&self.advertised()).is_err() {
            problems.push(format!(
                "advertised address {:?} is not host:port",
                self.advertised()
            ));
        }
        for a in self.seeds.iter().chain(&self.peers) {
            if PeerAddress::parse(a).is_err() {
                problems.push(format!("{a:?} is not host:port"));
            }
        }
        if self.network_id.is_empty() {
            problems.push("network id must not be empty".into());
        }
        if self.difficulty > 64 {
            problems.push("difficulty must be at most 64 bits".into());
        }
        if self.record_ttl < Duration::from_secs(3) {
            problems.push("record_ttl must be at least 3 s".into());
        }
        if self.ping_interval.is_zero() || self.refresh_interval.is_zero() {
            problems.push("intervals must be positive".into());
        }
        if self.max_frame_length < 64 * 1024 {
            problems.push("max_frame_length must be at least 64 KiB".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Splits `a,b,c` into addresses (empty parts dropped).
    pub fn parse_list(s: &str) -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_toml_round_trips() {
        let c = NodeConfig {
            seeds: NodeConfig::parse_list("127.0.0.1:4000, 127.0.0.1:4001,"),
            ..NodeConfig::default()
        };
        assert_eq!(c.seeds.len(), 2);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.advertised(), "127.0.0.1:7000");
        let text = toml::to_string(&c).expect("toml");
        let back: NodeConfig = toml::from_str(&text).expect("parse");
        assert_eq!(back, c);
        let bad = NodeConfig {
            seeds: vec!["nope".into()],
            difficulty: 99,
            ..NodeConfig::default()
        };
        let err = bad.validate().expect_err("invalid");
        assert!(err.contains("nope") && err.contains("difficulty"), "{err}");
    }
}
