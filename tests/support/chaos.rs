//! [`ChaosRun`]: the chaos scenarios, written once against [`Faults`], run while a
//! [`Workload`] records every client operation; afterwards the history is checked (nothing
//! acknowledged lost, no phantom records, linearizable per key) and summarised.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use peerchain::client::{BootstrapClient, ClientOptions};
use peerchain::raft::ClusterSecret;
use peerchain::record::NodeIdentity;
use peerchain::wire::Request;

use super::chaos_report::{ChaosReport, FaultEvent, NodeSummary};
use super::faults::Faults;
use super::history::{Op, OpKind, Outcome};
use super::workload::{read_op, Workload};
use super::{NETWORK, SECRET};

/// How long one wait for a leader (or for members to agree) may take.
const LEADER_WAIT: Duration = Duration::from_secs(30);
/// How long the workload runs on between faults.
const BETWEEN_FAULTS: Duration = Duration::from_millis(700);
/// How long a fault is held before it is healed.
const HOLD: Duration = Duration::from_millis(1500);
/// A write to a member without quorum must fail within this bound.
const FAIL_FAST_BOUND: Duration = Duration::from_secs(8);
/// The address the minority-write probe tries to register (recorded like any other key).
pub const PROBE_KEY: &str = "127.78.0.1:7000";
/// How long a node started during a fault may take to reach its first peer.
const JOIN_WAIT: Duration = Duration::from_secs(45);
/// How long the nodes may take, after healing, to be registered, connected and on one chain.
const NODES_SETTLE: Duration = Duration::from_secs(90);

/// Sizes of a run, from `PEERCHAIN_CHAOS_PROFILE` (`ci`, the default, or `long`).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub kill_cycles: usize,
    pub clients: usize,
    pub keys_each: usize,
}

impl Profile {
    pub fn from_env() -> Result<Self> {
        let name = std::env::var("PEERCHAIN_CHAOS_PROFILE").unwrap_or_else(|_| "ci".into());
        let kill_cycles = match name.as_str() {
            "ci" => 20,
            "long" => 50,
            other => bail!("PEERCHAIN_CHAOS_PROFILE={other}: expected ci or long"),
        };
        Ok(Self {
            name,
            kill_cycles,
            clients: 4,
            keys_each: 8,
        })
    }
}

fn probe_options(request_timeout: Duration) -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(300),
        request_timeout,
        retry_for: Duration::ZERO,
        secret: None,
    }
}

/// One chaos run: a harness, the recording workload, and the faults injected so far.
pub struct ChaosRun<F: Faults> {
    pub faults: F,
    pub profile: Profile,
    workload: Workload,
    events: Vec<FaultEvent>,
    notes: Vec<String>,
    /// Paused or cut-off members: not asked while waiting for a leader.
    frozen: BTreeSet<u64>,
    started: Instant,
    /// (fault, seconds to a first peer) of nodes started during faults.
    joins: Vec<(String, f64)>,
    /// Nodes started during faults whose first peer is still awaited: (name, fault, start).
    pending_joins: Vec<(String, String, Instant)>,
    next_node: usize,
}

impl<F: Faults> ChaosRun<F> {
    /// Starts the workload against every member of `faults`.
    pub fn start(faults: F, profile: Profile) -> Self {
        let addrs = faults
            .ids()
            .iter()
            .map(|&i| faults.client_addr(i))
            .collect();
        let workload = Workload::start(addrs, profile.clients, profile.keys_each);
        Self {
            faults,
            profile,
            workload,
            events: Vec::new(),
            notes: Vec::new(),
            frozen: BTreeSet::new(),
            started: Instant::now(),
            joins: Vec::new(),
            pending_joins: Vec::new(),
            next_node: 0,
        }
    }

