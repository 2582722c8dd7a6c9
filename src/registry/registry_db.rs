//! [`RegistryDb`]: the shared handle to the state-machine database, swappable as a whole when
//! a snapshot is installed.

use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase};

use super::registry_tables::{BY_EXPIRY, BY_NODE, BY_SAMPLE, COUNTERS, PEERS};
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
/// Storage errors.
pub fn create_with_tables(path: &Path) -> Result<Database, RegistryError> {
    let db = Database::builder()
        .set_cache_size(REGISTRY_CACHE_BYTES)
        .create(path)
        .map_err(RegistryError::db)?;
    let txn = db.begin_write().map_err(RegistryError::db)?;
    txn.open_table(PEERS).map_err(RegistryError::db)?;
    txn.open_table(BY_EXPIRY).map_err(RegistryError::db)?;
    txn.open_table(BY_SAMPLE).map_err(RegistryError::db)?;
    txn.open_table(BY_NODE).map_err(RegistryError::db)?;
    txn.open_table(COUNTERS).map_err(RegistryError::db)?;
    txn.commit().map_err(RegistryError::db)?;
    Ok(db)
}
