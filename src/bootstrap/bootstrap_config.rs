//! [`BootstrapConfig`]: everything a bootstrap member is started with.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::QuotaConfig;
use crate::raft::raft_settings;
use crate::raft::MemberId;
use crate::record::PeerAddress;
use crate::wire::{DEFAULT_MAX_FRAME_LENGTH, MIN_MAX_FRAME_LENGTH};

/// The seed's port, kept as the default.
pub const DEFAULT_PORT: u16 = 4000;
/// Default network id that signed records must be signed for.
pub const DEFAULT_NETWORK_ID: &str = "peerchain-devnet";
/// Applied entries between snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// How long a legacy (unsigned, seed-protocol) registration lives: the seed's clients never
/// renew, so this is long.
pub const DEFAULT_LEGACY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest expiry a signed record may ask for.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often the leader looks for expired records.
pub const DEFAULT_EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// A client connection with no complete request for this long is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most concurrent client connections (members have slots of their own beyond these:
/// [`QuotaConfig::member_reserved_connections`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Free disk space below which writes are refused (reads go on).
pub const DEFAULT_MIN_FREE_DISK: u64 = 64 * 1024 * 1024;
/// Dial-backs the leader starts per second, at most. A check is one TCP connection and a
/// handshake of a few hundred bytes; 20/s verifies a thousand new nodes a minute while a
/// flood of fake records cannot turn the cluster into a fast port scanner.
pub const DEFAULT_DIAL_BACK_RATE: u32 = 20;
/// Registry entries from which samples come from the reservoir: below it a sample drawn per
/// request costs well under a millisecond (0.3–0.8 ms at 30,000 peers).
pub const DEFAULT_SAMPLE_RESERVOIR_FROM: u64 = 50_000;
/// Highest `dial_back_rate` accepted.
pub const MAX_DIAL_BACK_RATE: u32 = 1_000;

/// Configuration of one bootstrap member. The same fields may come from flags or a TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Address the binary binds (the library itself is handed a bound listener).
    pub listen: String,
    /// File holding the cluster secret (or set `PEERCHAIN_CLUSTER_SECRET`). Never logged.
    pub cluster_secret_file: Option<PathBuf>,
    /// This member's Raft id (≥ 1), unique in the cluster.
    pub id: MemberId,
    /// `id=host:port` of every initial member; every member of a new cluster gets the same
    /// list. The entry for `id` is the address other members and clients use for this one.
    /// In TOML either the flag's string (`"1=host:port,2=host:port"`) or a list of
    /// `[id, "host:port"]` pairs.
    #[serde(deserialize_with = "initial_cluster_from_toml")]
    pub initial_cluster: Vec<(MemberId, String)>,
    /// Start as a new member that waits to be added (`ctl cluster add-learner ID ADDR`, whose
    /// ADDR is the address the others will use) instead of forming the initial cluster.
    pub join: bool,
    /// Directory of the Raft log, the registry and snapshots.
    pub data_dir: PathBuf,
    /// Network id that signed records must be signed for.
    pub network_id: String,
    /// Applied log entries between snapshots (small in tests to exercise compaction).
    pub snapshot_every: u64,
    /// Largest frame accepted from clients, in bytes.
    pub max_frame_length: usize,
    #[serde(with = "humantime_secs")]
    pub legacy_ttl: Duration,
    #[serde(with = "humantime_secs")]
    pub max_ttl: Duration,
    #[serde(with = "humantime_secs")]
    pub expiry_interval: Duration,
    #[serde(with = "humantime_secs")]
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Writes are refused while the data directory's disk has less free space than this.
    pub min_free_disk: u64,
    /// Serve a signed record in node samples only after the leader connected to its address
    /// and the node there proved the record's key. `false` serves signed records unchecked:
    /// for benchmarks and closed test networks only (set it on every member).
    pub dial_back: bool,
    /// Dial-backs the leader starts per second, at most.
    pub dial_back_rate: u32,
    /// Address of the HTTP side port (`/metrics`, `/health`, `/ready`, the status page); off
    /// when unset. It reveals the registry's size and the cluster's layout, never a secret:
    /// bind it to loopback or a monitoring network (see docs/security.md (the HTTP side port)).
    pub http: Option<String>,
    /// Threads of the member's async runtime; unset, one per core. Members sharing a machine
    /// (a devnet, a benchmark, a compose file on one host) do better with their share of the
    /// cores each: fewer threads to wake per request (docs/benchmarks.md, worker threads).
    pub worker_threads: Option<usize>,
    /// Registry entries from which peer samples come from a reservoir drawn about once a
    /// second instead of a walk of the index per request (`0`: never). See
    /// docs/architecture.md (sample reservoir).
    pub sample_reservoir_from: u64,
    /// Per-IP and per-subnet limits on clients (`[quotas]` in TOML). Kept last: TOML
    /// writes tables after plain values.
    pub quotas: QuotaConfig,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            listen: format!("0.0.0.0:{DEFAULT_PORT}"),
            cluster_secret_file: None,
            id: 1,
            initial_cluster: Vec::new(),
            join: false,
            data_dir: PathBuf::from("data"),
            network_id: DEFAULT_NETWORK_ID.to_string(),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            legacy_ttl: DEFAULT_LEGACY_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            expiry_interval: DEFAULT_EXPIRY_INTERVAL,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_free_disk: DEFAULT_MIN_FREE_DISK,
            dial_back: true,
            dial_back_rate: DEFAULT_DIAL_BACK_RATE,
            http: None,
            worker_threads: None,
            sample_reservoir_from: DEFAULT_SAMPLE_RESERVOIR_FROM,
            quotas: QuotaConfig::default(),
        }
    }
}

