//! Abuse from outside: one address or one /24 trying to take a member's registry, its
//! memory or its request capacity (connection slots: `abuse_connections.rs`). Members run
//! with the default quotas; the attackers and bystanders are other loopback addresses (127.9.x.y), so the
//! members' own 127.0.0.1 is never the one being limited.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::{SinkExt, StreamExt};
use peerchain::record::NodeIdentity;
use peerchain::wire::{ErrorCode, Request, Response};
use support::abuse::{call, cluster_with_quotas, connect_from, framed_from, log_lines, source};
use support::{eventually, NETWORK};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Sends `addresses` as legacy REGISTER lines from `from` over `conns` connections, all
/// pipelined, and tallies the reply lines (by their first 60 characters).
async fn legacy_registers(
    from: IpAddr,
    member: &str,
    conns: usize,
    addresses: Vec<String>,
) -> Result<BTreeMap<String, usize>> {
    let per_conn = addresses.len().div_ceil(conns);
    let mut tasks = Vec::new();
    for chunk in addresses.chunks(per_conn) {
        let stream = connect_from(from, member).await?;
        let lines: String = chunk
            .iter()
            .map(|a| format!("{{\"type\":\"REGISTER\",\"payload\":\"{a}\"}}\n"))
            .collect();
        let n = chunk.len();
        tasks.push(tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let writer = tokio::spawn(async move { wr.write_all(lines.as_bytes()).await });
            let mut rd = BufReader::new(rd);
            let mut tally = BTreeMap::<String, usize>::new();
            for _ in 0..n {
                let mut line = String::new();
                let read = tokio::time::timeout(Duration::from_secs(30), rd.read_line(&mut line));
                if read.await?? == 0 {
                    break;
                }
                let key: String = line.trim_end().chars().take(60).collect();
                *tally.entry(key).or_default() += 1;
            }
            writer.await??;
            anyhow::Ok(tally)
        }));
    }
    let mut total = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await?? {
            *total.entry(k).or_default() += v;
        }
    }
    Ok(total)
}

fn count(tally: &BTreeMap<String, usize>, prefix: &str) -> usize {
    tally
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_registrations_from_one_ip_and_one_subnet_stop_at_their_quota() -> Result<()> {
    // Default quotas (16 legacy records per IP, 64 per /24), except the request rate, lifted
    // so that 50,000 requests take seconds rather than the 1,000 s that 50/s would allow.
    let rates = [
        "--requests-per-sec-per-ip",
        "0",
        "--requests-per-sec-per-subnet",
        "0",
    ];
    let cluster = cluster_with_quotas(3, &rates).await?;
    let member = cluster.addr(1);
    let attacker = source(9, 1);
    let addresses: Vec<String> = (0..50_000u32)
        .map(|i| format!("10.{}.{}.{}:7000", i >> 16, (i >> 8) & 0xff, i & 0xff))
        .collect();
    let applied = |info: peerchain::wire::ClusterInfo| info.last_applied_index.unwrap_or(0);
    let log_before = applied(cluster.info(1).await?);
    let started = Instant::now();
    let tally = legacy_registers(attacker, &member, 25, addresses).await?;
    println!(
        "50,000 REGISTERs from {attacker} in {:?}: {tally:?}",
        started.elapsed()
    );
    // Once the member's own state shows the source at its quota, it refuses without
    // proposing: the refusals cost no Raft log entries.
    let log_entries = applied(cluster.info(1).await?) - log_before;
    println!("Raft log entries for those 50,000 requests: {log_entries}");
    ensure!(log_entries < 500, "{log_entries} log entries");
    let stored = count(&tally, "Peer registered successfully");
    let refused = count(&tally, "Error: quota exceeded: 127.9.9.1 already");
    // Under load (other tests on the same two cores) an election may interrupt the flood;
    // those lines are the transient Raft errors, and the quota still holds.
    let transient = count(&tally, "Error: no leader") + count(&tally, "Error: this member is no");
    ensure!(stored == 16, "stored {stored}, expected the quota of 16");
    ensure!(refused > 40_000, "most lines name the quota: {tally:?}");
    ensure!(
        stored + refused + transient == 50_000,
        "every other line says why: {tally:?}"
    );

    // (The flood may have cost the leader its heartbeats on a busy machine.)
    cluster.wait_leader(Duration::from_secs(20)).await?;

    // Neighbours in the same /24 share its 64; another /24 is not affected.
    let (mut neighbours, mut subnet_refusals) = (0, 0);
    for host in 2..=5 {
        let addrs = (0..20).map(|i| format!("10.200.{host}.{i}:7000")).collect();
        let t = legacy_registers(source(9, host), &member, 1, addrs).await?;
        println!("20 REGISTERs from 127.9.9.{host}: {t:?}");
        neighbours += count(&t, "Peer registered successfully");
        subnet_refusals += count(&t, "Error: quota exceeded: subnet 127.9.9.0/24");
        ensure!(
            count(&t, "Peer registered") + count(&t, "Error: quota exceeded") == 20,
            "127.9.9.{host}: {t:?}"
        );
    }
    ensure!(
        subnet_refusals >= 20,
        "the last neighbour meets the /24's quota"
    );
    ensure!(
        neighbours == 48,
        "the /24 holds 64 in all, got 16 + {neighbours}"
    );
    let other = legacy_registers(source(10, 1), &member, 1, vec!["10.201.0.1:7000".into()]).await?;
    ensure!(
        count(&other, "Peer registered successfully") == 1,
        "{other:?}"
    );

    // Every replica holds exactly what the quota allowed.
    for id in 1..=3 {
        eventually(Duration::from_secs(10), "replicas agree", || async {
            Ok(cluster.info(id).await?.peer_count == 65)
        })
        .await?;
    }
    // Removing one gives the quota back.
    let mut s = connect_from(attacker, &member).await?;
    s.write_all(b"{\"type\":\"REMOVE\",\"payload\":\"10.0.0.0:7000\"}\n")
        .await?;
    let mut rd = BufReader::new(&mut s);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), rd.read_line(&mut line)).await??;
    ensure!(line.starts_with("Peer removed successfully"), "{line:?}");
    let again = legacy_registers(attacker, &member, 1, vec!["10.202.0.1:7000".into()]).await?;
    ensure!(
        count(&again, "Peer registered successfully") == 1,
        "{again:?}"
    );
    let lines = log_lines(&cluster, 1, "refusing legacy register");
    println!("member 1 logged {lines} 'refusing legacy register' lines");
    ensure!(
        lines <= 10,
        "refusals are logged once per source per interval: {lines}"
    );
    Ok(())
}

