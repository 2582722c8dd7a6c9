//! [`DialBack`]: the leader checks that a signed record's node answers at the record's
//! address before the record is served in node samples.
//!
//! Without it, anyone could register records for addresses where nothing (or something
//! else) listens and have the cluster hand them to newcomers. Only the leader dials, so a
//! record costs one check however many members there are; a new leader picks up where the
//! old one stopped, because the queue is replicated state: the `peers_unverified` table,
//! which the leader walks round and round with a cursor.
//!
//! Bounds, so that a flood of fake records cannot turn the cluster into a scanner:
//! - at most `dial_back_rate` dials start per second (a `tokio` interval paces them);
//! - at most [`MAX_IN_FLIGHT`] run at once, each within [`PROBE_TIMEOUT`];
//! - a record is tried [`MAX_ATTEMPTS`] times (backoff [`RETRY_BACKOFF`], doubling), then
//!   left alone for [`GIVE_UP_FOR`]; a wrong key or network is left alone at once;
//! - only the registered address is dialled (for a name, the address it resolved to when
//!   it was registered, stored with the entry), never anything a node says about itself.
//!
//! On proof of the record's key the leader proposes `MarkVerified`, which moves the record
//! into the node pool on every replica. A renewal at the same address keeps the
//! verification, a move to another address needs a new one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::key_probe::{probe_key, ProbeError, PROBE_TIMEOUT};
use super::Member;
use crate::record::{NodeId, PeerAddress};
use crate::registry::{CommandOutcome, PeerEntry, RegistryCommand, StoredEntry};

/// How often the leader looks for records awaiting a dial-back.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(500);
/// Records read from the queue per look.
const SCAN_BATCH: usize = 256;
/// Dial-backs running at once, at most.
pub const MAX_IN_FLIGHT: usize = 32;
/// Tries per record before it is left alone for [`GIVE_UP_FOR`].
pub const MAX_ATTEMPTS: u32 = 3;
/// Wait before the second try; it doubles for each further one.
pub const RETRY_BACKOFF: Duration = Duration::from_secs(2);
/// How long a record whose tries all failed is left alone before it is tried again.
pub const GIVE_UP_FOR: Duration = Duration::from_secs(600);
/// Records whose tries are remembered, at most; beyond it, those not due are forgotten
/// (which only means they may be tried again sooner).
const MAX_TRACKED: usize = 100_000;

/// The dial-back of one record: who must answer, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    address: String,
    node_id: NodeId,
    seq: u64,
    dial: SocketAddr,
}

/// What is remembered about a record's tries.
struct Tries {
    node_id: NodeId,
    seq: u64,
    count: u32,
    next_at: Instant,
}

/// The leader's dial-back loop of one member (it acts only while the member leads).
pub struct DialBack {
    member: Arc<Member>,
    cancel: CancellationToken,
    tries: HashMap<String, Tries>,
    cursor: Option<String>,
}

impl DialBack {
    pub fn new(member: Arc<Member>, cancel: CancellationToken) -> Self {
        Self {
            member,
            cancel,
            tries: HashMap::new(),
            cursor: None,
        }
    }

