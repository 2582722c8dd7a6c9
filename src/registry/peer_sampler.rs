//! [`PeerSampler`]: the drawing part of a sample — a subnet group, a group within it, an
//! entry — over a pool's [`super::group_index`].
//!
//! The sample walks a tree of three levels: the pool's coarse groups (`/16`, `/32`), in each
//! its fine groups (`/24`, `/48`), in each its entries. Every level draws its children
//! uniformly **without replacement** by a lazy Fisher–Yates shuffle (draw `i` swaps position
//! `i` with a random position in `i..n` of a virtual permutation, of which only the swapped
//! positions are stored), and asks a child for an entry when it draws it. Once a level has
//! drawn every child, it goes round the children it drew, in draw order, dropping those that
//! have nothing left. So a sample of `limit` takes one entry from each of `limit` different
//! coarse groups if there are that many; only then a second from any, from another fine
//! group of it if it has one. Ten thousand peers in one `/24` are one group among the
//! others, however many there are of them.
//!
//! Each entry costs a few point lookups (a slot per level, a size per newly drawn group), and
//! at most `max(limit × 8, 64)` entries are drawn (the caller skips excluded and expired
//! ones), so a sample costs O(limit · log n) however large the pool is.

use std::collections::HashMap;

use rand::Rng;

use super::{HostGroup, Pool, RegistryError};

/// Entries drawn per requested peer before a sample settles for what it found.
pub const SAMPLE_DRAW_FACTOR: usize = 8;
/// Entries drawn at least, so that small samples survive a few expired or excluded entries.
pub const MIN_SAMPLE_DRAWS: usize = 64;

/// Where a sample reads the group index: scope sizes and the member in a slot.
pub trait GroupSource {
    /// Members in `scope` (0 if it is empty or absent).
    ///
    /// # Errors
    /// Storage errors.
    fn size(&self, scope: &[u8]) -> Result<u64, RegistryError>;

    /// The member in `slot` of `scope`.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if a slot below the size is empty.
    fn member(&self, scope: &[u8], slot: u64) -> Result<Vec<u8>, RegistryError>;
}

/// A uniform permutation of `0..n`, drawn one position at a time.
struct LazyPermutation {
    n: u64,
    drawn: u64,
    /// Positions of the virtual permutation that differ from the identity.
    moved: HashMap<u64, u64>,
}

impl LazyPermutation {
    fn new(n: u64) -> Self {
        Self {
            n,
            drawn: 0,
            moved: HashMap::new(),
        }
    }

    fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<u64> {
        if self.drawn >= self.n {
            return None;
        }
        let i = self.drawn;
        let j = rng.gen_range(i..self.n);
        let at = |m: &HashMap<u64, u64>, p: u64| m.get(&p).copied().unwrap_or(p);
        let chosen = at(&self.moved, j);
        let displaced = at(&self.moved, i);
        self.moved.insert(j, displaced);
        // Position i is never drawn again.
        self.moved.remove(&i);
        self.drawn += 1;
        Some(chosen)
    }
}

/// One group being drawn from: its scope, its shuffle, and the children drawn so far.
struct Level {
    scope: Vec<u8>,
    /// Levels below this one (0: its members are entries).
    below: u8,
    order: LazyPermutation,
    children: Vec<Level>,
    cursor: usize,
}

impl Level {
    fn open(src: &impl GroupSource, scope: Vec<u8>, below: u8) -> Result<Self, RegistryError> {
        let n = src.size(&scope)?;
        Ok(Self {
            scope,
            below,
            order: LazyPermutation::new(n),
            children: Vec::new(),
            cursor: 0,
        })
    }

    /// The next entry under this group, or `None` once every one was drawn.
    fn next<R: Rng + ?Sized>(
        &mut self,
        src: &impl GroupSource,
        rng: &mut R,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        if self.below == 0 {
            return match self.order.next(rng) {
                Some(slot) => src.member(&self.scope, slot).map(Some),
                None => Ok(None),
            };
        }
        // First every child once, in random order; then round the children drawn.
        while let Some(slot) = self.order.next(rng) {
            let member = src.member(&self.scope, slot)?;
            let scope = [self.scope.as_slice(), &member].concat();
            let mut child = Level::open(src, scope, self.below - 1)?;
            if let Some(address) = child.next(src, rng)? {
                self.children.push(child);
                return Ok(Some(address));
            }
        }
        while !self.children.is_empty() {
            let i = self.cursor % self.children.len();
            match self.children[i].next(src, rng)? {
                Some(address) => {
                    self.cursor = i + 1;
                    return Ok(Some(address));
                }
                None => {
                    self.children.remove(i);
                    self.cursor = i;
                }
            }
        }
        Ok(None)
    }
}

/// One sample in progress over one pool.
pub struct PeerSampler {
    root: Level,
    draws_left: usize,
}

