//! [`ClusterClock`]: *cluster time*, the median of the voters' wall clocks, so that no
//! member's clock alone decides that a record has expired or that a registration is invalid.
//!
//! Every member samples the other members' clocks about once a second
//! ([`super::ClockSampler`]), NTP-style: it notes its monotonic clock when it sends a probe
//! (`t0`) and when the reply arrives (`t1`), and takes the reply's wall-clock reading as the
//! other member's time at the midpoint `(t0 + t1) / 2`, give or take half the round trip.
//! A reading is anchored to the monotonic clock, not to this member's wall clock, so a jump
//! of this member's own wall clock moves only its own vote in the median, never the
//! readings of the others.
//!
//! ```text
//!   voters' clocks now:   own  ── m2 (reading + elapsed) ── m3 (reading + elapsed)
//!                          └──────────── sorted, lower median ─────────┘
//!                                        = cluster time
//! ```
//!
//! Cluster time exists only while fresh readings (younger than [`READING_FRESH_FOR`]) cover
//! a majority of the voters, this member included if it votes. With 3 voters one skewed
//! clock never moves the median; with an even count the lower middle value is taken, so
//! that two disagreeing clocks never make records die early.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::{BasicNode, RaftMetrics};
use tokio::sync::watch;

use crate::raft::MemberId;

/// How often a member samples the others' clocks.
pub const CLOCK_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// A reading older than this no longer counts towards cluster time (five missed samples).
pub const READING_FRESH_FOR: Duration = Duration::from_secs(5);
/// A member whose clock differs from cluster time by more than this is logged at WARN.
pub const SKEW_WARN_MS: u64 = 1_000;
/// The largest skew the cluster is built to absorb. Without cluster time (no fresh majority,
/// e.g. just after a start) a member assumes its own clock may be this far off in either
/// direction and refuses only registrations that are wrong whatever the truth.
pub const MAX_TOLERATED_SKEW: Duration = Duration::from_secs(3600);

/// One sample of another member's wall clock.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// Its wall clock (Unix ms) at `at`.
    remote_ms: u64,
    /// This member's monotonic time halfway through the probe.
    at: Instant,
    /// The probe's round trip: the reading is good to half of it.
    rtt: Duration,
}

impl Reading {
    /// The other member's wall clock now, as this reading predicts it.
    fn remote_now(&self) -> u64 {
        self.remote_ms.saturating_add(millis(self.at.elapsed()))
    }

    fn is_fresh(&self) -> bool {
        self.at.elapsed() < READING_FRESH_FOR
    }
}

/// What this member measured of one member's clock, for `ClusterInfo` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberClock {
    pub id: MemberId,
    /// That member's clock minus this member's clock (0 for this member itself).
    pub offset_ms: i64,
    /// The round trip of the reading (0 for this member itself).
    pub rtt_ms: u64,
    /// That member's clock minus cluster time, if cluster time is known.
    pub skew_ms: Option<i64>,
}

/// This member's view of every voter's clock, shared by the request handlers, the proposer,
/// the expiry sweep and the sampler that feeds it.
pub struct ClusterClock {
    id: MemberId,
    metrics: watch::Receiver<RaftMetrics<MemberId, BasicNode>>,
    readings: Mutex<BTreeMap<MemberId, Reading>>,
}

