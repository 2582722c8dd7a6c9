//! Tests of the registry as a whole: a real redb file, commands applied through
//! [`RegistryWriter`], reads through [`RegistryReader`].
//!
//! - [`writer`] — register, renew, deregister, legacy and expiry rules, tombstones.
//! - [`sampling`] — the slot index's invariant, sample uniformity and diversity, snapshots.
//! - [`legacy_quota`] — legacy records held per source IP and subnet.

mod legacy_quota;
mod sampling;
mod writer;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

use super::registry_db::create_with_tables;
use super::registry_tables::{BY_SLOT, PEERS, SLOT_OF, TOMBSTONES};
use super::{CommandOutcome, RegistryCommand, RegistryReader, RegistryWriter, SnapshotItem};
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

    /// The slot table, in slot order.
    fn slots(&self) -> Vec<(u64, String)> {
        let txn = self.db.begin_read().expect("read");
        let t = txn.open_table(BY_SLOT).expect("by slot");
        t.iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                (k.value(), v.value().to_string())
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

    /// The slot index invariant: slots are exactly `0..n` for the `n` stored entries, every
    /// slot names a stored entry whose reverse mapping names that slot, and the counter
    /// agrees.
    fn assert_slots_consistent(&self) {
        let slots = self.slots();
        let n = slots.len() as u64;
        let txn = self.db.begin_read().expect("read");
        let peers = txn.open_table(PEERS).expect("peers");
        let slot_of = txn.open_table(SLOT_OF).expect("slot of");
        for (i, (slot, address)) in slots.iter().enumerate() {
            assert_eq!(*slot, i as u64, "slots are dense: {slots:?}");
            assert!(
                peers.get(address.as_str()).expect("get").is_some(),
                "slot {slot} names {address}, which is not stored"
            );
            let back = slot_of
                .get(address.as_str())
                .expect("get")
                .map(|v| v.value());
            assert_eq!(back, Some(*slot), "reverse mapping of {address}");
        }
        assert_eq!(
            peers.len().expect("len"),
            n,
            "every stored entry has a slot"
        );
        assert_eq!(slot_of.len().expect("len"), n);
        drop((peers, slot_of, txn));
        assert_eq!(self.read(|r| r.count().expect("count")), n);
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
            w.finish_restore().expect("dense");
        }
        txn.commit().expect("commit");
        copy
    }
}

fn code(o: &CommandOutcome) -> Option<ErrorCode> {
    match o {
        CommandOutcome::Refused(e) => Some(e.code),
        _ => None,
    }
}
