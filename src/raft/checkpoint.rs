//! [`Checkpoint`]: the state machine commits without fsync; a checkpoint makes what it
//! committed durable, now and then.
//!
//! The Raft log is the durable truth. Every entry is on a majority's disks before it is
//! applied, and at start openraft re-applies the committed entries above the state machine's
//! last applied id (`StorageHelper::get_initial_state`). So an apply need not reach the disk
//! itself, which openraft's storage-v2 contract allows: after a crash the registry database
//! comes back at its last durable commit, with the `last_applied` id written in that same
//! commit, and the log above it is applied again. What must hold is that the log is never
//! purged above the durable state, or the entries to re-apply would be gone. Hence:
//! - a snapshot is built only from state that a checkpoint has just made durable
//!   ([`super::snapshot_builder`]), and openraft purges the log only below a snapshot;
//! - a timer checkpoints every [`CHECKPOINT_INTERVAL`], so a restart re-applies at most about
//!   that much of the log;
//! - the member checkpoints once more when it shuts down.
//!
//! One apply then costs no fsync at all, where it cost one per entry on every member.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redb::{Database, Durability};

/// How often the state machine's non-durable commits are made durable.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Whether the registry database holds commits that are not on disk yet.
#[derive(Debug, Default)]
pub struct Checkpoint {
    dirty: AtomicBool,
    /// Held for a whole checkpoint: a second caller that finds the flag cleared must not
    /// return before the checkpoint that cleared it has committed, or it would take state
    /// for durable that is not yet (a snapshot's meta, which lets openraft purge the log).
    running: Mutex<()>,
}

impl Checkpoint {
    /// Notes that a non-durable commit has just been made. Called after the commit: a
    /// checkpoint racing with it either covers it (redb runs one write at a time, so the
    /// checkpoint's commit comes after it) or leaves the flag set for the next one.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Whether a commit since the last checkpoint was non-durable.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Makes every commit of `db` so far durable: an empty write transaction committed with
    /// `Durability::Immediate` persists the non-durable ones before it. It saves redb's
    /// allocator state too (quick repair), so that opening the file after a crash does not
    /// walk a registry of a million records to rebuild it. Blocking.
    ///
    /// Returns whether there was anything to make durable.
    ///
    /// # Errors
    /// redb's (a full disk, an I/O error); the flag stays set, so the next checkpoint retries.
    pub fn run(&self, db: &Database) -> Result<bool, redb::Error> {
        let _running = match self.running.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let result = (|| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.set_quick_repair(true);
            txn.commit()?;
            Ok::<_, redb::Error>(())
        })();
        if result.is_err() {
            self.mark_dirty();
        }
        result.map(|()| true)
    }
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, TableDefinition};

    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn write(db: &Database, k: u64, durability: Durability) {
        let mut txn = db.begin_write().expect("begin");
        txn.set_durability(durability).expect("durability");
        txn.open_table(T)
            .expect("table")
            .insert(k, k)
            .expect("insert");
        txn.commit().expect("commit");
    }

    #[test]
    fn only_a_dirty_database_is_checkpointed_and_the_flag_clears() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("db.redb")).expect("create");
        let cp = Checkpoint::default();
        assert!(!cp.run(&db).expect("clean"), "nothing to do on a clean db");
        write(&db, 1, Durability::None);
        cp.mark_dirty();
        assert!(cp.is_dirty());
        assert!(cp.run(&db).expect("checkpoint"));
        assert!(!cp.is_dirty());
        assert!(!cp.run(&db).expect("clean again"));
        // What the non-durable commit wrote is still there, of course.
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(T).expect("table");
        assert_eq!(t.get(1).expect("get").map(|v| v.value()), Some(1));
    }
}
