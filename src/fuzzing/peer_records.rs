//! Target `peer_records`: arbitrary bytes as a MessagePack [`PeerRecord`] and
//! [`Deregistration`] (as a member receives them), verified; and records signed by a fixed
//! key, then possibly tampered with as the input says: an untouched one must verify, a
//! touched one must not.

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};

use super::FUZZ_NETWORK;
use crate::record::{Deregistration, NodeIdentity, PeerRecord};

/// Longest address the structured part tries (beyond the 259-byte limit, to reach it).
const MAX_FUZZ_ADDRESS: usize = 300;

/// The target body.
pub fn peer_records(data: &[u8]) {
    if let Ok(record) = crate::wire::decode_body::<PeerRecord>(data) {
        let _ = record.verify(FUZZ_NETWORK);
        let _ = record.check_expiry(u64::MAX / 2, u64::MAX / 2, u64::MAX);
    }
    if let Ok(dereg) = crate::wire::decode_body::<Deregistration>(data) {
        let _ = dereg.verify(FUZZ_NETWORK);
    }
    let _ = signed_then_tampered(&mut Unstructured::new(data));
}

fn identity() -> &'static NodeIdentity {
    static ID: OnceLock<NodeIdentity> = OnceLock::new();
    ID.get_or_init(|| NodeIdentity::from_secret([7; 32]))
}

fn signed_then_tampered(u: &mut Unstructured<'_>) -> Result<()> {
    // Signing and verifying cost far more than decoding: one input in four takes this path,
    // so the decoders above get most of the executions.
    if !u.ratio(1, 4)? {
        return Ok(());
    }
    let len = u.int_in_range(0..=MAX_FUZZ_ADDRESS)?;
    let address = String::from_utf8_lossy(u.bytes(len)?).into_owned();
    let (seq, expiry): (u64, u64) = (u.arbitrary()?, u.arbitrary()?);
    let deregister: bool = u.arbitrary()?;
    let tamper: u8 = u.int_in_range(0..=5)?;
    let flip: u8 = u.int_in_range(1..=255)?;
    let at: usize = u.arbitrary()?;
    if deregister {
        let mut d = identity().sign_deregistration(FUZZ_NETWORK, &address, seq);
        match tamper {
            1 => d.seq ^= u64::from(flip),
            2 => flip_byte(&mut d.signature, at, flip),
            3 => flip_byte(&mut d.public_key, at, flip),
            4 => d.address.push('x'),
            _ => {}
        }
        let network = if tamper == 5 { "other" } else { FUZZ_NETWORK };
        assert_eq!(
            d.verify(network).is_ok(),
            tamper == 0,
            "deregistration {d:?}"
        );
        return Ok(());
    }
    let mut r = identity().sign_record(FUZZ_NETWORK, &address, seq, expiry);
    match tamper {
        1 => r.seq ^= u64::from(flip),
        2 => flip_byte(&mut r.signature, at, flip),
        3 => r.expires_at_ms ^= u64::from(flip),
        4 => flip_byte(&mut r.public_key, at, flip),
        _ => {}
    }
    let network = if tamper == 5 { "other" } else { FUZZ_NETWORK };
    let valid_address = crate::record::PeerAddress::parse(&address).is_ok();
    assert_eq!(
        r.verify(network).is_ok(),
        tamper == 0 && valid_address,
        "record {r:?}"
    );
    // A record survives the wire unchanged.
    let bytes = rmp_serde::to_vec_named(&r).expect("a record encodes");
    let back: PeerRecord = rmp_serde::from_slice(&bytes).expect("a record decodes");
    assert_eq!(back, r);
    Ok(())
}

fn flip_byte(bytes: &mut [u8], at: usize, flip: u8) {
    if !bytes.is_empty() {
        let i = at % bytes.len();
        bytes[i] ^= flip;
    }
}
