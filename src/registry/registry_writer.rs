//! [`RegistryWriter`]: applies [`RegistryCommand`]s inside one redb write transaction.
//!
//! Everything here is a pure function of the current tables and the command (no clock, no
//! randomness), so every replica that applies the same log ends in the same state.

use redb::{ReadableTable, Table, WriteTransaction};

use super::legacy_quota::{LegacyLimits, LegacyQuota};
use super::registry_tables::{BY_EXPIRY, BY_NODE, COUNTERS, PEERS, PEER_COUNT};
use super::slot_index::SlotIndex;
use super::tombstones::{Tombstone, Tombstones};
use super::{
    CommandOutcome, LegacyRecord, PeerEntry, RegistryCommand, RegistryError, SnapshotItem,
};
use crate::record::{Deregistration, PeerRecord};
use crate::wire::{ErrorCode, ErrorReply};

/// The registry's tables opened for writing.
pub struct RegistryWriter<'t> {
    peers: Table<'t, &'static str, &'static [u8]>,
    by_expiry: Table<'t, (u64, &'static str), ()>,
    by_node: Table<'t, &'static [u8], &'static str>,
    counters: Table<'t, &'static str, u64>,
    slots: SlotIndex<'t>,
    tombstones: Tombstones<'t>,
    legacy_quota: LegacyQuota<'t>,
}

