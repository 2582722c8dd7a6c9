//! The seed chapter's `REGISTER`, one TCP connection per request as the chapter's server
//! requires (and as `seed-load` sends it), from `legacy_clients` concurrent workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::bench_report::WriteFigures;
use super::native_load::bench_address;
use super::{BenchConfig, BenchError, Latencies, Progress};

/// How long one request (connect, write, read the line) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest reply line read.
const MAX_LINE: u64 = 64 * 1024;

/// Runs the phase against `target`.
///
/// # Errors
/// None today; failed requests are counted.
pub async fn run(config: &BenchConfig, target: &str) -> Result<WriteFigures, BenchError> {
    let n = config.legacy;
    let next = Arc::new(AtomicU64::new(0));
    let progress = Progress::start("legacy", n);
    let workers: Vec<_> = (0..config.legacy_clients)
        .map(|_| {
            let (next, progress, target) = (next.clone(), progress.clone(), target.to_string());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return latencies;
                    }
                    let started = Instant::now();
                    let addr = bench_address(i, 3000);
                    match tokio::time::timeout(REQUEST_TIMEOUT, register(&target, &addr)).await {
                        Ok(Ok(line)) if line.starts_with("Peer registered") => progress.ok(),
                        Ok(Ok(line)) if line.starts_with("Peer already registered") => {
                            progress.ok()
                        }
                        Ok(Ok(line)) => progress.error(line.chars().take(60).collect::<String>()),
                        Ok(Err(e)) => progress.error(e.kind().to_string()),
                        Err(_) => progress.error("timed out"),
                    }
                    latencies.push(started.elapsed());
                }
            })
        })
        .collect();
    Ok(WriteFigures::collect(n, &progress, workers).await)
}

/// One `REGISTER` exchange; returns the reply line.
async fn register(target: &str, address: &str) -> std::io::Result<String> {
    let mut conn = TcpStream::connect(target).await?;
    let line = format!(
        "{}\n",
        serde_json::json!({"type": "REGISTER", "payload": address})
    );
    conn.write_all(line.as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(tokio::io::AsyncReadExt::take(conn, MAX_LINE))
        .read_line(&mut reply)
        .await?;
    Ok(reply.trim().to_string())
}
