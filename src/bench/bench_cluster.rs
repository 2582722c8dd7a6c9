//! [`BenchCluster`]: the 3-member cluster `peerchain bench` starts when it is pointed at none.

use std::time::{Duration, Instant};

use super::{BenchConfig, BenchError};
use crate::bootstrap::quota_config::NO_CLIENT_QUOTA_FLAGS;
use crate::client::{BootstrapClient, ClientOptions};
use crate::devnet::ProcessGroup;
use crate::raft::ClusterSecret;

/// Members of a cluster the bench starts.
const MEMBERS: u64 = 3;
/// How long the members get to elect a leader.
const LEADER_WAIT: Duration = Duration::from_secs(30);
/// How long members get to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Three `peerchain bootstrap` processes on loopback, stopped by [`Self::stop`] (or killed
/// when dropped).
pub struct BenchCluster {
    group: ProcessGroup,
    addrs: Vec<String>,
    pids: Vec<u32>,
}

impl BenchCluster {
    /// Starts the members in a fresh `config.data_dir` and waits until they know a leader.
    ///
    /// # Errors
    /// Set-up errors, or no leader within [`LEADER_WAIT`].
    pub async fn start(config: &BenchConfig) -> Result<Self, BenchError> {
        let dir = &config.data_dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let secret_file = dir.join("cluster-secret");
        std::fs::write(&secret_file, hex::encode(ClusterSecret::nonce()))?;
        let addrs: Vec<String> = (0..MEMBERS)
            .map(|i| format!("127.0.0.1:{}", u64::from(config.base_port) + i))
            .collect();
        let initial: Vec<String> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect();
        let mut group = ProcessGroup::new(dir.clone());
        for (i, addr) in addrs.iter().enumerate() {
            let id = i + 1;
            let mut args = vec![
                "bootstrap".to_string(),
                "--id".into(),
                id.to_string(),
                "--listen".into(),
                addr.clone(),
                "--initial-cluster".into(),
                initial.join(","),
                "--data-dir".into(),
                dir.join(format!("member-{id}")).display().to_string(),
                "--cluster-secret-file".into(),
                secret_file.display().to_string(),
                "--network-id".into(),
                config.network_id.clone(),
                // The bench registers records where nothing listens and samples them back:
                // it measures the registry, not dial-backs.
                "--no-dial-back".into(),
            ];
            args.extend(lifted_quotas(&config.member_args));
            args.extend(config.member_args.iter().cloned());
            group.spawn(&format!("member-{id}"), &config.binary, &args)?;
        }
        let pids = group.pids();
        let cluster = Self { group, addrs, pids };
        cluster.wait_leader().await?;
        eprintln!(
            "bench: started a 3-member cluster on {} (logs in {})",
            cluster.addrs.join(","),
            dir.display()
        );
        Ok(cluster)
    }

    async fn wait_leader(&self) -> Result<(), BenchError> {
        let deadline = Instant::now() + LEADER_WAIT;
        let options = ClientOptions {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(1),
            retry_for: Duration::ZERO,
            secret: None,
        };
        loop {
            let mut client = BootstrapClient::new(self.addrs.clone(), options.clone());
            if let Ok(info) = client.cluster_info().await {
                if info.leader_id.is_some() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "the members it started on {} elected no leader within {LEADER_WAIT:?}",
                    self.addrs.join(",")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The members' client addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.addrs.clone()
    }

    /// Each member's resident memory now, in KiB (0 where unknown).
    pub fn rss_kib(&self) -> Vec<u64> {
        self.pids
            .iter()
            .map(|&p| crate::devnet::rss_kib(p))
            .collect()
    }

    /// Stops the members (SIGTERM, then SIGKILL after a grace period).
    pub async fn stop(&mut self) {
        self.group.stop_all("member-", STOP_GRACE).await;
    }
}

/// The flags that lift the per-source quotas, except those `member_args` sets itself: the
/// load comes from 127.0.0.1 alone, and the defaults would measure the rate limit instead of
/// the cluster (`--member-arg=--requests-per-sec-per-ip=50` measures it on purpose).
fn lifted_quotas(member_args: &[String]) -> Vec<String> {
    NO_CLIENT_QUOTA_FLAGS
        .chunks(2)
        .filter(|pair| !member_args.iter().any(|a| a.starts_with(pair[0])))
        .flatten()
        .map(|f| (*f).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quota_is_lifted_unless_the_member_args_set_it() {
        let all = lifted_quotas(&[]);
        assert_eq!(all.len(), NO_CLIENT_QUOTA_FLAGS.len());
        let some = lifted_quotas(&["--requests-per-sec-per-ip=50".to_string()]);
        assert_eq!(some.len(), NO_CLIENT_QUOTA_FLAGS.len() - 2);
        assert!(!some.iter().any(|f| f == "--requests-per-sec-per-ip"));
        assert!(some.iter().any(|f| f == "--requests-per-sec-per-subnet"));
    }
}
