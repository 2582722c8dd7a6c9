//! Subnet-fair samples, host names grouped by their resolved address, and dial-back
//! verification, against real `peerchain bootstrap` (and `peerchain node`) processes.
//!
//! - The flood: ten thousand peers in one /24 and a hundred in other /16s, through
//!   both the seed's `GET_PEERS` and native `GetPeers`; the two pools never mix.
//! - A thousand host names that resolve into one /24 count as one group.
//! - Dial-back: unreachable records are listed, never served; a real node is served once
//!   it proved its key; a listener with another key never is; the dial rate holds.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use futures::{SinkExt, StreamExt};
use peerchain::node::Handshake;
use peerchain::record::NodeIdentity;
use peerchain::registry::PeerEntry;
use peerchain::wire::{EntryDetail, FrameCodec, PeerMessage, Tip};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

use support::node_net::NodeNet;
use support::registrations::{
    flood_addresses, is_diverse, legacy_get_peers, legacy_register_all, record, register_all,
    wait_applied_everywhere,
};
use support::{eventually, free_port, Cluster, NETWORK};

/// Peers in the flooded /24, per pool.
const FLOOD: usize = 10_000;
/// Peers each in a /16 of its own, per pool.
const DIVERSE: usize = 100;
/// Concurrent registering connections.
const WRITERS: usize = 32;
/// Samples checked per pool.
const SAMPLES: usize = 20;

