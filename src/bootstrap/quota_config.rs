//! [`QuotaConfig`]: the limits a member puts on each client source, per IP and per subnet
//! (IPv4 /24, IPv6 /48: [`crate::record::SourceSubnet`]).
//!
//! The defaults suit a public deployment: a node needs one or two connections and a request
//! every few seconds, and a NAT or a small hosting block shares a subnet. Tests, benchmarks
//! and the local devnet register thousands of records from 127.0.0.1 and raise them with the
//! flags (`0` means no limit). Members' own traffic is not counted against these limits once
//! it has authenticated, and has connection slots of its own
//! ([`QuotaConfig::member_reserved_connections`]).

use serde::{Deserialize, Serialize};

use crate::registry::LegacyLimits;

/// Connections one IP may hold open.
pub const DEFAULT_CONNECTIONS_PER_IP: u32 = 32;
/// Connections one /24 (or /48) may hold open.
pub const DEFAULT_CONNECTIONS_PER_SUBNET: u32 = 128;
/// Requests per second one IP may send (token bucket; bursts of two seconds' worth).
pub const DEFAULT_REQUESTS_PER_SEC_PER_IP: u32 = 50;
/// Requests per second one /24 (or /48) may send.
pub const DEFAULT_REQUESTS_PER_SEC_PER_SUBNET: u32 = 200;
/// Legacy records one IP may hold in the registry.
pub const DEFAULT_LEGACY_RECORDS_PER_IP: u32 = 16;
/// Legacy records one /24 (or /48) may hold in the registry.
pub const DEFAULT_LEGACY_RECORDS_PER_SUBNET: u32 = 64;
/// Connection slots kept for members (from a member's address, authenticating at once)
/// beyond `max_connections`.
pub const DEFAULT_MEMBER_RESERVED_CONNECTIONS: u32 = 64;
/// Bytes all unauthenticated connections together may hold in incomplete frames.
pub const DEFAULT_INCOMPLETE_FRAME_BUDGET: u64 = 32 * 1024 * 1024;

/// The `peerchain bootstrap` flags that lift every per-source limit. Whatever sends all its
/// traffic from one address (the devnet, `peerchain bench`, the test harness, a docker
/// deployment reached through its gateway) passes these; the member-reserved slots and the
/// incomplete-frame budget stay as they are.
pub const NO_CLIENT_QUOTA_FLAGS: &[&str] = &[
    "--max-connections-per-ip",
    "0",
    "--max-connections-per-subnet",
    "0",
    "--requests-per-sec-per-ip",
    "0",
    "--requests-per-sec-per-subnet",
    "0",
    "--legacy-records-per-ip",
    "0",
    "--legacy-records-per-subnet",
    "0",
];

/// Per-source limits on clients. `0` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    pub connections_per_ip: u32,
    pub connections_per_subnet: u32,
    pub requests_per_sec_per_ip: u32,
    pub requests_per_sec_per_subnet: u32,
    /// Checked by every replica as the command is applied (the proposing member's values
    /// travel in the command).
    pub legacy_records_per_ip: u32,
    pub legacy_records_per_subnet: u32,
    /// Connections from a member's address admitted when the client slots are full; they
    /// must authenticate within a few seconds or are closed.
    pub member_reserved_connections: u32,
    /// Bytes of incomplete frames held by unauthenticated connections, summed over all of
    /// them; a connection whose partial frame pushes the sum over it is closed.
    pub incomplete_frame_budget: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            connections_per_ip: DEFAULT_CONNECTIONS_PER_IP,
            connections_per_subnet: DEFAULT_CONNECTIONS_PER_SUBNET,
            requests_per_sec_per_ip: DEFAULT_REQUESTS_PER_SEC_PER_IP,
            requests_per_sec_per_subnet: DEFAULT_REQUESTS_PER_SEC_PER_SUBNET,
            legacy_records_per_ip: DEFAULT_LEGACY_RECORDS_PER_IP,
            legacy_records_per_subnet: DEFAULT_LEGACY_RECORDS_PER_SUBNET,
            member_reserved_connections: DEFAULT_MEMBER_RESERVED_CONNECTIONS,
            incomplete_frame_budget: DEFAULT_INCOMPLETE_FRAME_BUDGET,
        }
    }
}

impl QuotaConfig {
    /// The limits stamped into a `RegisterLegacy` command.
    pub fn legacy_limits(&self) -> LegacyLimits {
        LegacyLimits {
            per_ip: self.legacy_records_per_ip,
            per_subnet: self.legacy_records_per_subnet,
        }
    }

    /// Problems with the combination of limits (one line each).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let pairs = [
            (
                "connections_per_ip",
                self.connections_per_ip,
                "connections_per_subnet",
                self.connections_per_subnet,
            ),
            (
                "requests_per_sec_per_ip",
                self.requests_per_sec_per_ip,
                "requests_per_sec_per_subnet",
                self.requests_per_sec_per_subnet,
            ),
            (
                "legacy_records_per_ip",
                self.legacy_records_per_ip,
                "legacy_records_per_subnet",
                self.legacy_records_per_subnet,
            ),
        ];
        for (ip_name, ip, subnet_name, subnet) in pairs {
            if ip != 0 && subnet != 0 && ip > subnet {
                p.push(format!(
                    "{ip_name} ({ip}) is above {subnet_name} ({subnet}): one IP could never \
                     use it (0 means no limit)"
                ));
            }
        }
        p
    }
}
