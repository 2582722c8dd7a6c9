//! The write rules: register, renew, move, deregister, legacy, expiry and tombstones.

use super::{code, Fixture, NET};
use crate::record::NodeIdentity;
use crate::registry::{CommandOutcome, PeerEntry, RegistryCommand};
use crate::wire::ErrorCode;

#[test]
fn newer_seq_replaces_older_and_stale_is_refused() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    let reg = |seq| RegistryCommand::Register(id.sign_record(NET, "h:1", seq, 1_000));
    assert_eq!(
        f.apply(0, reg(5)),
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    assert_eq!(code(&f.apply(0, reg(5))), Some(ErrorCode::StaleSeq));
    assert_eq!(code(&f.apply(0, reg(4))), Some(ErrorCode::StaleSeq));
    assert_eq!(
        f.apply(0, reg(6)),
        CommandOutcome::Registered {
            replaced: true,
            moved_from: None
        }
    );
    assert_eq!(f.read(|r| r.count().expect("count")), 1);
}

#[test]
fn a_node_holds_one_record_and_moving_drops_the_old_one() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    f.apply(
        0,
        RegistryCommand::Register(id.sign_record(NET, "a:1", 1, 1_000)),
    );
    f.apply(
        0,
        RegistryCommand::Register(id.sign_record(NET, "b:1", 2, 1_000)),
    );
    assert!(f.read(|r| r.get("a:1").expect("get")).is_none());
    assert!(f.read(|r| r.get("b:1").expect("get")).is_some());
    assert_eq!(f.read(|r| r.count().expect("count")), 1);
}

#[test]
fn renewals_in_place_keep_the_node_row_so_a_later_move_still_drops_the_old_address() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    let at = |addr: &str, seq| RegistryCommand::Register(id.sign_record(NET, addr, seq, 1_000));
    f.apply(0, at("a:1", 1));
    for seq in 2..5 {
        assert_eq!(
            f.apply(0, at("a:1", seq)),
            CommandOutcome::Registered {
                replaced: true,
                moved_from: None
            }
        );
    }
    assert_eq!(
        f.apply(0, at("b:1", 5)),
        CommandOutcome::Registered {
            replaced: false,
            moved_from: Some("a:1".into())
        }
    );
    assert!(f.read(|r| r.get("a:1").expect("get")).is_none());
    assert_eq!(f.read(|r| r.count().expect("count")), 1);
    // Another node may now take a:1, and the first node's move back finds its row at b:1.
    let other = NodeIdentity::generate();
    f.apply(
        0,
        RegistryCommand::Register(other.sign_record(NET, "a:1", 1, 1_000)),
    );
    assert_eq!(
        f.apply(0, at("c:1", 6)),
        CommandOutcome::Registered {
            replaced: false,
            moved_from: Some("b:1".into())
        }
    );
    assert_eq!(f.read(|r| r.count().expect("count")), 2);
}

#[test]
fn live_signed_records_belong_to_their_owner_until_expiry() {
    let f = Fixture::new();
    let (a, b) = (NodeIdentity::generate(), NodeIdentity::generate());
    f.apply(
        0,
        RegistryCommand::Register(a.sign_record(NET, "h:1", 1, 1_000)),
    );
    let steal = RegistryCommand::Register(b.sign_record(NET, "h:1", 9, 5_000));
    assert_eq!(
        code(&f.apply(500, steal.clone())),
        Some(ErrorCode::NotOwner)
    );
    assert_eq!(
        f.apply(1_000, steal),
        CommandOutcome::Registered {
            replaced: true,
            moved_from: None
        }
    );
    let dereg = RegistryCommand::Deregister(a.sign_deregistration(NET, "h:1", 10));
    assert_eq!(code(&f.apply(1_000, dereg)), Some(ErrorCode::NotOwner));
}