impl<'t> RegistryWriter<'t> {
    /// Opens (creating if needed) every registry table in `txn`.
    ///
    /// # Errors
    /// Storage errors from redb.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        // First: counting a registry without counts reads `peers` on its own.
        let legacy_quota = LegacyQuota::open(txn)?;
        Ok(Self {
            peers: txn.open_table(PEERS).map_err(RegistryError::db)?,
            by_expiry: txn.open_table(BY_EXPIRY).map_err(RegistryError::db)?,
            by_node: txn.open_table(BY_NODE).map_err(RegistryError::db)?,
            counters: txn.open_table(COUNTERS).map_err(RegistryError::db)?,
            slots: SlotIndex::open(txn)?,
            tombstones: Tombstones::open(txn)?,
            legacy_quota,
        })
    }

    /// Applies one command as of `now_ms` (the batch's proposer time).
    ///
    /// # Errors
    /// Storage errors only; a refused command is an `Ok(CommandOutcome::Refused(..))`.
    pub fn apply(
        &mut self,
        now_ms: u64,
        cmd: &RegistryCommand,
    ) -> Result<CommandOutcome, RegistryError> {
        match cmd {
            RegistryCommand::Register(rec) => self.register(now_ms, rec),
            RegistryCommand::RegisterLegacy {
                address,
                source_ip,
                expires_at_ms,
                limits,
            } => self.register_legacy(now_ms, address, source_ip, *expires_at_ms, *limits),
            RegistryCommand::Deregister(d) => self.deregister(d),
            RegistryCommand::RemoveLegacy { address, source_ip } => {
                self.remove_legacy(address, source_ip)
            }
            RegistryCommand::Expire { limit } => self.expire(now_ms, *limit),
        }
    }

    fn register(&mut self, now_ms: u64, rec: &PeerRecord) -> Result<CommandOutcome, RegistryError> {
        if let Some(refusal) = self.register_refusal(now_ms, rec)? {
            return Ok(refusal);
        }
        let replaced = match self.get(&rec.address)? {
            None => false,
            Some(PeerEntry::Signed(old)) if old.node_id == rec.node_id => {
                self.supersede(&old, rec)?;
                true
            }
            Some(_) => true,
        };
        // A node holds one record: registering at a new address drops its older one.
        if let Some(old_addr) = self.node_address(rec)?.filter(|a| *a != rec.address) {
            if let Some(PeerEntry::Signed(old)) = self.get(&old_addr)? {
                if old.node_id == rec.node_id {
                    self.supersede(&old, rec)?;
                    self.remove_entry(&old_addr)?;
                }
            }
        }
        self.put(&PeerEntry::Signed(rec.clone()))?;
        Ok(CommandOutcome::Registered { replaced })
    }

    /// Why `rec` may not be stored at `now_ms`, if it may not: every check happens before
    /// anything is changed.
    fn register_refusal(
        &self,
        now_ms: u64,
        rec: &PeerRecord,
    ) -> Result<Option<CommandOutcome>, RegistryError> {
        if rec.expires_at_ms <= now_ms {
            return Ok(Some(refused(
                ErrorCode::InvalidRecord,
                format!(
                    "record expired at {} ms (batch time {now_ms} ms)",
                    rec.expires_at_ms
                ),
            )));
        }
        if let Some(refusal) = self.tombstone_refusal(now_ms, rec)? {
            return Ok(Some(refusal));
        }
        match self.get(&rec.address)? {
            Some(PeerEntry::Signed(old)) if old.node_id == rec.node_id && rec.seq <= old.seq => {
                return Ok(Some(stale(rec, &old)));
            }
            Some(PeerEntry::Signed(old))
                if old.node_id != rec.node_id && old.expires_at_ms > now_ms =>
            {
                return Ok(Some(refused(
                    ErrorCode::NotOwner,
                    format!(
                        "{} is held by node {} until it expires",
                        rec.address, old.node_id
                    ),
                )));
            }
            _ => {}
        }
        if let Some(old_addr) = self.node_address(rec)?.filter(|a| *a != rec.address) {
            if let Some(PeerEntry::Signed(old)) = self.get(&old_addr)? {
                if old.node_id == rec.node_id && old.seq >= rec.seq {
                    return Ok(Some(stale(rec, &old)));
                }
            }
        }
        Ok(None)
    }

    /// `stale_seq` if `rec`'s node has a live tombstone at or above `rec.seq`.
    fn tombstone_refusal(
        &self,
        now_ms: u64,
        rec: &PeerRecord,
    ) -> Result<Option<CommandOutcome>, RegistryError> {
        Ok(self
            .tombstones
            .get(&rec.node_id)?
            .filter(|t| t.is_live(now_ms) && rec.seq <= t.seq)
            .map(|t| {
                refused(
                    ErrorCode::StaleSeq,
                    format!(
                        "seq {} is not newer than seq {} of node {}'s dropped record \
                         (deregistered or superseded; remembered until {} ms)",
                        rec.seq, t.seq, rec.node_id, t.expires_at_ms
                    ),
                )
            }))
    }

    /// The address of the signed record `rec`'s node holds now, if any.
    fn node_address(&self, rec: &PeerRecord) -> Result<Option<String>, RegistryError> {
        Ok(self
            .by_node
            .get(rec.node_id.0.as_slice())
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_string()))
    }

    /// `old` is being replaced by its node's newer record `new`. If `old` would outlive `new`,
    /// a tombstone keeps refusing `old`'s seq until `old` expires, so that `old` cannot be
    /// replayed once `new` is gone.
    fn supersede(&mut self, old: &PeerRecord, new: &PeerRecord) -> Result<(), RegistryError> {
        if old.expires_at_ms > new.expires_at_ms {
            self.tombstones.raise(
                &old.node_id,
                Tombstone {
                    seq: old.seq,
                    expires_at_ms: old.expires_at_ms,
                },
            )?;
        }
        Ok(())
    }

    fn register_legacy(
        &mut self,
        now_ms: u64,
        address: &str,
        source_ip: &str,
        expires_at_ms: u64,
        limits: LegacyLimits,
    ) -> Result<CommandOutcome, RegistryError> {
        match self.get(address)? {
            Some(PeerEntry::Legacy(mut old)) => {
                // Only the IP that registered it keeps it alive (and only it may remove it).
                if old.registered_from == source_ip {
                    old.expires_at_ms = old.expires_at_ms.max(expires_at_ms);
                    self.put(&PeerEntry::Legacy(old))?;
                }
                Ok(CommandOutcome::AlreadyRegistered)
            }
            Some(PeerEntry::Signed(old)) if old.expires_at_ms > now_ms => {
                Ok(CommandOutcome::AlreadyRegistered)
            }
            existing => {
                // Only a new record counts against the quota; a refresh above does not.
                if let Some(reply) = self.legacy_quota.refusal(source_ip, limits)? {
                    return Ok(CommandOutcome::Refused(reply));
                }
                self.put(&PeerEntry::Legacy(LegacyRecord {
                    address: address.to_string(),
                    registered_from: source_ip.to_string(),
                    expires_at_ms,
                }))?;
                Ok(CommandOutcome::Registered {
                    replaced: existing.is_some(),
                })
            }
        }
    }

    fn deregister(&mut self, d: &Deregistration) -> Result<CommandOutcome, RegistryError> {
        match self.get(&d.address)? {
            None => Ok(refused(
                ErrorCode::NotFound,
                format!("{} is not registered", d.address),
            )),
            Some(PeerEntry::Signed(old)) if old.node_id == d.node_id => {
                if d.seq < old.seq {
                    return Ok(refused(
                        ErrorCode::StaleSeq,
                        format!(
                            "deregistration seq {} is older than record seq {}",
                            d.seq, old.seq
                        ),
                    ));
                }
                // The record is gone, but its seq must stay refused while it could live.
                self.tombstones.raise(
                    &d.node_id,
                    Tombstone {
                        seq: d.seq,
                        expires_at_ms: old.expires_at_ms,
                    },
                )?;
                self.remove_entry(&d.address)?;
                Ok(CommandOutcome::Removed)
            }
            Some(_) => Ok(refused(
                ErrorCode::NotOwner,
                format!("{} is not registered by node {}", d.address, d.node_id),
            )),
        }
    }

    fn remove_legacy(
        &mut self,
        address: &str,
        source_ip: &str,
    ) -> Result<CommandOutcome, RegistryError> {
        match self.get(address)? {
            None => Ok(refused(ErrorCode::NotFound, "Peer not found")),
            Some(PeerEntry::Legacy(old)) if old.registered_from == source_ip => {
                self.remove_entry(address)?;
                Ok(CommandOutcome::Removed)
            }
            Some(PeerEntry::Legacy(_)) => Ok(refused(
                ErrorCode::NotOwner,
                "Peer not removed: it was registered from another IP",
            )),
            Some(PeerEntry::Signed(_)) => Ok(refused(
                ErrorCode::NotOwner,
                "Peer not removed: it is a signed record; only its owner can remove it",
            )),
        }
    }

    /// Removes up to `limit` due records, earliest first, then due tombstones with what is
    /// left of `limit`. `removed` counts both.
    fn expire(&mut self, now_ms: u64, limit: u32) -> Result<CommandOutcome, RegistryError> {
        let limit = limit as usize;
        let due: Vec<String> = self
            .by_expiry
            .range((0u64, "")..=(now_ms, "\u{10FFFF}"))
            .map_err(RegistryError::db)?
            .take(limit.saturating_add(1))
            .map(|item| item.map(|(k, _)| k.value().1.to_string()))
            .collect::<Result<_, _>>()
            .map_err(RegistryError::db)?;
        let mut more = due.len() > limit;
        let mut removed = 0u32;
        for address in due.into_iter().take(limit) {
            self.remove_entry(&address)?;
            removed += 1;
        }
        let left = limit.saturating_sub(removed as usize);
        let (tombstones, tombstones_more) = self.tombstones.expire(now_ms, left)?;
        more |= tombstones_more;
        Ok(CommandOutcome::Expired {
            removed: removed + tombstones,
            more,
        })
    }

    /// Rebuilds one item of a snapshot into an empty registry: an entry goes into the slot
    /// the snapshot gives it. Call [`Self::finish_restore`] after the last item.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] for an undecodable entry or a slot or
    /// address that is already taken.
    pub fn restore(&mut self, item: &SnapshotItem) -> Result<(), RegistryError> {
        match item {
            SnapshotItem::Peer { slot, entry } => {
                let entry = decode_entry("<snapshot>", entry)?;
                if self.index(&entry)? {
                    return Err(RegistryError::Corrupt {
                        key: entry.address().to_string(),
                        reason: "address appears twice in the snapshot".to_string(),
                    });
                }
                self.slots.restore(*slot, entry.address())?;
                self.bump_count(1)
            }
            SnapshotItem::Tombstone { node_id, tombstone } => {
                self.tombstones.raise(node_id, *tombstone)
            }
        }
    }

    /// Checks, after the last [`Self::restore`], that the slots are exactly `0..n`.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`] if the snapshot left holes in the slot index.
    pub fn finish_restore(&self) -> Result<(), RegistryError> {
        self.slots.check_dense()
    }

    /// The entry stored at `address`.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the stored bytes do not decode.
    pub fn get(&self, address: &str) -> Result<Option<PeerEntry>, RegistryError> {
        match self.peers.get(address).map_err(RegistryError::db)? {
            None => Ok(None),
            Some(bytes) => decode_entry(address, bytes.value()).map(Some),
        }
    }

    /// Stores `entry`, replacing whatever was at its address (which keeps its slot); a new
    /// address takes the next slot.
    fn put(&mut self, entry: &PeerEntry) -> Result<(), RegistryError> {
        if !self.index(entry)? {
            self.slots.append(entry.address())?;
            self.bump_count(1)?;
        }
        Ok(())
    }

    /// Writes `entry` and its expiry and node rows, replacing whatever was at its address.
    /// Returns whether there was an entry (the slot and the count are the caller's).
    fn index(&mut self, entry: &PeerEntry) -> Result<bool, RegistryError> {
        let address = entry.address();
        let existed = self.unindex(address)?;
        let bytes = rmp_serde::to_vec_named(entry).map_err(|e| RegistryError::Corrupt {
            key: address.to_string(),
            reason: e.to_string(),
        })?;
        self.peers
            .insert(address, bytes.as_slice())
            .map_err(RegistryError::db)?;
        self.by_expiry
            .insert((entry.expires_at_ms(), address), ())
            .map_err(RegistryError::db)?;
        match entry {
            PeerEntry::Signed(rec) => {
                self.by_node
                    .insert(rec.node_id.0.as_slice(), address)
                    .map_err(RegistryError::db)?;
            }
            PeerEntry::Legacy(l) => self.legacy_quota.add(&l.registered_from, 1)?,
        }
        Ok(existed)
    }

    fn remove_entry(&mut self, address: &str) -> Result<(), RegistryError> {
        if self.unindex(address)? {
            self.peers.remove(address).map_err(RegistryError::db)?;
            self.slots.remove(address)?;
            self.bump_count(-1)?;
        }
        Ok(())
    }

    /// Removes the expiry and node rows of the entry at `address`; returns whether there was
    /// one.
    fn unindex(&mut self, address: &str) -> Result<bool, RegistryError> {
        let Some(old) = self.get(address)? else {
            return Ok(false);
        };
        self.by_expiry
            .remove((old.expires_at_ms(), address))
            .map_err(RegistryError::db)?;
        if let PeerEntry::Legacy(l) = &old {
            self.legacy_quota.add(&l.registered_from, -1)?;
        }
        if let PeerEntry::Signed(rec) = &old {
            let owns = self
                .by_node
                .get(rec.node_id.0.as_slice())
                .map_err(RegistryError::db)?
                .is_some_and(|a| a.value() == address);
            if owns {
                self.by_node
                    .remove(rec.node_id.0.as_slice())
                    .map_err(RegistryError::db)?;
            }
        }
        Ok(true)
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

fn stale(rec: &PeerRecord, old: &PeerRecord) -> CommandOutcome {
    refused(
        ErrorCode::StaleSeq,
        format!("seq {} is not newer than stored seq {}", rec.seq, old.seq),
    )
}

/// Decodes a stored entry.
///
/// # Errors
/// [`RegistryError::Corrupt`].
pub fn decode_entry(address: &str, bytes: &[u8]) -> Result<PeerEntry, RegistryError> {
    rmp_serde::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
        key: address.to_string(),
        reason: e.to_string(),
    })
}

fn refused(code: ErrorCode, message: impl Into<String>) -> CommandOutcome {
    CommandOutcome::Refused(ErrorReply::new(code, message))
}
