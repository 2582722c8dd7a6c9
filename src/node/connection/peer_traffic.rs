//! What a [`Connection`] does with a ready peer's messages: pings, address exchange (rate
//! limited), block requests (rate limited, then deferred, then refused) and blocks for the
//! chain actor.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{Connection, Direction, GETADDR_EVERY, GETBLOCKS_PER_SECOND, MAX_DEFERRED_GETBLOCKS};
use crate::chain::BlockHash;
use crate::node::chain_sync::{BlockAnnounced, BlocksArrived, ServeBlocks};
use crate::node::peer_manager::{AddrsLearned, SampleAddrs};
use crate::wire::{PeerMessage, MAX_ADDRS_PER_MESSAGE};

impl Connection {
    pub(super) fn on_ready_message(&mut self, msg: PeerMessage, ctx: &mut Context<Self>) {
        match msg {
            PeerMessage::Ping { nonce } => self.send(PeerMessage::Pong { nonce }, ctx),
            PeerMessage::Pong { .. } => {}
            PeerMessage::GetAddr => {
                let recently = self
                    .last_getaddr_served
                    .is_some_and(|t| t.elapsed() < GETADDR_EVERY);
                if recently {
                    tracing::debug!(peer = %self.remote, "GetAddr rate limited");
                    return;
                }
                self.last_getaddr_served = Some(Instant::now());
                self.manager
                    .send(SampleAddrs {
                        exclude: self.direction_addr(),
                    })
                    .into_actor(self)
                    .map(|addrs, act, ctx| {
                        if let Ok(addrs) = addrs {
                            act.send(PeerMessage::Addr { addrs }, ctx);
                        }
                    })
                    .spawn(ctx);
            }
            PeerMessage::Addr { mut addrs } => {
                if !self.getaddr_pending {
                    tracing::debug!(peer = %self.remote, "unsolicited Addr ignored");
                    return;
                }
                self.getaddr_pending = false;
                if addrs.len() > MAX_ADDRS_PER_MESSAGE {
                    self.penalise(20, "more addresses than allowed");
                    addrs.truncate(MAX_ADDRS_PER_MESSAGE);
                }
                self.manager.do_send(AddrsLearned {
                    addrs,
                    from: self.remote.ip(),
                });
            }
            PeerMessage::GetBlocks { locator, limit } => self.get_blocks(locator, limit, ctx),
            PeerMessage::Blocks { blocks, tip } => self.chain.do_send(BlocksArrived {
                conn_id: self.id,
                blocks,
                tip,
            }),
            PeerMessage::NewBlock { block } => self.chain.do_send(BlockAnnounced {
                conn_id: self.id,
                block,
            }),
            PeerMessage::Goodbye { reason } => {
                tracing::debug!(peer = %self.remote, %reason, "peer said goodbye");
                ctx.stop();
            }
            other => {
                self.penalise(10, "unexpected message");
                tracing::debug!(peer = %self.remote, ?other, "unexpected message ignored");
            }
        }
    }

    /// Serves a block request now, in a later second, or not at all (rate limit).
    pub(super) fn get_blocks(
        &mut self,
        locator: Vec<BlockHash>,
        limit: u32,
        ctx: &mut Context<Self>,
    ) {
        let (start, count) = &mut self.getblocks_window;
        let elapsed = start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            *start = Instant::now();
            *count = 0;
        }
        if *count < GETBLOCKS_PER_SECOND {
            *count += 1;
            self.chain.do_send(ServeBlocks {
                conn_id: self.id,
                addr: ctx.address(),
                locator,
                limit,
            });
        } else if self.deferred_getblocks < MAX_DEFERRED_GETBLOCKS {
            self.deferred_getblocks += 1;
            let wait = Duration::from_secs(1).saturating_sub(start.elapsed());
            ctx.run_later(wait, move |act, ctx| {
                act.deferred_getblocks -= 1;
                act.get_blocks(locator, limit, ctx);
            });
        } else {
            self.penalise(10, "too many block requests");
        }
    }

    pub(super) fn direction_addr(&self) -> Option<String> {
        match &self.direction {
            Direction::Outbound(a) => Some(a.clone()),
            Direction::Inbound => None,
        }
    }
}
