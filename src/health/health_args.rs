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
    /// An HTTP side port to probe (`host:port`, a member's or a node's `--http`): healthy if
    /// `GET /ready` answers 200 (or `GET /health` with `--live`).
    #[arg(long)]
    pub http: Option<String>,
    /// With `--http`: only check that the process answers (`/health`), not that it is ready.
    #[arg(long, requires = "http")]
    pub live: bool,
    /// Seconds the whole probe may take (connect + reply).
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
}
