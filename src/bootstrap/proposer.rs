//! [`Proposer`]: group commit. Commands from every connection queue here; each Raft entry
//! carries every command that queued while the previous entries were being committed, so
//! one fsync (per member) covers many registrations.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ClusterClock, LeaderLink};
use crate::metrics::MemberMetrics;
use crate::raft::{MemberId, RegistryRaft};
use crate::registry::{CommandOutcome, RegistryBatch, RegistryCommand};
use crate::wire::{ErrorCode, ErrorReply, Request, Response};

/// Most commands in one Raft entry (keeps an entry well under the member frame limit).
pub const MAX_BATCH: usize = 256;
/// Entries this member proposes at once. One: the next entry takes everything that queued
/// while the previous one was being committed. The members are CPU-bound long before the
/// disk is (an fsync here takes about 0.2 ms), and each entry costs every member a log
/// append, a replication round and an apply whatever it carries, so fewer, fuller entries
/// win: measured on 2 cores, 32 chapter clients did 3,380 REGISTER/s with one entry in
/// flight (13.6 per entry), 2,870/s with two and 2,645/s with four (5.1 per entry).
pub const MAX_IN_FLIGHT: usize = 1;
/// Commands waiting to be proposed before callers are made to wait.
const QUEUE_DEPTH: usize = 16 * MAX_BATCH;
/// How long a follower waits to apply a write it forwarded before answering anyway.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(1);
/// How long a proposal may take before the caller is told to retry.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

struct Pending {
    command: RegistryCommand,
    reply: oneshot::Sender<Result<Committed, ErrorReply>>,
    /// Sent here by a follower that took this member for the leader: it is written here or
    /// refused, never forwarded again (two members with stale views of each other would
    /// otherwise pass it back and forth).
    forwarded: bool,
}

/// A command's outcome and the log index of the entry that carried it (for a follower to
/// wait until it has applied what it forwarded).
struct Committed {
    outcome: CommandOutcome,
    log_index: Option<u64>,
}

/// The handle through which request handlers propose commands.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
    metrics: MemberMetrics,
}

impl Proposer {
    /// Starts the batching task on `tracker`; it stops when `cancel` fires.
    pub fn spawn(
        raft: RegistryRaft,
        link: Arc<LeaderLink>,
        clock: Arc<ClusterClock>,
        metrics: MemberMetrics,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let links = Links {
            raft,
            link,
            clock,
            metrics: metrics.clone(),
        };
        tracker.spawn(run(links, rx, tracker.clone(), cancel));
        Self { tx, metrics }
    }

    /// Proposes one command and waits until it is committed and applied (or refused).
    ///
    /// # Errors
    /// An [`ErrorReply`]: transient ones (`no_leader`, `unavailable`) may be retried.
    pub async fn propose(&self, command: RegistryCommand) -> Result<CommandOutcome, ErrorReply> {
        let rx = self.queue(command, false).await?;
        Ok(Self::wait(rx).await?.outcome)
    }

    /// Queues the commands a follower forwarded (this member leads, or did when the follower
    /// looked), so that they join the entries being formed here instead of costing a Raft
    /// entry, and its fsyncs, of their own. Each command gets its outcome, a failure as a
    /// `Refused` one, so that one command's timeout does not fail the others; the index is
    /// that of the last entry that carried any of them.
    pub async fn propose_forwarded(
        &self,
        commands: Vec<RegistryCommand>,
    ) -> (Vec<CommandOutcome>, Option<u64>) {
        let mut waiting = Vec::with_capacity(commands.len());
        for command in commands {
            waiting.push(self.queue(command, true).await);
        }
        let mut outcomes = Vec::with_capacity(waiting.len());
        let mut last = None;
        for rx in waiting {
            match rx {
                Ok(rx) => match Self::wait(rx).await {
                    Ok(c) => {
                        last = last.max(c.log_index);
                        outcomes.push(c.outcome);
                    }
                    Err(e) => outcomes.push(CommandOutcome::Refused(e)),
                },
                Err(e) => outcomes.push(CommandOutcome::Refused(e)),
            }
        }
        (outcomes, last)
    }

    async fn queue(
        &self,
        command: RegistryCommand,
        forwarded: bool,
    ) -> Result<oneshot::Receiver<Result<Committed, ErrorReply>>, ErrorReply> {
        let (reply, rx) = oneshot::channel();
        self.metrics.proposal_queued();
        let pending = Pending {
            command,
            reply,
            forwarded,
        };
        if self.tx.send(pending).await.is_err() {
            self.metrics.proposal_unqueued();
            return Err(shutting_down());
        }
        Ok(rx)
    }

    async fn wait(
        rx: oneshot::Receiver<Result<Committed, ErrorReply>>,
    ) -> Result<Committed, ErrorReply> {
        rx.await.map_err(|_| shutting_down())?
    }
}

fn shutting_down() -> ErrorReply {
    ErrorReply::new(ErrorCode::Unavailable, "member is shutting down")
}

/// What a batch needs to be committed: Raft, the way to the leader, and cluster time.
#[derive(Clone)]
struct Links {
    raft: RegistryRaft,
    link: Arc<LeaderLink>,
    clock: Arc<ClusterClock>,
    metrics: MemberMetrics,
}

async fn run(
    links: Links,
    mut rx: mpsc::Receiver<Pending>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let first = tokio::select! {
            _ = cancel.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let links = links.clone();
        tracker.spawn(async move {
            let n = batch.len();
            let ok = commit_batch(&links, batch, permit).await;
            links.metrics.proposal_done(n, ok);
        });
    }
}

