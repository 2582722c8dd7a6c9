//! [`Tombstones`]: a node's seq high-water mark, kept after its record is gone.
//!
//! Without it, a signed record that someone captured could be registered again after its
//! owner deregistered it: with no record left, nothing would say its `seq` is old. So when the
//! registry drops a node's signed record while that record could still be live (a
//! deregistration, or a renewal or move to a record that expires sooner), it keeps
//! `node id → (highest seq dropped, latest expiry dropped)`. A register with `seq` at or
//! below a live tombstone's is refused with `stale_seq`. The leader's `Expire` sweep removes
//! tombstones once they expire, like records: after that, every record the registry has
//! seen with such a `seq` has expired too.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::registry_tables::{TOMBSTONES, TOMBSTONES_BY_EXPIRY};
use super::RegistryError;
use crate::record::NodeId;

/// What is remembered about a node whose record was dropped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Records with this `seq` or lower are refused.
    pub seq: u64,
    /// Until this time (the latest expiry among the records it stands for).
    pub expires_at_ms: u64,
}

impl Tombstone {
    /// Whether the tombstone still refuses old records at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// The tombstone tables opened for writing.
pub struct Tombstones<'t> {
    by_node: Table<'t, &'static [u8], (u64, u64)>,
    by_expiry: Table<'t, (u64, &'static [u8]), ()>,
}

impl<'t> Tombstones<'t> {
    /// Opens the tombstone tables of `txn`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        Ok(Self {
            by_node: txn.open_table(TOMBSTONES).map_err(RegistryError::db)?,
            by_expiry: txn
                .open_table(TOMBSTONES_BY_EXPIRY)
                .map_err(RegistryError::db)?,
        })
    }

    /// The tombstone of `node`, live or not.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, node: &NodeId) -> Result<Option<Tombstone>, RegistryError> {
        Ok(self
            .by_node
            .get(node.0.as_slice())
            .map_err(RegistryError::db)?
            .map(|v| {
                let (seq, expires_at_ms) = v.value();
                Tombstone { seq, expires_at_ms }
            }))
    }

    /// Raises `node`'s tombstone to cover `t`: the higher seq and the later expiry win.
    ///
    /// # Errors
    /// Storage errors.
    pub fn raise(&mut self, node: &NodeId, t: Tombstone) -> Result<(), RegistryError> {
        let key = node.0.as_slice();
        let merged = match self.get(node)? {
            Some(old) => {
                self.by_expiry
                    .remove((old.expires_at_ms, key))
                    .map_err(RegistryError::db)?;
                Tombstone {
                    seq: old.seq.max(t.seq),
                    expires_at_ms: old.expires_at_ms.max(t.expires_at_ms),
                }
            }
            None => t,
        };
        self.by_node
            .insert(key, (merged.seq, merged.expires_at_ms))
            .map_err(RegistryError::db)?;
        self.by_expiry
            .insert((merged.expires_at_ms, key), ())
            .map_err(RegistryError::db)?;
        Ok(())
    }

    /// Removes up to `limit` tombstones that expire at or before `now_ms`, earliest first.
    /// Returns how many were removed and whether more are due.
    ///
    /// # Errors
    /// Storage errors.
    pub fn expire(&mut self, now_ms: u64, limit: usize) -> Result<(u32, bool), RegistryError> {
        let end: &[u8] = &[0xff; 33];
        let due: Vec<(u64, Vec<u8>)> = self
            .by_expiry
            .range((0u64, &[][..])..=(now_ms, end))
            .map_err(RegistryError::db)?
            .take(limit.saturating_add(1))
            .map(|item| item.map(|(k, _)| (k.value().0, k.value().1.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(RegistryError::db)?;
        let more = due.len() > limit;
        let mut removed = 0;
        for (at, node) in due.into_iter().take(limit) {
            self.by_expiry
                .remove((at, node.as_slice()))
                .map_err(RegistryError::db)?;
            self.by_node
                .remove(node.as_slice())
                .map_err(RegistryError::db)?;
            removed += 1;
        }
        Ok((removed, more))
    }
}
