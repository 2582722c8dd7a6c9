//! [`probe_key`]: connects to a registered address as a node would and checks that the
//! node there proves the key a signed record names.
//!
//! The probe opens the node handshake with a throwaway identity (see
//! [`crate::wire::peer_message`]): it sends its `Hello` with a fresh challenge, reads the
//! listener's `Hello` and the listener's signature over that challenge, and stops there —
//! it never proves a key of its own, so it never becomes anyone's peer. A signature over a
//! challenge this probe just drew cannot be replayed from elsewhere, so it shows that
//! whoever answers at the address holds the key.
//!
//! The probe knows the network id (the member's own) and derives the genesis from it, but
//! not the network's difficulty. Nodes answer a dialer whose chain rules differ (genesis or
//! difficulty) with their `Hello` and proof before saying goodbye, so the proof arrives
//! either way; the chain rules are the nodes' business, the key is the registry's.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::node::Handshake;
use crate::record::{node_id_of, NodeId, NodeIdentity};
use crate::wire::{FrameCodec, PeerMessage, Tip, PEER_PROTOCOL_VERSION};

/// Longest a whole probe (connect and handshake) may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest frame read from the probed node (a `Hello` is a few hundred bytes).
const PROBE_MAX_FRAME: usize = 64 * 1024;
/// The difficulty the probe claims; nodes prove their key whatever it is.
const PROBE_DIFFICULTY: u32 = 0;

/// Why a probe did not prove the key.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing answered, or it did not finish in time: worth a retry later.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Something answered but not with our protocol: worth a retry later.
    #[error("not a peerchain node: {0}")]
    Protocol(String),
    /// A node answered on another network or protocol version.
    #[error("node is on network {network:?}, protocol version {version}")]
    OtherNetwork { network: String, version: u16 },
    /// A node answered with another key (or could not prove the one it showed).
    #[error("node at the address holds key {0}, not the record's")]
    WrongKey(NodeId),
}

impl ProbeError {
    /// Whether a retry may succeed (the node may come up); a wrong key or network will not
    /// change by retrying soon.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Protocol(_))
    }
}

/// Checks that the node at `addr` proves the key whose id is `expected`, within
/// [`PROBE_TIMEOUT`].
///
/// # Errors
/// [`ProbeError`].
pub async fn probe_key(
    addr: SocketAddr,
    network_id: &str,
    expected: NodeId,
) -> Result<(), ProbeError> {
    tokio::time::timeout(PROBE_TIMEOUT, probe(addr, network_id, expected))
        .await
        .map_err(|_| ProbeError::Unreachable(format!("no proof within {PROBE_TIMEOUT:?}")))?
}

async fn probe(addr: SocketAddr, network_id: &str, expected: NodeId) -> Result<(), ProbeError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
    let mut framed = Framed::new(
        stream,
        FrameCodec::<PeerMessage, PeerMessage>::new(PROBE_MAX_FRAME),
    );
    let genesis = crate::chain::genesis(network_id).hash;
    let handshake = Handshake::new(network_id, genesis, PROBE_DIFFICULTY);
    let tip = Tip {
        height: 0,
        hash: genesis,
        total_work: 0,
    };
    let hello = handshake.hello(&NodeIdentity::generate(), None, tip);
    framed
        .send(PeerMessage::Hello(hello))
        .await
        .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
    let theirs = match next(&mut framed).await? {
        PeerMessage::Hello(h) => h,
        other => return Err(unexpected(&other)),
    };
    if theirs.version != PEER_PROTOCOL_VERSION || theirs.network_id != network_id {
        return Err(ProbeError::OtherNetwork {
            network: theirs.network_id,
            version: theirs.version,
        });
    }
    let shown = node_id_of(&theirs.public_key);
    if shown != expected {
        return Err(ProbeError::WrongKey(shown));
    }
    let signature = match next(&mut framed).await? {
        PeerMessage::HelloProof { signature } => signature,
        other => return Err(unexpected(&other)),
    };
    handshake
        .verify_proof(&theirs, &signature)
        .map_err(|_| ProbeError::WrongKey(shown))?;
    let _ = framed
        .send(PeerMessage::Goodbye {
            reason: "bootstrap dial-back: key checked".to_string(),
        })
        .await;
    Ok(())
}

async fn next(
    framed: &mut Framed<TcpStream, FrameCodec<PeerMessage, PeerMessage>>,
) -> Result<PeerMessage, ProbeError> {
    match framed.next().await {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(ProbeError::Protocol(e.to_string())),
        None => Err(ProbeError::Unreachable(
            "closed during the handshake".into(),
        )),
    }
}

fn unexpected(m: &PeerMessage) -> ProbeError {
    match m {
        PeerMessage::Goodbye { reason } => ProbeError::Protocol(format!("refused: {reason}")),
        other => {
            let shown: String = format!("unexpected {other:?}").chars().take(200).collect();
            ProbeError::Protocol(shown)
        }
    }
}
