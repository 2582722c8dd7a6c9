//! The node runtime end to end: real `peerchain node` and `peerchain bootstrap` processes on
//! loopback, observed through `ctl status` queries, their logs and a scripted test peer.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use peerchain::chain::mine;
use peerchain::record::NodeIdentity;
use peerchain::wire::{NodeStatus, PeerMessage};
use support::node_net::{NodeNet, TestPeer, DIFFICULTY};
use support::{eventually, free_port, Cluster};

fn peer_addrs(s: &NodeStatus) -> HashSet<String> {
    s.peers.iter().map(|p| p.addr.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_falls_back_through_dead_seeds_and_remembers_the_members() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let mut net = NodeNet::new()?;
    let dead1 = format!("127.0.0.1:{}", free_port());
    let dead2 = format!("127.0.0.1:{}", free_port());
    let seeds = format!("{dead1},{dead2},{}", cluster.addr(3));
    let started = Instant::now();
    let addr = net.spawn("a", &["--seeds", &seeds])?;
    let n = &net;
    eventually(Duration::from_secs(10), "node a registers", || async move {
        Ok(n.status("a").await?.registered)
    })
    .await?;
    let took = started.elapsed();
    ensure!(
        took < Duration::from_millis(2500),
        "joining through the third seed took {took:?}"
    );
    // Through the leader (linearizable): the registration went to member 3, and a
    // follower may not have applied it yet. The record is served once the leader's
    // dial-back has reached the node and seen it prove its key.
    let c = &cluster;
    let a = addr.as_str();
    eventually(
        Duration::from_secs(10),
        "the node's record verified and served",
        || async move {
            let listed = c.client().get_peers(Some(1000), vec![], true).await?;
            Ok(listed.iter().any(|p| p.address() == a))
        },
    )
    .await?;
    // It learned the live member list ...
    let status = net.status("a").await?;
    let members: HashSet<String> = status.bootstrap_members.iter().cloned().collect();
    ensure!(
        members == cluster.addrs().into_iter().collect(),
        "{members:?}"
    );
    // ... so restarted with only a dead seed configured, it still finds the cluster.
    net.terminate("a")?;
    net.restart("a", Some(&["--seeds", &dead1]))?;
    let n = &net;
    eventually(
        Duration::from_secs(10),
        "node a registers again",
        || async move { Ok(n.status("a").await?.registered) },
    )
    .await?;
    // A clean shutdown deregisters.
    net.terminate("a")?;
    let n = &net;
    let c = &cluster;
    eventually(Duration::from_secs(5), "record removed", || async move {
        let listed = c.client().get_peers(Some(1000), vec![], false).await?;
        Ok(!listed.iter().any(|p| p.address() == n.addr("a")))
    })
    .await?;
    ensure!(net
        .log("a")
        .contains("deregistered from the bootstrap cluster"));
    println!("joined through the third seed in {took:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_bootstrap_down_a_restarted_node_reconnects_from_its_address_book() -> Result<()>
{
    let mut cluster = Cluster::start(3, &[]).await?;
    let mut net = NodeNet::new()?;
    let seeds = cluster.addrs().join(",");
    let a = net.spawn(
        "a",
        &["--seeds", &seeds, "--mine", "--block-interval", "0.2"],
    )?;
    net.spawn("b", &["--seeds", &seeds, "--refresh-interval", "1"])?;
    let n = &net;
    let a2 = a.clone();
    eventually(Duration::from_secs(20), "b connects to a and syncs", || {
        let a = a2.clone();
        async move {
            let b = n.status("b").await?;
            Ok(peer_addrs(&b).contains(&a) && b.tip.height >= 3)
        }
    })
    .await?;
    net.terminate("b")?;
    for id in 1..=3 {
        cluster.kill(id);
    }
    net.restart("b", None)?;
    let n = &net;
    eventually(
        Duration::from_secs(20),
        "b reconnects to a without any bootstrap",
        || {
            let a = a.clone();
            async move {
                let (sa, sb) = (n.status("a").await?, n.status("b").await?);
                Ok(
                    peer_addrs(&sb).contains(&a)
                        && sb.tip.height >= sa.tip.height.saturating_sub(1),
                )
            }
        },
    )
    .await?;
    let status = net.status("b").await?;
    ensure!(
        !status.registered && status.bootstrap.is_none(),
        "{status:?}"
    );
    let n = &net;
    eventually(
        Duration::from_secs(15),
        "b reports the dead cluster",
        || async move {
            Ok(n.log("b")
                .contains("registering with the bootstrap cluster failed"))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_node_discovers_later_joiners_and_peers_gossip_addresses() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let mut net = NodeNet::new()?;
    let seeds = cluster.addrs().join(",");
    let a = net.spawn("a", &["--seeds", &seeds, "--refresh-interval", "1"])?;
    let n = &net;
    eventually(Duration::from_secs(10), "a registers", || async move {
        Ok(n.status("a").await?.registered)
    })
    .await?;
    // b and c join later and never dial anyone: a can only learn of them by discovery.
    let b = net.spawn("b", &["--seeds", &seeds, "--target-outbound", "0"])?;
    let c = net.spawn("c", &["--seeds", &seeds, "--target-outbound", "0"])?;
    let n = &net;
    let (b2, c2) = (b.clone(), c.clone());
    eventually(Duration::from_secs(20), "a dials b and c", || {
        let (b, c) = (b2.clone(), c2.clone());
        async move {
            let s = n.status("a").await?;
            let out: HashSet<String> = s
                .peers
                .iter()
                .filter(|p| p.outbound)
                .map(|p| p.addr.clone())
                .collect();
            Ok(out.contains(&b) && out.contains(&c))
        }
    })
    .await?;
    // d has no bootstrap at all, only a: it learns b and c from a's ADDR reply.
    net.spawn("d", &["--peers", &a])?;
    let n = &net;
    eventually(
        Duration::from_secs(20),
        "d connects to b and c via gossip",
        || {
            let (b, c) = (b.clone(), c.clone());
            async move {
                let s = n.status("d").await?;
                let peers = peer_addrs(&s);
                Ok(peers.contains(&b) && peers.contains(&c))
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_on_one_chain() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let mut net = NodeNet::new()?;
    let seeds = cluster.addrs().join(",");
    net.spawn(
        "n1",
        &["--seeds", &seeds, "--mine", "--block-interval", "0.3"],
    )?;
    for i in 2..=5 {
        // Seed lists in different orders.
        let mut s = cluster.addrs();
        s.rotate_left(i % 3);
        net.spawn(&format!("n{i}"), &["--seeds", &s.join(",")])?;
    }
    let n = &net;
    eventually(
        Duration::from_secs(40),
        "all five share a tip of height >= 10",
        || async move {
            let mut tips = HashSet::new();
            let mut height = 0;
            for i in 1..=5 {
                let s = n.status(&format!("n{i}")).await?;
                tips.insert(s.tip.hash);
                height = s.tip.height;
            }
            Ok(tips.len() == 1 && height >= 10)
        },
    )
    .await?;
    for i in 2..=5 {
        ensure!(
            !net.status(&format!("n{i}")).await?.peers.is_empty(),
            "n{i} has no peers"
        );
    }
    // The miner sees its peers' heights as they are, not as they were at the handshake.
    eventually(
        Duration::from_secs(10),
        "the miner's status shows its peers near its own height",
        || async move {
            let s = n.status("n1").await?;
            Ok(!s.peers.is_empty() && s.peers.iter().all(|p| p.tip_height + 3 >= s.tip.height))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_partition_every_node_ends_on_the_side_with_more_work() -> Result<()> {
    let mut net = NodeNet::new()?;
    // Two islands without any bootstrap: {n1 fast miner, n2} and {n3 slow miner, n4}.
    let n1 = net.spawn("n1", &["--mine", "--block-interval", "0.1"])?;
    net.spawn("n2", &["--peers", &n1])?;
    let n3 = net.spawn("n3", &["--mine", "--block-interval", "1.5"])?;
    net.spawn("n4", &["--peers", &n3])?;
    let n = &net;
    eventually(
        Duration::from_secs(40),
        "both sides mine their own chains",
        || async move {
            let (s1, s2) = (n.status("n1").await?, n.status("n2").await?);
            let (s3, s4) = (n.status("n3").await?, n.status("n4").await?);
            Ok(s3.tip.height >= 3
                && s1.tip.height >= s3.tip.height + 10
                && s2.tip.hash == s1.tip.hash
                && s4.tip.hash == s3.tip.hash)
        },
    )
    .await?;
    let heavy = net.status("n1").await?.tip;
    let light = net.status("n3").await?.tip;
    ensure!(heavy.total_work > light.total_work);
    // Heal: n4 comes back connected to both islands.
    net.terminate("n4")?;
    net.restart("n4", Some(&["--peers", &format!("{n3},{n1}")]))?;
    let n = &net;
    eventually(
        Duration::from_secs(40),
        "all four on one tip",
        || async move {
            let mut tips = HashSet::new();
            for i in 1..=4 {
                tips.insert(n.status(&format!("n{i}")).await?.tip.hash);
            }
            Ok(tips.len() == 1)
        },
    )
    .await?;
    // The common chain is the heavy side's: it contains n1's pre-heal tip, not n3's.
    let mut peer = TestPeer::connect(&n3, &NodeIdentity::generate()).await?;
    let chain = peer.main_chain().await?;
    let at = |h: u64| {
        chain
            .get(usize::try_from(h).unwrap_or(usize::MAX))
            .map(|b| b.hash)
    };
    ensure!(
        at(heavy.height) == Some(heavy.hash),
        "heavy side's tip missing"
    );
    ensure!(
        at(light.height) != Some(light.hash),
        "light side's tip still on the chain"
    );
    ensure!(net.log("n3").contains("reorg"), "n3 did not log a reorg");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_blocks_are_rejected_and_their_sender_penalised_then_banned() -> Result<()> {
    let mut net = NodeNet::new()?;
    let addr = net.spawn("a", &["--mine", "--block-interval", "0.2"])?;
    let n = &net;
    eventually(Duration::from_secs(20), "a mines", || async move {
        Ok(n.status("a").await?.tip.height >= 2)
    })
    .await?;
    let mallory = NodeIdentity::generate();
    let mut peer = TestPeer::connect(&addr, &mallory).await?;
    let tip_block = {
        let chain = peer.main_chain().await?;
        chain.last().cloned().context("empty chain")?
    };
    // A block whose hash does not match its contents.
    let mut forged = mine(
        &tip_block,
        b"forged".to_vec(),
        peerchain::unix_ms(),
        DIFFICULTY,
        0,
        1 << 24,
    )
    .context("mined")?;
    forged.data = b"tampered after mining".to_vec();
    peer.send(PeerMessage::NewBlock {
        block: forged.clone(),
    })
    .await?;
    let n = &net;
    let me = mallory.node_id();
    eventually(
        Duration::from_secs(10),
        "a penalises the sender",
        || async move {
            let s = n.status("a").await?;
            Ok(s.peers.iter().any(|p| p.node_id == me && p.ban_score > 0))
        },
    )
    .await?;
    // Two more invalid blocks cross the threshold: disconnected and banned.
    for i in 0..2u64 {
        let mut weak = forged.clone();
        weak.data = format!("weak {i}").into_bytes();
        // A correct hash that misses the difficulty.
        weak.nonce = 0;
        weak.hash = weak.compute_hash();
        while peerchain::chain::block::meets_difficulty(&weak.hash, DIFFICULTY) {
            weak.nonce += 1;
            weak.hash = weak.compute_hash();
        }
        peer.send(PeerMessage::NewBlock { block: weak }).await?;
    }
    let closed = peer
        .recv_until(Duration::from_secs(10), |_| None::<()>)
        .await
        .expect_err("the node should close the connection");
    ensure!(
        closed.to_string().contains("banned") || closed.to_string().contains("closed"),
        "{closed}"
    );
    let status = net.status("a").await?;
    ensure!(
        status.banned.contains(&format!("id:{me}")),
        "{:?}",
        status.banned
    );
    ensure!(status.tip.hash != forged.hash);
    let again = TestPeer::connect(&addr, &mallory).await;
    ensure!(
        again
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("banned")),
        "a banned peer got back in"
    );
    // Another peer is still welcome.
    TestPeer::connect(&addr, &NodeIdentity::generate()).await?;
    ensure!(net.log("a").contains("invalid block"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_syncs_a_long_chain_in_ranges_and_logs_progress() -> Result<()> {
    let mut net = NodeNet::new()?;
    let a = net.spawn("a", &["--mine", "--block-interval", "0"])?;
    let n = &net;
    eventually(
        Duration::from_secs(120),
        "a mines 1,200 blocks",
        || async move { Ok(n.status("a").await?.tip.height >= 1200) },
    )
    .await?;
    let before = net.status("a").await?.tip;
    net.terminate("a")?;
    // Restarted without --mine: it resumes at its saved tip (chain.redb), not at genesis.
    net.restart("a", Some(&[]))?;
    let target = net.status_eventually("a").await?.tip;
    ensure!(target.height >= before.height, "{target:?} vs {before:?}");
    net.spawn("b", &["--peers", &a])?;
    let n = &net;
    eventually(
        Duration::from_secs(60),
        "b syncs a's chain",
        || async move { Ok(n.status("b").await?.tip == target) },
    )
    .await?;
    let log = net.log("b");
    ensure!(log.contains("synced 500 / "), "no progress logged:\n{log}");
    ensure!(log.contains("sync finished"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_report_members_and_nodes_and_fail_with_a_reason() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let mut net = NodeNet::new()?;
    let a = net.spawn("a", &["--seeds", &cluster.addrs().join(",")])?;
    net.status_eventually("a").await?;
    let health = |args: &[&str]| {
        std::process::Command::new(support::binary())
            .arg("health")
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
    };
    let ok = health(&["--bootstrap", &cluster.addr(1), "--node", &a])?;
    let stdout = String::from_utf8_lossy(&ok.stdout);
    ensure!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    ensure!(stdout.contains("healthy: bootstrap member 1") && stdout.contains("healthy: node at"));
    let dead = format!("127.0.0.1:{}", free_port());
    let bad = health(&["--node", &dead, "--timeout", "1"])?;
    ensure!(!bad.status.success());
    ensure!(String::from_utf8_lossy(&bad.stderr).contains("unhealthy"));
    // A follower whose leader and other follower died is unhealthy, with the reason.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let survivor = (1..=3).find(|&i| i != leader).context("a follower")?;
    for id in (1..=3).filter(|&i| i != survivor) {
        cluster.kill(id);
    }
    let c = &cluster;
    eventually(
        Duration::from_secs(20),
        "the survivor reports no leader",
        || async move {
            let out = health(&["--bootstrap", &c.addr(survivor), "--timeout", "1"])?;
            Ok(!out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("knows no leader"))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_and_block_requests_are_rate_limited_unsolicited_addr_ignored_bad_frames_refused(
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut net = NodeNet::new()?;
    let addr = net.spawn("a", &[])?;
    net.status_eventually("a").await?;
    let identity = NodeIdentity::generate();
    let peer_id = identity.node_id();
    let mut peer = TestPeer::connect(&addr, &identity).await?;
    // The node asks us for addresses once; the answer is taken ...
    peer.recv_until(Duration::from_secs(5), |m| {
        matches!(m, PeerMessage::GetAddr).then_some(())
    })
    .await?;
    peer.send(PeerMessage::Addr {
        addrs: vec!["127.0.0.5:1234".into()],
    })
    .await?;
    // ... a second, unasked one is not.
    peer.send(PeerMessage::Addr {
        addrs: vec!["127.0.0.6:1234".into()],
    })
    .await?;
    let n = &net;
    eventually(
        Duration::from_secs(5),
        "the solicited address is kept",
        || async move {
            Ok(n.status("a")
                .await?
                .known_addresses
                .contains(&"127.0.0.5:1234".to_string()))
        },
    )
    .await?;
    ensure!(!net
        .status("a")
        .await?
        .known_addresses
        .contains(&"127.0.0.6:1234".to_string()));
    // Two GetAddr in a row: one answer.
    peer.send(PeerMessage::GetAddr).await?;
    peer.send(PeerMessage::GetAddr).await?;
    let mut answers = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let got = peer
            .recv_until(Duration::from_millis(500), |m| {
                matches!(m, PeerMessage::Addr { .. }).then_some(())
            })
            .await;
        if got.is_ok() {
            answers += 1;
        }
    }
    ensure!(answers == 1, "{answers} Addr replies to two GetAddr");
    // 35 block requests at once: 20 answered now, 10 in the next second, 5 refused and scored.
    let genesis = peerchain::chain::genesis(support::NETWORK).hash;
    let sent = Instant::now();
    for _ in 0..35 {
        peer.send(PeerMessage::GetBlocks {
            locator: vec![genesis],
            limit: 10,
        })
        .await?;
    }
    let mut replies = Vec::new();
    while peer
        .recv_until(Duration::from_secs(3), |m| {
            matches!(m, PeerMessage::Blocks { .. }).then_some(())
        })
        .await
        .is_ok()
    {
        replies.push(sent.elapsed());
    }
    ensure!(
        replies.len() == 30,
        "{} answers to 35 block requests",
        replies.len()
    );
    let late = replies
        .iter()
        .filter(|t| **t >= Duration::from_millis(900))
        .count();
    ensure!(
        late >= 10,
        "only {late} answers waited for the next second: {replies:?}"
    );
    let me = peer_id;
    let n = &net;
    eventually(
        Duration::from_secs(5),
        "the flooder is scored",
        || async move {
            let s = n.status("a").await?;
            Ok(s.peers.iter().any(|p| p.node_id == me && p.ban_score >= 50))
        },
    )
    .await?;

    // Garbage, then an oversized length prefix: each connection is closed, the node lives on.
    for bytes in [
        b"\x00\x00\x00\x05hello".to_vec(),
        0x7fff_ffffu32.to_be_bytes().to_vec(),
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        s.write_all(&bytes).await?;
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
        ensure!(closed.is_ok(), "the node kept a bad connection open");
        ensure!(total > 0, "the node closed without saying why");
    }
    // A silent client is dropped after the handshake timeout.
    let mut silent = tokio::net::TcpStream::connect(&addr).await?;
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    ensure!(waited.is_ok(), "a silent connection was kept for 10 s");
    ensure!(net.status("a").await?.tip.height == 0, "node still answers");
    Ok(())
}
