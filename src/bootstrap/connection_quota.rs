//! [`ConnectionQuota`]: who may hold how many of a member's connection slots.
//!
//! Clients share `max_connections` slots, at most `connections_per_ip` per source IP and
//! `connections_per_subnet` per /24 (or /48), so one address or one block cannot take them
//! all. Members never compete with clients: a connection from a current member's address
//! that finds the client slots full gets one of `member_reserved_connections` slots of its
//! own, on condition that it authenticates with the cluster secret at once (the connection
//! enforces that, [`Admission::Reserved`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::QuotaConfig;
use crate::metrics::FrameRefusal;
use crate::record::source_subnet::{canonical_ip, SourceSubnet};

#[derive(Debug, Default)]
struct Counts {
    clients: usize,
    reserved: usize,
    per_ip: HashMap<IpAddr, u32>,
    per_subnet: HashMap<SourceSubnet, u32>,
}

/// The connection counts of one member.
#[derive(Debug)]
pub struct ConnectionQuota {
    max_clients: usize,
    quotas: QuotaConfig,
    counts: Mutex<Counts>,
}

/// Why a connection was refused; its text goes to the client and into the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionRefusal {
    #[error(
        "too many connections from {ip} (limit {limit} per IP; an operator raises it with \
         --max-connections-per-ip)"
    )]
    PerIp { ip: IpAddr, limit: u32 },
    #[error(
        "too many connections from {subnet} (limit {limit} per subnet; an operator raises it \
         with --max-connections-per-subnet)"
    )]
    PerSubnet { subnet: SourceSubnet, limit: u32 },
    #[error("this member is at its limit of {limit} client connections; try another member")]
    Full { limit: usize },
}

impl ConnectionRefusal {
    /// The `refused` metric's reason for this refusal.
    pub fn metric(&self) -> FrameRefusal {
        match self {
            Self::Full { .. } => FrameRefusal::ConnectionLimit,
            Self::PerIp { .. } | Self::PerSubnet { .. } => FrameRefusal::ConnectionQuota,
        }
    }
}

/// A held connection slot; dropping it frees the slot.
#[derive(Debug)]
pub enum Admission {
    /// A client slot, counted against its IP and subnet.
    Client(Slot),
    /// A slot reserved for members: the connection must authenticate at once.
    Reserved(Slot),
}

/// Frees its counts on drop.
#[derive(Debug)]
pub struct Slot {
    quota: Arc<ConnectionQuota>,
    ip: IpAddr,
    reserved: bool,
}