#[test]
fn legacy_records_never_touch_signed_ones_and_only_their_ip_removes_them() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    f.apply(
        0,
        RegistryCommand::Register(id.sign_record(NET, "s:1", 1, 1_000)),
    );
    let legacy = |addr: &str, ip: &str| RegistryCommand::RegisterLegacy {
        resolved: None,
        address: addr.into(),
        source_ip: ip.into(),
        expires_at_ms: 2_000,
        limits: Default::default(),
    };
    let remove = |addr: &str, ip: &str| RegistryCommand::RemoveLegacy {
        address: addr.into(),
        source_ip: ip.into(),
    };
    assert_eq!(
        f.apply(0, legacy("s:1", "1.1.1.1")),
        CommandOutcome::AlreadyRegistered
    );
    assert!(matches!(
        f.read(|r| r.get("s:1").expect("get")),
        Some(PeerEntry::Signed(_))
    ));
    assert_eq!(
        code(&f.apply(0, remove("s:1", "1.1.1.1"))),
        Some(ErrorCode::NotOwner)
    );
    assert_eq!(
        f.apply(0, legacy("l:1", "1.1.1.1")),
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    assert_eq!(
        f.apply(0, legacy("l:1", "2.2.2.2")),
        CommandOutcome::AlreadyRegistered
    );
    assert_eq!(
        code(&f.apply(0, remove("l:1", "2.2.2.2"))),
        Some(ErrorCode::NotOwner)
    );
    assert_eq!(
        f.apply(0, remove("l:1", "1.1.1.1")),
        CommandOutcome::Removed
    );
    assert_eq!(
        code(&f.apply(0, remove("l:1", "1.1.1.1"))),
        Some(ErrorCode::NotFound)
    );
    // A signed record takes over a legacy address (its node moves there from s:1).
    f.apply(0, legacy("l:2", "1.1.1.1"));
    let take = RegistryCommand::Register(id.sign_record(NET, "l:2", 2, 1_000));
    assert_eq!(
        f.apply(0, take),
        CommandOutcome::Registered {
            replaced: true,
            moved_from: Some("s:1".into())
        }
    );
}

#[test]
fn expire_removes_due_records_in_bounded_batches() {
    let f = Fixture::new();
    for k in 0..5u64 {
        let id = NodeIdentity::generate();
        f.apply(
            0,
            RegistryCommand::Register(id.sign_record(NET, &format!("h:{}", k + 1), 1, 100 + k)),
        );
    }
    assert_eq!(f.read(|r| r.next_expiry().expect("next")), Some(100));
    let out = f.apply(102, RegistryCommand::Expire { limit: 2 });
    assert_eq!(
        out,
        CommandOutcome::Expired {
            removed: 2,
            more: true
        }
    );
    let out = f.apply(102, RegistryCommand::Expire { limit: 2 });
    assert_eq!(
        out,
        CommandOutcome::Expired {
            removed: 1,
            more: false
        }
    );
    assert_eq!(f.read(|r| r.count().expect("count")), 2);
    assert_eq!(f.read(|r| r.table_len().expect("len")), 2);
}

