//! The HTTP side port (`--http ADDR`): Prometheus metrics, health and readiness probes, and a
//! status page a person opens in a browser, for bootstrap members, nodes and the devnet.
//!
//! ```text
//!   GET /metrics   Prometheus text (crate::metrics), gauges read at scrape time
//!   GET /health    200 {"status":"ok",...} while the process answers
//!   GET /ready     200 or 503 {"ready":bool,"reasons":[...],...}
//!   GET /          the status page (plain HTML + JS, served from the binary)
//!   GET /api/status  the JSON the page draws
//! ```
//!
//! The port is separate from the bootstrap and node ports on purpose: it speaks another
//! protocol, carries no writes, and an operator can bind it to loopback (or a monitoring
//! network) while the protocol ports face the internet. See `docs/security.md (the HTTP side port)`.
//!
//! Layout:
//! - [`http_server`] — [`serve`]: axum on an already-bound listener until cancelled.
//! - [`member_routes`] — [`member_router`]: a bootstrap member's endpoints.
//! - [`member_watch`] — [`member_watch`]: counts leader changes, notes snapshot times.
//! - [`node_routes`] — [`node_router`]: a node's endpoints.
//! - [`http_probe`] — [`HttpProbe`]: a bounded GET, for `peerchain health` and tests.

pub mod http_probe;
pub mod http_server;
pub mod member_routes;
pub mod member_watch;
pub mod node_routes;

pub use http_probe::{HttpProbe, ProbeError, ProbeReply};
pub use http_server::serve;
pub use member_routes::member_router;
pub use member_watch::member_watch;
pub use node_routes::{node_router, NodeHttp};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The status page's HTML, with a `Content-Type` that browsers render.
pub fn html(page: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// Metrics text with the OpenMetrics content type.
pub(crate) fn metrics_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// A readiness answer: 200 when ready, 503 otherwise, JSON either way.
pub(crate) fn readiness(ready: bool, body: serde_json::Value) -> Response {
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}
