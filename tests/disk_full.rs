//! A member whose disk really fills up — ENOSPC from a tiny tmpfs, not the `min_free_disk`
//! threshold — refuses writes at once with a clear `storage` error, keeps answering reads from
//! its local state, never panics, and loses nothing acknowledged. The rest of the cluster goes
//! on while a quorum remains, and the member catches up once restarted with space.
//!
//! Each full member runs in a private mount namespace (`unshare -Urm`) with a tmpfs over its
//! data directory (see `support::Cluster::spawn`). Its files are reached from outside through
//! `/proc/<pid>/root`. If the mount cannot be made, the tests fail: they never skip.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use peerchain::client::{BootstrapClient, ClientError, ClientOptions};
use peerchain::raft::checkpoint::CHECKPOINT_INTERVAL;
use peerchain::record::{NodeIdentity, PeerRecord};
use peerchain::wire::{ErrorCode, ErrorReply};
use support::{addresses_on, eventually, holds_all, Cluster, NETWORK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Size of the full member's tmpfs: small enough to fill in seconds.
const TMPFS_SIZE: &str = "8m";
/// A data dir on a filesystem bigger than this is not the tmpfs we asked for.
const TMPFS_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Room left on the tmpfs once the cluster is up: a ballast file takes the rest, as if
/// something else had filled the disk, so that registrations fill it within seconds.
const ROOM_LEFT: u64 = 1024 * 1024;
/// The ballast file's name in the full member's data dir.
const BALLAST: &str = "ballast.bin";
/// Concurrent registration streams through the healthy members.
const WRITERS: u32 = 32;
/// The disk must fill within this long.
const FILL_WITHIN: Duration = Duration::from_secs(120);
/// The first refused write may have been under way as the disk filled: it must still be
/// answered before the proposer's own timeout (5 s), i.e. without a hang ...
const FIRST_REFUSAL: Duration = Duration::from_secs(5);
/// ... and every later write to the full member is refused within this long.
const PROMPT_REFUSAL: Duration = Duration::from_secs(1);
/// Writes the healthy members must acknowledge after the disk filled ...
const WRITES_AFTER_FULL: usize = 50;
/// ... within this long.
const WRITE_ON_WITHIN: Duration = Duration::from_secs(30);
const HOUR_MS: u64 = 3_600_000;

/// The two tests each run a cluster with heavy write load: one at a time, so that the
/// timings they report are not distorted by each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Acked = Arc<Mutex<BTreeSet<String>>>;

fn signed(addr: &str) -> PeerRecord {
    let now = peerchain::unix_ms();
    NodeIdentity::generate().sign_record(NETWORK, addr, now, now + HOUR_MS)
}

/// One attempt, no retries: what a client sees from this member alone.
fn single_shot_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
        retry_for: Duration::ZERO,
        secret: None,
    }
}

/// A 3-member cluster where member `full` has its data dir on a `TMPFS_SIZE` tmpfs and no
/// free-space threshold (so the disk really fills), and member 1 leads.
async fn cluster_with_tiny_disk(full: u64) -> Result<Cluster> {
    let mut cluster = Cluster::unstarted_n(3, &[])?;
    // Its records are synthetic addresses: this is about the disk, not dial-back.
    cluster.dial_back = false;
    let config = cluster.dir.path().join("no-threshold.toml");
    std::fs::write(&config, "min_free_disk = 0\n")?;
    let m = cluster.member_mut(full);
    m.tmpfs = Some(TMPFS_SIZE.to_string());
    m.extra_args = vec!["--config".into(), support::path_str(&config)];
    cluster.start_all().await?;
    check_on_tmpfs(&mut cluster, full)?;
    make_leader(&cluster, 1).await?;
    let dir = data_dir_inside(&cluster, full)?;
    let free = fs4::available_space(&dir)?;
    let ballast = usize::try_from(free.saturating_sub(ROOM_LEFT))?;
    std::fs::write(dir.join(BALLAST), vec![0xa5u8; ballast])?;
    eprintln!(
        "member {full}: {free} bytes free on its tmpfs, {} left after the ballast",
        fs4::available_space(&dir)?
    );
    Ok(cluster)
}

