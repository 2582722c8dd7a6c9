//! [`Miner`]: searches proof-of-work nonces on threads of its own (a `SyncArbiter`), so that
//! hashing never stalls the actors that talk to peers.

use actix::{Actor, Handler, Message, SyncContext};

use crate::chain::{mine, Block};

/// The mining worker. Each request searches a bounded number of nonces, so that the chain
/// actor can move the miner to a new tip between requests.
pub struct Miner;

impl Actor for Miner {
    type Context = SyncContext<Self>;
}

/// Search up to `max_tries` nonces from `start_nonce` for a block on `parent`.
#[derive(Message)]
#[rtype(result = "Option<Block>")]
pub struct MineRequest {
    pub parent: Block,
    pub data: Vec<u8>,
    pub timestamp_ms: u64,
    pub difficulty: u32,
    pub start_nonce: u64,
    pub max_tries: u64,
}

impl Handler<MineRequest> for Miner {
    type Result = Option<Block>;

    fn handle(&mut self, req: MineRequest, _: &mut SyncContext<Self>) -> Option<Block> {
        mine(
            &req.parent,
            req.data,
            req.timestamp_ms,
            req.difficulty,
            req.start_nonce,
            req.max_tries,
        )
    }
}
