//! [`SourceSubnet`]: the block of addresses one operator is assumed to control, for quotas.
//!
//! Quotas per IP alone are cheap to dodge for anyone with a block of addresses; quotas per
//! subnet bound what one block can take. An IPv4 address belongs to its /24, the smallest
//! block routed on the Internet; an IPv6 address to its /48, the usual allocation to one
//! site. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, seen on a dual-stack listener) is
//! treated as the IPv4 address it carries, so one host cannot count twice.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Prefix length of an IPv4 source subnet.
pub const IPV4_SUBNET_BITS: u8 = 24;
/// Prefix length of an IPv6 source subnet.
pub const IPV6_SUBNET_BITS: u8 = 48;

/// The /24 (IPv4) or /48 (IPv6) a source address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceSubnet(IpAddr);

impl SourceSubnet {
    /// The subnet of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Self(IpAddr::V4(Ipv4Addr::new(a, b, c, 0)))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Self(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)))
            }
        }
    }

    /// The subnet of an address written as text (a legacy record's `registered_from`); text
    /// that is not an IP address is its own subnet, so it still counts somewhere.
    pub fn key_of(ip_text: &str) -> String {
        match ip_text.parse::<IpAddr>() {
            Ok(ip) => Self::of(ip).to_string(),
            Err(_) => ip_text.to_string(),
        }
    }
}

/// `ip` with an IPv4-mapped IPv6 address turned into the IPv4 address it carries.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl fmt::Display for SourceSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}/{IPV4_SUBNET_BITS}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{IPV6_SUBNET_BITS}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ipv4_is_grouped_by_24_and_ipv6_by_48() {
        assert_eq!(SourceSubnet::of(ip("10.1.2.3")).to_string(), "10.1.2.0/24");
        assert_eq!(
            SourceSubnet::of(ip("10.1.2.3")),
            SourceSubnet::of(ip("10.1.2.250"))
        );
        assert_ne!(
            SourceSubnet::of(ip("10.1.2.3")),
            SourceSubnet::of(ip("10.1.3.3"))
        );
        assert_eq!(
            SourceSubnet::of(ip("2001:db8:aa:1::5")).to_string(),
            "2001:db8:aa::/48"
        );
        assert_eq!(
            SourceSubnet::of(ip("2001:db8:aa:ffff::1")),
            SourceSubnet::of(ip("2001:db8:aa:1::5"))
        );
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        assert_eq!(
            SourceSubnet::of(ip("::ffff:10.1.2.3")),
            SourceSubnet::of(ip("10.1.2.3"))
        );
        assert_eq!(SourceSubnet::key_of("::ffff:10.1.2.3"), "10.1.2.0/24");
        assert_eq!(SourceSubnet::key_of("not-an-ip"), "not-an-ip");
    }
}
