//! [`BootstrapLink`]: the node's side of the bootstrap cluster. A task (not an actor: it only
//! awaits the one shared [`BootstrapClient`]) that registers the node's signed record, renews
//! it after a third of its lifetime, learns the cluster's current members, fetches peers
//! periodically and on request, backs off while every member is down, and deregisters on
//! clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::peer_manager::{BootstrapPeers, BootstrapState};
use super::{NodeContext, PeerManager};
use crate::client::{BootstrapClient, ClientError, ClientOptions};
use crate::wire::ErrorCode;

/// Requests from the peer manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCommand {
    /// The address book runs low: fetch peers now.
    RefreshNow,
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Peers asked for per refresh.
const PEERS_PER_REFRESH: u32 = 100;
/// How long deregistering may hold up shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// The bootstrap task of one node.
pub struct BootstrapLink {
    node: Arc<NodeContext>,
    client: BootstrapClient,
    manager: Addr<PeerManager>,
    /// Sequence number of the record last registered.
    seq: Option<u64>,
    /// The cluster's members as last reported, to tell the manager only of changes.
    members: Vec<String>,
    /// Whether the last registration or renewal succeeded (the status's "registered").
    registered: bool,
    /// The member that answered last, to notice (and count) a failover.
    last_member: Option<String>,
    /// The member that answered before the cluster stopped answering, to log the recovery.
    lost_member: Option<String>,
}

impl BootstrapLink {
    /// A link that tries the configured seeds, then `saved_members` (the members learned in
    /// an earlier run).
    pub fn new(
        node: Arc<NodeContext>,
        saved_members: Vec<String>,
        manager: Addr<PeerManager>,
    ) -> Self {
        let options = ClientOptions {
            connect_timeout: node.config.connect_timeout,
            // A frozen member accepts TCP connections but never answers: give up on it after
            // 2 s and go on to the next address within the same call.
            request_timeout: Duration::from_secs(2),
            retry_for: Duration::from_secs(6),
            secret: None,
        };
        let mut client = BootstrapClient::new(node.config.seeds.clone(), options);
        client.add_learned(saved_members.clone());
        Self {
            node,
            client,
            manager,
            seq: None,
            members: saved_members,
            registered: false,
            last_member: None,
            lost_member: None,
        }
    }

