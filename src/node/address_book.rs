//! [`AddressBook`]: the nodes this node knows of, with how dialing them went, and the
//! bootstrap members it learned. Kept in memory (bounded) and saved to `peers.redb` every few
//! seconds and at shutdown, so that a node restarted while every bootstrap is down still
//! knows whom to dial.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rand::seq::SliceRandom;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::record::{NodeId, PeerAddress};

const BOOK: TableDefinition<&str, &[u8]> = TableDefinition::new("book");
const BOOTSTRAPS: TableDefinition<&str, u64> = TableDefinition::new("bootstrap_members");
const BANS: TableDefinition<&str, u64> = TableDefinition::new("bans");

/// Most addresses kept; the least promising are dropped beyond this.
pub const MAX_BOOK_ENTRIES: usize = 10_000;
const FIRST_BACKOFF_MS: u64 = 1_000;
const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// An address that never answered is forgotten after this many failed dials in a row.
const FORGET_AFTER_FAILURES: u32 = 10;

/// How an address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrSource {
    /// `--peers` in the configuration: never forgotten.
    Config,
    /// GET_PEERS from the bootstrap cluster.
    Bootstrap,
    /// An ADDR message from a peer.
    Gossip,
    /// A peer that connected to us and told its listen address.
    Inbound,
}

/// What the book remembers about one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    pub node_id: Option<NodeId>,
    pub source: AddrSource,
    pub added_ms: u64,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    pub failures: u32,
    /// Not dialed before this time (backoff after failures).
    pub next_attempt_ms: u64,
}

/// Storage errors of the address book.
#[derive(Debug, thiserror::Error)]
#[error("address book storage: {0}")]
pub struct BookError(String);

