//! [`elect`]: the operator's `ctl cluster elect <id>`, which makes a given voter stand for
//! election (openraft's `trigger().elect()`), e.g. to move leadership off a member before
//! maintenance, or in tests to make a member with a skewed clock lead.
//!
//! Any member accepts the request and passes it to the target over an authenticated
//! connection; the target campaigns until it leads or [`ELECT_TIMEOUT`] passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;

use super::member::storage_failed;
use super::Member;
use crate::raft::MemberId;
use crate::wire::{ErrorCode, ErrorReply, Request, Response};

/// How long the target campaigns before giving up.
pub const ELECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one campaign may take before the target tries again (a vote can be refused while
/// the voters still hear the old leader: their leader lease).
const CAMPAIGN_RETRY: Duration = Duration::from_millis(500);
/// Room on top of [`ELECT_TIMEOUT`] for passing the request on to the target.
const FORWARD_MARGIN: Duration = Duration::from_secs(2);

/// Makes voter `target` the leader; replies `Done` once it leads.
///
/// # Errors
/// `bad_request` for a target that is not a voter; `unavailable` if it did not win in time
/// or cannot be reached; `storage` if this member's Raft has stopped.
pub async fn elect(m: &Arc<Member>, target: MemberId) -> Result<Response, ErrorReply> {
    if let Some(cause) = m.raft_failure() {
        return Err(storage_failed(&cause));
    }
    let (addr, voter) = {
        let metrics = m.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let addr = membership.get_node(&target).map(|n| n.addr.clone());
        (addr, membership.voter_ids().any(|id| id == target))
    };
    let Some(addr) = addr else {
        return Err(ErrorReply::new(
            ErrorCode::BadRequest,
            format!("no member {target} in the membership"),
        ));
    };
    if !voter {
        return Err(ErrorReply::new(
            ErrorCode::BadRequest,
            format!("member {target} is a learner; only a voter can lead"),
        ));
    }
    if target == m.id() {
        return campaign(m).await;
    }
    let request = Request::Elect { member_id: target };
    m.leader_link
        .call_once(&addr, request, ELECT_TIMEOUT + FORWARD_MARGIN)
        .await
        .map_err(|e| match e {
            crate::client::ClientError::Server(reply) => reply,
            other => ErrorReply::new(
                ErrorCode::Unavailable,
                format!("passing the election request to member {target} at {addr}: {other}"),
            ),
        })
}

/// Stands for election until this member leads or [`ELECT_TIMEOUT`] passes.
async fn campaign(m: &Arc<Member>) -> Result<Response, ErrorReply> {
    let deadline = Instant::now() + ELECT_TIMEOUT;
    loop {
        if m.is_leader() {
            tracing::info!(
                member = m.id(),
                "leading after an operator's election request"
            );
            return Ok(Response::Done);
        }
        if Instant::now() >= deadline {
            return Err(ErrorReply::new(
                ErrorCode::Unavailable,
                format!(
                    "member {} did not win an election within {ELECT_TIMEOUT:?} (its log may be \
                     behind, or no majority is reachable)",
                    m.id()
                ),
            ));
        }
        m.raft
            .trigger()
            .elect()
            .await
            .map_err(|f| storage_failed(&f))?;
        let _ = m
            .raft
            .wait(Some(CAMPAIGN_RETRY))
            .state(ServerState::Leader, "elected on request")
            .await;
    }
}
