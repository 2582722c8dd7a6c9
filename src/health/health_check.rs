//! [`check_bootstrap`]: is a bootstrap member up and part of a cluster with a leader?

use std::io::Write;
use std::time::Duration;

use super::HealthArgs;
use crate::client::{ClientError, FrameConnection, NodeStatusQuery};
use crate::http::HttpProbe;
use crate::wire::{Request, Response};

/// The shortest and longest probe time accepted from the command line.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a member is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Not a `#[source]`: the message already says it all, once.
    #[error("unhealthy: {0}")]
    Unreachable(ClientError),
    #[error("unhealthy: member {member_id} knows no leader (term {term}); the cluster may have lost its quorum")]
    NoLeader { member_id: u64, term: u64 },
    #[error("unhealthy: member {member_id} is not ready: {reasons}")]
    MemberNotReady { member_id: u64, reasons: String },
    #[error("unhealthy: {addr} sent an unexpected reply: {reply}")]
    Unexpected { addr: String, reply: String },
    #[error("nothing to check: pass --http ADDR, --bootstrap ADDR and/or --node ADDR")]
    NothingToCheck,
    /// Not a `#[source]`: the message already says it all, once.
    #[error("unhealthy: {0}")]
    HttpUnreachable(crate::http::ProbeError),
    #[error("unhealthy: {addr}{path} answered {status}: {reasons}")]
    NotReady {
        addr: String,
        path: &'static str,
        status: u16,
        reasons: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<ClientError> for HealthError {
    fn from(e: ClientError) -> Self {
        Self::Unreachable(e)
    }
}

/// What a healthy member reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapHealth {
    pub member_id: u64,
    pub leader_id: u64,
    pub term: u64,
    pub peer_count: u64,
}

/// Connects to `addr`, asks for `ClusterInfo` and checks that a leader is known, all
/// within `timeout`.
///
/// # Errors
/// [`HealthError::Unreachable`] (connect, timeout, decode or server error),
/// [`HealthError::NoLeader`], [`HealthError::Unexpected`].
pub async fn check_bootstrap(
    addr: &str,
    timeout: Duration,
) -> Result<BootstrapHealth, HealthError> {
    let probe = async {
        let mut conn = FrameConnection::connect(addr, timeout).await?;
        conn.call(Request::ClusterInfo, timeout).await
    };
    let reply =
        tokio::time::timeout(timeout, probe)
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.to_string(),
                timeout,
            })??;
    let Response::ClusterInfo(info) = reply else {
        return Err(HealthError::Unexpected {
            addr: addr.to_string(),
            reply: format!("{reply:?}"),
        });
    };
    if info.ready == Some(false) && info.leader_id.is_some() {
        // A leader cut off from its quorum still names itself: the member's own verdict wins.
        return Err(HealthError::MemberNotReady {
            member_id: info.member_id,
            reasons: info.not_ready_reasons.join("; "),
        });
    }
    match info.leader_id {
        Some(leader_id) => Ok(BootstrapHealth {
            member_id: info.member_id,
            leader_id,
            term: info.term,
            peer_count: info.peer_count,
        }),
        None => Err(HealthError::NoLeader {
            member_id: info.member_id,
            term: info.term,
        }),
    }
}

/// Runs the probes `args` asks for and prints one line per healthy target to `out`.
///
/// # Errors
/// The first unhealthy target, or [`HealthError::NothingToCheck`].
pub async fn run(args: HealthArgs, out: &mut dyn Write) -> Result<(), HealthError> {
    let timeout = Duration::from_secs_f64(
        args.timeout
            .clamp(MIN_TIMEOUT.as_secs_f64(), MAX_TIMEOUT.as_secs_f64()),
    );
    if args.bootstrap.is_none() && args.node.is_none() && args.http.is_none() {
        return Err(HealthError::NothingToCheck);
    }
    if let Some(addr) = &args.http {
        let line = check_http(addr, args.live, timeout).await?;
        writeln!(out, "{line}")?;
    }
    if let Some(addr) = args.bootstrap {
        let h = check_bootstrap(&addr, timeout).await?;
        writeln!(
            out,
            "healthy: bootstrap member {} at {addr}, leader {}, term {}, {} peers",
            h.member_id, h.leader_id, h.term, h.peer_count
        )?;
    }
    if let Some(addr) = args.node {
        // A node that answers is healthy even with no peers yet (a new network, or every
        // bootstrap down): its status says why, and orchestration restarting it would not help.
        let s = NodeStatusQuery::fetch(&addr, timeout).await?;
        writeln!(
            out,
            "healthy: node at {addr}, height {}, {} peers, {}",
            s.tip.height,
            s.peers.len(),
            if s.registered {
                "registered"
            } else {
                "not registered"
            }
        )?;
    }
    Ok(())
}

/// Probes an HTTP side port: `GET /ready` (or `/health` when `live`) must answer 200.
/// Returns the line to print.
///
/// # Errors
/// [`HealthError::HttpUnreachable`] or [`HealthError::NotReady`] with the reasons given.
pub async fn check_http(addr: &str, live: bool, timeout: Duration) -> Result<String, HealthError> {
    let path = if live { "/health" } else { "/ready" };
    let reply = HttpProbe::get(addr, path, timeout)
        .await
        .map_err(HealthError::HttpUnreachable)?;
    let json = reply.json();
    if reply.status != 200 {
        let reasons = json["reasons"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| reply.body.chars().take(200).collect());
        return Err(HealthError::NotReady {
            addr: addr.to_string(),
            path,
            status: reply.status,
            reasons,
        });
    }
    Ok(format!("healthy: {addr}{path} answered 200 {}", json))
}
