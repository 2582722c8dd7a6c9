//! [`EntryStore`]: the rows kept per address and every index over them, changed together so
//! they never disagree: the entry itself, its expiry row, its node row, its place in the
//! sampling index of its pool, the dial-back queue, the legacy records held per source, and
//! the entry count.

use redb::{ReadableTable, Table, WriteTransaction};

use super::group_index::GroupIndex;
use super::legacy_quota::{LegacyLimits, LegacyQuota};
use super::registry_tables::{BY_EXPIRY, BY_NODE, COUNTERS, PEERS, PEER_COUNT, UNVERIFIED};
use super::{PeerEntry, RegistryError, StoredEntry};
use crate::wire::ErrorReply;

/// The per-address tables opened for writing.
pub struct EntryStore<'t> {
    peers: Table<'t, &'static str, &'static [u8]>,
    by_expiry: Table<'t, (u64, &'static str), ()>,
    by_node: Table<'t, &'static [u8], &'static str>,
    unverified: Table<'t, &'static str, ()>,
    counters: Table<'t, &'static str, u64>,
    groups: GroupIndex<'t>,
    legacy_quota: LegacyQuota<'t>,
}

impl<'t> EntryStore<'t> {
    /// Opens the tables of `txn`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        // First: counting a registry without counts reads `peers` on its own.
        let legacy_quota = LegacyQuota::open(txn)?;
        Ok(Self {
            peers: txn.open_table(PEERS).map_err(RegistryError::db)?,
            by_expiry: txn.open_table(BY_EXPIRY).map_err(RegistryError::db)?,
            by_node: txn.open_table(BY_NODE).map_err(RegistryError::db)?,
            unverified: txn.open_table(UNVERIFIED).map_err(RegistryError::db)?,
            counters: txn.open_table(COUNTERS).map_err(RegistryError::db)?,
            groups: GroupIndex::open(txn)?,
            legacy_quota,
        })
    }

    /// Why a new legacy record from `source_ip` would exceed `limits`, if it would.
    ///
    /// # Errors
    /// Storage errors.
    pub fn legacy_refusal(
        &self,
        source_ip: &str,
        limits: LegacyLimits,
    ) -> Result<Option<ErrorReply>, RegistryError> {
        self.legacy_quota.refusal(source_ip, limits)
    }

    /// The row stored at `address`.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the stored bytes do not decode.
    pub fn get(&self, address: &str) -> Result<Option<StoredEntry>, RegistryError> {
        Ok(self.get_with_slot(address)?.map(|(entry, _)| entry))
    }

    /// The row stored at `address` and its slot in its fine group.
    fn get_with_slot(
        &self,
        address: &str,
    ) -> Result<Option<(StoredEntry, Option<u64>)>, RegistryError> {
        match self.peers.get(address).map_err(RegistryError::db)? {
            None => Ok(None),
            Some(bytes) => StoredEntry::decode_with_slot(address, bytes.value()).map(Some),
        }
    }

    /// The address of the signed record `node` holds now, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn node_address(&self, node: &[u8]) -> Result<Option<String>, RegistryError> {
        Ok(self
            .by_node
            .get(node)
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_string()))
    }

    /// Stores `stored`, replacing whatever was at its address; returns whether there was
    /// something.
    ///
    /// # Errors
    /// Storage errors.
    pub fn put(&mut self, stored: &StoredEntry) -> Result<bool, RegistryError> {
        let address = stored.entry.address();
        let old = self.get_with_slot(address)?;
        // A renewal in the same pool and group keeps its slot: no index rows change.
        let kept_slot = match &old {
            Some((o, slot)) if o.pool() == stored.pool() && o.group == stored.group => Some(*slot),
            _ => None,
        };
        // A renewal by the same owner (the same node, or a legacy record from the same IP)
        // keeps its owner rows too: rewriting a node row at a random key costs a B-tree
        // leaf written per renewal, for a row that does not change.
        let same_owner = old
            .as_ref()
            .is_some_and(|(o, _)| same_owner(&o.entry, &stored.entry));
        if let Some((old, slot)) = &old {
            self.unindex(address, old, *slot, kept_slot.is_none(), !same_owner)?;
        }
        let slot = match (kept_slot, stored.pool()) {
            (Some(slot), _) => slot,
            (None, Some(pool)) => Some(self.groups.insert(pool, &stored.group, address)?),
            (None, None) => None,
        };
        self.peers
            .insert(address, stored.encode(slot)?.as_slice())
            .map_err(RegistryError::db)?;
        self.by_expiry
            .insert((stored.entry.expires_at_ms(), address), ())
            .map_err(RegistryError::db)?;
        match &stored.entry {
            _ if same_owner => {}
            PeerEntry::Signed(rec) => {
                self.by_node
                    .insert(rec.node_id.0.as_slice(), address)
                    .map_err(RegistryError::db)?;
            }
            PeerEntry::Legacy(l) => self.legacy_quota.add(&l.registered_from, 1)?,
        }
        if stored.awaits_dial_back() {
            self.unverified
                .insert(address, ())
                .map_err(RegistryError::db)?;
        }
        if old.is_none() {
            self.bump_count(1)?;
        }
        Ok(old.is_some())
    }

    /// Removes the entry at `address` and every row about it; returns whether there was one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn remove(&mut self, address: &str) -> Result<bool, RegistryError> {
        let Some((old, slot)) = self.get_with_slot(address)? else {
            return Ok(false);
        };
        self.unindex(address, &old, slot, true, true)?;
        self.peers.remove(address).map_err(RegistryError::db)?;
        self.bump_count(-1)?;
        Ok(true)
    }

    /// Up to `limit` addresses whose expiry is at or before `now_ms`, earliest first, plus
    /// whether more are due.
    ///
    /// # Errors
    /// Storage errors.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<(Vec<String>, bool), RegistryError> {
        let mut due: Vec<String> = self
            .by_expiry
            .range((0u64, "")..=(now_ms, "\u{10FFFF}"))
            .map_err(RegistryError::db)?
            .take(limit.saturating_add(1))
            .map(|item| item.map(|(k, _)| k.value().1.to_string()))
            .collect::<Result<_, _>>()
            .map_err(RegistryError::db)?;
        let more = due.len() > limit;
        due.truncate(limit);
        Ok((due, more))
    }

    /// Removes the index rows of `old`, the entry at `address` (not the entry itself): its
    /// owner rows (node row, legacy count) if `owner_rows`, and its `slot` in the group
    /// index if `from_groups`.
    fn unindex(
        &mut self,
        address: &str,
        old: &StoredEntry,
        slot: Option<u64>,
        from_groups: bool,
        owner_rows: bool,
    ) -> Result<(), RegistryError> {
        self.by_expiry
            .remove((old.entry.expires_at_ms(), address))
            .map_err(RegistryError::db)?;
        match &old.entry {
            _ if !owner_rows => {}
            PeerEntry::Signed(rec) => {
                let key = rec.node_id.0.as_slice();
                if self.node_address(key)?.as_deref() == Some(address) {
                    self.by_node.remove(key).map_err(RegistryError::db)?;
                }
            }
            PeerEntry::Legacy(l) => self.legacy_quota.add(&l.registered_from, -1)?,
        }
        self.unverified.remove(address).map_err(RegistryError::db)?;
        let Some(pool) = old.pool().filter(|_| from_groups) else {
            return Ok(());
        };
        let slot = slot.ok_or_else(|| RegistryError::Corrupt {
            key: address.to_string(),
            reason: "an entry of a sampling pool has no slot in its row".to_string(),
        })?;
        if let Some((moved, to)) = self.groups.remove(pool, &old.group, address, slot)? {
            self.set_slot(&moved, to)?;
        }
        Ok(())
    }

    /// Rewrites the row of `address` with its new `slot` (another entry's removal moved it).
    fn set_slot(&mut self, address: &str, slot: u64) -> Result<(), RegistryError> {
        let (entry, _) = self
            .get_with_slot(address)?
            .ok_or_else(|| RegistryError::Corrupt {
                key: address.to_string(),
                reason: "the group index names an entry that is not stored".to_string(),
            })?;
        self.peers
            .insert(address, entry.encode(Some(slot))?.as_slice())
            .map_err(RegistryError::db)?;
        Ok(())
    }

    fn bump_count(&mut self, delta: i64) -> Result<(), RegistryError> {
        let current = self
            .counters
            .get(PEER_COUNT)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value());
        let next = current.saturating_add_signed(delta);
        self.counters
            .insert(PEER_COUNT, next)
            .map_err(RegistryError::db)?;
        Ok(())
    }
}

/// Whether `new` replaces `old` (at the same address) for the same owner: the same node's
/// signed record, or a legacy record registered from the same IP.
fn same_owner(old: &PeerEntry, new: &PeerEntry) -> bool {
    match (old, new) {
        (PeerEntry::Signed(o), PeerEntry::Signed(n)) => o.node_id == n.node_id,
        (PeerEntry::Legacy(o), PeerEntry::Legacy(n)) => o.registered_from == n.registered_from,
        _ => false,
    }
}
