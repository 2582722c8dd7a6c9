//! Native `GetPeers` samples, one after the other on one connection, for their latency.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::bench_report::ReadFigures;
use super::{BenchConfig, BenchError, Latencies};
use crate::client::{ClientError, FrameConnection};
use crate::wire::{Request, Response};

/// How long connecting and each call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the phase against `target`.
///
/// # Errors
/// Connecting fails.
pub async fn run(config: &BenchConfig, target: &str) -> Result<ReadFigures, BenchError> {
    let mut conn = FrameConnection::connect(target, CALL_TIMEOUT).await?;
    let mut latencies = Latencies::default();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut peers = 0u64;
    for _ in 0..config.gets {
        let request = Request::GetPeers {
            limit: Some(config.sample),
            exclude: Vec::new(),
            linearizable: false,
        };
        let started = Instant::now();
        match conn.call(request, CALL_TIMEOUT).await {
            Ok(Response::Peers { peers: p }) => {
                latencies.push(started.elapsed());
                peers += p.len() as u64;
            }
            Ok(other) => *errors.entry(format!("unexpected {other:?}")).or_default() += 1,
            Err(ClientError::Server(e)) => *errors.entry(format!("{:?}", e.code)).or_default() += 1,
            Err(e) => {
                *errors.entry(e.to_string()).or_default() += 1;
                conn = FrameConnection::connect(target, CALL_TIMEOUT).await?;
            }
        }
    }
    let answered = latencies.len().max(1) as f64;
    Ok(ReadFigures {
        calls: config.gets,
        sample: config.sample,
        mean_peers: peers as f64 / answered,
        latencies,
        errors,
    })
}
