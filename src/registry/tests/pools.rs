//! The two pools and verification: what is sampled, what is only stored.

use std::net::IpAddr;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{code, served, Fixture, NET};
use crate::record::NodeIdentity;
use crate::registry::{CommandOutcome, ExcludeSet, Pool, RegistryCommand};
use crate::wire::ErrorCode;

fn sample(f: &Fixture, pool: Pool) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(3);
    f.read(|r| {
        r.sample(pool, 1_000, &ExcludeSet::default(), 0, &mut rng)
            .expect("sample")
    })
    .iter()
    .map(|e| e.address().to_string())
    .collect()
}

fn unchecked(id: &NodeIdentity, address: &str, seq: u64) -> RegistryCommand {
    RegistryCommand::RegisterSigned {
        record: id.sign_record(NET, address, seq, 10_000),
        resolved: None,
        verified: false,
    }
}

fn mark(id: &NodeIdentity, address: &str, seq: u64) -> RegistryCommand {
    RegistryCommand::MarkVerified {
        address: address.into(),
        node_id: id.node_id(),
        seq,
    }
}

#[test]
fn an_unverified_record_is_stored_but_sampled_only_once_marked_and_renewals_keep_it() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    f.apply(0, unchecked(&id, "10.0.0.1:7000", 1));
    assert!(sample(&f, Pool::Node).is_empty());
    assert!(f.read(|r| r.get("10.0.0.1:7000").expect("get")).is_some());
    let queue = f.read(|r| r.unverified(None, 10).expect("queue"));
    assert_eq!(queue.len(), 1);
    // A mark for another node, or an older seq than stored, changes nothing.
    let other = NodeIdentity::generate();
    let refused = f.apply(0, mark(&other, "10.0.0.1:7000", 1));
    assert_eq!(code(&refused), Some(ErrorCode::NotFound));
    f.apply(0, unchecked(&id, "10.0.0.1:7000", 5));
    assert_eq!(
        code(&f.apply(0, mark(&id, "10.0.0.1:7000", 6))),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        f.apply(0, mark(&id, "10.0.0.1:7000", 1)),
        CommandOutcome::Verified
    );
    assert_eq!(sample(&f, Pool::Node), ["10.0.0.1:7000"]);
    assert!(f
        .read(|r| r.unverified(None, 10).expect("queue"))
        .is_empty());
    // A renewal at the same address keeps the verification...
    f.apply(0, unchecked(&id, "10.0.0.1:7000", 7));
    assert_eq!(sample(&f, Pool::Node), ["10.0.0.1:7000"]);
    // ...a move to another address needs a new one.
    f.apply(0, unchecked(&id, "10.0.0.2:7000", 8));
    assert!(sample(&f, Pool::Node).is_empty());
    assert_eq!(f.read(|r| r.unverified(None, 10).expect("queue")).len(), 1);
    f.assert_index_consistent();
}

#[test]
fn legacy_records_are_only_in_the_legacy_pool_and_signed_only_in_the_node_pool() {
    let f = Fixture::new();
    for i in 0..20 {
        f.apply(
            0,
            RegistryCommand::RegisterLegacy {
                address: format!("10.{i}.0.1:3000"),
                source_ip: "1.1.1.1".into(),
                expires_at_ms: 10_000,
                resolved: None,
                limits: Default::default(),
            },
        );
        let id = NodeIdentity::generate();
        f.apply(
            0,
            served(id.sign_record(NET, &format!("10.{i}.0.2:7000"), 1, 10_000)),
        );
    }
    let node = sample(&f, Pool::Node);
    let legacy = sample(&f, Pool::Legacy);
    assert_eq!((node.len(), legacy.len()), (20, 20));
    assert!(node.iter().all(|a| a.ends_with(":7000")), "{node:?}");
    assert!(legacy.iter().all(|a| a.ends_with(":3000")), "{legacy:?}");
    f.assert_index_consistent();
}

#[test]
fn names_count_in_the_group_of_their_resolved_address_and_unresolved_ones_share_one() {
    let f = Fixture::new();
    let into: IpAddr = "10.7.7.7".parse().expect("ip");
    for i in 0..50 {
        let id = NodeIdentity::generate();
        f.apply(
            0,
            RegistryCommand::RegisterSigned {
                record: id.sign_record(NET, &format!("n{i}.example:7000"), 1, 10_000),
                resolved: Some(into),
                verified: true,
            },
        );
        let id = NodeIdentity::generate();
        f.apply(
            0,
            served(id.sign_record(NET, &format!("bogus{i}.invalid:1"), 1, 10_000)),
        );
    }
    let lonely = NodeIdentity::generate();
    f.apply(
        0,
        served(lonely.sign_record(NET, "10.8.0.1:7000", 1, 10_000)),
    );
    // Three coarse groups: 10.7/16 (fifty names), unresolved (fifty names), 10.8/16.
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20 {
        let got: Vec<String> = f
            .read(|r| {
                r.sample(Pool::Node, 3, &ExcludeSet::default(), 0, &mut rng)
                    .expect("sample")
            })
            .iter()
            .map(|e| e.address().to_string())
            .collect();
        assert!(got.contains(&"10.8.0.1:7000".to_string()), "{got:?}");
        assert_eq!(got.iter().filter(|a| a.contains(".invalid")).count(), 1);
        assert_eq!(got.iter().filter(|a| a.contains(".example")).count(), 1);
    }
    f.assert_index_consistent();
}