    /// Starts a node during a fault, with a seed list that begins with an address where no
    /// member ever listened, then the members the fault took away, then the others.
    fn start_joining_node(&mut self, fault: &str) -> Result<String> {
        let name = format!("join{}", self.next_node);
        self.next_node += 1;
        let reachable = self.reachable();
        let mut seeds = vec![self.faults.dead_seed()];
        let ids = self.faults.ids();
        seeds.extend(
            ids.iter()
                .filter(|i| !reachable.contains(i))
                .map(|&i| self.faults.seed_addr(i)),
        );
        seeds.extend(
            ids.iter()
                .filter(|i| reachable.contains(i))
                .map(|&i| self.faults.seed_addr(i)),
        );
        self.faults.start_node(&name, &seeds, false)?;
        self.pending_joins
            .push((name.clone(), fault.to_string(), Instant::now()));
        Ok(name)
    }

    /// Waits until every node started during a fault has a peer.
    async fn await_joins(&mut self) -> Result<()> {
        for (name, fault, started) in std::mem::take(&mut self.pending_joins) {
            let deadline = started + JOIN_WAIT;
            loop {
                let status = self.faults.node_status(&name).await;
                if status.as_ref().is_ok_and(|s| !s.peers.is_empty()) {
                    self.joins.push((fault, started.elapsed().as_secs_f64()));
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "node {name}, started during '{fault}', found no peer within {JOIN_WAIT:?} ({:?}); {}",
                        status.err(),
                        self.faults.diagnostics()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// A node started during the fault joins while the fault holds.
    async fn join_during(&mut self, fault: &str) -> Result<()> {
        self.start_joining_node(fault)?;
        self.await_joins().await
    }

    /// After healing: every node registered and connected, and all on one chain. The miner
    /// goes on and statuses are read one node after another, so tips may differ by the
    /// blocks mined meanwhile: one chain means every tip is the best node's tip or one of
    /// its recent main-chain blocks.
    async fn settle_nodes(&self) -> NodeSummary {
        let names = self.faults.nodes();
        let deadline = Instant::now() + NODES_SETTLE;
        loop {
            let mut problems = Vec::new();
            let mut statuses = Vec::new();
            let mut joined = 0;
            for name in &names {
                match self.faults.node_status(name).await {
                    Ok(s) => {
                        if s.registered && !s.peers.is_empty() {
                            joined += 1;
                        } else {
                            problems.push(format!(
                                "{name}: registered {}, {} peers",
                                s.registered,
                                s.peers.len()
                            ));
                        }
                        statuses.push((name.clone(), s));
                    }
                    Err(e) => problems.push(format!("{name}: {e:#}")),
                }
            }
            let best = statuses.iter().max_by_key(|(_, s)| s.tip.total_work);
            let mut converged = statuses.len() == names.len() && best.is_some();
            let mut height = 0;
            if let Some((best_name, best)) = best {
                height = best.tip.height;
                for (name, s) in &statuses {
                    let on_best_chain = s.tip.hash == best.tip.hash
                        || best
                            .recent_blocks
                            .iter()
                            .any(|b| b.height == s.tip.height && b.hash == s.tip.hash);
                    if !on_best_chain {
                        converged = false;
                        problems.push(format!(
                            "{name} at height {} is not on {best_name}'s chain (height {})",
                            s.tip.height, best.tip.height
                        ));
                    }
                }
            }
            let done = joined == names.len() && converged && height > 0;
            if done || Instant::now() > deadline {
                return NodeSummary {
                    started: names.len(),
                    joined,
                    joins_during_faults: self.joins.clone(),
                    chain_converged: converged && height > 0,
                    chain_height: height,
                    problems: if done { Vec::new() } else { problems },
                };
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn reachable(&self) -> Vec<u64> {
        self.faults
            .ids()
            .into_iter()
            .filter(|&i| self.faults.is_running(i) && !self.frozen.contains(&i))
            .collect()
    }

    async fn info(&self, id: u64) -> Option<peerchain::wire::ClusterInfo> {
        let addr = self.faults.client_addr(id);
        let mut c = BootstrapClient::new(vec![addr], probe_options(Duration::from_secs(1)));
        c.cluster_info().await.ok()
    }

    /// A reachable member, not in `exclude`, that some member names leader and that
    /// confirms it itself.
    async fn find_leader(&self, exclude: &[u64]) -> Result<u64> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let reachable = self.reachable();
            for &id in &reachable {
                let Some(l) = self.info(id).await.and_then(|i| i.leader_id) else {
                    continue;
                };
                if reachable.contains(&l)
                    && !exclude.contains(&l)
                    && self.info(l).await.and_then(|i| i.leader_id) == Some(l)
                {
                    return Ok(l);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no leader among {reachable:?} (excluding {exclude:?}) within {LEADER_WAIT:?}; {}",
                    self.faults.diagnostics()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every reachable member names the same reachable leader.
    async fn wait_all_agree(&self) -> Result<u64> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let reachable = self.reachable();
            let mut leaders = BTreeSet::new();
            for &id in &reachable {
                leaders.insert(self.info(id).await.and_then(|i| i.leader_id));
            }
            if let [Some(l)] = leaders.iter().copied().collect::<Vec<_>>()[..] {
                if reachable.contains(&l) {
                    return Ok(l);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "members {reachable:?} do not agree on a leader ({leaders:?}); {}",
                    self.faults.diagnostics()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn now_us(&self) -> u64 {
        self.workload.history.now_us()
    }

    fn event(&mut self, kind: &'static str, target: String, injected_us: u64) {
        let healed_us = self.now_us();
        self.events.push(FaultEvent {
            kind,
            target,
            injected_us,
            healed_us,
        });
    }

    fn note(&mut self, note: String) {
        eprintln!("NOTE: {note}");
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// kill -9 of the leader, `cycles` times: a new leader must take over, then the killed
    /// member is restarted.
    pub async fn kill_leader_cycles(&mut self, cycles: usize) -> Result<()> {
        for cycle in 0..cycles {
            let leader = self.find_leader(&[]).await?;
            self.faults.kill(leader)?;
            let t = self.now_us();
            let next = self
                .find_leader(&[leader])
                .await
                .context(format!("cycle {cycle}"))?;
            ensure!(next != leader);
            self.join_during("kill -9 leader").await?;
            self.faults.restart(leader)?;
            self.wait_all_agree().await?;
            self.event("kill -9 leader", format!("{leader}"), t);
            tokio::time::sleep(BETWEEN_FAULTS).await;
        }
        Ok(())
    }

    /// Two of three members killed: a write to the survivor fails fast with a clear error,
    /// reads from it go on; then both come back.
    pub async fn kill_majority(&mut self) -> Result<()> {
        let leader = self.find_leader(&[]).await?;
        let ids = self.faults.ids();
        let follower = *ids.iter().find(|&&i| i != leader).context("a follower")?;
        let survivor = *ids
            .iter()
            .find(|&&i| i != leader && i != follower)
            .context("a survivor")?;
        self.faults.kill(leader)?;
        self.faults.kill(follower)?;
        let t = self.now_us();
        let addr = self.faults.client_addr(survivor);
        let mut client =
            BootstrapClient::new(vec![addr.clone()], probe_options(Duration::from_secs(10)));
        let id = NodeIdentity::generate();
        let now = peerchain::unix_ms();
        let record = id.sign_record(NETWORK, PROBE_KEY, 1, now + 3_600_000);
        let invoke_us = self.now_us();
        let started = Instant::now();
        let result = client.register(record).await;
        let took = started.elapsed();
        self.workload.history.push(Op {
            client: usize::MAX,
            kind: OpKind::Register {
                key: PROBE_KEY.into(),
                seq: 1,
            },
            invoke_us,
            complete_us: self.now_us(),
            outcome: match &result {
                Ok(_) => Outcome::Ok(None),
                Err(e) => Outcome::from_error(e),
            },
        });
        let err = match result {
            Ok(_) => bail!("a write to member {survivor} without quorum was acknowledged"),
            Err(e) => e,
        };
        ensure!(
            took < FAIL_FAST_BOUND,
            "write without quorum took {took:?} to fail"
        );
        self.note(format!(
            "2 of 3 members down: a write to member {survivor} failed after {:.2} s with: {err}",
            took.as_secs_f64()
        ));
        let peers = client.get_peers(Some(1000), Vec::new(), false).await;
        let peers = peers.context("a non-linearizable read from the surviving member")?;
        self.note(format!(
            "2 of 3 members down: member {survivor} still answered a read ({} peers)",
            peers.len()
        ));
        self.frozen.extend([leader, follower]);
        self.join_during("kill -9 2 of 3").await?;
        self.frozen.remove(&leader);
        self.frozen.remove(&follower);
        tokio::time::sleep(HOLD).await;
        self.faults.restart(leader)?;
        self.faults.restart(follower)?;
        self.find_leader(&[]).await?;
        self.wait_all_agree().await?;
        self.event("kill -9 2 of 3", format!("{leader},{follower}"), t);
        tokio::time::sleep(BETWEEN_FAULTS).await;
        Ok(())
    }

    /// The leader frozen (SIGSTOP / docker pause): the others elect a new one; resumed, it
    /// rejoins as a follower.
    pub async fn pause_leader(&mut self) -> Result<()> {
        let leader = self.find_leader(&[]).await?;
        self.faults.pause(leader)?;
        let t = self.now_us();
        self.frozen.insert(leader);
        self.find_leader(&[leader]).await?;
        self.join_during("pause leader").await?;
        tokio::time::sleep(HOLD).await;
        self.faults.resume(leader)?;
        self.frozen.remove(&leader);
        self.wait_all_agree().await?;
        self.event("pause leader", format!("{leader}"), t);
        tokio::time::sleep(BETWEEN_FAULTS).await;
        Ok(())
    }

    /// The leader cut off from the others (and from clients), then healed.
    pub async fn partition_leader(&mut self) -> Result<()> {
        let leader = self.find_leader(&[]).await?;
        let note = self.faults.disconnect(leader)?;
        let t = self.now_us();
        if let Some(note) = note {
            self.note(note);
        }
        self.frozen.insert(leader);
        self.find_leader(&[leader]).await?;
        self.join_during("cut off leader").await?;
        tokio::time::sleep(HOLD).await;
        self.faults.heal(leader)?;
        self.frozen.remove(&leader);
        self.wait_all_agree().await?;
        self.event("cut off leader", format!("{leader}"), t);
        tokio::time::sleep(BETWEEN_FAULTS).await;
        Ok(())
    }

    /// Every member killed at once, then all restarted.
    pub async fn full_restart(&mut self) -> Result<()> {
        let ids = self.faults.ids();
        for &id in &ids {
            self.faults.kill(id)?;
        }
        let t = self.now_us();
        // A node that starts while no member is up joins once they are back.
        self.frozen.extend(ids.iter().copied());
        self.start_joining_node("full restart")?;
        self.frozen.clear();
        tokio::time::sleep(Duration::from_secs(1)).await;
        for &id in &ids {
            self.faults.restart(id)?;
        }
        self.find_leader(&[]).await?;
        self.wait_all_agree().await?;
        self.await_joins().await?;
        self.event("full restart", "all".into(), t);
        tokio::time::sleep(BETWEEN_FAULTS).await;
        Ok(())
    }

    /// A follower loses its disk: it is removed from the membership, wiped, started with
    /// `--join`, added as a learner and promoted back to voter.
    pub async fn wipe_and_rejoin(&mut self) -> Result<()> {
        let leader = self.find_leader(&[]).await?;
        let victim = *self
            .faults
            .ids()
            .iter()
            .find(|&&i| i != leader)
            .context("a follower")?;
        self.faults.kill(victim)?;
        let t = self.now_us();
        self.admin(Request::RemoveMember { member_id: victim })
            .await?;
        self.frozen.insert(victim);
        self.join_during("wipe + rejoin").await?;
        self.frozen.remove(&victim);
        self.faults.wipe_and_start_joining(victim)?;
        let addr = self.faults.member_addr(victim);
        self.admin(Request::AddLearner {
            member_id: victim,
            addr,
        })
        .await?;
        self.admin(Request::Promote { member_id: victim }).await?;
        self.wait_all_agree().await?;
        // The promotion is committed by the others; the rejoined member learns of it with
        // the next append it receives.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let info = self.info(victim).await;
            if info
                .as_ref()
                .is_some_and(|i| i.members.iter().any(|m| m.id == victim && m.voter))
            {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "member {victim} does not see itself as a voter again: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.event("wipe + rejoin", format!("{victim}"), t);
        tokio::time::sleep(BETWEEN_FAULTS).await;
        Ok(())
    }

    async fn admin(&self, request: Request) -> Result<()> {
        let addrs = self
            .reachable()
            .iter()
            .map(|&i| self.faults.client_addr(i))
            .collect();
        let options = ClientOptions {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_secs(60),
            retry_for: Duration::from_secs(20),
            secret: Some(ClusterSecret::new(SECRET.as_bytes())?),
        };
        let what = format!("{request:?}");
        BootstrapClient::new(addrs, options)
            .admin(request)
            .await
            .with_context(|| format!("admin request {what}"))
    }

    /// Heals everything, stops the workload, reads the final state from every member and
    /// checks the history.
    pub async fn finish(mut self) -> Result<ChaosReport> {
        // Only reached when every scenario step succeeded (and so healed its own fault);
        // this is a safety net, and either undo may not apply to a given member.
        for id in std::mem::take(&mut self.frozen) {
            let _ = self.faults.resume(id);
            let _ = self.faults.heal(id);
        }
        for id in self.faults.ids() {
            if !self.faults.is_running(id) {
                self.faults.restart(id)?;
            }
        }
        self.wait_all_agree().await?;
        // Let the workload show that writes go on after the last fault.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.workload.stop().await;
        let addrs: Vec<String> = self
            .faults
            .ids()
            .iter()
            .map(|&i| self.faults.client_addr(i))
            .collect();
        // A final linearizable read, part of the checked history.
        let mut reader = BootstrapClient::new(addrs, probe_options(Duration::from_secs(3)));
        let history = self.workload.history.clone();
        for _ in 0..20 {
            read_op(usize::MAX, &mut reader, &history).await;
            if history.ops().last().is_some_and(|o| o.outcome.is_ok()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut keys = self.workload.keys.clone();
        keys.push(PROBE_KEY.into());
        let nodes = self.settle_nodes().await;
        let node_addrs: BTreeSet<String> = self
            .faults
            .nodes()
            .iter()
            .map(|n| self.faults.node_advertised(n))
            .collect();
        let mut listings = super::chaos_report::converged_listings(&self.faults).await?;
        // Node records are the nodes' own writes, not the workload's: judged by the node
        // checks above, left out of the registry history.
        for (_, l) in &mut listings {
            l.retain(|addr, _| !node_addrs.contains(addr));
        }
        let mut report = ChaosReport::build(
            self.faults.harness(),
            &self.profile.name,
            history.ops(),
            &keys,
            self.events,
            self.notes,
            listings,
            self.started.elapsed(),
        );
        report.nodes = nodes;
        Ok(report)
    }
}

/// Scenario 1: kill -9 of the leader under write load, `profile.kill_cycles` times.
pub async fn leader_kill_cycles<F: Faults>(faults: F) -> Result<ChaosReport> {
    let profile = Profile::from_env()?;
    let cycles = profile.kill_cycles;
    let mut run = ChaosRun::start(faults, profile);
    run.kill_leader_cycles(cycles).await?;
    let report = run.finish().await?;
    eprintln!("{report}");
    report.assert_ok()?;
    Ok(report)
}

/// Scenario 2: majority loss, leader paused, leader cut off, full restart, and a wiped
/// member re-added through a membership change, all under load.
pub async fn mixed_faults<F: Faults>(faults: F) -> Result<ChaosReport> {
    let mut run = ChaosRun::start(faults, Profile::from_env()?);
    tokio::time::sleep(BETWEEN_FAULTS).await;
    run.kill_majority().await?;
    run.pause_leader().await?;
    run.partition_leader().await?;
    run.full_restart().await?;
    run.wipe_and_rejoin().await?;
    let report = run.finish().await?;
    eprintln!("{report}");
    report.assert_ok()?;
    Ok(report)
}
