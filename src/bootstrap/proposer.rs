//! [`Proposer`]: group commit. Commands from every connection queue here; each Raft entry
//! carries every command that queued while the previous entries were being committed, so
//! one fsync (per member) covers many registrations.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ClusterClock, LeaderLink};
use crate::metrics::MemberMetrics;
use crate::raft::{MemberId, RegistryRaft};
use crate::registry::{CommandOutcome, RegistryBatch, RegistryCommand};
use crate::wire::{ErrorCode, ErrorReply, Request, Response};

/// Most commands in one Raft entry (keeps an entry well under the member frame limit).
pub const MAX_BATCH: usize = 256;
/// Entries proposed but not yet committed at once.
pub const MAX_IN_FLIGHT: usize = 4;
/// Commands waiting to be proposed before callers are made to wait.
const QUEUE_DEPTH: usize = 16 * MAX_BATCH;
/// How long a follower waits to apply a write it forwarded before answering anyway.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(1);
/// How long a proposal may take before the caller is told to retry.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

struct Pending {
    command: RegistryCommand,
    reply: oneshot::Sender<Result<CommandOutcome, ErrorReply>>,
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
        let (reply, rx) = oneshot::channel();
        self.metrics.proposal_queued();
        if self.tx.send(Pending { command, reply }).await.is_err() {
            self.metrics.proposal_unqueued();
            return Err(ErrorReply::new(
                ErrorCode::Unavailable,
                "member is shutting down",
            ));
        }
        rx.await
            .map_err(|_| ErrorReply::new(ErrorCode::Unavailable, "member is shutting down"))?
    }
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
            let (commands, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|p| (p.command, p.reply)).unzip();
            let n = commands.len();
            let result = match tokio::time::timeout(WRITE_TIMEOUT, submit(&links, commands)).await {
                Ok(r) => r,
                Err(_) => Err(ErrorReply::new(
                    ErrorCode::Unavailable,
                    format!("write not committed within {WRITE_TIMEOUT:?} (no quorum?)"),
                )),
            };
            links.metrics.proposal_done(n, result.is_ok());
            match result {
                Ok(outcomes) if outcomes.len() == n => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Ok(outcomes) => {
                    let e = ErrorReply::new(
                        ErrorCode::Internal,
                        format!("{} outcomes for {n} commands", outcomes.len()),
                    );
                    replies
                        .into_iter()
                        .for_each(|r| drop(r.send(Err(e.clone()))));
                }
                Err(e) => replies
                    .into_iter()
                    .for_each(|r| drop(r.send(Err(e.clone())))),
            }
            drop(permit);
        });
    }
}

/// Commits `commands` as one entry here if this member leads, or through the leader.
async fn submit(
    links: &Links,
    commands: Vec<RegistryCommand>,
) -> Result<Vec<CommandOutcome>, ErrorReply> {
    let Links {
        raft, link, clock, ..
    } = links;
    match write_local(raft, clock.write_time(), commands.clone()).await {
        Err(WriteError::NotLeader(Some((_, addr)))) => {
            match link
                .call(&addr, Request::Forward { commands }, WRITE_TIMEOUT)
                .await
            {
                Ok(Response::Outcomes {
                    outcomes,
                    log_index,
                }) => {
                    // Let a reader of this member see the write it was just told succeeded.
                    let _ = raft
                        .wait(Some(READ_YOUR_WRITES_WAIT))
                        .applied_index_at_least(log_index, "forwarded write applied locally")
                        .await;
                    Ok(outcomes)
                }
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
        Err(WriteError::NotLeader(None)) => Err(no_leader()),
        Err(WriteError::Reply(e)) => Err(e),
        Ok((outcomes, _)) => Ok(outcomes),
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
