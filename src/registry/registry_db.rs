//! [`RegistryDb`]: the shared handle to the state-machine database, swappable as a whole when
//! a snapshot is installed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableError};

use super::registry_tables::{
    BY_EXPIRY, BY_NODE, COUNTERS, FORMAT_VERSION, FORMAT_VERSION_KEY, GROUP_SIZES, GROUP_SLOTS,
    GROUP_SLOT_OF, PEERS, REGISTRY_META, TOMBSTONES, TOMBSTONES_BY_EXPIRY, UNVERIFIED,
};
use super::{RegistryError, RegistryReader};

/// Page cache of the registry database. redb's default (1 GiB) would make a member's memory
/// grow with the registry; a bounded cache keeps it flat, hot pages stay cached. A miss
/// costs a `pread` from the kernel's page cache, not a disk read. The caches take about 1.6×
/// their budget in resident memory: a 300,000-peer fill measured 172 MiB per member with
/// 64 + 16 MiB of cache (registry + log) and 76 MiB with 16 + 4 MiB, at the same rate.
pub const REGISTRY_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// How long a reopen waits for reads still running on the failed handle to let go of it
/// (they fail fast, with `PreviousIo`).
const REOPEN_WAIT: Duration = Duration::from_secs(2);
const REOPEN_POLL: Duration = Duration::from_millis(5);

/// The registry database of one member. Readers (request handlers) and the Raft state machine
/// share it; installing a snapshot swaps in a freshly built file while reads in flight finish
/// on the old one.
///
/// After a failed write (a full disk, an I/O error) redb refuses every later operation on
/// that handle, reads included (`PreviousIo`), until it is closed. So that reads go on, the
/// handle is then closed and the file opened again, which rolls it back to its last committed
/// transaction ([`Self::reopen`]).
#[derive(Clone)]
pub struct RegistryDb {
    /// `None` only while a reopen is under way, or after one failed.
    current: Arc<RwLock<Option<Arc<Database>>>>,
    path: Arc<PathBuf>,
}

impl RegistryDb {
    /// Opens or creates the database at `path` with every registry table present.
    ///
    /// # Errors
    /// Storage errors (including a file locked by another process).
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let db = create_with_tables(path)?;
        Ok(Self {
            current: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The database as of now. Blocks while a reopen is under way, so call it off the async
    /// runtime.
    ///
    /// # Errors
    /// The database could not be opened again after a storage failure.
    pub fn current(&self) -> Result<Arc<Database>, RegistryError> {
        let db = match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match db {
            Some(db) => Ok(db),
            None => self.open_again(&mut self.lock()),
        }
    }

    /// Makes `db` the current database.
    pub fn replace(&self, db: Database) {
        *self.lock() = Some(Arc::new(db));
    }

    /// Closes `failed` (a handle on which a write failed) and opens the file again, unless
    /// another caller already did. Blocking.
    ///
    /// # Errors
    /// Reads on the failed handle did not finish in time, or the file cannot be opened.
    pub fn reopen(&self, failed: Arc<Database>) -> Result<Arc<Database>, RegistryError> {
        let mut g = self.lock();
        match g.as_ref() {
            Some(db) if !Arc::ptr_eq(db, &failed) => return Ok(db.clone()),
            _ => {}
        }
        drop(failed);
        if let Some(mut old) = g.take() {
            // redb holds the file lock until the last handle is gone.
            let deadline = Instant::now() + REOPEN_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        // Closing reports the write error again; the file is what matters.
                        let _ = db.close();
                        break;
                    }
                    Err(shared) if Instant::now() < deadline => {
                        old = shared;
                        std::thread::sleep(REOPEN_POLL);
                    }
                    Err(shared) => {
                        *g = Some(shared);
                        return Err(RegistryError::Reopen(
                            "reads on the failed handle did not finish".into(),
                        ));
                    }
                }
            }
        }
        self.open_again(&mut g)
    }

    fn open_again(
        &self,
        g: &mut RwLockWriteGuard<'_, Option<Arc<Database>>>,
    ) -> Result<Arc<Database>, RegistryError> {
        if let Some(db) = g.as_ref() {
            return Ok(db.clone());
        }
        let db = Database::builder()
            .set_cache_size(REGISTRY_CACHE_BYTES)
            .open(self.path.as_path())
            .map_err(|e| RegistryError::Reopen(e.to_string()))?;
        tracing::warn!(
            path = %self.path.display(),
            "registry database reopened after a storage failure: reads go on from its last \
             committed state"
        );
        let db = Arc::new(db);
        **g = Some(db.clone());
        Ok(db)
    }

    fn lock(&self) -> RwLockWriteGuard<'_, Option<Arc<Database>>> {
        match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `f` on a read transaction off the async runtime. If the handle has failed (see
    /// [`Self::reopen`]), reopens it and runs `f` once more.
    ///
    /// # Errors
    /// Storage errors, or whatever `f` returns.
    pub async fn read<T, F>(&self, f: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: Fn(&RegistryReader) -> Result<T, RegistryError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let db = this.current()?;
            match read_with(&db, &f) {
                Err(e) if e.is_failed_handle() => {
                    let db = this.reopen(db)?;
                    read_with(&db, &f)
                }
                other => other,
            }
        })
        .await
        .map_err(|e| RegistryError::Corrupt {
            key: String::new(),
            reason: format!("read task failed: {e}"),
        })?
    }
}

