//! [`NetworkFactory`]: Raft RPCs to other members, each over a persistent connection that
//! authenticated with the cluster secret when it opened.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
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
}

impl NetworkFactory {
    pub fn new(secret: ClusterSecret) -> Self {
        Self { secret }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = MemberNetwork;

    async fn new_client(&mut self, target: MemberId, node: &BasicNode) -> MemberNetwork {
        MemberNetwork {
            target,
            addr: node.addr.clone(),
            secret: self.secret.clone(),
            conn: None,
        }
    }
}

/// The RPC channel to one member; reconnects lazily after any failure.
pub struct MemberNetwork {
    target: MemberId,
    addr: String,
    secret: ClusterSecret,
    conn: Option<FrameConnection>,
}

type RpcErr<E = openraft::error::Infallible> =
    RPCError<MemberId, BasicNode, RaftError<MemberId, E>>;

impl MemberNetwork {
    async fn call<E: std::error::Error>(
        &mut self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, RpcErr<E>> {
        if self.conn.is_none() {
            let mut conn = FrameConnection::connect(&self.addr, MEMBER_CONNECT_TIMEOUT)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
            conn.authenticate(&self.secret, timeout)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RPCError::Network(NetworkError::new(&ClientError::Closed {
                addr: self.addr.clone(),
            })));
        };
        match conn.call(request, timeout).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                self.conn = None;
                Err(RPCError::Network(NetworkError::new(&e)))
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
        match self
            .call(Request::AppendEntries(rpc), option.hard_ttl())
            .await?
        {
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
            .await?
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
        match self.call(Request::Vote(rpc), option.hard_ttl()).await? {
            Response::Vote(r) => self.remote(r),
            other => Err(unexpected(&other)),
        }
    }
}
