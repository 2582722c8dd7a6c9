//! `peerchain bench`: a load generator a user can point at a cluster (or let it start one) to
//! measure what the registry does under write and read load.
//!
//! It drives both protocols the way their real clients can:
//! - the native protocol **pipelined**: records are generated and signed before the clock
//!   starts, then `connections × in_flight` registrations are kept outstanding;
//! - the seed chapter's JSON lines, one request per connection (as the chapter's server
//!   requires, and as `seed-load` does), from `legacy_clients` workers;
//! - native `GetPeers` samples one after the other, for their latency percentiles.
//!
//! A progress line goes to stderr every second; the figures go to the output as a table and as
//! `BENCH key=value` lines that `scripts/bench` reads.
//!
//! Layout:
//! - [`bench_args`] — [`BenchArgs`], the command line, and [`BenchConfig`].
//! - [`bench_cluster`] — the 3-member cluster it starts when given no `--bootstrap`.
//! - [`native_load`] — pre-signed, pipelined registrations.
//! - [`legacy_load`] — the chapter's `REGISTER`, one connection per request.
//! - [`read_load`] — `GetPeers` latency.
//! - [`bench_report`] — [`Progress`], [`Latencies`] and the printed figures.

pub mod bench_args;
pub mod bench_cluster;
pub mod bench_report;
pub mod legacy_load;
pub mod native_load;
pub mod read_load;

use std::io::Write;

pub use bench_args::{BenchArgs, BenchConfig};
pub use bench_cluster::BenchCluster;
pub use bench_report::{BenchReport, Latencies, Progress};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bench: {0}")]
    Io(#[from] std::io::Error),
    #[error("bench: {0}")]
    Setup(String),
    #[error("bench: {0}")]
    Client(#[from] crate::client::ClientError),
}

/// Runs every phase the configuration asks for against `config.bootstrap` (or a cluster it
/// starts), and writes the figures to `out`.
///
/// # Errors
/// Set-up errors (starting the cluster, no leader, connecting); failed requests during the
/// load are counted, not fatal.
pub async fn run(config: BenchConfig, out: &mut impl Write) -> Result<(), BenchError> {
    config.validate().map_err(BenchError::Setup)?;
    let mut cluster = None;
    let targets = if config.bootstrap.is_empty() {
        let started = BenchCluster::start(&config).await?;
        let addrs = started.addrs();
        cluster = Some(started);
        addrs
    } else {
        config.bootstrap.clone()
    };
    let mut report = BenchReport::new(&targets);
    let result = run_phases(&config, &targets, &mut report).await;
    if let Some(c) = cluster.as_mut() {
        report.member_rss_kib = c.rss_kib();
        c.stop().await;
    }
    result?;
    report.print(out)?;
    Ok(())
}

async fn run_phases(
    config: &BenchConfig,
    targets: &[String],
    report: &mut BenchReport,
) -> Result<(), BenchError> {
    if config.records > 0 {
        let figures = native_load::run(config, targets).await?;
        report.native = Some(figures.registrations);
        report.renewals = figures.renewals;
        report.verify_per_s = Some(figures.verify_per_s);
    }
    if config.legacy > 0 {
        report.legacy = Some(legacy_load::run(config, &targets[0]).await?);
    }
    if config.gets > 0 {
        report.reads = Some(read_load::run(config, &targets[0]).await?);
    }
    Ok(())
}
