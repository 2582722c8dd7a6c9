//! Native registrations, pre-signed and pipelined: `connections` connections, each keeping
//! `in_flight` `Register` requests outstanding, so that what is measured is the cluster, not a
//! client waiting for one reply before it sends the next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::bench_report::WriteFigures;
use super::{BenchConfig, BenchError, Latencies, Progress};
use crate::bootstrap::signature_batcher::MAX_BATCH;
use crate::record::{verify_all, NodeIdentity, PeerRecord};
use crate::wire::{Envelope, FrameCodec, Request, Response, DEFAULT_MAX_FRAME_LENGTH};

type Codec = FrameCodec<Envelope<Response>, Envelope<Request>>;

/// How long the registrations stay valid (long enough for any benchmark).
const RECORD_TTL_MS: u64 = 3_600_000;
/// How long one reply may take before the connection's remaining requests count as failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The address of record `i`: one 127/8 address each, never a real service.
pub fn bench_address(i: u64, port: u16) -> String {
    format!(
        "127.{}.{}.{}:{port}",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

/// `n` records of fresh identities, signed on every core before the clock starts; with
/// `renewals`, each node's renewal too (the same address, a higher seq, a later expiry),
/// else an empty list.
fn presign(
    first: u64,
    n: u64,
    network_id: &str,
    renewals: bool,
) -> (Vec<PeerRecord>, Vec<PeerRecord>) {
    let threads = std::thread::available_parallelism().map_or(2, |c| c.get()) as u64;
    let now = crate::unix_ms();
    let chunks: Vec<Vec<(PeerRecord, Option<PeerRecord>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..n)
                        .step_by(threads as usize)
                        .map(|i| {
                            let id = NodeIdentity::generate();
                            let address = bench_address(first + i, 7000);
                            let sign =
                                |seq, ttl| id.sign_record(network_id, &address, seq, now + ttl);
                            let renewal = renewals.then(|| sign(now + 1, 2 * RECORD_TTL_MS));
                            (sign(now, RECORD_TTL_MS), renewal)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut records = Vec::with_capacity(n as usize);
    let mut renewed = Vec::new();
    for (record, renewal) in chunks.into_iter().flatten() {
        records.push(record);
        renewed.extend(renewal);
    }
    (records, renewed)
}

/// Signatures the verification ceiling is measured on (or all the records, if fewer).
const VERIFY_SAMPLE: usize = 4_000;

/// Records/s that one core checks: alone (`PeerRecord::verify`: ed25519 `verify_strict`),
/// and as a member now does, in batches of [`MAX_BATCH`] (`record::verify_all`). Every
/// registration costs one such check on the member that receives it, so with `c` cores this
/// bounds any cluster on the same machine at `c ×` the batched rate before anything else is
/// done.
fn verify_rates(records: &[PeerRecord], network_id: &str) -> (f64, f64) {
    let sample = &records[..records.len().min(VERIFY_SAMPLE)];
    let started = Instant::now();
    let ok = sample
        .iter()
        .filter(|r| r.verify(network_id).is_ok())
        .count();
    let alone = ok as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let started = Instant::now();
    let mut ok = 0;
    for chunk in sample.chunks(MAX_BATCH) {
        let checks: Vec<_> = chunk
            .iter()
            .filter_map(|r| r.signature_check(network_id).ok())
            .collect();
        ok += verify_all(&checks).iter().filter(|v| v.is_ok()).count();
    }
    let batched = ok as f64 / started.elapsed().as_secs_f64().max(1e-9);
    (alone, batched)
}

/// What the native phases measured.
pub struct NativeFigures {
    pub registrations: WriteFigures,
    /// The same nodes renewing their records, if asked for.
    pub renewals: Option<WriteFigures>,
    /// One core's verification rates (alone, batched) on the same records.
    pub verify_per_s: (f64, f64),
}

/// Runs the phase against `targets` (connections are spread over them round-robin), then,
/// with `config.renewals`, the renewal of every record by its node.
///
/// # Errors
/// Connection set-up errors.
pub async fn run(config: &BenchConfig, targets: &[String]) -> Result<NativeFigures, BenchError> {
    let (first, n, network, renewals) = (
        config.first_record,
        config.records,
        config.network_id.clone(),
        config.renewals,
    );
    let signing = Instant::now();
    let (records, renewed) =
        tokio::task::spawn_blocking(move || presign(first, n, &network, renewals))
            .await
            .map_err(|e| BenchError::Setup(format!("signing records: {e}")))?;
    eprintln!(
        "bench native: {} records{} signed in {:.2} s (not timed)",
        records.len(),
        if renewals { " and their renewals" } else { "" },
        signing.elapsed().as_secs_f64()
    );
    let network = config.network_id.clone();
    let (records, verify_per_s) = tokio::task::spawn_blocking(move || {
        let rates = verify_rates(&records, &network);
        (records, rates)
    })
    .await
    .map_err(|e| BenchError::Setup(format!("verifying records: {e}")))?;
    let registrations = pipelined(config, targets, "native", records).await?;
    let renewals = if renewals {
        Some(pipelined(config, targets, "renew", renewed).await?)
    } else {
        None
    };
    Ok(NativeFigures {
        registrations,
        renewals,
        verify_per_s,
    })
}

/// Sends `records` over `config.connections` connections, `config.in_flight` outstanding on
/// each, with a progress line named `phase`.
async fn pipelined(
    config: &BenchConfig,
    targets: &[String],
    phase: &'static str,
    records: Vec<PeerRecord>,
) -> Result<WriteFigures, BenchError> {
    let n = records.len() as u64;
    let mut per_conn: Vec<Vec<PeerRecord>> = vec![Vec::new(); config.connections];
    for (i, r) in records.into_iter().enumerate() {
        per_conn[i % config.connections].push(r);
    }
    let mut streams = Vec::new();
    for i in 0..config.connections {
        let addr = &targets[i % targets.len()];
        let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| BenchError::Setup(format!("connecting to {addr} timed out")))??;
        let _ = s.set_nodelay(true);
        streams.push(s);
    }
    let progress = Progress::start(phase, n);
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(per_conn)
        .map(|(s, recs)| tokio::spawn(drive(s, recs, config.in_flight, progress.clone())))
        .collect();
    Ok(WriteFigures::collect(n, &progress, tasks).await)
}

/// One connection: a writer that keeps `in_flight` requests outstanding and a reader that
/// matches replies to them by id.
async fn drive(
    stream: TcpStream,
    records: Vec<PeerRecord>,
    in_flight: usize,
    progress: Arc<Progress>,
) -> Latencies {
    let total = records.len();
    let (rd, wr) = stream.into_split();
    let mut sink = FramedWrite::new(wr, Codec::new(DEFAULT_MAX_FRAME_LENGTH));
    let mut source = FramedRead::new(rd, Codec::new(DEFAULT_MAX_FRAME_LENGTH));
    let window = Arc::new(Semaphore::new(in_flight));
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let writer = {
        let (window, sent, progress) = (window.clone(), sent.clone(), progress.clone());
        tokio::spawn(async move {
            for (i, record) in records.into_iter().enumerate() {
                let Ok(permit) = window.acquire().await else {
                    return;
                };
                permit.forget();
                let id = i as u64 + 1;
                sent.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, Instant::now());
                let env = Envelope {
                    id,
                    body: Request::Register { record },
                };
                if sink.send(env).await.is_err() {
                    progress.error("connection closed while sending");
                    return;
                }
            }
        })
    };
    let mut latencies = Latencies::default();
    let mut answered = 0;
    while answered < total {
        let next = tokio::time::timeout(REPLY_TIMEOUT, source.next()).await;
        let Ok(Some(Ok(env))) = next else {
            for _ in answered..total {
                progress.error("no reply (connection closed or timed out)");
            }
            break;
        };
        answered += 1;
        if let Some(t) = sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&env.id)
        {
            latencies.push(t.elapsed());
        }
        match env.body {
            Response::Registered { .. } => progress.ok(),
            Response::Error(e) => progress.error(format!("{:?}", e.code)),
            other => progress.error(format!("unexpected reply {other:?}")),
        }
        window.add_permits(1);
    }
    writer.abort();
    latencies
}
