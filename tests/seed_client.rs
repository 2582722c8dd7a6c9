//! The seed chapter's client against a real 3-member cluster whose member 1 listens on
//! 127.0.0.1:4000 (the address `client.go` hard-codes as `localhost:4000`). The client is the
//! chapter's own `client.go`, built unchanged, when `../shared` sits beside the repository, and
//! otherwise our Rust client that sends the same bytes (`support::chapter_client`); the run
//! prints one line saying which.
//!
//! Go resolves `localhost` from /etc/hosts and sorts the answers by RFC 6724, so where
//! /etc/hosts also maps `::1` to localhost it dials `[::1]:4000` first; nothing listens there,
//! the connection is refused at once, and Go's dialer then starts the IPv4 fallback
//! immediately (`dialParallel` resets its fallback timer to 0 when the primary fails), so
//! listening on 127.0.0.1:4000 alone is enough. The test refuses to run if something else
//! holds `[::1]:4000`, since `client.go` would then talk to that instead.

mod support;

use std::net::TcpListener as StdListener;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use peerchain::record::NodeIdentity;
use peerchain::registry::PeerEntry;
use support::chapter_client::{go_json_string, request_line, ChapterClient};
use support::{eventually, Cluster, NETWORK};

const SEED_PORT: u16 = 4000;

/// Fails clearly if port 4000 is taken (client.go cannot be pointed anywhere else).
fn check_port_free() -> Result<()> {
    if let Err(e) = StdListener::bind(("127.0.0.1", SEED_PORT)) {
        bail!("127.0.0.1:{SEED_PORT} is not free ({e}); client.go always dials localhost:{SEED_PORT}, so stop whatever holds it");
    }
    if std::net::TcpStream::connect_timeout(
        &([0u16, 0, 0, 0, 0, 0, 0, 1], SEED_PORT).into(),
        Duration::from_millis(300),
    )
    .is_ok()
    {
        bail!("something listens on [::1]:{SEED_PORT}; client.go (dialing localhost) may reach it instead of the cluster");
    }
    Ok(())
}

/// Whether member `id`'s local operator listing holds a legacy entry for `address` (native
/// samples never carry legacy records).
async fn has_legacy(cluster: &Cluster, id: u64, address: &str) -> Result<bool> {
    let peers = cluster.admin_client_of(id)?.list_all(Some(1000)).await?;
    Ok(peers
        .iter()
        .any(|p| matches!(p, PeerEntry::Legacy(r) if r.address == address)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chapter_client_works_against_the_cluster() -> Result<()> {
    let test_started = Instant::now();
    let tools = tempfile::tempdir()?;
    let tools_dir = tools.path().to_path_buf();
    let build = tokio::task::spawn_blocking(move || ChapterClient::pick(&tools_dir));

    check_port_free()?;
    let addrs = vec![
        format!("127.0.0.1:{SEED_PORT}"),
        format!("127.0.0.1:{}", support::free_port()),
        format!("127.0.0.1:{}", support::free_port()),
    ];
    let cluster = Cluster::start_with_addrs(addrs, &[]).await?;
    let chapter = build.await??;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    eprintln!(
        "cluster up (leader: member {leader}) and seed tools built after {:?}",
        test_started.elapsed()
    );

    // The chapter's register / get_peers / remove round, with its exact replies.
    let addr = "localhost:3000";
    assert_eq!(
        chapter.run(&["register", addr]).await?,
        "Peer registered successfully"
    );

    let first = chapter.run(&["get_peers"]).await?;
    let entry = format!(r#"{{"address":"{addr}"}}"#);
    if !first.contains(&entry) {
        // Member 1 may be a follower that has not applied the entry yet.
        eprintln!("NOTE: get_peers right after register did not show {addr} yet: {first}");
        eventually(
            Duration::from_secs(5),
            "legacy get_peers showing the registration",
            || async { Ok(chapter.run(&["get_peers"]).await?.contains(&entry)) },
        )
        .await?;
    }
    let list: serde_json::Value =
        serde_json::from_str(&first).context("get_peers reply is not JSON")?;
    ensure!(
        list.is_array(),
        "get_peers reply is not a JSON array: {first}"
    );

    // Replicated: members 2 and 3 hold it in their own state (at least one is a follower
    // that did not take the write).
    for id in [2, 3] {
        eventually(
            Duration::from_secs(10),
            &format!("member {id} seeing {addr}"),
            || has_legacy(&cluster, id, addr),
        )
        .await?;
    }

    assert_eq!(
        chapter.run(&["register", addr]).await?,
        "Peer already registered"
    );
    assert_eq!(
        chapter.run(&["remove", addr]).await?,
        "Peer removed successfully"
    );
    assert_eq!(chapter.run(&["remove", addr]).await?, "Peer not found");
    eventually(
        Duration::from_secs(10),
        "member 2 dropping the removed peer",
        || async { Ok(!has_legacy(&cluster, 2, addr).await?) },
    )
    .await?;

    // A signed record cannot be removed (or overwritten) through the legacy protocol.
    let signed_addr = "localhost:3001";
    let identity = NodeIdentity::generate();
    let expires = peerchain::unix_ms() + 3_600_000;
    let record = identity.sign_record(NETWORK, signed_addr, peerchain::unix_ms(), expires);
    cluster.client_of(2).register(record.clone()).await?;

    let reply = chapter.run(&["remove", signed_addr]).await?;
    assert_ne!(
        reply, "Peer removed successfully",
        "a legacy REMOVE deleted a signed record"
    );
    assert_ne!(
        reply, "Peer not found",
        "the signed record was not visible to member 1"
    );
    let reply = chapter.run(&["register", signed_addr]).await?;
    assert_eq!(reply, "Peer already registered");

    // The operator listing: the signed record is still there, untouched. (Nothing listens
    // at its address, so no dial-back verifies it and samples never carry it.)
    let peers = cluster.admin_client_of(2)?.list_all(Some(1000)).await?;
    let stored = peers.iter().find(|p| p.address() == signed_addr);
    match stored {
        Some(PeerEntry::Signed(r)) => assert_eq!(r, &record, "the signed record changed"),
        other => panic!("signed record for {signed_addr} is gone or replaced: {other:?}"),
    }

    eprintln!("test body took {:?}", test_started.elapsed());
    Ok(())
}

/// Our stand-in for `client.go` sends what Go's `json.Marshal` sends.
#[test]
fn our_chapter_client_writes_go_json_marshal_bytes() {
    assert_eq!(
        request_line("REGISTER", "localhost:3000"),
        b"{\"type\":\"REGISTER\",\"payload\":\"localhost:3000\"}\n"
    );
    assert_eq!(
        request_line("GET_PEERS", ""),
        b"{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n"
    );
    assert_eq!(
        go_json_string("a<b>&\"\\\n\u{1}\u{2028}"),
        "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028\""
    );
}
