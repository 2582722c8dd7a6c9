//! `peerchain devnet`: a whole local network on loopback, for trying peerchain out.
//!
//! Layout:
//! - [`devnet_args`] — [`DevnetArgs`], the command line.
//! - [`devnet_config`] — [`DevnetConfig`].
//! - [`devnet_control`] — the control socket behind `peerchain devnet --restart N`.
//! - [`process_group`] — the child processes, started and stopped together.
//! - [`status_table`] — the live table printed every second.
//! - [`network_overview`] — [`NetworkOverview`]: the whole network on one web page.
//! - [`network_snapshot`] — [`network_snapshot::NetworkSnapshot`]: one poll of every process.

pub mod devnet_args;
pub mod devnet_config;
pub mod devnet_control;
pub mod network_overview;
pub mod network_snapshot;
pub mod process_group;
pub mod status_table;

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

pub use devnet_args::DevnetArgs;
pub use devnet_config::DevnetConfig;
pub use devnet_control::{request_restart, DevnetControl, RestartRequest};
pub use network_overview::NetworkOverview;
pub use process_group::{rss_kib, ProcessGroup};
pub use status_table::StatusTable;

use crate::raft::ClusterSecret;

/// How often the status table is refreshed.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// How long a restarted process gets to stop before it is killed.
const RESTART_GRACE: Duration = Duration::from_secs(5);
/// How long processes get to stop when the devnet stops.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the devnet failed.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("devnet: {0}")]
    Io(#[from] std::io::Error),
    #[error("devnet: {0}")]
    Config(String),
}

/// Starts the bootstrap members, prints their status every second until `shutdown`, then
/// stops every process cleanly (SIGTERM, then SIGKILL after a grace period).
///
/// # Errors
/// Set-up errors (data directory, ports, spawning).
pub async fn run(
    config: DevnetConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevnetError> {
    config.validate().map_err(DevnetError::Config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let control = DevnetControl::bind(&config.data_dir).await?;
    let secret_file = config.data_dir.join("cluster-secret");
    if !secret_file.exists() {
        std::fs::write(&secret_file, hex::encode(ClusterSecret::nonce()))?;
    }
    let mut group = ProcessGroup::new(config.data_dir.clone());
    let initial = config.initial_cluster();
    for (id, addr) in config.bootstrap_addrs() {
        let dir = config.data_dir.join(format!("bootstrap-{id}"));
        let mut args = vec![
            "bootstrap".to_string(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            addr.clone(),
            "--initial-cluster".into(),
            initial.clone(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--cluster-secret-file".into(),
            secret_file.display().to_string(),
            "--network-id".into(),
            config.network_id.clone(),
            "--http".into(),
            config.member_http(id),
        ];
        // Everything of a devnet runs on 127.0.0.1: the per-source quotas (meant for the
        // Internet) would treat it as one very busy client.
        for flag in crate::bootstrap::quota_config::NO_CLIENT_QUOTA_FLAGS {
            args.push((*flag).to_string());
        }
        group.spawn(&format!("bootstrap-{id}"), &config.binary, &args)?;
    }
    for (i, addr) in config.node_addrs() {
        let dir = config.data_dir.join(format!("node-{i}"));
        let mut args = vec![
            "node".to_string(),
            "--listen".into(),
            addr.clone(),
            "--seeds".into(),
            config.seeds_of(i),
            "--data-dir".into(),
            dir.display().to_string(),
            "--network-id".into(),
            config.network_id.clone(),
            "--difficulty".into(),
            config.difficulty.to_string(),
            "--no-diversity".into(),
            "--refresh-interval".into(),
            "10".into(),
            "--http".into(),
            config.node_http(i),
        ];
        if i == 1 {
            args.extend([
                "--mine".to_string(),
                "--block-interval".into(),
                config.block_interval_secs.to_string(),
            ]);
        }
        group.spawn(&format!("node-{i}"), &config.binary, &args)?;
    }
    let overview = NetworkOverview::start(&config).await?;
    let mut table = StatusTable::new(
        config.bootstrap_addrs(),
        config.node_addrs(),
        config.data_dir.clone(),
    );
    let (requests_tx, mut requests) = mpsc::channel::<RestartRequest>(8);
    let control_task = tokio::spawn(control.serve(requests_tx.clone()));
    let keys_task = std::io::stdin()
        .is_terminal()
        .then(|| tokio::spawn(read_keys(requests_tx)));
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                table.print(&mut group).await;
                println!("overview page: {}", overview.url());
            }
            Some(req) = requests.recv() => {
                let answer = match group.restart(&req.name, RESTART_GRACE).await {
                    Ok(pid) => format!("restarted {} (pid {pid})", req.name),
                    Err(e) => format!("error: {e}"),
                };
                table.set_notice(answer.clone());
                let _ = req.reply.send(answer);
            }
        }
    }
    control_task.abort();
    if let Some(t) = keys_task {
        t.abort();
    }
    overview.stop();
    println!("stopping devnet ...");
    group.stop_all("node-", STOP_GRACE).await;
    println!("devnet stopped; data kept in {}", config.data_dir.display());
    Ok(())
}

/// Lines typed where the devnet runs: a member's number (or `node-N`) restarts it.
async fn read_keys(requests: mpsc::Sender<RestartRequest>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        match devnet_control::parse(&line) {
            Ok(name) => {
                let (reply, _answer) = tokio::sync::oneshot::channel();
                if requests.send(RestartRequest { name, reply }).await.is_err() {
                    return;
                }
            }
            Err(e) => eprintln!("{e}"),
        }
    }
}
