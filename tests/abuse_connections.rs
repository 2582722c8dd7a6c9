//! Abuse from outside: one address or one /24 trying to take a member's connection slots,
//! and members that must keep reaching each other meanwhile (registry, memory and request
//! capacity: `abuse.rs`). Members run with the default
//! quotas; the attackers and bystanders are other loopback addresses (127.9.x.y), so the
//! members' own 127.0.0.1 is never the one being limited.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use peerchain::record::NodeIdentity;
use peerchain::wire::{Request, Response};
use support::abuse::{
    call, cluster_with_quotas, connect_from, fill, flood, framed_from, log_lines, source,
};
use support::{eventually, NETWORK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_from_one_ip_takes_only_its_quota() -> Result<()> {
    let (cluster, http) = support::abuse::cluster_with_quotas_and_http(3, &[]).await?;
    let member = cluster.addr(1);
    let attacker = source(9, 1);
    let started = Instant::now();
    let (open, refusals) = flood(attacker, &member, 5_000).await?;
    println!(
        "{} of 5,000 connections from {attacker} stay open after {:?}; {} got a refusal",
        open.len(),
        started.elapsed(),
        refusals.len()
    );
    ensure!(
        open.len() == 32,
        "the per-IP quota is 32, {} open",
        open.len()
    );
    ensure!(
        refusals.len() > 4_000 && refusals[0].contains("--max-connections-per-ip"),
        "refused connections are told why: {} refusals, e.g. {:?}",
        refusals.len(),
        refusals.first()
    );

    // A client on another /24 is answered at once.
    let t = Instant::now();
    let mut other = framed_from(source(10, 1), &member).await?;
    let reply = call(&mut other, 1, Request::ClusterInfo).await?;
    let took = t.elapsed();
    println!("cluster_info from another /24 during the flood: {took:?}");
    ensure!(matches!(reply, Response::ClusterInfo(_)), "{reply:?}");
    ensure!(took < Duration::from_secs(2), "{took:?}");
    // So is an operator listing (ctl peers) from the members' host, and writes go through
    // the cluster (member 1 forwards or replicates them).
    let t = Instant::now();
    cluster.admin_client_of(1)?.list_all(Some(1000)).await?;
    println!("operator listing during the flood: {:?}", t.elapsed());
    ensure!(t.elapsed() < Duration::from_secs(2));
    let now = peerchain::unix_ms();
    let rec = NodeIdentity::generate().sign_record(NETWORK, "127.62.0.1:1", now, now + 60_000);
    let t = Instant::now();
    cluster.client_of(1).register(rec).await?;
    println!(
        "a write through member 1 during the flood: {:?}",
        t.elapsed()
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = log_lines(&cluster, 1, "refus");
    println!("member 1 log: {lines} refusal lines for ~5,000 refused connections");
    ensure!(lines <= 3, "one line per source per 10 s, got {lines}");
    let series = "peerchain_refused_frames_total{reason=\"connection_quota\"}";
    let counted = support::abuse::metric(&http, series).await?;
    println!("refused connection_quota on member 1's /metrics: {counted}");
    ensure!(counted >= refusals.len() as f64, "{counted} counted");
    drop(open);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_have_reserved_slots_when_strangers_fill_the_client_slots() -> Result<()> {
    let cluster = cluster_with_quotas(3, &["--max-connections", "40"]).await?;
    let member = cluster.addr(1);
    // Strangers take every client slot (some are the members' own connections from
    // 127.0.0.1), and keep them: one byte of a frame puts a connection under the 60 s idle
    // timeout instead of the first-byte one.
    let mut held = Vec::new();
    fill(&mut held, &member, 1).await?;
    let (open, refusals) = flood(source(9, 1), &member, 1).await?;
    ensure!(open.is_empty(), "another stranger finds the slots full");
    ensure!(
        refusals
            .iter()
            .any(|r| r.contains("limit of 40 client connections")),
        "{refusals:?}"
    );

    // Members 2 and 3 restart; the slots their old connections free go to strangers too.
    // Then they reconnect to member 1 and get reserved slots, and writes through each of
    // them reach member 1.
    let mut cluster = cluster;
    for id in [2, 3] {
        cluster.kill(id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    fill(&mut held, &member, 2).await?;
    let (open, _) = flood(source(9, 2), &member, 1).await?;
    ensure!(open.is_empty(), "client slots full again");
    for id in [2, 3] {
        cluster.spawn(id, false)?;
    }
    // (Member 1 answers only authenticated connections from 127.0.0.1 now, so ask 2 and 3.)
    eventually(
        Duration::from_secs(20),
        "members 2 and 3 know a leader",
        || async {
            Ok(cluster.info(2).await?.leader_id.is_some()
                && cluster.info(3).await?.leader_id.is_some())
        },
    )
    .await?;
    let now = peerchain::unix_ms();
    let mut want = std::collections::BTreeSet::new();
    for id in [2u64, 3] {
        let addr = format!("127.63.0.{id}:1");
        let rec = NodeIdentity::generate().sign_record(NETWORK, &addr, now, now + 60_000);
        cluster.client_of(id).register(rec).await?;
        want.insert(addr);
    }
    // The operator on the members' host gets in too (authenticated at once), and sees them.
    eventually(Duration::from_secs(10), "member 1 has both writes", || {
        support::holds_all(&cluster, 1, &want)
    })
    .await?;
    // A stranger from the members' own address cannot squat a reserved slot: it must
    // authenticate first.
    let mut s = connect_from("127.0.0.1".parse()?, &member).await?;
    let mut buf = Vec::new();
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut buf)).await??;
    println!(
        "an unauthenticated connection in a reserved slot closed after {:?}",
        t.elapsed()
    );
    ensure!(t.elapsed() < Duration::from_secs(5));
    let reserved = log_lines(&cluster, 1, "admitted into a reserved slot");
    println!("member 1 admitted {reserved} member connections into reserved slots");
    ensure!(reserved >= 2, "{reserved}");
    drop(held);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_on_the_members_own_subnet_do_not_cut_the_members_off() -> Result<()> {
    // The members listen on 127.0.0.1; the strangers are 127.0.0.2–55, the same /24. They
    // take every connection slot of that /24 on member 1 and drain its request buckets.
    let mut cluster = cluster_with_quotas(3, &[]).await?;
    let member = cluster.addr(1);
    let stranger = |b: u8| IpAddr::from([127, 0, 0, b]);
    // Fifty flooders, about 100 requests/s each: each IP's own bucket passes 50/s, together
    // 2,500/s against the /24's 200/s, so a member's handshake that had to wait its turn in
    // that bucket would rarely get through.
    let mut flooders = Vec::new();
    for b in 2..=51 {
        flooders.push(framed_from(stranger(b), &member).await?);
    }
    let mut held = Vec::new();
    for b in 52..=55 {
        let (mut open, _) = flood(stranger(b), &member, 32).await?;
        for s in &mut open {
            s.write_all(&[0]).await?;
        }
        held.extend(open);
    }
    println!(
        "strangers on 127.0.0.0/24 hold {} connections to member 1",
        held.len() + 1
    );
    // The flood goes on until the members have shown they got through (bounded: 30 s or
    // a million requests).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let mut drains = Vec::new();
    for mut flooder in flooders {
        let stopped = stopped.clone();
        drains.push(tokio::spawn(async move {
            let (mut served, mut limited) = (0u64, 0u64);
            let until = Instant::now() + Duration::from_secs(30);
            for id in 1..=1_000_000u64 {
                if Instant::now() > until || stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                match call(&mut flooder, id, Request::ClusterInfo).await {
                    Ok(Response::ClusterInfo(_)) => served += 1,
                    Ok(_) => limited += 1,
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (served, limited)
        }));
    }
    // Let the buckets drain before the members come back.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Members 2 and 3 restart and must reconnect to member 1 through all this.
    for id in [2, 3] {
        cluster.kill(id);
        cluster.spawn(id, false)?;
    }
    eventually(
        Duration::from_secs(20),
        "members 2 and 3 know a leader",
        || async {
            Ok(cluster.info(2).await?.leader_id.is_some()
                && cluster.info(3).await?.leader_id.is_some())
        },
    )
    .await?;
    let now = peerchain::unix_ms();
    let mut want = std::collections::BTreeSet::new();
    for id in [2u64, 3] {
        let addr = format!("127.65.0.{id}:1");
        let rec = NodeIdentity::generate().sign_record(NETWORK, &addr, now, now + 60_000);
        cluster.client_of(id).register(rec).await?;
        want.insert(addr);
    }
    eventually(Duration::from_secs(10), "member 1 has both writes", || {
        support::holds_all(&cluster, 1, &want)
    })
    .await?;
    // A client on another /24 is served as usual.
    let mut bystander = framed_from(source(10, 1), &member).await?;
    let reply = call(&mut bystander, 1, Request::ClusterInfo).await?;
    ensure!(matches!(reply, Response::ClusterInfo(_)), "{reply:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut served, mut limited) = (0, 0);
    for d in drains {
        let (s, l) = d.await?;
        served += s;
        limited += l;
    }
    println!("the strangers' request flood: {served} served, {limited} rate limited");
    ensure!(limited > 0, "the flood did drain the buckets");
    // The members' own handshakes were never refused.
    let members_refused = support::abuse::plain_log(&cluster, 1)
        .lines()
        .filter(|l| l.contains("refusing request") && l.contains("source=127.0.0.1 "))
        .count();
    ensure!(
        members_refused == 0,
        "member 1 refused 127.0.0.1's requests"
    );
    drop(held);
    Ok(())
}
