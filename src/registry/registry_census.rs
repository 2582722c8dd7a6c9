//! [`RegistryCensus`]: what the registry holds, counted for the metrics and the status page:
//! signed and legacy records, and registered addresses per subnet group (/16 for IPv4).

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase, ReadableTableMetadata};
use serde::Serialize;

use super::registry_tables::{BY_NODE, COUNTERS, PEERS, PEER_COUNT};
use super::RegistryError;
use crate::record::PeerAddress;

/// Counts of one consistent read of the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistryCensus {
    /// Every stored record.
    pub total: u64,
    /// Signed records (one per node id, so the `peers_by_node` index's length).
    pub signed: u64,
    /// Records registered through the seed chapter's protocol.
    pub legacy: u64,
    /// Addresses per subnet group (`a.b.0.0/16`, an IPv6 /32, or a host name), among the
    /// first `scanned` addresses in address order.
    pub per_group: BTreeMap<String, u64>,
    /// Addresses looked at for `per_group`: all of them unless the registry holds more than
    /// the scan limit.
    pub scanned: u64,
}

impl RegistryCensus {
    /// Counts `db`'s records, grouping at most `max_scan` addresses. Reads only keys and
    /// table lengths, never decodes a record: blocking, but cheap per address.
    ///
    /// # Errors
    /// Storage errors.
    pub fn take(db: &Database, max_scan: u64) -> Result<Self, RegistryError> {
        let txn = db.begin_read().map_err(RegistryError::db)?;
        let total = txn
            .open_table(COUNTERS)
            .map_err(RegistryError::db)?
            .get(PEER_COUNT)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value());
        let signed = txn
            .open_table(BY_NODE)
            .map_err(RegistryError::db)?
            .len()
            .map_err(RegistryError::db)?;
        let mut census = Self {
            total,
            signed,
            legacy: total.saturating_sub(signed),
            ..Self::default()
        };
        let peers = txn.open_table(PEERS).map_err(RegistryError::db)?;
        for row in peers.range::<&str>(..).map_err(RegistryError::db)? {
            if census.scanned >= max_scan {
                break;
            }
            let (k, _) = row.map_err(RegistryError::db)?;
            let group = PeerAddress::parse(k.value())
                .map_or_else(|_| "unparsable".to_string(), |a| a.subnet_group());
            *census.per_group.entry(group).or_default() += 1;
            census.scanned += 1;
        }
        Ok(census)
    }
}
