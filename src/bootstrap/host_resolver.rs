//! [`resolve_host`]: what a registered host name resolves to, looked up once, by the member
//! that receives the registration, so that the replicated command carries the answer and
//! applying it stays pure.
//!
//! Only the registered name is looked up, with a short timeout; a name that does not
//! resolve in time counts as unresolved (one shared subnet group, never dialled).

use std::net::IpAddr;
use std::time::Duration;

use crate::record::PeerAddress;

/// Longest a registration waits for its host name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The IP `address`'s host name resolves to (an IPv4 one if there is one, so that
/// `localhost` means 127.0.0.1 where nodes listen on IPv4); `None` for an IP literal, an
/// unparsable address, or a name that does not resolve within [`RESOLVE_TIMEOUT`].
pub async fn resolve_host(address: &str) -> Option<IpAddr> {
    let parsed = PeerAddress::parse(address).ok()?;
    if parsed.host().parse::<IpAddr>().is_ok() {
        return None;
    }
    let lookup = tokio::net::lookup_host((parsed.host().to_string(), parsed.port()));
    let addrs: Vec<IpAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
        Ok(Err(e)) => {
            tracing::debug!(%address, error = %e, "host name does not resolve");
            return None;
        }
        Err(_) => {
            tracing::debug!(%address, "host name lookup timed out");
            return None;
        }
    };
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_are_not_looked_up_and_localhost_is_loopback() {
        assert_eq!(resolve_host("10.1.2.3:7000").await, None);
        assert_eq!(resolve_host("not an address").await, None);
        let local = resolve_host("localhost:7000").await;
        assert!(local.is_some_and(|ip| ip.is_loopback()), "{local:?}");
        assert_eq!(resolve_host("no-such-host.invalid:1").await, None);
    }
}
