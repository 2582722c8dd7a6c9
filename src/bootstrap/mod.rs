//! A bootstrap member: one of the 3–5 servers that replicate the peer registry.
//!
//! ```text
//!  client / node / seed client.go          other members
//!        │  frames or JSON lines                │ Raft RPCs (authenticated frames)
//!        ▼                                      ▼
//!   Connection ──► RequestHandler ──► Proposer ──► openraft ──► LogStore (raft-log.redb)
//!        │              │   (group commit,  ▲ forward          │
//!        │              │    forward to     │ to leader        ▼
//!        │              ▼    leader)        │           StateMachineStore (state.redb,
//!        │          RegistryDb ◄────────────┴─────────── snapshots/) ◄── ExpiryTask
//!        └── reads answered locally (or via the leader when linearizable)
//! ```
//!
//! Layout:
//! - [`bootstrap_args`] — [`BootstrapArgs`], the command line over the TOML file.
//! - [`bootstrap_config`] — [`BootstrapConfig`].
//! - [`member`] — [`Member`], the shared state of a running member.
//! - [`free_space`] — free bytes on the data disk, read on a timer for the write check.
//! - [`member_health`] — [`MemberHealth`]: readiness, judged once for `/ready`,
//!   `ClusterInfo` and the metrics.
//! - [`connection`] — accepts one TCP connection and picks its protocol.
//! - [`request_handler`] — answers framed requests.
//! - [`legacy_protocol`] — the seed chapter's JSON lines.
//! - [`legacy_line`] — one JSON line parsed and checked (pure, fuzzed).
//! - [`proposer`] — group commit and forwarding of writes.
//! - [`leader_link`] — authenticated connections to the leader.
//! - [`expiry_task`] — the leader's expiry sweep.
//! - [`signature_batcher`] — the signatures of concurrent requests verified in one batch.
//! - [`snapshot_trigger`] — a snapshot once the log has grown by 8 MiB, whatever its entry count.
//! - [`dial_back`] — the leader's check that a signed record's node answers at its address.
//! - [`host_resolver`] — resolves a registered host name once, at proposal.
//! - [`key_probe`] — one dial-back: the node handshake, up to the listener's proof.
//! - [`raft_events`] — one log line per leader or membership change.
//! - [`election`] — an operator's request that a given member stand for election.
//! - [`cluster_clock`] — [`ClusterClock`], cluster time from the voters' clocks.
//! - [`clock_sampler`] — [`ClockSampler`], reads the other members' clocks.
//! - [`bootstrap_error`] — [`BootstrapError`].
//! - [`quota_config`] — [`QuotaConfig`], the per-source client limits.
//! - [`client_quotas`] — [`ClientQuotas`], what a member counts per client source:
//!   - [`connection_quota`] — connection slots per IP, per subnet, in total, and for members;
//!   - [`request_quota`] — requests per second per IP and per subnet;
//!   - [`frame_budget`] — bytes of incomplete frames before authentication;
//!   - [`refusal_log`] — refusals logged once per source per interval;
//!   - [`member_ips`] — the members' addresses, resolved.

pub mod bootstrap_args;
pub mod bootstrap_config;
pub mod bootstrap_error;
pub mod client_quotas;
pub mod clock_sampler;
pub mod cluster_clock;
pub mod connection;
pub mod connection_quota;
pub mod dial_back;
pub mod election;
pub mod expiry_task;
pub mod frame_budget;
pub mod free_space;
pub mod host_resolver;
pub mod key_probe;
pub mod leader_link;
pub mod legacy_line;
pub mod legacy_protocol;
pub mod member;
pub mod member_health;
pub mod member_ips;
pub mod proposer;
pub mod quota_config;
pub mod raft_events;
pub mod refusal_log;
pub mod request_handler;
pub mod request_quota;
pub mod sample_reservoir;
pub mod signature_batcher;
pub mod snapshot_trigger;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use bootstrap_args::BootstrapArgs;
pub use bootstrap_config::{BootstrapConfig, DEFAULT_NETWORK_ID};
pub use bootstrap_error::BootstrapError;
pub use client_quotas::ClientQuotas;
pub use clock_sampler::ClockSampler;
pub use cluster_clock::ClusterClock;
pub use connection::Connection;
pub use dial_back::DialBack;
pub use expiry_task::ExpiryTask;
pub use leader_link::LeaderLink;
pub use member::Member;
pub use member_health::MemberHealth;
pub use proposer::Proposer;
pub use quota_config::QuotaConfig;
pub use request_handler::RequestHandler;

