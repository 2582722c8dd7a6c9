//! Attacks on a node's address book, driven as an attacker would: a real `peerchain node`
//! process, scripted peers that complete the handshake from chosen loopback source
//! addresses (127.9.9.x and 127.8.8.x act as two other hosts), and the node's own
//! `ctl status` view of its book.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use peerchain::node::addr_group::AddrGroups;
use peerchain::node::book_limits::{MAX_PER_GOSSIP_SOURCE, MAX_PER_NET_GROUP};
use peerchain::record::NodeIdentity;
use peerchain::wire::{NodeStatus, PeerMessage, MAX_ADDRS_PER_MESSAGE};
use support::node_net::{NodeNet, TestPeer};

/// Connects from `from` as a new peer, waits for the node's GET_ADDR and answers it with
/// `addrs` (the node takes one solicited ADDR per connection).
async fn gossip(node: &str, from: &str, addrs: Vec<String>) -> Result<()> {
    let from: IpAddr = from.parse()?;
    let mut peer = TestPeer::connect_from(node, &NodeIdentity::generate(), Some(from)).await?;
    peer.recv_until(Duration::from_secs(5), |m| {
        matches!(m, PeerMessage::GetAddr).then_some(())
    })
    .await?;
    peer.send(PeerMessage::Addr { addrs }).await?;
    // Once the pong is back, the ADDR sent before the ping has been read and handed to the
    // peer manager.
    peer.send(PeerMessage::Ping { nonce: 99 }).await?;
    peer.recv_until(Duration::from_secs(5), |m| {
        matches!(m, PeerMessage::Pong { nonce: 99 }).then_some(())
    })
    .await
}

fn in_net(s: &NodeStatus, net: &str) -> usize {
    s.known_addresses
        .iter()
        .filter(|a| AddrGroups::of_str(a).is_some_and(|g| g.net == net))
        .count()
}

/// Waits (bounded) until the node's status satisfies `f`, returning the last status.
async fn status_until(
    net: &NodeNet,
    what: &str,
    f: impl Fn(&NodeStatus) -> bool,
) -> Result<NodeStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = net.status("a").await?;
        if f(&s) {
            return Ok(s);
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: not reached; {:?}",
            s.book_drops
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addr_flood_from_one_24_is_capped_and_other_subnets_still_get_in() -> Result<()> {
    let mut net = NodeNet::new()?;
    let node = net.spawn("a", &[])?;
    net.status_eventually("a").await?;
    // 3 connections x 1,000 addresses, all in 127.66.6.0/24 (250 hosts x 12 ports).
    let flood: Vec<String> = (0..3 * MAX_ADDRS_PER_MESSAGE)
        .map(|i| format!("127.66.6.{}:{}", i % 250 + 1, 20_000 + i / 250))
        .collect();
    let started = Instant::now();
    for chunk in flood.chunks(MAX_ADDRS_PER_MESSAGE) {
        gossip(&node, "127.9.9.1", chunk.to_vec()).await?;
    }
    let s = status_until(&net, "the flood was processed", |s| {
        s.book_drops.net_group_full >= (flood.len() - MAX_PER_NET_GROUP) as u64
    })
    .await?;
    let kept = in_net(&s, "127.66.6.0/24");
    eprintln!(
        "flood: {} addresses from one /24 in {:?}; book keeps {kept}, refused {:?}",
        flood.len(),
        started.elapsed(),
        s.book_drops
    );
    ensure!(
        kept <= MAX_PER_NET_GROUP && kept > 0,
        "{kept} addresses of the flooded /24 kept"
    );
    // Honest addresses from other subnets, told by a peer on another host, still get in.
    let honest: Vec<String> = (1..=20)
        .map(|i| format!("127.{}.{}.1:7000", 70 + i % 5, i))
        .collect();
    gossip(&node, "127.8.8.1", honest.clone()).await?;
    let s = status_until(&net, "honest addresses kept", |s| {
        honest.iter().all(|a| s.known_addresses.contains(a))
    })
    .await?;
    ensure!(in_net(&s, "127.66.6.0/24") <= MAX_PER_NET_GROUP);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_subnet_fills_at_most_its_share_of_the_book() -> Result<()> {
    let mut net = NodeNet::new()?;
    let node = net.spawn("a", &[])?;
    net.status_eventually("a").await?;
    // 2,000 addresses in 400 different /24s (5 each, within every subnet cap), told by
    // peers on two hosts of one /16 (127.9.0.0/16).
    let spread: Vec<String> = (0..2 * MAX_ADDRS_PER_MESSAGE)
        .map(|i| format!("127.{}.{}.{}:7000", 100 + i / 250, (i / 5) % 50, i % 5 + 1))
        .collect();
    for (k, chunk) in spread.chunks(MAX_ADDRS_PER_MESSAGE).enumerate() {
        gossip(&node, &format!("127.9.{}.1", k + 1), chunk.to_vec()).await?;
    }
    let s = status_until(&net, "the second batch was processed", |s| {
        s.book_drops.source_share_full > 0
    })
    .await?;
    let from_source = s
        .known_addresses
        .iter()
        .filter(|a| spread.contains(a))
        .count();
    eprintln!(
        "source share: {} offered by 127.9.0.0/16, {from_source} kept, refused {:?}",
        spread.len(),
        s.book_drops
    );
    ensure!(
        from_source <= MAX_PER_GOSSIP_SOURCE,
        "one source /16 added {from_source}"
    );
    ensure!(s.book_drops.source_share_full >= (spread.len() - MAX_PER_GOSSIP_SOURCE) as u64);
    // A peer in another /16 still adds its addresses.
    let other: Vec<String> = (1..=50).map(|i| format!("127.200.{i}.1:7000")).collect();
    gossip(&node, "127.8.8.1", other.clone()).await?;
    status_until(&net, "another source's addresses kept", |s| {
        other.iter().all(|a| s.known_addresses.contains(a))
    })
    .await?;
    Ok(())
}
