//! [`node_router`]: a node's HTTP endpoints, answered from the peer manager's status.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{html, metrics_text, readiness};
use crate::metrics::NodeMetrics;
use crate::node::peer_manager::GetNodeStatus;
use crate::node::PeerManager;
use crate::wire::NodeStatus;

/// The node status page.
const PAGE: &str = include_str!("pages/node.html");
/// How long the node's actors get to report their status: a node too busy to answer in this
/// time is reported as failing rather than holding the probe open.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// What a node's endpoints read from.
#[derive(Clone)]
pub struct NodeHttp {
    pub manager: Addr<PeerManager>,
    pub metrics: NodeMetrics,
}

/// `/metrics`, `/health`, `/ready`, `/` and `/api/status` of a node.
pub fn node_router(state: NodeHttp) -> Router {
    Router::new()
        .route("/", get(|| async { html(PAGE) }))
        .route(
            "/health",
            get(|| async { Json(json!({"status": "ok", "role": "node"})) }),
        )
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .with_state(Arc::new(state))
}

async fn fetch(s: &NodeHttp) -> Option<NodeStatus> {
    match tokio::time::timeout(STATUS_TIMEOUT, s.manager.send(GetNodeStatus)).await {
        Ok(Ok(status)) => Some(status),
        _ => None,
    }
}

/// Why a node is not ready: it needs a peer, and must not be catching up.
pub fn not_ready_reasons(s: &NodeStatus) -> Vec<String> {
    let mut reasons = Vec::new();
    if s.peers.is_empty() {
        reasons.push("no connected peers".to_string());
    }
    if let Some((have, target)) = s.syncing {
        reasons.push(format!("syncing: height {have} of {target}"));
    }
    reasons
}

fn unavailable() -> Response {
    readiness(
        false,
        json!({"ready": false, "reasons": ["the node's actors did not answer in time"]}),
    )
}

async fn ready(State(s): State<Arc<NodeHttp>>) -> Response {
    let Some(status) = fetch(&s).await else {
        return unavailable();
    };
    let reasons = not_ready_reasons(&status);
    let ready = reasons.is_empty();
    let body = json!({
        "ready": ready,
        "reasons": reasons,
        "peers": status.peers.len(),
        "height": status.tip.height,
        "syncing": status.syncing,
        "registered": status.registered,
        "bootstrap": status.bootstrap,
    });
    readiness(ready, body)
}

async fn metrics(State(s): State<Arc<NodeHttp>>) -> Response {
    if let Some(status) = fetch(&s).await {
        s.metrics
            .set_status(&status, not_ready_reasons(&status).is_empty());
    }
    metrics_text(s.metrics.encode())
}

async fn status(State(s): State<Arc<NodeHttp>>) -> Response {
    let Some(status) = fetch(&s).await else {
        return unavailable();
    };
    let reasons = not_ready_reasons(&status);
    Json(json!({
        "role": "node",
        "ready": reasons.is_empty(),
        "reasons": reasons,
        "status": status,
    }))
    .into_response()
}
