//! [`LegacyQuota`]: how many legacy records each source IP and each source subnet holds, and
//! the limits a legacy register is checked against.
//!
//! The seed's protocol is unauthenticated, so without a quota one host could fill the
//! registry (and every newcomer's sample) with addresses of its choosing. The counts live in
//! the registry, kept by the writer in the same transaction as the records, so every replica
//! that applies the same log holds the same counts. The limits travel inside each
//! `RegisterLegacy` command ([`LegacyLimits`], stamped by the member that proposed it), so
//! every replica refuses the same commands even while members run with different settings.
//!
//! The counts are not in snapshots: installing one rebuilds them entry by entry, and a
//! registry written before they existed is counted once when it is first opened (a marker
//! row says the counts are complete), so the table layout (`format_version`) is unchanged.

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::registry_tables::PEERS;
use super::{PeerEntry, RegistryDb, RegistryError, StoredEntry};
use crate::record::SourceSubnet;
use crate::wire::{ErrorCode, ErrorReply};

/// source IP (as written in `registered_from`) → legacy records held.
pub const LEGACY_BY_SOURCE: TableDefinition<&str, u64> = TableDefinition::new("legacy_by_source");
/// source subnet ([`SourceSubnet`] as text) → legacy records held.
pub const LEGACY_BY_SUBNET: TableDefinition<&str, u64> = TableDefinition::new("legacy_by_subnet");
/// `"counted"` → 1 once the two count tables cover every stored legacy record.
pub const LEGACY_QUOTA_META: TableDefinition<&str, u64> = TableDefinition::new("legacy_quota_meta");
const COUNTED: &str = "counted";

/// The most legacy records one source may hold, as the proposing member was configured.
/// `0` means no limit; commands logged before quotas existed decode as no limit, which is
/// what they were applied with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyLimits {
    #[serde(default)]
    pub per_ip: u32,
    #[serde(default)]
    pub per_subnet: u32,
}

/// The count tables opened for writing.
pub struct LegacyQuota<'t> {
    by_source: Table<'t, &'static str, u64>,
    by_subnet: Table<'t, &'static str, u64>,
}

impl<'t> LegacyQuota<'t> {
    /// Opens the count tables of `txn`, counting every stored legacy record first if the
    /// tables are not known to be complete. Call it before opening `peers` in `txn`.
    ///
    /// # Errors
    /// Storage errors, or a stored entry that does not decode.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        let mut quota = Self {
            by_source: txn
                .open_table(LEGACY_BY_SOURCE)
                .map_err(RegistryError::db)?,
            by_subnet: txn
                .open_table(LEGACY_BY_SUBNET)
                .map_err(RegistryError::db)?,
        };
        let mut meta = txn
            .open_table(LEGACY_QUOTA_META)
            .map_err(RegistryError::db)?;
        if meta.get(COUNTED).map_err(RegistryError::db)?.is_none() {
            quota.recount(txn)?;
            meta.insert(COUNTED, 1).map_err(RegistryError::db)?;
        }
        Ok(quota)
    }

    /// Counts every legacy record in `peers` from scratch.
    fn recount(&mut self, txn: &WriteTransaction) -> Result<(), RegistryError> {
        self.by_source
            .retain(|_, _| false)
            .map_err(RegistryError::db)?;
        self.by_subnet
            .retain(|_, _| false)
            .map_err(RegistryError::db)?;
        let peers = txn.open_table(PEERS).map_err(RegistryError::db)?;
        for item in peers.iter().map_err(RegistryError::db)? {
            let (key, value) = item.map_err(RegistryError::db)?;
            if let PeerEntry::Legacy(l) = StoredEntry::decode(key.value(), value.value())?.entry {
                self.add(&l.registered_from, 1)?;
            }
        }
        Ok(())
    }

    /// Changes the counts of `source_ip` and its subnet by `delta` (a legacy record was
    /// stored or removed).
    ///
    /// # Errors
    /// Storage errors.
    pub fn add(&mut self, source_ip: &str, delta: i64) -> Result<(), RegistryError> {
        let subnet = SourceSubnet::key_of(source_ip);
        bump(&mut self.by_source, source_ip, delta)?;
        bump(&mut self.by_subnet, &subnet, delta)
    }

    /// Legacy records held by `source_ip` and by its subnet.
    ///
    /// # Errors
    /// Storage errors.
    pub fn held(&self, source_ip: &str) -> Result<(u64, u64), RegistryError> {
        let subnet = SourceSubnet::key_of(source_ip);
        Ok((
            get(&self.by_source, source_ip)?,
            get(&self.by_subnet, &subnet)?,
        ))
    }

    /// Why `source_ip` may not store one more legacy record under `limits`, if it may not.
    ///
    /// # Errors
    /// Storage errors.
    pub fn refusal(
        &self,
        source_ip: &str,
        limits: LegacyLimits,
    ) -> Result<Option<ErrorReply>, RegistryError> {
        let (ip_held, subnet_held) = self.held(source_ip)?;
        Ok(refusal_for(source_ip, ip_held, subnet_held, limits))
    }
}

