//! [`BootstrapArgs`]: the `peerchain bootstrap` command line, merged over the TOML file.

use std::path::PathBuf;

use clap::Args;

use super::{BootstrapConfig, BootstrapError, QuotaConfig};
use crate::config_file::load_toml;

/// The seed chapter's variable for the listening port, honoured when no `--config` is given.
pub const BOOTSTRAP_PORT_ENV: &str = "BOOTSTRAP_PORT";

/// Flags override the TOML file given with --config; unset flags keep the file's values.
#[derive(Args)]
pub struct BootstrapArgs {
    /// TOML file with any of the settings below.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// This member's id (≥ 1).
    #[arg(long)]
    pub id: Option<u64>,
    /// Address to listen on (default 0.0.0.0:$BOOTSTRAP_PORT, or 0.0.0.0:4000).
    #[arg(long)]
    pub listen: Option<String>,
    /// Every initial member as id=host:port,id=host:port,...
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Join an existing cluster (wait for `ctl cluster add-learner`) instead of forming one.
    #[arg(long, env = "PEERCHAIN_JOIN")]
    pub join: bool,
    /// Directory for the Raft log, registry and snapshots.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// File holding the cluster secret.
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Network id records must be signed for.
    #[arg(long)]
    pub network_id: Option<String>,
    /// Applied entries between snapshots.
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Largest frame read or written, bytes (default 1 MiB).
    #[arg(long)]
    pub max_frame_length: Option<usize>,
    /// Serve signed records in node samples without checking that their node answers at
    /// their address (benchmarks and closed test networks only; give it to every member).
    #[arg(long, env = "PEERCHAIN_NO_DIAL_BACK")]
    pub no_dial_back: bool,
    /// Dial-backs the leader starts per second, at most (default 20).
    #[arg(long)]
    pub dial_back_rate: Option<u32>,
    /// Serve metrics, health, readiness and a status page over HTTP on this address (off
    /// unless given; bind it to 127.0.0.1 or a monitoring network).
    #[arg(long)]
    pub http: Option<String>,
    /// Most client connections open at once (default 4096; members have slots of their own).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Threads of the async runtime (default one per core; members sharing a machine: their
    /// share of its cores).
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// Registry entries from which samples come from a reservoir drawn ahead, about once a
    /// second (default 50,000; 0: every sample drawn per request).
    #[arg(long)]
    pub sample_reservoir_from: Option<u64>,
    #[command(flatten)]
    pub quotas: QuotaArgs,
}

/// Per-source client limits; `0` disables one. Tests and benchmarks that register many
/// records from one address raise them here.
#[derive(Args)]
pub struct QuotaArgs {
    /// Connections one client IP may hold open (default 32).
    #[arg(long)]
    pub max_connections_per_ip: Option<u32>,
    /// Connections one client /24 (IPv6 /48) may hold open (default 128).
    #[arg(long)]
    pub max_connections_per_subnet: Option<u32>,
    /// Requests per second from one client IP, bursts of 2 s worth (default 50).
    #[arg(long)]
    pub requests_per_sec_per_ip: Option<u32>,
    /// Requests per second from one client /24 (IPv6 /48) (default 200).
    #[arg(long)]
    pub requests_per_sec_per_subnet: Option<u32>,
    /// Legacy (seed protocol) records one IP may hold (default 16).
    #[arg(long)]
    pub legacy_records_per_ip: Option<u32>,
    /// Legacy records one /24 (IPv6 /48) may hold (default 64).
    #[arg(long)]
    pub legacy_records_per_subnet: Option<u32>,
    /// Connection slots for members beyond --max-connections (default 64).
    #[arg(long)]
    pub member_reserved_connections: Option<u32>,
    /// Bytes all unauthenticated connections may hold in incomplete frames (default 32 MiB).
    #[arg(long)]
    pub incomplete_frame_budget: Option<u64>,
}

impl QuotaArgs {
    /// Overrides the values given on the command line.
    fn apply(self, q: &mut QuotaConfig) {
        let set = |v: Option<u32>, field: &mut u32| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(self.max_connections_per_ip, &mut q.connections_per_ip);
        set(
            self.max_connections_per_subnet,
            &mut q.connections_per_subnet,
        );
        set(self.requests_per_sec_per_ip, &mut q.requests_per_sec_per_ip);
        set(
            self.requests_per_sec_per_subnet,
            &mut q.requests_per_sec_per_subnet,
        );
        set(self.legacy_records_per_ip, &mut q.legacy_records_per_ip);
        set(
            self.legacy_records_per_subnet,
            &mut q.legacy_records_per_subnet,
        );
        set(
            self.member_reserved_connections,
            &mut q.member_reserved_connections,
        );
        if let Some(v) = self.incomplete_frame_budget {
            q.incomplete_frame_budget = v;
        }
    }
}

