//! The `peerchain` binary: parses the command line, sets up logging and signals, and hands
//! over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use peerchain::bootstrap::{self, BootstrapConfig};
use peerchain::ctl::{self, CtlArgs};
use peerchain::devnet::{self, DevnetConfig};
use peerchain::health::{self, HealthArgs};
use peerchain::node::{self, NodeConfig};
use peerchain::raft::ClusterSecret;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "peerchain",
    version,
    about = "Blockchain nodes and the replicated bootstrap cluster they find each other through"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a bootstrap member.
    Bootstrap(BootstrapArgs),
    /// Run a blockchain node.
    Node(NodeArgs),
    /// Operator commands against the bootstrap cluster (and `ctl status --node` for a node).
    Ctl(CtlArgs),
    /// A local network on loopback: 3 bootstrap members (port 4000 onwards), 4 nodes (port
    /// 7000 onwards, node 1 mining) and a live status table; Ctrl-C stops everything.
    Devnet(DevnetArgs),
    /// Exit 0 if the target is healthy (a bootstrap member that knows a leader), non-zero
    /// with the reason otherwise; for container healthchecks.
    Health(HealthArgs),
}

#[derive(Args)]
struct DevnetArgs {
    /// Data directory (created if absent; reused if present).
    #[arg(long, default_value = "devnet-data")]
    data_dir: PathBuf,
    /// Number of bootstrap members.
    #[arg(long, default_value_t = 3)]
    bootstraps: u64,
    /// Port of bootstrap member 1; the others use the following ports.
    #[arg(long, default_value_t = 4000)]
    base_port: u16,
    /// Number of nodes (node 1 mines).
    #[arg(long, default_value_t = 4)]
    nodes: u64,
    /// Port of node 1; the others use the following ports.
    #[arg(long, default_value_t = 7000)]
    node_base_port: u16,
    /// Proof-of-work difficulty (leading zero bits).
    #[arg(long, default_value_t = 16)]
    difficulty: u32,
    /// Seconds the miner pauses after each block.
    #[arg(long, default_value_t = 2.0)]
    block_interval: f64,
}

/// Flags override the TOML file given with --config; unset flags keep the file's values.
#[derive(Args)]
struct NodeArgs {
    /// TOML file with any of the settings below (and more: see docs/operations.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on for peers and status queries.
    #[arg(long)]
    listen: Option<String>,
    /// Address other nodes dial (default: the listen address, 0.0.0.0 read as 127.0.0.1).
    #[arg(long)]
    advertise: Option<String>,
    /// Bootstrap members to try in order: host:port,host:port,...
    #[arg(long, env = "PEERCHAIN_SEEDS")]
    seeds: Option<String>,
    /// Nodes to always dial: host:port,host:port,...
    #[arg(long)]
    peers: Option<String>,
    /// Directory for the node key, the chain and the address book.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Network id (must match the bootstrap cluster's and the peers').
    #[arg(long)]
    network_id: Option<String>,
    /// Mine blocks.
    #[arg(long)]
    mine: bool,
    /// Leading zero bits every block needs (network-wide).
    #[arg(long)]
    difficulty: Option<u32>,
    /// Seconds the miner pauses after each block.
    #[arg(long)]
    block_interval: Option<f64>,
    /// Outbound connections to keep.
    #[arg(long)]
    target_outbound: Option<usize>,
    /// Most inbound connections.
    #[arg(long)]
    max_inbound: Option<usize>,
    /// Allow several outbound peers in one /16 (for networks on one machine).
    #[arg(long)]
    no_diversity: bool,
    /// Seconds between peer fetches from the bootstrap cluster.
    #[arg(long)]
    refresh_interval: Option<f64>,
    /// Seconds a registration lives (renewed after a third).
    #[arg(long)]
    record_ttl: Option<f64>,
}

impl NodeArgs {
    fn into_config(self) -> anyhow::Result<NodeConfig> {
        let mut c: NodeConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
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
        c.validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(c)
    }
}

fn secs(v: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(v).map_err(|e| anyhow::anyhow!("bad duration {v}: {e}"))
}

