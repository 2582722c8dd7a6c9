//! Unit tests of the chaos suite's linearizability checker on small hand-made histories.

mod support;

use support::linearizability::{check_key, step, KeyOp, Timed};

const UNKNOWN: u64 = u64::MAX;

fn op(op: KeyOp, invoke_us: u64, complete_us: u64) -> Timed {
    Timed {
        op,
        invoke_us,
        complete_us,
    }
}
fn reg(seq: u64) -> KeyOp {
    KeyOp::Register { seq, ok: true }
}
fn dereg(seq: u64) -> KeyOp {
    KeyOp::Deregister { seq, ok: true }
}
fn read(present: bool) -> KeyOp {
    KeyOp::Read { present }
}

#[test]
fn model_follows_the_registry_rules() {
    assert_eq!(step(None, &reg(1)), Some(Some(1)));
    assert_eq!(
        step(Some(2), &reg(1)),
        None,
        "stale register cannot succeed"
    );
    assert_eq!(
        step(Some(2), &KeyOp::Register { seq: 1, ok: false }),
        Some(Some(2))
    );
    assert_eq!(step(Some(2), &dereg(2)), Some(None));
    assert_eq!(step(None, &dereg(3)), None, "nothing to remove");
    assert_eq!(step(None, &read(false)), Some(None));
    assert_eq!(step(None, &read(true)), None);
}

#[test]
fn sequential_history_is_linearizable() {
    let h = [
        op(read(false), 0, 1),
        op(reg(1), 2, 3),
        op(read(true), 4, 5),
        op(dereg(2), 6, 7),
        op(read(false), 8, 9),
    ];
    assert!(check_key(&h));
}

#[test]
fn read_concurrent_with_a_write_may_see_either_state() {
    for seen in [false, true] {
        let h = [op(reg(1), 0, 10), op(read(seen), 2, 5)];
        assert!(check_key(&h), "read saw {seen}");
    }
}

#[test]
fn stale_read_after_an_acknowledged_write_is_not_linearizable() {
    let h = [op(reg(1), 0, 1), op(read(false), 2, 3)];
    assert!(!check_key(&h));
}

#[test]
fn lost_write_is_not_linearizable() {
    // Acknowledged, seen, then gone without any removal.
    let h = [
        op(reg(1), 0, 1),
        op(read(true), 2, 3),
        op(read(false), 4, 5),
    ];
    assert!(!check_key(&h));
}

#[test]
fn reads_must_agree_on_one_order() {
    // Two reads after the write completed cannot disagree; and two overlapping reads
    // that see "present, then absent" need a removal between them.
    let h = [
        op(reg(1), 0, 10),
        op(read(true), 1, 2),
        op(read(false), 3, 4),
    ];
    assert!(!check_key(&h));
}

#[test]
fn unknown_write_may_take_effect_late_or_never() {
    let late = [
        op(KeyOp::Register { seq: 1, ok: false }, 0, UNKNOWN),
        op(read(false), 5, 6),
        op(read(true), 7, 8),
    ];
    assert!(check_key(&late), "applied after the first read");
    let never = [
        op(KeyOp::Register { seq: 1, ok: false }, 0, UNKNOWN),
        op(read(false), 5, 6),
    ];
    assert!(check_key(&never), "never applied");
    let flapping = [
        op(KeyOp::Register { seq: 1, ok: false }, 0, UNKNOWN),
        op(read(true), 5, 6),
        op(read(false), 7, 8),
    ];
    assert!(!check_key(&flapping), "applied once, cannot vanish");
}

#[test]
fn phantom_presence_is_not_linearizable() {
    let h = [op(read(true), 0, 1)];
    assert!(!check_key(&h));
}

#[test]
fn a_write_cannot_take_effect_before_it_was_invoked() {
    let h = [op(read(true), 0, 1), op(reg(1), 2, 3)];
    assert!(!check_key(&h));
}

#[test]
fn many_concurrent_reads_are_checked_quickly() {
    let mut h = vec![op(reg(1), 0, 1_000)];
    for i in 0..2_000u64 {
        h.push(op(read(i >= 500), 10 + i * 10, 15 + i * 10));
    }
    // Reads before 500 see absent, after see present: fine while the write is pending.
    assert!(
        !check_key(&h),
        "register completed at 1000, later reads must see it"
    );
    let mut h = vec![op(reg(1), 0, 100_000)];
    for i in 0..2_000u64 {
        h.push(op(read(i >= 500), 10 + i * 10, 15 + i * 10));
    }
    assert!(check_key(&h));
}
