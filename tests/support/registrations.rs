//! Registering and sampling through both protocols, as clients do: the seed's JSON lines
//! and signed records over the native protocol.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use peerchain::record::{NodeIdentity, PeerRecord};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Cluster, NETWORK};

/// The `i`th address of the flood: 127.9.9.0/24, 250 hosts, then the next port from
/// `port_base`.
pub fn flooded(i: usize, port_base: usize) -> String {
    format!("127.9.9.{}:{}", i % 250 + 1, port_base + i / 250)
}

/// The `i`th address with a /16 of its own (127.(10 + i)/16), host `host`.
pub fn diverse(i: usize, host: u8) -> String {
    format!("127.{}.0.{host}:7000", 10 + i)
}

/// `flood` addresses in the flooded /24 (ports from `port_base`), then `diverse` with a /16
/// each (host `host`).
pub fn flood_addresses(flood: usize, port_base: usize, diverse_n: usize, host: u8) -> Vec<String> {
    (0..flood)
        .map(|i| flooded(i, port_base))
        .chain((0..diverse_n).map(|i| diverse(i, host)))
        .collect()
}

/// Waits until every member of a 3-member `cluster` has applied at least `count` records.
pub async fn wait_applied_everywhere(
    cluster: &Cluster,
    count: u64,
    within: Duration,
) -> Result<()> {
    for id in 1..=3 {
        super::eventually(within, "every member applied", || async move {
            Ok(cluster.info(id).await?.peer_count >= count)
        })
        .await?;
    }
    Ok(())
}

/// Whether `address` is outside the flooded /24.
pub fn is_diverse(address: &str) -> bool {
    !address.starts_with("127.9.9.")
}

pub fn record(id: &NodeIdentity, address: &str) -> PeerRecord {
    let now = peerchain::unix_ms();
    id.sign_record(NETWORK, address, now, now + 3_600_000)
}

/// Registers `addresses` through the seed protocol on `writers` connections to `member`.
pub async fn legacy_register_all(
    member: &str,
    addresses: Vec<String>,
    writers: usize,
) -> Result<()> {
    let chunks: Vec<Vec<String>> = addresses
        .chunks(addresses.len().div_ceil(writers).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let member = member.to_string();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&member).await?;
            let (rd, mut wr) = stream.into_split();
            let mut lines = BufReader::new(rd).lines();
            for address in chunk {
                let line = format!("{{\"type\":\"REGISTER\",\"payload\":\"{address}\"}}\n");
                wr.write_all(line.as_bytes()).await?;
                let reply = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                    .await??
                    .unwrap_or_default();
                ensure!(
                    reply == "Peer registered successfully",
                    "{address}: {reply}"
                );
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Registers a freshly signed record for each of `addresses`, `writers` at a time.
pub async fn register_all(cluster: &Cluster, addresses: Vec<String>, writers: usize) -> Result<()> {
    let chunks: Vec<Vec<String>> = addresses
        .chunks(addresses.len().div_ceil(writers).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for (w, chunk) in chunks.into_iter().enumerate() {
        let mut client = cluster.client_of(1 + w as u64 % 3);
        tasks.push(tokio::spawn(async move {
            for address in chunk {
                client
                    .register(record(&NodeIdentity::generate(), &address))
                    .await
                    .with_context(|| format!("register {address}"))?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The seed protocol's GET_PEERS on `member`: the addresses it answers.
pub async fn legacy_get_peers(member: &str) -> Result<Vec<String>> {
    let stream = TcpStream::connect(member).await?;
    let (rd, mut wr) = stream.into_split();
    wr.write_all(b"{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n")
        .await?;
    let mut lines = BufReader::new(rd).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await??
        .unwrap_or_default();
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&line).with_context(|| format!("GET_PEERS answered {line:?}"))?;
    Ok(list
        .iter()
        .filter_map(|p| p["address"].as_str().map(str::to_string))
        .collect())
}

/// The seed protocol's REMOVE of `address` on `member`: its answer line.
pub async fn legacy_remove(member: &str, address: &str) -> Result<String> {
    let stream = TcpStream::connect(member).await?;
    let (rd, mut wr) = stream.into_split();
    let line = format!("{{\"type\":\"REMOVE\",\"payload\":\"{address}\"}}\n");
    wr.write_all(line.as_bytes()).await?;
    let mut lines = BufReader::new(rd).lines();
    Ok(
        tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await??
            .unwrap_or_default(),
    )
}