impl BootstrapArgs {
    /// The file's settings (or the defaults, with `BOOTSTRAP_PORT` as in the seed chapter),
    /// overridden by the flags given, then validated.
    ///
    /// # Errors
    /// [`BootstrapError::Config`] with every problem found.
    pub fn into_config(self) -> Result<BootstrapConfig, BootstrapError> {
        let mut c = match &self.config {
            Some(path) => load_toml(path).map_err(BootstrapError::Config)?,
            None => {
                let mut c = BootstrapConfig::default();
                if let Ok(port) = std::env::var(BOOTSTRAP_PORT_ENV) {
                    c.listen = format!("0.0.0.0:{port}");
                }
                c
            }
        };
        if let Some(v) = self.id {
            c.id = v;
        }
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.initial_cluster {
            c.initial_cluster =
                BootstrapConfig::parse_initial_cluster(&v).map_err(BootstrapError::Config)?;
        }
        c.join |= self.join;
        if c.initial_cluster.is_empty() && !c.join {
            // A lone member: a one-member cluster on its listen address.
            c.initial_cluster = vec![(c.id, c.listen.replace("0.0.0.0", "127.0.0.1"))];
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if self.cluster_secret_file.is_some() {
            c.cluster_secret_file = self.cluster_secret_file;
        }
        if let Some(v) = self.network_id {
            c.network_id = v;
        }
        if let Some(v) = self.snapshot_every {
            c.snapshot_every = v;
        }
        if let Some(v) = self.max_frame_length {
            c.max_frame_length = v;
        }
        if self.no_dial_back {
            c.dial_back = false;
        }
        if let Some(v) = self.dial_back_rate {
            c.dial_back_rate = v;
        }
        if self.http.is_some() {
            c.http = self.http;
        }
        if let Some(v) = self.max_connections {
            c.max_connections = v;
        }
        if self.worker_threads.is_some() {
            c.worker_threads = self.worker_threads;
        }
        if let Some(v) = self.sample_reservoir_from {
            c.sample_reservoir_from = v;
        }
        self.quotas.apply(&mut c.quotas);
        c.validate().map_err(BootstrapError::Config)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BootstrapArgs,
    }

    fn config(argv: &[&str]) -> Result<BootstrapConfig, BootstrapError> {
        let mut full = vec!["bootstrap"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full)
            .map_err(|e| BootstrapError::Config(e.to_string()))?
            .args
            .into_config()
    }

    #[test]
    fn flags_override_the_file_and_the_file_keeps_the_rest() -> Result<(), BootstrapError> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("member.toml");
        std::fs::write(
            &file,
            "id = 2\nlisten = \"127.0.0.1:4001\"\ninitial_cluster = [[1, \"127.0.0.1:4000\"], \
             [2, \"127.0.0.1:4001\"]]\nsnapshot_every = 50\nmin_free_disk = 0\n",
        )?;
        let path = file.display().to_string();
        let c = config(&["--config", &path, "--snapshot-every", "70"])?;
        let flag_form = dir.path().join("flag-form.toml");
        std::fs::write(
            &flag_form,
            "id = 2\ninitial_cluster = \"1=127.0.0.1:4000, 2=127.0.0.1:4001\"\n",
        )?;
        let same = config(&["--config", &flag_form.display().to_string()])?;
        assert_eq!(same.initial_cluster, c.initial_cluster);
        assert_eq!(c.id, 2);
        assert_eq!(c.listen, "127.0.0.1:4001");
        assert_eq!(c.snapshot_every, 70);
        assert_eq!(c.min_free_disk, 0);
        assert_eq!(c.initial_cluster.len(), 2);
        Ok(())
    }

    #[test]
    fn quotas_come_from_the_file_and_flags_override_them() -> Result<(), BootstrapError> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("member.toml");
        std::fs::write(
            &file,
            "[quotas]\nconnections_per_ip = 8\nlegacy_records_per_ip = 4\n",
        )?;
        let path = file.display().to_string();
        let c = config(&["--config", &path, "--legacy-records-per-ip", "0"])?;
        assert_eq!(c.quotas.connections_per_ip, 8);
        assert_eq!(c.quotas.legacy_records_per_ip, 0, "0 lifts the limit");
        assert_eq!(
            c.quotas.connections_per_subnet,
            QuotaConfig::default().connections_per_subnet
        );
        let c = config(&["--max-connections", "10", "--requests-per-sec-per-ip", "7"])?;
        assert_eq!(
            (c.max_connections, c.quotas.requests_per_sec_per_ip),
            (10, 7)
        );
        let err = config(&["--max-connections-per-ip", "500"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("connections_per_ip (500) is above"), "{err}");
        Ok(())
    }

    #[test]
    fn a_lone_member_forms_a_one_member_cluster_on_its_address() -> Result<(), BootstrapError> {
        let c = config(&["--id", "3", "--listen", "0.0.0.0:4100"])?;
        assert_eq!(c.initial_cluster, vec![(3, "127.0.0.1:4100".to_string())]);
        Ok(())
    }

    #[test]
    fn bad_settings_are_refused_with_every_reason() {
        let err = config(&[
            "--id",
            "1",
            "--initial-cluster",
            "1=127.0.0.1:4000,9=127.0.0.1:4008",
            "--max-frame-length",
            "1000",
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("share an election window"), "{err}");
        assert!(err.contains("max_frame_length"), "{err}");
        let err = config(&["--initial-cluster", "1=nowhere"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("invalid"), "{err}");
        let err = config(&["--worker-threads", "0"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("worker_threads must be at least 1"), "{err}");
    }

    #[test]
    fn worker_threads_come_from_the_file_or_the_flag() -> Result<(), BootstrapError> {
        assert_eq!(config(&[])?.worker_threads, None);
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("member.toml");
        std::fs::write(&file, "worker_threads = 2\n")?;
        let path = file.to_string_lossy().to_string();
        assert_eq!(config(&["--config", &path])?.worker_threads, Some(2));
        let c = config(&["--config", &path, "--worker-threads", "1"])?;
        assert_eq!(c.worker_threads, Some(1));
        Ok(())
    }
}
