//! [`Workload`]: clients that register, renew, deregister and read while faults are
//! injected, recording every operation in a [`History`].
//!
//! Each client owns its own keys (peer addresses in 127.77.0.0/16, so nothing outside this
//! machine is ever named), with one signing identity per key and a sequence number that grows
//! with every attempt. A quarter of the operations are linearizable reads of the whole
//! registry, which stays far below the 1,000-peer sample limit, so a read sees every key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use peerchain::client::{BootstrapClient, ClientOptions};
use peerchain::record::NodeIdentity;
use rand::Rng;
use tokio::task::JoinHandle;

use super::history::{History, Op, OpKind, Outcome};
use super::NETWORK;

/// Records live an hour: nothing expires during a run.
const RECORD_TTL_MS: u64 = 3_600_000;
/// Pause between one client's operations.
const THINK_TIME: Duration = Duration::from_millis(20);
/// Every read asks for this many peers (more than the workload ever registers).
const READ_LIMIT: u32 = 1000;

/// Client options for the workload: one attempt per operation, so that every outcome is
/// recorded as it happened (the client's own retries would hide unavailability).
pub fn workload_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(3),
        retry_for: Duration::ZERO,
        secret: None,
    }
}

/// The address of key `k` of client `c`.
pub fn key_addr(client: usize, k: usize) -> String {
    format!("127.77.{client}.{}:7000", k + 1)
}

/// Running clients; [`Workload::stop`] ends them.
pub struct Workload {
    pub history: History,
    pub keys: Vec<String>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `clients` clients with `keys_each` keys each, talking to `addrs`.
    pub fn start(addrs: Vec<String>, clients: usize, keys_each: usize) -> Self {
        let history = History::new();
        let stop = Arc::new(AtomicBool::new(false));
        let keys = (0..clients)
            .flat_map(|c| (0..keys_each).map(move |k| key_addr(c, k)))
            .collect();
        let tasks = (0..clients)
            .map(|c| {
                // Each client starts at a different member, as independent clients would.
                let mut seeds = addrs.clone();
                seeds.rotate_left(c % addrs.len().max(1));
                let client = BootstrapClient::new(seeds, workload_options());
                let (history, stop) = (history.clone(), stop.clone());
                tokio::spawn(run_client(c, keys_each, client, history, stop))
            })
            .collect();
        Self {
            history,
            keys,
            stop,
            tasks,
        }
    }

    /// Stops every client and waits for its last operation to be recorded.
    pub async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// One owned key: its identity, the next seq, and whether it may be registered now.
struct Key {
    addr: String,
    identity: NodeIdentity,
    next_seq: u64,
    maybe_present: bool,
}

async fn run_client(
    c: usize,
    keys_each: usize,
    mut client: BootstrapClient,
    history: History,
    stop: Arc<AtomicBool>,
) {
    let mut keys: Vec<Key> = (0..keys_each)
        .map(|k| Key {
            addr: key_addr(c, k),
            identity: NodeIdentity::generate(),
            next_seq: 1,
            maybe_present: false,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let (read, k, dereg) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_ratio(1, 4),
                rng.gen_range(0..keys.len()),
                rng.gen_bool(0.5),
            )
        };
        if read {
            read_op(c, &mut client, &history).await;
        } else {
            write_op(c, &mut keys[k], dereg, &mut client, &history).await;
        }
        tokio::time::sleep(THINK_TIME).await;
    }
}

/// A linearizable read of the whole registry.
pub async fn read_op(c: usize, client: &mut BootstrapClient, history: &History) {
    let invoke_us = history.now_us();
    let result = client
        .get_peers(Some(READ_LIMIT), Vec::new(), true)
        .await
        .map(|peers| peers.iter().map(|p| p.address().to_string()).collect());
    history.push(Op {
        client: c,
        kind: OpKind::Read,
        invoke_us,
        complete_us: history.now_us(),
        outcome: match result {
            Ok(seen) => Outcome::Ok(Some(seen)),
            Err(e) => Outcome::from_error(&e),
        },
    });
}

async fn write_op(
    c: usize,
    key: &mut Key,
    dereg: bool,
    client: &mut BootstrapClient,
    history: &History,
) {
    let seq = key.next_seq;
    key.next_seq += 1;
    let invoke_us = history.now_us();
    let (kind, result) = if key.maybe_present && dereg {
        let d = key.identity.sign_deregistration(NETWORK, &key.addr, seq);
        let r = client.deregister(d).await;
        (
            OpKind::Deregister {
                key: key.addr.clone(),
                seq,
            },
            r,
        )
    } else {
        let now = peerchain::unix_ms();
        let rec = key
            .identity
            .sign_record(NETWORK, &key.addr, seq, now + RECORD_TTL_MS);
        let r = client.register(rec).await.map(|_| ());
        key.maybe_present = true;
        (
            OpKind::Register {
                key: key.addr.clone(),
                seq,
            },
            r,
        )
    };
    if matches!(kind, OpKind::Deregister { .. }) && result.is_ok() {
        key.maybe_present = false;
    }
    history.push(Op {
        client: c,
        kind,
        invoke_us,
        complete_us: history.now_us(),
        outcome: match result {
            Ok(()) => Outcome::Ok(None),
            Err(e) => Outcome::from_error(&e),
        },
    });
}