impl BookError {
    fn from(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// The address book of one node.
pub struct AddressBook {
    db: Database,
    entries: HashMap<String, BookEntry>,
    /// Ban keys (`addr:<host:port>` or `id:<node id>`) → banned until (ms).
    bans: HashMap<String, u64>,
    bootstrap_members: Vec<String>,
    /// Our own advertised address (and any address found to be us).
    own: HashSet<String>,
    dirty: bool,
}

impl AddressBook {
    /// Opens (or creates) the book at `path`; `own_addr` is never stored or dialed.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(path: &Path, own_addr: &str) -> Result<Self, BookError> {
        let db = Database::builder()
            .set_cache_size(4 * 1024 * 1024)
            .create(path)
            .map_err(BookError::from)?;
        let txn = db.begin_write().map_err(BookError::from)?;
        {
            txn.open_table(BOOK).map_err(BookError::from)?;
            txn.open_table(BOOTSTRAPS).map_err(BookError::from)?;
            txn.open_table(BANS).map_err(BookError::from)?;
        }
        txn.commit().map_err(BookError::from)?;
        let mut entries = HashMap::new();
        let mut bans = HashMap::new();
        let mut bootstrap_members = Vec::new();
        {
            let txn = db.begin_read().map_err(BookError::from)?;
            let book = txn.open_table(BOOK).map_err(BookError::from)?;
            for row in book.iter().map_err(BookError::from)? {
                let (addr, value) = row.map_err(BookError::from)?;
                // An undecodable entry (from a future version, or damaged) is skipped, not
                // fatal: the book is a cache of what the network can tell us again.
                if let Ok(entry) = rmp_serde::from_slice::<BookEntry>(value.value()) {
                    entries.insert(addr.value().to_string(), entry);
                }
                if entries.len() >= MAX_BOOK_ENTRIES {
                    break;
                }
            }
            let members = txn.open_table(BOOTSTRAPS).map_err(BookError::from)?;
            for row in members.iter().map_err(BookError::from)? {
                let (addr, _) = row.map_err(BookError::from)?;
                bootstrap_members.push(addr.value().to_string());
            }
            let stored_bans = txn.open_table(BANS).map_err(BookError::from)?;
            for row in stored_bans.iter().map_err(BookError::from)? {
                let (key, until) = row.map_err(BookError::from)?;
                bans.insert(key.value().to_string(), until.value());
            }
        }
        entries.remove(own_addr);
        Ok(Self {
            db,
            entries,
            bans,
            bootstrap_members,
            own: HashSet::from([own_addr.to_string()]),
            dirty: false,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, addr: &str) -> Option<&BookEntry> {
        self.entries.get(addr)
    }

    /// Every known address, sorted.
    pub fn addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = self.entries.keys().cloned().collect();
        all.sort();
        all
    }

    /// Adds `addr` if it is a valid address, not ours and not yet known; returns whether it
    /// was added. A config source upgrades an existing entry.
    pub fn add(&mut self, addr: &str, source: AddrSource, now_ms: u64) -> bool {
        if self.own.contains(addr) || PeerAddress::parse(addr).is_err() {
            return false;
        }
        if let Some(e) = self.entries.get_mut(addr) {
            if source == AddrSource::Config && e.source != AddrSource::Config {
                e.source = AddrSource::Config;
                self.dirty = true;
            }
            return false;
        }
        if self.entries.len() >= MAX_BOOK_ENTRIES && !self.evict_one() {
            return false;
        }
        self.entries.insert(
            addr.to_string(),
            BookEntry {
                node_id: None,
                source,
                added_ms: now_ms,
                last_success_ms: None,
                last_failure_ms: None,
                failures: 0,
                next_attempt_ms: 0,
            },
        );
        self.dirty = true;
        true
    }

    /// Adds every valid new address of `addrs` from `source`; returns how many were new.
    pub fn add_all(&mut self, addrs: &[String], source: AddrSource, now_ms: u64) -> usize {
        addrs.iter().filter(|a| self.add(a, source, now_ms)).count()
    }

    /// Drops the least promising entry (most failures, never reached, not configured).
    fn evict_one(&mut self) -> bool {
        let worst = self
            .entries
            .iter()
            .filter(|(_, e)| e.source != AddrSource::Config)
            .max_by_key(|(_, e)| {
                (
                    e.last_success_ms.is_none(),
                    e.failures,
                    u64::MAX - e.added_ms,
                )
            })
            .map(|(a, _)| a.clone());
        match worst {
            Some(a) => {
                self.entries.remove(&a);
                true
            }
            None => false,
        }
    }

    /// Marks `addr` as ours (a dial reached ourselves): never dialed again.
    pub fn mark_own(&mut self, addr: &str) {
        self.own.insert(addr.to_string());
        if self.entries.remove(addr).is_some() {
            self.dirty = true;
        }
    }

    /// A handshake with `addr` succeeded.
    pub fn record_success(&mut self, addr: &str, node_id: NodeId, now_ms: u64) {
        if let Some(e) = self.entries.get_mut(addr) {
            e.node_id = Some(node_id);
            e.last_success_ms = Some(now_ms);
            e.failures = 0;
            e.next_attempt_ms = now_ms;
            self.dirty = true;
        }
    }

    /// Dialing `addr` failed (or the connection died early): back off exponentially, and
    /// forget an address that never worked after many tries.
    pub fn record_failure(&mut self, addr: &str, now_ms: u64) {
        let Some(e) = self.entries.get_mut(addr) else {
            return;
        };
        e.failures = e.failures.saturating_add(1);
        e.last_failure_ms = Some(now_ms);
        let backoff = FIRST_BACKOFF_MS
            .saturating_mul(1u64 << e.failures.min(20).saturating_sub(1))
            .min(MAX_BACKOFF_MS);
        let jitter = rand::random::<u64>() % (backoff / 4 + 1);
        e.next_attempt_ms = now_ms + backoff + jitter;
        let forget = e.source != AddrSource::Config
            && e.last_success_ms.is_none()
            && e.failures >= FORGET_AFTER_FAILURES;
        if forget {
            self.entries.remove(addr);
        }
        self.dirty = true;
    }

    /// Addresses worth dialing now, best first: not ours, not `connected`, not banned, out of
    /// backoff; with `diverse`, at most one per subnet group, skipping `groups_in_use`.
    pub fn candidates(
        &self,
        now_ms: u64,
        connected: &HashSet<String>,
        groups_in_use: &HashSet<String>,
        diverse: bool,
        n: usize,
    ) -> Vec<String> {
        let mut ready: Vec<(&String, &BookEntry)> = self
            .entries
            .iter()
            .filter(|(a, e)| {
                e.next_attempt_ms <= now_ms
                    && !connected.contains(*a)
                    && !self.is_banned_addr(a, now_ms)
                    && !e.node_id.is_some_and(|id| self.is_banned_id(&id, now_ms))
            })
            .collect();
        ready.shuffle(&mut rand::thread_rng());
        // Configured and proven addresses first, then the rest in random order.
        ready.sort_by_key(|(_, e)| {
            (
                e.source != AddrSource::Config,
                e.last_success_ms.is_none(),
                e.failures,
            )
        });
        let mut groups = groups_in_use.clone();
        let mut out = Vec::new();
        for (addr, _) in ready {
            if out.len() >= n {
                break;
            }
            if diverse {
                let Ok(parsed) = PeerAddress::parse(addr) else {
                    continue;
                };
                if !groups.insert(parsed.subnet_group()) {
                    continue;
                }
            }
            out.push(addr.clone());
        }
        out
    }

    /// Up to `n` random addresses to tell a peer about (those not known to fail).
    pub fn sample(&self, n: usize, now_ms: u64) -> Vec<String> {
        let mut good: Vec<&String> = self
            .entries
            .iter()
            .filter(|(a, e)| e.failures < 3 && !self.is_banned_addr(a, now_ms))
            .map(|(a, _)| a)
            .collect();
        good.shuffle(&mut rand::thread_rng());
        good.into_iter().take(n).cloned().collect()
    }

    /// Bans `addr` and `node_id` until `until_ms`.
    pub fn ban(&mut self, addr: Option<&str>, node_id: Option<NodeId>, until_ms: u64) {
        if let Some(a) = addr {
            self.bans.insert(format!("addr:{a}"), until_ms);
        }
        if let Some(id) = node_id {
            self.bans.insert(format!("id:{id}"), until_ms);
        }
        self.dirty = true;
    }

    pub fn is_banned_addr(&self, addr: &str, now_ms: u64) -> bool {
        self.bans
            .get(&format!("addr:{addr}"))
            .is_some_and(|until| *until > now_ms)
    }

    pub fn is_banned_id(&self, id: &NodeId, now_ms: u64) -> bool {
        self.bans
            .get(&format!("id:{id}"))
            .is_some_and(|until| *until > now_ms)
    }

    /// Current bans as `key` strings.
    pub fn banned(&self, now_ms: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .bans
            .iter()
            .filter(|(_, until)| **until > now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// The bootstrap members learned from the cluster (the dynamic bootstrap list).
    pub fn bootstrap_members(&self) -> &[String] {
        &self.bootstrap_members
    }

    /// Replaces the learned bootstrap members.
    pub fn set_bootstrap_members(&mut self, members: Vec<String>) {
        if members != self.bootstrap_members && !members.is_empty() {
            self.bootstrap_members = members;
            self.dirty = true;
        }
    }

    /// Writes the book to disk if anything changed, dropping expired bans.
    ///
    /// # Errors
    /// Storage errors (the in-memory book stays as it is and the next flush retries).
    pub fn flush(&mut self, now_ms: u64) -> Result<(), BookError> {
        if !self.dirty {
            return Ok(());
        }
        self.bans.retain(|_, until| *until > now_ms);
        let txn = self.db.begin_write().map_err(BookError::from)?;
        {
            txn.delete_table(BOOK).map_err(BookError::from)?;
            txn.delete_table(BOOTSTRAPS).map_err(BookError::from)?;
            txn.delete_table(BANS).map_err(BookError::from)?;
            let mut book = txn.open_table(BOOK).map_err(BookError::from)?;
            for (addr, entry) in &self.entries {
                let bytes = rmp_serde::to_vec_named(entry).map_err(BookError::from)?;
                book.insert(addr.as_str(), bytes.as_slice())
                    .map_err(BookError::from)?;
            }
            let mut members = txn.open_table(BOOTSTRAPS).map_err(BookError::from)?;
            for m in &self.bootstrap_members {
                members
                    .insert(m.as_str(), now_ms)
                    .map_err(BookError::from)?;
            }
            let mut bans = txn.open_table(BANS).map_err(BookError::from)?;
            for (k, until) in &self.bans {
                bans.insert(k.as_str(), *until).map_err(BookError::from)?;
            }
        }
        txn.commit().map_err(BookError::from)?;
        self.dirty = false;
        Ok(())
    }
}

/// Milliseconds in `d`, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_bans_diversity_and_persistence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peers.redb");
        let mut book = AddressBook::open(&path, "127.0.0.1:7000").expect("open");
        assert!(
            !book.add("127.0.0.1:7000", AddrSource::Gossip, 0),
            "own address"
        );
        assert!(!book.add("garbage", AddrSource::Gossip, 0));
        assert!(book.add("10.1.0.1:7000", AddrSource::Bootstrap, 0));
        assert!(book.add("10.1.0.2:7000", AddrSource::Bootstrap, 0));
        assert!(book.add("10.2.0.1:7000", AddrSource::Gossip, 0));
        let none = HashSet::new();
        assert_eq!(
            book.candidates(0, &none, &none, true, 8).len(),
            2,
            "one per /16"
        );
        assert_eq!(book.candidates(0, &none, &none, false, 8).len(), 3);
        book.record_failure("10.2.0.1:7000", 0);
        let later = book.candidates(500, &none, &none, false, 8);
        assert!(!later.contains(&"10.2.0.1:7000".to_string()), "backing off");
        book.ban(Some("10.1.0.1:7000"), None, 10_000);
        assert!(!book
            .candidates(5_000, &none, &none, false, 8)
            .contains(&"10.1.0.1:7000".to_string()));
        book.set_bootstrap_members(vec!["127.0.0.1:4001".into()]);
        book.flush(1).expect("flush");
        drop(book);
        let book = AddressBook::open(&path, "127.0.0.1:7000").expect("reopen");
        assert_eq!(book.len(), 3);
        assert_eq!(book.bootstrap_members(), ["127.0.0.1:4001".to_string()]);
        assert!(book.is_banned_addr("10.1.0.1:7000", 5_000));
        assert!(!book.is_banned_addr("10.1.0.1:7000", 20_000));
    }

    #[test]
    fn addresses_that_never_answer_are_forgotten_but_configured_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut book = AddressBook::open(&dir.path().join("p.redb"), "127.0.0.1:1").expect("open");
        book.add("127.0.0.2:1", AddrSource::Gossip, 0);
        book.add("127.0.0.3:1", AddrSource::Config, 0);
        for i in 0..FORGET_AFTER_FAILURES {
            book.record_failure("127.0.0.2:1", u64::from(i));
            book.record_failure("127.0.0.3:1", u64::from(i));
        }
        assert!(book.get("127.0.0.2:1").is_none());
        assert!(book.get("127.0.0.3:1").is_some());
    }
}
