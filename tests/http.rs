//! The HTTP side port as operators use it: Prometheus scrapes `/metrics` of real members and
//! nodes, an orchestrator probes `/ready`, `peerchain health --http` and `ctl cluster` report
//! a leader cut off from its quorum, and a node's status stops naming a dead member.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use peerchain::http::HttpProbe;
use peerchain::record::NodeIdentity;
use support::node_net::NodeNet;
use support::{binary, eventually, free_port, Cluster, NETWORK};

const HOUR_MS: u64 = 3_600_000;
const PROBE: Duration = Duration::from_secs(3);

/// A cluster of `n` members, each serving its HTTP side port; returns it with those ports.
async fn http_cluster(n: u64) -> Result<(Cluster, Vec<String>)> {
    // The metrics test registers records in 10.7.0.0/16: with dial-back on, the leader would
    // dial them, off loopback. These tests are about metrics, not dial-back.
    Cluster::start_without_dial_back_with_http(n, &[]).await
}

async fn scrape(addr: &str) -> Result<String> {
    let reply = HttpProbe::get(addr, "/metrics", PROBE).await?;
    ensure!(
        reply.status == 200,
        "{addr}/metrics answered {}",
        reply.status
    );
    Ok(reply.body)
}

/// The value of the sample `series` (`name` or `name{labels}`) in a scrape, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn need(text: &str, series: &str) -> Result<f64> {
    sample(text, series).with_context(|| format!("no sample {series} in:\n{text}"))
}

/// Sum of `series` over several scrapes.
fn total(scrapes: &[String], series: &str) -> Result<f64> {
    scrapes.iter().map(|s| need(s, series)).sum()
}

async fn scrape_all(http: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for a in http {
        out.push(scrape(a).await?);
    }
    Ok(out)
}

/// The seed chapter's REGISTER, one JSON line.
fn legacy_register(member: &str, address: &str) -> Result<String> {
    let mut s = std::net::TcpStream::connect(member)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(s, r#"{{"type":"REGISTER","payload":"{address}"}}"#)?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line)
}

/// A frame header announcing 2 GiB: refused before any of it is read.
fn oversized_frame(member: &str) -> Result<()> {
    let mut s = std::net::TcpStream::connect(member)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0x00])?;
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    Ok(())
}

