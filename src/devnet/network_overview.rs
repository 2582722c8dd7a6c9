//! [`NetworkOverview`]: the devnet's one web page showing the whole network — members and
//! leader, nodes and heights, who is connected to whom — redrawn every second, with the
//! events (a leader killed, a new one elected) listed as they happen.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::network_snapshot::NetworkSnapshot;
use super::{DevnetConfig, DevnetError};

/// The overview page.
const PAGE: &str = include_str!("../http/pages/devnet.html");
/// How often the network is polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Events kept for the page.
const MAX_EVENTS: usize = 200;

/// Something that happened, with when it was seen.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkEvent {
    pub at_ms: u64,
    pub text: String,
}

#[derive(Default)]
struct Latest {
    snapshot: Option<NetworkSnapshot>,
    events: VecDeque<NetworkEvent>,
}

/// The running overview: a poller and an HTTP server, stopped together.
pub struct NetworkOverview {
    url: String,
    cancel: CancellationToken,
}

impl NetworkOverview {
    /// Binds the overview page on `config.overview_addr()` and starts polling.
    ///
    /// # Errors
    /// [`DevnetError::Config`] if the port is taken.
    pub async fn start(config: &DevnetConfig) -> Result<Self, DevnetError> {
        let addr = config.overview_addr();
        let listener = TcpListener::bind(&addr).await.map_err(|e| {
            DevnetError::Config(format!(
                "cannot serve the overview page on {addr}: {e} (choose another --http-base-port)"
            ))
        })?;
        let cancel = CancellationToken::new();
        let latest = Arc::new(Mutex::new(Latest::default()));
        tokio::spawn(poll(config.clone(), latest.clone(), cancel.clone()));
        let router = Router::new()
            .route("/", get(|| async { crate::http::html(PAGE) }))
            .route("/api/network", get(network))
            .with_state(latest);
        tokio::spawn(crate::http::serve(listener, router, cancel.clone()));
        Ok(Self {
            url: format!("http://{addr}/"),
            cancel,
        })
    }

    /// Where to point a browser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops polling and serving.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

async fn poll(config: DevnetConfig, latest: Arc<Mutex<Latest>>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = NetworkSnapshot::take(&config).await;
        let Ok(mut l) = latest.lock() else { return };
        if let Some(before) = &l.snapshot {
            for text in now.events_since(before) {
                l.events.push_back(NetworkEvent {
                    at_ms: now.taken_ms,
                    text,
                });
            }
            while l.events.len() > MAX_EVENTS {
                l.events.pop_front();
            }
        }
        l.snapshot = Some(now);
    }
}

async fn network(State(latest): State<Arc<Mutex<Latest>>>) -> Json<serde_json::Value> {
    let Ok(l) = latest.lock() else {
        return Json(serde_json::Value::Null);
    };
    Json(serde_json::json!({
        "snapshot": l.snapshot,
        "events": l.events,
    }))
}