impl RegistryDb {
    /// Why this member's local state would refuse `source_ip` one more legacy record under
    /// `limits`, unless it already holds `address` (a refresh). A member checks this before
    /// proposing, so that a source at its limit does not put a refused command into the Raft
    /// log for every request; the registry's own check, in the log's order, still decides
    /// every register that is proposed. A lagging member may refuse early for a moment after
    /// a source's records expired; it never accepts early.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn legacy_quota_refusal(
        &self,
        address: String,
        source_ip: String,
        limits: LegacyLimits,
    ) -> Result<Option<ErrorReply>, RegistryError> {
        if limits == LegacyLimits::default() {
            return Ok(None);
        }
        let ip = source_ip.clone();
        let refresh = self.read(move |r| {
            Ok(r.get(&address)?
                .is_some_and(|e| matches!(e, PeerEntry::Legacy(l) if l.registered_from == ip)))
        });
        if refresh.await? {
            return Ok(None);
        }
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let current = db.current()?;
            let txn = current.begin_read().map_err(RegistryError::db)?;
            let count = |def: TableDefinition<&str, u64>, key: &str| match txn.open_table(def) {
                Ok(t) => Ok(t
                    .get(key)
                    .map_err(RegistryError::db)?
                    .map_or(0, |v| v.value())),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(RegistryError::db(e)),
            };
            let ip_held = count(LEGACY_BY_SOURCE, &source_ip)?;
            let subnet_held = count(LEGACY_BY_SUBNET, &SourceSubnet::key_of(&source_ip))?;
            Ok(refusal_for(&source_ip, ip_held, subnet_held, limits))
        })
        .await
        .map_err(|e| RegistryError::Corrupt {
            key: String::new(),
            reason: format!("read task failed: {e}"),
        })?
    }
}

/// The refusal of one more legacy record from `source_ip`, which holds `ip_held` and whose
/// subnet holds `subnet_held`, under `limits`; `None` if it may store one.
fn refusal_for(
    source_ip: &str,
    ip_held: u64,
    subnet_held: u64,
    limits: LegacyLimits,
) -> Option<ErrorReply> {
    let over = |held: u64, limit: u32| limit != 0 && held >= u64::from(limit);
    let reply = |what: String, limit: u32, flag: &str| {
        Some(ErrorReply::new(
            ErrorCode::Unavailable,
            format!(
                "quota exceeded: {what} already holds {limit} legacy registrations (the limit; \
                 an operator raises it with {flag}); they expire after legacy_ttl"
            ),
        ))
    };
    if over(ip_held, limits.per_ip) {
        return reply(
            source_ip.to_string(),
            limits.per_ip,
            "--legacy-records-per-ip",
        );
    }
    if over(subnet_held, limits.per_subnet) {
        return reply(
            format!("subnet {}", SourceSubnet::key_of(source_ip)),
            limits.per_subnet,
            "--legacy-records-per-subnet",
        );
    }
    None
}

fn get(table: &Table<'_, &'static str, u64>, key: &str) -> Result<u64, RegistryError> {
    Ok(table
        .get(key)
        .map_err(RegistryError::db)?
        .map_or(0, |v| v.value()))
}

fn bump(
    table: &mut Table<'_, &'static str, u64>,
    key: &str,
    delta: i64,
) -> Result<(), RegistryError> {
    let next = get(table, key)?.saturating_add_signed(delta);
    if next == 0 {
        // Sources that hold nothing leave no row, so the tables shrink as records expire.
        table.remove(key).map_err(RegistryError::db)?;
    } else {
        table.insert(key, next).map_err(RegistryError::db)?;
    }
    Ok(())
}