/// `data_dir` of member `id` as its own mount namespace sees it.
fn data_dir_inside(cluster: &Cluster, id: u64) -> Result<PathBuf> {
    let m = cluster.member(id);
    let pid = m.child.as_ref().context("member not running")?.id();
    let dir = m.data_dir.strip_prefix("/").unwrap_or(&m.data_dir);
    Ok(PathBuf::from(format!("/proc/{pid}/root")).join(dir))
}

/// Fails (never skips) unless member `id` runs with its data dir on the tiny tmpfs.
fn check_on_tmpfs(cluster: &mut Cluster, id: u64) -> Result<()> {
    let child = cluster
        .member_mut(id)
        .child
        .as_mut()
        .context("member not started")?;
    if let Some(status) = child.try_wait()? {
        bail!(
            "member {id} exited at start ({status}; exit code {} means the tmpfs mount failed). \
             This test needs `unshare -Urm sh -c 'mount -t tmpfs ...'` to work. Log:\n{}",
            support::TMPFS_MOUNT_FAILED,
            cluster.log(id)
        );
    }
    let dir = data_dir_inside(cluster, id)?;
    let total = fs4::total_space(&dir).with_context(|| format!("statfs {}", dir.display()))?;
    ensure!(
        total <= TMPFS_MAX_BYTES,
        "member {id}'s data dir is on a {total}-byte filesystem, not the {TMPFS_SIZE} tmpfs"
    );
    Ok(())
}

/// Makes member `want` the leader with `ctl cluster elect` (it calls elections until it
/// wins), checking from `want`'s own view.
async fn make_leader(cluster: &Cluster, want: u64) -> Result<()> {
    for _ in 0..5 {
        if cluster.wait_leader(Duration::from_secs(20)).await? == want {
            return Ok(());
        }
        if let Err(e) = cluster.elect(want) {
            eprintln!("elect {want}: {e}; trying again");
            continue;
        }
        let took = eventually(Duration::from_secs(10), "leadership moves", || async {
            Ok(cluster.info(want).await?.leader_id == Some(want))
        })
        .await;
        if took.is_ok() {
            return Ok(());
        }
    }
    bail!("member {want} did not become the leader")
}

/// Registration streams through `addrs` until `stop`; every acknowledged address goes into
/// `acked`.
fn spawn_writers(
    addrs: &[String],
    tag: u8,
    acked: &Acked,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let mut seeds = addrs.to_vec();
            seeds.rotate_left(w as usize % addrs.len());
            let mut client = BootstrapClient::new(seeds, support::quick_options());
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                for k in 0u32.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let addr = format!("127.{tag}.{w}.{}:{}", k % 250, 1000 + k / 250);
                    if client.register(signed(&addr)).await.is_ok() {
                        acked.lock().expect("lock").insert(addr);
                    }
                }
            })
        })
        .collect()
}

/// A refused write: the reply and how long it took.
struct Refusal {
    reply: ErrorReply,
    took: Duration,
}

/// Sends one registration to member `id` alone. `Ok(None)`: acknowledged (and recorded).
async fn write_to(
    cluster: &Cluster,
    id: u64,
    addr: String,
    acked: &Acked,
) -> Result<Option<Refusal>> {
    let mut client = BootstrapClient::new(vec![cluster.addr(id)], single_shot_options());
    let started = Instant::now();
    let result = client.register(signed(&addr)).await;
    let took = started.elapsed();
    match result {
        Ok(_) => {
            acked.lock().expect("lock").insert(addr);
            Ok(None)
        }
        Err(ClientError::Server(reply)) => Ok(Some(Refusal { reply, took })),
        Err(e) => bail!("write to member {id} failed without a reply after {took:?}: {e}"),
    }
}