    /// Runs until cancelled.
    pub async fn run(mut self) {
        let rate = self.member.config.dial_back_rate.max(1);
        let mut pace = tokio::time::interval(Duration::from_secs(1) / rate);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut scan = tokio::time::interval(SCAN_INTERVAL);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let tracker = TaskTracker::new();
        let (done_tx, mut done) = mpsc::unbounded_channel();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = scan.tick() => {}
            }
            while let Ok(result) = done.try_recv() {
                self.settle(result).await;
            }
            if !self.member.is_leader() {
                self.tries.clear();
                self.cursor = None;
                continue;
            }
            let due = self.due_targets().await;
            if !due.is_empty() {
                tracing::debug!(records = due.len(), rate, "dial-back: checking records");
            }
            for target in due {
                if !self.member.is_leader() {
                    break;
                }
                tokio::select! {
                    _ = self.cancel.cancelled() => break,
                    _ = pace.tick() => {}
                }
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                self.dispatched(&target);
                let network_id = self.member.config.network_id.clone();
                let done_tx = done_tx.clone();
                tracker.spawn(async move {
                    let result = probe_key(target.dial, &network_id, target.node_id).await;
                    drop(permit);
                    let _ = done_tx.send((target, result));
                });
            }
        }
        tracker.close();
        tracker.wait().await;
    }

    /// The next records of the queue that are due a try, advancing the cursor.
    async fn due_targets(&mut self) -> Vec<Target> {
        let after = self.cursor.clone();
        let batch = match self
            .member
            .registry
            .read(move |r| r.unverified(after.as_deref(), SCAN_BATCH))
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "dial-back: cannot read the queue");
                return Vec::new();
            }
        };
        self.cursor = if batch.len() < SCAN_BATCH {
            None
        } else {
            batch.last().map(|s| s.entry.address().to_string())
        };
        let now = Instant::now();
        let now_ms = self.member.clock.now_or_own();
        self.forget_if_full(now);
        let mut due = Vec::new();
        for stored in batch {
            let Some(target) = target_of(&stored, now_ms) else {
                continue;
            };
            let tries = self.tries.get(&target.address);
            let fresh = tries.is_none_or(|t| t.node_id != target.node_id || t.seq != target.seq);
            if fresh || tries.is_some_and(|t| t.next_at <= now) {
                due.push(target);
            }
        }
        due
    }

    /// Notes that `target` is being dialled, so that later looks at the queue skip it until
    /// its result is in.
    fn dispatched(&mut self, target: &Target) {
        let in_flight_until = Instant::now() + PROBE_TIMEOUT * 2 + SCAN_INTERVAL;
        let tries = self.tries.entry(target.address.clone()).or_insert(Tries {
            node_id: target.node_id,
            seq: target.seq,
            count: 0,
            next_at: in_flight_until,
        });
        if tries.node_id != target.node_id || tries.seq != target.seq {
            tries.node_id = target.node_id;
            tries.seq = target.seq;
            tries.count = 0;
        }
        tries.next_at = in_flight_until;
    }

    /// Records a probe's result: a proof is proposed as `MarkVerified`, a failure schedules
    /// the next try (or gives up for a while).
    async fn settle(&mut self, (target, result): (Target, Result<(), ProbeError>)) {
        match result {
            Ok(()) => {
                self.tries.remove(&target.address);
                let cmd = RegistryCommand::MarkVerified {
                    address: target.address.clone(),
                    node_id: target.node_id,
                    seq: target.seq,
                };
                match self.member.proposer.propose(cmd).await {
                    Ok(CommandOutcome::Verified) => {
                        tracing::info!(address = %target.address, node = %target.node_id,
                            "dial-back: node proved its key; record is served");
                    }
                    Ok(other) => tracing::debug!(address = %target.address, ?other,
                        "dial-back: record changed before it was marked"),
                    Err(e) => tracing::info!(address = %target.address, error = %e.message,
                        "dial-back: marking failed; will dial again"),
                }
            }
            Err(e) => {
                self.dispatched(&target);
                let Some(entry) = self.tries.get_mut(&target.address) else {
                    return;
                };
                entry.count += 1;
                let wait = if e.is_transient() && entry.count < MAX_ATTEMPTS {
                    RETRY_BACKOFF * 2u32.pow(entry.count - 1)
                } else {
                    tracing::info!(address = %target.address, tries = entry.count, error = %e,
                        "dial-back: giving up on this record for now");
                    GIVE_UP_FOR
                };
                entry.next_at = Instant::now() + wait;
            }
        }
    }

    /// Keeps the memory of tries bounded: past [`MAX_TRACKED`], forget the ones due anyway.
    fn forget_if_full(&mut self, now: Instant) {
        if self.tries.len() > MAX_TRACKED {
            self.tries.retain(|_, t| t.next_at > now);
        }
    }
}

/// Where to dial for `stored`: its record's port at the IP its host was (or resolved to)
/// when it was registered. `None` for a name that did not resolve, or an expired record.
fn target_of(stored: &StoredEntry, now_ms: u64) -> Option<Target> {
    let PeerEntry::Signed(rec) = &stored.entry else {
        return None;
    };
    if rec.expires_at_ms <= now_ms {
        return None;
    }
    let port = PeerAddress::parse(&rec.address).ok()?.port();
    Some(Target {
        address: rec.address.clone(),
        node_id: rec.node_id,
        seq: rec.seq,
        dial: SocketAddr::new(stored.group.ip()?, port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::NodeIdentity;
    use crate::registry::HostGroup;

    #[test]
    fn only_the_registered_address_or_its_resolved_ip_is_dialled() {
        let rec = NodeIdentity::generate().sign_record("n", "node.example:7100", 1, 10_000);
        let resolved = "10.1.2.3".parse().expect("ip");
        let stored = StoredEntry {
            entry: PeerEntry::Signed(rec),
            group: HostGroup::of("node.example:7100", Some(resolved)),
            verified: false,
        };
        let t = target_of(&stored, 0).expect("target");
        assert_eq!(t.dial, SocketAddr::new(resolved, 7100));
        assert!(target_of(&stored, 10_000).is_none(), "expired");
        let unresolved = StoredEntry {
            group: HostGroup::Unresolved,
            ..stored
        };
        assert!(target_of(&unresolved, 0).is_none());
    }
}
