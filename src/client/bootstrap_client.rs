//! [`BootstrapClient`]: talks to "the bootstrap cluster" rather than to one member.
//!
//! It tries its addresses in order (configured seeds first, then members it learned from
//! `ClusterInfo`), each with a short connect timeout, keeps the connection that worked, and
//! retries transient refusals (no leader yet, member cut off) with backoff until a deadline.
//! Writes may land on any member: followers forward them to the leader.

use std::time::Duration;

use super::{ClientError, FrameConnection};
use crate::raft::ClusterSecret;
use crate::record::{Deregistration, PeerRecord};
use crate::registry::PeerEntry;
use crate::wire::{ClusterInfo, EntryDetail, PeerPage, Request, Response};

/// Default time to wait for a TCP connection to one member.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default time to wait for one reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total time spent retrying transient failures.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(10);
/// Pause after the first transient failure; it doubles after each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts. A leader failover takes about one election timeout
/// (0.6–1.3 s here); with pauses growing to 800 ms a client often slept through the new
/// leader's first half second (first write 1.65–2.4 s after a leader kill, most of it
/// waiting). Each attempt is one request to a live member, which answers `no_leader` in
/// microseconds, so retrying every 200 ms costs the cluster nothing worth saving.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// Timeouts and credentials of a [`BootstrapClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// How long transient failures are retried before the last error is returned.
    pub retry_for: Duration,
    /// Needed only for member-only and admin requests.
    pub secret: Option<ClusterSecret>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry_for: DEFAULT_RETRY_FOR,
            secret: None,
        }
    }
}

/// A client of the bootstrap cluster with fallback across members.
pub struct BootstrapClient {
    seeds: Vec<String>,
    learned: Vec<String>,
    conn: Option<FrameConnection>,
    options: ClientOptions,
    /// Where the next search for a member starts, so that a member that refused (or is
    /// unreachable) is not the first one tried again.
    cursor: usize,
}

impl BootstrapClient {
    /// A client that will try `seeds` in order.
    pub fn new(seeds: Vec<String>, options: ClientOptions) -> Self {
        Self {
            seeds,
            learned: Vec::new(),
            conn: None,
            options,
            cursor: 0,
        }
    }

    /// Every address this client would try, configured seeds first, then learned members.
    pub fn addresses(&self) -> Vec<String> {
        let mut all = self.seeds.clone();
        for a in &self.learned {
            if !all.contains(a) {
                all.push(a.clone());
            }
        }
        all
    }

    /// Member addresses learned from the cluster (the dynamic bootstrap list).
    pub fn learned(&self) -> &[String] {
        &self.learned
    }

    /// Adds addresses to try after the configured ones (e.g. a saved member list).
    pub fn add_learned(&mut self, addrs: impl IntoIterator<Item = String>) {
        for a in addrs {
            if !self.learned.contains(&a) {
                self.learned.push(a);
            }
        }
    }

    /// The member the client is connected to, if any.
    pub fn connected_to(&self) -> Option<&str> {
        self.conn.as_ref().map(FrameConnection::addr)
    }

