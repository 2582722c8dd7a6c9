//! [`RegistryReader`]: answers reads from one consistent redb snapshot of the registry.

use rand::Rng;
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::peer_sampler::{GroupSource, PeerSampler};
use super::registry_tables::{
    BY_EXPIRY, COUNTERS, GROUP_SIZES, GROUP_SLOTS, PEERS, PEER_COUNT, TOMBSTONES,
    TOMBSTONES_BY_EXPIRY, UNVERIFIED,
};
use super::tombstones::Tombstone;
use super::{ExcludeSet, PeerEntry, Pool, RegistryError, SnapshotItem, StoredEntry};
use crate::record::NodeId;

/// The registry's tables opened for reading.
pub struct RegistryReader {
    peers: ReadOnlyTable<&'static str, &'static [u8]>,
    by_expiry: ReadOnlyTable<(u64, &'static str), ()>,
    group_slots: ReadOnlyTable<(&'static [u8], u64), &'static [u8]>,
    group_sizes: ReadOnlyTable<&'static [u8], u64>,
    unverified: ReadOnlyTable<&'static str, ()>,
    tombstones: ReadOnlyTable<&'static [u8], (u64, u64)>,
    tombstones_by_expiry: ReadOnlyTable<(u64, &'static [u8]), ()>,
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
            group_slots: txn.open_table(GROUP_SLOTS).map_err(RegistryError::db)?,
            group_sizes: txn.open_table(GROUP_SIZES).map_err(RegistryError::db)?,
            unverified: txn.open_table(UNVERIFIED).map_err(RegistryError::db)?,
            tombstones: txn.open_table(TOMBSTONES).map_err(RegistryError::db)?,
            tombstones_by_expiry: txn
                .open_table(TOMBSTONES_BY_EXPIRY)
                .map_err(RegistryError::db)?,
            counters: txn.open_table(COUNTERS).map_err(RegistryError::db)?,
        })
    }

    /// The entry at `address`, live or not.
    ///
    /// # Errors
    /// Storage or decode errors.
    pub fn get(&self, address: &str) -> Result<Option<PeerEntry>, RegistryError> {
        Ok(self.get_stored(address)?.map(|s| s.entry))
    }

    /// The stored row at `address` (with its group and verified flag), live or not.
    ///
    /// # Errors
    /// Storage or decode errors.
    pub fn get_stored(&self, address: &str) -> Result<Option<StoredEntry>, RegistryError> {
        match self.peers.get(address).map_err(RegistryError::db)? {
            None => Ok(None),
            Some(v) => StoredEntry::decode(address, v.value()).map(Some),
        }
    }

    /// Up to `limit` signed records awaiting a dial-back, in address order after `after`
    /// (the leader's dial-back walks the queue round and round with this cursor).
    ///
    /// # Errors
    /// Storage or decode errors.
    pub fn unverified(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, RegistryError> {
        let rows = match after {
            Some(a) => self
                .unverified
                .range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => self.unverified.range::<&str>(..),
        }
        .map_err(RegistryError::db)?;
        let mut out = Vec::new();
        for row in rows.take(limit) {
            let (k, _) = row.map_err(RegistryError::db)?;
            if let Some(stored) = self.get_stored(k.value())? {
                out.push(stored);
            }
        }
        Ok(out)
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

    /// The earliest expiry of a record or a tombstone, if any: when the leader's next
    /// `Expire` sweep has work.
    ///
    /// # Errors
    /// Storage errors.
    pub fn next_expiry(&self) -> Result<Option<u64>, RegistryError> {
        let record = self
            .by_expiry
            .first()
            .map_err(RegistryError::db)?
            .map(|(k, _)| k.value().0);
        let tombstone = self
            .tombstones_by_expiry
            .first()
            .map_err(RegistryError::db)?
            .map(|(k, _)| k.value().0);
        Ok(match (record, tombstone) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The tombstone of `node`, live or not.
    ///
    /// # Errors
    /// Storage errors.
    pub fn tombstone(&self, node: &NodeId) -> Result<Option<Tombstone>, RegistryError> {
        Ok(self
            .tombstones
            .get(node.0.as_slice())
            .map_err(RegistryError::db)?
            .map(|v| {
                let (seq, expires_at_ms) = v.value();
                Tombstone { seq, expires_at_ms }
            }))
    }

    /// A random sample of up to `limit` entries of `pool` live at `now_ms`, leaving out
    /// `exclude`: a coarse subnet group, a fine group within it, an entry, each drawn
    /// uniformly, round the groups until the sample is full (see [`super::peer_sampler`]).
    ///
    /// Draws at most `max(limit × 8, 64)` entries, each a few point lookups, so a sample
    /// costs O(limit · log n) however large the registry is.
    ///
    /// # Errors
    /// Storage or decode errors, or [`RegistryError::Corrupt`] if the index has a hole.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        pool: Pool,
        limit: usize,
        exclude: &ExcludeSet,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Vec<PeerEntry>, RegistryError> {
        let mut sampler = PeerSampler::new(self, pool, limit)?;
        let mut picked = Vec::with_capacity(limit.min(1024));
        while picked.len() < limit {
            let Some(address) = sampler.next_address(self, rng)? else {
                break;
            };
            if exclude.contains(&address) {
                continue;
            }
            let entry = self.get(&address)?.ok_or_else(|| RegistryError::Corrupt {
                key: address.clone(),
                reason: "the group index names an address with no entry".to_string(),
            })?;
            if entry.is_live(now_ms) {
                picked.push(entry);
            }
        }
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
    ) -> Result<(Vec<StoredEntry>, Option<String>), RegistryError> {
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
            out.push(StoredEntry::decode(k.value(), v.value())?);
        }
        let next = if more {
            out.last()
                .map(|e: &StoredEntry| e.entry.address().to_string())
        } else {
            None
        };
        Ok((out, next))
    }

    /// Visits every snapshot item, encoded: each stored entry, in address order, then each
    /// tombstone, in node id order. Used to write snapshots without holding the registry in
    /// memory.
    ///
    /// # Errors
    /// Storage errors, or whatever `f` returns.
    pub fn for_each_snapshot_item<E: From<RegistryError>>(
        &self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for row in self.peers.iter().map_err(RegistryError::db)? {
            let (k, v) = row.map_err(RegistryError::db)?;
            let item = SnapshotItem::Entry {
                address: k.value().to_string(),
                row: v.value().to_vec(),
            };
            f(&item.encode()?)?;
        }
        for row in self.tombstones.iter().map_err(RegistryError::db)? {
            let (k, v) = row.map_err(RegistryError::db)?;
            let node_id = NodeId(k.value().try_into().map_err(|_| RegistryError::Corrupt {
                key: hex::encode(k.value()),
                reason: "tombstone key is not a 32-byte node id".to_string(),
            })?);
            let (seq, expires_at_ms) = v.value();
            let item = SnapshotItem::Tombstone {
                node_id,
                tombstone: Tombstone { seq, expires_at_ms },
            };
            f(&item.encode()?)?;
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

impl GroupSource for RegistryReader {
    fn size(&self, scope: &[u8]) -> Result<u64, RegistryError> {
        Ok(self
            .group_sizes
            .get(scope)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value()))
    }

    fn member(&self, scope: &[u8], slot: u64) -> Result<Vec<u8>, RegistryError> {
        self.group_slots
            .get((scope, slot))
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_vec())
            .ok_or_else(|| RegistryError::Corrupt {
                key: format!("{} slot {slot}", hex::encode(scope)),
                reason: "no member in a slot below the scope's size".to_string(),
            })
    }
}