/// Probes member `id` with writes until one is refused with `storage`.
async fn wait_until_refused(cluster: &Cluster, id: u64, tag: u8, acked: &Acked) -> Result<Refusal> {
    let deadline = Instant::now() + FILL_WITHIN;
    for k in 0u32.. {
        let addr = format!("127.{tag}.250.{}:{}", k % 250, 1000 + k / 250);
        match write_to(cluster, id, addr, acked).await {
            Ok(Some(r)) if r.reply.code == ErrorCode::Storage => return Ok(r),
            // Before the disk fills, a probe may meet an election or a slow commit.
            Ok(_) | Err(_) => {}
        }
        if Instant::now() > deadline {
            let used = fs4::available_space(data_dir_inside(cluster, id)?)?;
            bail!("member {id}'s disk did not fill within {FILL_WITHIN:?} ({used} bytes free)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!("the probe loop only ends by returning")
}

/// The seed protocol's GET_PEERS against member `id`: the JSON array it answers.
async fn legacy_get_peers(cluster: &Cluster, id: u64) -> Result<Vec<serde_json::Value>> {
    let mut s = tokio::net::TcpStream::connect(cluster.addr(id)).await?;
    s.write_all(b"{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n")
        .await?;
    s.shutdown().await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text)).await??;
    serde_json::from_str(text.trim()).with_context(|| format!("GET_PEERS answered {text:?}"))
}

/// The seed protocol's REGISTER against member `id`: its reply line.
async fn legacy_register(cluster: &Cluster, id: u64, addr: &str) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(cluster.addr(id)).await?;
    let line = format!("{{\"type\":\"REGISTER\",\"payload\":\"{addr}\"}}\n");
    s.write_all(line.as_bytes()).await?;
    s.shutdown().await?;
    let mut text = String::new();
    tokio::time::timeout(PROMPT_REFUSAL, s.read_to_string(&mut text)).await??;
    Ok(text.trim().to_string())
}

/// Reads on the full member go on, from its local state, promptly. Returns its addresses.
async fn reads_go_on(cluster: &Cluster, id: u64) -> Result<BTreeSet<String>> {
    let started = Instant::now();
    let info = BootstrapClient::new(vec![cluster.addr(id)], single_shot_options())
        .cluster_info()
        .await
        .context("CLUSTER_INFO on the full member")?;
    ensure!(info.member_id == id && info.members.len() == 3, "{info:?}");
    let sample = BootstrapClient::new(vec![cluster.addr(id)], single_shot_options())
        .get_peers(Some(50), vec![], false)
        .await
        .context("GetPeers on the full member")?;
    ensure!(!sample.is_empty(), "GetPeers on the full member is empty");
    let legacy = legacy_get_peers(cluster, id).await?;
    ensure!(!legacy.is_empty(), "GET_PEERS on the full member is empty");
    let stored = addresses_on(cluster, id)
        .await
        .context("ListPeers on the full member")?;
    ensure!(
        stored.len() as u64 == info.peer_count,
        "listing ({}) and peer_count ({}) agree",
        stored.len(),
        info.peer_count
    );
    eprintln!(
        "member {id}: reads answered in {:?} (peer_count {}, last_applied_index {:?})",
        started.elapsed(),
        info.peer_count,
        info.last_applied_index
    );
    Ok(stored)
}

