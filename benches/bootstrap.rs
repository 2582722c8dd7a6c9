//! Bootstrap benchmark: peerchain's 3-member cluster beside the seed chapter's Go server,
//! measured in the same run with the same load generator (`seed-load`, the chapter's JSON
//! lines, one request per connection).
//!
//!   cargo bench --bench bootstrap                      # 20,000 registrations
//!   PEERCHAIN_BENCH_PEERS=200000 cargo bench --bench bootstrap
//!
//! Prints registration throughput, GET_PEERS latency and size, resident memory, Raft entries
//! per registration (group commit) and what survives a `kill -9`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use peerchain::record::NodeIdentity;

const CONCURRENCY: usize = 32;

struct Row {
    name: &'static str,
    seed: String,
    peerchain: String,
}

/// Runs seed-load and returns (registrations/s, errors, get_peers mean, get_peers bytes).
fn seed_load(
    tools: &Path,
    addr: &str,
    n: u64,
    start: u64,
    gets: u32,
) -> Result<(String, String, String)> {
    let out = Command::new(tools.join("seed-load"))
        .args([
            "-addr",
            addr,
            "-n",
            &n.to_string(),
            "-start",
            &start.to_string(),
        ])
        .args(["-c", &CONCURRENCY.to_string(), "-gets", &gets.to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let reg = text
        .lines()
        .find(|l| l.starts_with("register"))
        .context("seed-load printed no register line")?;
    let rate = reg
        .split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or("?")
        .to_string();
    let errors = reg.rsplit("errors=").next().unwrap_or("?").to_string();
    let get = text
        .lines()
        .find(|l| l.starts_with("get_peers"))
        .unwrap_or("get_peers: - -")
        .to_string();
    Ok((
        rate,
        errors,
        get.trim_start_matches("get_peers: ").to_string(),
    ))
}

struct SeedServer {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    tools: PathBuf,
}

impl SeedServer {
    fn start(tools: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let port = support::free_port();
        let child = Self::spawn(tools, dir.path(), port)?;
        Ok(Self {
            child,
            dir,
            addr: format!("127.0.0.1:{port}"),
            tools: tools.to_path_buf(),
        })
    }

    fn spawn(tools: &Path, dir: &Path, port: u16) -> Result<Child> {
        let child = Command::new(tools.join("seed-bootstrap"))
            .current_dir(dir)
            .env("BOOTSTRAP_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(child)
    }

    fn restart_after_kill9(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let port: u16 = self
            .addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("port")?;
        self.child = Self::spawn(&self.tools, self.dir.path(), port)?;
        Ok(())
    }

    /// Number of peers GET_PEERS returns (the seed returns all of them).
    fn count(&self) -> Result<usize> {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect(&self.addr)?;
        s.write_all(b"{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        let v: Vec<serde_json::Value> = serde_json::from_str(line.trim()).unwrap_or_default();
        Ok(v.len())
    }
}

impl Drop for SeedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn stored_on(cluster: &support::Cluster, id: u64) -> Result<u64> {
    Ok(cluster.info(id).await?.peer_count)
}

async fn applied(cluster: &support::Cluster, id: u64) -> Result<u64> {
    Ok(cluster.info(id).await?.last_applied_index.unwrap_or(0))
}

/// Registers `n` signed records from CONCURRENCY tasks; returns registrations per second.
async fn native_signed(cluster: &support::Cluster, n: u64) -> Result<f64> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY as u64 {
        let mut client = cluster.client();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut i = w;
            while i < n {
                let now = peerchain::unix_ms();
                let addr = format!(
                    "127.{}.{}.{}:4500",
                    200 + (i >> 16) % 50,
                    (i >> 8) & 255,
                    i & 255
                );
                let rec = NodeIdentity::generate().sign_record(
                    support::NETWORK,
                    &addr,
                    now,
                    now + 3_600_000,
                );
                if client.register(rec).await.is_ok() {
                    ok += 1;
                }
                i += CONCURRENCY as u64;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await?;
    }
    Ok(ok as f64 / t0.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n: u64 = std::env::var("PEERCHAIN_BENCH_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let tools = support::seed_tools()?;
    let mut rows = Vec::new();
    println!("bootstrap benchmark: {n} registrations, {CONCURRENCY} concurrent clients, 2 cores, loopback");

    // The seed chapter's server.
    let mut seed = SeedServer::start(&tools)?;
    let (seed_rate, seed_errs, seed_get) = seed_load(&tools, &seed.addr, n, 0, 20)?;
    let seed_rss = support::rss_kib(seed.child.id());
    let seed_before = seed.count()?;
    seed.restart_after_kill9()?;
    let seed_after = seed.count()?;

    // peerchain: 3 members, fsync per commit on each.
    let mut cluster = support::Cluster::start(3, &[]).await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let applied_before = applied(&cluster, leader).await?;
    let (pc_rate, pc_errs, _) = seed_load(&tools, &cluster.addr(1), n, 0, 0)?;
    let entries = applied(&cluster, leader).await? - applied_before;
    let (_, _, pc_get) = seed_load(&tools, &cluster.addr(2), 0, 0, 20)?;
    let rss: Vec<u64> = cluster
        .members
        .iter()
        .filter_map(|m| m.child.as_ref().map(|c| support::rss_kib(c.id())))
        .collect();
    let native_n = n / 4;
    let native_rate = native_signed(&cluster, native_n).await?;
    let pc_before = stored_on(&cluster, leader).await?;
    cluster.kill(leader);
    cluster.spawn(leader, false)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    support::eventually(
        Duration::from_secs(30),
        "restarted member serves",
        || async { Ok(stored_on(&cluster, leader).await? >= pc_before) },
    )
    .await
    .ok();
    let pc_after = stored_on(&cluster, leader).await?;

    rows.push(Row {
        name: "legacy REGISTER throughput (seed-load)",
        seed: format!("{seed_rate}, errors {seed_errs}"),
        peerchain: format!("{pc_rate}, errors {pc_errs} (3 replicas, fsync)"),
    });
    rows.push(Row {
        name: "Raft entries (fsyncs per member) for them",
        seed: "none (RAM only)".into(),
        peerchain: format!(
            "{entries} entries = {:.1} registrations per fsync",
            n as f64 / entries.max(1) as f64
        ),
    });
    rows.push(Row {
        name: "signed registrations (native client)",
        seed: "n/a".into(),
        peerchain: format!("{native_rate:.0}/s ({native_n} records)"),
    });
    rows.push(Row {
        name: "GET_PEERS mean latency, reply size",
        seed: seed_get,
        peerchain: pc_get,
    });
    rows.push(Row {
        name: "resident memory after load",
        seed: format!("{} MiB", seed_rss / 1024),
        peerchain: format!(
            "{} MiB per member",
            rss.iter().max().copied().unwrap_or(0) / 1024
        ),
    });
    rows.push(Row {
        name: "peers kept across kill -9 + restart",
        seed: format!("{seed_after} of {seed_before}"),
        peerchain: format!("{pc_after} of {pc_before} (on the killed leader)"),
    });
    println!(
        "\n{:<44} | {:<40} | peerchain",
        "measure", "seed (Go, baseline)"
    );
    println!("{}", "-".repeat(130));
    for r in rows {
        println!("{:<44} | {:<40} | {}", r.name, r.seed, r.peerchain);
    }
    Ok(())
}
