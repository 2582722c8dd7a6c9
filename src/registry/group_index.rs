//! [`GroupIndex`]: per pool, a three-level index of dense slots — the pool's coarse subnet
//! groups (`/16`, `/32`), within each its fine groups (`/24`, `/48`), within each its
//! entries — so that a sample can draw a group, then a group within it, then an entry, each
//! a uniform point lookup, and one crowded subnet cannot outweigh a hundred sparse ones.
//!
//! Every level is a dense set `0..n` under a *scope* (the pool, `pool|outer`, or
//! `pool|outer|inner`). An insert takes slot `n`; a removal moves the member in the last
//! slot into the freed one ("swap remove"), so there are no holes. A scope that becomes
//! empty is removed from its parent. Every step depends only on the tables, so replicas that
//! apply the same log hold the same sets; an installed snapshot rebuilds the same sets,
//! possibly in other slots, which a uniform draw cannot tell apart.

use redb::{ReadableTable, Table, WriteTransaction};

use super::registry_tables::{GROUP_SIZES, GROUP_SLOTS, GROUP_SLOT_OF};
use super::{HostGroup, Pool, RegistryError};

/// The scopes an entry of `group` in `pool` sits in, top first: the pool, its coarse group,
/// its fine group.
pub fn scopes(pool: Pool, group: &HostGroup) -> [String; 3] {
    let outer = format!("{}|{}", pool.key(), group.outer());
    let inner = format!("{outer}|{}", group.inner());
    [pool.key().to_string(), outer, inner]
}

/// The group index tables opened for writing.
pub struct GroupIndex<'t> {
    slots: Table<'t, (&'static str, u64), &'static str>,
    slot_of: Table<'t, (&'static str, &'static str), u64>,
    sizes: Table<'t, &'static str, u64>,
}

impl<'t> GroupIndex<'t> {
    /// Opens the index tables of `txn`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        Ok(Self {
            slots: txn.open_table(GROUP_SLOTS).map_err(RegistryError::db)?,
            slot_of: txn.open_table(GROUP_SLOT_OF).map_err(RegistryError::db)?,
            sizes: txn.open_table(GROUP_SIZES).map_err(RegistryError::db)?,
        })
    }

    /// Adds `address` to `pool` under `group`, adding the groups to their parents if they
    /// were empty.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if it is already there.
    pub fn insert(
        &mut self,
        pool: Pool,
        group: &HostGroup,
        address: &str,
    ) -> Result<(), RegistryError> {
        let [root, outer, inner] = scopes(pool, group);
        if self.add(&inner, address)? && self.add(&outer, &group.inner())? {
            self.add(&root, &group.outer())?;
        }
        Ok(())
    }

    /// Removes `address` from `pool` under `group`, removing groups left empty.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the tables disagree.
    pub fn remove(
        &mut self,
        pool: Pool,
        group: &HostGroup,
        address: &str,
    ) -> Result<(), RegistryError> {
        let [root, outer, inner] = scopes(pool, group);
        if self.take(&inner, address)? && self.take(&outer, &group.inner())? {
            self.take(&root, &group.outer())?;
        }
        Ok(())
    }

    fn size(&self, scope: &str) -> Result<u64, RegistryError> {
        Ok(self
            .sizes
            .get(scope)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value()))
    }

    fn set_size(&mut self, scope: &str, n: u64) -> Result<(), RegistryError> {
        if n == 0 {
            self.sizes.remove(scope).map_err(RegistryError::db)?;
        } else {
            self.sizes.insert(scope, n).map_err(RegistryError::db)?;
        }
        Ok(())
    }

    /// Puts `member` in the next slot of `scope`; returns whether the scope was empty.
    fn add(&mut self, scope: &str, member: &str) -> Result<bool, RegistryError> {
        let n = self.size(scope)?;
        let taken = self
            .slot_of
            .insert((scope, member), n)
            .map_err(RegistryError::db)?
            .is_some();
        if taken {
            return Err(corrupt(scope, member, "already indexed"));
        }
        self.slots
            .insert((scope, n), member)
            .map_err(RegistryError::db)?;
        self.set_size(scope, n + 1)?;
        Ok(n == 0)
    }

    /// Frees `member`'s slot in `scope`, moving the last member into it; returns whether the
    /// scope is now empty.
    fn take(&mut self, scope: &str, member: &str) -> Result<bool, RegistryError> {
        let slot = self
            .slot_of
            .remove((scope, member))
            .map_err(RegistryError::db)?
            .map(|s| s.value())
            .ok_or_else(|| corrupt(scope, member, "not indexed"))?;
        let last = self
            .size(scope)?
            .checked_sub(1)
            .ok_or_else(|| corrupt(scope, member, "empty scope"))?;
        let moved = self
            .slots
            .remove((scope, last))
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_string())
            .ok_or_else(|| corrupt(scope, member, "last slot empty"))?;
        if slot != last {
            self.slots
                .insert((scope, slot), moved.as_str())
                .map_err(RegistryError::db)?;
            self.slot_of
                .insert((scope, moved.as_str()), slot)
                .map_err(RegistryError::db)?;
        } else if moved != member {
            return Err(corrupt(scope, member, "last slot names another member"));
        }
        self.set_size(scope, last)?;
        Ok(last == 0)
    }
}

fn corrupt(scope: &str, member: &str, what: &str) -> RegistryError {
    RegistryError::Corrupt {
        key: format!("{scope} / {member}"),
        reason: format!("group index out of step: {what}"),
    }
}
