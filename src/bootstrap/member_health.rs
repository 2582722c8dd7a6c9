//! [`MemberHealth`]: whether a member can serve as part of a working cluster right now, read
//! from openraft's metrics. `/ready`, `ClusterInfo` (and so `ctl cluster`) and the metrics
//! all judge readiness here, so they never disagree.

use std::time::Duration;

use openraft::ServerState;
use serde::Serialize;

use super::Member;
use crate::raft::raft_settings::election_window;

/// How long a member whose applied index is behind the commit index it knows may take to
/// catch up before it is reported not ready. Under write load the two differ for the few
/// milliseconds of an apply; a member that stays behind longer is really lagging.
pub const APPLY_CATCH_UP_WAIT: Duration = Duration::from_millis(200);

/// One member's Raft position and readiness, as served on `/ready` and the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberHealth {
    pub member_id: u64,
    pub ready: bool,
    /// Why not ready; empty when ready.
    pub reasons: Vec<String>,
    pub state: String,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// Leader only: how long ago a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// The longest election timeout of this member: a leader unheard by a quorum for this
    /// long may already have been replaced.
    pub election_timeout_ms: u64,
    pub voters: usize,
    /// This member leads but has not heard from a quorum within its election timeout.
    pub leader_cut_off: bool,
}

impl MemberHealth {
    /// Reads `member`'s Raft metrics and judges them. If the applied index is behind the
    /// commit index, waits up to [`APPLY_CATCH_UP_WAIT`] for it to catch up first.
    pub async fn capture(member: &Member) -> Self {
        let health = Self::now(member);
        match (health.applied_index, health.commit_index) {
            (applied, Some(committed)) if applied < Some(committed) => {
                let _ = member
                    .raft
                    .wait(Some(APPLY_CATCH_UP_WAIT))
                    .applied_index_at_least(Some(committed), "ready: catch up with commit")
                    .await;
                Self::now(member)
            }
            _ => health,
        }
    }

    /// Reads and judges `member`'s Raft metrics as they are now.
    pub fn now(member: &Member) -> Self {
        let m = member.raft.metrics();
        let m = m.borrow();
        let voters = m.membership_config.membership().voter_ids().count();
        let mut h = Self {
            member_id: member.id(),
            ready: false,
            reasons: Vec::new(),
            state: format!("{:?}", m.state).to_lowercase(),
            leader_id: m.current_leader,
            term: m.current_term,
            commit_index: member.metrics.storage.committed_index(),
            applied_index: m.last_applied.map(|l| l.index),
            last_log_index: m.last_log_index,
            snapshot_index: m.snapshot.map(|l| l.index),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            election_timeout_ms: election_window(member.id()).1,
            voters,
            leader_cut_off: false,
        };
        // From the metrics borrowed above, never a second borrow (see `member::raft_failure`).
        if let Some(cause) = super::member::raft_failure(&m) {
            h.reasons.push(format!("raft stopped: {cause}"));
        }
        h.judge(m.state == ServerState::Leader);
        h
    }

    fn judge(&mut self, leading: bool) {
        match self.leader_id {
            None => self.reasons.push("no leader known".into()),
            Some(_) if leading && self.voters > 1 => match self.millis_since_quorum_ack {
                Some(ms) if ms <= self.election_timeout_ms => {}
                Some(ms) => {
                    self.leader_cut_off = true;
                    self.reasons.push(format!(
                        "leader has not heard from a quorum for {:.1} s (election timeout {} ms)",
                        ms as f64 / 1000.0,
                        self.election_timeout_ms
                    ));
                }
                None => {
                    self.leader_cut_off = true;
                    self.reasons
                        .push("leader not yet acknowledged by a quorum".into());
                }
            },
            Some(_) => {}
        }
        if let Some(committed) = self.commit_index {
            if self.applied_index < Some(committed) {
                self.reasons.push(format!(
                    "applied index {} behind commit index {committed}",
                    self.applied_index.map_or("none".into(), |a| a.to_string())
                ));
            }
        }
        self.ready = self.reasons.is_empty();
    }

    /// The leader, if this member knows one whose quorum is current (a leader that lost its
    /// quorum does not count, even when it is this member).
    pub fn live_leader(&self) -> Option<u64> {
        self.leader_id.filter(|_| !self.leader_cut_off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(ack: Option<u64>, voters: usize) -> MemberHealth {
        let mut h = MemberHealth {
            member_id: 1,
            ready: false,
            reasons: Vec::new(),
            state: "leader".into(),
            leader_id: Some(1),
            term: 3,
            commit_index: Some(10),
            applied_index: Some(10),
            last_log_index: Some(10),
            snapshot_index: None,
            millis_since_quorum_ack: ack,
            election_timeout_ms: 800,
            voters,
            leader_cut_off: false,
        };
        h.judge(true);
        h
    }

    #[test]
    fn a_leader_unheard_by_a_quorum_for_an_election_timeout_is_not_ready() {
        assert!(leader(Some(150), 3).ready);
        let stale = leader(Some(15_000), 3);
        assert!(!stale.ready);
        assert!(stale.reasons[0].contains("15.0 s"), "{:?}", stale.reasons);
        assert_eq!(stale.live_leader(), None);
        assert!(!leader(None, 3).ready);
        // A one-member cluster is its own quorum.
        assert!(leader(None, 1).ready);
    }

    #[test]
    fn a_member_behind_its_commit_index_or_without_a_leader_is_not_ready() {
        let mut h = leader(Some(10), 3);
        h.state = "follower".into();
        h.leader_id = Some(2);
        h.applied_index = Some(7);
        h.reasons.clear();
        h.judge(false);
        assert!(!h.ready);
        assert!(h.reasons[0].contains("applied index 7 behind commit index 10"));
        h.leader_id = None;
        h.applied_index = Some(10);
        h.reasons.clear();
        h.judge(false);
        assert_eq!(h.reasons, vec!["no leader known".to_string()]);
    }
}
