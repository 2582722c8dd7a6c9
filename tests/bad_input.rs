//! Bad input gets a clear error and a closed connection, never a crash or a hang.

mod support;

use std::time::Duration;

use anyhow::{ensure, Result};
use peerchain::record::NodeIdentity;
use peerchain::wire::{Envelope, ErrorCode, FrameCodec, Response};
use support::{Cluster, NETWORK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

/// Reads everything until EOF (bounded in time) and decodes the reply frames in it.
async fn replies(stream: &mut TcpStream) -> Result<Vec<Envelope<Response>>> {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await??;
    let mut codec = FrameCodec::<Envelope<Response>, ()>::default();
    let mut bytes = bytes::BytesMut::from(buf.as_slice());
    let mut out = Vec::new();
    while let Some(env) = codec.decode(&mut bytes)? {
        out.push(env);
    }
    Ok(out)
}

fn is_bad_request(env: &Envelope<Response>) -> bool {
    matches!(&env.body, Response::Error(e) if e.code == ErrorCode::BadRequest)
}

async fn still_serves(cluster: &Cluster) -> Result<()> {
    let info = cluster.info(1).await?;
    ensure!(info.members.len() == 3, "member 1 still answers");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unknown_frames_get_an_error_then_close() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bootstrap.toml");
    std::fs::write(&config, "idle_timeout = 1.0\n")?;
    let cluster = Cluster::start(3, &["--config", &support::path_str(&config)]).await?;
    let addr = cluster.addr(1);

    // A length prefix far over the 1 MiB limit.
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await?;
    let r = replies(&mut s).await?;
    ensure!(
        r.len() == 1 && r[0].id == 0 && is_bad_request(&r[0]),
        "oversized: {r:?}"
    );

    // A frame whose body is not MessagePack.
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1]).await?;
    let r = replies(&mut s).await?;
    ensure!(r.len() == 1 && is_bad_request(&r[0]), "garbage: {r:?}");

    // A well-formed frame with a message this version does not know.
    let unknown = rmp_serde::to_vec_named(&Envelope {
        id: 7,
        body: serde_json::json!({"launch_missiles": {"now": true}}),
    })?;
    let mut frame = (unknown.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&unknown);
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(&frame).await?;
    let r = replies(&mut s).await?;
    ensure!(r.len() == 1 && is_bad_request(&r[0]), "unknown: {r:?}");

    // A frame cut off by EOF.
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(&[0, 0, 0, 50, 1, 2]).await?;
    s.shutdown().await?;
    let r = replies(&mut s).await?;
    ensure!(r.len() == 1 && is_bad_request(&r[0]), "truncated: {r:?}");

    // A silent client is dropped after the idle timeout instead of holding a slot forever.
    let mut s = TcpStream::connect(&addr).await?;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await??;
    ensure!(n == 0, "silent connection closed");

    // A client that stops mid-frame is dropped too.
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(&[0, 0, 0, 100, 1]).await?;
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await??;
    ensure!(n == 0, "stalled connection closed");

    // Seed protocol: a bad JSON line gets a text error and a close.
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(b"{not json\n").await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text)).await??;
    ensure!(
        text.starts_with("Invalid request format"),
        "legacy garbage: {text:?}"
    );
    // ... and an over-long line is refused without buffering it all.
    let mut s = TcpStream::connect(&addr).await?;
    let long = vec![b'{'; 200 * 1024];
    let _ = s.write_all(&long).await;
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text)).await;
    ensure!(
        text.starts_with("Invalid request"),
        "legacy long line: {text:?}"
    );

    // Nothing of this hurt the member, and registered data is untouched.
    still_serves(&cluster).await?;
    let now = peerchain::unix_ms();
    let rec = NodeIdentity::generate().sign_record(NETWORK, "127.60.0.1:1", now, now + 60_000);
    cluster.client_of(1).register(rec).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_expiries_and_exclude_lists_are_refused_with_a_reason() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let mut client = cluster.client();
    let id = NodeIdentity::generate();
    let now = peerchain::unix_ms();
    for (addr, expiry) in [
        ("not an address", now + 60_000),
        ("127.0.0.1:0", now + 60_000),
        ("127.0.0.1:1", now - 1),
        ("127.0.0.1:1", now + 48 * 3_600_000),
    ] {
        let err = client
            .register(id.sign_record(NETWORK, addr, now, expiry))
            .await;
        match err {
            Err(peerchain::client::ClientError::Server(reply)) => {
                ensure!(reply.code == ErrorCode::InvalidRecord, "{addr}: {reply:?}");
                ensure!(!reply.message.is_empty());
            }
            other => anyhow::bail!("{addr}/{expiry}: expected a refusal, got {other:?}"),
        }
    }
    // GetPeers may exclude at most 64 addresses, so a request cannot buy unbounded work;
    // the check comes before a linearizable read is forwarded to the leader.
    let list = |n: usize| (0..n).map(|i| format!("10.0.{i}.1:1")).collect::<Vec<_>>();
    for linearizable in [false, true] {
        match client.get_peers(None, list(65), linearizable).await {
            Err(peerchain::client::ClientError::Server(reply)) => {
                ensure!(reply.code == ErrorCode::BadRequest, "{reply:?}");
                ensure!(
                    reply.message.contains("65") && reply.message.contains("at most 64"),
                    "{reply:?}"
                );
            }
            other => anyhow::bail!("exclude of 65: expected bad_request, got {other:?}"),
        }
        client.get_peers(None, list(64), linearizable).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_a_clear_error_while_reads_go_on() -> Result<()> {
    // Register while there is room, then restart every member with a free-space threshold no
    // disk meets: to the members, the disk is now full.
    let mut cluster = Cluster::start_without_dial_back(3, &[]).await?;
    let now = peerchain::unix_ms();
    let rec = NodeIdentity::generate().sign_record(NETWORK, "127.61.0.1:1", now, now + 3_600_000);
    cluster.client().register(rec).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("full.toml");
    std::fs::write(&config, "min_free_disk = 1000000000000000000\n")?;
    for id in 1..=3 {
        cluster.kill(id);
        cluster.members[id as usize - 1].extra_args =
            vec!["--config".into(), support::path_str(&config)];
        cluster.spawn(id, false)?;
    }
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let rec = NodeIdentity::generate().sign_record(NETWORK, "127.61.0.2:1", now, now + 3_600_000);
    match cluster.client().register(rec).await {
        Err(peerchain::client::ClientError::Server(reply)) => {
            ensure!(reply.code == ErrorCode::Storage, "{reply:?}");
            ensure!(
                reply.message.contains("disk"),
                "clear message: {}",
                reply.message
            );
        }
        other => anyhow::bail!("write on a full disk: expected a storage refusal, got {other:?}"),
    }
    // The seed protocol gets a readable refusal too.
    let mut s = TcpStream::connect(cluster.addr(2)).await?;
    s.write_all(b"{\"type\":\"REGISTER\",\"payload\":\"127.61.0.3:1\"}\n")
        .await?;
    let mut line = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut line)).await??;
    let text = String::from_utf8_lossy(&line[..n]).to_string();
    ensure!(text.starts_with("Error: disk nearly full"), "{text:?}");
    // Reads go on, on every member.
    for id in 1..=3 {
        let peers = cluster.client_of(id).get_peers(None, vec![], false).await?;
        ensure!(
            peers.iter().any(|p| p.address() == "127.61.0.1:1"),
            "member {id} still serves reads"
        );
    }
    Ok(())
}
