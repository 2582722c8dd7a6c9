//! Writes seed inputs for the `cargo fuzz` targets (valid messages, lines, records, blocks
//! and a snapshot), so that the fuzzer starts from the formats instead of from nothing:
//!
//! ```sh
//! cargo run --example fuzz_seeds -- fuzz/corpus-raw
//! ```

use std::path::Path;

use bytes::BytesMut;
use peerchain::chain::{genesis, mine};
use peerchain::fuzzing::FUZZ_NETWORK;
use peerchain::raft::snapshot_file::SnapshotWriter;
use peerchain::record::NodeIdentity;
use peerchain::registry::{HostGroup, PeerEntry, SnapshotItem, StoredEntry, Tombstone};
use peerchain::wire::{
    ClusterInfo, Envelope, ErrorCode, ErrorReply, FrameCodec, PeerMessage, Request, Response, Tip,
};
use serde::Serialize;
use tokio_util::codec::Encoder;

fn frame<T: Serialize>(value: T) -> anyhow::Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    FrameCodec::<T, T>::default().encode(value, &mut buf)?;
    Ok(buf.to_vec())
}

fn write(dir: &Path, target: &str, seeds: Vec<Vec<u8>>) -> anyhow::Result<()> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    for (i, seed) in seeds.into_iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed)?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus-raw".into());
    let out = Path::new(&out);
    let id = NodeIdentity::from_secret([7; 32]);
    let record = id.sign_record(FUZZ_NETWORK, "127.0.0.1:7000", 5, 1_000);
    let dereg = id.sign_deregistration(FUZZ_NETWORK, "127.0.0.1:7000", 6);
    let g = genesis(FUZZ_NETWORK);
    let b1 = mine(&g, b"tx".to_vec(), 10, 4, 0, 1 << 16).ok_or(anyhow::anyhow!("mine"))?;
    let tip = Tip {
        height: 1,
        hash: b1.hash,
        total_work: 17,
    };
    let requests = [
        Request::Register {
            record: record.clone(),
        },
        Request::Deregister {
            deregistration: dereg.clone(),
        },
        Request::GetPeers {
            limit: Some(10),
            exclude: vec!["127.0.0.1:1".into()],
            linearizable: true,
        },
        Request::ListPeers {
            after: Some("a:1".into()),
            limit: None,
        },
        Request::ClusterInfo,
        Request::AuthHello {
            client_nonce: vec![1; 32],
        },
        Request::Promote { member_id: 2 },
    ];
    let mut wire = Vec::new();
    for r in requests {
        wire.push(frame(Envelope { id: 1, body: r })?);
    }
    let responses = [
        Response::Registered {
            replaced: true,
            moved_from: None,
        },
        Response::Removed,
        Response::ClusterInfo(ClusterInfo {
            wire_version: 1,
            network_id: FUZZ_NETWORK.into(),
            member_id: 1,
            leader_id: Some(1),
            leader_addr: Some("127.0.0.1:4000".into()),
            term: 3,
            members: Vec::new(),
            last_applied_index: Some(9),
            peer_count: 2,
            cluster_time_ms: Some(1_700_000_000_000),
            millis_since_quorum_ack: Some(12),
            ready: Some(true),
            not_ready_reasons: Vec::new(),
        }),
        Response::Error(ErrorReply::new(ErrorCode::NoLeader, "later")),
        Response::Done,
    ];
    for r in responses {
        wire.push(frame(Envelope { id: 1, body: r })?);
    }
    let messages = [
        PeerMessage::Ping { nonce: 1 },
        PeerMessage::GetAddr,
        PeerMessage::Addr {
            addrs: vec!["127.0.0.1:7000".into(), "[::1]:7001".into()],
        },
        PeerMessage::GetBlocks {
            locator: vec![g.hash],
            limit: 10,
        },
        PeerMessage::Blocks {
            blocks: vec![b1.clone()],
            tip,
        },
        PeerMessage::NewBlock { block: b1.clone() },
        PeerMessage::HelloProof {
            signature: vec![3; 64],
        },
        PeerMessage::GetStatus,
        PeerMessage::Goodbye {
            reason: "bye".into(),
        },
    ];
    for m in messages {
        wire.push(frame(m)?);
    }
    write(out, "wire_frames", wire)?;
    let lines = [
        "{\"type\":\"REGISTER\",\"payload\":\"localhost:3000\"}\n",
        "{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n",
        "{\"type\":\"REMOVE\",\"payload\":\"[::1]:3000\"}\n",
    ];
    write(
        out,
        "legacy_line",
        lines.iter().map(|l| l.as_bytes().to_vec()).collect(),
    )?;
    write(
        out,
        "peer_records",
        vec![
            rmp_serde::to_vec_named(&record)?,
            rmp_serde::to_vec_named(&dereg)?,
            b"\x0e127.0.0.1:7000\x05\0\0\0\0\0\0\0\xe8\x03\0\0\0\0\0\0\0\0\x01".to_vec(),
        ],
    )?;
    write(
        out,
        "blocks",
        vec![rmp_serde::to_vec_named(&b1)?, vec![0; 64]],
    )?;
    // A snapshot as a member writes it: an entry's address and compact row, then a tombstone.
    let stored = StoredEntry {
        entry: PeerEntry::Signed(record.clone()),
        group: HostGroup::of(&record.address, None),
        verified: true,
    };
    let items = [
        SnapshotItem::Entry {
            address: record.address.clone(),
            row: stored.encode(Some(0))?,
        },
        SnapshotItem::Tombstone {
            node_id: record.node_id,
            tombstone: Tombstone {
                seq: 3,
                expires_at_ms: 1_000,
            },
        },
    ];
    let mut snap = SnapshotWriter::new(Vec::new())?;
    for item in &items {
        snap.push(&item.encode()?)?;
    }
    let (file, _) = snap.finish()?;
    write(out, "snapshot_file", vec![file])?;
    Ok(())
}
