//! Rotating the cluster secret on a running 3-member cluster, one member restarted at a time,
//! as docs/operations.md tells an operator to: the file first gets the new secret as a second
//! line, then as the first, then alone. Writes through every member (forwarded to the leader
//! over authenticated connections) go on at every step; at the end the old secret opens
//! nothing.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{ensure, Result};
use peerchain::record::NodeIdentity;
use support::{eventually, Cluster, NETWORK, SECRET};

const NEW_SECRET: &str = "the-new-cluster-secret-fedcba9876543210";

/// Registers a fresh record through each member in turn and waits until every member holds
/// all of them: forwarding, replication and reads all work.
async fn writes_work_everywhere(cluster: &Cluster, step: &str) -> Result<()> {
    let mut addrs = Vec::new();
    for id in 1..=3 {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let addr = format!("127.77.{}.{}:7000", n / 250, n % 250 + 1);
        let identity = NodeIdentity::generate();
        let now = peerchain::unix_ms();
        let record = identity.sign_record(NETWORK, &addr, now, now + 600_000);
        cluster.client_of(id).register(record).await?;
        addrs.push(addr);
    }
    for id in 1..=3 {
        eventually(
            Duration::from_secs(10),
            &format!("{step}: member {id} holding the writes"),
            || async {
                let have = support::addresses_on(cluster, id).await?;
                Ok(addrs.iter().all(|a| have.contains(a)))
            },
        )
        .await?;
    }
    Ok(())
}

/// Restarts every member, one at a time, with `secret` in the shared secret file.
async fn rolling_restart(cluster: &mut Cluster, secret: &str, step: &str) -> Result<()> {
    std::fs::write(&cluster.secret_file, secret)?;
    for id in 1..=3 {
        cluster.terminate(id)?;
        cluster.spawn(id, false)?;
        cluster.wait_leader(Duration::from_secs(20)).await?;
        writes_work_everywhere(cluster, &format!("{step}, member {id} restarted")).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_secret_rotates_without_downtime() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    writes_work_everywhere(&cluster, "before").await?;

    rolling_restart(
        &mut cluster,
        &format!("{SECRET}\n{NEW_SECRET}\n"),
        "step 1 (old, new)",
    )
    .await?;
    rolling_restart(
        &mut cluster,
        &format!("{NEW_SECRET}\n{SECRET}\n"),
        "step 2 (new, old)",
    )
    .await?;
    rolling_restart(&mut cluster, NEW_SECRET, "step 3 (new)").await?;

    // The old secret no longer opens a member connection; the new one does.
    let dir = tempfile::tempdir()?;
    let old_file = dir.path().join("old");
    std::fs::write(&old_file, SECRET)?;
    let refused = cluster.ctl(&[
        "--cluster-secret-file",
        &support::path_str(&old_file),
        "peers",
        "--all",
    ])?;
    ensure!(
        !refused.status.success(),
        "the old secret still lists the registry: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let accepted = cluster.ctl(&[
        "--cluster-secret-file",
        &support::path_str(&cluster.secret_file),
        "peers",
        "--all",
    ])?;
    ensure!(
        accepted.status.success(),
        "the new secret is refused: {}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    Ok(())
}
