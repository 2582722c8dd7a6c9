//! [`HealthArgs`]: the `peerchain health` command line.

use clap::Args;

/// What to probe: a bootstrap member, a node, or both.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// A bootstrap member to probe (`host:port`): healthy if it answers CLUSTER_INFO and
    /// knows a leader.
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// A node to probe (`host:port`): healthy if it answers a status query.
    #[arg(long)]
    pub node: Option<String>,
    /// Seconds the whole probe may take (connect + reply).
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
}