impl BootstrapConfig {
    /// Checks the configuration, listing every problem found.
    ///
    /// # Errors
    /// One line per problem.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.id == 0 {
            problems.push("id must be at least 1".to_string());
        }
        if !self.join && self.initial_cluster.iter().all(|(id, _)| *id != self.id) {
            problems.push(format!(
                "initial cluster must include this member's id {} (or start with --join)",
                self.id
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (id, addr) in &self.initial_cluster {
            if !seen.insert(*id) {
                problems.push(format!(
                    "member id {id} appears twice in the initial cluster"
                ));
            }
            if PeerAddress::parse(addr).is_err() {
                problems.push(format!("member {id} has an invalid address {addr:?}"));
            }
        }
        if self.network_id.is_empty() {
            problems.push("network id must not be empty".to_string());
        }
        if self.snapshot_every == 0 {
            problems.push("snapshot_every must be at least 1".to_string());
        }
        if self.max_frame_length < MIN_MAX_FRAME_LENGTH {
            problems.push(format!(
                "max_frame_length must be at least {MIN_MAX_FRAME_LENGTH} bytes"
            ));
        }
        let ids: Vec<u64> = self.initial_cluster.iter().map(|(id, _)| *id).collect();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                if raft_settings::shares_election_window(*a, *b) {
                    problems.push(format!(
                        "member ids {a} and {b} share an election window (ids are taken \
                         modulo {}); give one of them another id",
                        raft_settings::ELECTION_WINDOWS
                    ));
                }
            }
        }
        if self.worker_threads == Some(0) {
            problems.push("worker_threads must be at least 1 (or unset: one per core)".to_string());
        }
        if self.max_connections == 0 {
            problems.push("max_connections must be at least 1".to_string());
        }
        if !(1..=MAX_DIAL_BACK_RATE).contains(&self.dial_back_rate) {
            problems.push(format!(
                "dial_back_rate must be between 1 and {MAX_DIAL_BACK_RATE} dials per second"
            ));
        }
        problems.extend(self.quotas.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Parses `1=host:port,2=host:port`.
    ///
    /// # Errors
    /// A readable reason.
    pub fn parse_initial_cluster(s: &str) -> Result<Vec<(MemberId, String)>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|part| {
                let (id, addr) = part
                    .split_once('=')
                    .ok_or_else(|| format!("{part:?}: expected id=host:port"))?;
                let id = id
                    .trim()
                    .parse()
                    .map_err(|_| format!("{part:?}: bad member id"))?;
                Ok((id, addr.trim().to_string()))
            })
            .collect()
    }
}

/// Reads `initial_cluster` from the flag's string form or from `[id, "host:port"]` pairs.
fn initial_cluster_from_toml<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(MemberId, String)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Flag(String),
        Pairs(Vec<(MemberId, String)>),
    }
    match Form::deserialize(d)? {
        Form::Flag(s) => {
            BootstrapConfig::parse_initial_cluster(&s).map_err(serde::de::Error::custom)
        }
        Form::Pairs(p) => Ok(p),
    }
}

/// Durations as whole seconds in TOML.
pub(crate) mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_initial_cluster_and_validates() {
        let members = BootstrapConfig::parse_initial_cluster("1=127.0.0.1:4001, 2=127.0.0.1:4002")
            .expect("parse");
        assert_eq!(
            members,
            vec![(1, "127.0.0.1:4001".into()), (2, "127.0.0.1:4002".into())]
        );
        assert!(BootstrapConfig::parse_initial_cluster("x=1").is_err());
        let mut c = BootstrapConfig {
            initial_cluster: members,
            ..Default::default()
        };
        assert_eq!(c.validate(), Ok(()));
        c.id = 9;
        assert!(c.validate().is_err());
        c.join = true;
        assert_eq!(
            c.validate(),
            Ok(()),
            "a joining member needs no initial cluster entry"
        );
    }

    #[test]
    fn toml_round_trip() {
        let c = BootstrapConfig::default();
        let text = toml::to_string(&c).expect("to toml");
        assert_eq!(
            toml::from_str::<BootstrapConfig>(&text).expect("from toml"),
            c
        );
    }
}
