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
    /// Number of bootstrap members (3–5).
    pub bootstraps: u64,
    /// Member 1 listens on this port (4000, so the seed chapter's client.go finds it), the
    /// others on the ports after it.
    pub base_port: u16,
    pub network_id: String,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("peerchain"),
            data_dir: PathBuf::from("devnet-data"),
            bootstraps: 3,
            base_port: DEFAULT_PORT,
            network_id: DEFAULT_NETWORK_ID.to_string(),
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

    /// The `--initial-cluster` value.
    pub fn initial_cluster(&self) -> String {
        self.bootstrap_addrs()
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}
