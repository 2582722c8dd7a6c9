//! [`ExpiryTask`]: the leader drops expired records by proposing `Expire` commands stamped
//! with cluster time (the median of the voters' clocks, see [`super::ClusterClock`]), so
//! every replica removes exactly the same records and no member's clock alone decides that
//! records die. Without cluster time the leader holds expiry: records outlive their expiry
//! a little rather than die early.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::proposer::write_local;
use super::Member;
use crate::registry::{CommandOutcome, RegistryCommand};

/// Records removed per Expire command (bounds the size of one apply).
pub const EXPIRE_BATCH: u32 = 1000;
/// While expiry is held for want of cluster time, how often the leader says so.
pub const HELD_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// The periodic expiry sweep of one member (it only acts while this member leads).
pub struct ExpiryTask {
    member: Arc<Member>,
    cancel: CancellationToken,
    /// When the leader last logged that expiry is held.
    held_logged: Option<Instant>,
}

impl ExpiryTask {
    pub fn new(member: Arc<Member>, cancel: CancellationToken) -> Self {
        Self {
            member,
            cancel,
            held_logged: None,
        }
    }

    /// Runs until cancelled.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.member.config.expiry_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.member.is_leader() {
                continue;
            }
            match self.member.clock.now() {
                Some(_) => {
                    self.held_logged = None;
                    self.sweep().await;
                }
                None => self.log_held(),
            }
        }
    }

    /// Says, once per [`HELD_LOG_INTERVAL`], that this leader does not expire and why.
    fn log_held(&mut self) {
        if self
            .held_logged
            .is_some_and(|t| t.elapsed() < HELD_LOG_INTERVAL)
        {
            return;
        }
        let (fresh, voters) = self.member.clock.coverage();
        tracing::warn!(
            fresh,
            voters,
            "expiry held: fresh clock readings from {fresh} of {voters} voters, a majority \
             needed; no record is expired on this member's clock alone"
        );
        self.held_logged = Some(Instant::now());
    }

    async fn sweep(&self) {
        loop {
            let Some(now) = self.member.clock.now() else {
                return;
            };
            let due = self.member.registry.read(|r| r.next_expiry()).await;
            match due {
                Ok(Some(t)) if t <= now => {}
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "expiry: cannot read registry");
                    return;
                }
            }
            let cmd = RegistryCommand::Expire {
                limit: EXPIRE_BATCH,
            };
            match write_local(&self.member.raft, now, vec![cmd]).await {
                Ok((outcomes, _)) => match outcomes.first() {
                    Some(CommandOutcome::Expired { removed, more }) => {
                        tracing::info!(removed, "expired peer records and tombstones");
                        if !more {
                            return;
                        }
                    }
                    _ => return,
                },
                Err(_) => return,
            }
        }
    }
}