/// Every entry of member `id`'s operator listing, with what the registry keeps about it.
async fn listing(cluster: &Cluster, id: u64) -> Result<Vec<(PeerEntry, EntryDetail)>> {
    let mut client = cluster.admin_client_of(id)?;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client.list_page(after, Some(1000)).await?;
        ensure!(page.details.len() == page.peers.len(), "a detail per entry");
        all.extend(page.peers.into_iter().zip(page.details));
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(all),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_slash_24_captures_neither_pool_and_the_pools_never_mix() -> Result<()> {
    // The native flood runs with dial-back off: twenty thousand responders would test the
    // machine, not the sampler. Legacy records never need a dial-back.
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let started = Instant::now();
    let legacy = flood_addresses(FLOOD, 20_000, DIVERSE, 1);
    let signed = flood_addresses(FLOOD, 40_000, DIVERSE, 2);
    legacy_register_all(&cluster.addr(1), legacy.clone(), WRITERS).await?;
    register_all(&cluster, signed.clone(), WRITERS).await?;
    wait_applied_everywhere(
        &cluster,
        2 * (FLOOD + DIVERSE) as u64,
        Duration::from_secs(180),
    )
    .await?;
    eprintln!(
        "registered {} records in {:?}",
        2 * (FLOOD + DIVERSE),
        started.elapsed()
    );
    let legacy_set: BTreeSet<&String> = legacy.iter().collect();
    let signed_set: BTreeSet<&String> = signed.iter().collect();

    let mut legacy_diverse = Vec::new();
    for s in 0..SAMPLES {
        let got = legacy_get_peers(&cluster.addr(1 + s as u64 % 3)).await?;
        ensure!(
            got.len() == 1000,
            "GET_PEERS answers 1000, got {}",
            got.len()
        );
        ensure!(
            got.iter().all(|a| legacy_set.contains(a)),
            "a signed record in GET_PEERS"
        );
        // The first 100 drawn are what a chapter client that dials 100 would use; the whole
        // answer holds every diverse peer.
        legacy_diverse.push(got.iter().filter(|a| is_diverse(a)).count());
    }
    let mut native_diverse = Vec::new();
    for s in 0..SAMPLES {
        let peers = cluster
            .client_of(1 + s as u64 % 3)
            .get_peers(Some(100), vec![], false)
            .await?;
        ensure!(peers.len() == 100, "a full sample, got {}", peers.len());
        for p in &peers {
            ensure!(
                matches!(p, PeerEntry::Signed(_)) && signed_set.contains(&p.address().to_string()),
                "a legacy record in a native sample: {p:?}"
            );
        }
        native_diverse.push(peers.iter().filter(|p| is_diverse(p.address())).count());
    }
    let legacy_first_100 = {
        let got = legacy_get_peers(&cluster.addr(2)).await?;
        got.iter().take(100).filter(|a| is_diverse(a)).count()
    };
    eprintln!(
        "diverse peers per sample: legacy GET_PEERS (of 1000) {legacy_diverse:?}, \
         native GetPeers (of 100) {native_diverse:?}, first 100 of one GET_PEERS \
         {legacy_first_100}"
    );
    ensure!(
        legacy_diverse.iter().all(|n| *n == DIVERSE),
        "{legacy_diverse:?}"
    );
    ensure!(
        native_diverse.iter().all(|n| *n >= 90),
        "{native_diverse:?}"
    );
    ensure!(legacy_first_100 >= 90, "{legacy_first_100}");
    Ok(())
}

/// Host names that the system resolver maps into 127.0.0.0/24 without any DNS: the numeric
/// forms `inet_aton` accepts (`127.5`, `127.0.5`, `2130706437`, `0x7f000005`), which are
/// names to the registry (they are not dotted quads) and 127.0.0.5 to the resolver.
fn names_into_one_slash_24() -> Vec<String> {
    (0..256u32)
        .flat_map(|k| {
            [
                format!("127.{k}:7000"),
                format!("127.0.{k}:7000"),
                format!("{}:7000", 0x7f00_0000 + k),
                format!("0x{:x}:7000", 0x7f00_0000 + k),
            ]
        })
        .take(1000)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_names_resolving_into_one_slash_24_count_as_one_group() -> Result<()> {
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let names = names_into_one_slash_24();
    ensure!(names.iter().collect::<BTreeSet<_>>().len() == 1000);
    let lonely: Vec<String> = (0..50)
        .map(|i| format!("127.{}.0.1:7000", 20 + i))
        .collect();
    register_all(&cluster, names.clone(), WRITERS).await?;
    register_all(&cluster, lonely.clone(), WRITERS).await?;
    wait_applied_everywhere(&cluster, 1050, Duration::from_secs(180)).await?;
    let listed = listing(&cluster, 2).await?;
    let name_groups: BTreeSet<&str> = listed
        .iter()
        .filter(|(e, _)| names.contains(&e.address().to_string()))
        .map(|(_, d)| d.group.as_str())
        .collect();
    ensure!(
        name_groups == BTreeSet::from(["127.0.0/24"]),
        "the names are grouped by their address: {name_groups:?}"
    );
    // 51 coarse groups: 50 lonely /16s and 127.0/16 holding all thousand names. A sample of
    // 60 takes every lonely peer; with a group per name it would take about three.
    let mut lonely_per_sample = Vec::new();
    for s in 0..SAMPLES {
        let peers = cluster
            .client_of(1 + s as u64 % 3)
            .get_peers(Some(60), vec![], false)
            .await?;
        ensure!(peers.len() == 60);
        lonely_per_sample.push(
            peers
                .iter()
                .filter(|p| lonely.contains(&p.address().to_string()))
                .count(),
        );
    }
    eprintln!("lonely peers per sample of 60: {lonely_per_sample:?}");
    ensure!(
        lonely_per_sample.iter().all(|n| *n == 50),
        "{lonely_per_sample:?}"
    );
    Ok(())
}

/// Answers the node handshake as a listener holding `identity`, counting the connections it
/// accepts. With `claim`, it shows that key in its Hello but signs with its own (someone
/// claiming a key it does not hold).
async fn responder(
    identity: Arc<NodeIdentity>,
    claim: Option<[u8; 32]>,
) -> Result<(String, Arc<Mutex<u32>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let accepted = Arc::new(Mutex::new(0u32));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            *count.lock().expect("lock") += 1;
            let identity = identity.clone();
            tokio::spawn(async move {
                let mut framed =
                    Framed::new(stream, FrameCodec::<PeerMessage, PeerMessage>::new(65_536));
                let Some(Ok(PeerMessage::Hello(theirs))) = framed.next().await else {
                    return;
                };
                let genesis = peerchain::chain::genesis(NETWORK).hash;
                let ours = Handshake::new(NETWORK, genesis, theirs.difficulty);
                let tip = Tip {
                    height: 0,
                    hash: genesis,
                    total_work: 0,
                };
                let mut hello = ours.hello(&identity, None, tip);
                if let Some(key) = claim {
                    hello.public_key = key;
                }
                let signature = ours.prove(&identity, &theirs);
                let _ = framed.send(PeerMessage::Hello(hello)).await;
                let _ = framed.send(PeerMessage::HelloProof { signature }).await;
                let _ = framed.next().await;
            });
        }
    });
    Ok((addr, accepted))
}

