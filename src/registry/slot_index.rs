//! [`SlotIndex`]: numbers the stored entries densely, `0..n`, so that a sample can draw
//! uniform random entries with point lookups instead of walking a fixed order.
//!
//! An insert takes slot `n`. A removal moves the entry in the last slot into the freed one
//! ("swap remove"), so the slots stay `0..n-1` with no holes. Both steps depend only on the
//! tables, so every replica that applies the same log assigns the same slots, and snapshots
//! carry each entry's slot so an installed snapshot agrees too.

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::registry_tables::{BY_SLOT, SLOT_OF};
use super::RegistryError;

/// The slot tables opened for writing.
pub struct SlotIndex<'t> {
    by_slot: Table<'t, u64, &'static str>,
    slot_of: Table<'t, &'static str, u64>,
}

impl<'t> SlotIndex<'t> {
    /// Opens the slot tables of `txn`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        Ok(Self {
            by_slot: txn.open_table(BY_SLOT).map_err(RegistryError::db)?,
            slot_of: txn.open_table(SLOT_OF).map_err(RegistryError::db)?,
        })
    }

    /// Number of slots in use (= stored entries).
    ///
    /// # Errors
    /// Storage errors.
    pub fn len(&self) -> Result<u64, RegistryError> {
        self.by_slot.len().map_err(RegistryError::db)
    }

    /// Whether no slot is in use.
    ///
    /// # Errors
    /// Storage errors.
    pub fn is_empty(&self) -> Result<bool, RegistryError> {
        Ok(self.len()? == 0)
    }

    /// Gives `address` the next free slot, `n`; returns it.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if `address` already has a slot.
    pub fn append(&mut self, address: &str) -> Result<u64, RegistryError> {
        let slot = self.len()?;
        self.restore(slot, address)?;
        Ok(slot)
    }

    /// Frees `address`'s slot, moving the entry in the last slot into it. Returns the freed
    /// slot, or `None` if `address` had none.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the two tables disagree.
    pub fn remove(&mut self, address: &str) -> Result<Option<u64>, RegistryError> {
        let slot = match self.slot_of.remove(address).map_err(RegistryError::db)? {
            Some(s) => s.value(),
            None => return Ok(None),
        };
        let last = self.len()?.checked_sub(1).ok_or_else(|| corrupt(address))?;
        let moved = self
            .by_slot
            .remove(last)
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_string())
            .ok_or_else(|| corrupt(address))?;
        if slot != last {
            self.by_slot
                .insert(slot, moved.as_str())
                .map_err(RegistryError::db)?;
            self.slot_of
                .insert(moved.as_str(), slot)
                .map_err(RegistryError::db)?;
        } else if moved != address {
            return Err(corrupt(address));
        }
        Ok(Some(slot))
    }

    /// Puts `address` in `slot` (rebuilding from a snapshot, which carries the slots).
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the slot or the address is taken.
    pub fn restore(&mut self, slot: u64, address: &str) -> Result<(), RegistryError> {
        let slot_taken = self
            .by_slot
            .insert(slot, address)
            .map_err(RegistryError::db)?
            .is_some();
        let address_taken = self
            .slot_of
            .insert(address, slot)
            .map_err(RegistryError::db)?
            .is_some();
        if slot_taken || address_taken {
            return Err(RegistryError::Corrupt {
                key: address.to_string(),
                reason: format!("slot {slot} or the address already in the slot index"),
            });
        }
        Ok(())
    }

    /// Checks that the slots in use are exactly `0..n` (after a snapshot was restored).
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`] if there is a hole.
    pub fn check_dense(&self) -> Result<(), RegistryError> {
        let n = self.len()?;
        let last = self
            .by_slot
            .last()
            .map_err(RegistryError::db)?
            .map(|(k, _)| k.value());
        // Slots are unique keys, so `n` of them ending at `n - 1` are exactly 0..n.
        match last {
            None if n == 0 => Ok(()),
            Some(l) if l + 1 == n => Ok(()),
            _ => Err(RegistryError::Corrupt {
                key: String::new(),
                reason: format!("slot index has holes: {n} slots, last is {last:?}"),
            }),
        }
    }
}

fn corrupt(address: &str) -> RegistryError {
    RegistryError::Corrupt {
        key: address.to_string(),
        reason: "slot index out of step with its reverse mapping".to_string(),
    }
}
