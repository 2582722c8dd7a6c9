//! The handshake side of a [`Connection`]: our Hello, the peer's Hello and proof, the peer
//! manager's verdict, or a status query answered and closed.

use actix::prelude::*;

use super::{Connection, Phase};
use crate::node::chain_sync::PeerConnected;
use crate::node::handshake::HandshakeError;
use crate::node::peer_manager::{Closed, GetNodeStatus, HandshakeVerdict, Handshaked};
use crate::wire::{Hello, PeerMessage};

impl Connection {
    pub(super) fn send_hello(&mut self, ctx: &mut Context<Self>) {
        let hello = self.handshake.hello(
            &self.node.identity,
            Some(self.node.advertised.clone()),
            self.our_tip,
        );
        self.send(PeerMessage::Hello(hello), ctx);
    }

    pub(super) fn on_hello(&mut self, hello: Hello, ctx: &mut Context<Self>) {
        let node_id = match self.handshake.check_hello(&hello, &self.node.identity) {
            Ok(id) => id,
            Err(e) => {
                let other_chain = matches!(
                    e,
                    HandshakeError::WrongGenesis | HandshakeError::WrongDifficulty(..)
                );
                if other_chain && !self.is_outbound() {
                    // Same network, other chain rules: still prove our key before refusing.
                    // A bootstrap member's dial-back checks who listens here, not our chain
                    // (it cannot know the difficulty), and signing a fresh challenge under
                    // our domain and network gives nobody anything to replay.
                    self.send_hello(ctx);
                    let signature = self.handshake.prove(&self.node.identity, &hello);
                    self.send(PeerMessage::HelloProof { signature }, ctx);
                }
                if e == HandshakeError::SelfConnection {
                    self.manager.do_send(Closed {
                        conn_id: self.id,
                        was_ready: false,
                        self_connection: true,
                    });
                }
                self.goodbye(format!("handshake refused: {e}"), ctx);
                return;
            }
        };
        if !self.is_outbound() {
            self.send_hello(ctx);
        }
        let signature = self.handshake.prove(&self.node.identity, &hello);
        self.send(PeerMessage::HelloProof { signature }, ctx);
        self.phase = Phase::AwaitProof {
            hello: Box::new(hello),
            node_id,
        };
    }

    pub(super) fn on_proof(&mut self, signature: &[u8], ctx: &mut Context<Self>) {
        let Phase::AwaitProof { hello, node_id } =
            std::mem::replace(&mut self.phase, Phase::AwaitVerdict)
        else {
            self.goodbye("unexpected handshake proof".into(), ctx);
            return;
        };
        if let Err(e) = self.handshake.verify_proof(&hello, signature) {
            self.goodbye(format!("handshake refused: {e}"), ctx);
            return;
        }
        let request = Handshaked {
            conn_id: self.id,
            node_id,
            listen_addr: hello.listen_addr.clone(),
            direction: self.direction.clone(),
            remote: self.remote,
            tip_height: hello.tip.height,
            addr: ctx.address(),
        };
        let tip = hello.tip;
        self.manager
            .send(request)
            .into_actor(self)
            .map(move |verdict, act, ctx| match verdict {
                Ok(HandshakeVerdict::Accepted) => {
                    act.phase = Phase::Ready;
                    act.chain.do_send(PeerConnected {
                        conn_id: act.id,
                        addr: ctx.address(),
                        tip,
                    });
                    act.getaddr_pending = true;
                    act.send(PeerMessage::GetAddr, ctx);
                }
                Ok(HandshakeVerdict::Refused(reason)) => act.goodbye(reason, ctx),
                Err(_) => ctx.stop(),
            })
            .wait(ctx);
    }

    pub(super) fn on_status_query(&mut self, ctx: &mut Context<Self>) {
        self.manager
            .send(GetNodeStatus)
            .into_actor(self)
            .map(|status, act, ctx| {
                if let Ok(status) = status {
                    act.send(PeerMessage::Status(Box::new(status)), ctx);
                }
                ctx.stop();
            })
            .wait(ctx);
    }
}
