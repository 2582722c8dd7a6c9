//! [`GroupIndex`]: which addresses of the book fall in which subnet group, and how many each
//! gossip source added, so that the caps of [`super::book_limits`] are checked (and the
//! eviction candidates of a full group found) without scanning the whole book.

use std::collections::{HashMap, HashSet};

use super::addr_group::AddrGroups;

/// Addresses by narrow group, by wide group, and counts by gossip source group.
#[derive(Debug, Default)]
pub struct GroupIndex {
    net: HashMap<String, HashSet<String>>,
    wide: HashMap<String, HashSet<String>>,
    by_source: HashMap<String, usize>,
}

impl GroupIndex {
    /// Records `addr` in `groups`, learned from `source` (a gossip source group) if any.
    pub fn insert(&mut self, addr: &str, groups: &AddrGroups, source: Option<&str>) {
        self.net
            .entry(groups.net.clone())
            .or_default()
            .insert(addr.to_string());
        self.wide
            .entry(groups.wide.clone())
            .or_default()
            .insert(addr.to_string());
        if let Some(s) = source {
            *self.by_source.entry(s.to_string()).or_default() += 1;
        }
    }

    /// Forgets `addr` (inserted with the same `groups` and `source`).
    pub fn remove(&mut self, addr: &str, groups: &AddrGroups, source: Option<&str>) {
        remove_member(&mut self.net, &groups.net, addr);
        remove_member(&mut self.wide, &groups.wide, addr);
        if let Some(s) = source {
            if let Some(n) = self.by_source.get_mut(s) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.by_source.remove(s);
                }
            }
        }
    }

    /// Addresses in the narrow group `g`.
    pub fn net_members(&self, g: &str) -> impl Iterator<Item = &String> {
        self.net.get(g).into_iter().flatten()
    }

    /// Addresses in the wide group `g`.
    pub fn wide_members(&self, g: &str) -> impl Iterator<Item = &String> {
        self.wide.get(g).into_iter().flatten()
    }

    pub fn net_len(&self, g: &str) -> usize {
        self.net.get(g).map_or(0, HashSet::len)
    }

    pub fn wide_len(&self, g: &str) -> usize {
        self.wide.get(g).map_or(0, HashSet::len)
    }

    /// Addresses still in the book that gossip from source group `s` added.
    pub fn source_len(&self, s: &str) -> usize {
        self.by_source.get(s).copied().unwrap_or(0)
    }

    /// The wide group holding the most addresses: where a full book makes room first.
    pub fn largest_wide(&self) -> Option<&str> {
        self.wide
            .iter()
            .max_by_key(|(g, m)| (m.len(), *g))
            .map(|(g, _)| g.as_str())
    }
}

fn remove_member(map: &mut HashMap<String, HashSet<String>>, group: &str, addr: &str) {
    if let Some(members) = map.get_mut(group) {
        members.remove(addr);
        if members.is_empty() {
            map.remove(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_inserts_and_removals() {
        let mut index = GroupIndex::default();
        let a = AddrGroups::of_str("10.1.2.3:1").expect("valid");
        let b = AddrGroups::of_str("10.1.9.3:1").expect("valid");
        index.insert("10.1.2.3:1", &a, Some("127.0.0.0/16"));
        index.insert("10.1.9.3:1", &b, None);
        assert_eq!(index.net_len("10.1.2.0/24"), 1);
        assert_eq!(index.wide_len("10.1.0.0/16"), 2);
        assert_eq!(index.source_len("127.0.0.0/16"), 1);
        assert_eq!(index.largest_wide(), Some("10.1.0.0/16"));
        index.remove("10.1.2.3:1", &a, Some("127.0.0.0/16"));
        assert_eq!(index.net_len("10.1.2.0/24"), 0);
        assert_eq!(index.wide_len("10.1.0.0/16"), 1);
        assert_eq!(index.source_len("127.0.0.0/16"), 0);
        assert_eq!(index.net_members("10.1.9.0/24").count(), 1);
    }
}
