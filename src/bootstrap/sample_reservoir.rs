//! [`SampleReservoir`]: peer samples of a large registry, served from a reservoir of fair
//! draws instead of a walk of the group index per request.
//!
//! A sample drawn from the registry costs a few B-tree lookups per entry (about 1 ms of CPU
//! for 100 at a million peers, two of them page-cache misses per draw). A bootstrap faces
//! newcomers it does not know, and 200 sources at their request quota would ask for far
//! more than two cores can draw. So once the registry holds `sample_reservoir_from` entries,
//! a background task draws [`RESERVOIR_SIZE`] entries per pool with the same subnet-fair
//! sampler, about once a second while samples are asked for (and at once when a request
//! finds it stale after a quiet spell), and each request takes its sample from that: one
//! entry per coarse subnet group first, as the sampler would, in a random order, leaving
//! out the excluded and the expired (judged at the request's time).
//!
//! The price is freshness: a record registered in the last second or two may not be drawn
//! yet, and a removed one may still be served for as long (expired ones never are). A
//! bootstrap's sample is a starting point for a node that then dials and exchanges
//! addresses, so that is what DNS seeders do too. Below the threshold, every request draws
//! its own sample, fresh. A linearizable `GetPeers` always does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::index;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ClusterClock;
use crate::registry::peer_sampler::subnet_group;
use crate::registry::{ExcludeSet, PeerEntry, Pool, RegistryDb};

/// Entries drawn into a pool's reservoir: twice the largest sample, so that two samples of
/// the largest size still differ.
pub const RESERVOIR_SIZE: usize = 2_000;
/// How often a reservoir that was asked for is drawn again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// A reservoir older than this is not used (the request draws its own sample).
pub const MAX_AGE: Duration = Duration::from_secs(3);

struct Drawn {
    entries: Arc<Vec<PeerEntry>>,
    at: Instant,
}

#[derive(Default)]
struct Slot {
    drawn: Mutex<Option<Drawn>>,
    /// A request looked here since the last draw.
    wanted: AtomicBool,
}

/// The reservoirs of one member, one per pool.
pub struct SampleReservoir {
    /// Registry entries from which the reservoirs are used; 0: never.
    from_entries: u64,
    node: Slot,
    legacy: Slot,
    /// The registry held `from_entries` at the last count.
    large: AtomicBool,
    /// Wakes the drawing task before its tick: a request found no fresh reservoir.
    wake: Notify,
}

impl SampleReservoir {
    pub fn new(from_entries: u64) -> Self {
        Self {
            from_entries,
            node: Slot::default(),
            legacy: Slot::default(),
            large: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn slot(&self, pool: Pool) -> &Slot {
        match pool {
            Pool::Node => &self.node,
            Pool::Legacy => &self.legacy,
        }
    }

    /// The reservoir of `pool` if one was drawn within [`MAX_AGE`]; either way the pool is
    /// marked as asked for, so that the next round draws it. A large registry's request that
    /// finds none starts that round now instead of at the next tick: after a quiet spell the
    /// first second of requests would otherwise all draw their own samples. The wake-ups
    /// coalesce, and a round leaves the reservoir fresh, so this draws at most once per
    /// [`MAX_AGE`] beyond the ticks however many requests arrive.
    pub fn fresh(&self, pool: Pool) -> Option<Arc<Vec<PeerEntry>>> {
        if self.from_entries == 0 {
            return None;
        }
        let slot = self.slot(pool);
        slot.wanted.store(true, Ordering::Relaxed);
        let found = slot.drawn.lock().ok().and_then(|drawn| {
            drawn
                .as_ref()
                .filter(|d| d.at.elapsed() <= MAX_AGE)
                .map(|d| d.entries.clone())
        });
        if found.is_none() && self.large.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
        found
    }

    /// Draws the reservoirs that were asked for, every [`REFRESH_EVERY`], while the registry
    /// holds at least `from_entries`; empties them below it. Returns when `cancel` fires.
    pub async fn run(
        self: Arc<Self>,
        registry: RegistryDb,
        clock: Arc<ClusterClock>,
        cancel: CancellationToken,
    ) {
        if self.from_entries == 0 {
            return;
        }
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
            }
            let large = match registry.read(|r| r.count()).await {
                Ok(n) => n >= self.from_entries,
                Err(e) => {
                    tracing::debug!(error = %e, "counting the registry for the reservoir failed");
                    false
                }
            };
            self.large.store(large, Ordering::Relaxed);
            for pool in [Pool::Node, Pool::Legacy] {
                let slot = self.slot(pool);
                if !large {
                    if let Ok(mut d) = slot.drawn.lock() {
                        *d = None;
                    }
                    continue;
                }
                if !slot.wanted.swap(false, Ordering::Relaxed) {
                    continue;
                }
                let now = clock.now_or_own();
                let drawn = registry
                    .read(move |r| {
                        r.sample(
                            pool,
                            RESERVOIR_SIZE,
                            &ExcludeSet::default(),
                            now,
                            &mut rand::thread_rng(),
                        )
                    })
                    .await;
                match drawn {
                    Ok(entries) => {
                        if let Ok(mut d) = slot.drawn.lock() {
                            *d = Some(Drawn {
                                entries: Arc::new(entries),
                                at: Instant::now(),
                            });
                        }
                    }
                    // The requests draw their own samples meanwhile, and say what fails.
                    Err(e) => tracing::debug!(error = %e, "drawing a sample reservoir failed"),
                }
            }
        }
    }
}

