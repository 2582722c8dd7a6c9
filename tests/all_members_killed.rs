//! Every member `kill -9`ed at the same instant under the fastest write load there is
//! (pre-signed records, pipelined, spread over all three members): every registration that
//! was acknowledged must be there after the restart.
//!
//! This is what makes applying without fsync safe to ship: a member's registry database
//! commits without fsync and is checkpointed every half second, the Raft log is the durable
//! truth, and a restart re-applies the committed log above the last checkpoint.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use futures::{SinkExt, StreamExt};
use peerchain::record::{NodeIdentity, PeerRecord};
use peerchain::wire::{Envelope, FrameCodec, Request, Response, DEFAULT_MAX_FRAME_LENGTH};
use support::{eventually, holds_all, Cluster, NETWORK};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, FramedWrite};

type Codec = FrameCodec<Envelope<Response>, Envelope<Request>>;

const CONNECTIONS: usize = 8;
const IN_FLIGHT: usize = 64;
const RECORDS: usize = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// Records for fresh identities at distinct 127/8 addresses, signed before the load starts.
fn presign(n: usize) -> Vec<PeerRecord> {
    let now = peerchain::unix_ms();
    (0..n)
        .map(|i| {
            let addr = format!("127.{}.{}.{}:7000", 64 + (i >> 16), (i >> 8) & 255, i & 255);
            NodeIdentity::generate().sign_record(NETWORK, &addr, now, now + HOUR_MS)
        })
        .collect()
}

/// One connection keeping `IN_FLIGHT` registrations outstanding; every `Registered` reply
/// puts its address in `acked`. Ends when the connection dies (the kill) or all are answered.
async fn drive(addr: String, records: Vec<PeerRecord>, acked: Arc<Mutex<BTreeSet<String>>>) {
    let Ok(stream) = TcpStream::connect(&addr).await else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let total = records.len();
    let (rd, wr) = stream.into_split();
    let mut sink = FramedWrite::new(wr, Codec::new(DEFAULT_MAX_FRAME_LENGTH));
    let mut source = FramedRead::new(rd, Codec::new(DEFAULT_MAX_FRAME_LENGTH));
    let window = Arc::new(Semaphore::new(IN_FLIGHT));
    let sent: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let writer = {
        let (window, sent) = (window.clone(), sent.clone());
        tokio::spawn(async move {
            for (i, record) in records.into_iter().enumerate() {
                let Ok(permit) = window.acquire().await else {
                    return;
                };
                permit.forget();
                let id = i as u64 + 1;
                sent.lock()
                    .expect("lock")
                    .insert(id, record.address.clone());
                let body = Request::Register { record };
                if sink.send(Envelope { id, body }).await.is_err() {
                    return;
                }
            }
        })
    };
    for _ in 0..total {
        let Ok(Some(Ok(env))) = tokio::time::timeout(Duration::from_secs(30), source.next()).await
        else {
            break;
        };
        let address = sent.lock().expect("lock").remove(&env.id);
        if let (Response::Registered { .. }, Some(address)) = (env.body, address) {
            acked.lock().expect("lock").insert(address);
        }
        window.add_permits(1);
    }
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_killed_at_once_under_pipelined_load_lose_no_acknowledged_registration(
) -> Result<()> {
    let mut cluster = Cluster::start_without_dial_back(3, &[]).await?;
    cluster.wait_leader(Duration::from_secs(10)).await?;
    let records = tokio::task::spawn_blocking(|| presign(RECORDS)).await?;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut per_conn: Vec<Vec<PeerRecord>> = vec![Vec::new(); CONNECTIONS];
    for (i, r) in records.into_iter().enumerate() {
        per_conn[i % CONNECTIONS].push(r);
    }
    let addrs = cluster.addrs();
    let load: Vec<_> = per_conn
        .into_iter()
        .enumerate()
        .map(|(i, recs)| tokio::spawn(drive(addrs[i % addrs.len()].clone(), recs, acked.clone())))
        .collect();

    // Let the load run past several checkpoints (every 0.5 s), then kill mid-stream.
    let started = Instant::now();
    while acked.lock().expect("lock").len() < 3_000 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = acked.lock().expect("lock").len();
    cluster.kill_all();
    let killed_after = started.elapsed();
    for task in load {
        let _ = tokio::time::timeout(Duration::from_secs(40), task).await;
    }
    let acked = acked.lock().expect("lock").clone();
    eprintln!(
        "{} registrations acknowledged ({before} a moment before the kill, {:.0}/s) when all \
         three members were killed at {killed_after:?}",
        acked.len(),
        acked.len() as f64 / killed_after.as_secs_f64()
    );
    ensure!(
        acked.len() >= 3_000,
        "the load must have been real: only {} acknowledged",
        acked.len()
    );
    ensure!(
        acked.len() < RECORDS,
        "the kill must have landed during the load, not after it"
    );

    for id in 1..=3 {
        cluster.spawn(id, false)?;
    }
    cluster.wait_leader(Duration::from_secs(20)).await?;
    for id in 1..=3 {
        eventually(
            Duration::from_secs(20),
            "every acknowledged registration is back on this member",
            || holds_all(&cluster, id, &acked),
        )
        .await?;
    }
    Ok(())
}
