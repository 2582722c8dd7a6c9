//! [`serve`]: runs an axum router on an already-bound listener until cancelled.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` until `cancel` fires, then lets requests in progress finish.
/// A failing server is logged, never fatal: the side port must not take the member or node
/// down with it.
pub async fn serve(listener: TcpListener, router: Router, cancel: CancellationToken) {
    let addr = listener.local_addr().ok();
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::warn!(?addr, error = %e, "HTTP side port stopped");
    }
}
