//! Target `blocks`: arbitrary bytes as a MessagePack [`Block`] (as a node receives one in
//! NEW_BLOCK) validated on the genesis; and a parent and child built from the input, the
//! child hashed and mined at a low difficulty so that every rule is reached, then possibly
//! tampered with. In both, [`validate_block`] must accept exactly the blocks that satisfy
//! every rule, checked here one by one.

use arbitrary::{Result, Unstructured};

use super::FUZZ_NETWORK;
use crate::chain::block::meets_difficulty;
use crate::chain::validation::{MAX_BLOCK_DATA, MAX_FUTURE_DRIFT_MS};
use crate::chain::{genesis, mine, validate_block, Block, ValidationRules};

/// Highest difficulty the structured part mines at (a few hashes on average).
const MAX_FUZZ_DIFFICULTY: u32 = 4;
/// Nonces tried when mining a child.
const MINE_TRIES: u64 = 64;
/// "Now" for the wire part: blocks from the input may sit anywhere around it.
const NOW_MS: u64 = 1_700_000_000_000;

/// The target body.
pub fn blocks(data: &[u8]) {
    if let Ok(block) = crate::wire::decode_body::<Block>(data) {
        let bytes = rmp_serde::to_vec_named(&block).expect("a block encodes");
        let back: Block = rmp_serde::from_slice(&bytes).expect("a block decodes");
        assert_eq!(back, block, "decode -> encode -> decode changed the block");
        let rules = ValidationRules {
            difficulty: block.difficulty,
        };
        check(&block, &genesis(FUZZ_NETWORK), rules, NOW_MS);
    }
    let _ = structured(&mut Unstructured::new(data));
}

fn structured(u: &mut Unstructured<'_>) -> Result<()> {
    let parent = Block {
        index: u.arbitrary()?,
        timestamp_ms: u.arbitrary()?,
        prev_hash: u.arbitrary()?,
        data: Vec::new(),
        nonce: 0,
        difficulty: 0,
        hash: u.arbitrary()?,
    };
    let mut difficulty = u.int_in_range(0..=MAX_FUZZ_DIFFICULTY)?;
    let now_ms: u64 = u.arbitrary()?;
    let timestamp: u64 = u.arbitrary()?;
    // Mostly small data; sometimes just at or past the limit, mined at difficulty 0 (one
    // hash) because hashing 64 KiB many times would slow the run down.
    let data = if u.ratio(1, 16)? {
        difficulty = 0;
        vec![0; MAX_BLOCK_DATA + u.int_in_range(0..=1)?]
    } else {
        u.arbitrary::<Vec<u8>>()?
    };
    let rules = ValidationRules { difficulty };
    let Some(mut child) = mine(
        &parent,
        data,
        timestamp,
        difficulty,
        u.arbitrary()?,
        MINE_TRIES,
    ) else {
        return Ok(());
    };
    match u.int_in_range(0..=6)? {
        1 => child.index = u.arbitrary()?,
        2 => child.prev_hash = u.arbitrary()?,
        3 => child.difficulty = u.arbitrary()?,
        4 => child.timestamp_ms = u.arbitrary()?,
        5 => child.hash = u.arbitrary()?,
        6 => child.nonce = child.nonce.wrapping_add(1),
        _ => {}
    }
    check(&child, &parent, rules, now_ms);
    Ok(())
}

/// `validate_block` agrees with every rule checked on its own.
fn check(block: &Block, parent: &Block, rules: ValidationRules, now_ms: u64) {
    let every_rule = parent.index.checked_add(1) == Some(block.index)
        && block.prev_hash == parent.hash
        && block.data.len() <= MAX_BLOCK_DATA
        && block.difficulty == rules.difficulty
        && block.timestamp_ms > parent.timestamp_ms
        && block.timestamp_ms <= now_ms.saturating_add(MAX_FUTURE_DRIFT_MS)
        && block.compute_hash() == block.hash
        && meets_difficulty(&block.hash, block.difficulty);
    let verdict = validate_block(block, parent, rules, now_ms);
    assert_eq!(verdict.is_ok(), every_rule, "{verdict:?} for {block:?}");
}
