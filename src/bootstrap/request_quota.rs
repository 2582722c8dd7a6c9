//! [`RequestQuota`]: token buckets of requests per source IP and per source subnet.
//!
//! Every request costs a member something (a signature check, a redb read, a Raft proposal),
//! so an unauthenticated source gets a steady rate with short bursts, and a block of
//! addresses shares one more bucket. Members' authenticated traffic is not counted. The
//! buckets are `governor`'s keyed GCRA limiters; [`RequestQuota::prune`] drops the state of
//! sources whose buckets have refilled, so a flood from many addresses does not grow it
//! without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::QuotaConfig;
use crate::record::source_subnet::{canonical_ip, SourceSubnet};

/// A bucket holds this many seconds' worth of requests, so a client that was quiet may
/// send a short burst (a node starting up: register, then sample).
pub const BURST_SECONDS: u32 = 2;

/// Per-IP and per-subnet request buckets of one member.
pub struct RequestQuota {
    per_ip: Option<(u32, DefaultKeyedRateLimiter<IpAddr>)>,
    per_subnet: Option<(u32, DefaultKeyedRateLimiter<SourceSubnet>)>,
}

/// Why a request was refused; its text goes to the client and into the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateRefusal {
    #[error(
        "rate limited: more than {rate} requests/s from {ip} (an operator raises it with \
         --requests-per-sec-per-ip); retry later"
    )]
    PerIp { ip: IpAddr, rate: u32 },
    #[error(
        "rate limited: more than {rate} requests/s from {subnet} (an operator raises it with \
         --requests-per-sec-per-subnet); retry later"
    )]
    PerSubnet { subnet: SourceSubnet, rate: u32 },
}

impl RequestQuota {
    pub fn new(quotas: &QuotaConfig) -> Self {
        Self {
            per_ip: limiter(quotas.requests_per_sec_per_ip),
            per_subnet: limiter(quotas.requests_per_sec_per_subnet),
        }
    }

    /// Takes one token from `ip`'s bucket and its subnet's.
    ///
    /// # Errors
    /// The bucket that was empty.
    pub fn check(&self, ip: IpAddr) -> Result<(), RateRefusal> {
        let ip = canonical_ip(ip);
        if let Some((rate, l)) = &self.per_ip {
            if l.check_key(&ip).is_err() {
                return Err(RateRefusal::PerIp { ip, rate: *rate });
            }
        }
        if let Some((rate, l)) = &self.per_subnet {
            let subnet = SourceSubnet::of(ip);
            if l.check_key(&subnet).is_err() {
                return Err(RateRefusal::PerSubnet {
                    subnet,
                    rate: *rate,
                });
            }
        }
        Ok(())
    }

    /// Forgets sources whose buckets are full again (they would start afresh anyway).
    pub fn prune(&self) {
        if let Some((_, l)) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some((_, l)) = &self.per_subnet {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_sec: u32,
) -> Option<(u32, DefaultKeyedRateLimiter<K>)> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = NonZeroU32::new(per_sec.saturating_mul(BURST_SECONDS)).unwrap_or(rate);
    Some((
        per_sec,
        RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_source_is_limited_and_others_are_not() {
        let q = RequestQuota::new(&QuotaConfig {
            requests_per_sec_per_ip: 5,
            requests_per_sec_per_subnet: 0,
            ..QuotaConfig::default()
        });
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let passed = (0..100).filter(|_| q.check(a).is_ok()).count();
        assert!((10..=11).contains(&passed), "{passed} passed");
        assert!(matches!(
            q.check(a),
            Err(RateRefusal::PerIp { rate: 5, .. })
        ));
        assert!(q.check("10.0.0.2".parse().expect("ip")).is_ok());
    }

    #[test]
    fn a_subnet_shares_one_bucket_and_zero_disables() {
        let q = RequestQuota::new(&QuotaConfig {
            requests_per_sec_per_ip: 0,
            requests_per_sec_per_subnet: 1,
            ..QuotaConfig::default()
        });
        let ok = (1..=10u8)
            .filter(|i| q.check(IpAddr::from([10, 0, 0, *i])).is_ok())
            .count();
        assert_eq!(ok, 2, "one bucket of 2 for the whole /24");
        assert!(q.check(IpAddr::from([10, 0, 1, 1])).is_ok());
    }
}