    /// Sends `request` to some member, falling back and retrying as described above.
    ///
    /// # Errors
    /// Final server refusals at once; otherwise the last error once `retry_for` has passed.
    pub async fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let deadline = tokio::time::Instant::now() + self.options.retry_for;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let err = match self.call_once(request.clone()).await {
                Ok(resp) => return Ok(resp),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            if tokio::time::Instant::now() + backoff > deadline {
                return Err(err);
            }
            tracing::debug!(error = %err, "bootstrap call failed, retrying");
            // Jitter (half to the whole pause): clients that failed together do not all come
            // back at the same instant.
            let pause = backoff.mul_f64(rand::random::<f64>().mul_add(0.5, 0.5));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn call_once(&mut self, request: Request) -> Result<Response, ClientError> {
        let timeout = self.options.request_timeout;
        if let Some(conn) = self.conn.as_mut() {
            match conn.call(request.clone(), timeout).await {
                Err(e) if e.is_connection() => self.conn = None,
                Err(ClientError::Server(reply)) if reply.code.is_transient() => {
                    // This member cannot serve right now; the next attempt starts with the
                    // member after it.
                    self.conn = None;
                    return Err(ClientError::Server(reply));
                }
                other => return other,
            }
        }
        let mut last = String::from("no addresses configured");
        let addrs = self.addresses();
        let n = addrs.len().max(1);
        let start = self.cursor % n;
        for (i, addr) in addrs
            .iter()
            .cycle()
            .skip(start)
            .take(addrs.len())
            .enumerate()
        {
            self.cursor = (start + i + 1) % n;
            match self.open(addr).await {
                Ok(mut conn) => match conn.call(request.clone(), timeout).await {
                    Err(e) if e.is_connection() => last = e.to_string(),
                    other => {
                        self.conn = Some(conn);
                        return other;
                    }
                },
                Err(e) if e.is_connection() => last = e.to_string(),
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::AllUnreachable {
            tried: addrs.join(","),
            last,
        })
    }

    async fn open(&self, addr: &str) -> Result<FrameConnection, ClientError> {
        let mut conn = FrameConnection::connect(addr, self.options.connect_timeout).await?;
        if let Some(secret) = &self.options.secret {
            conn.authenticate(secret, self.options.request_timeout)
                .await?;
        }
        Ok(conn)
    }

    /// Registers or renews a signed record; returns whether it replaced an older one.
    ///
    /// # Errors
    /// As [`Self::call`]; refusals such as `stale_seq` or `not_owner` are `Server` errors.
    pub async fn register(&mut self, record: PeerRecord) -> Result<bool, ClientError> {
        Ok(self.register_moving(record).await?.0)
    }

    /// Like [`Self::register`], also returning the address the node's record was at until
    /// now when this registration moved it (a node holds one record).
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn register_moving(
        &mut self,
        record: PeerRecord,
    ) -> Result<(bool, Option<String>), ClientError> {
        match self.call(Request::Register { record }).await? {
            Response::Registered {
                replaced,
                moved_from,
            } => Ok((replaced, moved_from)),
            other => Err(unexpected(other)),
        }
    }

    /// Removes the caller's own record.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn deregister(&mut self, deregistration: Deregistration) -> Result<(), ClientError> {
        match self.call(Request::Deregister { deregistration }).await? {
            Response::Removed => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// A random, subnet-diverse sample of live peers.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn get_peers(
        &mut self,
        limit: Option<u32>,
        exclude: Vec<String>,
        linearizable: bool,
    ) -> Result<Vec<PeerEntry>, ClientError> {
        let request = Request::GetPeers {
            limit,
            exclude,
            linearizable,
        };
        match self.call(request).await? {
            Response::Peers { peers } => Ok(peers),
            other => Err(unexpected(other)),
        }
    }

    /// One page of the full listing.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn list_page(
        &mut self,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<PeerPage, ClientError> {
        match self.call(Request::ListPeers { after, limit }).await? {
            Response::PeerPage(page) => Ok(page),
            other => Err(unexpected(other)),
        }
    }

    /// Every entry of the full listing, fetched in pages of `page_size` (the member may cut a
    /// page shorter to fit its frame limit; the listing still continues from there).
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn list_all(
        &mut self,
        page_size: Option<u32>,
    ) -> Result<Vec<PeerEntry>, ClientError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(after, page_size).await?;
            all.extend(page.peers);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// Like [`Self::list_all`], with what the registry keeps about each entry (whether it
    /// is verified and served, its subnet group); `None` from a member that predates it.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn list_all_detailed(
        &mut self,
        page_size: Option<u32>,
    ) -> Result<Vec<(PeerEntry, Option<EntryDetail>)>, ClientError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(after, page_size).await?;
            let mut details = page.details.into_iter();
            all.extend(page.peers.into_iter().map(|p| (p, details.next())));
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// The cluster's members and leader; remembers the members' addresses for fallback.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn cluster_info(&mut self) -> Result<ClusterInfo, ClientError> {
        match self.call(Request::ClusterInfo).await? {
            Response::ClusterInfo(info) => {
                self.add_learned(info.members.iter().map(|m| m.addr.clone()));
                Ok(info)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Sends an admin request (needs the cluster secret in the options).
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn admin(&mut self, request: Request) -> Result<(), ClientError> {
        match self.call(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(resp: Response) -> ClientError {
    ClientError::Unexpected(format!("{resp:?}"))
}
