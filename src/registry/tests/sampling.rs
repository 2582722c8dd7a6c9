//! The group index under random writes, and what samples drawn from it look like.

use std::collections::{BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{served, Fixture, NET};
use crate::record::NodeIdentity;
use crate::registry::group_index::is_entry_scope;
use crate::registry::peer_sampler::{subnet_group, GroupSource, PeerSampler};
use crate::registry::{CommandOutcome, ExcludeSet, PeerEntry, Pool, RegistryCommand};

fn none() -> ExcludeSet {
    ExcludeSet::default()
}

fn addresses(sample: &[PeerEntry]) -> Vec<String> {
    sample.iter().map(|e| e.address().to_string()).collect()
}

/// Random writes against a pool of identities and addresses, mostly for the address each
/// identity holds (so deregistrations and renewals succeed, not only get refused).
struct RandomWrites {
    rng: StdRng,
    ids: Vec<NodeIdentity>,
    seqs: Vec<u64>,
    held: Vec<Option<String>>,
}

impl RandomWrites {
    fn new(seed: u64, n: usize) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            ids: (0..n).map(|_| NodeIdentity::generate()).collect(),
            seqs: vec![0; n],
            held: vec![None; n],
        }
    }

    fn step(&mut self, f: &Fixture, now: u64) -> CommandOutcome {
        let rng = &mut self.rng;
        let who = rng.gen_range(0..self.ids.len());
        let fresh = format!("10.{}.0.1:{}", rng.gen_range(0..4), rng.gen_range(1..30));
        let addr = match &self.held[who] {
            Some(a) if rng.gen_bool(0.7) => a.clone(),
            _ => fresh,
        };
        let expires = now + rng.gen_range(1..3_000);
        let id = &self.ids[who];
        let cmd = match rng.gen_range(0..11) {
            0..=4 => {
                // Now and then a replay of the seq already used.
                if rng.gen_bool(0.8) {
                    self.seqs[who] += 1;
                }
                RegistryCommand::RegisterSigned {
                    record: id.sign_record(NET, &addr, self.seqs[who], expires),
                    resolved: None,
                    verified: rng.gen_bool(0.3),
                }
            }
            10 => RegistryCommand::MarkVerified {
                address: addr.clone(),
                node_id: id.node_id(),
                seq: self.seqs[who],
            },
            5 | 6 => {
                self.seqs[who] += 1;
                RegistryCommand::Deregister(id.sign_deregistration(NET, &addr, self.seqs[who]))
            }
            7 => RegistryCommand::RegisterLegacy {
                address: addr.clone(),
                source_ip: "1.1.1.1".into(),
                expires_at_ms: expires,
                resolved: None,
                limits: Default::default(),
            },
            8 => RegistryCommand::RemoveLegacy {
                address: addr.clone(),
                source_ip: "1.1.1.1".into(),
            },
            _ => RegistryCommand::Expire {
                limit: rng.gen_range(1..5),
            },
        };
        let out = f.apply(now, cmd.clone());
        match (&cmd, &out) {
            (RegistryCommand::RegisterSigned { .. }, CommandOutcome::Registered { .. }) => {
                self.held[who] = Some(addr)
            }
            (RegistryCommand::Deregister(_), CommandOutcome::Removed) => self.held[who] = None,
            _ => {}
        }
        out
    }
}

#[test]
fn group_index_stays_consistent_under_random_writes_and_survives_a_snapshot() {
    let f = Fixture::new();
    let mut writes = RandomWrites::new(0x5107, 40);
    let mut outcomes: HashMap<String, u32> = HashMap::new();
    for step in 0..1_500u64 {
        let out = writes.step(&f, step * 10);
        let kind = match out {
            CommandOutcome::Refused(e) => format!("refused {:?}", e.code),
            CommandOutcome::Expired { removed, .. } => format!("expired {}", removed.min(1)),
            CommandOutcome::Registered { replaced, .. } => format!("Registered {replaced}"),
            other => format!("{other:?}"),
        };
        *outcomes.entry(kind).or_default() += 1;
        f.assert_index_consistent();
    }
    // The run went through every write path, not only inserts.
    for kind in [
        "Registered false",
        "Registered true",
        "AlreadyRegistered",
        "Removed",
        "expired 1",
        "refused StaleSeq",
        "Verified",
    ] {
        assert!(
            outcomes.get(kind).is_some_and(|n| *n >= 5),
            "{kind}: {outcomes:?}"
        );
    }
    assert!(f.read(|r| r.count().expect("count")) > 10);
    let copy = f.rebuilt_from_snapshot();
    copy.assert_index_consistent();
    assert_eq!(copy.stored(), f.stored(), "a snapshot carries every row");
    assert_eq!(
        copy.index_rows(),
        f.index_rows(),
        "and rebuilds the same index"
    );
    assert_eq!(copy.tombstones(), f.tombstones(), "and the tombstones");
    assert!(
        !f.tombstones().is_empty(),
        "the run left tombstones to carry"
    );
}

