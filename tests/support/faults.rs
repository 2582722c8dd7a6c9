//! [`Faults`]: what a chaos scenario may do to the bootstrap members, with two harnesses —
//! [`ProcessFaults`] (real processes on loopback: `kill -9`, SIGSTOP/SIGCONT) and
//! `DockerFaults` (containers of deploy/docker-compose.yml: `docker kill`, `docker pause`,
//! `docker network disconnect`). Scenarios in `chaos.rs` are written once against this trait.
//!
//! A later step for nodes (start a node with a seed list, check the chains converge) is meant
//! to be added here as further methods once the node runtime exists.

use std::collections::BTreeSet;

use anyhow::{Context, Result};

use super::Cluster;

/// Fault injection and member lifecycle, harness-independent.
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
}

/// [`Faults`] over a [`Cluster`] of `peerchain bootstrap` processes.
pub struct ProcessFaults {
    pub cluster: Cluster,
    joined: BTreeSet<u64>,
}

impl ProcessFaults {
    pub fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            joined: BTreeSet::new(),
        }
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
        format!("member logs in {}", self.cluster.dir.path().display())
    }
}
