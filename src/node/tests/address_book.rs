//! The address book: backoff, bans, persistence, and the subnet and gossip-source caps.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::node::addr_group::AddrGroups;
use crate::node::address_book::{
    AddrSource, AddressBook, BookLimits, FORGET_AFTER_FAILURES, MAX_BOOK_ENTRIES,
};

fn open(dir: &tempfile::TempDir, limits: BookLimits) -> AddressBook {
    AddressBook::open_with_limits(&dir.path().join("peers.redb"), "127.0.0.1:7000", limits)
        .expect("open")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// `n` addresses in 10.9.9.0/24 (many ports per host, as a flooder would send).
fn one_24(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.9.9.{}:{}", i % 250 + 1, 1000 + i / 250))
        .collect()
}

fn count_in(book: &AddressBook, net: &str) -> usize {
    book.addresses()
        .iter()
        .filter(|a| AddrGroups::of_str(a).is_some_and(|g| g.net == net))
        .count()
}

#[test]
fn backoff_bans_diversity_and_persistence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("peers.redb");
    let mut book = AddressBook::open(&path, "127.0.0.1:7000").expect("open");
    assert!(!book.add("127.0.0.1:7000", AddrSource::Gossip, 0), "own");
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
    let mut book = open(&dir, BookLimits::default());
    book.add("127.0.0.2:1", AddrSource::Gossip, 0);
    book.add("127.0.0.3:1", AddrSource::Config, 0);
    for i in 0..FORGET_AFTER_FAILURES {
        book.record_failure("127.0.0.2:1", u64::from(i));
        book.record_failure("127.0.0.3:1", u64::from(i));
    }
    assert!(book.get("127.0.0.2:1").is_none());
    assert!(book.get("127.0.0.3:1").is_some());
}

#[test]
fn one_24_holds_at_most_its_cap_and_other_subnets_still_get_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = BookLimits::default();
    let mut book = open(&dir, limits);
    let flood = one_24(3_000);
    let added = book.add_all(&flood, AddrSource::Bootstrap, 0);
    assert_eq!(added, limits.per_net_group);
    assert_eq!(count_in(&book, "10.9.9.0/24"), limits.per_net_group);
    assert_eq!(
        book.drops().net_group_full,
        3_000 - limits.per_net_group as u64
    );
    assert!(
        book.add("10.9.10.1:1", AddrSource::Bootstrap, 0),
        "next /24"
    );
    assert!(
        book.add("192.0.2.1:1", AddrSource::Bootstrap, 0),
        "other /16"
    );
    assert!(
        book.add("10.9.9.1:9999", AddrSource::Config, 0),
        "configured"
    );
}

#[test]
fn one_16_holds_at_most_its_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = BookLimits::default();
    let mut book = open(&dir, limits);
    let many: Vec<String> = (0..20)
        .flat_map(|c| (1..=100).map(move |d| format!("10.7.{c}.{d}:1")))
        .collect();
    let added = book.add_all(&many, AddrSource::Bootstrap, 0);
    assert_eq!(added, limits.per_wide_group);
    assert!(book.drops().wide_group_full > 0);
    assert!(book.add("10.8.0.1:1", AddrSource::Bootstrap, 0));
}

#[test]
fn a_full_group_replaces_failing_entries_but_keeps_working_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = BookLimits {
        per_net_group: 4,
        ..BookLimits::default()
    };
    let mut book = open(&dir, limits);
    let four: Vec<String> = (1..=4).map(|d| format!("10.0.0.{d}:1")).collect();
    book.add_all(&four, AddrSource::Bootstrap, 0);
    let id = crate::record::NodeIdentity::generate().node_id();
    for a in &four[..3] {
        book.record_success(a, id, 1);
    }
    assert!(
        !book.add("10.0.0.9:1", AddrSource::Bootstrap, 2),
        "full, none failing"
    );
    book.record_failure(&four[3], 3);
    assert!(
        book.add("10.0.0.9:1", AddrSource::Bootstrap, 4),
        "replaces the failing one"
    );
    assert!(book.get(&four[3]).is_none());
    assert!(!book.add("10.0.0.10:1", AddrSource::Bootstrap, 5));
    assert_eq!(count_in(&book, "10.0.0.0/24"), 4);
}

#[test]
fn one_gossip_source_fills_at_most_its_share() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = BookLimits::default();
    let mut book = open(&dir, limits);
    // 300 /24s in 30 /16s, 5 addresses each: within every subnet cap.
    let spread: Vec<String> = (0..1_500)
        .map(|i| format!("10.{}.{}.{}:1", 100 + i / 50, (i / 5) % 10, i % 5 + 1))
        .collect();
    let mut added = 0;
    for chunk in spread.chunks(1_000) {
        added += book.add_gossip(chunk, ip("127.9.9.1"), 0);
    }
    assert_eq!(added, limits.per_gossip_source);
    assert_eq!(book.drops().source_share_full, 500);
    // Another host of the same /16 shares that share; another /16 does not.
    assert_eq!(
        book.add_gossip(&["172.16.0.1:1".into()], ip("127.9.200.1"), 0),
        0
    );
    assert_eq!(
        book.add_gossip(&["172.16.0.1:1".into()], ip("127.8.0.1"), 0),
        1
    );
    // Forgotten entries free the share again.
    let first = spread[0].clone();
    for i in 0..FORGET_AFTER_FAILURES {
        book.record_failure(&first, u64::from(i));
    }
    assert_eq!(
        book.add_gossip(&["172.17.0.1:1".into()], ip("127.9.9.1"), 0),
        1
    );
}

#[test]
fn a_full_book_shrinks_its_most_crowded_subnet_and_caps_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = BookLimits {
        max_entries: 100,
        per_net_group: 40,
        per_wide_group: 60,
        per_gossip_source: 100,
    };
    let mut book = open(&dir, limits);
    let crowded: Vec<String> = (0..60)
        .map(|i| format!("10.1.{}.{}:1", i / 30, i % 30 + 1))
        .collect();
    let others: Vec<String> = (0..40).map(|i| format!("10.{}.0.1:1", 10 + i)).collect();
    assert_eq!(book.add_all(&crowded, AddrSource::Bootstrap, 0), 60);
    assert_eq!(book.add_all(&others, AddrSource::Bootstrap, 0), 40);
    assert!(book.add("10.200.0.1:1", AddrSource::Bootstrap, 1));
    assert_eq!(book.len(), 100);
    let in_crowded = book
        .addresses()
        .iter()
        .filter(|a| a.starts_with("10.1."))
        .count();
    assert_eq!(in_crowded, 59, "the eviction came from the crowded /16");
    book.flush(2).expect("flush");
    drop(book);
    // A book saved without caps is trimmed to them when read back.
    let tighter = BookLimits {
        per_net_group: 10,
        ..limits
    };
    let book = open(&dir, tighter);
    assert_eq!(count_in(&book, "10.1.0.0/24"), 10);
    assert!(book.len() <= MAX_BOOK_ENTRIES);
}
