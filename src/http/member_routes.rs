//! [`member_router`]: a bootstrap member's HTTP endpoints.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{html, metrics_text, readiness};
use crate::bootstrap::{Member, MemberHealth};
use crate::registry::RegistryCensus;

/// The member status page.
const PAGE: &str = include_str!("pages/member.html");
/// Most addresses grouped per subnet for the page's histogram: bounds the scan on a large
/// registry (the page says when it stopped short).
pub const CENSUS_SCAN_LIMIT: u64 = 200_000;
/// How long one census serves page loads, so that several open pages cost one scan.
const CENSUS_MAX_AGE: Duration = Duration::from_secs(2);

struct MemberHttp {
    member: Arc<Member>,
    census: Mutex<Option<(Instant, RegistryCensus)>>,
}

/// `/metrics`, `/health`, `/ready`, `/` and `/api/status` of `member`.
pub fn member_router(member: Arc<Member>) -> Router {
    let state = Arc::new(MemberHttp {
        member,
        census: Mutex::new(None),
    });
    Router::new()
        .route("/", get(|| async { html(PAGE) }))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .with_state(state)
}

async fn health(State(s): State<Arc<MemberHttp>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "role": "bootstrap",
        "member_id": s.member.id(),
        "network_id": s.member.config.network_id,
    }))
}

async fn ready(State(s): State<Arc<MemberHttp>>) -> Response {
    let h = MemberHealth::capture(&s.member).await;
    let body = serde_json::to_value(&h).unwrap_or_default();
    readiness(h.ready, body)
}

/// Counts the registry off the async workers; `max_scan` 0 counts without grouping.
async fn census(member: &Member, max_scan: u64) -> Option<RegistryCensus> {
    let registry = member.registry.clone();
    let taken = tokio::task::spawn_blocking(move || {
        let db = registry.current()?;
        RegistryCensus::take(&db, max_scan)
    })
    .await;
    match taken {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "counting the registry failed");
            None
        }
        Err(_) => None,
    }
}

async fn metrics(State(s): State<Arc<MemberHttp>>) -> Response {
    let m = &s.member;
    let h = MemberHealth::capture(m).await;
    let g = m.metrics.gauges();
    let n = |v: Option<u64>| i64::try_from(v.unwrap_or(0)).unwrap_or(i64::MAX);
    g.has_leader.set(i64::from(h.live_leader().is_some()));
    g.is_leader.set(i64::from(h.state == "leader"));
    g.ready.set(i64::from(h.ready));
    g.term.set(n(Some(h.term)));
    g.commit_index.set(n(h.commit_index));
    g.applied_index.set(n(h.applied_index));
    g.last_log_index.set(n(h.last_log_index));
    let since = h
        .last_log_index
        .unwrap_or(0)
        .saturating_sub(h.snapshot_index.unwrap_or(0));
    g.entries_since_snapshot.set(n(Some(since)));
    let age = m.metrics.snapshot_age(h.snapshot_index);
    g.snapshot_age_seconds.set(age);
    g.quorum_ack_age_seconds.set(
        h.millis_since_quorum_ack
            .map_or(0.0, |ms| ms as f64 / 1000.0),
    );
    g.voters.set(h.voters as i64);
    if let Some(c) = census(m, 0).await {
        let records = &g.registry_records;
        records
            .get_or_create(&[("kind", "signed")])
            .set(n(Some(c.signed)));
        records
            .get_or_create(&[("kind", "legacy")])
            .set(n(Some(c.legacy)));
    }
    metrics_text(m.metrics.encode())
}

async fn status(State(s): State<Arc<MemberHttp>>) -> Response {
    let m = &s.member;
    let health = MemberHealth::capture(m).await;
    let cluster = m.cluster_info().await.ok();
    let cached = s
        .census
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(at, _)| at.elapsed() < CENSUS_MAX_AGE);
    let census = match cached {
        Some((_, c)) => Some(c),
        None => {
            let c = census(m, CENSUS_SCAN_LIMIT).await;
            if let (Some(c), Ok(mut slot)) = (&c, s.census.lock()) {
                *slot = Some((Instant::now(), c.clone()));
            }
            c
        }
    };
    Json(json!({
        "role": "bootstrap",
        "health": health,
        "cluster": cluster,
        "census": census,
        "leader_changes": m.metrics.leader_changes(),
    }))
    .into_response()
}
