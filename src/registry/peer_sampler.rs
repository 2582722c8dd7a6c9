//! [`PeerSampler`]: the pure part of a `GetPeers` sample — which slots to draw, and which of
//! the drawn entries to keep.
//!
//! Slots are drawn uniformly **without replacement** from `0..n` by a lazy Fisher–Yates
//! shuffle: draw `i` swaps position `i` with a random position in `i..n` of a virtual
//! permutation, of which only the swapped positions are stored (a hash map with one entry
//! per draw). Every entry is equally likely at every draw, whatever its address, its
//! neighbours in any order, or when it was registered.
//!
//! At most `max(limit × 8, 64)` slots are drawn (fewer if the registry is smaller, in which
//! case every entry is seen once in random order). The caller skips drawn entries that are
//! excluded or no longer live. Of the rest, the first entry of each subnet group is taken
//! (`/16` for IPv4, `/32` for IPv6, the host name otherwise); entries of a group already
//! taken are kept aside, up to `limit`. If the draws end with fewer than `limit` peers, the
//! sample is topped up from those kept aside, in draw order: a short sample only happens when
//! the registry (less exclusions and expired entries) has too few entries or the draws ran
//! out, never merely because few subnets are present.
//!
//! Drawing also stops early once enough entries are kept aside to fill the sample and the
//! last `max(limit, 64)` entries offered brought no new subnet group: a registry of few
//! subnets (a test network on one /16) then costs about `2 × limit` lookups, not the whole
//! budget.

use std::collections::{HashMap, HashSet};

use rand::Rng;

use super::PeerEntry;
use crate::record::PeerAddress;

/// Slots drawn per requested peer before a sample settles for what it found.
pub const SAMPLE_DRAW_FACTOR: usize = 8;
/// Slots drawn at least, so that small samples survive a few expired or excluded entries.
pub const MIN_SAMPLE_DRAWS: usize = 64;

/// One sample in progress.
pub struct PeerSampler {
    population: u64,
    drawn: u64,
    max_draws: u64,
    /// Positions of the virtual permutation that differ from the identity.
    moved: HashMap<u64, u64>,
    limit: usize,
    groups: HashSet<String>,
    picked: Vec<PeerEntry>,
    spare: Vec<PeerEntry>,
    /// Entries offered since the last one of a new subnet group.
    offers_without_new_group: usize,
}

impl PeerSampler {
    /// A sample of up to `limit` peers from `population` slots (`0..population`).
    pub fn new(population: u64, limit: usize) -> Self {
        let budget = limit
            .saturating_mul(SAMPLE_DRAW_FACTOR)
            .max(MIN_SAMPLE_DRAWS);
        let max_draws = population.min(u64::try_from(budget).unwrap_or(u64::MAX));
        Self {
            population,
            drawn: 0,
            max_draws,
            moved: HashMap::new(),
            limit,
            groups: HashSet::new(),
            picked: Vec::with_capacity(limit.min(1024)),
            spare: Vec::new(),
            offers_without_new_group: 0,
        }
    }

    /// Whether more draws are unlikely to find another subnet group, and those kept aside
    /// already fill the sample.
    fn diversity_exhausted(&self) -> bool {
        self.picked.len() + self.spare.len() >= self.limit
            && self.offers_without_new_group >= self.limit.max(MIN_SAMPLE_DRAWS)
    }

    /// The next slot to look at, or `None` once the sample is full or the draws are spent.
    pub fn next_slot<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<u64> {
        if self.picked.len() >= self.limit
            || self.drawn >= self.max_draws
            || self.diversity_exhausted()
        {
            return None;
        }
        let i = self.drawn;
        let j = rng.gen_range(i..self.population);
        let at = |m: &HashMap<u64, u64>, p: u64| m.get(&p).copied().unwrap_or(p);
        let chosen = at(&self.moved, j);
        let displaced = at(&self.moved, i);
        self.moved.insert(j, displaced);
        // Position i is never drawn again.
        self.moved.remove(&i);
        self.drawn += 1;
        Some(chosen)
    }

    /// Offers a drawn entry that is live and not excluded.
    pub fn offer(&mut self, entry: PeerEntry) {
        if self.groups.insert(subnet_group(entry.address())) {
            self.picked.push(entry);
            self.offers_without_new_group = 0;
        } else {
            self.offers_without_new_group += 1;
            if self.spare.len() < self.limit {
                self.spare.push(entry);
            }
        }
    }

    /// The sample: one peer per subnet group first, then topped up from repeated groups.
    pub fn finish(mut self) -> Vec<PeerEntry> {
        let missing = self.limit.saturating_sub(self.picked.len());
        self.picked.extend(self.spare.into_iter().take(missing));
        self.picked
    }
}

/// The subnet group an address counts towards; an unparsable address is its own group.
pub fn subnet_group(address: &str) -> String {
    PeerAddress::parse(address).map_or_else(|_| address.to_string(), |a| a.subnet_group())
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::registry::LegacyRecord;

    fn legacy(address: &str) -> PeerEntry {
        PeerEntry::Legacy(LegacyRecord {
            address: address.to_string(),
            registered_from: String::new(),
            expires_at_ms: 1,
        })
    }

    fn draw_all(population: u64, limit: usize, seed: u64) -> Vec<u64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut s = PeerSampler::new(population, limit);
        std::iter::from_fn(|| s.next_slot(&mut rng)).collect()
    }

    #[test]
    fn draws_are_without_replacement_and_cover_a_small_population() {
        let mut slots = draw_all(50, 100, 1);
        assert_eq!(slots.len(), 50);
        slots.sort_unstable();
        assert_eq!(slots, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn draws_stop_at_the_budget_and_stay_distinct_in_a_large_population() {
        let slots = draw_all(1_000_000, 10, 2);
        assert_eq!(slots.len(), 10 * SAMPLE_DRAW_FACTOR);
        let distinct: HashSet<_> = slots.iter().collect();
        assert_eq!(distinct.len(), slots.len());
        assert!(slots.iter().all(|s| *s < 1_000_000));
        assert!(draw_all(0, 10, 3).is_empty());
    }

    #[test]
    fn one_peer_per_group_first_then_topped_up_from_repeats() {
        let mut s = PeerSampler::new(10, 3);
        s.offer(legacy("10.1.0.1:1"));
        s.offer(legacy("10.1.0.2:1"));
        s.offer(legacy("10.2.0.1:1"));
        s.offer(legacy("10.1.0.3:1"));
        let got: Vec<_> = s.finish().iter().map(|e| e.address().to_string()).collect();
        assert_eq!(got, ["10.1.0.1:1", "10.2.0.1:1", "10.1.0.2:1"]);
    }

    #[test]
    fn a_registry_of_one_subnet_stops_drawing_once_the_sample_can_be_filled() {
        let mut rng = StdRng::seed_from_u64(4);
        let limit = 100;
        let mut s = PeerSampler::new(1_000_000, limit);
        let mut draws = 0;
        while let Some(slot) = s.next_slot(&mut rng) {
            draws += 1;
            s.offer(legacy(&format!(
                "10.1.{}.{}:1",
                slot / 250 % 250,
                slot % 250
            )));
        }
        assert!(draws <= 2 * limit + 1, "{draws} draws");
        assert_eq!(s.finish().len(), limit);
    }
}
