//! [`CtlArgs`]: the `peerchain ctl` command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::bootstrap::bootstrap_config::DEFAULT_NETWORK_ID;

/// Options shared by every ctl command.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// Bootstrap members to try, in order (`host:port,host:port`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:4000",
        env = "PEERCHAIN_BOOTSTRAP"
    )]
    pub bootstrap: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Network id that records are signed for.
    #[arg(long, default_value = DEFAULT_NETWORK_ID, global = true)]
    pub network_id: String,
    /// Cluster secret file (needed by `cluster add-learner|promote|remove|elect` and
    /// `peers --all`).
    /// Without it, the secret is read from the `PEERCHAIN_CLUSTER_SECRET` environment
    /// variable; it is never taken on the command line, where `ps` would show it.
    #[arg(long, global = true)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Seconds to wait for a TCP connection to one member before trying the next.
    #[arg(long, default_value_t = 1.0, global = true)]
    pub connect_timeout: f64,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// Register ADDR with a record signed by the key in --key (created if absent).
    Register {
        address: String,
        /// Seconds until the record expires unless renewed.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The signing key (created if absent). Default: `peerchain/ctl.key` in the user's
        /// data directory (`$XDG_DATA_HOME`, else `~/.local/share`), never the current one.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Show a random sample of peers, or every peer with --all.
    Peers {
        #[arg(long)]
        limit: Option<u32>,
        /// Page through the whole registry.
        #[arg(long)]
        all: bool,
        /// Read through the leader after it confirms its leadership.
        #[arg(long)]
        linearizable: bool,
    },
    /// Remove ADDR (signed by the key that registered it).
    Remove {
        address: String,
        /// The key that registered it (default as for `register`).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Show a node's peers, chain tip and sync state (asks the node, not the cluster).
    Status {
        /// The node's address.
        #[arg(long, default_value = "127.0.0.1:7000")]
        node: String,
    },
    /// Show the members and the leader, or change the membership.
    Cluster {
        #[command(subcommand)]
        action: Option<ClusterAction>,
    },
}

/// Membership changes.
#[derive(Debug, Clone, Subcommand)]
pub enum ClusterAction {
    /// Show members and leader (the default).
    Info,
    /// Add member ID at ADDR as a non-voting learner; waits until it has caught up.
    AddLearner { id: u64, addr: String },
    /// Make learner ID a voter.
    Promote { id: u64 },
    /// Remove member ID (voter or learner).
    Remove { id: u64 },
    /// Make voter ID stand for election; waits until it leads (up to 10 s).
    Elect { id: u64 },
}

/// Where ctl keeps its signing key when `--key` is not given: the user's data directory
/// (`$XDG_DATA_HOME/peerchain/ctl.key`, else `$HOME/.local/share/peerchain/ctl.key`), so that
/// running ctl inside a checkout never leaves a key file in it. `None` without either variable.
pub fn default_key_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("peerchain").join("ctl.key"))
}
