//! [`BenchArgs`]: the `peerchain bench` command line, and the [`BenchConfig`] it describes.

use std::path::PathBuf;

use clap::Args;

use crate::bootstrap::DEFAULT_NETWORK_ID;

/// What `peerchain bench` measures, and against what.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Members of a running cluster (comma separated). Without it, the bench starts a
    /// 3-member cluster of its own (this binary, release or not) in `--data-dir`.
    #[arg(long, value_delimiter = ',')]
    pub bootstrap: Vec<String>,
    /// Where a cluster the bench starts keeps its data (emptied first).
    #[arg(long, default_value = "bench-data")]
    pub data_dir: PathBuf,
    /// First port of a cluster the bench starts (members use this port and the next two).
    #[arg(long, default_value_t = 4100)]
    pub base_port: u16,
    /// Extra flag for every member the bench starts (repeatable), e.g.
    /// `--member-arg=--requests-per-sec-per-ip=50` (the bench lifts every per-source quota
    /// it is not given).
    #[arg(long = "member-arg", allow_hyphen_values = true)]
    pub member_args: Vec<String>,
    /// Signed registrations through the native protocol (0 skips the phase).
    #[arg(long, default_value_t = 20_000)]
    pub records: u64,
    /// Index of the first native record's address (`127.a.b.c:7000` from the index), so that
    /// successive runs against one cluster register new addresses instead of colliding
    /// with the records of an earlier run (each address is held by its node).
    #[arg(long, default_value_t = 0)]
    pub first_record: u64,
    /// After the native registrations, every node renews its record once (the same address,
    /// a higher seq), timed as its own phase: a live registry's steady write load.
    #[arg(long)]
    pub renewals: bool,
    /// Connections the native registrations are spread over.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Registrations outstanding per connection.
    #[arg(long, default_value_t = 64)]
    pub in_flight: usize,
    /// Registrations through the chapter's JSON-lines protocol (0 skips the phase).
    #[arg(long, default_value_t = 10_000)]
    pub legacy: u64,
    /// Concurrent chapter-protocol clients (one connection per request each).
    #[arg(long, default_value_t = 32)]
    pub legacy_clients: usize,
    /// Native `GetPeers` calls timed one after the other (0 skips the phase).
    #[arg(long, default_value_t = 1_000)]
    pub gets: u64,
    /// Peers asked for per `GetPeers`.
    #[arg(long, default_value_t = 100)]
    pub sample: u32,
    /// Network id the signed records are for (the cluster's `--network-id`).
    #[arg(long, default_value = DEFAULT_NETWORK_ID)]
    pub network_id: String,
}

/// A benchmark run; see [`BenchArgs`] for each field.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub binary: PathBuf,
    pub bootstrap: Vec<String>,
    pub data_dir: PathBuf,
    pub base_port: u16,
    pub member_args: Vec<String>,
    pub records: u64,
    pub first_record: u64,
    pub renewals: bool,
    pub connections: usize,
    pub in_flight: usize,
    pub legacy: u64,
    pub legacy_clients: usize,
    pub gets: u64,
    pub sample: u32,
    pub network_id: String,
}

impl BenchArgs {
    /// The run these flags describe; members it starts run `binary`.
    pub fn into_config(self, binary: PathBuf) -> BenchConfig {
        BenchConfig {
            binary,
            bootstrap: self.bootstrap,
            data_dir: self.data_dir,
            base_port: self.base_port,
            member_args: self.member_args,
            records: self.records,
            first_record: self.first_record,
            renewals: self.renewals,
            connections: self.connections,
            in_flight: self.in_flight,
            legacy: self.legacy,
            legacy_clients: self.legacy_clients,
            gets: self.gets,
            sample: self.sample,
            network_id: self.network_id,
        }
    }
}

impl BenchConfig {
    /// Readable reasons the run cannot work.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 || self.in_flight == 0 || self.legacy_clients == 0 {
            return Err(
                "--connections, --in-flight and --legacy-clients must be at least 1".into(),
            );
        }
        if self.first_record.saturating_add(self.records) > (1 << 24) || self.legacy > (1 << 24) {
            return Err(
                "at most 16,777,216 registrations per phase, --first-record included (one 127/8 \
                 address each)"
                    .into(),
            );
        }
        if self.sample == 0 {
            return Err("--sample must be at least 1".into());
        }
        if self.base_port > u16::MAX - 3 {
            return Err("--base-port leaves no room for 3 members".into());
        }
        Ok(())
    }
}
