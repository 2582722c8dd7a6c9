//! The bootstrap cluster as users run it: real `peerchain bootstrap` processes on loopback.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use peerchain::client::{BootstrapClient, ClientError};
use peerchain::record::NodeIdentity;
use peerchain::registry::PeerEntry;
use peerchain::wire::ErrorCode;
use support::{addresses_on, eventually, holds_all, Cluster, NETWORK};

const HOUR_MS: u64 = 3_600_000;

fn signed(id: &NodeIdentity, addr: &str) -> peerchain::record::PeerRecord {
    let now = peerchain::unix_ms();
    id.sign_record(NETWORK, addr, now, now + HOUR_MS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_through_any_member_are_readable_from_every_member() -> Result<()> {
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let mut want = BTreeSet::new();
    for id in 1..=3u64 {
        for k in 0..3 {
            let addr = format!("127.0.{id}.{k}:7000");
            cluster
                .client_of(id)
                .register(signed(&NodeIdentity::generate(), &addr))
                .await?;
            want.insert(addr);
        }
    }
    for id in 1..=3 {
        // A linearizable read through any member sees every acknowledged write at once.
        let peers = cluster
            .client_of(id)
            .get_peers(Some(1000), vec![], true)
            .await?;
        let got: BTreeSet<String> = peers.iter().map(|p| p.address().to_string()).collect();
        assert_eq!(got, want, "linearizable read via member {id}");
        eventually(Duration::from_secs(5), "local state catches up", || {
            holds_all(&cluster, id, &want)
        })
        .await?;
    }
    // The caller is left out of its own sample, and the sample size is honoured.
    let excluded = "127.0.1.0:7000".to_string();
    let sample = cluster
        .client_of(2)
        .get_peers(Some(4), vec![excluded.clone()], false)
        .await?;
    assert_eq!(sample.len(), 4);
    assert!(sample.iter().all(|p| p.address() != excluded));
    let info = cluster.info(1).await?;
    assert_eq!(info.members.len(), 3);
    assert!(info.leader_id.is_some());
    assert_eq!(info.peer_count, 9);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registrations_survive_kill_9_of_the_leader() -> Result<()> {
    let mut cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let mut client = BootstrapClient::new(cluster.addrs(), support::quick_options());
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut failures = 0u32;
            for k in 0..100_000u32 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let addr = format!("127.10.{w}.{}:{}", k % 250, 1000 + k / 250);
                // A fresh key per address: a node holds one record, so re-using a key would
                // move its record rather than add one.
                match client
                    .register(signed(&NodeIdentity::generate(), &addr))
                    .await
                {
                    Ok(_) => {
                        acked.lock().expect("lock").insert(addr);
                    }
                    Err(_) => failures += 1,
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().expect("lock").len();
    cluster.kill(leader);
    let killed_at = Instant::now();
    let new_leader = cluster.wait_leader(Duration::from_secs(15)).await?;
    ensure!(new_leader != leader, "a survivor must take over");
    let at_election = acked.lock().expect("lock").len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after_election = acked.lock().expect("lock").len() - at_election;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failures = 0;
    for w in writers {
        failures += w.await?;
    }
    let acked = acked.lock().expect("lock").clone();
    ensure!(
        after_election > 0,
        "writes resumed under the new leader ({after_election} acknowledged in the 1.5 s after it was elected)"
    );
    eprintln!(
        "acked {} registrations ({} before the kill, {failures} failed calls); new leader {new_leader} after {:?}",
        acked.len(),
        before_kill,
        killed_at.elapsed()
    );
    // Every acknowledged registration is on both survivors ...
    for id in (1..=3).filter(|i| *i != leader) {
        eventually(
            Duration::from_secs(10),
            "survivor holds every acked write",
            || holds_all(&cluster, id, &acked),
        )
        .await?;
    }
    // ... and on the killed member once it is back.
    cluster.spawn(leader, false)?;
    eventually(
        Duration::from_secs(20),
        "restarted member holds every acked write",
        || holds_all(&cluster, leader, &acked),
    )
    .await?;
    // No phantom records: everything stored was written by us.
    let stored = addresses_on(&cluster, new_leader).await?;
    ensure!(
        stored.iter().all(|a| a.starts_with("127.10.")),
        "phantom record found"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_member_catches_up_from_a_snapshot() -> Result<()> {
    let mut cluster = Cluster::start_without_dial_back(3, &["--snapshot-every", "20"]).await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let lagging = (1..=3).find(|i| *i != leader).context("a follower")?;
    cluster.kill(lagging);
    let mut client = cluster.client();
    let mut want = BTreeSet::new();
    for k in 0..300u32 {
        let addr = format!("127.20.{}.{}:9000", k / 250, k % 250);
        client
            .register(signed(&NodeIdentity::generate(), &addr))
            .await?;
        want.insert(addr);
    }
    ensure!(
        cluster.log(leader).contains("built snapshot"),
        "leader built a snapshot"
    );
    cluster.spawn(lagging, false)?;
    eventually(Duration::from_secs(20), "lagging member catches up", || {
        holds_all(&cluster, lagging, &want)
    })
    .await?;
    ensure!(
        cluster.log(lagging).contains("installing snapshot"),
        "the lagging member caught up through a snapshot, not the log"
    );
    ensure!(
        cluster.log(leader).contains("wrote a snapshot to send"),
        "the leader wrote its registry out only to send it"
    );
    // No member keeps a snapshot file: the registry database is the snapshot, and what was
    // sent and received was deleted once used.
    for i in [leader, lagging] {
        let dir = cluster.member(i).data_dir.join("snapshots");
        let left: Vec<_> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        ensure!(left.is_empty(), "member {i} kept snapshot files: {left:?}");
    }
    // After the install it keeps applying new writes from the log.
    let addr = "127.20.9.9:9000".to_string();
    client
        .register(signed(&NodeIdentity::generate(), &addr))
        .await?;
    want.insert(addr);
    eventually(Duration::from_secs(10), "new write reaches it", || {
        holds_all(&cluster, lagging, &want)
    })
    .await?;
    // And a restart from its own snapshot + log keeps everything.
    cluster.kill(lagging);
    cluster.spawn(lagging, false)?;
    eventually(Duration::from_secs(20), "state survives restart", || {
        holds_all(&cluster, lagging, &want)
    })
    .await?;
    Ok(())
}

/// Registers `count` records through `cluster` from `writers` concurrent clients (so that
/// group commit packs many into each Raft entry); returns the acknowledged addresses.
async fn register_concurrently(
    cluster: &Cluster,
    writers: u32,
    count: u32,
    prefix: &str,
) -> Result<BTreeSet<String>> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut client = BootstrapClient::new(cluster.running_addrs(), support::quick_options());
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut acked = BTreeSet::new();
            for k in (w..count).step_by(writers as usize) {
                let addr = format!("{prefix}.{}.{}:9000", k / 250, k % 250);
                match client
                    .register(signed(&NodeIdentity::generate(), &addr))
                    .await
                {
                    Ok(_) => {}
                    // A retry of a registration that had landed: the very record is stored.
                    Err(ClientError::Server(e)) if e.code == ErrorCode::StaleSeq => {}
                    Err(e) => return Err(e),
                }
                acked.insert(addr);
            }
            Ok::<_, ClientError>(acked)
        }));
    }
    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await??);
    }
    Ok(acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_catches_up_with_append_entries_split_to_the_frame_limit() -> Result<()>
{
    // The smallest frame limit, and no snapshot: the follower must catch up from the log,
    // whose 64-entry AppendEntries batches are far larger than one 256 KiB frame.
    let mut cluster = Cluster::start_without_dial_back(
        3,
        &[
            "--max-frame-length",
            "262144",
            "--snapshot-every",
            "1000000",
        ],
    )
    .await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let lagging = (1..=3).find(|i| *i != leader).context("a follower")?;
    cluster.kill(lagging);
    let started = Instant::now();
    let first_index = cluster
        .client_of(leader)
        .cluster_info()
        .await?
        .last_applied_index;
    let want = register_concurrently(&cluster, 128, 3200, "127.21").await?;
    let last_index = cluster
        .client_of(leader)
        .cluster_info()
        .await?
        .last_applied_index;
    ensure!(want.len() == 3200, "every registration acknowledged");
    // Group commit: the 128 concurrent registrations share Raft entries (and fsyncs).
    let entries = last_index.unwrap_or(0) - first_index.unwrap_or(0);
    ensure!(
        entries * 4 < want.len() as u64,
        "group commit: {} registrations took {entries} Raft entries",
        want.len()
    );
    eprintln!(
        "registered {} in {:?}, Raft index {first_index:?} -> {last_index:?}",
        want.len(),
        started.elapsed()
    );
    let started = Instant::now();
    cluster.spawn(lagging, false)?;
    eventually(Duration::from_secs(30), "lagging member catches up", || {
        holds_all(&cluster, lagging, &want)
    })
    .await?;
    let caught_up = started.elapsed();
    ensure!(
        caught_up < Duration::from_secs(30),
        "caught up within the wait"
    );
    let log = cluster.log(leader);
    let splits = log
        .matches("append-entries larger than a frame; asking openraft to split it")
        .count();
    ensure!(
        splits > 0,
        "the leader split oversized AppendEntries (log has no split line)"
    );
    ensure!(
        !cluster.log(lagging).contains("frame larger than"),
        "the follower never saw an oversized frame"
    );
    eprintln!(
        "{} records replicated; the leader split AppendEntries {splits} times",
        want.len()
    );
    Ok(())
}

fn ctl_ok(out: &std::process::Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        out.status.success(),
        "ctl failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourth_member_added_as_learner_promoted_then_a_member_removed() -> Result<()> {
    let mut cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let secret = support::path_str(&cluster.secret_file);
    cluster
        .client()
        .register(signed(&NodeIdentity::generate(), "127.30.0.1:1"))
        .await?;
    let addr4 = cluster.spawn_joining(4)?;
    ctl_ok(&cluster.ctl(&[
        "--cluster-secret-file",
        &secret,
        "cluster",
        "add-learner",
        "4",
        &addr4,
    ])?)?;
    let info = cluster.info(1).await?;
    ensure!(
        info.members.iter().any(|m| m.id == 4 && !m.voter),
        "4 is a learner: {info:?}"
    );
    ctl_ok(&cluster.ctl(&["--cluster-secret-file", &secret, "cluster", "promote", "4"])?)?;
    let info = cluster.info(2).await?;
    ensure!(
        info.members.iter().filter(|m| m.voter).count() == 4,
        "4 voters: {info:?}"
    );
    // The new member holds the data written before it joined.
    let want = BTreeSet::from(["127.30.0.1:1".to_string()]);
    eventually(Duration::from_secs(10), "member 4 has the registry", || {
        holds_all(&cluster, 4, &want)
    })
    .await?;
    // Remove the current leader: the rest elect a new one and keep serving writes.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    ctl_ok(&cluster.ctl(&[
        "--cluster-secret-file",
        &secret,
        "cluster",
        "remove",
        &leader.to_string(),
    ])?)?;
    let json = ctl_ok(&cluster.ctl(&["--json", "cluster"])?)?;
    ensure!(json.contains("\"members\""), "json output: {json}");
    let survivor = (1..=4).find(|i| *i != leader).context("survivor")?;
    eventually(
        Duration::from_secs(15),
        "membership without the removed member",
        || async {
            let info = cluster.info(survivor).await?;
            Ok(info.members.len() == 3
                && info.members.iter().all(|m| m.id != leader)
                && info.leader_id.is_some_and(|l| l != leader))
        },
    )
    .await?;
    cluster.kill(leader);
    cluster
        .client()
        .register(signed(&NodeIdentity::generate(), "127.30.0.2:1"))
        .await?;
    // Without the secret, membership changes are refused.
    let denied = cluster.ctl(&["cluster", "remove", "2"])?;
    ensure!(
        !denied.status.success(),
        "membership change without the secret must fail"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly_and_state_survives() -> Result<()> {
    let mut cluster = Cluster::start_without_dial_back(3, &[]).await?;
    cluster
        .client()
        .register(signed(&NodeIdentity::generate(), "127.40.0.1:1"))
        .await?;
    for id in 1..=3 {
        let status = cluster.terminate(id)?;
        ensure!(status.success(), "member {id} exited with {status}");
    }
    for id in 1..=3 {
        cluster.spawn(id, false)?;
    }
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let peers = cluster.client().get_peers(None, vec![], true).await?;
    ensure!(
        peers.iter().any(|p| p.address() == "127.40.0.1:1"),
        "record survived a full restart"
    );
    Ok(())
}

fn server_code(e: ClientError) -> Option<peerchain::wire::ErrorCode> {
    match e {
        ClientError::Server(reply) => Some(reply.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_stale_requests_are_refused() -> Result<()> {
    use peerchain::wire::ErrorCode;
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let mut client = cluster.client();
    let owner = NodeIdentity::generate();
    let thief = NodeIdentity::generate();
    let addr = "127.50.0.1:7000";
    let now = peerchain::unix_ms();
    client
        .register(owner.sign_record(NETWORK, addr, now, now + HOUR_MS))
        .await?;
    // Same or older seq: refused.
    let same = client
        .register(owner.sign_record(NETWORK, addr, now, now + HOUR_MS))
        .await;
    assert_eq!(same.err().and_then(server_code), Some(ErrorCode::StaleSeq));
    let older = client
        .register(owner.sign_record(NETWORK, addr, now - 1, now + HOUR_MS))
        .await;
    assert_eq!(older.err().and_then(server_code), Some(ErrorCode::StaleSeq));
    // Another key cannot take the address while the record lives.
    let taken = client
        .register(thief.sign_record(NETWORK, addr, now + 5, now + HOUR_MS))
        .await;
    assert_eq!(taken.err().and_then(server_code), Some(ErrorCode::NotOwner));
    // Deregistration signed by the wrong key: refused.
    let wrong_key = client
        .deregister(thief.sign_deregistration(NETWORK, addr, now + 10))
        .await;
    assert_eq!(
        wrong_key.err().and_then(server_code),
        Some(ErrorCode::NotOwner)
    );
    // Claiming the owner's id with the thief's key does not verify.
    let mut forged = thief.sign_deregistration(NETWORK, addr, now + 10);
    forged.node_id = owner.node_id();
    assert_eq!(
        client.deregister(forged).await.err().and_then(server_code),
        Some(ErrorCode::InvalidRecord)
    );
    forged = thief.sign_deregistration(NETWORK, addr, now + 10);
    forged.node_id = owner.node_id();
    forged.public_key = owner.public_key().to_vec();
    assert_eq!(
        client.deregister(forged).await.err().and_then(server_code),
        Some(ErrorCode::BadSignature)
    );
    // A tampered record and a record for another network do not verify.
    let mut tampered = owner.sign_record(NETWORK, addr, now + 20, now + HOUR_MS);
    tampered.expires_at_ms += 1;
    assert_eq!(
        client.register(tampered).await.err().and_then(server_code),
        Some(ErrorCode::BadSignature)
    );
    let other_net = owner.sign_record("other-network", addr, now + 20, now + HOUR_MS);
    assert_eq!(
        client.register(other_net).await.err().and_then(server_code),
        Some(ErrorCode::BadSignature)
    );
    // A replayed old deregistration cannot remove a newer record.
    let old_dereg = owner.sign_deregistration(NETWORK, addr, now - 5);
    assert_eq!(
        client
            .deregister(old_dereg)
            .await
            .err()
            .and_then(server_code),
        Some(ErrorCode::StaleSeq)
    );
    // The record is intact, and its owner can still remove it.
    let peers = client.get_peers(None, vec![], true).await?;
    ensure!(peers
        .iter()
        .any(|p| matches!(p, PeerEntry::Signed(r) if r.node_id == owner.node_id())));
    client
        .deregister(owner.sign_deregistration(NETWORK, addr, now + 30))
        .await?;
    // A record captured before the deregistration cannot bring the owner back: the cluster
    // keeps the owner's seq after the record is gone.
    let captured = owner.sign_record(NETWORK, addr, now, now + HOUR_MS);
    let replay = client.register(captured).await;
    assert_eq!(
        replay.err().and_then(server_code),
        Some(ErrorCode::StaleSeq)
    );
    let peers = client.get_peers(None, vec![], true).await?;
    ensure!(peers.iter().all(|p| p.address() != addr), "replay stored");
    // The owner itself comes back with a newer seq.
    client
        .register(owner.sign_record(NETWORK, addr, now + 31, now + HOUR_MS))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_without_the_cluster_secret_are_refused() -> Result<()> {
    use peerchain::client::FrameConnection;
    use peerchain::raft::ClusterSecret;
    use peerchain::wire::{ErrorCode, Request};
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let term_before = cluster.info(1).await?.term;
    // A vote request with a huge term would depose the leader if it were accepted.
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(term_before + 100, 9), None);
    let mut conn = FrameConnection::connect(&cluster.addr(1), Duration::from_secs(1)).await?;
    let refused = conn
        .call(Request::Vote(vote.clone()), Duration::from_secs(2))
        .await;
    assert_eq!(
        refused.err().and_then(server_code),
        Some(ErrorCode::Unauthenticated)
    );
    // The connection is closed after the refusal.
    assert!(conn
        .call(Request::ClusterInfo, Duration::from_secs(2))
        .await
        .is_err());
    // Every other member-only request is refused the same way, each on a fresh connection:
    // log entries that would overwrite the log, a snapshot that would replace the registry,
    // and a forwarded batch that would expire every record or plant one with a spoofed IP.
    let vote9 = openraft::Vote::new_committed(term_before + 100, 9);
    let forged_log_id =
        openraft::LogId::new(openraft::CommittedLeaderId::new(term_before + 100, 9), 1);
    let rpcs = vec![
        Request::AppendEntries(openraft::raft::AppendEntriesRequest {
            vote: vote9,
            prev_log_id: None,
            entries: vec![openraft::Entry {
                log_id: forged_log_id,
                payload: openraft::EntryPayload::Blank,
            }],
            leader_commit: Some(forged_log_id),
        }),
        Request::InstallSnapshot(openraft::raft::InstallSnapshotRequest {
            vote: vote9,
            meta: openraft::SnapshotMeta {
                last_log_id: Some(forged_log_id),
                last_membership: openraft::StoredMembership::default(),
                snapshot_id: "forged".into(),
            },
            offset: 0,
            data: b"not a snapshot".to_vec(),
            done: true,
        }),
        Request::Forward {
            commands: vec![
                peerchain::registry::RegistryCommand::Expire { limit: 1000 },
                peerchain::registry::RegistryCommand::RegisterLegacy {
                    address: "127.71.0.1:1".into(),
                    source_ip: "127.0.0.9".into(),
                    expires_at_ms: u64::MAX,
                    resolved: None,
                    limits: Default::default(),
                },
                // Only members may vouch for a record (the dial-back's command).
                peerchain::registry::RegistryCommand::MarkVerified {
                    address: "127.71.0.2:1".into(),
                    node_id: NodeIdentity::generate().node_id(),
                    seq: 1,
                },
            ],
        },
    ];
    for rpc in rpcs {
        let what = format!("{rpc:?}").chars().take(40).collect::<String>();
        let mut conn = FrameConnection::connect(&cluster.addr(1), Duration::from_secs(1)).await?;
        let refused = conn.call(rpc, Duration::from_secs(2)).await;
        assert_eq!(
            refused.err().and_then(server_code),
            Some(ErrorCode::Unauthenticated),
            "{what}"
        );
    }
    // A wrong secret fails the handshake.
    let mut conn = FrameConnection::connect(&cluster.addr(1), Duration::from_secs(1)).await?;
    let wrong = ClusterSecret::new(b"not-the-cluster-secret-at-all")?;
    let auth = conn.authenticate(&wrong, Duration::from_secs(2)).await;
    assert!(matches!(auth, Err(ClientError::Auth { .. })), "{auth:?}");
    // Admin requests need the secret too.
    let mut conn = FrameConnection::connect(&cluster.addr(2), Duration::from_secs(1)).await?;
    let admin = conn
        .call(
            Request::RemoveMember { member_id: 1 },
            Duration::from_secs(2),
        )
        .await;
    assert_eq!(
        admin.err().and_then(server_code),
        Some(ErrorCode::Unauthenticated)
    );
    let info = cluster.info(1).await?;
    assert_eq!(info.members.len(), 3);
    assert!(
        info.term < term_before + 100,
        "the forged requests changed nothing"
    );
    ensure!(
        addresses_on(&cluster, 1).await?.is_empty(),
        "the forwarded batch planted no record"
    );
    // The cluster still works.
    let now = peerchain::unix_ms();
    cluster
        .client()
        .register(NodeIdentity::generate().sign_record(NETWORK, "127.71.0.2:1", now, now + HOUR_MS))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_dropped_on_every_member() -> Result<()> {
    let cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let now = peerchain::unix_ms();
    let long = NodeIdentity::generate().sign_record(NETWORK, "127.70.0.2:1", now, now + HOUR_MS);
    cluster.client().register(long).await?;
    // Signed only now that the cluster has taken a write, so that a slow
    // start cannot let the short record expire before it is registered.
    let now = peerchain::unix_ms();
    let short = NodeIdentity::generate().sign_record(NETWORK, "127.70.0.1:1", now, now + 3000);
    cluster.client().register(short).await?;
    for id in 1..=3 {
        eventually(
            Duration::from_secs(20),
            "the expired record is removed",
            || async {
                let have = addresses_on(&cluster, id).await?;
                Ok(!have.contains("127.70.0.1:1") && have.contains("127.70.0.2:1"))
            },
        )
        .await?;
        assert_eq!(cluster.info(id).await?.peer_count, 1);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_falls_back_past_a_dead_member() -> Result<()> {
    let mut cluster = Cluster::start_without_dial_back(3, &[]).await?;
    cluster.kill(1);
    cluster.wait_leader(Duration::from_secs(15)).await?;
    // The dead member is first in the list ctl is given.
    let t = Instant::now();
    let out = ctl_ok(&cluster.ctl(&["register", "127.80.0.1:1"])?)?;
    ensure!(out.contains("registered 127.80.0.1:1"), "{out}");
    let out = ctl_ok(&cluster.ctl(&["--json", "peers"])?)?;
    ensure!(out.contains("127.80.0.1:1"), "{out}");
    ensure!(
        t.elapsed() < Duration::from_secs(10),
        "fallback took {:?}",
        t.elapsed()
    );
    Ok(())
}