/// 1000 records, each in its own /16 so diversity does not bias the draw.
fn thousand_records() -> Fixture {
    let f = Fixture::new();
    let cmds: Vec<_> = (0..1_000u32)
        .map(|i| {
            let addr = format!("{}.{}.0.1:7000", 1 + i / 200, i % 200);
            let id = NodeIdentity::generate();
            served(id.sign_record(NET, &addr, 1, 1_000))
        })
        .collect();
    let stored = f.apply_all(0, &cmds);
    assert!(stored.iter().all(|o| *o
        == CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }));
    f
}

#[test]
fn samples_are_uniform_and_neighbours_are_not_drawn_together() {
    let f = thousand_records();
    let by_address: Vec<String> = f.read(|r| {
        let (page, _) = r.page(None, 1_000).expect("page");
        page.iter().map(|s| s.entry.address().to_string()).collect()
    });
    // The order of the index: coarse groups by slot (one entry each here).
    let by_slot: Vec<String> = f
        .index_rows()
        .into_iter()
        .filter(|(scope, _)| is_entry_scope(scope))
        .map(|(_, a)| String::from_utf8_lossy(&a).to_string())
        .collect();
    let mut rng = StdRng::seed_from_u64(42);
    let mut hits: HashMap<String, u32> = HashMap::new();
    let mut samples = Vec::new();
    const SAMPLES: u32 = 3_000;
    for _ in 0..SAMPLES {
        let s = f.read(|r| {
            r.sample(Pool::Node, 10, &none(), 0, &mut rng)
                .expect("sample")
        });
        assert_eq!(s.len(), 10);
        let s: BTreeSet<String> = addresses(&s).into_iter().collect();
        assert_eq!(s.len(), 10, "no record twice in one sample");
        for a in &s {
            *hits.entry(a.clone()).or_default() += 1;
        }
        samples.push(s);
    }
    // Each record is expected 30 times (binomial, sd ≈ 5.4).
    assert_eq!(hits.len(), 1_000, "every record is reachable");
    let (lo, hi) = (
        hits.values().min().copied().unwrap_or(0),
        hits.values().max().copied().unwrap_or(0),
    );
    assert!(
        (10..=55).contains(&lo) && (10..=55).contains(&hi),
        "{lo}..{hi}"
    );
    // A pair of neighbours shows up together about 10·9/(1000·999) × 3000 ≈ 0.27 times
    // (≈ 270 over all 999 pairs); a window over a fixed order would put each pair together
    // in about 30 samples.
    for (name, order) in [("address", &by_address), ("slot", &by_slot)] {
        let position: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i))
            .collect();
        let mut together = vec![0u32; order.len()];
        for s in &samples {
            let at: BTreeSet<usize> = s.iter().map(|a| position[a.as_str()]).collect();
            for p in &at {
                if at.contains(&(p + 1)) {
                    together[*p] += 1;
                }
            }
        }
        let total: u32 = together.iter().sum();
        let worst = together.iter().max().copied().unwrap_or(0);
        assert!(
            total < 540,
            "{name} order: {total} neighbour pairs co-sampled"
        );
        assert!(
            worst <= 5,
            "{name} order: one pair co-sampled {worst} times"
        );
    }
}

#[test]
fn samples_prefer_distinct_subnets_and_skip_expired_and_excluded() {
    let f = Fixture::new();
    for net in 0..4 {
        for host in 0..10 {
            let id = NodeIdentity::generate();
            let addr = format!("10.{net}.0.{host}:1");
            f.apply(0, served(id.sign_record(NET, &addr, 1, 1_000)));
        }
    }
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20 {
        let sample = f.read(|r| {
            r.sample(Pool::Node, 4, &none(), 0, &mut rng)
                .expect("sample")
        });
        let groups: BTreeSet<_> = addresses(&sample).iter().map(|a| subnet_group(a)).collect();
        assert_eq!(groups.len(), 4, "one per /16: {sample:?}");
    }
    let exclude = ExcludeSet::new(&["10.0.0.0:1".into()]).expect("exclude");
    let all = f.read(|r| {
        r.sample(Pool::Node, 100, &exclude, 0, &mut rng)
            .expect("sample")
    });
    assert_eq!(all.len(), 39);
    assert!(!addresses(&all).contains(&"10.0.0.0:1".to_string()));
    assert!(f
        .read(|r| r
            .sample(Pool::Node, 10, &none(), 1_000, &mut rng)
            .expect("sample"))
        .is_empty());
}

