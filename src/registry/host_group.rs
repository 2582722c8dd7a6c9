//! [`HostGroup`]: where a registered address counts for subnet fairness — the resolved IP of
//! its host, or the one shared group of hosts that did not resolve.
//!
//! Samples draw a coarse group first (`/16` for IPv4, `/32` for IPv6), then a fine group
//! within it (`/24`, `/48`), then an entry. A DNS name counts in the groups of the address it
//! resolved to when it was registered, so a thousand names pointing into one `/24` are one
//! `/24`, not a thousand subnets; names that did not resolve all share one group, so a
//! thousand bogus names are one subnet too.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::record::PeerAddress;

/// The group key of hosts that did not resolve (or whose address does not parse).
pub const UNRESOLVED_GROUP: &str = "unresolved";

/// What a stored entry's host resolved to at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostGroup {
    /// The host is, or resolved to, this IP: it counts in this IP's subnets.
    Ip(IpAddr),
    /// A name that did not resolve: every such host shares one group.
    Unresolved,
}

impl HostGroup {
    /// The group of `address`: its literal IP, else `resolved` (what the proposing member's
    /// resolver gave for the name), else [`HostGroup::Unresolved`]. Pure, so every replica
    /// that applies the same command computes the same group.
    pub fn of(address: &str, resolved: Option<IpAddr>) -> Self {
        let literal = PeerAddress::parse(address)
            .ok()
            .and_then(|a| a.host().parse::<IpAddr>().ok());
        match literal.or(resolved) {
            Some(ip) => Self::Ip(ip),
            None => Self::Unresolved,
        }
    }

    /// The coarse group: `a.b/16` for IPv4, `x:y::/32` for IPv6.
    pub fn outer(&self) -> String {
        match self {
            Self::Ip(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}/16", o[0], o[1])
            }
            Self::Ip(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}::/32", s[0], s[1])
            }
            Self::Unresolved => UNRESOLVED_GROUP.to_string(),
        }
    }

    /// The fine group within [`Self::outer`]: `a.b.c/24` for IPv4, `x:y:z::/48` for IPv6.
    pub fn inner(&self) -> String {
        match self {
            Self::Ip(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}.{}/24", o[0], o[1], o[2])
            }
            Self::Ip(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
            Self::Unresolved => UNRESOLVED_GROUP.to_string(),
        }
    }

    /// [`Self::outer`] as the group index keys it: a family tag (0 unresolved, 4, 6) and the
    /// prefix's bytes, so that a scope key is a few bytes instead of a string like
    /// `node|127.3/16|127.3.14/24` in two index rows per entry.
    pub fn outer_key(&self) -> Vec<u8> {
        match self {
            Self::Ip(IpAddr::V4(v4)) => {
                let o = v4.octets();
                vec![4, o[0], o[1]]
            }
            Self::Ip(IpAddr::V6(v6)) => {
                let o = v6.octets();
                vec![6, o[0], o[1], o[2], o[3]]
            }
            Self::Unresolved => vec![0],
        }
    }

    /// [`Self::inner`] as the group index keys it below [`Self::outer_key`]: the bytes the
    /// fine prefix adds (one for a `/24`, two for a `/48`).
    pub fn inner_key(&self) -> Vec<u8> {
        match self {
            Self::Ip(IpAddr::V4(v4)) => vec![v4.octets()[2]],
            Self::Ip(IpAddr::V6(v6)) => {
                let o = v6.octets();
                vec![o[4], o[5]]
            }
            Self::Unresolved => vec![0],
        }
    }

    /// The IP to dial for a dial-back: the literal or the resolved one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::Unresolved => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_ignore_the_resolver_and_names_take_its_answer_or_share_one_group() {
        let any: IpAddr = "10.9.9.9".parse().expect("ip");
        let g = HostGroup::of("10.1.2.3:7000", Some(any));
        assert_eq!(
            (g.outer(), g.inner()),
            ("10.1/16".into(), "10.1.2/24".into())
        );
        let named = HostGroup::of("node.example:7000", Some("10.1.2.99".parse().expect("ip")));
        assert_eq!(named.inner(), g.inner());
        let a = HostGroup::of("bogus-a.invalid:1", None);
        let b = HostGroup::of("bogus-b.invalid:1", None);
        assert_eq!(a, b);
        assert_eq!(a.outer(), UNRESOLVED_GROUP);
        let widest = HostGroup::of("[ffff:ffff:ffff:ffff::1]:1", None);
        let detail = crate::wire::EntryDetail {
            verified: true,
            group: widest.inner(),
        };
        let len = rmp_serde::to_vec_named(&detail).expect("encode").len();
        assert!(len <= crate::wire::MAX_ENCODED_ENTRY_DETAIL, "{len} bytes");
        let v6 = HostGroup::of("[2001:db8:1:2::1]:1", None);
        assert_eq!(
            (v6.outer(), v6.inner()),
            ("2001:db8::/32".into(), "2001:db8:1::/48".into())
        );
    }
}
