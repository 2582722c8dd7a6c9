//! Chaos suite on real `peerchain bootstrap` processes on loopback (kill -9, SIGSTOP), with
//! every client operation recorded and checked afterwards. The same scenarios run against
//! containers in `chaos_docker.rs`. `PEERCHAIN_CHAOS_PROFILE=long` raises the kill cycles
//! from 20 to 50.

mod support;

use anyhow::Result;
use support::chaos;
use support::faults::ProcessFaults;
use support::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_repeatedly_under_load_loses_nothing() -> Result<()> {
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    chaos::leader_kill_cycles(ProcessFaults::new(cluster)?).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_loss_pause_cut_off_restart_and_rejoin_under_load() -> Result<()> {
    // Members on one runtime thread each, as where they share a machine: nothing in a member
    // may need a second worker to make progress (the other suite runs them with the default).
    let cluster = Cluster::start_without_dial_back(3, &["--worker-threads", "1"]).await?;
    chaos::mixed_faults(ProcessFaults::new(cluster)?).await?;
    Ok(())
}
