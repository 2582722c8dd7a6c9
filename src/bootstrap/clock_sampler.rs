//! [`ClockSampler`]: reads every other member's wall clock about once a second over an
//! authenticated member connection (`ClockProbe` → `ClockReading`) and feeds the readings to
//! the [`super::ClusterClock`]; logs, once per change, every member whose clock strays from cluster
//! time and whether cluster time is known at all.
//!
//! The connections are authenticated both ways with the cluster secret, so only a member can
//! answer a probe: a stranger cannot feed this member a clock reading.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use super::cluster_clock::{MemberClock, CLOCK_SAMPLE_INTERVAL, SKEW_WARN_MS};
use super::Member;
use crate::client::{ClientError, FrameConnection};
use crate::raft::raft_network::MEMBER_CONNECT_TIMEOUT;
use crate::raft::{ClusterSecret, MemberId};
use crate::wire::{Request, Response};

/// How long one probe (or opening its connection) may take; a slower answer is no reading.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The periodic clock sampling of one member.
pub struct ClockSampler {
    member: Arc<Member>,
    cancel: CancellationToken,
    /// One open, authenticated connection per member, kept between rounds.
    conns: HashMap<MemberId, FrameConnection>,
    /// The skew last logged per member (`None`: within [`SKEW_WARN_MS`]).
    logged_skew: BTreeMap<MemberId, Option<i64>>,
    /// Whether cluster time was known at the last round.
    had_cluster_time: Option<bool>,
}

impl ClockSampler {
    pub fn new(member: Arc<Member>, cancel: CancellationToken) -> Self {
        Self {
            member,
            cancel,
            conns: HashMap::new(),
            logged_skew: BTreeMap::new(),
            had_cluster_time: None,
        }
    }

    /// Runs until cancelled.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(CLOCK_SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let cancel = self.cancel.clone();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.sample_round() => {}
            }
            self.log_changes();
        }
    }

    /// Probes every other member at once and records each answer.
    async fn sample_round(&mut self) {
        let others = self.other_members();
        let clock = &self.member.clock;
        for gone in self.conns.keys().filter(|id| !others.contains_key(id)) {
            clock.forget(*gone);
        }
        let secret = &self.member.secret;
        let probes = others.into_iter().map(|(id, addr)| {
            let conn = self.conns.remove(&id);
            async move { (id, probe(conn, &addr, secret).await) }
        });
        for (id, result) in join_all(probes).await {
            match result {
                Ok((conn, remote_ms, sent, received)) => {
                    clock.record(id, remote_ms, sent, received);
                    self.conns.insert(id, conn);
                }
                Err(e) => tracing::debug!(member = id, error = %e, "clock probe failed"),
            }
        }
    }

    fn other_members(&self) -> BTreeMap<MemberId, String> {
        let me = self.member.id();
        self.member
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != me)
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect()
    }

    /// Logs a member whose skew crossed [`SKEW_WARN_MS`] or moved by more than it since last
    /// logged, and cluster time being lost or regained: each once per change.
    fn log_changes(&mut self) {
        let clock = &self.member.clock;
        let known = clock.now().is_some();
        if self.had_cluster_time != Some(known) {
            let (fresh, voters) = clock.coverage();
            if known {
                tracing::info!(
                    fresh,
                    voters,
                    "cluster time known: majority of voter clocks read"
                );
            } else if self.had_cluster_time.is_some() {
                tracing::warn!(
                    fresh,
                    voters,
                    "cluster time unknown: fresh clock readings from fewer than a majority of \
                     voters; the leader holds expiry and writes are checked with a tolerance \
                     of the largest tolerated skew"
                );
            }
            self.had_cluster_time = Some(known);
        }
        for m in clock.members() {
            self.log_skew(&m);
        }
    }

    fn log_skew(&mut self, m: &MemberClock) {
        let Some(skew) = m.skew_ms else { return };
        let me = self.member.id();
        let last = self.logged_skew.get(&m.id).copied().flatten();
        let now_skewed = skew.unsigned_abs() > SKEW_WARN_MS;
        let moved = last.is_none_or(|l| l.abs_diff(skew) > SKEW_WARN_MS);
        if now_skewed && moved {
            let direction = if skew > 0 { "ahead of" } else { "behind" };
            tracing::warn!(
                member = m.id,
                this_member = m.id == me,
                skew_ms = skew,
                offset_ms = m.offset_ms,
                "clock of member {} is {:.1} s {direction} cluster time (the median of the \
                 voters' clocks); cluster time, not this clock, decides expiry",
                m.id,
                skew.unsigned_abs() as f64 / 1000.0
            );
            self.logged_skew.insert(m.id, Some(skew));
        } else if !now_skewed && last.is_some() {
            tracing::info!(
                member = m.id,
                skew_ms = skew,
                "clock of member {} agrees with cluster time again",
                m.id
            );
            self.logged_skew.insert(m.id, None);
        }
    }
}

/// One clock probe on `conn` (or a new authenticated connection to `addr`): the connection,
/// the remote clock and when the probe was sent and answered on the monotonic clock.
async fn probe(
    conn: Option<FrameConnection>,
    addr: &str,
    secret: &ClusterSecret,
) -> Result<(FrameConnection, u64, Instant, Instant), ClientError> {
    let mut conn = match conn {
        Some(c) => c,
        None => {
            let mut c = FrameConnection::connect(addr, MEMBER_CONNECT_TIMEOUT).await?;
            c.authenticate(secret, PROBE_TIMEOUT).await?;
            c
        }
    };
    let sent = Instant::now();
    let reply = conn.call(Request::ClockProbe, PROBE_TIMEOUT).await?;
    let received = Instant::now();
    match reply {
        Response::ClockReading { unix_ms } => Ok((conn, unix_ms, sent, received)),
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}
