//! [`AddressBook`]: the nodes this node knows of, with how dialing them went, and the
//! bootstrap members it learned. Kept in memory, bounded in all, per subnet and per gossip
//! source ([`BookLimits`]), and saved to `peers.redb` ([`BookStore`]) every few seconds and
//! at shutdown, so that a node restarted while every bootstrap is down still knows whom to
//! dial.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rand::seq::SliceRandom;

use super::addr_group::AddrGroups;
use super::ban_list::BanList;
pub use super::book_limits::{BookLimits, BookRefusal, MAX_BOOK_ENTRIES};
pub use super::book_store::BookError;
use super::book_store::BookStore;
use super::candidate_order::CandidateOrder;
use super::group_index::GroupIndex;
use crate::record::{NodeId, PeerAddress};
use crate::wire::BookDrops;

pub use super::book_entry::{AddrSource, BookEntry};

const FIRST_BACKOFF_MS: u64 = 1_000;
const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// An address that never answered is forgotten after this many failed dials in a row.
pub(crate) const FORGET_AFTER_FAILURES: u32 = 10;
/// Addresses that failed this often are not passed on to peers.
const SHARE_BELOW_FAILURES: u32 = 3;

/// The address book of one node.
pub struct AddressBook {
    store: BookStore,
    entries: HashMap<String, BookEntry>,
    index: GroupIndex,
    limits: BookLimits,
    drops: BookDrops,
    bans: BanList,
    bootstrap_members: Vec<String>,
    /// Our own advertised address (and any address found to be us).
    own: HashSet<String>,
    dirty: bool,
}