fn served(peers: &[PeerEntry], address: &str) -> bool {
    peers.iter().any(|p| p.address() == address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_records_whose_node_proves_its_key_at_their_address_are_served() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let mut client = cluster.client();
    // Nothing listens here.
    let unreachable = format!("127.0.0.1:{}", free_port());
    client
        .register(record(&NodeIdentity::generate(), &unreachable))
        .await?;
    // A listener that shows another key, and one that shows the record's key but cannot
    // sign with it.
    let owner = NodeIdentity::generate();
    let (other_key, other_hits) = responder(Arc::new(NodeIdentity::generate()), None).await?;
    client.register(record(&owner, &other_key)).await?;
    let owner2 = NodeIdentity::generate();
    let (forged, forged_hits) = responder(
        Arc::new(NodeIdentity::generate()),
        Some(owner2.public_key()),
    )
    .await?;
    client.register(record(&owner2, &forged)).await?;
    // A listener that holds the record's key (a minimal honest node).
    let honest_id = Arc::new(NodeIdentity::generate());
    let (honest, honest_hits) = responder(honest_id.clone(), None).await?;
    client.register(record(&honest_id, &honest)).await?;
    // And a real node process.
    let mut net = NodeNet::new()?;
    let started = Instant::now();
    let node = net.spawn("a", &["--seeds", &cluster.addrs().join(",")])?;
    let c = &cluster;
    let n = node.as_str();
    eventually(
        Duration::from_secs(15),
        "the real node is verified and served",
        || async move {
            Ok(served(
                &c.client().get_peers(Some(1000), vec![], true).await?,
                n,
            ))
        },
    )
    .await?;
    let node_took = started.elapsed();
    let h = honest.as_str();
    eventually(
        Duration::from_secs(10),
        "the honest listener is served",
        || async move {
            Ok(served(
                &c.client().get_peers(Some(1000), vec![], true).await?,
                h,
            ))
        },
    )
    .await?;
    // Give the dial-back time for every record, then look many times.
    let hits = (other_hits.clone(), forged_hits.clone());
    eventually(Duration::from_secs(10), "both impostors were dialled", || {
        let hits = hits.clone();
        async move { Ok(*hits.0.lock().expect("lock") >= 1 && *hits.1.lock().expect("lock") >= 1) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for s in 0..SAMPLES {
        let peers = cluster
            .client_of(1 + s as u64 % 3)
            .get_peers(Some(1000), vec![], false)
            .await?;
        for bad in [&unreachable, &other_key, &forged] {
            ensure!(!served(&peers, bad), "{bad} served without proof");
        }
    }
    let listed = listing(&cluster, 1).await?;
    for (address, want) in [
        (&unreachable, false),
        (&other_key, false),
        (&forged, false),
        (&node, true),
        (&honest, true),
    ] {
        let found = listed.iter().find(|(e, _)| e.address() == address);
        match found {
            Some((_, d)) => ensure!(d.verified == want, "{address}: verified {}", d.verified),
            None => bail!("{address} is not listed"),
        }
    }
    // The operator sees the same in `ctl peers --all`.
    let secret = support::path_str(&cluster.secret_file);
    let out = cluster.ctl(&["--cluster-secret-file", &secret, "peers", "--all"])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(out.status.success(), "ctl peers --all: {text}");
    let row = |address: &str| {
        text.lines()
            .find(|l| l.starts_with(address))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    ensure!(row(&node).get(4) == Some(&"yes"), "{text}");
    ensure!(row(&unreachable).get(4) == Some(&"no"), "{text}");
    ensure!(row(&node).get(5) == Some(&"127.0.0/24"), "{text}");
    eprintln!(
        "real node served {node_took:?} after start; honest listener dialled {} times, \
         impostors {} and {} times",
        honest_hits.lock().expect("lock"),
        other_hits.lock().expect("lock"),
        forged_hits.lock().expect("lock")
    );
    Ok(())
}

/// Largest number of `times` within any window of `width`.
fn busiest(times: &[Instant], width: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| **t - sorted[i] < width)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dial_back_rate_limit_holds_under_a_flood_of_unverifiable_records() -> Result<()> {
    const RECORDS: usize = 200;
    const RATE: u32 = 5;
    const WATCH: Duration = Duration::from_secs(8);
    let cluster = Cluster::start(3, &["--dial-back-rate", &RATE.to_string()]).await?;
    // Listeners that accept, note the time and hang up: every dial fails and is retried.
    // They sit on their own loopback addresses: on a machine where other suites run, a
    // port of 127.0.0.1 may be one that another suite's process still dials.
    let accepts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut addresses = Vec::new();
    for i in 0..RECORDS {
        let listener = TcpListener::bind(format!("127.88.{}.{}:0", i / 250, i % 250 + 1)).await?;
        addresses.push(listener.local_addr()?.to_string());
        let accepts = accepts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepts.lock().expect("lock").push(Instant::now());
                drop(stream);
            }
        });
    }
    register_all(&cluster, addresses.clone(), WRITERS).await?;
    let watch_from = Instant::now();
    tokio::time::sleep(WATCH).await;
    let seen: Vec<Instant> = accepts
        .lock()
        .expect("lock")
        .iter()
        .copied()
        .filter(|t| *t >= watch_from)
        .collect();
    let peak = busiest(&seen, Duration::from_secs(1));
    let per_second = seen.len() as f64 / WATCH.as_secs_f64();
    eprintln!(
        "dial-backs at --dial-back-rate {RATE}: {} in {WATCH:?} ({per_second:.1}/s), \
         busiest second {peak}",
        seen.len()
    );
    // The pacing interval allows one tick at once after an idle spell.
    ensure!(peak as u32 <= RATE + 1, "busiest second had {peak} dials");
    ensure!(
        per_second >= f64::from(RATE) * 0.6,
        "it dials at about the rate: {per_second:.1}/s"
    );
    let peers = cluster
        .client()
        .get_peers(Some(1000), vec![], false)
        .await?;
    ensure!(
        peers.is_empty(),
        "nothing proved a key, nothing is served: {peers:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_address_is_tried_three_times_with_backoff_then_left_alone() -> Result<()> {
    const WATCH: Duration = Duration::from_secs(12);
    let cluster = Cluster::start(3, &[]).await?;
    // Accepts, notes the time, hangs up: the handshake never completes.
    let listener = TcpListener::bind("127.88.1.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let accepts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = accepts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.lock().expect("lock").push(Instant::now());
            drop(stream);
        }
    });
    let registered = Instant::now();
    cluster
        .client()
        .register(record(&NodeIdentity::generate(), &address))
        .await?;
    tokio::time::sleep(WATCH).await;
    let times = accepts.lock().expect("lock").clone();
    let offsets: Vec<f64> = times
        .iter()
        .map(|t| (*t - registered).as_secs_f64())
        .collect();
    eprintln!("dial-backs of one unanswering address at {offsets:.2?} s after registering");
    ensure!(times.len() == 3, "3 tries in {WATCH:?}, got {offsets:?}");
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    // 2 s then 4 s, give or take the 0.5 s between looks at the queue.
    ensure!((1.9..=3.2).contains(&gaps[0]), "first backoff {gaps:?}");
    ensure!((3.9..=5.2).contains(&gaps[1]), "second backoff {gaps:?}");
    let listed = listing(&cluster, 1).await?;
    ensure!(
        listed
            .iter()
            .any(|(e, d)| e.address() == address && !d.verified),
        "listed, unverified"
    );
    Ok(())
}
