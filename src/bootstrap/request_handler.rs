//! [`RequestHandler`]: answers one framed request on behalf of a connection.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::member::{storage_failed, storage_reply};
use super::proposer::no_leader;
use super::Member;
use crate::raft::{raft_settings, ClusterSecret, MemberId};
use crate::registry::{
    CommandOutcome, ExcludeSet, PeerEntry, Pool, RegistryCommand, DEFAULT_SAMPLE_SIZE,
    MAX_PAGE_SIZE, MAX_SAMPLE_SIZE,
};
use crate::wire::{EntryDetail, ErrorCode, ErrorReply, PeerPage, Request, Response};

/// How long an admin request forwarded to the leader may take (adding a learner waits for it
/// to catch up).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a read forwarded to the leader may take.
const FORWARDED_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-connection state: who is on the other end and whether it proved the cluster secret.
pub struct RequestHandler {
    member: Arc<Member>,
    peer_ip: IpAddr,
    authenticated: bool,
    nonces: Option<(Vec<u8>, Vec<u8>)>,
}

impl RequestHandler {
    pub fn new(member: Arc<Member>, peer_ip: IpAddr) -> Self {
        Self {
            member,
            peer_ip,
            authenticated: false,
            nonces: None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Handles the authentication handshake; returns `None` for every other request.
    pub fn handle_auth(&mut self, request: &Request) -> Option<Response> {
        match request {
            Request::AuthHello { client_nonce } => {
                let server_nonce = ClusterSecret::nonce();
                let server_proof = self.member.secret.server_proof(client_nonce, &server_nonce);
                self.nonces = Some((client_nonce.clone(), server_nonce.clone()));
                Some(Response::AuthChallenge {
                    server_nonce,
                    server_proof,
                })
            }
            Request::AuthProof { proof } => {
                let ok = self
                    .nonces
                    .take()
                    .is_some_and(|(cn, sn)| self.member.secret.verify_client(&cn, &sn, proof));
                if ok {
                    self.authenticated = true;
                    Some(Response::AuthOk)
                } else {
                    tracing::warn!(peer = %self.peer_ip, "member authentication failed");
                    Some(Response::Error(ErrorReply::new(
                        ErrorCode::Unauthenticated,
                        "authentication failed: wrong cluster secret",
                    )))
                }
            }
            _ => None,
        }
    }

    /// Answers any request other than the handshake. Member-only requests must already have
    /// been checked against [`Self::is_authenticated`].
    pub async fn handle(member: Arc<Member>, request: Request) -> Response {
        match serve(&member, request).await {
            Ok(r) => r,
            Err(e) => Response::Error(e),
        }
    }
}

async fn serve(member: &Arc<Member>, request: Request) -> Result<Response, ErrorReply> {
    let m = member;
    match request {
        Request::Register { record } => {
            m.check_storage()?;
            let check = record
                .signature_check(&m.config.network_id)
                .map_err(ErrorReply::from)?;
            m.signatures.verify(check).await.map_err(ErrorReply::from)?;
            let max_ttl = u64::try_from(m.config.max_ttl.as_millis()).unwrap_or(u64::MAX);
            let (earliest, latest) = m.clock.validity_window();
            record
                .check_expiry(earliest, latest, max_ttl)
                .map_err(ErrorReply::from)?;
            let command = RegistryCommand::RegisterSigned {
                resolved: super::host_resolver::resolve_host(&record.address).await,
                record,
                // With dial-back off, this member vouches for the record itself.
                verified: !m.config.dial_back,
            };
            match m.proposer.propose(command).await? {
                CommandOutcome::Registered {
                    replaced,
                    moved_from,
                } => Ok(Response::Registered {
                    replaced,
                    moved_from,
                }),
                other => outcome_error(other),
            }
        }
        Request::Deregister { deregistration } => {
            m.check_storage()?;
            let check = deregistration
                .signature_check(&m.config.network_id)
                .map_err(ErrorReply::from)?;
            m.signatures.verify(check).await.map_err(ErrorReply::from)?;
            match m
                .proposer
                .propose(RegistryCommand::Deregister(deregistration))
                .await?
            {
                CommandOutcome::Removed => Ok(Response::Removed),
                other => outcome_error(other),
            }
        }
        Request::GetPeers {
            limit,
            exclude,
            linearizable,
        } => {
            let started = std::time::Instant::now();
            let reply = get_peers(m, limit, exclude, linearizable).await;
            m.metrics.get_peers_served(started.elapsed());
            reply
        }
        Request::ListPeers { after, limit } => {
            let limit =
                clamp(limit, DEFAULT_SAMPLE_SIZE, MAX_PAGE_SIZE).min(m.listed_entries_per_reply());
            let (rows, next) = m
                .registry
                .read(move |r| r.page(after.as_deref(), limit))
                .await
                .map_err(storage_reply)?;
            let details = rows
                .iter()
                .map(|s| EntryDetail {
                    verified: s.verified,
                    group: s.group.inner(),
                })
                .collect();
            let peers = rows.into_iter().map(|s| s.entry).collect();
            Ok(Response::PeerPage(PeerPage {
                peers,
                next,
                details,
            }))
        }
        Request::ClusterInfo => Ok(Response::ClusterInfo(m.cluster_info().await?)),
        Request::Forward { commands } => {
            // The leader's own disk decides: a follower's check does not cover it.
            m.check_storage()?;
            // Queued with this member's own commands, so they share its next entry.
            let (outcomes, log_index) = m.proposer.propose_forwarded(commands).await;
            Ok(Response::Outcomes {
                outcomes,
                log_index,
            })
        }
        Request::AppendEntries(rpc) => {
            Ok(Response::AppendEntries(m.raft.append_entries(rpc).await))
        }
        Request::Vote(rpc) => Ok(Response::Vote(m.raft.vote(rpc).await)),
        Request::InstallSnapshot(rpc) => Ok(Response::InstallSnapshot(
            m.raft.install_snapshot(rpc).await,
        )),
        admin @ (Request::AddLearner { .. }
        | Request::Promote { .. }
        | Request::RemoveMember { .. }) => membership(m, admin).await,
        Request::ClockProbe => Ok(Response::ClockReading {
            unix_ms: crate::unix_ms(),
        }),
        Request::Elect { member_id } => super::election::elect(m, member_id).await,
        Request::AuthHello { .. } | Request::AuthProof { .. } => Err(ErrorReply::new(
            ErrorCode::BadRequest,
            "authentication messages are handled by the connection",
        )),
    }
}

fn clamp(limit: Option<u32>, default: usize, max: usize) -> usize {
    limit.map_or(default, |l| (l as usize).clamp(1, max))
}

fn outcome_error(outcome: CommandOutcome) -> Result<Response, ErrorReply> {
    match outcome {
        CommandOutcome::Refused(e) => Err(e),
        other => Err(ErrorReply::new(
            ErrorCode::Internal,
            format!("unexpected outcome {other:?}"),
        )),
    }
}

async fn get_peers(
    m: &Arc<Member>,
    limit: Option<u32>,
    exclude: Vec<String>,
    linearizable: bool,
) -> Result<Response, ErrorReply> {
    // Checked before any work, forwarding included: the list is the caller's to bound.
    let excluded = ExcludeSet::new(&exclude).map_err(ErrorReply::from)?;
    if linearizable {
        match m.raft.ensure_linearizable().await {
            Ok(_) => {}
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                let addr = f.leader_node.map(|n| n.addr).ok_or_else(no_leader)?;
                let request = Request::GetPeers {
                    limit,
                    exclude,
                    linearizable: true,
                };
                return m
                    .leader_link
                    .call(&addr, request, FORWARDED_READ_TIMEOUT)
                    .await
                    .map_err(|e| {
                        ErrorReply::new(
                            ErrorCode::Unavailable,
                            format!("linearizable read via leader failed: {e}"),
                        )
                    });
            }
            Err(RaftError::Fatal(f)) => return Err(storage_failed(&f)),
            Err(e) => {
                return Err(ErrorReply::new(
                    ErrorCode::Unavailable,
                    format!("cannot confirm leadership: {e}"),
                ))
            }
        }
    }
    let limit = clamp(limit, DEFAULT_SAMPLE_SIZE, MAX_SAMPLE_SIZE).min(m.entries_per_reply());
    let peers = sample_pool(m, Pool::Node, limit, excluded, !linearizable).await?;
    Ok(Response::Peers { peers })
}

/// A sample of up to `limit` live entries of `pool`, from this member's registry. Native
/// `GetPeers` draws from the node pool only, the seed's `GET_PEERS` from the legacy pool
/// only: the two never mix. With `reservoir`, a large registry's sample comes from the
/// reservoir drawn ahead (see [`super::sample_reservoir`]); a linearizable read never does.
///
/// # Errors
/// `storage` if the registry cannot be read.
pub async fn sample_pool(
    m: &Arc<Member>,
    pool: Pool,
    limit: usize,
    excluded: ExcludeSet,
    reservoir: bool,
) -> Result<Vec<PeerEntry>, ErrorReply> {
    // Cluster time (the voters' median clock), as every other expiry decision uses.
    let now = m.clock.now_or_own();
    let drawn = if reservoir {
        m.reservoir.fresh(pool)
    } else {
        None
    };
    let mut peers = match drawn {
        Some(drawn) => {
            m.metrics.sample_from_reservoir();
            super::sample_reservoir::pick(&drawn, limit, &excluded, now, &mut rand::thread_rng())
        }
        None => m
            .registry
            .read(move |r| r.sample(pool, limit, &excluded, now, &mut rand::thread_rng()))
            .await
            .map_err(storage_reply)?,
    };
    // Who registered a legacy record is for operators, not for every newcomer.
    for p in &mut peers {
        if let PeerEntry::Legacy(l) = p {
            l.registered_from.clear();
        }
    }
    Ok(peers)
}

async fn membership(m: &Arc<Member>, request: Request) -> Result<Response, ErrorReply> {
    if let Some(cause) = m.raft_failure() {
        return Err(storage_failed(&cause));
    }
    if !m.is_leader() {
        let (_, addr) = m.leader().ok_or_else(no_leader)?;
        return m
            .leader_link
            .call(&addr, request, ADMIN_TIMEOUT)
            .await
            .map_err(|e| match e {
                crate::client::ClientError::Server(reply) => reply,
                other => ErrorReply::new(
                    ErrorCode::Unavailable,
                    format!("forwarding to leader {addr}: {other}"),
                ),
            });
    }
    let result = match request {
        Request::AddLearner { member_id, addr } => {
            crate::record::PeerAddress::parse(&addr).map_err(ErrorReply::from)?;
            if let Some(other) = members(m)
                .into_iter()
                .find(|&other| raft_settings::shares_election_window(member_id, other))
            {
                return Err(ErrorReply::new(
                    ErrorCode::BadRequest,
                    format!(
                        "member id {member_id} shares member {other}'s election window (ids \
                         are taken modulo {}); choose another id",
                        raft_settings::ELECTION_WINDOWS
                    ),
                ));
            }
            m.raft
                .add_learner(member_id, BasicNode::new(addr), true)
                .await
        }
        Request::Promote { member_id } => {
            m.raft
                .change_membership(
                    ChangeMembers::AddVoterIds(BTreeSet::from([member_id])),
                    false,
                )
                .await
        }
        Request::RemoveMember { member_id } => {
            let is_voter = voters(m).contains(&member_id);
            let change = if is_voter {
                ChangeMembers::RemoveVoters(BTreeSet::from([member_id]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([member_id]))
            };
            m.raft.change_membership(change, false).await
        }
        other => {
            return Err(ErrorReply::new(
                ErrorCode::BadRequest,
                format!("not an admin request: {other:?}"),
            ))
        }
    };
    match result {
        Ok(_) => Ok(Response::Done),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(no_leader()),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            Err(ErrorReply::new(ErrorCode::Membership, e.to_string()))
        }
        Err(RaftError::Fatal(f)) => Err(storage_failed(&f)),
    }
}

/// Every member id in the current membership, voters and learners.
fn members(m: &Member) -> BTreeSet<MemberId> {
    m.raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect()
}

fn voters(m: &Member) -> BTreeSet<MemberId> {
    m.raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

/// The initial membership from the configuration.
pub fn initial_members(m: &[(MemberId, String)]) -> BTreeMap<MemberId, BasicNode> {
    m.iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
        .collect()
}
