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

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::frame_budget::BudgetCharge;
pub use super::legacy_line::MAX_LINE;
use super::legacy_line::{LegacyCommand, LineError as ParseError};
use super::Member;
use crate::metrics::FrameRefusal;
use crate::registry::{CommandOutcome, ExcludeSet, Pool, RegistryCommand, MAX_SAMPLE_SIZE};
use crate::wire::ErrorCode;

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
    let mut reader = BufReader::new(rd);
    // The seed's clients never authenticate: a half-sent line is charged to the budget.
    let mut charge = BudgetCharge::new(member.quotas.frame_budget.clone());
    loop {
        let mut line = Vec::new();
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(LINE_TIMEOUT, read_line(&mut reader, &mut line, &mut charge)) => r,
        };
        let (reply, keep_open) = match read {
            Ok(Err(LineError::OverBudget(e))) => {
                member.metrics.refused(FrameRefusal::OverBudget);
                (format!("Error: {e}"), false)
            }
            Err(_) | Ok(Err(LineError::Io)) | Ok(Ok(0)) => return,
            Ok(Ok(_)) => match member.quotas.requests.check(peer.ip()) {
                Err(refusal) => {
                    member.metrics.refused(FrameRefusal::RateLimited);
                    member
                        .quotas
                        .refusals
                        .refused(peer.ip(), "request", &refusal);
                    (format!("Error: {refusal}"), true)
                }
                // The same pure parser the fuzzer drives (`legacy_line`).
                Ok(()) => match LegacyCommand::parse_line(&line) {
                    Err(e) => {
                        if !matches!(e, ParseError::BadAddress(_)) {
                            member.metrics.refused(FrameRefusal::Malformed);
                        }
                        (e.to_string(), !e.closes())
                    }
                    Ok(command) => answer(&member, peer, command).await,
                },
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

enum LineError {
    Io,
    OverBudget(crate::wire::DecodeError),
}

/// Reads one line of at most [`MAX_LINE`] + 1 bytes into `line` (the caller tells a long
/// line by its length), charging what is held of it to `charge` while it is incomplete.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    charge: &mut BudgetCharge,
) -> Result<usize, LineError> {
    loop {
        let buf = reader.fill_buf().await.map_err(|_| LineError::Io)?;
        if buf.is_empty() {
            return Ok(line.len());
        }
        let room = MAX_LINE + 1 - line.len();
        let (used, done) = match buf.iter().take(room).position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len().min(room), buf.len() >= room),
        };
        line.extend_from_slice(&buf[..used]);
        reader.consume(used);
        if done {
            let _ = charge.set(0);
            return Ok(line.len());
        }
        charge.set(line.len()).map_err(LineError::OverBudget)?;
    }
}

/// The reply line and whether the connection stays open.
async fn answer(member: &Arc<Member>, peer: SocketAddr, command: LegacyCommand) -> (String, bool) {
    let source_ip = peer.ip().to_string();
    let (address, register) = match command {
        LegacyCommand::GetPeers => return (get_peers(member).await, true),
        LegacyCommand::Register(address) => (address, true),
        LegacyCommand::Remove(address) => (address, false),
    };
    if let Err(e) = member.check_storage() {
        return (format!("Error: {}", e.message), true);
    }
    let command = if register {
        if let Some(refusal) = quota_precheck(member, &address, &source_ip).await {
            member.metrics.refused(FrameRefusal::LegacyQuota);
            member
                .quotas
                .refusals
                .refused(peer.ip(), "legacy register", &refusal);
            return (format!("Error: {refusal}"), true);
        }
        let ttl = u64::try_from(member.config.legacy_ttl.as_millis()).unwrap_or(u64::MAX);
        RegistryCommand::RegisterLegacy {
            resolved: super::host_resolver::resolve_host(&address).await,
            address,
            source_ip,
            expires_at_ms: member.clock.now_or_own().saturating_add(ttl),
            limits: member.config.quotas.legacy_limits(),
        }
    } else {
        RegistryCommand::RemoveLegacy { address, source_ip }
    };
    let text = match member.proposer.propose(command).await {
        Ok(CommandOutcome::Registered { .. }) => REGISTERED.to_string(),
        Ok(CommandOutcome::AlreadyRegistered) => ALREADY.to_string(),
        Ok(CommandOutcome::Removed) => REMOVED.to_string(),
        Ok(CommandOutcome::Refused(e)) if e.code == ErrorCode::NotFound => NOT_FOUND.to_string(),
        // The legacy-records quota: refused, and worth retrying only later.
        Ok(CommandOutcome::Refused(e)) if e.code == ErrorCode::Unavailable => {
            member.metrics.refused(FrameRefusal::LegacyQuota);
            member
                .quotas
                .refusals
                .refused(peer.ip(), "legacy register", &e.message);
            format!("Error: {}", e.message)
        }
        Ok(CommandOutcome::Refused(e)) => e.message,
        Ok(other) => format!("Error: unexpected outcome {other:?}"),
        Err(e) => format!("Error: {}", e.message),
    };
    (text, true)
}

/// Refuses at once a register that this member's state says is over the source's quota
/// (see `RegistryDb::legacy_quota_refusal`); a read error leaves the decision to the registry.
async fn quota_precheck(member: &Arc<Member>, address: &str, source_ip: &str) -> Option<String> {
    let limits = member.config.quotas.legacy_limits();
    let check =
        member
            .registry
            .legacy_quota_refusal(address.to_string(), source_ip.to_string(), limits);
    check.await.ok().flatten().map(|e| e.message)
}

/// A sample of the legacy pool only: the chapter's clients dial what they get with the
/// chapter's protocol, which our signed nodes do not speak.
async fn get_peers(member: &Arc<Member>) -> String {
    let limit = LEGACY_GET_PEERS_LIMIT.min(member.entries_per_reply());
    let sample = super::request_handler::sample_pool(
        member,
        Pool::Legacy,
        limit,
        ExcludeSet::default(),
        true,
    )
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
