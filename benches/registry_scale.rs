//! Registry at scale: a registry of N peers (default 200,000; set PEERCHAIN_BENCH_PEERS for
//! millions) in one peerchain member beside the seed chapter's server holding the same N,
//! measured in the same run.
//!
//!   PEERCHAIN_BENCH_PEERS=1000000 cargo bench --bench registry_scale
//!
//! The seed keeps every peer in memory and answers GET_PEERS with all of them; peerchain keeps
//! them in redb and answers a bounded sample, so its memory, restart time and reply size stay
//! flat as N grows.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

fn rss_mib(pid: u32) -> u64 {
    support::rss_kib(pid) / 1024
}

fn address(i: u64) -> String {
    format!(
        "127.{}.{}.{}:3000",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

fn dir_mib(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            let m = e.metadata().ok();
            total += match m {
                Some(m) if m.is_dir() => dir_mib(&e.path()) * 1024 * 1024,
                Some(m) => m.len(),
                None => 0,
            };
        }
    }
    total / (1024 * 1024)
}

/// One GET_PEERS in the seed's protocol: (latency, reply bytes).
fn legacy_get(addr: &str) -> Result<(Duration, usize)> {
    use std::io::{BufRead, BufReader, Write};
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(b"{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok((t.elapsed(), line.len()))
}

fn wait_port(addr: &str, within: Duration) -> Result<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{addr} did not open within {within:?}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n: u64 = std::env::var("PEERCHAIN_BENCH_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let tools = support::seed_tools()?;
    println!("registry scale benchmark: {n} peers, 2 cores, loopback");

    // Seed: its peers.json holds N peers, loaded into memory at start.
    let seed_dir = tempfile::tempdir()?;
    std::fs::create_dir_all(seed_dir.path().join("data"))?;
    let peers: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"address": address(i)}))
        .collect();
    std::fs::write(
        seed_dir.path().join("data/peers.json"),
        serde_json::to_vec(&peers)?,
    )?;
    drop(peers);
    let port = support::free_port();
    let seed_addr = format!("127.0.0.1:{port}");
    let mut seed = Command::new(tools.join("seed-bootstrap"))
        .current_dir(seed_dir.path())
        .env("BOOTSTRAP_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let seed_start = wait_port(&seed_addr, Duration::from_secs(120))?;
    let mut seed_get = Duration::ZERO;
    let mut seed_bytes = 0;
    for _ in 0..5 {
        let (d, b) = legacy_get(&seed_addr)?;
        seed_get += d / 5;
        seed_bytes = b;
    }
    let seed_rss = rss_mib(seed.id());
    let _ = seed.kill();
    let _ = seed.wait();

    // peerchain: one member (no replication, to isolate the registry), filled through its
    // real write path by the same load generator.
    let mut cluster = support::Cluster::start(1, &[]).await?;
    let addr = cluster.addr(1);
    let t = Instant::now();
    let out = Command::new(tools.join("seed-load"))
        .args([
            "-addr",
            &addr,
            "-n",
            &n.to_string(),
            "-c",
            "64",
            "-gets",
            "0",
        ])
        .output()?;
    let fill = t.elapsed();
    let load_line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let stored = cluster.info(1).await?.peer_count;
    let mut pc_get = Duration::ZERO;
    let mut pc_bytes = 0;
    for _ in 0..5 {
        let (d, b) = legacy_get(&addr)?;
        pc_get += d / 5;
        pc_bytes = b;
    }
    let mut client = cluster.client_of(1);
    let t = Instant::now();
    for _ in 0..50 {
        client.get_peers(Some(100), vec![], false).await?;
    }
    let native_get = t.elapsed() / 50;
    let pc_rss = cluster
        .member(1)
        .child
        .as_ref()
        .map_or(0, |c| rss_mib(c.id()));
    let data = dir_mib(&cluster.member(1).data_dir);
    cluster.kill(1);
    let t = Instant::now();
    cluster.spawn(1, false)?;
    cluster.wait_leader(Duration::from_secs(120)).await?;
    let restart = t.elapsed();
    let after = cluster.info(1).await?.peer_count;
    let pc_rss_restart = cluster
        .member(1)
        .child
        .as_ref()
        .map_or(0, |c| rss_mib(c.id()));

    println!("peerchain fill: {load_line} ({fill:?}); stored {stored}");
    let row = |name: &str, seed: String, pc: String| println!("{name:<36} | {seed:<28} | {pc}");
    println!();
    row(
        "measure",
        "seed (Go, baseline)".into(),
        "peerchain (1 member)".into(),
    );
    println!("{}", "-".repeat(100));
    row("peers held", n.to_string(), stored.to_string());
    row(
        "resident memory",
        format!("{seed_rss} MiB"),
        format!("{pc_rss} MiB"),
    );
    row(
        "start / restart until serving",
        format!("{seed_start:.2?} (parse peers.json)"),
        format!("{restart:.2?} after kill -9, {after} peers, {pc_rss_restart} MiB"),
    );
    row(
        "GET_PEERS (seed protocol)",
        format!("{seed_get:.2?}, {seed_bytes} B"),
        format!("{pc_get:.2?}, {pc_bytes} B (sample of 1,000)"),
    );
    row(
        "GET_PEERS native, 100 peers",
        "n/a".into(),
        format!("{native_get:.2?}"),
    );
    row("on disk", "0 until SIGTERM".into(), format!("{data} MiB"));
    Ok(())
}