/// Up to `limit` entries of `drawn` in a random order, one per coarse subnet group before a
/// second from any (as the sampler draws them), leaving out `exclude` and what is not live
/// at `now_ms`.
pub fn pick<R: Rng + ?Sized>(
    drawn: &[PeerEntry],
    limit: usize,
    exclude: &ExcludeSet,
    now_ms: u64,
    rng: &mut R,
) -> Vec<PeerEntry> {
    let order = index::sample(rng, drawn.len(), drawn.len());
    let mut groups = std::collections::HashSet::new();
    let mut picked = Vec::with_capacity(limit.min(drawn.len()));
    let mut second = Vec::new();
    for i in order.iter() {
        let entry = &drawn[i];
        if !entry.is_live(now_ms) || exclude.contains(entry.address()) {
            continue;
        }
        if groups.insert(subnet_group(entry.address())) {
            picked.push(entry.clone());
            if picked.len() == limit {
                return picked;
            }
        } else {
            second.push(i);
        }
    }
    for i in second {
        if picked.len() == limit {
            break;
        }
        picked.push(drawn[i].clone());
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::LegacyRecord;
    use rand::SeedableRng;

    fn legacy(address: &str, expires_at_ms: u64) -> PeerEntry {
        PeerEntry::Legacy(LegacyRecord {
            address: address.to_string(),
            registered_from: String::new(),
            expires_at_ms,
        })
    }

    #[test]
    fn one_per_coarse_group_first_then_the_rest_never_twice() -> anyhow::Result<()> {
        // 10 entries in one /16, then 20 in /16s of their own.
        let mut drawn: Vec<PeerEntry> = (0..10)
            .map(|i| legacy(&format!("10.1.0.{i}:1"), 100))
            .collect();
        drawn.extend((0..20).map(|i| legacy(&format!("10.{}.0.1:1", 100 + i), 100)));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let got = pick(&drawn, 21, &ExcludeSet::default(), 50, &mut rng);
            assert_eq!(got.len(), 21);
            let distinct: std::collections::HashSet<_> = got.iter().map(|e| e.address()).collect();
            assert_eq!(distinct.len(), 21, "an entry twice");
            let groups: std::collections::HashSet<_> =
                got.iter().map(|e| subnet_group(e.address())).collect();
            assert_eq!(groups.len(), 21, "one per group while groups remain");
        }
        let all = pick(&drawn, 100, &ExcludeSet::default(), 50, &mut rng);
        assert_eq!(all.len(), 30, "all of them once when more are asked for");
        Ok(())
    }

    #[test]
    fn the_excluded_and_the_expired_are_left_out() -> anyhow::Result<()> {
        let drawn = vec![
            legacy("10.1.0.1:1", 100),
            legacy("10.2.0.1:1", 40),
            legacy("10.3.0.1:1", 100),
        ];
        let exclude =
            ExcludeSet::new(&["10.3.0.1:1".to_string()]).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let got = pick(&drawn, 10, &exclude, 50, &mut rng);
        let addresses: Vec<_> = got.iter().map(|e| e.address()).collect();
        assert_eq!(addresses, vec!["10.1.0.1:1"]);
        Ok(())
    }

    #[test]
    fn nothing_is_served_when_off_or_not_yet_drawn() {
        let off = SampleReservoir::new(0);
        assert!(off.fresh(Pool::Node).is_none());
        let on = SampleReservoir::new(10);
        assert!(on.fresh(Pool::Legacy).is_none());
        assert!(on.legacy.wanted.load(Ordering::Relaxed), "asked for");
        assert!(!on.node.wanted.load(Ordering::Relaxed));
    }
}
