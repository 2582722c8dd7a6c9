//! [`log_raft_events`]: one INFO line for each leader change and each membership change this
//! member sees, naming what changed, so that an operator reading one member's log can follow
//! elections and reconfigurations without debug logging.

use std::collections::BTreeSet;

use tokio_util::sync::CancellationToken;

use crate::raft::{MemberId, RegistryRaft};

/// What the log lines compare against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Seen {
    leader: Option<MemberId>,
    /// The last leader known, kept while none is.
    last_leader: Option<MemberId>,
    term: u64,
    voters: BTreeSet<MemberId>,
    learners: BTreeSet<MemberId>,
}

/// Follows `raft`'s metrics until `cancel`, logging each change of leader (with the term) and of
/// membership (voters and learners) exactly once.
pub async fn log_raft_events(raft: RegistryRaft, cancel: CancellationToken) {
    let me = raft.metrics().borrow().id;
    let mut metrics = raft.metrics();
    let mut seen: Option<Seen> = None;
    loop {
        let now = {
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voters: BTreeSet<MemberId> = membership.voter_ids().collect();
            let learners: BTreeSet<MemberId> = membership.learner_ids().collect();
            Seen {
                leader: m.current_leader,
                last_leader: m
                    .current_leader
                    .or_else(|| seen.as_ref().and_then(|s| s.last_leader)),
                term: m.current_term,
                voters,
                learners,
            }
        };
        log_changes(me, seen.as_ref(), &now);
        seen = Some(now);
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

fn log_changes(me: MemberId, before: Option<&Seen>, now: &Seen) {
    let leader_before = before.and_then(|b| b.leader);
    // A leader that comes back in the same term after a moment unknown is not a change.
    let same_reign = before.is_some_and(|b| b.term == now.term && b.leader.is_none())
        && before.and_then(|b| b.last_leader) == now.leader;
    if before.is_none_or(|b| b.leader != now.leader) && !same_reign {
        match now.leader {
            Some(l) if l == me => tracing::info!(
                member = me, leader = l, previous = ?leader_before, term = now.term,
                "leader changed: this member leads"
            ),
            Some(l) => tracing::info!(
                member = me, leader = l, previous = ?leader_before, term = now.term,
                "leader changed"
            ),
            // Only worth a line when a leader was known: a member starting up knows none yet.
            None if leader_before.is_some() => tracing::info!(
                member = me, previous = ?leader_before, term = now.term,
                "leader lost: no leader known"
            ),
            None => {}
        }
    } else if same_reign && before.is_some_and(|b| b.leader.is_none()) {
        tracing::info!(member = me, leader = ?now.leader, term = now.term, "leader known again");
    }
    if let Some(b) = before {
        if b.voters != now.voters || b.learners != now.learners {
            tracing::info!(
                member = me,
                voters = ?now.voters,
                learners = ?now.learners,
                previous_voters = ?b.voters,
                previous_learners = ?b.learners,
                "membership changed"
            );
        }
    }
}
