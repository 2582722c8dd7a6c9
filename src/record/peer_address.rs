//! [`PeerAddress`]: a validated `host:port`, and the subnet group used for diversity.

use std::net::IpAddr;

use super::RecordError;

/// Longest accepted address: a 253-byte DNS name, a colon and a 5-digit port.
pub const MAX_ADDRESS_LEN: usize = 253 + 1 + 5;

/// A `host:port` where host is an IP address (IPv6 in brackets) or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddress {
    host: String,
    port: u16,
}

impl PeerAddress {
    /// Parses and validates `host:port`.
    ///
    /// # Errors
    /// [`RecordError::BadAddress`] for anything that is not a usable dial target.
    pub fn parse(s: &str) -> Result<Self, RecordError> {
        let bad = || RecordError::BadAddress(s.chars().take(64).collect());
        if s.len() > MAX_ADDRESS_LEN {
            return Err(bad());
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 || host.is_empty() {
            return Err(bad());
        }
        let host = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            inner.to_string()
        } else if host.parse::<std::net::Ipv4Addr>().is_ok() {
            host.to_string()
        } else if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            host.to_ascii_lowercase()
        } else {
            return Err(bad());
        };
        Ok(Self { host, port })
    }

    /// The subnet group a peer falls in: /16 for IPv4, /32 for IPv6, the name for DNS hosts.
    ///
    /// Samples prefer one peer per group, so that one operator's block of addresses cannot
    /// fill a newcomer's whole peer list.
    pub fn subnet_group(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}/16", o[0], o[1])
            }
            Ok(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}::/32", s[0], s[1])
            }
            Err(_) => self.host.clone(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_ipv6_and_names() {
        assert_eq!(
            PeerAddress::parse("127.0.0.1:4000").map(|a| a.port()),
            Ok(4000)
        );
        assert!(PeerAddress::parse("[::1]:4000").is_ok());
        assert!(PeerAddress::parse("node-1.peerchain:7000").is_ok());
        assert!(PeerAddress::parse("localhost:3000").is_ok());
    }

    #[test]
    fn rejects_junk() {
        for bad in [
            "", "nohost", ":80", "a:0", "a:70000", "a b:80", "[zz]:1", "x:y",
        ] {
            assert!(PeerAddress::parse(bad).is_err(), "{bad}");
        }
        assert!(PeerAddress::parse(&format!("{}:1", "a".repeat(300))).is_err());
    }

    #[test]
    fn groups_by_subnet() {
        let g = |s: &str| PeerAddress::parse(s).map(|a| a.subnet_group());
        assert_eq!(g("10.1.2.3:1"), g("10.1.200.9:2"));
        assert_ne!(g("10.1.2.3:1"), g("10.2.2.3:1"));
        assert_eq!(g("node1:1"), Ok("node1".to_string()));
    }
}
