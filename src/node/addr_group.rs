//! [`AddrGroups`]: the two subnet groups the address book counts an address in, so that one
//! operator's block of addresses cannot fill the book (the idea behind Bitcoin's addrman
//! buckets, which key on the /16 of the address and of whoever told us about it).
//!
//! | Address | `net` (narrow cap) | `wide` (broad cap, outbound diversity) |
//! |---|---|---|
//! | IPv4 `a.b.c.d` | `a.b.c.0/24` | `a.b.0.0/16` |
//! | IPv6 | first 48 bits, `/48` | first 32 bits, `/32` |
//! | IPv4-mapped IPv6 | as the IPv4 address | as the IPv4 address |
//! | host name | [`HOST_NAME_GROUP`] | [`HOST_NAME_GROUP`] |
//!
//! Host names are **not resolved** when added: a peer gossiping a thousand names would
//! otherwise make us send a thousand DNS queries, and the book's bookkeeping stays
//! synchronous. Every name counts in one shared group instead, so names cannot be used to
//! step around the per-subnet caps (at most a /24's worth of names is kept, apart from
//! configured peers).

use std::net::IpAddr;

use crate::record::PeerAddress;

/// The one group every host-name address falls in (both narrow and wide).
pub const HOST_NAME_GROUP: &str = "host-names";

/// The narrow (`net`, /24 or /48) and wide (`wide`, /16 or /32) group of an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddrGroups {
    pub net: String,
    pub wide: String,
}

impl AddrGroups {
    /// The groups of a parsed address (host names share [`HOST_NAME_GROUP`]).
    pub fn of(addr: &PeerAddress) -> Self {
        match addr.host().parse::<IpAddr>() {
            Ok(ip) => Self::of_ip(ip),
            Err(_) => Self {
                net: HOST_NAME_GROUP.to_string(),
                wide: HOST_NAME_GROUP.to_string(),
            },
        }
    }

    /// The groups of `addr` (`host:port`), or `None` if it does not parse.
    pub fn of_str(addr: &str) -> Option<Self> {
        PeerAddress::parse(addr).ok().map(|a| Self::of(&a))
    }

    /// The groups of an IP address; IPv4-mapped IPv6 counts as IPv4, so that one host
    /// cannot appear in two families.
    pub fn of_ip(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Self {
                    net: format!("{}.{}.{}.0/24", o[0], o[1], o[2]),
                    wide: format!("{}.{}.0.0/16", o[0], o[1]),
                }
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Self {
                    net: format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]),
                    wide: format!("{:x}:{:x}::/32", s[0], s[1]),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(s: &str) -> AddrGroups {
        AddrGroups::of_str(s).expect("valid address")
    }

    #[test]
    fn ipv4_groups_by_24_and_16() {
        assert_eq!(groups("10.1.2.3:1").net, "10.1.2.0/24");
        assert_eq!(groups("10.1.2.3:1").wide, "10.1.0.0/16");
        assert_eq!(groups("10.1.2.3:1"), groups("10.1.2.200:9"));
        assert_ne!(groups("10.1.2.3:1").net, groups("10.1.3.3:1").net);
        assert_eq!(groups("10.1.2.3:1").wide, groups("10.1.3.3:1").wide);
    }

    #[test]
    fn ipv6_groups_by_48_and_32_and_mapped_ipv4_counts_as_ipv4() {
        let a = groups("[2001:db8:1:2::1]:1");
        assert_eq!(a.net, "2001:db8:1::/48");
        assert_eq!(a.wide, "2001:db8::/32");
        assert_eq!(a, groups("[2001:db8:1:ffff::9]:2"));
        assert_eq!(groups("[::ffff:10.1.2.3]:1"), groups("10.1.2.9:1"));
    }

    #[test]
    fn host_names_share_one_group() {
        assert_eq!(groups("a.example:1").net, HOST_NAME_GROUP);
        assert_eq!(groups("a.example:1"), groups("b.other:2"));
        assert!(AddrGroups::of_str("not an address").is_none());
    }
}