const MEMBER_SERIES: &[&str] = &[
    "peerchain_raft_has_leader",
    "peerchain_raft_is_leader",
    "peerchain_member_ready",
    "peerchain_raft_leader_changes_total",
    "peerchain_raft_term",
    "peerchain_raft_commit_index",
    "peerchain_raft_applied_index",
    "peerchain_raft_log_entries_since_snapshot",
    "peerchain_raft_snapshot_age_seconds",
    "peerchain_raft_quorum_ack_age_seconds",
    "peerchain_proposals_committed_total",
    "peerchain_proposals_failed_total",
    "peerchain_proposals_pending",
    "peerchain_proposal_commands_count",
    "peerchain_log_fsync_duration_seconds_count",
    "peerchain_apply_duration_seconds_count",
    "peerchain_registry_records{kind=\"signed\"}",
    "peerchain_registry_records{kind=\"legacy\"}",
    "peerchain_registry_expired_total",
    "peerchain_get_peers_served_total",
    "peerchain_get_peers_from_reservoir_total",
    "peerchain_get_peers_duration_seconds_count",
    "peerchain_open_connections",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_metrics_are_scraped_and_move_with_registrations() -> Result<()> {
    let (cluster, http) = http_cluster(3).await?;
    let before = scrape_all(&http).await?;
    for s in &before {
        for series in MEMBER_SERIES {
            need(s, series)?;
        }
    }
    ensure!(
        total(&before, "peerchain_raft_is_leader")? == 1.0,
        "one leader"
    );
    let mut client = cluster.client();
    const SIGNED: usize = 20;
    for k in 0..SIGNED {
        let now = peerchain::unix_ms();
        let record = NodeIdentity::generate().sign_record(
            NETWORK,
            &format!("10.7.{k}.1:7000"),
            now,
            now + HOUR_MS,
        );
        client.register(record).await?;
    }
    let reply = legacy_register(&cluster.addr(1), "10.9.8.7:3000")?;
    ensure!(reply.contains("registered"), "{reply}");
    for _ in 0..5 {
        client.get_peers(Some(10), Vec::new(), false).await?;
    }
    oversized_frame(&cluster.addr(2))?;
    // Followers apply a moment after the leader acknowledges.
    eventually(
        Duration::from_secs(10),
        "every member counts 20 signed, 1 legacy",
        || {
            let http = http.clone();
            async move {
                let after = scrape_all(&http).await?;
                Ok(after.iter().all(|s| {
                    sample(s, "peerchain_registry_records{kind=\"signed\"}") == Some(SIGNED as f64)
                        && sample(s, "peerchain_registry_records{kind=\"legacy\"}") == Some(1.0)
                }))
            }
        },
    )
    .await?;
    let after = scrape_all(&http).await?;
    let rose = |series: &str| -> Result<(f64, f64)> {
        Ok((total(&before, series)?, total(&after, series)?))
    };
    let (c0, c1) = rose("peerchain_proposals_committed_total")?;
    ensure!(c1 > c0, "proposals committed {c0} -> {c1}");
    let (g0, g1) = rose("peerchain_get_peers_served_total")?;
    ensure!(g1 >= g0 + 5.0, "GET_PEERS served {g0} -> {g1}");
    for (b, a) in before.iter().zip(&after) {
        let f0 = need(b, "peerchain_log_fsync_duration_seconds_count")?;
        let f1 = need(a, "peerchain_log_fsync_duration_seconds_count")?;
        ensure!(f1 > f0, "every member fsyncs the new entries: {f0} -> {f1}");
        ensure!(
            need(a, "peerchain_raft_applied_index")?
                >= need(b, "peerchain_raft_applied_index")? + 1.0
        );
    }
    // The status page's histogram: registered addresses per /16.
    let page = HttpProbe::get(&http[0], "/api/status", PROBE).await?.json();
    let groups = &page["census"]["per_group"];
    ensure!(
        groups["10.7/16"] == SIGNED && groups["10.9/16"] == 1,
        "per-/16 histogram: {groups}"
    );
    let html = HttpProbe::get(&http[0], "/", PROBE).await?;
    ensure!(
        html.status == 200 && html.body.contains("/api/status"),
        "status page"
    );
    let refused = need(
        &after[1],
        "peerchain_refused_frames_total{reason=\"too_large\"}",
    )?;
    ensure!(refused >= 1.0, "oversized frame counted: {refused}");
    println!(
        "proposals committed {c0} -> {c1}, GET_PEERS served {g0} -> {g1}, refused too_large {refused}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_metrics_and_readiness_follow_peers_and_blocks() -> Result<()> {
    let (cluster, _) = http_cluster(1).await?;
    let seeds = cluster.addrs().join(",");
    let mut net = NodeNet::new()?;
    let (h1, h2) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let a1 = net.spawn(
        "miner",
        &[
            "--seeds",
            &seeds,
            "--mine",
            "--block-interval",
            "0.2",
            "--http",
            &h1,
        ],
    )?;
    net.status_eventually("miner").await?;
    // Alone: it answers /health but is not ready (no peer).
    eventually(Duration::from_secs(10), "miner's /health", || async {
        Ok(HttpProbe::get(&h1, "/health", PROBE).await?.status == 200)
    })
    .await?;
    let alone = HttpProbe::get(&h1, "/ready", PROBE).await?;
    ensure!(alone.status == 503, "{alone:?}");
    ensure!(alone.body.contains("no connected peers"), "{}", alone.body);
    let m = scrape(&h1).await?;
    for series in [
        "peerchain_node_chain_height",
        "peerchain_node_chain_total_work",
        "peerchain_node_address_book_size",
        "peerchain_node_banned_addresses",
        "peerchain_node_bans_total",
        "peerchain_node_syncing",
        "peerchain_node_blocks_received_total",
        "peerchain_node_blocks_served_total",
        "peerchain_node_blocks_rejected_total",
        "peerchain_node_bootstrap_failovers_total",
        "peerchain_node_peers{direction=\"inbound\"}",
        "peerchain_node_peers{direction=\"outbound\"}",
    ] {
        need(&m, series)?;
    }
    eventually(
        Duration::from_secs(20),
        "miner registered, height >= 3",
        || async {
            let m = scrape(&h1).await?;
            Ok(sample(&m, "peerchain_node_registered") == Some(1.0)
                && sample(&m, "peerchain_node_chain_height").unwrap_or(0.0) >= 3.0
                && sample(
                    &m,
                    &format!(
                        "peerchain_node_bootstrap_member{{member=\"{}\"}}",
                        cluster.addr(1)
                    ),
                ) == Some(1.0))
        },
    )
    .await?;
    net.spawn("follower", &["--peers", &a1, "--http", &h2])?;
    eventually(
        Duration::from_secs(30),
        "follower ready (a peer, synced)",
        || async { Ok(HttpProbe::get(&h2, "/ready", PROBE).await?.status == 200) },
    )
    .await?;
    let (m1, m2) = (scrape(&h1).await?, scrape(&h2).await?);
    let served = need(&m1, "peerchain_node_blocks_served_total")?
        + need(&m2, "peerchain_node_blocks_served_total")?;
    let received = need(&m2, "peerchain_node_blocks_received_total")?;
    ensure!(received >= 3.0, "follower received {received} blocks");
    ensure!(served >= 1.0, "blocks served {served}");
    ensure!(
        need(&m2, "peerchain_node_peers{direction=\"outbound\"}")? >= 1.0,
        "{m2}"
    );
    ensure!(
        need(&m1, "peerchain_node_peers{direction=\"inbound\"}")? >= 1.0,
        "{m1}"
    );
    ensure!(need(&m2, "peerchain_node_ready")? == 1.0);
    println!("follower received {received} blocks; {served} served");
    Ok(())
}

/// Polls `addr/ready` until it answers `want`; returns how long that took.
async fn ready_becomes(addr: &str, want: u16, within: Duration) -> Result<(Duration, String)> {
    let start = Instant::now();
    loop {
        if let Ok(r) = HttpProbe::get(addr, "/ready", Duration::from_secs(1)).await {
            if r.status == want {
                return Ok((start.elapsed(), r.body));
            }
        }
        if start.elapsed() > within {
            bail!("{addr}/ready did not answer {want} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_is_not_ready_and_ctl_says_so() -> Result<()> {
    let (mut cluster, http) = http_cluster(3).await?;
    let leader = cluster.wait_leader(Duration::from_secs(20)).await?;
    let lh = http[(leader - 1) as usize].clone();
    ready_becomes(&lh, 200, Duration::from_secs(10)).await?;
    let others: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    for &o in &others {
        cluster.kill(o);
    }
    // Ready stops within an election timeout (at most 1.8 s for these ids) plus probing.
    let (took, body) = ready_becomes(&lh, 503, Duration::from_secs(5)).await?;
    ensure!(body.contains("has not heard from a quorum"), "{body}");
    let m = scrape(&lh).await?;
    ensure!(need(&m, "peerchain_member_ready")? == 0.0);
    ensure!(need(&m, "peerchain_raft_has_leader")? == 0.0);
    ensure!(
        need(&m, "peerchain_raft_quorum_ack_age_seconds")? > 0.5,
        "{m}"
    );
    let out = std::process::Command::new(binary())
        .args(["ctl", "--bootstrap", &cluster.addr(leader), "cluster"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains("is NOT ready") && text.contains("quorum last acknowledged"),
        "{text}"
    );
    let health = std::process::Command::new(binary())
        .args(["health", "--http", &lh, "--timeout", "2"])
        .output()?;
    let err = String::from_utf8_lossy(&health.stderr);
    ensure!(
        !health.status.success() && err.contains("has not heard from a quorum"),
        "{err}"
    );
    let live = std::process::Command::new(binary())
        .args(["health", "--http", &lh, "--live", "--timeout", "2"])
        .output()?;
    ensure!(live.status.success(), "/health still answers: {live:?}");
    for &o in &others {
        cluster.spawn(o, false)?;
    }
    let (back, _) = ready_becomes(&lh, 200, Duration::from_secs(20)).await?;
    let mut all_ready = Duration::ZERO;
    for h in &http {
        all_ready = all_ready.max(ready_becomes(h, 200, Duration::from_secs(20)).await?.0);
    }
    println!(
        "leader {leader}: not ready {:.2} s after its peers died; ready again {:.2} s after they \
         restarted (every member within {:.2} s more)",
        took.as_secs_f64(),
        back.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_naming_a_dead_member_as_its_registered_bootstrap() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let seeds = cluster.addrs().join(",");
    let http = format!("127.0.0.1:{}", free_port());
    let mut net = NodeNet::new()?;
    net.spawn(
        "n",
        &[
            "--seeds",
            &seeds,
            "--refresh-interval",
            "1",
            "--http",
            &http,
        ],
    )?;
    let first = cluster.addr(1);
    net.status_eventually("n").await?;
    eventually(
        Duration::from_secs(20),
        "registered through member 1",
        || {
            let net = &net;
            let first = first.clone();
            async move {
                let status = net.status("n").await?;
                Ok(status.registered && status.bootstrap.as_deref() == Some(first.as_str()))
            }
        },
    )
    .await?;
    // Members 1 and 2 die: the survivor answers reads but cannot commit a renewal.
    cluster.kill(1);
    cluster.kill(2);
    let dead = [cluster.addr(1), cluster.addr(2)];
    let start = Instant::now();
    eventually(
        Duration::from_secs(30),
        "status no longer names a dead member, registered",
        || {
            let net = &net;
            let dead = dead.clone();
            async move {
                let status = net.status("n").await?;
                let names_dead = status.bootstrap.as_ref().is_some_and(|b| dead.contains(b));
                Ok(!status.registered && !names_dead)
            }
        },
    )
    .await?;
    let took = start.elapsed();
    let status = net.status("n").await?;
    let m = scrape(&http).await?;
    ensure!(need(&m, "peerchain_node_registered")? == 0.0, "{m}");
    ensure!(
        need(&m, "peerchain_node_bootstrap_failovers_total")? >= 1.0,
        "{m}"
    );
    // The move off member 1 is one INFO line naming both members.
    let log = net.log("n");
    let failovers: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("bootstrap failover") && l.contains(&format!("from={first}")))
        .collect();
    ensure!(
        failovers.len() == 1 && failovers[0].contains(" INFO "),
        "want one INFO failover line from {first}: {failovers:#?}"
    );
    cluster.spawn(1, false)?;
    cluster.spawn(2, false)?;
    let start = Instant::now();
    eventually(Duration::from_secs(40), "registered again", || {
        let net = &net;
        async move { Ok(net.status("n").await?.registered) }
    })
    .await?;
    println!(
        "status dropped the dead member {:.1} s after the kill (bootstrap now {:?}); registered \
         again {:.1} s after the restart",
        took.as_secs_f64(),
        status.bootstrap,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