/// The member is still the same live process, and never panicked.
fn alive_without_panic(cluster: &mut Cluster, id: u64) -> Result<()> {
    let child = cluster
        .member_mut(id)
        .child
        .as_mut()
        .context("member not running")?;
    ensure!(
        child.try_wait()?.is_none(),
        "member {id} exited; log:\n{}",
        cluster.log(id)
    );
    let log = cluster.log(id);
    ensure!(!log.contains("panicked"), "member {id} panicked:\n{log}");
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_name() == BALLAST {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Freezes member `id`, copies its files off the tmpfs (a crash image, like `kill -9`),
/// kills it and starts it again on the test's disk with the default threshold.
async fn restart_with_space(cluster: &mut Cluster, id: u64) -> Result<()> {
    let inside = data_dir_inside(cluster, id)?;
    cluster.pause(id)?;
    let copy = cluster.dir.path().join(format!("m{id}-with-space"));
    let copied = copy_dir(&inside, &copy);
    cluster.kill(id);
    copied.context("copying the full member's files")?;
    let m = cluster.member_mut(id);
    m.data_dir = copy;
    m.tmpfs = None;
    m.extra_args.clear();
    cluster.spawn(id, false)
}

/// The common part of both cases, after the cluster is up with member `full` on the tmpfs.
/// `healthy` are the other two members; writers use them only.
async fn fill_and_check(mut cluster: Cluster, full: u64, healthy: [u64; 2], tag: u8) -> Result<()> {
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let addrs: Vec<String> = healthy.iter().map(|id| cluster.addr(*id)).collect();
    // A few seed-protocol records, so that its GET_PEERS (legacy pool only) has something
    // to serve once the disk is full.
    for i in 1..=3 {
        let reply =
            legacy_register(&cluster, healthy[0], &format!("127.{tag}.251.{i}:1000")).await?;
        ensure!(reply == "Peer registered successfully", "{reply:?}");
    }
    // ... and a few signed ones for the native GetPeers. Members apply without fsync and
    // checkpoint every `CHECKPOINT_INTERVAL`; after a failed write the full member reopens
    // its registry at its last checkpoint, so that is what its reads serve. These records
    // are given time to reach a checkpoint on every member before the disk fills.
    let early: BTreeSet<String> = (1..=3).map(|i| format!("127.{tag}.250.{i}:1000")).collect();
    for addr in &early {
        cluster.client_of(healthy[0]).register(signed(addr)).await?;
        acked.lock().expect("lock").insert(addr.clone());
    }
    eventually(Duration::from_secs(10), "early records everywhere", || {
        holds_all(&cluster, full, &early)
    })
    .await?;
    tokio::time::sleep(CHECKPOINT_INTERVAL * 3).await;
    let filling = Instant::now();
    let writers = spawn_writers(&addrs, tag, &acked, &stop);

    // 1. The disk fills; a write sent to the full member is refused, clearly and at once.
    let first = wait_until_refused(&cluster, full, tag, &acked).await?;
    let acked_when_full = acked.lock().expect("lock").len();
    eprintln!(
        "member {full}'s disk filled after {:?} with {acked_when_full} acknowledged; \
         refusal in {:?}: {}",
        filling.elapsed(),
        first.took,
        first.reply.message
    );
    ensure!(
        first.took < FIRST_REFUSAL,
        "the first refusal took {:?}",
        first.took
    );
    let mut slowest = Duration::ZERO;
    for k in 0..5 {
        let addr = format!("127.{tag}.251.{k}:1000");
        let r = write_to(&cluster, full, addr, &acked)
            .await?
            .context("a write to the full member was acknowledged")?;
        ensure!(r.reply.code == ErrorCode::Storage, "{:?}", r.reply);
        slowest = slowest.max(r.took);
    }
    let message = first.reply.message.to_lowercase();
    ensure!(
        message.contains("disk") && message.contains("storage"),
        "refusal names the cause: {}",
        first.reply.message
    );
    ensure!(slowest < PROMPT_REFUSAL, "refusals took up to {slowest:?}");
    let seed_reply = legacy_register(&cluster, full, &format!("127.{tag}.253.1:1000")).await?;
    ensure!(
        seed_reply.starts_with("Error: storage failed"),
        "the seed protocol's REGISTER is refused too: {seed_reply:?}"
    );

    // 2. The healthy members go on acknowledging writes (after an election if the full
    //    member led).
    let went_on = eventually(
        WRITE_ON_WITHIN,
        "writes acknowledged after the disk filled",
        || {
            let n = acked.lock().expect("lock").len();
            async move { Ok(n >= acked_when_full + WRITES_AFTER_FULL) }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await?;
    }
    went_on?;
    let acked = acked.lock().expect("lock").clone();
    eprintln!(
        "{} acknowledged in all, {} after the disk filled (slowest later refusal {slowest:?})",
        acked.len(),
        acked.len() - acked_when_full
    );

    // 3. Reads on the full member go on, from its local state; nothing acknowledged is lost.
    let stored_on_full = reads_go_on(&cluster, full).await?;
    for id in healthy {
        eventually(
            Duration::from_secs(10),
            "healthy member holds every ack",
            || holds_all(&cluster, id, &acked),
        )
        .await?;
    }
    let on_healthy = addresses_on(&cluster, healthy[0]).await?;
    ensure!(
        stored_on_full.is_subset(&on_healthy),
        "the full member only holds committed records"
    );
    alive_without_panic(&mut cluster, full)?;

    // 4. Restarted with space, the member catches up with everything acknowledged.
    restart_with_space(&mut cluster, full).await?;
    eventually(
        Duration::from_secs(60),
        "restarted member catches up",
        || holds_all(&cluster, full, &acked),
    )
    .await?;
    cluster
        .client_of(full)
        .register(signed(&format!("127.{tag}.252.1:1000")))
        .await
        .context("a write through the restarted member")?;
    alive_without_panic(&mut cluster, full)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_disk_fills_refuses_writes_and_keeps_serving_reads() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = cluster_with_tiny_disk(3).await?;
    fill_and_check(cluster, 3, [1, 2], 71).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_disk_fills_refuses_writes_and_the_others_take_over() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = cluster_with_tiny_disk(1).await?;
    fill_and_check(cluster, 1, [2, 3], 72).await
}
