//! The `peerchain` binary: parses the command line, sets up logging and signals, and hands
//! over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use peerchain::bench::{self, BenchArgs};
use peerchain::bootstrap::{self, BootstrapArgs, BootstrapConfig};
use peerchain::ctl::{self, CtlArgs};
use peerchain::devnet::{self, DevnetArgs};
use peerchain::health::{self, HealthArgs};
use peerchain::node::{self, NodeArgs};
use peerchain::raft::ClusterSecret;
use tracing_subscriber::EnvFilter;

/// jemalloc instead of glibc's malloc, configured to give freed pages back within 0.1 s.
///
/// A member's heap is mostly redb's page caches: 4 KiB pages are allocated and freed in an
/// order unrelated to each other (an LRU cache, a write buffer that empties at each
/// checkpoint). Filling 3 members from 1.3 to 1.6 million peers, one run after the other
/// (docs/benchmarks.md, "Memory"), the largest member peaked at 131 MiB with mimalloc (pages
/// given back at once), 119 MiB with jemalloc's defaults (10 s) and 87 MiB with pages given
/// back at once, while heaptrack saw 45 MiB of live heap at the peak: the rest was partly
/// used allocator pages. Giving them back after 0.1 s instead of at once cost about 7 MiB
/// more at a million peers and saved 10–17% of the CPU of a sample (fewer page faults and
/// `madvise` calls as cached pages churn). glibc's malloc, measured earlier, was worse than
/// mimalloc (one arena per thread that ever allocated, and Tokio's blocking pool runs every
/// redb transaction on such threads).
///
/// The setting, `dirty_decay_ms:100,muzzy_decay_ms:0`, is built into jemalloc by
/// `.cargo/config.toml`; an operator's `_RJEM_MALLOC_CONF` overrides it.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "peerchain",
    version,
    about = "Blockchain nodes and the replicated bootstrap cluster they find each other through"
)]
struct Cli {
    /// Log lines on stderr: `human` (colour only on a terminal) or `json` (one object a line,
    /// for log collectors). `PEERCHAIN_LOG` sets the filter (default `info,openraft=warn`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a bootstrap member.
    Bootstrap(BootstrapArgs),
    /// Run a blockchain node.
    Node(NodeArgs),
    /// Operator commands against the bootstrap cluster (and `ctl status --node` for a node).
    Ctl(CtlArgs),
    /// A local network on loopback: 3 bootstrap members (port 4000 onwards), 4 nodes (port
    /// 7000 onwards, node 1 mining) and a live status table; Ctrl-C stops everything.
    Devnet(DevnetArgs),
    /// Exit 0 if the target is healthy (an HTTP side port's /ready answers 200, or a
    /// bootstrap member that knows a live leader), non-zero with the reason otherwise; for
    /// container healthchecks.
    Health(HealthArgs),
    /// Load a cluster (or one it starts) with pipelined signed registrations, the chapter's
    /// REGISTER and GetPeers samples, and print the figures.
    Bench(BenchArgs),
}

fn cluster_secret(config: &BootstrapConfig) -> anyhow::Result<ClusterSecret> {
    Ok(ClusterSecret::from_file_or_env(
        config.cluster_secret_file.as_deref(),
    )?)
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("PEERCHAIN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes only where a person reads a terminal, never in log files.
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Node(args) => run_node(args),
        Command::Bootstrap(args) => run_bootstrap(args),
        Command::Devnet(args) => on_tokio(run_devnet(args)),
        Command::Ctl(args) => on_tokio(run_ctl(args)),
        Command::Health(args) => on_tokio(run_health(args)),
        Command::Bench(args) => on_tokio(run_bench(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with every cause. Returning the error from `main` would print its
            // `Debug` form, which adds a stack trace whenever `RUST_BACKTRACE` is set: noise
            // for an operator whose port is taken or whose file is missing.
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A node: actix actors on the system arbiter, over a multi-thread tokio runtime so that
/// tokio tasks (the bootstrap link, connection writers) run beside them.
fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    actix_rt::System::with_tokio_rt(move || runtime).block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let http = bind_http(config.http.as_deref()).await?;
        node::run_with_http(config, listener, http, shutdown_signal()).await?;
        Ok(())
    })
}

/// Runs `f` on a multi-thread tokio runtime (bootstrap members, ctl and devnet need no actors).
fn on_tokio(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// A bootstrap member, on a runtime with the configured number of worker threads.
fn run_bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let secret = cluster_secret(&config)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.worker_threads {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let http = bind_http(config.http.as_deref()).await?;
        bootstrap::run_with_http(config, secret, listener, http, shutdown_signal()).await?;
        Ok(())
    })
}

/// Binds the HTTP side port, if one is configured.
async fn bind_http(addr: Option<&str>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match addr {
        None => Ok(None),
        Some(a) => Ok(Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the HTTP port {a}"))?,
        )),
    }
}

async fn run_devnet(args: DevnetArgs) -> anyhow::Result<()> {
    if let Some(target) = &args.restart {
        let answer = devnet::request_restart(&args.data_dir, target)
            .await
            .map_err(anyhow::Error::msg)?;
        println!("{answer}");
        return Ok(());
    }
    let config = args.into_config(std::env::current_exe()?);
    devnet::run(config, shutdown_signal()).await?;
    Ok(())
}

async fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let config = args.into_config(std::env::current_exe()?);
    let mut out = std::io::stdout();
    bench::run(config, &mut out).await?;
    Ok(())
}

async fn run_health(args: HealthArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    health::run(args, &mut out).await?;
    Ok(())
}

async fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    ctl::run(args, &mut out).await?;
    Ok(())
}
