//! [`RegistryReader`]: answers reads from one consistent redb snapshot of the registry.

use std::collections::HashSet;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::registry_tables::{BY_EXPIRY, BY_SAMPLE, COUNTERS, PEERS, PEER_COUNT};
use super::registry_writer::decode_entry;
use super::{PeerEntry, RegistryError};
use crate::record::PeerAddress;

/// How many sample-order rows a sample may look at per requested peer before it gives up on
/// diversity (keeps a sample's cost bounded however large the registry is).
const SAMPLE_SCAN_FACTOR: usize = 8;

/// The registry's tables opened for reading.
pub struct RegistryReader {
    peers: ReadOnlyTable<&'static str, &'static [u8]>,
    by_expiry: ReadOnlyTable<(u64, &'static str), ()>,
    by_sample: ReadOnlyTable<(u64, &'static str), ()>,
    counters: ReadOnlyTable<&'static str, u64>,
}

impl RegistryReader {
    /// Opens the registry tables of `txn` (they are created when the store is opened).
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(txn: &ReadTransaction) -> Result<Self, RegistryError> {
        Ok(Self {
            peers: txn.open_table(PEERS).map_err(RegistryError::db)?,
            by_expiry: txn.open_table(BY_EXPIRY).map_err(RegistryError::db)?,
            by_sample: txn.open_table(BY_SAMPLE).map_err(RegistryError::db)?,
            counters: txn.open_table(COUNTERS).map_err(RegistryError::db)?,
        })
    }

    /// The entry at `address`, live or not.
    ///
    /// # Errors
    /// Storage or decode errors.
    pub fn get(&self, address: &str) -> Result<Option<PeerEntry>, RegistryError> {
        match self.peers.get(address).map_err(RegistryError::db)? {
            None => Ok(None),
            Some(v) => decode_entry(address, v.value()).map(Some),
        }
    }

    /// How many entries are stored (expired ones not yet removed included).
    ///
    /// # Errors
    /// Storage errors.
    pub fn count(&self) -> Result<u64, RegistryError> {
        Ok(self
            .counters
            .get(PEER_COUNT)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value()))
    }

    /// The earliest expiry in the registry, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn next_expiry(&self) -> Result<Option<u64>, RegistryError> {
        Ok(self
            .by_expiry
            .first()
            .map_err(RegistryError::db)?
            .map(|(k, _)| k.value().0))
    }

    /// Up to `limit` live entries drawn from a random point `start` of the sampling order,
    /// one per subnet group first, then topped up from repeated groups; `exclude` is skipped.
    ///
    /// Reads at most `limit × 8` rows, so a sample costs the same with a thousand or ten
    /// million records.
    ///
    /// # Errors
    /// Storage or decode errors.
    pub fn sample(
        &self,
        limit: usize,
        exclude: &[String],
        now_ms: u64,
        start: u64,
    ) -> Result<Vec<PeerEntry>, RegistryError> {
        let budget = limit.saturating_mul(SAMPLE_SCAN_FACTOR).max(64);
        let mut groups = HashSet::new();
        let mut picked = Vec::with_capacity(limit);
        let mut spare = Vec::new();
        let after = self
            .by_sample
            .range((start, "")..)
            .map_err(RegistryError::db)?;
        let before = self
            .by_sample
            .range(..(start, ""))
            .map_err(RegistryError::db)?;
        for row in after.chain(before).take(budget) {
            let (key, _) = row.map_err(RegistryError::db)?;
            let address = key.value().1;
            if exclude.iter().any(|e| e == address) {
                continue;
            }
            let Some(entry) = self.get(address)? else {
                continue;
            };
            if !entry.is_live(now_ms) {
                continue;
            }
            let group = PeerAddress::parse(address)
                .map_or_else(|_| address.to_string(), |a| a.subnet_group());
            if groups.insert(group) {
                picked.push(entry);
                if picked.len() == limit {
                    break;
                }
            } else if spare.len() < limit {
                spare.push(entry);
            }
        }
        let missing = limit - picked.len();
        picked.extend(spare.into_iter().take(missing));
        Ok(picked)
    }

    /// A page of every entry in address order, starting after `after`; the second value is
    /// the cursor for the next page, `None` at the end.
    ///
    /// # Errors
    /// Storage or decode errors.
    pub fn page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<PeerEntry>, Option<String>), RegistryError> {
        let rows = match after {
            Some(a) => self
                .peers
                .range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                .map_err(RegistryError::db)?,
            None => self.peers.range::<&str>(..).map_err(RegistryError::db)?,
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for row in rows {
            let (k, v) = row.map_err(RegistryError::db)?;
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(decode_entry(k.value(), v.value())?);
        }
        let next = if more {
            out.last().map(|e: &PeerEntry| e.address().to_string())
        } else {
            None
        };
        Ok((out, next))
    }

    /// Visits every stored entry's raw bytes in address order (used to write snapshots without
    /// holding the registry in memory).
    ///
    /// # Errors
    /// Storage errors, or whatever `f` returns.
    pub fn for_each_raw<E: From<RegistryError>>(
        &self,
        mut f: impl FnMut(&str, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for row in self.peers.iter().map_err(RegistryError::db)? {
            let (k, v) = row.map_err(RegistryError::db)?;
            f(k.value(), v.value())?;
        }
        Ok(())
    }

    /// Number of rows in the peers table (checks the counter in tests).
    ///
    /// # Errors
    /// Storage errors.
    pub fn table_len(&self) -> Result<u64, RegistryError> {
        self.peers.len().map_err(RegistryError::db)
    }
}
