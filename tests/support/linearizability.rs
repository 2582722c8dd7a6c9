//! A Wing–Gong linearizability checker for the registry, partitioned by peer address.
//!
//! Each key (peer address) is checked on its own: the key's registers and deregisters plus
//! every linearizable read projected onto "is the key present". The search is the iterative
//! Wing–Gong / Lowe algorithm used by porcupine: walk the call/return events in time order,
//! tentatively linearize a pending call whose model step matches its recorded result, and
//! backtrack when a return is reached whose call could not be linearized. A cache of
//! (linearized set, model state) prunes repeated states.
//!
//! Writes that did not succeed (failed or unknown) may or may not have taken effect: their
//! return is placed after every other event, so the search may linearize them anywhere after
//! their call, or (equivalently) never. Reads that did not succeed say nothing and are left
//! out.

use std::collections::{BTreeMap, HashSet};

use super::history::{Op, OpKind, Outcome};

/// The registry as seen by one key: absent, or present with the stored record's seq.
type KeyState = Option<u64>;

/// One operation on one key, as the checker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    Register { seq: u64, ok: bool },
    Deregister { seq: u64, ok: bool },
    Read { present: bool },
}

/// A key's operation with its time span; `complete_us == u64::MAX` for unknown results.
#[derive(Debug, Clone)]
pub struct Timed {
    pub op: KeyOp,
    pub invoke_us: u64,
    pub complete_us: u64,
}

/// Applies `op` to `state`: `None` if the recorded result is impossible there, else the
/// state after it. Mirrors `RegistryWriter`: a register needs a newer seq than the stored
/// record's; a deregister needs a record whose seq is not newer than its own.
pub fn step(state: KeyState, op: &KeyOp) -> Option<KeyState> {
    match *op {
        KeyOp::Read { present } => (state.is_some() == present).then_some(state),
        KeyOp::Register { seq, ok } => {
            let applies = state.is_none_or(|old| seq > old);
            match (applies, ok) {
                (true, _) => Some(Some(seq)),
                (false, true) => None,
                (false, false) => Some(state),
            }
        }
        KeyOp::Deregister { seq, ok } => {
            let applies = state.is_some_and(|old| seq >= old);
            match (applies, ok) {
                (true, _) => Some(None),
                (false, true) => None,
                (false, false) => Some(state),
            }
        }
    }
}

/// Splits a history into per-key histories (reads are projected onto every key).
pub fn partition(ops: &[Op], keys: &[String]) -> BTreeMap<String, Vec<Timed>> {
    let mut out: BTreeMap<String, Vec<Timed>> =
        keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for op in ops {
        let complete_us = if op.outcome.is_ok() {
            op.complete_us
        } else {
            u64::MAX
        };
        let ok = op.outcome.is_ok();
        match (&op.kind, &op.outcome) {
            (OpKind::Register { key, seq }, _) => {
                if let Some(v) = out.get_mut(key) {
                    v.push(Timed {
                        op: KeyOp::Register { seq: *seq, ok },
                        invoke_us: op.invoke_us,
                        complete_us,
                    });
                }
            }
            (OpKind::Deregister { key, seq }, _) => {
                if let Some(v) = out.get_mut(key) {
                    v.push(Timed {
                        op: KeyOp::Deregister { seq: *seq, ok },
                        invoke_us: op.invoke_us,
                        complete_us,
                    });
                }
            }
            (OpKind::Read, Outcome::Ok(Some(seen))) => {
                for (key, v) in out.iter_mut() {
                    v.push(Timed {
                        op: KeyOp::Read {
                            present: seen.contains(key),
                        },
                        invoke_us: op.invoke_us,
                        complete_us: op.complete_us,
                    });
                }
            }
            (OpKind::Read, _) => {}
        }
    }
    out
}

/// One call or return event in the doubly linked event list.
#[derive(Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// Whether `ops` (all on one key, starting from an absent key) is linearizable.
pub fn check_key(ops: &[Timed]) -> bool {
    let n = ops.len();
    // Events sorted by time; at equal times calls come first (overlapping is the lenient
    // reading of equal timestamps).
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        order.push((o.invoke_us, true, i));
        order.push((o.complete_us.max(o.invoke_us), false, i));
    }
    order.sort_by_key(|&(t, is_call, i)| (t, !is_call, i));
    // Node 0 is the head sentinel; events are 1..=2n.
    let mut ev = vec![
        Event {
            op: usize::MAX,
            is_call: false,
            prev: 0,
            next: 0,
        };
        2 * n + 2
    ];
    let mut ret_of = vec![0usize; n];
    for (pos, &(_, is_call, i)) in order.iter().enumerate() {
        let idx = pos + 1;
        ev[idx] = Event {
            op: i,
            is_call,
            prev: idx - 1,
            next: if idx == 2 * n { 0 } else { idx + 1 },
        };
        if !is_call {
            ret_of[i] = idx;
        }
    }
    ev[0].next = if n == 0 { 0 } else { 1 };
    let lift = |ev: &mut Vec<Event>, idx: usize| {
        let (p, nx) = (ev[idx].prev, ev[idx].next);
        ev[p].next = nx;
        if nx != 0 {
            ev[nx].prev = p;
        }
    };
    let unlift = |ev: &mut Vec<Event>, idx: usize| {
        let (p, nx) = (ev[idx].prev, ev[idx].next);
        ev[p].next = idx;
        if nx != 0 {
            ev[nx].prev = idx;
        }
    };
    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, KeyState)> = HashSet::new();
    let mut stack: Vec<(usize, KeyState)> = Vec::new();
    let mut state: KeyState = None;
    let mut entry = ev[0].next;
    while ev[0].next != 0 {
        if entry != 0 && ev[entry].is_call {
            let e = ev[entry];
            let i = e.op;
            if let Some(next_state) = step(state, &ops[i].op) {
                let mut next_lin = linearized.clone();
                next_lin[i / 64] |= 1 << (i % 64);
                if cache.insert((next_lin.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    linearized = next_lin;
                    lift(&mut ev, entry);
                    lift(&mut ev, ret_of[i]);
                    entry = ev[0].next;
                    continue;
                }
            }
            entry = e.next;
            continue;
        }
        // Ran off the end without linearizing everything, or reached the return of a call
        // not linearized yet: undo the last choice.
        let Some((call, prev_state)) = stack.pop() else {
            return false;
        };
        let i = ev[call].op;
        linearized[i / 64] &= !(1 << (i % 64));
        unlift(&mut ev, ret_of[i]);
        unlift(&mut ev, call);
        state = prev_state;
        entry = ev[call].next;
    }
    true
}
