//! [`member_watch`]: follows a member's Raft metrics to count what only a change reveals.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::bootstrap::Member;

/// Counts every change of the leader this member knows (`peerchain_raft_leader_changes_total`,
/// etcd's `leader_changes_seen_total`) and notes when a new snapshot appears (for
/// `peerchain_raft_snapshot_age_seconds`). Ends at `cancel` or when Raft stops.
pub async fn member_watch(member: Arc<Member>, cancel: CancellationToken) {
    let mut rx = member.raft.metrics();
    let mut leader = rx.borrow().current_leader;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
        let (now, snapshot) = {
            let m = rx.borrow();
            (m.current_leader, m.snapshot.map(|s| s.index))
        };
        if now != leader {
            member.metrics.leader_changed();
            leader = now;
        }
        member.metrics.snapshot_age(snapshot);
    }
}
