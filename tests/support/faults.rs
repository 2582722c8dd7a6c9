//! [`Faults`]: what a chaos scenario may do to the bootstrap members, with two harnesses —
//! [`ProcessFaults`] (real processes on loopback: `kill -9`, SIGSTOP/SIGCONT) and
//! `DockerFaults` (containers of deploy/docker-compose.yml: `docker kill`, `docker pause`,
//! `docker network disconnect`). Scenarios in `chaos.rs` are written once against this trait.
//!
//! Nodes are part of the harness too: scenarios start nodes during faults (with seed lists
//! whose first entries are dead) and check after healing that every node joined and that all
//! nodes converged on one chain.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use peerchain::wire::NodeStatus;

use super::node_net::NodeNet;
use super::{free_port, Cluster};

/// Fault injection and member lifecycle, harness-independent.
#[allow(async_fn_in_trait)]
pub trait Faults {
    /// "process" or "docker", for the summary.
    fn harness(&self) -> &'static str;
    /// Ids of the members this harness manages (running or not).
    fn ids(&self) -> Vec<u64>;
    /// Address the test process uses to reach member `id`.
    fn client_addr(&self, id: u64) -> String;
    /// Address the other members use for member `id` (given to `add-learner`).
    fn member_addr(&self, id: u64) -> String;
    /// Whether member `id` was started and not killed since.
    fn is_running(&self, id: u64) -> bool;
    /// SIGKILL: no flush, no clean-up.
    fn kill(&mut self, id: u64) -> Result<()>;
    /// Starts a killed member again on its existing data.
    fn restart(&mut self, id: u64) -> Result<()>;
    /// Freezes member `id` (SIGSTOP / docker pause).
    fn pause(&mut self, id: u64) -> Result<()>;
    fn resume(&mut self, id: u64) -> Result<()>;
    /// Cuts member `id` off from the others and from clients. Returns a note when the harness
    /// can only approximate that (it is printed and shown in the summary, never silent).
    fn disconnect(&mut self, id: u64) -> Result<Option<String>>;
    fn heal(&mut self, id: u64) -> Result<()>;
    /// Kills member `id` if running, deletes its data, and starts it empty with `--join`,
    /// waiting to be added back by a membership change.
    fn wipe_and_start_joining(&mut self, id: u64) -> Result<()>;
    /// Where to look when something fails (log directory, compose project).
    fn diagnostics(&self) -> String;
    /// Address a node uses for member `id` in its seed list.
    fn seed_addr(&self, id: u64) -> String;
    /// An address where no member has ever listened.
    fn dead_seed(&self) -> String;
    /// Starts node `name` with `seeds` tried in order; `mine` runs its miner.
    fn start_node(&mut self, name: &str, seeds: &[String], mine: bool) -> Result<()>;
    /// Every node started (including any the deployment brings along).
    fn nodes(&self) -> Vec<String>;
    /// The address node `name` registers (to tell node records from workload records).
    fn node_advertised(&self, name: &str) -> String;
    /// Status of node `name` (`peerchain ctl status`).
    async fn node_status(&self, name: &str) -> Result<NodeStatus>;
}

/// [`Faults`] over a [`Cluster`] of `peerchain bootstrap` processes and `peerchain node`
/// processes.
pub struct ProcessFaults {
    pub cluster: Cluster,
    pub net: NodeNet,
    joined: BTreeSet<u64>,
    node_names: Vec<String>,
}

impl ProcessFaults {
    /// The harness, with two nodes already running (one mining), as a deployment would have.
    pub fn new(cluster: Cluster) -> Result<Self> {
        let mut me = Self {
            cluster,
            net: NodeNet::new()?,
            joined: BTreeSet::new(),
            node_names: Vec::new(),
        };
        let seeds: Vec<String> = me.ids().iter().map(|&i| me.seed_addr(i)).collect();
        me.start_node("node1", &seeds, true)?;
        let mut rotated = seeds;
        rotated.rotate_left(1);
        me.start_node("node2", &rotated, false)?;
        Ok(me)
    }
}

impl Faults for ProcessFaults {
    fn harness(&self) -> &'static str {
        "process"
    }

    fn ids(&self) -> Vec<u64> {
        self.cluster.members.iter().map(|m| m.id).collect()
    }

    fn client_addr(&self, id: u64) -> String {
        self.cluster.addr(id)
    }

    fn member_addr(&self, id: u64) -> String {
        self.cluster.addr(id)
    }

    fn is_running(&self, id: u64) -> bool {
        self.cluster.is_running(id)
    }

    fn kill(&mut self, id: u64) -> Result<()> {
        self.cluster.kill(id);
        Ok(())
    }

    fn restart(&mut self, id: u64) -> Result<()> {
        let join = self.joined.contains(&id);
        self.cluster.spawn(id, join)
    }

    fn pause(&mut self, id: u64) -> Result<()> {
        self.cluster.pause(id)
    }

    fn resume(&mut self, id: u64) -> Result<()> {
        self.cluster.resume(id)
    }

    fn disconnect(&mut self, id: u64) -> Result<Option<String>> {
        self.cluster.pause(id)?;
        Ok(Some(format!(
            "process harness: processes on loopback cannot be cut off from the network; \
             member {id}'s partition is emulated with SIGSTOP (the docker harness uses \
             docker network disconnect)"
        )))
    }

    fn heal(&mut self, id: u64) -> Result<()> {
        self.cluster.resume(id)
    }

    fn wipe_and_start_joining(&mut self, id: u64) -> Result<()> {
        self.cluster.kill(id);
        let dir = self.cluster.member(id).data_dir.clone();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("wiping {}", dir.display()))?;
        }
        self.joined.insert(id);
        self.cluster.spawn(id, true)
    }

    fn diagnostics(&self) -> String {
        format!(
            "member logs in {}, node logs in {}",
            self.cluster.dir.path().display(),
            self.net.dir.path().display()
        )
    }

    fn seed_addr(&self, id: u64) -> String {
        self.cluster.addr(id)
    }

    fn dead_seed(&self) -> String {
        format!("127.0.0.1:{}", free_port())
    }

    fn start_node(&mut self, name: &str, seeds: &[String], mine: bool) -> Result<()> {
        let seeds = seeds.join(",");
        let mut args = vec!["--seeds", &seeds, "--refresh-interval", "2"];
        if mine {
            args.extend(["--mine", "--block-interval", "0.5"]);
        }
        self.net.spawn(name, &args)?;
        self.node_names.push(name.to_string());
        Ok(())
    }

    fn nodes(&self) -> Vec<String> {
        self.node_names.clone()
    }

    fn node_advertised(&self, name: &str) -> String {
        self.net.addr(name)
    }

    async fn node_status(&self, name: &str) -> Result<NodeStatus> {
        self.net.status(name).await
    }
}