use openraft::error::{InitializeError, RaftError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::MemberMetrics;
use crate::raft::{
    raft_settings, ClusterSecret, LogStore, NetworkFactory, RegistryRaft, StateMachineStore,
};

/// How long connections and background tasks get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Runs a member on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight work finish and shuts Raft down.
///
/// # Errors
/// Configuration, storage and Raft start-up errors.
pub async fn run(
    config: BootstrapConfig,
    secret: ClusterSecret,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BootstrapError> {
    run_with_http(config, secret, listener, None, shutdown).await
}

/// [`run`], also serving the HTTP side port (metrics, health, status page) on `http`.
///
/// # Errors
/// Configuration, storage and Raft start-up errors.
pub async fn run_with_http(
    config: BootstrapConfig,
    secret: ClusterSecret,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BootstrapError> {
    config.validate().map_err(BootstrapError::Config)?;
    let metrics = MemberMetrics::new();
    let storage_err = |e: &dyn std::fmt::Display| BootstrapError::Storage {
        dir: config.data_dir.display().to_string(),
        reason: e.to_string(),
    };
    // Opening may repair a large file after a crash: keep it off the async workers.
    let data_dir = config.data_dir.clone();
    let storage_metrics = metrics.storage.clone();
    let (log, sm) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        let log = LogStore::open(&data_dir.join("raft-log.redb"))
            .map_err(|e| e.to_string())?
            .with_metrics(storage_metrics.clone());
        let sm = StateMachineStore::open(&data_dir)
            .map_err(|e| e.to_string())?
            .with_metrics(storage_metrics);
        Ok::<_, String>((log, sm))
    })
    .await
    .map_err(|e| storage_err(&e))?
    .map_err(|e| storage_err(&e))?;
    let registry = sm.registry();
    let checkpoints = sm.clone();
    let raft_config =
        raft_settings::raft_config(config.id, config.snapshot_every, config.max_frame_length)
            .map_err(|e| BootstrapError::Config(e.to_string()))?;
    let raft = RegistryRaft::new(
        config.id,
        raft_config,
        NetworkFactory::new(secret.clone(), config.max_frame_length),
        log,
        sm,
    )
    .await
    .map_err(|e| BootstrapError::Raft(e.to_string()))?;
    form_cluster(&raft, &config).await?;

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(checkpoints.clone().run_checkpoints(cancel.clone()));
    let leader_link = Arc::new(LeaderLink::new(secret.clone()));
    let clock = Arc::new(ClusterClock::new(config.id, raft.metrics()));
    let proposer = Proposer::spawn(
        raft.clone(),
        leader_link.clone(),
        clock.clone(),
        metrics.clone(),
        &tracker,
        cancel.clone(),
    );
    let quotas = Arc::new(ClientQuotas::new(&config));
    tracker.spawn(quotas.clone().maintain(raft.clone(), cancel.clone()));
    let free_space = Arc::new(free_space::FreeSpace::new(&config.data_dir));
    tracker.spawn(free_space.clone().run(cancel.clone()));
    let reservoir = Arc::new(sample_reservoir::SampleReservoir::new(
        config.sample_reservoir_from,
    ));
    let member = Arc::new(Member {
        signatures: signature_batcher::SignatureBatcher::spawn(),
        free_space,
        quotas,
        config,
        raft: raft.clone(),
        registry,
        secret,
        proposer,
        leader_link,
        clock,
        metrics,
        reservoir,
    });
    tracker.spawn(ExpiryTask::new(member.clone(), cancel.clone()).run());
    tracker.spawn(member.reservoir.clone().run(
        member.registry.clone(),
        member.clock.clone(),
        cancel.clone(),
    ));
    tracker.spawn(
        snapshot_trigger::SnapshotTrigger::new(
            raft.clone(),
            member.metrics.clone(),
            cancel.clone(),
        )
        .run(),
    );
    if member.config.dial_back {
        tracker.spawn(DialBack::new(member.clone(), cancel.clone()).run());
    }
    tracker.spawn(ClockSampler::new(member.clone(), cancel.clone()).run());
    tracker.spawn(crate::http::member_watch(member.clone(), cancel.clone()));
    if let Some(http) = http {
        tracing::info!(addr = ?http.local_addr().ok(), "HTTP side port (metrics, health, status page)");
        let router = crate::http::member_router(member.clone());
        tracker.spawn(crate::http::serve(http, router, cancel.clone()));
    }
    tracker.spawn(member::report_raft_failure(raft.clone(), cancel.clone()));
    tracker.spawn(raft_events::log_raft_events(raft.clone(), cancel.clone()));
    tracing::info!(
        id = member.id(),
        addr = ?listener.local_addr().ok(),
        data_dir = %member.config.data_dir.display(),
        "bootstrap member started"
    );

    tokio::select! {
        _ = accept_loop(&listener, &member, &tracker, &cancel) => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    drop(listener);
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "some tasks did not finish in time");
    }
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    // Raft may have applied more after the checkpoint task's last run.
    match tokio::task::spawn_blocking(move || checkpoints.checkpoint()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "final registry checkpoint failed"),
        Err(e) => tracing::warn!(error = %e, "final registry checkpoint task failed"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Initialises the cluster on first start. Every initial member proposes the same membership
/// (openraft accepts that); a member that already has state, or that joins later, skips it.
async fn form_cluster(raft: &RegistryRaft, config: &BootstrapConfig) -> Result<(), BootstrapError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| BootstrapError::Raft(e.to_string()))?;
    if initialized || config.join {
        return Ok(());
    }
    let members = request_handler::initial_members(&config.initial_cluster);
    match raft.initialize(members).await {
        Ok(()) => tracing::info!("initialised a new cluster"),
        // Another initial member got its vote or log here first: the cluster exists.
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            tracing::info!(reason = %e, "cluster already initialised by another member");
        }
        Err(e) => return Err(BootstrapError::Raft(format!("cannot initialise: {e}"))),
    }
    Ok(())
}

async fn accept_loop(
    listener: &TcpListener,
    member: &Arc<Member>,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let quotas = &member.quotas;
        let from_member = quotas.member_ips.contains(peer.ip());
        match quotas.connections.admit(peer.ip(), from_member) {
            Ok(admission) => {
                if matches!(admission, connection_quota::Admission::Reserved(_)) {
                    // Rare (client slots full) and bounded by the reserved pool.
                    tracing::info!(%peer, "client slots full: member address admitted into a reserved slot");
                }
                let open = member.metrics.connection_opened();
                let conn = Connection::new(stream, peer, member.clone(), cancel.clone());
                tracker.spawn(async move {
                    conn.run(admission).await;
                    drop(open);
                });
            }
            Err(refusal) => {
                member.metrics.refused(refusal.metric());
                quotas.refusals.refused(peer.ip(), "connection", &refusal);
                connection::refuse(stream, &refusal);
            }
        }
    }
}
