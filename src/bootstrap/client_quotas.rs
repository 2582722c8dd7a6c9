//! [`ClientQuotas`]: the per-source limits one member enforces on clients, and the task
//! that keeps their state small.
//!
//! - connection slots per IP, per subnet and in total, with slots reserved for members
//!   ([`ConnectionQuota`]);
//! - requests per second per IP and per subnet ([`RequestQuota`]);
//! - bytes of incomplete frames held by unauthenticated connections ([`FrameBudget`]);
//! - refusals logged once per source per interval ([`RefusalLog`]).
//!
//! The legacy-records-held quota is not here: it is decided by the replicated registry
//! (`registry::legacy_quota`), with limits from [`super::QuotaConfig::legacy_limits`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::connection_quota::ConnectionQuota;
use super::frame_budget::FrameBudget;
use super::member_ips::MemberIps;
use super::refusal_log::{RefusalLog, REFUSAL_LOG_INTERVAL};
use super::request_quota::RequestQuota;
use super::BootstrapConfig;
use crate::raft::RegistryRaft;

/// Everything a member counts per client source.
pub struct ClientQuotas {
    pub connections: Arc<ConnectionQuota>,
    pub requests: RequestQuota,
    pub frame_budget: Arc<FrameBudget>,
    pub refusals: RefusalLog,
    pub member_ips: MemberIps,
}

impl ClientQuotas {
    pub fn new(config: &BootstrapConfig) -> Self {
        let q = config.quotas;
        Self {
            connections: ConnectionQuota::new(config.max_connections, q),
            requests: RequestQuota::new(&q),
            frame_budget: FrameBudget::new(q.incomplete_frame_budget),
            refusals: RefusalLog::new(),
            member_ips: MemberIps::new(),
        }
    }

    /// Flushes refusal counts to the log and forgets idle sources every
    /// [`REFUSAL_LOG_INTERVAL`], and follows the membership's addresses, until `cancel`.
    pub async fn maintain(self: Arc<Self>, raft: RegistryRaft, cancel: CancellationToken) {
        let housekeeping = async {
            let mut tick = tokio::time::interval(REFUSAL_LOG_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.refusals.flush();
                self.requests.prune();
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = housekeeping => {}
            _ = self.member_ips.follow(raft, cancel.clone()) => {}
        }
    }
}
