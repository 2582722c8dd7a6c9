//! [`ExpiryTask`]: the leader drops expired records by proposing `Expire` commands stamped
//! with its own clock, so every replica removes exactly the same records.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::proposer::write_local;
use super::Member;
use crate::registry::{CommandOutcome, RegistryCommand};

/// Records removed per Expire command (bounds the size of one apply).
pub const EXPIRE_BATCH: u32 = 1000;

/// The periodic expiry sweep of one member (it only acts while this member leads).
pub struct ExpiryTask {
    member: Arc<Member>,
    cancel: CancellationToken,
}

impl ExpiryTask {
    pub fn new(member: Arc<Member>, cancel: CancellationToken) -> Self {
        Self { member, cancel }
    }

    /// Runs until cancelled.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.member.config.expiry_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.member.is_leader() {
                self.sweep().await;
            }
        }
    }

    async fn sweep(&self) {
        loop {
            let now = crate::unix_ms();
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
            match write_local(&self.member.raft, vec![cmd]).await {
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
