//! [`GroupIndex`]: per pool, a three-level index of dense slots — the pool's coarse subnet
//! groups (`/16`, `/32`), within each its fine groups (`/24`, `/48`), within each its
//! entries — so that a sample can draw a group, then a group within it, then an entry, each
//! a uniform point lookup, and one crowded subnet cannot outweigh a hundred sparse ones.
//!
//! Every level is a dense set `0..n` under a *scope*: the pool's key, then that followed by
//! the coarse group's key, then that followed by the fine group's key (bytes, see
//! [`HostGroup::outer_key`]; a child's scope is its parent's scope followed by the child's
//! member key). An insert takes slot `n`; a removal moves the member in the last
//! slot into the freed one ("swap remove"), so there are no holes. The two upper levels keep
//! each member's slot in `group_slot_of`; an entry's slot is kept in its own row (see
//! [`super::StoredEntry::encode`]), so inserts hand it back and removals take it and name the
//! entry that moved, whose row the caller rewrites. A scope that becomes
//! empty is removed from its parent. Every step depends only on the tables, so replicas that
//! apply the same log hold the same sets; an installed snapshot rebuilds the same sets,
//! possibly in other slots, which a uniform draw cannot tell apart.

use redb::{ReadableTable, Table, WriteTransaction};

use super::registry_tables::{GROUP_SIZES, GROUP_SLOTS, GROUP_SLOT_OF};
use super::{HostGroup, Pool, RegistryError};

/// The scopes an entry of `group` in `pool` sits in, top first: the pool, its coarse group,
/// its fine group.
pub fn scopes(pool: Pool, group: &HostGroup) -> [Vec<u8>; 3] {
    let outer = [pool.key(), &group.outer_key()].concat();
    let inner = [outer.as_slice(), &group.inner_key()].concat();
    [pool.key().to_vec(), outer, inner]
}

/// Whether `scope` is a fine group's (its members are entries' addresses): a pool key, a
/// family tag, then one byte of each group (unresolved), two and one (IPv4) or four and two
/// (IPv6).
pub fn is_entry_scope(scope: &[u8]) -> bool {
    matches!(
        (scope.get(1), scope.len()),
        (Some(0), 3) | (Some(4), 5) | (Some(6), 8)
    )
}

/// The group index tables opened for writing.
pub struct GroupIndex<'t> {
    slots: Table<'t, (&'static [u8], u64), &'static [u8]>,
    slot_of: Table<'t, (&'static [u8], &'static [u8]), u64>,
    sizes: Table<'t, &'static [u8], u64>,
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
    /// were empty; returns the entry's slot, for its row.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if a group is already there.
    pub fn insert(
        &mut self,
        pool: Pool,
        group: &HostGroup,
        address: &str,
    ) -> Result<u64, RegistryError> {
        let [root, outer, inner] = scopes(pool, group);
        let slot = self.size(&inner)?;
        self.slots
            .insert((inner.as_slice(), slot), address.as_bytes())
            .map_err(RegistryError::db)?;
        self.set_size(&inner, slot + 1)?;
        if slot == 0 && self.add(&outer, &group.inner_key())? {
            self.add(&root, &group.outer_key())?;
        }
        Ok(slot)
    }

    /// Removes `address`, in `slot` (from its row), from `pool` under `group`, removing
    /// groups left empty; returns the entry moved into the freed slot, if one was, and that
    /// slot, for the caller to rewrite its row.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the slot holds another entry.
    pub fn remove(
        &mut self,
        pool: Pool,
        group: &HostGroup,
        address: &str,
        slot: u64,
    ) -> Result<Option<(String, u64)>, RegistryError> {
        let [root, outer, inner] = scopes(pool, group);
        let member = address.as_bytes();
        let held = self
            .slots
            .get((inner.as_slice(), slot))
            .map_err(RegistryError::db)?
            .map(|a| a.value() == member);
        if held != Some(true) {
            return Err(corrupt(
                &inner,
                member,
                "the row's slot holds another entry",
            ));
        }
        let last = self
            .size(&inner)?
            .checked_sub(1)
            .ok_or_else(|| corrupt(&inner, member, "empty scope"))?;
        let moved = self
            .slots
            .remove((inner.as_slice(), last))
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_vec())
            .ok_or_else(|| corrupt(&inner, member, "last slot empty"))?;
        self.set_size(&inner, last)?;
        if last == 0 && self.take(&outer, &group.inner_key())? {
            self.take(&root, &group.outer_key())?;
        }
        if slot == last {
            return Ok(None);
        }
        self.slots
            .insert((inner.as_slice(), slot), moved.as_slice())
            .map_err(RegistryError::db)?;
        let moved = String::from_utf8(moved)
            .map_err(|_| corrupt(&inner, member, "an indexed address is not UTF-8"))?;
        Ok(Some((moved, slot)))
    }

    fn size(&self, scope: &[u8]) -> Result<u64, RegistryError> {
        Ok(self
            .sizes
            .get(scope)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value()))
    }

    fn set_size(&mut self, scope: &[u8], n: u64) -> Result<(), RegistryError> {
        if n == 0 {
            self.sizes.remove(scope).map_err(RegistryError::db)?;
        } else {
            self.sizes.insert(scope, n).map_err(RegistryError::db)?;
        }
        Ok(())
    }

    /// Puts group `member` in the next slot of `scope`; returns whether the scope was empty.
    fn add(&mut self, scope: &[u8], member: &[u8]) -> Result<bool, RegistryError> {
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

    /// Frees group `member`'s slot in `scope`, moving the last member into it; returns
    /// whether the scope is now empty.
    fn take(&mut self, scope: &[u8], member: &[u8]) -> Result<bool, RegistryError> {
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
            .map(|a| a.value().to_vec())
            .ok_or_else(|| corrupt(scope, member, "last slot empty"))?;
        if slot != last {
            self.slots
                .insert((scope, slot), moved.as_slice())
                .map_err(RegistryError::db)?;
            self.slot_of
                .insert((scope, moved.as_slice()), slot)
                .map_err(RegistryError::db)?;
        } else if moved != member {
            return Err(corrupt(scope, member, "last slot names another member"));
        }
        self.set_size(scope, last)?;
        Ok(last == 0)
    }
}

fn corrupt(scope: &[u8], member: &[u8], what: &str) -> RegistryError {
    RegistryError::Corrupt {
        key: format!(
            "{} / {}",
            hex::encode(scope),
            String::from_utf8_lossy(member)
        ),
        reason: format!("group index out of step: {what}"),
    }
}