fn read_with<T>(
    db: &Database,
    f: &impl Fn(&RegistryReader) -> Result<T, RegistryError>,
) -> Result<T, RegistryError> {
    let txn = db.begin_read().map_err(RegistryError::db)?;
    let reader = RegistryReader::open(&txn)?;
    f(&reader)
}

/// Creates (or opens) a database at `path` and makes sure every registry table exists.
///
/// # Errors
/// Storage errors, or [`RegistryError::Format`] if the file was written with another table
/// layout (it is refused rather than misread).
pub fn create_with_tables(path: &Path) -> Result<Database, RegistryError> {
    let db = Database::builder()
        .set_cache_size(REGISTRY_CACHE_BYTES)
        .create(path)
        .map_err(RegistryError::db)?;
    let fresh = match stored_format(&db)? {
        Some(FORMAT_VERSION) => false,
        Some(found) => {
            return Err(RegistryError::Format {
                found,
                expected: FORMAT_VERSION,
            })
        }
        None => true,
    };
    let txn = db.begin_write().map_err(RegistryError::db)?;
    txn.open_table(PEERS).map_err(RegistryError::db)?;
    txn.open_table(BY_EXPIRY).map_err(RegistryError::db)?;
    txn.open_table(GROUP_SLOTS).map_err(RegistryError::db)?;
    txn.open_table(GROUP_SLOT_OF).map_err(RegistryError::db)?;
    txn.open_table(GROUP_SIZES).map_err(RegistryError::db)?;
    txn.open_table(UNVERIFIED).map_err(RegistryError::db)?;
    txn.open_table(BY_NODE).map_err(RegistryError::db)?;
    txn.open_table(TOMBSTONES).map_err(RegistryError::db)?;
    txn.open_table(TOMBSTONES_BY_EXPIRY)
        .map_err(RegistryError::db)?;
    txn.open_table(COUNTERS).map_err(RegistryError::db)?;
    // Counts the legacy records of a registry written before the quota tables existed.
    drop(super::LegacyQuota::open(&txn)?);
    if fresh {
        txn.open_table(REGISTRY_META)
            .map_err(RegistryError::db)?
            .insert(FORMAT_VERSION_KEY, FORMAT_VERSION)
            .map_err(RegistryError::db)?;
    }
    txn.commit().map_err(RegistryError::db)?;
    Ok(db)
}

/// The format marker of `db`: `None` for a new, empty file; 1 for a file of the first layout,
/// which had registry tables but no marker.
fn stored_format(db: &Database) -> Result<Option<u64>, RegistryError> {
    let txn = db.begin_read().map_err(RegistryError::db)?;
    match txn.open_table(REGISTRY_META) {
        Ok(meta) => {
            let version = meta
                .get(FORMAT_VERSION_KEY)
                .map_err(RegistryError::db)?
                .map(|v| v.value());
            // A meta table without a marker is not something this code ever wrote.
            Ok(Some(version.unwrap_or(0)))
        }
        Err(TableError::TableDoesNotExist(_)) => match txn.open_table(PEERS) {
            Ok(_) => Ok(Some(1)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(RegistryError::db(e)),
        },
        Err(e) => Err(RegistryError::db(e)),
    }
}

#[cfg(test)]
mod tests {
    use redb::TableDefinition;

    use super::*;

    #[test]
    fn a_file_of_the_first_layout_is_refused_with_a_format_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        {
            // The first layout: a peers table and peers_by_sample, no format marker.
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            txn.open_table(PEERS).expect("peers");
            let old: TableDefinition<(u64, &str), ()> = TableDefinition::new("peers_by_sample");
            txn.open_table(old).expect("by sample");
            txn.commit().expect("commit");
        }
        let err = create_with_tables(&path).expect_err("refused");
        assert!(
            matches!(
                err,
                RegistryError::Format {
                    found: 1,
                    expected: FORMAT_VERSION
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("another peerchain version"),
            "{err}"
        );
    }

    #[test]
    fn files_of_formats_2_and_3_are_refused() {
        for old in [2, 3] {
            refused(old);
        }
    }

    fn refused(old: u64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            txn.open_table(REGISTRY_META)
                .expect("meta")
                .insert(FORMAT_VERSION_KEY, old)
                .expect("mark");
            txn.commit().expect("commit");
        }
        let err = create_with_tables(&path).expect_err("refused");
        assert!(
            matches!(
                err,
                RegistryError::Format {
                    found,
                    expected: FORMAT_VERSION
                } if found == old
            ),
            "{err}"
        );
    }

    #[test]
    fn a_new_file_is_marked_and_opens_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        drop(create_with_tables(&path).expect("create"));
        let db = create_with_tables(&path).expect("reopen");
        assert_eq!(stored_format(&db).expect("format"), Some(FORMAT_VERSION));
    }
}