    /// Runs until `stop` turns true, then deregisters.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<LinkCommand>,
        mut stop: watch::Receiver<bool>,
    ) {
        if self.client.addresses().is_empty() {
            tracing::info!("no bootstrap seeds configured; relying on configured peers");
            return;
        }
        let renew_every = self.node.config.record_ttl / 3;
        // Registration and peer fetching back off separately: a cluster without quorum
        // refuses the write but still answers reads, so peers keep coming.
        let mut register_backoff = FIRST_BACKOFF;
        let mut refresh_backoff = FIRST_BACKOFF;
        let mut next_register = Instant::now();
        let mut next_refresh = Instant::now();
        let mut last_refresh: Option<Instant> = None;
        loop {
            // Peers first: a node needs them to work, and a cluster without quorum still
            // serves them while it refuses the registration.
            if Instant::now() >= next_refresh {
                last_refresh = Some(Instant::now());
                // Calls may retry for seconds while the cluster is down: shutdown cuts them short.
                let result = tokio::select! {
                    r = self.refresh() => r,
                    _ = stop.changed() => break,
                };
                match result {
                    Ok(cluster_ready) => {
                        next_refresh = Instant::now() + self.node.config.refresh_interval;
                        refresh_backoff = FIRST_BACKOFF;
                        // A new member answers, or one that says the cluster lost its quorum:
                        // renew now, so that "registered" speaks for the cluster this node
                        // can reach, not the one it left.
                        if self.note_member() || !cluster_ready {
                            next_register = next_register.min(Instant::now());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "fetching peers from the bootstrap cluster failed");
                        next_refresh = Instant::now() + refresh_backoff;
                        refresh_backoff = (refresh_backoff * 2).min(MAX_BACKOFF);
                        // No member answers: name none, and find out now whether the
                        // registration can still be renewed.
                        self.lose_member();
                        self.report(self.registered);
                        next_register = Instant::now();
                    }
                }
            }
            if Instant::now() >= next_register {
                let result = tokio::select! {
                    r = self.register() => r,
                    _ = stop.changed() => break,
                };
                match result {
                    Ok(()) => {
                        next_register = Instant::now() + renew_every;
                        register_backoff = FIRST_BACKOFF;
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in = ?register_backoff,
                            "registering with the bootstrap cluster failed; working from the address book"
                        );
                        self.lose_member();
                        self.report(false);
                        next_register = Instant::now() + register_backoff;
                        register_backoff = (register_backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            let wake = next_register.min(next_refresh);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                cmd = commands.recv() => match cmd {
                    Some(LinkCommand::RefreshNow) => {
                        let earliest = last_refresh.map_or(Instant::now(), |t| t + Duration::from_secs(2));
                        next_refresh = next_refresh.min(earliest.max(Instant::now()));
                    }
                    None => break,
                },
                _ = stop.changed() => break,
            }
        }
        self.deregister().await;
    }

    /// Tells the manager which member answers (none after a failure) and whether the last
    /// renewal succeeded, so the status never names a dead member as "registered".
    fn report(&mut self, registered: bool) {
        self.registered = registered;
        let member = if registered {
            self.client.connected_to().map(String::from)
        } else {
            self.last_member.clone()
        };
        self.manager.do_send(BootstrapState {
            member,
            registered,
            members: None,
        });
    }

    /// No member answers: remember which one did last, so the recovery can be logged once.
    fn lose_member(&mut self) {
        if let Some(m) = self.last_member.take() {
            self.lost_member = Some(m);
        }
    }

    /// Notes the member that just answered; true if it is another than before (a failover,
    /// counted in `peerchain_node_bootstrap_failovers_total`).
    fn note_member(&mut self) -> bool {
        let now = self.client.connected_to().map(String::from);
        if now == self.last_member {
            return false;
        }
        if let (Some(before), Some(after)) = (&self.last_member, &now) {
            self.node.metrics.bootstrap_failover();
            tracing::info!(from = %before, to = %after, "bootstrap failover: another member answers");
        } else if let (Some(lost), Some(after)) = (self.lost_member.take(), &now) {
            if lost != *after {
                self.node.metrics.bootstrap_failover();
            }
            tracing::info!(
                member = %after, previous = %lost,
                "bootstrap cluster reachable again (recovered)"
            );
        }
        self.last_member = now;
        self.manager.do_send(BootstrapState {
            member: self.last_member.clone(),
            registered: self.registered,
            members: None,
        });
        self.last_member.is_some()
    }

    async fn register(&mut self) -> Result<(), ClientError> {
        let now = crate::unix_ms();
        let seq = now.max(self.seq.map_or(0, |s| s + 1));
        let ttl = super::address_book::ms(self.node.config.record_ttl);
        let record = self.node.identity.sign_record(
            &self.node.config.network_id,
            &self.node.advertised,
            seq,
            now + ttl,
        );
        match self.client.register(record).await {
            Ok(_) => {}
            // A retried request whose first attempt was applied (its reply lost) comes back
            // as stale: the record with this very seq is in place.
            Err(ClientError::Server(e)) if e.code == ErrorCode::StaleSeq && self.seq.is_some() => {}
            Err(e) => return Err(e),
        }
        if self.seq.is_none() {
            tracing::info!(
                member = %self.client.connected_to().unwrap_or("-"),
                address = %self.node.advertised,
                "registered with the bootstrap cluster"
            );
        }
        self.seq = Some(seq);
        self.note_member();
        self.report(true);
        Ok(())
    }

    /// Fetches the members and a sample of peers. `Ok(false)` if the member answering says
    /// it is not ready (e.g. its cluster lost its quorum).
    async fn refresh(&mut self) -> Result<bool, ClientError> {
        let info = self.client.cluster_info().await?;
        let ready = info.ready != Some(false);
        let members: Vec<String> = info.members.iter().map(|m| m.addr.clone()).collect();
        if members != self.members {
            tracing::info!(?members, "learned the bootstrap cluster's members");
            self.members = members.clone();
            self.manager.do_send(BootstrapState {
                member: self.client.connected_to().map(String::from),
                registered: self.registered,
                members: Some(members),
            });
        }
        let peers = self
            .client
            .get_peers(
                Some(PEERS_PER_REFRESH),
                vec![self.node.advertised.clone()],
                false,
            )
            .await?;
        self.manager.do_send(BootstrapPeers {
            addrs: peers.iter().map(|p| p.address().to_string()).collect(),
        });
        Ok(ready)
    }

    async fn deregister(&mut self) {
        let Some(seq) = self.seq else {
            return;
        };
        let dereg = self.node.identity.sign_deregistration(
            &self.node.config.network_id,
            &self.node.advertised,
            seq.max(crate::unix_ms()),
        );
        match tokio::time::timeout(DEREGISTER_TIMEOUT, self.client.deregister(dereg)).await {
            Ok(Ok(())) => tracing::info!("deregistered from the bootstrap cluster"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "deregistering failed; the record will expire")
            }
            Err(_) => tracing::warn!("deregistering timed out; the record will expire"),
        }
    }
}