#[test]
fn a_record_replayed_after_its_deregistration_is_refused_and_a_newer_one_accepted() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    let captured = id.sign_record(NET, "10.0.0.1:1", 5, 10_000);
    assert_eq!(
        f.apply(0, RegistryCommand::Register(captured.clone())),
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    let dereg = id.sign_deregistration(NET, "10.0.0.1:1", 6);
    assert_eq!(
        f.apply(100, RegistryCommand::Deregister(dereg)),
        CommandOutcome::Removed
    );
    assert_eq!(f.read(|r| r.count().expect("count")), 0);
    let t = f.read(|r| r.tombstone(&id.node_id()).expect("tombstone"));
    assert_eq!(
        t.map(|t| (t.seq, t.expires_at_ms)),
        Some((6, 10_000)),
        "deregistration seq, record expiry"
    );
    // The captured record, and any record up to the deregistration's seq, at any address.
    let replay = f.apply(200, RegistryCommand::Register(captured));
    assert_eq!(code(&replay), Some(ErrorCode::StaleSeq), "{replay:?}");
    let moved = id.sign_record(NET, "10.0.0.2:1", 6, 10_000);
    assert_eq!(
        code(&f.apply(200, RegistryCommand::Register(moved))),
        Some(ErrorCode::StaleSeq)
    );
    assert!(f.read(|r| r.get("10.0.0.1:1").expect("get")).is_none());
    // The owner comes back with a newer seq.
    let fresh = id.sign_record(NET, "10.0.0.1:1", 7, 10_000);
    assert_eq!(
        f.apply(300, RegistryCommand::Register(fresh)),
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    assert_eq!(f.read(|r| r.count().expect("count")), 1);
}

#[test]
fn tombstones_are_swept_by_expire_after_which_the_old_records_are_expired_too() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    let captured = id.sign_record(NET, "10.0.0.1:1", 5, 1_000);
    f.apply(0, RegistryCommand::Register(captured.clone()));
    f.apply(
        0,
        RegistryCommand::Deregister(id.sign_deregistration(NET, "10.0.0.1:1", 5)),
    );
    // The leader's sweep sees the tombstone's expiry as work to do.
    assert_eq!(f.read(|r| r.next_expiry().expect("next")), Some(1_000));
    assert_eq!(
        f.apply(999, RegistryCommand::Expire { limit: 10 }),
        CommandOutcome::Expired {
            removed: 0,
            more: false
        }
    );
    assert_eq!(
        f.apply(1_000, RegistryCommand::Expire { limit: 10 }),
        CommandOutcome::Expired {
            removed: 1,
            more: false
        }
    );
    assert!(f
        .read(|r| r.tombstone(&id.node_id()).expect("tombstone"))
        .is_none());
    assert_eq!(f.read(|r| r.next_expiry().expect("next")), None);
    // No window opens: the captured record has expired as well, and is refused as such.
    let replay = f.apply(1_000, RegistryCommand::Register(captured));
    assert_eq!(code(&replay), Some(ErrorCode::InvalidRecord), "{replay:?}");
}

#[test]
fn a_renewal_that_expires_sooner_keeps_the_longer_lived_record_refused() {
    let f = Fixture::new();
    let id = NodeIdentity::generate();
    let long = id.sign_record(NET, "10.0.0.1:1", 1, 5_000);
    f.apply(0, RegistryCommand::Register(long.clone()));
    let short = id.sign_record(NET, "10.0.0.1:1", 2, 2_000);
    assert_eq!(
        f.apply(0, RegistryCommand::Register(short)),
        CommandOutcome::Registered {
            replaced: true,
            moved_from: None
        }
    );
    // The short record expires and is swept; the long one must not come back.
    f.apply(2_000, RegistryCommand::Expire { limit: 10 });
    assert_eq!(f.read(|r| r.count().expect("count")), 0);
    let replay = f.apply(2_500, RegistryCommand::Register(long));
    assert_eq!(code(&replay), Some(ErrorCode::StaleSeq), "{replay:?}");
    // A renewal that lives longer needs no tombstone.
    let other = NodeIdentity::generate();
    f.apply(
        0,
        RegistryCommand::Register(other.sign_record(NET, "10.0.0.2:1", 1, 3_000)),
    );
    f.apply(
        0,
        RegistryCommand::Register(other.sign_record(NET, "10.0.0.3:1", 2, 4_000)),
    );
    assert!(f
        .read(|r| r.tombstone(&other.node_id()).expect("tombstone"))
        .is_none());
}

#[test]
fn one_expire_command_shares_its_limit_between_records_and_tombstones() {
    let f = Fixture::new();
    for k in 0..3u64 {
        let id = NodeIdentity::generate();
        let addr = format!("10.0.0.{k}:1");
        f.apply(
            0,
            RegistryCommand::Register(id.sign_record(NET, &addr, 1, 100)),
        );
        if k > 0 {
            f.apply(
                0,
                RegistryCommand::Deregister(id.sign_deregistration(NET, &addr, 1)),
            );
        }
    }
    // One record and two tombstones are due.
    let expired = |limit| f.apply(100, RegistryCommand::Expire { limit });
    assert_eq!(
        expired(2),
        CommandOutcome::Expired {
            removed: 2,
            more: true
        }
    );
    assert_eq!(
        expired(2),
        CommandOutcome::Expired {
            removed: 1,
            more: false
        }
    );
    assert_eq!(f.read(|r| r.next_expiry().expect("next")), None);
}