impl PeerSampler {
    /// A sample of up to `limit` peers from `pool`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn new(src: &impl GroupSource, pool: Pool, limit: usize) -> Result<Self, RegistryError> {
        Ok(Self {
            root: Level::open(src, pool.key().to_vec(), 2)?,
            draws_left: limit
                .saturating_mul(SAMPLE_DRAW_FACTOR)
                .max(MIN_SAMPLE_DRAWS),
        })
    }

    /// The address of the next entry to look at, or `None` once the pool is exhausted or
    /// the draws are spent.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the index has a hole.
    pub fn next_address<R: Rng + ?Sized>(
        &mut self,
        src: &impl GroupSource,
        rng: &mut R,
    ) -> Result<Option<String>, RegistryError> {
        if self.draws_left == 0 {
            return Ok(None);
        }
        self.draws_left -= 1;
        match self.root.next(src, rng)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| RegistryError::Corrupt {
                    key: String::from_utf8_lossy(e.as_bytes()).to_string(),
                    reason: "an indexed address is not UTF-8".to_string(),
                }),
        }
    }
}

/// The coarse subnet group an address counts in when no resolver answer is known (a name is
/// in the one unresolved group).
pub fn subnet_group(address: &str) -> String {
    HostGroup::of(address, None).outer()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::registry::group_index::scopes;

    /// The group index in memory: scope → members in slot order.
    #[derive(Default)]
    struct Tree(HashMap<Vec<u8>, Vec<Vec<u8>>>);

    impl Tree {
        fn add(&mut self, address: &str) {
            let group = HostGroup::of(address, None);
            let [root, outer, inner] = scopes(Pool::Legacy, &group);
            for (scope, member) in [
                (root, group.outer_key()),
                (outer, group.inner_key()),
                (inner, address.as_bytes().to_vec()),
            ] {
                let members = self.0.entry(scope).or_default();
                if !members.contains(&member) {
                    members.push(member);
                }
            }
        }
    }

    impl GroupSource for Tree {
        fn size(&self, scope: &[u8]) -> Result<u64, RegistryError> {
            Ok(self.0.get(scope).map_or(0, |m| m.len() as u64))
        }
        fn member(&self, scope: &[u8], slot: u64) -> Result<Vec<u8>, RegistryError> {
            self.0
                .get(scope)
                .and_then(|m| m.get(slot as usize))
                .cloned()
                .ok_or_else(|| RegistryError::Corrupt {
                    key: hex::encode(scope),
                    reason: format!("no slot {slot}"),
                })
        }
    }

    fn draw(tree: &Tree, limit: usize, seed: u64) -> Vec<String> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut s = PeerSampler::new(tree, Pool::Legacy, limit).expect("sampler");
        std::iter::from_fn(|| s.next_address(tree, &mut rng).expect("draw")).collect()
    }

    #[test]
    fn draws_are_without_replacement_and_cover_a_small_pool() {
        let mut tree = Tree::default();
        let all: Vec<String> = (0..50)
            .map(|i| format!("10.{}.{}.{}:1", i % 3, i % 5, i))
            .collect();
        all.iter().for_each(|a| tree.add(a));
        let mut got = draw(&tree, 100, 1);
        assert_eq!(got.len(), 50);
        got.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(got, want);
        assert!(draw(&Tree::default(), 10, 3).is_empty());
    }

    #[test]
    fn draws_stop_at_the_budget() {
        let mut tree = Tree::default();
        (0..2_000).for_each(|i| tree.add(&format!("10.1.{}.{}:1", i / 250, i % 250)));
        let got = draw(&tree, 10, 2);
        assert_eq!(got.len(), MIN_SAMPLE_DRAWS.max(10 * SAMPLE_DRAW_FACTOR));
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
    }

    #[test]
    fn one_crowded_slash_24_is_one_group_among_the_others() {
        let mut tree = Tree::default();
        (0..10_000).for_each(|i| tree.add(&format!("127.9.9.{}:{}", i % 250, 1000 + i)));
        (0..100).for_each(|i| tree.add(&format!("127.{}.0.1:7000", 10 + i)));
        for seed in 0..20 {
            let first: Vec<String> = draw(&tree, 100, seed).into_iter().take(100).collect();
            let diverse = first.iter().filter(|a| !a.starts_with("127.9.")).count();
            assert!(diverse >= 99, "seed {seed}: {diverse} diverse");
        }
    }

    #[test]
    fn a_second_round_takes_another_slash_24_of_a_slash_16_before_repeating_one() {
        let mut tree = Tree::default();
        (0..50).for_each(|i| tree.add(&format!("10.1.1.{i}:1")));
        tree.add("10.1.2.1:1");
        let first_two = draw(&tree, 2, 5);
        assert!(first_two[..2].contains(&"10.1.2.1:1".to_string()));
    }
}
