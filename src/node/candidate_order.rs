//! [`CandidateOrder`]: in which order the peer manager dials the address book's entries.
//!
//! Configured addresses come first, then addresses that worked before, then the rest. Within
//! each tier the order is **fair between subnet groups** (/16, IPv6 /32, each host name on
//! its own as [`PeerAddress::subnet_group`] has it, so named nodes of one deployment can
//! all be dialed with diversity on): a random group,
//! its best entry, the next group, ... then the second entries of each group. So a subnet
//! that managed to put many addresses in the book is not dialed more often for it. With
//! `diverse` (the default) at most one outbound connection per /16 is made; `--no-diversity`
//! lifts that rule (a test network on one host, or a private network in one /16) but the
//! order stays group-fair.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;

use super::address_book::{AddrSource, BookEntry};
use crate::record::PeerAddress;

/// One ready entry, with what orders it.
struct Ranked<'a> {
    addr: &'a str,
    wide: String,
    tier: (bool, bool),
    failures: u32,
}

/// Orders ready entries for dialing.
pub struct CandidateOrder {
    /// At most one outbound connection per wide group.
    pub diverse: bool,
}

impl CandidateOrder {
    /// Picks up to `n` of `ready` (entries that may be dialed now), best first, skipping
    /// wide groups in `groups_in_use` when diverse.
    pub fn pick<'a>(
        &self,
        ready: impl IntoIterator<Item = (&'a String, &'a BookEntry)>,
        groups_in_use: &HashSet<String>,
        n: usize,
    ) -> Vec<String> {
        let mut ranked: Vec<Ranked<'a>> = ready
            .into_iter()
            .filter_map(|(addr, e)| {
                Some(Ranked {
                    addr,
                    wide: PeerAddress::parse(addr).ok()?.subnet_group(),
                    tier: (e.source != AddrSource::Config, e.last_success_ms.is_none()),
                    failures: e.failures,
                })
            })
            .collect();
        let mut rng = rand::thread_rng();
        ranked.shuffle(&mut rng);
        // A random position for each group, then each entry's rank inside its group and tier.
        let mut group_pos: HashMap<String, usize> = HashMap::new();
        for r in &ranked {
            let next = group_pos.len();
            group_pos.entry(r.wide.clone()).or_insert(next);
        }
        ranked.sort_by_key(|r| (r.tier, r.failures));
        let mut seen: HashMap<(String, (bool, bool)), usize> = HashMap::new();
        let mut keyed: Vec<(usize, usize, &Ranked<'a>)> = ranked
            .iter()
            .map(|r| {
                let rank = seen.entry((r.wide.clone(), r.tier)).or_default();
                *rank += 1;
                (*rank, group_pos[&r.wide], r)
            })
            .collect();
        keyed.sort_by_key(|(rank, pos, r)| (r.tier, *rank, *pos));
        let mut used = groups_in_use.clone();
        let mut out = Vec::new();
        for (_, _, r) in keyed {
            if out.len() >= n {
                break;
            }
            if self.diverse && !used.insert(r.wide.clone()) {
                continue;
            }
            out.push(r.addr.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: AddrSource) -> BookEntry {
        BookEntry::new(source, None, 0)
    }

    #[test]
    fn a_crowded_group_does_not_crowd_out_the_others() {
        let mut book: Vec<(String, BookEntry)> = (0..200)
            .map(|i| (format!("10.1.0.{i}:1"), entry(AddrSource::Gossip)))
            .collect();
        for g in 2..6 {
            book.push((format!("10.{g}.0.1:1"), entry(AddrSource::Gossip)));
        }
        let none = HashSet::new();
        for diverse in [true, false] {
            let order = CandidateOrder { diverse };
            let picked = order.pick(book.iter().map(|(a, e)| (a, e)), &none, 5);
            let groups: HashSet<String> = picked
                .iter()
                .filter_map(|a| PeerAddress::parse(a).ok().map(|g| g.subnet_group()))
                .collect();
            assert_eq!(groups.len(), 5, "diverse={diverse}: {picked:?}");
        }
        // Without diversity, more than one per group once every group had its turn.
        let order = CandidateOrder { diverse: false };
        assert_eq!(
            order.pick(book.iter().map(|(a, e)| (a, e)), &none, 8).len(),
            8
        );
        let order = CandidateOrder { diverse: true };
        assert_eq!(
            order.pick(book.iter().map(|(a, e)| (a, e)), &none, 8).len(),
            5
        );
    }

    #[test]
    fn configured_then_proven_entries_come_first_and_used_groups_are_skipped() {
        let mut proven = entry(AddrSource::Gossip);
        proven.last_success_ms = Some(1);
        let book = [
            ("10.1.0.1:1".to_string(), entry(AddrSource::Gossip)),
            ("10.2.0.1:1".to_string(), proven),
            ("10.3.0.1:1".to_string(), entry(AddrSource::Config)),
            ("10.4.0.1:1".to_string(), entry(AddrSource::Gossip)),
        ];
        let order = CandidateOrder { diverse: true };
        let in_use = HashSet::from(["10.4/16".to_string()]);
        let picked = order.pick(book.iter().map(|(a, e)| (a, e)), &in_use, 8);
        assert_eq!(picked, ["10.3.0.1:1", "10.2.0.1:1", "10.1.0.1:1"]);
    }
}
