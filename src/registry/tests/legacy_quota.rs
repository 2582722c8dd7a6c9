//! The legacy-records-held quota: counted per source IP and subnet in the registry, checked
//! against the limits the command carries.

use redb::ReadableDatabase;

use super::{code, Fixture};
use crate::registry::legacy_quota::{LEGACY_BY_SOURCE, LEGACY_BY_SUBNET, LEGACY_QUOTA_META};
use crate::registry::{CommandOutcome, LegacyLimits, LegacyQuota, RegistryCommand};
use crate::wire::ErrorCode;

fn legacy(addr: &str, ip: &str, expires: u64, per_ip: u32, per_subnet: u32) -> RegistryCommand {
    RegistryCommand::RegisterLegacy {
        address: addr.into(),
        source_ip: ip.into(),
        expires_at_ms: expires,
        resolved: None,
        limits: LegacyLimits { per_ip, per_subnet },
    }
}

fn held(f: &Fixture, ip: &str) -> (u64, u64) {
    let txn = f.begin_write();
    let out = LegacyQuota::open(&txn)
        .expect("open")
        .held(ip)
        .expect("held");
    txn.abort().expect("abort");
    out
}

#[test]
fn an_ip_and_a_subnet_hold_at_most_their_limit_and_refreshes_do_not_count() {
    let f = Fixture::new();
    for i in 0..3 {
        let out = f.apply(0, legacy(&format!("h{i}:1"), "10.0.0.1", 1_000, 3, 5));
        assert_eq!(
            out,
            CommandOutcome::Registered {
                replaced: false,
                moved_from: None
            }
        );
    }
    let refused = f.apply(0, legacy("h3:1", "10.0.0.1", 1_000, 3, 5));
    assert_eq!(code(&refused), Some(ErrorCode::Unavailable));
    assert!(format!("{refused:?}").contains("--legacy-records-per-ip"));
    // Its own records may still be refreshed.
    assert_eq!(
        f.apply(0, legacy("h0:1", "10.0.0.1", 2_000, 3, 5)),
        CommandOutcome::AlreadyRegistered
    );
    // A neighbour in the same /24 fills the subnet's limit of 5.
    for i in 0..2 {
        let out = f.apply(0, legacy(&format!("n{i}:1"), "10.0.0.2", 1_000, 3, 5));
        assert_eq!(
            out,
            CommandOutcome::Registered {
                replaced: false,
                moved_from: None
            }
        );
    }
    let refused = f.apply(0, legacy("n2:1", "10.0.0.2", 1_000, 3, 5));
    assert!(
        format!("{refused:?}").contains("10.0.0.0/24"),
        "{refused:?}"
    );
    // Another /24 is not affected, nor is a command without limits (logged before quotas).
    let out = f.apply(0, legacy("o:1", "10.0.1.1", 1_000, 3, 5));
    assert_eq!(
        out,
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    let out = f.apply(0, legacy("h9:1", "10.0.0.1", 1_000, 0, 0));
    assert_eq!(
        out,
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    assert_eq!(held(&f, "10.0.0.1"), (4, 6));
}

#[test]
fn removal_and_expiry_give_the_quota_back() {
    let f = Fixture::new();
    for i in 0..2 {
        f.apply(0, legacy(&format!("h{i}:1"), "10.0.0.1", 1_000 + i, 2, 0));
    }
    let remove = RegistryCommand::RemoveLegacy {
        address: "h0:1".into(),
        source_ip: "10.0.0.1".into(),
    };
    assert_eq!(f.apply(0, remove), CommandOutcome::Removed);
    assert_eq!(held(&f, "10.0.0.1"), (1, 1));
    let out = f.apply(0, legacy("h2:1", "10.0.0.1", 5_000, 2, 0));
    assert_eq!(
        out,
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
    f.apply(1_001, RegistryCommand::Expire { limit: 100 });
    assert_eq!(held(&f, "10.0.0.1"), (1, 1));
    f.apply(5_000, RegistryCommand::Expire { limit: 100 });
    assert_eq!(held(&f, "10.0.0.1"), (0, 0));
}

#[test]
fn a_registry_without_counts_is_counted_when_opened() {
    let f = Fixture::new();
    for i in 0..4 {
        f.apply(0, legacy(&format!("h{i}:1"), "10.0.0.1", 1_000, 0, 0));
    }
    // As a registry written before the quota tables existed: no counts, no marker.
    let txn = f.begin_write();
    txn.delete_table(LEGACY_BY_SOURCE).expect("drop");
    txn.delete_table(LEGACY_BY_SUBNET).expect("drop");
    txn.delete_table(LEGACY_QUOTA_META).expect("drop");
    txn.commit().expect("commit");
    assert_eq!(held(&f, "10.0.0.1"), (4, 4));
    let refused = f.apply(0, legacy("h4:1", "10.0.0.1", 1_000, 4, 0));
    assert_eq!(code(&refused), Some(ErrorCode::Unavailable));
    let txn = f.db.begin_read().expect("read");
    assert!(txn.open_table(LEGACY_QUOTA_META).is_ok());
}

#[test]
fn a_snapshot_install_rebuilds_the_same_counts() {
    let f = Fixture::new();
    for i in 0..5 {
        f.apply(0, legacy(&format!("a{i}:1"), "10.0.0.1", 1_000, 0, 0));
        f.apply(0, legacy(&format!("b{i}:1"), "10.0.0.2", 1_000, 0, 0));
    }
    let copy = f.rebuilt_from_snapshot();
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.9.9"] {
        assert_eq!(held(&copy, ip), held(&f, ip), "{ip}");
    }
    assert_eq!(held(&copy, "10.0.0.1"), (5, 10));
    // And the copy refuses what the original refuses.
    let over = legacy("c:1", "10.0.0.1", 1_000, 5, 0);
    assert_eq!(
        code(&copy.apply(0, over.clone())),
        Some(ErrorCode::Unavailable)
    );
    assert_eq!(code(&f.apply(0, over)), Some(ErrorCode::Unavailable));
}

#[test]
fn a_signed_record_taking_a_legacy_address_frees_its_place() {
    let f = Fixture::new();
    f.apply(0, legacy("h:1", "10.0.0.1", 1_000, 1, 0));
    assert_eq!(held(&f, "10.0.0.1"), (1, 1));
    let id = crate::record::NodeIdentity::generate();
    let signed = RegistryCommand::Register(id.sign_record(super::NET, "h:1", 1, 1_000));
    assert_eq!(
        f.apply(0, signed),
        CommandOutcome::Registered {
            replaced: true,
            moved_from: None
        }
    );
    assert_eq!(held(&f, "10.0.0.1"), (0, 0));
    let out = f.apply(0, legacy("g:1", "10.0.0.1", 1_000, 1, 0));
    assert_eq!(
        out,
        CommandOutcome::Registered {
            replaced: false,
            moved_from: None
        }
    );
}
