//! [`BookStore`]: the address book on disk (`peers.redb`): entries, bans and the learned
//! bootstrap members. The book is a cache of what the network can tell us again, so a
//! damaged or future-version entry is skipped rather than fatal.

use std::collections::HashMap;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::address_book::BookEntry;

const BOOK: TableDefinition<&str, &[u8]> = TableDefinition::new("book");
const BOOTSTRAPS: TableDefinition<&str, u64> = TableDefinition::new("bootstrap_members");
const BANS: TableDefinition<&str, u64> = TableDefinition::new("bans");
/// redb page cache: the book is small (≤ 10,000 short entries).
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Storage errors of the address book.
#[derive(Debug, thiserror::Error)]
#[error("address book storage: {0}")]
pub struct BookError(String);

impl BookError {
    fn from(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// What was saved: entries in key order, bans (key → until ms), bootstrap members.
#[derive(Debug, Default)]
pub struct StoredBook {
    pub entries: Vec<(String, BookEntry)>,
    pub bans: HashMap<String, u64>,
    pub bootstrap_members: Vec<String>,
}

/// The open `peers.redb`.
pub struct BookStore {
    db: Database,
}

impl BookStore {
    /// Opens (or creates) the store at `path` and reads at most `max_entries` entries.
    ///
    /// # Errors
    /// Storage errors (including another process holding the file).
    pub fn open(path: &Path, max_entries: usize) -> Result<(Self, StoredBook), BookError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(BookError::from)?;
        let txn = db.begin_write().map_err(BookError::from)?;
        {
            txn.open_table(BOOK).map_err(BookError::from)?;
            txn.open_table(BOOTSTRAPS).map_err(BookError::from)?;
            txn.open_table(BANS).map_err(BookError::from)?;
        }
        txn.commit().map_err(BookError::from)?;
        let mut stored = StoredBook::default();
        {
            let txn = db.begin_read().map_err(BookError::from)?;
            let book = txn.open_table(BOOK).map_err(BookError::from)?;
            for row in book.iter().map_err(BookError::from)? {
                if stored.entries.len() >= max_entries {
                    break;
                }
                let (addr, value) = row.map_err(BookError::from)?;
                if let Ok(entry) = rmp_serde::from_slice::<BookEntry>(value.value()) {
                    stored.entries.push((addr.value().to_string(), entry));
                }
            }
            let members = txn.open_table(BOOTSTRAPS).map_err(BookError::from)?;
            for row in members.iter().map_err(BookError::from)? {
                let (addr, _) = row.map_err(BookError::from)?;
                stored.bootstrap_members.push(addr.value().to_string());
            }
            let bans = txn.open_table(BANS).map_err(BookError::from)?;
            for row in bans.iter().map_err(BookError::from)? {
                let (key, until) = row.map_err(BookError::from)?;
                stored.bans.insert(key.value().to_string(), until.value());
            }
        }
        Ok((Self { db }, stored))
    }

    /// Replaces everything saved with the given state, in one transaction.
    ///
    /// # Errors
    /// Storage errors (nothing is changed on disk then).
    pub fn save(
        &self,
        entries: &HashMap<String, BookEntry>,
        bootstrap_members: &[String],
        bans: &HashMap<String, u64>,
        now_ms: u64,
    ) -> Result<(), BookError> {
        let txn = self.db.begin_write().map_err(BookError::from)?;
        {
            txn.delete_table(BOOK).map_err(BookError::from)?;
            txn.delete_table(BOOTSTRAPS).map_err(BookError::from)?;
            txn.delete_table(BANS).map_err(BookError::from)?;
            let mut book = txn.open_table(BOOK).map_err(BookError::from)?;
            for (addr, entry) in entries {
                let bytes = rmp_serde::to_vec_named(entry).map_err(BookError::from)?;
                book.insert(addr.as_str(), bytes.as_slice())
                    .map_err(BookError::from)?;
            }
            let mut members = txn.open_table(BOOTSTRAPS).map_err(BookError::from)?;
            for m in bootstrap_members {
                members
                    .insert(m.as_str(), now_ms)
                    .map_err(BookError::from)?;
            }
            let mut stored_bans = txn.open_table(BANS).map_err(BookError::from)?;
            for (k, until) in bans {
                stored_bans
                    .insert(k.as_str(), *until)
                    .map_err(BookError::from)?;
            }
        }
        txn.commit().map_err(BookError::from)
    }
}