/// Flags override the TOML file given with --config; unset flags keep the file's values.
#[derive(Args)]
struct BootstrapArgs {
    /// TOML file with any of the settings below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This member's id (≥ 1).
    #[arg(long)]
    id: Option<u64>,
    /// Address to listen on (default 0.0.0.0:$BOOTSTRAP_PORT, or 0.0.0.0:4000).
    #[arg(long)]
    listen: Option<String>,
    /// Every initial member as id=host:port,id=host:port,...
    #[arg(long)]
    initial_cluster: Option<String>,
    /// Join an existing cluster (wait for `ctl cluster add-learner`) instead of forming one.
    #[arg(long, env = "PEERCHAIN_JOIN")]
    join: bool,
    /// Directory for the Raft log, registry and snapshots.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// File holding the cluster secret.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Network id records must be signed for.
    #[arg(long)]
    network_id: Option<String>,
    /// Applied entries between snapshots.
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Largest frame read or written, bytes (default 1 MiB).
    #[arg(long)]
    max_frame_length: Option<usize>,
}

impl BootstrapArgs {
    fn into_config(self) -> anyhow::Result<BootstrapConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => {
                let mut c = BootstrapConfig::default();
                if let Ok(port) = std::env::var("BOOTSTRAP_PORT") {
                    c.listen = format!("0.0.0.0:{port}");
                }
                c
            }
        };
        if let Some(v) = self.id {
            c.id = v;
        }
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.initial_cluster {
            c.initial_cluster =
                BootstrapConfig::parse_initial_cluster(&v).map_err(anyhow::Error::msg)?;
        }
        c.join |= self.join;
        if c.initial_cluster.is_empty() && !c.join {
            // A lone member: a one-member cluster on its listen address.
            c.initial_cluster = vec![(c.id, c.listen.replace("0.0.0.0", "127.0.0.1"))];
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if self.cluster_secret_file.is_some() {
            c.cluster_secret_file = self.cluster_secret_file;
        }
        if let Some(v) = self.network_id {
            c.network_id = v;
        }
        if let Some(v) = self.snapshot_every {
            c.snapshot_every = v;
        }
        if let Some(v) = self.max_frame_length {
            c.max_frame_length = v;
        }
        c.validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(c)
    }
}

fn cluster_secret(config: &BootstrapConfig) -> anyhow::Result<ClusterSecret> {
    Ok(ClusterSecret::from_file_or_env(
        config.cluster_secret_file.as_deref(),
    )?)
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("PEERCHAIN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Node(args) => run_node(args),
        Command::Bootstrap(args) => on_tokio(run_bootstrap(args)),
        Command::Devnet(args) => on_tokio(run_devnet(args)),
        Command::Ctl(args) => on_tokio(run_ctl(args)),
        Command::Health(args) => on_tokio(run_health(args)),
    }
}

/// A node: actix actors on the system arbiter, over a multi-thread tokio runtime so that
/// tokio tasks (the bootstrap link, connection writers) run beside them.
fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    actix_rt::System::with_tokio_rt(move || runtime).block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        node::run(config, listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// Runs `f` on a multi-thread tokio runtime (bootstrap members, ctl and devnet need no actors).
fn on_tokio(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

async fn run_bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let secret = cluster_secret(&config)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    bootstrap::run(config, secret, listener, shutdown_signal()).await?;
    Ok(())
}

async fn run_devnet(args: DevnetArgs) -> anyhow::Result<()> {
    let config = DevnetConfig {
        binary: std::env::current_exe()?,
        data_dir: args.data_dir,
        bootstraps: args.bootstraps,
        base_port: args.base_port,
        nodes: args.nodes,
        node_base_port: args.node_base_port,
        difficulty: args.difficulty,
        block_interval_secs: args.block_interval,
        ..DevnetConfig::default()
    };
    devnet::run(config, shutdown_signal()).await?;
    Ok(())
}

async fn run_health(args: HealthArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    health::run(args, &mut out).await?;
    Ok(())
}

async fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    ctl::run(args, &mut out).await?;
    Ok(())
}
