//! [`MemberIps`]: the IP addresses of the cluster's current members, so that a connection
//! from one of them can be given a reserved slot when the client slots are full.
//!
//! Membership addresses may be host names (the docker deployment uses `bootstrap1:4000`),
//! so they are resolved, off the accept path: the set is refreshed when the membership's
//! addresses change and every [`MEMBER_IPS_REFRESH`] in any case (a host may move).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::raft::RegistryRaft;
use crate::record::source_subnet::canonical_ip;

/// How often the membership is looked at for changed addresses.
pub const MEMBER_IPS_POLL: Duration = Duration::from_secs(2);
/// How often the addresses are resolved again even if the membership did not change.
pub const MEMBER_IPS_REFRESH: Duration = Duration::from_secs(60);
/// How long resolving one member's host name may take.
pub const MEMBER_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The set of members' IP addresses, as last resolved.
#[derive(Debug, Default)]
pub struct MemberIps {
    ips: RwLock<HashSet<IpAddr>>,
}

impl MemberIps {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `ip` is a current member's address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match self.ips.read() {
            Ok(g) => g.contains(&ip),
            Err(p) => p.into_inner().contains(&ip),
        }
    }

    /// Resolves `addrs` (`host:port`) and makes their IPs the set. A name that does not
    /// resolve in time keeps nothing: its member is then admitted as a client only.
    pub async fn resolve(&self, addrs: &[String]) {
        let mut ips = HashSet::new();
        for addr in addrs {
            let found = tokio::time::timeout(MEMBER_RESOLVE_TIMEOUT, tokio::net::lookup_host(addr));
            match found.await {
                Ok(Ok(list)) => ips.extend(list.map(|a| canonical_ip(a.ip()))),
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "cannot resolve member address"),
                Err(_) => tracing::debug!(%addr, "resolving member address timed out"),
            }
        }
        match self.ips.write() {
            Ok(mut g) => *g = ips,
            Err(p) => *p.into_inner() = ips,
        }
    }

    /// Keeps the set in step with `raft`'s membership until `cancel`.
    pub async fn follow(&self, raft: RegistryRaft, cancel: CancellationToken) {
        let mut last: Vec<String> = Vec::new();
        let mut resolved_at: Option<Instant> = None;
        loop {
            let addrs = member_addrs(&raft);
            let stale = resolved_at.is_none_or(|t| t.elapsed() >= MEMBER_IPS_REFRESH);
            if addrs != last || stale {
                self.resolve(&addrs).await;
                last = addrs;
                resolved_at = Some(Instant::now());
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(MEMBER_IPS_POLL) => {}
            }
        }
    }
}

/// Every member's address in the current membership, voters and learners, sorted.
fn member_addrs(raft: &RegistryRaft) -> Vec<String> {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let mut addrs: Vec<String> = m
        .membership_config
        .membership()
        .nodes()
        .map(|(_, n)| n.addr.clone())
        .collect();
    addrs.sort();
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_literal_and_named_addresses() {
        let ips = MemberIps::new();
        ips.resolve(&["127.0.0.7:4000".into(), "localhost:4000".into()])
            .await;
        assert!(ips.contains("127.0.0.7".parse().expect("ip")));
        assert!(ips.contains("::ffff:127.0.0.7".parse().expect("ip")));
        assert!(
            ips.contains("127.0.0.1".parse().expect("ip"))
                || ips.contains("::1".parse().expect("ip"))
        );
        assert!(!ips.contains("127.9.9.9".parse().expect("ip")));
    }
}
