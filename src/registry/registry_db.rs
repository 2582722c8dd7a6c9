//! [`RegistryDb`]: the shared handle to the state-machine database, swappable as a whole when
//! a snapshot is installed.

use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, TableError};

use super::registry_tables::{
    BY_EXPIRY, BY_NODE, BY_SLOT, COUNTERS, FORMAT_VERSION, FORMAT_VERSION_KEY, PEERS,
    REGISTRY_META, SLOT_OF, TOMBSTONES, TOMBSTONES_BY_EXPIRY,
};
use super::{RegistryError, RegistryReader};

/// Page cache of the registry database. redb's default (1 GiB) would make a member's memory
/// grow with the registry; a bounded cache keeps it flat, hot pages stay cached.
pub const REGISTRY_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The registry database of one member. Readers (request handlers) and the Raft state machine
/// share it; installing a snapshot swaps in a freshly built file while reads in flight finish
/// on the old one.
#[derive(Clone)]
pub struct RegistryDb {
    current: Arc<RwLock<Arc<Database>>>,
}

impl RegistryDb {
    /// Opens or creates the database at `path` with every registry table present.
    ///
    /// # Errors
    /// Storage errors (including a file locked by another process).
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let db = create_with_tables(path)?;
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(db))),
        })
    }

    /// The database as of now.
    pub fn current(&self) -> Arc<Database> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `db` the current database.
    pub fn replace(&self, db: Database) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(db);
    }

    /// Runs `f` on a read transaction off the async runtime.
    ///
    /// # Errors
    /// Storage errors, or whatever `f` returns.
    pub async fn read<T, F>(&self, f: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: FnOnce(&RegistryReader) -> Result<T, RegistryError> + Send + 'static,
    {
        let db = self.current();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(RegistryError::db)?;
            let reader = RegistryReader::open(&txn)?;
            f(&reader)
        })
        .await
        .map_err(|e| RegistryError::Corrupt {
            key: String::new(),
            reason: format!("read task failed: {e}"),
        })?
    }
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
    txn.open_table(BY_SLOT).map_err(RegistryError::db)?;
    txn.open_table(SLOT_OF).map_err(RegistryError::db)?;
    txn.open_table(BY_NODE).map_err(RegistryError::db)?;
    txn.open_table(TOMBSTONES).map_err(RegistryError::db)?;
    txn.open_table(TOMBSTONES_BY_EXPIRY)
        .map_err(RegistryError::db)?;
    txn.open_table(COUNTERS).map_err(RegistryError::db)?;
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
    fn a_new_file_is_marked_and_opens_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        drop(create_with_tables(&path).expect("create"));
        let db = create_with_tables(&path).expect("reopen");
        assert_eq!(stored_format(&db).expect("format"), Some(FORMAT_VERSION));
    }
}
