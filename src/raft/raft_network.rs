//! [`NetworkFactory`]: Raft RPCs to other members, each over a persistent connection that
//! authenticated with the cluster secret when it opened.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::{ClusterSecret, MemberId, TypeConfig};
use crate::client::{ClientError, FrameConnection};
use crate::wire::{Request, Response};

/// How long to wait for a TCP connection to another member.
pub const MEMBER_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Makes one [`MemberNetwork`] per target member.
#[derive(Clone)]
pub struct NetworkFactory {
    secret: ClusterSecret,
    max_frame_length: usize,
}

impl NetworkFactory {
    /// RPCs authenticate with `secret`; no frame longer than `max_frame_length` is sent or
    /// accepted (an AppendEntries that would be is split by openraft, see
    /// [`MemberNetwork::append_entries`]).
    pub fn new(secret: ClusterSecret, max_frame_length: usize) -> Self {
        Self {
            secret,
            max_frame_length,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = MemberNetwork;

    async fn new_client(&mut self, target: MemberId, node: &BasicNode) -> MemberNetwork {
        MemberNetwork {
            target,
            addr: node.addr.clone(),
            secret: self.secret.clone(),
            max_frame_length: self.max_frame_length,
            conn: None,
        }
    }
}

/// The RPC channel to one member; reconnects lazily after any failure.
pub struct MemberNetwork {
    target: MemberId,
    addr: String,
    secret: ClusterSecret,
    max_frame_length: usize,
    conn: Option<FrameConnection>,
}

type RpcErr<E = openraft::error::Infallible> =
    RPCError<MemberId, BasicNode, RaftError<MemberId, E>>;

/// Why one RPC got no reply.
enum CallFailure {
    /// No authenticated connection could be opened.
    Unreachable(ClientError),
    /// The request was not delivered or its reply did not come back.
    Network(ClientError),
}

impl CallFailure {
    fn into_rpc<E: std::error::Error>(self) -> RpcErr<E> {
        match self {
            Self::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Self::Network(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

impl MemberNetwork {
    async fn call(&mut self, request: Request, timeout: Duration) -> Result<Response, CallFailure> {
        if self.conn.is_none() {
            let mut conn = FrameConnection::connect_with_limit(
                &self.addr,
                MEMBER_CONNECT_TIMEOUT,
                self.max_frame_length,
            )
            .await
            .map_err(CallFailure::Unreachable)?;
            conn.authenticate(&self.secret, timeout)
                .await
                .map_err(CallFailure::Unreachable)?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(CallFailure::Network(ClientError::Closed {
                addr: self.addr.clone(),
            }));
        };
        match conn.call(request, timeout).await {
            Ok(resp) => Ok(resp),
            // Nothing was sent and the connection is still good.
            Err(e @ ClientError::RequestTooLarge { .. }) => Err(CallFailure::Network(e)),
            Err(e) => {
                self.conn = None;
                Err(CallFailure::Network(e))
            }
        }
    }

    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<MemberId, E>>,
    ) -> Result<T, RPCError<MemberId, BasicNode, RaftError<MemberId, E>>> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn unexpected<E: std::error::Error>(resp: &Response) -> RpcErr<E> {
    RPCError::Network(NetworkError::new(&ClientError::Unexpected(format!(
        "{resp:?}"
    ))))
}

impl RaftNetwork<TypeConfig> for MemberNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<MemberId>, RpcErr> {
        let entries = rpc.entries.len() as u64;
        let reply = match self
            .call(Request::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(reply) => reply,
            // Larger than one frame: openraft retries with at most half the entries (a single
            // entry always fits, see `MIN_MAX_FRAME_LENGTH`).
            Err(CallFailure::Network(ClientError::RequestTooLarge { max })) if entries > 1 => {
                tracing::info!(
                    target = self.target,
                    entries,
                    max,
                    "append-entries larger than a frame; asking openraft to split it"
                );
                return Err(PayloadTooLarge::new_entries_hint(entries / 2).into());
            }
            Err(e) => return Err(e.into_rpc()),
        };
        match reply {
            Response::AppendEntries(r) => self.remote(r),
            other => Err(unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<MemberId>, RpcErr<InstallSnapshotError>> {
        match self
            .call(Request::InstallSnapshot(rpc), option.hard_ttl())
            .await
            .map_err(CallFailure::into_rpc)?
        {
            Response::InstallSnapshot(r) => self.remote(r),
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<MemberId>,
        option: RPCOption,
    ) -> Result<VoteResponse<MemberId>, RpcErr> {
        match self
            .call(Request::Vote(rpc), option.hard_ttl())
            .await
            .map_err(CallFailure::into_rpc)?
        {
            Response::Vote(r) => self.remote(r),
            other => Err(unexpected(&other)),
        }
    }
}