impl ClusterClock {
    /// A clock for member `id`, which learns who votes from `metrics`.
    pub fn new(id: MemberId, metrics: watch::Receiver<RaftMetrics<MemberId, BasicNode>>) -> Self {
        Self {
            id,
            metrics,
            readings: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records a probe of `member` sent at `sent` and answered with `remote_ms` at `received`.
    pub fn record(&self, member: MemberId, remote_ms: u64, sent: Instant, received: Instant) {
        let rtt = received.saturating_duration_since(sent);
        let reading = Reading {
            remote_ms,
            at: sent + rtt / 2,
            rtt,
        };
        self.lock().insert(member, reading);
    }

    /// Forgets a member's reading (it left the membership).
    pub fn forget(&self, member: MemberId) {
        self.lock().remove(&member);
    }

    /// Cluster time in Unix ms: the lower median of the voters' clocks, or `None` while fresh
    /// readings do not cover a majority of the voters.
    pub fn now(&self) -> Option<u64> {
        let own = crate::unix_ms();
        let voters = self.voters();
        let readings = self.lock();
        let fresh: Vec<u64> = readings
            .iter()
            .filter(|(id, r)| voters.contains(id) && r.is_fresh())
            .map(|(_, r)| r.remote_now())
            .collect();
        cluster_time(own, voters.contains(&self.id), &fresh, voters.len())
    }

    /// The time a write is stamped with (the batch's `now_ms`, which decides "expired",
    /// "still live" and tombstone liveness on every replica). Without cluster time it is this
    /// member's clock minus [`MAX_TOLERATED_SKEW`]: what is refused then is refused whatever
    /// the true time, and a record it lets through is swept once cluster time is back.
    pub fn write_time(&self) -> u64 {
        self.now()
            .unwrap_or_else(|| crate::unix_ms().saturating_sub(millis(MAX_TOLERATED_SKEW)))
    }

    /// The earliest and latest the true time may be: cluster time twice when it is known, or
    /// this member's clock ± [`MAX_TOLERATED_SKEW`]. A registration is refused only if it is
    /// expired at the earliest or too long-lived at the latest.
    pub fn validity_window(&self) -> (u64, u64) {
        match self.now() {
            Some(t) => (t, t),
            None => {
                let own = crate::unix_ms();
                let slack = millis(MAX_TOLERATED_SKEW);
                (own.saturating_sub(slack), own.saturating_add(slack))
            }
        }
    }

    /// Cluster time if known, else this member's own clock: for reads and for stamping
    /// lifetimes (legacy records), where an error costs little and nothing is refused.
    pub fn now_or_own(&self) -> u64 {
        self.now().unwrap_or_else(crate::unix_ms)
    }

    /// This member's measurement of every member's clock: itself, then each member it has a
    /// fresh reading of.
    pub fn members(&self) -> Vec<MemberClock> {
        let own = crate::unix_ms();
        let cluster = self.now();
        let skew = |t: u64| cluster.map(|c| signed_diff(t, c));
        let mut out = vec![MemberClock {
            id: self.id,
            offset_ms: 0,
            rtt_ms: 0,
            skew_ms: skew(own),
        }];
        let readings = self.lock();
        out.extend(
            readings
                .iter()
                .filter(|(_, r)| r.is_fresh())
                .map(|(id, r)| MemberClock {
                    id: *id,
                    offset_ms: signed_diff(r.remote_now(), own),
                    rtt_ms: millis(r.rtt),
                    skew_ms: skew(r.remote_now()),
                }),
        );
        out
    }

    /// How many voters there are and how many of them have a fresh reading (self included).
    pub fn coverage(&self) -> (usize, usize) {
        let voters = self.voters();
        let readings = self.lock();
        let fresh = voters
            .iter()
            .filter(|id| **id == self.id || readings.get(id).is_some_and(Reading::is_fresh))
            .count();
        (fresh, voters.len())
    }

    fn voters(&self) -> BTreeSet<MemberId> {
        self.metrics
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<MemberId, Reading>> {
        // A panic while holding the lock cannot leave a map of plain readings inconsistent.
        self.readings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cluster time from this member's clock `own` (a vote only if `self_votes`) and the
/// predicted clocks of the other voters with fresh readings, among `voters` voters: the lower
/// median, or `None` without a majority.
pub fn cluster_time(own: u64, self_votes: bool, others: &[u64], voters: usize) -> Option<u64> {
    let mut clocks: Vec<u64> = others.to_vec();
    if self_votes {
        clocks.push(own);
    }
    if voters == 0 || clocks.len() < voters / 2 + 1 {
        return None;
    }
    clocks.sort_unstable();
    clocks.get((clocks.len() - 1) / 2).copied()
}

/// `a - b` in ms, saturating at the ends of `i64`.
pub fn signed_diff(a: u64, b: u64) -> i64 {
    if a >= b {
        i64::try_from(a - b).unwrap_or(i64::MAX)
    } else {
        i64::try_from(b - a).map_or(i64::MIN, |d| -d)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000_000;
    const HOUR: u64 = 3_600_000;

    #[test]
    fn one_skewed_clock_of_three_never_moves_cluster_time() {
        // The skewed member itself: both others read an hour behind it.
        assert_eq!(cluster_time(T + HOUR, true, &[T, T + 3], 3), Some(T + 3));
        assert_eq!(cluster_time(T - HOUR, true, &[T, T + 3], 3), Some(T));
        // An honest member sees one skewed reading.
        assert_eq!(cluster_time(T, true, &[T + HOUR, T + 2], 3), Some(T + 2));
        assert_eq!(cluster_time(T, true, &[T - HOUR, T + 2], 3), Some(T));
    }

    #[test]
    fn two_of_five_skewed_clocks_never_move_cluster_time() {
        let others = [T + HOUR, T + HOUR, T + 1, T + 2];
        assert_eq!(cluster_time(T, true, &others, 5), Some(T + 2));
        // One of the two skewed members itself.
        let others = [T + HOUR, T, T + 1, T + 2];
        assert_eq!(cluster_time(T + HOUR, true, &others, 5), Some(T + 2));
        // One ahead, one behind.
        let others = [T - HOUR, T + HOUR, T + 1, T + 2];
        assert_eq!(cluster_time(T, true, &others, 5), Some(T + 1));
    }

    #[test]
    fn two_disagreeing_clocks_give_the_earlier_time() {
        assert_eq!(cluster_time(T + HOUR, true, &[T], 3), Some(T));
        assert_eq!(cluster_time(T, true, &[T + HOUR], 3), Some(T));
    }

    #[test]
    fn no_majority_means_no_cluster_time() {
        assert_eq!(cluster_time(T, true, &[], 3), None);
        assert_eq!(cluster_time(T, true, &[T], 5), None);
        assert_eq!(cluster_time(T, false, &[T], 3), None);
        assert_eq!(cluster_time(T, true, &[], 0), None);
        // A lone voter is its own majority.
        assert_eq!(cluster_time(T, true, &[], 1), Some(T));
    }

    #[test]
    fn a_learner_does_not_vote_on_cluster_time() {
        assert_eq!(cluster_time(T + HOUR, false, &[T, T + 4], 3), Some(T));
        assert_eq!(
            cluster_time(T + HOUR, false, &[T, T + 4, T + 8], 3),
            Some(T + 4)
        );
    }

    #[test]
    fn signed_diff_saturates() {
        assert_eq!(signed_diff(5, 3), 2);
        assert_eq!(signed_diff(3, 5), -2);
        assert_eq!(signed_diff(u64::MAX, 0), i64::MAX);
        assert_eq!(signed_diff(0, u64::MAX), i64::MIN);
    }

    #[test]
    fn a_reading_predicts_the_remote_clock_on_the_monotonic_clock() {
        let at = Instant::now() - Duration::from_millis(300);
        let r = Reading {
            remote_ms: T,
            at,
            rtt: Duration::from_millis(2),
        };
        let predicted = r.remote_now();
        assert!((T + 300..T + 1_300).contains(&predicted), "{predicted}");
        assert!(r.is_fresh());
        let old = Reading {
            at: Instant::now() - READING_FRESH_FOR - Duration::from_millis(1),
            ..r
        };
        assert!(!old.is_fresh());
    }
}