/// Opens 400 connections from `127.9.<first_subnet + 0..4>.<1..=4>` to `member`, each
/// sending `part` (the start of a request) and going quiet; checks that the budget holds
/// some and closes the rest with its error, and that the member's RSS stays under 100 MB.
async fn hold_partials(
    member: &str,
    pid: u32,
    first_subnet: u8,
    part: &[u8],
    what: &str,
) -> Result<()> {
    let mut conns = Vec::new();
    for i in 0..400u32 {
        let from = source(first_subnet + (i % 4) as u8, 1 + ((i / 4) % 4) as u8);
        let mut s = connect_from(from, member).await?;
        let _ = s.write_all(part).await;
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = support::rss_kib(pid);
    let (mut held, mut over_budget) = (0, 0);
    for s in &mut conns {
        let mut buf = Vec::new();
        match tokio::time::timeout(Duration::from_millis(5), s.read_to_end(&mut buf)).await {
            Err(_) => held += 1,
            // An error frame or an `Error: ...` line; either carries the budget's text.
            Ok(_) if String::from_utf8_lossy(&buf).contains("incomplete frames and lines") => {
                over_budget += 1
            }
            Ok(_) => {}
        }
    }
    println!("{what}: {held} held, {over_budget} closed over budget; RSS {during} KiB");
    ensure!(during < 100 * 1024, "RSS {during} KiB");
    ensure!(
        held + over_budget == 400 && over_budget > 0 && held >= 100,
        "{held}/{over_budget}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_frames_do_not_hold_the_members_memory() -> Result<()> {
    // An 8 MiB budget for partial frames, so that it is reached by 400 connections.
    let cluster = cluster_with_quotas(3, &["--incomplete-frame-budget", "8388608"]).await?;
    let member = cluster.addr(1);
    let pid = cluster.member(1).child.as_ref().context("running")?.id();
    let before = support::rss_kib(pid);
    // 400 connections from 16 addresses on 4 /24s (within the per-IP and per-/24 quotas),
    // each announcing a frame of 1 MiB − 4 and sending 1 MiB − 17 bytes of it.
    let mut conns = Vec::new();
    for i in 0..400u32 {
        let from = source(20 + (i % 4) as u8, 1 + ((i / 4) % 4) as u8);
        conns.push(connect_from(from, &member).await?);
    }
    let mut big = ((1u32 << 20) - 4).to_be_bytes().to_vec();
    big.resize((1 << 20) - 17, 7);
    let big = bytes::Bytes::from(big);
    let mut tasks = Vec::new();
    for s in conns {
        let big = big.clone();
        tasks.push(tokio::spawn(async move {
            let (mut rd, mut wr) = s.into_split();
            // Written while the reply is read: the member answers after the length prefix.
            let writer = tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), wr.write_all(&big)).await;
                wr
            });
            let mut reply = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut reply)).await;
            drop(writer.await);
            support::abuse::decode_all(&reply).unwrap_or_default()
        }));
    }
    let mut refused = 0;
    for t in tasks {
        let replies = t.await?;
        if replies.iter().any(|e| {
            matches!(&e.body, Response::Error(r) if r.code == ErrorCode::BadRequest
                && r.message.contains("65536-byte limit"))
        }) {
            refused += 1;
        }
    }
    let during = support::rss_kib(pid);
    println!("1 MiB frames: member RSS {before} KiB before, {during} KiB after 400 × 1 MiB");
    ensure!(
        refused == 400,
        "every oversized frame is refused: {refused}"
    );
    ensure!(during < 100 * 1024, "RSS {during} KiB");

    // Partial frames under the 64 KiB limit: each connection holds 60 KiB, the budget
    // (8 MiB) lets about 140 of them do so and closes the rest.
    let mut frame = 64_000u32.to_be_bytes().to_vec();
    frame.resize(60 * 1024, 7);
    hold_partials(&member, pid, 30, &frame, "60 KiB partial frames").await?;
    // The seed's protocol: 60 KiB of a line with no end. The same budget holds them.
    let mut line = b"{\"type\":\"REGISTER\",\"payload\":\"".to_vec();
    line.resize(60 * 1024, b'x');
    hold_partials(&member, pid, 40, &line, "60 KiB partial lines").await?;

    // Meanwhile an ordinary client is served.
    let now = peerchain::unix_ms();
    let rec = NodeIdentity::generate().sign_record(NETWORK, "127.64.0.1:1", now, now + 60_000);
    let mut c = framed_from(source(50, 1), &member).await?;
    let reply = call(&mut c, 1, Request::Register { record: rec }).await?;
    ensure!(matches!(reply, Response::Registered { .. }), "{reply:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_rate_limited_while_another_ip_is_served() -> Result<()> {
    let (cluster, http) = support::abuse::cluster_with_quotas_and_http(3, &[]).await?;
    let member = cluster.addr(1);
    let mut flood = framed_from(source(9, 1), &member).await?;
    let mut bystander = framed_from(source(10, 1), &member).await?;
    let started = Instant::now();
    let (mut served, mut limited) = (0u32, 0u32);
    for round in 0..10u64 {
        // 100 pipelined requests, then the 100 replies.
        for i in 0..100 {
            let env = peerchain::wire::Envelope {
                id: round * 100 + i + 1,
                body: Request::ClusterInfo,
            };
            flood.feed(env).await?;
        }
        flood.flush().await?;
        for _ in 0..100 {
            let env = tokio::time::timeout(Duration::from_secs(5), flood.next())
                .await?
                .context("closed")??;
            match env.body {
                Response::ClusterInfo(_) => served += 1,
                Response::Error(e) if e.message.starts_with("rate limited") => limited += 1,
                other => anyhow::bail!("{other:?}"),
            }
        }
        // The bystander on another /24 is served every round.
        let reply = call(&mut bystander, round + 1, Request::ClusterInfo).await?;
        ensure!(
            matches!(reply, Response::ClusterInfo(_)),
            "round {round}: {reply:?}"
        );
    }
    let secs = started.elapsed().as_secs_f64();
    println!("1,000 requests in {secs:.2} s from one IP: {served} served, {limited} rate limited");
    // A bucket of 100 (2 s of 50/s), refilled at 50/s.
    let allowed = 100.0 + 50.0 * secs + 5.0;
    ensure!(
        f64::from(served) <= allowed,
        "{served} served, at most {allowed:.0} allowed"
    );
    ensure!(served >= 100 && limited > 0, "{served}/{limited}");
    // The seed's protocol is limited by the same buckets.
    let mut s = connect_from(source(9, 1), &member).await?;
    let lines = "{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n".repeat(200);
    s.write_all(lines.as_bytes()).await?;
    let mut rd = BufReader::new(s);
    let mut limited_lines = 0;
    for _ in 0..200 {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(5), rd.read_line(&mut line)).await??;
        if line.starts_with("Error: rate limited") {
            limited_lines += 1;
        }
    }
    println!("200 GET_PEERS lines right after: {limited_lines} rate limited");
    ensure!(limited_lines > 0);
    // The operator sees them on the metrics port too.
    let counted = support::abuse::metric(
        &http,
        "peerchain_refused_frames_total{reason=\"rate_limited\"}",
    )
    .await?;
    println!("refused rate_limited on member 1's /metrics: {counted}");
    ensure!(
        counted >= f64::from(limited + limited_lines),
        "{counted} counted, {limited} + {limited_lines} refused"
    );
    let lines = log_lines(&cluster, 1, "refus");
    println!("member 1 log: {lines} refusal lines");
    ensure!(lines <= 4, "{lines}");
    Ok(())
}