/// Commits `batch` as one entry here if this member leads, or through the leader, and
/// answers every command in it. Returns whether the entry committed. `slot` (this batch's
/// place among the entries in flight) is given back as soon as the entry is committed, before
/// a follower waits to apply what it forwarded: a lagging follower must not hold up its next
/// batch for that wait.
async fn commit_batch(links: &Links, batch: Vec<Pending>, slot: OwnedSemaphorePermit) -> bool {
    let commands: Vec<RegistryCommand> = batch.iter().map(|p| p.command.clone()).collect();
    let local = tokio::time::timeout(
        WRITE_TIMEOUT,
        write_local(&links.raft, links.clock.write_time(), commands),
    )
    .await
    .unwrap_or_else(|_| Err(WriteError::Reply(not_committed())));
    let leader = match local {
        Ok((outcomes, index)) => return answer(batch, Ok((outcomes, Some(index)))),
        Err(WriteError::Reply(e)) => return answer(batch, Err(e)),
        Err(WriteError::NotLeader(None)) => return answer(batch, Err(no_leader())),
        Err(WriteError::NotLeader(Some((_, addr)))) => addr,
    };
    let (forwarded, ours): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.forwarded);
    answer(
        forwarded,
        Err(ErrorReply::new(
            ErrorCode::NoLeader,
            "this member is no longer the leader",
        )),
    );
    if ours.is_empty() {
        return false;
    }
    let commands = ours.iter().map(|p| p.command.clone()).collect();
    let result = tokio::time::timeout(WRITE_TIMEOUT, forward(links, &leader, commands))
        .await
        .unwrap_or_else(|_| Err(not_committed()));
    drop(slot);
    if let Ok((_, Some(index))) = &result {
        // Let a reader of this member see the write it is about to be told succeeded.
        let _ = links
            .raft
            .wait(Some(READ_YOUR_WRITES_WAIT))
            .applied_index_at_least(Some(*index), "forwarded write applied locally")
            .await;
    }
    answer(ours, result)
}

/// Sends every command of `batch` its outcome (the `outcomes` in order) or the error.
fn answer(
    batch: Vec<Pending>,
    result: Result<(Vec<CommandOutcome>, Option<u64>), ErrorReply>,
) -> bool {
    let n = batch.len();
    let result = match result {
        Ok((outcomes, _)) if outcomes.len() != n => Err(ErrorReply::new(
            ErrorCode::Internal,
            format!("{} outcomes for {n} commands", outcomes.len()),
        )),
        other => other,
    };
    match result {
        Ok((outcomes, log_index)) => {
            for (p, outcome) in batch.into_iter().zip(outcomes) {
                let _ = p.reply.send(Ok(Committed { outcome, log_index }));
            }
            true
        }
        Err(e) => {
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
            false
        }
    }
}

fn not_committed() -> ErrorReply {
    ErrorReply::new(
        ErrorCode::Unavailable,
        format!("write not committed within {WRITE_TIMEOUT:?} (no quorum?)"),
    )
}

/// Has the leader at `addr` commit `commands` (it queues them with its own).
async fn forward(
    links: &Links,
    addr: &str,
    commands: Vec<RegistryCommand>,
) -> Result<(Vec<CommandOutcome>, Option<u64>), ErrorReply> {
    match links
        .link
        .call(addr, Request::Forward { commands }, WRITE_TIMEOUT)
        .await
    {
        Ok(Response::Outcomes {
            outcomes,
            log_index,
        }) => Ok((outcomes, log_index)),
        Ok(other) => Err(ErrorReply::new(
            ErrorCode::Internal,
            format!("leader replied {other:?}"),
        )),
        Err(crate::client::ClientError::Server(reply)) => Err(reply),
        Err(e) => Err(ErrorReply::new(
            ErrorCode::Unavailable,
            format!("cannot reach leader at {addr}: {e}"),
        )),
    }
}

/// Why a local write did not happen.
pub enum WriteError {
    /// Another member leads (its id and address), or none is known.
    NotLeader(Option<(MemberId, String)>),
    Reply(ErrorReply),
}

/// Commits `commands` as one entry stamped `now_ms` if this member is the leader. The stamp
/// is cluster time (see [`ClusterClock::write_time`]), never this machine's clock alone: every
/// replica judges expiry and liveness in the batch by it.
///
/// # Errors
/// [`WriteError::NotLeader`] with the leader to forward to, or a final [`ErrorReply`].
pub async fn write_local(
    raft: &RegistryRaft,
    now_ms: u64,
    commands: Vec<RegistryCommand>,
) -> Result<(Vec<CommandOutcome>, u64), WriteError> {
    let batch = RegistryBatch { now_ms, commands };
    match raft.client_write(batch).await {
        Ok(resp) => Ok((resp.data.outcomes, resp.log_id.index)),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(
            WriteError::NotLeader(f.leader_id.zip(f.leader_node.map(|n| n.addr))),
        ),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => Err(
            WriteError::Reply(ErrorReply::new(ErrorCode::Membership, e.to_string())),
        ),
        Err(RaftError::Fatal(f)) => Err(WriteError::Reply(super::member::storage_failed(&f))),
    }
}

pub fn no_leader() -> ErrorReply {
    ErrorReply::new(ErrorCode::NoLeader, "no leader is known yet; retry shortly")
}
