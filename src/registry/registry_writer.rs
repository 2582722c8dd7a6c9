//! [`RegistryWriter`]: applies [`RegistryCommand`]s inside one redb write transaction.
//!
//! Everything here is a pure function of the current tables and the command (no clock, no
//! randomness, no name resolution: a command carries what its proposer resolved), so every
//! replica that applies the same log ends in the same state.

use std::net::IpAddr;

use redb::WriteTransaction;

use super::entry_store::EntryStore;
use super::tombstones::{Tombstone, Tombstones};
use super::{
    CommandOutcome, HostGroup, PeerEntry, RegistryCommand, RegistryError, SnapshotItem, StoredEntry,
};
use crate::record::{Deregistration, NodeId, PeerRecord};
use crate::wire::{ErrorCode, ErrorReply};

mod legacy_commands;

/// The registry's tables opened for writing.
pub struct RegistryWriter<'t> {
    entries: EntryStore<'t>,
    tombstones: Tombstones<'t>,
}

impl<'t> RegistryWriter<'t> {
    /// Opens (creating if needed) every registry table in `txn`.
    ///
    /// # Errors
    /// Storage errors from redb.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        Ok(Self {
            entries: EntryStore::open(txn)?,
            tombstones: Tombstones::open(txn)?,
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
            RegistryCommand::Register(rec) => self.register(now_ms, rec, None, false),
            RegistryCommand::RegisterSigned {
                record,
                resolved,
                verified,
            } => self.register(now_ms, record, *resolved, *verified),
            RegistryCommand::RegisterLegacy {
                address,
                source_ip,
                expires_at_ms,
                resolved,
                limits,
            } => self.register_legacy(
                now_ms,
                address,
                source_ip,
                *expires_at_ms,
                (*resolved, *limits),
            ),
            RegistryCommand::Deregister(d) => self.deregister(d),
            RegistryCommand::RemoveLegacy { address, source_ip } => {
                self.remove_legacy(address, source_ip)
            }
            RegistryCommand::MarkVerified {
                address,
                node_id,
                seq,
            } => self.mark_verified(address, node_id, *seq),
            RegistryCommand::Expire { limit } => self.expire(now_ms, *limit),
        }
    }

    fn register(
        &mut self,
        now_ms: u64,
        rec: &PeerRecord,
        resolved: Option<IpAddr>,
        verified: bool,
    ) -> Result<CommandOutcome, RegistryError> {
        if let Some(refusal) = self.register_refusal(now_ms, rec)? {
            return Ok(refusal);
        }
        let (replaced, kept) = match self.entries.get(&rec.address)? {
            None => (false, false),
            Some(StoredEntry {
                entry: PeerEntry::Signed(old),
                verified,
                ..
            }) if old.node_id == rec.node_id => {
                self.supersede(&old, rec)?;
                // A renewal at the same address keeps its verification.
                (true, verified)
            }
            Some(_) => (true, false),
        };
        // A node holds one record: registering at a new address drops its older one, and
        // the new address needs a dial-back of its own.
        let mut moved_from = None;
        if let Some(old_addr) = self.node_address(rec)?.filter(|a| *a != rec.address) {
            if let Some(PeerEntry::Signed(old)) = self.get(&old_addr)? {
                if old.node_id == rec.node_id {
                    self.supersede(&old, rec)?;
                    self.entries.remove(&old_addr)?;
                    moved_from = Some(old_addr);
                }
            }
        }
        self.entries.put(&StoredEntry {
            entry: PeerEntry::Signed(rec.clone()),
            group: HostGroup::of(&rec.address, resolved),
            verified: verified || kept,
        })?;
        Ok(CommandOutcome::Registered {
            replaced,
            moved_from,
        })
    }

    /// Puts the record at `address` in the node pool if `node` still holds it with `seq` or
    /// a later one (a renewal since the dial-back is the same node at the same address).
    fn mark_verified(
        &mut self,
        address: &str,
        node: &NodeId,
        seq: u64,
    ) -> Result<CommandOutcome, RegistryError> {
        match self.entries.get(address)? {
            Some(mut stored) => match &stored.entry {
                PeerEntry::Signed(rec) if rec.node_id == *node && rec.seq >= seq => {
                    if !stored.verified {
                        stored.verified = true;
                        self.entries.put(&stored)?;
                    }
                    Ok(CommandOutcome::Verified)
                }
                _ => Ok(refused(
                    ErrorCode::NotFound,
                    format!("{address} no longer holds node {node}'s record seq {seq}"),
                )),
            },
            None => Ok(refused(
                ErrorCode::NotFound,
                format!("{address} is not registered"),
            )),
        }
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
        self.entries.node_address(rec.node_id.0.as_slice())
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
                self.entries.remove(&d.address)?;
                Ok(CommandOutcome::Removed)
            }
            Some(_) => Ok(refused(
                ErrorCode::NotOwner,
                format!("{} is not registered by node {}", d.address, d.node_id),
            )),
        }
    }

    /// Removes up to `limit` due records, earliest first, then due tombstones with what is
    /// left of `limit`. `removed` counts both.
    fn expire(&mut self, now_ms: u64, limit: u32) -> Result<CommandOutcome, RegistryError> {
        let limit = limit as usize;
        let (due, mut more) = self.entries.due(now_ms, limit)?;
        let mut removed = 0u32;
        for address in due {
            self.entries.remove(&address)?;
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

    /// Rebuilds one item of a snapshot into an empty registry.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] for an undecodable entry or an address
    /// that appears twice.
    pub fn restore(&mut self, item: &SnapshotItem) -> Result<(), RegistryError> {
        match item {
            SnapshotItem::Entry { address, row } => {
                let stored = StoredEntry::decode(address, row)?;
                if self.entries.put(&stored)? {
                    return Err(RegistryError::Corrupt {
                        key: stored.entry.address().to_string(),
                        reason: "address appears twice in the snapshot".to_string(),
                    });
                }
                Ok(())
            }
            SnapshotItem::Tombstone { node_id, tombstone } => {
                self.tombstones.raise(node_id, *tombstone)
            }
        }
    }

    /// The entry stored at `address`.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the stored bytes do not decode.
    pub fn get(&self, address: &str) -> Result<Option<PeerEntry>, RegistryError> {
        Ok(self.entries.get(address)?.map(|s| s.entry))
    }
}

fn stale(rec: &PeerRecord, old: &PeerRecord) -> CommandOutcome {
    refused(
        ErrorCode::StaleSeq,
        format!("seq {} is not newer than stored seq {}", rec.seq, old.seq),
    )
}

fn refused(code: ErrorCode, message: impl Into<String>) -> CommandOutcome {
    CommandOutcome::Refused(ErrorReply::new(code, message))
}