impl AddressBook {
    /// Opens (or creates) the book at `path` with the default caps; `own_addr` is never
    /// stored or dialed.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(path: &Path, own_addr: &str) -> Result<Self, BookError> {
        Self::open_with_limits(path, own_addr, BookLimits::default())
    }

    /// [`AddressBook::open`] with other caps. Saved entries beyond the caps (from a version
    /// without them) are dropped as they are read back.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open_with_limits(
        path: &Path,
        own_addr: &str,
        limits: BookLimits,
    ) -> Result<Self, BookError> {
        let (store, stored) = BookStore::open(path, limits.max_entries)?;
        let mut book = Self {
            store,
            entries: HashMap::new(),
            index: GroupIndex::default(),
            limits,
            drops: BookDrops::default(),
            bans: BanList::from_stored(stored.bans),
            bootstrap_members: stored.bootstrap_members,
            own: HashSet::from([own_addr.to_string()]),
            dirty: false,
        };
        for (addr, entry) in stored.entries {
            if book.own.contains(&addr) {
                continue;
            }
            if let Some(groups) = AddrGroups::of_str(&addr) {
                if entry.source == AddrSource::Config || book.check_room(&groups, &entry).is_ok() {
                    book.index
                        .insert(&addr, &groups, entry.learned_from.as_deref());
                    book.entries.insert(addr, entry);
                }
            }
        }
        book.drops = BookDrops::default();
        Ok(book)
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

    /// Addresses refused by a cap since the book was opened.
    pub fn drops(&self) -> BookDrops {
        self.drops
    }

    /// Adds `addr` if it is a valid address, not ours, not yet known and within the caps;
    /// returns whether it was added. A config source upgrades an existing entry.
    pub fn add(&mut self, addr: &str, source: AddrSource, now_ms: u64) -> bool {
        self.insert(addr, BookEntry::new(source, None, now_ms))
    }

    /// Adds every valid new address of `addrs` from `source`; returns how many were new.
    pub fn add_all(&mut self, addrs: &[String], source: AddrSource, now_ms: u64) -> usize {
        addrs.iter().filter(|a| self.add(a, source, now_ms)).count()
    }

    /// Adds addresses a peer at `from` gossiped: they count in the share of `from`'s /16
    /// (IPv6 /32), on top of the subnet caps. Returns how many were new.
    pub fn add_gossip(&mut self, addrs: &[String], from: IpAddr, now_ms: u64) -> usize {
        let source = AddrGroups::of_ip(from).wide;
        addrs
            .iter()
            .filter(|a| {
                let entry = BookEntry::new(AddrSource::Gossip, Some(source.clone()), now_ms);
                self.insert(a, entry)
            })
            .count()
    }

    fn insert(&mut self, addr: &str, entry: BookEntry) -> bool {
        if self.own.contains(addr) {
            return false;
        }
        let Ok(parsed) = PeerAddress::parse(addr) else {
            return false;
        };
        if let Some(e) = self.entries.get_mut(addr) {
            if entry.source == AddrSource::Config && e.source != AddrSource::Config {
                e.source = AddrSource::Config;
                self.dirty = true;
            }
            return false;
        }
        let groups = AddrGroups::of(&parsed);
        if let Err(refusal) = self.make_room(&groups, &entry) {
            match refusal {
                BookRefusal::NetGroupFull => self.drops.net_group_full += 1,
                BookRefusal::WideGroupFull => self.drops.wide_group_full += 1,
                BookRefusal::SourceShareFull => self.drops.source_share_full += 1,
                BookRefusal::BookFull => self.drops.book_full += 1,
            }
            return false;
        }
        self.index
            .insert(addr, &groups, entry.learned_from.as_deref());
        self.entries.insert(addr.to_string(), entry);
        self.dirty = true;
        true
    }

    /// Whether `entry` in `groups` fits without evicting anything.
    fn check_room(&self, groups: &AddrGroups, entry: &BookEntry) -> Result<(), BookRefusal> {
        if let Some(src) = &entry.learned_from {
            if self.index.source_len(src) >= self.limits.per_gossip_source {
                return Err(BookRefusal::SourceShareFull);
            }
        }
        if self.index.net_len(&groups.net) >= self.limits.per_net_group {
            return Err(BookRefusal::NetGroupFull);
        }
        if self.index.wide_len(&groups.wide) >= self.limits.per_wide_group {
            return Err(BookRefusal::WideGroupFull);
        }
        if self.entries.len() >= self.limits.max_entries {
            return Err(BookRefusal::BookFull);
        }
        Ok(())
    }

    /// Makes room for `entry` in `groups`: a full group gives up one of its terrible
    /// entries (never reached, failing), a full book its largest /16's worst entry.
    /// Configured entries always get in.
    fn make_room(&mut self, groups: &AddrGroups, entry: &BookEntry) -> Result<(), BookRefusal> {
        loop {
            let refusal = match self.check_room(groups, entry) {
                Ok(()) => return Ok(()),
                Err(r) => r,
            };
            let victim = match refusal {
                BookRefusal::SourceShareFull if entry.source == AddrSource::Config => return Ok(()),
                BookRefusal::SourceShareFull => return Err(refusal),
                BookRefusal::NetGroupFull => self.terrible_in(self.index.net_members(&groups.net)),
                BookRefusal::WideGroupFull => {
                    self.terrible_in(self.index.wide_members(&groups.wide))
                }
                BookRefusal::BookFull => self.worst_of_largest_group(),
            };
            match victim {
                Some(v) => {
                    self.remove_entry(&v);
                }
                None if entry.source == AddrSource::Config => return Ok(()),
                None => return Err(refusal),
            }
        }
    }

    fn terrible_in<'a>(&self, members: impl Iterator<Item = &'a String>) -> Option<String> {
        members
            .filter_map(|a| Some((a, self.entries.get(a)?)))
            .filter(|(_, e)| e.is_terrible())
            .max_by_key(|(a, e)| (e.failures, *a))
            .map(|(a, _)| a.clone())
    }

    /// The least promising entry (never reached, most failures, newest) of the /16 holding
    /// the most entries: a full book shrinks its most crowded subnet first.
    fn worst_of_largest_group(&self) -> Option<String> {
        let group = self.index.largest_wide()?;
        self.index
            .wide_members(group)
            .filter_map(|a| Some((a, self.entries.get(a)?)))
            .filter(|(_, e)| e.source != AddrSource::Config)
            .max_by_key(|(a, e)| {
                (
                    e.last_success_ms.is_none(),
                    e.failures,
                    e.added_ms,
                    a.as_str(),
                )
            })
            .map(|(a, _)| a.clone())
    }

    fn remove_entry(&mut self, addr: &str) -> Option<BookEntry> {
        let entry = self.entries.remove(addr)?;
        if let Some(groups) = AddrGroups::of_str(addr) {
            self.index
                .remove(addr, &groups, entry.learned_from.as_deref());
        }
        self.dirty = true;
        Some(entry)
    }

    /// Marks `addr` as ours (a dial reached ourselves): never dialed again.
    pub fn mark_own(&mut self, addr: &str) {
        self.own.insert(addr.to_string());
        self.remove_entry(addr);
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
        self.dirty = true;
        if forget {
            self.remove_entry(addr);
        }
    }

    /// Addresses worth dialing now, best first (see [`CandidateOrder`]): not ours, not
    /// `connected`, not banned, out of backoff; with `diverse`, at most one per /16
    /// (IPv6 /32), skipping `groups_in_use`.
    pub fn candidates(
        &self,
        now_ms: u64,
        connected: &HashSet<String>,
        groups_in_use: &HashSet<String>,
        diverse: bool,
        n: usize,
    ) -> Vec<String> {
        let ready = self.entries.iter().filter(|(a, e)| {
            e.next_attempt_ms <= now_ms
                && !connected.contains(*a)
                && !self.bans.is_banned_addr(a, now_ms)
                && !e
                    .node_id
                    .is_some_and(|id| self.bans.is_banned_id(&id, now_ms))
        });
        CandidateOrder { diverse }.pick(ready, groups_in_use, n)
    }

    /// Up to `n` random addresses to tell a peer about (those not known to fail).
    pub fn sample(&self, n: usize, now_ms: u64) -> Vec<String> {
        let mut good: Vec<&String> = self
            .entries
            .iter()
            .filter(|(a, e)| e.failures < SHARE_BELOW_FAILURES && !self.is_banned_addr(a, now_ms))
            .map(|(a, _)| a)
            .collect();
        good.shuffle(&mut rand::thread_rng());
        good.into_iter().take(n).cloned().collect()
    }

    /// Bans `addr` and `node_id` until `until_ms`.
    pub fn ban(&mut self, addr: Option<&str>, node_id: Option<NodeId>, until_ms: u64) {
        self.bans.ban(addr, node_id, until_ms);
        self.dirty = true;
    }

    pub fn is_banned_addr(&self, addr: &str, now_ms: u64) -> bool {
        self.bans.is_banned_addr(addr, now_ms)
    }

    pub fn is_banned_id(&self, id: &NodeId, now_ms: u64) -> bool {
        self.bans.is_banned_id(id, now_ms)
    }

    /// Current bans as `key` strings.
    pub fn banned(&self, now_ms: u64) -> Vec<String> {
        self.bans.active(now_ms)
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
        self.bans.prune(now_ms);
        self.store.save(
            &self.entries,
            &self.bootstrap_members,
            self.bans.as_map(),
            now_ms,
        )?;
        self.dirty = false;
        Ok(())
    }
}

/// Milliseconds in `d`, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
