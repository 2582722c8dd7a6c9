//! [`RegistryReader`]: answers reads from one consistent redb snapshot of the registry.

use rand::Rng;
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::peer_sampler::PeerSampler;
use super::registry_tables::{
    BY_EXPIRY, BY_SLOT, COUNTERS, PEERS, PEER_COUNT, SLOT_OF, TOMBSTONES, TOMBSTONES_BY_EXPIRY,
};
use super::registry_writer::decode_entry;
use super::tombstones::Tombstone;
use super::{ExcludeSet, PeerEntry, RegistryError, SnapshotItem};
use crate::record::NodeId;

/// The registry's tables opened for reading.
pub struct RegistryReader {
    peers: ReadOnlyTable<&'static str, &'static [u8]>,
    by_expiry: ReadOnlyTable<(u64, &'static str), ()>,
    by_slot: ReadOnlyTable<u64, &'static str>,
    slot_of: ReadOnlyTable<&'static str, u64>,
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
            by_slot: txn.open_table(BY_SLOT).map_err(RegistryError::db)?,
            slot_of: txn.open_table(SLOT_OF).map_err(RegistryError::db)?,
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

    /// A uniform random sample of up to `limit` entries live at `now_ms`, one per subnet
    /// group first, leaving out `exclude` (the algorithm is in [`super::peer_sampler`]).
    ///
    /// Looks at most `max(limit × 8, 64)` slots, each a point lookup, so a sample costs
    /// O(limit · log n) however large the registry is.
    ///
    /// # Errors
    /// Storage or decode errors, or [`RegistryError::Corrupt`] if the slot index has a hole.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        limit: usize,
        exclude: &ExcludeSet,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Vec<PeerEntry>, RegistryError> {
        let population = self.by_slot.len().map_err(RegistryError::db)?;
        let mut sampler = PeerSampler::new(population, limit);
        while let Some(slot) = sampler.next_slot(rng) {
            let address = self
                .by_slot
                .get(slot)
                .map_err(RegistryError::db)?
                .map(|a| a.value().to_string())
                .ok_or_else(|| RegistryError::Corrupt {
                    key: format!("slot {slot}"),
                    reason: format!("no entry in a slot below {population}"),
                })?;
            if exclude.contains(&address) {
                continue;
            }
            let entry = self.get(&address)?.ok_or_else(|| RegistryError::Corrupt {
                key: address.clone(),
                reason: format!("slot {slot} names an address with no entry"),
            })?;
            if entry.is_live(now_ms) {
                sampler.offer(entry);
            }
        }
        Ok(sampler.finish())
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

    /// Visits every snapshot item, encoded: each entry with its slot, in address order, then
    /// each tombstone, in node id order. Used to write snapshots without holding the registry
    /// in memory.
    ///
    /// # Errors
    /// Storage errors, [`RegistryError::Corrupt`] if an entry has no slot, or whatever `f`
    /// returns.
    pub fn for_each_snapshot_item<E: From<RegistryError>>(
        &self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let peers = self.peers.iter().map_err(RegistryError::db)?;
        let mut slots = self.slot_of.iter().map_err(RegistryError::db)?;
        // Both tables are keyed by address, so they are walked side by side.
        for row in peers {
            let (k, v) = row.map_err(RegistryError::db)?;
            let address = k.value();
            let slot = match slots.next() {
                Some(s) => {
                    let (sk, sv) = s.map_err(RegistryError::db)?;
                    (sk.value() == address).then(|| sv.value())
                }
                None => None,
            };
            let slot = slot.ok_or_else(|| RegistryError::Corrupt {
                key: address.to_string(),
                reason: "entry has no slot".to_string(),
            })?;
            let item = SnapshotItem::Peer {
                slot,
                entry: v.value().to_vec(),
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