impl ConnectionQuota {
    pub fn new(max_clients: usize, quotas: QuotaConfig) -> Arc<Self> {
        Arc::new(Self {
            max_clients,
            quotas,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Admits a connection from `ip`, as a client if its quotas and the client slots allow,
    /// else, if `from_member` (the address is a current member's), into a reserved slot.
    ///
    /// # Errors
    /// Why the connection is refused.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        from_member: bool,
    ) -> Result<Admission, ConnectionRefusal> {
        let ip = canonical_ip(ip);
        let subnet = SourceSubnet::of(ip);
        let mut c = self.lock();
        let refusal = self.client_refusal(&c, ip, subnet);
        let Some(refusal) = refusal else {
            c.clients += 1;
            *c.per_ip.entry(ip).or_default() += 1;
            *c.per_subnet.entry(subnet).or_default() += 1;
            return Ok(Admission::Client(self.slot(ip, false)));
        };
        let room = c.reserved < self.quotas.member_reserved_connections as usize;
        if from_member && room {
            c.reserved += 1;
            return Ok(Admission::Reserved(self.slot(ip, true)));
        }
        Err(refusal)
    }

    fn client_refusal(
        &self,
        c: &Counts,
        ip: IpAddr,
        subnet: SourceSubnet,
    ) -> Option<ConnectionRefusal> {
        let q = &self.quotas;
        let ip_held = c.per_ip.get(&ip).copied().unwrap_or(0);
        let subnet_held = c.per_subnet.get(&subnet).copied().unwrap_or(0);
        if q.connections_per_ip != 0 && ip_held >= q.connections_per_ip {
            Some(ConnectionRefusal::PerIp {
                ip,
                limit: q.connections_per_ip,
            })
        } else if q.connections_per_subnet != 0 && subnet_held >= q.connections_per_subnet {
            Some(ConnectionRefusal::PerSubnet {
                subnet,
                limit: q.connections_per_subnet,
            })
        } else if c.clients >= self.max_clients {
            Some(ConnectionRefusal::Full {
                limit: self.max_clients,
            })
        } else {
            None
        }
    }

    /// Client and reserved connections open now.
    pub fn open(&self) -> (usize, usize) {
        let c = self.lock();
        (c.clients, c.reserved)
    }

    fn slot(self: &Arc<Self>, ip: IpAddr, reserved: bool) -> Slot {
        Slot {
            quota: self.clone(),
            ip,
            reserved,
        }
    }

    fn release(&self, ip: IpAddr, reserved: bool) {
        let mut c = self.lock();
        if reserved {
            c.reserved = c.reserved.saturating_sub(1);
            return;
        }
        c.clients = c.clients.saturating_sub(1);
        decrement(&mut c.per_ip, ip);
        decrement(&mut c.per_subnet, SourceSubnet::of(ip));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decrements `key`'s count, dropping the entry at zero so the maps hold only open sources.
fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() = e.get().saturating_sub(1);
        if *e.get() == 0 {
            e.remove();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.quota.release(self.ip, self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn quotas(per_ip: u32, per_subnet: u32, reserved: u32) -> QuotaConfig {
        QuotaConfig {
            connections_per_ip: per_ip,
            connections_per_subnet: per_subnet,
            member_reserved_connections: reserved,
            ..QuotaConfig::default()
        }
    }

    #[test]
    fn per_ip_then_per_subnet_then_global() {
        let q = ConnectionQuota::new(10, quotas(2, 3, 0));
        let a1 = q.admit(ip("10.0.0.1"), false).expect("1");
        let _a2 = q.admit(ip("10.0.0.1"), false).expect("2");
        assert!(matches!(
            q.admit(ip("10.0.0.1"), false),
            Err(ConnectionRefusal::PerIp { limit: 2, .. })
        ));
        let _b = q.admit(ip("10.0.0.2"), false).expect("3");
        assert!(matches!(
            q.admit(ip("10.0.0.3"), false),
            Err(ConnectionRefusal::PerSubnet { limit: 3, .. })
        ));
        drop(a1);
        let _a3 = q.admit(ip("10.0.0.3"), false).expect("freed");
        let mut others = Vec::new();
        for i in 0..7 {
            others.push(
                q.admit(ip(&format!("10.0.{}.1", i + 1)), false)
                    .expect("room"),
            );
        }
        assert!(matches!(
            q.admit(ip("10.9.9.9"), false),
            Err(ConnectionRefusal::Full { limit: 10 })
        ));
        drop(others);
        assert_eq!(q.open(), (3, 0));
    }

    #[test]
    fn members_get_reserved_slots_when_clients_are_full() {
        let q = ConnectionQuota::new(1, quotas(0, 0, 1));
        let _c = q.admit(ip("10.0.0.1"), false).expect("client");
        assert!(q.admit(ip("10.0.0.2"), false).is_err());
        let m = q.admit(ip("10.0.0.2"), true).expect("reserved");
        assert!(matches!(m, Admission::Reserved(_)));
        assert!(q.admit(ip("10.0.0.2"), true).is_err(), "reserved pool full");
        drop(m);
        assert_eq!(q.open(), (1, 0));
    }

    #[test]
    fn zero_disables_and_mapped_addresses_count_as_ipv4() {
        let q = ConnectionQuota::new(100, quotas(1, 0, 0));
        let _a = q.admit(ip("10.0.0.1"), false).expect("first");
        assert!(q.admit(ip("::ffff:10.0.0.1"), false).is_err());
        let q = ConnectionQuota::new(100, quotas(0, 0, 0));
        let held: Vec<_> = (0..50)
            .map(|_| q.admit(ip("10.0.0.1"), false).expect("unlimited"))
            .collect();
        assert_eq!(held.len(), 50);
    }
}
