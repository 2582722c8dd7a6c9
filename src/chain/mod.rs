//! The proof-of-work chain: blocks, their validation, and the rule that picks the best chain.
//! Everything here is pure, synchronous and free of I/O, so it is tested in isolation and
//! can run off the actor threads.
//!
//! Layout:
//! - [`block`] — [`Block`], its hash and its work.
//! - [`genesis`] — the fixed first block of each network.
//! - [`validation`] — checks a block against its parent ([`ValidationError`]).
//! - [`proof_of_work`] — mining: searching a nonce.

pub mod block;
pub mod genesis;
pub mod proof_of_work;
pub mod validation;

pub use block::{Block, BlockHash};
pub use genesis::genesis;
pub use proof_of_work::mine;
pub use validation::{validate_block, ValidationError, ValidationRules};