#[test]
fn diversity_is_relaxed_only_to_fill_the_sample() {
    let f = Fixture::new();
    let lonely = ["10.1.0.1:1", "10.2.0.1:1", "example.org:1"];
    let crowd = (0..40).map(|h| format!("10.9.0.{h}:1"));
    for addr in lonely.iter().map(|a| a.to_string()).chain(crowd) {
        let id = NodeIdentity::generate();
        f.apply(0, served(id.sign_record(NET, &addr, 1, 1_000)));
    }
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..20 {
        let got = addresses(&f.read(|r| {
            r.sample(Pool::Node, 10, &none(), 0, &mut rng)
                .expect("sample")
        }));
        assert_eq!(got.len(), 10, "topped up from the crowded /16");
        for a in lonely {
            assert!(got.contains(&a.to_string()), "{a} missing from {got:?}");
        }
    }
}

/// A measurement, not a check: run it in release mode with
/// `cargo test --release --lib sample_cost -- --ignored --nocapture`. Half the records
/// spread over many /16s and /24s, half crowded into a few /24s (a flood), all legacy.
#[test]
#[ignore = "measurement; run in release mode with --ignored --nocapture"]
fn sample_cost_on_a_large_registry() {
    for records in [10_000u32, 1_000_000] {
        let f = Fixture::new();
        let started = std::time::Instant::now();
        for chunk in 0..records.div_ceil(10_000) {
            let cmds: Vec<_> = (chunk * 10_000..((chunk + 1) * 10_000).min(records))
                .map(|i| RegistryCommand::RegisterLegacy {
                    address: if i % 2 == 0 {
                        format!(
                            "{}.{}.{}.1:{}",
                            1 + i % 250,
                            (i / 250) % 250,
                            i / 62_500,
                            1 + i % 60_000
                        )
                    } else {
                        format!(
                            "127.9.{}.{}:{}",
                            i % 4,
                            (i / 4) % 250,
                            1 + (i / 1_000) % 60_000
                        )
                    },
                    source_ip: "1.1.1.1".into(),
                    expires_at_ms: 1_000,
                    resolved: None,
                    limits: Default::default(),
                })
                .collect();
            f.apply_all(0, &cmds);
        }
        eprintln!("filled {records} records in {:?}", started.elapsed());
        let mut rng = StdRng::seed_from_u64(1);
        let limit = 100usize;
        let mut took: Vec<std::time::Duration> = (0..500)
            .map(|_| {
                let started = std::time::Instant::now();
                let s = f.read(|r| {
                    r.sample(Pool::Legacy, limit, &none(), 0, &mut rng)
                        .expect("sample")
                });
                assert_eq!(s.len(), limit);
                started.elapsed()
            })
            .collect();
        took.sort();
        let lookups = f.read(|r| lookups_per_sample(r, limit, &mut rng));
        eprintln!(
            "sample of {limit} from {records}: p50 {:?}, p99 {:?} (500 samples); \
             {lookups:.0} index lookups + {limit} entry reads per sample",
            took[took.len() / 2],
            took[took.len() * 99 / 100]
        );
    }
}

/// Counts the group index lookups (sizes and slots) a sample makes: the cost that must not
/// grow with the registry.
struct Counting<'a> {
    inner: &'a crate::registry::RegistryReader,
    lookups: std::cell::Cell<u64>,
}

impl GroupSource for Counting<'_> {
    fn size(&self, scope: &[u8]) -> Result<u64, crate::registry::RegistryError> {
        self.lookups.set(self.lookups.get() + 1);
        self.inner.size(scope)
    }
    fn member(&self, scope: &[u8], slot: u64) -> Result<Vec<u8>, crate::registry::RegistryError> {
        self.lookups.set(self.lookups.get() + 1);
        self.inner.member(scope, slot)
    }
}

/// Mean index lookups of 50 samples of `limit` from the legacy pool.
fn lookups_per_sample(r: &crate::registry::RegistryReader, limit: usize, rng: &mut StdRng) -> f64 {
    let counting = Counting {
        inner: r,
        lookups: std::cell::Cell::new(0),
    };
    for _ in 0..50 {
        let mut s = PeerSampler::new(&counting, Pool::Legacy, limit).expect("sampler");
        for _ in 0..limit {
            s.next_address(&counting, rng).expect("draw");
        }
    }
    counting.lookups.get() as f64 / 50.0
}
