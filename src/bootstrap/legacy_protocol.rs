//! The seed chapter's JSON-lines protocol, so its `client.go` works unchanged:
//!
//! ```text
//! -> {"type":"REGISTER","payload":"localhost:3000"}\n   <- Peer registered successfully\n
//!                                                       <- Peer already registered\n
//! -> {"type":"GET_PEERS","payload":""}\n                <- [{"address":"localhost:3000"},...]\n
//! -> {"type":"REMOVE","payload":"localhost:3000"}\n     <- Peer removed successfully\n
//!                                                       <- Peer not found\n
//! ```
//!
//! Records registered this way are unsigned legacy records: they never overwrite or remove a
//! signed record, and only the IP that registered one may remove it. GET_PEERS answers a
//! random subnet-fair sample of at most [`LEGACY_GET_PEERS_LIMIT`] legacy peers (never
//! signed ones) instead of the whole registry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::Member;
use crate::record::PeerAddress;
use crate::registry::{CommandOutcome, ExcludeSet, Pool, RegistryCommand, MAX_SAMPLE_SIZE};
use crate::wire::ErrorCode;

/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Most addresses one GET_PEERS answer carries.
pub const LEGACY_GET_PEERS_LIMIT: usize = MAX_SAMPLE_SIZE;
/// How long a request line may take to arrive.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

const REGISTERED: &str = "Peer registered successfully";
const ALREADY: &str = "Peer already registered";
const REMOVED: &str = "Peer removed successfully";
const NOT_FOUND: &str = "Peer not found";

#[derive(Deserialize)]
struct LegacyRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: String,
}

#[derive(Serialize)]
struct LegacyPeer<'a> {
    address: &'a str,
}

/// Serves JSON-lines requests until EOF, a bad line, idle timeout or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    member: Arc<Member>,
    cancel: CancellationToken,
) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = BufReader::new(rd.take(u64::MAX));
    loop {
        let mut line = Vec::new();
        reader.get_mut().set_limit(MAX_LINE as u64 + 1);
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(LINE_TIMEOUT, reader.read_until(b'\n', &mut line)) => r,
        };
        let reply = match read {
            Err(_) | Ok(Err(_)) | Ok(Ok(0)) => return,
            Ok(Ok(_)) if line.len() > MAX_LINE || !line.ends_with(b"\n") => (
                "Invalid request: line too long or truncated".to_string(),
                false,
            ),
            Ok(Ok(_)) => match serde_json::from_slice::<LegacyRequest>(&line) {
                Err(e) => (format!("Invalid request format: {e}"), false),
                Ok(req) => answer(&member, peer, req).await,
            },
        };
        if !reply.1 {
            member
                .metrics
                .refused(crate::metrics::FrameRefusal::Malformed);
        }
        let (reply, keep_open) = reply;
        let mut out = reply.into_bytes();
        out.push(b'\n');
        let written =
            tokio::time::timeout(super::connection::WRITE_TIMEOUT, wr.write_all(&out)).await;
        if !matches!(written, Ok(Ok(()))) || !keep_open {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// The reply line and whether the connection stays open.
async fn answer(member: &Arc<Member>, peer: SocketAddr, req: LegacyRequest) -> (String, bool) {
    let source_ip = peer.ip().to_string();
    let command = match req.kind.as_str() {
        "GET_PEERS" => return (get_peers(member).await, true),
        "REGISTER" | "REMOVE" => {
            if let Err(e) = PeerAddress::parse(&req.payload) {
                return (format!("Invalid peer address: {e}"), true);
            }
            if let Err(e) = member.check_storage() {
                return (format!("Error: {}", e.message), true);
            }
            if req.kind == "REGISTER" {
                let ttl = u64::try_from(member.config.legacy_ttl.as_millis()).unwrap_or(u64::MAX);
                RegistryCommand::RegisterLegacy {
                    resolved: super::host_resolver::resolve_host(&req.payload).await,
                    address: req.payload,
                    source_ip,
                    expires_at_ms: member.clock.now_or_own().saturating_add(ttl),
                }
            } else {
                RegistryCommand::RemoveLegacy {
                    address: req.payload,
                    source_ip,
                }
            }
        }
        _ => return ("Invalid request type".to_string(), false),
    };
    let text = match member.proposer.propose(command).await {
        Ok(CommandOutcome::Registered { .. }) => REGISTERED.to_string(),
        Ok(CommandOutcome::AlreadyRegistered) => ALREADY.to_string(),
        Ok(CommandOutcome::Removed) => REMOVED.to_string(),
        Ok(CommandOutcome::Refused(e)) if e.code == ErrorCode::NotFound => NOT_FOUND.to_string(),
        Ok(CommandOutcome::Refused(e)) => e.message,
        Ok(other) => format!("Error: unexpected outcome {other:?}"),
        Err(e) => format!("Error: {}", e.message),
    };
    (text, true)
}

/// A sample of the legacy pool only: the chapter's clients dial what they get with the
/// chapter's protocol, which our signed nodes do not speak.
async fn get_peers(member: &Arc<Member>) -> String {
    let limit = LEGACY_GET_PEERS_LIMIT.min(member.entries_per_reply());
    let sample =
        super::request_handler::sample_pool(member, Pool::Legacy, limit, ExcludeSet::default())
            .await;
    match sample {
        Ok(peers) => {
            let list: Vec<LegacyPeer<'_>> = peers
                .iter()
                .map(|p| LegacyPeer {
                    address: p.address(),
                })
                .collect();
            serde_json::to_string(&list).unwrap_or_else(|e| format!("Error: {e}"))
        }
        Err(e) => format!("Error: {}", e.message),
    }
}
