//! Tests of the registry as a whole: a real redb file, commands applied through
//! [`RegistryWriter`], reads through [`RegistryReader`].
//!
//! - [`writer`] — register, renew, deregister, legacy and expiry rules, tombstones.
//! - [`sampling`] — the group index's invariant, sample uniformity and fairness, snapshots.
//! - [`pools`] — verification, the node and legacy pools, host groups.
//! - [`legacy_quota`] — legacy records held per source IP and subnet.

mod legacy_quota;
mod pools;
mod sampling;
mod writer;

use std::collections::{BTreeMap, BTreeSet};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

use super::group_index::{is_entry_scope, scopes};
use super::registry_db::create_with_tables;
use super::registry_tables::{GROUP_SIZES, GROUP_SLOTS, GROUP_SLOT_OF, PEERS, TOMBSTONES};
use super::{
    CommandOutcome, Pool, RegistryCommand, RegistryReader, RegistryWriter, SnapshotItem,
    StoredEntry,
};
use crate::record::PeerRecord;
use crate::wire::ErrorCode;

const NET: &str = "net";

struct Fixture {
    _dir: tempfile::TempDir,
    db: Database,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = create_with_tables(&dir.path().join("s.redb")).expect("db");
        Self { _dir: dir, db }
    }

    /// A write transaction that skips the fsync: these tests never crash, and a thousand
    /// fsyncs would dominate their run time.
    fn begin_write(&self) -> WriteTransaction {
        let mut txn = self.db.begin_write().expect("txn");
        txn.set_durability(Durability::None).expect("durability");
        txn
    }

    fn apply(&self, now: u64, cmd: RegistryCommand) -> CommandOutcome {
        let txn = self.begin_write();
        let out = RegistryWriter::open(&txn)
            .expect("open")
            .apply(now, &cmd)
            .expect("apply");
        txn.commit().expect("commit");
        out
    }

    /// Applies `cmds` in one transaction (as one Raft entry's batch is); returns the
    /// outcomes.
    fn apply_all(&self, now: u64, cmds: &[RegistryCommand]) -> Vec<CommandOutcome> {
        let txn = self.begin_write();
        let out = {
            let mut w = RegistryWriter::open(&txn).expect("open");
            cmds.iter()
                .map(|c| w.apply(now, c).expect("apply"))
                .collect()
        };
        txn.commit().expect("commit");
        out
    }

    fn read<T>(&self, f: impl FnOnce(&RegistryReader) -> T) -> T {
        let txn = self.db.begin_read().expect("read");
        f(&RegistryReader::open(&txn).expect("reader"))
    }

    /// Every (scope, member) of the group index: the sets, whatever their slots.
    fn index_rows(&self) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
        let txn = self.db.begin_read().expect("read");
        let t = txn.open_table(GROUP_SLOTS).expect("slots");
        t.iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                (k.value().0.to_vec(), v.value().to_vec())
            })
            .collect()
    }

    /// Every stored row, by address.
    fn stored(&self) -> BTreeMap<String, StoredEntry> {
        let txn = self.db.begin_read().expect("read");
        let t = txn.open_table(PEERS).expect("peers");
        t.iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                let a = k.value().to_string();
                let s = StoredEntry::decode(&a, v.value()).expect("decode");
                (a, s)
            })
            .collect()
    }

    /// Every tombstone, in node id order.
    fn tombstones(&self) -> Vec<(Vec<u8>, (u64, u64))> {
        let txn = self.db.begin_read().expect("read");
        let t = txn.open_table(TOMBSTONES).expect("tombstones");
        t.iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                (k.value().to_vec(), v.value())
            })
            .collect()
    }

    /// The group index invariant: every scope's slots are exactly `0..size`, the reverse
    /// mapping and the sizes agree, no scope is empty, and the entries under each pool are
    /// exactly the stored entries of that pool, each under its own groups.
    fn assert_index_consistent(&self) {
        let txn = self.db.begin_read().expect("read");
        let slots = txn.open_table(GROUP_SLOTS).expect("slots");
        let slot_of = txn.open_table(GROUP_SLOT_OF).expect("slot of");
        let sizes = txn.open_table(GROUP_SIZES).expect("sizes");
        let mut by_scope: BTreeMap<Vec<u8>, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
        for r in slots.iter().expect("iter") {
            let (k, v) = r.expect("row");
            let (scope, slot) = k.value();
            by_scope
                .entry(scope.to_vec())
                .or_default()
                .push((slot, v.value().to_vec()));
        }
        let peers = txn.open_table(PEERS).expect("peers");
        for (scope, members) in &by_scope {
            for (i, (slot, member)) in members.iter().enumerate() {
                assert_eq!(*slot, i as u64, "{scope:?} is dense: {members:?}");
                let back = if is_entry_scope(scope) {
                    // An entry's slot is in its row.
                    let address = String::from_utf8(member.clone()).expect("utf-8");
                    let row = peers.get(address.as_str()).expect("get").expect("row");
                    StoredEntry::decode_with_slot(&address, row.value())
                        .expect("decode")
                        .1
                } else {
                    slot_of
                        .get((scope.as_slice(), member.as_slice()))
                        .expect("get")
                        .map(|v| v.value())
                };
                assert_eq!(back, Some(*slot), "reverse of {scope:?} / {member:?}");
            }
            let size = sizes.get(scope.as_slice()).expect("get").map(|v| v.value());
            assert_eq!(size, Some(members.len() as u64), "size of {scope:?}");
        }
        let group_rows = by_scope
            .iter()
            .filter(|(scope, _)| !is_entry_scope(scope))
            .map(|(_, m)| m.len())
            .sum::<usize>() as u64;
        assert_eq!(
            slot_of.len().expect("len"),
            group_rows,
            "group_slot_of holds the groups only"
        );
        let size_rows = sizes.iter().expect("iter").count();
        assert_eq!(size_rows, by_scope.len(), "no size without members");
        drop((slots, slot_of, sizes, peers, txn));
        let stored = self.stored();
        for pool in [Pool::Node, Pool::Legacy] {
            let mut want = BTreeSet::new();
            for (address, s) in &stored {
                if s.pool() == Some(pool) {
                    let [root, outer, inner] = scopes(pool, &s.group);
                    let has = |scope: &[u8], m: &[u8]| {
                        by_scope
                            .get(scope)
                            .is_some_and(|v| v.iter().any(|(_, x)| x == m))
                    };
                    assert!(has(&root, &s.group.outer_key()), "{address}: {root:?}");
                    assert!(has(&outer, &s.group.inner_key()), "{address}: {outer:?}");
                    assert!(has(&inner, address.as_bytes()), "{address}: {inner:?}");
                    want.insert(address.clone());
                }
            }
            let got: BTreeSet<String> = by_scope
                .iter()
                .filter(|(scope, _)| scope.starts_with(pool.key()) && is_entry_scope(scope))
                .flat_map(|(_, m)| {
                    m.iter()
                        .map(|(_, a)| String::from_utf8_lossy(a).to_string())
                })
                .collect();
            assert_eq!(got, want, "entries indexed under {pool:?}");
        }
        assert_eq!(
            self.read(|r| r.count().expect("count")),
            stored.len() as u64
        );
    }

    /// A new registry rebuilt from this one's snapshot items, as a snapshot install does.
    fn rebuilt_from_snapshot(&self) -> Fixture {
        let mut items = Vec::new();
        self.read(|r| {
            r.for_each_snapshot_item(|bytes| {
                items.push(bytes.to_vec());
                Ok::<_, super::RegistryError>(())
            })
            .expect("snapshot items")
        });
        let copy = Fixture::new();
        let txn = copy.begin_write();
        {
            let mut w = RegistryWriter::open(&txn).expect("open");
            for bytes in &items {
                w.restore(&SnapshotItem::decode(bytes).expect("item"))
                    .expect("restore");
            }
        }
        txn.commit().expect("commit");
        copy
    }
}

/// Registers `record` as served (verified), as a member with dial-back off proposes it.
fn served(record: PeerRecord) -> RegistryCommand {
    RegistryCommand::RegisterSigned {
        record,
        resolved: None,
        verified: true,
    }
}

fn code(o: &CommandOutcome) -> Option<ErrorCode> {
    match o {
        CommandOutcome::Refused(e) => Some(e.code),
        _ => None,
    }
}
