//! A blockchain node: actix actors on a multi-thread tokio runtime.
//!
//! ```text
//!   listener ──Inbound──▶ PeerManager ◀──Handshaked/Closed/Penalise── Connection (one per peer)
//!                            ▲   │ dials, bans, address book (peers.redb)     │   ▲
//!        BootstrapLink ──────┘   └──TipChanged◀── ChainSync ◀──blocks──────────┘   │
//!        (register, renew,                         (chain.redb, reorgs) ──Deliver──┘
//!         peers, members)                            │ ▲
//!                                                    ▼ │ MineRequest
//!                                                  Miner (SyncArbiter thread)
//! ```
//!
//! Layout:
//! - [`node_args`] — [`NodeArgs`], the command line over the TOML file.
//! - [`node_config`] — [`NodeConfig`], the TOML settings.
//! - [`node_context`] — identity and configuration shared by the actors.
//! - [`peer_manager`] — [`PeerManager`]: address book, dialing, admission, bans.
//! - [`connection`] — [`Connection`]: one peer, handshake, keepalive, bounded reads.
//! - [`handshake`] — the signed-challenge handshake (pure).
//! - [`chain_sync`] — [`ChainSync`]: the chain, sync from the best peer, announcements.
//! - [`chain_store`] — blocks and the best chain in redb.
//! - [`miner`] — [`Miner`]: proof-of-work search off the actor threads.
//! - [`address_book`] — known addresses, backoff, bans, learned bootstrap members.
//! - [`bootstrap_link`] — registration, renewal and peer fetching with seed fallback.

pub mod address_book;
pub mod bootstrap_link;
pub mod chain_store;
pub mod chain_sync;
pub mod connection;
pub mod handshake;
pub mod miner;
pub mod node_args;
pub mod node_config;
pub mod node_context;
pub mod node_error;
pub mod peer_manager;

pub use address_book::AddressBook;
pub use bootstrap_link::BootstrapLink;
pub use chain_store::ChainStore;
pub use chain_sync::ChainSync;
pub use connection::Connection;
pub use handshake::Handshake;
pub use miner::Miner;
pub use node_args::NodeArgs;
pub use node_config::NodeConfig;
pub use node_context::NodeContext;
pub use node_error::NodeError;
pub use peer_manager::PeerManager;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::record::NodeIdentity;

/// Runs a node on `listener` until `shutdown` completes, then deregisters, says goodbye to
/// its peers and saves its address book. Must be called inside an actix `System` (the binary
/// uses `actix_rt::System::with_tokio_rt` with a multi-thread runtime).
///
/// # Errors
/// Start-up failures: configuration, data directory, chain or address-book storage.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    run_with_http(config, listener, None, shutdown).await
}

/// [`run`], also serving the HTTP side port (metrics, health, status page) on `http`.
///
/// # Errors
/// Start-up failures: configuration, data directory, chain or address-book storage.
pub async fn run_with_http(
    config: NodeConfig,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    config.validate().map_err(NodeError::Config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Io {
        what: format!("creating {}", config.data_dir.display()),
        source,
    })?;
    let key_path = config.data_dir.join("node.key");
    let identity = NodeIdentity::load_or_create(&key_path).map_err(|source| NodeError::Io {
        what: format!("loading the node key {}", key_path.display()),
        source,
    })?;
    let node = Arc::new(NodeContext::new(identity, config));
    let config = &node.config;
    let store = ChainStore::open(
        &config.data_dir.join("chain.redb"),
        &config.network_id,
        node.rules(),
    )?;
    let book = AddressBook::open(&config.data_dir.join("peers.redb"), &node.advertised)?;
    let saved_members = book.bootstrap_members().to_vec();
    let tip = store.tip();
    tracing::info!(
        node = %node.identity.node_id(),
        listen = %node.advertised,
        network = %config.network_id,
        height = tip.height,
        known_peers = book.len(),
        mining = config.mine,
        "node starting"
    );

    let loopback =
        |a: &str| a.starts_with("127.") || a.starts_with("localhost:") || a.starts_with("[::1]");
    if loopback(&node.advertised)
        && config
            .seeds
            .iter()
            .chain(&config.peers)
            .any(|a| !loopback(a))
    {
        tracing::warn!(
            advertised = %node.advertised,
            "this node advertises a loopback address but talks to other hosts, which cannot \
             dial it back; set --advertise HOST:PORT"
        );
    }

    let miner = config.mine.then(|| SyncArbiter::start(1, || Miner));
    let chain_arbiter = Arbiter::new();
    let manager_ctx = Context::<PeerManager>::new();
    let manager_addr = manager_ctx.address();
    let chain_node = node.clone();
    let chain = ChainSync::start_in_arbiter(&chain_arbiter.handle(), move |_| {
        ChainSync::new(chain_node, store, manager_addr, miner)
    });
    let (link_tx, link_rx) = mpsc::channel(8);
    let manager = manager_ctx.run(PeerManager::new(node.clone(), book, chain, link_tx, tip));

    let (stop_tx, stop_rx) = watch::channel(false);
    let link = BootstrapLink::new(node.clone(), saved_members, manager.clone());
    let link_task = tokio::spawn(link.run(link_rx, stop_rx));
    let http_cancel = tokio_util::sync::CancellationToken::new();
    let http_task = http.map(|http| {
        tracing::info!(addr = ?http.local_addr().ok(), "HTTP side port (metrics, health, status page)");
        let router = crate::http::node_router(crate::http::NodeHttp {
            manager: manager.clone(),
            metrics: node.metrics.clone(),
        });
        tokio::spawn(crate::http::serve(http, router, http_cancel.clone()))
    });

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => manager.do_send(peer_manager::Inbound { stream, remote }),
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    tracing::info!("node shutting down");
    drop(listener);
    http_cancel.cancel();
    if let Some(t) = http_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    let _ = manager.send(peer_manager::Shutdown).await;
    let _ = stop_tx.send(true);
    let _ = link_task.await;
    // Let the goodbyes reach the peers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    chain_arbiter.stop();
    let _ = chain_arbiter.join();
    tracing::info!("node stopped");
    Ok(())
}
