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
//! random sample of at most [`LEGACY_GET_PEERS_LIMIT`] peers instead of the whole registry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::legacy_line::LegacyCommand;
pub use super::legacy_line::MAX_LINE;
use super::Member;
use crate::registry::{CommandOutcome, RegistryCommand, MAX_SAMPLE_SIZE};
use crate::wire::{ErrorCode, Request, Response};

/// Most addresses one GET_PEERS answer carries.
pub const LEGACY_GET_PEERS_LIMIT: usize = MAX_SAMPLE_SIZE;
/// How long a request line may take to arrive.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

const REGISTERED: &str = "Peer registered successfully";
const ALREADY: &str = "Peer already registered";
const REMOVED: &str = "Peer removed successfully";
const NOT_FOUND: &str = "Peer not found";

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
        let (reply, keep_open) = match read {
            Err(_) | Ok(Err(_)) | Ok(Ok(0)) => return,
            Ok(Ok(_)) => match LegacyCommand::parse_line(&line) {
                Err(e) => (e.to_string(), !e.closes()),
                Ok(command) => answer(&member, peer, command).await,
            },
        };
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
async fn answer(member: &Arc<Member>, peer: SocketAddr, command: LegacyCommand) -> (String, bool) {
    let source_ip = peer.ip().to_string();
    let command = match command {
        LegacyCommand::GetPeers => return (get_peers(member).await, true),
        LegacyCommand::Register(address) => {
            let ttl = u64::try_from(member.config.legacy_ttl.as_millis()).unwrap_or(u64::MAX);
            RegistryCommand::RegisterLegacy {
                address,
                source_ip,
                expires_at_ms: crate::unix_ms().saturating_add(ttl),
            }
        }
        LegacyCommand::Remove(address) => RegistryCommand::RemoveLegacy { address, source_ip },
    };
    if let Err(e) = member.check_storage() {
        return (format!("Error: {}", e.message), true);
    }
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

async fn get_peers(member: &Arc<Member>) -> String {
    let request = Request::GetPeers {
        limit: Some(LEGACY_GET_PEERS_LIMIT as u32),
        exclude: Vec::new(),
        linearizable: false,
    };
    match super::RequestHandler::handle(member.clone(), request).await {
        Response::Peers { peers } => {
            let list: Vec<LegacyPeer<'_>> = peers
                .iter()
                .map(|p| LegacyPeer {
                    address: p.address(),
                })
                .collect();
            serde_json::to_string(&list).unwrap_or_else(|e| format!("Error: {e}"))
        }
        Response::Error(e) => format!("Error: {}", e.message),
        other => format!("Error: unexpected reply {other:?}"),
    }
}
