//! Prometheus metrics of a bootstrap member and of a node, in the text format served on
//! `GET /metrics` of the HTTP side port ([`crate::http`]).
//!
//! Names follow etcd's and CometBFT's habits: a `peerchain_` prefix, counters end in
//! `_total`, durations are `_seconds` histograms. Counters and histograms are pushed from
//! their call sites through a cheap, cloneable handle (one line each, so that the code paths
//! they count stay readable); gauges that Raft, the registry or a node's actors already know
//! are read at scrape time instead, so they can never drift from the truth.
//!
//! Layout:
//! - [`member_metrics`] — [`MemberMetrics`]: what a member counts, and its registry.
//! - [`storage_metrics`] — [`StorageMetrics`]: log fsync and apply durations, commit index,
//!   handed to the Raft storage.
//! - [`node_metrics`] — [`NodeMetrics`]: what a node counts, and its registry.

/// Registers each `name, help => metric` in a registry (the metric is cloned: clones share
/// their values), one line per metric. `seconds` gives the names a `_seconds` unit.
macro_rules! register {
    ($r:expr; $( $name:literal, $help:literal => $metric:expr ),* $(,)?) => {
        $( $r.register($name, $help, $metric.clone()); )*
    };
    ($r:expr; seconds $( $name:literal, $help:literal => $metric:expr ),* $(,)?) => {
        $( $r.register_with_unit(
            $name,
            $help,
            prometheus_client::registry::Unit::Seconds,
            $metric.clone(),
        ); )*
    };
}

pub mod member_metrics;
pub mod node_metrics;
pub mod storage_metrics;

pub use member_metrics::{FrameRefusal, MemberMetrics, RaftGauges};
pub use node_metrics::{NodeGauges, NodeMetrics};
pub use storage_metrics::StorageMetrics;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`encode_registry`]'s output (OpenMetrics text, which Prometheus
/// scrapes natively and which is a superset of its classic text format).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of `registry` in the text format.
pub fn encode_registry(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug in a metric's name.
    if let Err(e) = encode(&mut out, registry) {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    out
}

/// Buckets for latencies from 100 µs to about 13 s (fsyncs, applies, GET_PEERS).
pub(crate) fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18)
}
